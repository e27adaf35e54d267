"""`make gpu-check` on this CPU (DEVICE=cpu SCALE=smoke): steps 1-5 in a Python environment where
dvc, mlflow and papermill cannot be imported (as on an offline GPU node), the files it writes;
step 6's real `dvc repro`; the time budget; and a GPU that torch cannot use stopping it at step 1."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT

NEEDS = ("dvc", "mlflow", "papermill")


def _env(tmp_path, block: bool, also: tuple[str, ...] = ()) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DLREPRO_", "DVC_", "PYTEST_"))}
    paths = [str(ROOT)]
    if block:                       # each package present only as one that refuses to import
        for name in (*NEEDS, *also):
            (tmp_path / "blocked" / name).mkdir(parents=True)
            (tmp_path / "blocked" / name / "__init__.py").write_text(
                f"raise ModuleNotFoundError(\"No module named '{name}'\", name='{name}')\n")
        paths.insert(0, str(tmp_path / "blocked"))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _report(folder):
    (found,) = folder.glob("gpu_*.json")
    return json.loads(found.read_text()), found.with_suffix(".md").read_text()


def test_make_gpu_check_on_a_cpu_runs_steps_1_to_5_without_dvc_mlflow_papermill(tmp_path):
    env = _env(tmp_path, block=True)
    for name in NEEDS:
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True)
        assert probe.returncode == 1 and probe.stderr.strip().splitlines()[-1] == \
            f"ModuleNotFoundError: No module named '{name}'"
    out = tmp_path / "results"
    done = subprocess.run(["make", "gpu-check", "DEVICE=cpu", "SCALE=smoke",
                           f"ARGS=--out {out} --wheelhouse {tmp_path / 'no-wheelhouse'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report, md = _report(out)
    steps = {s["step"]: s for s in report["steps"]}
    assert [steps[i]["status"] for i in range(1, 7)] == ["ok"] * 5 + ["skipped"]
    assert steps[6]["reason"].startswith(f"dvc, mlflow, papermill not installed and no wheelhouse at {tmp_path}")
    assert {r["item"] for r in steps[1]["rows"]} >= {"python", "torch", "device: auto", "precision: auto"}
    from benchmarks.gpu_check import GPU_MARK

    marked = sum(len(GPU_MARK.findall((ROOT / f).read_text())) for f in steps[2]["files"])
    assert "tests/test_engine.py" in steps[2]["files"] and marked >= 4
    assert steps[2].get("skipped", 0) == (0 if torch.cuda.is_available() else marked)       # each gpu test, here
    engine = steps[3]["engine_options"]
    assert [r["family"].split(" ")[0] for r in engine] == ["batch_size", "colourize"]
    assert all(r["eager"] > 0 and r["compile"] > 0 and r["deterministic_off"] > 0 for r in engine)
    _check_seed_loop(steps[3]["seed_loop"], steps[3]["tables"]["seed_loop"], md)
    rows = steps[4]["rows"]
    assert [(r["experiment"], r["family"].split(" ")[0]) for r in rows] == [
        ("emnist", "mlp"), ("emnist", "cnn"), ("emnist", "factorised"), ("fer", "cnn"), ("distill", "mobilenetv2"),
        ("distill", "resnet-50"), ("distill", "resnet-50"), ("colourize", "cnn"), ("colourize", "unet"),
        ("colourize", "residual")]
    for r in rows:
        assert r["samples_per_s"] > 0 and r["peak_memory_mb"] > 0 and r["seconds_per_epoch"] > 0
    for experiment, seconds in steps[4]["predicted_seconds"].items():
        assert seconds == pytest.approx(sum(r["predicted_seconds"] for r in rows if r["experiment"] == experiment),
                                        abs=0.2)
    assert steps[5]["same_weights"] is True and steps[5]["plain_loss"] == steps[5]["torchrun_loss"]
    assert report["machine"]["torch"] == torch.__version__ and report["seconds"] <= report["budget"]
    lines = md.splitlines()
    assert lines[0] == f"# gpu-check on {report['machine']['name']}"
    assert [ln.split("|")[1].strip() for ln in lines if ln.startswith("| ") and ". " in ln.split("|")[1]] == [
        "1. doctor", "2. pytest -m gpu", "3. benchmarks", "4. training families", "5. torchrun vs plain", "6. dvc repro"]
    assert "| emnist | cnn |" in md and "Predicted training time per experiment: emnist" in md


def _check_seed_loop(rows: list[dict], table: str, md: str) -> None:
    """The seed-loop benchmark at `--scale 0.01 --only batch_size,colourize` (gpu-check's step 3 at scale
    smoke; its timings are measured by running it, never in a test): one row per family it ran, and its
    table, which gpu-check's page shows as it is."""
    assert [r["family"].split(" ")[0] for r in rows] == ["batch_size", "colourize"]
    for r in rows:
        assert r["seed_samples_per_s"] > 0 and r["ours_samples_per_s"] > 0 and r["compute_limit_samples_per_s"] > 0
        assert abs(r["ratio"] - r["ours_samples_per_s"] / r["seed_samples_per_s"]) < 0.01 * r["ratio"] + 0.01
        assert r["samples"] == max(r["batch"], int({"batch_size": 16384, "colourize": 2048}[r["family"].split(" ")[0]]
                                                   * 0.01))
    lines = table.splitlines()
    assert lines[0].startswith("Seed-style loop vs our engine on cpu")
    assert lines[2].startswith("| family | batch | seed loop | ours |") and len(lines) == 4 + len(rows)
    assert f"Step 3. {lines[0]}\n" + "\n".join(lines[1:]) in md


@pytest.mark.e2e
def test_step_6_runs_the_real_dvc_repro_at_scale_smoke(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--device", "cpu", "--scale", "smoke",
                           "--steps", "6", "--out", str(tmp_path)],
                          cwd=ROOT, env=_env(tmp_path, block=False), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (step,) = _report(tmp_path)[0]["steps"]
    assert step["status"] == "ok" and step["failed"] == 0
    assert set(step["runs"]["smoke"]["stages"]) == {"separable_train", "separable_report"}


def test_a_spent_budget_skips_the_remaining_steps(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--device", "cpu", "--steps", "1,5",
                           "--budget", "2", "--out", str(tmp_path)],
                          cwd=ROOT, env=_env(tmp_path, block=True), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    steps = _report(tmp_path)[0]["steps"]
    assert [(s["step"], s["status"], s["reason"]) for s in steps] == [
        (1, "skipped", "the time budget ran out"), (5, "skipped", "the time budget ran out")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a GPU torch cannot use")
def test_a_gpu_torch_cannot_use_stops_the_check_at_the_doctor(tmp_path):
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho 'Tesla T4, 535.104.05, 15360, 7.5'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    env = _env(tmp_path, block=True)
    env["PATH"] = f"{smi.parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--steps", "1,2,5", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    steps = _report(tmp_path)[0]["steps"]
    assert steps[0]["status"] == "failed" and steps[0]["reason"].startswith("Tesla T4 (driver 535.104.05) is here")
    assert [s["status"] for s in steps[1:]] == ["skipped", "skipped"]
    assert steps[1]["reason"].startswith("step 1 (doctor) failed: Tesla T4")


def test_step_6_plans_every_report_once_at_smoke_and_the_core_at_full():
    from benchmarks.smoke_repro import plan
    from tests.e2e import REPORTS

    runs = plan("full", "")
    smoke = [t for _, kind, ts in runs if kind == "smoke" for t in ts]
    assert sorted(smoke) == sorted(t for ts in REPORTS.values() for t in ts)
    assert [ts for _, kind, ts in runs if kind == "full"] == [(t,) for t in REPORTS["core"]]
    assert runs[0][1] == "full" and runs[len(REPORTS["core"])][2] == ("distill_report",)   # the longest first
    with_fashion = [ts[0] for _, kind, ts in plan("full", "/data/fashion") if kind == "full"]
    assert with_fashion[-2:] == ["batch_size_report", "autoencoder_report"]
    assert plan("smoke", "") == [("smoke", "smoke", ("separable_report",))]


@pytest.mark.e2e
def test_a_run_past_its_deadline_is_stopped_with_its_stages(tmp_path):
    import time

    from benchmarks.smoke_repro import repro
    from tests.e2e import copy_repo

    repo = copy_repo(tmp_path / "copy")
    t0 = time.monotonic()
    result = repro(repo, ("superres_report",), t0 + 6, 1)
    assert result["failed"] == 1 and result["reason"] == "stopped: the time budget ran out"
    assert time.monotonic() - t0 < 30 and "superres_report" not in result["stages"]
    left = []
    for proc in os.listdir("/proc"):
        try:
            if proc.isdigit() and os.readlink(f"/proc/{proc}/cwd").startswith(str(repo)):
                left.append(proc)
        except OSError:
            continue
    assert left == [], f"processes still running in the copy: {left}"


def _wheel(folder, name: str, version: str, source: str):
    """A real, installable pure-Python wheel (`name` with one module), RECORD hashes included."""
    import base64
    import hashlib
    import zipfile

    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": source,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    digest = {k: base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()
              for k, v in files.items()}
    files[f"{info}/RECORD"] = "".join(f"{k},sha256={digest[k]},{len(v.encode())}\n" for k, v in files.items()) + \
        f"{info}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in files.items():
            z.writestr(k, v)
    return path


def test_a_packed_wheelhouse_keeps_every_wheel_s_files_and_gpu_check_installs_from_it(tmp_path, monkeypatch):
    import tarfile
    import zipfile
    from types import SimpleNamespace

    from benchmarks import gpu_check
    from benchmarks.wheelhouse import PACKED, pack

    house = tmp_path / "wheelhouse"
    house.mkdir()
    wheels = [_wheel(house, "housepkg_a", "1.0", "X = 41\n"), _wheel(house, "housepkg_b", "2.0", "Y = 'b' * 3\n")]
    (house / "requirements.txt").write_text("housepkg-a==1.0\nhousepkg-b==2.0\n")
    before = {w.name: {i.filename: zipfile.ZipFile(w).read(i) for i in zipfile.ZipFile(w).infolist()} for w in wheels}
    archive = pack(house)
    assert archive == house / PACKED and sorted(p.name for p in house.iterdir()) == sorted([PACKED, "requirements.txt"])
    with tarfile.open(archive, "r:xz") as tar:
        assert sorted(tar.getnames()) == sorted(before)
        for member in tar.getmembers():
            with zipfile.ZipFile(tar.extractfile(member)) as z:
                assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
                assert {i.filename: z.read(i) for i in z.infolist()} == before[member.name]

    a = SimpleNamespace(wheelhouse=str(house))
    env, why = gpu_check.wheelhouse_env(a, gpu_check.Budget(120), tmp_path / "check" / "6", ("housepkg_a", "housepkg_b"))
    assert why == "" and env is not None
    got = subprocess.run([sys.executable, "-c", "import housepkg_a, housepkg_b; print(housepkg_a.X + 1, housepkg_b.Y)"],
                         env=env, capture_output=True, text=True)
    assert got.stdout.split() == ["42", "bbb"], got.stderr
    assert sorted(p.name for p in (tmp_path / "check" / "wheels").iterdir()) == sorted(before)

    monkeypatch.setattr(gpu_check, "BUNDLE_LIMIT", archive.stat().st_size - 1)    # what travelled is counted
    env, why = gpu_check.wheelhouse_env(a, gpu_check.Budget(60), tmp_path / "other" / "6", ("housepkg_a",))
    mib = archive.stat().st_size / 2**20
    assert env is None and why == f"the wheelhouse at {house} is {mib:.1f} MiB, over the {mib:.1f} MiB bundle"
    monkeypatch.undo()
    archive.write_bytes(archive.read_bytes()[:200])                               # cut short in transit
    env, why = gpu_check.wheelhouse_env(a, gpu_check.Budget(60), tmp_path / "cut" / "6", ("housepkg_a",))
    assert env is None and why.startswith(f"the wheelhouse's {archive} cannot be unpacked (")
    assert why.endswith("); run `make wheelhouse` again and bring it")
    assert not (tmp_path / "cut" / "wheels").exists() and not (tmp_path / "cut" / "site").exists()


def test_a_fashion_mnist_folder_without_its_four_files_is_one_line_before_any_step(tmp_path):
    folder = tmp_path / "fm"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    out = tmp_path / "results"
    env = _env(tmp_path, block=True, also=("yaml", "tqdm"))     # as on a node before the wheelhouse
    done = subprocess.run(["make", "gpu-check", "DEVICE=cpu", "SCALE=smoke",
                           "FASHION_MNIST=../" + os.path.relpath(folder, ROOT.parent), f"ARGS=--out {out}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-2:-1] == [
        f"error: FASHION_MNIST={folder} lacks train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz: give the folder "
        "that holds Fashion-MNIST's four .gz files, or leave FASHION_MNIST out"]
    assert not out.exists()


def test_the_page_says_how_long_installing_the_wheelhouse_took_only_when_it_did():
    from benchmarks.gpu_check import markdown

    report = {"machine": {"name": "node", "torch": "2.11.0", "cuda": "13.0", "python": "3.12.3"}, "device": "cuda",
              "scale": "full", "budget": 540.0, "seconds": 84.2, "steps": []}
    assert markdown(report).splitlines()[2] == "torch 2.11.0 (CUDA 13.0), Python 3.12.3; device cuda, scale full; " \
        "84 s of a 540 s budget"
    assert markdown({**report, "wheelhouse_seconds": 21.4}).splitlines()[2].endswith(
        "84 s of a 540 s budget (21 s of it installing the wheelhouse before step 1)")


def test_a_pack_that_fails_midway_leaves_the_wheels_and_no_partial_archive(tmp_path, monkeypatch):
    from benchmarks import wheelhouse

    wheels = [_wheel(tmp_path, "housepkg_a", "1.0", "X = 1\n"), _wheel(tmp_path, "housepkg_b", "1.0", "Y = 2\n")]
    real = wheelhouse.stored

    def second_fails(wheel):
        if wheel.name.startswith("housepkg_b"):
            raise OSError(28, "No space left on device")
        return real(wheel)

    monkeypatch.setattr(wheelhouse, "stored", second_fails)
    with pytest.raises(OSError, match="No space left"):
        wheelhouse.pack(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(w.name for w in wheels)


@pytest.mark.parametrize("requirement, wheel", [
    ("ruamel.yaml==0.19.1 ; platform_python_implementation == 'CPython'", "ruamel_yaml-0.19.1-py3-none-any.whl"),
    ("zc-lockfile==3.0.post1", "zc.lockfile-3.0.post1-py3-none-any.whl"),
    ("typing-extensions==4.15.0", "typing_extensions-4.15.0-py3-none-any.whl"),
    ("Jinja2==3.1.6", "jinja2-3.1.6-py3-none-any.whl"),
    ("dvc[s3]==3.67.1", "dvc-3.67.1-py3-none-any.whl")])
def test_a_requirement_and_its_wheel_name_the_same_distribution(requirement, wheel):
    from benchmarks.wheelhouse import project

    assert project(requirement) == project(wheel) == requirement.split("=")[0].split("[")[0].lower() \
        .replace("-", "_").replace(".", "_")
    assert project("typing-extensions==4.15.0") != project("typing==3.7")          # a hyphen is no cut
