# %% [markdown]
# # `autoencoder` — an autoencoder's 30-d codes, and a classifier on the codes
#
# Seed 003: MNIST with `ToTensor` + `Normalize(0, 1)`, batches of 100; an autoencoder
# 784 → 500 → 200 → 100 → 30 → 100 → 200 → 500 → 784 (ReLU between layers, sigmoid output), MSE,
# Adam (lr 10⁻³, weight decay 10⁻⁵), 10 epochs; then a classifier 30 → 20 → 15 → 10 on the codes
# with cross-entropy, 10 epochs; the report's test accuracy was 93 %. Its classifier ended in a
# Softmax layer *before* `CrossEntropyLoss`: the `literal` variant keeps that, `logits` is correct.

# %% tags=["parameters"]
scale = "full"
root = "."
dataset = "mnist"

# %%
import json
from pathlib import Path

import pandas as pd
import torch
from IPython.display import Image, Markdown, display

from pipeline.autoencoder import figures as mf
from pipeline.autoencoder import model as ae
from pipeline.autoencoder import seed as seed_report
from pipeline.report import show

root = Path(root)
figs = root / "figures/autoencoder"
ae_metrics = json.loads((root / "metrics/autoencoder/autoencoder.json").read_text())
history = pd.read_csv(root / "plots/autoencoder/autoencoder.csv")
clf = {v: json.loads((root / f"metrics/autoencoder/classifier_{v}.json").read_text()) for v in ae.VARIANTS}
clf_hist = {v: pd.read_csv(root / f"plots/autoencoder/classifier_{v}.csv") for v in ae.VARIANTS}
per_batch = {v: torch.tensor(pd.read_csv(root / f"plots/autoencoder/batch_accuracy_{v}.csv")["accuracy"].values)
             for v in ae.VARIANTS}
display(Markdown(f"Dataset: **{dataset}** (`mnist.dataset`)."))
if scale != "full":
    display(Markdown(f"> **Scale: {scale}.** A small subset and two epochs: the numbers show the pipeline "
                     "works, not what the networks reach."))

# %% [markdown]
# ## The data
#
# `Normalize(0, 1)` subtracts 0 and divides by 1: it leaves `ToTensor`'s [0, 1] pixels as they
# are (which the sigmoid output needs). The class histogram of the training set and five random
# training images:

# %%
display(Image(filename=str(figs / "train/class_histogram.png")))
display(Image(filename=str(figs / "train/random_images.png")))

# %% [markdown]
# ## The autoencoder

# %%
display(Markdown(
    f"{ae_metrics['parameters']:,} parameters (by hand: {ae.autoencoder_parameters((500, 200, 100, 30)):,} "
    f"for the report's sizes). After the last epoch: train MSE {ae_metrics['train_loss']:.4f}, test MSE "
    f"{ae_metrics['test_loss']:.4f}; {ae_metrics['train_seconds']:.0f} s of training."))
losses = history[["epoch", "train_loss", "test_loss"]].copy()
seed = pd.Series(seed_report.SEED_EPOCH_LOSSES, index=range(1, len(seed_report.SEED_EPOCH_LOSSES) + 1))
losses["report"] = losses["epoch"].map(seed)
display(losses.set_index("epoch").style.format("{:.4f}", na_rep="–"))
display(Image(filename=str(figs / "train/epoch_losses.png")))

# %% [markdown]
# The report printed one number per epoch without showing the loop that computed it (a print
# after the loop usually gives the epoch's last batch); ours is the mean over all the epoch's
# batches, and the test loss is over all test images.
#
# Inputs (top row) and their reconstructions after the chosen epochs — the report showed epochs
# 1, 5 and 9; the blur fades as training goes on:

# %%
display(Image(filename=str(figs / "train/reconstructions.png")))

# %% [markdown]
# ## Classifying the 30-d codes

# %%
rows = {v: {"test accuracy": m["test_accuracy"], "balanced accuracy": m["test_balanced_accuracy"],
            "macro precision": m["test_macro_precision"], "macro recall": m["test_macro_recall"],
            "test loss": m["test_loss"], "worst batch": m["batch_accuracy_min"], "best batch": m["batch_accuracy_max"]}
        for v, m in clf.items()}
rows["report (seed 003)"] = {"test accuracy": seed_report.SEED_TEST_ACCURACY}
pct = ["test accuracy", "balanced accuracy", "macro precision", "macro recall", "worst batch", "best batch"]
pd.DataFrame(rows).T.style.format({**{c: "{:.2%}" for c in pct}, "test loss": "{:.4f}"}, na_rep="–")

# %%
lit, good = clf["literal"], clf["logits"]
floor = ae.double_softmax_floor()
display(Markdown(
    f"**Softmax before `CrossEntropyLoss`.** `CrossEntropyLoss` applies log-softmax itself, so the literal "
    f"network's loss is computed on softmax(softmax(z)). Probabilities lie in (0, 1), so the second softmax "
    f"can separate them by at most a factor e: even a perfect one-hot output scores "
    f"−log(e / (e + 9)) = {floor:.3f}, not 0, and the gradients reaching the logits are squashed by the "
    f"softmax Jacobian. Measured: the literal network's test loss is {lit['test_loss']:.3f} (floor {floor:.3f}) "
    f"and its accuracy {lit['test_accuracy']:.2%}; with plain logits the loss is {good['test_loss']:.3f} and "
    f"accuracy {good['test_accuracy']:.2%} — a difference of {100 * (good['test_accuracy'] - lit['test_accuracy']):+.2f} "
    f"points. The argmax, and so the accuracy, is the same function of either output; what changes is how "
    f"well the network is trained. (The report's printed classifier losses, about 0.015, are below that "
    f"floor, so they cannot be this loss; its printed per-epoch accuracies are whole numbers, as the "
    f"accuracy of a single batch of 100 would be.)"))

# %%
curves = pd.concat({v: h.set_index("epoch")[["train_loss", "test_loss", "train_accuracy", "test_accuracy"]]
                    for v, h in clf_hist.items()}, axis=1)
curves.style.format("{:.4f}")

# %% [markdown]
# Accuracy on each test batch of 100 (the report's figure 20), and the confusion matrices (rows:
# true digit, columns: prediction; also `dvc plots show` draws them from
# `plots/autoencoder/confusion_*.csv`):

# %%
show(mf.batch_accuracy(per_batch))
for v in ae.VARIANTS:
    display(Image(filename=str(figs / f"confusion_{v}.png")))

# %% [markdown]
# ## The seed's numbers beside ours
#
# The same rows as the scorecard of every experiment, [`index.html`](index.html).

# %%
from pipeline.autoencoder import seed as seed_numbers
from pipeline.report import seed_beside_ours

seed_beside_ours(seed_numbers, "autoencoder", root, scale=scale, **{"mnist.dataset": dataset})
