"""End to end, part 3: CIFAR-10 experiments. A cifar-10-python.tar.gz in the true layout (crops
of scikit-image's colour photographs, one photograph per class) is served from a loopback HTTP
server at the official URL's path (`cifar10.source`), its checksum given through
DLREPRO_CHECKSUMS. The real `dvc repro` runs distill at `scale: smoke` with
`distill.teacher.pretrained: false` (no ImageNet weights here; their download is tested in
test_distill.py) and a 2 × 1 α/τ grid, and colourize (class 7, the "horses", are crops of the
retina photograph) with one value per sweep.
"""
from __future__ import annotations

import hashlib
import json
import sys

import pytest
import torch

from pipeline.data.download import CHECKSUMS_ENV
from tests.conftest import LoopbackServer
from tests.e2e import (
    COLOURIZE,
    DISTILL,
    REPORTS,
    dvc,
    grid_stages,
    mlflow_runs,
    ran,
    repo_fixtures,
    sh,
    sweep_stages,
    would_run,
)
from tests.fixtures import cifar_images, write_cifar_archive

pytestmark = pytest.mark.e2e          # the end-to-end tier: `pytest -m 'not e2e'` leaves it out

PER_CLASS, N_TEST = 30, 60              # 300 images: 240 training (64 held out for validation), 60 test


@pytest.fixture(scope="module")
def cifar_server(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    archive = www / "~kriz" / "cifar-10-python.tar.gz"              # the official URL's path
    images, labels = cifar_images(PER_CLASS)
    write_cifar_archive(archive, images, labels, N_TEST)
    table = www.parent / "cifar-checksums.json"
    table.write_text(json.dumps({archive.name: hashlib.sha256(archive.read_bytes()).hexdigest()}))
    server = LoopbackServer(www)
    server.images, server.labels = images, labels
    server.env = {CHECKSUMS_ENV: str(table)}
    yield server
    server.close()


def _smoke_vision(url: str):
    def edit(params: dict) -> None:
        params["cifar10"]["source"] = url
        d = params["distill"]
        d["teacher"].update(pretrained=False, resize=40)        # resized 32 -> 40: the path runs, cheaply
        d["student"]["width"] = 0.25
        d["grid"].update(alpha=[0.5, 1.0], tau=[4])
        c = params["colourize"]
        c["sweep_cnn"].update(filters=[16], lr=[0.01], kernel=[5])
        c["sweep_unet"].update(filters=[8], lr=[10.0], kernel=[5])
    return edit


repo, first_repro = repo_fixtures("e2e-vision", REPORTS["vision"], "cifar_server", _smoke_vision)


def test_repro_runs_every_distill_and_colourize_stage(repo, first_repro):
    import yaml

    params = yaml.safe_load((repo / "params.yaml").read_text())
    grid, sweeps = grid_stages(params), sweep_stages(params)
    assert grid == ("distill_grid@0.5-4", "distill_grid@1.0-4") and len(sweeps) == 6
    assert ran(first_repro) == set(DISTILL + grid + COLOURIZE + sweeps)
    assert "up to date" in dvc(repo, "status", *REPORTS["vision"])


def test_cifar10_comes_through_the_download_layer_and_is_prepared_once_for_both(repo, first_repro, cifar_server):
    assert [p for p, _ in cifar_server.requests] == ["/~kriz/cifar-10-python.tar.gz"]
    data = torch.load(repo / "data/prepared/cifar10.pt")
    assert data["train_x"].shape == (240, 3, 32, 32) and data["train_x"].dtype == torch.uint8
    assert torch.equal(data["test_x"], torch.from_numpy(cifar_server.images[:N_TEST]))
    assert torch.equal(data["train_y"], torch.from_numpy(cifar_server.labels[N_TEST:]))


def test_features_logits_and_the_four_runs(repo, first_repro):
    feats = torch.load(repo / "data/features/distill/backbone.pt")
    assert feats["train"].shape == (176, 2, 2048) and feats["val"].shape == (64, 2, 2048)    # 2 views; image + mirror
    assert feats["test"].shape == (60, 2, 2048) and feats["resize"] == 40 and feats["pretrained"] is False
    logits = torch.load(repo / "data/features/distill/teacher_logits.pt")
    assert logits["logits"].shape == (176, 2, 10) and torch.equal(logits["views"][:, 0], torch.zeros(176, 3).long())
    logits_d = torch.load(repo / "data/features/distill/finetune_logits.pt")
    assert torch.equal(logits_d["views"], logits["views"]) and not torch.allclose(logits_d["logits"], logits["logits"])
    expected = {"teacher": 23_528_522, "finetune": 23_528_522}
    for name in ("teacher", "student", "scratch", "finetune", "student_d"):
        m = json.loads((repo / f"metrics/distill/{name}.json").read_text())
        for key in ("test_accuracy", "test_macro_precision", "test_macro_recall", "val_accuracy"):
            assert 0 <= m[key] <= 1, (name, key)
        assert m["inference_samples_per_second"] > 0 and m["epochs"] == 2
        if name in expected:
            assert m["parameters"] == expected[name]
        confusion = (repo / f"plots/distill/{name}_confusion.csv").read_text().splitlines()
        assert confusion[0] == "actual,predicted" and len(confusion) == 1 + N_TEST
        assert (repo / f"figures/distill/confusion_{name}.png").stat().st_size > 10_000
    assert json.loads((repo / "metrics/distill/teacher.json").read_text())["trained_parameters"] == 20_490
    student = json.loads((repo / "metrics/distill/student.json").read_text())
    grid = [json.loads((repo / f"metrics/distill/grid/alpha{a}_tau4.json").read_text()) for a in ("0.5", "1.0")]
    top = max(r["val_accuracy"] for r in grid)
    band = (top * (1 - top) / 64) ** 0.5                   # one standard error on the 64 validation images
    best = max((r for r in grid if r["val_accuracy"] >= top - band - 1e-12), key=lambda r: r["alpha"])
    assert all(r["val_samples"] == 64 for r in grid)
    assert (student["alpha"], student["tau"]) == (best["alpha"], best["tau"]) and student["grid_runs"] == 2
    student_d = json.loads((repo / "metrics/distill/student_d.json").read_text())
    assert (student_d["alpha"], student_d["tau"], student_d["teacher"]) == (student["alpha"], student["tau"], "d")
    assert all(r["epochs"] == 1 for r in grid)
    scratch = json.loads((repo / "metrics/distill/scratch.json").read_text())
    assert scratch["alpha"] == 1.0 and scratch["parameters"] == student["parameters"]
    _, runs = mlflow_runs(repo, "distill")
    assert sorted(r.info.run_name for r in runs) == sorted(
        ["distill_teacher", "distill_student", "distill_scratch", "distill_finetune", "distill_student_d",
         "distill_grid@0.5-4", "distill_grid@1.0-4"])


def test_report_says_first_that_the_teacher_was_not_pretrained(repo, first_repro):
    nb = json.loads((repo / "reports/distill.ipynb").read_text())
    assert "".join(nb["cells"][0]["source"]).startswith("> **Made without pretrained weights**")
    html = (repo / "reports/distill.html").read_text()
    assert "Traceback" not in html and "Why τ² multiplies the soft term" in html
    assert html.count("data:image/png;base64") >= 7            # curves, heat map, five confusion matrices
    assert "(e) MobileNetV2, distilled from (d)" in html and "Chosen: <strong>α = " in html


def test_a_change_reaches_the_stages_that_read_it(repo, first_repro):
    import yaml

    original = (repo / "params.yaml").read_text()

    def changed(section: str, key: str, value) -> set[str]:
        params = yaml.safe_load(original)
        params["distill"][section][key] = value
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        try:
            return would_run(repo, *REPORTS["vision"])
        finally:
            (repo / "params.yaml").write_text(original)

    # the stages whose own params a change reaches (a dry run does not follow changed outputs further)
    assert changed("finetune", "backbone_lr", 0.5) == {"distill_finetune"}
    assert changed("head", "lr", 0.01) == {"distill_teacher"}
    assert changed("teacher", "resize", 48) == {"distill_features", "distill_logits", "distill_finetune"}
    assert changed("views", "count", 3) == {"distill_logits", "distill_grid@0.5-4", "distill_grid@1.0-4",
                                            "distill_student", "distill_scratch", "distill_finetune",
                                            "distill_logits_d", "distill_student_d"}
    assert changed("head", "views", 3) == {"distill_features", "distill_teacher"}
    assert changed("grid", "margin", 2.0) == {"distill_student", "distill_student_d", "distill_report"}


def test_colourize_palette_targets_headline_runs_and_sweeps(repo, first_repro, cifar_server):
    import yaml

    from pipeline.colourize import model as col
    from pipeline.colourize.config import ColourizeConfig
    from pipeline.core.params import parse

    horses = torch.load(repo / "data/features/colourize/horses.pt")
    labels = torch.from_numpy(cifar_server.labels)
    assert len(horses["train_x"]) == int((labels[N_TEST:] == col.HORSE).sum())
    assert len(horses["val_x"]) == int((labels[:N_TEST] == col.HORSE).sum())        # CIFAR-10's test horses
    assert horses["palette"].shape == (24, 3) and horses["train_y"].dtype == torch.uint8
    assert torch.equal(horses["val_y"], col.nearest_colour(horses["val_x"], horses["palette"]))
    for model in col.MODELS:
        m = json.loads((repo / f"metrics/colourize/{model}.json").read_text())
        run = parse(ColourizeConfig, yaml.safe_load((repo / "params.yaml").read_text())["colourize"], key="colourize")
        assert m["parameters"] == sum(p.numel() for p in col.build(model, run.run(model)).parameters())
        assert 0 <= m["val_accuracy"] <= 1 and m["train_seconds"] > 0 and m["epochs"] == 2
        curve = [float(line.split(",")[header.index("val_accuracy")]) for header in
                 [(repo / f"plots/colourize/{model}.csv").read_text().splitlines()[0].split(",")]
                 for line in (repo / f"plots/colourize/{model}.csv").read_text().splitlines()[1:]]
        assert m["val_accuracy"] == pytest.approx(curve[-1]) and m["best_val_accuracy"] == pytest.approx(max(curve))
        assert m["best_epoch"] == 1 + curve.index(max(curve))
        assert m["schedule"] == ("cosine" if model == "residual" else "constant")
        assert torch.load(repo / f"models/colourize/{model}.pt")["epoch"] == m["best_epoch"]
        assert (repo / f"figures/colourize/{model}.png").stat().st_size > 5_000
    swept = {p.stem: json.loads(p.read_text()) for p in (repo / "metrics/colourize/sweeps").glob("*.json")}
    assert set(swept) == {"cnn_filters_16", "cnn_lr_0.01", "cnn_kernel_5", "unet_filters_8", "unet_lr_10.0",
                          "unet_kernel_5"}
    assert swept["cnn_filters_16"]["parameters"] == sum(
        p.numel() for p in col.build("cnn", col.Run(filters=16)).parameters())
    assert swept["cnn_kernel_5"]["kernel"] == 5 and swept["unet_lr_10.0"]["lr"] == 10.0
    html = (repo / "reports/colourize.html").read_text()
    assert "Traceback" not in html and "Why skip and residual connections help" in html and "Scale: smoke" in html
    _, runs = mlflow_runs(repo, "colourize")
    assert len(runs) == 3 + 6


def test_a_new_sweep_value_adds_one_stage_and_reruns_no_other_training(repo, first_repro):
    import yaml

    original = (repo / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["colourize"]["sweep_cnn"]["filters"] = [16, 24]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        assert would_run(repo, *REPORTS["vision"]) == {"colourize_sweep_cnn_filters@24",
                                                                        "colourize_report"}

    finally:
        (repo / "params.yaml").write_text(original)


def test_dvc_plots_of_both_experiments_load(repo, first_repro):
    shown, _ = json.JSONDecoder().raw_decode(dvc(repo, "plots", "show", "--json"))   # stderr's note follows
    mine = ("distill", "colourize")
    errors = [e for e in shown.get("errors") or [] if any(m in str(e) for m in mine)]
    assert errors == []
    drawn = {k for k, v in shown["data"].items() if k.split(":")[0] in mine and v}
    assert {k for k in shown["data"] if k.split(":")[0] in mine} == drawn      # every declared plot has data
    assert {"distill: validation accuracy per epoch, the four runs",
            "colourize: validation pixel accuracy per epoch"} <= drawn
    assert not (repo / "plots/colourize/sweeps").exists()          # sweep curves live in MLflow only


def test_the_scorecard_finds_every_number_these_experiments_report(repo, first_repro):
    sh(repo, sys.executable, "-m", "stages.scorecard", "build")
    table = json.loads((repo / "reports/scorecard.json").read_text())
    status = {e["name"]: e["status"] for e in table["experiments"]}
    assert status["distill"] == "done" and status["colourize"] == "partly run"     # one value per sweep here
    rows = [r for r in table["rows"] if r["experiment"] in ("distill", "colourize")]
    found = {r["item"] for r in rows if r["verdict"] != "not run"}
    assert {r["item"] for r in rows if r["experiment"] == "distill"} <= found
    # of this repo's six sweep runs, three are at values the seed printed: cnn filters 16, cnn lr 0.01, unet lr 10
    assert {"base CNN sweep, filters 16: validation accuracy", "base CNN sweep, learning rate 0.01: validation accuracy",
            "U-Net sweep, learning rate 10: validation accuracy"} <= found
    headline = [r for r in rows if r["item"].endswith(("validation accuracy", "validation loss", "training time"))
                and "sweep" not in r["item"]]
    assert len(headline) == 9 and all(r["verdict"] == "not comparable" for r in headline)


def test_every_training_stage_reports_its_peak_memory(repo, first_repro):
    files = [f"metrics/distill/{n}.json" for n in ("teacher", "student", "scratch", "finetune")] + [
        f"metrics/colourize/{m}.json" for m in ("cnn", "unet", "residual")]
    for path in files:
        assert 100 < json.loads((repo / path).read_text())["peak_memory_mb"] < 20_000, path
