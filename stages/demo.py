"""The FER live demo: `python -m stages.demo --input <camera|video|image|folder> [--output DIR] [--show]`.

Not a DVC stage: it reads the model `fer_train` wrote and runs on whatever you point it at.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stages.common import one_line_errors

USAGE = """usage: python -m stages.demo --input SOURCE [--output DIR] [--show] [--model PATH] [--device DEVICE]
                            [--max-frames N] [--min-face PX]

  --input       a camera number (0 is the default webcam), a video file, an image, or a folder of images
  --output      folder for annotated.mp4 (one PNG per image for image input) and frames.csv (default: demo/)
  --no-output   write nothing (with --show)
  --show        show the annotated frames live in a window (needs a display)
  --model       the trained model (default: models/fer/cnn.pt, written by `dvc repro fer_train`)
  --device      auto | cpu | cuda | cuda:N | mps (default: auto)
  --max-frames  stop after N frames (a camera runs until Ctrl-C or the window is closed)
  --min-face    smallest face to detect, in pixels (default: 48)"""


def main(argv: list[str]) -> None:
    from pipeline.core.device import pick_device
    from pipeline.core.errors import ParamError
    from pipeline.fer.demo import run as run_demo

    parser = argparse.ArgumentParser(prog="python -m stages.demo", add_help=False)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", type=Path, default=Path("demo"))
    parser.add_argument("--no-output", action="store_true")
    parser.add_argument("--show", action="store_true")
    parser.add_argument("--model", type=Path, default=Path("models/fer/cnn.pt"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--min-face", type=int, default=48)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ParamError(f"unknown argument {unknown[0]!r}; see `python -m stages.demo --help`")
    if args.max_frames is not None and args.max_frames < 1 or args.min_face < 8:
        raise ParamError("--max-frames must be at least 1 and --min-face at least 8 pixels")
    device = pick_device(args.device)
    out = run_demo(args.input, args.model, None if args.no_output else args.output, args.show, str(device),
                   args.max_frames, args.min_face)
    print(f"demo: {out['frames']} frames, {out['faces']} faces on {device}"
          + (f" -> {', '.join(out['outputs'][:2])}{' ...' if len(out['outputs']) > 2 else ''}" if out["outputs"] else ""))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        sys.exit(0 if len(sys.argv) > 1 else 2)
    one_line_errors(lambda: main(sys.argv[1:]))
