"""End to end, part 1: the real `dvc repro` and `dvc exp run` on a copy of this repo for the experiments that need no download (superres on scikit-image's photographs,
separable, theory), at `scale: smoke` (three 32 px images, two epochs), with its own SQLite MLflow
store at its root. Part 2 (downloaded datasets) is test_e2e_data.py; queued experiments landing
in the repository's store: test_e2e_tracking_server.py (its sqlite case); helpers in tests/e2e.py.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e import (
    COLOURIZE,
    CORE,
    DATA,
    DISTILL,
    REPORTS,
    SUPERRES,
    dvc,
    grid_stages,
    mlflow_runs,
    ran,
    repo_fixtures,
    sh,
    stale,
    sweep_stages,
)
from tests.import_closure import stale_for_edit

pytestmark = pytest.mark.e2e          # the end-to-end tier: `pytest -m 'not e2e'` leaves it out

TARGETS = REPORTS["core"]


repo, first_repro = repo_fixtures("e2e-core", TARGETS)


def test_every_stage_is_covered_by_the_end_to_end_repos():
    listed = dvc(ROOT, "stage", "list", "--name-only").split()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())     # the vision repo runs smaller grids
    assert sorted(listed) == sorted(CORE + DATA + DISTILL + grid_stages(params) + COLOURIZE + sweep_stages(params)
                                    + ("scorecard",))      # built directly below, as `make repro` does after failures


def test_repro_runs_every_stage_and_writes_metrics(repo, first_repro):
    assert ran(first_repro) == set(CORE)
    ev = json.loads((repo / "metrics/superres/eval.json").read_text())
    assert set(ev) == {"x2", "x4"}
    assert {"nearest", "bilinear", "bicubic", "literal", "subpixel"} <= set(ev["x2"])
    assert {"bicubic", "subpixel x2 twice", "subpixel4x"} <= set(ev["x4"])
    for row in ev["x2"].values():
        assert 5 < row["psnr"] < 60 and 0 < row["ssim"] <= 1 and "holdout_psnr" in row
    lit = json.loads((repo / "metrics/superres/literal.json").read_text())
    positions = 3 * 16 * 16                                     # three 32 px images, halved
    assert lit["train_samples"] == round(0.7 * positions) * 4   # one literal sample per high-res pixel
    assert lit["parameters"] == 10499 and math.isfinite(lit["test_loss"])
    history = (repo / "plots/superres/subpixel.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_loss,val_loss") and len(history) == 3
    assert "metrics/superres/literal.json" in dvc(repo, "metrics", "show")
    assert "up to date" in dvc(repo, "status", *TARGETS)


def test_rerunning_a_stage_reproduces_its_outputs_bit_for_bit(repo, first_repro):
    before = (repo / "dvc.lock").read_text()
    old = yaml.safe_load(before)["stages"]["superres_train@subpixel"]
    kept = {o["path"]: (repo / o["path"]).read_bytes() for o in old["outs"]}
    try:
        out = dvc(repo, "repro", "--force", "--single-item", "superres_train@subpixel")
        assert ran(out) == {"superres_train@subpixel"}
        lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["superres_train@subpixel"]
        model = lambda stage: [o for o in stage["outs"] if o["path"].endswith(".pt")][0]["md5"]  # noqa: E731
        assert model(lock) == model(old)
        assert "superres_evaluate" not in stale(repo, *TARGETS)
    finally:        # the repository as it was (its new timings would make the report out of date for the tests after)
        for path, data in kept.items():
            (repo / path).write_bytes(data)
        (repo / "dvc.lock").write_text(before)
    assert stale(repo, *TARGETS) == set()


def test_repro_records_each_stage_run_in_the_sqlite_store(repo, first_repro, tmp_path):
    client, runs = mlflow_runs(repo, "superres")
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {s for s in SUPERRES if "train" in s or "evaluate" in s}
    head = sh(repo, "git", "rev-parse", "HEAD").strip()
    for r in runs:
        assert r.info.status == "FINISHED" and r.data.tags["git.revision"] == head
        assert r.data.tags["dvc.stage"] == r.info.run_name
    lit = by_name["superres_train@literal"]
    assert [m.step for m in client.get_metric_history(lit.info.run_id, "loss/val")] == [1, 2]
    assert lit.data.params["hidden"] == "[64, 128]" and "test_loss" in lit.data.metrics
    ev = by_name["superres_evaluate"]
    assert "x2.subpixel.psnr" in ev.data.metrics
    arts = {a.path for a in client.list_artifacts(ev.info.run_id)}
    assert "grid_x2_holdout.png" in arts and "psnr.png" in arts
    logged = Path(client.download_artifacts(ev.info.run_id, "psnr.png", str(tmp_path)))
    assert logged.read_bytes() == (repo / "figures/superres/psnr.png").read_bytes()    # the file, not a redraw


def test_repro_renders_the_report(repo, first_repro):
    html = (repo / "reports/superres.html").read_text()
    assert "super-resolution with a multi-layer perceptron" in html
    assert "Scale: smoke" in html and "x2 twice" in html and "subpixel4x" in html
    assert "Traceback" not in html and "Error" not in html.split("</style>")[-1]
    nb = json.loads((repo / "reports/superres.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"] == {"scale": "smoke", "root": "."}
    assert html.count("data:image/png;base64") >= 5


def test_theory_checks_hold_and_render(repo, first_repro):
    checks = json.loads((repo / "metrics/theory/checks.json").read_text())
    for key in ("cnn_parameters_agree_with_seed", "dilation_formulas_hold", "gmp_gradients_agree_with_seed",
                "momentum_agrees_with_seed", "momentum_torch_equals_hand", "hat_kinks_only_at_knots"):
        assert checks[key] is True, key
    assert checks["symmetry_constant_spread"] < 1e-6 and checks["conv1d_closed_form_max_error"] < 1e-12
    _, runs = mlflow_runs(repo, "theory")
    assert [r.info.run_name for r in runs] == ["theory_compute"]
    assert runs[0].data.metrics["momentum_agrees_with_seed"] == 1.0
    html = (repo / "reports/theory.html").read_text()
    assert "checked by computation" in html and "Scale: smoke" in html and "Traceback" not in html
    assert html.count("agrees ✔") >= 6 and html.count("data:image/png;base64") >= 4


def test_separable_trains_and_answers_the_zero_loss_question(repo, first_repro):
    train = json.loads((repo / "metrics/separable/train.json").read_text())
    assert train["parameters"] == 42 and math.isfinite(train["final_train_loss"])
    zero = json.loads((repo / "metrics/separable/zero_loss.json").read_text())
    assert zero["four_points"]["loss_float32"] == 0.0 and zero["four_points"]["loss_float64"] > 0
    assert len((repo / "plots/separable/history.csv").read_text().splitlines()) == 1 + 5   # smoke: 5 epochs
    _, runs = mlflow_runs(repo, "separable")
    assert [r.info.run_name for r in runs] == ["separable_train"]
    html = (repo / "reports/separable.html").read_text()
    assert "Can the loss be exactly zero?" in html and "Traceback" not in html


def test_the_scorecard_shows_what_ran_and_what_the_rest_needs(repo, first_repro):
    out = sh(repo, sys.executable, "-m", "stages.scorecard", "build")      # what `make repro` runs when stages fail
    assert "done: separable, superres, theory" in out
    table = json.loads((repo / "reports/scorecard.json").read_text())
    status = {e["name"]: e["status"] for e in table["experiments"]}
    assert status == {"separable": "done", "batch_size": "not run", "superres": "done", "theory": "done",
                      "emnist": "not run", "fer": "not run", "distill": "not run", "autoencoder": "not run",
                      "colourize": "not run"}
    lines = {e["name"]: e["line"] for e in table["experiments"]}
    assert lines["colourize"].startswith("not run — needs CIFAR-10") and "FER-2013" in lines["fer"]
    rows = [r for r in table["rows"] if r["experiment"] in ("separable", "superres", "theory")]
    verdicts = {r["verdict"] for r in rows}
    assert "not run" not in verdicts and "matched" in verdicts          # theory's exact answers hold at any scale
    assert {r["verdict"] for r in rows if r["values"]["kind"] == "ours"} == {"not comparable"}    # smoke: trained
    momentum = [r for r in rows if r["item"].startswith("momentum SGD")]
    assert [r["ours"] for r in momentum] == ["4.04", "2.04", "-4.04", "4.04"]
    html = (repo / "reports/index.html").read_text()
    _, runs = mlflow_runs(repo, "superres")
    assert '<a href="superres.html">report</a>' in html and f"#/experiments/{runs[0].info.experiment_id}" in html
    assert "scale: smoke" in html and "<script" not in html
    counts = json.loads((repo / "metrics/scorecard.json").read_text())
    assert counts["experiments_done"] == 3 and counts["rows_not_run"] == sum(
        1 for r in table["rows"] if r["experiment"] not in ("separable", "superres", "theory"))


def test_every_declared_plot_of_these_experiments_draws_its_data(repo, first_repro):
    shown, _ = json.JSONDecoder().raw_decode(dvc(repo, "plots", "show", "--json"))   # stderr's note follows
    mine = ("superres", "separable")
    assert [e for e in shown.get("errors") or [] if any(m in str(e) for m in mine)] == []
    plots = {k: v for k, v in shown["data"].items() if k.split(":")[0].split(" ")[0] in mine}
    assert len(plots) == 4 and all(plots.values())
    psnr = plots["superres 2×: PSNR on the held-out photographs (interpolations, then the MLPs)"][0]["content"]
    bars = psnr["data"]["values"]
    assert [b["method"] for b in bars] == ["nearest", "bilinear", "bicubic", "literal", "refine", "subpixel"]
    assert psnr["encoding"]["x"]["title"] == "PSNR (dB), higher is better" and psnr["encoding"]["x"]["scale"]["zero"]
    curves = plots["superres: MSE per epoch (training and validation)"][0]["content"]
    assert curves["encoding"]["color"]["field"] == "series" and curves["encoding"]["y"]["scale"]["type"] == "log"
    assert {(d["filename"], d["field"]) for d in curves["data"]["values"]} == {
        (f"{v}.csv", k) for v in ("literal", "subpixel", "subpixel4x", "refine") for k in ("train_loss", "val_loss")}


def test_dvc_plots_show_and_diff_write_a_page_that_draws_with_no_network(repo, first_repro):
    """The page is the project's template (what `make env` installs): Vega, Vega-Lite and
    Vega-Embed inlined, nothing fetched; every chart with data draws its marks with the very
    Vega-Lite version inlined (vl-convert's engine, no network)."""
    import re

    import vl_convert as vlc

    from pipeline.plots_page import page, vega_lite_version

    assert "draws offline" in sh(repo, sys.executable, "-m", "pipeline.plots_page")
    assert "html_template = plots_page.html" in (repo / ".dvc/config.local").read_text()
    for args in (("plots", "show"), ("plots", "diff", "HEAD")):
        dvc(repo, *args)
        html = (repo / "dvc_plots/index.html").read_text()
        outside = re.sub(r"<script>.*?</script>", "", html, count=1, flags=re.S)
        assert "<title>dvc plots</title>" in html and "window.vegaEmbed=" in html, args
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", outside), args     # nothing from a network
        assert html.count("<script") == outside.count("<script") + 1          # the bundle: one inline element
    specs = [json.loads(s) for s in re.findall(r"var spec = (\{.*?\});\s*vegaEmbed", html, re.S)]
    drawn = {}
    for spec in filter(None, specs):                 # DVC writes {} for a plot whose data is not here
        svg = vlc.vegalite_to_svg(spec, vl_version=vega_lite_version(vlc.get_vegalite_versions()))
        drawn[spec["title"]["text"] if isinstance(spec["title"], dict) else spec["title"]] = svg
    declared = [next(iter(d)) for d in yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]]
    assert sorted(drawn) == sorted(t for t in declared if t.startswith(("superres", "separable")))
    bars = drawn["superres 2×: PSNR on the held-out photographs (interpolations, then the MLPs)"]
    assert bars.count('aria-roledescription="bar"') == 6
    curves = drawn["superres: MSE per epoch (training and validation)"]
    assert curves.count('aria-roledescription="line mark"') == 8          # 4 models × train, validation
    assert page().count("{plot_divs}") == 1


def test_every_training_stage_reports_its_peak_memory(repo, first_repro):
    files = [f"metrics/superres/{v}.json" for v in ("literal", "subpixel", "subpixel4x", "refine")]
    for path in files + ["metrics/separable/train.json"]:
        peak = json.loads((repo / path).read_text())["peak_memory_mb"]
        assert 100 < peak < 20_000, path          # a CPU run: the process's peak resident set, torch included


EDITS = {
    # one experiment's file: that experiment's stages that import it, no other
    "pipeline/separable/figures.py": {"separable_train"},
    "pipeline/superres/models.py": {"superres_train@literal", "superres_train@subpixel", "superres_train@subpixel4x",
                                    "superres_train@refine", "superres_evaluate", "superres_report"},
    # the shared engine: every training stage, across experiments, and nothing else
    "pipeline/core/engine.py": {"superres_train@literal", "superres_train@subpixel", "superres_train@subpixel4x",
                                "superres_train@refine", "separable_train"},
}


def test_editing_code_makes_exactly_the_stages_that_import_it_out_of_date(repo, first_repro):
    if stale(repo, *TARGETS):                   # up to date again after the tests before this one
        dvc(repo, "repro", *TARGETS)
    assert stale(repo, *TARGETS) == set()
    for edited, reached in EDITS.items():
        path = repo / edited
        original = path.read_bytes()
        path.write_bytes(original + b"\n# an edit\n")
        try:
            assert stale(repo, *TARGETS) == reached, edited
        finally:
            path.write_bytes(original)
        assert stale_for_edit(ROOT, edited) & set(CORE) == reached      # what dvc.yaml's deps promise
    assert stale(repo, *TARGETS) == set()


def test_changing_one_param_reruns_only_what_it_reaches(repo, first_repro):
    out = dvc(repo, "exp", "run", *TARGETS, "-S", "superres.variants.literal.hidden=[32,64]")
    assert ran(out) == {"superres_train@literal", "superres_evaluate", "superres_report"}
    lit = json.loads((repo / "metrics/superres/literal.json").read_text())
    assert lit["parameters"] == 27 * 32 + 32 + 32 * 64 + 64 + 64 * 3 + 3
    _, runs = mlflow_runs(repo, "superres")
    tagged = [r for r in runs if r.data.tags.get("dvc.exp_name")]
    assert {r.info.run_name for r in tagged} == {"superres_train@literal", "superres_evaluate"}
