"""Figures of the batch-size study: matplotlib in, figures out."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

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
