"""Raw files -> one tensor file ready to move to the device whole:
`python -m stages.prepare <dataset family>` writes data/prepared/<dataset>.pt."""
from __future__ import annotations

from pipeline import mnist
from pipeline.files import atomic_torch_save
from stages.common import choose, load_section, run


def mnist_family(argv: list[str]) -> None:
    _, cfg = load_section("mnist", mnist.MnistConfig)
    data = mnist.prepare({name: cfg.raw_dir / name for name in mnist.FILES})
    data.update(dataset=cfg.dataset, classes=mnist.CLASSES[cfg.dataset])
    atomic_torch_save(data, cfg.prepared)
    print(f"{cfg.dataset}: train {tuple(data['train_x'].shape)}, test {tuple(data['test_x'].shape)} uint8 "
          f"-> {cfg.prepared}")


def main(argv: list[str]) -> None:
    choose({"mnist": mnist_family}, argv[0], "dataset family")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.prepare <dataset family>")
