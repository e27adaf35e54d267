"""Knowledge distillation on CIFAR-10: settings, the loss, and the augmented views.

Four runs (see pipeline/distill_models.py for the networks):
(a) teacher — ImageNet ResNet-50, backbone frozen, a new 10-class linear layer trained on
    its features (computed once, `distill_features`);
(b) student — MobileNetV2 for 32×32 inputs trained with
    α·CE(y, σ(z_s)) + (1−α)·τ²·KL(σ(z_t/τ) ‖ σ(z_s/τ)), the teacher's logits read from
    `distill_logits`; the α × τ pair from a grid of short runs;
(c) scratch — the same MobileNetV2 and schedule with plain cross-entropy;
(d) finetune — the whole ResNet-50 trained, its backbone at a lower learning rate.

and (e) student_d — (b)'s recipe and α, τ, taught by the fine-tuned (d) instead of (a).

Augmentation is a random crop (zero padding `pad`, then a 32×32 window) and a horizontal
flip. The student sees only `views.count` fixed views per training image (view 0 is the image
itself), drawn once from the seed: the teacher's logits for exactly those views are computed
once, and the run without a teacher sees the very same views in the same order — the two
differ in the loss alone. The probe (a) trains on the backbone's features of `head.views`
views per training image (drawn apart from the student's), standardised with the training
features' mean and standard deviation, and scores an image by the mean of its own and its
mirror image's logits (`head.flip_test`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.core.errors import ParamError
from pipeline.core.params import bounds
from pipeline.core.schedule import Schedules

SIZE = 32
RESNET50_WEIGHTS = ("IMAGENET1K_V1", "IMAGENET1K_V2")      # torchvision's ResNet50_Weights names


@dataclass(frozen=True)
class DistillData:
    val_size: int = field(default=5000, metadata=bounds(ge=1))    # training images held out (seeded)
    train_limit: int | None = None      # first N of the remaining training / validation / test images
    val_limit: int | None = None
    test_limit: int | None = None


@dataclass(frozen=True)
class Teacher:
    weights: Literal["IMAGENET1K_V1", "IMAGENET1K_V2"] = "IMAGENET1K_V1"
    pretrained: bool = True             # false: random initialisation (smoke runs); reports say so
    resize: int = field(default=224, metadata=bounds(ge=32, le=512))   # inputs resized to this side
    batch: int = field(default=256, metadata=bounds(ge=1))             # images per backbone pass


@dataclass(frozen=True)
class Schedule(Schedules):
    SCHEDULE: ClassVar[dict] = {"monitor": "val_accuracy", "mode": "max"}
    """One run's optimiser and schedule (the engine's TrainConfig, best epoch by val accuracy)."""
    epochs: int = field(metadata=bounds(ge=1))
    batch_size: int = field(metadata=bounds(ge=1))
    lr: float = field(metadata=bounds(gt=0))
    weight_decay: float = field(default=0.0, metadata=bounds(ge=0))
    optimizer: Literal["adam", "adamw", "sgd"] = "sgd"
    momentum: float = field(default=0.9, metadata=bounds(ge=0, lt=1))
    schedule: Literal["constant", "cosine"] = "cosine"


@dataclass(frozen=True)
class Head(Schedule):
    """(a)'s linear layer: its schedule, and the views its features are computed for."""
    views: int = field(default=4, metadata=bounds(ge=1, le=32))     # per training image; view 0 = the image
    flip_test: bool = True              # validation and test: the mean of the image's and its mirror's logits


@dataclass(frozen=True)
class Views:
    count: int = field(default=24, metadata=bounds(ge=1, le=128))  # per training image; view 0 = the image
    pad: int = field(default=4, metadata=bounds(ge=0, le=16))      # crop offsets in -pad..pad
    flip: bool = True


@dataclass(frozen=True)
class Student:
    width: float = field(default=1.0, metadata=bounds(gt=0, le=2))   # MobileNetV2 width multiplier
    dropout: float = field(default=0.2, metadata=bounds(ge=0, lt=1))
    train: Schedule = field(default_factory=lambda: Schedule(epochs=200, batch_size=128, lr=0.1,
                                                             weight_decay=5e-4))


@dataclass(frozen=True)
class Grid:
    alpha: tuple[float, ...] = field(default=(0.1, 0.5, 0.9), metadata=bounds(ge=0, le=1, min_len=1))
    tau: tuple[float, ...] = field(default=(2.0, 4.0, 8.0), metadata=bounds(gt=0, min_len=1))
    epochs: int = field(default=30, metadata=bounds(ge=1))     # each grid run: the student's schedule, shortened
    # pairs within `margin` binomial standard errors of the best validation accuracy count as tied;
    # a tie goes to the larger α (more weight on the labels), then the smaller τ: a short run
    # favours the pair that learns fastest, which is the one leaning on the teacher most
    margin: float = field(default=1.0, metadata=bounds(ge=0, le=5))


@dataclass(frozen=True)
class Finetune:
    train: Schedule = field(default_factory=lambda: Schedule(epochs=10, batch_size=128, lr=0.01,
                                                             weight_decay=5e-4))
    backbone_lr: float = field(default=0.1, metadata=bounds(gt=0, le=1))    # × train.lr for the backbone


@dataclass(frozen=True)
class DistillConfig:
    data: DistillData = field(default_factory=DistillData)
    teacher: Teacher = field(default_factory=Teacher)
    head: Head = field(default_factory=lambda: Head(epochs=30, batch_size=256, lr=1e-3, weight_decay=1e-4,
                                                    optimizer="adam"))
    views: Views = field(default_factory=Views)
    student: Student = field(default_factory=Student)
    grid: Grid = field(default_factory=Grid)
    finetune: Finetune = field(default_factory=Finetune)
    eval_batch: int = field(default=1024, metadata=bounds(ge=1))

    def validate(self, key: str) -> None:
        for name in ("alpha", "tau"):
            values = [float(v) for v in getattr(self.grid, name)]
            if len(set(values)) != len(values):
                raise ParamError(f"{key}.grid.{name}: {values} repeats a value; list each once")

    def at_scale(self, scale: str) -> "DistillConfig":
        if scale == "full":
            return self

        def short(s: Schedule) -> Schedule:
            return dataclasses.replace(s, epochs=min(s.epochs, 2))

        return dataclasses.replace(
            self, data=dataclasses.replace(self.data, val_size=min(self.data.val_size, 64), train_limit=512,
                                           val_limit=256, test_limit=512),
            teacher=dataclasses.replace(self.teacher, resize=min(self.teacher.resize, 64)),
            head=dataclasses.replace(short(self.head), views=min(self.head.views, 2)),
            views=dataclasses.replace(self.views, count=min(self.views.count, 2)),
            student=dataclasses.replace(self.student, train=short(self.student.train)),
            grid=dataclasses.replace(self.grid, epochs=1),
            finetune=dataclasses.replace(self.finetune, train=short(self.finetune.train)))


def distillation_loss(student: Tensor, teacher: Tensor, labels: Tensor, alpha: float, tau: float) -> Tensor:
    """α·CE(y, σ(z_s)) + (1−α)·τ²·KL(σ(z_t/τ) ‖ σ(z_s/τ)), each term a mean over the batch.

    The soft term's gradient with respect to z_s is (σ(z_s/τ) − σ(z_t/τ))/τ per logit, which
    shrinks like 1/τ² once the logits are small against τ; the τ² factor undoes that, so the
    two terms keep their relative weight whatever τ is (Hinton et al., 2015)."""
    hard = F.cross_entropy(student, labels)
    if alpha >= 1:
        return hard
    soft = F.kl_div(F.log_softmax(student / tau, 1), F.log_softmax(teacher / tau, 1), log_target=True,
                    reduction="batchmean")
    return alpha * hard + (1 - alpha) * tau * tau * soft


def holdout(n: int, val_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """(train indices, validation indices) of n training images: a seeded permutation's split,
    each part in ascending order."""
    if val_size >= n:
        raise ParamError(f"distill.data.val_size: {val_size} leaves nothing to train on of {n} images; "
                         "choose a smaller value")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def make_views(n: int, cfg: Views, seed: int, count: int | None = None, salt: int = 2) -> Tensor:
    """int64 (n, count, 3): (row offset, column offset, flip) of each image's views; view 0 is
    (0, 0, 0), the image itself. Offsets in -pad..pad, drawn from the seed (and `salt`: the
    student's views and the probe's are drawn apart) alone; `count` defaults to cfg.count."""
    count = cfg.count if count is None else count
    gen = torch.Generator().manual_seed(seed + salt)
    views = torch.stack([torch.randint(-cfg.pad, cfg.pad + 1, (n, count), generator=gen),
                         torch.randint(-cfg.pad, cfg.pad + 1, (n, count), generator=gen),
                         torch.randint(0, 2 if cfg.flip else 1, (n, count), generator=gen)], 2)
    views[:, 0] = 0
    return views


PROBE_SALT = 5


def probe_views(n: int, head: Head, views: Views, seed: int) -> Tensor:
    """The views (a)'s training features are computed for: `head.views` per image, the
    student's pad and flip, drawn apart from the student's views."""
    return make_views(n, views, seed, head.views, PROBE_SALT)


def mirror_views(n: int, flip: bool) -> Tensor:
    """(n, 1 or 2, 3): the image itself and, with `flip`, its mirror image (test-time averaging)."""
    out = torch.zeros(n, 2 if flip else 1, 3, dtype=torch.long)
    if flip:
        out[:, 1, 2] = 1
    return out


def crop_flip(x: Tensor, views: Tensor) -> Tensor:
    """Each image of x (N, C, H, W) shifted by its (dy, dx) with zeros coming in (a crop of the
    zero-padded image), then mirrored where its flip is 1; one gather for the whole batch."""
    n, c, h, w = x.shape
    dy, dx, flip = (views[:, i].to(x.device) for i in range(3))
    rows = torch.arange(h, device=x.device) + dy.view(n, 1)
    cols = torch.arange(w, device=x.device).expand(n, w)
    cols = torch.where(flip.view(n, 1).bool(), cols.flip(1), cols) + dx.view(n, 1)
    inside = ((rows >= 0) & (rows < h)).view(n, 1, h, 1) & ((cols >= 0) & (cols < w)).view(n, 1, 1, w)
    out = x[torch.arange(n, device=x.device).view(n, 1, 1, 1), torch.arange(c, device=x.device).view(1, c, 1, 1),
            rows.clamp(0, h - 1).view(n, 1, h, 1), cols.clamp(0, w - 1).view(n, 1, 1, w)]
    return torch.where(inside, out, torch.zeros((), dtype=x.dtype, device=x.device))


def random_views(n: int, cfg: Views, gen: torch.Generator, device) -> Tensor:
    """Fresh (dy, dx, flip) per image, on the device: fine-tuning's unlimited augmentation."""
    return torch.stack([torch.randint(-cfg.pad, cfg.pad + 1, (n,), generator=gen, device=device),
                        torch.randint(-cfg.pad, cfg.pad + 1, (n,), generator=gen, device=device),
                        torch.randint(0, 2 if cfg.flip else 1, (n,), generator=gen, device=device)], 1)


def split_indices(n_train: int, n_test: int, cfg: DistillData, seed: int) -> dict[str, Tensor]:
    """Indices of each split: train and val into CIFAR-10's training images (the seeded hold-out),
    test into its test images; each cut to its limit."""
    train, val = holdout(n_train, cfg.val_size, seed)
    out = {"train": train[:cfg.train_limit], "val": val[:cfg.val_limit],
           "test": torch.arange(n_test)[:cfg.test_limit]}
    for name, idx in out.items():
        if len(idx) == 0:
            raise ParamError(f"distill.data: the {name} split is empty; raise distill.data.{name}_limit")
    return out


def split_images(data: dict, cfg: DistillData, seed: int, device) -> dict:
    """Prepared CIFAR-10 as distill uses it: {"splits": {split: (uint8 images, labels) on device},
    "index": the split indices, "classes": the class names}."""
    idx = split_indices(len(data["train_y"]), len(data["test_y"]), cfg, seed)
    out = {}
    for name, source in (("train", "train"), ("val", "train"), ("test", "test")):
        out[name] = (data[f"{source}_x"][idx[name]].to(device), data[f"{source}_y"][idx[name]].to(device))
    return {"splits": out, "index": idx, "classes": data["classes"]}


def student_data(images: dict, views: Tensor, saved_logits: dict | None, source: str = "the teacher's logits") -> dict:
    """The student's splits (training targets: indices into the training split), its views and,
    given the stored teacher logits, those logits — checked to be of these very views and images."""
    from pipeline.core.errors import DataError
    from pipeline.core.split import Split

    (tx, ty), val, test = (images["splits"][k] for k in ("train", "val", "test"))
    logits = None
    if saved_logits is not None:
        if not (torch.equal(saved_logits["views"], views) and torch.equal(saved_logits["labels"], ty.cpu())):
            raise DataError(f"{source}: computed for other views or images than distill's params give now; "
                            "run `dvc repro distill_logits`")
        logits = saved_logits["logits"]
    return {"train": Split(tx, torch.arange(len(tx), device=tx.device)), "val": Split(*val), "test": Split(*test),
            "labels": ty, "views": views, "logits": logits, "classes": images["classes"]}


def standard_error(accuracy: float, n: int) -> float:
    """The binomial standard error of an accuracy measured on n images."""
    return (max(accuracy * (1 - accuracy), 0.0) / max(n, 1)) ** 0.5


def best_pair(rows: list[dict], grid: Grid, source: str = "the grid's metrics") -> tuple[float, float, list[dict]]:
    """The grid's (α, τ) from the grid runs' metric rows (rows of pairs no longer in the grid are
    ignored) by validation accuracy: of the pairs within `grid.margin` standard errors of the best
    (the band noise alone could explain, on `val_samples` images), the largest α, then the smallest
    τ. Returns the pair and every pair's row, in params order, each with `tied` (inside the band)
    and `chosen` set."""
    from pipeline.core.errors import DataError

    found = {(float(r["alpha"]), float(r["tau"])): r for r in rows}
    ordered = []
    for a in grid.alpha:
        for t in grid.tau:
            if (a, t) not in found:
                raise DataError(f"{source}: no grid run for α={a:g} τ={t:g}; run `dvc repro distill_grid` first "
                                "(the grid picks α and τ)")
            ordered.append(dict(found[(a, t)]))
    top = max(ordered, key=lambda r: r["val_accuracy"])
    n = int(top.get("val_samples") or 0)          # rows of older runs lack it: no band, plain arg-max
    band = grid.margin * standard_error(top["val_accuracy"], n) if n else 0.0
    for r in ordered:
        r["tied"] = r["val_accuracy"] >= top["val_accuracy"] - band - 1e-12
    chosen = max((r for r in ordered if r["tied"]), key=lambda r: (float(r["alpha"]), -float(r["tau"])))
    for r in ordered:
        r["chosen"] = r is chosen
    return chosen["alpha"], chosen["tau"], ordered
