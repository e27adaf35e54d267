"""The super-resolution networks, classical baselines and image scores."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pipeline.superres.evaluation import score, summary, upscale_all
from pipeline.superres.features import downsample
from pipeline.superres.metrics import psnr, ssim
from pipeline.superres.models import PixelMLP, build_model, interpolate, upscale


def _pairs():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (3, 3, 34, 40), dtype=torch.uint8, generator=g)
    noisy = (a.int() + torch.randint(-30, 31, a.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    smooth = interpolate(downsample(a, 2), 2, "bilinear")
    return a, noisy, smooth


@pytest.mark.parametrize("which", [1, 2])
def test_psnr_and_ssim_equal_skimage(which):
    a, *others = _pairs()
    b = others[which - 1]
    ours_p, ours_s = psnr(b, a), ssim(b, a)
    for i in range(a.shape[0]):
        x, y = a[i].permute(1, 2, 0).numpy(), b[i].permute(1, 2, 0).numpy()
        assert ours_p[i].item() == pytest.approx(peak_signal_noise_ratio(x, y, data_range=255), abs=1e-9)
        assert ours_s[i].item() == pytest.approx(structural_similarity(x, y, channel_axis=-1, data_range=255),
                                                 abs=1e-9)


def test_identical_images_have_ssim_one_and_infinite_psnr():
    a = _pairs()[0]
    assert torch.allclose(ssim(a, a), torch.ones(3, dtype=torch.float64))
    assert torch.isinf(psnr(a, a)).all()


def test_bicubic_baseline_sanity():
    # a constant image stays constant; a smooth image is rebuilt better by bicubic than nearest
    flat = torch.full((1, 3, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(interpolate(flat, 2, "bicubic"), torch.full((1, 3, 16, 16), 77, dtype=torch.uint8))
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    smooth = (127 + 100 * torch.sin(3 * xx + 2 * yy)).round().to(torch.uint8).expand(1, 3, 64, 64).clone()
    low = downsample(smooth, 2)
    up = {m: interpolate(low, 2, m) for m in ("nearest", "bilinear", "bicubic")}
    assert up["bicubic"].shape == smooth.shape
    scores = {m: psnr(u, smooth).item() for m, u in up.items()}
    assert scores["bicubic"] > scores["nearest"] + 3 and scores["bilinear"] > scores["nearest"]


def test_parameter_counts_match_the_hand_computed_totals():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # literal: 27*64+64 + 64*128+128 + 128*3+3
    assert count(build_model(2, "pixel", (64, 128), False)) == 1792 + 8320 + 387 == 10499
    # subpixel: 27*128+128 + 128*128+128 + 128*12+12
    assert count(build_model(2, "subpixel", (128, 128), True)) == 3584 + 16512 + 1548 == 21644
    assert build_model(4, "subpixel", (128, 128), True)(torch.zeros(5, 27)).shape == (5, 48)


def test_residual_network_with_zero_weights_copies_the_low_res_pixel():
    model = PixelMLP((8,), 12, residual=True)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    lr = torch.randint(0, 256, (1, 3, 5, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(upscale(model, lr, 2), interpolate(lr, 2, "nearest"))


def test_literal_network_fills_each_block_with_one_colour():
    torch.manual_seed(0)
    model = build_model(2, "pixel", (16,), False)
    lr = torch.randint(0, 256, (1, 3, 4, 4), dtype=torch.uint8)
    up = upscale(model, lr, 2)
    assert up.shape == (1, 3, 8, 8)
    blocks = up.reshape(1, 3, 4, 2, 4, 2)
    assert (blocks == blocks[:, :, :, :1, :, :1]).all()


def test_upscale_all_and_summary_cover_every_method():
    torch.manual_seed(0)
    hr = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    models = {"lit": (build_model(2, "pixel", (8,), False), 2), "sub4": (build_model(4, "subpixel", (8,), True), 4)}
    up = upscale_all(hr, models)
    assert set(up[2]) == {"nearest", "bilinear", "bicubic", "lit"}
    assert set(up[4]) == {"nearest", "bilinear", "bicubic", "lit x2 twice", "sub4"}
    table = score(hr, up, ("a", "b"), "holdout")
    assert len(table) == 2 * (4 + 5)
    s = summary(table)
    expected = float(np.mean([psnr(up[4]["sub4"], hr)[i].item() for i in range(2)]))
    assert s["x4"]["sub4"]["holdout_psnr"] == pytest.approx(expected, abs=1e-4)


def test_report_sentences_follow_the_numbers():
    from pipeline.superres.narrative import answer_4x, compare, literal_verdict

    s = {"x2": {"literal": {"holdout_psnr": 26.7}, "nearest": {"holdout_psnr": 26.75},
                "subpixel": {"holdout_psnr": 28.8}, "bicubic": {"holdout_psnr": 28.5}},
         "x4": {"sub x2 twice": {"holdout_psnr": 24.0}, "sub4": {"holdout_psnr": 24.6}, "bicubic": {"holdout_psnr": 23.9}}}
    assert compare(s, "x2", "subpixel", "bicubic").startswith("**subpixel** beats **bicubic** by 0.30 dB")
    assert compare(s, "x2", "bicubic", "subpixel").startswith("**bicubic** falls short of **subpixel** by 0.30 dB")
    assert "no better than copying" in literal_verdict(s)
    s["x2"]["literal"]["holdout_psnr"] = 27.5
    assert "a little better than copying" in literal_verdict(s)
    text = answer_4x(s, "sub", "sub4")
    assert text == ("On the held-out photographs: `sub` twice 24.00 dB, `sub4` 24.60 dB, bicubic 23.90 dB; "
                    "`sub4`, trained for 4× directly, does better, by 0.60 dB.")


def test_a_bicubic_residual_network_with_a_zero_last_layer_is_bicubic():
    g = torch.Generator().manual_seed(5)
    lr = torch.randint(0, 256, (2, 3, 10, 12), dtype=torch.uint8, generator=g)
    for channels in ("each", "rgb"):
        model = build_model(2, "subpixel", (16,), True, window=5, channels=channels, base="bicubic")
        torch.nn.init.zeros_(model.net[-1].weight)
        torch.nn.init.zeros_(model.net[-1].bias)
        assert torch.equal(upscale(model, lr, 2), interpolate(lr, 2, "bicubic")), channels
    each = build_model(2, "subpixel", (128, 128), True, window=5, channels="each", base="bicubic")
    assert sum(p.numel() for p in each.parameters()) == 25 * 128 + 128 + 128 * 128 + 128 + 128 * 4 + 4


@pytest.mark.parametrize("change, message", [
    ({"window": 4}, "window: must be odd"),
    ({"target": "pixel", "window": 5}, "target pixel is the report's literal"),
    ({"base": "bicubic", "residual": False}, "base: bicubic is what a residual network corrects"),
])
def test_a_variant_that_cannot_work_is_one_clear_error(change, message):
    from pipeline.core.errors import ParamError
    from pipeline.core.params import parse
    from pipeline.superres.config import Variant

    raw = {"factor": 2, "target": "subpixel", "hidden": [8], "residual": True, **change}
    with pytest.raises(ParamError, match=message):
        parse(Variant, raw, "superres.variants.x")


def test_each_channel_splits_keep_a_positions_three_rows_together():
    from pipeline.core.params import parse
    from pipeline.superres.config import Variant
    from pipeline.superres.features import build_samples
    from pipeline.superres.training import variant_splits

    g = torch.Generator().manual_seed(6)
    hr = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, generator=g)
    samples = build_samples(hr, (2,), (0.7, 0.2, 0.1), seed=0)
    v = parse(Variant, {"factor": 2, "target": "subpixel", "hidden": [8], "residual": True, "window": 5,
                        "channels": "each", "base": "bicubic"}, "v")
    splits = variant_splits(samples, v, torch.device("cpu"), hr)
    rgb = {k: len(i) for k, i in samples[2]["split"].items()}
    assert {k: len(s.inputs) for k, s in splits.items()} == {k: 3 * n for k, n in rgb.items()}
    train = splits["train"]
    assert torch.equal(train.targets.reshape(-1, 12), samples[2]["y"][samples[2]["split"]["train"]])
