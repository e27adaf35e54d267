"""What seeds 001 and 002 printed for the theory items, and where our answer to each is.

Pure data: the numbers as the reports printed them (typos included) and, for the scorecard,
one claim per number (see pipeline/scorecard/claims.py for the locator and kind grammar).
"""

# seed 001 Q1: the 11-layer CNN. Output (H x W x C or units), parameters, receptive field as printed.
SEED001_REPORTED = {
    "L1 conv 7x7, 32": ("128x128x32", 4736, "49"),
    "L2 conv 5x5, 64, stride 2": ("62x62x62", 51264, "1225"),
    "L3 max-pool 2": ("31x31x64", 0, "4900"),
    "L4 conv 3x3, 128, dilation 2": ("27x27x128", 73856, ""),
    "L5 conv 3x3, 128": ("25x25x25", 147584, ""),
    "L6 max-pool 2": ("12x12x12", 0, ""),
    "L7 conv 3x3, 256": ("10x10x256", 295168, ""),
    "L8 max-pool 2": ("5x5x256", 0, ""),
    "L9 flatten + FC 1024": ("1024", 6554624, ""),
    "L10 dropout": ("1024", 0, ""),
    "L11 FC 10": ("10", 10250, ""),
}
# seed 001 Q3: the gradient through global max pooling after a 2x2 convolution
GMP_REPORTED = {"dw": (-1.0, 5.0, 3.0, 0.0), "db": 1.0, "max": 10.0}
# seed 001 Q4: two steps of SGD with momentum
MOMENTUM_REPORTED = {"a": 4.04, "b": 2.04, "c": -4.04, "d": 4.04}

EXPERIMENT = {
    "title": "Theory answers, checked by computation",
    "seed": "seeds 001 (CNN shapes, gradients, momentum) and 002 (CNN homework theory)",
    "needs": "",
}

_LAYERS = "data/eval/theory/seed001_layers.csv"
_TYPO = "the seed's {0} is a typo: {1} filters give {1} channels (its parameter count agrees)"
_RF = ("the seed's receptive fields grow by products (49 = 7², then 35², 70²); a field grows by (k − 1) × "
       "jump per layer, which gives 7, 11, 13 px sides — checked by autograd on an impulse")
_NOTES = {
    ("L2 conv 5x5, 64, stride 2", "output"): _TYPO.format("62x62x62", 64),
    ("L5 conv 3x3, 128", "output"): _TYPO.format("25x25x25", 128),
    ("L6 max-pool 2", "output"): "the seed's 12x12x12 is a typo: pooling keeps L5's 128 channels",
}

CLAIMS = [
    *({"item": f"{layer}: output", "seed": out, "ours": f"{_LAYERS}:output@layer={layer}",
       "note": _NOTES.get((layer, "output"), "")} for layer, (out, _, _) in SEED001_REPORTED.items()),
    *({"item": f"{layer}: parameters", "seed": params, "ours": f"{_LAYERS}:parameters@layer={layer}"}
      for layer, (_, params, _) in SEED001_REPORTED.items() if params),
    *({"item": f"{layer}: receptive field (px²)", "seed": int(rf), "ours": f"{_LAYERS}:receptive_field@layer={layer}|area",
       "note": _RF} for layer, (_, _, rf) in SEED001_REPORTED.items() if rf),
    *({"item": f"global max pooling: dLoss/dw{i + 1}", "seed": w,
       "ours": f"data/eval/theory/global_max_pool.csv:dw{i + 1}"} for i, w in enumerate(GMP_REPORTED["dw"])),
    {"item": "global max pooling: dLoss/db", "seed": GMP_REPORTED["db"], "ours": "data/eval/theory/global_max_pool.csv:db"},
    *({"item": f"momentum SGD, {k} after two steps", "seed": v, "ours": f"data/eval/theory/momentum_steps.csv:{k}@step=2",
       "tol": 0.005, "digits": 2} for k, v in MOMENTUM_REPORTED.items()),
    {"item": "hat-function network: largest error at the knots", "seed": None,
     "ours": "metrics/theory/checks.json:hat_max_error_at_knots", "kind": "ours",
     "note": "sums of four-ReLU hats interpolate the function exactly at the knots"},
    {"item": "constant initialisation: spread between hidden units after training", "seed": None,
     "ours": "metrics/theory/checks.json:symmetry_constant_spread", "kind": "ours",
     "note": "0: the symmetry never breaks; random initialisation and dropout break it"},
    {"item": "residual vs plain net: first-layer / last-layer gradient norm", "seed": None,
     "ours": "metrics/theory/checks.json:grad_norm_first_over_last_residual", "kind": "ours",
     "baseline": "metrics/theory/checks.json:grad_norm_first_over_last_plain", "baseline_label": "the plain net", "better": None,
     "note": "skip connections keep the first layer's gradient alive"},
]
