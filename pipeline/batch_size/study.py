"""`batch_size`: one MLP on MNIST trained with several batch sizes, and the out-of-memory answer.

When a batch of more than two samples no longer fits in memory, the way to train with a large
batch anyway is gradient accumulation: run the batch as micro-batches, let their gradients add
up (each micro-batch's mean loss weighted by its share of the batch), and take one optimiser
step. Only one micro-batch's activations are alive at a time, so activation memory is set by the
micro-batch, while the update is the large batch's. The engine does this (`accumulate`); here
we measure that it is exact and what it saves.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from pipeline.batch_size.config import BatchSizeConfig
from pipeline.core.engine import accumulate_gradients, fit
from pipeline.core.nets import mlp_layers
from pipeline.core.scores import accuracy, cross_entropy
from pipeline.core.split import Split


class MLP(nn.Module):
    """784 -> hidden... (ReLU) -> 10 logits."""

    def __init__(self, hidden: tuple[int, ...], n_in: int = 784, n_out: int = 10):
        super().__init__()
        self.net = nn.Sequential(*mlp_layers((n_in, *hidden, n_out)))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def mlp_parameters(hidden: tuple[int, ...], n_in: int = 784, n_out: int = 10) -> int:
    """Weights and biases of MLP(hidden), counted by hand."""
    sizes = (n_in, *hidden, n_out)
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def gradient_gap(model: nn.Module, data: Split, parts: int, prepare=None) -> dict[str, float]:
    """The gradient of one batch (all of `data`) in one piece vs accumulated over `parts`
    micro-batches: max absolute difference, and relative to the largest gradient entry."""
    idx = torch.arange(len(data), device=data.inputs.device)
    grads = []
    for k in (1, parts):
        model.zero_grad(set_to_none=True)
        accumulate_gradients(model, data, idx, cross_entropy, k, prepare)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    model.zero_grad(set_to_none=True)
    gap = (grads[0] - grads[1]).abs().max().item()
    return {"max_abs_difference": gap, "relative": gap / grads[0].abs().max().item()}


def train_both_ways(make_model, data: Split, cfg: BatchSizeConfig, seed: int, prepare=None,
                    test: Split | None = None) -> dict[str, float]:
    """Train cfg.accumulation.steps steps with the large batch in one piece and again as
    micro-batches (same initial weights, same sample order); compare the final weights."""
    acc = cfg.accumulation
    n = min(len(data), acc.batch * acc.steps)
    subset = Split(data.inputs[:n], data.targets[:n])
    finals, result = [], {}
    for name, parts in (("whole", 1), ("accumulated", acc.batch // acc.micro_batch)):
        torch.manual_seed(seed)
        model = make_model()
        schedule = cfg.train_config(batch_size=acc.batch, accumulate=parts, epochs=1)
        out = fit(model, subset, None, cross_entropy, schedule, seed=seed,
                  prepare=prepare, metrics=accuracy, progress=False,
                  watch={"test": test} if test is not None else None)
        finals.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        if test is not None:
            result[f"{name}_test_accuracy"] = out.history[-1]["test_accuracy"]
    diff = (finals[0] - finals[1]).abs()
    result.update(steps=-(-n // acc.batch), max_weight_difference=diff.max().item(),
                  mean_weight_difference=diff.mean().item(),
                  relative_weight_difference=diff.max().item() / finals[0].abs().max().item(),
                  weights_differing_over_1e_4=(diff > 1e-4).float().mean().item())
    return result


def step_memory(model: nn.Module, data: Split, parts: int, prepare=None) -> dict[str, float]:
    """Memory of one optimiser step on all of `data` split into `parts` micro-batches.

    activation_bytes: the largest total of distinct tensors autograd keeps for the backward pass
    of one micro-batch (parameters excluded), counted with saved-tensor hooks; this is the part
    that grows with the batch and is the same on every device. On CUDA also cuda_peak_bytes,
    torch.cuda.max_memory_allocated over the step minus what was allocated before it."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    peak = 0
    current: dict[tuple[int, int], int] = {}

    def pack(t: Tensor):
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key[0] not in params:
            current[key] = key[1]
        return t

    device = data.inputs.device
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    model.zero_grad(set_to_none=True)
    for micro in torch.arange(len(data), device=device).tensor_split(parts):
        current.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            accumulate_gradients(model, data, micro, cross_entropy, 1, prepare)
        peak = max(peak, sum(current.values()))
    out = {"activation_bytes": float(peak)}
    if cuda:
        torch.cuda.synchronize(device)
        out["cuda_peak_bytes"] = float(torch.cuda.max_memory_allocated(device) - before)
    model.zero_grad(set_to_none=True)
    return out


def accumulation_study(make_model, train: Split, test: Split, cfg: BatchSizeConfig, seed: int,
                       device) -> tuple[dict, list[dict]]:
    """The out-of-memory answer, measured: the large batch's gradient in one piece vs accumulated
    (float32 and float64), training both ways, and one step's activation memory per batch size.
    Returns (the result, one memory row per batch of cfg.accumulation.memory_batches)."""
    import copy

    from pipeline.data.mnist import flat_unit, to_unit

    acc = cfg.accumulation
    parts = acc.batch // acc.micro_batch
    as64 = lambda x, y, training: (to_unit(x).double(), y)  # noqa: E731
    torch.manual_seed(seed)
    model = make_model()
    one_batch = Split(train.inputs[:acc.batch], train.targets[:acc.batch])
    result = {"batch": acc.batch, "micro_batch": acc.micro_batch, "micro_batches_per_step": parts,
              "gradient": {"float32": gradient_gap(model, one_batch, parts, flat_unit),
                           "float64": gradient_gap(copy.deepcopy(model).double(), one_batch, parts, as64)},
              "training": {"float32": train_both_ways(make_model, train, cfg, seed, flat_unit, test),
                           "float64": train_both_ways(lambda: make_model().double(), train, cfg, seed, as64, test)}}
    rows = []
    for b in acc.memory_batches:
        sub = Split(train.inputs[:b], train.targets[:b])
        whole, accumulated = (step_memory(model, sub, k, flat_unit) for k in (1, b // acc.micro_batch))
        rows.append({"batch": len(sub), **{f"whole_{k}": v for k, v in whole.items()},
                     **{f"accumulated_{k}": v for k, v in accumulated.items()}})
    n_params = sum(p.numel() for p in model.parameters())
    result.update(device=str(device), parameters=n_params,
                  fixed_bytes={"weights": 4 * n_params, "gradients": 4 * n_params, "adam_state": 8 * n_params},
                  memory_measure="cuda max_memory_allocated and saved activations" if device.type == "cuda"
                  else "activations saved for backward (saved-tensor hooks); no allocator peak on CPU")
    return result, rows
