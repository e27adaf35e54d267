"""Train one model: `python -m stages.train <experiment> <variant>`."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

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
from stages.common import (choose, load_section, load_tensors, mnist_splits, publish_figures, resume_dir,
                           run, score_predictions)
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
        publish_figures(tracker, {"loss.png": loss_curve(out.history),
                                  "boundary.png": boundary(model.cpu(), x, y)}, SEP_FIGURES)
    print(f"separable_train: final train loss {metrics['final_train_loss']:.3g}, "
          f"validation accuracy {metrics['val_accuracy']:.3f}")


def batch_size(argv: list[str]) -> None:
    from pipeline import batchsize as bs
    from pipeline.engine import fit
    from pipeline.mnist import flat_unit

    settings, cfg = load_section("batch_size", bs.BatchSizeConfig)
    if argv == ["accumulation"]:
        return batch_size_accumulation(settings, cfg)
    if len(argv) != 1 or not argv[0].isdigit() or int(argv[0]) not in cfg.sizes:
        raise ParamError(f"usage: python -m stages.train batch_size <size>|accumulation, size one of "
                         f"batch_size.sizes {list(cfg.sizes)}")
    size = int(argv[0])
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    train, test, data = mnist_splits(device, cfg.train_limit, cfg.test_limit)
    model = bs.MLP(cfg.hidden).to(device)
    stage = f"batch_size_train@{size}"
    params = flatten({"batch_size": size, **to_dict(cfg.train_config(size)), "hidden": cfg.hidden,
                      "dataset": data["dataset"], "train_samples": len(train), "device": str(device)})
    with stage_run("batch_size", stage, params) as tracker:
        out = fit(model, train, None, bs.cross_entropy, cfg.train_config(size), seed=settings.seed,
                  prepare=flat_unit, metrics=bs.accuracy, amp_dtype=autocast_dtype(device, settings.precision),
                  on_epoch=tracker.log_epoch, watch={"test": test},
                  resume_dir=resume_dir(stage, (settings, cfg, size), (data["path"],)))
        last = out.history[-1]
        metrics = {k: last[k] for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
        metrics.update(steps=last["step"], train_seconds=round(last["elapsed_seconds"], 3),
                       samples_per_second=round(len(train) * len(out.history) / last["elapsed_seconds"]),
                       parameters=parameter_count(model))
        atomic_torch_save({"state_dict": out.best_state, "hidden": cfg.hidden}, Path(f"models/batch_size/{size}.pt"))
        write_json(metrics, Path(f"metrics/batch_size/{size}.json"))
        write_csv(pd.DataFrame(out.history), Path(f"plots/batch_size/{size}.csv"))
        tracker.log_metrics(metrics)
    print(f"{stage}: test accuracy {metrics['test_accuracy']:.4f} after {metrics['steps']} steps, "
          f"{metrics['train_seconds']:.1f}s on {device}")


def batch_size_accumulation(settings, cfg) -> None:
    """The out-of-memory answer, measured: gradient equality, training equality, memory."""
    import copy

    from pipeline import batchsize as bs
    from pipeline.engine import Split
    from pipeline.mnist import flat_unit, to_unit

    seed_everything(settings.seed)
    device = pick_device(settings.device)
    train, test, data = mnist_splits(device, cfg.train_limit, cfg.test_limit)
    acc = cfg.accumulation
    parts = acc.batch // acc.micro_batch
    make = lambda: bs.MLP(cfg.hidden).to(device)  # noqa: E731
    as64 = lambda x, y, training: (to_unit(x).double(), y)  # noqa: E731
    torch.manual_seed(settings.seed)
    model = make()
    one_batch = Split(train.inputs[:acc.batch], train.targets[:acc.batch])
    result = {"batch": acc.batch, "micro_batch": acc.micro_batch, "micro_batches_per_step": parts,
              "gradient": {"float32": bs.gradient_gap(model, one_batch, parts, flat_unit),
                           "float64": bs.gradient_gap(copy.deepcopy(model).double(), one_batch, parts, as64)},
              "training": {"float32": bs.train_both_ways(make, train, cfg, settings.seed, flat_unit, test),
                           "float64": bs.train_both_ways(lambda: make().double(), train, cfg, settings.seed, as64, test)}}
    rows = []
    for b in acc.memory_batches:
        sub = Split(train.inputs[:b], train.targets[:b])
        whole, accumulated = (bs.step_memory(model, sub, k, flat_unit) for k in (1, b // acc.micro_batch))
        rows.append({"batch": len(sub), **{f"whole_{k}": v for k, v in whole.items()},
                     **{f"accumulated_{k}": v for k, v in accumulated.items()}})
    n_params = parameter_count(model)
    result.update(device=str(device), parameters=n_params,
                  fixed_bytes={"weights": 4 * n_params, "gradients": 4 * n_params, "adam_state": 8 * n_params},
                  memory_measure="cuda max_memory_allocated and saved activations" if device.type == "cuda"
                  else "activations saved for backward (saved-tensor hooks); no allocator peak on CPU")
    table = pd.DataFrame(rows)
    with stage_run("batch_size", "batch_size_accumulation", flatten(to_dict(acc))) as tracker:
        write_json(result, Path("metrics/batch_size/accumulation.json"))
        write_csv(table, Path("plots/batch_size/memory.csv"))
        tracker.log_metrics(flatten({k: result[k] for k in ("gradient", "training")}))
        tracker.log_artifact(Path("plots/batch_size/memory.csv"))
    g, t = result["gradient"]["float32"], result["training"]["float32"]
    print(f"batch_size_accumulation: gradient gap {g['max_abs_difference']:.2e} (float32), weights after "
          f"{t['steps']} steps differ by {t['max_weight_difference']:.2e}; activations "
          f"{rows[-1]['whole_activation_bytes'] / 1e6:.2f} MB whole vs "
          f"{rows[-1]['accumulated_activation_bytes'] / 1e6:.3f} MB accumulated at batch {rows[-1]['batch']}")


AE_FIGURES = Path("figures/autoencoder/train")


def autoencoder(argv: list[str]) -> None:
    from pipeline import autoencoder as ae
    from pipeline import mnist_figures as mf
    from pipeline.engine import Split, fit
    from pipeline.mnist import to_unit

    settings, cfg = load_section("autoencoder", ae.AutoencoderConfig)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    train, test, data = mnist_splits(device, cfg.train_limit, cfg.test_limit)
    model = ae.Autoencoder(cfg.encoder).to(device)
    unit_pair = lambda x, y, training: (to_unit(x), to_unit(x))  # noqa: E731  (the target is the input)
    params = flatten({**to_dict(cfg.train_config()), "encoder": cfg.encoder, "dataset": data["dataset"],
                      "train_samples": len(train), "device": str(device)})
    with stage_run("autoencoder", "autoencoder_train", params) as tracker:
        out = fit(model, Split(train.inputs, train.inputs), None, ae.reconstruction_loss, cfg.train_config(),
                  seed=settings.seed, prepare=unit_pair, amp_dtype=autocast_dtype(device, settings.precision),
                  on_epoch=tracker.log_epoch, watch={"test": Split(test.inputs, test.inputs)},
                  snapshot_epochs=cfg.show_epochs,
                  resume_dir=resume_dir("autoencoder_train", (settings, cfg), (data["path"],)))
        history = pd.DataFrame(out.history)
        pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(settings.seed))[:cfg.show_images]
        shown = to_unit(data["test_x"][pick])
        recons = {}
        for epoch, state in out.snapshots.items():
            model.load_state_dict(state)
            with torch.no_grad():
                recons[epoch] = model.eval()(shown.to(device)).cpu()
        model.load_state_dict(out.best_state)
        last = out.history[-1]
        metrics = {"train_loss": last["train_loss"], "test_loss": last["test_loss"],
                   "parameters": parameter_count(model), "train_seconds": round(last["elapsed_seconds"], 3)}
        atomic_torch_save({"state_dict": out.best_state, "encoder": cfg.encoder}, Path("models/autoencoder/autoencoder.pt"))
        write_json(metrics, Path("metrics/autoencoder/autoencoder.json"))
        write_csv(history, Path("plots/autoencoder/autoencoder.csv"))
        tracker.log_metrics(metrics)
        classes = data["classes"]
        sample = torch.randperm(len(train), generator=torch.Generator().manual_seed(settings.seed + 1))[:5]
        figs = {"class_histogram.png": mf.class_histogram(data["train_y"], classes),
                "random_images.png": mf.image_row(data["train_x"][sample],
                                                  [classes[int(i)] for i in data["train_y"][sample]]),
                "reconstructions.png": mf.reconstructions(shown, recons),
                "epoch_losses.png": mf.epoch_losses(history, ae.SEED_EPOCH_LOSSES)}
        publish_figures(tracker, figs, AE_FIGURES)
    print(f"autoencoder_train: train MSE {metrics['train_loss']:.4f}, test MSE {metrics['test_loss']:.4f}, "
          f"{metrics['parameters']} parameters, {metrics['train_seconds']:.1f}s on {device}")


def autoencoder_classifier(argv: list[str]) -> None:
    from pipeline import autoencoder as ae
    from pipeline import classification as cls
    from pipeline import mnist_figures as mf
    from pipeline.engine import Split, fit
    from stages.features import AE_CODES

    settings, cfg = load_section("autoencoder", ae.AutoencoderConfig)
    if len(argv) != 1 or argv[0] not in ae.VARIANTS:
        raise ParamError(f"usage: python -m stages.train autoencoder_classifier <{'|'.join(ae.VARIANTS)}>")
    variant, ccfg = argv[0], cfg.classifier
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    codes = load_tensors(AE_CODES)
    train = Split(codes["train_codes"].to(device), codes["train_y"].to(device))
    test = Split(codes["test_codes"].to(device), codes["test_y"].to(device))
    model = ae.build_classifier(variant, ccfg, train.inputs.shape[1]).to(device)
    stage = f"autoencoder_classify@{variant}"
    with stage_run("autoencoder", stage, flatten({"variant": variant, **to_dict(ccfg)})) as tracker:
        out = fit(model, train, None, cls.cross_entropy, ccfg.train_config(), seed=settings.seed,
                  metrics=cls.accuracy, on_epoch=tracker.log_epoch, watch={"test": test},
                  resume_dir=resume_dir(stage, (settings, ccfg, variant), (AE_CODES,)))
        with torch.no_grad():
            pred = model.eval()(test.inputs).argmax(1).cpu()
        labels, classes = codes["test_y"], codes["classes"]
        cm = cls.confusion_matrix(labels, pred, len(classes))
        per_batch = ae.batch_accuracy(pred, labels, ccfg.batch_size)
        last = out.history[-1]
        metrics = {**{f"test_{k}": v for k, v in cls.scores(cm).items()}, "test_loss": last["test_loss"],
                   "train_loss": last["train_loss"], "train_accuracy": last["train_accuracy"],
                   "batch_accuracy_min": float(per_batch.min()), "batch_accuracy_max": float(per_batch.max()),
                   "parameters": parameter_count(model)}
        atomic_torch_save({"state_dict": out.best_state, "variant": variant, "hidden": ccfg.hidden},
                          Path(f"models/autoencoder/classifier_{variant}.pt"))
        write_json(metrics, Path(f"metrics/autoencoder/classifier_{variant}.json"))
        write_csv(pd.DataFrame(out.history), Path(f"plots/autoencoder/classifier_{variant}.csv"))
        write_csv(cls.prediction_table(labels, pred, classes), Path(f"plots/autoencoder/confusion_{variant}.csv"))
        write_csv(pd.DataFrame({"batch": range(1, len(per_batch) + 1), "accuracy": per_batch.tolist()}),
                  Path(f"plots/autoencoder/batch_accuracy_{variant}.csv"))
        tracker.log_metrics(metrics)
        publish_figures(tracker, {f"confusion_{variant}.png": mf.confusion(
            cm, classes, f"classifier on codes ({variant}): test accuracy {100 * metrics['test_accuracy']:.1f} %")},
            Path("figures/autoencoder"))
    print(f"{stage}: test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}")


def emnist_model(argv: list[str]) -> None:
    """Train one of the three EMNIST models, keep its best epoch (validation accuracy), score it on test."""
    from pipeline import emnist
    from pipeline import emnist_models as em
    from stages.prepare import EMNIST_PREPARED

    settings, cfg = load_section("emnist", emnist.EmnistConfig)
    if len(argv) != 1 or argv[0] not in em.MODELS:
        raise ParamError(f"usage: python -m stages.train emnist <{'|'.join(em.MODELS)}>")
    name = argv[0]
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    amp = autocast_dtype(device, settings.precision)
    data = load_tensors(EMNIST_PREPARED)
    classes = data["classes"]
    splits = emnist.splits(data, cfg.train, device)
    del data
    arch = cfg.mlp if name == "mlp" else cfg.cnn
    stage = f"emnist_train@{name}"
    params = flatten({"model": name, **to_dict(arch), "train": to_dict(cfg.train), "seed": settings.seed,
                      "scale": settings.scale, "device": str(device),
                      **{f"{k}_samples": len(v) for k, v in splits.items()}})
    with stage_run("emnist", stage, params) as tracker:
        model, out = emnist.train_model(name, cfg, splits, len(classes), seed=settings.seed, amp_dtype=amp,
                                        on_epoch=tracker.log_epoch,
                                        resume_dir=resume_dir(stage, (settings, cfg, name), (EMNIST_PREPARED,)))
        pred, test_rate = em.predict(model, splits["test"].inputs, cfg.train.eval_batch, amp)
        scores = score_predictions(tracker, splits["test"].targets, pred, classes,
                             per_class=Path(f"plots/emnist/{name}_per_class.csv"),
                             figure=Path(f"figures/emnist/confusion_{name}.png"), title=name)
        best, last = out.history[out.best_epoch - 1], out.history[-1]
        metrics = {**scores,
                   "best_epoch": out.best_epoch, "val_accuracy": best["val_accuracy"], "val_loss": best["val_loss"],
                   "train_accuracy": best["train_accuracy"], "parameters": parameter_count(model),
                   "train_seconds": round(last["elapsed_seconds"], 3),
                   "train_samples_per_second": round(len(splits["train"]) * len(out.history) / last["elapsed_seconds"]),
                   "test_samples_per_second": round(test_rate)}
        atomic_torch_save({"state_dict": out.best_state, "model": name, "config": to_dict(arch),
                           "classes": classes, "best_epoch": out.best_epoch}, Path(f"models/emnist/{name}.pt"))
        write_json(metrics, Path(f"metrics/emnist/{name}.json"))
        write_csv(pd.DataFrame(out.history), Path(f"plots/emnist/{name}.csv"))
        tracker.log_metrics(metrics)
    print(f"{stage}: test accuracy {metrics['test_accuracy']:.4f} (balanced {metrics['test_balanced_accuracy']:.4f}), "
          f"best epoch {out.best_epoch}, {metrics['parameters']:,} parameters, "
          f"{metrics['train_samples_per_second']:,} samples/s training on {device}")


FER_MODEL, FER_METRICS, FER_PLOTS = Path("models/fer/cnn.pt"), Path("metrics/fer/cnn.json"), Path("plots/fer")


def fer_model(argv: list[str]) -> None:
    """Train the FER CNN (augmented on the device), keep its best epoch by validation accuracy
    (PublicTest), score it on the test split (PrivateTest)."""
    from pipeline import fer
    from pipeline import fer_model as fm
    from stages.prepare import FER_PREPARED

    settings, cfg = load_section("fer", fer.FerConfig)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    amp = autocast_dtype(device, settings.precision)
    data = load_tensors(FER_PREPARED)
    splits = fm.splits(data, cfg.train, device)
    classes, origin = data["classes"], data["origin"]
    del data
    stage = "fer_train"
    params = flatten({"model": to_dict(cfg.model), "augment": to_dict(cfg.augment), "train": to_dict(cfg.train),
                      "seed": settings.seed, "scale": settings.scale, "device": str(device),
                      **{f"{k}_samples": len(v) for k, v in splits.items()}})
    with stage_run("fer", stage, params) as tracker:
        resume = resume_dir(stage, (settings, cfg.model, cfg.augment, cfg.train), (FER_PREPARED,))
        model, out = fm.train_model(cfg.model, cfg.augment, cfg.train, splits, seed=settings.seed, amp_dtype=amp,
                                    on_epoch=tracker.log_epoch, resume_dir=resume)
        test = splits["test"]
        t0 = time.perf_counter()
        probs = fm.probabilities(model, test.inputs, cfg.train.eval_batch, cfg.train.tta, amp)
        pred = probs.argmax(1).cpu()
        seconds = time.perf_counter() - t0
        single = fm.probabilities(model, test.inputs, cfg.train.eval_batch, False, amp).argmax(1).cpu()
        labels = test.targets.cpu()
        scores = score_predictions(tracker, labels, pred, classes, per_class=FER_PLOTS / "per_class.csv",
                             table=FER_PLOTS / "confusion.csv", figure=Path("figures/fer/confusion.png"),
                             title=origin["test"], label="accuracy")
        best, last = out.history[out.best_epoch - 1], out.history[-1]
        metrics = {**scores,
                   "test_accuracy_without_tta": float((single == labels).float().mean()),
                   "best_epoch": out.best_epoch, "val_accuracy": best["val_accuracy"], "val_loss": best["val_loss"],
                   "train_accuracy": best["train_accuracy"], "parameters": parameter_count(model),
                   "train_seconds": round(last["elapsed_seconds"], 3),
                   "train_samples_per_second": round(len(splits["train"]) * len(out.history) / last["elapsed_seconds"]),
                   "test_samples_per_second": round(len(test) / seconds)}
        fm.save(model, cfg.model, FER_MODEL, best_epoch=out.best_epoch, tta=cfg.train.tta, origin=origin)
        write_json(metrics, FER_METRICS)
        write_csv(pd.DataFrame(out.history), FER_PLOTS / "history.csv")
        tracker.log_metrics(metrics)
    print(f"{stage}: test accuracy {metrics['test_accuracy']:.4f} ({origin['test']}; "
          f"{metrics['test_accuracy_without_tta']:.4f} without the mirror average), best epoch {out.best_epoch} "
          f"of {len(out.history)}, {metrics['parameters']:,} parameters, "
          f"{metrics['train_samples_per_second']:,} samples/s training on {device}")


DISTILL_MODELS, DISTILL_METRICS, DISTILL_PLOTS = Path("models/distill"), Path("metrics/distill"), Path("plots/distill")
DISTILL_FIGURES = Path("figures/distill")
DISTILL_RUNS = ("teacher", "grid", "student", "scratch", "finetune")


def distill(argv: list[str]) -> None:
    """One run of the distillation study: teacher (a), grid <alpha> <tau> and student (b),
    scratch (c), finetune (d)."""
    from pipeline.distill import DistillConfig

    if not argv or argv[0] not in DISTILL_RUNS or len(argv) != (3 if argv[0] == "grid" else 1):
        raise ParamError("usage: python -m stages.train distill <teacher|grid ALPHA TAU|student|scratch|finetune>")
    settings, cfg = load_section("distill", DistillConfig)
    seed_everything(settings.seed)
    device = pick_device(settings.device)
    {"teacher": _distill_teacher, "grid": _distill_grid, "student": _distill_student, "scratch": _distill_scratch,
     "finetune": _distill_finetune}[argv[0]](settings, cfg, device, argv[1:])


def _distill_scores(name: str, model_fn, test_x, test_y, classes, batch: int, amp, tracker, title: str) -> dict:
    """Test metrics of one distill run, its per-class table, dvc confusion data and figure."""
    from pipeline.distill_models import batched

    pred = batched(model_fn, test_x, batch, amp).argmax(1)
    return score_predictions(tracker, test_y, pred, classes, per_class=DISTILL_PLOTS / f"{name}_per_class.csv",
                       table=DISTILL_PLOTS / f"{name}_confusion.csv", figure=DISTILL_FIGURES / f"confusion_{name}.png",
                       title=title)


def _fit_summary(out) -> dict:
    best, last = out.history[out.best_epoch - 1], out.history[-1]
    return {"best_epoch": out.best_epoch, "epochs": len(out.history), "val_accuracy": best["val_accuracy"],
            "val_loss": best["val_loss"], "train_accuracy": best["train_accuracy"],
            "train_seconds": round(last["elapsed_seconds"], 3),
            "train_samples_per_second": round(last["samples_per_second"])}


def _distill_params(settings, device, **sections) -> dict:
    return flatten({**{k: to_dict(v) if dataclasses.is_dataclass(v) else v for k, v in sections.items()},
                    "seed": settings.seed, "scale": settings.scale, "device": str(device)})


def _distill_teacher(settings, cfg, device, argv) -> None:
    """(a) The new 10-class layer on the frozen backbone's features."""
    from pipeline.distill_models import FEATURES, ResNetTeacher, train_head
    from pipeline.engine import Split
    from stages.features import DISTILL_FEATURES, DISTILL_TEACHER

    feats = load_tensors(DISTILL_FEATURES)
    splits = {k: Split(feats[k].float().to(device), feats[f"{k}_y"].to(device)) for k in ("train", "val", "test")}
    classes = feats["classes"]
    params = _distill_params(settings, device, head=cfg.head, teacher=cfg.teacher,
                             **{f"{k}_samples": len(v) for k, v in splits.items()})
    with stage_run("distill", "distill_teacher", params) as tracker:
        head, out = train_head(splits, cfg.head, seed=settings.seed, classes=len(classes), on_epoch=tracker.log_epoch)
        scores = _distill_scores("teacher", head, splits["test"].inputs, splits["test"].targets, classes,
                                 cfg.eval_batch, None, tracker, "teacher (a), linear layer on frozen ResNet-50")
        metrics = {**scores, **_fit_summary(out), "parameters": parameter_count(ResNetTeacher(cfg.teacher.resize)),
                   "trained_parameters": parameter_count(head), "inference_samples_per_second":
                   round(feats["images_per_second"]), "resize": cfg.teacher.resize, "pretrained": feats["pretrained"],
                   "features": FEATURES}
        atomic_torch_save({"head": {k: v.cpu() for k, v in head.state_dict().items()}, "resize": feats["resize"],
                           "pretrained": feats["pretrained"], "weights": feats["weights"], "classes": classes},
                          DISTILL_TEACHER)
        _distill_write("teacher", metrics, out, tracker)
    print(f"distill_teacher: test accuracy {metrics['test_accuracy']:.4f} with a linear layer on "
          f"{'pretrained' if feats['pretrained'] else 'RANDOM (not pretrained)'} ResNet-50 features, best epoch "
          f"{out.best_epoch}")


def _distill_write(name: str, metrics: dict, out, tracker, folder: Path = DISTILL_METRICS,
                   plots: Path = DISTILL_PLOTS) -> None:
    write_json(metrics, folder / f"{name}.json")
    write_csv(pd.DataFrame(out.history), plots / f"{name}.csv")
    tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    tracker.log_artifact(plots / f"{name}.csv")


def _student_data(settings, cfg, device, with_teacher: bool) -> dict:
    """The student's splits (training targets: indices into the training split), its views and
    (with a teacher) the teacher's logits for them."""
    from pipeline.distill import make_views
    from pipeline.engine import Split
    from pipeline.errors import DataError
    from stages.features import DISTILL_LOGITS, distill_images

    images = distill_images(cfg, settings.seed, device)
    (tx, ty), val, test = (images["splits"][k] for k in ("train", "val", "test"))
    views, logits = make_views(len(tx), cfg.views, settings.seed), None
    if with_teacher:
        saved = load_tensors(DISTILL_LOGITS)
        if not (torch.equal(saved["views"], views) and torch.equal(saved["labels"], ty.cpu())):
            raise DataError(f"{DISTILL_LOGITS}: computed for other views or images than distill's params give now; "
                            "run `dvc repro distill_logits`")
        logits = saved["logits"]
    return {"train": Split(tx, torch.arange(len(tx), device=device)), "val": Split(*val), "test": Split(*test),
            "labels": ty, "views": views, "logits": logits, "classes": images["classes"]}


def _student_run(name: str, stage: str, settings, cfg, device, data, alpha: float, tau: float,
                 epochs: int | None, title: str | None = None, extra: dict | None = None,
                 metrics_dir: Path = DISTILL_METRICS, plots_dir: Path = DISTILL_PLOTS) -> dict:
    """Train one student; with a `title` (the full-length runs) score it on test, measure its
    inference speed and save it; without (a grid run) keep only its metrics and curves."""
    from pipeline import cifar10
    from pipeline.distill_models import throughput, train_student
    from stages.features import DISTILL_LOGITS

    amp = autocast_dtype(device, settings.precision)
    sched = cfg.student.train
    params = _distill_params(settings, device, student=cfg.student, views=cfg.views, alpha=alpha, tau=tau,
                             epochs=epochs or sched.epochs, teacher=data["logits"] is not None,
                             **{f"{k}_samples": len(data[k]) for k in ("train", "val", "test")})
    resume = resume_dir(stage, (settings, cfg.student, cfg.views, cfg.data, alpha, tau, epochs),
                        (cifar10.PREPARED, DISTILL_LOGITS) if data["logits"] is not None else (cifar10.PREPARED,))
    with stage_run("distill", stage, params) as tracker:
        model, out = train_student(data, data["views"], data["logits"], alpha, tau, sched, width=cfg.student.width,
                                   dropout=cfg.student.dropout, seed=settings.seed, classes=len(data["classes"]),
                                   epochs=epochs, amp_dtype=amp,
                                   on_epoch=tracker.log_epoch, resume_dir=resume)
        metrics = {**_fit_summary(out), "alpha": alpha, "tau": tau, **(extra or {})}
        if title is not None:
            test = data["test"]
            model.eval()
            metrics.update(_distill_scores(name, model, test.inputs, test.targets, data["classes"], cfg.eval_batch,
                                           amp, tracker, title))
            metrics.update(parameters=parameter_count(model), inference_samples_per_second=round(
                throughput(model, test.inputs, cfg.eval_batch, amp)))
            atomic_torch_save({"state_dict": out.best_state, "width": cfg.student.width,
                               "dropout": cfg.student.dropout, "alpha": alpha, "tau": tau,
                               "classes": data["classes"]}, DISTILL_MODELS / f"{name}.pt")
        else:
            best = out.history[out.best_epoch - 1]
            metrics.update(test_accuracy_at_best=best["test_accuracy"])
        _distill_write(name, metrics, out, tracker, metrics_dir, plots_dir)
    return metrics


GRID_METRICS, GRID_PLOTS = DISTILL_METRICS / "grid", DISTILL_PLOTS / "grid"


def _distill_grid(settings, cfg, device, argv) -> None:
    """One short run of the α × τ grid (dvc.yaml matrix); only its validation accuracy is used.
    Its files are named by the values as dvc.yaml writes them: alpha<α>_tau<τ>."""
    try:
        alpha, tau = float(argv[0]), float(argv[1])
    except ValueError:
        raise ParamError(f"distill grid: {argv} are not two numbers (alpha tau)") from None
    if alpha not in cfg.grid.alpha or tau not in cfg.grid.tau:
        raise ParamError(f"distill grid {alpha:g} {tau:g}: not in distill.grid.alpha {list(cfg.grid.alpha)} × "
                         f"distill.grid.tau {list(cfg.grid.tau)}")
    data = _student_data(settings, cfg, device, with_teacher=True)
    m = _student_run(f"alpha{argv[0]}_tau{argv[1]}", f"distill_grid@{argv[0]}-{argv[1]}", settings, cfg, device,
                     data, alpha, tau, cfg.grid.epochs, metrics_dir=GRID_METRICS, plots_dir=GRID_PLOTS)
    print(f"distill grid α={alpha:g} τ={tau:g}: val accuracy {m['val_accuracy']:.4f} after {cfg.grid.epochs} epochs")


def best_pair(cfg, folder: Path = GRID_METRICS) -> tuple[float, float, list[dict]]:
    """The grid's best (α, τ) by validation accuracy (the first of equals, in params order) and
    every pair's row, read from the grid runs' metrics (files of pairs no longer in the grid are
    ignored)."""
    import json

    from pipeline.errors import DataError

    found = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        row = json.loads(path.read_text())
        found[(float(row["alpha"]), float(row["tau"]))] = row
    rows = []
    for a in cfg.grid.alpha:
        for t in cfg.grid.tau:
            if (a, t) not in found:
                raise DataError(f"{folder}: no grid run for α={a:g} τ={t:g}; run `dvc repro distill_grid` first "
                                "(the grid picks α and τ)")
            rows.append(found[(a, t)])
    best = max(rows, key=lambda r: r["val_accuracy"])
    return best["alpha"], best["tau"], rows


def _distill_student(settings, cfg, device, argv) -> None:
    """(b) The full-length distilled student with the grid's best α and τ."""
    alpha, tau, rows = best_pair(cfg)
    data = _student_data(settings, cfg, device, with_teacher=True)
    m = _student_run("student", "distill_student", settings, cfg, device, data, alpha, tau, None,
                     f"student (b), distilled, α={alpha:g} τ={tau:g}", {"grid_runs": len(rows)})
    print(f"distill_student: α={alpha:g} τ={tau:g} (best of {len(rows)} grid runs), test accuracy "
          f"{m['test_accuracy']:.4f}, best epoch {m['best_epoch']}")


def _distill_scratch(settings, cfg, device, argv) -> None:
    """(c) The same student and schedule, no teacher: plain cross-entropy (α = 1)."""
    data = _student_data(settings, cfg, device, with_teacher=False)
    m = _student_run("scratch", "distill_scratch", settings, cfg, device, data, 1.0, 1.0, None,
                     "student (c), no teacher")
    print(f"distill_scratch: test accuracy {m['test_accuracy']:.4f}, best epoch {m['best_epoch']}")


def _distill_finetune(settings, cfg, device, argv) -> None:
    """(d) The whole ResNet-50 fine-tuned, its backbone at a lower learning rate."""
    from pipeline import cifar10
    from pipeline.distill_models import throughput, train_finetune
    from pipeline.engine import Split
    from stages.features import distill_images, distill_teacher_net

    amp = autocast_dtype(device, settings.precision)
    images = distill_images(cfg, settings.seed, device)
    data = {k: Split(*v) for k, v in images["splits"].items()}
    teacher = distill_teacher_net(cfg, device, frozen=False)
    torch.manual_seed(settings.seed)
    teacher.head.reset_parameters()
    stage = "distill_finetune"
    params = _distill_params(settings, device, finetune=cfg.finetune, teacher=cfg.teacher, views=cfg.views,
                             **{f"{k}_samples": len(v) for k, v in data.items()})
    resume = resume_dir(stage, (settings, cfg.finetune, cfg.teacher, cfg.views, cfg.data), (cifar10.PREPARED,))
    with stage_run("distill", stage, params) as tracker:
        out = train_finetune(teacher, data, cfg.finetune.train, cfg.finetune.backbone_lr, cfg.views,
                             seed=settings.seed, amp_dtype=amp, on_epoch=tracker.log_epoch, resume_dir=resume)
        teacher.eval()
        test = data["test"]
        metrics = {**_distill_scores("finetune", teacher, test.inputs, test.targets, images["classes"],
                                     cfg.teacher.batch, amp, tracker, "ResNet-50 fine-tuned (d)"),
                   **_fit_summary(out), "parameters": parameter_count(teacher), "resize": cfg.teacher.resize,
                   "pretrained": cfg.teacher.pretrained, "backbone_lr": cfg.finetune.train.lr * cfg.finetune.backbone_lr,
                   "inference_samples_per_second": round(throughput(teacher, test.inputs[:cfg.teacher.batch * 4],
                                                                    cfg.teacher.batch, amp))}
        atomic_torch_save({"state_dict": out.best_state, "resize": cfg.teacher.resize, "classes": images["classes"]},
                          DISTILL_MODELS / "finetune.pt")
        _distill_write("finetune", metrics, out, tracker)
    print(f"distill_finetune: test accuracy {metrics['test_accuracy']:.4f}, best epoch {out.best_epoch}")


COLOURIZE_MODELS, COLOURIZE_METRICS = Path("models/colourize"), Path("metrics/colourize")
COLOURIZE_PLOTS, SWEEP_METRICS = Path("plots/colourize"), Path("metrics/colourize/sweeps")
SWEEP_KEYS = ("filters", "lr", "kernel")


def colourize(argv: list[str]) -> None:
    """`colourize <cnn|unet|residual>`: a headline run; `colourize sweep <cnn|unet> <filters|lr|kernel>
    <value>`: one point of a sweep (every other setting the model's headline run's)."""
    from pipeline import colourize as col

    settings, cfg = load_section("colourize", col.ColourizeConfig)
    if len(argv) == 1 and argv[0] in col.MODELS:
        _colourize_run(settings, cfg, argv[0], cfg.run(argv[0]), argv[0], f"colourize_train@{argv[0]}")
    elif len(argv) == 4 and argv[0] == "sweep" and argv[1] in ("cnn", "unet") and argv[2] in SWEEP_KEYS:
        model, key, text = argv[1], argv[2], argv[3]
        sweep = getattr(cfg, f"sweep_{model}")
        try:
            value = float(text) if key == "lr" else int(text)
        except ValueError:
            raise ParamError(f"colourize sweep {model} {key}: {text!r} is not a number") from None
        if value not in getattr(sweep, key):
            raise ParamError(f"colourize sweep {model} {key} {text}: not in colourize.sweep_{model}.{key} "
                             f"{list(getattr(sweep, key))}")
        run, label = dataclasses.replace(cfg.run(model), **{key: value}), f"{model}_{key}_{text}"
        _colourize_run(settings, cfg, model, run, label, f"colourize_sweep_{model}_{key}@{text}", sweep=key)
    else:
        raise ParamError("usage: python -m stages.train colourize <cnn|unet|residual> | "
                         "colourize sweep <cnn|unet> <filters|lr|kernel> <value>")


def _colourize_run(settings, cfg, model_name: str, run, label: str, stage: str, sweep: str | None = None) -> None:
    """A headline run (sweep None: model, curves and figure kept) or one sweep point (sweep: the
    key it varies; metrics only, a diverging loss recorded instead of failing)."""
    from pipeline import colourize as col
    from pipeline.colourize_figures import colourised
    from pipeline.engine import Split, fit
    from pipeline.errors import TrainingDiverged
    from stages.features import COLOURIZE_FIGURES, COLOURIZE_HORSES

    seed_everything(settings.seed)
    device = pick_device(settings.device)
    amp = autocast_dtype(device, settings.precision)
    data = load_tensors(COLOURIZE_HORSES)
    train = Split(data["train_x"].to(device), data["train_y"].to(device))
    val = Split(data["val_x"].to(device), data["val_y"].to(device))
    palette = data["palette"]
    params = flatten({"model": model_name, **to_dict(run), "seed": settings.seed, "scale": settings.scale,
                      "device": str(device), "train_samples": len(train), "val_samples": len(val),
                      "colours": len(palette)})
    metrics_path = (SWEEP_METRICS if sweep else COLOURIZE_METRICS) / f"{label}.json"
    plot_path = COLOURIZE_PLOTS / f"{label}.csv"          # headline runs; a sweep run's curves go to MLflow only
    with stage_run("colourize", stage, params) as tracker:
        torch.manual_seed(settings.seed)
        model = col.build(model_name, run, len(palette)).to(device)
        base = {"model": model_name, "sweep": sweep, "filters": run.filters, "kernel": run.kernel, "lr": run.lr,
                "epochs": run.epochs, "parameters": parameter_count(model)}
        try:
            out = fit(model, train, val, col.pixel_loss, run.train_config(), seed=settings.seed,
                      metrics=col.pixel_accuracy, amp_dtype=amp, on_epoch=tracker.log_epoch,
                      resume_dir=None if sweep else resume_dir(stage, (settings, run), (COLOURIZE_HORSES,)))
        except TrainingDiverged as exc:
            if not sweep:
                raise
            write_json({**base, "diverged": True, "val_accuracy": None, "val_loss": None, "reason": str(exc)},
                       metrics_path)
            print(f"{stage}: diverged ({exc}); recorded as such")
            return
        last = out.history[-1]
        metrics = {**base, "diverged": False, "val_accuracy": last["val_accuracy"], "val_loss": last["val_loss"],
                   "train_accuracy": last["train_accuracy"], "train_loss": last["train_loss"],
                   "best_val_accuracy": max(r["val_accuracy"] for r in out.history),
                   "train_seconds": round(last["elapsed_seconds"], 3)}
        write_json(metrics, metrics_path)
        tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        if not sweep:
            write_csv(pd.DataFrame(out.history), plot_path)      # monitor "last": the model holds best_state
            atomic_torch_save({"state_dict": out.best_state, "model": model_name, "run": to_dict(run),
                               "palette": palette}, COLOURIZE_MODELS / f"{model_name}.pt")
            shown = val.inputs[:cfg.show]
            publish_figures(tracker, {f"{model_name}.png": colourised({
                "grey": col.grey(shown), model_name: col.colourise(model, shown, palette),
                "palette truth": col.colourise_target(val.targets[:cfg.show], palette), "photo": shown})},
                COLOURIZE_FIGURES)
    print(f"{stage}: validation pixel accuracy {metrics['val_accuracy']:.4f} after {run.epochs} epochs, "
          f"{metrics['parameters']:,} parameters, {metrics['train_seconds']:.0f} s on {device}")


def main(argv: list[str]) -> None:
    choose({"superres": superres, "separable": separable, "batch_size": batch_size, "autoencoder": autoencoder,
            "autoencoder_classifier": autoencoder_classifier, "emnist": emnist_model, "fer": fer_model,
            "distill": distill, "colourize": colourize},
           argv[0], "experiment")(argv[1:])


if __name__ == "__main__":
    run(main, "usage: python -m stages.train <experiment> <variant>")
