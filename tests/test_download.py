"""The download layer against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from pipeline.core.errors import DownloadError
from pipeline.data.download import (
    CHECKSUMS_ENV,
    MIRROR_ENV,
    RemoteFile,
    candidate_urls,
    fetch,
    mirror_setting,
    with_local_checksums,
)

PAYLOAD = bytes(range(256)) * 4096          # 1 MiB, more than one read chunk


def _remote(data: bytes = PAYLOAD, path: str = "/pub/set/archive.bin", **kw) -> RemoteFile:
    return RemoteFile(url=f"https://official.example.org{path}", sha256=hashlib.sha256(data).hexdigest(), **kw)


def _serve(loopback, data: bytes = PAYLOAD, path: str = "pub/set/archive.bin"):
    target = loopback.root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def test_mirror_replaces_scheme_and_host_only():
    r = _remote()
    assert candidate_urls(r) == ["https://official.example.org/pub/set/archive.bin"]
    assert candidate_urls(r, "http://127.0.0.1:9/m/") == ["http://127.0.0.1:9/m/pub/set/archive.bin"]


def test_environment_mirror_wins_over_params():
    assert mirror_setting("http://a", {MIRROR_ENV: "http://b"}) == "http://b"
    assert mirror_setting("http://a", {}) == "http://a"


def test_download_through_mirror_verifies_and_places_file(loopback, tmp_path):
    _serve(loopback)
    dest = tmp_path / "raw" / "archive.bin"
    assert fetch(_remote(), dest, mirror=loopback.url) == dest
    assert dest.read_bytes() == PAYLOAD
    assert [p for p, _ in loopback.requests] == ["/pub/set/archive.bin"]
    assert sorted(os.listdir(dest.parent)) == ["archive.bin"]      # no temp file left


def test_verified_file_is_not_downloaded_again(loopback, tmp_path):
    _serve(loopback)
    dest = tmp_path / "archive.bin"
    fetch(_remote(), dest, mirror=loopback.url)
    fetch(_remote(), dest, mirror=loopback.url)
    assert len(loopback.requests) == 1


def test_md5_checksums_are_checked_too(loopback, tmp_path):
    _serve(loopback)
    remote = RemoteFile(url="https://x.org/pub/set/archive.bin", md5=hashlib.md5(PAYLOAD).hexdigest())
    assert fetch(remote, tmp_path / "a.bin", mirror=loopback.url).read_bytes() == PAYLOAD


def test_corrupt_file_is_a_clear_error_and_leaves_nothing(loopback, tmp_path):
    _serve(loopback, PAYLOAD[:-1] + b"\x00")
    dest = tmp_path / "raw" / "archive.bin"
    with pytest.raises(DownloadError) as err:
        fetch(_remote(), dest, mirror=loopback.url)
    msg = str(err.value)
    assert "failed its sha256 check" in msg and "nothing was kept" in msg and "\n" not in msg
    assert not dest.exists() and os.listdir(dest.parent) == []


def test_corrupt_file_does_not_replace_a_good_one(loopback, tmp_path):
    """An existing file that fails its check is replaced only by verified bytes."""
    dest = tmp_path / "archive.bin"
    dest.write_bytes(b"stale")
    _serve(loopback, b"also wrong")
    with pytest.raises(DownloadError):
        fetch(_remote(), dest, mirror=loopback.url)
    assert dest.read_bytes() == b"stale"


def test_unreachable_host_says_what_to_do(closed_port, tmp_path):
    dest = tmp_path / "archive.bin"
    with pytest.raises(DownloadError) as err:
        fetch(_remote(), dest, mirror=f"http://127.0.0.1:{closed_port}", timeout=5)
    msg = str(err.value)
    assert "cannot download archive.bin" in msg and "unreachable" in msg
    assert "data.mirror" in msg and MIRROR_ENV in msg and str(dest) in msg
    assert not dest.exists() and os.listdir(tmp_path) == []


def test_missing_file_on_server_names_the_http_status(loopback, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(_remote(), tmp_path / "archive.bin", mirror=loopback.url)


def test_fallback_url_is_tried_after_the_first_fails(loopback, tmp_path):
    _serve(loopback, path="mirror2/archive.bin")
    remote = _remote(fallbacks=("https://second.example.org/mirror2/archive.bin",))
    fetch(remote, tmp_path / "archive.bin", mirror=loopback.url)
    assert [p for p, _ in loopback.requests] == ["/pub/set/archive.bin", "/mirror2/archive.bin"]


def test_interrupted_download_resumes_with_a_range_request(loopback, tmp_path):
    _serve(loopback)
    dest = tmp_path / "archive.bin"
    (tmp_path / ".archive.bin.part").write_bytes(PAYLOAD[:300_000])
    fetch(_remote(), dest, mirror=loopback.url)
    assert dest.read_bytes() == PAYLOAD
    assert loopback.requests == [("/pub/set/archive.bin", "bytes=300000-")]


def test_local_folder_mirror(tmp_path):
    folder = tmp_path / "by-hand"
    folder.mkdir()
    (folder / "archive.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "raw" / "archive.bin"
    fetch(_remote(), dest, mirror=str(folder))
    assert dest.read_bytes() == PAYLOAD


def test_a_checksum_table_replaces_the_official_checksum_and_says_so(loopback, tmp_path, monkeypatch, capsys):
    payload = b"fixture bytes in the true format"
    (loopback.root / "data").mkdir()
    (loopback.root / "data" / "f.gz").write_bytes(payload)
    remote = RemoteFile(url="https://official.example.org/data/f.gz", md5="0" * 32)
    with pytest.raises(DownloadError, match="failed its md5 check"):
        fetch(remote, tmp_path / "a" / "f.gz", mirror=loopback.url)
    table = tmp_path / "checksums.json"
    table.write_text(json.dumps({"f.gz": hashlib.sha256(payload).hexdigest()}))
    monkeypatch.setenv(CHECKSUMS_ENV, str(table))
    got = fetch(remote, tmp_path / "b" / "f.gz", mirror=loopback.url)
    assert got.read_bytes() == payload
    assert f"f.gz: sha256 from {CHECKSUMS_ENV} ({table}) replaces the official checksum" in capsys.readouterr().err
    other = RemoteFile(url="https://official.example.org/data/g.gz", md5=hashlib.md5(b"x").hexdigest())
    assert with_local_checksums(other) == other                  # files the table does not name keep theirs
    table.write_text("{not json")
    with pytest.raises(DownloadError, match=f"{CHECKSUMS_ENV}=.*not a readable JSON object"):
        fetch(remote, tmp_path / "c" / "f.gz", mirror=loopback.url)


def test_a_checksum_mismatch_on_one_url_falls_through_to_the_next(loopback, tmp_path):
    _serve(loopback, b"an HTML page where the archive used to be")
    _serve(loopback, path="mirror2/archive.bin")
    remote = _remote(fallbacks=("https://second.example.org/mirror2/archive.bin",))
    dest = tmp_path / "raw" / "archive.bin"
    assert fetch(remote, dest, mirror=loopback.url).read_bytes() == PAYLOAD
    assert [p for p, _ in loopback.requests] == ["/pub/set/archive.bin", "/mirror2/archive.bin"]
    assert os.listdir(dest.parent) == ["archive.bin"]               # the wrong bytes left no .part


def test_every_url_failing_is_one_message_naming_each_url_and_why(loopback, closed_port, tmp_path):
    (loopback.root / "wrong.bin").write_bytes(b"another file")
    urls = [f"{loopback.url}/wrong.bin", f"{loopback.url}/missing.bin", f"http://127.0.0.1:{closed_port}/a.bin"]
    remote = RemoteFile(url=urls[0], sha256=hashlib.sha256(PAYLOAD).hexdigest(), fallbacks=tuple(urls[1:]))
    dest = tmp_path / "raw" / "wrong.bin"
    with pytest.raises(DownloadError) as err:
        fetch(remote, dest, timeout=5)
    msg = str(err.value)
    want = hashlib.sha256(b"another file").hexdigest()
    assert msg.startswith(f"cannot download wrong.bin from the official host ({urls[0]}: failed its sha256 check "
                          f"(expected {remote.sha256}, got {want}); {urls[1]}: HTTP 404 File not found; "
                          f"{urls[2]}: unreachable: ")
    assert "nothing was kept" in msg and str(dest) in msg and "\n" not in msg
    assert os.listdir(dest.parent) == []


def test_a_resumed_download_that_fails_its_check_is_fetched_again_from_the_start(loopback, tmp_path):
    _serve(loopback)
    dest = tmp_path / "raw" / "archive.bin"
    dest.parent.mkdir()
    (dest.parent / ".archive.bin.part").write_bytes(b"\xff" * 1000)   # kept from another file's transfer
    fetch(_remote(), dest, mirror=loopback.url)
    assert dest.read_bytes() == PAYLOAD
    assert loopback.requests == [("/pub/set/archive.bin", "bytes=1000-"), ("/pub/set/archive.bin", None)]
    assert os.listdir(dest.parent) == ["archive.bin"]
