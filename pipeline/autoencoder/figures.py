"""Figures of the autoencoder study: matplotlib in, figures out."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from torch import Tensor


def class_histogram(labels: Tensor, classes: tuple[str, ...]):
    counts = labels.bincount(minlength=len(classes)).tolist()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(range(len(classes)), counts)
    ax.set_xticks(range(len(classes)), classes, rotation=30 if max(map(len, classes)) > 2 else 0)
    ax.set_ylabel("training images")
    for i, c in enumerate(counts):
        ax.text(i, c, str(c), ha="center", va="bottom", fontsize=7)
    fig.tight_layout()
    return fig


def image_row(images: Tensor, titles: list[str]):
    """uint8 or [0, 1] images (N, 28, 28) side by side with titles."""
    fig, axes = plt.subplots(1, len(images), figsize=(1.8 * len(images), 2.1), squeeze=False)
    for ax, img, title in zip(axes[0], images, titles):
        ax.imshow(img.cpu().float().reshape(28, 28), cmap="gray")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def reconstructions(originals: Tensor, recons: dict[int, Tensor]):
    """Rows: the inputs, then the reconstructions after each chosen epoch."""
    rows = [("input", originals), *((f"epoch {e}", r) for e, r in sorted(recons.items()))]
    n = len(originals)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.7 * len(rows)), squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        for c in range(n):
            axes[r, c].imshow(imgs[c].cpu().float().reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name)
    fig.tight_layout()
    return fig


def epoch_losses(history: pd.DataFrame, seed: tuple[float, ...]):
    """Our train and test MSE per epoch beside the losses the report printed."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["epoch"], history["train_loss"], marker="o", label="train (ours, epoch mean)")
    ax.plot(history["epoch"], history["test_loss"], marker="o", label="test (ours)")
    ax.plot(range(1, len(seed) + 1), seed, marker="x", ls="--", label="report (printed per epoch)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.legend()
    fig.tight_layout()
    return fig


def batch_accuracy(per_batch: dict[str, Tensor]):
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name, acc in per_batch.items():
        ax.plot(range(1, len(acc) + 1), 100 * acc, marker=".", label=name)
    ax.set_xlabel("test batch")
    ax.set_ylabel("accuracy (%)")
    ax.legend()
    fig.tight_layout()
    return fig


def train_figures(data: dict, sample: Tensor, shown: Tensor, recons: dict[int, Tensor], history: pd.DataFrame,
                  seed_losses: tuple[float, ...]) -> dict[str, plt.Figure]:
    """The training stage's figures by file name: the class histogram, a row of training images
    (`sample` indices), reconstructions of `shown` per snapshot epoch, and the epoch losses
    beside the seed report's."""
    classes = data["classes"]
    return {"class_histogram.png": class_histogram(data["train_y"], classes),
            "random_images.png": image_row(data["train_x"][sample], [classes[int(i)] for i in data["train_y"][sample]]),
            "reconstructions.png": reconstructions(shown, recons),
            "epoch_losses.png": epoch_losses(history, seed_losses)}
