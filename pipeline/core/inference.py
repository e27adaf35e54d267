"""Batched forward passes without gradients: the one inference loop (the engine's evaluation,
predictions, features, logits)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from pipeline.core.device import autocast

Prepare = Callable[[Tensor, Tensor, bool], tuple[Tensor, Tensor]]   # (inputs, targets, training) -> batch


@torch.no_grad()
def predict(fn: Callable[[Tensor], Tensor], inputs: Tensor, batch_size: int, amp_dtype=None,
            targets: Tensor | None = None, prepare: Prepare | None = None):
    """`fn` over `inputs` in slices of `batch_size` under autocast, the outputs concatenated
    (floating ones as float32); eval mode is the caller's. Given `targets`, each slice goes
    through `prepare(x, y, False)` first and the prepared targets come back too: (outputs, targets)."""
    outs, kept = [], []
    for start in range(0, len(inputs), batch_size):
        x = inputs[start:start + batch_size]
        if targets is not None:
            x, y = (prepare or _unchanged)(x, targets[start:start + batch_size], False)
            kept.append(y)
        with autocast(x.device, amp_dtype):
            out = fn(x)
        outs.append(out.float() if out.is_floating_point() else out)
    out = torch.cat(outs)
    return (out, torch.cat(kept)) if targets is not None else out


def _unchanged(x: Tensor, y: Tensor, training: bool) -> tuple[Tensor, Tensor]:
    return x, y
