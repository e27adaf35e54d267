"""One scorecard row: a number a seed report printed, ours beside it, and a verdict.

Each experiment's `seed.py` lists its claims as plain dicts (pure data, no imports), so the
seed's numbers sit in one place per experiment. Where ours lives is a locator string:

    metrics/autoencoder/classifier_literal.json:test_accuracy        a JSON key (dotted path)
    plots/autoencoder/autoencoder.csv:train_loss@epoch=1             a CSV cell: column @ row filter
    plots/batch_size/64.csv:test_accuracy                            a CSV column's last row
    data/eval/theory/seed001_layers.csv:receptive_field@layer=L1 conv 7x7, 32|area
                                                                      ... then a transform

Kinds: `equal` (an exact result: matched or differs), `higher` / `lower` (a trained result where
higher / lower is better: matched within `tol`, beaten, or short), `setting` (the seed's setting
next to ours; differs is explained by `note`), `info` (both shown, not compared: timings on other
hardware), `ours` (the seed printed none; compared with `baseline` where one is given) and
`descending` (several of ours, expected in falling order).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from pipeline.core.errors import PipelineError

KINDS = ("equal", "higher", "lower", "setting", "info", "ours", "descending")
TRAINED = ("higher", "lower", "descending", "ours")      # depend on the data and the scale they ran at
VERDICTS = ("matched", "beaten", "short", "differs", "explained", "ours only", "not comparable", "not run")
TRANSFORMS: dict[str, Callable] = {
    "area": lambda v: math.prod(int(s) for s in str(v).split()[0].split("x")),   # "7x7" -> 49
}


@dataclass(frozen=True)
class Locator:
    path: str
    key: str
    row: tuple[str, str] | None = None      # CSV: (column, value) picking the row; None: the last row
    transform: str | None = None

    @classmethod
    def parse(cls, text: str) -> Locator:
        body, _, transform = text.partition("|")
        path, sep, rest = body.partition(":")
        key, _, where = rest.partition("@")
        column, eq, value = where.partition("=")
        if not sep or not key or (where and not eq) or (transform and transform not in TRANSFORMS):
            raise PipelineError(f"scorecard locator {text!r}: write path:key[@column=value][|{'|'.join(TRANSFORMS)}]")
        return cls(path, key, (column, value) if where else None, transform or None)


@dataclass(frozen=True)
class Claim:
    experiment: str
    item: str
    seed: object                       # what the seed printed (None: it printed none)
    ours: tuple[Locator, ...]
    kind: str = "equal"
    tol: float = 0.0                   # |ours - seed| within tol counts as matched
    unit: str = ""
    scale: float = 1.0                 # ours x scale is shown and compared (fractions as %)
    digits: int | None = None          # decimals shown; None: up to 4 significant
    note: str = ""                     # why ours differs, or what the row means
    baseline: Locator | None = None    # kind `ours`: what ours is compared with ...
    baseline_label: str = ""           # ... and its name
    better: str | None = "higher"      # kind `ours` with a baseline: which way is better (None: just shown)


FIELDS = {f for f in Claim.__dataclass_fields__} - {"experiment"}


def claim(experiment: str, spec: dict) -> Claim:
    """A Claim from a seed.py dict; an unknown key or kind is one clear error."""
    unknown = set(spec) - FIELDS
    if unknown or spec.get("kind", "equal") not in KINDS or "item" not in spec or "ours" not in spec:
        raise PipelineError(f"{experiment} seed claim {spec.get('item', spec)!r}: unknown keys {sorted(unknown)} or kind "
                            f"{spec.get('kind')!r} (one of {', '.join(KINDS)}); item and ours are required")
    ours = spec["ours"] if isinstance(spec["ours"], (list, tuple)) else [spec["ours"]]
    base = spec.get("baseline")
    return Claim(**{**spec, "experiment": experiment, "ours": tuple(Locator.parse(o) for o in ours),
                    "baseline": Locator.parse(base) if base else None})


@dataclass
class Row:
    experiment: str
    item: str
    seed: str
    ours: str
    verdict: str
    detail: str = ""
    values: dict = field(default_factory=dict)   # the raw numbers, for the JSON table


def fmt(value, digits: int | None = None, unit: str = "") -> str:
    """A value as the page prints it: whole numbers with thousands separators, floats to `digits`."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return " / ".join(fmt(v, digits) for v in value) + (f" {unit}" if unit else "")
    if isinstance(value, (int, float)) and not (isinstance(value, float) and not math.isfinite(value)):
        if digits is not None:
            text = f"{value:,.{digits}f}"
        elif float(value).is_integer() and abs(value) < 1e15:
            text = f"{int(value):,}"
        else:
            text = f"{value:.4g}"
        return text + (f" {unit}" if unit else "")
    return str(value) + (f" {unit}" if unit and not isinstance(value, str) else "")


def _difference(d: float, c: Claim) -> str:
    return fmt(abs(d), c.digits if c.digits is not None else None, c.unit).replace(",", "")


def judge(c: Claim, ours: list, baseline=None, comparable: str = "") -> tuple[str, str]:
    """(verdict, detail) for one claim given our values (None where not produced yet).
    `comparable`: a reason ours cannot be held against the seed (smoke scale, other data)."""
    if any(v is None for v in ours):
        return "not run", ""
    value = ours[0]
    if any(isinstance(v, float) and math.isnan(v) for v in ours):
        return "differs", "ours has no value: the run diverged"
    if c.kind in TRAINED and comparable:
        return "not comparable", comparable
    if c.kind == "info":
        return "not comparable", c.note
    if c.kind == "ours":
        if baseline is None:
            return "ours only", c.note or "the seed printed no value"
        if c.better is None:
            return "ours only", f"{c.baseline_label}: {fmt(baseline, c.digits, c.unit)}" + (f"; {c.note}" if c.note else "")
        d = (value - baseline) if c.better == "higher" else (baseline - value)
        side = "beats" if d > 0 else "falls short of"
        return "ours only", f"{side} {c.baseline_label} by {_difference(d, c)}" + (f"; {c.note}" if c.note else "")
    if c.kind == "descending":
        ok = all(a > b for a, b in zip(ours, ours[1:]))
        return ("matched" if ok else "differs"), c.note
    if c.kind in ("equal", "setting"):
        same = (value == c.seed if isinstance(c.seed, str) or isinstance(value, str)
                else abs(value - c.seed) <= c.tol + 1e-12 * max(1.0, abs(c.seed)))
        if same:
            return "matched", ""
        return ("explained", c.note) if c.note else ("differs", f"by {_difference(value - c.seed, c)}")
    d = (value - c.seed) if c.kind == "higher" else (c.seed - value)
    if abs(d) <= c.tol:
        return "matched", f"within {fmt(c.tol, c.digits, c.unit)}"
    return ("beaten", f"by {_difference(d, c)}") if d > 0 else ("short", f"by {_difference(d, c)}")


def value_at(loaded, loc: Locator):
    """Our value at `loc` in an already loaded file (a dict from JSON, a DataFrame from CSV), or None."""
    if loaded is None:
        return None
    if isinstance(loaded, dict):
        value = loaded
        for part in loc.key.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        if value is None:             # written as null: the run produced no value (diverged)
            return float("nan")
    else:
        if loc.key not in loaded.columns or len(loaded) == 0:
            return None
        rows = loaded
        if loc.row is not None:
            column, wanted = loc.row
            if column not in loaded.columns:
                return None
            rows = loaded[loaded[column].astype(str) == wanted]
            if len(rows) == 0:       # a numeric column: 1 matches 1.0
                try:
                    rows = loaded[loaded[column].astype(float) == float(wanted)]
                except ValueError:
                    return None
            if len(rows) == 0:
                return None
        value = rows[loc.key].iloc[-1]
        value = value.item() if hasattr(value, "item") else value
    return TRANSFORMS[loc.transform](value) if loc.transform else value
