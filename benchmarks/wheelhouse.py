"""`make wheelhouse`: on a networked machine, the wheels an offline GPU node lacks for step 6 of
`make gpu-check` (the real `dvc repro`), for one Python version, in a folder that travels with
the repository.

    python -m benchmarks.wheelhouse [--python-version 3.12] [--out wheelhouse]

The node is assumed to have a site-provided PyTorch stack: torch, torchvision, numpy, pandas,
scikit-image, scikit-learn, matplotlib, pytest and what they need (NODE). Step 6 needs dvc,
papermill and the notebook tools, and the MLflow client: `mlflow-skinny` with SQLAlchemy and
Alembic serves the stages' SQLite store, where the whole `mlflow` package (its server, UI and
pyarrow) would triple the size. The live demo's OpenCV is left out: no dvc stage imports it.
Versions are the lock's (requirements.lock); the set is what those pins need minus what NODE
pins, so exactly the missing wheels. Prints the total size against the 64 MiB bundle.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE = ("torch", "torchvision", "numpy", "pandas", "scikit-image", "scikit-learn", "matplotlib", "pytest")
STEP6 = ("dvc", "mlflow-skinny", "sqlalchemy", "alembic", "papermill", "jupytext", "ipykernel", "nbconvert",
         "tqdm", "pyyaml")
BUNDLE = 64 * 2**20
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_5_x86_64",
             "manylinux1_x86_64", "linux_x86_64")


def _name(line: str) -> str:
    return re.split(r"[=<>;\s\[]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def compile_set(packages: tuple[str, ...], python: str, folder: Path) -> dict[str, str]:
    """name -> pinned requirement line: `packages` resolved at the lock's versions for `python`."""
    req, out = folder / f"in-{len(packages)}.txt", folder / f"out-{len(packages)}.txt"
    req.write_text("\n".join(packages) + "\n")
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "pip", "compile", str(req), "--python-version", python, "--no-header", "--no-annotate",
                    "-q", "-c", str(ROOT / "requirements.lock"), "-o", str(out)], check=True)
    lines = [ln.split(";")[0].strip() for ln in out.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return {_name(ln): ln for ln in lines}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python-version", default="3.12")
    ap.add_argument("--out", default=str(ROOT / "wheelhouse"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):             # another Python's wheels would not install there
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
    size = sum(p.stat().st_size for p in out.glob("*.whl"))
    repo = len(subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True).stdout)
    fits = size + repo <= BUNDLE
    print(f"{out}: {len(missing)} wheels for Python {a.python_version}, {size / 2**20:.1f} MiB; with the repository "
          f"({repo / 2**20:.1f} MiB) {size / 2**20 + repo / 2**20:.1f} MiB: {'fits' if fits else 'does NOT fit'} "
          f"the {BUNDLE // 2**20} MiB bundle")
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
