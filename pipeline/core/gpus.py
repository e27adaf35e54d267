"""One GPU per running stage: with several GPUs visible, `device: auto` takes the first GPU that no
other running stage holds (`dvc queue start -j N` starts N workers that all see every GPU).

A lock file per GPU in one folder shared by every process of the machine, locked with `flock`: the
kernel releases a lock when its process exits, however it ends (finished, failed, `kill -9`), so a
dead stage never keeps a GPU. `cuda:N` in params.yaml bypasses this and forces a GPU.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

LOCK_DIR_ENV = "DLREPRO_GPU_LOCKS"      # where the lock files live (default: the system's temp folder)
_held: dict[int, object] = {}           # GPU index -> its open, locked file, kept for the process's life


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "dlrepro-gpu-locks")


def claim(count: int, folder: Path | None = None) -> int | None:
    """The index of the first of `count` GPUs whose lock this process holds (taking it if free), or
    None when other processes hold all of them (or this platform has no `flock`)."""
    try:
        import fcntl
    except ImportError:                 # Windows: no advisory locks; every stage takes cuda:0
        return None
    for index in sorted(_held):
        if index < count:
            return index
    folder = folder or lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        handle = open(folder / f"gpu{index}.lock", "a+")     # noqa: SIM115 - held open while the process lives
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")                      # who holds it, for a person looking
        handle.flush()
        _held[index] = handle
        return index
    return None


def holders(count: int, folder: Path | None = None) -> dict[int, str]:
    """GPU index -> the pid written in its lock file, for the GPUs whose lock another process holds."""
    import fcntl

    folder = folder or lock_dir()
    out = {}
    for index in range(count):
        path = folder / f"gpu{index}.lock"
        if index in _held or not path.exists():
            continue
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                out[index] = handle.read().strip() or "?"
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
    return out
