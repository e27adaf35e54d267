"""Every theory item computed, with the seed's answer beside ours and a verdict per item."""
from __future__ import annotations

import math

import pandas as pd
import torch

from pipeline.theory import functions, gradients, networks, shapes
from pipeline.theory.seed import GMP_REPORTED, MOMENTUM_REPORTED, SEED001_REPORTED
from pipeline.theory.config import TheoryConfig


def layer_tables() -> dict[str, pd.DataFrame]:
    t1 = shapes.layer_table(*shapes.seed001_cnn())
    t1["seed output"] = [SEED001_REPORTED[n][0] for n in t1["layer"]]
    t1["seed parameters"] = [SEED001_REPORTED[n][1] for n in t1["layer"]]
    t1["seed receptive field"] = [SEED001_REPORTED[n][2] for n in t1["layer"]]
    t1["output agrees"] = t1["output"] == t1["seed output"]
    t1["parameters agree"] = t1["parameters"] == t1["seed parameters"]
    t2 = shapes.layer_table(*shapes.seed002_table_net())
    return {"seed001_layers": t1, "seed002_layers": t2}


def conv1d_check(trials: int, seed: int) -> dict:
    """Closed-form gradients of the 1-D conv net against autograd on random values (float64)."""
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for _ in range(trials):
        x, k = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)
        b, a, y = (torch.randn((), generator=g, dtype=torch.float64) for _ in range(3))
        w = torch.randn(2, generator=g, dtype=torch.float64)
        leaves = [t.clone().requires_grad_(True) for t in (k, b, w, a)]
        loss = gradients.conv1d_net(x, *leaves[:2], leaves[2], leaves[3], y)["loss"]
        auto = torch.autograd.grad(loss, leaves)
        closed = gradients.conv1d_closed_form(x, k, b, w, a, y)
        for ours, ref in zip((closed["k"], closed["b"], closed["w"], closed["a"]), auto):
            worst = max(worst, (ours - ref).abs().max().item())
    return {"trials": trials, "max_abs_difference": worst}


def compute(cfg: TheoryConfig, seed: int) -> tuple[dict[str, pd.DataFrame], dict]:
    """(tables to save as CSV, checks for metrics/theory/checks.json)."""
    tables = layer_tables()
    t1, t2 = tables["seed001_layers"], tables["seed002_layers"]
    grid = cfg.dilation
    tables["dilation_grid"] = shapes.check_dilation(grid.sizes, grid.kernels, grid.dilations, grid.filters)
    gmp = gradients.global_max_pool_grads()
    tables["global_max_pool"] = pd.DataFrame([{**{f"dw{i + 1}": w for i, w in enumerate(gmp["dw"])}, "db": gmp["db"],
                                               "max": gmp["max"]}])
    steps, by_hand = gradients.momentum_steps(), gradients.momentum_by_hand()
    tables["momentum_steps"] = pd.DataFrame([{"step": i + 1, "y": s["y"], **{f"grad {k}": v for k, v in s["grad"].items()},
                                              **{f"velocity {k}": v for k, v in s["velocity"].items()},
                                              **s["params"]} for i, s in enumerate(steps)])
    hats, regions = _piecewise(cfg)
    tables["piecewise_linear"] = hats
    tables["linear_regions"] = regions
    sym = cfg.symmetry
    tables["symmetry"] = pd.DataFrame([networks.symmetry_run(init, sym.hidden, sym.steps, sym.lr, seed, drop)
                                       for init, drop in (("constant", 0.0), ("random", 0.0), ("constant", sym.dropout))])
    norms = networks.gradient_norms(cfg.residual.width, cfg.residual.depth, seed)
    tables["gradient_norms"] = pd.DataFrame({"layer": range(1, cfg.residual.depth + 1), **norms})
    tables["activations"] = functions.activation_properties().reset_index()
    tables["losses"] = functions.loss_scale_table(seed).reset_index(names="case")
    drop = functions.dropout_patterns()
    tables["dropout"] = pd.DataFrame([{"layer": k, **{a: b for a, b in v.items() if a != "output"}}
                                      for k, v in drop.items()])
    final = steps[-1]["params"]
    sym_t = tables["symmetry"].set_index(["init", "dropout"])
    checks = {
        "cnn_parameters_agree_with_seed": bool(t1["parameters agree"].all()),
        "cnn_output_rows_disagreeing_with_seed": int((~t1["output agrees"]).sum()),
        "cnn_receptive_field_L3": int(t1.loc[2, "receptive_field"].split("x")[0]),
        "table_net_parameters": int(t2["parameters"].sum()),
        "table_net_bn_learnable": int(t2.loc[3, "parameters"]), "table_net_bn_buffers": int(t2.loc[3, "buffers"]),
        "dilation_formulas_hold": bool(tables["dilation_grid"][["size_ok", "gradient_ok", "perturbation_ok"]].all().all()),
        "dilation_cases": len(tables["dilation_grid"]),
        "gmp_gradients_agree_with_seed": gmp["dw"] == GMP_REPORTED["dw"] and gmp["db"] == GMP_REPORTED["db"],
        "momentum_agrees_with_seed": all(math.isclose(final[k], v, abs_tol=1e-9) for k, v in MOMENTUM_REPORTED.items()),
        "momentum_torch_equals_hand": all(math.isclose(s["params"][k], h["params"][k], abs_tol=1e-12)
                                          for s, h in zip(steps, by_hand) for k in s["params"]),
        "conv1d_closed_form_max_error": conv1d_check(cfg.conv1d_trials, seed)["max_abs_difference"],
        "hat_max_error_at_knots": float(hats.attrs["max_error_at_knots"]),
        "hat_kinks_only_at_knots": bool(hats.attrs["kinks_only_at_knots"]),
        "symmetry_constant_spread": float(sym_t.loc[("constant", 0.0), "spread_after"]),
        "symmetry_random_spread": float(sym_t.loc[("random", 0.0), "spread_after"]),
        "symmetry_dropout_spread": float(sym_t.loc[("constant", sym.dropout), "spread_after"]),
        "grad_norm_first_over_last_plain": float(norms["plain"][0] / norms["plain"][-1]),
        "grad_norm_first_over_last_residual": float(norms["residual"][0] / norms["residual"][-1]),
    }
    return tables, checks


def _piecewise(cfg: TheoryConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The hat-function approximation of f(x) = sin(2 pi x) + x^2 and linear-region counts."""
    knots = torch.linspace(0, 1, cfg.regions.knots, dtype=torch.float64)
    target = lambda x: torch.sin(2 * math.pi * x) + x ** 2  # noqa: E731
    net = networks.hat_network(knots, target(knots))
    xs = torch.linspace(0, 1, cfg.regions.points, dtype=torch.float64)
    with torch.no_grad():
        approx = net(xs[:, None]).squeeze(-1)
        at_knots = net(knots[:, None]).squeeze(-1)
    kinks = xs[1:-1][networks.second_differences(net, xs).abs() > 1e-9]
    h = float(knots[1] - knots[0])
    near = all(torch.isclose(k, knots, atol=h / (cfg.regions.points - 1) * 1.01).any() for k in kinks)
    hats = pd.DataFrame({"x": xs.numpy(), "f": target(xs).numpy(), "hat network": approx.numpy()})
    hats.attrs.update(max_error_at_knots=(at_knots - target(knots)).abs().max().item(), kinks_only_at_knots=near)
    line = (torch.tensor([-3.0, -3.0]), torch.tensor([3.0, 3.0]))
    rows = [{"activation": act, "width": cfg.regions.width, "depth": cfg.regions.depth,
             "regions along the line": networks.linear_regions_on_a_line(
                 networks.random_mlp(cfg.regions.width, cfg.regions.depth, act, seed), *line, cfg.regions.points)}
            for act in ("relu", "prelu") for seed in (0, 1, 2)]
    return hats, pd.DataFrame(rows)
