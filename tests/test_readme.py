"""The README's pipeline graph is dvc's own graph of dvc.yaml, collapsed to stage families."""
from __future__ import annotations

import re

from tests.conftest import ROOT


def family(stage: str) -> str:
    """superres_train@literal -> superres_train; colourize_sweep_cnn_lr@0.1 -> colourize_sweep."""
    name = stage.split("@")[0]
    return "colourize_sweep" if name.startswith("colourize_sweep_") else name


def family_edges() -> set[tuple[str, str]]:
    """(upstream, downstream) between families, transitively reduced, the scorecard left out (it
    reads every experiment's results; the README says so in words)."""
    import networkx as nx
    from dvc.repo import Repo

    g = nx.DiGraph()
    with Repo(str(ROOT)) as repo:
        for a, b in repo.index.graph.edges():          # a depends on b
            fa, fb = family(a.addressing), family(b.addressing)
            if fa != fb and "scorecard" not in (fa, fb):
                g.add_edge(fb, fa)
    return set(nx.transitive_reduction(g).edges())


def test_the_readme_graph_is_dvc_s_graph():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```mermaid\n(.*?)```", text, re.DOTALL)
    assert block, "README: the ```mermaid block of the pipeline graph is missing"
    drawn = set(re.findall(r"^\s+(\w+) --> (\w+)\s*$", block.group(1), re.MULTILINE))
    real = family_edges()
    assert sorted(real - drawn) == [] and sorted(drawn - real) == []
