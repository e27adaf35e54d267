"""Figures of the MNIST-family experiments (`batch_size`, `autoencoder`): matplotlib in, figures out."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from torch import Tensor

X_LABELS = {"epoch": "epoch", "step": "optimiser steps", "elapsed_seconds": "training seconds (wall clock)"}


def batch_size_curves(histories: dict[str, pd.DataFrame], x: str = "epoch"):
    """Train and test loss and accuracy of each run against `x`, all runs on one figure."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for label, h in histories.items():
        for ax, key in zip(axes.flat, ("train_loss", "test_loss", "train_accuracy", "test_accuracy")):
            ax.plot(h[x], h[key], marker="o", ms=3, label=label)
            ax.set_title(key.replace("_", " "))
    for ax in axes[1]:
        ax.set_xlabel(X_LABELS.get(x, x))
    if x == "step":
        for ax in axes.flat:
            ax.set_xscale("log")
    axes[0, 0].legend(title="batch size")
    fig.tight_layout()
    return fig


def memory_bars(table: pd.DataFrame):
    """Activation memory of one step: the batch in one piece vs as micro-batches."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(table["batch"], table["whole_activation_bytes"] / 1e6, marker="o", label="whole batch")
    ax.plot(table["batch"], table["accumulated_activation_bytes"] / 1e6, marker="s", label="micro-batches, accumulated")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size of the optimiser step")
    ax.set_ylabel("activations kept for backward (MB)")
    ax.legend()
    fig.tight_layout()
    return fig


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


def confusion(cm: Tensor, classes: tuple[str, ...], title: str):
    fig, ax = plt.subplots(figsize=(6, 5.2))
    ax.imshow(cm.numpy(), cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            v = int(cm[i, j])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
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
