"""Seed 002 practical 1 (EMNIST ByClass, MLP vs CNN vs factorised CNN): the extracted report
printed no numbers, so every row is ours alone, the CNN held against the MLP of about its size.

Pure data; the claim grammar is in pipeline/scorecard/claims.py.
"""

EXPERIMENT = {
    "title": "MLP vs CNN on EMNIST ByClass (62 classes)",
    "seed": "seed 002 — CNN homework (Sharif Univ.), practical 1",
    "needs": "EMNIST ByClass (the network, or emnist.source); a GPU for full scale (700k images)",
}

_ACC = {"kind": "ours", "digits": 2, "unit": "%", "scale": 100}

CLAIMS = [
    {"item": "MLP (dropout, L2): test accuracy", "seed": None, "ours": "metrics/emnist/mlp.json:test_accuracy", **_ACC},
    {"item": "CNN: test accuracy", "seed": None, "ours": "metrics/emnist/cnn.json:test_accuracy", **_ACC,
     "baseline": "metrics/emnist/mlp.json:test_accuracy", "baseline_label": "the MLP"},
    {"item": "factorised CNN (k×1 then 1×k): test accuracy", "seed": None,
     "ours": "metrics/emnist/factorised.json:test_accuracy", **_ACC,
     "baseline": "metrics/emnist/cnn.json:test_accuracy", "baseline_label": "the CNN"},
    *({"item": f"{name}: parameters", "seed": None, "kind": "ours", "ours": f"metrics/emnist/{key}.json:parameters"}
      for key, name in (("mlp", "MLP"), ("cnn", "CNN"), ("factorised", "factorised CNN"))),
]
