"""End to end, part 2: the downloaded datasets. MNIST-format IDX files made from scikit-learn's
digits, an EMNIST `gzip.zip` in NIST's layout and a FER-2013 `fer2013.csv` are served from a
loopback HTTP server (`mnist.source`, `emnist.source`, `fer.source`); their checksums reach the download layer through
DLREPRO_CHECKSUMS, as the official ones cannot match fixture files. The real `dvc repro` runs the
MNIST-family and EMNIST stages on a copy of this repo at `scale: smoke`.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys

import pytest
import torch

from pipeline.data.download import CHECKSUMS_ENV
from pipeline.data.mnist import FILES
from pipeline.fer.data import CLASSES
from tests.conftest import LoopbackServer
from tests.e2e import DATA, REPORTS, dvc, mlflow_runs, ran, repo_fixtures, sh, stale
from tests.fixtures import digit_images, fer_faces, write_emnist_zip, write_fer_csv, write_mnist_files

pytestmark = pytest.mark.e2e          # the end-to-end tier: `pytest -m 'not e2e'` leaves it out

FER_SHA256: list[str] = []


@pytest.fixture(scope="module")
def data_server(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    write_mnist_files(www / "mnist")                          # the official URL paths
    images, labels = digit_images()
    write_emnist_zip(www / "cs_links/EMNIST/gzip.zip", images[:400], labels[:400], n_train=300)
    faces, expressions = fer_faces(70)
    write_fer_csv(www / "fer/fer2013.csv", faces, expressions, ["Training"] * 42 + ["PublicTest"] * 14 + ["PrivateTest"] * 14)
    served = [www / "mnist" / f for f in FILES] + [www / "cs_links/EMNIST/gzip.zip"]
    table = www.parent / "fixture-checksums.json"
    table.write_text(json.dumps({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in served}))
    FER_SHA256[:] = [hashlib.sha256((www / "fer/fer2013.csv").read_bytes()).hexdigest()]
    server = LoopbackServer(www)
    server.root = www
    server.env = {CHECKSUMS_ENV: str(table)}
    yield server
    server.close()


def _smoke_data(url: str):
    def edit(params: dict) -> None:
        params["mnist"]["source"] = params["emnist"]["source"] = url
        params["fer"]["source"] = f"{url}/fer/fer2013.csv"       # no official URL: a user's own, with its digest
        params["fer"]["sha256"] = FER_SHA256[0]
        params["emnist"]["cnn"]["channels"] = [8, 16, 32]       # 20,198 parameters: a CPU trains it in seconds
        params["emnist"]["mlp"]["hidden"] = [24]                 # 20,390: within ±10 %
        params["fer"]["model"].update(channels=[8, 16, 32, 64], hidden=32)      # 92,399 parameters
        params["fer"]["inspect"]["image"] = 3
    return edit


repo, first_repro = repo_fixtures("e2e-data", REPORTS["data"], "data_server", _smoke_data)


def test_repro_runs_every_data_stage(repo, first_repro):
    assert ran(first_repro) == set(DATA)
    assert "up to date" in dvc(repo, "status", *REPORTS["data"])


def test_mnist_is_downloaded_through_the_download_layer_and_prepared_once(repo, first_repro, data_server):
    assert sorted(path for path, _ in data_server.requests) == sorted(
        [f"/mnist/{f}" for f in FILES] + ["/cs_links/EMNIST/gzip.zip", "/fer/fer2013.csv"])
    assert "replaces the official checksum" in first_repro
    data = torch.load(repo / "data/prepared/mnist.pt")
    assert data["train_x"].dtype == torch.uint8 and data["train_x"].shape == (1297, 28, 28)
    assert data["test_y"].shape == (500,) and data["dataset"] == "mnist"
    out = dvc(repo, "repro", "--force", "--single-item", "mnist_download")
    assert ran(out) == {"mnist_download"} and len(data_server.requests) == 6   # persisted, re-verified only


def test_fer_csv_comes_through_the_download_layer_with_its_official_splits(repo, first_repro, data_server):
    assert (repo / "data/raw/fer/fer2013.csv").read_bytes() == (data_server.root / "fer/fer2013.csv").read_bytes()
    data = torch.load(repo / "data/prepared/fer.pt")
    faces, expressions = fer_faces(70)
    assert data["form"] == "fer2013" and data["train_x"].shape == (42, 48, 48)
    assert torch.equal(data["test_x"], torch.from_numpy(faces[56:]))
    assert data["val_y"].tolist() == expressions[42:56].tolist()
    out = dvc(repo, "repro", "--force", "--single-item", "fer_download")
    assert "nothing to fetch" in out
    assert [path for path, _ in data_server.requests].count("/fer/fer2013.csv") == 1    # fetched once


def test_fer_trains_inspects_reports_and_the_demo_runs_on_its_model(repo, first_repro, tmp_path):
    import cv2
    from skimage import data as skdata

    m = json.loads((repo / "metrics/fer/cnn.json").read_text())
    assert m["parameters"] == 92_399
    for key in ("test_accuracy", "test_accuracy_without_tta", "test_macro_precision", "test_macro_recall"):
        assert 0 <= m[key] <= 1, key
    history = [line.split(",") for line in (repo / "plots/fer/history.csv").read_text().splitlines()]
    val = [float(row[history[0].index("val_accuracy")]) for row in history[1:]]
    assert len(val) == 2 and m["best_epoch"] == val.index(max(val)) + 1 and m["val_accuracy"] == max(val)
    assert {"train_accuracy", "test_accuracy", "test_loss"} <= set(history[0])
    table = (repo / "plots/fer/confusion.csv").read_text().splitlines()
    assert table[0] == "actual,predicted" and len(table) == 1 + 14                   # the 14 PrivateTest faces
    per_class = (repo / "plots/fer/per_class.csv").read_text().splitlines()
    assert len(per_class) == 1 + 7 and sum(int(r.split(",")[1]) for r in per_class[1:]) == 14
    summary = json.loads((repo / "figures/fer/inspect/summary.json").read_text())
    assert summary["image"] == 3 and summary["label"] == "happy" and set(summary["layers"]) == {"1", "4", "8"}
    assert summary["layers"]["8"]["map_size"] == [64, 6, 6] and summary["first_layer_kernels"]["kernels"] == 8
    assert {p.name for p in (repo / "figures/fer/inspect").iterdir()} == {
        "face.png", "filters_layer1.png", "maps_layer1.png", "maps_layer4.png", "maps_layer8.png", "summary.json"}
    assert (repo / "figures/fer/data/classes.png").stat().st_size > 10_000
    _, runs = mlflow_runs(repo, "fer")
    assert [r.info.run_name for r in runs] == ["fer_train"] and "test_accuracy" in runs[0].data.metrics
    html = (repo / "reports/fer.html").read_text()
    assert "Filters and feature maps" in html and "Scale: smoke" in html and "Traceback" not in html
    assert "92,399 parameters" in html and html.count("data:image/png;base64") >= 9
    out = dvc(repo, "exp", "run", "fer_report", "-S", "fer.inspect.image=5")
    assert ran(out) == {"fer_inspect", "fer_report"}                              # nothing retrained
    images = tmp_path / "faces"
    images.mkdir()
    cv2.imwrite(str(images / "astronaut.png"), skdata.astronaut()[..., ::-1])
    shown = sh(repo, sys.executable, "-m", "stages.demo", "--input", str(images), "--output", str(tmp_path / "out"))
    assert shown.startswith("demo: 1 frames, 1 faces")
    rows = (tmp_path / "out/frames.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[9] in CLASSES


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
    assert "nothing to download" in out and len(data_server.requests) == 6


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
    _, runs = mlflow_runs(repo, "emnist")
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {"emnist_train@mlp", "emnist_train@cnn", "emnist_train@factorised"}
    assert {"accuracy/val", "accuracy/train", "loss/val"} <= set(by_name["emnist_train@cnn"].data.metrics)
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
    _, runs = mlflow_runs(repo, "batch_size")
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
    _, runs = mlflow_runs(repo, "autoencoder")
    assert {r.info.run_name for r in runs} == {"autoencoder_train", "autoencoder_classify@literal",
                                               "autoencoder_classify@logits"}

    html = (repo / "reports/autoencoder.html").read_text()
    assert "Softmax before" in html and "0.0352" in html and "Traceback" not in html
    assert html.count("data:image/png;base64") >= 7
    dvc(repo, "plots", "show", "-o", str(repo.parent / "plots_html"))
    page = (repo.parent / "plots_html" / "index.html").read_text()
    assert "autoencoder: confusion, the report's classifier (softmax twice)" in page


def test_editing_fer_code_makes_only_the_fer_stages_that_import_it_out_of_date(repo, first_repro):
    dvc(repo, "repro", *REPORTS["data"])         # up to date again after the tests before this one
    assert stale(repo, *REPORTS["data"]) == set()
    path = repo / "pipeline/fer/model.py"
    original = path.read_bytes()
    path.write_bytes(original + b"\n# an edit\n")
    try:
        assert stale(repo, *REPORTS["data"]) == {"fer_prepare", "fer_train", "fer_inspect", "fer_report"}
    finally:
        path.write_bytes(original)
    assert stale(repo, *REPORTS["data"]) == set()


def test_the_scorecard_finds_every_number_these_experiments_report(repo, first_repro):
    sh(repo, sys.executable, "-m", "stages.scorecard", "build")
    table = json.loads((repo / "reports/scorecard.json").read_text())
    mine = ("batch_size", "autoencoder", "emnist", "fer")
    status = {e["name"]: e["status"] for e in table["experiments"]}
    assert [status[n] for n in mine] == ["done", "partly run", "done", "done"]
    rows = [r for r in table["rows"] if r["experiment"] in mine]
    # every locator finds its value; only the autoencoder's epochs past smoke's two are missing
    assert [r["item"] for r in rows if r["verdict"] == "not run"] == [
        f"autoencoder training loss, epoch {e}" for e in range(3, 11)]
    assert {r["verdict"] for r in rows if r["values"]["kind"] in ("higher", "lower", "ours")} == {
        "not comparable", "not run"}
    assert all("smoke scale" in e["line"] for e in table["experiments"] if e["name"] in mine)


def test_every_training_stage_reports_its_peak_memory(repo, first_repro):
    files = [f"metrics/batch_size/{b}.json" for b in (64, 256, 1024)] + [
        "metrics/autoencoder/autoencoder.json", "metrics/autoencoder/classifier_literal.json",
        "metrics/emnist/cnn.json", "metrics/fer/cnn.json"]
    for path in files:
        assert 100 < json.loads((repo / path).read_text())["peak_memory_mb"] < 20_000, path


def test_distributed_nproc_runs_a_training_stage_under_torchrun_and_reruns_only_the_stages_that_read_it(
        repo, first_repro):
    out = dvc(repo, "exp", "run", "emnist_train@mlp", "-S", "distributed.nproc=2")
    assert ran(out) == {"emnist_train@mlp"}
    assert out.count("emnist_train@mlp: test accuracy") == 1        # rank 0 alone prints its summary
    # the big trainers read distributed.nproc; every other stage is untouched by it
    assert stale(repo, *REPORTS["data"]) == {"emnist_train@cnn", "emnist_train@factorised", "emnist_report",
                                             "fer_train"}
    _, runs = mlflow_runs(repo, "emnist")
    (run,) = [r for r in runs if r.data.tags.get("dvc.exp_name") and r.info.run_name == "emnist_train@mlp"]
    assert run.info.status == "FINISHED" and run.data.params["processes"] == "2"
    metrics = json.loads((repo / "metrics/emnist/mlp.json").read_text())
    assert metrics["parameters"] == 20_390 and 0 <= metrics["test_accuracy"] <= 1
