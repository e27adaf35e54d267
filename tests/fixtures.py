"""Format-faithful dataset fixtures: real handwritten digits (scikit-learn's) in MNIST's and
EMNIST's true file layouts."""
from __future__ import annotations

import io
import string
import zipfile
from pathlib import Path

import numpy as np
import torch

from pipeline import emnist
from pipeline.idx import write_idx
from pipeline.mnist import FILES

EMNIST_NAMES = string.digits + string.ascii_uppercase + string.ascii_lowercase


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits scaled into a 20x20 box centred on 28x28 (as MNIST's),
    uint8 (N, 28, 28), with their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images).float()[:, None] * (255 / 16)
    box = torch.nn.functional.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)
    images = torch.nn.functional.pad(box, (4, 4, 4, 4))[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    return images, digits.target.astype(np.uint8)


def write_mnist_files(folder: Path, n_train: int = 1297) -> None:
    images, labels = digit_images()
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in zip(FILES, (images[:n_train], labels[:n_train], images[n_train:], labels[n_train:])):
        write_idx(arr, folder / name)


def _idx_bytes(arr: np.ndarray, tmp: Path) -> bytes:
    write_idx(arr, tmp)
    return tmp.read_bytes()


def write_emnist_zip(path: Path, images: np.ndarray, labels: np.ndarray, n_train: int) -> None:
    """NIST's gzip.zip layout: gzip/emnist-<split>-{train,test}-{images,labels}-idx*-ubyte.gz and
    gzip/emnist-<split>-mapping.txt, images stored transposed as EMNIST stores them. Besides
    ByClass it holds a `digits` split, which the pipeline must not keep."""
    stored = np.ascontiguousarray(images.transpose(0, 2, 1))
    mapping = "".join(f"{i} {ord(c)}\n" for i, c in enumerate(EMNIST_NAMES))
    tmp = path.with_suffix(".part.gz")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for split in ("byclass", "digits"):
            for key, arr in (("train-images-idx3", stored[:n_train]), ("train-labels-idx1", labels[:n_train]),
                             ("test-images-idx3", stored[n_train:]), ("test-labels-idx1", labels[n_train:])):
                zf.writestr(f"gzip/emnist-{split}-{key}-ubyte.gz", _idx_bytes(arr, tmp))
            zf.writestr(f"gzip/emnist-{split}-mapping.txt", mapping)
    tmp.unlink()
    path.write_bytes(buf.getvalue())
    assert set(emnist.MEMBERS.values()) <= set(zipfile.ZipFile(path).namelist())
