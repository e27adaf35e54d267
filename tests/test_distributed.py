"""Several processes training one model, on the CPU with the gloo backend: the engine's DDP path
against the one-process engine, and a real stage under the real `torchrun`, a rank killed mid-run."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from pipeline.core import distributed as dist
from pipeline.core.engine import fit
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split
from tests.e2e import standalone_separable, wait_for_epochs

# 29 samples in global batches of 7 split in 2 micro-batches: uneven shards, and a last batch of one
# sample, which leaves rank 1 an empty shard that must still join the gradient exchange
CFG = TrainConfig(epochs=3, batch_size=7, accumulate=2, lr=0.01, optimizer="adam", monitor="val_loss")


def _problem() -> tuple[nn.Module, Split, Split]:
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, Split(x[:29], y[:29]), Split(x[29:], y[29:])


def _accuracy(out, y):
    return {"accuracy": (out.argmax(1) == y).float().mean()}


def _rank(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.start(torch.device("cpu"))
    model, train, val = _problem()
    result = fit(model, train, val, nn.functional.cross_entropy, CFG, seed=0, metrics=_accuracy, progress=False)
    torch.save({"state": result.best_state, "history": result.history, "best_epoch": result.best_epoch},
               f"{out}/rank{rank}.pt")
    dist.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_end_with_the_weights_and_curves_of_one_process_with_the_same_global_batch(tmp_path):
    model, train, val = _problem()
    alone = fit(model, train, val, nn.functional.cross_entropy, CFG, seed=0, metrics=_accuracy, progress=False)
    torch.multiprocessing.spawn(_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for got in ranks:                      # every rank holds the same model, equal to the one process's
        assert got["best_epoch"] == alone.best_epoch
        for k, v in alone.best_state.items():
            torch.testing.assert_close(got["state"][k], v, rtol=1e-5, atol=1e-6)
        for mine, ref in zip(got["history"], alone.history):
            for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
                assert mine[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-6), key
    assert alone.best_state["0.weight"].abs().sum() > 0


def test_shards_cover_the_global_batch_once_and_differ_by_at_most_one(monkeypatch):
    batch = torch.arange(11)
    monkeypatch.setattr(dist, "world_size", lambda: 3)      # as in a group of three
    parts = []
    for r in range(3):
        monkeypatch.setenv("RANK", str(r))
        parts.append(dist.shard(batch))
    assert torch.equal(torch.cat(parts), batch) and {len(p) for p in parts} == {3, 4}
    assert dist.rank_seed(5) == 5 + 2 * 100_003 and len({dist.rank_seed(5) for _ in range(2)}) == 1


# --- a real stage under the real torchrun -------------------------------------------------------------

EPOCHS = 150


def _children(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in kids.read_text().split()] if kids.exists() else []


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    found = [e.split(b"=", 1)[1] for e in env if e.startswith(b"RANK=")]
    return int(found[0]) if found else None


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds torchrun's workers through /proc (Linux)")
def test_a_stage_under_torchrun_writes_once_and_resumes_after_a_rank_is_killed(tmp_path):
    from mlflow.tracking import MlflowClient

    env, uri = standalone_separable(tmp_path, EPOCHS)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "stages.separable", "train"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    run_id, logged = wait_for_epochs(proc, uri, 10, timeout=240)
    client = MlflowClient(uri)          # after the store is made: a client makes a new store's tables with no lock
    workers = {_rank_of(p): p for agent in [proc.pid] for p in _children(agent)}
    assert proc.poll() is None and logged >= 10 and 1 in workers, "finished or stalled before the kill"
    os.kill(workers[1], signal.SIGKILL)                 # rank 1 dies; torchrun ends rank 0 and fails
    assert proc.wait(timeout=120) != 0
    # rank 0 was stopped by torchrun (SIGTERM): its run ends FAILED, or stays RUNNING if it had no time
    assert client.get_run(run_id).info.status in ("RUNNING", "FAILED")
    (folder,) = (tmp_path / ".cache/resume").iterdir()
    assert (folder / "last.pt").exists() and (folder / "mlflow_run_id").read_text() == run_id

    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("separable_train: final train loss") == 1          # rank 0 alone prints
    (run,) = client.search_runs([client.get_experiment_by_name("separable").experiment_id])
    assert run.info.run_id == run_id and run.info.status == "FINISHED"          # one run, continued
    assert run.data.params["processes"] == "2"
    steps = [m.step for m in client.get_metric_history(run_id, "loss/train")]
    assert sorted(steps) == list(range(1, EPOCHS + 1))           # every epoch once
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/mlp.pt"]
    state = torch.load(tmp_path / "models/separable/mlp.pt", weights_only=False)
    assert state is not None and (tmp_path / "metrics/separable/train.json").exists()
    assert not any((tmp_path / ".cache/resume").iterdir())
