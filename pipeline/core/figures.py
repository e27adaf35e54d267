"""Figures several experiments share: matplotlib in, figures out."""
from __future__ import annotations

import matplotlib.pyplot as plt
from torch import Tensor


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
