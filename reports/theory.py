# %% [markdown]
# # `theory` — the reports' theory answers, checked by computation
#
# Every answer below is computed by the `theory_compute` stage with real torch modules,
# autograd or `torch.optim`, and shown beside what the seed report wrote. Where the seed only
# asked the question (seed 002's theory set has no written answers), our computed answer stands
# alone. Verdicts are read from `metrics/theory/checks.json`.

# %% tags=["parameters"]
scale = "full"
root = "."

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

root = Path(root)
tables = {p.stem: pd.read_csv(p) for p in sorted((root / "data/eval/theory").glob("*.csv"))}
checks = json.loads((root / "metrics/theory/checks.json").read_text())
fig = lambda name: display(Image(filename=str(root / "figures/theory" / name)))  # noqa: E731
mark = lambda ok: "agrees ✔" if ok else "disagrees ✘"  # noqa: E731
if scale != "full":
    display(Markdown(f"> **Scale: {scale}.** Smaller grids and shorter runs; the exact items are unchanged."))

# %% [markdown]
# ## 1. The 11-layer CNN of seed 001 (shapes, parameters, receptive fields)
#
# The question is lost; the answers fit a 134×134×3 input, no padding, and a dilation of 2 in
# L4 (a 3×3 kernel takes 31 to 27 only with dilation 2). Receptive field = the input window one
# output sees (size × size), jump = input pixels between neighbouring outputs.

# %%
t = tables["seed001_layers"]
t[["layer", "output", "seed output", "parameters", "seed parameters", "receptive_field", "jump",
   "seed receptive field"]].fillna("")

# %%
display(Markdown(
    f"Parameters: every row {mark(checks['cnn_parameters_agree_with_seed'])} with the seed. "
    f"Output shapes: {checks['cnn_output_rows_disagreeing_with_seed']} rows disagree — the seed's "
    "62×62×62, 25×25×25 and 12×12×12 repeat the side length where the channel count belongs "
    "(64, 128, 128). Receptive fields: the seed wrote 49, 1225 and 4900 for L1–L3; these are "
    "*areas* of 7², 35² and 70² pixels, and only the first is right: stacking a 5×5 stride-2 conv "
    "on a 7×7 conv gives 7 + 4·1 = 11 pixels, and the 2×2 pooling after it "
    f"11 + 1·2 = {checks['cnn_receptive_field_L3']}, not 35 or 70."))

# %% [markdown]
# ## 2. The table network of seed 002 on 32×32×3 (output size, parameters, BN)

# %%
tables["seed002_layers"][["layer", "output", "parameters", "buffers"]]

# %%
display(Markdown(
    f"Total {checks['table_net_parameters']} learnable parameters. Batch normalisation over 8 "
    f"channels learns γ and β per channel ({checks['table_net_bn_learnable']} parameters) and keeps "
    f"running mean and variance per channel plus a batch counter ({checks['table_net_bn_buffers']} "
    "buffers), which are updated by the forward pass, not by gradients. The seed gives the question only."))

# %% [markdown]
# ## 3. Dilated convolution (seed 002 Q2)
#
# With stride 1 and no padding, output row *i* after three k×k layers of dilation d sees input
# rows **i … i + 3d(k−1)** (columns alike): each layer widens the window by d(k−1). One layer of
# m filters k×k×3 with dilation d on N×N×3 gives **(N − d(k−1)) × (N − d(k−1)) × m**. Checked
# against torch on a grid: the output size, the rows that receive gradient from output (i, j),
# and a perturbation test (changing an input just outside the window leaves the output as it
# was; at its edge it does not).

# %%
g = tables["dilation_grid"]
display(Markdown(f"{len(g)} cases; formulas hold in all: {mark(checks['dilation_formulas_hold'])}."))
g.head(12)

# %% [markdown]
# ## 4. Gradient through global max pooling (seed 001 Q3)
#
# Only the winning position of the max receives gradient, so dLoss/dw is the input patch under
# the winner and dLoss/db = 1. The seed's input figure is lost; an input whose winning patch is
# [[−1, 5], [3, 0]] (output 10, as the seed says) reproduces its answer with autograd.

# %%
display(Markdown(f"Seed: dLoss/dw = (−1, 5, 3, 0), dLoss/db = 1. Autograd: "
                 f"{mark(checks['gmp_gradients_agree_with_seed'])}."))

# %% [markdown]
# ## 5. Two steps of SGD with momentum (seed 001 Q4)
#
# y = a·x1² + b·x2² + c·x1·x2 + d, loss (t − y)², samples (1, −1, 10) then (2, 0, 13), start
# a = 1, b = −1, c = −1, d = 1, learning rate 0.1, momentum 0.9, with `torch.optim.SGD`
# (v ← 0.9 v + g, p ← p − 0.1 v). After the first step y is already 13 on the second sample, so the
# second gradient is zero and the second step is momentum alone: 0.9 × the first.

# %%
display(Markdown(f"Seed: a = 4.04, b = 2.04, c = −4.04, d = 4.04 — {mark(checks['momentum_agrees_with_seed'])}; "
                 f"torch.optim equals the hand recurrence: {mark(checks['momentum_torch_equals_hand'])}."))
tables["momentum_steps"]

# %% [markdown]
# ## 6. The 1-D convolutional net (seed 002 Q4)
#
# With err = ŷ − y: ∂L/∂w_i = err·v_i, ∂L/∂a = err, δ_i = ∂L/∂v_i = err·w_i; each δ flows to
# whichever of its two z's won the max (nothing if 0 won): α_1 = δ_1[z_1 won v_1],
# α_2 = δ_1[z_2 won v_1] + δ_2[z_2 won v_2], α_3 = δ_2[z_3 won v_2]. In general
# ∂L/∂k_i = Σ_j α_j x_{i+j−1} and ∂L/∂b = Σ_j α_j.

# %%
display(Markdown(f"Largest difference from autograd over random draws (float64): "
                 f"{checks['conv1d_closed_form_max_error']:.2e}."))

# %% [markdown]
# ## 7. ReLU networks are piecewise linear (seed 000 Q3)
#
# The seed's construction: for each knot x_j, four ReLU units with weight 1/h and biases
# −x_{j−1}/h, −x_j/h, −x_{j+1}/h, −x_j/h, combined +1, −1, +1, −1, make the hat t_j; Σ f(x_j) t_j
# interpolates f linearly between knots.

# %%
fig("hat_approximation.png")
display(Markdown(f"Error at the knots: {checks['hat_max_error_at_knots']:.1e}. Second differences on a fine "
                 f"grid vanish everywhere except at the knots: {mark(checks['hat_kinks_only_at_knots'])}. "
                 "A random ReLU or PReLU network is also linear between a finite number of kinks; "
                 "counted along a line through input space:"))
tables["linear_regions"]

# %% [markdown]
# ## 8. Symmetry, and breaking it (seed 000 Q4)
#
# The seed's answer speaks of symmetry in architecture, data and algorithms. The symmetry that
# must be broken is narrower: hidden units that start with identical weights receive identical
# gradients and stay identical for ever, so a layer of n units computes one feature. Measured as
# the largest distance between two hidden units' weight vectors:

# %%
tables["symmetry"]

# %%
display(Markdown(
    f"Constant initialisation: spread {checks['symmetry_constant_spread']:.3g} after training (the units never "
    f"differ, up to the last bit or so of float32 rounding, which a vectorised kernel may apply to one unit's "
    f"column differently). Random initialisation: {checks['symmetry_random_spread']:.3g}. Constant initialisation with "
    f"dropout: {checks['symmetry_dropout_spread']:.3g} — dropout's random masks break the tie too."))

# %% [markdown]
# ## 9. Activations and their derivatives (seed 002 Q1b)

# %%
fig("activations.png")
tables["activations"]

# %% [markdown]
# ReLU has slope 0 for negative inputs (units can die); LeakyReLU keeps a small fixed slope, PReLU
# learns it, RReLU draws it at random while training (a regulariser) and uses the mean at test
# time. ELU and SELU saturate smoothly to −α (SELU is scaled so that activations keep mean 0 and
# variance 1 — see its mean and std on N(0, 1) above). GELU weights x by Φ(x): smooth and
# non-monotonic just below zero.
#
# ## 10. nRMSE and rRMSE beside MSE (seed 002 Q1a)
#
# nRMSE = RMSE / (max y − min y); rRMSE = RMSE / mean y. Multiplying targets and predictions by
# 10 multiplies MSE by 100 and RMSE by 10, and leaves both normalised errors unchanged; adding
# 100 leaves MSE and nRMSE unchanged but shrinks rRMSE, which depends on where zero is.

# %%
tables["losses"]

# %% [markdown]
# ## 11. Dropout, Dropout2d, Dropout3d (seed 002 Q1c)
#
# On a tensor of ones with p = 0.5: Dropout zeroes single elements; Dropout2d zeroes whole
# channels (all H×W of a feature map), Dropout3d whole volumes (D×H×W); the survivors are scaled
# by 1/(1−p) = 2, and in eval mode all three are the identity. Dropping whole maps matters for
# convolutions, whose neighbouring activations are strongly correlated.

# %%
fig("dropout.png")
tables["dropout"]

# %% [markdown]
# ## 12. Residual connections and vanishing gradients (seed 004 Q3)
#
# The seed's answer, in words: skip connections let gradient information pass across layers by
# adding an earlier layer's output to a deeper one, so the signal survives in deep networks. The
# measurement below agrees, and shows by how much: a 30-block net, the same weights with and
# without skips.

# %%
fig("gradient_norms.png")
display(Markdown(
    "The gradient of the loss at each block's input, block 1 nearest the input. "
    f"First-block over last-block gradient norm: plain {checks['grad_norm_first_over_last_plain']:.1e}, "
    f"with skip connections {checks['grad_norm_first_over_last_residual']:.1e}. In the plain net each "
    "sigmoid multiplies the backward signal by at most 1/4, so it shrinks geometrically with depth; a skip "
    "connection adds the identity to each block's Jacobian, so the gradient reaches early layers "
    "undiminished."))

# %% [markdown]
# ## The seed's numbers beside ours
#
# The same rows as the scorecard of every experiment, [`index.html`](index.html).

# %%
from pipeline.theory import seed as seed_numbers
from pipeline.report import seed_beside_ours

seed_beside_ours(seed_numbers, "theory", root, scale=scale)
