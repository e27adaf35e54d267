"""Classification scores from predictions: confusion matrix and the summaries built on it."""
from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor


def accuracy(out: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """The engine's metrics hook: share of argmax predictions equal to the labels (logits or
    probabilities alike)."""
    return {"accuracy": (out.argmax(1) == labels).float().mean()}


def cross_entropy(out: Tensor, labels: Tensor) -> Tensor:
    """nn.CrossEntropyLoss on whatever the network outputs (it applies log-softmax itself)."""
    return torch.nn.functional.cross_entropy(out, labels)


def confusion_matrix(labels: Tensor, pred: Tensor, classes: int) -> Tensor:
    """(classes, classes) int64 counts; rows are true classes, columns predictions (sklearn's layout)."""
    flat = labels.long().flatten() * classes + pred.long().flatten()
    return torch.bincount(flat, minlength=classes * classes).reshape(classes, classes).cpu()


def scores(cm: Tensor) -> dict[str, float]:
    """Accuracy; macro precision and recall over the classes that occur as labels or predictions
    (an undefined ratio counts 0, as sklearn's zero_division=0); balanced accuracy (mean recall
    over the classes that occur as labels)."""
    cm = cm.double()
    tp, support, predicted = cm.diag(), cm.sum(1), cm.sum(0)
    seen, true = (support + predicted) > 0, support > 0
    precision = tp / predicted.clamp(min=1)
    recall = tp / support.clamp(min=1)
    return {"accuracy": float(tp.sum() / cm.sum()),
            "macro_precision": float(precision[seen].mean()),
            "macro_recall": float(recall[seen].mean()),
            "balanced_accuracy": float(recall[true].mean())}


def per_class(cm: Tensor, names: tuple[str, ...]) -> pd.DataFrame:
    cm = cm.double()
    tp, support, predicted = cm.diag(), cm.sum(1), cm.sum(0)
    return pd.DataFrame({"class": list(names), "support": support.long().tolist(),
                         "precision": (tp / predicted.clamp(min=1)).tolist(),
                         "recall": (tp / support.clamp(min=1)).tolist()})


def prediction_table(labels: Tensor, pred: Tensor, names: tuple[str, ...]) -> pd.DataFrame:
    """One row per sample (actual, predicted class names): what `dvc plots` confusion templates read."""
    lookup = list(names)
    return pd.DataFrame({"actual": [lookup[i] for i in labels.tolist()],
                         "predicted": [lookup[i] for i in pred.tolist()]})
