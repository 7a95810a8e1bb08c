"""Colour spaces against colour-science, computed in the same test."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import torch

from obscura.core import colour as oc
from obscura.core.errors import InvalidParameter, ShapeError

NAMES = {
    "linear_srgb": "sRGB",
    "linear_p3": "Display P3",
    "linear_prophoto": "ProPhoto RGB",
    "linear_rec2020": "ITU-R BT.2020",
}


@pytest.mark.parametrize("space", list(NAMES))
def test_npm_matches_colour_science(space):
    cs = colour.RGB_COLOURSPACES[NAMES[space]]
    s = oc.SPACES[space]
    ours = oc.normalised_primary_matrix(s.primaries, s.white)
    ref = colour.normalised_primary_matrix(cs.primaries, cs.whitepoint)
    np.testing.assert_allclose(ours, ref, atol=1e-10)


@pytest.mark.parametrize("src", list(NAMES))
@pytest.mark.parametrize("dst", list(NAMES))
def test_conversion_matches_colour_science_bradford(src, dst):
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, (50, 3))
    spaces = []
    for name in (src, dst):
        cs = colour.RGB_COLOURSPACES[NAMES[name]].copy()
        cs.use_derived_transformation_matrices(True)  # ProPhoto's published matrix is rounded to 4 decimals
        spaces.append(cs)
    ref = colour.RGB_to_RGB(rgb, spaces[0], spaces[1], chromatic_adaptation_transform="Bradford")
    ours = rgb @ oc.conversion_matrix(src, dst).T
    # colour-science adapts directly src white → dst white; we go through D50: Bradford composes exactly
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_bradford_matches_colour_science():
    ours = oc.bradford_matrix(oc.WHITE_D65, oc.WHITE_D50)
    ref = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        oc.xy_to_XYZ(oc.WHITE_D65), oc.xy_to_XYZ(oc.WHITE_D50), transform="Bradford"
    )
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_srgb_transfer_matches_colour_science_and_round_trips(device):
    x = torch.linspace(0, 1, 1001, device=device)
    enc = oc.srgb_encode(x)
    ref = colour.cctf_encoding(x.cpu().double().numpy(), function="sRGB")
    np.testing.assert_allclose(enc.cpu().numpy(), ref, atol=2e-6)
    np.testing.assert_allclose(oc.srgb_decode(enc).cpu().numpy(), x.cpu().numpy(), atol=2e-6)
    assert enc.device.type == device


def test_convert_encoded_p3_to_srgb(device):
    rng = np.random.default_rng(1)
    # P3 colours inside the sRGB gamut (a P3 image of sRGB colours), so no clipping is involved
    srgb = rng.uniform(0.05, 0.95, (3, 4, 5))
    rgb = oc.convert(torch.tensor(srgb), src="srgb", dst="display_p3").numpy().astype(np.float32)
    x = torch.tensor(rgb, device=device)
    y = oc.convert(x, src="display_p3", dst="srgb").cpu().numpy()
    ref = colour.RGB_to_RGB(
        rgb.transpose(1, 2, 0),
        colour.RGB_COLOURSPACES["Display P3"],
        colour.RGB_COLOURSPACES["sRGB"],
        apply_cctf_decoding=True,
        apply_cctf_encoding=True,
    ).transpose(2, 0, 1)
    np.testing.assert_allclose(y, ref, atol=5e-4)


def test_white_maps_to_white():
    m = oc.conversion_matrix("linear_srgb", "linear_prophoto")
    np.testing.assert_allclose(m @ np.ones(3), np.ones(3), atol=1e-6)


def test_bad_inputs():
    with pytest.raises(InvalidParameter, match="valid"):
        oc.convert(torch.zeros(3, 2, 2), src="srgb", dst="nope")
    with pytest.raises(InvalidParameter, match="camera"):
        oc.convert(torch.zeros(3, 2, 2), src="camera", dst="srgb")
    with pytest.raises(ShapeError, match=r"\(4, 2, 2\)"):
        oc.apply_matrix(torch.zeros(4, 2, 2), np.eye(3))
