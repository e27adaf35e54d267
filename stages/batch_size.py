"""batch_size — batch size, and training when a batch will not fit: `python -m stages.batch_size <stage>`.

train <size>: the MLP at one batch size of batch_size.sizes; accumulation: the gradient-
accumulation answer measured (gradients, training, memory); report.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.batch_size.config import BatchSizeConfig
from stages.common import begin, load_section, load_tensors, main

MODELS, METRICS, PLOTS = Path("models/batch_size"), Path("metrics/batch_size"), Path("plots/batch_size")


def _mnist(st, cfg: BatchSizeConfig) -> tuple:
    """The prepared dataset mnist.dataset names, on the stage's device: (train, test, data)."""
    from pipeline.data import mnist

    _, data_cfg = load_section("mnist", mnist.MnistConfig)
    train, test, data = mnist.on_device(load_tensors(data_cfg.prepared), st.device, cfg.train_limit, cfg.test_limit)
    return train, test, {**data, "path": data_cfg.prepared}


def train(size: str) -> None:
    from pipeline.batch_size import study
    from pipeline.core.engine import fit, parameter_count
    from pipeline.core.errors import ParamError
    from pipeline.core.params import flatten, to_dict
    from pipeline.data.mnist import flat_unit

    st = begin(f"batch_size_train@{size}", "batch_size", BatchSizeConfig)
    cfg = st.cfg
    if not size.isdigit() or int(size) not in cfg.sizes:
        raise ParamError(f"batch_size_train: {size!r} is not one of batch_size.sizes {list(cfg.sizes)}")
    size = int(size)
    train_split, test, data = _mnist(st, cfg)
    model = study.MLP(cfg.hidden).to(st.device)
    schedule = cfg.train_config(batch_size=size)
    params = flatten({"batch_size": size, **to_dict(schedule), "hidden": cfg.hidden, "dataset": data["dataset"],
                      "train_samples": len(train_split), "device": str(st.device)})
    resume = st.resume((st.settings, cfg, size), (data["path"],))
    with st.tracked(params, resume) as tracker:
        out = fit(model, train_split, None, study.cross_entropy, schedule, seed=st.seed, prepare=flat_unit,
                  metrics=study.accuracy, amp_dtype=st.amp, on_epoch=tracker.log_epoch, watch={"test": test},
                  resume_dir=resume)
        last = out.history[-1]
        metrics = {k: last[k] for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")}
        metrics.update(steps=last["step"], train_seconds=round(last["elapsed_seconds"], 3),
                       samples_per_second=round(len(train_split) * len(out.history) / last["elapsed_seconds"]),
                       parameters=parameter_count(model))
        st.save({"state_dict": out.best_state, "hidden": cfg.hidden}, MODELS / f"{size}.pt")
        metrics.update(st.peak_memory())
        st.write_json(metrics, METRICS / f"{size}.json")
        st.write_csv(out.history, PLOTS / f"{size}.csv")
        tracker.log_metrics(metrics)
    st.done(f"test accuracy {metrics['test_accuracy']:.4f} after {metrics['steps']} steps, "
            f"{metrics['train_seconds']:.1f}s on {st.device}")


def accumulation() -> None:
    from pipeline.batch_size import study
    from pipeline.core.params import flatten, to_dict

    st = begin("batch_size_accumulation", "batch_size", BatchSizeConfig)
    cfg = st.cfg
    train_split, test, _ = _mnist(st, cfg)
    result, rows = study.accumulation_study(lambda: study.MLP(cfg.hidden).to(st.device), train_split, test, cfg,
                                            st.seed, st.device)
    with st.tracked(flatten(to_dict(cfg.accumulation))) as tracker:
        st.write_json(result, METRICS / "accumulation.json")
        st.write_csv(rows, PLOTS / "memory.csv")
        tracker.log_metrics(flatten({k: result[k] for k in ("gradient", "training")}))
        tracker.log_artifact(PLOTS / "memory.csv")
    g, t = result["gradient"]["float32"], result["training"]["float32"]
    st.done(f"gradient gap {g['max_abs_difference']:.2e} (float32), weights after {t['steps']} steps differ by "
            f"{t['max_weight_difference']:.2e}; activations {rows[-1]['whole_activation_bytes'] / 1e6:.2f} MB whole "
            f"vs {rows[-1]['accumulated_activation_bytes'] / 1e6:.3f} MB accumulated at batch {rows[-1]['batch']}")


def report() -> None:
    from pipeline.core.params import load_params, parse
    from pipeline.data.mnist import MnistConfig
    from stages.report import render_report

    params = load_params()
    render_report("batch_size", {
        "dataset": parse(MnistConfig, params.get("mnist", {}), key="mnist").dataset,
        # the runs of this configuration, not stale files of earlier ones
        "sizes": list(parse(BatchSizeConfig, params.get("batch_size", {}), key="batch_size").sizes)})


if __name__ == "__main__":
    main(__doc__, {"train": train, "accumulation": accumulation, "report": report})
