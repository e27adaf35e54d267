"""EMNIST ByClass: NIST's gzip.zip over loopback, ByClass kept alone, glyphs turned upright."""
from __future__ import annotations

import hashlib
import zipfile

import numpy as np
import pytest
import torch

from pipeline.core.errors import DataError
from pipeline.data.download import RemoteFile, candidate_urls, fetch
from pipeline.emnist import data as emnist
from tests.fixtures import EMNIST_NAMES, digit_images, write_emnist_zip


def _glyph_l() -> np.ndarray:
    """An upright 'L': a vertical stroke on the left, a foot to the right at the bottom."""
    img = np.zeros((28, 28), dtype=np.uint8)
    img[4:22, 6:9] = 255      # rows 4-21: the stem
    img[19:22, 6:18] = 255    # the foot, along the bottom
    return img


def _fixture_zip(path, n=40, n_train=30):
    images, labels = digit_images()
    images, labels = images[:n].copy(), labels[:n].copy()
    images[0], labels[0] = _glyph_l(), EMNIST_NAMES.index("L")
    write_emnist_zip(path, images, labels, n_train)
    return images, labels


def test_gzip_zip_downloads_from_loopback_and_only_byclass_is_kept(loopback, tmp_path):
    served = loopback.root / "cs_links" / "EMNIST" / "gzip.zip"     # the official URL path
    _fixture_zip(served)
    remote = RemoteFile(url=emnist.ARCHIVE.url, md5=hashlib.md5(served.read_bytes()).hexdigest(),
                        fallbacks=emnist.ARCHIVE.fallbacks)
    archive = fetch(remote, tmp_path / "cache" / "gzip.zip", mirror=loopback.url)
    assert [p for p, _ in loopback.requests] == ["/cs_links/EMNIST/gzip.zip"]
    raw = tmp_path / "raw"
    emnist.extract_byclass(archive, raw)
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        [emnist.MANIFEST] + [m.split("/")[1] for m in emnist.MEMBERS.values()])
    assert emnist.raw_is_complete(raw)
    (raw / "emnist-byclass-test-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    assert not emnist.raw_is_complete(raw)


def test_only_nists_live_url_is_tried_and_a_mirror_still_replaces_its_host(tmp_path):
    assert candidate_urls(emnist.ARCHIVE) == ["https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"]
    assert candidate_urls(emnist.ARCHIVE, "http://127.0.0.1:8000/m") == [
        "http://127.0.0.1:8000/m/cs_links/EMNIST/gzip.zip"]
    folder = tmp_path / "by-hand"                       # a folder holding gzip.zip, as emnist.source may name
    _fixture_zip(folder / "gzip.zip")
    remote = RemoteFile(url=emnist.ARCHIVE.url, md5=hashlib.md5((folder / "gzip.zip").read_bytes()).hexdigest())
    got = fetch(remote, tmp_path / "cache" / "gzip.zip", mirror=str(folder))
    assert got.read_bytes() == (folder / "gzip.zip").read_bytes()


def test_prepare_turns_the_stored_glyphs_upright(tmp_path):
    images, labels = _fixture_zip(tmp_path / "gzip.zip")
    stored = zipfile.ZipFile(tmp_path / "gzip.zip")
    assert stored.namelist()  # the fixture really is a zip
    emnist.extract_byclass(tmp_path / "gzip.zip", tmp_path / "raw")
    data = emnist.prepare(tmp_path / "raw", val_fraction=0.2, seed=0)
    first = data["train_x"][0]
    assert torch.equal(first, torch.from_numpy(_glyph_l()))              # upright again
    assert first[4:22, 6:9].eq(255).all() and first[19:22, 6:18].eq(255).all()
    assert first[6:9, 4:22].float().mean() < 255                         # not its transpose
    assert torch.equal(data["test_x"], torch.from_numpy(images[30:]))
    assert data["train_y"].dtype == torch.int64 and data["train_y"][0] == 21 and data["classes"][21] == "L"
    assert data["classes"] == tuple(EMNIST_NAMES) and len(data["classes"]) == emnist.N_CLASSES


def test_validation_split_is_seeded_and_disjoint(tmp_path):
    _fixture_zip(tmp_path / "gzip.zip", n=140, n_train=100)
    emnist.extract_byclass(tmp_path / "gzip.zip", tmp_path / "raw")
    a = emnist.prepare(tmp_path / "raw", 0.1, seed=0)
    b = emnist.prepare(tmp_path / "raw", 0.1, seed=0)
    c = emnist.prepare(tmp_path / "raw", 0.1, seed=1)
    assert len(a["val_idx"]) == 10 and len(a["train_idx"]) == 90
    assert sorted(torch.cat([a["val_idx"], a["train_idx"]]).tolist()) == list(range(100))
    assert torch.equal(a["val_idx"], b["val_idx"]) and not torch.equal(a["val_idx"], c["val_idx"])


def test_bad_archives_and_mappings_are_clear_errors(tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    with pytest.raises(DataError, match="not a readable zip file"):
        emnist.extract_byclass(tmp_path / "junk.zip", tmp_path / "raw")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("gzip/emnist-digits-mapping.txt", "0 48\n")
    with pytest.raises(DataError, match="not EMNIST's gzip.zip .no gzip/emnist-byclass-train-images"):
        emnist.extract_byclass(tmp_path / "other.zip", tmp_path / "raw")
    assert not (tmp_path / "raw" / emnist.MANIFEST).exists()
    (tmp_path / "m.txt").write_text("0 48\n2 65\n")
    with pytest.raises(DataError, match="labels are not 0..1"):
        emnist.read_mapping(tmp_path / "m.txt")
    with pytest.raises(DataError, match="missing; run `dvc repro emnist_download`"):
        emnist.prepare(tmp_path / "nothing", 0.1, 0)
