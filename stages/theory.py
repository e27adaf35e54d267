"""theory — the theory answers, checked by computation: `python -m stages.theory <stage>`.

compute: every table, verdict and figure of the answers; report.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.theory.config import TheoryConfig
from stages.common import begin, main

TABLES, METRICS, FIGURES = Path("data/eval/theory"), Path("metrics/theory/checks.json"), Path("figures/theory")


def compute() -> None:
    from pipeline.core.params import flatten, to_dict
    from pipeline.theory.answers import compute as compute_answers
    from pipeline.theory.figures import answer_figures

    st = begin("theory_compute", "theory", TheoryConfig, device=False)
    tables, checks = compute_answers(st.cfg, st.seed)
    for name, table in tables.items():
        st.write_csv(table, TABLES / f"{name}.csv")
    st.write_json(checks, METRICS)
    with st.tracked(flatten(to_dict(st.cfg))) as tracker:
        tracker.log_metrics({k: float(v) for k, v in checks.items()})
        st.figures(answer_figures(tables, st.cfg), FIGURES)
    st.done(f"{len(tables)} tables -> {TABLES}, checks -> {METRICS}")


def report() -> None:
    from stages.report import render_report

    render_report("theory")


if __name__ == "__main__":
    main(__doc__, {"compute": compute, "report": report})
