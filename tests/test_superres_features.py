"""Feature extraction, targets and rebuilding on tiny hand-made images."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.superres.features import (
    CENTRE,
    build_samples,
    downsample,
    literal_index,
    literal_samples,
    neighbourhoods,
    rebuild,
    split_positions,
    subpixel_targets,
)


def _image() -> torch.Tensor:
    """(1, 3, 4, 4) uint8 with every value distinct and channels far apart."""
    return (torch.arange(48, dtype=torch.uint8).reshape(1, 3, 4, 4) * 5)


def test_downsample_is_the_rounded_box_mean():
    hr = _image()
    lr = downsample(hr, 2)
    for c in range(3):
        for y in range(2):
            for x in range(2):
                block = hr[0, c, 2 * y:2 * y + 2, 2 * x:2 * x + 2].double()
                assert lr[0, c, y, x] == int(torch.round(block.mean()))


def test_neighbourhood_vectors_match_a_hand_computation():
    lr = torch.tensor([[[1, 2], [3, 4]], [[10, 20], [30, 40]], [[100, 110], [120, 130]]],
                      dtype=torch.uint8)[None]                          # (1, 3, 2, 2)
    x = neighbourhoods(lr)
    assert x.shape == (4, 27) and x.dtype == torch.uint8
    # position (0, 0): its 3x3 window with edges replicated, channel-major
    expected = []
    for c in range(3):
        ch = lr[0, c].numpy()
        padded = np.pad(ch, 1, mode="edge")
        expected += list(padded[0:3, 0:3].reshape(-1))
    assert x[0].tolist() == expected
    assert x[0].tolist()[:9] == [1, 1, 2, 1, 1, 2, 3, 3, 4]
    # position (1, 1) is row 3 (row-major); its centre is the pixel itself in each channel
    assert x[3, list(CENTRE)].tolist() == [4, 40, 130]


def test_subpixel_targets_list_the_pixels_under_each_low_res_position():
    hr = _image()
    y = subpixel_targets(hr, 2)
    assert y.shape == (4, 12)
    # low-res position (0, 1) covers hr rows 0-1, cols 2-3; order c*4 + sy*2 + sx
    want = [int(hr[0, c, sy, 2 + sx]) for c in range(3) for sy in range(2) for sx in range(2)]
    assert y[1].tolist() == want


def test_rebuild_inverts_the_targets_exactly():
    hr = torch.randint(0, 256, (2, 3, 8, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for f in (2, 4):
        y = subpixel_targets(hr, f)
        assert torch.equal(rebuild(y, 2, 8 // f, 12 // f, f), hr)


def test_literal_samples_repeat_inputs_and_list_each_pixel():
    hr = _image()
    x, y = neighbourhoods(downsample(hr, 2)), subpixel_targets(hr, 2)
    lx, ly = literal_samples(x, y, 2)
    assert lx.shape == (16, 27) and ly.shape == (16, 3)
    # rows 4..7 belong to low-res position 1 = hr (0..1, 2..3); the third is (sy=1, sx=0) -> hr (1, 2)
    assert all(torch.equal(lx[r], x[1]) for r in range(4, 8))
    assert ly[6].tolist() == hr[0, :, 1, 2].tolist()
    assert literal_index(torch.tensor([1, 3]), 2).tolist() == [4, 5, 6, 7, 12, 13, 14, 15]


def test_split_is_a_disjoint_cover_with_the_asked_fractions():
    parts = split_positions(2560, (0.7, 0.2, 0.1), torch.Generator().manual_seed(0))
    assert [len(parts[k]) for k in ("train", "test", "val")] == [1792, 512, 256]     # seed: x4 = 7168/2048/1024
    allidx = torch.cat(list(parts.values()))
    assert torch.equal(allidx.sort().values, torch.arange(2560))


def test_build_samples_is_seeded():
    hr = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    a, b, c = build_samples(hr, (2, 4), (0.7, 0.2, 0.1), 0), build_samples(hr, (2, 4), (0.7, 0.2, 0.1), 0), \
        build_samples(hr, (2, 4), (0.7, 0.2, 0.1), 1)
    assert torch.equal(a[2]["split"]["train"], b[2]["split"]["train"])
    assert not torch.equal(a[2]["split"]["train"], c[2]["split"]["train"])
    assert a[4]["x"].shape == (2 * 4 * 4, 27) and a[4]["y"].shape == (32, 48)


def _transform(img: torch.Tensor, t: int) -> torch.Tensor:
    """The t-th of the 8 flips/transposes, in the order of features._dihedral, on (N, C, n, n)."""
    maps = [img, img.flip(-1)]
    maps += [m.transpose(-1, -2) for m in maps]
    maps += [m.flip(-2) for m in maps]
    return maps[t]


@pytest.mark.parametrize("channels, base", [("each", "bicubic"), ("rgb", "bicubic"), ("rgb", "centre")])
def test_dihedral_augmentation_of_rows_equals_the_rows_of_the_flipped_photograph(channels, base):
    from pipeline.superres.features import _dihedral, dihedral_index, variant_inputs

    g = torch.Generator().manual_seed(3)
    hr = torch.randint(0, 256, (2, 3, 24, 24), dtype=torch.uint8, generator=g)
    f, k, groups = 2, 5, 3 if channels == "each" else 1

    def rows(img):
        lr = downsample(img, f)
        x = variant_inputs(lr, f, k, channels, base).long()
        y = subpixel_targets(img, f).reshape(x.shape[0], -1).long()
        return x.reshape(2, 12 * 12, groups, -1), y.reshape(2, 12 * 12, groups, -1)

    x_index, y_index = dihedral_index(f, k, channels, base)
    x0, y0 = rows(hr)
    patch = k * k * (3 // groups)
    for t in range(8):
        xt, yt = rows(_transform(hr, t))
        moved = _dihedral(12)[t]                 # position q of the flipped photograph was position moved[q]
        ex = x0[:, moved].reshape(-1, x0.shape[-1]).gather(1, x_index[t].expand(2 * 144 * groups, -1))
        ey = y0[:, moved].reshape(-1, y0.shape[-1]).gather(1, y_index[t].expand(2 * 144 * groups, -1))
        got = xt.reshape(-1, xt.shape[-1])
        assert torch.equal(got[:, :patch], ex[:, :patch]) and torch.equal(yt.reshape(-1, yt.shape[-1]), ey)
        if base == "bicubic":
            assert (got[:, patch:] - ex[:, patch:]).abs().max() <= 1  # bicubic: equal up to one rounding level


def test_each_channel_rows_and_the_bicubic_block_sit_where_the_model_expects_them():
    from pipeline.superres.features import centre_index, interpolate, variant_inputs

    g = torch.Generator().manual_seed(4)
    lr = torch.randint(0, 256, (1, 3, 6, 6), dtype=torch.uint8, generator=g)
    x = variant_inputs(lr, 2, 5, "each", "bicubic")
    assert x.shape == (36 * 3, 25 + 4)
    assert torch.equal(x[:, centre_index(5, "each")[0]].reshape(36, 3), lr[0].permute(1, 2, 0).reshape(36, 3))
    bic = subpixel_targets(interpolate(lr, 2, "bicubic"), 2).reshape(-1, 4)
    assert torch.equal(x[:, 25:], bic)
    assert variant_inputs(lr, 2).shape == (36, 27) and torch.equal(variant_inputs(lr, 2), neighbourhoods(lr))
