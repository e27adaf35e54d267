"""`make wheelhouse`: on a networked machine, the wheels an offline GPU node lacks for step 6 of
`make gpu-check` (the real `dvc repro`), for one Python version, in a folder that travels with
the repository.

    python -m benchmarks.wheelhouse [--python-version 3.12] [--out wheelhouse] [--no-pack]

The node is assumed to have a site-provided PyTorch stack: torch, torchvision, numpy, pandas,
scikit-image, scikit-learn, matplotlib, pytest and what they need (NODE). Step 6 needs dvc,
papermill and the notebook tools, and the MLflow client: `mlflow-skinny` with SQLAlchemy and
Alembic serves the stages' SQLite store, where the whole `mlflow` package (its server, UI and
pyarrow) would triple the size. The live demo's OpenCV is left out: no dvc stage imports it.
Versions are the lock's (requirements.lock); the set is what those pins need minus what NODE
pins, so exactly the missing wheels. Prints the total size against the 64 MiB bundle.

The wheels are then packed into one archive, `wheels.tar.xz`, each stored uncompressed inside
it so that xz compresses all of them as one stream: 153 wheels for Python 3.12 are 49.4 MiB as
downloaded and 30.4 MiB packed, which leaves room in the bundle for Fashion-MNIST's four files
(29.4 MiB). The wheels' contents, and so their RECORD hashes, are unchanged; `make gpu-check`
unpacks the archive before it installs.
"""
from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE = ("torch", "torchvision", "numpy", "pandas", "scikit-image", "scikit-learn", "matplotlib", "pytest")
STEP6 = ("dvc", "mlflow-skinny", "sqlalchemy", "alembic", "papermill", "jupytext", "ipykernel", "nbconvert",
         "tqdm", "pyyaml")
BUNDLE = 64 * 2**20
PACKED = "wheels.tar.xz"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_5_x86_64",
             "manylinux1_x86_64", "linux_x86_64")


def compile_set(packages: tuple[str, ...], python: str, folder: Path) -> dict[str, str]:
    """name -> pinned requirement line: `packages` resolved at the lock's versions for `python`."""
    req, out = folder / f"in-{len(packages)}.txt", folder / f"out-{len(packages)}.txt"
    req.write_text("\n".join(packages) + "\n")
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "pip", "compile", str(req), "--python-version", python, "--no-header", "--no-annotate",
                    "-q", "-c", str(ROOT / "requirements.lock"), "-o", str(out)], check=True)
    lines = [ln.split(";")[0].strip() for ln in out.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return {project(ln): ln for ln in lines}


def stored(wheel: Path) -> bytes:
    """The wheel re-zipped with every member stored, not deflated: the same files, names and dates."""
    buf = io.BytesIO()
    with zipfile.ZipFile(wheel) as zin, zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info), compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def pack(folder: Path) -> Path:
    """folder/*.whl -> folder/wheels.tar.xz (one xz stream over stored wheels), and the loose wheels
    removed. Written under a temporary name first: an interrupted pack leaves the wheels as they were."""
    wheels = sorted(folder.glob("*.whl"))
    part = folder / (PACKED + ".part")
    try:
        with tarfile.open(part, "w:xz", preset=9) as tar:
            for wheel in wheels:
                data = stored(wheel)
                info = tarfile.TarInfo(wheel.name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    except BaseException:
        part.unlink(missing_ok=True)        # no half archive to travel with the bundle
        raise
    part.replace(folder / PACKED)
    for wheel in wheels:
        wheel.unlink()
    return folder / PACKED


def unpack(archive: Path, folder: Path) -> Path:
    """pack's wheels, extracted once into `folder` (a second call finds them there)."""
    if not folder.is_dir():
        part = folder.with_name(folder.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        with tarfile.open(archive, "r:xz") as tar:
            tar.extractall(part, filter="data")
        part.rename(folder)
    return folder


def project(name: str) -> str:
    """The distribution a requirement line (`ruamel.yaml==0.19.1; …`) or a wheel's file name
    (`ruamel_yaml-0.19.1-py3-none-any.whl`) names, in one normal form: ruamel_yaml."""
    name = name.strip()
    bare = name.split("-")[0] if name.endswith(".whl") else re.split(r"[=<>!~;\s\[]", name, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "_", bare).lower()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python-version", default="3.12")
    ap.add_argument("--out", default=str(ROOT / "wheelhouse"))
    ap.add_argument("--no-pack", action="store_true", help=f"keep the loose wheels, no {PACKED}")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.whl"), *out.glob(PACKED + "*")]:   # another Python's wheels would not install there
        old.unlink()
    abi = "cp" + a.python_version.replace(".", "")
    with tempfile.TemporaryDirectory() as tmp:
        need, have = compile_set(STEP6, a.python_version, Path(tmp)), compile_set(NODE, a.python_version, Path(tmp))
    missing = [line for name, line in sorted(need.items()) if name not in have]
    pip = [sys.executable, "-m", "pip"]
    binary = [*pip, "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", a.python_version,
              "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
              *[x for p in PLATFORMS for x in ("--platform", p)], "-d", str(out)]
    for line in missing:
        if subprocess.run([*binary, line], capture_output=True).returncode != 0:
            # no wheel published (a pure-Python sdist, e.g. antlr4-python3-runtime): build one
            built = subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "-w", str(out), line], capture_output=True, text=True)
            if built.returncode != 0:
                print(f"error: no wheel for {line} and building one failed: {built.stderr.strip()[-300:]}",
                      file=sys.stderr)
                return 2
    (out / "requirements.txt").write_text("\n".join(missing) + "\n")
    loose = sum(p.stat().st_size for p in out.glob("*.whl"))
    size = loose if a.no_pack else pack(out).stat().st_size
    repo = len(subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True).stdout)
    fits, mib = size + repo <= BUNDLE, 2**20
    what = f"{loose / mib:.1f} MiB" if a.no_pack else f"{loose / mib:.1f} MiB, packed into {PACKED}: {size / mib:.1f} MiB"
    print(f"{out}: {len(missing)} wheels for Python {a.python_version}, {what}; with the repository "
          f"({repo / mib:.1f} MiB) {(size + repo) / mib:.1f} MiB: "
          + (f"fits the {BUNDLE // mib} MiB bundle, {(BUNDLE - size - repo) / mib:.1f} MiB to spare for data"
             if fits else f"does NOT fit the {BUNDLE // mib} MiB bundle"))
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
