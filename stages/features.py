"""Feature tensors of an experiment: `python -m stages.features <experiment>`."""
from __future__ import annotations

from pathlib import Path


from pipeline import cifar10
from pipeline.device import seed_everything
from pipeline.download import fetch, mirror_setting
from pipeline.files import atomic_torch_save
from pipeline.images import load_images, needs_cifar
from pipeline.superres.config import SuperresConfig
from pipeline.superres.features import build_samples
from stages.common import choose, load_section, run

CIFAR_ARCHIVE = Path("data/raw/cifar10") / cifar10.ARCHIVE.filename
SUPERRES_OUT = Path("data/features/superres/samples.pt")


def superres(argv: list[str]) -> None:
    settings, cfg = load_section("superres", SuperresConfig)
    seed_everything(settings.seed)
    names, holdout = cfg.images.names, cfg.images.holdout
    archive = None
    if needs_cifar(names + holdout):
        archive = fetch(cifar10.ARCHIVE, CIFAR_ARCHIVE, mirror_setting(settings.data.mirror))
    hr = load_images(names, cfg.images.size, archive)
    held = load_images(holdout, cfg.images.size, archive) if holdout else hr[:0]
    samples = build_samples(hr, (2, 4), cfg.features.split, settings.seed)
    atomic_torch_save({"hr": hr, "names": names, "holdout": held, "holdout_names": holdout,
                       "samples": samples}, SUPERRES_OUT)
    counts = {f: {k: len(v) for k, v in block["split"].items()} for f, block in samples.items()}
    print(f"superres features: {len(names)} images of {cfg.images.size}px, {len(holdout)} held out; "
          f"low-res positions per split {counts} -> {SUPERRES_OUT}")


def main(argv: list[str]) -> None:
    choose({"superres": superres}, argv[0], "experiment")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.features <experiment>")
