"""The one training engine every experiment uses.

The whole dataset sits on the device; an epoch is a device-side permutation cut
into index slices. An optimiser step may span several micro-batches (gradient
accumulation) whose gradients add up to exactly the large batch's. After every
epoch: validation, a history record, the best state by a named metric, a resume
checkpoint. The engine knows nothing of files beyond that checkpoint, nor of
MLflow: the stage passes `on_epoch`.

Under torchrun (several processes, see pipeline.core.distributed) every rank draws the same
permutation and trains on its own shard of each global batch through DistributedDataParallel;
loss and metric sums are added over ranks, the best epoch is rank 0's choice, and only rank 0
writes the resume checkpoint. `torch.compile` and the memory format come from pipeline.core.runtime.
With fp16 autocast the loss is scaled (torch.amp.GradScaler): a step whose gradients overflow is
skipped and the scale lowered; bf16 and fp32 need no scaling.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pipeline.core import distributed as dist
from pipeline.core import runtime
from pipeline.core.device import autocast
from pipeline.core.errors import DataError, ParamError, TrainingDiverged
from pipeline.core.files import atomic_torch_save, remove_with_leftovers, require_space
from pipeline.core.inference import Prepare, predict
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split

Metrics = Callable[[Tensor, Tensor], dict[str, Tensor]]


@dataclass
class FitResult:
    history: list[dict]
    best_state: dict[str, Tensor]
    best_epoch: int
    best_value: float
    resumed_from: int = 0          # epochs already done when this call started
    snapshots: dict[int, dict[str, Tensor]] = field(default_factory=dict)   # epoch -> CPU state


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


Groups = list[tuple[list[nn.Parameter], float]]


def make_optimizer(model: nn.Module, cfg: TrainConfig, groups: Groups | None = None) -> torch.optim.Optimizer:
    """cfg's optimiser over the trainable parameters; `groups` (parameters, learning-rate factor)
    gives parts of the model their own learning rate, cfg.lr × factor (fine-tuning a backbone)."""
    if groups is None:
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        params = [{"params": [p for p in ps if p.requires_grad], "lr": cfg.lr * factor} for ps, factor in groups]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def fit(model: nn.Module, train: Split, val: Split | None, loss_fn: Callable, cfg: TrainConfig, *,
        seed: int = 0, prepare: Prepare | None = None, metrics: Metrics | None = None,
        amp_dtype: torch.dtype | None = None, on_epoch: Callable[[dict], None] | None = None,
        resume_dir: Path | None = None, progress: bool | None = None,
        watch: dict[str, Split] | None = None, snapshot_epochs: tuple[int, ...] = (),
        groups: Groups | None = None) -> FitResult:
    """Train `model` for cfg.epochs. History records per epoch: train_loss (and train_<metric>,
    running means over the epoch), val_* on `val`, <name>_* on each `watch` split (reported, never
    used for choosing), step (optimiser steps so far), elapsed_seconds (training time so far,
    evaluation excluded). `snapshot_epochs`: 1-based epochs whose weights are kept; `groups`: see
    make_optimizer (the history's lr is the last group's)."""
    device = train.inputs.device
    prepare = prepare or (lambda x, y, training: (x, y))
    fmt = runtime.memory_format(model, device)
    if fmt is torch.channels_last:
        model.to(memory_format=fmt)
    net = dist.wrap(model, device)                  # what the training step calls: DDP with others
    if runtime.current().compile:
        net = runtime.compiled(net, device)
    opt = make_optimizer(model, cfg, groups)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    sched = _scheduler(opt, cfg, steps_per_epoch)
    gen = torch.Generator(device=device).manual_seed(seed)
    state = {"epoch": 0, "history": [], "best_state": None, "best_epoch": 0, "snapshots": {},
             "best_value": math.inf if cfg.mode == "min" else -math.inf}
    ckpt = resume_dir / "last.pt" if resume_dir else None
    found = ckpt is not None and ckpt.exists()
    if dist.count(found) not in (0, dist.world_size()):
        raise DataError(f"{ckpt}: the resume checkpoint is seen by only some ranks; put the resume folder on "
                        "storage every node shares ($DLREPRO_RESUME_ROOT) or delete it to start over")
    if found:
        state = _load_resume(ckpt, model, opt, sched, gen, device, scaler)
    elif ckpt is not None and dist.rank() == 0:        # a checkpoint that cannot fit: before any epoch
        require_space(ckpt, checkpoint_bytes(model, cfg, len(snapshot_epochs)), "this training's resume checkpoint",
                      outcome="nothing was trained")
    start = state["epoch"]
    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, unit="epoch",
               disable=not (sys.stderr.isatty() if progress is None else progress))
    for epoch in bar:
        model.train()
        t0 = time.perf_counter()
        record = {"epoch": epoch + 1,
                  **_train_epoch(net, train, loss_fn, opt, sched, cfg, gen, prepare, amp_dtype, epoch, metrics, fmt,
                                  scaler)}
        train_seconds = time.perf_counter() - t0
        for name, split in {"val": val, **(watch or {})}.items():
            if split is not None:
                record.update(evaluate(model, split, loss_fn, cfg.batch_size, prepare, metrics, amp_dtype,
                                       f"{name}_"))
        seconds = time.perf_counter() - t0
        previous = state["history"][-1] if state["history"] else {"step": 0, "elapsed_seconds": 0.0}
        record.update(lr=opt.param_groups[-1]["lr"], step=previous["step"] + steps_per_epoch,
                      elapsed_seconds=previous["elapsed_seconds"] + train_seconds, epoch_seconds=seconds,
                      samples_per_second=len(train) / train_seconds)
        value = dist.agreed(_monitored(record, cfg))      # every rank keeps the same best epoch
        if cfg.monitor == "last" or _better(value, state["best_value"], cfg.mode) or state["best_state"] is None:
            state.update(best_value=value, best_epoch=epoch + 1, best_state=_cpu_state(model))
        if epoch + 1 in snapshot_epochs:
            state["snapshots"][epoch + 1] = _cpu_state(model)
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if on_epoch is not None:        # first: a stage killed before the checkpoint repeats this epoch,
            on_epoch(record)            # bit for bit, rather than leave it out of what on_epoch records
        if ckpt is not None and dist.rank() == 0:
            _save_resume(ckpt, state, model, opt, sched, gen, scaler)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k.endswith("loss")})
    if ckpt is not None and dist.rank() == 0:     # finished: the stage writes the outputs; nothing to resume
        remove_with_leftovers(ckpt)
        if not any(ckpt.parent.iterdir()):
            ckpt.parent.rmdir()
    return FitResult(state["history"], state["best_state"], state["best_epoch"], state["best_value"], start,
                     state["snapshots"])


def checkpoint_bytes(model: nn.Module, cfg: TrainConfig, snapshots: int = 0) -> int:
    """About what a resume checkpoint takes: the weights, the best epoch's copy, each snapshot and
    the optimiser's state (Adam: two moments per parameter; SGD with momentum: one)."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    params = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    moments = 2 if cfg.optimizer in ("adam", "adamw") else (1 if cfg.momentum else 0)
    return weights * (2 + snapshots) + params * moments


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _train_epoch(model, data: Split, loss_fn, opt, sched, cfg: TrainConfig, gen, prepare, amp_dtype,
                 epoch: int, metrics: Metrics | None, fmt=torch.contiguous_format, scaler=None) -> dict[str, float]:
    """One pass over `data`; the running mean loss (and metrics) of the batches as trained on (by
    every rank together)."""
    n = len(data)
    perm = torch.randperm(n, device=data.inputs.device, generator=gen)
    total = torch.zeros((), device=data.inputs.device)
    scaling = scaler is not None and scaler.is_enabled()
    counted = torch.zeros((), device=data.inputs.device)          # samples of the steps taken (fp16)
    sums: dict[str, Tensor] = {}
    for step, start in enumerate(range(0, n, cfg.batch_size)):
        opt.zero_grad(set_to_none=True)
        idx = perm[start:start + cfg.batch_size]
        loss_sum, metric_sums = accumulate_gradients(model, data, idx, loss_fn, cfg.accumulate, prepare, amp_dtype,
                                                     metrics, fmt, scaler)
        if scaling:     # an fp16 forward that overflowed: the scaler skips the step, the mean leaves it out
            finite = torch.isfinite(loss_sum)
            loss_sum = torch.where(finite, loss_sum, torch.zeros_like(loss_sum))
            counted += finite * len(dist.shard(idx))
        total += loss_sum
        for k, v in metric_sums.items():
            sums[k] = sums.get(k, 0) + v
        if scaling:
            scaler.step(opt)            # skipped when the scaled gradients overflowed
            scaler.update()
        else:
            opt.step()
        if sched is not None:
            sched.step()
        if step % 50 == 49:             # all ranks decide alike
            so_far = dist.sum_all(total)
            if not torch.isfinite(so_far) or (scaling and dist.sum_all(counted) == 0):
                _diverged(torch.tensor(math.inf) if scaling else so_far, epoch, step, cfg)
    total, sums = dist.sum_all(total), {k: dist.sum_all(v) for k, v in sums.items()}
    trained = int(dist.sum_all(counted).item()) if scaling else n
    mean = (total / trained).item() if trained else math.inf
    if not math.isfinite(mean):
        _diverged(torch.tensor(mean), epoch, math.ceil(n / cfg.batch_size) - 1, cfg)
    return {"train_loss": mean, **{f"train_{k}": (v / n).item() for k, v in sums.items()}}


def accumulate_gradients(model: nn.Module, data: Split, idx: Tensor, loss_fn, parts: int,
                         prepare: Prepare | None = None, amp_dtype=None, metrics: Metrics | None = None,
                         fmt: torch.memory_format = torch.contiguous_format,
                         scaler: torch.amp.GradScaler | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Add to .grad the gradient of the mean loss over data[idx], computed in `parts` micro-batches
    (only one micro-batch's activations are alive at a time). Returns the summed loss and metric
    sums (per sample, not yet divided), as device tensors: no host sync. With several processes
    `model` is DDP's and `idx` the global batch: this rank computes its shard, gradients are
    exchanged after the last micro-batch only, and DDP's average over ranks is the global mean.
    With an enabled `scaler` (fp16) the gradients added are the scaled ones; scaler.step unscales."""
    prepare = prepare or (lambda x, y, training: (x, y))
    total = torch.zeros((), device=idx.device)
    sums: dict[str, Tensor] = {}
    mine, ranks = dist.shard(idx), dist.world_size()
    # a rank whose shard is empty (a last batch smaller than the world) still joins the exchange, weight 0
    micros = mine.tensor_split(min(parts, len(mine))) if len(mine) else (idx[:1],)
    for i, micro in enumerate(micros):
        n = len(micro) if len(mine) else 0
        x, y = prepare(data.inputs[micro], data.targets[micro], True)
        if fmt is torch.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=fmt)
        with dist.no_sync(model, last=i == len(micros) - 1):
            with autocast(x.device, amp_dtype):
                out = model(x)
                loss = loss_fn(out, y)
            # a mean over the micro-batch, weighted so the sum is the mean over the whole batch
            weighted = loss * (n * ranks / len(idx))
            (scaler.scale(weighted) if scaler is not None else weighted).backward()
        total += loss.detach().float() * n
        if metrics is not None:
            with torch.no_grad():
                for k, v in metrics(out.detach().float(), y).items():
                    sums[k] = sums.get(k, 0) + v.float() * n
    return total, sums


def _diverged(total: Tensor, epoch: int, step: int, cfg: TrainConfig):
    raise TrainingDiverged(f"training loss became {total.item()} at epoch {epoch + 1}, step {step + 1}: "
                           f"lower the learning rate (now {cfg.lr:g}) or check the inputs for NaN")


def evaluate(model: nn.Module, data: Split, loss_fn, batch_size: int, prepare: Prepare | None = None,
             metrics: Metrics | None = None, amp_dtype=None, prefix: str = "") -> dict[str, float]:
    """Mean loss (and metrics) over a whole split."""
    model.eval()
    out, tgt = predict(model, data.inputs, batch_size, amp_dtype, data.targets, prepare)
    with torch.no_grad():
        result = {"loss": loss_fn(out, tgt)}
        if metrics is not None:
            result.update(metrics(out, tgt))
    return {prefix + k: float(v) for k, v in result.items()}


def _scheduler(opt, cfg: TrainConfig, steps_per_epoch: int):
    if cfg.schedule == "constant":
        return None
    total = cfg.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))


def _monitored(record: dict, cfg: TrainConfig) -> float:
    if cfg.monitor == "last":
        return float(record["epoch"])
    if cfg.monitor not in record:
        raise ParamError(f"monitor: {cfg.monitor!r} is not in the training history; "
                         f"choose one of {', '.join(k for k in record if k != 'epoch')}")
    return record[cfg.monitor]


def _better(value: float, best: float, mode: str) -> bool:
    return value < best if mode == "min" else value > best


def _save_resume(path: Path, state: dict, model, opt, sched, gen, scaler=None) -> None:
    atomic_torch_save({
        **state, "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }, path)


def _load_resume(path: Path, model, opt, sched, gen, device, scaler=None) -> dict:
    blob = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(blob["model"])
    opt.load_state_dict(blob["optimizer"])
    if scaler is not None and scaler.is_enabled() and blob.get("scaler"):
        scaler.load_state_dict(blob["scaler"])
    if sched is not None and blob["scheduler"] is not None:
        sched.load_state_dict(blob["scheduler"])
    gen.set_state(blob["generator"].cpu())
    torch.set_rng_state(blob["torch_rng"].cpu())
    if blob["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in blob["cuda_rng"]])
    best = blob["best_state"]
    return {"epoch": blob["epoch"], "history": blob["history"], "best_epoch": blob["best_epoch"],
            "best_value": blob["best_value"],
            "snapshots": {e: {k: v.cpu() for k, v in st.items()} for e, st in blob["snapshots"].items()},
            "best_state": {k: v.cpu() for k, v in best.items()} if best is not None else None}
