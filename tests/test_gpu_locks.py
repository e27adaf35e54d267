"""`device: auto` with several GPUs: one GPU per running stage, through real flock locks held by
real processes (no GPU needed: the claim is what is tested; torch.device objects need no CUDA)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.conftest import ROOT

HOLD = """
import sys, time
from pathlib import Path
from pipeline.core.device import auto_gpu
device, message = auto_gpu(int(sys.argv[1]), Path(sys.argv[2]))
print(device, "|", message, flush=True)
time.sleep(600)
"""


def _holder(count: int, folder) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(count), str(folder)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc, proc.stdout.readline().strip()


def test_running_stages_take_different_gpus_and_a_dead_one_frees_its_gpu(tmp_path):
    first, line1 = _holder(3, tmp_path)
    second, line2 = _holder(3, tmp_path)
    try:
        assert line1 == "cuda:0 | device: auto took cuda:0 of 3 GPUs"
        assert line2 == "cuda:1 | device: auto took cuda:1 of 3 GPUs (held by other stages: cuda:0)"
        first.send_signal(signal.SIGKILL)             # dies without cleaning up: the kernel drops its lock
        first.wait(timeout=30)
        third, line3 = _holder(3, tmp_path)
        try:
            assert line3 == "cuda:0 | device: auto took cuda:0 of 3 GPUs (held by other stages: cuda:1)"
        finally:
            third.kill()
    finally:
        for p in (first, second):
            p.kill()
            p.wait(timeout=30)


def test_when_every_gpu_is_held_the_stage_shares_cuda_0_and_says_so(tmp_path):
    a, _ = _holder(2, tmp_path)
    b, _ = _holder(2, tmp_path)
    try:
        c, line = _holder(2, tmp_path)
        c.kill()
        assert line == ("cuda:0 | device: auto: all 2 GPUs are held by other running stages; sharing cuda:0 "
                        "(set device: cuda:N to choose)")
    finally:
        for p in (a, b):
            p.kill()
            p.wait(timeout=30)


def test_a_process_keeps_the_gpu_it_took(tmp_path):
    from pipeline.core import gpus

    assert gpus.claim(4, tmp_path) == gpus.claim(4, tmp_path) == 0      # asked twice, the same GPU
    assert (tmp_path / "gpu0.lock").read_text().strip() == str(os.getpid())
    gpus._held.pop(0).close()                                          # this test process gives it back
