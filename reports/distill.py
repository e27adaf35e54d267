# %% [markdown]
# # `distill` — knowledge distillation from ResNet-50 to MobileNetV2 on CIFAR-10
#
# Seed 002, practical 3. Four networks on CIFAR-10's 32×32 colour images, and a fifth of ours:
#
# - **(a) teacher** — ImageNet-pretrained ResNet-50, its last layer replaced by a 10-class one and
#   only that layer trained (the backbone frozen; its features are computed once, `distill_features`,
#   for a few augmented views of every training image; standardised; scored on each test image and
#   its mirror);
# - **(b) student** — MobileNetV2 from scratch, trained on the labels *and* (a)'s softened
#   outputs: α·CE(y, σ(z_s)) + (1−α)·τ²·KL(σ(z_t/τ) ‖ σ(z_s/τ)), with α and τ chosen by a grid of short runs;
# - **(c) scratch** — the same MobileNetV2, views and schedule, labels only;
# - **(d) finetune** — the whole ResNet-50 trained, its backbone at a lower learning rate;
# - **(e) student of (d)** — (b) again, same views, schedule, α and τ, taught by (d) instead of (a):
#   the seed's question about (b) and (c) asked from both sides, a weak teacher and a strong one.

# %% tags=["parameters"]
scale = "full"
root = "."
alpha = [0.1, 0.5, 0.9]
tau = [2.0, 4.0, 8.0]
margin = 1.0

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, Markdown, display

from pipeline.report import show

root = Path(root)
from pipeline.distill.recipe import Grid, best_pair, standard_error

RUNS = {"teacher": "(a) ResNet-50, last layer only", "student": "(b) MobileNetV2, distilled from (a)",
        "scratch": "(c) MobileNetV2, no teacher", "finetune": "(d) ResNet-50, fine-tuned",
        "student_d": "(e) MobileNetV2, distilled from (d)"}
metrics = {k: json.loads((root / f"metrics/distill/{k}.json").read_text()) for k in RUNS}
history = {k: pd.read_csv(root / f"plots/distill/{k}.csv") for k in RUNS}
grid_rows = [json.loads(p.read_text()) for p in sorted((root / "metrics/distill/grid").glob("*.json"))]
chosen_alpha, chosen_tau, picked = best_pair(grid_rows, Grid(alpha=tuple(alpha), tau=tuple(tau), margin=margin))
grid = pd.DataFrame(picked)
if scale != "full":
    display(Markdown(f"> **Scale: {scale}.** A few hundred images, small input size and at most two epochs: "
                     "the numbers show the pipeline works, not what the networks reach."))

# %% [markdown]
# ## The five results side by side
#
# Test accuracy, macro precision and recall on CIFAR-10's 10,000 test images (the best epoch of
# each run chosen on 5,000 held-out training images), the parameter count, training time and
# inference throughput (images per second on the machine that ran the stage; the teachers at
# their input resolution).

# %%
AIM = {"teacher": "≥ 90 % (linear probe at 224² ≈ 93.6 %)", "student": "above (c)",
       "scratch": "≥ 92 % (94.4 % with a long schedule)", "finetune": "≥ 96 % (≈ 97.5 %)",
       "student_d": "above (c) and (b)"}
table = pd.DataFrame([{
    "run": RUNS[k], "test accuracy %": 100 * m["test_accuracy"], "macro precision %": 100 * m["test_macro_precision"],
    "macro recall %": 100 * m["test_macro_recall"], "parameters": f"{m['parameters']:,}",
    "trained": f"{m.get('trained_parameters', m['parameters']):,}", "best epoch": f"{m['best_epoch']} / {m['epochs']}",
    "train s": m["train_seconds"], "images/s": f"{m['inference_samples_per_second']:,}", "aim": AIM[k]}
    for k, m in metrics.items()]).set_index("run")
display(table.round(2))

# %%
acc = {k: 100 * m["test_accuracy"] for k, m in metrics.items()}
t, s = metrics["teacher"], metrics["student"]
n_test = len(pd.read_csv(root / "plots/distill/student_confusion.csv"))
noise = 100 * 2 ** 0.5 * standard_error(s["test_accuracy"], n_test)     # of a difference of two runs' accuracies


def versus(a: str, b: str) -> str:
    """'+x.xx points (a % vs b %)', said to be within noise when it is."""
    d = acc[a] - acc[b]
    within = " — within one standard error of a difference, so no difference at all" if abs(d) < noise else ""
    return f"**{d:+.2f} points** ({acc[a]:.2f} % vs {acc[b]:.2f} %){within}"


display(Markdown(
    f"Both students were distilled with **α = {s['alpha']:g}, τ = {s['tau']:g}** (the grid's choice, below). "
    f"Against the same network trained without a teacher, the student of (a) is {versus('student', 'scratch')} "
    f"and the student of (d) {versus('student_d', 'scratch')}. The fine-tuned ResNet-50 is "
    f"{acc['finetune'] - acc['teacher']:+.2f} points from the linear probe. A student has "
    f"{t['parameters'] / s['parameters']:.1f}× fewer parameters than the teacher and runs "
    f"{s['inference_samples_per_second'] / max(t['inference_samples_per_second'], 1):.1f}× as many images per second "
    f"({s['inference_samples_per_second']:,} at 32×32 vs {t['inference_samples_per_second']:,} at "
    f"{t['resize']}×{t['resize']}). One standard error of a difference between two runs here is {noise:.2f} points "
    f"({n_test:,} test images)."))

# %% [markdown]
# ## Training curves
#
# Validation accuracy per epoch (the held-out training images; the best epoch is kept), and
# the test accuracy the same epochs reach, watched for these curves only.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for k, h in history.items():
    axes[0].plot(h["epoch"], 100 * h["val_accuracy"], label=RUNS[k])
    axes[1].plot(h["epoch"], h["val_loss"], label=RUNS[k])
axes[0].set(xlabel="epoch", ylabel="validation accuracy %")
axes[1].set(xlabel="epoch", ylabel="validation cross-entropy")
axes[0].legend(fontsize=8)
fig.tight_layout()
show(fig)

# %% [markdown]
# ## Choosing α and τ
#
# Every pair of `distill.grid.alpha` × `distill.grid.tau` is one short run (`distill_grid@α-τ`, the
# student's schedule, cosine included, cut to `distill.grid.epochs` epochs). A short run favours the
# pair that learns fastest, and that is the one leaning on the teacher most (small α): so the pairs
# within `distill.grid.margin` binomial standard errors of the best validation accuracy count as
# tied, and of those the largest α wins (then the smallest τ). Both full-length students use the
# chosen pair; test accuracy played no part.

# %%
pivot = grid.pivot_table(index="alpha", columns="tau", values="val_accuracy") * 100
display(pivot.round(2).rename(index="{:g}".format, columns="{:g}".format).rename_axis(index="α", columns="τ"))
fig, ax = plt.subplots(figsize=(1.4 + 1.1 * len(pivot.columns), 1.2 + 0.8 * len(pivot.index)))
im = ax.imshow(pivot.values, cmap="viridis")
ax.set(xticks=range(len(pivot.columns)), xticklabels=[f"{v:g}" for v in pivot.columns], xlabel="τ",
       yticks=range(len(pivot.index)), yticklabels=[f"{v:g}" for v in pivot.index], ylabel="α",
       title="validation accuracy % of the grid runs")
for (i, j), v in np.ndenumerate(pivot.values):
    ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="white" if v < np.nanmean(pivot.values) else "black")
fig.colorbar(im, ax=ax)
show(fig)
top = grid.loc[grid["val_accuracy"].idxmax()]
chosen = grid.loc[grid["chosen"]].iloc[0]
n_val = int(top.get("val_samples", 0) or 0)
band = 100 * margin * standard_error(top["val_accuracy"], n_val) if n_val else 0.0
display(grid.assign(**{"α": grid["alpha"].map("{:g}".format), "τ": grid["tau"].map("{:g}".format),
                       "val accuracy %": (100 * grid["val_accuracy"]).round(2), "within the band": grid["tied"]})[
    ["α", "τ", "val accuracy %", "within the band", "chosen"]].set_index(["α", "τ"]))
if (chosen["alpha"], chosen["tau"]) == (top["alpha"], top["tau"]):
    why = (f"it has the best validation accuracy ({100 * top['val_accuracy']:.2f} %), and no pair with a larger α "
           f"is within the band of {band:.2f} points")
else:
    why = (f"α = {top['alpha']:g}, τ = {top['tau']:g} scored highest ({100 * top['val_accuracy']:.2f} %), but "
           f"α = {chosen['alpha']:g}, τ = {chosen['tau']:g} ({100 * chosen['val_accuracy']:.2f} %) is within "
           f"{margin:g} standard error ({band:.2f} points on {n_val:,} validation images) of it and weighs the "
           f"labels more")
display(Markdown(f"Chosen: **α = {chosen['alpha']:g}, τ = {chosen['tau']:g}**, after {int(chosen['epochs'])} "
                 f"epochs each: {why}. Worst pair {100 * grid['val_accuracy'].min():.2f} %."))

# %% [markdown]
# ## Why τ² multiplies the soft term
#
# With temperature τ the student's softened probabilities are q = σ(z_s/τ) and the teacher's
# p = σ(z_t/τ). The gradient of KL(p ‖ q) with respect to a student logit is (q_i − p_i)/τ, and
# when the logits are small against τ, q_i − p_i itself is about (z_s,i − z_t,i)/(Nτ) (N classes),
# so the whole gradient shrinks like 1/τ². Multiplying the term by τ² gives it back its size:
# the balance set by α then means the same thing at τ = 2 and at τ = 8, and changing τ changes *what*
# the student learns from the teacher (how much of the small probabilities — "this cat looks a bit
# like a dog" — it sees), not how loudly the teacher speaks. `tests/test_distill.py` checks the
# loss against a hand computation, τ² included.

# %% [markdown]
# ## Confusion matrices
#
# Rows are the true classes, each summing to 1.

# %%
for k in RUNS:
    display(Image(filename=str(root / f"figures/distill/confusion_{k}.png")))

# %% [markdown]
# ## What the differences mean
#
# - **(a) vs (d):** the linear probe can only re-weight features learned for ImageNet; fine-tuning lets
#   every layer adapt to CIFAR-10's small, upsampled images, which is worth several points — at the cost of
#   training 23.5 M parameters instead of 20 thousand, and it needs a lower backbone learning rate so
#   that the first steps (with a random head) do not wreck the pretrained features.
# - **(b)/(c) vs (a)/(d):** MobileNetV2 is about a tenth of ResNet-50's size and works at 32×32 instead
#   of the teacher's resized input, so it answers many times faster — the point of distilling.
#
# **(b) vs (c)**, from this run's numbers (the same network, views and order; only the loss differs):

# %%
def explain() -> str:
    """Which way (b) vs (c) fell, and why, from the accuracies: the teacher's own accuracy against
    what the student reaches alone, and what the stronger teacher (d) did for (e)."""
    a, b, c, d, e = (acc[k] for k in ("teacher", "student", "scratch", "finetune", "student_d"))
    parts = []
    if a <= c:
        parts.append(f"Teacher (a) is no better than the student trained alone ({a:.2f} % vs {c:.2f} %): its soft "
                     "targets cannot pass on knowledge it lacks, and with weight 1 − α on them they pull the "
                     "student toward a weaker classifier.")
    else:
        parts.append(f"Teacher (a) is {a - c:.2f} points better than the student trained alone ({a:.2f} % vs "
                     f"{c:.2f} %), so its soft targets carry class similarities the labels do not.")
    if abs(b - c) < noise:
        parts.append(f"(b) and (c) are within noise ({b - c:+.2f} points): the teacher neither helped nor hurt measurably.")
    elif b > c:
        parts.append(f"(b) beats (c) by {b - c:.2f} points: the soft targets helped, as a richer signal per image and as "
                     "a data-dependent label smoothing.")
    else:
        parts.append(f"(b) trails (c) by {c - b:.2f} points: the student copied a teacher that is weaker than what its "
                     "own capacity reaches from the labels.")
    if e - b >= noise:
        parts.append(f"The stronger teacher (d, {d:.2f} %) lifts its student (e) {e - b:.2f} points above (b) and "
                     f"{e - c:+.2f} against (c): what the student gets from distillation follows the teacher's accuracy, "
                     "up to the student's capacity.")
    elif abs(e - b) < noise:
        parts.append(f"The stronger teacher (d, {d:.2f} %) gave its student (e) no measurable gain over (b) "
                     f"({e - b:+.2f} points): here the student's capacity, not the teacher, is the limit.")
    else:
        parts.append(f"The stronger teacher (d, {d:.2f} %) nonetheless left its student (e) {b - e:.2f} points below "
                     "(b): (d)'s confident logits carry less class-similarity information than (a)'s softer ones.")
    return " ".join(parts)


display(Markdown(explain()))
rows = [(RUNS[k], f"{acc[k]:.2f} %") for k in RUNS]
display(Markdown("Measured here: " + "; ".join(f"{r} {a}" for r, a in rows) + "."))

# %% [markdown]
# ## The seed's numbers beside ours
#
# The same rows as the scorecard of every experiment, [`index.html`](index.html).

# %%
from pipeline.distill import seed as seed_numbers
from pipeline.report import seed_beside_ours

seed_beside_ours(seed_numbers, "distill", root, scale=scale)
