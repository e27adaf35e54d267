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

from pipeline.core.errors import DataError
from pipeline.core.inference import predict
from pipeline.core.nets import pixel_statistics
from pipeline.data.download import RemoteFile
from pipeline.distill.recipe import crop_flip

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


class ProbeHead(nn.Module):
    """(a)'s linear layer on standardised backbone features: (x − mean) / std, then the layer.
    An input (N, V, features) holds V views of each image (at test: the image and its mirror)
    and gives the mean of their logits."""

    def __init__(self, mean: Tensor, std: Tensor, classes: int = 10):
        super().__init__()
        self.register_buffer("mean", mean.float().reshape(-1))
        self.register_buffer("std", std.float().reshape(-1).clamp(min=1e-6))
        self.linear = nn.Linear(len(self.mean), classes)

    @classmethod
    def for_features(cls, features: Tensor, classes: int = 10) -> "ProbeHead":
        """Standardised with the mean and standard deviation of `features` (…, F) over all but the last axis."""
        flat = features.reshape(-1, features.shape[-1]).double()
        return cls(flat.mean(0), flat.std(0), classes)

    def forward(self, x: Tensor) -> Tensor:
        z = self.linear((x.float() - self.mean) / self.std)
        return z.mean(1) if z.ndim == 3 else z

    def folded(self) -> nn.Linear:
        """The same map of one view's features as one plain linear layer (W / std, b − W·mean / std):
        the teacher's head, so its logits need no standardisation step."""
        out = nn.Linear(self.linear.in_features, self.linear.out_features).to(self.mean.device)
        with torch.no_grad():
            w = self.linear.weight.float() / self.std
            out.weight.copy_(w)
            out.bias.copy_(self.linear.bias.float() - w @ self.mean)
        return out


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
