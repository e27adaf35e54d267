"""A classifier's test scores and their outputs, for every stage that scores one."""
from __future__ import annotations

from pathlib import Path

from stages.common import Stage


def score_predictions(stage: Stage, labels, pred, classes: tuple[str, ...], *, per_class: Path,
                      figure: Path, title: str, table: Path | None = None,
                      label: str = "test accuracy") -> dict[str, float]:
    """Scores of a classifier's test predictions (test_accuracy, test_macro_precision, …) and their
    outputs: the per-class table (csv, also an MLflow artifact), the row-normalised confusion
    figure ("<title>: <label> NN.NN % …") and, given `table`, the one-row-per-sample csv that
    dvc's confusion template reads."""
    from pipeline.core import figures
    from pipeline.core import scores as sc

    labels, pred = labels.cpu(), pred.cpu()
    cm = sc.confusion_matrix(labels, pred, len(classes))
    scores = {f"test_{k}": v for k, v in sc.scores(cm).items()}
    stage.write_csv(sc.per_class(cm, classes), per_class)
    if table is not None:
        stage.write_csv(sc.prediction_table(labels, pred, classes), table)
    if stage.tracker is not None:
        stage.tracker.log_artifact(per_class)
    stage.figures({figure.name: figures.confusion(
        cm, classes, f"{title}: {label} {100 * scores['test_accuracy']:.2f} % (rows sum to 1)", normalise=True)},
        figure.parent)
    return scores
