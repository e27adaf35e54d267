"""FER-2013 (48×48 grey faces, 7 expressions) from whichever form the user has.

FER-2013 has no official download. People have it as one of:

- `fer2013.csv` — columns `emotion,pixels,Usage`, Usage one of Training / PublicTest / PrivateTest;
- `icml_face_data.csv` — the same three columns as `emotion, Usage, pixels` (names with a
  leading space);
- `train.csv` (+ `test.csv`) — the Kaggle challenge files torchvision's `FER2013` reads:
  `emotion,pixels` for train; test.csv has no labels there (then it is ignored);
- image folders `train/<class>/*.png|jpg` and `test/<class>/*` (the homework's form).

`find_form` recognises them in the raw folder; `prepare` turns any of them into uint8 (N, 48, 48)
tensors with the official splits kept: Training -> train, PublicTest -> val, PrivateTest -> test.
Where a form has no validation split (folders, train.csv) a seeded share of train becomes one;
where it has no labelled test split (train.csv alone) a seeded share of train becomes the test.
`kaggle_checks` compares a form's CSVs with the md5 of Kaggle's files: a re-export can differ
and still be fine, so a mismatch is a warning for the stage to print, not an error.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import shutil
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from pipeline.core.errors import DataError, ParamError
from pipeline.core.params import bounds
from pipeline.core.schedule import Schedules

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")   # FER-2013's label order
SIZE = 48
CSV_NAMES = ("fer2013.csv", "icml_face_data.csv", "train.csv")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm"}
USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
# md5 of Kaggle's files, as torchvision lists them (torchvision.datasets.FER2013._RESOURCES, 0.29)
KAGGLE_MD5 = {"fer2013.csv": "f8428a1edbd21e88f42c73edd2a14f95",
              "icml_face_data.csv": "b114b9e04e6949e5fe8b6a98b3892b1d",
              "train.csv": "3f0dfb3d3fd99c811a1299cb947e3131",
              "test.csv": "b02c2298636a634e8c2faabbf3ea9a23"}
WHERE_TO_GET = ("FER-2013 has no official download: get fer2013.csv or icml_face_data.csv (Kaggle, "
                "'challenges-in-representation-learning-facial-expression-recognition-challenge'), or the "
                "train/ and test/ image folders (Kaggle, 'msambare/fer2013')")


@dataclass(frozen=True)
class FerData:
    val_fraction: float = field(default=0.1, metadata=bounds(gt=0, lt=1))    # of train, where no PublicTest
    test_fraction: float = field(default=0.1, metadata=bounds(gt=0, lt=1))   # of train, where no labelled test


@dataclass(frozen=True)
class FerNet:
    # one stage per entry, each halving the 48×48 map: at most 5
    channels: tuple[int, ...] = field(default=(64, 128, 256, 512), metadata=bounds(ge=1, min_len=1, max_len=5))
    convs_per_stage: int = field(default=2, metadata=bounds(ge=1))
    dropout: float = field(default=0.0, metadata=bounds(ge=0, lt=1))        # after each stage (feeds the next BN)
    hidden: int = field(default=512, metadata=bounds(ge=1))
    head_dropout: float = field(default=0.5, metadata=bounds(ge=0, lt=1))   # before and after the hidden layer


@dataclass(frozen=True)
class FerAugment:
    flip: bool = True                                                        # horizontal, half the images
    rotate: float = field(default=10.0, metadata=bounds(ge=0, le=45))        # degrees, ±
    zoom: float = field(default=0.1, metadata=bounds(ge=0, lt=0.5))          # relative, ±
    shift: float = field(default=0.1, metadata=bounds(ge=0, le=0.5))         # fraction of the side, ±
    erase: float = field(default=0.25, metadata=bounds(ge=0, le=1))          # share of images with a rectangle erased


@dataclass(frozen=True)
class FerTrain(Schedules):
    SCHEDULE: ClassVar[dict] = {"monitor": "val_accuracy", "mode": "max"}
    epochs: int = field(default=60, metadata=bounds(ge=1))
    batch_size: int = field(default=128, metadata=bounds(ge=1))
    lr: float = field(default=0.01, metadata=bounds(gt=0))
    weight_decay: float = field(default=5e-4, metadata=bounds(ge=0))
    optimizer: Literal["adam", "adamw", "sgd"] = "sgd"
    momentum: float = field(default=0.9, metadata=bounds(ge=0, lt=1))
    schedule: Literal["constant", "cosine"] = "cosine"
    label_smoothing: float = field(default=0.1, metadata=bounds(ge=0, lt=1))
    tta: bool = True               # test predictions average the image and its mirror
    eval_batch: int = field(default=1024, metadata=bounds(ge=1))
    train_limit: int | None = None  # first N images of each split (None: all)
    val_limit: int | None = None
    test_limit: int | None = None


@dataclass(frozen=True)
class FerInspect:
    image: int = field(default=0, metadata=bounds(ge=0))       # index into the test split
    layers: tuple[int, ...] = field(default=(1, 4, 8), metadata=bounds(ge=1, min_len=1))   # conv blocks, 1-based
    channels: int = field(default=8, metadata=bounds(ge=1, le=32))     # per layer, most active on the image
    steps: int = field(default=96, metadata=bounds(ge=1))              # gradient ascent for a channel's preferred input


@dataclass(frozen=True)
class FerConfig:
    data: FerData
    source: str = ""     # a URL (csv or archive) fetched through the download layer, or a local file or folder
    sha256: str = ""     # checksum of the file at a URL source (no official one exists); empty: not checked
    model: FerNet = field(default_factory=FerNet)
    augment: FerAugment = field(default_factory=FerAugment)
    train: FerTrain = field(default_factory=FerTrain)
    inspect: FerInspect = field(default_factory=FerInspect)

    def validate(self, key: str) -> None:
        blocks = len(self.model.channels) * self.model.convs_per_stage
        if max(self.inspect.layers) > blocks:
            raise ParamError(f"{key}.inspect.layers: the network has {blocks} conv blocks; "
                             f"choose layers among 1..{blocks}")

    def at_scale(self, scale: str) -> "FerConfig":
        if scale == "full":
            return self
        train = dataclasses.replace(self.train, epochs=min(self.train.epochs, 2), train_limit=512,
                                    val_limit=256, test_limit=512)
        return dataclasses.replace(self, train=train, inspect=dataclasses.replace(self.inspect, steps=8))


@dataclass(frozen=True)
class Form:
    kind: str            # fer2013 | icml | kaggle_train | folders
    path: Path           # the csv file, or the folder holding train/ and test/


def find_form(root: Path) -> Form | None:
    """The first recognised FER-2013 form under `root` (at most three levels deep), preferring the
    CSVs with all three official splits."""
    if not root.is_dir():
        return None
    candidates = [root, *sorted(p for p in root.rglob("*") if p.is_dir() and len(p.relative_to(root).parts) <= 3)]
    for name, kind in (("fer2013.csv", "fer2013"), ("icml_face_data.csv", "icml"), ("train.csv", "kaggle_train")):
        for folder in candidates:
            if (folder / name).is_file():
                return Form(kind, folder / name)
    for folder in candidates:
        if (folder / "train").is_dir() and (folder / "test").is_dir():
            return Form("folders", folder)
    return None


def kaggle_checks(form: Form) -> list[tuple[bool, str]]:
    """(matched, one line) for each CSV of `form` (none for image folders): whether its md5 is that
    of one of Kaggle's files. Each file is read once, streaming."""
    files = [] if form.kind == "folders" else [form.path]
    if form.kind == "kaggle_train" and (form.path.parent / "test.csv").is_file():
        files.append(form.path.parent / "test.csv")
    known = {md5: name for name, md5 in KAGGLE_MD5.items()}
    out = []
    for path in files:
        with open(path, "rb") as fh:
            md5 = hashlib.file_digest(fh, "md5").hexdigest()
        if md5 in known:
            out.append((True, f"fer: {path} is Kaggle's {known[md5]} (md5 {md5})"))
        else:
            out.append((False, f"warning: fer: {path} (md5 {md5}) is not Kaggle's {path.name} "
                               f"(md5 {KAGGLE_MD5.get(path.name, '?')}); a re-export may still be fine, "
                               "its rows are checked when prepared"))
    return out


def no_data_message(raw_dir: Path) -> str:
    return (f"fer: no FER-2013 data. {WHERE_TO_GET}; then set fer.source to the file, folder or a URL "
            f"(`dvc exp run -S fer.source=/path/to/fer2013.csv`), or put it in {raw_dir}/")


def import_source(source: Path, raw_dir: Path) -> Path:
    """Copy a local csv or folder, or unpack an archive, into `raw_dir` (replaced as a whole only
    once the copy is complete). Returns raw_dir."""
    if not source.exists():
        raise DataError(f"fer.source: {source} does not exist; {WHERE_TO_GET}")
    staging = raw_dir.with_name(f".{raw_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if source.is_dir():
            shutil.copytree(source, staging, dirs_exist_ok=True)
        elif source.suffix.lower() == ".csv":
            shutil.copy2(source, staging / source.name)
        elif zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as zf:
                zf.extractall(staging)
        elif tarfile.is_tarfile(source):
            with tarfile.open(source) as tf:
                tf.extractall(staging, filter="data")
        else:
            raise DataError(f"fer.source: {source} is neither a csv file, a folder, a zip nor a tar archive")
        if find_form(staging) is None:
            raise DataError(f"fer.source: {source} holds none of FER-2013's forms ({', '.join(CSV_NAMES)}, "
                            "or train/ and test/ folders with one sub-folder per class)")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if raw_dir.exists():
        shutil.rmtree(raw_dir)
    staging.rename(raw_dir)
    return raw_dir


def read_csv(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (uint8 images (N, 48, 48), int64 labels)} from one of the CSV forms. Column names
    are matched without surrounding spaces (icml_face_data.csv has ' Usage', ' pixels')."""
    rows: dict[str, tuple[list, list]] = {}
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty file; replace it with a complete copy") from None
        if "pixels" not in header:
            raise DataError(f"{path}: no 'pixels' column (header {header}); not a FER-2013 csv")
        px = header.index("pixels")
        emo = header.index("emotion") if "emotion" in header else None
        usage = header.index("usage") if "usage" in header else None
        if emo is None:
            return {}                # the challenge's unlabelled test.csv: nothing to evaluate with
        for n, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) < len(header):
                raise DataError(f"{path}:{n}: {len(row)} columns where the header has {len(header)}; the file is "
                                "truncated or not FER-2013")
            split = USAGE.get(row[usage].strip()) if usage is not None else "train"
            if split is None:
                raise DataError(f"{path}:{n}: Usage {row[usage]!r} is not one of {', '.join(USAGE)}")
            values = np.array(row[px].split(), dtype=np.int64)
            if values.size != SIZE * SIZE or values.min(initial=0) < 0 or values.max(initial=0) > 255:
                raise DataError(f"{path}:{n}: expected {SIZE * SIZE} pixel values 0..255, got {values.size}; "
                                "the file is truncated or not FER-2013")
            label = int(row[emo])
            if not 0 <= label < len(CLASSES):
                raise DataError(f"{path}:{n}: emotion {label} outside 0..{len(CLASSES) - 1}")
            images, labels = rows.setdefault(split, ([], []))
            images.append(values.astype(np.uint8).reshape(SIZE, SIZE))
            labels.append(label)
    return {k: (np.stack(v[0]), np.array(v[1], dtype=np.int64)) for k, v in rows.items()}


def read_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 48, 48) and labels from `folder/<class>/*` (class names as in CLASSES, any case);
    colour images become grey, other sizes are resized to 48×48."""
    from skimage import io
    from skimage.color import rgb2gray
    from skimage.transform import resize

    lookup = {c: i for i, c in enumerate(CLASSES)}
    images, labels = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        label = lookup.get(sub.name.lower())
        if label is None:
            raise DataError(f"{sub}: not a FER-2013 class folder; expected one of {', '.join(CLASSES)}")
        for file in sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                img = io.imread(file)
            except Exception as exc:  # noqa: BLE001 - any decoder failure means the same to the user
                raise DataError(f"{file}: unreadable image ({exc.__class__.__name__}); delete or replace it") from None
            if img.ndim == 3:
                img = rgb2gray(img[..., :3]) * 255
            if img.shape != (SIZE, SIZE):
                img = resize(img.astype(np.float64), (SIZE, SIZE), preserve_range=True, anti_aliasing=True)
            images.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
            labels.append(label)
    if not images:
        raise DataError(f"{folder}: no images in its class folders")
    return np.stack(images), np.array(labels, dtype=np.int64)


def prepare(form: Form, val_fraction: float, test_fraction: float, seed: int) -> dict:
    """train / val / test uint8 images and int64 labels, class names, and where each split came from."""
    if form.kind == "folders":
        splits = {"train": read_folder(form.path / "train"), "test": read_folder(form.path / "test")}
    else:
        splits = read_csv(form.path)
        if form.kind == "kaggle_train" and (form.path.parent / "test.csv").is_file():
            splits.update({k if k != "train" else "test": v for k, v in read_csv(form.path.parent / "test.csv").items()})
    if "train" not in splits:
        raise DataError(f"{form.path}: no training images (Usage 'Training')")
    names = {v: k for k, v in USAGE.items()}
    origin = {k: names[k] if form.kind in ("fer2013", "icml") else f"{k}/ folder" if form.kind == "folders"
              else f"{'train' if k == 'train' else 'test'}.csv" for k in splits}
    missing = [(name, fraction) for name, fraction in (("test", test_fraction), ("val", val_fraction))
               if name not in splits]
    if missing:                 # held out of train, each a fraction of the whole train split, seeded
        x, y = splits["train"]
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)).numpy()
        counts = [max(1, round(fraction * len(y))) for _, fraction in missing]
        if len(y) - sum(counts) < 1:
            raise DataError(f"{form.path}: too few training images ({len(y)}) to hold out "
                            f"{' and '.join(n for n, _ in missing)} splits")
        start = 0
        for (name, fraction), n in zip(missing, counts):
            held = np.sort(perm[start:start + n])
            splits[name] = (x[held], y[held])
            origin[name] = f"seeded {fraction:.0%} of {origin['train']}"
            start += n
        kept = np.sort(perm[start:])
        splits["train"] = (x[kept], y[kept])
    out = {"classes": CLASSES, "form": form.kind, "origin": origin}
    for name in ("train", "val", "test"):
        x, y = splits[name]
        out[f"{name}_x"], out[f"{name}_y"] = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)
    return out
