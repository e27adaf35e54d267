"""distill: the loss against a hand computation, the views and their gather, the frozen backbone,
ImageNet weights through the download layer from loopback, the engine's learning-rate groups,
the grid's choice."""
from __future__ import annotations

import hashlib
import io
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.engine import fit, make_optimizer
from pipeline.core.errors import DataError, DownloadError, ParamError
from pipeline.core.inference import predict
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split
from pipeline.data.download import CHECKSUMS_ENV, RemoteFile, fetch
from pipeline.distill import models as dm
from pipeline.distill import recipe as dl
from pipeline.distill import train as dt


def _hand_loss(zs: np.ndarray, zt: np.ndarray, y: np.ndarray, alpha: float, tau: float) -> float:
    """The formula written out with loops: α·CE + (1−α)·τ²·KL(p_t ‖ p_s), means over the batch."""
    total = 0.0
    for s, t, label in zip(zs, zt, y):
        ce = -(s[label] - math.log(sum(math.exp(v) for v in s)))
        ps = [math.exp(v / tau) for v in s]
        pt = [math.exp(v / tau) for v in t]
        ps = [v / sum(ps) for v in ps]
        pt = [v / sum(pt) for v in pt]
        kl = sum(b * math.log(b / a) for a, b in zip(ps, pt))
        total += alpha * ce + (1 - alpha) * tau * tau * kl
    return total / len(y)


@pytest.mark.parametrize("alpha,tau", [(0.0, 1.0), (0.3, 2.0), (0.5, 4.0), (0.9, 8.0)])
def test_distillation_loss_matches_the_hand_computation(alpha, tau):
    gen = torch.Generator().manual_seed(int(10 * alpha + tau))
    zs, zt = torch.randn(6, 10, generator=gen, dtype=torch.float64) * 3, torch.randn(6, 10, generator=gen,
                                                                                       dtype=torch.float64) * 3
    y = torch.randint(0, 10, (6,), generator=gen)
    got = float(dl.distillation_loss(zs, zt, y, alpha, tau))
    assert got == pytest.approx(_hand_loss(zs.numpy(), zt.numpy(), y.numpy(), alpha, tau), rel=1e-10)


def test_alpha_one_is_plain_cross_entropy_and_tau_squared_scales_the_soft_term():
    gen = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(8, 10, generator=gen), torch.randn(8, 10, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    assert torch.equal(dl.distillation_loss(zs, zt, y, 1.0, 4.0), F.cross_entropy(zs, y))
    # the soft term alone: τ² × KL of the softened distributions, and its gradient τ(q − p)/batch
    zs.requires_grad_(True)
    soft = dl.distillation_loss(zs, zt, y, 0.0, 4.0)
    kl = F.kl_div(F.log_softmax(zs / 4, 1), F.softmax(zt / 4, 1), reduction="batchmean")
    assert soft.detach().item() == pytest.approx(16 * kl.detach().item(), rel=1e-6)
    (grad,) = torch.autograd.grad(soft, zs)
    expected = 4 * (F.softmax(zs / 4, 1) - F.softmax(zt / 4, 1)) / 8
    assert torch.allclose(grad, expected, atol=1e-6)
    # with τ² the gradient's size barely changes with τ once logits are small against it
    small = (zs.detach() * 0.1).requires_grad_(True)
    norms = [float(torch.autograd.grad(dl.distillation_loss(small, zt * 0.1, y, 0.0, t), small)[0].norm())
             for t in (4.0, 16.0)]
    assert norms[0] == pytest.approx(norms[1], rel=0.05)


def test_student_loss_uses_labels_alone_for_evaluation_targets():
    gen = torch.Generator().manual_seed(1)
    out, teacher = torch.randn(5, 10, generator=gen), torch.randn(5, 10, generator=gen)
    y = torch.randint(0, 10, (5,), generator=gen)
    loss = dt.student_loss(0.5, 4.0)
    assert torch.equal(loss(out, y), F.cross_entropy(out, y))
    packed = torch.cat([y[:, None].float(), teacher], 1)
    assert torch.allclose(loss(out, packed), dl.distillation_loss(out, teacher, y, 0.5, 4.0))
    assert torch.equal(dt.labels_of(packed), y)


def _crop_flip_reference(img: torch.Tensor, dy: int, dx: int, flip: int) -> torch.Tensor:
    """One image, the obvious way: zero-pad, cut the window at the offset, mirror."""
    c, h, w = img.shape
    p = max(abs(dy), abs(dx))
    padded = F.pad(img, (p, p, p, p))
    out = padded[:, p + dy:p + dy + h, p + dx:p + dx + w]
    return out.flip(-1) if flip else out


def test_crop_flip_matches_a_per_image_reference_and_views_start_with_the_image():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8, generator=gen)
    cfg = dl.Views(count=5, pad=3)
    views = dl.make_views(40, cfg, seed=7)
    assert views.shape == (40, 5, 3) and torch.equal(views[:, 0], torch.zeros(40, 3, dtype=torch.long))
    assert int(views[..., :2].abs().max()) == 3 and set(views[..., 2].unique().tolist()) == {0, 1}
    assert torch.equal(views, dl.make_views(40, cfg, seed=7)) and not torch.equal(views, dl.make_views(40, cfg, 8))
    for k in range(5):
        got = dl.crop_flip(x, views[:, k])
        want = torch.stack([_crop_flip_reference(x[i], *views[i, k].tolist()) for i in range(40)])
        assert torch.equal(got, want)
    assert torch.equal(dl.crop_flip(x, views[:, 0]), x)


def test_view_batches_pair_each_view_with_the_teachers_logits_for_that_view():
    n, count = 12, 4
    gen = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=gen)
    views = dl.make_views(n, dl.Views(count=count, pad=2), seed=0)
    labels = torch.randint(0, 10, (n,), generator=gen)
    logits = torch.arange(count, dtype=torch.float32).view(1, count, 1).expand(n, count, 10) + \
        100 * torch.arange(n, dtype=torch.float32).view(n, 1, 1)           # encodes (image, view)
    prep = dt.ViewBatches(views, labels, logits, seed=0)
    idx = torch.tensor([3, 0, 7, 11, 5])
    x, y = prep(images[idx], idx, True)
    assert torch.equal(y[:, 0].long(), labels[idx])
    image, view = (y[:, 1] // 100).long(), (y[:, 1] % 100).long()
    assert torch.equal(image, idx)
    assert torch.equal(x, dl.crop_flip(images[idx], views[idx, view]))
    assert torch.equal(prep(images[idx], labels[idx], False)[1], labels[idx])      # evaluation: untouched
    x2, y2 = dt.ViewBatches(views, labels, None, seed=0)(images[idx], idx, True)   # no teacher, same draws
    assert torch.equal(x2, x) and torch.equal(y2, labels[idx])


def test_splits_hold_out_validation_images_disjointly_and_reproducibly():
    idx = dl.split_indices(100, 30, dl.DistillData(val_size=20, train_limit=50, test_limit=10), seed=3)
    assert (len(idx["train"]), len(idx["val"]), len(idx["test"])) == (50, 20, 10)
    full_train, full_val = dl.holdout(100, 20, 3)
    assert set(full_train.tolist()).isdisjoint(full_val.tolist()) and len(full_train) + len(full_val) == 100
    assert torch.equal(idx["val"], dl.split_indices(100, 30, dl.DistillData(val_size=20), seed=3)["val"])
    with pytest.raises(ParamError, match="val_size"):
        dl.holdout(10, 10, 0)


def test_models_have_the_published_parameter_counts_and_take_uint8_images():
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    student = dm.MobileNetStudent()
    assert sum(p.numel() for p in student.parameters()) == 2_236_682     # MobileNetV2, 10 classes
    assert student.net.features[0][0].stride == (1, 1) and student(x).shape == (2, 10)
    # the last feature map is 4×4 for 32×32 inputs (ImageNet's strides would leave 1×1)
    assert student.net.features(student.input(x)).shape[-2:] == (4, 4)
    teacher = dm.ResNetTeacher(resize=48)
    assert sum(p.numel() for p in teacher.parameters()) == 25_557_032 - 1000 * 2049 + 10 * 2049
    assert teacher.features(x).shape == (2, 2048) and teacher.input(x).shape == (2, 3, 48, 48)


def test_a_frozen_backbone_gets_no_gradient_and_does_not_change():
    torch.manual_seed(0)
    teacher = dm.ResNetTeacher(resize=32).freeze_backbone()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (16,))
    teacher.train()
    assert not teacher.backbone.training and teacher.head.training
    fit(teacher, Split(x, y), None, F.cross_entropy, TrainConfig(epochs=2, batch_size=8, lr=0.1, optimizer="sgd", monitor="train_loss"),
        progress=False)
    after = teacher.state_dict()
    assert all(p.grad is None for p in teacher.backbone.parameters())
    backbone = [k for k in before if k.startswith("backbone.")]
    assert any("running_mean" in k for k in backbone)               # batch-norm statistics included
    assert all(torch.equal(before[k], after[k]) for k in backbone)
    assert not torch.equal(before["head.weight"], after["head.weight"])
    # features computed once + the head = the whole teacher's logits
    teacher.eval()
    feats = predict(teacher.features, x, 5)
    assert torch.allclose(teacher.head(feats), predict(teacher, x, 16), atol=1e-5)


def test_learning_rate_groups_match_torch_optim_with_the_same_groups():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    ref = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    ref.load_state_dict(model.state_dict())
    cfg = TrainConfig(epochs=1, batch_size=4, lr=0.5, optimizer="sgd", momentum=0.9, weight_decay=0.01)
    opt = make_optimizer(model, cfg, [(list(model[0].parameters()), 0.1), (list(model[1].parameters()), 1.0)])
    ref_opt = torch.optim.SGD([{"params": ref[0].parameters(), "lr": 0.05}, {"params": ref[1].parameters()}],
                              lr=0.5, momentum=0.9, weight_decay=0.01)
    x, y = torch.randn(4, 4), torch.randint(0, 2, (4,))
    for m, o in ((model, opt), (ref, ref_opt)):
        for _ in range(3):
            o.zero_grad()
            F.cross_entropy(m(x), y).backward()
            o.step()
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.5]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))


def _resnet50_weights_bytes() -> tuple[bytes, dict]:
    from torchvision.models import resnet50

    torch.manual_seed(5)
    state = resnet50(weights=None).state_dict()          # ImageNet's layout: 1000-class fc included
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue(), state


def test_weights_come_through_the_download_layer_checked_by_their_hash_prefix(loopback, tmp_path):
    blob, state = _resnet50_weights_bytes()
    prefix = hashlib.sha256(blob).hexdigest()[:8]
    served = loopback.root / "models" / f"resnet50-{prefix}.pth"      # torch.hub's naming: name-<sha256 prefix>
    served.parent.mkdir()
    served.write_bytes(blob)
    remote = RemoteFile(url=f"https://download.pytorch.org/models/{served.name}", sha256_prefix=prefix)
    path = fetch(remote, tmp_path / "raw" / served.name, mirror=loopback.url)
    teacher = dm.ResNetTeacher(resize=32)
    dm.load_backbone(teacher, path)
    got = teacher.backbone.state_dict()
    assert set(got) == {k for k in state if not k.startswith("fc.")}
    assert all(torch.equal(got[k], state[k]) for k in got)
    # one byte changed on the server: refused, nothing kept
    served.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(DownloadError, match=f"starting {prefix}"):
        fetch(remote, tmp_path / "other" / served.name, mirror=loopback.url)
    assert not (tmp_path / "other" / served.name).exists()
    # the published name's prefix comes from torchvision's own weights table
    assert dm.weights_remote("IMAGENET1K_V1").sha256_prefix == "0676ba61"


def test_resnet50_weights_stage_fetches_records_and_refuses_clearly(loopback, tmp_path, monkeypatch):
    from pipeline.core.params import load_params
    from stages import distill as stage
    from tests.conftest import ROOT

    blob, _ = _resnet50_weights_bytes()
    official = dm.weights_remote("IMAGENET1K_V1")
    (loopback.root / "models").mkdir()
    (loopback.root / "models" / official.filename).write_bytes(blob)     # the official path, other bytes
    params = load_params(ROOT / "params.yaml")
    params["data"]["mirror"] = loopback.url
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text(json.dumps(params))
    monkeypatch.chdir(repo)
    monkeypatch.delenv("DLREPRO_MIRROR", raising=False)
    monkeypatch.delenv(CHECKSUMS_ENV, raising=False)
    with pytest.raises(DownloadError, match="failed its sha256 check.*distill.teacher.pretrained=false"):
        stage.weights()
    assert not stage.WEIGHTS_MARKER.exists()
    table = tmp_path / "sums.json"                           # a copy one trusts: its digest named
    table.write_text(json.dumps({official.filename: hashlib.sha256(blob).hexdigest()}))
    monkeypatch.setenv(CHECKSUMS_ENV, str(table))
    stage.weights()
    marker = json.loads(stage.WEIGHTS_MARKER.read_text())
    assert marker["file"] == official.filename and marker["sha256"] == hashlib.sha256(blob).hexdigest()
    # a file that is not ResNet-50's weights: one line naming it
    bad = repo / "bad.pth"
    torch.save(dm.MobileNetStudent().state_dict(), bad)
    with pytest.raises(DataError, match="not a ResNet-50 weights file"):
        dm.load_backbone(dm.ResNetTeacher(32), bad)
    with pytest.raises(DataError, match="pretrained: false"):
        dm.load_backbone(dm.ResNetTeacher(32), repo / "missing.pth")


def test_the_grid_picks_the_best_validation_pair_of_the_current_grid():
    grid = dl.Grid(alpha=(0.5, 0.9), tau=(2.0, 4.0))
    values = {(0.5, 2.0): 0.40, (0.5, 4.0): 0.55, (0.9, 2.0): 0.55, (0.9, 4.0): 0.30, (0.1, 8.0): 0.99}
    rows = [{"alpha": a, "tau": t, "val_accuracy": v} for (a, t), v in values.items()]  # (0.1, 8): a stale run
    alpha, tau, picked = dl.best_pair(rows, grid)
    assert (alpha, tau) == (0.9, 2.0) and len(picked) == 4      # of equals, the larger α (more weight on labels)
    assert [r["tied"] for r in picked] == [False, True, True, False] and sum(r["chosen"] for r in picked) == 1
    with pytest.raises(DataError, match="α=0.9 τ=4"):
        dl.best_pair([r for r in rows if (r["alpha"], r["tau"]) != (0.9, 4.0)], grid)


def test_a_pair_that_only_learns_fastest_loses_to_a_larger_alpha_within_one_standard_error():
    """5,000 validation images: the standard error at 90 % is sqrt(0.9 · 0.1 / 5000) = 0.42 points.
    α 0.1 leads by 0.3 points (noise could explain it): α 0.5 is chosen; α 0.9, 1 point behind, is not."""
    grid = dl.Grid(alpha=(0.1, 0.5, 0.9), tau=(4.0, 8.0))
    values = {(0.1, 4.0): 0.900, (0.1, 8.0): 0.880, (0.5, 4.0): 0.897, (0.5, 8.0): 0.897, (0.9, 4.0): 0.890,
              (0.9, 8.0): 0.850}
    rows = [{"alpha": a, "tau": t, "val_accuracy": v, "val_samples": 5000} for (a, t), v in values.items()]
    assert dl.standard_error(0.9, 5000) == pytest.approx(0.004243, abs=1e-6)
    alpha, tau, picked = dl.best_pair(rows, grid)
    assert (alpha, tau) == (0.5, 4.0)                           # tied with (0.5, 8): the smaller τ
    assert {(r["alpha"], r["tau"]) for r in picked if r["tied"]} == {(0.1, 4.0), (0.5, 4.0), (0.5, 8.0)}
    assert dl.best_pair(rows, dl.Grid(alpha=(0.1, 0.5, 0.9), tau=(4.0, 8.0), margin=0))[:2] == (0.1, 4.0)


def test_repeated_grid_values_are_refused():
    from pipeline.core.params import parse

    with pytest.raises(ParamError, match="distill.grid.tau"):
        parse(dl.DistillConfig, {"grid": {"tau": [2, 2.0]}}, key="distill")


@pytest.mark.gpu
def test_views_and_a_distilled_student_step_on_cuda():
    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=gen)
    views = dl.make_views(64, dl.Views(), seed=0)
    assert torch.equal(dl.crop_flip(x.to(dev), views[:, 3].to(dev)).cpu(), dl.crop_flip(x, views[:, 3]))
    y = torch.randint(0, 10, (64,), generator=gen)
    logits = torch.randn(64, views.shape[1], 10, generator=gen)
    data = {"train": Split(x.to(dev), torch.arange(64, device=dev)), "val": Split(x.to(dev), y.to(dev)),
            "test": Split(x.to(dev), y.to(dev)), "labels": y.to(dev)}
    sched = dl.Schedule(epochs=3, batch_size=16, lr=0.05)
    model, out = dt.train_student(data, views, logits, 0.5, 4.0, sched, width=0.5, dropout=0.0, seed=0,
                                  amp_dtype=torch.bfloat16)
    assert next(model.parameters()).is_cuda and out.history[-1]["train_loss"] < out.history[0]["train_loss"]


def test_the_probe_standardises_averages_a_mirror_s_logits_and_folds_into_one_linear_layer():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(50, 3, 16, generator=gen) * torch.linspace(0.5, 4, 16) + 3
    head = dm.ProbeHead.for_features(feats, classes=4)
    flat = feats.reshape(-1, 16).double()
    assert torch.allclose(head.mean.double(), flat.mean(0), atol=1e-5)
    assert torch.allclose(head.std.double(), flat.std(0), atol=1e-5)
    x = feats[:7]                                                 # 7 images, 3 views each
    by_hand = torch.stack([head.linear((x[:, v] - head.mean) / head.std) for v in range(3)]).mean(0)
    assert torch.allclose(head(x), by_hand, atol=1e-5)            # (N, V, F): the views' logits averaged
    folded = head.folded()
    assert isinstance(folded, torch.nn.Linear)
    assert torch.allclose(folded(x[:, 0]), head(x[:, 0]), atol=1e-4)    # one view: the same map, unstandardised input


def test_the_probe_s_views_are_drawn_apart_from_the_student_s_and_a_mirror_is_a_flip():
    views = dl.Views(count=4, pad=4)
    student = dl.make_views(30, views, seed=0)
    probe = dl.probe_views(30, dl.Head(epochs=1, batch_size=1, lr=1.0, views=4), views, seed=0)
    assert probe.shape == student.shape and torch.equal(probe[:, 0], student[:, 0])      # view 0: the image
    assert not torch.equal(probe[:, 1:], student[:, 1:])
    mirror = dl.mirror_views(5, flip=True)
    x = torch.arange(5 * 3 * 4 * 4, dtype=torch.uint8).view(5, 3, 4, 4)
    assert torch.equal(dl.crop_flip(x, mirror[:, 0]), x) and torch.equal(dl.crop_flip(x, mirror[:, 1]), x.flip(-1))
    assert dl.mirror_views(5, flip=False).shape == (5, 1, 3)
