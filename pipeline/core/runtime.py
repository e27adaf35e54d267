"""How the engine executes a model, apart from what it computes: `torch.compile` and the memory
format of image batches. Both are process-wide choices, like `torch.backends` flags: the stage
harness sets them from params.yaml (`compile`, `memory_format`) before training, a benchmark sets
them itself, and the engine reads them. Neither changes a result beyond float rounding.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Runtime:
    compile: bool = False             # torch.compile the training step's model
    memory_format: str = "auto"       # auto (channels_last for CNNs on CUDA and CPU) | channels_last | contiguous


_current = Runtime()
_probes: dict[str, str] = {}            # device type -> "" where a compiled probe ran, else why not


def configure(runtime: Runtime) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    return _current


def memory_format(model: nn.Module, device: torch.device, choice: str | None = None) -> torch.memory_format:
    """channels_last (NHWC) where asked, or with `auto` for a network with 2-d convolutions on CUDA
    (tensor cores want NHWC) or a CPU (measured 8-16 % faster for each CNN here: README, Speed);
    MPS and networks without convolutions keep the contiguous layout."""
    choice = choice or _current.memory_format
    if choice == "channels_last":
        return torch.channels_last
    if choice == "auto" and device.type in ("cuda", "cpu") and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return torch.channels_last
    return torch.contiguous_format


def compiled(model: nn.Module, device: torch.device) -> nn.Module:
    """`torch.compile(model)` where compilation works here; otherwise one line on stderr saying why
    and the model itself, so training goes on uncompiled."""
    import torch._inductor.config

    torch._inductor.config.deterministic = torch.are_deterministic_algorithms_enabled()   # as seeded
    reason = _probe(device)
    if reason:
        print(f"compile: torch.compile does not work here ({reason}); training uncompiled", file=sys.stderr)
        return model
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True      # a graph that fails to compile later runs eagerly
    return torch.compile(model)


def _no_cuda_runtime(record: logging.LogRecord) -> bool:
    """False for torch's "No CUDA runtime is found, using CUDA_HOME=…": a CUDA build of torch says it
    on a machine where CUDA is not available, when inductor loads its C++ toolchain; nothing here
    builds CUDA extensions, so on a CPU it only tops every compiled run's log."""
    return not record.getMessage().startswith("No CUDA runtime is found")


def _quiet_no_cuda_runtime() -> None:
    log = logging.getLogger("torch.utils.cpp_extension")
    if _no_cuda_runtime not in log.filters:
        log.addFilter(_no_cuda_runtime)


def _probe(device: torch.device) -> str:
    """"" when a tiny function compiles and runs on `device`, else why not (once per device type)."""
    if device.type not in _probes:
        _quiet_no_cuda_runtime()
        try:
            probe = torch.compile(lambda x: torch.relu(x) * 2 + 1)
            ok = torch.equal(probe(torch.ones(4, device=device)).cpu(), torch.full((4,), 3.0))
            _probes[device.type] = "" if ok else "a compiled probe computed a wrong value"
        except Exception as exc:  # noqa: BLE001 - no C++ compiler, no Triton, an unsupported Python...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            _probes[device.type] = f"{exc.__class__.__name__}: {first}".rstrip(": ")
    return _probes[device.type]
