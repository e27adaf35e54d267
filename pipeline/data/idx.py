"""The IDX file format of MNIST, Fashion-MNIST and EMNIST (optionally gzipped).

Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions n, then n
big-endian uint32 sizes; the data follow, row-major.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import DataError

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> torch.Tensor:
    """An IDX file as a tensor of its stored shape (uint8 stays uint8)."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}); delete it and run the stage again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic {raw[:4].hex()}); delete it and run the stage again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_TYPES[raw[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path}: IDX header promises {dims} ({expected} bytes) but the file has {len(raw)} "
                        "bytes; it is truncated or corrupt: delete it and run the stage again")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return torch.from_numpy(data.astype(dtype.newbyteorder("="), copy=True))


def write_idx(array: np.ndarray, path: str | Path) -> None:
    """Write uint8 data as (gzipped, if the name ends .gz) IDX; used to make fixtures."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    blob = header + array.tobytes()
    Path(path).write_bytes(gzip.compress(blob, mtime=0) if str(path).endswith(".gz") else blob)
