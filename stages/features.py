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

CIFAR_ARCHIVE = cifar10.RAW_DIR / cifar10.ARCHIVE.filename
SUPERRES_OUT = Path("data/features/superres/samples.pt")
AE_MODEL, AE_CODES = Path("models/autoencoder/autoencoder.pt"), Path("data/features/autoencoder/codes.pt")
DISTILL_TEACHER = Path("models/distill/teacher.pt")


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


FEATURES_DIR = Path("data/features/distill")
DISTILL_FEATURES, DISTILL_LOGITS = FEATURES_DIR / "backbone.pt", FEATURES_DIR / "teacher_logits.pt"


def distill_images(cfg, seed: int, device) -> dict:
    """The prepared CIFAR-10 split as distill uses it: {split: (uint8 images, labels) on device},
    the split indices and the class names."""
    from pipeline import cifar10
    from pipeline.distill import split_indices
    from stages.common import load_tensors

    data = load_tensors(cifar10.PREPARED)
    idx = split_indices(len(data["train_y"]), len(data["test_y"]), cfg.data, seed)
    out = {}
    for name, source in (("train", "train"), ("val", "train"), ("test", "test")):
        out[name] = (data[f"{source}_x"][idx[name]].to(device), data[f"{source}_y"][idx[name]].to(device))
    return {"splits": out, "index": idx, "classes": data["classes"]}


def distill_teacher_net(cfg, device, frozen: bool = True):
    """The ResNet-50 teacher with the backbone weights weights.json names (or random ones when
    distill.teacher.pretrained is false), on `device`; its backbone frozen unless `frozen` is false."""
    import json

    import torch

    from pipeline.distill_models import ResNetTeacher, load_backbone
    from pipeline.errors import DataError
    from stages.download import RESNET50_RAW, WEIGHTS_MARKER

    teacher = ResNetTeacher(cfg.teacher.resize)
    if cfg.teacher.pretrained:
        marker = json.loads(WEIGHTS_MARKER.read_text()) if WEIGHTS_MARKER.exists() else {}
        if marker.get("weights") != cfg.teacher.weights:
            raise DataError(f"{RESNET50_RAW}: no {cfg.teacher.weights} weights recorded; run "
                            "`dvc repro resnet50_weights` first (or set distill.teacher.pretrained: false)")
        load_backbone(teacher, RESNET50_RAW / marker["file"])
    teacher = teacher.to(device)
    if frozen:
        teacher.freeze_backbone()
    if device.type == "cuda":
        teacher = teacher.to(memory_format=torch.channels_last)
    return teacher


def distill(argv: list[str]) -> None:
    """The frozen ResNet-50 backbone's 2048 features of every image of the three splits, computed once."""
    from pipeline.device import autocast_dtype, pick_device
    from pipeline.distill import DistillConfig
    from pipeline.distill_models import batched, throughput

    settings, cfg = load_section("distill", DistillConfig)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    amp = autocast_dtype(device, settings.precision)
    images = distill_images(cfg, settings.seed, device)
    teacher = distill_teacher_net(cfg, device).eval()
    out = {"resize": cfg.teacher.resize, "pretrained": cfg.teacher.pretrained,
           "weights": cfg.teacher.weights if cfg.teacher.pretrained else None, "classes": images["classes"]}
    for name, (x, y) in images["splits"].items():
        out[name] = batched(teacher.features, x, cfg.teacher.batch, amp).half().cpu()
        out[f"{name}_y"] = y.cpu()
    test_x = images["splits"]["test"][0]
    out["images_per_second"] = throughput(teacher, test_x[:cfg.teacher.batch * 4], cfg.teacher.batch, amp)
    atomic_torch_save(out, DISTILL_FEATURES)
    print(f"distill features: {', '.join(f'{k} {tuple(out[k].shape)}' for k in ('train', 'val', 'test'))} at "
          f"{cfg.teacher.resize}px ({'pretrained ' + cfg.teacher.weights if cfg.teacher.pretrained else 'random weights'}"
          f"), teacher {out['images_per_second']:,.0f} images/s on {device} -> {DISTILL_FEATURES}")


def distill_logits(argv: list[str]) -> None:
    """The trained teacher's logits for every stored view of every training image (the
    student's soft targets), so no student step runs ResNet-50."""
    from pipeline.device import autocast_dtype, pick_device
    from pipeline.distill import DistillConfig, make_views
    from pipeline.distill_models import view_logits
    from stages.common import load_tensors

    settings, cfg = load_section("distill", DistillConfig)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    amp = autocast_dtype(device, settings.precision)
    x, y = distill_images(cfg, settings.seed, device)["splits"]["train"]
    teacher = distill_teacher_net(cfg, device)
    teacher.head.load_state_dict(load_tensors(DISTILL_TEACHER)["head"])
    views = make_views(len(x), cfg.views, settings.seed)
    logits = view_logits(teacher, x, views.to(device), cfg.teacher.batch, amp).cpu()
    agree = float((logits[:, 0].argmax(1) == y.cpu()).float().mean())
    atomic_torch_save({"logits": logits, "views": views, "labels": y.cpu()}, DISTILL_LOGITS)
    print(f"distill logits: {tuple(logits.shape)} (images, views, classes); the teacher is right on "
          f"{100 * agree:.2f} % of the training images -> {DISTILL_LOGITS}")


COLOURIZE_HORSES = Path("data/features/colourize/horses.pt")
COLOURIZE_FIGURES = Path("figures/colourize")


def colourize(argv: list[str]) -> None:
    """CIFAR-10's horses (train: 5,000 training images; val: the 1,000 test ones), the palette
    k-means finds on the training horses' pixels, and every pixel's nearest palette colour."""
    import torch

    from pipeline import cifar10
    from pipeline import colourize as col
    from pipeline.colourize_figures import palette_figure
    from pipeline.device import pick_device
    from pipeline.files import write_json
    from stages.common import load_tensors, publish_figures

    settings, cfg = load_section("colourize", col.ColourizeConfig)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    data = load_tensors(cifar10.PREPARED)
    out = {}
    for name, split, limit in (("train", "train", cfg.train_limit), ("val", "test", cfg.val_limit)):
        x = data[f"{split}_x"][data[f"{split}_y"] == col.HORSE][:limit]
        if len(x) == 0:
            from pipeline.errors import DataError
            raise DataError(f"{cifar10.PREPARED}: no horses (class {col.HORSE}) in the {split} split")
        out[f"{name}_x"] = x
    palette = col.build_palette(out["train_x"].to(device), cfg.palette, settings.seed)
    for name in ("train", "val"):
        out[f"{name}_y"] = col.nearest_colour(out[f"{name}_x"].to(device), palette).cpu()
    out["palette"] = palette.cpu()
    publish_figures(None, {"palette.png": palette_figure(out["palette"], out["train_y"])}, COLOURIZE_FIGURES / "data")
    share = torch.bincount(out["train_y"].flatten().long(), minlength=len(palette)).float()
    write_json({"palette": out["palette"].tolist(), "train_share": (share / share.sum()).tolist(),
                "train_horses": len(out["train_x"]), "val_horses": len(out["val_x"])},
               COLOURIZE_FIGURES / "data" / "palette.json")
    atomic_torch_save(out, COLOURIZE_HORSES)
    print(f"colourize: {len(out['train_x']):,} training and {len(out['val_x']):,} validation horses, "
          f"{len(palette)} colours (the commonest covers {100 * float(share.max() / share.sum()):.1f} % of the "
          f"training pixels) -> {COLOURIZE_HORSES}")


def main(argv: list[str]) -> None:
    choose({"superres": superres, "autoencoder": autoencoder, "distill": distill, "distill_logits": distill_logits,
            "colourize": colourize},
           argv[0], "experiment")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.features <experiment>")
