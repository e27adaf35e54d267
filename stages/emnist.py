"""emnist — MLP vs CNN vs factorised CNN on EMNIST ByClass: `python -m stages.emnist <stage>`.

download: NIST's archive, only ByClass kept (with a digest manifest); prepare: upright uint8
images, labels, class names and a seeded validation split; train <model>: one of mlp, cnn,
factorised (shared hyper-parameters, best epoch by validation accuracy); report.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.emnist.data import EmnistConfig
from stages.common import begin, load_tensors, main

RAW, PREPARED = Path("data/raw/emnist"), Path("data/prepared/emnist.pt")
ARCHIVE_DIR = Path(".cache/downloads/emnist")       # git-ignored, removed once extracted
MODELS, METRICS = Path("models/emnist"), Path("metrics/emnist")
PLOTS, FIGURES = Path("plots/emnist"), Path("figures/emnist")


def download() -> None:
    from pipeline.data.download import fetch, mirror_setting
    from pipeline.emnist import data as emnist

    st = begin("emnist_download", "emnist", EmnistConfig, device=False)
    if emnist.raw_is_complete(RAW):
        st.done(f"ByClass files verified against {RAW / emnist.MANIFEST}; nothing to download")
        return
    archive = fetch(emnist.ARCHIVE, ARCHIVE_DIR / emnist.ARCHIVE.filename,
                    mirror_setting(st.cfg.source or st.settings.data.mirror))
    files = emnist.extract_byclass(archive, RAW)
    archive.unlink()
    total = sum(p.stat().st_size for p in files.values())
    st.done(f"ByClass extracted to {RAW} ({total / 1e6:.1f} MB); the archive is removed")


def prepare() -> None:
    from pipeline.emnist import data as emnist
    from pipeline.emnist.figures import data_figures

    st = begin("emnist_prepare", "emnist", EmnistConfig, device=False)
    data = emnist.prepare(RAW, st.cfg.data.val_fraction, st.seed)
    st.figures(data_figures(data), FIGURES / "data")
    st.save(data, PREPARED)
    st.done(f"train {tuple(data['train_x'].shape)} ({len(data['val_idx'])} held out for validation), "
            f"test {tuple(data['test_x'].shape)}, {len(data['classes'])} classes, upright -> {PREPARED}")


def train(model: str) -> None:
    """Train one of the three models, keep its best epoch (validation accuracy), score it on test."""
    from pipeline.core.engine import parameter_count
    from pipeline.core.errors import ParamError
    from pipeline.core.params import to_dict
    from pipeline.emnist import models as em
    from pipeline.emnist import train as et
    from stages.scoring import score_predictions

    name = model
    st = begin(f"emnist_train@{name}", "emnist", EmnistConfig)
    cfg = st.cfg
    if name not in em.MODELS:
        raise ParamError(f"emnist_train: {name!r} is not a model; choose one of {', '.join(em.MODELS)}")
    data = load_tensors(PREPARED)
    classes = data["classes"]
    splits = et.splits(data, cfg.train, st.device)
    del data
    arch = cfg.mlp if name == "mlp" else cfg.cnn
    params = st.params(model=name, **to_dict(arch), train=cfg.train,
                       **{f"{k}_samples": len(v) for k, v in splits.items()})
    resume = st.resume((st.settings, cfg, name), (PREPARED,))
    with st.tracked(params, resume) as tracker:
        net, out = et.train_model(name, cfg, splits, len(classes), seed=st.seed, amp_dtype=st.amp,
                                      on_epoch=tracker.log_epoch,
                                      resume_dir=resume)
        pred, test_rate = em.predict(net, splits["test"].inputs, cfg.train.eval_batch, st.amp)
        scores = score_predictions(st, splits["test"].targets, pred, classes,
                                   per_class=PLOTS / f"{name}_per_class.csv",
                                   figure=FIGURES / f"confusion_{name}.png", title=name)
        best, last = out.history[out.best_epoch - 1], out.history[-1]
        metrics = {**scores,
                   "best_epoch": out.best_epoch, "val_accuracy": best["val_accuracy"], "val_loss": best["val_loss"],
                   "train_accuracy": best["train_accuracy"], "parameters": parameter_count(net),
                   "train_seconds": round(last["elapsed_seconds"], 3),
                   "train_samples_per_second": round(len(splits["train"]) * len(out.history) / last["elapsed_seconds"]),
                   "test_samples_per_second": round(test_rate)}
        st.save({"state_dict": out.best_state, "model": name, "config": to_dict(arch), "classes": classes,
                 "best_epoch": out.best_epoch}, MODELS / f"{name}.pt")
        metrics.update(st.peak_memory())
        st.write_json(metrics, METRICS / f"{name}.json")
        st.write_csv(out.history, PLOTS / f"{name}.csv")
        tracker.log_metrics(metrics)
    st.done(f"test accuracy {metrics['test_accuracy']:.4f} (balanced {metrics['test_balanced_accuracy']:.4f}), "
            f"best epoch {out.best_epoch}, {metrics['parameters']:,} parameters, "
            f"{metrics['train_samples_per_second']:,} samples/s training on {st.device}")


def report() -> None:
    from pipeline.core.params import load_params, parse, to_dict
    from pipeline.core.settings import settings_from
    from stages.report import render_report

    params = load_params()
    # the models as configured, so the report can rebuild their layer tables
    cfg = parse(EmnistConfig, params.get("emnist", {}), key="emnist").at_scale(settings_from(params).scale)
    render_report("emnist", {"mlp": to_dict(cfg.mlp), "cnn": to_dict(cfg.cnn), "train": to_dict(cfg.train)})


if __name__ == "__main__":
    main(__doc__, {"download": download, "prepare": prepare, "train": train, "report": report},
         distributed=("train",))
