"""Figures of the theory answers (matplotlib Figures; the caller saves or logs them)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import torch

from pipeline.theory.functions import activation_curves, dropout_patterns


def activations() -> plt.Figure:
    xs = torch.linspace(-4, 4, 801, dtype=torch.float64)
    curves = activation_curves(xs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (name, (y, dy)) in enumerate(curves.items()):
        axes[0].plot(xs, y, color=f"C{i}", label=name)
        axes[1].plot(xs, dy, color=f"C{i}", label=name)
    axes[0].set_title("activation f(x)")
    axes[1].set_title("derivative f'(x) (autograd)")
    for ax in axes:
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("x")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def hat_approximation(table: pd.DataFrame, knots: int) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(table["x"], table["f"], label="f(x) = sin(2 pi x) + x^2")
    ax.plot(table["x"], table["hat network"], ls="--", label=f"ReLU hat network, {knots} knots")
    ax.set_xlabel("x")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gradient_norms(table: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.semilogy(table["layer"], table["plain"], "o-", ms=3, label="plain (sigmoid blocks)")
    ax.semilogy(table["layer"], table["residual"], "o-", ms=3, label="same blocks with skip connections")
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel("norm of dLoss/d(block input)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def dropout_masks(p: float = 0.5) -> plt.Figure:
    """Sample 0's channels after each dropout on a tensor of ones: black = zeroed."""
    patterns = dropout_patterns(p)
    fig, axes = plt.subplots(len(patterns), 6, figsize=(7, 3.8))
    for row, (name, info) in zip(axes, patterns.items()):
        out = info["output"][0]
        for c, ax in enumerate(row):
            img = out[c] if out.ndim == 3 else out[c].reshape(-1, out.shape[-1])
            ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=2)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle("channels of one sample after dropout (black = zeroed)", fontsize=9)
    fig.tight_layout()
    return fig


def answer_figures(tables: dict, cfg) -> dict[str, plt.Figure]:
    """The compute stage's figures, by file name."""
    return {"activations.png": activations(),
            "hat_approximation.png": hat_approximation(tables["piecewise_linear"], cfg.regions.knots),
            "gradient_norms.png": gradient_norms(tables["gradient_norms"]),
            "dropout.png": dropout_masks()}
