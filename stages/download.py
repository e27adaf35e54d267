"""Fetch a dataset's official files: `python -m stages.download <dataset family>`.

Files land in data/raw/<dataset>/ (a persistent DVC output: a rerun re-verifies what is there
and downloads only what is missing or wrong).
"""
from __future__ import annotations

from pipeline import mnist
from pipeline.download import mirror_setting
from stages.common import choose, load_section, run


def mnist_family(argv: list[str]) -> None:
    settings, cfg = load_section("mnist", mnist.MnistConfig)
    mirror = mirror_setting(cfg.source or settings.data.mirror)
    paths = mnist.fetch_all(cfg.dataset, cfg.raw_dir, mirror)
    total = sum(p.stat().st_size for p in paths.values())
    print(f"{cfg.dataset}: {len(paths)} files verified in {cfg.raw_dir} ({total / 1e6:.1f} MB)")


def main(argv: list[str]) -> None:
    choose({"mnist": mnist_family}, argv[0], "dataset family")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.download <dataset family>")
