"""Colourisation of CIFAR-10 horses as per-pixel classification (the classic CSC321 assignment).

Input: the grey image, the mean of R, G and B. Target: for every pixel, the nearest of
`palette.colours` (24) colours that k-means found on the training horses' pixels
(`colourize_palette`, seeded). Loss: cross-entropy per pixel; metric: per-pixel accuracy on
the 1,000 validation horses (CIFAR-10's test horses).

Three networks, all taking the uint8 RGB images as they lie on the device and turning them
grey inside:

- `cnn` — the assignment's PoolUpsampleNet: two down blocks (conv → max-pool → BN → ReLU; NF,
  then 2NF channels), a conv block at 8×8, two up blocks (conv → upsample ×2 → BN → ReLU; NF,
  then `colours` channels) and a final conv to the colour logits; every conv k×k, padding k//2.
- `unet` — the same with skip connections by concatenation: the first up block also sees the
  second down block's output, the second up block the first's, the final conv the grey input.
- `residual` — our design: a stem, then residual blocks (two k×k conv-BN-ReLU with an identity
  shortcut) at 32×32, 16×16 and 8×8 (`levels` 2; 0: all at 32×32) with strided convs between,
  `blocks` per level, and back up by upsampling, each decoder level adding the encoder's map of
  its size (a residual skip), then the colour logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.colourize.config import MODELS, Palette, Run  # noqa: F401  (MODELS: the names build() knows)

HORSE = 7


def grey(images: Tensor) -> Tensor:
    """uint8 RGB (N, 3, H, W) -> float (N, 1, H, W) in [0, 1]: the mean of the three channels."""
    return images.float().mean(1, keepdim=True) / 255


def kmeans(points: Tensor, k: int, iterations: int, seed: int) -> Tensor:
    """Lloyd's k-means with k-means++ seeding on float points (N, D); returns the centres (k, D)
    sorted by brightness (sum of coordinates) so the palette's order does not depend on chance."""
    gen = torch.Generator(device=points.device).manual_seed(seed)
    centres = points[torch.randint(len(points), (1,), generator=gen, device=points.device)]
    for _ in range(1, k):
        d = torch.cdist(points, centres).min(1).values ** 2
        pick = torch.multinomial(d / d.sum() if d.sum() > 0 else torch.ones_like(d), 1, generator=gen)
        centres = torch.cat([centres, points[pick]])
    for _ in range(iterations):
        assign = torch.cdist(points, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k).to(points.dtype)
        moved = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
        if torch.equal(moved, centres):
            break
        centres = moved
    return centres[centres.sum(1).argsort()]


def nearest_colour(images: Tensor, palette: Tensor, chunk: int = 4096) -> Tensor:
    """uint8 RGB (N, 3, H, W) -> uint8 (N, H, W): each pixel's nearest palette colour (palette in [0, 1])."""
    n, _, h, w = images.shape
    out = torch.empty(n, h, w, dtype=torch.uint8, device=images.device)
    for start in range(0, n, chunk):
        px = images[start:start + chunk].float().div(255).permute(0, 2, 3, 1).reshape(-1, 3)
        out[start:start + chunk] = torch.cdist(px, palette.to(px)).argmin(1).view(-1, h, w).to(torch.uint8)
    return out


def build_palette(train_images: Tensor, cfg: Palette, seed: int) -> Tensor:
    """k-means centres (colours, 3) in [0, 1] of a seeded sample of the training pixels."""
    px = train_images.float().div(255).permute(0, 2, 3, 1).reshape(-1, 3)
    gen = torch.Generator(device=px.device).manual_seed(seed)
    if len(px) > cfg.sample:
        px = px[torch.randperm(len(px), generator=gen, device=px.device)[:cfg.sample]]
    return kmeans(px, cfg.colours, cfg.iterations, seed)


def pixel_accuracy(out: Tensor, target: Tensor) -> dict[str, Tensor]:
    """The engine's metrics hook: share of pixels whose arg-max colour is the target's."""
    return {"accuracy": (out.argmax(1) == target.long()).float().mean()}


def pixel_loss(out: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy per pixel, averaged over all pixels."""
    return F.cross_entropy(out, target.long())


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


class Down(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__(_conv(c_in, c_out, k), nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.ReLU())


class Up(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__(_conv(c_in, c_out, k), nn.Upsample(scale_factor=2), nn.BatchNorm2d(c_out), nn.ReLU())


class Middle(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__(_conv(c_in, c_out, k), nn.BatchNorm2d(c_out), nn.ReLU())


class PoolUpsampleNet(nn.Module):
    def __init__(self, filters: int, kernel: int, colours: int = 24):
        super().__init__()
        nf, k = filters, kernel
        self.down1, self.down2 = Down(1, nf, k), Down(nf, 2 * nf, k)
        self.middle = Middle(2 * nf, 2 * nf, k)
        self.up1, self.up2 = Up(2 * nf, nf, k), Up(nf, colours, k)
        self.final = _conv(colours, colours, k)

    def forward(self, images: Tensor) -> Tensor:
        x = grey(images)
        return self.final(self.up2(self.up1(self.middle(self.down2(self.down1(x))))))


class UNet(nn.Module):
    def __init__(self, filters: int, kernel: int, colours: int = 24):
        super().__init__()
        nf, k = filters, kernel
        self.down1, self.down2 = Down(1, nf, k), Down(nf, 2 * nf, k)
        self.middle = Middle(2 * nf, 2 * nf, k)
        self.up1, self.up2 = Up(4 * nf, nf, k), Up(2 * nf, colours, k)
        self.final = _conv(colours + 1, colours, k)

    def forward(self, images: Tensor) -> Tensor:
        x = grey(images)
        d1 = self.down1(x)
        d2 = self.down2(d1)
        m = self.middle(d2)
        u1 = self.up1(torch.cat([m, d2], 1))
        u2 = self.up2(torch.cat([u1, d1], 1))
        return self.final(torch.cat([u2, x], 1))


class ResBlock(nn.Module):
    """x + BN(conv(ReLU(BN(conv(x))))), then ReLU."""

    def __init__(self, c: int, k: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                  nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class ResidualNet(nn.Module):
    """A stem, then `levels` encoder levels (`blocks` residual blocks, then a strided conv that
    halves the size and doubles the width), `blocks` + 1 blocks at the bottom (`middle`), and back
    up: each decoder level upsamples to its encoder's size and width, adds the encoder's map (a
    residual skip) and runs `blocks` blocks; a 1×1 conv gives the colour logits. `levels` 0 keeps
    every block at the full 32×32. Children in order: stem, enc1, down1, …, middle, up<L>,
    dec<L>, …, up1, dec1, final."""

    def __init__(self, filters: int, kernel: int, colours: int = 24, blocks: int = 1, levels: int = 2):
        super().__init__()
        nf, k = filters, kernel
        self.levels = levels
        self.stem = Middle(1, nf, k)
        for i in range(levels):
            c = nf * 2 ** i
            setattr(self, f"enc{i + 1}", nn.Sequential(*[ResBlock(c, k) for _ in range(blocks)]))
            setattr(self, f"down{i + 1}", nn.Sequential(nn.Conv2d(c, 2 * c, k, stride=2, padding=k // 2, bias=False),
                                                        nn.BatchNorm2d(2 * c), nn.ReLU()))
        self.middle = nn.Sequential(*[ResBlock(nf * 2 ** levels, k) for _ in range(blocks + 1)])
        for i in reversed(range(levels)):
            c = nf * 2 ** i
            setattr(self, f"up{i + 1}", Up(2 * c, c, k))
            setattr(self, f"dec{i + 1}", nn.Sequential(*[ResBlock(c, k) for _ in range(blocks)]))
        self.final = _conv(nf, colours, 1)

    def forward(self, images: Tensor) -> Tensor:
        h = self.stem(grey(images))
        skips = []
        for i in range(1, self.levels + 1):
            h = getattr(self, f"enc{i}")(h)
            skips.append(h)
            h = getattr(self, f"down{i}")(h)
        h = self.middle(h)
        for i in range(self.levels, 0, -1):
            h = getattr(self, f"dec{i}")(getattr(self, f"up{i}")(h) + skips[i - 1])
        return self.final(h)


def build(model: str, run: Run, colours: int = 24) -> nn.Module:
    if model == "residual":
        return ResidualNet(run.filters, run.kernel, colours, run.blocks, run.levels)
    cls = {"cnn": PoolUpsampleNet, "unet": UNet}[model]
    return cls(run.filters, run.kernel, colours)


def feature_map_sizes(model: nn.Module, size: int = 32) -> list[dict]:
    """Each direct child's output shape (C, H, W) and parameter count on one size×size image,
    read with forward hooks — the table the report computed by hand."""
    rows, hooks = [], []
    for name, child in model.named_children():
        def hook(module, inputs, output, name=name):
            rows.append({"layer": name, "output": tuple(output.shape[1:]),
                         "parameters": sum(p.numel() for p in module.parameters())})
        hooks.append(child.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, dtype=torch.uint8, device=next(model.parameters()).device))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return rows


def colourise(model: nn.Module, images: Tensor, palette: Tensor, batch: int = 500) -> Tensor:
    """uint8 RGB images -> uint8 RGB images painted with the palette colour each pixel's arg-max names."""
    from pipeline.core.inference import predict

    model.eval()
    idx = predict(lambda x: model(x).argmax(1), images, batch)
    return (palette.to(images.device)[idx] * 255).round().to(torch.uint8).permute(0, 3, 1, 2)


def colourise_target(classes: Tensor, palette: Tensor) -> Tensor:
    """uint8 colour-class maps (N, H, W) -> uint8 RGB images in the palette's colours."""
    return (palette.to(classes.device)[classes.long()] * 255).round().to(torch.uint8).permute(0, 3, 1, 2)
