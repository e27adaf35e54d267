"""Device, precision and determinism choices: the pure decisions over the capabilities a machine
reports, what the driver reports read from a real (fake) nvidia-smi, and a real stage stopped by a
GPU that torch cannot use."""
from __future__ import annotations

import copy
import os
import stat
import subprocess
import sys

import pytest
import torch
import yaml
from torch import nn

from pipeline.core import device as dv
from pipeline.core.device import NvidiaGpu, choose_precision, unusable_gpu
from pipeline.core.engine import accumulate_gradients, fit
from pipeline.core.errors import DeviceError
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split
from tests.conftest import ROOT
from tests.e2e import standalone_separable

A100 = NvidiaGpu("NVIDIA A100-SXM4-80GB", "535.104.05", 81920, "8.0")
ARCH_CU132 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


# --- precision: bf16 only where native, fp16 + GradScaler on older GPUs, fp32 on a CPU --------------

@pytest.mark.parametrize("device_type,native,emulated,expected", [
    ("cuda", True, True, "bf16"),        # Ampere, Hopper, Blackwell
    ("cuda", False, True, "fp16"),       # Turing (T4): bf16 only emulated
    ("cuda", False, False, "fp16"),      # older still
    ("cpu", False, False, "fp32"),
    ("mps", False, False, "fp32"),
])
def test_auto_precision_follows_the_device_capability(device_type, native, emulated, expected):
    assert choose_precision("auto", device_type, native, emulated) == expected


def test_forced_precisions_and_impossible_ones():
    assert choose_precision("fp32", "cuda", True, True) == "fp32"
    assert choose_precision("bf16", "cuda", False, True) == "bf16"        # forced: emulated is allowed
    assert choose_precision("fp16", "cuda", True, True) == "fp16"
    assert choose_precision("fp16", "cpu") == "fp16"
    with pytest.raises(DeviceError, match=r"^precision: 'bf16' needs a CUDA device, this run is on cpu"):
        choose_precision("bf16", "cpu")
    with pytest.raises(DeviceError, match=r"^precision: 'bf16': this GPU cannot compute in bf16"):
        choose_precision("bf16", "cuda", False, False)
    with pytest.raises(DeviceError, match=r"^precision: 'fp16' is not supported on mps"):
        choose_precision("fp16", "mps")
    with pytest.raises(DeviceError, match="choose one of auto, bf16, fp16, fp32"):
        choose_precision("fp8", "cuda")


def test_autocast_dtype_maps_the_choice_to_torch_dtypes_on_this_cpu():
    cpu = torch.device("cpu")
    assert dv.autocast_dtype(cpu, "auto") is None
    assert dv.autocast_dtype(cpu, "fp16") is torch.float16
    assert dv.autocast_dtype(cpu, "fp32") is None


# --- fp16 autocast with loss scaling, on the CPU -------------------------------------------------------

def _data(n=256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g)
    return Split(x[:192], y[:192]), Split(x[192:], y[192:])


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))


def test_fp16_gradients_are_the_loss_scale_times_the_fp32_ones():
    train, _ = _data()
    idx = torch.arange(64)
    plain, scaled = _model(), _model()
    accumulate_gradients(plain, train, idx, nn.MSELoss(), 2, amp_dtype=torch.float16)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    accumulate_gradients(scaled, train, idx, nn.MSELoss(), 2, amp_dtype=torch.float16, scaler=scaler)
    for a, b in zip(plain.parameters(), scaled.parameters()):
        assert torch.allclose(b.grad, a.grad * 1024.0, rtol=1e-3, atol=1e-3)


def test_fp16_training_with_a_grad_scaler_learns_on_the_cpu_and_tracks_fp32():
    train, val = _data()
    cfg = TrainConfig(epochs=15, batch_size=32, lr=1e-2, monitor="val_loss")
    half = fit(copy.deepcopy(_model()), train, val, nn.MSELoss(), cfg, amp_dtype=torch.float16, progress=False)
    full = fit(copy.deepcopy(_model()), train, val, nn.MSELoss(), cfg, progress=False)
    assert half.history[-1]["val_loss"] < 0.2 * half.history[0]["val_loss"]
    assert half.best_value == pytest.approx(full.best_value, rel=0.5)


def test_a_step_whose_fp16_gradients_overflow_is_skipped_and_the_scale_lowered():
    train, _ = _data()
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 60)     # scaled gradients overflow fp16
    accumulate_gradients(model, train, torch.arange(64), nn.MSELoss(), 1, amp_dtype=torch.float16, scaler=scaler)
    scaler.step(opt)
    scaler.update()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert scaler.get_scale() == 2.0 ** 59


# --- determinism --------------------------------------------------------------------------------

def test_deterministic_false_lets_cudnn_benchmark_and_true_restores_repeatable_kernels():
    try:
        dv.seed_everything(0, deterministic=False)
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.deterministic
    finally:
        dv.seed_everything(0, deterministic=True)
    assert not torch.backends.cudnn.benchmark and torch.are_deterministic_algorithms_enabled()


SEEDED = """
import sys, torch
from torch import nn
from pipeline.core import runtime
from pipeline.core.device import seed_everything
seed_everything(0, deterministic=True)
seen = [torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
        "torch._inductor" in sys.modules]
import torch._inductor.config as ic
seed_everything(0, deterministic=False)
seen += [torch.are_deterministic_algorithms_enabled(), ic.deterministic]
seed_everything(0, deterministic=True)
seen.append(ic.deterministic)
ic.deterministic = False                        # as a compiler loaded after the seeding would start
runtime._probes["cpu"] = "skipped here"         # no compilation: only the flag the compiler is handed
runtime.compiled(nn.Linear(2, 2), torch.device("cpu"))
print(seen + [ic.deterministic])
"""


def test_seeding_sets_torch_s_deterministic_flag_without_loading_the_compiler_and_the_compiler_gets_it():
    done = subprocess.run([sys.executable, "-c", SEEDED], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str([True, True, False, False, False, True, True])


def test_every_stage_that_picks_a_device_lists_deterministic():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    lists = {name: [p if isinstance(p, str) else next(iter(p)) for p in st.get("do", st).get("params", [])]
             for name, st in stages.items()}
    assert {n for n, ps in lists.items() if "device" in ps} == {n for n, ps in lists.items() if "deterministic" in ps}
    assert {n for n, ps in lists.items() if "compile" in ps} <= {n for n, ps in lists.items() if "deterministic" in ps}
    assert len([n for n, ps in lists.items() if "compile" in ps]) >= 10


# --- a GPU the driver reports but torch cannot use -------------------------------------------------

def test_an_old_driver_names_the_gpu_the_driver_torch_s_cuda_and_the_fix():
    line = unusable_gpu([A100], "13.2", 0, "2.15.0")
    assert line.startswith("NVIDIA A100-SXM4-80GB (driver 535.104.05) is here but torch 2.15.0 cannot use it")
    assert "built for CUDA 13.2, which needs driver ≥ 580" in line and "make env TORCH_BACKEND=cu126" in line
    assert line.endswith("or set device: cpu to train on the CPU on purpose") and "\n" not in line


def test_each_cause_of_an_unusable_gpu_has_its_own_fix():
    assert unusable_gpu([], "13.2", 0, "2.15.0") == ""
    assert unusable_gpu([A100], "13.2", 1, "2.15.0", ARCH_CU132, [(8, 0)]) == ""
    ancient = NvidiaGpu("Tesla K80", "470.82.01")
    assert "update the NVIDIA driver" in unusable_gpu([ancient], "13.2", 0, "2.15.0")
    assert "is a CPU-only build" in unusable_gpu([A100], None, 0, "2.15.0")
    v100 = unusable_gpu([NvidiaGpu("Tesla V100-SXM2-32GB", "580.65.06")], "13.2", 1, "2.15.0", ARCH_CU132, [(7, 0)])
    assert "compute capability 7.0" in v100 and "sm_75 sm_80" in v100 and "TORCH_BACKEND=cu126" in v100
    new_driver = NvidiaGpu("NVIDIA H100 80GB HBM3", "580.65.06")
    assert "sees no GPU" in unusable_gpu([new_driver], "13.2", 0, "2.15.0")
    assert unusable_gpu([A100, A100], "13.2", 0, "2.15.0").startswith("NVIDIA A100-SXM4-80GB (driver 535.104.05) and 1 more")


@pytest.mark.parametrize("cap,arch,ok", [
    ((8, 0), ARCH_CU132, True), ((8, 9), ["sm_80", "sm_86"], True), ((12, 1), ARCH_CU132, True),
    ((7, 0), ARCH_CU132, False), ((6, 1), ARCH_CU132, False), ((10, 0), ["sm_80", "compute_90"], True),
    ((8, 0), ["sm_86"], False), ((9, 0), ["sm_90a"], True), ((10, 0), ["sm_90a"], False),
])
def test_arch_support_follows_cubin_and_ptx_compatibility(cap, arch, ok):
    assert dv.arch_supported(cap, arch) is ok


def test_driver_needed_per_cuda_major():
    assert [dv.driver_needed(c) for c in ("13.2", "13.0", "12.6", "11.8")] == [580, 580, 525, 450]


def _fake_smi(folder, body: str):
    smi = folder / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + body + "\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    return folder


def test_nvidia_gpus_reads_nvidia_smi_and_falls_back_to_the_kernel_module(tmp_path, monkeypatch):
    bin_dir = _fake_smi(tmp_path, "echo 'NVIDIA A100-SXM4-80GB, 535.104.05, 81920, 8.0'\n"
                                  "echo 'Tesla T4, 535.104.05, 15360, 7.5'")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert dv.nvidia_gpus() == [A100, NvidiaGpu("Tesla T4", "535.104.05", 15360, "7.5")]
    _fake_smi(tmp_path, "echo 'Failed to initialize NVML: Driver/library version mismatch'; exit 18")
    proc = tmp_path / "version"
    proc.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n")
    monkeypatch.setattr(dv, "NVIDIA_PROC", proc)
    (gpu,) = dv.nvidia_gpus()
    assert gpu.driver == "550.54.14" and "nvidia-smi did not answer" in gpu.name
    monkeypatch.setattr(dv, "NVIDIA_PROC", tmp_path / "absent")
    assert dv.nvidia_gpus() == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a GPU torch cannot use")
def test_a_stage_on_auto_stops_before_compute_and_device_cpu_still_trains(tmp_path):
    env, _ = standalone_separable(tmp_path, 3)
    (tmp_path / "bin").mkdir()
    bin_dir = _fake_smi(tmp_path / "bin", "echo 'NVIDIA A100-SXM4-80GB, 535.104.05, 81920, 8.0'")
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    cmd = [sys.executable, "-m", "stages.separable", "train"]
    stopped = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 2
    (line,) = stopped.stderr.strip().splitlines()
    assert line.startswith("error: device: auto: NVIDIA A100-SXM4-80GB (driver 535.104.05) is here but torch")
    assert (f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "is a CPU-only build") in line
    assert "make env TORCH_BACKEND=cu126" in line
    assert not (tmp_path / "models").exists() and not (tmp_path / "mlflow.db").exists()
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**params, "device": "cpu"}))
    ran = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert (tmp_path / "models" / "separable" / "mlp.pt").stat().st_size > 0


def test_fp16_batches_whose_forward_overflows_are_skipped_not_called_divergence():
    train, val = _data()
    x = train.inputs.clone()
    x[:8] *= 1e6                      # these samples overflow fp16 in the first layer: their batches' loss is inf
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1e-2, monitor="train_loss")
    with torch.autocast("cpu", dtype=torch.float16):
        assert not torch.isfinite(_model()(x[:32])).all()            # the overflow is real
    out = fit(_model(), Split(x, train.targets), val, nn.MSELoss(), cfg, amp_dtype=torch.float16, progress=False)
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in out.history)
    assert all(torch.isfinite(p).all() for p in out.best_state.values())
