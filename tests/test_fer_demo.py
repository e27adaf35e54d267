"""The FER live demo on a generated video and an image folder: faces found by OpenCV's cascade,
an annotated video with every frame, one CSV row per face (or per empty frame), clear messages,
nothing half-written."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from pipeline.core.errors import DataError, ParamError
from pipeline.fer import data as fer
from pipeline.fer import demo as fer_demo
from pipeline.fer import model as fm
from tests.conftest import ROOT

NET = fer.FerNet(channels=(8, 16), hidden=16)
FACE_FRAMES, BLANK_FRAMES = 6, 3


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "cnn.pt"
    fm.save(fm.FerCNN(NET), NET, path, tta=True)
    return path


def astronaut(size: int = 320) -> np.ndarray:
    """scikit-image's astronaut photograph (one frontal face) as a BGR frame."""
    from skimage import data

    return cv2.resize(np.ascontiguousarray(data.astronaut()[..., ::-1]), (size, size))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """6 frames of the face sliding right, then 3 plain grey frames, MJPG in AVI at 10 frames/s."""
    path = tmp_path_factory.mktemp("video") / "in.avi"
    img = astronaut()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 320))
    for i in range(FACE_FRAMES):
        writer.write(np.roll(img, 3 * i, axis=1))
    for _ in range(BLANK_FRAMES):
        writer.write(np.full_like(img, 90))
    writer.release()
    return path


def read_rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_video_gives_an_annotated_video_of_every_frame_and_a_row_per_face(tmp_path, model_path, video):
    out = fer_demo.run(str(video), model_path, tmp_path / "out")
    assert out["frames"] == FACE_FRAMES + BLANK_FRAMES
    assert sorted(os.listdir(tmp_path / "out")) == ["annotated.mp4", "frames.csv"]
    assert frame_count(tmp_path / "out/annotated.mp4") == FACE_FRAMES + BLANK_FRAMES
    rows = read_rows(tmp_path / "out/frames.csv")
    faces = {int(r["frame"]): int(r["faces"]) for r in rows}
    assert sorted(faces) == list(range(FACE_FRAMES + BLANK_FRAMES))
    assert len(rows) == sum(max(n, 1) for n in faces.values()) and out["faces"] == sum(faces.values())
    assert all(faces[i] >= 1 for i in range(FACE_FRAMES)) and all(faces[i] == 0 for i in range(6, 9))
    for r in rows[:FACE_FRAMES]:
        x, y, w, h = (int(r[k]) for k in "xywh")
        assert 90 < x + w / 2 < 170 and 50 < y + h / 2 < 100            # the astronaut's face, scaled to 320
        p = np.array([float(r[f"p_{c}"]) for c in fer.CLASSES])
        assert abs(p.sum() - 1) < 1e-3 and r["expression"] == fer.CLASSES[int(p.argmax())]
        assert float(r["probability"]) == pytest.approx(p.max(), abs=1e-4)
    assert [float(rows[i]["time_s"]) for i in range(2)] == [0.0, 0.1]
    assert all(r["expression"] == "" for r in rows if r["faces"] == "0")
    first = cv2.VideoCapture(str(tmp_path / "out/annotated.mp4")).read()[1]
    assert first.shape == (320, 320, 3)
    x, y = int(rows[0]["x"]), int(rows[0]["y"])
    assert first[y + 10, x - 1:x + 2, 1].max() > 150            # the green box edge is drawn on the face


def test_image_folder_gives_one_annotated_image_each(tmp_path, model_path):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_face.png"), astronaut(256))
    cv2.imwrite(str(folder / "b_blank.jpg"), np.full((120, 200, 3), 90, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    out = fer_demo.run(str(folder), model_path, tmp_path / "out")
    assert out["frames"] == 2
    assert sorted(os.listdir(tmp_path / "out")) == ["a_face.png", "b_blank.png", "frames.csv"]
    assert cv2.imread(str(tmp_path / "out/b_blank.png")).shape == (120, 200, 3)
    rows = read_rows(tmp_path / "out/frames.csv")
    assert [r["name"] for r in rows] == ["a_face", "b_blank"] and [r["faces"] for r in rows] == ["1", "0"]


def test_a_bad_image_midway_leaves_nothing_half_written_and_keeps_earlier_output(tmp_path, model_path):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), astronaut(256))
    (folder / "b.png").write_bytes(b"\x89PNG broken")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "frames.csv").write_text("an earlier run's table\n")
    with pytest.raises(DataError, match=r"b.png: unreadable image; delete or replace it"):
        fer_demo.run(str(folder), model_path, out_dir)
    assert sorted(os.listdir(out_dir)) == ["frames.csv"]
    assert (out_dir / "frames.csv").read_text() == "an earlier run's table\n"


def test_clear_messages(tmp_path, model_path, video):
    with pytest.raises(DataError, match="no trained FER model yet; run `dvc repro fer_train` first"):
        fer_demo.run(str(video), tmp_path / "none.pt", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "clip.mp4").write_bytes(b"not a video at all")
    with pytest.raises(DataError, match=r"clip.mp4: not a readable video \(OpenCV cannot decode it\)"):
        fer_demo.run(str(tmp_path / "clip.mp4"), model_path, tmp_path / "out")
    with pytest.raises(DataError, match="camera 57: cannot be opened"):
        fer_demo.run("57", model_path, tmp_path / "out")
    with pytest.raises(DataError, match="nowhere.avi: no such file or folder"):
        fer_demo.run(str(tmp_path / "nowhere.avi"), model_path, tmp_path / "out")
    with pytest.raises(ParamError, match="--show: no display here"):
        fer_demo.run(str(video), model_path, None, show=True)


def test_command_line(tmp_path, model_path, video):
    cmd = [sys.executable, "-m", "stages.demo", "--input", str(video), "--output", str(tmp_path / "o"),
           "--model", str(model_path), "--max-frames", "4", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("demo: 4 frames, ") and frame_count(tmp_path / "o/annotated.mp4") == 4
    bad = subprocess.run(cmd[:-4] + ["--model", str(tmp_path / "missing.pt")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.pt'}: no trained FER model yet; run `dvc repro fer_train` first (or pass --model)"]
