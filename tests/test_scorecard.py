"""The scorecard: claims parsed from every experiment's seed.py, judged against a fixture set of
results, rendered; the real stage run on a fixture workspace with a real SQLite MLflow store."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from pipeline.core.errors import PipelineError
from pipeline.scorecard import page
from pipeline.scorecard.card import Experiment, build, experiment, totals
from pipeline.scorecard.catalogue import MODULES, experiments
from pipeline.scorecard.claims import Locator, claim, fmt, judge, value_at
from tests.conftest import ROOT


def _claim(**spec):
    return claim("x", {"item": "a number", "ours": "m.json:v", **spec})


def test_locators_parse_json_keys_csv_cells_and_transforms():
    assert Locator.parse("metrics/a.json:x2.bicubic.psnr") == Locator("metrics/a.json", "x2.bicubic.psnr")
    loc = Locator.parse("t.csv:receptive_field@layer=L1 conv 7x7, 32|area")
    assert (loc.key, loc.row, loc.transform) == ("receptive_field", ("layer", "L1 conv 7x7, 32"), "area")
    table = pd.DataFrame({"layer": ["L1 conv 7x7, 32", "L2"], "receptive_field": ["7x7", "11x11"], "epoch": [1, 2]})
    assert value_at(table, loc) == 49
    assert value_at(table, Locator.parse("t.csv:epoch")) == 2                       # no row filter: the last row
    assert value_at(table, Locator.parse("t.csv:epoch@epoch=1.0")) == 1             # numeric match
    assert value_at(table, Locator.parse("t.csv:epoch@layer=L9")) is None
    assert value_at({"a": {"b": 3}}, Locator.parse("f.json:a.b")) == 3
    assert value_at({"a": {"b": 3}}, Locator.parse("f.json:a.c")) is None
    assert math.isnan(value_at({"a": None}, Locator.parse("f.json:a")))            # null: the run diverged
    assert value_at(None, Locator.parse("f.json:a")) is None                       # the file does not exist
    for bad in ("no-colon", "f.csv:k@nofilter", "f.json:k|cube"):
        with pytest.raises(PipelineError, match="scorecard locator"):
            Locator.parse(bad)


def test_a_claim_with_an_unknown_key_or_kind_is_one_clear_error():
    with pytest.raises(PipelineError, match=r"unknown keys \['tolerance'\]"):
        _claim(seed=1, tolerance=0.1)
    with pytest.raises(PipelineError, match="one of equal, higher"):
        _claim(seed=1, kind="bigger")


@pytest.mark.parametrize("spec, ours, expected", [
    (dict(seed=93.0, kind="higher", tol=0.5), 93.4, ("matched", "within 0.5")),
    (dict(seed=93.0, kind="higher", tol=0.5), 95.0, ("beaten", "by 2")),
    (dict(seed=93.0, kind="higher", tol=0.5, digits=1, unit="%"), 90.25, ("short", "by 2.8 %")),
    (dict(seed=0.0352, kind="lower", tol=0.00005, digits=4), 0.0301, ("beaten", "by 0.0051")),
    (dict(seed=0.0352, kind="lower", tol=0.00005, digits=4), 0.0400, ("short", "by 0.0048")),
    (dict(seed="62x62x62", note="a typo"), "62x62x64", ("explained", "a typo")),
    (dict(seed=4.04, tol=0.005), 4.0400000001, ("matched", "")),
    (dict(seed=10, kind="equal"), 12, ("differs", "by 2")),
    (dict(seed=633, kind="info", note="other hardware"), 80.0, ("not comparable", "other hardware")),
    (dict(seed=46.7, kind="higher"), float("nan"), ("differs", "ours has no value: the run diverged")),
    (dict(seed=46.7, kind="higher"), None, ("not run", "")),
])
def test_verdicts(spec, ours, expected):
    assert judge(_claim(**spec), [ours]) == expected


def test_ours_only_rows_compare_with_their_baseline_and_trained_rows_wait_for_a_comparable_run():
    c = _claim(seed=None, kind="ours", baseline="m.json:b", baseline_label="bicubic", digits=2, unit="dB")
    assert judge(c, [28.78], 28.47) == ("ours only", "beats bicubic by 0.31 dB")
    assert judge(c, [28.0], 28.47) == ("ours only", "falls short of bicubic by 0.47 dB")
    shown = _claim(seed=None, kind="ours", baseline="m.json:b", baseline_label="in float64", better=None)
    assert judge(shown, [102.9], 744.0) == ("ours only", "in float64: 744")
    assert judge(_claim(seed=None, kind="ours"), [1.0]) == ("ours only", "the seed printed no value")
    trained = _claim(seed=93.0, kind="higher")
    assert judge(trained, [99.0], comparable="smoke scale") == ("not comparable", "smoke scale")
    assert judge(_claim(seed="49", kind="equal"), ["49"], comparable="smoke scale") == ("matched", "")  # exact: always
    falls = _claim(seed="falls", kind="descending", ours=["a.csv:x", "b.csv:x", "c.csv:x"])
    assert judge(falls, [0.9, 0.8, 0.7])[0] == "matched" and judge(falls, [0.9, 0.95, 0.7])[0] == "differs"


def test_formatting_is_for_people():
    assert fmt(10499) == "10,499" and fmt(200.0) == "200" and fmt(0.00021494) == "0.0002149"
    assert fmt(28.7848, 2, "dB") == "28.78 dB" and fmt(None) == "—" and fmt(True) == "yes"
    assert fmt([95.1, 93.25], 1, "%") == "95.1 / 93.2 %"


def test_every_experiment_has_a_seed_catalogue_whose_files_some_stage_writes():
    from dvc.repo import Repo

    exps = experiments()
    assert [e.name for e in exps] == list(MODULES) and len(exps) == 9
    assert all(e.claims for e in exps)
    paths = {loc.path for e in exps for c in e.claims for loc in (*c.ours, *([c.baseline] if c.baseline else []))}
    with Repo(str(ROOT)) as repo:              # dvc's own expansion of foreach / matrix stages
        stages = {s.addressing: s for s in repo.index.stages}
        outs = {o.def_path for s in stages.values() for o in s.outs}
        scorecard = stages["scorecard"]
        data_deps = {d.def_path for d in scorecard.deps if not d.def_path.endswith(".py") and not hasattr(d, "params")}
        params = {k for d in scorecard.deps if hasattr(d, "params") for k in d.params}
    missing = sorted(p for p in paths if not any(p == o or p.startswith(o.rstrip("/") + "/") for o in outs))
    assert missing == []                   # a typo in a locator's path would leave its row "not run" forever
    # the scorecard stage depends on exactly these files (and its code, which test_import_closure checks)
    assert data_deps == paths
    assert params == {"scale"} | {k for e in exps for k in e.expects}


def _fixture_results(root):
    """A workspace where theory and autoencoder ran at full scale and nothing else did."""
    (root / "data/eval/theory").mkdir(parents=True)
    from pipeline.theory.seed import SEED001_REPORTED
    ours = {"62x62x62": "62x62x64", "25x25x25": "25x25x128", "12x12x12": "12x12x128"}     # the seed's typos
    layers = pd.DataFrame([{"layer": name, "output": ours.get(out, out), "parameters": p,
                            "receptive_field": {"49": "7x7", "1225": "11x11", "4900": "13x13"}.get(rf, "")}
                           for name, (out, p, rf) in SEED001_REPORTED.items()])
    layers.to_csv(root / "data/eval/theory/seed001_layers.csv", index=False)
    pd.DataFrame([{"step": 1, "a": 2.6, "b": 0.6, "c": -2.6, "d": 2.6},
                  {"step": 2, "a": 4.04, "b": 2.04, "c": -4.04, "d": 4.04}]).to_csv(
        root / "data/eval/theory/momentum_steps.csv", index=False)
    pd.DataFrame([{"dw1": -1.0, "dw2": 5.0, "dw3": 3.0, "dw4": 0.0, "db": 1.0}]).to_csv(
        root / "data/eval/theory/global_max_pool.csv", index=False)
    (root / "metrics/theory").mkdir(parents=True)
    (root / "metrics/theory/checks.json").write_text(json.dumps(
        {"hat_max_error_at_knots": 1e-15, "symmetry_constant_spread": 0.0,
         "grad_norm_first_over_last_residual": 1.2, "grad_norm_first_over_last_plain": 2e-25}))
    (root / "plots/autoencoder").mkdir(parents=True)
    losses = [0.0300, 0.0276, 0.0240] + [0.02] * 7          # beaten, matched, short, then beaten/short
    pd.DataFrame({"epoch": range(1, 11), "train_loss": losses}).to_csv(root / "plots/autoencoder/autoencoder.csv",
                                                                         index=False)
    (root / "metrics/autoencoder").mkdir(parents=True)
    (root / "metrics/autoencoder/classifier_literal.json").write_text(json.dumps({"test_accuracy": 0.9312}))
    (root / "metrics/autoencoder/classifier_logits.json").write_text(json.dumps({"test_accuracy": 0.9611}))


def _lookup(root):
    def lookup(loc):
        p = root / loc.path
        if not p.exists():
            return None
        return value_at(json.loads(p.read_text()) if p.suffix == ".json" else pd.read_csv(p), loc)
    return lookup


def test_the_scorecard_from_a_fixture_set_of_results(tmp_path):
    _fixture_results(tmp_path)
    params = {"scale": "full", "mnist.dataset": "mnist"}
    summaries, rows = build(experiments(), _lookup(tmp_path), params.get)
    by = {s.name: s for s in summaries}
    assert by["theory"].status == "done" and by["autoencoder"].status == "done"
    assert {s.name for s in summaries if s.status == "not run"} == {
        "separable", "batch_size", "superres", "emnist", "fer", "distill", "colourize"}
    assert by["fer"].line.startswith("not run — needs FER-2013")
    assert by["superres"].line == "not run — `dvc repro` builds it; nothing to download"
    theory = {r.item: r for r in rows if r.experiment == "theory"}
    assert theory["L1 conv 7x7, 32: receptive field (px²)"].verdict == "matched"             # 7x7 -> 49
    assert theory["L2 conv 5x5, 64, stride 2: receptive field (px²)"].verdict == "explained"
    assert theory["L2 conv 5x5, 64, stride 2: output"].verdict == "explained"                  # the seed's typo
    assert theory["momentum SGD, c after two steps"].ours == "-4.04" and by["theory"].counts["matched"] == 25
    auto = {r.item: r for r in rows if r.experiment == "autoencoder"}
    assert [auto[f"autoencoder training loss, epoch {e}"].verdict for e in (1, 2, 3)] == ["beaten", "matched", "short"]
    assert auto["autoencoder training loss, epoch 3"].detail == "by 0.0007"
    literal = auto["classifier test accuracy, the report's network (softmax twice)"]
    assert (literal.seed, literal.ours, literal.verdict) == ("93.0 %", "93.1 %", "matched")
    assert auto["classifier test accuracy, corrected (cross-entropy on logits)"].verdict == "beaten"
    counts = totals(summaries)
    assert counts["experiments_done"] == 2 and counts["experiments_not_run"] == 7
    assert counts["rows_not_run"] == sum(len(e.claims) for e in experiments() if e.name not in ("theory", "autoencoder"))
    # at smoke scale, or on Fashion-MNIST, trained numbers are shown but not held against the seed's
    _, smoke = build(experiments(), _lookup(tmp_path), {"scale": "smoke", "mnist.dataset": "mnist"}.get)
    assert {r.verdict for r in smoke if r.experiment == "autoencoder"} == {"not comparable"}
    assert "matched" in {r.verdict for r in smoke if r.experiment == "theory"}
    fashion, _ = build(experiments(), _lookup(tmp_path), {"scale": "full", "mnist.dataset": "fashion_mnist"}.get)
    assert "ran with mnist.dataset = fashion_mnist (the seed's: mnist)" in {s.name: s for s in fashion}["autoencoder"].line


def test_the_page_shows_every_row_with_links_and_no_scripts(tmp_path):
    _fixture_results(tmp_path)
    summaries, rows = build(experiments(), _lookup(tmp_path), {"scale": "full", "mnist.dataset": "mnist"}.get)
    summaries[3].links.update(report="theory.html", mlflow="http://127.0.0.1:5000/#/experiments/3")
    html = page.render(summaries, rows, "full", "start mlflow ui")
    assert "<title>Did it reproduce? — the scorecard</title>" in html and "<script" not in html
    assert html.count('<tr><td><a href="#') == 9 and html.count("<h2 id=") == 9
    assert '<a href="theory.html">report</a>' in html and "#/experiments/3" in html
    assert "L2 conv 5x5, 64, stride 2: output" in html and "62x62x62" in html
    assert "not run — needs CIFAR-10" in html


def test_a_claim_module_with_a_bad_claim_fails_when_the_catalogue_loads():
    class Module:
        EXPERIMENT = {"title": "t", "seed": "s", "needs": ""}
        CLAIMS = [{"item": "x", "ours": "a.json:k", "kind": "sideways"}]
    with pytest.raises(PipelineError, match="kind 'sideways'"):
        experiment("x", Module)
    assert isinstance(experiment("x", type("M", (), {**vars(Module), "CLAIMS": []})), Experiment)


def test_the_stage_builds_the_page_table_and_counts_with_links_to_the_mlflow_store(tmp_path):
    import mlflow

    _fixture_results(tmp_path)
    (tmp_path / ".dvc").mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    theory_id = mlflow.create_experiment("theory")
    mlflow.set_tracking_uri("")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-m", "stages.scorecard", "build"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "done: theory, autoencoder" in out.stdout
    table = json.loads((tmp_path / "reports/scorecard.json").read_text())
    links = {e["name"]: e["links"] for e in table["experiments"]}
    assert links["theory"] == {"report": "theory.html", "mlflow": f"http://127.0.0.1:5000/#/experiments/{theory_id}"
                                                                   "?workflowType=machine_learning"}
    assert links["fer"] == {} and links["autoencoder"] == {"report": "autoencoder.html"}    # no MLflow runs yet
    counts = json.loads((tmp_path / "metrics/scorecard.json").read_text())
    assert counts["experiments_done"] == 2 and all(isinstance(v, int) for v in counts.values())
    html = (tmp_path / "reports/index.html").read_text()
    assert f"#/experiments/{theory_id}" in html and "scale: full" in html
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["index.html", "scorecard.json"]


def test_each_report_depends_on_the_results_its_seed_table_reads():
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        deps = {s.addressing: {d.def_path for d in s.deps if not hasattr(d, "params")} for s in repo.index.stages}
    for exp in experiments():
        covered = deps[f"{exp.name}_report"]
        paths = {loc.path for c in exp.claims for loc in (*c.ours, *([c.baseline] if c.baseline else []))}
        missing = sorted(p for p in paths if not any(p == d or p.startswith(d.rstrip("/") + "/") for d in covered))
        assert missing == [], f"{exp.name}_report reads {missing} without a dep"
