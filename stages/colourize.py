"""colourize — colourising CIFAR-10 horses by per-pixel classification: `python -m stages.colourize <stage>`.

palette: the horses, the k-means palette and every pixel's colour class; train <model>: a headline
run (cnn, unet, residual); sweep <model> <key> <value>: one point of a sweep (every other setting
the model's headline run's); report.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.colourize.config import ColourizeConfig
from stages.common import begin, load_tensors, main

HORSES = Path("data/features/colourize/horses.pt")
MODELS, METRICS, PLOTS = Path("models/colourize"), Path("metrics/colourize"), Path("plots/colourize")
FIGURES, SWEEPS = Path("figures/colourize"), Path("metrics/colourize/sweeps")


def palette() -> None:
    """CIFAR-10's horses (train: 5,000 training images; val: the 1,000 test ones), the palette
    k-means finds on the training horses' pixels, and every pixel's nearest palette colour."""
    from pipeline.colourize.data import colour_shares, horses
    from pipeline.colourize.figures import palette_figure
    from pipeline.data import cifar10

    st = begin("colourize_palette", "colourize", ColourizeConfig)
    cfg = st.cfg
    out = horses(load_tensors(cifar10.PREPARED), cfg.palette, cfg.train_limit, cfg.val_limit, st.seed, st.device)
    share = colour_shares(out["train_y"], len(out["palette"]))
    st.figures({"palette.png": palette_figure(out["palette"], out["train_y"])}, FIGURES / "data")
    st.write_json({"palette": out["palette"].tolist(), "train_share": share.tolist(),
                   "train_horses": len(out["train_x"]), "val_horses": len(out["val_x"])},
                  FIGURES / "data" / "palette.json")
    st.save(out, HORSES)
    st.done(f"{len(out['train_x']):,} training and {len(out['val_x']):,} validation horses, {len(out['palette'])} "
            f"colours (the commonest covers {100 * float(share.max()):.1f} % of the training pixels) -> {HORSES}")


def train(model: str) -> None:
    """A headline run: model, curves and figure kept."""
    from pipeline.colourize.config import MODELS as NAMES
    from pipeline.core.errors import ParamError

    st = begin(f"colourize_train@{model}", "colourize", ColourizeConfig)
    if model not in NAMES:
        raise ParamError(f"colourize_train: {model!r} is not a model; choose one of {', '.join(NAMES)}")
    _run(st, model, st.cfg.run(model), model, sweep=None)


def sweep(model: str, key: str, value: str) -> None:
    """One sweep point: metrics only, a diverging loss recorded instead of failing."""
    st = begin(f"colourize_sweep_{model}_{key}@{value}", "colourize", ColourizeConfig)
    _run(st, model, st.cfg.sweep_point(model, key, value), f"{model}_{key}_{value}", sweep=key)


def _run(st, model_name: str, run, label: str, sweep: str | None) -> None:
    from pipeline.colourize import model as col
    from pipeline.colourize.train import train_run
    from pipeline.core.engine import parameter_count
    from pipeline.core.params import flatten, to_dict
    from pipeline.core.split import Split

    data = load_tensors(HORSES)
    train_split = Split(data["train_x"].to(st.device), data["train_y"].to(st.device))
    val = Split(data["val_x"].to(st.device), data["val_y"].to(st.device))
    colours = data["palette"]
    params = flatten({"model": model_name, **to_dict(run), "seed": st.seed, "scale": st.settings.scale,
                      "device": str(st.device), "train_samples": len(train_split), "val_samples": len(val),
                      "colours": len(colours)})
    metrics_path = (SWEEPS if sweep else METRICS) / f"{label}.json"
    resume = None if sweep else st.resume((st.settings, run), (HORSES,))
    with st.tracked(params, resume) as tracker:
        model, out, diverged = train_run(model_name, run, train_split, val, len(colours), seed=st.seed,
                                         amp_dtype=st.amp, on_epoch=tracker.log_epoch, sweep=bool(sweep),
                                         resume_dir=resume)
        base = {"model": model_name, "sweep": sweep, "filters": run.filters, "kernel": run.kernel, "lr": run.lr,
                "epochs": run.epochs, "parameters": parameter_count(model)}
        if diverged:
            st.write_json({**base, "diverged": True, "val_accuracy": None, "val_loss": None, "reason": diverged},
                          metrics_path)
            st.done(f"diverged ({diverged}); recorded as such")
            return
        last, best = out.history[-1], out.history[out.best_epoch - 1]
        metrics = {**base, "schedule": run.schedule, "diverged": False,
                   "val_accuracy": last["val_accuracy"], "val_loss": last["val_loss"],        # the last epoch's
                   "train_accuracy": last["train_accuracy"], "train_loss": last["train_loss"],
                   "best_epoch": out.best_epoch, "best_val_accuracy": best["val_accuracy"],  # the kept model's
                   "best_val_loss": best["val_loss"], "train_seconds": round(last["elapsed_seconds"], 3)}
        metrics.update(st.peak_memory())
        st.write_json(metrics, metrics_path)
        tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        if not sweep:       # a sweep point's curves go to MLflow only
            from pipeline.colourize.figures import colourised      # matplotlib: 0.5 s a sweep point need not pay
            st.write_csv(out.history, PLOTS / f"{label}.csv")
            st.save({"state_dict": out.best_state, "model": model_name, "run": to_dict(run), "palette": colours,
                     "epoch": out.best_epoch}, MODELS / f"{model_name}.pt")
            model.load_state_dict(out.best_state)                  # the figure shows the kept model
            shown = val.inputs[:st.cfg.show]
            st.figures({f"{model_name}.png": colourised({
                "grey": col.grey(shown), model_name: col.colourise(model, shown, colours),
                "palette truth": col.colourise_target(val.targets[:st.cfg.show], colours), "photo": shown})},
                FIGURES)
    st.done(f"validation pixel accuracy {metrics['val_accuracy']:.4f} after {run.epochs} epochs (best "
            f"{metrics['best_val_accuracy']:.4f} at epoch {metrics['best_epoch']}, kept), "
            f"{metrics['parameters']:,} parameters, {metrics['train_seconds']:.0f} s on {st.device}")


def report() -> None:
    """The sweeps and runs as configured (not stale files of earlier ones)."""
    from pipeline.core.params import load_params, parse, to_dict
    from pipeline.core.settings import settings_from
    from stages.report import render_report

    params = load_params()
    cfg = parse(ColourizeConfig, params.get("colourize", {}), key="colourize").at_scale(settings_from(params).scale)
    render_report("colourize", {"sweep_cnn": to_dict(cfg.sweep_cnn), "sweep_unet": to_dict(cfg.sweep_unet),
                                "runs": {m: to_dict(cfg.run(m)) for m in ("cnn", "unet", "residual")}})


if __name__ == "__main__":
    main(__doc__, {"palette": palette, "train": train, "sweep": sweep, "report": report})
