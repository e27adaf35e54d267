"""Downloads from official URLs with known checksums.

A file is streamed to a hidden `.part` file beside its target, verified, then
renamed into place: a reader never sees a half-written or unverified file. An
interrupted transfer keeps its `.part` and resumes with an HTTP Range request
where the server allows. A file's URLs are tried in order until one gives the
verified bytes; a checksum mismatch moves on to the next URL as a transfer
error does. `mirror` (params `data.mirror`, or the environment
variable DLREPRO_MIRROR, which wins) replaces the scheme and host of every URL:
`http://127.0.0.1:8000` or a local folder holding the files.

DLREPRO_CHECKSUMS may name a JSON file of {file name: sha256}: those digests replace
the official checksums of the files it names (a note says so on every use). It is for
copies you trust that differ from the official bytes, such as the small format-faithful
fixtures the end-to-end tests serve.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from pipeline.core.errors import DownloadError

MIRROR_ENV = "DLREPRO_MIRROR"
CHECKSUMS_ENV = "DLREPRO_CHECKSUMS"
CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One file at an official URL, with the checksum it must have."""
    url: str
    sha256: str | None = None
    md5: str | None = None
    fallbacks: tuple[str, ...] = ()    # further official URLs, tried in order
    content_sha256: str | None = None  # sha256 of the gunzipped bytes: accepts recompressed copies
    sha256_prefix: str | None = None   # leading hex digits of the sha256 (torch.hub's `name-<prefix>.pth`)

    @property
    def filename(self) -> str:
        return Path(urlsplit(self.url).path).name


def mirror_setting(configured: str, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get(MIRROR_ENV) or configured


def with_local_checksums(remote: RemoteFile, env: Mapping[str, str] | None = None) -> RemoteFile:
    """`remote`, its checksum replaced when the DLREPRO_CHECKSUMS table names its file."""
    env = os.environ if env is None else env
    table_path = env.get(CHECKSUMS_ENV)
    if not table_path:
        return remote
    try:
        table = json.loads(Path(table_path).read_text())
        if not isinstance(table, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        raise DownloadError(f"{CHECKSUMS_ENV}={table_path}: not a readable JSON object of file name -> sha256 "
                            f"({exc}); fix the file or unset {CHECKSUMS_ENV}") from None
    if remote.filename not in table:
        return remote
    print(f"note: {remote.filename}: sha256 from {CHECKSUMS_ENV} ({table_path}) replaces the official checksum",
          file=sys.stderr)
    return dataclasses.replace(remote, sha256=str(table[remote.filename]), md5=None, content_sha256=None,
                               sha256_prefix=None)


def candidate_urls(remote: RemoteFile, mirror: str = "") -> list[str]:
    urls = [remote.url, *remote.fallbacks]
    if not mirror:
        return urls
    out = []
    for url in urls:
        path = urlsplit(url).path
        if "://" in mirror:
            out.append(mirror.rstrip("/") + path)
        else:   # a local folder: its files laid out by URL path, or all side by side
            out.append((Path(mirror) / path.lstrip("/")).resolve().as_uri())
            out.append((Path(mirror) / Path(path).name).resolve().as_uri())
    return list(dict.fromkeys(out))


def fetch(remote: RemoteFile, dest: str | Path, mirror: str = "", timeout: float = 60.0,
          progress: bool | None = None) -> Path:
    """Make `dest` hold `remote`'s verified bytes; do nothing if it already does. Each URL is tried
    in turn, past transfer errors and checksum mismatches alike; when all fail, one message names
    every URL and why."""
    dest = Path(dest)
    remote = with_local_checksums(remote)
    if dest.exists() and _verify(dest, remote) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    failures, corrupt = [], False
    for url in candidate_urls(remote, mirror):
        try:
            problem = _download(url, part, remote, timeout, progress)
        except _TransferError as exc:
            failures.append(f"{url}: {exc}")
            continue
        if problem is None:
            os.replace(part, dest)
            return dest
        failures.append(f"{url}: {problem}")
        corrupt = True
    where = f"mirror {mirror!r}" if mirror else "the official host"
    if corrupt and mirror:
        advice = (f"nothing was kept: the mirror holds another file; fix it, or unset data.mirror "
                  f"(and {MIRROR_ENV}) to use the official host")
    elif corrupt:
        advice = (f"nothing was kept: the official host serves another file; set data.mirror (or {MIRROR_ENV}) "
                  f"to a verified copy, or place one by hand at {dest}")
    else:
        advice = (f"if offline, set data.mirror (or {MIRROR_ENV}) to a server or folder with the file, "
                  f"or place it by hand at {dest}")
    raise DownloadError(f"cannot download {dest.name} from {where} ({'; '.join(failures)}); {advice}")


def _download(url: str, part: Path, remote: RemoteFile, timeout: float, progress: bool | None) -> str | None:
    """Stream `url` into `part` and verify it: None when verified, else why not (`part` removed).
    A resumed transfer that fails its check is fetched once more from the start, since the bytes
    kept from an earlier attempt may be the wrong ones."""
    resumed = part.exists() and url.startswith("http")
    _stream(url, part, timeout, progress)
    problem = _verify(part, remote)
    if problem is not None:
        part.unlink(missing_ok=True)
        if resumed:
            return _download(url, part, remote, timeout, progress)
    return problem


class _TransferError(Exception):
    pass


def _stream(url: str, part: Path, timeout: float, progress: bool | None) -> None:
    from tqdm.auto import tqdm      # here: gpu-check reads mnist.FILES on a node that has no tqdm yet

    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "dlrepro/0.1"})
    if have and url.startswith("http"):
        req.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resumed = getattr(resp, "status", 200) == 206
            total = resp.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total else None
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                    total=total, initial=have if resumed else 0, unit="B", unit_scale=True,
                    desc=part.name[1:-5], disable=not (sys.stderr.isatty() if progress is None else progress)) as bar:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code == 416:          # the .part is already whole
            return
        raise _TransferError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _TransferError(f"unreachable: {_reason(exc.reason)}") from None
    except (socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
        raise _TransferError(f"transfer broke: {_reason(exc)}") from None
    finally:
        if part.exists() and part.stat().st_size == 0:
            part.unlink()


def _reason(reason) -> str:
    text = getattr(reason, "strerror", None) or str(reason)
    return text.splitlines()[0] if text else reason.__class__.__name__


def _verify(path: Path, remote: RemoteFile) -> str | None:
    """None when `path` matches the expected checksum, else what is wrong. A gzip file whose
    archive checksum differs is still accepted when its decompressed bytes have the known
    content digest (Debian's dataset packages recompress the official archives)."""
    for algo in ("sha256", "md5"):
        want = getattr(remote, algo)
        if want:
            with open(path, "rb") as fh:
                got = hashlib.file_digest(fh, algo).hexdigest()
            if got == want.lower() or _content_matches(path, remote.content_sha256):
                return None
            return f"failed its {algo} check (expected {want}, got {got})"
    if remote.sha256_prefix:
        with open(path, "rb") as fh:
            got = hashlib.file_digest(fh, "sha256").hexdigest()
        if not got.startswith(remote.sha256_prefix.lower()):
            return f"failed its sha256 check (expected a digest starting {remote.sha256_prefix}, got {got})"
    return None


def _content_matches(path: Path, want: str | None) -> bool:
    if not want:
        return False
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except (OSError, EOFError):
        return False
    return digest.hexdigest() == want.lower()
