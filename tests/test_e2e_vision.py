"""End to end, part 3: CIFAR-10 experiments. A cifar-10-python.tar.gz in the true layout (crops
of scikit-image's colour photographs, one photograph per class) is served from a loopback HTTP
server at the official URL's path (`cifar10.source`), its checksum given through
DLREPRO_CHECKSUMS. The real `dvc repro` runs distill at `scale: smoke` with
`distill.teacher.pretrained: false` (no ImageNet weights here; their download is tested in
test_distill.py) and a 2 × 1 α/τ grid.
"""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from pipeline.download import CHECKSUMS_ENV
from tests.conftest import LoopbackServer
from tests.e2e import DISTILL, REPORTS, copy_repo, grid_stages, mlflow_runs, ran
from tests.e2e import dvc as _dvc
from tests.fixtures import cifar_images, write_cifar_archive

EXTRA_ENV: dict[str, str] = {}
PER_CLASS, N_TEST = 30, 60              # 300 images: 240 training (64 held out for validation), 60 test


def dvc(repo, *args, timeout: int = 900) -> str:
    return _dvc(repo, *args, timeout=timeout, extra_env=EXTRA_ENV)


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
    EXTRA_ENV[CHECKSUMS_ENV] = str(table)
    yield server
    EXTRA_ENV.clear()
    server.close()


def _smoke_vision(url: str):
    def edit(params: dict) -> None:
        params["cifar10"]["source"] = url
        d = params["distill"]
        d["teacher"].update(pretrained=False, resize=40)        # resized 32 -> 40: the path runs, cheaply
        d["student"]["width"] = 0.25
        d["grid"].update(alpha=[0.5, 1.0], tau=[4])
    return edit


@pytest.fixture(scope="module")
def repo(tmp_path_factory, cifar_server):
    return copy_repo(tmp_path_factory.mktemp("e2e-vision"), _smoke_vision(cifar_server.url))


@pytest.fixture(scope="module")
def first_repro(repo):
    return dvc(repo, "repro", *REPORTS["vision"])


def test_repro_runs_every_distill_stage(repo, first_repro):
    import yaml

    grid = grid_stages(yaml.safe_load((repo / "params.yaml").read_text()))
    assert grid == ("distill_grid@0.5-4", "distill_grid@1.0-4")
    assert ran(first_repro) == set(DISTILL + grid)
    assert "up to date" in dvc(repo, "status", *REPORTS["vision"])


def test_cifar10_comes_through_the_download_layer_and_is_prepared_once(repo, first_repro, cifar_server):
    assert [p for p, _ in cifar_server.requests] == ["/~kriz/cifar-10-python.tar.gz"]
    data = torch.load(repo / "data/prepared/cifar10.pt")
    assert data["train_x"].shape == (240, 3, 32, 32) and data["train_x"].dtype == torch.uint8
    assert torch.equal(data["test_x"], torch.from_numpy(cifar_server.images[:N_TEST]))
    assert torch.equal(data["train_y"], torch.from_numpy(cifar_server.labels[N_TEST:]))


def test_features_logits_and_the_four_runs(repo, first_repro):
    feats = torch.load(repo / "data/features/distill/backbone.pt")
    assert feats["train"].shape == (176, 2048) and feats["val"].shape == (64, 2048)
    assert feats["test"].shape == (60, 2048) and feats["resize"] == 40 and feats["pretrained"] is False
    logits = torch.load(repo / "data/features/distill/teacher_logits.pt")
    assert logits["logits"].shape == (176, 2, 10) and torch.equal(logits["views"][:, 0], torch.zeros(176, 3).long())
    expected = {"teacher": 23_528_522, "finetune": 23_528_522}
    for name in ("teacher", "student", "scratch", "finetune"):
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
    best = max(grid, key=lambda r: r["val_accuracy"])                  # the first of equals: α 0.5
    assert (student["alpha"], student["tau"]) == (best["alpha"], best["tau"]) and student["grid_runs"] == 2
    assert all(r["epochs"] == 1 for r in grid)
    scratch = json.loads((repo / "metrics/distill/scratch.json").read_text())
    assert scratch["alpha"] == 1.0 and scratch["parameters"] == student["parameters"]
    _, runs = mlflow_runs(repo, "distill")
    assert sorted(r.info.run_name for r in runs) == sorted(
        ["distill_teacher", "distill_student", "distill_scratch", "distill_finetune", "distill_grid@0.5-4",
         "distill_grid@1.0-4"])


def test_report_says_first_that_the_teacher_was_not_pretrained(repo, first_repro):
    nb = json.loads((repo / "reports/distill.ipynb").read_text())
    assert "".join(nb["cells"][0]["source"]).startswith("> **Made without pretrained weights**")
    html = (repo / "reports/distill.html").read_text()
    assert "Traceback" not in html and "Why τ² multiplies the soft term" in html
    assert html.count("data:image/png;base64") >= 6            # curves, heat map, four confusion matrices


def test_a_change_reaches_the_stages_that_read_it(repo, first_repro):
    import yaml

    original = (repo / "params.yaml").read_text()

    def changed(section: str, key: str, value) -> set[str]:
        params = yaml.safe_load(original)
        params["distill"][section][key] = value
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        try:
            return ran(dvc(repo, "repro", "--dry", *REPORTS["vision"]))
        finally:
            (repo / "params.yaml").write_text(original)

    # the stages whose own params a change reaches (a dry run does not follow changed outputs further)
    assert changed("finetune", "backbone_lr", 0.5) == {"distill_finetune"}
    assert changed("head", "lr", 0.01) == {"distill_teacher"}
    assert changed("teacher", "resize", 48) == {"distill_features", "distill_logits", "distill_finetune"}
    assert changed("views", "count", 3) == {"distill_logits", "distill_grid@0.5-4", "distill_grid@1.0-4",
                                            "distill_student", "distill_scratch", "distill_finetune"}
