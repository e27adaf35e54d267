"""separable — can the loss be exactly zero? `python -m stages.separable <stage>`.

train: the softmax MLP on two Gaussian blobs, and the zero-loss answer measured; report.
"""
from __future__ import annotations

from pathlib import Path

from stages.common import begin, main

MODEL, METRICS = Path("models/separable/mlp.pt"), Path("metrics/separable")
PLOT, FIGURES = Path("plots/separable/history.csv"), Path("figures/separable")


def train() -> None:
    from pipeline.core.engine import fit, parameter_count
    from pipeline.core.params import flatten, to_dict
    from pipeline.separable import study
    from pipeline.separable.figures import boundary, loss_curve
    from pipeline.separable.study import SeparableConfig

    st = begin("separable_train", "separable", SeparableConfig)
    cfg = st.cfg
    x, y = study.make_data(cfg, st.seed)
    train_split, val = study.splits(x, y, cfg.val_fraction, st.seed, st.device)
    model = study.SoftmaxMLP(cfg.hidden).to(st.device)
    resume = st.resume((st.settings, cfg))
    with st.tracked(flatten(to_dict(cfg)), resume) as tracker:
        out = fit(model, train_split, val, study.bce_on_softmax, cfg.train, seed=st.seed, metrics=study.accuracy,
                  on_epoch=tracker.log_epoch, resume_dir=resume)
        model.load_state_dict(out.best_state)
        last = out.history[-1]
        metrics = {"final_train_loss": last["train_loss"], "final_val_loss": last["val_loss"],
                   "val_accuracy": last["val_accuracy"], "min_train_loss": min(h["train_loss"] for h in out.history),
                   "best_epoch": out.best_epoch, "parameters": parameter_count(model)}
        st.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, MODEL)
        metrics.update(st.peak_memory())
        st.write_json(metrics, METRICS / "train.json")
        st.write_json(study.zero_loss_answer(), METRICS / "zero_loss.json")
        st.write_csv(out.history, PLOT)
        tracker.log_metrics(metrics)
        st.figures({"loss.png": loss_curve(out.history), "boundary.png": boundary(model.cpu(), x, y)},
                   FIGURES)
    st.done(f"final train loss {metrics['final_train_loss']:.3g}, validation accuracy {metrics['val_accuracy']:.3f}")


def report() -> None:
    from stages.report import render_report

    render_report("separable")


if __name__ == "__main__":
    main(__doc__, {"train": train, "report": report})
