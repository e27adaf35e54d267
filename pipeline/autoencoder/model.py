"""`autoencoder`: the report's MNIST autoencoder, its 30-d codes, and a classifier on the codes.

The report's classifier ends in nn.Softmax and is trained with nn.CrossEntropyLoss, which applies
log-softmax itself: the loss sees softmax(softmax(z)). Probabilities lie in (0, 1), so the second
softmax can only spread them between e^0 and e^1 times each other: the loss cannot fall below
-log(e / (e + 9)) ~ 1.46 and its gradients shrink. The `literal` variant keeps that; `logits`
is the correct network (no softmax layer; CrossEntropyLoss on the logits).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from pipeline.core.nets import mlp_layers
from pipeline.core.params import bounds
from pipeline.core.schedule import Schedules

VARIANTS = ("literal", "logits")


@dataclass(frozen=True)
class ClassifierConfig(Schedules):
    SCHEDULE: ClassVar[dict] = {"monitor": "last"}
    hidden: tuple[int, ...] = field(default=(20, 15), metadata=bounds(ge=1, min_len=1))
    epochs: int = field(default=10, metadata=bounds(ge=1))
    batch_size: int = field(default=100, metadata=bounds(ge=1))
    lr: float = field(default=1e-3, metadata=bounds(gt=0))
    weight_decay: float = field(default=1e-5, metadata=bounds(ge=0))


@dataclass(frozen=True)
class AutoencoderConfig(Schedules):
    SCHEDULE: ClassVar[dict] = {"monitor": "last"}
    classifier: ClassifierConfig
    encoder: tuple[int, ...] = field(default=(500, 200, 100, 30), metadata=bounds(ge=1, min_len=1))
    epochs: int = field(default=10, metadata=bounds(ge=1))
    batch_size: int = field(default=100, metadata=bounds(ge=1))
    lr: float = field(default=1e-3, metadata=bounds(gt=0))
    weight_decay: float = field(default=1e-5, metadata=bounds(ge=0))
    show_epochs: tuple[int, ...] = field(default=(1, 5, 9), metadata=bounds(ge=1))   # reconstructions
    show_images: int = field(default=5, metadata=bounds(ge=1, le=20))
    train_limit: int | None = None     # first N training images (None: all); smoke sets it
    test_limit: int | None = None

    def validate(self, key: str) -> None:
        from pipeline.core.errors import ParamError

        late = [e for e in self.show_epochs if e > self.epochs]
        if late:
            raise ParamError(f"{key}.show_epochs: {late} after the last epoch ({self.epochs})")

    def at_scale(self, scale: str) -> "AutoencoderConfig":
        if scale == "full":
            return self
        return dataclasses.replace(self, epochs=2, show_epochs=(1, 2), train_limit=1024, test_limit=512,
                                   classifier=dataclasses.replace(self.classifier, epochs=2))


class Autoencoder(nn.Module):
    """784 -> 500 -> 200 -> 100 -> 30 (linear code) -> 100 -> 200 -> 500 -> 784 -> sigmoid."""

    def __init__(self, encoder: tuple[int, ...] = (500, 200, 100, 30), n_in: int = 784):
        super().__init__()
        sizes = (n_in, *encoder)
        self.encoder = nn.Sequential(*mlp_layers(sizes))
        self.decoder = nn.Sequential(*mlp_layers(sizes[::-1]), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


class CodeClassifier(nn.Module):
    """30 -> 20 -> 15 -> 10 with ReLU; `softmax_head` appends the report's nn.Softmax."""

    def __init__(self, hidden: tuple[int, ...] = (20, 15), n_in: int = 30, n_out: int = 10,
                 softmax_head: bool = False):
        super().__init__()
        layers = mlp_layers((n_in, *hidden, n_out))
        self.net = nn.Sequential(*layers, *([nn.Softmax(dim=1)] if softmax_head else []))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_classifier(variant: Literal["literal", "logits"], cfg: ClassifierConfig, n_in: int) -> CodeClassifier:
    return CodeClassifier(cfg.hidden, n_in=n_in, softmax_head=variant == "literal")


def autoencoder_parameters(encoder: tuple[int, ...], n_in: int = 784) -> int:
    """Weights and biases of Autoencoder(encoder), by hand: each layer twice (encoder, decoder),
    with the biases of the side each layer maps to."""
    sizes = (n_in, *encoder)
    return sum(2 * a * b + a + b for a, b in zip(sizes, sizes[1:]))


def reconstruction_loss(recon: Tensor, x: Tensor) -> Tensor:
    """nn.MSELoss between the reconstruction and the input itself."""
    return nn.functional.mse_loss(recon, x)


def double_softmax_floor(classes: int = 10) -> float:
    """The least CrossEntropyLoss of a softmax output: one-hot probabilities give
    -log(e / (e + classes - 1))."""
    return -math.log(math.e / (math.e + classes - 1))


@torch.no_grad()
def encode(encoder: nn.Module, images: Tensor, batch: int = 4096) -> Tensor:
    """(N, 784) float images -> (N, code) codes, in slices."""
    encoder.eval()
    return torch.cat([encoder(images[i:i + batch]) for i in range(0, len(images), batch)])


def batch_accuracy(pred: Tensor, labels: Tensor, batch: int) -> Tensor:
    """Accuracy of each consecutive test batch of `batch` images (the report's per-batch plot)."""
    hits = (pred == labels).float()
    return torch.stack([hits[i:i + batch].mean() for i in range(0, len(hits), batch)])


@torch.no_grad()
def reconstructions_at(model: Autoencoder, snapshots: dict[int, dict[str, Tensor]], shown: Tensor) -> dict[int, Tensor]:
    """{epoch: the model's reconstructions of `shown` with that epoch's weights} (on the CPU);
    the model is left holding the last snapshot's weights."""
    device = next(model.parameters()).device
    out = {}
    for epoch, state in snapshots.items():
        model.load_state_dict(state)
        out[epoch] = model.eval()(shown.to(device)).cpu()
    return out
