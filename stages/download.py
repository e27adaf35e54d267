"""Fetch a dataset's official files: `python -m stages.download <dataset family>`.

Files land in data/raw/<dataset>/ (a persistent DVC output: a rerun re-verifies what is there
and downloads only what is missing or wrong).
"""
from __future__ import annotations

from pathlib import Path

from pipeline import emnist, mnist
from pipeline.download import RemoteFile, fetch, mirror_setting
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


FER_RAW = Path("data/raw/fer")
FER_DOWNLOADS = Path(".cache/downloads/fer")        # git-ignored; a URL source's file, kept for reruns
FER_MARKER = ".source.json"


def fer_2013(argv: list[str]) -> None:
    """Bring FER-2013 into data/raw/fer from fer.source (URL, file or folder), or accept what was
    put there by hand; no source and nothing there: one message saying where to get it."""
    import json

    from pipeline import fer
    from pipeline.errors import DataError

    settings, cfg = load_section("fer", fer.FerConfig)
    marker = FER_RAW / FER_MARKER
    present = fer.find_form(FER_RAW)
    if not cfg.source:
        if present is None:
            raise DataError(fer.no_data_message(FER_RAW))
        print(f"fer: {present.kind} form found at {present.path}; nothing to fetch")
        return
    wanted = {"source": cfg.source, "sha256": cfg.sha256}
    if present is not None and marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"fer: {present.kind} form from {cfg.source} already in {FER_RAW}; nothing to fetch")
        return
    local = Path(cfg.source.removeprefix("file://"))
    if "://" in cfg.source and not cfg.source.startswith("file://"):
        remote = RemoteFile(url=cfg.source, sha256=cfg.sha256 or None)
        if not cfg.sha256:
            print(f"note: fer.sha256 is empty: {remote.filename} is downloaded without a checksum check")
        local = fetch(remote, FER_DOWNLOADS / remote.filename, mirror_setting(settings.data.mirror))
    fer.import_source(local, FER_RAW)
    marker.write_text(json.dumps(wanted))
    form = fer.find_form(FER_RAW)
    print(f"fer: {form.kind} form from {cfg.source} -> {FER_RAW}")


def cifar_10(argv: list[str]) -> None:
    from pipeline import cifar10

    settings, cfg = load_section("cifar10", cifar10.Cifar10Config)
    path = fetch(cifar10.ARCHIVE, cifar10.RAW_DIR / cifar10.ARCHIVE.filename,
                 mirror_setting(cfg.source or settings.data.mirror))
    print(f"cifar10: {path} verified ({path.stat().st_size / 1e6:.1f} MB)")


RESNET50_RAW = Path("data/raw/resnet50")
WEIGHTS_MARKER = RESNET50_RAW / "weights.json"


def resnet50_weights(argv: list[str]) -> None:
    """torchvision's ImageNet ResNet-50 weights file named by distill.teacher.weights, fetched and
    checked like data; with distill.teacher.pretrained false nothing is fetched. weights.json
    records which file the teacher stages are to use."""
    from pipeline.distill import DistillConfig
    from pipeline.distill_models import weights_remote
    from pipeline.errors import DownloadError
    from pipeline.files import file_digest, write_json

    settings, cfg = load_section("distill", DistillConfig)
    teacher = cfg.teacher
    if not teacher.pretrained:
        RESNET50_RAW.mkdir(parents=True, exist_ok=True)
        write_json({"weights": None, "pretrained": False}, WEIGHTS_MARKER)
        print("resnet50: distill.teacher.pretrained is false: no weights fetched; the teacher starts from "
              "random weights")
        return
    remote = weights_remote(teacher.weights)
    try:
        path = fetch(remote, RESNET50_RAW / remote.filename, mirror_setting(settings.data.mirror))
    except DownloadError as exc:
        raise DownloadError(f"{exc}; or run distill without them: "
                            "`dvc exp run -S distill.teacher.pretrained=false`") from None
    write_json({"weights": teacher.weights, "pretrained": True, "file": path.name, "url": remote.url,
                "sha256": file_digest(path)}, WEIGHTS_MARKER)
    print(f"resnet50: {teacher.weights} weights {path} verified ({path.stat().st_size / 1e6:.1f} MB)")


def main(argv: list[str]) -> None:
    choose({"mnist": mnist_family, "emnist": emnist_byclass, "fer": fer_2013, "cifar10": cifar_10,
            "resnet50": resnet50_weights}, argv[0], "dataset family")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.download <dataset family>")
