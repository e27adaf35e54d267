"""CIFAR-10, python version: the official archive and its reader."""
from __future__ import annotations

import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import DataError
from pipeline.data.download import RemoteFile

ARCHIVE = RemoteFile(url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                     md5="c58f30108f718f92721af3b95e74349a")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_split(archive: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) of 'train' or 'test', read inside the tar."""
    members = TRAIN_BATCHES if split == "train" else ("test_batch",)
    if not Path(archive).exists():
        raise DataError(f"{archive}: missing; run `dvc repro cifar10_download` (set cifar10.source or data.mirror "
                        "if offline) first")
    images, labels = [], []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in members:
                fh = tar.extractfile(f"cifar-10-batches-py/{name}")
                if fh is None:
                    raise KeyError(name)
                batch = pickle.load(fh, encoding="bytes")
                images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    except (tarfile.TarError, KeyError, EOFError, pickle.UnpicklingError, OSError) as exc:
        raise DataError(f"{archive}: not a readable CIFAR-10 python archive ({exc.__class__.__name__}: {exc}); "
                        "delete it and run the stage again to download it afresh") from None
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


@dataclass(frozen=True)
class Cifar10Config:
    """The `cifar10` section, shared by `distill` and `colourize`: one download, one prepare."""
    source: str = ""     # a folder or URL base holding cifar-10-python.tar.gz; wins over data.mirror here

    def at_scale(self, scale: str) -> "Cifar10Config":
        return self


RAW_DIR = Path("data/raw/cifar10")
PREPARED = Path("data/prepared/cifar10.pt")


def prepare(archive: str | Path) -> dict:
    """Both official splits as uint8 (N, 3, 32, 32) tensors with int64 labels, and the class names."""
    train_x, train_y = read_split(archive, "train")
    test_x, test_y = read_split(archive, "test")
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y, "classes": CLASSES}
