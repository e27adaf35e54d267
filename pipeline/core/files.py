"""Atomic file output: write beside the target, then rename, so no reader sees half a file. A
disk too full for an output is one line (the file, the bytes it needs, what is free), before a
byte is written where the size is known, and the file as it was."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from pipeline.core.errors import DiskFullError

FULL = (errno.ENOSPC, errno.EDQUOT)      # no space left; over the quota


def size_text(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def free_bytes(folder: str | Path) -> int:
    """Free bytes on the disk that holds `folder` (or would: its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def require_space(path: str | Path, needed: int, what: str | None = None,
                  outcome: str = "nothing was half-written") -> None:
    """Stop before writing when `needed` bytes clearly do not fit beside `path`."""
    free = free_bytes(Path(path).parent)
    if free < needed:
        raise DiskFullError(_full(Path(path), needed, free, what, outcome=outcome))


def _full(path: Path, needed: int | None, free: int, what: str | None = None, written: int = 0,
          outcome: str = "nothing was half-written") -> str:
    need = size_text(needed) if needed else f"more than the {size_text(written)} written"
    where = f"{path.parts[0]}/" if not path.is_absolute() and len(path.parts) > 1 else str(path.parent)
    return (f"no space for {what or path}: it needs {need} and the disk holding {path.parent} has {size_text(free)} "
            f"free; free space there (or move {where} to a larger disk) and run again; {outcome}")


@contextlib.contextmanager
def atomic_path(path: str | Path, needed: int | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over `path` only on success.
    `needed`: the bytes it will take, checked against the free space first. A full disk while
    writing is a DiskFullError; the temporary file goes, `path` stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if needed is not None:
        require_space(path, needed)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)     # mkstemp makes 0600; outputs get the usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        written, free = (tmp.stat().st_size if tmp.exists() else 0), free_bytes(path.parent)   # as it filled
        tmp.unlink(missing_ok=True)
        raise DiskFullError(_full(path, needed, free, written=written)) from None
    finally:
        tmp.unlink(missing_ok=True)


def remove_with_leftovers(path: str | Path) -> None:
    """Delete `path` and the temporary files an interrupted atomic write of it left beside it (a
    process killed between writing and renaming)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for stale in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
        stale.unlink(missing_ok=True)


def tensor_bytes(obj) -> int:
    """The bytes of the tensors in `obj` (nested dicts, lists, tuples, dataclass-free), each
    storage once: about what torch.save writes."""
    import torch  # here, not at the top: the report and scorecard stages write files without torch

    seen: dict[tuple, int] = {}

    def walk(item) -> None:
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            seen[(item.device.type, storage.data_ptr())] = storage.nbytes()
        elif isinstance(item, dict):
            for value in item.values():
                walk(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                walk(value)
    walk(obj)
    return sum(seen.values())


def atomic_torch_save(obj, path: str | Path) -> None:
    """torch.save, byte-identical for equal content: given a path, torch names the zip's inner
    folder after the file (here a random temporary name); given a file object it does not. Its
    tensors' bytes are checked against the free space first; torch's own error for a disk that
    fills while it writes (a RuntimeError from its zip writer) is a DiskFullError too."""
    import torch

    path, needed = Path(path), tensor_bytes(obj)
    with atomic_path(path, needed) as tmp:
        try:
            with open(tmp, "wb") as fh:
                torch.save(obj, fh)
        except RuntimeError:
            if free_bytes(path.parent) + tmp.stat().st_size >= needed + 2**20:
                raise                       # room enough: not the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp)) from None


def write_json(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_csv(frame, path: str | Path) -> None:
    """A pandas DataFrame as CSV without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()
