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
