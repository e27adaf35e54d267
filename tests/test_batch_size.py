"""batch_size: the MLP, gradient accumulation measured against autograd and against the large
batch, activation memory, the engine's watched splits, the params section."""
from __future__ import annotations

import copy

import pytest
import torch

from pipeline.batch_size import study as bs
from pipeline.batch_size.config import AccumulationConfig, BatchSizeConfig
from pipeline.core.engine import accumulate_gradients, fit, parameter_count
from pipeline.core.errors import ParamError
from pipeline.core.params import load_params, parse
from pipeline.core.split import Split
from pipeline.data.mnist import MnistConfig, flat_unit, to_unit
from tests.conftest import ROOT


def _digits(n: int, seed: int = 0, dtype=torch.uint8) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 28, 28), generator=g, dtype=dtype), torch.randint(0, 10, (n,), generator=g))


def test_mlp_size_equals_the_hand_computed_total():
    # 784*256+256 + 256*128+128 + 128*10+10
    assert parameter_count(bs.MLP((256, 128))) == 235_146 == bs.mlp_parameters((256, 128))


def test_accumulated_gradient_equals_the_whole_batch_autograd_gradient():
    torch.manual_seed(0)
    model = bs.MLP((32, 16)).double()
    data = _digits(64)
    prepare = lambda x, y, training: (to_unit(x).double(), y)  # noqa: E731
    reference = torch.autograd.grad(bs.cross_entropy(model(to_unit(data.inputs).double()), data.targets),
                                    list(model.parameters()))
    for parts in (1, 2, 32, 64):
        model.zero_grad(set_to_none=True)
        accumulate_gradients(model, data, torch.arange(64), bs.cross_entropy, parts, prepare)
        for p, ref in zip(model.parameters(), reference):
            torch.testing.assert_close(p.grad, ref, rtol=1e-12, atol=1e-14)
    gap = bs.gradient_gap(model, data, 32, prepare)
    assert gap["relative"] < 1e-13
    gap32 = bs.gradient_gap(copy.deepcopy(model).float(), data, 32, flat_unit)
    assert 0 <= gap32["relative"] < 1e-5


def test_micro_batch_2_times_k_trains_like_batch_2k():
    cfg = parse(BatchSizeConfig, {"hidden": [16], "lr": 0.01, "accumulation": {"batch": 16, "micro_batch": 2,
                                                                                    "steps": 6}}, key="batch_size")
    data = _digits(96, seed=1)
    prepare = lambda x, y, training: (to_unit(x).double(), y)  # noqa: E731
    result = bs.train_both_ways(lambda: bs.MLP((16,)).double(), data, cfg, seed=3, prepare=prepare)
    assert result["steps"] == 6
    assert result["relative_weight_difference"] < 1e-12
    # and the runs really moved: different from an untrained model's weights
    torch.manual_seed(3)
    init = torch.cat([p.flatten() for p in bs.MLP((16,)).double().parameters()])
    torch.manual_seed(3)
    trained = bs.MLP((16,)).double()
    fit(trained, Split(data.inputs[:96], data.targets[:96]), None, bs.cross_entropy,
        cfg.train_config(batch_size=16, accumulate=8, epochs=1),
        seed=3, prepare=prepare, progress=False)
    assert (torch.cat([p.flatten() for p in trained.parameters()]) - init).abs().max() > 1e-3


def test_activation_memory_grows_with_the_batch_and_not_with_accumulation():
    torch.manual_seed(0)
    model = bs.MLP((64, 32))
    mem = {b: bs.step_memory(model, Split(*(t[:b] for t in (_digits(128).inputs, _digits(128).targets))), 1,
                             flat_unit)["activation_bytes"] for b in (2, 32, 128)}
    per_sample = (mem[32] - mem[2]) / 30
    assert mem[128] - mem[32] == 96 * per_sample                 # affine in the batch size
    # per sample: the float32 input (784) kept by the first Linear, the ReLU outputs (64, 32) kept by
    # ReLU and reused by the next Linear (counted once), the log-softmax output (10), the int64 label
    assert per_sample == (784 + 64 + 32 + 10) * 4 + 8
    assert mem[2] - 2 * per_sample < 64                           # plus a few scalars
    accumulated = bs.step_memory(model, _digits(128), 64, flat_unit)["activation_bytes"]
    assert accumulated == mem[2]
    assert all(p.grad is None for p in model.parameters())


def test_engine_keeps_snapshots_and_reports_watched_splits():
    torch.manual_seed(0)
    model = bs.MLP((8,))
    train, test = _digits(64), _digits(32, seed=5)
    cfg = BatchSizeConfig(accumulation=AccumulationConfig(), hidden=(8,), epochs=3).train_config(batch_size=16)
    out = fit(model, train, None, bs.cross_entropy, cfg, prepare=flat_unit, metrics=bs.accuracy,
              watch={"test": test}, snapshot_epochs=(1, 3), progress=False)
    assert sorted(out.snapshots) == [1, 3] and out.best_epoch == 3          # monitor "last"
    assert all(torch.equal(out.snapshots[3][k], v) for k, v in out.best_state.items())
    assert not torch.equal(out.snapshots[1]["net.0.weight"], out.snapshots[3]["net.0.weight"])
    h = out.history
    assert [r["step"] for r in h] == [4, 8, 12]
    assert h[0]["elapsed_seconds"] < h[1]["elapsed_seconds"] < h[2]["elapsed_seconds"]
    assert {"train_accuracy", "test_loss", "test_accuracy"} <= set(h[0]) and "val_loss" not in h[0]
    model.load_state_dict(out.best_state)
    with torch.no_grad():
        acc = (model(to_unit(test.inputs)).argmax(1) == test.targets).float().mean().item()
    assert h[-1]["test_accuracy"] == pytest.approx(acc)


def test_the_params_file_parses_and_bad_values_are_named():
    params = load_params(ROOT / "params.yaml")
    cfg = parse(BatchSizeConfig, params["batch_size"], key="batch_size")
    assert cfg.sizes == (64, 256, 1024) and cfg.accumulation.batch // cfg.accumulation.micro_batch == 32
    with pytest.raises(ParamError, match="batch_size.accumulation.batch: 63 is not a multiple of micro_batch 2"):
        parse(BatchSizeConfig, {**params["batch_size"], "accumulation": {"batch": 63}}, key="batch_size")
    with pytest.raises(ParamError, match="mnist.dataset"):
        parse(MnistConfig, {"dataset": "kmnist"}, key="mnist")
