"""Fetch a dataset's official files: `python -m stages.download <dataset family>`.

Files land in data/raw/<dataset>/ (a persistent DVC output: a rerun re-verifies what is there
and downloads only what is missing or wrong).
"""
from __future__ import annotations

from pathlib import Path

from pipeline import emnist, mnist
from pipeline.download import fetch, mirror_setting
from stages.common import choose, load_section, run


def mnist_family(argv: list[str]) -> None:
    settings, cfg = load_section("mnist", mnist.MnistConfig)
    mirror = mirror_setting(cfg.source or settings.data.mirror)
    paths = mnist.fetch_all(cfg.dataset, cfg.raw_dir, mirror)
    total = sum(p.stat().st_size for p in paths.values())
    print(f"{cfg.dataset}: {len(paths)} files verified in {cfg.raw_dir} ({total / 1e6:.1f} MB)")


EMNIST_RAW = Path("data/raw/emnist")
EMNIST_ARCHIVE = Path(".cache/downloads/emnist") / emnist.ARCHIVE.filename   # git-ignored, removed once extracted


def emnist_byclass(argv: list[str]) -> None:
    settings, cfg = load_section("emnist", emnist.EmnistConfig)
    if emnist.raw_is_complete(EMNIST_RAW):
        print(f"emnist: ByClass files verified against {EMNIST_RAW / emnist.MANIFEST}; nothing to download")
        return
    archive = fetch(emnist.ARCHIVE, EMNIST_ARCHIVE, mirror_setting(cfg.source or settings.data.mirror))
    files = emnist.extract_byclass(archive, EMNIST_RAW)
    archive.unlink()
    total = sum(p.stat().st_size for p in files.values())
    print(f"emnist: ByClass extracted to {EMNIST_RAW} ({total / 1e6:.1f} MB); the archive is removed")


def main(argv: list[str]) -> None:
    choose({"mnist": mnist_family, "emnist": emnist_byclass}, argv[0], "dataset family")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.download <dataset family>")
