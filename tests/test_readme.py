"""README.md and docs/ say only what is true of the repository: every relative link resolves (to a
heading too, where it names one), every repository path, `make` target, `python -m` module, dvc
stage and `-S` parameter key they name exists, every docs page is one click from the README, and
the pipeline graph drawn in docs/stages.md is dvc's own graph of dvc.yaml, collapsed to families."""
from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from pipeline.plots_page import PAGE as PLOTS_PAGE
from tests.conftest import ROOT

README = ROOT / "README.md"
GRAPH_PAGE = ROOT / "docs" / "stages.md"
MAX_README_LINES = 300

# Code names of these forms are repository paths: source files in git, or outputs dvc.yaml declares.
PATH_PREFIXES = ("pipeline/", "stages/", "tests/", "benchmarks/", "reports/", "docs/", ".dvc/plots",
                 ".ci/", "data/", "models/", "metrics/", "plots/", "figures/")
TOP_FILES = {"params.yaml", "dvc.yaml", "dvc.lock", "Makefile", "pyproject.toml", "requirements.lock",
             "README.md"}
# `python -m` modules that are not the repository's own: the tools the environment installs.
TOOL_MODULES = {"pytest", "pip", "venv", "torch.distributed.run"}
# dvc options that take a value (the value is no stage name).
DVC_VALUE_OPTIONS = {"-S", "--set-param", "-n", "--name", "-j", "--jobs", "-m", "--message"}
PLACEHOLDER = "⟨⟩"     # stands for <name> and … in a dvc command: neither a stage nor a key

PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
IDS = [str(p.relative_to(ROOT)) for p in PAGES]


# ---- reading Markdown ----------------------------------------------------------------------------

FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)   # also inside list items


def code_texts(text: str) -> list[str]:
    """The code of a page: each fenced block (mermaid left out) and each inline `span`."""
    blocks = [body for lang, body in FENCE.findall(text) if lang != "mermaid"]
    prose = FENCE.sub("", text)
    spans = [s.replace("\n", " ") for s in re.findall(r"`([^`]+)`", prose)]
    return [b.replace("\\\n", " ") for b in blocks] + spans


def links(text: str) -> list[str]:
    """Targets of [text](target) and ![alt](target) outside code."""
    prose = re.sub(r"`[^`]*`", "", FENCE.sub("", text))
    return re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())   # a link: its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", text), re.MULTILINE):
        s = slug(heading)
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def broken_links(page: Path) -> list[str]:
    text, bad = page.read_text(), []
    for target in links(text):
        if re.match(r"[a-z]+:", target):                      # https:, mailto: ...
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest.read_text()):
            bad.append(f"{target}: no heading #{fragment} in {dest.name}")
    return bad


# ---- what the repository has ----------------------------------------------------------------------

@cache
def tracked() -> tuple[str, ...]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return tuple(out.split())


@cache
def dvc_index() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every output path dvc.yaml declares, every stage's address) with foreach/matrix expanded."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        stages = list(repo.index.stages)
        outs = tuple(str(o.def_path).rstrip("/") for s in stages for o in s.outs)
        return outs, tuple(s.addressing for s in stages)


def expand(name: str) -> list[str]:
    """A named path as fnmatch patterns: <placeholder> and … match anything, {a,b} is a choice."""
    name = re.sub(r"<[^>]*>|…", "*", name.replace("\\", ""))
    m = re.search(r"\{([^{}]*,[^{}]*)\}", name)
    if not m:
        return [name]
    return [p for alt in m.group(1).split(",") for p in expand(name[:m.start()] + alt + name[m.end():])]


def known(pattern: str, paths: tuple[str, ...], outs: tuple[str, ...]) -> bool:
    """Some tracked file or declared output is the pattern, lies under it (a folder), or holds it
    (the pattern is inside an output folder); compared part by part."""
    want = pattern.rstrip("/").split("/")
    for path in paths + outs:
        have = path.split("/")
        n = min(len(want), len(have))
        if len(want) > len(have) and path not in outs:
            continue
        if all(fnmatch.fnmatchcase(h, w) for h, w in zip(have[:n], want[:n])):
            return True
    return False


def named_paths(text: str) -> set[str]:
    out = set()
    for code in code_texts(text):
        for token in code.split():
            token = token.strip("'\"(),;:").removesuffix(".")
            if token in TOP_FILES or (token.startswith(PATH_PREFIXES) and "://" not in token):
                out.add(token)
    return out


def missing_paths(text: str) -> list[str]:
    paths, (outs, _) = tracked(), dvc_index()

    def exists(p: str) -> bool:
        if p == str(PLOTS_PAGE):            # written per checkout by `make env` (pipeline/plots_page.py)
            return True
        return (ROOT / p).exists() if p in TOP_FILES else any(known(x, paths, outs) for x in expand(p))

    return sorted(p for p in named_paths(text) if not exists(p))


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.MULTILINE))


def named_make_targets(text: str) -> set[str]:
    return {t for code in code_texts(text) for t in re.findall(r"(?:^|[\s;&|])make\s+([A-Za-z][\w-]*)(?![\w=])", code)}


def named_modules(text: str) -> set[str]:
    found = set()
    for code in code_texts(text):
        found |= set(re.findall(r"python3?\s+-m\s+([\w.<>]+)", code))
        found |= set(re.findall(r"torchrun\b[^\n]*?\s-m\s+([\w.<>]+)", code))
    return {m.rstrip(".") for m in found}


def module_missing(module: str) -> bool:
    if module in TOOL_MODULES:
        return False
    pattern = re.sub(r"<[^>]*>", "*", module).replace(".", "/")
    return not any(fnmatch.fnmatchcase(f, f"{pattern}.py") or fnmatch.fnmatchcase(f, f"{pattern}/__main__.py")
                   for f in tracked())


def dvc_commands(text: str) -> list[list[str]]:
    """The arguments of every `dvc repro|dag|exp run` named, comments and placeholders removed."""
    out = []
    for code in code_texts(text):
        for line in code.splitlines():
            line = re.sub(r"<[^>]*>|…", PLACEHOLDER, line.split(" # ")[0])
            # a command starts a line or follows && ; or | (in a drawing, `dvc repro, …` is none)
            for m in re.finditer(r"(?:^|&&|;|\|)\s*dvc\s+(repro|dag|exp\s+run)(?![\w,])([^&|;]*)", line.strip()):
                try:
                    out.append(shlex.split(m.group(2)))
                except ValueError:                   # an unbalanced quote in prose: no command
                    continue
    return out


def named_stages_and_keys(text: str) -> tuple[set[str], set[str]]:
    stages, keys = set(), set()
    for args in dvc_commands(text):
        taking = None
        for arg in args:
            if taking:
                if taking in ("-S", "--set-param") and re.match(r"[\w.]+=", arg):
                    keys.add(arg.split("=", 1)[0])
                taking = None
            elif arg in DVC_VALUE_OPTIONS:
                taking = arg
            elif not arg.startswith("-") and re.fullmatch(r"[a-z][\w@.-]*", arg):
                stages.add(arg)
    return stages, keys


def stage_exists(name: str) -> bool:
    _, addresses = dvc_index()
    return name in addresses or any(a.split("@")[0] == name for a in addresses)


def key_exists(key: str) -> bool:
    node = yaml.safe_load((ROOT / "params.yaml").read_text())
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


# ---- the checks, on every page ----------------------------------------------------------------------

def test_the_readme_is_read_in_five_minutes():
    lines = README.read_text().count("\n")
    assert lines <= MAX_README_LINES, f"README.md: {lines} lines; move detail to docs/ (at most {MAX_README_LINES})"


def test_every_docs_page_is_one_click_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(README.read_text())}
    unlinked = [str(p.relative_to(ROOT)) for p in PAGES[1:] if p.resolve() not in linked]
    assert unlinked == [], f"README.md links none of {unlinked}"


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_repository_path_named_exists(page):
    assert missing_paths(page.read_text()) == [], "neither in git nor an output in dvc.yaml"


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_make_target_named_exists(page):
    assert sorted(named_make_targets(page.read_text()) - make_targets()) == []


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_python_module_named_is_a_file_of_the_repository(page):
    assert sorted(m for m in named_modules(page.read_text()) if module_missing(m)) == []


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_dvc_stage_and_parameter_named_exists(page):
    stages, keys = named_stages_and_keys(page.read_text())
    assert sorted(s for s in stages if not stage_exists(s)) == [], "no such stage in dvc.yaml"
    assert sorted(k for k in keys if not key_exists(k)) == [], "no such key in params.yaml"


def test_the_checks_catch_what_is_wrong(tmp_path):
    """Each check, on a page that names things that do not exist, says so."""
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[a](missing.md) [b](#title) [c](#nowhere) [d](https://example.org)\n\n"
                    "`pipeline/nowhere.py` `pipeline/core/engine.py` `metrics/superres/eval.json` "
                    "`metrics/nowhere/x.json` `figures/superres/*.png`\n\n"
                    "```bash\nmake repro\nmake no-such-target ARGS=1\npython -m stages.nowhere train\n"
                    "python -m stages.superres features\npython -m pytest -n 0\n"
                    "dvc exp run -n x -S superres.train.epochs=3 -S superres.train.nokey=1 superres_train nostage\n"
                    "```\n")
    text = page.read_text()
    assert broken_links(page) == ["missing.md: no such file", "#nowhere: no heading #nowhere in page.md"]
    assert missing_paths(text) == ["metrics/nowhere/x.json", "pipeline/nowhere.py"]
    assert named_make_targets(text) - make_targets() == {"no-such-target"}
    assert [m for m in sorted(named_modules(text)) if module_missing(m)] == ["stages.nowhere"]
    stages, keys = named_stages_and_keys(text)
    assert sorted(s for s in stages if not stage_exists(s)) == ["nostage"]
    assert sorted(k for k in keys if not key_exists(k)) == ["superres.train.nokey"]


# ---- the graph ------------------------------------------------------------------------------------

def family(stage: str) -> str:
    """superres_train@literal -> superres_train; colourize_sweep_cnn_lr@0.1 -> colourize_sweep."""
    name = stage.split("@")[0]
    return "colourize_sweep" if name.startswith("colourize_sweep_") else name


def family_edges() -> set[tuple[str, str]]:
    """(upstream, downstream) between families, transitively reduced, the scorecard left out (it
    reads every experiment's results; the page says so in words)."""
    import networkx as nx
    from dvc.repo import Repo

    g = nx.DiGraph()
    with Repo(str(ROOT)) as repo:
        for a, b in repo.index.graph.edges():          # a depends on b
            fa, fb = family(a.addressing), family(b.addressing)
            if fa != fb and "scorecard" not in (fa, fb):
                g.add_edge(fb, fa)
    return set(nx.transitive_reduction(g).edges())


def test_the_drawn_graph_is_dvc_s_graph():
    text = GRAPH_PAGE.read_text()
    block = re.search(r"```mermaid\n(.*?)```", text, re.DOTALL)
    assert block, f"{GRAPH_PAGE.relative_to(ROOT)}: the ```mermaid block of the pipeline graph is missing"
    drawn = set(re.findall(r"^\s+(\w+) --> (\w+)\s*$", block.group(1), re.MULTILINE))
    real = family_edges()
    assert sorted(real - drawn) == [] and sorted(drawn - real) == []
