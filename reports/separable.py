# %% [markdown]
# # `separable` — two separable classes, a softmax MLP, and a loss of exactly zero
#
# Seed 000, question 1: 200 points from `make_blobs` around (−1, −1) and (1, 1) with standard
# deviation 0.5; an MLP with one ReLU hidden layer and a 2-way softmax, binary cross-entropy,
# Adam, 200 epochs. The question: can the loss become exactly zero? The seed report only plotted
# the training run; this report answers the question by computation.

# %% tags=["parameters"]
scale = "full"
root = "."

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from pipeline.report import LABELS, table

root = Path(root)
train = json.loads((root / "metrics/separable/train.json").read_text())
zero = json.loads((root / "metrics/separable/zero_loss.json").read_text())
history = pd.read_csv(root / "plots/separable/history.csv")
if scale != "full":
    display(Markdown(f"> **Scale: {scale}.** A few epochs only: the training numbers are not meaningful; "
                     "the zero-loss analysis is exact at any scale."))

# %% [markdown]
# ## The training run

# %%
display(Image(filename=str(root / "figures/separable/loss.png")))
display(Image(filename=str(root / "figures/separable/boundary.png")))
table(pd.Series(train).to_frame("value"), order=["val_accuracy", "final_train_loss", "final_val_loss", "min_train_loss",
                                              "best_epoch", "parameters"],
      labels={"value": "after training"}).format_index(lambda k: LABELS.get(k, k), axis=0)

# %% [markdown]
# ## Can the loss be exactly zero?
#
# **In exact arithmetic, no.** For one sample with logit margin m = z_true − z_other, the
# softmax gives p_true = 1 / (1 + e^−m), which is strictly below 1 for every finite m, and the
# other output e^−m / (1 + e^−m) is strictly above 0. Binary cross-entropy over the two outputs is
# therefore log(1 + e^−m) > 0: it only *tends* to zero as the margin grows without bound, and the
# optimiser keeps growing the weights to chase it.
#
# **In floating point, yes — by rounding.** Once e^−m is smaller than half the spacing of numbers
# next to 1.0, p_true rounds to exactly 1.0 and log(1.0) = 0. Where that happens depends on the
# precision *and* on how the loss is computed: torch's `BCELoss` also scores the other output
# with log1p(−q) ≈ −q, which stays non-zero until q = e^−m underflows to 0. The margins below
# were found by scanning m in steps of 0.001 with the real torch functions:

# %%
margins = pd.DataFrame(zero["margins"]).T
margins["rounding margin float32 (24 ln 2)"] = zero["rounding_margin"]["float32"]
margins["rounding margin float64 (53 ln 2)"] = zero["rounding_margin"]["float64"]
margins.columns = ["loss is 0 from margin, float32", "float64", "rounding margin float32 (24 ln 2)",
                   "float64 (53 ln 2)"]
table(margins.round(3), digits=6)

# %% [markdown]
# ## Four points and explicit weights whose float32 loss is exactly 0

# %%
fp = zero["four_points"]
display(Markdown(
    f"Points {fp['x']} with classes {fp['y']}. Hidden units ReLU(−x1 − x2) and ReLU(x1 + x2); the output "
    f"gives each class {fp['scale']:g} times its own unit, so the logit margins are {fp['margins']}. "
    f"Loss in **float32: {fp['loss_float32']!r}** (exactly zero); in float64: {fp['loss_float64']:.3g}; "
    f"exactly: {fp['loss_exact']:.3g}. Accuracy {fp['accuracy_float32']:.0%} in both. The float64 loss is "
    f"{fp['loss_float64'] / fp['loss_exact']:.2f} × the exact one, not a rounding slip: e^−m (below 1e-52 at "
    "these margins) is far below half the spacing of float64 numbers next to 1.0 (1.1e-16), so "
    "p_true rounds to 1 and the −log p_true half of BCELoss is 0 in float64 too; only the other output's "
    "−log(1 − q) ≈ q = e^−m survives, and BCELoss averages it over the two outputs."))

# %% [markdown]
# So a zero loss printed during training says the margin passed a rounding threshold, not that
# the model is perfect; and a loss that keeps shrinking on separable data says the weights keep
# growing — which is what weight decay or early stopping is there to stop.

# %% [markdown]
# ## The seed's numbers beside ours
#
# The same rows as the scorecard of every experiment, [`index.html`](index.html).

# %%
from pipeline.separable import seed as seed_numbers
from pipeline.report import seed_beside_ours

seed_beside_ours(seed_numbers, "separable", root, scale=scale)
