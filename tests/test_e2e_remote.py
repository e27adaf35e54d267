"""Results shared between machines: two clones of one bare git repository stand for two machines,
a local folder for the team's DVC remote (README, "Scaling out").

Machine A configures the remote (`dvc remote add -d`, committed: the URL is the team's; credentials
would go in `--local`), reproduces `separable_train` at smoke scale, commits, and pushes outputs,
run-cache and commits; then runs an experiment and pushes it with `dvc exp push`. Machine B, a fresh
clone, pulls and reproduces nothing, lists A's experiment with A's metrics after `dvc exp pull`, and
gets a stage it has no lock entry for from the run-cache instead of computing it. Last, the SkyPilot
task's own `run` section runs with bash in a third fresh clone (what a job's machine gets: the
checkout with its .git, no DVC cache, no outputs), with the env a sweep gives it: the experiment it
pushes appears in A after `dvc exp pull`, its stage having run once.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.e2e import REPO_ENV, copy_repo, dvc, env, ran, sh, stale

pytestmark = pytest.mark.e2e

EXP = "a-sweep"                                                    # A's experiment
EXP_SET = ("separable.train.lr=0.05", "superres.images.size=96")  # what it changes
TASK = ROOT / "pipeline/scaleout/sky/experiment.yaml"


@dataclass
class Team:
    base: Path
    bare: Path
    a: Path
    b: Path
    out: dict[str, str] = field(default_factory=dict)        # what each step printed
    seconds: dict[str, float] = field(default_factory=dict)


def clone(team_base: Path, bare: Path, name: str) -> Path:
    dest = team_base / name
    sh(team_base, "git", "clone", "-q", str(bare), str(dest))
    return dest


def timed(team: Team, step: str, call):
    start = time.perf_counter()
    team.out[step] = call()
    team.seconds[step] = time.perf_counter() - start


def exp_show(repo: Path) -> dict[str, dict]:
    """`dvc exp show --json` of `repo` as {experiment name: its data (params, metrics)}."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=repo, env=env(),
                          capture_output=True, text=True, check=True, timeout=300)
    return {rev["name"]: rev["data"] for base in json.loads(proc.stdout) for exp in base.get("experiments") or []
            for rev in exp["revs"]}


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> Team:
    base = tmp_path_factory.mktemp("team")
    origin = copy_repo(base / "origin")
    # The copy's dvc.lock holds the reference machine's full-scale runs, whose outputs no remote
    # here has: start as a new project does, with no lock, so every push and pull is complete.
    sh(origin, "git", "rm", "-q", "dvc.lock")
    sh(origin, "git", "commit", "-qm", "no runs yet")
    bare = base / "origin.git"
    sh(base, "git", "init", "-q", "--bare", str(bare))
    sh(origin, "git", "push", "-q", str(bare), "HEAD")
    team = Team(base, bare, clone(base, bare, "a"), base / "b")
    a = team.a
    dvc(a, "remote", "add", "-d", "shared", str(base / "dvc-remote"))
    team.out["a repro"] = dvc(a, "repro", "separable_train")
    sh(a, "git", "add", "-A")
    sh(a, "git", "commit", "-qm", "separable at smoke scale; the team's DVC remote")
    timed(team, "a push", lambda: dvc(a, "push", "--run-cache") + sh(a, "git", "push", "-q", "origin", "HEAD"))
    timed(team, "b pull", lambda: (clone(base, bare, "b"), dvc(team.b, "pull", "--run-cache", "--allow-missing"))[1])
    team.out["b repro"] = dvc(team.b, "repro", "separable_train")
    sets = [arg for kv in EXP_SET for arg in ("-S", kv)]
    team.out["a exp run"] = dvc(a, "exp", "run", "-n", EXP, *sets, "separable_train", "superres_features")
    team.out["a exp push"] = dvc(a, "exp", "push", "--run-cache", "origin", EXP)
    return team


def test_a_pushed_its_results(team):
    assert ran(team.out["a repro"]) == {"separable_train"}
    assert ran(team.out["a exp run"]) == {"separable_train", "superres_features"}
    assert f"Pushed experiment {EXP}" in team.out["a exp push"]
    assert list((team.base / "dvc-remote").rglob("runs/*/*/*")), "the run-cache reached the remote"


def test_b_reruns_nothing_after_pulling(team):
    out = team.out["b repro"]
    assert ran(out) == set(), out
    assert "Stage 'separable_train' didn't change, skipping" in out
    assert stale(team.b, "separable_train") == set()          # outputs pulled, equal to what the lock says
    assert (team.b / "models/separable/mlp.pt").is_file()


def test_push_pull_round_trip_time(team, capsys):
    push, pull = team.seconds["a push"], team.seconds["b pull"]
    with capsys.disabled():
        print(f"\npush/pull round trip: A `dvc push --run-cache` + `git push` {push:.1f} s, "
              f"B `git clone` + `dvc pull --run-cache --allow-missing` {pull:.1f} s, total {push + pull:.1f} s")
    assert push + pull > 0


def test_b_lists_a_s_experiment_with_a_s_metrics(team):
    out = dvc(team.b, "exp", "pull", "origin", EXP)
    assert EXP in out
    shown = exp_show(team.b)[EXP]
    ours = json.loads((team.a / "metrics/separable/train.json").read_text())    # A's workspace holds its experiment
    assert shown["metrics"]["metrics/separable/train.json"]["data"] == ours
    assert shown["params"]["params.yaml"]["data"]["separable"]["train"]["lr"] == 0.05


def test_b_gets_a_stage_a_ran_from_the_run_cache(team):
    """superres_features is in no lock B has; A ran it with these params in its experiment, and
    `--pull` fetched the run-cache: B checks A's result out instead of computing it."""
    assert "superres_features" not in yaml.safe_load((team.b / "dvc.lock").read_text())["stages"]
    out = dvc(team.b, "exp", "run", "--pull", "-n", "b-features", "-S", EXP_SET[1], "superres_features")
    assert ran(out) == set(), out
    assert "Stage 'superres_features' is cached - skipping run, checking out outputs" in out
    samples = "data/features/superres/samples.pt"
    assert (team.b / samples).read_bytes() == (team.a / samples).read_bytes()


def test_b_never_retrains_what_a_trained(team):
    """A training stage too (its model, metrics and history all in the DVC cache, see dvc.yaml):
    B asks for A's learning rate and gets A's model, metrics and curve without training."""
    out = dvc(team.b, "exp", "run", "--pull", "-n", "b-lr", "-S", EXP_SET[0], "separable_train")
    assert ran(out) == set(), out
    assert "Stage 'separable_train' is cached - skipping run, checking out outputs" in out
    for path in ("models/separable/mlp.pt", "metrics/separable/train.json", "plots/separable/history.csv"):
        assert (team.b / path).read_bytes() == (team.a / path).read_bytes(), path


def test_every_training_stage_keeps_all_its_outputs_in_the_cache():
    """What the run-cache needs: a `cache: false` output turns it off for its stage (plain outs), or
    is not sent by `dvc push --run-cache` (metrics, plots), so another machine would train again."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        uncached = {s.addressing: [o.def_path for o in s.outs if not o.use_cache] for s in repo.index.stages}
        cached = {o.def_path for s in repo.index.stages for o in s.outs if o.use_cache}
    assert {stage: outs for stage, outs in uncached.items() if outs} == {
        "scorecard": ["reports/index.html", "reports/scorecard.json", "metrics/scorecard.json"]}
    # and git tracks none of the cached ones (`dvc repro` refuses to write an output git tracks)
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert [p for p in tracked.split() if any(p == o or p.startswith(o.rstrip("/") + "/") for o in cached)] == []


def test_a_skypilot_job_s_run_section_shares_its_experiment(team):
    """The task's `run` with the env of one sweep point, in a fresh clone, git identity and all
    (a job's machine has none); `origin` is the bare repository, the DVC remote the local folder."""
    from pipeline.core.params import load_params
    from pipeline.scaleout import sky as sweep_cmd

    task = yaml.safe_load(TASK.read_text())
    cmd = sweep_cmd.commands(sweep_cmd.sweep(["separable.train.lr=0.1"], load_params(team.b / "params.yaml")),
                             ["separable_train"])[0]
    job_env = dict(task["envs"])
    job_env.update(kv.split("=", 1) for kv in (cmd[i + 1] for i, w in enumerate(cmd) if w == "--env") if "=" in kv)
    name = job_env["EXP_NAME"]
    job = clone(team.base, team.bare, "job")
    (team.base / "no-gitconfig").write_text("")
    job_env.update(MLFLOW_TRACKING_URI=f"sqlite:///{team.base / 'team-mlflow.db'}",
                   DLREPRO_RESUME_ROOT=str(team.base / "resume-bucket"),
                   GIT_CONFIG_GLOBAL=str(team.base / "no-gitconfig"), GIT_CONFIG_NOSYSTEM="1")
    REPO_ENV[job] = {}
    proc = subprocess.run(["bash", "-c", task["run"]], cwd=job, env=env(job_env), capture_output=True, text=True,
                          timeout=600, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert ran(out) == {"separable_train"} and out.count("Running stage") == 1, out[-3000:]
    assert f"Pushed experiment {name}" in out

    dvc(team.a, "exp", "pull", "origin", name)
    shown = exp_show(team.a)[name]
    assert shown["params"]["params.yaml"]["data"]["separable"]["train"]["lr"] == 0.1
    assert shown["metrics"]["metrics/separable/train.json"]["data"] == \
        json.loads((job / "metrics/separable/train.json").read_text())

    from mlflow.tracking import MlflowClient

    client = MlflowClient(job_env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("separable").experiment_id])
    assert [(r.data.tags.get("dvc.exp_name"), r.info.status) for r in runs] == [(name, "FINISHED")]
