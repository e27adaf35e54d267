"""One split of a dataset as the engine trains on it: inputs and targets, already on the device."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Split:
    """Inputs and targets of one split, already on the training device."""
    inputs: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return self.inputs.shape[0]
