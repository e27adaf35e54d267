"""superres — an MLP that super-resolves photographs: `python -m stages.superres <stage>`.

features: the photographs, their 27-feature samples and splits; train <variant>: one network of
superres.variants; evaluate: every variant against interpolation (PSNR, SSIM); report.
"""
from __future__ import annotations

import time
from pathlib import Path

from stages.common import begin, load_tensors, main

SAMPLES = Path("data/features/superres/samples.pt")
MODELS, METRICS, PLOTS = Path("models/superres"), Path("metrics/superres"), Path("plots/superres")
FIGURES, UPSCALED = Path("figures/superres"), Path("data/eval/superres/upscaled.pt")


def features() -> None:
    from pipeline.data import cifar10
    from pipeline.data.download import fetch, mirror_setting
    from pipeline.data.photos import load_images, needs_cifar
    from pipeline.superres.config import SuperresConfig
    from pipeline.superres.features import build_samples

    st = begin("superres_features", "superres", SuperresConfig, device=False)
    names, holdout = st.cfg.images.names, st.cfg.images.holdout
    archive = None
    if needs_cifar(names + holdout):
        archive = fetch(cifar10.ARCHIVE, cifar10.RAW_DIR / cifar10.ARCHIVE.filename,
                        mirror_setting(st.settings.data.mirror))
    hr = load_images(names, st.cfg.images.size, archive)
    held = load_images(holdout, st.cfg.images.size, archive) if holdout else hr[:0]
    samples = build_samples(hr, (2, 4), st.cfg.features.split, st.seed)
    st.save({"hr": hr, "names": names, "holdout": held, "holdout_names": holdout, "samples": samples}, SAMPLES)
    counts = {f: {k: len(v) for k, v in block["split"].items()} for f, block in samples.items()}
    st.done(f"{len(names)} images of {st.cfg.images.size}px, {len(holdout)} held out; "
            f"low-res positions per split {counts} -> {SAMPLES}")


def train(variant: str) -> None:
    import dataclasses

    from pipeline.core.engine import parameter_count
    from pipeline.core.errors import ParamError
    from pipeline.core.params import to_dict
    from pipeline.superres.config import SuperresConfig
    from pipeline.superres.training import train_variant

    st = begin(f"superres_train@{variant}", "superres", SuperresConfig)
    cfg = st.cfg
    if variant not in cfg.variants:
        raise ParamError(f"superres.variants.{variant}: no such variant; choose one of {', '.join(cfg.variants)}")
    v = cfg.variants[variant]
    feats = load_tensors(SAMPLES)
    resume = st.resume((st.settings, cfg.train, v), (SAMPLES,))
    t0 = time.perf_counter()
    with st.tracked(st.params(variant=variant, **to_dict(v), train=cfg.train), resume) as tracker:
        out = train_variant(feats["samples"], v, cfg.train, st.device, st.seed, st.amp, tracker.log_epoch, resume,
                            hr=feats["hr"])
        seconds = time.perf_counter() - t0
        metrics = {**out.test, "best_epoch": out.fit.best_epoch, "best_val_loss": out.fit.best_value,
                   "parameters": parameter_count(out.model), "train_seconds": round(seconds, 3),
                   **{f"{k}_samples": n for k, n in out.sizes.items()}}
        st.save({"state_dict": out.fit.best_state, "variant": dataclasses.asdict(v),
                 "best_epoch": out.fit.best_epoch}, MODELS / f"{variant}.pt")
        metrics.update(st.peak_memory())
        st.write_json(metrics, METRICS / f"{variant}.json")
        st.write_csv(out.fit.history, PLOTS / f"{variant}.csv")
        tracker.log_metrics(metrics)
        tracker.log_artifact(PLOTS / f"{variant}.csv")
    st.done(f"test_loss {metrics['test_loss']:.6f}, best epoch {out.fit.best_epoch}, "
            f"{metrics['parameters']} parameters, {seconds:.1f}s on {st.device}")


def evaluate() -> None:
    import pandas as pd

    from pipeline.core.errors import DataError
    from pipeline.core.params import flatten
    from pipeline.superres.config import SuperresConfig
    from pipeline.superres.evaluation import headline, method_table, score, summary, upscale_all
    from pipeline.superres.figures import evaluation_figures
    from pipeline.superres.models import variant_model

    st = begin("superres_evaluate", "superres", SuperresConfig)
    feats = load_tensors(SAMPLES)
    models = {}
    for name, v in st.cfg.variants.items():
        path = MODELS / f"{name}.pt"
        if not path.exists():
            raise DataError(f"{path}: missing; run `dvc repro superres_train@{name}` first")
        model = variant_model(v)
        model.load_state_dict(load_tensors(path)["state_dict"])
        models[name] = (model.to(st.device), v.factor)
    sets = {"train_images": (feats["hr"], feats["names"]), "holdout": (feats["holdout"], feats["holdout_names"])}
    upscaled, tables = {}, []
    for set_name, (hr, names) in sets.items():
        if len(names):
            up = upscale_all(hr.to(st.device), models)
            upscaled[set_name] = {f: {m: t.cpu() for m, t in d.items()} for f, d in up.items()}
            tables.append(score(hr.to(st.device), up, names, set_name))
    per_image = pd.concat(tables, ignore_index=True)
    result = summary(per_image)
    st.write_json(result, METRICS / "eval.json")
    st.write_json(headline(result), METRICS / "summary.json")
    st.write_csv(per_image, METRICS / "per_image.csv")
    for factor in result:                         # one bar per method: what `dvc plots show` draws
        st.write_csv(method_table(result, factor), PLOTS / f"methods_{factor}.csv")
    st.save(upscaled, UPSCALED)
    figs = evaluation_figures(feats, upscaled, result, st.cfg.variants)
    with st.tracked(st.params(variants=dict(st.cfg.variants))) as tracker:
        tracker.log_metrics(flatten(result))
        st.figures(figs, FIGURES)
    for f, methods in result.items():
        best = max(methods, key=lambda m: methods[m].get("holdout_psnr", methods[m]["psnr"]))
        st.done(f"{f}: best on hold-out {best} {methods[best].get('holdout_psnr', float('nan')):.2f} dB, "
                f"bicubic {methods['bicubic'].get('holdout_psnr', float('nan')):.2f} dB")


def report() -> None:
    from stages.report import render_report

    render_report("superres")


if __name__ == "__main__":
    main(__doc__, {"features": features, "train": train, "evaluate": evaluate, "report": report})
