"""Every upscaling method on every image, scored by PSNR and SSIM."""
from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor

from pipeline.superres.features import downsample
from pipeline.superres.metrics import psnr, ssim
from pipeline.superres.models import interpolate, upscale

CLASSICAL = ("nearest", "bilinear", "bicubic")


def upscale_all(hr: Tensor, models: dict[str, tuple[torch.nn.Module, int]]) -> dict[int, dict[str, Tensor]]:
    """{factor: {method: uint8 (N, 3, H, W)}} for f = 2 and 4.

    At 4x, a 2x network is also applied twice (`<name> x2 twice`): low-res/4 ->
    low-res/2 -> full size, against the network trained for 4x directly.
    """
    out: dict[int, dict[str, Tensor]] = {}
    for f in (2, 4):
        lr = downsample(hr, f)
        methods = {m: interpolate(lr, f, m) for m in CLASSICAL}
        for name, (model, factor) in models.items():
            if factor == f:
                methods[name] = upscale(model, lr, f)
            elif factor == 2 and f == 4:
                methods[f"{name} x2 twice"] = upscale(model, upscale(model, lr, 2), 2)
        out[f] = methods
    return out


def score(hr: Tensor, upscaled: dict[int, dict[str, Tensor]], names: tuple[str, ...], image_set: str) -> pd.DataFrame:
    """One row per (factor, method, image): PSNR in dB and SSIM."""
    rows = []
    for f, methods in upscaled.items():
        for method, img in methods.items():
            p, s = psnr(img, hr), ssim(img, hr)
            rows += [{"factor": f, "method": method, "set": image_set, "image": n,
                      "psnr": float(p[i]), "ssim": float(s[i])} for i, n in enumerate(names)]
    return pd.DataFrame(rows)


def summary(per_image: pd.DataFrame) -> dict:
    """{'x2': {method: {'psnr': .., 'ssim': .., 'holdout_psnr': .., ...}}, 'x4': ...}: means per set."""
    out: dict = {}
    means = per_image.groupby(["factor", "method", "set"])[["psnr", "ssim"]].mean()
    for (f, method, image_set), row in means.iterrows():
        prefix = "" if image_set == "train_images" else f"{image_set}_"
        entry = out.setdefault(f"x{f}", {}).setdefault(method, {})
        entry[f"{prefix}psnr"] = round(float(row["psnr"]), 4)
        entry[f"{prefix}ssim"] = round(float(row["ssim"]), 5)
    return out


def method_table(summary_: dict, factor: str, interpolations: tuple[str, ...] = ("nearest", "bilinear", "bicubic")
                 ) -> pd.DataFrame:
    """One row per method at one factor ('x2'), interpolations first: the table `dvc plots` draws."""
    methods = summary_[factor]
    order = [m for m in interpolations if m in methods] + [m for m in methods if m not in interpolations]
    return pd.DataFrame([{"method": m, **methods[m]} for m in order])


def headline(summary_: dict, interpolations: tuple[str, ...] = ("nearest", "bilinear")) -> dict[str, float]:
    """The few numbers worth a `dvc metrics` column, flat: held-out PSNR and SSIM of bicubic and of
    every network, per factor (`x2_refine_holdout_psnr`). The full table stays in eval.json."""
    return {f"{f}_{m.replace(' ', '_')}_{k}": v for f, methods in summary_.items() for m, row in methods.items()
            if m not in interpolations for k, v in row.items() if k.startswith("holdout_")}
