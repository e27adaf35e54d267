"""dvc.yaml code deps are exactly what each stage imports: the analyzer (tests/import_closure.py) on small
synthetic repositories, then every stage of the real dvc.yaml."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.import_closure import RECORDS_ONLY, ClosureError, check_stage, expanded_stages, stage_closure, stale_for_edit

# A small repository: one stage module whose functions import different things, a library whose imports
# hide in functions, relative imports, packages with and without code in their __init__.py.
CODE = {
    "stages/__init__.py": '"""Entry points."""\n',
    "stages/x.py": '''
        """Entry module."""
        import json

        from pipeline import base


        def helper():
            from pipeline.helped import h
            return h


        def prepare(argv):
            return helper(), json.dumps(argv)


        def train(argv):
            import pipeline.trainer as tr
            return tr


        TABLE = {"prepare": prepare}


        def dispatch(argv):
            return TABLE[argv[0]](argv[1:])


        class Loader:
            def load(self):
                from pipeline import loaded
                return loaded


        def load(argv):
            return Loader().load()


        def tracked(argv):
            from pipeline.tracking import stage_run
            return stage_run


        def shadow(argv, load=None):
            train, _ = argv[0], load        # locals named as the stage functions: not references to them
            return [train for train in argv], train


        def unshadowed(argv):
            return [train for train in argv], train


        if __name__ == "__main__":
            from pipeline import mainonly
            mainonly.run()
    ''',
    "pipeline/__init__.py": "VERSION = 1\n",
    "pipeline/base.py": '''
        import torch


        def later():
            from .lazy import thing
            return thing
    ''',
    "pipeline/lazy.py": "thing = 1\n",
    "pipeline/helped.py": "from pipeline.sub import leaf\nh = leaf\n",
    "pipeline/sub/__init__.py": '"""Only a docstring."""\n',
    "pipeline/sub/leaf.py": "from . import sibling\nfrom ..upper import u\n",
    "pipeline/sub/sibling.py": "",
    "pipeline/upper.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pipeline.typeonly\nu = 1\n",
    "pipeline/typeonly.py": "",
    "pipeline/trainer.py": "from pipeline.coded import c\n",
    "pipeline/coded/__init__.py": "c = 1\n",
    "pipeline/loaded.py": "",
    "pipeline/mainonly.py": "def run(): pass\n",
    "pipeline/tracking.py": "def stage_run(): pass\n",
    "pipeline/reported.py": "",
    "reports/r.py": "import pandas as pd\nimport pipeline.reported as rep\n",
}
BASE = {"stages/__init__.py", "stages/x.py", "pipeline/__init__.py", "pipeline/base.py", "pipeline/lazy.py"}
PREPARE = BASE | {"pipeline/helped.py", "pipeline/sub/__init__.py", "pipeline/sub/leaf.py", "pipeline/sub/sibling.py",
                  "pipeline/upper.py", "pipeline/typeonly.py"}
PREPARE_DEPS = ["stages/x.py", "pipeline/__init__.py", "pipeline/base.py", "pipeline/lazy.py", "pipeline/helped.py",
                "pipeline/sub/leaf.py", "pipeline/sub/sibling.py", "pipeline/upper.py", "pipeline/typeonly.py"]
DVC_YAML = """
stages:
  x:
    foreach: ${kinds}
    do:
      cmd: python -m stages.x train ${item}
      deps: [data/in.txt, stages/x.py, pipeline/]
  g:
    matrix:
      alpha: [0.5, 1]
      tau: [4]
    cmd: python -m stages.x prepare ${item.alpha} ${item.tau}
    deps: [stages/x.py, pipeline/helped.py]
  p:
    cmd: python -m stages.x prepare
    deps: [stages/x.py]
    params: [kinds]
"""


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """The synthetic repository, a DVC project without git (read only: tests that change files make their own)."""
    root = write_tree(tmp_path_factory.mktemp("repo"), {
        **CODE, ".dvc/config": "[core]\n    no_scm = true\n", "params.yaml": "kinds: [a, b]\n", "dvc.yaml": DVC_YAML})
    return root


def test_function_level_selection_of_the_entry_module(repo):
    # prepare: module-level imports, what its helper imports, and everything those modules import anywhere
    # (inside functions, relative, under TYPE_CHECKING); never what only train, load or __main__ import
    assert stage_closure(repo, "python -m stages.x prepare", []) == PREPARE
    assert stage_closure(repo, "python -m stages.x train extra args", []) == BASE | {
        "pipeline/trainer.py", "pipeline/coded/__init__.py"}
    # through a module-level dispatch table, and into a class's methods
    assert stage_closure(repo, "python -m stages.x dispatch prepare", []) == PREPARE
    assert stage_closure(repo, "python -m stages.x load", []) == BASE | {"pipeline/loaded.py"}
    # a parameter or local of the same name as another stage function is that local, not the function;
    # a comprehension's variable is its own scope, so the `train` after it is the module-level one
    assert stage_closure(repo, "python -m stages.x shadow", []) == BASE
    assert stage_closure(repo, "python -m stages.x unshadowed", []) == BASE | {
        "pipeline/trainer.py", "pipeline/coded/__init__.py"}


def test_report_deps_are_roots_followed_at_module_level(repo):
    closure = stage_closure(repo, "python -m stages.x load", ["data/in.txt", "reports/r.py"])
    assert closure == BASE | {"pipeline/loaded.py", "reports/r.py", "pipeline/reported.py"}


def test_an_unknown_function_or_command_is_a_clear_error(repo):
    with pytest.raises(ClosureError, match=r"^`python -m stages\.x evaluate 3`: stages/x\.py has no top-level "
                                           r"function 'evaluate'$"):
        stage_closure(repo, "python -m stages.x evaluate 3", [])
    with pytest.raises(ClosureError, match=r"^`python -m stages\.x TABLE`: .*no top-level function 'TABLE'"):
        stage_closure(repo, "python -m stages.x TABLE", [])       # a module-level name, not a function
    assert check_stage(repo, "s", "python train.py", ["train.py"]) == [
        "s: `python train.py`: not of the form `python -m stages.<module> <function> [args...]`"]


def test_exact_deps_pass_and_exemptions_need_none(repo):
    # no dep for the docstring-only stages/__init__.py and pipeline/sub/__init__.py, nor for pipeline/tracking.py
    assert check_stage(repo, "p", "python -m stages.x prepare", PREPARE_DEPS + ["data/in.txt"]) == []
    assert "pipeline/tracking.py" in RECORDS_ONLY
    tracked = stage_closure(repo, "python -m stages.x tracked", [])
    assert "pipeline/tracking.py" in tracked
    deps = ["stages/x.py", "pipeline/__init__.py", "pipeline/base.py", "pipeline/lazy.py"]
    assert check_stage(repo, "t", "python -m stages.x tracked", deps) == []
    # listed while not imported: not an error either
    listed = deps + ["pipeline/loaded.py", "pipeline/tracking.py"]
    assert check_stage(repo, "t", "python -m stages.x load", listed) == []


def test_missing_deps_name_the_stage_and_file(repo):
    deps = [d for d in PREPARE_DEPS if d not in ("pipeline/__init__.py", "pipeline/sub/sibling.py")]
    assert check_stage(repo, "g@0.5-4", "python -m stages.x prepare 0.5 4", deps) == [
        "g@0.5-4: imports pipeline/__init__.py but no dep covers it (add it to the stage's deps in dvc.yaml)",
        "g@0.5-4: imports pipeline/sub/sibling.py but no dep covers it (add it to the stage's deps in dvc.yaml)"]
    # an __init__.py with code needs its dep, one with only a docstring does not
    train = ["stages/x.py", "pipeline/__init__.py", "pipeline/base.py", "pipeline/lazy.py", "pipeline/trainer.py"]
    assert check_stage(repo, "x@a", "python -m stages.x train a", train) == [
        "x@a: imports pipeline/coded/__init__.py but no dep covers it (add it to the stage's deps in dvc.yaml)"]


def test_extra_code_deps_are_reported_and_data_deps_ignored(repo):
    deps = PREPARE_DEPS + ["pipeline/trainer.py", "stages/other.py", "pipeline/coded", "data/unused.pt", "models/m"]
    assert check_stage(repo, "p", "python -m stages.x prepare", deps) == [
        "p: lists pipeline/trainer.py but does not import it (remove it from the stage's deps)",
        "p: lists stages/other.py but does not import it (remove it from the stage's deps)",
        "p: lists pipeline/coded but does not import it (remove it from the stage's deps)"]


def test_folder_deps_cover_the_files_inside(repo):
    assert check_stage(repo, "p", "python -m stages.x prepare", ["stages", "pipeline/"]) == []
    deps = [d for d in PREPARE_DEPS if not d.startswith("pipeline/sub/")] + ["pipeline/sub"]
    assert check_stage(repo, "p", "python -m stages.x prepare", deps) == []
    # a folder holding none of the closure is extra, a folder holding some of it is not
    assert check_stage(repo, "x@a", "python -m stages.x train a", [
        "stages/x.py", "pipeline/__init__.py", "pipeline/base.py", "pipeline/lazy.py", "pipeline/trainer.py",
        "pipeline/coded/", "pipeline/sub"]) == [
        "x@a: lists pipeline/sub but does not import it (remove it from the stage's deps)"]


def test_expanded_stages_use_dvcs_own_expansion(repo):
    stages = expanded_stages(repo)
    assert stages == {
        "x@a": ("python -m stages.x train a", ["data/in.txt", "stages/x.py", "pipeline/"]),
        "x@b": ("python -m stages.x train b", ["data/in.txt", "stages/x.py", "pipeline/"]),
        "g@0.5-4": ("python -m stages.x prepare 0.5 4", ["stages/x.py", "pipeline/helped.py"]),
        "g@1-4": ("python -m stages.x prepare 1 4", ["stages/x.py", "pipeline/helped.py"]),
        "p": ("python -m stages.x prepare", ["stages/x.py"])}     # params deps left out
    problems = [p for name, (cmd, deps) in stages.items() for p in check_stage(repo, name, cmd, deps)]
    assert "x@b: imports pipeline/trainer.py but no dep covers it (add it to the stage's deps in dvc.yaml)" \
        not in problems                                            # the folder dep covers it
    assert "p: imports pipeline/helped.py but no dep covers it (add it to the stage's deps in dvc.yaml)" in problems
    assert "g@1-4: imports pipeline/helped.py but no dep covers it (add it to the stage's deps in dvc.yaml)" \
        not in problems


def test_stale_for_edit(repo):
    assert stale_for_edit(repo, "pipeline/helped.py") == {"x@a", "x@b", "g@0.5-4", "g@1-4"}
    assert stale_for_edit(repo, "pipeline/sub/leaf.py") == {"x@a", "x@b"}
    assert stale_for_edit(repo, "stages/x.py") == {"x@a", "x@b", "g@0.5-4", "g@1-4", "p"}
    assert stale_for_edit(repo, "reports/r.py") == set()


def test_namespace_packages_and_submodule_or_name_imports(tmp_path):
    root = write_tree(tmp_path, {
        "stages/x.py": "from pipeline.pkg import sub, name\nfrom pipeline.pkg.sub import thing\n\n\n"
                       "def run(argv):\n    from pipeline.ns.mod import f\n",
        "pipeline/pkg/__init__.py": "name = 1\n", "pipeline/pkg/sub.py": "thing = 1\n",
        "pipeline/ns/mod.py": "import numpy\n\n\ndef f(): pass\n"})      # stages/ and pipeline/ns/ without __init__
    assert stage_closure(root, "python -m stages.x run", []) == {
        "stages/x.py", "pipeline/pkg/__init__.py", "pipeline/pkg/sub.py", "pipeline/ns/mod.py"}


def test_the_real_dvc_yaml_lists_exactly_the_code_each_stage_imports():
    stages = expanded_stages(ROOT)
    assert len(stages) > 20
    problems = [p for name, (cmd, deps) in stages.items() for p in check_stage(ROOT, name, cmd, deps)]
    if problems:
        pytest.fail(f"{len(problems)} problems in dvc.yaml code deps (each stage lists exactly the repository "
                    f".py files its command imports; see tests/import_closure.py):\n" + "\n".join(problems),
                    pytrace=False)
