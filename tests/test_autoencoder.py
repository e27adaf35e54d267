"""autoencoder: the report's networks, the double-softmax floor, per-batch accuracy, the params section."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.autoencoder import model as ae
from pipeline.core import scores as cls
from pipeline.core.engine import parameter_count
from pipeline.core.errors import ParamError
from pipeline.core.params import load_params, parse
from pipeline.core.split import Split
from pipeline.data.mnist import to_unit
from tests.conftest import ROOT


def _digits(n: int, seed: int = 0, dtype=torch.uint8) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 28, 28), generator=g, dtype=dtype), torch.randint(0, 10, (n,), generator=g))


def test_network_sizes_equal_the_hand_computed_totals():
    # encoder 784-500-200-100-30 and the mirrored decoder: (784*500+500) + (500*200+200) + (200*100+100)
    # + (100*30+30), then (30*100+100) + (100*200+200) + (200*500+500) + (500*784+784)
    assert parameter_count(ae.Autoencoder()) == 1_032_414 == ae.autoencoder_parameters((500, 200, 100, 30))
    # 30*20+20 + 20*15+15 + 15*10+10
    for variant in ae.VARIANTS:
        assert parameter_count(ae.build_classifier(variant, ae.ClassifierConfig(), 30)) == 1_095


def test_autoencoder_is_the_reports_network():
    model = ae.Autoencoder()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 500), (500, 200), (200, 100), (100, 30), (30, 100), (100, 200), (200, 500), (500, 784)]
    assert not isinstance(model.encoder[-1], nn.ReLU)          # the code is linear
    assert isinstance(model.decoder[-1], nn.Sigmoid)
    x = to_unit(_digits(4).inputs)
    assert x.shape == (4, 784) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert model.encoder(x).shape == (4, 30)
    out = model(x)
    assert out.shape == (4, 784) and bool(((out > 0) & (out < 1)).all())
    assert isinstance(ae.build_classifier("literal", ae.ClassifierConfig(), 30).net[-1], nn.Softmax)
    assert isinstance(ae.build_classifier("logits", ae.ClassifierConfig(), 30).net[-1], nn.Linear)


def test_softmax_before_cross_entropy_has_a_floor():
    one_hot_probs = torch.softmax(torch.tensor([[200.0] + [0.0] * 9]), dim=1)
    assert one_hot_probs[0, 0] == 1.0
    loss = cls.cross_entropy(one_hot_probs, torch.tensor([0]))
    assert loss.item() == pytest.approx(ae.double_softmax_floor(), rel=1e-6)
    assert ae.double_softmax_floor() == pytest.approx(1.4612, abs=1e-4)


def test_batch_accuracy_is_per_consecutive_batch():
    labels = torch.arange(10).repeat(25)                       # 250 test labels
    pred = labels.clone()
    pred[:50] = (pred[:50] + 1) % 10                           # the first half of batch 1 wrong
    acc = ae.batch_accuracy(pred, labels, 100)
    assert acc.tolist() == [0.5, 1.0, 1.0]


def test_the_params_file_parses_and_bad_values_are_named():
    params = load_params(ROOT / "params.yaml")
    aec = parse(ae.AutoencoderConfig, params["autoencoder"], key="autoencoder")
    assert aec.encoder == (500, 200, 100, 30) and aec.batch_size == 100 and aec.weight_decay == 1e-5
    assert aec.at_scale("smoke").epochs == 2 and aec.at_scale("smoke").show_epochs == (1, 2)
    with pytest.raises(ParamError, match=r"autoencoder.show_epochs: \[12\] after the last epoch"):
        parse(ae.AutoencoderConfig, {**params["autoencoder"], "show_epochs": [1, 12]}, key="autoencoder")
