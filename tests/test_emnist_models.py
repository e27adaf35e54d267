"""EMNIST models: the factorised convolution, parameter balance, layer table, best checkpoint."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from pipeline.core.engine import evaluate
from pipeline.core.errors import DataError, ParamError
from pipeline.core.nets import FactorisedConv, Standardize, pixel_statistics
from pipeline.core.params import load_params, parse
from pipeline.core.split import Split
from pipeline.emnist import data as emnist
from pipeline.emnist import models as em
from pipeline.emnist import train as et
from tests.conftest import ROOT


@pytest.mark.parametrize("c_in,c_out,k", [(1, 64, 3), (64, 64, 3), (32, 96, 5), (128, 16, 7)])
def test_factorised_conv_has_the_formula_parameter_count_and_saves(c_in, c_out, k):
    full = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
    fact = FactorisedConv(c_in, c_out, k)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(full) == em.conv_parameters(c_in, c_out, k) == k * k * c_in * c_out
    m = min(c_in, c_out)
    assert count(fact) == em.factorised_parameters(c_in, c_out, k) == k * c_in * m + k * m * c_out
    assert count(fact) < count(full)
    assert [tuple(c.kernel_size) for c in fact] == [(k, 1), (1, k)]
    x = torch.randn(2, c_in, 11, 13)
    assert fact(x).shape == full(x).shape == (2, c_out, 11, 13)


def test_factorised_pair_is_a_kxk_convolution_with_a_sum_of_separable_kernels():
    torch.manual_seed(0)
    fact = FactorisedConv(3, 5, 5)
    col, row = fact[0].weight, fact[1].weight               # (m, c_in, k, 1), (c_out, m, 1, k)
    kernel = torch.einsum("mia,omb->oiab", col[..., 0], row[:, :, 0])   # sum over m of column × row
    full = nn.Conv2d(3, 5, 5, padding=2, bias=False)
    with torch.no_grad():
        full.weight.copy_(kernel)
    x = torch.randn(4, 3, 12, 12)
    torch.testing.assert_close(fact(x), full(x), atol=1e-5, rtol=1e-5)
    ranks = torch.linalg.matrix_rank(kernel.flatten(0, 1))   # each (o, i) kernel: rank ≤ m = 3 < 5
    assert int(ranks.max()) <= 3


def test_default_models_balance_their_parameters_and_the_check_names_the_fix():
    cfg = parse(emnist.EmnistConfig, load_params(ROOT / "params.yaml")["emnist"], "emnist")
    counts = em.parameter_counts(cfg.mlp, cfg.cnn, emnist.N_CLASSES)
    built = {name: sum(p.numel() for p in em.build(name, cfg.mlp, cfg.cnn, 62).parameters()) for name in em.MODELS}
    assert counts == built
    assert abs(counts["mlp"] / counts["cnn"] - 1) <= 0.10
    assert counts["factorised"] < 0.7 * counts["cnn"]
    raw = load_params(ROOT / "params.yaml")["emnist"]
    raw["mlp"] = {**raw["mlp"], "hidden": [2048, 1024]}
    with pytest.raises(ParamError, match=r"emnist: the MLP has 3,\d{3},\d{3} parameters .*emnist.mlp.hidden"):
        parse(emnist.EmnistConfig, raw, "emnist")
    raw = load_params(ROOT / "params.yaml")["emnist"]
    raw["cnn"] = {**raw["cnn"], "kernel": 4}
    with pytest.raises(ParamError, match="emnist.cnn.kernel: 4 is even"):
        parse(emnist.EmnistConfig, raw, "emnist")


def test_layer_table_adds_up_to_the_models_and_counts_multiply_adds():
    cfg = em.CnnConfig(channels=(8, 16), convs_per_stage=2, kernel=5)
    cnn, fact = em.CNN(cfg, 62), em.CNN(cfg, 62, factorised=True)
    table = em.layer_table(cnn, fact).set_index("layer")
    total = table.loc["total"]
    assert total["params"] == sum(p.numel() for p in cnn.parameters())
    assert total["params_factorised"] == sum(p.numel() for p in fact.parameters())
    assert list(table.index) == ["conv 1", "conv 2", "conv 3", "conv 4", "batch norm", "classifier", "total"]
    assert table.loc["conv 3", "shape"] == "8→16, 5×5" and table.loc["conv 3", "output"] == "16×14×14"
    assert table.loc["conv 3", "params_factorised"] == em.factorised_parameters(8, 16, 5) == 5 * 8 * 8 + 5 * 8 * 16
    assert table.loc["conv 1", "mult_adds"] == 25 * 8 * 28 * 28
    assert table.loc["conv 4", "mult_adds_factorised"] == (5 * 16 * 16 * 2) * 14 * 14
    assert table.loc["classifier", "params"] == 16 * 62 + 62


def test_models_take_uint8_images_and_standardise_them():
    x = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    cfg = em.CnnConfig(channels=(4, 8), convs_per_stage=1)
    for name in em.MODELS:
        model = em.build(name, em.MlpConfig(hidden=(16,)), cfg, 62).eval()
        assert model(x).shape == (6, 62) and model(x).dtype == torch.float32
    mean, std = pixel_statistics(x)
    ref = x.double() / 255
    assert mean == pytest.approx(float(ref.mean()), abs=1e-12)
    assert std == pytest.approx(float(ref.std(unbiased=False)), abs=1e-12)
    norm = Standardize(mean, std)(x)
    assert float(norm.mean()) == pytest.approx(0, abs=1e-5) and float(norm.std(unbiased=False)) == pytest.approx(1, abs=1e-4)


def test_first_of_each_class_and_limited_splits():
    labels = torch.tensor([3, 1, 3, 0, 1, 1])
    assert emnist.first_of_each_class(labels, 5) == [3, 1, None, 0, None]
    data = {"train_x": torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1).expand(10, 28, 28),
            "train_y": torch.arange(10), "test_x": torch.zeros(4, 28, 28, dtype=torch.uint8),
            "test_y": torch.zeros(4, dtype=torch.long), "train_idx": torch.tensor([0, 2, 4, 6, 8]),
            "val_idx": torch.tensor([1, 3, 5, 7, 9])}
    t = emnist.EmnistTrain(train_limit=3, val_limit=None, test_limit=2)
    s = et.splits(data, t, torch.device("cpu"))
    assert s["train"].targets.tolist() == [0, 2, 4] and s["val"].targets.tolist() == [1, 3, 5, 7, 9]
    assert len(s["test"]) == 2 and s["train"].inputs.dtype == torch.uint8
    with pytest.raises(DataError, match="emnist val split is empty"):
        et.splits({**data, "val_idx": torch.tensor([], dtype=torch.long)}, t, torch.device("cpu"))


def test_the_kept_model_is_the_epoch_with_the_best_validation_accuracy():
    """Validation labels are noise, so validation accuracy wanders: the model returned (and
    the one scored on test) must be the best epoch's, not the last."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (400, 28, 28), generator=g, dtype=torch.uint8)
    y = (x[:, :14].float().mean((1, 2)) > x[:, 14:].float().mean((1, 2))).long()   # top vs bottom half
    val_x = torch.randint(0, 256, (200, 28, 28), generator=g, dtype=torch.uint8)
    val_y = torch.randint(0, 4, (200,), generator=g)
    cfg = emnist.EmnistConfig(emnist.EmnistData(), em.MlpConfig(hidden=(32,), dropout=0.0),
                              em.CnnConfig(), emnist.EmnistTrain(epochs=8, batch_size=32, lr=3e-3))
    data = {"train": Split(x, y), "val": Split(val_x, val_y)}
    model, out = et.train_model("mlp", cfg, data, 4, seed=0, snapshot_epochs=tuple(range(1, 9)))
    val = [h["val_accuracy"] for h in out.history]
    assert out.best_epoch == val.index(max(val)) + 1
    assert out.best_epoch < len(val), "the test needs a run whose best epoch is not the last"
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, out.snapshots[out.best_epoch][k], rtol=0, atol=0)
    pred, rate = em.predict(model, val_x, 64)
    assert float((pred == val_y).float().mean()) == pytest.approx(max(val), abs=1e-6) and rate > 0
    from pipeline.core.scores import accuracy, cross_entropy
    again = evaluate(model, Split(val_x, val_y), cross_entropy, 50, metrics=accuracy)
    assert again["accuracy"] == pytest.approx(max(val), abs=1e-6)


def test_smoke_scale_limits_the_data_not_the_models():
    cfg = parse(emnist.EmnistConfig, load_params(ROOT / "params.yaml")["emnist"], "emnist")
    smoke = cfg.at_scale("smoke")
    assert smoke.train.epochs == 2 and (smoke.train.train_limit, smoke.train.val_limit) == (2048, 512)
    assert smoke.mlp == cfg.mlp and smoke.cnn == cfg.cnn
    assert dataclasses.replace(smoke.train, epochs=cfg.train.epochs, train_limit=None, val_limit=None,
                               test_limit=None) == cfg.train
    tc = cfg.train.train_config()
    assert (tc.monitor, tc.mode) == ("val_accuracy", "max")
