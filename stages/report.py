"""Render an experiment's report: `python -m stages.report <experiment>`.

reports/<experiment>.py (jupytext) -> reports/<experiment>.ipynb (papermill) -> reports/<experiment>.html
"""
from __future__ import annotations

from pathlib import Path

from pipeline.errors import ParamError
from pipeline.batchsize import BatchSizeConfig
from pipeline.colourize import ColourizeConfig
from pipeline.distill import DistillConfig
from pipeline.emnist import EmnistConfig
from pipeline.mnist import MnistConfig
from pipeline.params import load_params, parse, to_dict
from pipeline.report import render
from pipeline.settings import settings_from
from stages.common import run

REPORTS = Path("reports")
EXPERIMENTS = ("superres", "separable", "theory", "batch_size", "autoencoder", "emnist", "fer", "distill",
               "colourize")
MNIST_FAMILY = ("batch_size", "autoencoder")     # their reports also name the dataset they ran on


def main(argv: list[str]) -> None:
    name = argv[0]
    if name not in EXPERIMENTS:
        raise ParamError(f"report {name!r}: no such report; choose one of {', '.join(EXPERIMENTS)}")
    params = load_params()
    settings = settings_from(params)
    values = {"scale": settings.scale, "root": "."}
    if name in MNIST_FAMILY:
        values["dataset"] = parse(MnistConfig, params.get("mnist", {}), key="mnist").dataset
    if name == "batch_size":     # the runs of this configuration, not stale files of earlier ones
        values["sizes"] = list(parse(BatchSizeConfig, params.get("batch_size", {}), key="batch_size").sizes)
    if name == "emnist":         # the models as configured, so the report can rebuild their layer tables
        cfg = parse(EmnistConfig, params.get("emnist", {}), key="emnist").at_scale(settings.scale)
        values.update(mlp=to_dict(cfg.mlp), cnn=to_dict(cfg.cnn), train=to_dict(cfg.train))
    preface = None
    if name == "distill":        # the grid as configured; a teacher without ImageNet weights is said first
        cfg = parse(DistillConfig, params.get("distill", {}), key="distill")
        values.update(alpha=list(cfg.grid.alpha), tau=list(cfg.grid.tau))
        preface = distill_preface()
    if name == "colourize":      # the sweeps and runs as configured (not stale files of earlier ones)
        cfg = parse(ColourizeConfig, params.get("colourize", {}), key="colourize").at_scale(settings.scale)
        values.update(sweep_cnn=to_dict(cfg.sweep_cnn), sweep_unet=to_dict(cfg.sweep_unet),
                      runs={m: to_dict(cfg.run(m)) for m in ("cnn", "unet", "residual")})
    render(REPORTS / f"{name}.py", REPORTS / f"{name}.ipynb", REPORTS / f"{name}.html", values, cwd=Path.cwd(),
           preface=preface)
    print(f"report {name}: {REPORTS / f'{name}.html'}")


def distill_preface() -> str | None:
    """A warning line when the teacher runs had no pretrained weights (read from their metrics)."""
    import json

    runs = [p for p in (Path("metrics/distill/teacher.json"), Path("metrics/distill/finetune.json")) if p.exists()]
    if all(json.loads(p.read_text()).get("pretrained", True) for p in runs):
        return None
    return ("> **Made without pretrained weights** (`distill.teacher.pretrained: false`): the ResNet-50 "
            "teacher started from random weights, so (a), (b) and (d) show the pipeline working, not what "
            "ImageNet features give. Set it to true and run `dvc repro` for the real comparison.")


if __name__ == "__main__":
    run(main, "usage: python -m stages.report <experiment>")
