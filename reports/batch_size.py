# %% [markdown]
# # `batch_size` — how the batch size shapes training, and training when a batch will not fit
#
# Seed 000, question 2: an MLP on MNIST trained with batch sizes 64, 256 and 1024; train and test
# loss and accuracy per batch size (the report's figures 7–8 said smaller batches converge faster
# per epoch). Then: samples so large that a batch of more than two runs out of memory — how to
# train without new hardware? The report answered "use a smaller batch". The answer measured here
# is **gradient accumulation**.

# %% tags=["parameters"]
scale = "full"
root = "."
dataset = "mnist"
sizes = [64, 256, 1024]

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from pipeline.batch_size import figures as mf
from pipeline.report import show

root = Path(root)
runs = [root / "plots/batch_size" / f"{size}.csv" for size in sorted(sizes)]
histories = {p.stem: pd.read_csv(p) for p in runs}
finals = {p.stem: json.loads((root / "metrics/batch_size" / f"{p.stem}.json").read_text()) for p in runs}
acc = json.loads((root / "metrics/batch_size/accumulation.json").read_text())
memory = pd.read_csv(root / "plots/batch_size/memory.csv")
display(Markdown(f"Dataset: **{dataset}** (`mnist.dataset`)."))
if scale != "full":
    display(Markdown(f"> **Scale: {scale}.** A small subset and two epochs: the numbers show the pipeline "
                     "works, not what the batch size does."))

# %% [markdown]
# ## One network, three batch sizes
#
# The same MLP (784 → 256 → 128 → 10, ReLU), the same Adam learning rate and the same number of
# epochs; only the batch size changes. Train figures are running means over each epoch as
# trained; test figures are measured after each epoch on the whole test set.

# %%
table = pd.DataFrame(finals).T[["test_accuracy", "test_loss", "train_accuracy", "steps", "train_seconds",
                                "samples_per_second"]]
table.index.name = "batch size"
table.style.format({"test_accuracy": "{:.2%}", "train_accuracy": "{:.2%}", "test_loss": "{:.4f}",
                    "steps": "{:.0f}", "train_seconds": "{:.1f}", "samples_per_second": "{:,.0f}"})

# %%
for x in ("epoch", "step", "elapsed_seconds"):
    display(Markdown(f"**Against {mf.X_LABELS[x]}**"))
    show(mf.batch_size_curves(histories, x))

# %%
first = {b: h["test_accuracy"].iloc[0] for b, h in histories.items()}
small, large = runs[0].stem, runs[-1].stem
step_small = histories[small].iloc[0]["step"]
same = histories[large][histories[large]["step"] <= step_small]
text = (f"After one epoch, test accuracy is {first[small]:.2%} with batch {small} ({step_small:.0f} steps) and "
        f"{first[large]:.2%} with batch {large} ({histories[large].iloc[0]['step']:.0f} steps): per epoch, batch "
        f"{small if first[small] >= first[large] else large} is ahead. ")
if len(same):
    reached = same["test_accuracy"].iloc[-1]
    text += (f"Per optimiser step: within {same['step'].iloc[-1]:.0f} steps batch {large} reached {reached:.2%}, "
             f"{'more' if reached > first[small] else 'less'} than batch {small} after its {step_small:.0f}. ")
text += (f"Per second, batch {large} trained at {finals[large]['samples_per_second']:,.0f} samples/s against "
         f"{finals[small]['samples_per_second']:,.0f} for batch {small}.")
display(Markdown(text))

# %% [markdown]
# **What the batch size depends on, and what it does.** The batch is bounded by memory (activations
# grow linearly with it) and chosen for throughput (bigger batches keep the hardware busy) and for
# optimisation: the gradient of a batch of B samples is an estimate whose noise falls like 1/√B.
# Small batches take many noisy steps per epoch and so make more progress *per epoch*; large
# batches take fewer, more accurate steps and make more progress *per step*, and on parallel
# hardware more per second. At a fixed learning rate a large batch under-trains per epoch (the
# rule of thumb is to scale the learning rate with the batch); the noise of small batches also
# acts as a regulariser. The curves above show each effect on this data.

# %% [markdown]
# ## When a batch of more than two does not fit: gradient accumulation
#
# The gradient of the mean loss over a batch is the mean of per-sample gradients, so it can be
# built in pieces: run the batch as micro-batches that fit, call `backward()` on each micro-batch's
# mean loss weighted by its share of the batch — the gradients add up in `.grad` — and take one
# optimiser step after the last. Only one micro-batch's activations are alive at a time, so the
# memory is the micro-batch's while the update is the large batch's. The training engine does this
# (`accumulate` in every training config); here, batch `B` as micro-batches of 2.

# %%
rows = []
for dtype in ("float32", "float64"):
    g, t = acc["gradient"][dtype], acc["training"][dtype]
    rows.append({"precision": dtype, "gradient: max |difference|": g["max_abs_difference"],
                 "gradient: relative": g["relative"], f"weights after {t['steps']} steps: max |difference|":
                 t["max_weight_difference"], "weights: relative": t["relative_weight_difference"]})
display(Markdown(f"Batch {acc['batch']} in one piece vs {acc['micro_batches_per_step']} micro-batches of "
                 f"{acc['micro_batch']} (same initial weights, same sample order), on {acc['device']}:"))
pd.DataFrame(rows).set_index("precision").style.format("{:.2e}")

# %%
t32, t64 = acc["training"]["float32"], acc["training"]["float64"]
g32, g64 = acc["gradient"]["float32"], acc["gradient"]["float64"]
display(Markdown(
    f"(a) The accumulated gradient equals the whole batch's to rounding: relative gap {g64['relative']:.0e} in "
    f"float64 and {g32['relative']:.0e} in float32 — the order of summation differs, nothing else.\n\n"
    f"(b) Training {t64['steps']} steps both ways in float64 ends at weights that agree to "
    f"{t64['relative_weight_difference']:.0e} (relative): the same training run. In float32 the mean weight "
    f"difference is {t32['mean_weight_difference']:.1e} and {t32['weights_differing_over_1e_4']:.1%} of the weights "
    f"differ by more than 10⁻⁴ (largest {t32['max_weight_difference']:.1e}). That is not accumulation "
    f"being inexact — float64 shows it is exact — but float32 training being sensitive to the order of "
    f"summation: a rounding difference of about 10⁻⁷ can push a pre-activation across zero and switch a ReLU "
    f"for one sample, which changes that step by a whole sample's contribution, and from there the runs drift "
    f"apart (with SGD as with Adam), as two GPU runs with non-deterministic kernels do. They are equally good "
    f"runs: test accuracy {t32['whole_test_accuracy']:.2%} whole vs "
    f"{t32['accumulated_test_accuracy']:.2%} accumulated (float64: {t64['whole_test_accuracy']:.2%} vs "
    f"{t64['accumulated_test_accuracy']:.2%})."))

# %% [markdown]
# (c) Memory. What grows with the batch is the activations autograd keeps for the backward pass;
# weights, gradients and optimiser state do not change with it. The table counts, for one
# optimiser step, the largest total of distinct tensors saved for backward at any time (parameters
# excluded), measured with saved-tensor hooks — the same on every device. On a GPU it also shows
# CUDA's peak allocation over the step (`torch.cuda.max_memory_allocated`); a CPU has no
# comparable allocator peak, so on a CPU only the saved activations are reported.

# %%
display(Markdown(f"Measured as: {acc['memory_measure']}. Fixed for every batch size: weights "
                 f"{acc['fixed_bytes']['weights'] / 1e6:.2f} MB, gradients {acc['fixed_bytes']['gradients'] / 1e6:.2f} MB, "
                 f"Adam state {acc['fixed_bytes']['adam_state'] / 1e6:.2f} MB ({acc['parameters']:,} parameters)."))
show(mf.memory_bars(memory))
shown = memory.set_index("batch") / 1e6
shown.columns = [c.replace("_bytes", " (MB)").replace("_", " ") for c in shown.columns]
shown

# %% [markdown]
# The answer to the question, then: keep the effective batch and shrink what is resident. With
# accumulation, a step over 2k samples needs the activations of 2 samples; the price is time
# (k sequential forward/backward passes instead of one parallel pass), not accuracy. Layers that
# use batch statistics (batch normalisation) see micro-batches of 2, so they need care (group or
# layer normalisation, or frozen statistics). Activation checkpointing trades compute for memory
# within one sample and combines with accumulation.

# %% [markdown]
# ## The seed's numbers beside ours
#
# The same rows as the scorecard of every experiment, [`index.html`](index.html).

# %%
from pipeline.batch_size import seed as seed_numbers
from pipeline.report import seed_beside_ours

seed_beside_ours(seed_numbers, "batch_size", root, scale=scale, **{"mnist.dataset": dataset})
