"""End to end: the real `dvc repro`, `dvc exp run` and `dvc queue start` on a copy of this repo.

The copy runs at `scale: smoke` (three 32 px images, two epochs), with its own
SQLite MLflow store at its root. MNIST comes from a loopback HTTP server (`mnist.source`) serving
IDX files made from scikit-learn's digits (and EMNIST's gzip.zip in NIST's layout); their checksums reach the download layer through
DLREPRO_CHECKSUMS, as the official ones cannot match fixture files.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.download import CHECKSUMS_ENV
from pipeline.mnist import FILES
from tests.conftest import ROOT, LoopbackServer
from tests.fixtures import digit_images, write_emnist_zip, write_mnist_files

SUPERRES = ("superres_features", "superres_train@literal", "superres_train@subpixel",
            "superres_train@subpixel4x", "superres_evaluate", "superres_report")
MNIST = ("mnist_download", "mnist_prepare", "batch_size_train@64", "batch_size_train@256",
         "batch_size_train@1024", "batch_size_accumulation", "batch_size_report", "autoencoder_train",
         "autoencoder_codes", "autoencoder_classify@literal", "autoencoder_classify@logits", "autoencoder_report")
EMNIST = ("emnist_download", "emnist_prepare", "emnist_train@mlp", "emnist_train@cnn", "emnist_train@factorised",
          "emnist_report")
STAGES = SUPERRES + MNIST + EMNIST + ("separable_train", "separable_report", "theory_compute", "theory_report")
EXTRA_ENV: dict[str, str] = {}


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "DLREPRO_MIRROR", "DVC_ROOT", "DVC_EXP_NAME", "DVC_STAGE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **EXTRA_ENV}


def sh(repo: Path, *args: str, timeout: int = 600) -> str:
    proc = subprocess.run(args, cwd=repo, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def dvc(repo: Path, *args: str, timeout: int = 600) -> str:
    return sh(repo, sys.executable, "-m", "dvc", *args, timeout=timeout)


def ran(output: str) -> set[str]:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


@pytest.fixture(scope="module")
def data_server(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    write_mnist_files(www / "mnist")                          # the official URL paths
    images, labels = digit_images()
    write_emnist_zip(www / "cs_links/EMNIST/gzip.zip", images[:400], labels[:400], n_train=300)
    served = [www / "mnist" / f for f in FILES] + [www / "cs_links/EMNIST/gzip.zip"]
    table = www.parent / "fixture-checksums.json"
    table.write_text(json.dumps({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in served}))
    server = LoopbackServer(www)
    EXTRA_ENV[CHECKSUMS_ENV] = str(table)
    yield server
    EXTRA_ENV.clear()
    server.close()


def _copy_repo(dest: Path, data_source: str = "") -> Path:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["scale"] = "smoke"
    params["mnist"]["source"] = params["emnist"]["source"] = data_source
    params["emnist"]["cnn"]["channels"] = [8, 16, 32]       # 20,198 parameters: a CPU trains it in seconds
    params["emnist"]["mlp"]["hidden"] = [24]                 # 20,390: within ±10 %
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "ci@example.org"],
                ["git", "config", "user.name", "ci"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        sh(dest, *cmd)
    return dest


@pytest.fixture(scope="module")
def repo(tmp_path_factory, data_server):
    return _copy_repo(tmp_path_factory.mktemp("e2e"), data_server.url)


@pytest.fixture(scope="module")
def first_repro(repo):
    return dvc(repo, "repro")


def _runs(repo: Path, experiment: str = "superres"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=500)


def test_repro_runs_every_stage_and_writes_metrics(repo, first_repro):
    assert ran(first_repro) == set(STAGES)
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
    assert "up to date" in dvc(repo, "status")


def test_rerunning_a_stage_reproduces_its_outputs_bit_for_bit(repo, first_repro):
    before = (repo / "dvc.lock").read_text()
    out = dvc(repo, "repro", "--force", "--single-item", "superres_train@subpixel")
    assert ran(out) == {"superres_train@subpixel"}
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["superres_train@subpixel"]
    old = yaml.safe_load(before)["stages"]["superres_train@subpixel"]
    model = lambda stage: [o for o in stage["outs"] if o["path"].endswith(".pt")][0]["md5"]  # noqa: E731
    assert model(lock) == model(old)
    assert "superres_evaluate" not in dvc(repo, "status")


def test_repro_records_each_stage_run_in_the_sqlite_store(repo, first_repro):
    client, runs = _runs(repo)
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {s for s in SUPERRES if "train" in s or "evaluate" in s}
    head = sh(repo, "git", "rev-parse", "HEAD").strip()
    for r in runs:
        assert r.info.status == "FINISHED" and r.data.tags["git.revision"] == head
        assert r.data.tags["dvc.stage"] == r.info.run_name
    lit = by_name["superres_train@literal"]
    assert [m.step for m in client.get_metric_history(lit.info.run_id, "val_loss")] == [1, 2]
    assert lit.data.params["hidden"] == "[64, 128]" and "test_loss" in lit.data.metrics
    ev = by_name["superres_evaluate"]
    assert "x2.subpixel.psnr" in ev.data.metrics
    arts = {a.path for a in client.list_artifacts(ev.info.run_id)}
    assert "grid_x2_holdout.png" in arts and "psnr.png" in arts


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
    assert checks["symmetry_constant_spread"] == 0.0 and checks["conv1d_closed_form_max_error"] < 1e-12
    _, runs = _runs(repo, "theory")
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
    _, runs = _runs(repo, "separable")
    assert [r.info.run_name for r in runs] == ["separable_train"]
    html = (repo / "reports/separable.html").read_text()
    assert "Can the loss be exactly zero?" in html and "Traceback" not in html


def test_mnist_is_downloaded_through_the_download_layer_and_prepared_once(repo, first_repro, data_server):
    assert sorted(path for path, _ in data_server.requests) == sorted(
        [f"/mnist/{f}" for f in FILES] + ["/cs_links/EMNIST/gzip.zip"])
    assert "replaces the official checksum" in first_repro
    data = torch.load(repo / "data/prepared/mnist.pt")
    assert data["train_x"].dtype == torch.uint8 and data["train_x"].shape == (1297, 28, 28)
    assert data["test_y"].shape == (500,) and data["dataset"] == "mnist"
    out = dvc(repo, "repro", "--force", "--single-item", "mnist_download")
    assert ran(out) == {"mnist_download"} and len(data_server.requests) == 5   # persisted, re-verified only


def test_emnist_keeps_only_byclass_and_prepares_it_upright(repo, first_repro, data_server):
    raw = sorted(p.name for p in (repo / "data/raw/emnist").iterdir())
    assert raw == sorted(["manifest.json", "emnist-byclass-mapping.txt"] + [
        f"emnist-byclass-{s}-ubyte.gz" for s in ("train-images-idx3", "train-labels-idx1", "test-images-idx3",
                                                  "test-labels-idx1")])
    assert not (repo / ".cache/downloads/emnist/gzip.zip").exists()
    data = torch.load(repo / "data/prepared/emnist.pt")
    images, labels = digit_images()
    assert torch.equal(data["train_x"], torch.from_numpy(images[:300]))     # stored transposed, read upright
    assert data["test_y"].tolist() == labels[300:400].tolist() and len(data["classes"]) == 62
    assert len(data["val_idx"]) == 30 and len(data["train_idx"]) == 270
    out = dvc(repo, "repro", "--force", "--single-item", "emnist_download")
    assert "nothing to download" in out and len(data_server.requests) == 5


def test_emnist_trains_three_models_keeps_each_best_epoch_and_reports(repo, first_repro):
    expected = {"mlp": 20_390, "cnn": 20_198, "factorised": 13_241}
    for name, params in expected.items():
        m = json.loads((repo / f"metrics/emnist/{name}.json").read_text())
        assert m["parameters"] == params
        for key in ("test_accuracy", "test_balanced_accuracy", "test_macro_precision", "test_macro_recall"):
            assert 0 <= m[key] <= 1, key
        assert m["train_samples_per_second"] > 0 and m["test_samples_per_second"] > 0
        history = [line.split(",") for line in (repo / f"plots/emnist/{name}.csv").read_text().splitlines()]
        col = history[0].index("val_accuracy")
        val = [float(row[col]) for row in history[1:]]
        assert len(val) == 2 and m["best_epoch"] == val.index(max(val)) + 1 and m["val_accuracy"] == max(val)
        ckpt = torch.load(repo / f"models/emnist/{name}.pt")
        assert ckpt["best_epoch"] == m["best_epoch"] and ckpt["model"] == name
        per_class = (repo / f"plots/emnist/{name}_per_class.csv").read_text().splitlines()
        assert per_class[0] == "class,support,precision,recall" and len(per_class) == 1 + 62
        assert sum(int(r.split(",")[1]) for r in per_class[1:]) == 100                # the 100 test images
    assert {p.name for p in (repo / "figures/emnist/data").iterdir()} == {"classes.png", "orientation.png"}
    _, runs = _runs(repo, "emnist")
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {"emnist_train@mlp", "emnist_train@cnn", "emnist_train@factorised"}
    assert "val_accuracy" in by_name["emnist_train@cnn"].data.metrics
    assert by_name["emnist_train@factorised"].data.params["train_samples"] == "270"
    shown = dvc(repo, "metrics", "show")
    assert "metrics/emnist/cnn.json" in shown and "test_accuracy" in shown
    html = (repo / "reports/emnist.html").read_text()
    assert "Factorising the convolutions" in html and "Scale: smoke" in html and "Traceback" not in html
    assert "13,241 parameters" in html and html.count("data:image/png;base64") >= 7


def test_batch_size_runs_and_the_accumulation_answer(repo, first_repro):
    for size in (64, 256, 1024):
        m = json.loads((repo / f"metrics/batch_size/{size}.json").read_text())
        assert m["steps"] == 2 * math.ceil(1024 / size) and m["parameters"] == 235_146   # smoke: 1024 images
        assert 0 <= m["test_accuracy"] <= 1
        header = (repo / f"plots/batch_size/{size}.csv").read_text().splitlines()[0].split(",")
        assert {"epoch", "step", "elapsed_seconds", "train_accuracy", "test_accuracy"} <= set(header)
    acc = json.loads((repo / "metrics/batch_size/accumulation.json").read_text())
    assert acc["micro_batches_per_step"] == 32
    assert acc["gradient"]["float64"]["relative"] < 1e-12 and acc["gradient"]["float32"]["relative"] < 1e-5
    assert acc["training"]["float64"]["relative_weight_difference"] < 1e-10
    memory = (repo / "plots/batch_size/memory.csv").read_text().splitlines()
    rows = [dict(zip(memory[0].split(","), map(float, line.split(",")))) for line in memory[1:]]
    assert [r["batch"] for r in rows] == [2, 8, 32, 128, 512]
    assert len({r["accumulated_activation_bytes"] for r in rows}) == 1
    assert rows[-1]["whole_activation_bytes"] > 200 * rows[-1]["accumulated_activation_bytes"]
    _, runs = _runs(repo, "batch_size")
    assert {r.info.run_name for r in runs} == {"batch_size_train@64", "batch_size_train@256",
                                               "batch_size_train@1024", "batch_size_accumulation"}
    nb = json.loads((repo / "reports/batch_size.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"] == {"scale": "smoke", "root": ".", "dataset": "mnist",
                                                         "sizes": [64, 256, 1024]}
    html = (repo / "reports/batch_size.html").read_text()
    assert "gradient accumulation" in html and "Scale: smoke" in html and "Traceback" not in html
    assert html.count("data:image/png;base64") >= 4


def test_autoencoder_codes_classifiers_and_report(repo, first_repro):
    m = json.loads((repo / "metrics/autoencoder/autoencoder.json").read_text())
    assert m["parameters"] == 1_032_414 and 0 < m["test_loss"] < 0.5
    codes = torch.load(repo / "data/features/autoencoder/codes.pt")
    assert codes["train_codes"].shape == (1024, 30) and codes["test_codes"].shape == (500, 30)
    for variant in ("literal", "logits"):
        c = json.loads((repo / f"metrics/autoencoder/classifier_{variant}.json").read_text())
        assert c["parameters"] == 1_095 and 0 <= c["test_accuracy"] <= 1
        table = (repo / f"plots/autoencoder/confusion_{variant}.csv").read_text().splitlines()
        assert table[0] == "actual,predicted" and len(table) == 1 + 500
        assert len((repo / f"plots/autoencoder/batch_accuracy_{variant}.csv").read_text().splitlines()) == 1 + 5
    literal = json.loads((repo / "metrics/autoencoder/classifier_literal.json").read_text())
    assert literal["test_loss"] > 1.46                          # softmax before cross-entropy: the floor
    assert {p.name for p in (repo / "figures/autoencoder/train").iterdir()} == {
        "class_histogram.png", "random_images.png", "reconstructions.png", "epoch_losses.png"}
    _, runs = _runs(repo, "autoencoder")
    assert {r.info.run_name for r in runs} == {"autoencoder_train", "autoencoder_classify@literal",
                                               "autoencoder_classify@logits"}
    html = (repo / "reports/autoencoder.html").read_text()
    assert "Softmax before" in html and "0.0352" in html and "Traceback" not in html
    assert html.count("data:image/png;base64") >= 7
    dvc(repo, "plots", "show", "-o", str(repo.parent / "plots_html"))
    assert "confusion_literal" in (repo.parent / "plots_html" / "index.html").read_text()


def test_changing_one_param_reruns_only_what_it_reaches(repo, first_repro):
    out = dvc(repo, "exp", "run", "-S", "superres.variants.literal.hidden=[32,64]")
    assert ran(out) == {"superres_train@literal", "superres_evaluate", "superres_report"}
    lit = json.loads((repo / "metrics/superres/literal.json").read_text())
    assert lit["parameters"] == 27 * 32 + 32 + 32 * 64 + 64 + 64 * 3 + 3
    _, runs = _runs(repo)
    tagged = [r for r in runs if r.data.tags.get("dvc.exp_name")]
    assert {r.info.run_name for r in tagged} == {"superres_train@literal", "superres_evaluate"}


def test_a_queued_experiment_lands_its_runs_in_the_repository_store(repo, first_repro):
    out = dvc(repo, "exp", "run", "--queue", "-S", "superres.variants.subpixel4x.hidden=[16]")
    name = out.split("Queued experiment '")[1].split("'")[0]
    dvc(repo, "queue", "start")
    deadline = time.time() + 420
    while time.time() < deadline:
        status = dvc(repo, "queue", "status")
        if name in status and not any(s in status for s in ("Queued", "Running")):
            break
        time.sleep(3)
    assert "Success" in status, status
    _, runs = _runs(repo)
    landed = {r.info.run_name for r in runs if r.data.tags.get("dvc.exp_name") == name}
    assert landed == {"superres_train@subpixel4x", "superres_evaluate"}
    assert not list((repo / ".dvc" / "tmp" / "exps").rglob("mlflow.db"))
