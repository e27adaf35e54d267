"""Figures of `fer`: faces per class, and what the network's filters look for on one test face.

For each chosen conv block: the channels most active on the face, each with (a) what the channel
responds to — for the first block its 3×3 kernel itself, for deeper blocks (whose kernels mix
dozens of channels and cannot be read as pictures) the input found by gradient ascent that
maximises the channel's mean activation — and (b) its feature map on the face.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from pipeline.fer.model import FerCNN


def samples_per_class(images: Tensor, labels: Tensor, classes: tuple[str, ...], per_class: int = 8, seed: int = 0):
    """`per_class` random training faces of each class (a row each), with the class's count."""
    gen = torch.Generator().manual_seed(seed)
    counts = torch.bincount(labels, minlength=len(classes))
    fig, axes = plt.subplots(len(classes), per_class, figsize=(1.1 * per_class, 1.2 * len(classes)), squeeze=False)
    for r, name in enumerate(classes):
        idx = (labels == r).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)[:per_class]]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(idx):
                ax.imshow(images[idx[c]].numpy(), cmap="gray", vmin=0, vmax=255)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(f"{name}\n{int(counts[r]):,}", fontsize=8)
    fig.tight_layout()
    return fig


@torch.no_grad()
def feature_maps(model: FerCNN, image: Tensor, layers: tuple[int, ...]) -> dict[int, Tensor]:
    """{block (1-based): its output (C, H, W) on `image` (48, 48) uint8}, by forward hooks."""
    blocks = model.blocks()
    maps, hooks = {}, []
    for layer in layers:
        hooks.append(blocks[layer - 1].register_forward_hook(
            lambda mod, inp, out, layer=layer: maps.__setitem__(layer, out[0].float().cpu())))
    try:
        model.eval()(image.unsqueeze(0))
    finally:
        for h in hooks:
            h.remove()
    return maps


def most_active(maps: Tensor, k: int) -> list[int]:
    """The k channels with the largest mean activation, strongest first."""
    return maps.mean((1, 2)).argsort(descending=True)[:k].tolist()


def preferred_inputs(model: FerCNN, layer: int, channels: list[int], steps: int, seed: int = 0,
                     size: int = 48) -> Tensor:
    """(len(channels), size, size) pixel images (0..255), each the input that gradient ascent found
    to maximise the mean activation of one channel of block `layer` (all channels optimised at once,
    one image each; an L2 pull towards grey keeps them in range)."""
    model.eval()
    device = next(model.parameters()).device
    block = model.blocks()[layer - 1]
    gen = torch.Generator(device=device).manual_seed(seed)
    x = (128 + 8 * torch.randn(len(channels), size, size, device=device, generator=gen)).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=4.0)
    captured = {}
    hook = block.register_forward_hook(lambda mod, inp, out: captured.__setitem__("out", out))
    idx = torch.tensor(channels, device=device)
    try:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            model(x)
            act = captured["out"][torch.arange(len(channels), device=device), idx]
            loss = -act.mean((1, 2)).sum() + 1e-4 * ((x - 128) ** 2).mean((1, 2)).sum()
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 255)
    finally:
        hook.remove()
    for p in model.parameters():
        p.grad = None
    return x.detach().cpu()


def face_figure(image: Tensor, probs: Tensor, classes: tuple[str, ...], label: int):
    """The chosen face and the model's probabilities for it."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3), gridspec_kw={"width_ratios": [1, 2]})
    a.imshow(image.cpu().numpy(), cmap="gray", vmin=0, vmax=255)
    a.set_title(f"true: {classes[label]}")
    a.axis("off")
    colours = ["C2" if i == label else "C0" for i in range(len(classes))]
    b.barh(range(len(classes)), probs.cpu().tolist(), color=colours)
    b.set_yticks(range(len(classes)), classes)
    b.invert_yaxis()
    b.set_xlim(0, 1)
    b.set_xlabel("probability")
    fig.tight_layout()
    return fig


def first_kernels(model: FerCNN) -> Tensor:
    """(C, 3, 3): the first convolution's kernels with batch norm folded in by sign only (a
    negative BN scale flips what the channel passes)."""
    block = model.blocks()[0]
    return block.conv.weight.detach().cpu()[:, 0] * block.bn.weight.detach().cpu().sign().view(-1, 1, 1)


def first_layer_filters(model: FerCNN):
    """Every 3×3 kernel of the first convolution (sign-folded, see `first_kernels`), on a shared
    symmetric colour scale."""
    w = first_kernels(model)
    n = len(w)
    cols = min(16, n)
    rows = -(-n // cols)
    lim = float(w.abs().max())
    fig, axes = plt.subplots(rows, cols, figsize=(0.6 * cols, 0.6 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, k in zip(axes.flat, w):
        ax.imshow(k.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle("first-layer 3×3 filters (red: positive, blue: negative weight)", fontsize=9)
    fig.tight_layout()
    return fig


def layer_figure(layer: int, channels: list[int], views: Tensor, maps: Tensor, first: bool):
    """Top row: what each channel responds to (kernel or preferred input); bottom: its feature
    map on the face."""
    n = len(channels)
    fig, axes = plt.subplots(2, n, figsize=(1.5 * n, 3.4), squeeze=False)
    for c, ch in enumerate(channels):
        top, bottom = axes[0, c], axes[1, c]
        if first:
            lim = float(views[c].abs().max()) or 1.0
            top.imshow(views[c].numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        else:
            top.imshow(views[c].numpy(), cmap="gray")          # each stretched to its own range
        bottom.imshow(maps[ch].numpy(), cmap="magma")
        top.set_title(f"ch {ch}", fontsize=8)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("kernel" if first else "preferred input\n(contrast\nstretched)", fontsize=8)
    axes[1, 0].set_ylabel("feature map", fontsize=8)
    fig.suptitle(f"conv block {layer}: the {n} channels most active on the face", fontsize=9)
    fig.tight_layout()
    return fig


def thirds(maps: Tensor) -> dict[str, float]:
    """Share of the activation of (C, H, W) maps in the image's upper, middle and lower third
    (on an aligned FER face: brows and eyes, nose, mouth)."""
    rows = maps.clamp(min=0).sum((0, 2))
    edges = [round(i * len(rows) / 3) for i in range(4)]
    total = float(rows.sum()) or 1.0
    return {name: round(float(rows[a:b].sum()) / total, 4)
            for name, a, b in zip(("upper", "middle", "lower"), edges, edges[1:])}


def kernel_reading(model: FerCNN) -> dict[str, int]:
    """The first layer's 3×3 kernels sorted by what they do: 'edge' when the zero-mean part
    outweighs the mean (a contrast detector), split by the dominant gradient direction, else
    'brightness' (a local average, positive or negative)."""
    w = first_kernels(model).double()
    mean = w.mean((1, 2), keepdim=True)
    edge = (w - mean).flatten(1).norm(dim=1) > 3 * mean.flatten().abs()
    ramp = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    gx = (w * ramp.view(1, 1, 3)).sum((1, 2)).abs()      # grows left to right: a vertical edge
    gy = (w * ramp.view(1, 3, 1)).sum((1, 2)).abs()      # grows top to bottom: a horizontal edge
    horizontal = edge & (gy > 1.5 * gx)
    vertical = edge & (gx > 1.5 * gy)
    return {"kernels": len(w), "edge": int(edge.sum()), "horizontal_edge": int(horizontal.sum()),
            "vertical_edge": int(vertical.sum()), "other_edge": int((edge & ~horizontal & ~vertical).sum()),
            "brightness": int((~edge).sum())}


def inspect(model: FerCNN, image: Tensor, label: int, probs: Tensor, classes: tuple[str, ...], layers: tuple[int, ...],
            k: int, steps: int, seed: int = 0) -> tuple[dict, dict]:
    """Figures {name: figure} and a summary {layer: {channels, mean activation, map size}}."""
    maps = feature_maps(model, image, layers)
    figs = {"face.png": face_figure(image, probs, classes, label), "filters_layer1.png": first_layer_filters(model)}
    summary = {}
    for layer in layers:
        chosen = most_active(maps[layer], k)
        if layer == 1:
            views = first_kernels(model)[chosen]
        else:
            views = preferred_inputs(model, layer, chosen, steps, seed)
        figs[f"maps_layer{layer}.png"] = layer_figure(layer, chosen, views, maps[layer], first=layer == 1)
        summary[layer] = {"channels": chosen, "map_size": list(maps[layer].shape),
                          "mean_activation": [round(float(maps[layer][c].mean()), 5) for c in chosen],
                          "rows": thirds(maps[layer][chosen])}
    return figs, summary
