"""Training the distill runs: the student's targets and views, the distillation loss as the engine
takes it, and the three recipes (head, student, fine-tuning)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.core.distributed import rank_seed
from pipeline.core.engine import FitResult, fit
from pipeline.core.split import Split
from pipeline.distill.models import MobileNetStudent, ProbeHead, ResNetTeacher, channel_statistics
from pipeline.distill.recipe import Schedule, Views, crop_flip, distillation_loss, random_views


def labels_of(y: Tensor) -> Tensor:
    """Labels from a target batch: plain labels, or (label, teacher logits...) rows."""
    return y if y.ndim == 1 else y[:, 0].long()


def accuracy(out: Tensor, y: Tensor) -> dict[str, Tensor]:
    return {"accuracy": (out.argmax(1) == labels_of(y)).float().mean()}


def student_loss(alpha: float, tau: float):
    """The training loss: distillation on (label, teacher logits) rows; plain cross-entropy on
    label targets (evaluation splits, and every batch of a run without a teacher)."""
    def loss(out: Tensor, y: Tensor) -> Tensor:
        if y.ndim == 1:
            return F.cross_entropy(out, y)
        return distillation_loss(out, y[:, 1:], y[:, 0].long(), alpha, tau)
    return loss


class ViewBatches:
    """The engine's `prepare` hook for the student: a training batch's targets are indices into
    the training set; each image gets one of its stored views at random, and its targets become
    its label (no teacher) or its label and the teacher's logits for that very view."""

    def __init__(self, views: Tensor, labels: Tensor, logits: Tensor | None, seed: int):
        self.views, self.labels, self.logits = views, labels, logits
        self.gen = torch.Generator(device=labels.device).manual_seed(rank_seed(seed) + 1)   # per rank

    def __call__(self, x: Tensor, y: Tensor, training: bool) -> tuple[Tensor, Tensor]:
        if not training:
            return x, y
        k = torch.randint(self.views.shape[1], (len(y),), device=y.device, generator=self.gen)
        x = crop_flip(x, self.views[y, k])
        if self.logits is None:
            return x, self.labels[y]
        return x, torch.cat([self.labels[y, None].float(), self.logits[y, k].float()], 1)


class RandomViews:
    """The engine's `prepare` hook for fine-tuning: a fresh random crop and flip per image."""

    def __init__(self, cfg: Views, device: torch.device, seed: int):
        self.cfg = cfg
        self.gen = torch.Generator(device=device).manual_seed(rank_seed(seed) + 1)   # per rank

    def __call__(self, x: Tensor, y: Tensor, training: bool) -> tuple[Tensor, Tensor]:
        if not training:
            return x, y
        return crop_flip(x, random_views(len(x), self.cfg, self.gen, x.device)), y


def train_student(data: dict, views: Tensor, logits: Tensor | None, alpha: float, tau: float,
                  schedule: Schedule, *, width: float, dropout: float, seed: int, classes: int = 10,
                  epochs: int | None = None, amp_dtype=None, on_epoch=None, resume_dir: Path | None = None,
                  ) -> tuple[MobileNetStudent, FitResult]:
    """MobileNetV2 from scratch on data['train'] (targets: indices into the training set, whose
    labels are data['labels']), with the teacher's `logits` (N, views, classes) or without
    (None); best epoch by validation accuracy; data['test'] watched for the curves."""
    torch.manual_seed(seed)
    train = data["train"]
    device = train.inputs.device
    mean, std = channel_statistics(train.inputs)
    model = MobileNetStudent(width, dropout, classes, mean, std).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    out = fit(model, train, data["val"], student_loss(alpha, tau), schedule.train_config(epochs=epochs), seed=seed,
              prepare=ViewBatches(views.to(device), data["labels"], None if logits is None else logits.to(device),
                                  seed),
              metrics=accuracy, amp_dtype=amp_dtype, on_epoch=on_epoch, resume_dir=resume_dir,
              watch={"test": data["test"]})
    model.load_state_dict(out.best_state)
    return model, out


def train_head(features: dict[str, Split], schedule: Schedule, *, seed: int, classes: int = 10, on_epoch=None,
               ) -> tuple[ProbeHead, FitResult]:
    """The teacher's linear layer on frozen backbone features: training features (N, views, F),
    every view a sample of its image's label, standardised with their own statistics;
    validation and test features (N, V, F) scored by the mean of their V views' logits."""
    torch.manual_seed(seed)
    x, y = features["train"].inputs, features["train"].targets
    head = ProbeHead.for_features(x, classes).to(x.device)
    flat = Split(x.reshape(-1, x.shape[-1]), y.repeat_interleave(x.shape[1]))
    out = fit(head, flat, features["val"], F.cross_entropy, schedule.train_config(), seed=seed,
              metrics=accuracy, on_epoch=on_epoch, watch={"test": features["test"]})
    head.load_state_dict(out.best_state)
    return head, out


def train_finetune(teacher: ResNetTeacher, data: dict, schedule: Schedule, backbone_lr: float, views: Views, *,
                   seed: int, amp_dtype=None, on_epoch=None, resume_dir: Path | None = None) -> FitResult:
    """The whole teacher trained: backbone at backbone_lr × lr, head at lr; random crops and flips."""
    device = data["train"].inputs.device
    out = fit(teacher, data["train"], data["val"], F.cross_entropy, schedule.train_config(), seed=seed,
              prepare=RandomViews(views, device, seed), metrics=accuracy, amp_dtype=amp_dtype, on_epoch=on_epoch,
              resume_dir=resume_dir, watch={"test": data["test"]}, groups=teacher.groups(backbone_lr))
    teacher.load_state_dict(out.best_state)
    return out
