"""autoencoder — autoencoder codes for classification: `python -m stages.autoencoder <stage>`.

train: the autoencoder on the dataset mnist.dataset names; codes: the trained encoder's codes of
every image; classify <variant>: a classifier on the codes (literal: the report's softmax
before CrossEntropyLoss; logits: plain logits); report.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.autoencoder.model import AutoencoderConfig
from stages.common import begin, load_section, load_tensors, main

MODEL, CODES = Path("models/autoencoder/autoencoder.pt"), Path("data/features/autoencoder/codes.pt")
MODELS, METRICS, PLOTS = Path("models/autoencoder"), Path("metrics/autoencoder"), Path("plots/autoencoder")
FIGURES = Path("figures/autoencoder")


def _mnist(st, cfg: AutoencoderConfig) -> tuple:
    """The prepared dataset mnist.dataset names, on the stage's device: (train, test, data)."""
    from pipeline.data import mnist

    _, data_cfg = load_section("mnist", mnist.MnistConfig)
    train, test, data = mnist.on_device(load_tensors(data_cfg.prepared), st.device, cfg.train_limit, cfg.test_limit)
    return train, test, {**data, "path": data_cfg.prepared}


def train() -> None:
    import pandas as pd
    import torch

    from pipeline.autoencoder import model as ae
    from pipeline.autoencoder.figures import train_figures
    from pipeline.autoencoder.seed import SEED_EPOCH_LOSSES
    from pipeline.core.engine import fit, parameter_count
    from pipeline.core.params import flatten, to_dict
    from pipeline.core.split import Split
    from pipeline.data.mnist import to_unit

    st = begin("autoencoder_train", "autoencoder", AutoencoderConfig)
    cfg = st.cfg
    train_split, test, data = _mnist(st, cfg)
    model = ae.Autoencoder(cfg.encoder).to(st.device)
    unit_pair = lambda x, y, training: (to_unit(x), to_unit(x))  # noqa: E731  (the target is the input)
    params = flatten({**to_dict(cfg.train_config()), "encoder": cfg.encoder, "dataset": data["dataset"],
                      "train_samples": len(train_split), "device": str(st.device)})
    resume = st.resume((st.settings, cfg), (data["path"],))
    with st.tracked(params, resume) as tracker:
        out = fit(model, Split(train_split.inputs, train_split.inputs), None, ae.reconstruction_loss,
                  cfg.train_config(), seed=st.seed, prepare=unit_pair, amp_dtype=st.amp, on_epoch=tracker.log_epoch,
                  watch={"test": Split(test.inputs, test.inputs)}, snapshot_epochs=cfg.show_epochs,
                  resume_dir=resume)
        history = pd.DataFrame(out.history)
        pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(st.seed))[:cfg.show_images]
        shown = to_unit(data["test_x"][pick])
        recons = ae.reconstructions_at(model, out.snapshots, shown)
        model.load_state_dict(out.best_state)
        last = out.history[-1]
        metrics = {"train_loss": last["train_loss"], "test_loss": last["test_loss"],
                   "parameters": parameter_count(model), "train_seconds": round(last["elapsed_seconds"], 3)}
        st.save({"state_dict": out.best_state, "encoder": cfg.encoder}, MODEL)
        metrics.update(st.peak_memory())
        st.write_json(metrics, METRICS / "autoencoder.json")
        st.write_csv(history, PLOTS / "autoencoder.csv")
        tracker.log_metrics(metrics)
        sample = torch.randperm(len(train_split), generator=torch.Generator().manual_seed(st.seed + 1))[:5]
        st.figures(train_figures(data, sample, shown, recons, history, SEED_EPOCH_LOSSES),
                   FIGURES / "train")
    st.done(f"train MSE {metrics['train_loss']:.4f}, test MSE {metrics['test_loss']:.4f}, "
            f"{metrics['parameters']} parameters, {metrics['train_seconds']:.1f}s on {st.device}")


def codes() -> None:
    """The trained encoder's codes of every train and test image."""
    from pipeline.autoencoder.model import Autoencoder, encode
    from pipeline.data.mnist import to_unit

    st = begin("autoencoder_codes", "autoencoder", AutoencoderConfig)
    saved = load_tensors(MODEL)
    model = Autoencoder(tuple(saved["encoder"])).to(st.device)
    model.load_state_dict(saved["state_dict"])
    train_split, test, data = _mnist(st, st.cfg)
    out = {f"{name}_codes": encode(model.encoder, to_unit(split.inputs)).cpu()
           for name, split in (("train", train_split), ("test", test))}
    out.update(train_y=data["train_y"], test_y=data["test_y"], classes=data["classes"], dataset=data["dataset"])
    st.save(out, CODES)
    st.done(f"train {tuple(out['train_codes'].shape)}, test {tuple(out['test_codes'].shape)} -> {CODES}")


def classify(variant: str) -> None:
    import torch

    from pipeline.autoencoder import model as ae
    from pipeline.core import figures
    from pipeline.core import scores as sc
    from pipeline.core.engine import fit, parameter_count
    from pipeline.core.errors import ParamError
    from pipeline.core.params import flatten, to_dict
    from pipeline.core.split import Split

    st = begin(f"autoencoder_classify@{variant}", "autoencoder", AutoencoderConfig)
    if variant not in ae.VARIANTS:
        raise ParamError(f"autoencoder_classify: {variant!r} is not a variant; choose one of {', '.join(ae.VARIANTS)}")
    ccfg = st.cfg.classifier
    data = load_tensors(CODES)
    train_split = Split(data["train_codes"].to(st.device), data["train_y"].to(st.device))
    test = Split(data["test_codes"].to(st.device), data["test_y"].to(st.device))
    model = ae.build_classifier(variant, ccfg, train_split.inputs.shape[1]).to(st.device)
    resume = st.resume((st.settings, ccfg, variant), (CODES,))
    with st.tracked(flatten({"variant": variant, **to_dict(ccfg)}), resume) as tracker:
        out = fit(model, train_split, None, sc.cross_entropy, ccfg.train_config(), seed=st.seed,
                  metrics=sc.accuracy, on_epoch=tracker.log_epoch, watch={"test": test},
                  resume_dir=resume)
        with torch.no_grad():
            pred = model.eval()(test.inputs).argmax(1).cpu()
        labels, classes = data["test_y"], data["classes"]
        cm = sc.confusion_matrix(labels, pred, len(classes))
        per_batch = ae.batch_accuracy(pred, labels, ccfg.batch_size)
        last = out.history[-1]
        metrics = {**{f"test_{k}": v for k, v in sc.scores(cm).items()}, "test_loss": last["test_loss"],
                   "train_loss": last["train_loss"], "train_accuracy": last["train_accuracy"],
                   "batch_accuracy_min": float(per_batch.min()), "batch_accuracy_max": float(per_batch.max()),
                   "parameters": parameter_count(model)}
        st.save({"state_dict": out.best_state, "variant": variant, "hidden": ccfg.hidden},
                MODELS / f"classifier_{variant}.pt")
        metrics.update(st.peak_memory())
        st.write_json(metrics, METRICS / f"classifier_{variant}.json")
        st.write_csv(out.history, PLOTS / f"classifier_{variant}.csv")
        st.write_csv(sc.prediction_table(labels, pred, classes), PLOTS / f"confusion_{variant}.csv")
        st.write_csv([{"batch": i + 1, "accuracy": a} for i, a in enumerate(per_batch.tolist())],
                     PLOTS / f"batch_accuracy_{variant}.csv")
        tracker.log_metrics(metrics)
        st.figures({f"confusion_{variant}.png": figures.confusion(
            cm, classes, f"classifier on codes ({variant}): test accuracy {100 * metrics['test_accuracy']:.1f} %")},
            FIGURES)
    st.done(f"test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}")


def report() -> None:
    from pipeline.core.params import load_params, parse
    from pipeline.data.mnist import MnistConfig
    from stages.report import render_report

    render_report("autoencoder", {"dataset": parse(MnistConfig, load_params().get("mnist", {}), key="mnist").dataset})


if __name__ == "__main__":
    main(__doc__, {"train": train, "codes": codes, "classify": classify, "report": report})
