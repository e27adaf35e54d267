"""FER-2013's data forms: the three CSVs, the image folders, imports from a source, clear errors."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import yaml

from pipeline.core.errors import DataError
from pipeline.fer import data as fer
from tests.conftest import ROOT
from tests.fixtures import fer_faces, write_fer_csv, write_fer_folders

USAGE = ["Training"] * 14 + ["PublicTest"] * 7 + ["PrivateTest"] * 7


@pytest.mark.parametrize("style,name", [("fer2013", "fer2013.csv"), ("icml", "icml_face_data.csv")])
def test_csv_forms_keep_the_official_splits(tmp_path, style, name):
    images, labels = fer_faces(28)
    write_fer_csv(tmp_path / "raw" / name, images, labels, USAGE, style)
    form = fer.find_form(tmp_path / "raw")
    assert form.kind == ("fer2013" if style == "fer2013" else "icml") and form.path.name == name
    data = fer.prepare(form, 0.1, 0.1, seed=0)
    assert data["train_x"].shape == (14, 48, 48) and data["train_x"].dtype == torch.uint8
    assert torch.equal(data["train_x"], torch.from_numpy(images[:14]))
    assert torch.equal(data["val_x"], torch.from_numpy(images[14:21]))
    assert data["test_y"].tolist() == labels[21:].tolist()
    assert data["origin"] == {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
    assert data["classes"] == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def test_challenge_train_csv_with_unlabelled_test_holds_out_seeded_splits(tmp_path):
    images, labels = fer_faces(40)
    write_fer_csv(tmp_path / "fer2013" / "train.csv", images, labels, None, "train")
    write_fer_csv(tmp_path / "fer2013" / "test.csv", images[:5], labels[:5], None, "test_unlabelled")
    form = fer.find_form(tmp_path)
    assert form.kind == "kaggle_train"
    a, b = (fer.prepare(form, 0.1, 0.2, seed=3) for _ in range(2))
    assert (len(a["train_y"]), len(a["val_y"]), len(a["test_y"])) == (28, 4, 8)
    assert torch.equal(a["test_x"], b["test_x"])                     # seeded
    seen = torch.cat([a["train_x"], a["val_x"], a["test_x"]]).flatten(1)
    assert len(torch.unique(seen, dim=0)) == 40                      # disjoint, nothing lost
    assert a["origin"]["test"] == "seeded 20% of train.csv"


def test_image_folders_in_any_case_colour_or_size(tmp_path):
    from skimage import io as skio

    images, labels = fer_faces(21)
    write_fer_folders(tmp_path / "fer", {"train": (images[:14], labels[:14]), "test": (images[14:], labels[14:])})
    rgb = np.repeat(images[0][..., None], 3, axis=2)
    big = np.kron(images[1], np.ones((2, 2), dtype=np.uint8))       # 96×96
    (tmp_path / "fer/train/Happy").mkdir()
    skio.imsave(tmp_path / "fer/train/Happy/rgb.png", rgb, check_contrast=False)
    skio.imsave(tmp_path / "fer/train/Happy/big.png", big, check_contrast=False)
    form = fer.find_form(tmp_path)
    assert form.kind == "folders" and form.path == tmp_path / "fer"
    data = fer.prepare(form, 0.25, 0.1, seed=0)
    assert len(data["train_y"]) + len(data["val_y"]) == 16 and len(data["test_y"]) == 7
    assert data["origin"]["test"] == "test/ folder" and data["origin"]["val"] == "seeded 25% of train/ folder"
    test_sorted = sorted(map(tuple, data["test_x"].flatten(1).tolist()))
    assert test_sorted == sorted(map(tuple, images[14:].reshape(7, -1).tolist()))
    happy = torch.cat([data["train_x"], data["val_x"]])[torch.cat([data["train_y"], data["val_y"]]) == 3]
    assert any(torch.equal(h, torch.from_numpy(images[0])) for h in happy)            # grey again, exactly
    # the 96×96 copy, resized with anti-aliasing (which smooths the noise a little): close, not equal
    diffs = [float((h.int() - torch.from_numpy(images[1]).int()).abs().float().mean()) for h in happy]
    assert min(diffs) < 6 and sorted(diffs)[1] > 15


def test_bad_inputs_name_the_problem(tmp_path):
    images, labels = fer_faces(7)
    write_fer_csv(tmp_path / "a/fer2013.csv", images, labels, ["Training"] * 6 + ["Validation"], "fer2013")
    with pytest.raises(DataError, match=r"fer2013.csv:8: Usage 'Validation' is not one of"):
        fer.read_csv(tmp_path / "a/fer2013.csv")
    text = (tmp_path / "a/fer2013.csv").read_text().splitlines()
    (tmp_path / "b").mkdir()
    short = '1,"' + " ".join(["7"] * 100) + '",Training'
    (tmp_path / "b/fer2013.csv").write_text("\n".join(text[:2] + [short]) + "\n")
    with pytest.raises(DataError, match=r"fer2013.csv:3: expected 2304 pixel values 0..255, got 100"):
        fer.read_csv(tmp_path / "b/fer2013.csv")
    (tmp_path / "b/fer2013.csv").write_text("\n".join(text[:2] + [text[2][:200]]) + "\n")
    with pytest.raises(DataError, match=r"fer2013.csv:3: 2 columns where the header has 3; the file is truncated"):
        fer.read_csv(tmp_path / "b/fer2013.csv")
    (tmp_path / "c/train/smiling").mkdir(parents=True)
    (tmp_path / "c/test").mkdir()
    with pytest.raises(DataError, match="smiling: not a FER-2013 class folder; expected one of angry"):
        fer.prepare(fer.find_form(tmp_path / "c"), 0.1, 0.1, 0)
    with pytest.raises(DataError, match="holds none of FER-2013's forms"):
        fer.import_source(tmp_path / "c/train", tmp_path / "raw")
    assert not (tmp_path / "raw").exists() and not (tmp_path / ".raw.partial").exists()


def test_import_from_a_zip_replaces_the_raw_folder_only_when_complete(tmp_path):
    images, labels = fer_faces(28)
    write_fer_csv(tmp_path / "src/fer2013.csv", images, labels, USAGE)
    with zipfile.ZipFile(tmp_path / "fer.zip", "w") as zf:
        zf.write(tmp_path / "src/fer2013.csv", "fer2013/fer2013.csv")
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "old.txt").write_text("kept until the new copy is complete")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError):
        fer.import_source(tmp_path / "broken.zip", raw)
    assert (raw / "old.txt").exists()
    fer.import_source(tmp_path / "fer.zip", raw)
    assert fer.find_form(raw).path == raw / "fer2013/fer2013.csv" and not (raw / "old.txt").exists()


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_csv_with_the_md5_of_kaggles_file_is_reported_as_that_file(tmp_path, monkeypatch):
    images, labels = fer_faces(28)
    write_fer_csv(tmp_path / "raw/fer2013.csv", images, labels, USAGE)
    md5 = _md5(tmp_path / "raw/fer2013.csv")
    monkeypatch.setitem(fer.KAGGLE_MD5, "fer2013.csv", md5)
    assert fer.kaggle_checks(fer.find_form(tmp_path / "raw")) == [
        (True, f"fer: {tmp_path}/raw/fer2013.csv is Kaggle's fer2013.csv (md5 {md5})")]


def test_a_csv_that_differs_from_kaggles_is_one_warning_per_file(tmp_path, monkeypatch):
    images, labels = fer_faces(40)
    write_fer_csv(tmp_path / "train.csv", images, labels, None, "train")
    write_fer_csv(tmp_path / "test.csv", images[:5], labels[:5], None, "test_unlabelled")
    monkeypatch.setitem(fer.KAGGLE_MD5, "test.csv", _md5(tmp_path / "test.csv"))
    checks = fer.kaggle_checks(fer.find_form(tmp_path))
    assert checks == [
        (False, f"warning: fer: {tmp_path}/train.csv (md5 {_md5(tmp_path / 'train.csv')}) is not Kaggle's train.csv "
                "(md5 3f0dfb3d3fd99c811a1299cb947e3131); a re-export may still be fine, its rows are checked when "
                "prepared"),
        (True, f"fer: {tmp_path}/test.csv is Kaggle's test.csv (md5 {_md5(tmp_path / 'test.csv')})")]
    write_fer_folders(tmp_path / "folders", {"train": (images[:7], labels[:7]), "test": (images[7:14], labels[7:14])})
    assert fer.kaggle_checks(fer.find_form(tmp_path / "folders")) == []      # no known digest for image folders


def test_known_md5s_are_torchvisions():
    from torchvision.datasets import FER2013

    assert fer.KAGGLE_MD5 == dict(FER2013._RESOURCES.values())


def _stage(repo, *args):
    """A stage command run in `repo` (a folder with params.yaml) with this checkout's code, as the
    project's other stage tests run them."""
    env = {k: v for k, v in os.environ.items() if k not in ("DLREPRO_MIRROR", "DLREPRO_CHECKSUMS")}
    return subprocess.run([sys.executable, "-m", *args], cwd=repo, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def stage_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    return repo


def _set_source(repo, source: str, sha256: str = "") -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["fer"].update(source=source, sha256=sha256)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_download_stage_without_data_says_where_to_get_it(stage_repo):
    proc = _stage(stage_repo, "stages.fer", "download")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: fer: no FER-2013 data.")
    assert "fer2013.csv" in lines[0] and "fer.source" in lines[0] and "data/raw/fer/" in lines[0]
    assert not (stage_repo / "data/raw/fer").exists()


def test_download_stage_fetches_a_url_through_the_download_layer_and_prepares(stage_repo, loopback):
    images, labels = fer_faces(28)
    write_fer_csv(loopback.root / "fer2013.csv", images, labels, USAGE)
    digest = hashlib.sha256((loopback.root / "fer2013.csv").read_bytes()).hexdigest()
    _set_source(stage_repo, f"{loopback.url}/fer2013.csv", "0" * 64)
    bad = _stage(stage_repo, "stages.fer", "download")
    assert bad.returncode == 2 and "failed its sha256 check" in bad.stderr
    assert not (stage_repo / "data/raw/fer").exists()
    _set_source(stage_repo, f"{loopback.url}/fer2013.csv", digest)
    ok = _stage(stage_repo, "stages.fer", "download")
    assert ok.returncode == 0, ok.stderr
    assert (stage_repo / "data/raw/fer/fer2013.csv").read_bytes() == (loopback.root / "fer2013.csv").read_bytes()
    assert json.loads((stage_repo / "data/raw/fer/.source.json").read_text()) == {
        "source": f"{loopback.url}/fer2013.csv", "sha256": digest}
    requests = len(loopback.requests)
    again = _stage(stage_repo, "stages.fer", "download")
    assert "nothing to fetch" in again.stdout and len(loopback.requests) == requests
    prep = _stage(stage_repo, "stages.fer", "prepare")
    assert prep.returncode == 0, prep.stderr
    data = torch.load(stage_repo / "data/prepared/fer.pt")
    assert data["form"] == "fer2013" and torch.equal(data["test_x"], torch.from_numpy(images[21:]))


def test_download_stage_warns_once_about_a_file_placed_by_hand_that_is_not_kaggles(stage_repo):
    images, labels = fer_faces(28)
    placed = stage_repo / "data/raw/fer/fer2013.csv"
    write_fer_csv(placed, images, labels, USAGE)
    proc = _stage(stage_repo, "stages.fer", "download")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"warning: fer: data/raw/fer/fer2013.csv (md5 {_md5(placed)}) is not Kaggle's fer2013.csv "
        "(md5 f8428a1edbd21e88f42c73edd2a14f95); a re-export may still be fine, its rows are checked when prepared"]
    assert proc.stdout.splitlines() == [
        "fer_download: fer2013 form found at data/raw/fer/fer2013.csv; nothing to fetch"]
