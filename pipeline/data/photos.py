"""Colour photographs that ship with the installed packages, and a fixed working size.

Names are `<source>:<id>`:
  skimage:<name>   scikit-image's bundled photographs (astronaut, chelsea, coffee ...)
  sklearn:<name>   scikit-learn's sample images (china, flower)
  cifar10:<index>  an image of the CIFAR-10 test split (needs the archive, see cifar10.py)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import ParamError

SKIMAGE = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel",
           "hubble_deep_field", "retina", "logo", "stereo_motorcycle")
SKLEARN = ("china", "flower")
SOURCES = ("skimage", "sklearn", "cifar10")


def check_name(name: str, key: str) -> None:
    source, _, ident = name.partition(":")
    allowed = {"skimage": SKIMAGE, "sklearn": SKLEARN}
    if source in allowed and ident in allowed[source]:
        return
    if source == "cifar10" and ident.isdigit() and int(ident) < 10000:
        return
    raise ParamError(f"{key}: {name!r} is not a known image; use skimage:<{'|'.join(SKIMAGE)}>, "
                     f"sklearn:<{'|'.join(SKLEARN)}> or cifar10:<0-9999>")


def bundled_photo(name: str) -> np.ndarray:
    """A bundled photograph as uint8 (H, W, 3) RGB."""
    source, _, ident = name.partition(":")
    if source == "skimage":
        import skimage.data

        img = getattr(skimage.data, ident)()
        img = img[0] if isinstance(img, tuple) else img        # stereo pairs: the left view
    elif source == "sklearn":
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{ident}.jpg")
    else:
        raise ValueError(f"{name} is not a bundled photograph")
    if img.shape[-1] == 4:      # RGBA (logo): composite on white
        alpha = img[..., 3:4].astype(np.float32) / 255
        img = np.round(img[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(img)


def square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop, resized (anti-aliased) to size x size; uint8 (size, size, 3)."""
    from skimage.transform import resize

    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = img[top:top + s, left:left + s]
    if s == size:
        return crop.copy()
    out = resize(crop, (size, size), order=3, anti_aliasing=True, preserve_range=True)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def load_images(names: tuple[str, ...], size: int, cifar_archive: Path | None = None) -> torch.Tensor:
    """uint8 (N, 3, size, size) for the named images."""
    out = []
    cifar = None
    for name in names:
        source, _, ident = name.partition(":")
        if source == "cifar10":
            if cifar is None:
                from pipeline.data.cifar10 import read_split

                cifar = read_split(cifar_archive, "test")[0]
            img = cifar[int(ident)].permute(1, 2, 0).numpy()
        else:
            img = bundled_photo(name)
        out.append(torch.from_numpy(square(img, size)).permute(2, 0, 1))
    return torch.stack(out)


def needs_cifar(names: tuple[str, ...]) -> bool:
    return any(n.startswith("cifar10:") for n in names)
