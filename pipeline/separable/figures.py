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
    ax.contourf(gx, gy, p, levels=20, cmap="RdBu_r", alpha=0.6)
    ax.contour(gx, gy, p, levels=[0.5], colors="k")
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=14)
    ax.set_title("P(class 1) and the 0.5 boundary", fontsize=9)
    fig.tight_layout()
    return fig
