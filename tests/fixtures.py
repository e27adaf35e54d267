"""Format-faithful dataset fixtures: real handwritten digits (scikit-learn's) in MNIST's and
EMNIST's true file layouts."""
from __future__ import annotations

import io
import string
import zipfile
from pathlib import Path

import numpy as np
import torch

from pipeline.data.idx import write_idx
from pipeline.data.mnist import FILES
from pipeline.emnist import data as emnist

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


# ---------------------------------------------------------------- FER-2013 in its real forms

FER_CLASS_FOLDERS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")   # Kaggle's names


def fer_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n 48×48 uint8 'faces': a noisy oval whose mouth row and brightness depend on the class,
    so a small network can tell the classes apart; labels cycle through the 7 classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :48]
    oval = ((yy - 24) / 20) ** 2 + ((xx - 24) / 15) ** 2 < 1
    labels = np.arange(n) % 7
    images = rng.normal(60, 20, (n, 48, 48))
    for i, c in enumerate(labels):
        images[i][oval] += 80 + 10 * c
        images[i, 28 + 2 * c:30 + 2 * c, 16:32] = 20 + 30 * c                # the 'mouth'
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def write_fer_csv(path: Path, images: np.ndarray, labels: np.ndarray, usage: list[str] | None,
                  style: str = "fer2013") -> None:
    """fer2013.csv (`emotion,pixels,Usage`), icml_face_data.csv (`emotion, Usage, pixels`) or the
    challenge's train.csv (`emotion,pixels`) / unlabelled test.csv (`pixels`)."""
    pixels = [" ".join(map(str, img.flatten().tolist())) for img in images]
    lines = {"fer2013": ["emotion,pixels,Usage"] + [f'{y},"{p}",{u}' for y, p, u in zip(labels, pixels, usage or [])],
             "icml": ["emotion, Usage, pixels"] + [f"{y},{u},{p}" for y, p, u in zip(labels, pixels, usage or [])],
             "train": ["emotion,pixels"] + [f'{y},"{p}"' for y, p in zip(labels, pixels)],
             "test_unlabelled": ["pixels"] + [f'"{p}"' for p in pixels]}[style]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def write_fer_folders(root: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], suffix: str = ".png") -> None:
    """root/<split>/<class>/<n>.png, as Kaggle's image-folder FER-2013 is laid out."""
    from skimage import io as skio

    for split, (images, labels) in splits.items():
        for n, (img, y) in enumerate(zip(images, labels)):
            folder = root / split / FER_CLASS_FOLDERS[int(y)]
            folder.mkdir(parents=True, exist_ok=True)
            skio.imsave(folder / f"{split}_{n:05d}{suffix}", img, check_contrast=False)


CIFAR_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel",
                "hubble_deep_field", "retina", "logo", "stereo_motorcycle")


def cifar_images(per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (10·per_class, 3, 32, 32) images and labels: class c is random crops (a quarter to a
    half of the side, resized) of scikit-image's colour photograph CIFAR_PHOTOS[c] — real
    photographs' statistics, and a task a network can learn."""
    from skimage import data as skdata
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c, name in enumerate(CIFAR_PHOTOS):
        photo = getattr(skdata, name)()
        photo = (photo[0] if isinstance(photo, tuple) else photo)[..., :3]     # the motorcycle: its left view
        h, w = photo.shape[:2]
        h, w = round(192 * h / min(h, w)), round(192 * w / min(h, w))         # shrink once: quick crops
        photo = resize(photo, (h, w), anti_aliasing=True, preserve_range=True)
        for _ in range(per_class):
            side = int(rng.integers(min(h, w) // 4, min(h, w) // 2))
            y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
            crop = resize(photo[y:y + side, x:x + side], (32, 32), anti_aliasing=True, preserve_range=True)
            images.append(crop.round().clip(0, 255).astype(np.uint8).transpose(2, 0, 1))
            labels.append(c)
    order = rng.permutation(len(labels))
    return np.stack(images)[order], np.array(labels, dtype=np.int64)[order]


def write_cifar_archive(path: Path, images: np.ndarray, labels: np.ndarray, n_test: int) -> None:
    """cifar-10-python.tar.gz in the true layout: five training batches and test_batch, pickled
    dicts with bytes keys, 3072 uint8 per row (channel-major), plus batches.meta."""
    import io
    import pickle
    import tarfile

    rows = images.reshape(len(images), -1)
    train_rows, train_labels = rows[n_test:], labels[n_test:]
    parts = [(f"data_batch_{i + 1}", r, lab) for i, (r, lab) in
             enumerate(zip(np.array_split(train_rows, 5), np.array_split(train_labels, 5)))]
    parts.append(("test_batch", rows[:n_test], labels[:n_test]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, r, lab in parts + [("batches.meta", None, None)]:
            entry = ({b"label_names": [c.encode() for c in CIFAR_PHOTOS]} if r is None else
                     {b"data": r, b"labels": [int(v) for v in lab], b"batch_label": name.encode()})
            blob = pickle.dumps(entry)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
