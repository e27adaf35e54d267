"""Seed 002 practical 2 (FER-2013, seven expressions): the extracted report printed no numbers,
so the rows are ours alone.

Pure data; the claim grammar is in pipeline/scorecard/claims.py.
"""

EXPERIMENT = {
    "title": "Facial expressions on FER-2013, with a live demo",
    "seed": "seed 002 — CNN homework (Sharif Univ.), practical 2",
    "needs": "FER-2013 (fer2013.csv or its folders, placed by hand or fer.source); a GPU for full scale",
}

_PCT = {"seed": None, "kind": "ours", "digits": 2, "unit": "%", "scale": 100}

CLAIMS = [
    {"item": "CNN: test accuracy (with flip averaging)", "ours": "metrics/fer/cnn.json:test_accuracy", **_PCT},
    {"item": "CNN: macro precision", "ours": "metrics/fer/cnn.json:test_macro_precision", **_PCT},
    {"item": "CNN: macro recall", "ours": "metrics/fer/cnn.json:test_macro_recall", **_PCT},
]
