"""Train one model: `python -m stages.train <experiment> <variant>`."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from pipeline.device import autocast_dtype, pick_device, seed_everything
from pipeline.errors import ParamError
from pipeline.engine import parameter_count
from pipeline.files import atomic_torch_save, write_csv, write_json
from pipeline.params import flatten, to_dict
from pipeline.superres.config import SuperresConfig
from pipeline.superres.training import train_variant
from pipeline.tracking import stage_run
from stages.common import choose, load_section, load_tensors, resume_dir, run, save_figure
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
    print(f"{stage}: test_loss {metrics['test_loss']:.6f}, best epoch {out.fit.best_epoch}, "
          f"{metrics['parameters']} parameters, {seconds:.1f}s on {device}")


def write_outputs(model_path: Path, metrics_path: Path, plot_path: Path, out, variant, metrics: dict) -> None:
    atomic_torch_save({"state_dict": out.fit.best_state, "variant": dataclasses.asdict(variant),
                       "best_epoch": out.fit.best_epoch}, model_path)
    write_json(metrics, metrics_path)
    write_csv(pd.DataFrame(out.fit.history), plot_path)


SEP_MODEL, SEP_METRICS = Path("models/separable/mlp.pt"), Path("metrics/separable")
SEP_PLOT, SEP_FIGURES = Path("plots/separable/history.csv"), Path("figures/separable")


def separable(argv: list[str]) -> None:
    from pipeline import separable as sep
    from pipeline.engine import Split, fit
    from pipeline.separable_figures import boundary, loss_curve

    settings, cfg = load_section("separable", sep.SeparableConfig)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    x, y = sep.make_data(cfg, settings.seed)
    n_val = round(cfg.val_fraction * len(y))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(settings.seed))
    train, val = (Split(x[i].to(device), y[i].to(device)) for i in (perm[n_val:], perm[:n_val]))
    model = sep.SoftmaxMLP(cfg.hidden).to(device)
    with stage_run("separable", "separable_train", flatten(to_dict(cfg))) as tracker:
        out = fit(model, train, val, sep.bce_on_softmax, cfg.train, seed=settings.seed, metrics=sep.accuracy,
                  on_epoch=tracker.log_epoch, resume_dir=resume_dir("separable_train", (settings, cfg)))
        model.load_state_dict(out.best_state)
        last = out.history[-1]
        zero = sep.zero_loss_margins()
        metrics = {"final_train_loss": last["train_loss"], "final_val_loss": last["val_loss"],
                   "val_accuracy": last["val_accuracy"], "min_train_loss": min(h["train_loss"] for h in out.history),
                   "best_epoch": out.best_epoch, "parameters": parameter_count(model)}
        atomic_torch_save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, SEP_MODEL)
        write_json(metrics, SEP_METRICS / "train.json")
        write_json({"margins": zero, "rounding_margin": {"float32": sep.rounding_margin(24),
                                                         "float64": sep.rounding_margin(53)},
                    "four_points": sep.four_point_example()}, SEP_METRICS / "zero_loss.json")
        write_csv(pd.DataFrame(out.history), SEP_PLOT)
        tracker.log_metrics(metrics)
        for name, fig in (("loss.png", loss_curve(out.history)),
                          ("boundary.png", boundary(model.cpu(), x, y))):
            save_figure(fig, SEP_FIGURES / name)
            tracker.log_figure(fig, name)
            plt.close(fig)
    print(f"separable_train: final train loss {metrics['final_train_loss']:.3g}, "
          f"validation accuracy {metrics['val_accuracy']:.3f}")


def main(argv: list[str]) -> None:
    choose({"superres": superres, "separable": separable}, argv[0], "experiment")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.train <experiment> <variant>")
