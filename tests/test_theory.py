"""Every theory item's numbers, exactly or to float tolerance, against torch references."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.theory import functions, gradients, networks, shapes
from pipeline.theory.answers import conv1d_check

# ---------------------------------------------------------------- 1-3: shapes, parameters, receptive fields

def test_seed001_cnn_table():
    t = shapes.layer_table(*shapes.seed001_cnn())
    assert t["output"].tolist() == ["128x128x32", "62x62x64", "31x31x64", "27x27x128", "25x25x128",
                                    "12x12x128", "10x10x256", "5x5x256", "1024", "1024", "10"]
    # (k*k*Cin + 1) * Cout for convs, (Nin + 1) * Nout for FC layers
    assert t["parameters"].tolist() == [(49 * 3 + 1) * 32, (25 * 32 + 1) * 64, 0, (9 * 64 + 1) * 128,
                                        (9 * 128 + 1) * 128, 0, (9 * 128 + 1) * 256, 0, 6401 * 1024, 0, 1025 * 10]
    assert t["parameters"].tolist() == [4736, 51264, 0, 73856, 147584, 0, 295168, 0, 6554624, 0, 10250]
    assert t["receptive_field"].tolist()[:8] == ["7x7", "11x11", "13x13", "29x29", "37x37", "41x41", "57x57", "65x65"]
    assert t["jump"].tolist()[:8] == [1, 2, 4, 4, 4, 8, 8, 16]


def test_receptive_field_equals_the_gradient_support():
    """Same geometry with average pooling and all-ones weights: one L8 output's input gradient
    covers exactly the computed 65 x 65 window."""
    _, layers = shapes.seed001_cnn()
    convs = []
    for _, m in layers[:8]:
        if isinstance(m, nn.MaxPool2d):
            m = nn.AvgPool2d(2)
        elif isinstance(m, nn.Conv2d):
            m = nn.Conv2d(1, 1, m.kernel_size, m.stride, dilation=m.dilation, bias=False)
            nn.init.ones_(m.weight)
        convs.append(m)
    x = torch.zeros(1, 1, 134, 134, dtype=torch.float64, requires_grad=True)
    out = nn.Sequential(*convs).double()(x)
    out[0, 0, 2, 2].backward()
    rows = torch.nonzero(x.grad[0, 0].sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].sum(0)).flatten()
    assert rows.max() - rows.min() + 1 == 65 and cols.max() - cols.min() + 1 == 65
    assert rows.min().item() == 2 * 16                                # jump 16


def test_seed002_table_net():
    t = shapes.layer_table(*shapes.seed002_table_net())
    assert t["output"].tolist() == ["32x32x8", "32x32x8", "16x16x8", "16x16x8", "6x6x16", "6x6x16",
                                    "3x3x16", "144", "10"]
    assert t["parameters"].tolist() == [224, 0, 0, 16, 3216, 0, 0, 0, 1450]
    assert t.loc[3, "buffers"] == 8 + 8 + 1                          # running mean, var, num_batches_tracked


def test_dilation_formulas():
    assert shapes.range_seen(4, k=3, d=2) == (4, 16)                  # 3 layers x 2 x (3 - 1) = 12
    assert shapes.dilated_output_size(33, k=5, d=3, m=4) == (21, 21, 4)
    grid = shapes.check_dilation((9, 16), (1, 2, 3, 5), (1, 2, 3))
    assert len(grid) >= 15
    assert grid[["size_ok", "gradient_ok", "perturbation_ok"]].all().all()


# ---------------------------------------------------------------- 4-6: gradients and optimiser steps

def test_global_max_pool_gradients_match_the_seed():
    g = gradients.global_max_pool_grads()
    assert g["max"] == 10.0 and g["z"] == [-3.0, 3.0, 10.0, 3.0]
    assert g["dw"] == (-1.0, 5.0, 3.0, 0.0) == g["winning_patch"]
    assert g["db"] == 1.0


def test_two_momentum_steps_match_the_seed_and_the_hand_recurrence():
    steps, hand = gradients.momentum_steps(), gradients.momentum_by_hand()
    first, second = steps
    assert first["y"] == 2.0 and first["grad"] == {"a": -16.0, "b": -16.0, "c": 16.0, "d": -16.0}
    assert first["params"] == pytest.approx({"a": 2.6, "b": 0.6, "c": -2.6, "d": 2.6}, abs=1e-12)
    assert second["y"] == pytest.approx(13.0, abs=1e-12) and all(v == pytest.approx(0, abs=1e-12)
                                                                   for v in second["grad"].values())
    assert second["velocity"] == pytest.approx({"a": -14.4, "b": -14.4, "c": 14.4, "d": -14.4}, abs=1e-12)
    assert second["params"] == pytest.approx({"a": 4.04, "b": 2.04, "c": -4.04, "d": 4.04}, abs=1e-12)
    for s, h in zip(steps, hand):
        assert s["params"] == pytest.approx(h["params"], abs=1e-12)


def test_conv1d_closed_form_equals_autograd():
    assert conv1d_check(trials=50, seed=3)["max_abs_difference"] < 1e-12


def test_conv1d_gradient_stops_where_zero_wins_the_max():
    x = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    k = torch.tensor([-1.0, -1.0, -1.0], dtype=torch.float64)
    b = torch.tensor(-10.0, dtype=torch.float64)                     # every z < 0: both maxes are 0
    w, a, y = torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)
    c = gradients.conv1d_closed_form(x, k, b, w, a, y)
    assert c["alpha"].tolist() == [0.0, 0.0, 0.0] and c["k"].tolist() == [0.0, 0.0, 0.0]
    assert c["a"].item() == 0.5 - 2.0


def test_general_1d_kernel_gradient_against_conv1d():
    g = torch.Generator().manual_seed(0)
    x, k = torch.randn(9, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    z = F.conv1d(x.view(1, 1, -1), k.view(1, 1, -1)).flatten()     # m = 9 - 4 + 1 = 6
    alpha = torch.randn(6, generator=g, dtype=torch.float64)
    (z * alpha).sum().backward()
    assert torch.allclose(gradients.general_kernel_grad(alpha, x, 4), k.grad)


# ---------------------------------------------------------------- 7, 8, 12: networks

def test_one_hat_is_the_triangle_function():
    knots = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    values = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    net = networks.hat_network(knots, values)
    xs = torch.linspace(-0.5, 1.5, 401, dtype=torch.float64)
    with torch.no_grad():
        got = net(xs[:, None]).squeeze(-1)
    want = torch.clamp(1 - (xs - 0.5).abs() / 0.25, min=0)
    assert torch.allclose(got, want, atol=1e-12)


def test_hat_network_interpolates_and_kinks_only_at_knots():
    knots = torch.linspace(0, 1, 11, dtype=torch.float64)
    f = lambda x: torch.sin(2 * math.pi * x) + x ** 2  # noqa: E731
    net = networks.hat_network(knots, f(knots))
    with torch.no_grad():
        assert torch.allclose(net(knots[:, None]).squeeze(-1), f(knots), atol=1e-12)
    xs = torch.linspace(0, 1, 1001, dtype=torch.float64)
    kinks = xs[1:-1][networks.second_differences(net, xs).abs() > 1e-9]
    assert torch.allclose(kinks, knots[1:-1], atol=1e-12)


def test_linear_regions_of_a_known_network():
    # one hidden layer with ReLU kinks at x = -1, 0 and 2 on the line from -3 to 3: four regions
    model = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0], [1.0], [-1.0]]))
        model[0].bias.copy_(torch.tensor([1.0, 0.0, 2.0]))
    assert networks.linear_regions_on_a_line(model, torch.tensor([-3.0]), torch.tensor([3.0]), 6001) == 4


def test_constant_initialisation_keeps_hidden_units_identical():
    const = networks.symmetry_run("constant", hidden=6, steps=100, lr=0.1, seed=0)
    rand = networks.symmetry_run("random", hidden=6, steps=100, lr=0.1, seed=0)
    drop = networks.symmetry_run("constant", hidden=6, steps=100, lr=0.1, seed=0, dropout=0.3)
    # identical in exact arithmetic; a BLAS kernel may round one unit's column differently (seen on
    # AVX-512: 3e-8 after 100 steps), so "identical" means within float32 rounding
    assert const["spread_before"] == 0.0 and const["spread_after"] < 1e-6
    assert rand["spread_after"] > 0.1 and drop["spread_after"] > 0.01


def test_skip_connections_keep_the_gradient_from_vanishing():
    g = networks.gradient_norms(width=16, depth=20, seed=0)
    assert g["plain"][0] / g["plain"][-1] < 1e-8
    assert g["residual"][0] / g["residual"][-1] > 0.5


# ---------------------------------------------------------------- 9-11: activations, losses, dropout

def test_activation_derivatives_match_their_formulas():
    xs = torch.linspace(-3, 3, 601, dtype=torch.float64)
    xs = xs[xs.abs() > 1e-9]                                          # derivatives at 0 are one-sided
    c = functions.activation_curves(xs)
    assert torch.allclose(c["ReLU"][1], (xs > 0).double())
    assert torch.allclose(c["LeakyReLU"][1], torch.where(xs > 0, 1.0, 0.01).double())
    assert torch.allclose(c["ELU"][1], torch.where(xs > 0, torch.ones_like(xs), xs.exp()))
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    assert torch.allclose(c["SELU"][1], torch.where(xs > 0, lam * torch.ones_like(xs), lam * alpha * xs.exp()))
    phi = torch.exp(-xs ** 2 / 2) / math.sqrt(2 * math.pi)
    Phi = 0.5 * (1 + torch.erf(xs / math.sqrt(2)))
    assert torch.allclose(c["GELU"][1], Phi + xs * phi)
    assert torch.allclose(c["RReLU"][1], torch.where(xs > 0, 1.0, (1 / 8 + 1 / 3) / 2).double())
    props = functions.activation_properties()
    assert props.loc["PReLU", "learnable parameters"] == 1 and props.loc["RReLU", "random in training"]
    assert abs(props.loc["SELU", "mean on N(0,1)"]) < 0.01 and abs(props.loc["SELU", "std on N(0,1)"] - 1) < 0.01


def test_normalised_losses_are_scale_free():
    t = functions.loss_scale_table()
    assert t.loc["both x10", "MSE"] == pytest.approx(100 * t.loc["as is", "MSE"])
    assert t.loc["both x10", "RMSE"] == pytest.approx(10 * t.loc["as is", "RMSE"])
    assert t.loc["both x10", "nRMSE"] == pytest.approx(t.loc["as is", "nRMSE"])
    assert t.loc["both x10", "rRMSE"] == pytest.approx(t.loc["as is", "rRMSE"])
    assert t.loc["both +100", "nRMSE"] == pytest.approx(t.loc["as is", "nRMSE"])
    assert t.loc["both +100", "rRMSE"] < t.loc["as is", "rRMSE"] / 5
    y, p = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 5.0])
    assert functions.nrmse(p, y).item() == pytest.approx(math.sqrt(4 / 3) / 2)
    assert functions.rrmse(p, y).item() == pytest.approx(math.sqrt(4 / 3) / 2)


def test_dropout_variants_zero_elements_channels_and_volumes():
    d = functions.dropout_patterns(p=0.5)
    assert d["Dropout"]["channels all-or-nothing"] < 0.5
    assert d["Dropout2d"]["channels all-or-nothing"] == 1.0 and d["Dropout3d"]["channels all-or-nothing"] == 1.0
    for info in d.values():
        assert info["kept value"] == [2.0] and info["eval is identity"]
    out3 = d["Dropout3d"]["output"]
    assert out3.shape == (2, 6, 2, 3, 3)
    flat = out3.reshape(12, -1)
    assert ((flat == 0).all(1) | (flat == 2).all(1)).all()
