"""Every experiment's seed catalogue, in the order of the seed reports."""
from __future__ import annotations

from pipeline.autoencoder import seed as autoencoder
from pipeline.batch_size import seed as batch_size
from pipeline.colourize import seed as colourize
from pipeline.distill import seed as distill
from pipeline.emnist import seed as emnist
from pipeline.fer import seed as fer
from pipeline.scorecard.card import Experiment, experiment
from pipeline.separable import seed as separable
from pipeline.superres import seed as superres
from pipeline.theory import seed as theory

MODULES = {"separable": separable, "batch_size": batch_size, "superres": superres, "theory": theory,
           "emnist": emnist, "fer": fer, "distill": distill, "autoencoder": autoencoder, "colourize": colourize}


def experiments() -> list[Experiment]:
    return [experiment(name, module) for name, module in MODULES.items()]
