"""What seed 004 (CNN homework 2: colourising CIFAR-10 horses) printed, and where ours is.

Pure data; the claim grammar is in pipeline/scorecard/claims.py. Validation pixel accuracy in %.
"""

SEED_SWEEPS = {   # (model, swept key) -> {value: validation accuracy %}, 30 epochs, the rest at defaults
    ("cnn", "filters"): dict(zip([16, 32, 48, 64, 80, 96, 128], [43.2, 45.4, 44.2, 45.8, 46.0, 46.7, 46.7])),
    ("cnn", "lr"): dict(zip([1.0, 0.1, 0.01, 0.001, 1e-4, 1e-5], [7.4, 41.5, 46.7, 45.5, 41.5, 27.3])),
    ("unet", "filters"): dict(zip([16, 32, 48, 64, 80, 96, 128], [55, 56.4, 56.4, 57.4, 56.1, 56.8, 56.5])),
    ("unet", "lr"): dict(zip([10.0, 1.0, 0.1, 0.01, 0.001, 1e-4], [39.8, 61.2, 54, 57.6, 56.4, 45.7])),
}
SEED_HEADLINE = {   # model -> (validation accuracy %, validation loss, training seconds)
    "cnn": (44.7, 1.4972, 633), "unet": (56.4, 1.2096, 692), "residual": (70.5, 0.9064, 4349)}

EXPERIMENT = {
    "title": "Colourising CIFAR-10 horses: CNN, U-Net, residual",
    "seed": "seed 004 — CNN homework 2 (colourisation)",
    "needs": "CIFAR-10 (the network, or cifar10.source); a GPU for full scale in minutes",
}

_NAMES = {"cnn": "base CNN", "unet": "U-Net", "residual": "residual net"}
_ACC = {"kind": "higher", "tol": 0.05, "digits": 1, "unit": "%", "scale": 100}


def _sweep_file(model: str, key: str, value) -> str:
    """The sweep stage's metrics file, named as dvc names the foreach item (1e-05, 10.0, 32)."""
    item = repr(float(value)) if key == "lr" else str(value)
    return f"metrics/colourize/sweeps/{model}_{key}_{item}.json"


CLAIMS = [
    *({"item": f"{_NAMES[m]} ({'25' if m == 'residual' else '30'} epochs): validation accuracy", "seed": acc,
       "ours": f"metrics/colourize/{m}.json:val_accuracy", **_ACC,
       "note": "ours is a residual design of our own; the seed's network is not in the text" if m == "residual" else ""}
      for m, (acc, _, _) in SEED_HEADLINE.items()),
    *({"item": f"{_NAMES[m]}: validation loss", "seed": loss, "kind": "lower", "tol": 0.00005, "digits": 4,
       "ours": f"metrics/colourize/{m}.json:val_loss"} for m, (_, loss, _) in SEED_HEADLINE.items()),
    *({"item": f"{_NAMES[m]}: training time", "seed": secs, "kind": "info", "unit": "s", "digits": 0,
       "ours": f"metrics/colourize/{m}.json:train_seconds", "note": "wall time on different hardware"}
      for m, (_, _, secs) in SEED_HEADLINE.items()),
    *({"item": f"{_NAMES[m]} sweep, {'filters' if k == 'filters' else 'learning rate'} {v:g}: validation accuracy",
       "seed": acc, "ours": f"{_sweep_file(m, k, v)}:val_accuracy", **_ACC}
      for (m, k), table in SEED_SWEEPS.items() for v, acc in table.items()),
]
