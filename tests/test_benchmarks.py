"""The seed-loop benchmark's output (its timings are measured by running it, never in a test)."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_the_seed_loop_benchmark_writes_one_row_per_family_it_ran(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmarks.seed_loop", "--device", "cpu", "--scale", "0.01",
                          "--only", "batch_size,colourize", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (table,) = tmp_path.glob("seed_loop_*.json")
    rows = json.loads(table.read_text())["rows"]
    assert [r["family"].split(" ")[0] for r in rows] == ["batch_size", "colourize"]
    for r in rows:
        assert r["seed_samples_per_s"] > 0 and r["ours_samples_per_s"] > 0 and r["compute_limit_samples_per_s"] > 0
        assert abs(r["ratio"] - r["ours_samples_per_s"] / r["seed_samples_per_s"]) < 0.01 * r["ratio"] + 0.01
        assert r["samples"] == max(r["batch"], int({"batch_size": 16384, "colourize": 2048}[r["family"].split(" ")[0]]
                                                   * 0.01))
    md = table.with_suffix(".md").read_text().splitlines()
    assert md[2].startswith("| family | batch | seed loop | ours |") and len(md) == 4 + len(rows)
