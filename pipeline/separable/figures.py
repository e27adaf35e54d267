"""Figures of the `separable` experiment."""
from __future__ import annotations

import matplotlib.pyplot as plt
from torch import Tensor, nn

from pipeline.separable.study import decision_grid


def loss_curve(history: list[dict]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.semilogy([h["epoch"] for h in history], [h["train_loss"] for h in history], label="train")
    ax.semilogy([h["epoch"] for h in history], [h["val_loss"] for h in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("binary cross-entropy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def boundary(model: nn.Module, x: Tensor, y: Tensor) -> plt.Figure:
    gx, gy, p = decision_grid(model)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    filled = ax.contourf(gx, gy, p, levels=20, cmap="RdBu_r", alpha=0.6, vmin=0, vmax=1)
    ax.contour(gx, gy, p, levels=[0.5], colors="k")
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=14)
    fig.colorbar(filled, ax=ax, label="P(class 1)", ticks=[0, 0.25, 0.5, 0.75, 1])
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title("The blobs, P(class 1) and the 0.5 boundary (black)", fontsize=9)
    fig.tight_layout()
    return fig
