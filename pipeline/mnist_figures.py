"""Figures of the MNIST-family experiments (`batch_size`, `autoencoder`, `emnist`): matplotlib in, figures out."""
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


def confusion(cm: Tensor, classes: tuple[str, ...], title: str, normalise: bool = False):
    """Rows: true class, columns: prediction. `normalise` divides each row by its count (the
    recall on the diagonal), which keeps rare classes visible; counts are written in the cells
    only while there are few classes."""
    values = cm.double() / cm.sum(1, keepdim=True).clamp(min=1) if normalise else cm
    n = cm.shape[0]
    size = max(6.0, 0.16 * n)
    fig, ax = plt.subplots(figsize=(size, size * 0.87))
    im = ax.imshow(values.numpy(), cmap="Blues")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                ax.text(j, i, f"{float(v):.2f}" if normalise else str(int(v)), ha="center", va="center", fontsize=7,
                        color="white" if v > values.max() / 2 else "black")
    else:
        fig.colorbar(im, ax=ax, fraction=0.04, label="share of the true class" if normalise else "images")
    small = 6 if n > 20 else None
    ax.set_xticks(range(n), classes, rotation=0 if n > 20 else 45, ha="center" if n > 20 else "right", fontsize=small)
    ax.set_yticks(range(n), classes, fontsize=small)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def class_grid(images: Tensor, classes: tuple[str, ...], cols: int = 16):
    """One (N, 28, 28) image per class in a grid, each titled with its class; a class with no
    image (an empty tensor in its place) gets an empty tile."""
    rows = -(-len(classes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.75 * cols, 0.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, name in zip(axes.flat, images, classes):
        if img.numel():
            ax.imshow(img.cpu().float(), cmap="gray_r")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def orientation(stored: Tensor, upright: Tensor, titles: list[str]):
    """The same images as the IDX file stores them (top) and turned upright (bottom)."""
    n = len(stored)
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.8), squeeze=False)
    for r, (label, imgs) in enumerate((("as stored", stored), ("upright", upright))):
        for c in range(n):
            axes[r, c].imshow(imgs[c].cpu().float(), cmap="gray_r")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(titles[c], fontsize=9)
        axes[r, 0].set_ylabel(label)
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


def train_val_curves(histories: dict[str, pd.DataFrame]):
    """Loss and accuracy per epoch of several models: train dashed, validation solid."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, h) in enumerate(histories.items()):
        colour = f"C{i}"
        for ax, key in zip(axes, ("loss", "accuracy")):
            ax.plot(h["epoch"], h[f"train_{key}"], ls="--", color=colour, label=f"{label} train")
            ax.plot(h["epoch"], h[f"val_{key}"], marker="o", ms=3, color=colour, label=f"{label} validation")
            ax.set_title(key)
            ax.set_xlabel("epoch")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def per_class_recall(tables: dict[str, pd.DataFrame]):
    """Test recall of every class for each model (classes in label order)."""
    first = next(iter(tables.values()))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.2 * len(first)), 3.8))
    for label, t in tables.items():
        ax.plot(range(len(t)), 100 * t["recall"], marker="o", ms=3, lw=1, label=label)
    ax.set_xticks(range(len(first)), first["class"], fontsize=7)
    ax.set_ylabel("recall on test (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
