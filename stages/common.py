"""What every stage does first: read params.yaml, validate, pick the device; one-line errors."""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Callable, TypeVar

from pipeline.errors import DataError, ParamError, PipelineError
from pipeline.params import load_params, parse, to_dict
from pipeline.settings import Settings, settings_from

T = TypeVar("T")
RESUME_ROOT = Path(".cache/resume")


def load_section(name: str, cls: type[T], path: str = "params.yaml") -> tuple[Settings, T]:
    """The shared settings and the experiment's validated section, at the configured scale."""
    params = load_params(path)
    settings = settings_from(params)
    if name not in params:
        raise ParamError(f"{name}: section missing from {path}")
    cfg = parse(cls, params[name], key=name)
    return settings, cfg.at_scale(settings.scale)


def load_tensors(path: Path) -> dict:
    """A torch file another stage wrote; missing means that stage has not run."""
    import torch

    if not path.exists():
        raise DataError(f"{path}: missing; run `dvc repro` (it runs the stage that writes it) first")
    try:
        return torch.load(path, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise DataError(f"{path}: unreadable ({exc.__class__.__name__}); delete it and run `dvc repro`") from None


def save_figure(fig, path: Path) -> None:
    """A matplotlib figure as PNG, written atomically."""
    from pipeline.files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def publish_figures(tracker, figs: dict, folder: Path) -> None:
    """Each {file name: figure} saved under `folder`, logged to the stage's MLflow run (when the
    stage has one: `tracker` None for stages that track nothing), closed."""
    import matplotlib.pyplot as plt

    for name, fig in figs.items():
        save_figure(fig, folder / name)
        if tracker is not None:
            tracker.log_figure(fig, name)
        plt.close(fig)


def resume_dir(stage: str, config, inputs: tuple[Path, ...] = ()) -> Path:
    """A git-ignored folder for resume checkpoints, keyed by stage, params and input bytes."""
    h = hashlib.sha256(json.dumps(to_dict(config), sort_keys=True, default=str).encode())
    for path in inputs:
        with open(path, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
    return RESUME_ROOT / f"{stage.replace('@', '-')}-{h.hexdigest()[:16]}"


def run(main: Callable[[list[str]], None], usage: str) -> None:
    """Call main(argv); a PipelineError becomes one line on stderr and exit status 2."""
    argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, file=sys.stderr)
        sys.exit(0 if argv else 2)
    try:
        main(argv)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def choose(table: dict[str, Callable], name: str, what: str) -> Callable:
    if name not in table:
        raise ParamError(f"{what} {name!r} has no stage of this kind; choose one of {', '.join(table)}")
    return table[name]


def mnist_splits(device, train_limit: int | None = None, test_limit: int | None = None):
    """The prepared MNIST-family dataset named in params (`mnist.dataset`), its uint8 images and
    labels moved to `device` whole: (train Split, test Split, the loaded dict)."""
    from pipeline import mnist
    from pipeline.engine import Split

    _, cfg = load_section("mnist", mnist.MnistConfig)
    data = mnist.limit(load_tensors(cfg.prepared), train_limit, test_limit)
    train = Split(data["train_x"].to(device), data["train_y"].to(device))
    test = Split(data["test_x"].to(device), data["test_y"].to(device))
    return train, test, {**data, "path": cfg.prepared}


def score_predictions(tracker, labels, pred, classes: tuple[str, ...], *, per_class: Path, figure: Path,
                      title: str, table: Path | None = None, label: str = "test accuracy") -> dict[str, float]:
    """Scores of a classifier's test predictions (test_accuracy, test_macro_precision, …) and their
    outputs: the per-class table (csv, also an MLflow artifact), the row-normalised confusion
    figure ("<title>: <label> NN.NN % …") and, given `table`, the one-row-per-sample csv that
    dvc's confusion template reads."""
    from pipeline import classification as cls
    from pipeline import mnist_figures as mf
    from pipeline.files import write_csv

    labels, pred = labels.cpu(), pred.cpu()
    cm = cls.confusion_matrix(labels, pred, len(classes))
    scores = {f"test_{k}": v for k, v in cls.scores(cm).items()}
    write_csv(cls.per_class(cm, classes), per_class)
    if table is not None:
        write_csv(cls.prediction_table(labels, pred, classes), table)
    tracker.log_artifact(per_class)
    publish_figures(tracker, {figure.name: mf.confusion(
        cm, classes, f"{title}: {label} {100 * scores['test_accuracy']:.2f} % (rows sum to 1)", normalise=True)},
        figure.parent)
    return scores
