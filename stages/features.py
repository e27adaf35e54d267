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
AE_MODEL, AE_CODES = Path("models/autoencoder/autoencoder.pt"), Path("data/features/autoencoder/codes.pt")


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


def autoencoder(argv: list[str]) -> None:
    """The trained encoder's codes of every train and test image."""
    from pipeline.autoencoder import Autoencoder, AutoencoderConfig, encode
    from pipeline.device import pick_device
    from pipeline.mnist import to_unit
    from stages.common import load_tensors, mnist_splits

    settings, cfg = load_section("autoencoder", AutoencoderConfig)
    device = pick_device(settings.device)
    saved = load_tensors(AE_MODEL)
    model = Autoencoder(tuple(saved["encoder"])).to(device)
    model.load_state_dict(saved["state_dict"])
    train, test, data = mnist_splits(device, cfg.train_limit, cfg.test_limit)
    out = {f"{name}_codes": encode(model.encoder, to_unit(split.inputs)).cpu()
           for name, split in (("train", train), ("test", test))}
    out.update(train_y=data["train_y"], test_y=data["test_y"], classes=data["classes"], dataset=data["dataset"])
    atomic_torch_save(out, AE_CODES)
    print(f"autoencoder codes: train {tuple(out['train_codes'].shape)}, test {tuple(out['test_codes'].shape)} "
          f"-> {AE_CODES}")


def main(argv: list[str]) -> None:
    choose({"superres": superres, "autoencoder": autoencoder}, argv[0], "experiment")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.features <experiment>")
