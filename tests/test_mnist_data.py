"""IDX files and the MNIST-family download layer: fixture files in the true format over loopback."""
from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import torch

from pipeline.core.errors import DataError, DownloadError
from pipeline.data.download import RemoteFile, fetch
from pipeline.data.idx import read_idx, write_idx
from pipeline.data.mnist import FILES, SOURCES, fetch_all, prepare


def _fixture_set(folder, n_train=12, n_test=5, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              FILES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
              FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              FILES[3]: rng.integers(0, 10, n_test, dtype=np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        write_idx(arr, folder / name)
    return arrays


def _sources_for(folder, dataset="mnist") -> dict[str, RemoteFile]:
    """The official URLs, with the fixture files' checksums."""
    return {name: RemoteFile(url=r.url, md5=hashlib.md5((folder / name).read_bytes()).hexdigest(),
                             fallbacks=r.fallbacks)
            for name, r in SOURCES[dataset].items()}


def test_idx_header_is_the_true_format(tmp_path):
    write_idx(np.arange(6, dtype=np.uint8).reshape(2, 3), tmp_path / "a.idx")
    raw = (tmp_path / "a.idx").read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 2]) and raw[4:12] == (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert read_idx(tmp_path / "a.idx").tolist() == [[0, 1, 2], [3, 4, 5]]


def test_mnist_files_download_from_loopback_and_parse(loopback, tmp_path):
    served = loopback.root / "mnist"                          # the official URL path /mnist/<file>
    arrays = _fixture_set(served)
    paths = fetch_all("mnist", tmp_path / "raw", mirror=loopback.url, sources=_sources_for(served))
    assert sorted(p for p, _ in loopback.requests) == sorted(f"/mnist/{f}" for f in FILES)
    data = prepare(paths)
    assert data["train_x"].dtype == torch.uint8 and data["train_x"].shape == (12, 28, 28)
    assert torch.equal(data["train_x"], torch.from_numpy(arrays[FILES[0]]))
    assert data["test_y"].dtype == torch.int64 and data["test_y"].tolist() == arrays[FILES[3]].tolist()


def test_official_registry_names_the_official_hosts():
    assert SOURCES["mnist"][FILES[0]].url == "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    assert SOURCES["mnist"][FILES[0]].md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert SOURCES["fashion_mnist"][FILES[3]].md5 == "bb300cfdad3c16e7a12a480ee83cd310"


def test_a_recompressed_archive_is_accepted_by_its_content_digest(tmp_path):
    """As with Debian's dataset-fashion-mnist: other gzip bytes, the same IDX inside."""
    payload = bytes([0, 0, 8, 1]) + (4).to_bytes(4, "big") + bytes([3, 1, 4, 1])
    official, repacked = gzip.compress(payload, mtime=0), gzip.compress(payload, mtime=123456)
    assert official != repacked
    folder = tmp_path / "debian"
    folder.mkdir()
    (folder / "labels.gz").write_bytes(repacked)
    remote = RemoteFile(url="http://example.org/labels.gz", md5=hashlib.md5(official).hexdigest(),
                        content_sha256=hashlib.sha256(payload).hexdigest())
    got = fetch(remote, tmp_path / "raw" / "labels.gz", mirror=str(folder))
    assert read_idx(got).tolist() == [3, 1, 4, 1]
    (folder / "labels.gz").write_bytes(gzip.compress(payload[:-1] + b"\x09"))
    with pytest.raises(DownloadError, match="failed its md5 check"):
        fetch(remote, tmp_path / "raw2" / "labels.gz", mirror=str(folder))


@pytest.mark.parametrize("damage,message", [
    (lambda b: b[:-10], "truncated or corrupt"),
    (lambda b: b"\x01\x02" + b[2:], "not an IDX file"),
])
def test_corrupt_idx_files_are_clear_errors(tmp_path, damage, message):
    write_idx(np.zeros((3, 28, 28), dtype=np.uint8), tmp_path / "x.idx")
    (tmp_path / "x.idx").write_bytes(damage((tmp_path / "x.idx").read_bytes()))
    with pytest.raises(DataError, match=message):
        read_idx(tmp_path / "x.idx")
    (tmp_path / "y.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_idx(tmp_path / "y.gz")


def test_images_and_labels_must_match(tmp_path):
    arrays = _fixture_set(tmp_path / "set")
    write_idx(arrays[FILES[1]][:-1], tmp_path / "set" / FILES[1])
    with pytest.raises(DataError, match="train images .* and labels .* do not match"):
        prepare({f: tmp_path / "set" / f for f in FILES})
