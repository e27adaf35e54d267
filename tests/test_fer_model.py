"""The FER network, its on-device augmentation, training with the best epoch kept, test-time
mirror averaging, checkpoints, and the filter / feature-map inspection."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.core.errors import DataError, ParamError
from pipeline.core.params import load_params, parse
from pipeline.core.split import Split
from pipeline.fer import data as fer
from pipeline.fer import figures as fer_figures
from pipeline.fer import model as fm
from pipeline.fer import train as ft
from tests.conftest import ROOT
from tests.fixtures import fer_faces

STILL = fer.FerAugment(flip=False, rotate=0, zoom=0, shift=0, erase=0)
SMALL = fer.FerNet(channels=(8, 16, 32, 64), hidden=32)


def faces(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = fer_faces(n, seed)
    return torch.from_numpy(x), torch.from_numpy(y)


def calibrated(seed: int = 0) -> fm.FerCNN:
    """An untrained network whose input statistics and batch-norm running statistics fit the
    fixture faces (an untouched one maps every face to nearly the same output)."""
    torch.manual_seed(seed)
    model = fm.FerCNN(SMALL)
    x, _ = faces(64, seed=1)
    model.standardize.fit(x)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None                       # a cumulative mean: one pass gives exact statistics
    with torch.no_grad():
        model.train()(x)
    return model.eval()


def test_no_augmentation_is_the_identity_and_flips_mirror_whole_images():
    x, _ = faces(16)
    gen = torch.Generator().manual_seed(0)
    assert torch.allclose(ft.augment(x, STILL, gen), x.float(), atol=1e-3)
    flipped = ft.augment(x, dataclasses.replace(STILL, flip=True), gen)
    mirrored = [torch.allclose(f, img.float().flip(-1), atol=1e-3) for f, img in zip(flipped, x)]
    kept = [torch.allclose(f, img.float(), atol=1e-3) for f, img in zip(flipped, x)]
    assert all(m or k for m, k in zip(mirrored, kept)) and 0 < sum(mirrored) < len(x)


def test_erasing_blanks_one_rectangle_with_the_image_mean():
    x, _ = faces(8)
    out = ft.augment(x, dataclasses.replace(STILL, erase=1.0), torch.Generator().manual_seed(1))
    for img, o in zip(x.float(), out):
        changed = (o - img).abs() > 1e-3
        rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
        assert changed.sum() > 0
        box = changed[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.float().mean() > 0.8                            # one rectangle (a pixel may equal the mean)
        assert torch.allclose(o[changed], torch.full_like(o[changed], float(o[changed][0])))


def test_augmentation_is_seeded_varies_per_image_and_keeps_the_shape():
    x, _ = faces(32)
    cfg = fer.FerAugment()
    a = ft.augment(x, cfg, torch.Generator().manual_seed(3))
    b = ft.augment(x, cfg, torch.Generator().manual_seed(3))
    c = ft.augment(x, cfg, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == torch.float32 and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 255
    same = ft.augment(x[:1].expand(8, -1, -1), cfg, torch.Generator().manual_seed(3))
    assert len({round(float(s.sum()), 1) for s in same}) == 8    # one draw per image, not per batch


def test_network_parameters_match_the_formula():
    cfg = parse(fer.FerConfig, load_params(ROOT / "params.yaml")["fer"], "fer")
    net = cfg.model
    model = fm.FerCNN(net)
    convs, c_in = 0, 1
    for c in net.channels:
        for _ in range(net.convs_per_stage):
            convs += 9 * c_in * c + 2 * c                            # 3×3 weights (no bias) + BN scale, shift
            c_in = c
    side = 48 // 2 ** len(net.channels)
    head = (c_in * side * side + 1) * net.hidden + (net.hidden + 1) * 7
    assert sum(p.numel() for p in model.parameters()) == convs + head == 7_049_543
    out = model.eval()(torch.zeros(5, 48, 48, dtype=torch.uint8))
    assert out.shape == (5, 7)


def test_inspect_layers_beyond_the_network_are_refused():
    params = load_params(ROOT / "params.yaml")["fer"]
    params = {**params, "inspect": {**params["inspect"], "layers": [1, 9]}}
    with pytest.raises(ParamError, match=r"fer.inspect.layers: the network has 8 conv blocks; choose layers among 1..8"):
        parse(fer.FerConfig, params, "fer")


def test_training_keeps_the_best_validation_epoch_and_records_test_curves():
    x, y = faces(700)
    data = {"train": Split(x[:500], y[:500]), "val": Split(x[500:600], y[500:600]), "test": Split(x[600:], y[600:])}
    t = fer.FerTrain(epochs=8, batch_size=64, lr=3e-3, optimizer="adam", weight_decay=0)
    model, out = ft.train_model(SMALL, STILL, t, data, seed=0)
    val = [h["val_accuracy"] for h in out.history]
    assert out.best_epoch == val.index(max(val)) + 1 and max(val) > 0.9
    assert all("test_accuracy" in h and "test_loss" in h for h in out.history)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in out.best_state.items())
    mean = x[:500].double().mean() / 255
    assert abs(float(model.standardize.mean) - float(mean)) < 1e-6      # the training split's statistics


def test_mirror_averaging_is_the_mean_of_both_softmaxes():
    model = calibrated()
    x, _ = faces(10)
    p = fm.probabilities(model, x, batch_size=4, tta=True)
    with torch.no_grad():
        expected = (model(x).softmax(1) + model(x.flip(-1)).softmax(1)) / 2
    assert torch.allclose(p, expected, atol=1e-6) and torch.allclose(p.sum(1), torch.ones(10))
    assert not torch.allclose(fm.probabilities(model, x, tta=False), p, atol=1e-4)


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    torch.manual_seed(0)
    model = fm.FerCNN(SMALL).eval()
    fm.save(model, SMALL, tmp_path / "cnn.pt", tta=True, best_epoch=3)
    loaded, meta = fm.load(tmp_path / "cnn.pt")
    x, _ = faces(4)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert meta["tta"] is True and meta["best_epoch"] == 3 and meta["classes"] == fer.CLASSES
    with pytest.raises(DataError, match=r"missing.pt: no trained FER model yet; run `dvc repro fer_train`"):
        fm.load(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="bad.pt: not a FER model checkpoint"):
        fm.load(tmp_path / "bad.pt")


def test_feature_maps_are_the_blocks_outputs_and_preferred_inputs_excite_their_channel():
    model = calibrated()
    x, _ = faces(1)
    maps = fer_figures.feature_maps(model, x[0], (1, 4))
    block = model.blocks()[0]
    with torch.no_grad():
        by_hand = torch.relu(block.bn(block.conv(model.standardize(x).unsqueeze(1))))[0]
    assert torch.allclose(maps[1], by_hand) and maps[4].shape == (16, 24, 24)
    chosen = fer_figures.most_active(maps[4], 3)
    means = maps[4].mean((1, 2))
    assert chosen == means.argsort(descending=True)[:3].tolist() and means[chosen[0]] == means.max()
    views = fer_figures.preferred_inputs(model, 4, chosen, steps=20)
    assert views.shape == (3, 48, 48) and float(views.min()) >= 0 and float(views.max()) <= 255
    start = fer_figures.preferred_inputs(model, 4, chosen, steps=0)
    after = [float(fer_figures.feature_maps(model, v, (4,))[4][c].mean()) for v, c in zip(views, chosen)]
    before = [float(fer_figures.feature_maps(model, v, (4,))[4][c].mean()) for v, c in zip(start, chosen)]
    assert all(a > b + 0.2 for a, b in zip(after, before))      # 20 steps of ascent raise each channel


def test_inspect_draws_each_layer_and_summarises_it():
    model = calibrated()
    x, y = faces(1)
    probs = fm.probabilities(model, x)[0]
    figs, summary = fer_figures.inspect(model, x[0], int(y[0]), probs, fer.CLASSES, (1, 8), k=4, steps=2)
    assert set(figs) == {"face.png", "filters_layer1.png", "maps_layer1.png", "maps_layer8.png"}
    assert summary[8]["map_size"] == [64, 6, 6] and len(summary[1]["channels"]) == 4
    assert summary[1]["mean_activation"] == sorted(summary[1]["mean_activation"], reverse=True)


def test_first_layer_reading_sorts_kernels_by_what_they_detect():
    model = fm.FerCNN(fer.FerNet(channels=(5, 8), hidden=8))
    block = model.blocks()[0]
    ramp = torch.tensor([-1.0, 0.0, 1.0])
    kernels = torch.stack([ramp.view(3, 1).expand(3, 3),          # grows downwards: a horizontal edge
                           -ramp.view(1, 3).expand(3, 3),         # a vertical edge, sign flipped
                           torch.full((3, 3), 1 / 9),             # a local average
                           torch.eye(3) - torch.eye(3).flip(0),   # zero-sum, no dominant direction
                           ramp.view(3, 1).expand(3, 3)])         # horizontal again, but BN's scale is negative
    with torch.no_grad():
        block.conv.weight.copy_(kernels.unsqueeze(1))
        block.bn.weight.copy_(torch.tensor([1.0, 1.0, 1.0, 1.0, -2.0]))
    assert fer_figures.kernel_reading(model) == {"kernels": 5, "edge": 4, "horizontal_edge": 2, "vertical_edge": 1,
                                                 "other_edge": 1, "brightness": 1}


def test_thirds_share_the_activation_between_upper_middle_and_lower_rows():
    maps = torch.zeros(2, 6, 4)
    maps[0, 4:] = 1.0                    # lower third
    maps[1, :2] = 3.0                    # upper third, three times as strong
    maps[1, 2] = -5.0                    # negative values do not count
    assert fer_figures.thirds(maps) == {"upper": 0.75, "middle": 0.0, "lower": 0.25}
