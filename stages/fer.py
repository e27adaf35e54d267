"""fer — facial expressions on FER-2013: `python -m stages.fer <stage>`.

download: FER-2013 from fer.source (URL, csv, archive or folder), or accept what was put in
data/raw/fer by hand; prepare: uint8 48×48 splits (the official ones kept); train: the CNN,
augmented on the device, best epoch by validation accuracy; inspect: filters and feature maps on
one test face (fer.inspect); report. The live demo is `python -m stages.demo`.
"""
from __future__ import annotations

import json
from pathlib import Path

from stages.common import begin, load_tensors, main

RAW, DOWNLOADS = Path("data/raw/fer"), Path(".cache/downloads/fer")   # downloads: git-ignored, kept for reruns
MARKER = RAW / ".source.json"
PREPARED = Path("data/prepared/fer.pt")
MODEL, METRICS = Path("models/fer/cnn.pt"), Path("metrics/fer/cnn.json")
PLOTS, FIGURES = Path("plots/fer"), Path("figures/fer")


def download() -> None:
    """Bring FER-2013 into data/raw/fer from fer.source (URL, file or folder), or accept what was
    put there by hand; no source and nothing there: one message saying where to get it."""
    from pipeline.core.errors import DataError
    from pipeline.data.download import RemoteFile, fetch, mirror_setting
    from pipeline.fer import data as fer
    from pipeline.fer.data import FerConfig

    st = begin("fer_download", "fer", FerConfig, device=False)
    cfg = st.cfg
    present = fer.find_form(RAW)
    if not cfg.source:
        if present is None:
            raise DataError(fer.no_data_message(RAW))
        _compare_with_kaggle(present)
        st.done(f"{present.kind} form found at {present.path}; nothing to fetch")
        return
    wanted = {"source": cfg.source, "sha256": cfg.sha256}
    if present is not None and MARKER.exists() and json.loads(MARKER.read_text()) == wanted:
        _compare_with_kaggle(present)
        st.done(f"{present.kind} form from {cfg.source} already in {RAW}; nothing to fetch")
        return
    local = Path(cfg.source.removeprefix("file://"))
    if "://" in cfg.source and not cfg.source.startswith("file://"):
        remote = RemoteFile(url=cfg.source, sha256=cfg.sha256 or None)
        if not cfg.sha256:
            print(f"note: fer.sha256 is empty: {remote.filename} is downloaded without a checksum check")
        local = fetch(remote, DOWNLOADS / remote.filename, mirror_setting(st.settings.data.mirror))
    fer.import_source(local, RAW)
    MARKER.write_text(json.dumps(wanted))
    form = fer.find_form(RAW)
    _compare_with_kaggle(form)
    st.done(f"{form.kind} form from {cfg.source} -> {RAW}")


def _compare_with_kaggle(form) -> None:
    """One line per CSV of `form`: Kaggle's own file (stdout), or a warning that it is not (stderr)."""
    import sys

    from pipeline.fer.data import kaggle_checks

    for matched, line in kaggle_checks(form):
        print(line, file=sys.stdout if matched else sys.stderr)


def prepare() -> None:
    from pipeline.core.errors import DataError
    from pipeline.fer import data as fer
    from pipeline.fer.data import FerConfig
    from pipeline.fer.figures import samples_per_class

    st = begin("fer_prepare", "fer", FerConfig, device=False)
    form = fer.find_form(RAW)
    if form is None:
        raise DataError(fer.no_data_message(RAW))
    data = fer.prepare(form, st.cfg.data.val_fraction, st.cfg.data.test_fraction, st.seed)
    st.figures({"classes.png": samples_per_class(data["train_x"], data["train_y"], data["classes"],
                                                       seed=st.seed)}, FIGURES / "data")
    st.save(data, PREPARED)
    sizes = ", ".join(f"{k} {len(data[f'{k}_y']):,} ({data['origin'][k]})" for k in ("train", "val", "test"))
    st.done(f"{form.kind} form -> {PREPARED}: {sizes}")


def train() -> None:
    """Train the CNN (augmented on the device), keep its best epoch by validation accuracy
    (PublicTest), score it on the test split (PrivateTest)."""
    import time

    from pipeline.core.engine import parameter_count
    from pipeline.fer import model as fm
    from pipeline.fer import train as ft
    from pipeline.fer.data import FerConfig
    from stages.common import fit_summary
    from stages.scoring import score_predictions

    st = begin("fer_train", "fer", FerConfig)
    cfg = st.cfg
    data = load_tensors(PREPARED)
    splits = ft.splits(data, cfg.train, st.device)
    classes, origin = data["classes"], data["origin"]
    del data
    params = st.params(model=cfg.model, augment=cfg.augment, train=cfg.train,
                       **{f"{k}_samples": len(v) for k, v in splits.items()})
    resume = st.resume((st.settings, cfg.model, cfg.augment, cfg.train), (PREPARED,))
    with st.tracked(params, resume) as tracker:
        model, out = ft.train_model(cfg.model, cfg.augment, cfg.train, splits, seed=st.seed, amp_dtype=st.amp,
                                    on_epoch=tracker.log_epoch, resume_dir=resume)
        test = splits["test"]
        t0 = time.perf_counter()
        pred = fm.probabilities(model, test.inputs, cfg.train.eval_batch, cfg.train.tta, st.amp).argmax(1).cpu()
        seconds = time.perf_counter() - t0
        single = fm.probabilities(model, test.inputs, cfg.train.eval_batch, False, st.amp).argmax(1).cpu()
        labels = test.targets.cpu()
        scores = score_predictions(st, labels, pred, classes, per_class=PLOTS / "per_class.csv",
                                   table=PLOTS / "confusion.csv", figure=FIGURES / "confusion.png",
                                   title=origin["test"], label="accuracy")
        summary = fit_summary(out)
        metrics = {**scores, "test_accuracy_without_tta": float((single == labels).float().mean()),
                   **{k: summary[k] for k in ("best_epoch", "val_accuracy", "val_loss", "train_accuracy",
                                              "train_seconds")},
                   "parameters": parameter_count(model),
                   "train_samples_per_second": round(len(splits["train"]) * len(out.history)
                                                     / out.history[-1]["elapsed_seconds"]),
                   "test_samples_per_second": round(len(test) / seconds)}
        if st.writes:
            fm.save(model, cfg.model, MODEL, best_epoch=out.best_epoch, tta=cfg.train.tta, origin=origin)
            tracker.log_artifact(MODEL, "model")
        metrics.update(st.peak_memory())
        st.write_json(metrics, METRICS)
        st.write_csv(out.history, PLOTS / "history.csv")
        tracker.log_metrics(metrics)
    st.done(f"test accuracy {metrics['test_accuracy']:.4f} ({origin['test']}; "
            f"{metrics['test_accuracy_without_tta']:.4f} without the mirror average), best epoch {out.best_epoch} "
            f"of {len(out.history)}, {metrics['parameters']:,} parameters, "
            f"{metrics['train_samples_per_second']:,} samples/s training on {st.device}")


def inspect() -> None:
    """Filters and feature maps of the trained model on one test face (`fer.inspect`)."""
    from pipeline.core.errors import ParamError
    from pipeline.fer import figures
    from pipeline.fer import model as fm
    from pipeline.fer.data import FerConfig

    st = begin("fer_inspect", "fer", FerConfig)
    cfg = st.cfg
    model, meta = fm.load(MODEL, st.device)
    data = load_tensors(PREPARED)
    images, labels = data["test_x"][:cfg.train.test_limit], data["test_y"][:cfg.train.test_limit]
    i = cfg.inspect.image
    if i >= len(images):
        raise ParamError(f"fer.inspect.image: {i} is past the {len(images)} test images; choose 0..{len(images) - 1}")
    blocks = len(model.blocks())
    if max(cfg.inspect.layers) > blocks:
        raise ParamError(f"fer.inspect.layers: the trained model has {blocks} conv blocks; choose among 1..{blocks}")
    image = images[i].to(st.device)
    probs = fm.probabilities(model, image.unsqueeze(0), tta=meta.get("tta", False))[0].cpu()
    figs, summary = figures.inspect(model, image, int(labels[i]), probs, data["classes"], cfg.inspect.layers,
                                    cfg.inspect.channels, cfg.inspect.steps, st.seed)
    st.figures(figs, FIGURES / "inspect")
    st.write_json({"image": i, "label": data["classes"][int(labels[i])],
                   "probabilities": dict(zip(data["classes"], [round(float(p), 5) for p in probs])),
                   "first_layer_kernels": figures.kernel_reading(model),
                   "layers": {str(k): v for k, v in summary.items()}}, FIGURES / "inspect" / "summary.json")
    st.done(f"test image {i} ({data['classes'][int(labels[i])]}), layers "
            f"{', '.join(map(str, cfg.inspect.layers))} -> {FIGURES / 'inspect'}")


def report() -> None:
    from stages.report import render_report

    render_report("fer")


if __name__ == "__main__":
    main(__doc__, {"download": download, "prepare": prepare, "train": train, "inspect": inspect, "report": report},
         distributed=("train",))
