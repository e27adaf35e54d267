"""The training engine against torch.optim and autograd references."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pipeline.core.device import autocast_dtype, pick_device, seed_everything
from pipeline.core.engine import evaluate, fit
from pipeline.core.errors import DeviceError, TrainingDiverged
from pipeline.core.inference import predict
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split


def _data(n=64, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = x @ torch.randn(d, 2, generator=g) + 0.1 * torch.randn(n, 2, generator=g)
    return Split(x[:48], y[:48]), Split(x[48:], y[48:])


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 2))


def _cfg(**kw):
    base = dict(epochs=3, batch_size=16, lr=0.01)
    base.update(kw)
    return TrainConfig(**base)


def test_one_full_batch_step_equals_torch_optim_adam():
    train, _ = _data()
    engine_model, ref = _model(), _model()
    fit(engine_model, train, None, nn.MSELoss(), _cfg(epochs=1, batch_size=48, lr=0.05, monitor="train_loss"))
    opt = torch.optim.Adam(ref.parameters(), lr=0.05)
    opt.zero_grad()
    nn.MSELoss()(ref(train.inputs), train.targets).backward()
    opt.step()
    for a, b in zip(engine_model.parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-7)


def test_accumulated_micro_batch_gradient_equals_the_full_batch_gradient():
    train, _ = _data()
    full, micro = _model(), _model()
    nn.MSELoss()(full(train.inputs), train.targets).backward()
    for idx in torch.arange(48).tensor_split(6):              # six micro-batches of 8
        (nn.MSELoss()(micro(train.inputs[idx]), train.targets[idx]) * len(idx) / 48).backward()
    for a, b in zip(full.parameters(), micro.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_training_with_k_micro_batches_matches_the_large_batch(k):
    train, val = _data()
    big, small = _model(), _model()
    r1 = fit(big, train, val, nn.MSELoss(), _cfg(batch_size=16, accumulate=1))
    r2 = fit(small, train, val, nn.MSELoss(), _cfg(batch_size=16, accumulate=k))
    for a, b in zip(big.parameters(), small.parameters()):
        assert torch.allclose(a, b, atol=1e-5)
    assert [h["val_loss"] for h in r1.history] == pytest.approx([h["val_loss"] for h in r2.history], rel=1e-5)


def test_history_and_best_checkpoint_follow_the_monitored_metric():
    train, val = _data()
    model = _model()
    result = fit(model, train, val, nn.MSELoss(), _cfg(epochs=6, lr=0.3))   # large lr: val loss goes up and down
    losses = [h["val_loss"] for h in result.history]
    assert [h["epoch"] for h in result.history] == list(range(1, 7))
    assert result.best_epoch == losses.index(min(losses)) + 1
    assert result.best_value == min(losses)
    model.load_state_dict(result.best_state)
    assert evaluate(model, val, nn.MSELoss(), 8)["loss"] == pytest.approx(min(losses), rel=1e-6)
    best_max = fit(_model(), train, val, nn.MSELoss(), _cfg(epochs=6, lr=0.3, monitor="val_loss", mode="max"))
    assert best_max.best_epoch == losses.index(max(losses)) + 1


def test_cpu_runs_repeat_bit_for_bit():
    train, val = _data()
    runs = []
    for _ in range(2):
        seed_everything(0)
        model = nn.Sequential(nn.Linear(5, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 2))
        fit(model, train, val, nn.MSELoss(), _cfg(), seed=0)
        runs.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])


def test_nan_loss_stops_with_a_clear_error():
    train, val = _data()
    bad = Split(train.inputs.clone(), train.targets.clone())
    bad.inputs[3, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"training loss became nan at epoch 1.*lower the learning rate"):
        fit(_model(), bad, val, nn.MSELoss(), _cfg())


class _Stop(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_last_epoch_bit_for_bit(tmp_path):
    train, val = _data()
    cfg = _cfg(epochs=5, schedule="cosine")
    seed_everything(0)
    straight = _model()
    expected = fit(straight, train, val, nn.MSELoss(), cfg, seed=3)

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise _Stop

    seed_everything(0)
    interrupted = _model()
    with pytest.raises(_Stop):
        fit(interrupted, train, val, nn.MSELoss(), cfg, seed=3, on_epoch=stop_after_two, resume_dir=tmp_path)
    assert (tmp_path / "last.pt").exists()
    fresh = _model(seed=99)                          # a new process: other initial weights, restored from disk
    resumed = fit(fresh, train, val, nn.MSELoss(), cfg, seed=3, resume_dir=tmp_path)
    # epoch 2 was recorded (on_epoch) but stopped before its checkpoint: it is trained again, bit for bit
    assert resumed.resumed_from == 1
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in expected.history]
    for a, b in zip(fresh.parameters(), straight.parameters()):
        assert torch.equal(a, b)
    assert resumed.best_epoch == expected.best_epoch
    assert not tmp_path.exists()                     # a finished run leaves nothing to resume


def test_prepare_hook_runs_on_every_batch_on_the_device():
    seen = []
    train, val = _data()
    u8 = Split((train.inputs.abs() * 10).to(torch.uint8), train.targets)

    def prepare(x, y, training):
        seen.append((x.dtype, training))
        return x.float() / 10, y

    fit(_model(), u8, None, nn.MSELoss(), _cfg(epochs=1, monitor="train_loss"), prepare=prepare)
    assert seen == [(torch.uint8, True)] * 3


def test_predict_in_slices_equals_one_whole_pass_and_prepares_the_targets():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x, y = torch.randn(23, 4), torch.randint(0, 3, (23,))
    with torch.no_grad():
        whole = model(x)
    assert torch.allclose(predict(model, x, 5), whole, atol=1e-6)           # 5 slices, the last of 3
    labels = predict(lambda b: model(b).argmax(1), x, 7)
    assert labels.dtype == torch.int64 and torch.equal(labels, whole.argmax(1))
    out, kept = predict(model, x, 4, targets=y, prepare=lambda a, b, training: (a * 2, b + 1))
    with torch.no_grad():
        assert torch.allclose(out, model(x * 2), atol=1e-6)
    assert torch.equal(kept, y + 1)
    loss = evaluate(model, Split(x, y), nn.functional.cross_entropy, 6)["loss"]
    assert loss == pytest.approx(float(nn.functional.cross_entropy(whole, y)), rel=1e-6)


def test_asking_for_an_absent_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(DeviceError, match="no CUDA GPU is visible; set device: auto or cpu"):
        pick_device("cuda")
    with pytest.raises(DeviceError, match="needs a CUDA device"):
        autocast_dtype(torch.device("cpu"), "bf16")
    assert pick_device("auto").type in ("cpu", "mps")
    assert autocast_dtype(torch.device("cpu"), "auto") is None


def test_an_unknown_monitor_key_names_the_choices():
    train, val = _data()
    with pytest.raises(Exception, match="monitor: 'val_acc' is not in the training history; choose one of"):
        fit(_model(), train, val, nn.MSELoss(), _cfg(monitor="val_acc"))


def _fit_on_cuda(amp_dtype: torch.dtype):
    train, val = _data()
    dev = torch.device("cuda")
    t, v = Split(train.inputs.to(dev), train.targets.to(dev)), Split(val.inputs.to(dev), val.targets.to(dev))
    return fit(copy.deepcopy(_model()).to(dev), t, v, nn.MSELoss(), _cfg(epochs=5), amp_dtype=amp_dtype)


@pytest.mark.gpu
def test_bf16_autocast_trains_on_cuda():
    r = _fit_on_cuda(torch.bfloat16)
    assert r.history[-1]["val_loss"] < r.history[0]["val_loss"]


@pytest.mark.gpu
def test_fp16_autocast_with_loss_scaling_trains_on_cuda_and_auto_picks_per_capability():
    r = _fit_on_cuda(torch.float16)
    assert r.history[-1]["val_loss"] < r.history[0]["val_loss"]
    dev = torch.device("cuda")
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    assert autocast_dtype(dev, "auto") is (torch.bfloat16 if native else torch.float16)
