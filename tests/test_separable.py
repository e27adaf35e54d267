"""`separable`: the data as the report made it, the network, and the zero-loss answer."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pipeline.core.engine import fit
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split
from pipeline.separable import study as sep


def _cfg(**kw) -> sep.SeparableConfig:
    return sep.SeparableConfig(train=TrainConfig(epochs=kw.pop("epochs", 200), batch_size=32, lr=0.01), **kw)


def test_blobs_are_make_blobs_with_the_reports_arguments():
    from sklearn.datasets import make_blobs

    x, y = sep.make_data(_cfg(), seed=0)
    rx, ry = make_blobs(n_samples=200, centers=[[-1, -1], [1, 1]], cluster_std=0.5, random_state=0)
    assert x.shape == (200, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(rx).float()) and y.tolist() == ry.tolist()


@pytest.mark.parametrize("n, centers, std, seed", [
    (201, ((-1.0, -1.0), (1.0, 1.0)), 0.5, 7),                 # an odd count: the first center gets one more
    (50, ((0.0, 0.0), (3.0, -1.0), (-2.0, 4.0)), 1.3, 123),    # three centers, 50 = 17 + 17 + 16
    (4, ((-1.0, -1.0), (1.0, 1.0)), 0.1, 2**31 - 1),
])
def test_blobs_match_make_blobs_for_other_counts_centers_and_seeds(n, centers, std, seed):
    from sklearn.datasets import make_blobs

    x, y = sep.make_data(_cfg(n_samples=n, centers=centers, cluster_std=std), seed=seed)
    rx, ry = make_blobs(n_samples=n, centers=[list(c) for c in centers], cluster_std=std, random_state=seed)
    assert torch.equal(x, torch.from_numpy(rx).float()) and y.tolist() == ry.tolist()


def test_network_shape_and_parameter_count():
    model = sep.SoftmaxMLP(hidden=8)
    assert sum(p.numel() for p in model.parameters()) == (2 * 8 + 8) + (8 * 2 + 2) == 42
    probs = model(torch.randn(5, 2))
    assert torch.allclose(probs.sum(1), torch.ones(5))


def test_training_separates_the_blobs():
    x, y = sep.make_data(_cfg(), seed=0)
    torch.manual_seed(0)
    model = sep.SoftmaxMLP(8)
    out = fit(model, Split(x[:160], y[:160]), Split(x[160:], y[160:]), sep.bce_on_softmax,
              TrainConfig(epochs=60, batch_size=32, lr=0.01), metrics=sep.accuracy)
    assert out.history[-1]["val_accuracy"] == 1.0
    assert out.history[-1]["train_loss"] < out.history[0]["train_loss"] / 10


def test_bce_on_softmax_is_torch_bceloss_on_one_hot_targets():
    probs = torch.softmax(torch.randn(7, 2), 1)
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0])
    ref = nn.BCELoss()(probs, nn.functional.one_hot(labels, 2).float())
    assert sep.bce_on_softmax(probs, labels).item() == pytest.approx(ref.item())


def test_zero_loss_margins_match_rounding_and_underflow():
    margins = sep.zero_loss_margins(top=800.0, step=1e-2)
    ce = margins["CrossEntropyLoss on the logits"]
    assert ce["float32"] == pytest.approx(24 * math.log(2), abs=0.02)
    assert ce["float64"] == pytest.approx(53 * math.log(2), abs=0.02)
    bce = margins["BCELoss on both softmax outputs (the report's)"]
    # the other output's log1p(-q) ~ -q vanishes only when q = e^-m underflows
    assert 100 < bce["float32"] < 105 and 740 < bce["float64"] < 746
    # just below the float32 threshold the loss is positive, at and above it exactly zero
    m = torch.tensor([ce["float32"] - 0.05, ce["float32"], ce["float32"] + 5])
    loss = sep.losses_at_margin(m)["CrossEntropyLoss on the logits"]
    assert loss[0] > 0 and loss[1] == 0 and loss[2] == 0


def test_four_point_example_has_exactly_zero_float32_loss():
    ex = sep.four_point_example()
    assert ex["loss_float32"] == 0.0
    assert 0 < ex["loss_float64"] and 0 < ex["loss_exact"] < 1e-50
    assert ex["accuracy_float32"] == 1.0 and ex["margins"] == [120.0, 180.0, 120.0, 180.0]
