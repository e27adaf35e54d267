"""The SkyPilot side of a sweep, offline: every task file loads with SkyPilot's own parser and
says what a job needs; `python -m pipeline.scaleout.sky` turns a sweep into one `sky jobs launch`
per point and refuses bad input in one line. (The task's `run` section is run for real, against a
local DVC remote and a bare git repository, in tests/test_e2e_remote.py.)"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.scaleout import sky as sweep_cmd
from tests.conftest import ROOT

TASKS = sorted((ROOT / "pipeline/scaleout/sky").glob("*.yaml"))


def command_env(cmd: list[str]) -> dict[str, str]:
    """The `--env KEY=VALUE` pairs of one `sky jobs launch` command (a bare `--env KEY` -> None)."""
    pairs = [cmd[i + 1] for i, word in enumerate(cmd) if word == "--env"]
    return {p.split("=", 1)[0]: (p.split("=", 1)[1] if "=" in p else None) for p in pairs}


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.scaleout.sky", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_there_is_a_task_file():
    assert [p.name for p in TASKS] == ["experiment.yaml"]      # the glob below finds them all


@pytest.mark.parametrize("path", TASKS, ids=lambda p: p.name)
def test_every_task_file_loads_with_skypilot_s_parser(path):
    sky = pytest.importorskip("sky", reason="SkyPilot is the optional extra `sky`: pip install -e '.[sky]'")
    task = sky.Task.from_yaml(str(path))            # offline: parsing contacts no cloud
    assert task.workdir == "."                      # `sky` is called from the repository root
    assert {"EXP_NAME", "EXP_PARAMS", "EXP_TARGETS", "MLFLOW_TRACKING_URI", "DLREPRO_RESUME_ROOT"} <= set(task.envs)
    assert set(task.storage_mounts) == {task.envs["DLREPRO_RESUME_ROOT"]}    # checkpoints on a bucket
    for res in task.resources:                      # any one of several GPUs, one each
        assert len(res.accelerators) == 1 and list(res.accelerators.values()) == [1]
        assert res.job_recovery["max_restarts_on_errors"] >= 1
    assert "make env" in task.setup                 # the README's environment step
    assert "dvc exp run --pull --allow-missing" in task.run and "dvc exp push" in task.run


@pytest.mark.parametrize("path", TASKS, ids=lambda p: p.name)
def test_the_run_section_is_valid_bash(path):
    import yaml

    run = yaml.safe_load(path.read_text())["run"]
    subprocess.run(["bash", "-n", "-c", run], check=True)


def test_two_swept_keys_give_four_jobs_with_their_values():
    params = {"a": {"b": 0.5}, "c": "w", "d": [1]}
    points = sweep_cmd.sweep(["a.b=1,2", "c=x,y", "d=[3,4]"], params)
    cmds = sweep_cmd.commands(points, ["stage_one"], extra="s3", bucket="team-resume")
    envs = [command_env(c) for c in cmds]
    assert [e["EXP_PARAMS"] for e in envs] == ["a.b=1 c=x d=[3,4]", "a.b=1 c=y d=[3,4]",
                                               "a.b=2 c=x d=[3,4]", "a.b=2 c=y d=[3,4]"]
    assert [e["EXP_NAME"] for e in envs] == ["b-1-c-x-d-3-4", "b-1-c-y-d-3-4", "b-2-c-x-d-3-4", "b-2-c-y-d-3-4"]
    for cmd, env in zip(cmds, envs):
        assert cmd[:3] == ["sky", "jobs", "launch"] and cmd[cmd.index("-n") + 1] == env["EXP_NAME"]
        assert cmd[-2:] == ["pipeline/scaleout/sky/experiment.yaml", "-y"] and "-d" in cmd
        assert env["EXP_TARGETS"] == "stage_one" and env["DVC_EXTRA"] == "s3" and env["RESUME_BUCKET"] == "team-resume"
        assert env["MLFLOW_TRACKING_URI"] is None     # handed over from the launching shell


def test_dry_run_prints_one_launch_per_point_of_the_real_params():
    proc = run_module("separable.train.lr=0.1,0.01,0.001", "--target", "separable_train", "--dry-run",
                      "--", "--infra", "aws")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    first = shlex.split(lines[0])
    assert command_env(first)["EXP_PARAMS"] == "separable.train.lr=0.1"
    assert first[first.index("--infra") + 1] == "aws"                 # after `--`: to sky unchanged


@pytest.mark.parametrize("args, says", [
    (["separable.train.lrx=0.1,0.01"], "separable.train.lrx: not a key of params.yaml"),
    (["+separable.train.new=1"], "separable.train.new: not a key of params.yaml"),
    (["separable.train.lr="], "separable.train.lr: no value given"),
    (["separable.train.lr=range(0)"], "the sweep has no points"),
    (["separable.train.lr=0.1,"], "not a key=value or key=v1,v2"),
    (['separable.train.optimizer="a b"'], "a value with spaces"),
    (["separable.train.lr=0.1", "--target", "separable_trainx"], "separable_trainx: not a stage of dvc.yaml"),
    ([], "no overrides given"),
])
def test_bad_input_is_one_line_and_exit_2(args, says):
    proc = run_module(*args, "--dry-run")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], proc.stderr


def test_the_dvc_extra_comes_from_the_committed_default_remote(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc/config").write_text("[core]\n    remote = team\n['remote \"team\"']\n    url = s3://team-bucket/dvc\n")
    assert sweep_cmd.remote_extra(tmp_path) == "s3"
    (tmp_path / ".dvc/config").write_text('[core]\n    remote = team\n')       # only in config.local: the job would not see it
    (tmp_path / ".dvc/config.local").write_text("['remote \"team\"']\n    url = gs://team-bucket/dvc\n")
    with pytest.raises(sweep_cmd.LaunchError, match="no default DVC remote in .dvc/config"):
        sweep_cmd.remote_extra(tmp_path)


def test_a_refused_launch_is_one_line(tmp_path, monkeypatch):
    """A stand-in `sky` that fails as SkyPilot does without cloud credentials (its real last line)."""
    fake = tmp_path / "bin" / "sky"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Starting a local server.'\n"
                    "printf 'sky.exceptions.NoCloudAccessError: Cloud access is not set up. Run: \\033[1msky check\\033[0m\\n' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{Path(sys.executable).parent}:/usr/bin:/bin")
    cmds = sweep_cmd.commands([["separable.train.lr=0.1"]])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(sweep_cmd.LaunchError, match="MLFLOW_TRACKING_URI must name the team's tracking server"):
        sweep_cmd.launch(cmds, root=tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    with pytest.raises(sweep_cmd.LaunchError) as err:
        sweep_cmd.launch(cmds, root=tmp_path)
    assert str(err.value) == ("sky jobs launch lr-0.1 failed: NoCloudAccessError: Cloud access is not set up. "
                              "Run: sky check")
