"""A sweep fanned out over GPU machines, one SkyPilot managed job per point:
`python -m pipeline.scaleout.sky`.

    python -m pipeline.scaleout.sky separable.train.lr=0.1,0.01,0.001 --target separable_train
    python -m pipeline.scaleout.sky superres.train.lr=0.01,0.001 superres.train.epochs=50,100 --dry-run
    python -m pipeline.scaleout.sky colourize.cnn.lr=0.01,0.001 -- --infra aws --no-use-spot

Arguments are params.yaml overrides in dvc's own `-S` syntax: `key=a,b,c` (or `range(…)`,
`choice(…)`) sweeps a key, several swept keys give their product, and the points are expanded by
DVC's own sweeper, so they are exactly the experiments `dvc exp run --queue -S …` would queue.
Each point becomes one `sky jobs launch -d … pipeline/scaleout/sky/experiment.yaml`, whose job
runs it as a DVC experiment on its own GPU and pushes it (see the task file); what follows `--`
goes to every `sky jobs launch` unchanged; `--dry-run` prints the commands, launching nothing.
SkyPilot, not a loop of our own, finds the GPUs (clouds, Kubernetes, on-prem) and relaunches a
job whose machine is lost; only those who fan out need it (extra `sky`). What would waste a
launch — an unknown key or stage, an empty value list, no shared DVC remote, no team tracking
server — is refused first, in one line, exit status 2.
"""
from __future__ import annotations

import argparse
import getpass
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.core.errors import ParamError, PipelineError
from pipeline.core.params import load_params

ROOT = Path(__file__).resolve().parents[2]
TASK = Path("pipeline/scaleout/sky/experiment.yaml")      # relative to ROOT, where `sky` is called
EXTRAS = {"s3": "s3", "gs": "gs", "gcs": "gs", "azure": "azure", "az": "azure", "ssh": "ssh",
          "hdfs": "hdfs", "webdav": "webdav", "webdavs": "webdav", "oss": "oss"}   # URL scheme -> dvc[extra]


class LaunchError(PipelineError):
    """`sky jobs launch` is missing or refused a job."""


def sweep(overrides: list[str], params: dict) -> list[list[str]]:
    """The sweep's points, each a list of `key=value` overrides, as `dvc exp run --queue -S` expands
    them; every key must exist in `params`, every value list must be non-empty."""
    from dvc.utils.hydra import get_hydra_sweeps, to_hydra_overrides
    from hydra.errors import HydraException

    if not overrides:
        raise ParamError("no overrides given: e.g. separable.train.lr=0.1,0.01")
    for text in overrides:
        try:
            parsed = to_hydra_overrides([text])[0]
        except HydraException:
            raise ParamError(f"{text}: not a key=value or key=v1,v2,… override (dvc's -S syntax)") from None
        key = parsed.key_or_group
        if parsed.is_add() or parsed.is_delete() or parsed.is_force_add() or not _in_params(key, params):
            raise ParamError(f"{key}: not a key of params.yaml (a sweep changes existing keys only)")
        if not parsed.is_sweep_override() and parsed.value() == "":
            raise ParamError(f"{key}: no value given (key=value or key=v1,v2,…)")
    points = [combo["params.yaml"] for combo in get_hydra_sweeps({"params.yaml": overrides})]
    if not points:
        raise ParamError(f"{' '.join(overrides)}: the sweep has no points (an empty range?)")
    for point in points:
        for text in point:
            if any(c.isspace() for c in text):
                raise ParamError(f"{text}: a value with spaces cannot travel in EXP_PARAMS")
    return points


def check_targets(targets: list[str], root: Path = ROOT) -> None:
    """Every target names a stage (or a foreach/matrix group) of dvc.yaml."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        for target in targets:
            try:
                repo.stage.collect(target)
            except DvcException:
                raise ParamError(f"{target}: not a stage of dvc.yaml") from None


def _in_params(key: str, params: dict) -> bool:
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def job_name(point: list[str], prefix: str = "") -> str:
    """A name fit for a DVC experiment (a git ref) and a SkyPilot job, from the point's values:
    ['separable.train.lr=0.01'] -> 'lr-0.01'; with prefix 'sweep1' -> 'sweep1-lr-0.01'."""
    parts = [prefix] if prefix else []
    for text in point:
        key, value = text.split("=", 1)
        parts += [key.rsplit(".", 1)[-1], value]
    name = re.sub(r"[^A-Za-z0-9_.]+", "-", "-".join(parts))
    return re.sub(r"\.{2,}", ".", name).strip("-.") or "exp"


def remote_extra(root: Path = ROOT) -> str:
    """The dvc extra (`dvc[s3]`, …) the default DVC remote needs; the remote must be in the
    committed `.dvc/config`, since a job's copy of the checkout has no `.dvc/config.local`."""
    from dvc.config import Config, ConfigError

    try:
        repo_level = Config(dvc_dir=str(root / ".dvc")).load_one("repo")
    except ConfigError as exc:
        raise LaunchError(str(exc)) from None
    name = repo_level.get("core", {}).get("remote")
    url = repo_level.get("remote", {}).get(name, {}).get("url", "") if name else ""
    if not url:
        raise LaunchError("no default DVC remote in .dvc/config: `dvc remote add -d <name> <url>` and commit it "
                          "(a job shares its results through it; credentials stay in `--local`)")
    return EXTRAS.get(url.split("://", 1)[0] if "://" in url else "", "")


def commands(points: list[list[str]], targets: list[str] = (), prefix: str = "", extra: str = "",
             bucket: str = "", sky_args: list[str] = ()) -> list[list[str]]:
    """One `sky jobs launch` per point. `--env MLFLOW_TRACKING_URI` without a value hands the
    job this shell's value: every job records to the same tracking server."""
    out = []
    for point in points:
        name = job_name(point, prefix)
        env = {"EXP_NAME": name, "EXP_PARAMS": " ".join(point), "EXP_TARGETS": " ".join(targets),
               "DVC_EXTRA": extra, "RESUME_BUCKET": bucket}
        flags = [f for k, v in env.items() if v for f in ("--env", f"{k}={v}")]
        out.append(["sky", "jobs", "launch", "-n", name, *flags, "--env", "MLFLOW_TRACKING_URI", "-d",
                    *sky_args, str(TASK), "-y"])
    return out


def default_bucket() -> str:
    """Bucket names are global: one per user unless $DLREPRO_RESUME_BUCKET says otherwise. Each
    stage's checkpoints sit in a folder keyed by its params and inputs, so jobs never collide."""
    user = re.sub(r"[^a-z0-9-]+", "-", getpass.getuser().lower()).strip("-")
    return os.environ.get("DLREPRO_RESUME_BUCKET") or f"dlrepro-resume-{user}"


def launch(cmds: list[list[str]], root: Path = ROOT) -> None:
    """Run each command; the first refusal becomes one line (SkyPilot's own last line)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if "://" not in uri or uri.startswith(("sqlite:", "file:")):
        raise LaunchError("MLFLOW_TRACKING_URI must name the team's tracking server (http://host:5000): "
                          "a job's own store vanishes with its machine")
    sky = shutil.which("sky") or shutil.which("sky", path=str(Path(sys.executable).parent))
    if sky is None:
        raise LaunchError("SkyPilot is not installed: pip install -e '.[sky]' (and the cloud's extra, "
                          "e.g. 'skypilot[aws]'), then `sky check`")
    for cmd in cmds:
        name = cmd[cmd.index("-n") + 1]
        proc = subprocess.run([sky, *cmd[1:]], cwd=root, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LaunchError(f"sky jobs launch {name} failed: {_last_line(proc.stdout + proc.stderr)}")
        print(f"launched {name}: {_last_line(proc.stdout + proc.stderr)}", flush=True)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text).splitlines() if ln.strip()]
    return lines[-1].removeprefix("sky.exceptions.") if lines else "(no output)"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m pipeline.scaleout.sky", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="key=value or key=v1,v2,… (params.yaml keys)")
    parser.add_argument("--target", action="append", default=[], help="stage to reproduce (repeatable); "
                        "default: every stage the change reaches")
    parser.add_argument("--prefix", default="", help="prefix of every experiment and job name")
    parser.add_argument("--resume-bucket", default=default_bucket(), help="bucket for resume checkpoints, "
                        "shared by the sweep's jobs (default: $DLREPRO_RESUME_BUCKET or dlrepro-resume-<user>)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, launch nothing")
    args = parser.parse_args(argv[:cut])
    try:
        points = sweep(args.overrides, load_params(ROOT / "params.yaml"))
        check_targets(args.target)
        try:
            extra = remote_extra()
        except LaunchError as exc:
            if not args.dry_run:
                raise
            extra = ""
            print(f"note: {exc}", file=sys.stderr)    # a dry run still shows the commands
        cmds = commands(points, args.target, args.prefix, extra, args.resume_bucket, argv[cut + 1:])
        if args.dry_run:
            print("\n".join(shlex.join(c) for c in cmds))
        else:
            launch(cmds)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
