"""scorecard — did it reproduce? `python -m stages.scorecard build`

build: every number the seed reports printed (each experiment's pipeline/<experiment>/seed.py),
ours beside it from whatever results exist, a verdict per row -> reports/index.html (the page),
reports/scorecard.json (the table) and metrics/scorecard.json (counts for `dvc metrics`). It runs
as the last DVC stage, and `make repro` runs it directly when stages failed (no downloads), so the
page always shows what exists and what the rest needs.
"""
from __future__ import annotations

from pathlib import Path

from stages.common import main

PAGE, TABLE, COUNTS = Path("reports/index.html"), Path("reports/scorecard.json"), Path("metrics/scorecard.json")
MLFLOW_HINT = ("MLflow links open the tracking UI: start it with `mlflow ui --backend-store-uri sqlite:///mlflow.db` "
               "at the repository root (or set MLFLOW_TRACKING_URI to a team server); an experiment with no runs "
               "yet has no link.")


def build() -> None:
    from dataclasses import asdict

    from pipeline.core.files import write_json, write_text
    from pipeline.core.params import flatten, load_params
    from pipeline.scorecard import page
    from pipeline.scorecard.card import build as build_card
    from pipeline.scorecard.card import file_lookup, totals
    from pipeline.scorecard.catalogue import experiments
    from pipeline.tracking import experiment_ids, ui_address

    param = flatten(load_params("params.yaml")).get        # dotted keys: "scale", "mnist.dataset"

    exps = experiments()
    summaries, rows = build_card(exps, file_lookup(), param)
    ids, ui = experiment_ids([e.name for e in exps]), ui_address()
    for s in summaries:
        if s.status != "not run":
            s.links["report"] = f"{s.name}.html"
        if s.name in ids:
            # MLflow 3's UI opens in its GenAI mode unless told otherwise: open the runs in model-training mode
            s.links["mlflow"] = f"{ui}/#/experiments/{ids[s.name]}?workflowType=machine_learning"
    write_text(page.render(summaries, rows, str(param("scale")), MLFLOW_HINT), PAGE)
    write_json({"scale": param("scale"), "experiments": [asdict(s) for s in summaries],
                "rows": [asdict(r) for r in rows]}, TABLE)
    counts = totals(summaries)
    write_json(counts, COUNTS)
    done = [s.name for s in summaries if s.status == "done"]
    print(f"scorecard: {len(rows)} rows, {counts['rows_matched'] + counts['rows_beaten']} matched or beaten; done: "
          f"{', '.join(done) or 'none'} -> {PAGE}")


if __name__ == "__main__":
    main(__doc__, {"build": build})
