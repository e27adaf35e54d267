"""Raw files -> one tensor file ready to move to the device whole:
`python -m stages.prepare <dataset family>` writes data/prepared/<dataset>.pt."""
from __future__ import annotations

from pathlib import Path

from pipeline import emnist, mnist
from pipeline.files import atomic_torch_save
from stages.common import choose, load_section, run


def mnist_family(argv: list[str]) -> None:
    _, cfg = load_section("mnist", mnist.MnistConfig)
    data = mnist.prepare({name: cfg.raw_dir / name for name in mnist.FILES})
    data.update(dataset=cfg.dataset, classes=mnist.CLASSES[cfg.dataset])
    atomic_torch_save(data, cfg.prepared)
    print(f"{cfg.dataset}: train {tuple(data['train_x'].shape)}, test {tuple(data['test_x'].shape)} uint8 "
          f"-> {cfg.prepared}")


EMNIST_PREPARED = Path("data/prepared/emnist.pt")
EMNIST_DATA_FIGURES = Path("figures/emnist/data")


def emnist_byclass(argv: list[str]) -> None:
    import torch

    from pipeline import mnist_figures as mf
    from stages.common import publish_figures
    from stages.download import EMNIST_RAW

    settings, cfg = load_section("emnist", emnist.EmnistConfig)
    data = emnist.prepare(EMNIST_RAW, cfg.data.val_fraction, settings.seed)
    classes = data["classes"]
    first = emnist.first_of_each_class(data["train_y"], len(classes))
    tiles = [data["train_x"][i] if i is not None else torch.empty(0) for i in first]
    shown = [i for i in first if i is not None][:10]
    figs = {"classes.png": mf.class_grid(tiles, classes),
            "orientation.png": mf.orientation(data["train_x"][shown].transpose(1, 2), data["train_x"][shown],
                                              [classes[int(data["train_y"][i])] for i in shown])}
    publish_figures(None, figs, EMNIST_DATA_FIGURES)
    atomic_torch_save(data, EMNIST_PREPARED)
    print(f"emnist: train {tuple(data['train_x'].shape)} ({len(data['val_idx'])} held out for validation), "
          f"test {tuple(data['test_x'].shape)}, {len(classes)} classes, upright -> {EMNIST_PREPARED}")


FER_PREPARED = Path("data/prepared/fer.pt")
FER_DATA_FIGURES = Path("figures/fer/data")


def fer_2013(argv: list[str]) -> None:
    from pipeline import fer, fer_figures
    from pipeline.errors import DataError
    from stages.common import publish_figures
    from stages.download import FER_RAW

    settings, cfg = load_section("fer", fer.FerConfig)
    form = fer.find_form(FER_RAW)
    if form is None:
        raise DataError(fer.no_data_message(FER_RAW))
    data = fer.prepare(form, cfg.data.val_fraction, cfg.data.test_fraction, settings.seed)
    publish_figures(None, {"classes.png": fer_figures.samples_per_class(data["train_x"], data["train_y"],
                                                                        data["classes"], seed=settings.seed)},
                    FER_DATA_FIGURES)
    atomic_torch_save(data, FER_PREPARED)
    sizes = ", ".join(f"{k} {len(data[f'{k}_y']):,} ({data['origin'][k]})" for k in ("train", "val", "test"))
    print(f"fer: {form.kind} form -> {FER_PREPARED}: {sizes}")


def cifar_10(argv: list[str]) -> None:
    from pipeline import cifar10

    data = cifar10.prepare(cifar10.RAW_DIR / cifar10.ARCHIVE.filename)
    atomic_torch_save(data, cifar10.PREPARED)
    print(f"cifar10: train {tuple(data['train_x'].shape)}, test {tuple(data['test_x'].shape)} uint8 "
          f"-> {cifar10.PREPARED}")


def main(argv: list[str]) -> None:
    choose({"mnist": mnist_family, "emnist": emnist_byclass, "fer": fer_2013, "cifar10": cifar_10}, argv[0],
           "dataset family")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.prepare <dataset family>")
