# %% [markdown]
# # `superres` — super-resolution with a multi-layer perceptron
#
# The seed report (HW2, question 5) halves the resolution of ten colour images and trains an
# MLP that predicts each original pixel from the 3×3 neighbourhood of its low-resolution pixel
# (27 inputs = 9 pixels × RGB, 3 outputs). This notebook only presents what the pipeline's
# stages computed: `superres_features` → `superres_train@<variant>` → `superres_evaluate`.

# %% tags=["parameters"]
scale = "full"
root = "."

# %%
import json
from pathlib import Path

import pandas as pd
import torch
from IPython.display import Markdown, display

from pipeline.report import table
from pipeline.superres import figures
from pipeline.superres.narrative import answer_4x, compare, literal_verdict
from pipeline.superres.seed import SEED

root = Path(root)
feats = torch.load(root / "data/features/superres/samples.pt", weights_only=False)
summary = json.loads((root / "metrics/superres/eval.json").read_text())
per_image = pd.read_csv(root / "metrics/superres/per_image.csv")
upscaled = torch.load(root / "data/eval/superres/upscaled.pt", weights_only=False)
variants = sorted(p.stem for p in (root / "metrics/superres").glob("*.json") if p.stem not in ("eval", "summary"))
train_metrics = {v: json.loads((root / f"metrics/superres/{v}.json").read_text()) for v in variants}
histories = {v: pd.read_csv(root / f"plots/superres/{v}.csv") for v in variants}
if scale != "full":
    display(Markdown(f"> **Scale: {scale}.** Tiny images and two epochs: the numbers below only "
                     "show that the pipeline runs; run `dvc repro` at `scale: full` for real ones."))

# %% [markdown]
# ## Setting: the seed's and ours
#
# The seed used ten CIFAR-10 images (32×32), so 10 240 pixels became 7 168 / 2 048 / 1 024
# training / test / validation samples. We use ten of scikit-image's bundled photographs, each
# centre-cropped to a square and resized, so that everyone can rebuild the experiment offline;
# `superres.images.names: [cifar10:0, …, cifar10:9]` with `size: 32` gives the seed's setting
# exactly. We split by *low-resolution position* (70/20/10), so the four original pixels that
# share one low-resolution pixel always land in the same split. Two more photographs
# (scikit-learn's `china` and `flower`) are never trained on: they are the honest test images.

# %%
sizes = train_metrics.get("literal", next(iter(train_metrics.values())))
table(pd.DataFrame({
    "seed report": [SEED["images"], SEED["samples"]["train"], SEED["samples"]["test"],
                    SEED["samples"]["validation"], SEED["network"]],
    "this pipeline": [f"{len(feats['names'])} photographs, {feats['hr'].shape[-1]}x{feats['hr'].shape[-1]} px"
                      f" (+{len(feats['holdout_names'])} held out)",
                      sizes["train_samples"], sizes["test_samples"], sizes["val_samples"],
                      "literal: same; better: 27 -> 128 -> 128 -> 12 (all four sub-pixels)"],
}, index=["images", "train samples", "test samples", "validation samples", "network"]))

# %% [markdown]
# The ten photographs at working size, and the two held out:

# %%
fig = figures.gallery(torch.cat([feats["hr"], feats["holdout"]]),
                      tuple(feats["names"]) + tuple(f"held out: {n}" for n in feats["holdout_names"]), per_row=6)

# %% [markdown]
# ## The flaw of the literal design, and the fix
#
# The four original pixels under one low-resolution pixel have *the same* 27 inputs, so the
# literal 27 → 3 network must give them the same colour: at best it learns a cleaned-up copy of
# the low-resolution pixel, which looks like nearest-neighbour upscaling. The better network
# (`subpixel`) takes the same 27 inputs once and predicts all four sub-pixels (27 → 12), so it
# can put an edge *between* them; it also predicts the offset from the centre pixel (a residual),
# which makes the easy part of the job free.
#
# ## Training curves

# %%
fig = figures.loss_curves(histories)

# %%
table(pd.DataFrame({v: {k: m[k] for k in ("parameters", "best_epoch", "test_loss", "train_seconds")}
                    for v, m in train_metrics.items()}).T, order=["literal", "subpixel", "subpixel4x", "refine"])

# %% [markdown]
# The test loss is the mean squared error per colour value (pixels in [0, 1]) on the test
# positions; it is comparable between variants because both average over pixels and channels.
#
# ## PSNR and SSIM against the originals
#
# PSNR (dB, higher is better) and SSIM (1 is identical) come from the full rebuilt images.
# *train images* are the ten photographs (70 % of their positions were seen in training);
# *holdout* are photographs the networks never saw.

# %%
scores = pd.DataFrame({(f, m): v for f, ms in summary.items() for m, v in ms.items()}).T
scores.index.names = ["factor", "method"]
order = [(f, m) for f in summary for m in (*figures.INTERPOLATIONS, *sorted(summary[f]))]   # interpolations first
table(scores[["holdout_psnr", "holdout_ssim", "psnr", "ssim"]], order=order)

# %%
fig = figures.psnr_bars(summary)

# %%
display(Markdown("At 2×: " + compare(summary, "x2", "subpixel", "bicubic") + " on the hold-out PSNR; "
                 + compare(summary, "x2", "subpixel", "bicubic", "holdout_ssim") + " on SSIM; and "
                 + literal_verdict(summary) + "."))

# %% [markdown]
# ## Beating bicubic on both measures: `refine`
#
# The 27 → 12 network beats bicubic on the held-out PSNR only narrowly, and can lose on SSIM: ten
# photographs of very different kinds (a colour wheel, a retina, a logo) teach it colours more than
# edges. `refine` keeps the idea — a small MLP on a low-resolution neighbourhood — and changes three
# things: it sees one colour channel at a time (one network shared by R, G and B, so three times the
# rows and nothing colour-specific to overfit), a 5×5 neighbourhood instead of 3×3, and it predicts
# a *correction to bicubic interpolation* of the four sub-pixels instead of the pixels themselves (it
# starts at bicubic's quality and only has to learn what bicubic gets wrong). Each training patch is
# also flipped or transposed at random, which is exact for these features (box downsampling and
# bicubic interpolation commute with flips) and gives eight times the distinct patches.

# %%
if "refine" in summary["x2"]:
    display(Markdown("At 2× on the held-out photographs: " + compare(summary, "x2", "refine", "bicubic")
                     + " on PSNR, and " + compare(summary, "x2", "refine", "bicubic", "holdout_ssim") + " on SSIM."))

# %% [markdown]
# ## Rebuilt images (2×): original, low resolution, bicubic, the networks, error maps

# %%
shown = ("bicubic", *[m for m in ("literal", "subpixel", "refine") if m in summary["x2"]])
errors = ("bicubic", shown[-1])
if len(feats["holdout_names"]):
    fig = figures.comparison_grid(feats["holdout"], upscaled["holdout"][2], tuple(feats["holdout_names"]), 2,
                                  shown, errors)

# %%
fig = figures.comparison_grid(feats["hr"][:4], {m: t[:4] for m, t in upscaled["train_images"][2].items()},
                              tuple(feats["names"][:4]), 2, shown, errors)

# %% [markdown]
# ## 4×: the 2× network twice, or a network trained for 4×?

# %%
display(Markdown(answer_4x(summary, "subpixel", "subpixel4x") + " "
                 + answer_4x(summary, "subpixel", "subpixel4x", "psnr")))

# %%
if len(feats["holdout_names"]):
    fig = figures.comparison_grid(feats["holdout"], upscaled["holdout"][4], tuple(feats["holdout_names"]), 4,
                                  ("bicubic", "subpixel x2 twice", "subpixel4x"), ("bicubic", "subpixel4x"))

# %% [markdown]
# **Reading it.** The 2× network applied twice has been trained on four times as many samples
# (one per low-resolution pixel at half size, against one per pixel at quarter size) and each of
# its steps only has to invent half the detail; but its second step sees its own slightly blurred
# output rather than a true half-size image, so errors compound. The direct 4× network must guess
# sixteen pixels from a 3×3 neighbourhood that covers a 12×12 area of the original. The numbers
# above say which effect wins on these images; both stay close to bicubic, because a 3×3
# neighbourhood carries little information about detail at 4×.

# %% [markdown]
# ## The seed's numbers beside ours
#
# The same rows as the scorecard of every experiment, [`index.html`](index.html).

# %%
from pipeline.superres import seed as seed_numbers
from pipeline.report import seed_beside_ours

seed_beside_ours(seed_numbers, "superres", root, scale=scale)
