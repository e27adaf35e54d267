"""The engine's execution options: torch.compile (and what happens where it cannot compile) and the
channels_last memory format. Each compiled run is a fresh process (compilation state is process-wide);
the two uncompiled runs share one."""
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
from torch._dynamo.utils import counters
{setup}
g = torch.Generator().manual_seed(0)
x, y = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8, generator=g), torch.randint(0, 3, (64,), generator=g)
prepare = lambda xb, yb, training: (xb.float() / 255, yb)
cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01, monitor="train_loss")
for compile, fmt in {runs!r}:
    runtime.configure(runtime.Runtime(compile=compile, memory_format=fmt))
    counters.clear()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))
    result = fit(model, Split(x, y), None, nn.functional.cross_entropy, cfg, prepare=prepare, progress=False)
    print(json.dumps({{"loss": [h["train_loss"] for h in result.history], "graphs": counters["stats"]["unique_graphs"],
                      "weights": [v.flatten().tolist() for v in result.best_state.values()]}}))
"""


def _train(*runs: tuple[bool, str], setup: str = "") -> tuple[list[dict], str]:
    """Each (compile, memory format) run trained one after another in one fresh process: its results, its stderr."""
    code = TRAIN.format(setup=setup, runs=list(runs))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line) for line in out.stdout.strip().splitlines()[-len(runs):]], out.stderr


def _close(a: dict, b: dict) -> None:
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    for u, v in zip(a["weights"], b["weights"]):
        assert u == pytest.approx(v, rel=1e-4, abs=1e-5)


@pytest.fixture(scope="module")
def uncompiled() -> dict[str, dict]:
    """The eager run and the channels_last run, from one process (the latter after the former)."""
    runs, _ = _train((False, "contiguous"), (False, "channels_last"))
    return dict(zip(("eager", "channels_last"), runs))


def test_compiled_training_learns_what_eager_training_learns(uncompiled):
    (compiled,), err = _train((True, "contiguous"))
    assert "training uncompiled" not in err          # this machine has a C++ compiler: it really compiled
    assert "No CUDA runtime is found" not in err     # nor torch's CUDA_HOME warning, on a machine without CUDA
    assert compiled["graphs"] >= 1 and uncompiled["eager"]["graphs"] == 0
    _close(compiled, uncompiled["eager"])


def test_where_torch_compile_cannot_work_one_line_says_so_and_training_goes_on_uncompiled(uncompiled):
    broken = "import torch._inductor.config as ic; ic.cpp.cxx = ('/nonexistent/c++',)"     # no C++ compiler
    (result,), err = _train((True, "contiguous"), setup=broken)
    said = [line for line in err.splitlines() if line.startswith("compile:")]
    assert len(said) == 1 and "does not work here" in said[0] and said[0].endswith("training uncompiled")
    assert "C++ compiler" in said[0]
    assert result == uncompiled["eager"]             # uncompiled: exactly the eager run, no graph


def test_channels_last_trains_the_same_model(uncompiled):
    assert uncompiled["channels_last"]["graphs"] == 0
    _close(uncompiled["channels_last"], uncompiled["eager"])


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
