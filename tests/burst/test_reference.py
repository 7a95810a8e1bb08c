"""Reference-frame choice and the burst checks shared by align and merge."""

from __future__ import annotations

import pytest
import torch

from obscura.burst.reference import (
    as_burst,
    check_burst,
    from_site_planes,
    green_sharpness,
    normalized_frames,
    pick_reference,
    site_planes,
)
from obscura.core.cfa import channel_of_sites, mosaic_rgb
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.types import BAYER_PATTERNS, QUAD_BAYER_PATTERNS, Burst, RawFrame, RawMeta
from tests.burst.synth import default_data_dir, make_burst

ALL_CFAS = BAYER_PATTERNS + QUAD_BAYER_PATTERNS


@pytest.mark.parametrize("cfa", ALL_CFAS)
def test_site_planes_round_trip_and_colours(cfa):
    x = torch.rand(16, 24)
    assert torch.equal(from_site_planes(site_planes(x, cfa), cfa), x)
    # a flat colour (1, 2, 3) mosaicked: each site plane holds exactly its site's channel
    rgb = torch.tensor([1.0, 2.0, 3.0])[:, None, None].expand(3, 16, 24)
    planes = site_planes(mosaic_rgb(rgb, cfa=cfa), cfa)
    for s, c in enumerate(channel_of_sites(cfa)):
        assert torch.all(planes[s] == c + 1)


@pytest.mark.parametrize("blurred, expected", [((0, 2), 1), ((1, 2), 0), ((0, 1), 2)])
def test_pick_reference_sharpest_of_first_k(blurred, expected):
    s = make_burst(5, (64, 64), blur_frames=blurred, image=None, a=1e-3, b=1e-5, max_shift=1.0, seed=3)
    assert pick_reference(s.burst, k=3) == expected
    # frames beyond k are not considered, however sharp
    assert pick_reference(s.burst, k=1) == 0


def test_pick_reference_by_index_and_bad_values():
    s = make_burst(4, (32, 32), image=None, seed=1)
    assert pick_reference(s.burst, index=2) == 2
    assert pick_reference(s.burst, index=-1) == 3
    for bad in (4, -5, 1.5, True):
        with pytest.raises(InvalidParameter, match="reference index"):
            pick_reference(s.burst, index=bad)
    with pytest.raises(InvalidParameter, match="k must be"):
        pick_reference(s.burst, k=0)


def test_green_sharpness_orders_blur(device):
    s = make_burst(3, (64, 64), blur_frames=(1,), image=None, a=1e-4, b=1e-6, seed=2, data_dir=default_data_dir())
    x = normalized_frames(s.burst).to(device)
    e = green_sharpness(x, "RGGB")
    assert e.device.type == device and e.shape == (3,)
    assert float(e[1]) < 0.7 * float(min(e[0], e[2]))


def test_normalized_frames_levels():
    meta = RawMeta(cfa="RGGB", black_level=(10.0, 20.0, 30.0, 40.0), white_level=110.0)
    raw = torch.tensor([[60.0, 65.0], [70.0, 75.0]]).repeat(2, 2)
    x = normalized_frames(Burst(raw[None], (meta,)))
    want = torch.tensor([[50 / 100, 45 / 90], [40 / 80, 35 / 70]]).repeat(2, 2)
    torch.testing.assert_close(x[0], want)


def test_check_burst_rejects_mixed_frames():
    m = RawMeta(cfa="RGGB", white_level=1023.0, make="A", model="1")
    f = RawFrame(torch.zeros(8, 8), m)
    with pytest.raises(ShapeError, match="one shape"):
        check_burst([f, RawFrame(torch.zeros(8, 10), m)])
    with pytest.raises(ShapeError, match="one CFA"):
        check_burst([f, RawFrame(torch.zeros(8, 8), m.replace(cfa="BGGR"))])
    with pytest.raises(InvalidParameter, match="one camera"):
        check_burst([f, RawFrame(torch.zeros(8, 8), m.replace(model="2"))])
    with pytest.raises(ShapeError, match=r"LinearRaw|N, H, W"):
        check_burst([RawFrame(torch.zeros(3, 8, 8), m.replace(cfa=""))])
    with pytest.raises(InvalidParameter, match="white level"):
        check_burst([RawFrame(torch.zeros(8, 8), m.replace(white_level=0.0))])
    with pytest.raises(ShapeError, match="Burst or a sequence"):
        as_burst("frames")
    assert len(check_burst([f, f])) == 2
