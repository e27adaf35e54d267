"""Atomic outputs: nothing half-written, and equal content gives equal bytes (so DVC sees no change)."""
from __future__ import annotations

import os

import pytest
import torch

from pipeline.core.files import atomic_path, atomic_torch_save, file_digest


def test_equal_tensors_saved_twice_are_byte_identical(tmp_path):
    obj = {"x": torch.arange(12, dtype=torch.uint8).reshape(3, 4), "names": ("a", "b")}
    atomic_torch_save(obj, tmp_path / "one.pt")
    atomic_torch_save(obj, tmp_path / "two" / "samples.pt")
    assert file_digest(tmp_path / "one.pt") == file_digest(tmp_path / "two" / "samples.pt")
    assert torch.equal(torch.load(tmp_path / "one.pt")["x"], obj["x"])


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["metrics.json"]


def test_outputs_get_the_usual_file_mode(tmp_path):
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_removing_a_file_takes_the_leftovers_of_a_killed_atomic_write_with_it(tmp_path):
    from pipeline.core.files import remove_with_leftovers

    (tmp_path / "last.pt").write_bytes(b"checkpoint")
    (tmp_path / ".last.x1y2z3.tmp.pt").write_bytes(b"half")      # what SIGKILL mid-write leaves
    (tmp_path / ".other.a.tmp.pt").write_bytes(b"not ours")
    remove_with_leftovers(tmp_path / "last.pt")
    assert os.listdir(tmp_path) == [".other.a.tmp.pt"]


# ---- a full disk: one line, nothing half-written, the file as it was -----------------------------

def _only(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_a_tensor_file_that_cannot_fit_is_refused_before_a_byte_is_written(small_disk, tmp_path):
    from pipeline.core.errors import DiskFullError
    from pipeline.core.files import free_bytes, tensor_bytes

    disk = small_disk(tmp_path / "models", 64)
    atomic_torch_save({"w": torch.zeros(10)}, disk / "mlp.pt")
    before = file_digest(disk / "mlp.pt")
    model = {"w": torch.zeros(250_000), "view": None}
    model["view"] = model["w"][:10]                    # a view shares its storage: counted once
    assert tensor_bytes(model) == 1_000_000
    free = free_bytes(disk)
    with pytest.raises(DiskFullError) as caught:
        atomic_torch_save(model, disk / "mlp.pt")
    said = str(caught.value)
    assert "\n" not in said and said.startswith(f"no space for {disk / 'mlp.pt'}: it needs 1.0 MB and ")
    assert f"has {free / 1000:.1f} KB free" in said and said.endswith("nothing was half-written")
    assert file_digest(disk / "mlp.pt") == before and _only(disk) == ["mlp.pt"]


def test_a_disk_that_fills_while_writing_is_one_line_and_leaves_no_temporary(small_disk, tmp_path, monkeypatch):
    """Sizes unknown ahead (JSON, a figure) or underestimated (torch's zip writer): the write fails
    on the real full disk, and that is a DiskFullError naming what was written."""
    import json

    from pipeline.core import files
    from pipeline.core.errors import DiskFullError

    disk = small_disk(tmp_path / "metrics", 12)
    with pytest.raises(DiskFullError) as caught:
        files.write_json({"values": list(range(20_000))}, disk / "train.json")
    assert "\n" not in str(caught.value) and "train.json: it needs more than the " in str(caught.value)
    assert _only(disk) == []
    monkeypatch.setattr(files, "tensor_bytes", lambda obj: 0)      # as if the estimate said it fits
    with pytest.raises(DiskFullError) as caught:
        files.atomic_torch_save({"w": torch.zeros(50_000)}, disk / "features.pt")
    assert str(caught.value).startswith(f"no space for {disk / 'features.pt'}: it needs ") and _only(disk) == []
    files.write_json({"ok": 1}, disk / "small.json")            # what fits is still written
    assert json.loads((disk / "small.json").read_text()) == {"ok": 1}


def test_a_training_whose_checkpoint_cannot_fit_stops_before_its_first_epoch(small_disk, tmp_path):
    from pipeline.core.engine import checkpoint_bytes, fit
    from pipeline.core.errors import DiskFullError
    from pipeline.core.schedule import TrainConfig
    from pipeline.core.split import Split

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 4))
    data = Split(torch.randn(32, 64), torch.randint(0, 4, (32,)))
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    resume = small_disk(tmp_path / "resume", 16) / "run"
    with pytest.raises(DiskFullError) as caught:
        fit(model, data, None, torch.nn.functional.cross_entropy, cfg, resume_dir=resume)
    assert str(caught.value).startswith("no space for this training's resume checkpoint: it needs ")
    assert str(caught.value).endswith("nothing was trained")
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())      # no step taken
    # the estimate against a real checkpoint of that shape: weights, the best copy, Adam's moments
    opt = torch.optim.Adam(model.parameters())
    model(data.inputs).sum().backward()
    opt.step()
    best = {k: v.clone() for k, v in model.state_dict().items()}        # the engine keeps a copy
    atomic_torch_save({"model": model.state_dict(), "best_state": best, "optimizer": opt.state_dict()},
                      tmp_path / "real.pt")
    assert checkpoint_bytes(model, cfg) == pytest.approx((tmp_path / "real.pt").stat().st_size, rel=0.05)
