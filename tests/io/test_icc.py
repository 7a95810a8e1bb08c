"""Our ICC profiles: header and tags by the ICC.1 v4.3 layout, opened and applied by LittleCMS (Pillow
ImageCms), and compared with colour-science's conversions."""

from __future__ import annotations

import hashlib
import io
import struct

import colour
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms

from obscura.core.errors import CorruptFile, InvalidParameter
from obscura.io.icc import ICC_SPACES, icc_colorants, icc_description, icc_profile, icc_space

CS_NAME = {
    "srgb": "sRGB",
    "display_p3": "Display P3",
    "linear_srgb": "sRGB",
    "linear_p3": "Display P3",
    "linear_prophoto": "ProPhoto RGB",
    "linear_rec2020": "ITU-R BT.2020",
}


def _derived(name: str) -> colour.RGB_Colourspace:
    cs = colour.RGB_COLOURSPACES[name].copy()
    cs.use_derived_matrix_RGB_to_XYZ = True
    cs.use_derived_matrix_XYZ_to_RGB = True
    return cs


def _lcms(profile: bytes) -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(io.BytesIO(profile))


def _transform(src: bytes, rgb8: np.ndarray) -> np.ndarray:
    """Apply LittleCMS src profile → its built-in sRGB profile (relative colorimetric) to (N, 3) uint8."""
    t = ImageCms.buildTransform(
        _lcms(src), ImageCms.createProfile("sRGB"), "RGB", "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC
    )
    return np.asarray(ImageCms.applyTransform(PILImage.fromarray(rgb8[None]), t))[0].astype(np.float64)


@pytest.mark.parametrize("space", ICC_SPACES)
def test_header_and_tags(space):
    p = icc_profile(space)
    size, _cmm, version, cls, cspace, pcs = struct.unpack_from(">I4sI4s4s4s", p, 0)
    assert size == len(p) and size % 4 == 0
    assert p[36:40] == b"acsp"
    assert version == 0x04300000
    assert (cls, cspace, pcs) == (b"mntr", b"RGB ", b"XYZ ")
    # PCS illuminant D50 as ICC.1 §7.2.16 encodes it
    assert struct.unpack_from(">3i", p, 68) == (0xF6D6, 0x10000, 0xD32D)
    # profile ID = MD5 with flags, intent and ID zeroed (ICC.1 §7.2.18)
    z = bytearray(p)
    z[44:48] = z[64:68] = b"\0" * 4
    z[84:100] = b"\0" * 16
    assert p[84:100] == hashlib.md5(bytes(z)).digest()
    (count,) = struct.unpack_from(">I", p, 128)
    sigs = set()
    for i in range(count):
        sig, off, n = struct.unpack_from(">4sII", p, 132 + 12 * i)
        assert off % 4 == 0 and off + n <= len(p)
        sigs.add(sig)
    assert sigs == {b"desc", b"cprt", b"wtpt", b"chad", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"}
    assert icc_profile(space) is p  # cached


@pytest.mark.parametrize("space", ICC_SPACES)
def test_littlecms_opens_and_reads_description(space):
    prof = _lcms(icc_profile(space))
    assert prof.profile.version == pytest.approx(4.3)
    desc = ImageCms.getProfileDescription(prof).strip()
    assert desc == icc_description(icc_profile(space))
    assert ("linear" in desc) == space.startswith("linear")
    assert icc_space(icc_profile(space)) == space


@pytest.mark.parametrize("space", ICC_SPACES)
def test_colorants_match_colour_science(space):
    """rXYZ/gXYZ/bXYZ = the space's RGB→XYZ matrix Bradford-adapted to D50, columns summing to D50."""
    cs = _derived(CS_NAME[space])
    d50 = np.array([0.9642, 1.0, 0.8249])
    cat = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        colour.xy_to_XYZ(cs.whitepoint), d50, transform="Bradford"
    )
    expected = cat @ cs.matrix_RGB_to_XYZ
    got = icc_colorants(icc_profile(space))
    assert np.abs(got - expected).max() < 1e-4  # s15Fixed16 steps are 1.5e-5
    assert np.allclose(got.sum(axis=1), d50, atol=1e-5)


def test_srgb_profile_is_identity_to_littlecms_srgb():
    rgb = np.random.default_rng(0).integers(0, 256, (4096, 3), dtype=np.uint8)
    rgb[:256] = np.arange(256)[:, None]  # the grey ramp
    out = _transform(icc_profile("srgb"), rgb)
    assert np.abs(out - rgb).max() <= 1


def test_display_p3_to_srgb_matches_colour_science():
    rng = np.random.default_rng(1)
    srgb = rng.uniform(0.03, 0.97, (4096, 3))  # inside sRGB, so the P3 colours are in both gamuts
    p3 = colour.RGB_to_RGB(
        srgb, _derived("sRGB"), _derived("Display P3"), apply_cctf_decoding=True, apply_cctf_encoding=True
    )
    p3_8 = np.round(p3 * 255).astype(np.uint8)
    expected = colour.RGB_to_RGB(
        p3_8 / 255.0, _derived("Display P3"), _derived("sRGB"), apply_cctf_decoding=True, apply_cctf_encoding=True
    )
    out = _transform(icc_profile("display_p3"), p3_8)
    err = np.abs(out - np.clip(expected, 0, 1) * 255)
    assert err.max() <= 1.5, err.max()
    # and not the identity: the profile really describes P3 (saturated colours move by many codes)
    assert np.abs(out - p3_8).max() > 20


def test_linear_profile_has_gamma_one():
    rgb = np.random.default_rng(2).integers(40, 256, (2048, 3), dtype=np.uint8)  # avoid 8-bit linear darks
    out = _transform(icc_profile("linear_srgb"), rgb)
    expected = colour.cctf_encoding(rgb / 255.0, "sRGB") * 255
    assert np.abs(out - expected).max() <= 1.5


def test_bad_inputs():
    with pytest.raises(InvalidParameter, match="display_p3"):
        icc_profile("camera")
    with pytest.raises(InvalidParameter):
        icc_profile("adobe_rgb")
    with pytest.raises(CorruptFile):
        icc_space(b"not a profile at all" * 10)
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert icc_space(lab) is None


def test_icc_space_recognizes_littlecms_srgb():
    """A foreign profile (LittleCMS's built-in sRGB, parametric type 4 curves) is matched on its colorants."""
    assert icc_space(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()) == "srgb"
