"""`make gpu-check`: one command that turns a short hold on a GPU into every GPU figure the project
lacks, and stops early with what it has when its time budget runs out.

    python -m benchmarks.gpu_check [--device cuda] [--scale full] [--budget 540] [--steps 1,2,3,4,5,6]
                                   [--fashion-mnist PATH] [--wheelhouse wheelhouse] [--out benchmarks/results]

1. the doctor (`--require-gpu` on CUDA: stops here if torch cannot use the GPU);
2. `pytest -m gpu`;
3. the seed-loop benchmark and the engine-options benchmark (compile, channels_last,
   deterministic off, fp32 against the auto precision): their tables in this check's page, and
   at --scale full their own files in --out;
4. every training family at full size on same-shaped data (benchmarks.families): samples/s,
   peak memory, seconds per epoch, predicted training time of each experiment;
5. torchrun with one process against a plain run: the same weights;
6. `dvc repro` at scale smoke of every stage on the device, in a temporary copy with the fixture
   files the tests serve from loopback; then full scale of what needs no download (superres,
   separable, theory; batch_size and autoencoder on Fashion-MNIST with --fashion-mnist). Needs
   dvc, mlflow and papermill: from the environment, or installed from `--wheelhouse` (made by
   `make wheelhouse`); otherwise skipped with one line. At `--scale smoke` (a CPU check of this
   script) it runs the separable stages at scale smoke only.

Steps 1-5 import nothing from dvc, mlflow or papermill (an offline GPU node with a site-provided
PyTorch has none). Writes benchmarks/results/gpu_<device>.{json,md}: machine, versions, each step's
status, seconds, figures, and the one-line reason of every skip or failure.
"""
from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.wheelhouse import PACKED, project, unpack

ROOT = Path(__file__).resolve().parents[1]
NEEDS = ("dvc", "mlflow", "papermill")
BUNDLE_LIMIT = 64 * 2**20           # what travels to an offline node with the repository
GPU_MARK = re.compile(r"^\s*@pytest\.mark\.gpu\b|^pytestmark = pytest\.mark\.gpu\b", re.MULTILINE)   # a gpu test


class Budget:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def run(cmd: list[str], budget: Budget, cap: float | None = None, env: dict | None = None,
        cwd: Path = ROOT) -> tuple[int, str, float]:
    """(exit status, output tail, seconds); status 124 when the budget (or `cap`) ran out, and then
    the command's whole process group (dvc and its stages too) is ended, not only the command."""
    limit = max(1.0, min(budget.left(), cap or budget.left()))
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=limit)
        return p.returncode, out[-4000:], time.monotonic() - t0
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, _ = p.communicate(timeout=20)
                break
            except subprocess.TimeoutExpired:
                out = ""
        return 124, (out or "")[-4000:] + f"\n(stopped after {limit:.0f} s: time budget)", time.monotonic() - t0


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error:", "problem:")) or "Error" in ln]
    return (errors[-1] if errors else lines[-1] if lines else "no output")[:300]


def py(*args: str) -> list[str]:
    return [sys.executable, *args]


# --- the steps -------------------------------------------------------------------------------------------

def step_doctor(a, budget, tmp: Path) -> dict:
    cmd = py("-m", "pipeline.doctor", "--json", str(tmp / "doctor.json")) + (["--require-gpu"] if a.device != "cpu" else [])
    code, out, seconds = run(cmd, budget, 120)
    rows = json.loads((tmp / "doctor.json").read_text()) if (tmp / "doctor.json").exists() else []
    problems = [r["problem"] for r in rows if r["problem"]]
    gpu = next((r for r in rows if r["item"] == "usable by torch"), None)
    step = {"seconds": round(seconds, 1), "rows": rows, "problems": problems}
    if not rows:
        return {**step, "status": "failed", "reason": last_line(out)}
    if gpu is not None and gpu["problem"]:
        return {**step, "status": "failed", "stop": True, "reason": gpu["problem"]}
    return {**step, "status": "ok"}


def step_pytest(a, budget, tmp: Path) -> dict:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                   if GPU_MARK.search(p.read_text()))
    code, out, seconds = run(py("-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q", "-rs",
                                "-m", "gpu", *files), budget, 300)
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", out)}
    status = "ok" if code == 0 else "failed"
    return {"status": status, "seconds": round(seconds, 1), "files": files, **counts,
            **({"reason": last_line(out)} if status != "ok" else {})}


def step_benchmarks(a, budget, tmp: Path) -> dict:
    smoke = ["--scale", "0.01", "--only", "batch_size,colourize"] if a.scale == "smoke" else []
    figures, t0 = {}, time.monotonic()
    for name, extra in (("seed_loop", []), ("engine_options", ["--engine-options"])):
        code, out, _ = run(py("-m", "benchmarks.seed_loop", "--device", a.device, "--out", str(tmp), *smoke, *extra),
                           budget, 240)
        found = sorted(tmp.glob(f"{name}_*.json"))
        if code != 0 or not found:
            return {"status": "failed", "seconds": round(time.monotonic() - t0, 1), **figures,
                    "reason": f"{name}: {last_line(out)}"}
        figures[name] = json.loads(found[0].read_text())["rows"]
        figures.setdefault("tables", {})[name] = found[0].with_suffix(".md").read_text()
        if not a.scale == "smoke":
            for suffix in (".json", ".md"):
                shutil.copy(found[0].with_suffix(suffix), Path(a.out) / found[0].with_suffix(suffix).name)
    return {"status": "ok", "seconds": round(time.monotonic() - t0, 1), **figures}


def step_families(a, budget, tmp: Path) -> dict:
    out_file = tmp / "families.json"
    code, out, seconds = run(py("-m", "benchmarks.families", "--device", a.device, "--scale", a.scale,
                                "--json", str(out_file)), budget, 420)
    if code != 0 or not out_file.exists():
        return {"status": "failed", "seconds": round(seconds, 1), "reason": last_line(out)}
    data = json.loads(out_file.read_text())
    return {"status": "ok", "seconds": round(seconds, 1), "rows": data["rows"],
            "predicted_seconds": data["predicted_seconds"]}


def step_torchrun(a, budget, tmp: Path) -> dict:
    t0 = time.monotonic()
    device = "cuda" if a.device != "cpu" else "cpu"
    plain = run(py("-m", "benchmarks.torchrun_check", "--device", device, "--out", str(tmp / "plain.json")), budget, 120)
    under = run(py("-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1", "-m",
                   "benchmarks.torchrun_check", "--device", device, "--out", str(tmp / "torchrun.json")), budget, 180)
    seconds = round(time.monotonic() - t0, 1)
    for (code, out, _), name in ((plain, "plain"), (under, "torchrun")):
        if code != 0 or not (tmp / f"{name}.json").exists():
            return {"status": "failed", "seconds": seconds, "reason": f"{name}: {last_line(out)}"}
    a_, b_ = (json.loads((tmp / f"{n}.json").read_text()) for n in ("plain", "torchrun"))
    same = a_["sha256"] == b_["sha256"]
    return {"status": "ok" if same else "failed", "seconds": seconds, "same_weights": same,
            "plain_loss": a_["train_loss"], "torchrun_loss": b_["train_loss"],
            **({} if same else {"reason": "torchrun with one process trained different weights from a plain run"})}


def missing_packages(env: dict | None = None, needs: tuple[str, ...] = NEEDS) -> list[str]:
    code = ("import importlib, sys\nfor m in sys.argv[1:]:\n    try:\n        importlib.import_module(m)\n"
            "    except Exception:\n        print(m)")          # absent, or present but broken: missing either way
    p = subprocess.run(py("-c", code, *needs), capture_output=True, text=True, env=env, cwd=ROOT)
    return p.stdout.split()


def wheelhouse_env(a, budget, tmp: Path, needs: tuple[str, ...] = NEEDS) -> tuple[dict | None, str]:
    """The environment in which `needs` import — this one, or it with the wheelhouse installed into
    `tmp` — and ""; or None and why not."""
    env = dict(os.environ)
    missing = missing_packages(env, needs)
    if not missing:
        return env, ""
    house = Path(a.wheelhouse)
    listed = house / "requirements.txt"           # what `make wheelhouse` downloaded, for which Python
    names = {project(ln) for ln in (listed.read_text().splitlines() if listed.exists() else []) if ln.strip()}
    packed = house / PACKED
    brought = [packed] if packed.is_file() else sorted(house.glob("*.whl")) if house.is_dir() else []
    size = sum(w.stat().st_size for w in brought)  # what travelled, packed or not
    if size > BUNDLE_LIMIT:
        return None, f"the wheelhouse at {house} is {size / 2**20:.1f} MiB, over the {BUNDLE_LIMIT / 2**20:.1f} MiB bundle"
    try:
        loose = unpack(packed, tmp.parent / "wheels") if packed.is_file() else house
    except (OSError, EOFError, tarfile.TarError, lzma.LZMAError, TypeError) as e:    # TypeError: filter= before 3.11.4
        return None, f"the wheelhouse's {packed} cannot be unpacked ({e}); run `make wheelhouse` again and bring it"
    wheels = sorted(w for w in loose.glob("*.whl") if project(w.name) in names) if loose.is_dir() else []
    if not wheels:
        return None, (f"{', '.join(missing)} not installed and no wheelhouse at {house}; run `make wheelhouse "
                      f"PYTHON_VERSION={platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]}` "
                      "on a networked machine and bring it along")
    target = tmp.parent / "site"
    code, out, _ = run(py("-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target", str(target),
                          *map(str, wheels)), budget, 240)
    if code != 0:
        return None, f"installing the wheelhouse failed: {last_line(out)}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH", "")]))
    env["PATH"] = os.pathsep.join([str(target / "bin"), env.get("PATH", "")])
    # nbconvert's templates and ipykernel's kernel spec are data files: under the target's share/
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(target / "share" / "jupyter"), env.get("JUPYTER_PATH", "")]))
    still = missing_packages(env, needs)
    return (env, "") if not still else (None, f"the wheelhouse lacks {', '.join(still)}")


def step_repro(a, budget, tmp: Path) -> dict:
    t0 = time.monotonic()
    env, why = wheelhouse_env(a, budget, tmp)
    if env is None:
        return {"status": "skipped", "seconds": round(time.monotonic() - t0, 1), "reason": why}
    report = tmp / "repro.json"
    seconds = budget.left() - 10                    # its runs stop themselves, then it writes what ran
    code = py("-m", "benchmarks.smoke_repro", "--device", a.device, "--scale", a.scale, "--json", str(report),
              "--seconds", f"{seconds:.0f}", *(["--fashion-mnist", a.fashion_mnist] if a.fashion_mnist else []))
    status, out, _ = run(code, budget, None, env=env)
    result = json.loads(report.read_text()) if report.exists() else {}
    runs = result.get("runs", {})
    ok = status == 0 and runs and result.get("failed", 1) == 0
    if ok:
        reason = ""
    elif runs:
        failed = [f"{name}: {r.get('reason', r['status'])}" for name, r in runs.items() if r["status"] != "ok"]
        reason = f"{len(runs) - len(failed)} of {len(runs)} runs ok; " + "; ".join(failed)
    else:
        reason = last_line(out)
    return {"status": "ok" if ok else "failed", "seconds": round(time.monotonic() - t0, 1), **result,
            **({"reason": reason[:600]} if reason else {})}


STEPS = {1: ("doctor", step_doctor), 2: ("pytest -m gpu", step_pytest), 3: ("benchmarks", step_benchmarks),
         4: ("training families", step_families), 5: ("torchrun vs plain", step_torchrun),
         6: ("dvc repro", step_repro)}


# --- the report ------------------------------------------------------------------------------------------

def machine(device: str) -> dict:
    """Read without starting CUDA here (a GPU in exclusive-process mode takes one process only)."""
    import torch

    from pipeline.core.device import nvidia_gpus

    gpus = nvidia_gpus() if device != "cpu" else []
    name = gpus[0].name if gpus else torch.cuda.get_device_name(0) if device != "cpu" and torch.cuda.is_available() \
        else f"cpu x{os.cpu_count()} cores"
    return {"name": name, "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "platform": platform.platform()}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# gpu-check on {m['name']}", "",
             f"torch {m['torch']} (CUDA {m['cuda']}), Python {m['python']}; device {report['device']}, scale "
             f"{report['scale']}; {report['seconds']:.0f} s of a {report['budget']:.0f} s budget" +
             (f" ({report['wheelhouse_seconds']:.0f} s of it installing the wheelhouse before step 1)"
              if "wheelhouse_seconds" in report else ""), "",
             "| step | status | seconds | note |", "|---|---|---|---|"]
    for s in report["steps"]:
        lines.append(f"| {s['step']}. {s['name']} | {s['status']} | {s.get('seconds', 0):.1f} | {s.get('reason', '')} |")
    repro = next((s for s in report["steps"] if s["step"] == 6 and s.get("runs")), None)
    if repro:
        lines += ["", f"Step 6, {repro.get('jobs', 1)} runs side by side:", "",
                  "| run | status | stages | seconds | note |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {r['status']} | {len(r.get('stages', []))} | {r.get('seconds', 0):.0f} | "
                  f"{r.get('reason', '')} |" for name, r in repro["runs"].items()]
    bench = next((s for s in report["steps"] if s["step"] == 3 and s.get("tables")), None)
    for table in (bench or {}).get("tables", {}).values():      # each benchmark's own page: caption, table
        caption, *rest = table.strip().splitlines()
        lines += ["", f"Step 3. {caption}", *rest]
    fam = next((s for s in report["steps"] if s["step"] == 4 and s["status"] == "ok"), None)
    if fam:
        lines += ["", "| experiment | family | samples/s | peak MB | s/epoch | epochs | predicted s |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['experiment']} | {r['family']} | {r['samples_per_s']:,.0f} | {r['peak_memory_mb']:,.0f} | "
                  f"{r['seconds_per_epoch']:,.2f} | {r['epochs']} | {r['predicted_seconds']:,.0f} |" for r in fam["rows"]]
        lines += ["", "Predicted training time per experiment: " +
                  ", ".join(f"{k} {v / 60:.1f} min" for k, v in fam["predicted_seconds"].items())]
    return "\n".join(lines) + "\n"


def write(report: dict, out: Path, stem: str, t0: float) -> None:
    report["seconds"] = round(time.monotonic() - t0, 1)
    for suffix, text in ((".json", json.dumps(report, indent=2) + "\n"), (".md", markdown(report))):
        tmp = out / f".{stem}{suffix}.part"
        tmp.write_text(text)
        tmp.replace(out / f"{stem}{suffix}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--scale", choices=("full", "smoke"), default="full")
    ap.add_argument("--budget", type=float, default=540.0, help="seconds; stops early with what it has")
    ap.add_argument("--steps", default="1,2,3,4,5,6")
    ap.add_argument("--fashion-mnist", default=os.environ.get("FASHION_MNIST", ""),
                    help="a folder with Fashion-MNIST's four .gz files (full-scale batch_size and autoencoder)")
    ap.add_argument("--wheelhouse", default=str(ROOT / "wheelhouse"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    a = ap.parse_args(argv)
    if a.fashion_mnist:
        from pipeline.data.mnist import FILES

        a.fashion_mnist = str(Path(a.fashion_mnist).expanduser().resolve())    # step 6's runs work in copies elsewhere
        absent = [f for f in FILES if not (Path(a.fashion_mnist) / f).is_file()]
        if absent:
            print(f"error: FASHION_MNIST={a.fashion_mnist} lacks {', '.join(absent)}: give the folder that holds "
                  "Fashion-MNIST's four .gz files, or leave FASHION_MNIST out", file=sys.stderr)
            return 2
    budget, t0 = Budget(a.budget), time.monotonic()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    wanted = [int(s) for s in a.steps.split(",") if s.strip()]
    report = {"machine": machine(a.device), "device": a.device, "scale": a.scale, "budget": a.budget, "steps": []}
    stopped = ""
    from benchmarks.common import file_stem

    stem = "gpu_" + file_stem(report["machine"]["name"])
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        # PyYAML and tqdm come with neither PyTorch nor the node: from the wheelhouse when missing
        started = time.monotonic()
        env, why = wheelhouse_env(a, budget, Path(folder) / "boot", ("yaml", "tqdm"))
        if env is None:
            stopped = f"PyYAML or tqdm cannot be imported: {why}"
        else:
            if env.get("PYTHONPATH") != os.environ.get("PYTHONPATH"):     # installed from the wheelhouse
                report["wheelhouse_seconds"] = round(time.monotonic() - started, 1)
            os.environ.update(env)
        for number in sorted(STEPS):
            name, fn = STEPS[number]
            if number not in wanted:
                continue
            if stopped or budget.left() < 5:
                reason = stopped or "the time budget ran out"
                report["steps"].append({"step": number, "name": name, "status": "skipped", "reason": reason})
            else:
                (Path(folder) / str(number)).mkdir()
                result = fn(a, budget, Path(folder) / str(number))
                stop = result.pop("stop", False)
                report["steps"].append({"step": number, "name": name, **result})
                if stop:
                    stopped = f"step {number} ({name}) failed: {result['reason']}"
            s = report["steps"][-1]
            print(f"{number}. {name:18s} {s['status']:8s} {s.get('seconds', 0):7.1f} s  {s.get('reason', '')}",
                  flush=True)
            write(report, Path(a.out), stem, t0)         # after every step: a killed check keeps what it had
    write(report, Path(a.out), stem, t0)
    failed = [s for s in report["steps"] if s["status"] == "failed"]
    print(f"-> {Path(a.out) / stem}.md: {len(report['steps']) - len(failed)} of {len(report['steps'])} steps "
          f"without failure in {report['seconds']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
