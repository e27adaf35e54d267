"""Render one experiment's report: reports/<name>.py (jupytext) -> reports/<name>.ipynb
(papermill, a real kernel) -> reports/<name>.html. Each experiment's `report` stage calls
`render_report` with the papermill parameters its notebook takes beyond `scale` and `root`."""
from __future__ import annotations

from pathlib import Path

from pipeline.core.params import load_params
from pipeline.core.settings import settings_from
from pipeline.report import render

REPORTS = Path("reports")


def render_report(name: str, values: dict | None = None, preface: str | None = None) -> None:
    """`preface`: markdown put above everything, the report's first line."""
    settings = settings_from(load_params())
    parameters = {"scale": settings.scale, "root": ".", **(values or {})}
    render(REPORTS / f"{name}.py", REPORTS / f"{name}.ipynb", REPORTS / f"{name}.html", parameters, cwd=Path.cwd(),
           preface=preface)
    print(f"{name}_report: {REPORTS / f'{name}.html'}")
