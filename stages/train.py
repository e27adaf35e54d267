"""Train one model: `python -m stages.train <experiment> <variant>`."""
from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pandas as pd
from pipeline.device import autocast_dtype, pick_device, seed_everything
from pipeline.errors import ParamError
from pipeline.files import atomic_path, atomic_torch_save, write_json
from pipeline.params import flatten, to_dict
from pipeline.superres.config import SuperresConfig
from pipeline.superres.training import parameter_count, train_variant
from pipeline.tracking import stage_run
from stages.common import choose, load_section, load_tensors, resume_dir, run
from stages.features import SUPERRES_OUT


def superres(argv: list[str]) -> None:
    if len(argv) != 1:
        raise ParamError("usage: python -m stages.train superres <variant>")
    name = argv[0]
    settings, cfg = load_section("superres", SuperresConfig)
    if name not in cfg.variants:
        raise ParamError(f"superres.variants.{name}: no such variant; choose one of {', '.join(cfg.variants)}")
    variant = cfg.variants[name]
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    samples = load_tensors(SUPERRES_OUT)["samples"]
    stage = f"superres_train@{name}"
    resume = resume_dir(stage, (settings, cfg.train, variant), (SUPERRES_OUT,))
    params = flatten({"variant": name, **to_dict(variant), "train": to_dict(cfg.train),
                      "seed": settings.seed, "scale": settings.scale, "device": str(device)})
    t0 = time.perf_counter()
    with stage_run("superres", stage, params) as tracker:
        out = train_variant(samples, variant, cfg.train, device, settings.seed,
                            autocast_dtype(device, settings.precision), tracker.log_epoch, resume)
        seconds = time.perf_counter() - t0
        metrics = {**out.test, "best_epoch": out.fit.best_epoch, "best_val_loss": out.fit.best_value,
                   "parameters": parameter_count(out.model), "train_seconds": round(seconds, 3),
                   **{f"{k}_samples": v for k, v in out.sizes.items()}}
        write_outputs(Path("models/superres") / f"{name}.pt", Path("metrics/superres") / f"{name}.json",
                      Path("plots/superres") / f"{name}.csv", out, variant, metrics)
        tracker.log_metrics(metrics)
        tracker.log_artifact(Path("plots/superres") / f"{name}.csv")
    shutil.rmtree(resume, ignore_errors=True)
    print(f"{stage}: test_loss {metrics['test_loss']:.6f}, best epoch {out.fit.best_epoch}, "
          f"{metrics['parameters']} parameters, {seconds:.1f}s on {device}")


def write_outputs(model_path: Path, metrics_path: Path, plot_path: Path, out, variant, metrics: dict) -> None:
    atomic_torch_save({"state_dict": out.fit.best_state, "variant": dataclasses.asdict(variant),
                       "best_epoch": out.fit.best_epoch}, model_path)
    write_json(metrics, metrics_path)
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(plot_path) as tmp:
        pd.DataFrame(out.fit.history).to_csv(tmp, index=False)


def main(argv: list[str]) -> None:
    choose({"superres": superres}, argv[0], "experiment")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.train <experiment> <variant>")
