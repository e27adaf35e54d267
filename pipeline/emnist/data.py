"""EMNIST ByClass (62 classes: digits, upper- and lower-case letters) from NIST's `gzip.zip`.

The official archive (~560 MB) holds six EMNIST splits; only ByClass's four IDX files and its
label mapping are extracted and kept, with a manifest of their digests so a rerun can verify
them without the archive. EMNIST stores every image transposed relative to how an IDX reader
returns it (rows are the glyph's columns): `upright` fixes that once, in the prepare stage.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import torch
from torch import Tensor

from pipeline.core.errors import DataError, ParamError
from pipeline.core.files import atomic_path
from pipeline.core.params import bounds
from pipeline.core.schedule import Schedules
from pipeline.data.download import RemoteFile
from pipeline.data.idx import read_idx
from pipeline.emnist.models import PARAMETER_TOLERANCE, CnnConfig, MlpConfig, parameter_counts

# NIST's one live URL (torchvision's EMNIST uses it too); the old www.itl.nist.gov path now serves an HTML page
ARCHIVE = RemoteFile(url="https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
                     md5="58c8d27c78d21e728a6bc7b3cc06412e")
MEMBERS = {"train_x": "gzip/emnist-byclass-train-images-idx3-ubyte.gz",
           "train_y": "gzip/emnist-byclass-train-labels-idx1-ubyte.gz",
           "test_x": "gzip/emnist-byclass-test-images-idx3-ubyte.gz",
           "test_y": "gzip/emnist-byclass-test-labels-idx1-ubyte.gz",
           "mapping": "gzip/emnist-byclass-mapping.txt"}
MANIFEST = "manifest.json"
N_CLASSES = 62


@dataclass(frozen=True)
class EmnistData:
    val_fraction: float = field(default=0.1, metadata=bounds(gt=0, lt=1))   # of train, seeded


@dataclass(frozen=True)
class EmnistTrain(Schedules):
    SCHEDULE: ClassVar[dict] = {"monitor": "val_accuracy", "mode": "max"}
    """One set of hyper-parameters for all three models; the best epoch by validation accuracy is kept."""
    epochs: int = field(default=10, metadata=bounds(ge=1))
    batch_size: int = field(default=256, metadata=bounds(ge=1))
    lr: float = field(default=1e-3, metadata=bounds(gt=0))
    weight_decay: float = field(default=5e-5, metadata=bounds(ge=0))    # L2 (Adam adds wd·w to the gradient)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    schedule: Literal["constant", "cosine"] = "cosine"
    eval_batch: int = field(default=2048, metadata=bounds(ge=1))
    train_limit: int | None = None     # first N of the training / validation / test images (None: all)
    val_limit: int | None = None
    test_limit: int | None = None


@dataclass(frozen=True)
class EmnistConfig:
    """The `emnist` section: data, the three models, their shared training."""
    data: EmnistData
    mlp: MlpConfig
    cnn: CnnConfig
    train: EmnistTrain
    source: str = ""    # a folder or URL base holding gzip.zip; wins over data.mirror here

    def validate(self, key: str) -> None:
        counts = parameter_counts(self.mlp, self.cnn, N_CLASSES)
        ratio = counts["mlp"] / counts["cnn"]
        if abs(ratio - 1) > PARAMETER_TOLERANCE:
            raise ParamError(f"{key}: the MLP has {counts['mlp']:,} parameters and the CNN {counts['cnn']:,} "
                             f"(ratio {ratio:.2f}); they must be within ±{PARAMETER_TOLERANCE:.0%} of each "
                             f"other: change {key}.mlp.hidden or {key}.cnn.channels")

    def at_scale(self, scale: str) -> "EmnistConfig":
        if scale == "full":
            return self
        train = dataclasses.replace(self.train, epochs=min(self.train.epochs, 2), train_limit=2048,
                                    val_limit=512, test_limit=1024)
        return dataclasses.replace(self, train=train)


def raw_files(raw_dir: Path) -> dict[str, Path]:
    return {key: raw_dir / Path(member).name for key, member in MEMBERS.items()}


def raw_is_complete(raw_dir: Path) -> bool:
    """True when every ByClass file is there with the digest the manifest recorded at extraction."""
    manifest = raw_dir / MANIFEST
    if not manifest.exists():
        return False
    try:
        digests = json.loads(manifest.read_text())
    except ValueError:
        return False
    for path in raw_files(raw_dir).values():
        if not path.exists() or digests.get(path.name) != _sha256(path):
            return False
    return True


def extract_byclass(archive: Path, raw_dir: Path) -> dict[str, Path]:
    """Copy ByClass's members out of the official zip into raw_dir (each written atomically),
    then write the manifest of their digests."""
    out = raw_files(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            missing = [m for m in MEMBERS.values() if m not in names]
            if missing:
                raise DataError(f"{archive}: not EMNIST's gzip.zip (no {missing[0]}); delete it and run the stage again")
            for key, member in MEMBERS.items():
                with zf.open(member) as src, atomic_path(out[key]) as tmp, open(tmp, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive}: not a readable zip file ({exc}); delete it and run the stage again") from None
    with atomic_path(raw_dir / MANIFEST) as tmp:
        Path(tmp).write_text(json.dumps({p.name: _sha256(p) for p in out.values()}, indent=1, sort_keys=True))
    return out


def read_mapping(path: Path) -> tuple[str, ...]:
    """`label ascii-code` lines -> the class names in label order."""
    pairs = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise DataError(f"{path}:{n}: expected 'label ascii-code', got {line!r}")
        pairs.append((int(parts[0]), chr(int(parts[1]))))
    labels = [label for label, _ in pairs]
    if sorted(labels) != list(range(len(labels))):
        raise DataError(f"{path}: labels are not 0..{len(labels) - 1}")
    return tuple(name for _, name in sorted(pairs))


def upright(images: Tensor) -> Tensor:
    """(N, 28, 28) as stored in EMNIST's IDX files -> the glyphs upright (a transpose of each image)."""
    return images.transpose(1, 2).contiguous()


def prepare(raw_dir: Path, val_fraction: float, seed: int) -> dict:
    """uint8 upright images, int64 labels, class names, and a seeded validation split of train."""
    files = raw_files(raw_dir)
    for path in files.values():
        if not path.exists():
            raise DataError(f"{path}: missing; run `dvc repro emnist_download` (or place the file there)")
    data = {"train_x": upright(read_idx(files["train_x"])), "train_y": read_idx(files["train_y"]).long(),
            "test_x": upright(read_idx(files["test_x"])), "test_y": read_idx(files["test_y"]).long(),
            "classes": read_mapping(files["mapping"])}
    for split in ("train", "test"):
        x, y = data[f"{split}_x"], data[f"{split}_y"]
        if x.ndim != 3 or x.shape[0] != y.shape[0]:
            raise DataError(f"{split} images {tuple(x.shape)} and labels {tuple(y.shape)} do not match")
        if y.numel() and (y.min() < 0 or y.max() >= len(data["classes"])):
            raise DataError(f"{split} labels outside 0..{len(data['classes']) - 1} of the mapping")
    n = len(data["train_y"])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(val_fraction * n))
    data["val_idx"], data["train_idx"] = perm[:n_val].sort().values, perm[n_val:].sort().values
    return data


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def first_of_each_class(labels: Tensor, classes: int) -> list[int | None]:
    """Index of the first image of each class (None where a class has no image)."""
    n = len(labels)
    first = torch.full((classes,), n, dtype=torch.long)
    first.scatter_reduce_(0, labels.long().cpu(), torch.arange(n), reduce="amin")
    return [int(i) if i < n else None for i in first]
