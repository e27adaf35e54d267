"""The live demo: the trained FER model on a webcam, a video file or a folder of images.

Each frame: OpenCV's bundled Haar cascade finds the faces (frontal, at least `min_face` pixels),
each face is cut out, turned grey and resized to 48×48 as FER-2013's faces are, all faces of the
frame go through the network as one batch, and the frame gets a box and `label probability` per
face. Output: an annotated video (`annotated.mp4`, or one annotated PNG per input image) and
`frames.csv` with a row per face (a frame without faces gets one row with `faces` 0), written
under temporary names and renamed when the run ends — Ctrl-C on a camera ends the run normally.
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from pipeline.core.errors import DataError, ParamError
from pipeline.fer.data import IMAGE_SUFFIXES, SIZE

CASCADE = "haarcascade_frontalface_default.xml"
VIDEO_NAME, CSV_NAME = "annotated.mp4", "frames.csv"
NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def _cv2():
    import cv2

    return cv2


class FaceDetector:
    def __init__(self, min_face: int = 48, scale_factor: float = 1.1, neighbours: int = 8):
        # 8 neighbouring detections (OpenCV suggests 3-6) trades a few missed faces for far fewer
        # false boxes on textured backgrounds
        cv2 = _cv2()
        path = Path(cv2.data.haarcascades) / CASCADE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise DataError(f"{path}: OpenCV's face cascade could not be loaded; reinstall the environment (make env)")
        self.min_face, self.scale_factor, self.neighbours = min_face, scale_factor, neighbours

    def __call__(self, grey: np.ndarray) -> np.ndarray:
        """(K, 4) boxes x, y, w, h, left to right."""
        boxes = self.cascade.detectMultiScale(grey, scaleFactor=self.scale_factor, minNeighbors=self.neighbours,
                                              minSize=(self.min_face, self.min_face))
        boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        return boxes[np.argsort(boxes[:, 0], kind="stable")]


def to_grey(frame: np.ndarray) -> np.ndarray:
    """A BGR uint8 frame as one grey channel (OpenCV's weights, as the detector expects)."""
    cv2 = _cv2()
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def face_crops(grey: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(K, 48, 48) uint8: each box cut from the grey frame and resized (area averaging)."""
    cv2 = _cv2()
    out = [cv2.resize(grey[y:y + h, x:x + w], (SIZE, SIZE), interpolation=cv2.INTER_AREA) for x, y, w, h in boxes]
    return np.stack(out) if out else np.zeros((0, SIZE, SIZE), np.uint8)


def draw(frame: np.ndarray, boxes: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """A copy of the BGR frame with a box and 'label 87%' over each face."""
    cv2 = _cv2()
    out = frame.copy()
    for (x, y, w, h), p in zip(boxes, probs):
        k = int(p.argmax())
        colour = (60, 200, 60)
        cv2.rectangle(out, (int(x), int(y)), (int(x + w), int(y + h)), colour, 2)
        text = f"{classes[k]} {100 * p[k]:.0f}%"
        scale = max(0.4, w / 160)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(int(y) - th - base - 4, 0)
        cv2.rectangle(out, (int(x), top), (int(x) + tw + 4, top + th + base + 4), colour, -1)
        cv2.putText(out, text, (int(x) + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


@dataclass
class Frame:
    index: int
    seconds: float
    image: np.ndarray          # BGR uint8
    name: str                  # the image file's stem, or frame number


class Source:
    """Frames from a camera (`0`, `1`, ...), a video file, one image or a folder of images."""

    def __init__(self, spec: str):
        cv2 = _cv2()
        self.spec, self.capture, self.files = spec, None, None
        path = Path(spec)
        if spec.isdigit():
            self.kind = "camera"
            self.capture = cv2.VideoCapture(int(spec))
            if not self.capture.isOpened():
                raise DataError(f"camera {spec}: cannot be opened (none attached, or in use by another program); "
                                "pass a video file or a folder of images to --input instead")
        elif path.is_dir():
            self.kind = "images"
            self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise DataError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            self.kind, self.files = "images", [path]
        elif path.is_file():
            self.kind = "video"
            self.capture = cv2.VideoCapture(str(path))
            if not self.capture.isOpened() or not self.capture.grab():
                raise DataError(f"{path}: not a readable video (OpenCV cannot decode it); convert it to mp4 or avi, "
                                "or pass a folder of images")
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        else:
            raise DataError(f"{spec}: no such file or folder; --input takes a camera number, a video file, "
                            "an image or a folder of images")
        fps = self.capture.get(cv2.CAP_PROP_FPS) if self.capture is not None else 0.0
        self.fps = fps if math.isfinite(fps) and 1 <= fps <= 240 else 25.0

    def frames(self) -> Iterator[Frame]:
        cv2 = _cv2()
        if self.files is not None:
            for i, file in enumerate(self.files):
                image = cv2.imread(str(file), cv2.IMREAD_COLOR)
                if image is None:
                    raise DataError(f"{file}: unreadable image; delete or replace it")
                yield Frame(i, 0.0, image, file.stem)
            return
        i, start = 0, time.perf_counter()
        while True:
            ok, image = self.capture.read()
            if not ok:
                return
            seconds = i / self.fps if self.kind == "video" else time.perf_counter() - start
            yield Frame(i, seconds, image, f"{i:06d}")
            i += 1

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()


class LiveWindow:
    """Frames shown in a matplotlib window (OpenCV's headless build has no windows)."""

    def __init__(self):
        import matplotlib
        import matplotlib.pyplot as plt

        backend = matplotlib.get_backend().lower()
        if backend in NON_INTERACTIVE or backend.startswith("module://"):
            raise ParamError(f"--show: no display here (matplotlib backend '{backend}'); write the annotated video "
                             "with --output, or on a desktop set MPLBACKEND=TkAgg")
        plt.ion()
        self.plt, self.fig, self.ax, self.im = plt, None, None, None

    def show(self, bgr: np.ndarray) -> bool:
        """Draw the frame; False once the window has been closed."""
        rgb = bgr[..., ::-1]
        if self.fig is None:
            self.fig, self.ax = self.plt.subplots()
            self.ax.axis("off")
            self.im = self.ax.imshow(rgb)
        elif not self.plt.fignum_exists(self.fig.number):
            return False
        else:
            self.im.set_data(rgb)
        self.plt.pause(0.001)
        return True


def csv_header(classes: tuple[str, ...]) -> list[str]:
    return ["frame", "name", "time_s", "faces", "face", "x", "y", "w", "h", "expression", "probability",
            *[f"p_{c}" for c in classes]]


def run(source_spec: str, model_path: Path, output: Path | None, show: bool = False, device: str = "cpu",
        max_frames: int | None = None, min_face: int = 48) -> dict:
    """Run the demo; returns {frames, faces, outputs}. Outputs appear only complete."""
    from pipeline.fer.model import load, probabilities

    if output is None and not show:
        raise ParamError("nothing to do: pass --output DIR to write the annotated frames and CSV, --show to "
                         "watch them live, or both")
    model, meta = load(model_path, device)          # first: no model, nothing opened
    classes = tuple(meta["classes"])
    detector = FaceDetector(min_face)
    window = LiveWindow() if show else None
    source = Source(source_spec)
    writer, tmp_files, final_files, table, rows_out = None, [], [], None, None
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        tmp_csv = output / f".{CSV_NAME}.partial"
        table = open(tmp_csv, "w", newline="")
        rows_out = csv.writer(table)
        rows_out.writerow(csv_header(classes))
        tmp_files.append(tmp_csv)
        final_files.append(output / CSV_NAME)
    frames = faces = 0
    completed = False
    try:
        try:
            for frame in source.frames():
                grey = to_grey(frame.image)
                boxes = detector(grey)
                crops = torch.from_numpy(face_crops(grey, boxes)).to(device)
                probs = probabilities(model, crops, tta=meta.get("tta", False)).cpu().numpy()
                annotated = draw(frame.image, boxes, probs, classes)
                if output is not None:
                    writer = _write_frame(output, source, frame, annotated, writer, tmp_files, final_files)
                    _write_rows(rows_out, frame, boxes, probs, classes)
                if window is not None and not window.show(annotated):
                    break
                frames += 1
                faces += len(boxes)
                if max_frames is not None and frames >= max_frames:
                    break
        except KeyboardInterrupt:       # the usual way to stop a camera: keep what was recorded
            pass
        completed = True
    finally:
        source.close()
        if writer is not None:
            writer.release()
        if table is not None:
            table.close()
        for tmp, final in zip(tmp_files, final_files):
            if completed:
                tmp.replace(final)
            else:
                tmp.unlink(missing_ok=True)
    if frames == 0:
        raise DataError(f"{source_spec}: no frames could be read")
    return {"frames": frames, "faces": faces, "outputs": [str(p) for p in final_files]}


def _write_frame(output: Path, source: Source, frame: Frame, annotated: np.ndarray, writer, tmp_files, final_files):
    cv2 = _cv2()
    if source.kind == "images":
        tmp = output / f".{frame.name}.partial.png"
        if not cv2.imwrite(str(tmp), annotated):
            raise DataError(f"{tmp}: could not be written")
        tmp_files.append(tmp)
        final_files.append(output / f"{frame.name}.png")
        return None
    if writer is None:
        tmp = output / f".{VIDEO_NAME}.partial.mp4"
        h, w = annotated.shape[:2]
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), source.fps, (w, h))
        if not writer.isOpened():
            raise DataError(f"{tmp}: OpenCV cannot write mp4 video here")
        tmp_files.append(tmp)
        final_files.append(output / VIDEO_NAME)
    writer.write(annotated)
    return writer


def _write_rows(rows_out, frame: Frame, boxes: np.ndarray, probs: np.ndarray, classes: tuple[str, ...]) -> None:
    head = [frame.index, frame.name, f"{frame.seconds:.3f}", len(boxes)]
    if len(boxes) == 0:
        rows_out.writerow(head + [""] * (7 + len(classes)))
    for i, ((x, y, w, h), p) in enumerate(zip(boxes, probs)):
        k = int(p.argmax())
        rows_out.writerow(head + [i, int(x), int(y), int(w), int(h), classes[k], f"{p[k]:.4f}",
                                  *[f"{v:.4f}" for v in p]])
