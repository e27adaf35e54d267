"""Classification scores (pipeline.core.scores) against scikit-learn."""
from __future__ import annotations

import pytest
import torch
from sklearn import metrics as skm

from pipeline.core import scores as cls


def test_confusion_and_scores_match_sklearn():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 6, (500,), generator=g)
    pred = torch.where(torch.rand(500, generator=g) < 0.6, labels, torch.randint(0, 7, (500,), generator=g))
    cm = cls.confusion_matrix(labels, pred, 7)
    assert cm.tolist() == skm.confusion_matrix(labels, pred, labels=range(7)).tolist()
    s = cls.scores(cm)
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred))
    assert s["macro_precision"] == pytest.approx(skm.precision_score(labels, pred, average="macro", zero_division=0))
    assert s["macro_recall"] == pytest.approx(skm.recall_score(labels, pred, average="macro", zero_division=0))
    with pytest.warns(UserWarning):
        want = skm.balanced_accuracy_score(labels, pred)
    assert s["balanced_accuracy"] == pytest.approx(want)
    table = cls.prediction_table(labels[:3], pred[:3], tuple("abcdefg"))
    assert list(table.columns) == ["actual", "predicted"] and table["actual"].tolist() == [
        "abcdefg"[i] for i in labels[:3].tolist()]
