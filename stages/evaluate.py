"""Evaluate an experiment's trained models: `python -m stages.evaluate <experiment>`."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from pipeline.device import pick_device, seed_everything
from pipeline.errors import DataError
from pipeline.files import atomic_torch_save, write_csv, write_json
from pipeline.params import flatten, to_dict
from pipeline.superres import figures
from pipeline.superres.config import SuperresConfig
from pipeline.superres.evaluation import score, summary, upscale_all
from pipeline.superres.models import build_model
from pipeline.tracking import stage_run
from stages.common import choose, load_section, load_tensors, publish_figures, run
from stages.features import SUPERRES_OUT

SR_METRICS, SR_FIGURES = Path("metrics/superres"), Path("figures/superres")
SR_UPSCALED = Path("data/eval/superres/upscaled.pt")


def superres(argv: list[str]) -> None:
    settings, cfg = load_section("superres", SuperresConfig)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    feats = load_tensors(SUPERRES_OUT)
    models = {name: (load_superres_model(name, v).to(device), v.factor) for name, v in cfg.variants.items()}
    sets = {"train_images": (feats["hr"], feats["names"]), "holdout": (feats["holdout"], feats["holdout_names"])}
    upscaled, tables = {}, []
    for set_name, (hr, names) in sets.items():
        if len(names):
            up = upscale_all(hr.to(device), models)
            upscaled[set_name] = {f: {m: t.cpu() for m, t in d.items()} for f, d in up.items()}
            tables.append(score(hr.to(device), up, names, set_name))
    per_image = pd.concat(tables, ignore_index=True)
    result = summary(per_image)
    write_json(result, SR_METRICS / "eval.json")
    write_csv(per_image, SR_METRICS / "per_image.csv")
    atomic_torch_save(upscaled, SR_UPSCALED)
    figs = superres_figures(feats, upscaled, result, cfg)
    with stage_run("superres", "superres_evaluate", flatten({"variants": to_dict(dict(cfg.variants))})) as tracker:
        tracker.log_metrics(flatten(result))
        publish_figures(tracker, figs, SR_FIGURES)
    for f, methods in result.items():
        best = max(methods, key=lambda m: methods[m].get("holdout_psnr", methods[m]["psnr"]))
        print(f"superres {f}: best on hold-out {best} "
              f"{methods[best].get('holdout_psnr', float('nan')):.2f} dB, bicubic {methods['bicubic'].get('holdout_psnr', float('nan')):.2f} dB")


def load_superres_model(name: str, variant) -> torch.nn.Module:
    path = Path("models/superres") / f"{name}.pt"
    if not path.exists():
        raise DataError(f"{path}: missing; run `dvc repro superres_train@{name}` first")
    model = build_model(variant.factor, variant.target, variant.hidden, variant.residual)
    model.load_state_dict(torch.load(path, weights_only=False)["state_dict"])
    return model


def superres_figures(feats: dict, upscaled: dict, result: dict, cfg: SuperresConfig) -> dict:
    two = [n for n, v in cfg.variants.items() if v.factor == 2]
    four = [n for n, v in cfg.variants.items() if v.factor == 4]
    out = {"psnr.png": figures.psnr_bars(result)}
    for set_name, key, names_key in (("train_images", "hr", "names"), ("holdout", "holdout", "holdout_names")):
        if set_name in upscaled:
            names, up = feats[names_key], upscaled[set_name]
            out[f"grid_x2_{set_name}.png"] = figures.comparison_grid(
                feats[key], up[2], names, 2, ("bicubic", *two), ("bicubic", *two[-1:]))
            out[f"grid_x4_{set_name}.png"] = figures.comparison_grid(
                feats[key], up[4], names, 4, ("bicubic", *[f"{n} x2 twice" for n in two[-1:]], *four),
                ("bicubic", *four[-1:]))
    return out


THEORY_TABLES, THEORY_METRICS = Path("data/eval/theory"), Path("metrics/theory/checks.json")
THEORY_FIGURES = Path("figures/theory")


def theory(argv: list[str]) -> None:
    from pipeline.theory import figures as tfig
    from pipeline.theory.answers import compute
    from pipeline.theory.config import TheoryConfig

    settings, cfg = load_section("theory", TheoryConfig)
    seed_everything(settings.seed)
    tables, checks = compute(cfg, settings.seed)
    for name, table in tables.items():
        write_csv(table, THEORY_TABLES / f"{name}.csv")
    write_json(checks, THEORY_METRICS)
    figs = {"activations.png": tfig.activations(),
            "hat_approximation.png": tfig.hat_approximation(tables["piecewise_linear"], cfg.regions.knots),
            "gradient_norms.png": tfig.gradient_norms(tables["gradient_norms"]),
            "dropout.png": tfig.dropout_masks()}
    with stage_run("theory", "theory_compute", flatten(to_dict(cfg))) as tracker:
        tracker.log_metrics({k: float(v) for k, v in checks.items()})
        publish_figures(tracker, figs, THEORY_FIGURES)
    print(f"theory: {len(tables)} tables -> {THEORY_TABLES}, checks -> {THEORY_METRICS}")


FER_INSPECT = Path("figures/fer/inspect")


def fer(argv: list[str]) -> None:
    """Filters and feature maps of the trained FER model on one test face (`fer.inspect`)."""
    from pipeline import fer as fer_data
    from pipeline import fer_figures, fer_model
    from pipeline.errors import ParamError
    from stages.prepare import FER_PREPARED
    from stages.train import FER_MODEL

    settings, cfg = load_section("fer", fer_data.FerConfig)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    model, meta = fer_model.load(FER_MODEL, device)
    data = load_tensors(FER_PREPARED)
    images, labels = data["test_x"][:cfg.train.test_limit], data["test_y"][:cfg.train.test_limit]
    i = cfg.inspect.image
    if i >= len(images):
        raise ParamError(f"fer.inspect.image: {i} is past the {len(images)} test images; choose 0..{len(images) - 1}")
    blocks = len(model.blocks())
    if max(cfg.inspect.layers) > blocks:
        raise ParamError(f"fer.inspect.layers: the trained model has {blocks} conv blocks; choose among 1..{blocks}")
    image = images[i].to(device)
    probs = fer_model.probabilities(model, image.unsqueeze(0), tta=meta.get("tta", False))[0].cpu()
    figs, summary = fer_figures.inspect(model, image, int(labels[i]), probs, data["classes"], cfg.inspect.layers,
                                        cfg.inspect.channels, cfg.inspect.steps, settings.seed)
    publish_figures(None, figs, FER_INSPECT)
    write_json({"image": i, "label": data["classes"][int(labels[i])],
                "probabilities": dict(zip(data["classes"], [round(float(p), 5) for p in probs])),
                "first_layer_kernels": fer_figures.kernel_reading(model),
                "layers": {str(k): v for k, v in summary.items()}}, FER_INSPECT / "summary.json")
    print(f"fer_inspect: test image {i} ({data['classes'][int(labels[i])]}), layers "
          f"{', '.join(map(str, cfg.inspect.layers))} -> {FER_INSPECT}")


def main(argv: list[str]) -> None:
    choose({"superres": superres, "theory": theory, "fer": fer}, argv[0], "experiment")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.evaluate <experiment>")
