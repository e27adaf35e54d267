"""The stage harness: what every stage does around its experiment's code.

`begin(...)` reads params.yaml and checks the stage's section, seeds python/numpy/torch,
picks the device and the autocast precision; the returned `Stage` opens the MLflow run,
names the resume folder, loads the tensors other stages wrote and writes this stage's
outputs atomically. It is also the one place that knows which process writes: with several
processes (torchrun), only rank 0 does. `main(...)` turns `python -m stages.<experiment>
<stage> [args]` into a call of that stage function; a PipelineError becomes one line and exit
status 2.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from pipeline.core.errors import DataError, ParamError, PipelineError
from pipeline.core.params import flatten, load_params, parse, to_dict
from pipeline.core.settings import Settings, settings_from

T = TypeVar("T")
RESUME_ROOT = Path(".cache/resume")   # $DLREPRO_RESUME_ROOT moves it (a volume that outlives a cloud job)
RUN_ID_FILE = "mlflow_run_id"         # in a resume folder: the MLflow run an interrupted stage continues


def load_section(name: str, cls: type[T], path: str = "params.yaml") -> tuple[Settings, T]:
    """The shared settings and the experiment's validated section, at the configured scale."""
    params = load_params(path)
    settings = settings_from(params)
    if name not in params:
        raise ParamError(f"{name}: section missing from {path}")
    cfg = parse(cls, params[name], key=name)
    return settings, cfg.at_scale(settings.scale)


def load_tensors(path: Path) -> dict:
    """A torch file another stage wrote; missing means that stage has not run."""
    import torch

    if not path.exists():
        raise DataError(f"{path}: missing; run `dvc repro` (it runs the stage that writes it) first")
    try:
        return torch.load(path, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise DataError(f"{path}: unreadable ({exc.__class__.__name__}); delete it and run `dvc repro`") from None


def read_json(path: Path) -> dict:
    if not path.exists():
        raise DataError(f"{path}: missing; run `dvc repro` (it runs the stage that writes it) first")
    return json.loads(path.read_text())


def rank() -> int:
    """This process's rank among several (torchrun sets RANK); 0 when alone."""
    return int(os.environ.get("RANK", "0"))


@dataclass
class Stage:
    """One execution of one dvc stage."""
    name: str                   # the dvc stage, e.g. superres_train@literal (MLflow's run name)
    experiment: str             # the MLflow experiment: the params section's name
    settings: Settings
    cfg: object                 # the experiment's validated params section
    device: object              # torch.device
    amp: object                 # autocast dtype, or None for fp32
    tracker: object = field(default=None, init=False, repr=False)   # the open MLflow run, inside `tracked`

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def writes(self) -> bool:
        """Whether this process writes outputs and records runs (rank 0 only)."""
        return rank() == 0

    def params(self, **sections) -> dict:
        """MLflow parameters: the given sections flattened, plus how the stage ran (`execution`)."""
        plain = {k: to_dict(v) if hasattr(v, "__dataclass_fields__") else v for k, v in sections.items()}
        return flatten({**plain, **self.execution()})

    def execution(self) -> dict:
        """How this stage ran, recorded with every MLflow run: seed, scale, device, the autocast precision
        it trained in, whether kernels were deterministic, whether the model was compiled and how
        many processes trained it (torchrun's world size)."""
        from pipeline.core.distributed import world_size

        from pipeline.core.device import precision_name

        return {"seed": self.seed, "scale": self.settings.scale, "device": str(self.device),
                "precision": precision_name(self.amp),
                "deterministic": self.settings.deterministic, "compile": self.settings.compile,
                "processes": world_size()}

    @contextlib.contextmanager
    def tracked(self, params: dict, resume: Path | None = None) -> Iterator:
        """The stage's MLflow run (tracking records; it changes no result). With `resume` (the
        stage's resume folder) the run's id is kept there while the stage runs, so an execution
        that was killed and runs again continues its own run: one run, every epoch."""
        if not self.writes:
            yield _Silent()
            return
        from pipeline.tracking import stage_run

        kept = resume / RUN_ID_FILE if resume is not None else None
        run_id = kept.read_text().strip() if kept is not None and kept.exists() else None
        with stage_run(self.experiment, self.name, {**params, **self.execution()}, run_id) as tracker:
            if kept is not None:
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_text(tracker.run_id)
            self.tracker = tracker
            try:
                yield tracker
            finally:
                self.tracker = None
        if kept is not None:                 # finished: nothing left to continue
            kept.unlink(missing_ok=True)
            if kept.parent.is_dir() and not any(kept.parent.iterdir()):
                kept.parent.rmdir()

    def resume(self, key, inputs: tuple[Path, ...] = ()) -> Path:
        """A git-ignored folder for resume checkpoints, keyed by stage, `key` (params) and input bytes."""
        h = hashlib.sha256(json.dumps(to_dict(key), sort_keys=True, default=str).encode())
        for path in inputs:
            with open(path, "rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
        root = Path(os.environ.get("DLREPRO_RESUME_ROOT") or RESUME_ROOT)
        return root / f"{self.name.replace('@', '-')}-{h.hexdigest()[:16]}"

    def save(self, obj, path: Path) -> None:
        """A torch file (model, tensors), atomically."""
        from pipeline.core.files import atomic_torch_save

        if self.writes:
            atomic_torch_save(obj, path)
            if self.tracker is not None and Path(path).parts[0] == "models":
                self.tracker.log_artifact(path, "model")        # the run holds the model it trained

    def peak_memory(self) -> dict[str, float]:
        """{"peak_memory_mb": ...} so far: CUDA's peak allocated memory on a GPU; on a CPU (or MPS) the
        process's peak resident set, which also counts the interpreter and libraries (~0.5 GB)."""
        import torch

        if self.device is not None and self.device.type == "cuda":
            return {"peak_memory_mb": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)}
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss          # KiB on Linux, bytes on macOS
        return {"peak_memory_mb": round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)}

    def write_json(self, obj, path: Path) -> None:
        from pipeline.core.files import write_json

        if self.writes:
            write_json(obj, path)

    def write_csv(self, frame, path: Path) -> None:
        """A DataFrame, or a list of records (a training history), as CSV."""
        import pandas as pd

        from pipeline.core.files import write_csv

        if self.writes:
            write_csv(frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame), path)

    def figures(self, figs: dict, folder: Path) -> None:
        """Each {file name: figure} saved under `folder` as PNG, logged to the stage's MLflow run
        when one is open (`tracked`), closed."""
        import matplotlib.pyplot as plt

        from pipeline.core.files import atomic_path

        for name, fig in figs.items():
            if self.writes:
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(folder / name) as tmp:
                    fig.savefig(tmp, format="png", dpi=110)
                if self.tracker is not None:        # the file's bytes (MLflow's log_figure would draw it again)
                    parent = Path(name).parent.as_posix()
                    self.tracker.log_artifact(folder / name, None if parent == "." else parent)
            plt.close(fig)

    def done(self, summary: str) -> None:
        """The stage's one-line summary."""
        if self.writes:
            print(f"{self.name}: {summary}")


class _Silent:
    """The tracker of a process that does not record (rank > 0)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def begin(name: str, section: str, cls: type, *, device: bool = True) -> Stage:
    """Load and check `section`, seed everything, pick device and precision, set how the engine
    executes (compile, memory format) and, under torchrun, join the other ranks."""
    from pipeline.core import distributed, runtime
    from pipeline.core.device import autocast_dtype, pick_device, seed_everything

    settings, cfg = load_section(section, cls)
    seed_everything(settings.seed, settings.deterministic)
    dev = pick_device(settings.device) if device else None
    amp = autocast_dtype(dev, settings.precision) if dev is not None else None
    runtime.configure(runtime.Runtime(settings.compile, settings.memory_format))
    if dev is not None:
        distributed.start(dev)
    return Stage(name, section, settings, cfg, dev, amp)


def fit_summary(out) -> dict:
    """The metrics every best-epoch run reports: its best epoch's validation and training
    figures, and its training time and rate."""
    best, last = out.history[out.best_epoch - 1], out.history[-1]
    return {"best_epoch": out.best_epoch, "epochs": len(out.history), "val_accuracy": best["val_accuracy"],
            "val_loss": best["val_loss"], "train_accuracy": best["train_accuracy"],
            "train_seconds": round(last["elapsed_seconds"], 3),
            "train_samples_per_second": round(last["samples_per_second"])}


def main(doc: str, functions: dict[str, Callable], distributed: tuple[str, ...] = ()) -> None:
    """`python -m stages.<module> <stage> [args]`: call functions[stage](*args). The stages named in
    `distributed` run under torchrun on `distributed.nproc` processes when that is more than 1."""
    argv = sys.argv[1:]
    usage = (doc or "").strip().splitlines()[0] + "\nusage: python -m " + _module() + " " + \
        "|".join(f"{n}{''.join(f' <{p}>' for p in inspect.signature(f).parameters)}" for n, f in functions.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, file=sys.stderr)
        sys.exit(0 if argv else 2)

    def call() -> None:
        if argv[0] not in functions:
            raise ParamError(f"{argv[0]!r}: no such stage here; choose one of {', '.join(functions)}")
        fn, args = functions[argv[0]], argv[1:]
        wanted = list(inspect.signature(fn).parameters)
        if len(args) != len(wanted):
            raise ParamError(f"{argv[0]}: takes {len(wanted)} argument(s) ({' '.join(wanted) or 'none'}), "
                             f"got {len(args)}; {usage.splitlines()[-1]}")
        if argv[0] in distributed:
            _relaunch_under_torchrun(argv)
        fn(*args)

    finished = False
    try:
        one_line_errors(call)
        finished = True
    finally:
        if "torch" in sys.modules:
            from pipeline.core.distributed import stop

            # ranks > 0 wait until rank 0 has written every output; a rank that failed waits for no one
            stop(wait=finished)


def _relaunch_under_torchrun(argv: list[str]) -> None:
    """With `distributed.nproc` > 1 and not yet under torchrun: become `torchrun --standalone
    --nproc-per-node=N -m <this module> <argv>` (exec: dvc keeps waiting on this very process).
    Several machines: run torchrun yourself with its rendezvous options (README, "Several GPUs")."""
    if "LOCAL_RANK" in os.environ:
        return
    nproc = settings_from(load_params()).distributed.nproc
    if nproc == 1:
        return
    import torch

    gpus = torch.cuda.device_count()
    if gpus and nproc > gpus:
        raise ParamError(f"distributed.nproc: {nproc} processes but {gpus} GPU(s) are visible; "
                         f"set it to at most {gpus} (-S distributed.nproc={gpus})")
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                              f"--nproc-per-node={nproc}", "-m", _module(), *argv])


def one_line_errors(call: Callable[[], None]) -> None:
    """Run `call`; a PipelineError becomes one line on stderr and exit status 2."""
    try:
        call()
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _module() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec.name if spec is not None else "stages"
