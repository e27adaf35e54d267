"""Seed 000 Q1 (two separable classes): the report only plotted its training run, so every row
here is ours alone — the answer the report owed: can the loss be exactly zero?

Pure data; the claim grammar is in pipeline/scorecard/claims.py.
"""

EXPERIMENT = {
    "title": "Can the loss be exactly zero? Two separable classes",
    "seed": "seed 000 — MLP homework (Amirkabir Univ., HW2), Q1",
    "needs": "",
}

_ZERO = "metrics/separable/zero_loss.json"
_BCE = "BCELoss on both softmax outputs (the report's)"

CLAIMS = [
    {"item": "blobs: validation accuracy after 200 epochs", "seed": None, "kind": "ours", "digits": 3,
     "ours": "metrics/separable/train.json:val_accuracy", "note": "the report only plotted its run"},
    {"item": "four points: loss in float32", "seed": None, "kind": "ours", "ours": f"{_ZERO}:four_points.loss_float32",
     "note": "exactly 0.0 — by rounding; in exact arithmetic the loss stays positive"},
    {"item": "four points: loss in exact arithmetic", "seed": None, "kind": "ours",
     "ours": f"{_ZERO}:four_points.loss_exact", "note": "positive, however large the margin"},
    {"item": "logit margin where the report's loss rounds to 0, float32", "seed": None, "kind": "ours", "digits": 2,
     "ours": f"{_ZERO}:margins.{_BCE}.float32",
     "baseline": f"{_ZERO}:margins.{_BCE}.float64", "baseline_label": "in float64", "better": None},
]
