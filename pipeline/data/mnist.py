"""MNIST and Fashion-MNIST: official archives with their checksums, fetched and read once.

Fashion-MNIST also installs offline from Debian's `dataset-fashion-mnist`: set
`mnist.dataset: fashion_mnist` and `mnist.source: /usr/share/datasets/fashion-mnist`. Debian
recompresses the archives, so they are verified by the digest of their decompressed content.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from pipeline.core.errors import DataError
from pipeline.data.download import RemoteFile, fetch
from pipeline.data.idx import read_idx

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

_MNIST_MD5 = ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")
_FASHION_MD5 = ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")
_FASHION_CONTENT = ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")

SOURCES: dict[str, dict[str, RemoteFile]] = {
    "mnist": {f: RemoteFile(url=f"https://ossci-datasets.s3.amazonaws.com/mnist/{f}", md5=m,
                            fallbacks=(f"http://yann.lecun.com/exdb/mnist/{f}",))
              for f, m in zip(FILES, _MNIST_MD5)},
    "fashion_mnist": {f: RemoteFile(url=f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{f}",
                                    md5=m, content_sha256=c)
                      for f, m, c in zip(FILES, _FASHION_MD5, _FASHION_CONTENT)},
}
CLASSES = {"mnist": tuple(str(i) for i in range(10)),
           "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                             "Sneaker", "Bag", "Ankle boot")}


@dataclass(frozen=True)
class MnistConfig:
    """The `mnist` section: which MNIST-format dataset the MNIST-family experiments use."""
    dataset: Literal["mnist", "fashion_mnist"] = "mnist"
    source: str = ""    # a folder or URL base holding the four .gz files; wins over data.mirror here

    def at_scale(self, scale: str) -> "MnistConfig":
        return self

    @property
    def raw_dir(self) -> Path:
        return Path("data/raw") / self.dataset

    @property
    def prepared(self) -> Path:
        return Path("data/prepared") / f"{self.dataset}.pt"


def fetch_all(dataset: str, raw_dir: Path, mirror: str = "",
              sources: dict[str, RemoteFile] | None = None) -> dict[str, Path]:
    """The four archives in raw_dir, each verified."""
    files = sources or SOURCES[dataset]
    return {name: fetch(remote, raw_dir / name, mirror) for name, remote in files.items()}


def prepare(paths: dict[str, Path]) -> dict[str, torch.Tensor]:
    """uint8 images (N, 28, 28) and int64 labels for train and test, checked for consistency."""
    for path in paths.values():
        if not Path(path).exists():
            raise DataError(f"{path}: missing; run `dvc repro mnist_download` (or place the official file there)")
    out = {"train_x": read_idx(paths[FILES[0]]), "train_y": read_idx(paths[FILES[1]]).long(),
           "test_x": read_idx(paths[FILES[2]]), "test_y": read_idx(paths[FILES[3]]).long()}
    for split in ("train", "test"):
        x, y = out[f"{split}_x"], out[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise DataError(f"{split} images {tuple(x.shape)} and labels {tuple(y.shape)} do not match; "
                            "the raw files are not an MNIST-format set")
        if y.numel() and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{split} labels outside 0-9; the raw files are not an MNIST-format set")
    return out


def limit(data: dict, n_train: int | None, n_test: int | None) -> dict:
    """The first n_train / n_test images of each split (None keeps all): the smoke-scale subset."""
    out = dict(data)
    for split, n in (("train", n_train), ("test", n_test)):
        if n is not None:
            out[f"{split}_x"], out[f"{split}_y"] = data[f"{split}_x"][:n], data[f"{split}_y"][:n]
    return out


def to_unit(images: Tensor) -> Tensor:
    """uint8 (N, 28, 28) -> float (N, 784) in [0, 1]: torchvision's ToTensor, then Normalize(0, 1)
    (subtract 0, divide by 1: the report's normalisation leaves the values as they are)."""
    return images.reshape(images.shape[0], -1).float().div_(255.0)


def flat_unit(x: Tensor, y: Tensor, training: bool) -> tuple[Tensor, Tensor]:
    """The engine's `prepare` hook for MLPs on uint8 images kept on the device."""
    return to_unit(x), y


def on_device(data: dict, device, n_train: int | None = None, n_test: int | None = None) -> tuple:
    """A prepared MNIST-family dataset's uint8 images and labels moved to `device` whole, cut to
    the first n_train / n_test: (train Split, test Split, the cut data)."""
    from pipeline.core.split import Split

    data = limit(data, n_train, n_test)
    return (Split(data["train_x"].to(device), data["train_y"].to(device)),
            Split(data["test_x"].to(device), data["test_y"].to(device)), data)
