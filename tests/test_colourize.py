"""colourize: the palette and nearest-colour targets on hand-made images, the three networks'
shapes and parameter counts against formulas, per-pixel accuracy and loss on known cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.colourize import model as col
from pipeline.colourize.config import ColourizeConfig
from pipeline.core.errors import ParamError
from pipeline.core.params import parse

COLOURS = torch.tensor([[20, 20, 20], [200, 40, 40], [90, 200, 120]], dtype=torch.uint8)    # dark, red, green


def _three_colour_images(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images made of three flat regions (a colour each, ±6 of noise) and which region each pixel is in."""
    gen = torch.Generator().manual_seed(seed)
    region = torch.zeros(n, 16, 16, dtype=torch.long)
    region[:, :, 6:11] = 1
    region[:, :, 11:] = 2
    region[1::2] = region[1::2].flip(-1)
    noise = torch.randint(-6, 7, (n, 3, 16, 16), generator=gen)
    images = (COLOURS[region].permute(0, 3, 1, 2).long() + noise).clamp(0, 255).to(torch.uint8)
    return images, region


def test_kmeans_palette_finds_the_colours_of_a_hand_made_image_and_pixels_map_to_them():
    images, region = _three_colour_images()
    palette = col.build_palette(images, col.Palette(colours=3, sample=100_000, iterations=50), seed=0)
    assert palette.shape == (3, 3)
    # sorted by brightness: dark (60), red (280), green (410); each within the noise of the truth
    assert torch.allclose(palette * 255, COLOURS.float(), atol=1.0)
    assert torch.equal(col.nearest_colour(images, palette).long(), region)
    assert torch.equal(col.build_palette(images, col.Palette(3, 100_000, 50), seed=0), palette)    # seeded


def test_nearest_colour_agrees_with_a_brute_force_search():
    gen = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (3, 3, 5, 7), dtype=torch.uint8, generator=gen)
    palette = torch.rand(24, 3, generator=gen)
    got = col.nearest_colour(images, palette, chunk=2)
    px = images.permute(0, 2, 3, 1).numpy().astype(np.float64) / 255
    want = np.array([[[np.argmin(((palette.numpy() - px[i, y, x]) ** 2).sum(1)) for x in range(7)]
                      for y in range(5)] for i in range(3)])
    assert got.dtype == torch.uint8 and np.array_equal(got.numpy(), want)
    painted = col.colourise_target(got, palette)
    assert painted.shape == (3, 3, 5, 7) and torch.equal(painted[0, :, 0, 0],
                                                         (palette[int(got[0, 0, 0])] * 255).round().to(torch.uint8))


def _conv(a: int, b: int, k: int, bias: bool = True) -> int:
    return k * k * a * b + (b if bias else 0)


def _expected_parameters(model: str, nf: int, k: int, c: int = 24) -> int:
    bn = lambda ch: 2 * ch  # noqa: E731 - batch norm's weight and bias
    if model == "cnn":
        return (_conv(1, nf, k) + bn(nf) + _conv(nf, 2 * nf, k) + bn(2 * nf) + _conv(2 * nf, 2 * nf, k) + bn(2 * nf)
                + _conv(2 * nf, nf, k) + bn(nf) + _conv(nf, c, k) + bn(c) + _conv(c, c, k))
    if model == "unet":
        return (_conv(1, nf, k) + bn(nf) + _conv(nf, 2 * nf, k) + bn(2 * nf) + _conv(2 * nf, 2 * nf, k) + bn(2 * nf)
                + _conv(4 * nf, nf, k) + bn(nf) + _conv(2 * nf, c, k) + bn(c) + _conv(c + 1, c, k))
    res = lambda ch: 2 * (_conv(ch, ch, k, bias=False) + bn(ch))  # noqa: E731
    return (_conv(1, nf, k) + bn(nf) + res(nf) + _conv(nf, 2 * nf, k, False) + bn(2 * nf) + res(2 * nf)
            + _conv(2 * nf, 4 * nf, k, False) + bn(4 * nf) + 2 * res(4 * nf) + _conv(4 * nf, 2 * nf, k) + bn(2 * nf)
            + res(2 * nf) + _conv(2 * nf, nf, k) + bn(nf) + res(nf) + _conv(nf, c, 1))


@pytest.mark.parametrize("model", col.MODELS)
@pytest.mark.parametrize("nf,k", [(16, 3), (32, 5)])
def test_every_model_keeps_the_image_size_and_has_the_formulas_parameter_count(model, nf, k):
    net = col.build(model, col.Run(filters=nf, kernel=k))
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert net(x).shape == (2, 24, 32, 32)
    assert sum(p.numel() for p in net.parameters()) == _expected_parameters(model, nf, k)
    sizes = {r["layer"]: r["output"] for r in col.feature_map_sizes(net)}
    assert sum(r["parameters"] for r in col.feature_map_sizes(net)) == _expected_parameters(model, nf, k)
    if model in ("cnn", "unet"):
        assert sizes == {"down1": (nf, 16, 16), "down2": (2 * nf, 8, 8), "middle": (2 * nf, 8, 8),
                         "up1": (nf, 16, 16), "up2": (24, 32, 32), "final": (24, 32, 32)}
    else:
        assert sizes["middle"] == (4 * nf, 8, 8) and sizes["dec1"] == (nf, 32, 32)


def _residual_parameters(nf: int, k: int, blocks: int, levels: int, c: int = 24) -> int:
    """By hand: stem; per level `blocks` blocks, a strided conv (no bias) + BN; `blocks` + 1 blocks
    at the bottom; per level back up a conv (bias) + BN and `blocks` blocks; the 1×1 conv."""
    res = lambda ch: 2 * (k * k * ch * ch + 2 * ch)  # noqa: E731
    total = _conv(1, nf, k) + 2 * nf + (blocks + 1) * res(nf * 2 ** levels) + _conv(nf, c, 1)
    for i in range(levels):
        ch = nf * 2 ** i
        total += 2 * blocks * res(ch) + _conv(ch, 2 * ch, k, False) + 2 * 2 * ch + _conv(2 * ch, ch, k) + 2 * ch
    return total


@pytest.mark.parametrize("blocks,levels", [(1, 2), (2, 2), (2, 1), (3, 0)])
def test_the_residual_net_s_depth_and_levels_give_the_formula_s_size_and_keep_32_by_32(blocks, levels):
    net = col.build("residual", col.Run(filters=8, blocks=blocks, levels=levels))
    assert net(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)).shape == (2, 24, 32, 32)
    assert sum(p.numel() for p in net.parameters()) == _residual_parameters(8, 3, blocks, levels)
    sizes = {r["layer"]: r["output"] for r in col.feature_map_sizes(net)}
    assert sizes["middle"] == (8 * 2 ** levels, 32 // 2 ** levels, 32 // 2 ** levels)
    assert len(net.middle) == blocks + 1 and all(len(getattr(net, f"dec{i}")) == blocks for i in range(1, levels + 1))
    assert _residual_parameters(32, 3, 1, 2) == 962_104            # the first design's size


def test_the_input_is_the_mean_of_rgb_and_the_unet_sees_it_at_the_end():
    x = torch.tensor([[[[0]], [[30]], [[255]]]], dtype=torch.uint8)
    assert float(col.grey(x)) == pytest.approx(95 / 255)
    net = col.build("unet", col.Run(filters=8)).eval()
    seen = {}
    net.final.register_forward_hook(lambda m, inp, out: seen.setdefault("in", inp[0]))
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    net(images)
    assert seen["in"].shape[1] == 25 and torch.equal(seen["in"][:, 24:], col.grey(images))


def test_pixel_accuracy_and_loss_on_a_known_case():
    target = torch.tensor([[[0, 1], [2, 3]]], dtype=torch.uint8)            # one 2×2 image, 4 colours
    out = torch.zeros(1, 4, 2, 2)
    out[0, 0, 0, 0] = out[0, 1, 0, 1] = out[0, 2, 1, 0] = 5.0               # three right
    out[0, 0, 1, 1] = 5.0                                                    # the fourth says 0, truth is 3
    assert float(col.pixel_accuracy(out, target)["accuracy"]) == 0.75
    # per pixel: −log softmax at the target, averaged over the 4 pixels
    right = -np.log(np.exp(5) / (np.exp(5) + 3))
    wrong = -np.log(1 / (np.exp(5) + 3))
    assert float(col.pixel_loss(out, target)) == pytest.approx((3 * right + wrong) / 4, rel=1e-6)
    assert torch.allclose(col.pixel_loss(out, target),
                          F.cross_entropy(out.permute(0, 2, 3, 1).reshape(-1, 4), target.long().flatten()))


def test_settings_refuse_even_kernels_and_smoke_scale_shrinks_runs():
    with pytest.raises(ParamError, match="colourize.cnn.kernel"):
        parse(ColourizeConfig, {"cnn": {"kernel": 4}}, key="colourize")
    with pytest.raises(ParamError, match="colourize.sweep_unet.kernel"):
        parse(ColourizeConfig, {"sweep_unet": {"kernel": [3, 6]}}, key="colourize")
    smoke = ColourizeConfig().at_scale("smoke")
    assert smoke.cnn.epochs == 2 and smoke.residual.epochs == 2 and smoke.train_limit == 256


@pytest.mark.gpu
def test_targets_and_a_training_step_on_cuda():
    from pipeline.core.engine import fit
    from pipeline.core.split import Split

    images, region = _three_colour_images(8)
    palette = col.build_palette(images.cuda(), col.Palette(colours=3), seed=0)
    assert torch.equal(col.nearest_colour(images.cuda(), palette).long().cpu(), region)
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8).cuda()
    y = torch.randint(0, 24, (32, 32, 32), dtype=torch.uint8).cuda()
    for model in col.MODELS:
        net = col.build(model, col.Run(filters=8)).cuda()
        out = fit(net, Split(x, y), Split(x, y), col.pixel_loss, col.Run(epochs=3, batch_size=8).train_config(),
                  metrics=col.pixel_accuracy, amp_dtype=torch.bfloat16, progress=False)
        assert out.history[-1]["train_loss"] < out.history[0]["train_loss"]


def test_a_run_takes_a_cosine_schedule_and_keeps_its_best_validation_epoch():
    """On the CPU: the learning rate follows torch's own CosineAnnealingLR per step, and the model a
    run keeps is its best validation epoch, which the metrics name beside the last one."""
    from pipeline.colourize.train import train_run
    from pipeline.core.split import Split

    images, region = _three_colour_images(8)
    train, val = Split(images, region.to(torch.uint8)), Split(images[:4], region[:4].to(torch.uint8))
    run = col.Run(filters=4, epochs=4, batch_size=4, lr=0.05, schedule="cosine")
    cfg = run.train_config()
    assert (cfg.schedule, cfg.monitor, cfg.mode) == ("cosine", "val_accuracy", "max")
    model, out, diverged = train_run("cnn", run, train, val, 3, seed=0)
    assert diverged is None
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.05)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4 * 2)       # 2 steps per epoch
    expected = []
    for _ in range(4):
        for _ in range(2):
            opt.step()
            ref.step()
        expected.append(opt.param_groups[0]["lr"])
    assert [r["lr"] for r in out.history] == pytest.approx(expected)
    accuracies = [r["val_accuracy"] for r in out.history]
    assert out.best_epoch == 1 + accuracies.index(max(accuracies))
    constant = train_run("cnn", col.Run(filters=4, epochs=2, batch_size=4, lr=0.05), train, val, 3, seed=0)[1]
    assert [r["lr"] for r in constant.history] == [0.05, 0.05]
