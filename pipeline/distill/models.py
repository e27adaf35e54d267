"""The networks of `distill` and their training: ResNet-50 teacher, MobileNetV2 student.

Both take the uint8 CIFAR-10 images (N, 3, 32, 32) as they lie on the device and do their own
preprocessing: the teacher standardises with ImageNet's statistics and resizes to the
pretrained resolution (`distill.teacher.resize`), the student standardises with the training
split's per-channel statistics. The teacher's backbone is torchvision's ResNet-50 (its `fc`
replaced by the identity: 2048 features) and its head a new 10-class linear layer. Pretrained
weights come only from a file the `resnet50_weights` stage fetched and verified; nothing is
downloaded when a model is built.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.core.engine import FitResult, fit, predict
from pipeline.core.errors import DataError
from pipeline.core.nets import pixel_statistics
from pipeline.core.split import Split
from pipeline.data.download import RemoteFile
from pipeline.distill.recipe import Schedule, Views, crop_flip, distillation_loss, random_views

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FEATURES = 2048
# kuangliu/pytorch-cifar's MobileNetV2 for 32×32: the stem and the first 24-channel stage keep
# stride 1 (ImageNet's network has stride 2 in both), so the last map is 4×4 instead of 1×1
CIFAR_SETTING = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1))


def weights_remote(name: str) -> RemoteFile:
    """torchvision's published ResNet-50 weights file `name` (ResNet50_Weights), checked as
    torch.hub checks it: the sha256 must start with the hex digits in the file name."""
    from torchvision.models import ResNet50_Weights

    url = ResNet50_Weights[name].url
    match = re.search(r"-([a-f0-9]+)\.", url.rsplit("/", 1)[-1])
    return RemoteFile(url=url, sha256_prefix=match.group(1) if match else None)


class ImageInput(nn.Module):
    """uint8 (N, C, H, W) -> (x/255 − mean) / std per channel, optionally resized (bilinear) to size × size."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], size: int | None = None):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        x = (x.float() / 255 - self.mean) / self.std
        if self.size is not None and self.size != x.shape[-1]:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x


def channel_statistics(images: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), scaled to [0, 1], exact."""
    stats = [pixel_statistics(images[:, c]) for c in range(images.shape[1])]
    return tuple(m for m, _ in stats), tuple(max(s, 1e-6) for _, s in stats)


class ResNetTeacher(nn.Module):
    """ResNet-50 on resized inputs: backbone (2048 features) + a linear head."""

    def __init__(self, resize: int = 224, classes: int = 10):
        super().__init__()
        from torchvision.models import resnet50

        self.input = ImageInput(IMAGENET_MEAN, IMAGENET_STD, resize)
        self.backbone = resnet50(weights=None)
        self.backbone.fc = nn.Identity()
        self.head = nn.Linear(FEATURES, classes)
        self.frozen = False

    def features(self, x: Tensor) -> Tensor:
        return self.backbone(self.input(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def freeze_backbone(self) -> "ResNetTeacher":
        """No gradient for the backbone, and its batch norms keep their running statistics
        (eval mode) even while the module trains."""
        self.frozen = True
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        return self

    def train(self, mode: bool = True) -> "ResNetTeacher":
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def groups(self, backbone_scale: float) -> list[tuple[list[nn.Parameter], float]]:
        """(parameters, learning-rate factor): the backbone at `backbone_scale`, the head at 1."""
        return [(list(self.backbone.parameters()), backbone_scale), (list(self.head.parameters()), 1.0)]


def load_backbone(teacher: ResNetTeacher, path: Path) -> None:
    """Put torchvision's ImageNet weights file into the teacher's backbone (its 1000-class fc is
    dropped; every other tensor must match)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no ResNet-50 weights; run `dvc repro resnet50_weights` (set data.mirror if "
                        "offline), or set distill.teacher.pretrained: false for a run without them")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        teacher.backbone.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - whatever failed, the file is not ResNet-50's weights
        raise DataError(f"{path}: not a ResNet-50 weights file ({exc.__class__.__name__}: "
                        f"{str(exc).splitlines()[0][:160]}); delete it and run `dvc repro resnet50_weights`") from None


def cifar_mobilenet_v2(width: float = 1.0, dropout: float = 0.2, classes: int = 10) -> nn.Module:
    """torchvision's MobileNetV2 with the strides of CIFAR_SETTING and a stride-1 stem."""
    from torchvision.models import MobileNetV2

    net = MobileNetV2(num_classes=classes, width_mult=width, dropout=dropout,
                      inverted_residual_setting=[list(s) for s in CIFAR_SETTING])
    net.features[0][0].stride = (1, 1)
    return net


class MobileNetStudent(nn.Module):
    def __init__(self, width: float = 1.0, dropout: float = 0.2, classes: int = 10,
                 mean: tuple[float, ...] = (0.5, 0.5, 0.5), std: tuple[float, ...] = (0.25, 0.25, 0.25)):
        super().__init__()
        self.input = ImageInput(mean, std)
        self.net = cifar_mobilenet_v2(width, dropout, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.input(x))


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
        self.gen = torch.Generator(device=labels.device).manual_seed(seed + 1)

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
        self.gen = torch.Generator(device=device).manual_seed(seed + 1)

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
               ) -> tuple[nn.Linear, FitResult]:
    """The teacher's linear layer on frozen backbone features (float, (N, 2048))."""
    torch.manual_seed(seed)
    head = nn.Linear(features["train"].inputs.shape[1], classes).to(features["train"].inputs.device)
    out = fit(head, features["train"], features["val"], F.cross_entropy, schedule.train_config(), seed=seed,
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


@torch.no_grad()
def view_logits(teacher: ResNetTeacher, images: Tensor, views: Tensor, batch: int, amp_dtype=None) -> Tensor:
    """(N, views, classes) teacher logits of every stored view of every image."""
    teacher.eval()
    out = [predict(teacher, crop_flip(images, views[:, k]), batch, amp_dtype) for k in range(views.shape[1])]
    return torch.stack(out, 1)


def throughput(fn, images: Tensor, batch: int, amp_dtype=None) -> float:
    """Images per second of fn over `images` (one batch of warm-up first, device synchronised)."""
    from pipeline.core.device import synchronize

    predict(fn, images[:batch], batch, amp_dtype)
    synchronize(images.device)
    t0 = time.perf_counter()
    predict(fn, images, batch, amp_dtype)
    synchronize(images.device)
    return len(images) / (time.perf_counter() - t0)


def teacher_net(resize: int, weights: Path | None, device, frozen: bool = True) -> ResNetTeacher:
    """The ResNet-50 teacher with the backbone weights file `weights` (None: random weights), on
    `device`; its backbone frozen unless `frozen` is false."""
    teacher = ResNetTeacher(resize)
    if weights is not None:
        load_backbone(teacher, weights)
    teacher = teacher.to(device)
    if frozen:
        teacher.freeze_backbone()
    if device.type == "cuda":
        teacher = teacher.to(memory_format=torch.channels_last)
    return teacher
