# %% [markdown]
# # `fer` — facial-expression recognition on FER-2013
#
# Seed 002, practical 2: FER-2013's 48×48 grey faces in seven expressions; a CNN made as good
# as we can; accuracy, precision and recall, loss and accuracy curves, the confusion matrix; a
# chosen test face with some learned filters and their feature maps on it; and the final network
# run frame by frame on a camera (the live demo, `python -m stages.demo`).

# %% tags=["parameters"]
scale = "full"
root = "."

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image, Markdown, display

from pipeline.fer import demo as fer_demo
from pipeline.fer import model as fm
from pipeline.report import show

root = Path(root)
metrics = json.loads((root / "metrics/fer/cnn.json").read_text())
history = pd.read_csv(root / "plots/fer/history.csv")
per_class = pd.read_csv(root / "plots/fer/per_class.csv")
inspected = json.loads((root / "figures/fer/inspect/summary.json").read_text())
model, meta = fm.load(root / "models/fer/cnn.pt")
classes, origin, net = tuple(meta["classes"]), meta["origin"], meta["config"]
if scale != "full":
    display(Markdown(f"> **Scale: {scale}.** A few hundred faces and at most two epochs: the numbers show the "
                     "pipeline works, not what the network reaches."))

# %% [markdown]
# ## The data
#
# FER-2013 has no official download; `fer.source` takes whichever form one has (the CSVs or the
# train/test class folders). Where the CSV carries the official split it is kept: *Training* to
# train on, *PublicTest* to choose the epoch by, *PrivateTest* touched once at the end. Random
# training faces of each class, with the class's number of training faces:

# %%
display(Markdown("Where each split came from: " + ", ".join(f"**{k}** ← {v}" for k, v in origin.items()) + "."))
display(Image(filename=str(root / "figures/fer/data/classes.png")))

# %%
support = per_class.set_index("class")["support"]
display(Markdown(
    f"The classes are far from balanced: on the test split *{support.idxmax()}* has {support.max():,} faces and "
    f"*{support.idxmin()}* {support.min():,}. *Disgust* is the rare one in FER-2013 (about 1.5 % of the faces); "
    "macro precision and recall weight every class equally and show what plain accuracy hides."))

# %% [markdown]
# ## The network
#
# A VGG-style CNN (the family that holds the best single-network results on FER-2013 without extra
# data): stages of two 3×3 convolution → batch norm → ReLU blocks, a 2×2 max-pool after each
# stage, then the flattened last feature map through dropout, one hidden layer and dropout to the
# seven classes. Batch norm lets a deep plain stack train at a high learning rate; dropout sits in
# the head, where nothing normalises after it (between the stages it would feed the next batch
# norm, whose running statistics would then describe dropped-out activations rather than the ones
# seen at test time).
#
# Training: every batch is augmented **on the device**, each face with its own random affine map
# (horizontal flip, rotation, zoom and shift — a random crop) and, for a share of the faces, one
# erased rectangle; SGD with momentum and weight decay, a cosine learning-rate schedule, label
# smoothing; the weights of the epoch with the best validation accuracy are kept. At test time
# each face and its mirror image are classified and their probabilities averaged.

# %%
display(Markdown(
    f"Stages with {', '.join(map(str, net['channels']))} channels, {net['convs_per_stage']} conv blocks each; "
    f"head: flatten → dropout {net['head_dropout']} → {net['hidden']} → ReLU → dropout → {len(classes)}. "
    f"**{metrics['parameters']:,} parameters.**"))

# %% [markdown]
# ## Training curves
#
# Train figures are running means over each epoch on the augmented faces as trained (dropout on);
# validation and test are measured after each epoch on the plain faces with dropout off. Only
# validation chooses the epoch; the test curve is drawn, never used.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, key in zip(axes, ("loss", "accuracy")):
    for split, style in (("train", "--"), ("val", "-"), ("test", ":")):
        ax.plot(history["epoch"], history[f"{split}_{key}"], style, marker="o", ms=3,
                label={"val": "validation"}.get(split, split))
    ax.axvline(metrics["best_epoch"], color="grey", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_title(key + (" (label-smoothed cross-entropy)" if key == "loss" else ""))
axes[1].legend()
fig.tight_layout()
show(fig)

# %% [markdown]
# ## Results on the test split

# %%
pd.Series({"test accuracy": f"{metrics['test_accuracy']:.2%}",
           "test accuracy without the mirror average": f"{metrics['test_accuracy_without_tta']:.2%}",
           "macro precision": f"{metrics['test_macro_precision']:.2%}",
           "macro recall": f"{metrics['test_macro_recall']:.2%}",
           "balanced accuracy": f"{metrics['test_balanced_accuracy']:.2%}",
           "best epoch (validation)": f"{metrics['best_epoch']} of {len(history)}",
           "validation accuracy there": f"{metrics['val_accuracy']:.2%}",
           "training samples/s": f"{metrics['train_samples_per_second']:,}",
           "test samples/s": f"{metrics['test_samples_per_second']:,}"}, name="value").to_frame()

# %% [markdown]
# Published anchors: humans agree with FER-2013's labels about 65 % of the time; the best single
# network trained without extra data reaches 73.3 % on the private test split (a tuned VGG variant).
# The aim here is at least 70 % at full scale.

# %%
per_class.set_index("class").style.format({"precision": "{:.2%}", "recall": "{:.2%}"})

# %%
display(Image(filename=str(root / "figures/fer/confusion.png")))
cm_rows = per_class.sort_values("recall")
display(Markdown(
    f"Rows are the true expression, each divided by its number of faces (the diagonal is the recall). "
    f"Lowest recall: *{cm_rows.iloc[0]['class']}* ({cm_rows.iloc[0]['recall']:.0%}); highest: "
    f"*{cm_rows.iloc[-1]['class']}* ({cm_rows.iloc[-1]['recall']:.0%}). On the full data the usual pattern is "
    "happy and surprise recognised best (distinctive mouth and eyes), fear confused with sad and surprise, "
    "and sad with neutral — pairs that humans confuse too."))

# %% [markdown]
# ## Filters and feature maps on one test face
#
# The face is `fer.inspect.image` (an index into the test split); changing it reruns only
# `fer_inspect`. For each chosen conv block: the channels most active on this face; the top row
# shows what each responds to — for the first block its 3×3 kernel, for deeper blocks the input
# found by gradient ascent that excites the channel most — and the bottom row its feature map.

# %%
display(Markdown(f"Test face {inspected['image']}, labelled *{inspected['label']}*:"))
display(Image(filename=str(root / "figures/fer/inspect/face.png")))
display(Image(filename=str(root / "figures/fer/inspect/filters_layer1.png")))
for layer in inspected["layers"]:
    display(Image(filename=str(root / f"figures/fer/inspect/maps_layer{layer}.png")))

# %%
k = inspected["first_layer_kernels"]
lines = [f"**First layer.** Of its {k['kernels']} kernels, {k['edge']} are mostly zero-sum — contrast (edge) "
         f"detectors: {k['horizontal_edge']} for horizontal edges (brows, eyelids, the line of the lips), "
         f"{k['vertical_edge']} for vertical ones (the sides of the nose and face), {k['other_edge']} diagonal or "
         f"mixed; the other {k['brightness']} mostly pass local brightness, light or dark. Their feature maps are "
         "the face redrawn as edge maps: the outline, eyes, brows and mouth stand out."]
for layer, s in inspected["layers"].items():
    if layer == "1":
        continue
    rows = s["rows"]
    top = max(rows, key=rows.get)
    part = {"upper": "brows and eyes", "middle": "nose and cheeks", "lower": "mouth and chin"}[top]
    where = (f"put {rows[top]:.0%} of their activation in the {top} third of the face ({part})" if rows[top] >= 0.4
             else "spread their activation about evenly over the face")
    lines.append(
        f"**Block {layer}** ({s['map_size'][0]} channels, {s['map_size'][1]}×{s['map_size'][2]} maps). Its most "
        f"active channels {where}; upper/middle/lower thirds: {rows['upper']:.0%} / {rows['middle']:.0%} / "
        f"{rows['lower']:.0%}. Deeper channels "
        "see larger patches (each 3×3 conv after a pool doubles the reach), so their preferred inputs turn "
        "from strokes into textures and part-like blobs, and their maps mark *where* a part is rather than "
        "the edges themselves.")
display(Markdown("\n\n".join(lines)))

# %% [markdown]
# ## The live demo
#
# `python -m stages.demo --input 0` runs the final network on the default webcam (`--input` also
# takes a video file, an image or a folder of images): OpenCV's bundled Haar cascade finds the
# faces in each frame, each is cut out, turned grey and resized to 48×48 like FER-2013's faces,
# all faces of the frame are classified in one batch, and each gets a box and its most probable
# expression. `--output DIR` writes the annotated video and a per-frame CSV, `--show` shows it
# live. The same steps on scikit-image's bundled astronaut photograph:

# %%
from skimage import data as skdata

frame = np.ascontiguousarray(skdata.astronaut()[..., ::-1])
grey = fer_demo.to_grey(frame)
boxes = fer_demo.FaceDetector()(grey)
probs = fm.probabilities(model, torch.from_numpy(fer_demo.face_crops(grey, boxes)), tta=meta.get("tta", False))
annotated = fer_demo.draw(frame, boxes, probs.numpy(), classes)
fig, ax = plt.subplots(figsize=(5, 5))
ax.imshow(annotated[..., ::-1])
ax.axis("off")
show(fig)
display(Markdown(f"{len(boxes)} face(s) found; " + "; ".join(
    f"{classes[int(p.argmax())]} {float(p.max()):.0%}" for p in probs) + "."))

# %% [markdown]
# ## The seed's numbers beside ours
#
# The same rows as the scorecard of every experiment, [`index.html`](index.html).

# %%
from pipeline.fer import seed as seed_numbers
from pipeline.report import seed_beside_ours

seed_beside_ours(seed_numbers, "fer", root, scale=scale)
