"""The per-experiment throughput benchmarks that the docs point to (`python -m benchmarks.<name>`)
still run against today's configs and engine, and print figures that add up: one process runs
the four of them on a handful of synthetic samples (a config change once broke one unnoticed)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torchvision
import yaml

from tests.conftest import ROOT

RUNS = {"emnist_throughput": ["--samples", "32", "--epochs", "1"],
        "fer_throughput": ["--samples", "16", "--epochs", "1"],
        "distill_throughput": ["--samples", "2", "--epochs", "1"],
        "colourize_throughput": ["--samples", "16", "--epochs", "1"]}

DRIVER = """
import contextlib, io, json, runpy, sys
out = {}
for module, args in json.loads(sys.argv[1]).items():
    sys.argv, buf = [module, *args], io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            runpy.run_module("benchmarks." + module, run_name="__main__", alter_sys=True)
        except SystemExit as e:
            if e.code not in (None, 0):
                raise
    out[module] = buf.getvalue()
print(json.dumps(out))
"""

NUMBER = r"([\d,]+(?:\.\d+)?)"


@pytest.fixture(scope="module")
def printed() -> dict[str, str]:
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(RUNS)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rate(text: str, label: str, unit: str) -> float:
    found = re.search(rf"^{re.escape(label)}\s+{NUMBER} {unit}", text, re.MULTILINE)
    assert found, f"no {label!r} line in:\n{text}"
    return float(found.group(1).replace(",", ""))


def test_emnist_prints_each_model_s_parameters_and_rates(printed):
    from pipeline.core.params import load_params, parse
    from pipeline.emnist.data import N_CLASSES, EmnistConfig
    from pipeline.emnist.models import MODELS, parameter_counts

    cfg = parse(EmnistConfig, load_params(ROOT / "params.yaml")["emnist"], "emnist")
    counts = parameter_counts(cfg.mlp, cfg.cnn, N_CLASSES)
    rows = re.findall(rf"^(\w+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", printed["emnist_throughput"], re.MULTILINE)
    assert [r[0] for r in rows] == list(MODELS)
    for name, params, train, infer in rows:
        assert int(params.replace(",", "")) == counts[name]
        assert float(train.replace(",", "")) > 0 and float(infer.replace(",", "")) > 0


def test_fer_prints_training_inference_and_the_demo_s_frame_rate(printed):
    text = printed["fer_throughput"]
    for label in ("augmentation", "training", "inference", "inference + mirror"):
        assert _rate(text, label, "faces/s") > 0
    assert _rate(text, "demo frame", "frames/s") > 0


def test_distill_counts_the_parameters_torchvision_s_networks_have(printed):
    text = printed["distill_throughput"]
    student = sum(p.numel() for p in torchvision.models.mobilenet_v2(num_classes=10).parameters())
    teacher = sum(p.numel() for p in torchvision.models.resnet50(num_classes=10).parameters())
    assert f"({student:,} parameters)" in text.splitlines()[2]           # strides change no parameter
    assert f"({teacher:,} parameters)" in text.splitlines()[3]
    for label in ("crop + flip gather", "student inference", "teacher inference", "student training",
                  "teacher fine-tuning"):
        assert _rate(text, label, "images/s") > 0


def test_colourize_times_every_run_of_the_params_sweeps(printed):
    text = printed["colourize_throughput"]
    cfg = yaml.safe_load((ROOT / "params.yaml").read_text())["colourize"]
    runs = 3 + sum(len(v) for key in ("sweep_cnn", "sweep_unet") for v in cfg[key].values())
    assert re.search(rf"^all {runs} runs \(headline \+ sweeps\), training only: {NUMBER} min$", text, re.MULTILINE)
    rows = re.findall(rf"^(\w+)\s+NF\s+(\d+) k (\d+):\s+{NUMBER} images/s,\s+{NUMBER} s/epoch,\s+{NUMBER} s for its "
                      r"(\d+) epochs$", text, re.MULTILINE)
    assert [(name, int(nf), int(k), int(epochs)) for name, nf, k, *_, epochs in rows] == \
        [(m, cfg[m]["filters"], cfg[m]["kernel"], cfg[m]["epochs"]) for m in ("cnn", "unet", "residual")]
    for *_, rate, per_epoch, run_seconds, epochs in rows:
        assert float(rate.replace(",", "")) > 0
        assert float(run_seconds.replace(",", "")) == pytest.approx(float(per_epoch) * int(epochs), rel=0.01, abs=0.1)
    headline = sum(float(r[5].replace(",", "")) for r in rows)           # the total holds the headline runs and more
    total = float(re.search(r"training only: ([\d.]+) min", text).group(1)) * 60
    assert total >= headline - 3
