"""The scorecard: every experiment's claims judged against whatever results exist.

`build` takes the experiments' seed catalogues and a `lookup(locator)` that returns our value or
None (the stage reads the files); it returns one summary per experiment and one Row per claim.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.scorecard.claims import VERDICTS, Claim, Locator, Row, claim, fmt, judge, value_at

GOOD, BAD = ("matched", "beaten", "explained"), ("short", "differs")


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    seed: str                       # which seed report, in words
    needs: str                      # what a run needs that may be missing (a dataset, a GPU)
    expects: dict = field(default_factory=dict)     # params the seed's setting has: {"mnist.dataset": "mnist"}
    claims: tuple[Claim, ...] = ()


def experiment(name: str, module) -> Experiment:
    """An Experiment from a seed module's EXPERIMENT and CLAIMS."""
    meta = dict(module.EXPERIMENT)
    return Experiment(name=name, title=meta.pop("title"), seed=meta.pop("seed"), needs=meta.pop("needs"),
                      expects=meta.pop("expects", {}), claims=tuple(claim(name, c) for c in module.CLAIMS))


@dataclass
class Summary:
    name: str
    title: str
    seed: str
    status: str                     # "done", "partly run", "not run"
    line: str                       # one sentence: what reproduced
    counts: dict
    comparable: str = ""            # why trained numbers are not held against the seed's ("" if they are)
    links: dict = field(default_factory=dict)


def file_lookup(root: Path = Path(".")) -> Callable[[Locator], object]:
    """lookup(locator) reading results under `root`, each file once: JSON as a dict, CSV as a
    DataFrame; None where the file does not exist (yet)."""
    import pandas as pd

    files: dict[str, object] = {}

    def lookup(loc: Locator):
        if loc.path not in files:
            path = Path(root) / loc.path
            files[loc.path] = (None if not path.exists() else json.loads(path.read_text()) if path.suffix == ".json"
                               else pd.read_csv(path))
        return value_at(files[loc.path], loc)
    return lookup


def comparability(exp: Experiment, params: Callable[[str], object]) -> str:
    """Why this run's trained numbers cannot be compared with the seed's, or ''."""
    reasons = [f"ran with {key} = {params(key)} (the seed's: {want})"
               for key, want in exp.expects.items() if params(key) != want]
    if params("scale") == "smoke":
        reasons.insert(0, "smoke scale: tiny subsets, two epochs")
    return "; ".join(reasons)


def judge_claim(c: Claim, lookup: Callable[[Locator], object], comparable: str) -> Row:
    ours = [lookup(loc) for loc in c.ours]
    ours = [v * c.scale if isinstance(v, (int, float)) and not isinstance(v, bool) and c.scale != 1 else v
            for v in ours]
    base = lookup(c.baseline) if c.baseline else None
    base = base * c.scale if isinstance(base, (int, float)) and c.scale != 1 else base
    verdict, detail = judge(c, ours, base, comparable)
    shown = ours[0] if len(ours) == 1 else (None if None in ours else ours)
    return Row(c.experiment, c.item, fmt(c.seed, c.digits, c.unit), fmt(shown, c.digits, c.unit), verdict, detail,
               {"seed": c.seed, "ours": ours[0] if len(ours) == 1 else ours, "baseline": base, "kind": c.kind})


def _needs(exp: Experiment) -> str:
    return f"needs {exp.needs}" if exp.needs else "`dvc repro` builds it; nothing to download"


def summarise(exp: Experiment, rows: list[Row], comparable: str) -> Summary:
    counts = Counter(r.verdict for r in rows)
    run = len(rows) - counts["not run"]
    if run == 0:
        return Summary(exp.name, exp.title, exp.seed, "not run", f"not run — {_needs(exp)}", dict(counts))
    status = "done" if counts["not run"] == 0 else "partly run"
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts[v]]
    printed = sum(c.seed is not None for c in exp.claims)
    head = f"{printed} seed numbers" if printed else "the seed printed no numbers here; ours stand alone"
    line = f"{head}: {', '.join(parts)}" + (f" — {comparable}" if comparable else "")
    return Summary(exp.name, exp.title, exp.seed, status, line, dict(counts), comparable)


def build(experiments: list[Experiment], lookup: Callable[[Locator], object],
          params: Callable[[str], object]) -> tuple[list[Summary], list[Row]]:
    summaries, rows = [], []
    for exp in experiments:
        comparable = comparability(exp, params)
        mine = [judge_claim(c, lookup, comparable) for c in exp.claims]
        summaries.append(summarise(exp, mine, comparable))
        rows += mine
    return summaries, rows


def totals(summaries: list[Summary]) -> dict:
    """Flat counts for `dvc metrics`: verdicts over all rows, and experiments by status."""
    verdicts = Counter()
    for s in summaries:
        verdicts.update(s.counts)
    out = {f"rows_{v.replace(' ', '_')}": verdicts[v] for v in VERDICTS}
    out.update({f"experiments_{s.replace(' ', '_')}": sum(x.status == s for x in summaries)
                for s in ("done", "partly run", "not run")})
    return out
