"""The engine's execution options: torch.compile (and what happens where it cannot compile) and the
channels_last memory format. Each run is a fresh process: compilation state is process-wide."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from pipeline.core import runtime
from tests.conftest import ROOT

TRAIN = """
import json, sys, torch
from torch import nn
from pipeline.core import runtime
from pipeline.core.engine import fit
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split
{setup}
runtime.configure(runtime.Runtime(compile={compile}, memory_format={fmt!r}))
g = torch.Generator().manual_seed(0)
x, y = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8, generator=g), torch.randint(0, 3, (64,), generator=g)
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))
prepare = lambda xb, yb, training: (xb.float() / 255, yb)
cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01, monitor="train_loss")
result = fit(model, Split(x, y), None, nn.functional.cross_entropy, cfg, prepare=prepare, progress=False)
from torch._dynamo.utils import counters
print(json.dumps({{"loss": [h["train_loss"] for h in result.history], "graphs": counters["stats"]["unique_graphs"],
                  "weights": [v.flatten().tolist() for v in result.best_state.values()]}}))
"""


def _train(compile: bool, fmt: str = "auto", setup: str = "") -> tuple[dict, str]:
    code = TRAIN.format(setup=setup, compile=compile, fmt=fmt)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def _close(a: dict, b: dict) -> None:
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    for u, v in zip(a["weights"], b["weights"]):
        assert u == pytest.approx(v, rel=1e-4, abs=1e-5)


@pytest.fixture(scope="module")
def eager():
    return _train(False, "contiguous")[0]


def test_compiled_training_learns_what_eager_training_learns(eager):
    compiled, err = _train(True, "contiguous")
    assert "training uncompiled" not in err          # this machine has a C++ compiler: it really compiled
    assert compiled["graphs"] >= 1 and eager["graphs"] == 0
    _close(compiled, eager)


def test_where_torch_compile_cannot_work_one_line_says_so_and_training_goes_on_uncompiled(eager):
    broken = "import torch._inductor.config as ic; ic.cpp.cxx = ('/nonexistent/c++',)"     # no C++ compiler
    result, err = _train(True, "contiguous", setup=broken)
    said = [line for line in err.splitlines() if line.startswith("compile:")]
    assert len(said) == 1 and "does not work here" in said[0] and said[0].endswith("training uncompiled")
    assert "C++ compiler" in said[0]
    assert result == eager                           # uncompiled: exactly the eager run, no graph


def test_channels_last_trains_the_same_model(eager):
    _close(_train(False, "channels_last")[0], eager)


def test_auto_memory_format_is_channels_last_for_cnns_on_cuda_and_cpu():
    cnn, mlp = nn.Sequential(nn.Conv2d(1, 2, 3)), nn.Sequential(nn.Linear(2, 2))
    cpu, cuda, mps = torch.device("cpu"), torch.device("cuda"), torch.device("mps")
    assert runtime.memory_format(cnn, cuda, "auto") is torch.channels_last
    assert runtime.memory_format(cnn, cpu, "auto") is torch.channels_last
    assert runtime.memory_format(mlp, cuda, "auto") is torch.contiguous_format
    assert runtime.memory_format(mlp, cpu, "auto") is torch.contiguous_format
    assert runtime.memory_format(cnn, mps, "auto") is torch.contiguous_format
    assert runtime.memory_format(mlp, cpu, "channels_last") is torch.channels_last
    assert runtime.memory_format(cnn, cpu, "contiguous") is torch.contiguous_format
