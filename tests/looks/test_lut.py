"""LUTs: .cube/Hald io, tetrahedral application, baking — checked against colour-science, OpenColorIO,
Pillow and ImageMagick in the same run."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import colour
import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from obscura.core.errors import CorruptFile, InputError, InvalidParameter, OutputExists, ShapeError, UnknownMethod
from obscura.looks.lut import (
    INTERPOLATION,
    LUT1D,
    LUT3D,
    apply_lut,
    bake,
    bake_linear,
    bake_srgb,
    identity_lut,
    identity_lut1d,
    read_cube,
    read_hald,
    resample,
    shaper_log2,
    write_cube,
    write_hald,
)
from tests.looks._ocio import ocio_apply


def known_look(x: torch.Tensor) -> torch.Tensor:
    """A smooth nonlinear look on encoded sRGB (3, ...): S-curve, hue rotation about grey, saturation ×1.3.

    Not clamped (a LUT may hold values outside [0, 1]); smooth, so a 33³ LUT holds it within ~3e-4.
    """
    s = x - 0.3 * torch.sin(2 * math.pi * x) / (2 * math.pi)
    m = s.mean(0, keepdim=True)
    k = np.ones(3) / math.sqrt(3)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    th = 0.25
    R = np.eye(3) + math.sin(th) * K + (1 - math.cos(th)) * K @ K
    c = torch.einsum("ij,j...->i...", torch.tensor(R, dtype=x.dtype, device=x.device), s - m)
    return m + 1.3 * c


def random_table(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, n, n, 3, generator=g)


def kodak(data_dir: Path, i: int, size=(192, 128)) -> torch.Tensor:
    im = Image.open(data_dir / "images" / "kodak24" / f"kodim{i:02d}.png").convert("RGB")
    if im.width < im.height:
        im = im.rotate(90, expand=True)
    im = im.resize(size, Image.BOX)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


# ---------------------------------------------------------------------------------------------- apply


@pytest.mark.parametrize("method", ["tetrahedral", "trilinear"])
def test_identity_lut_applies_within_1e5(device, method):
    x = torch.rand(3, 300, 400, generator=torch.Generator().manual_seed(1)).to(device)  # > one CPU chunk
    y = apply_lut(x, identity_lut(33, device=device), method=method)
    assert y.shape == x.shape and y.device == x.device and y.dtype == torch.float32
    assert (y - x).abs().max().item() < 1e-5


def test_identity_cube_file_applies_within_1e5(tmp_path, device):
    p = write_cube(identity_lut(17), tmp_path / "id.cube")
    x = torch.rand(3, 64, 48, generator=torch.Generator().manual_seed(2)).to(device)
    assert (apply_lut(x, read_cube(p)) - x).abs().max().item() < 1e-5


@pytest.mark.parametrize("n", [2, 17, 33])
def test_tetrahedral_matches_colour_science(device, n):
    table = random_table(n, seed=n)
    pts = np.random.default_rng(n).random((70_000, 3))  # > one CPU chunk: the chunked kernel is checked
    pts[:50] = np.round(pts[:50] * (n - 1)) / (n - 1)  # points on nodes and cell faces (ties)
    pts[50:60, 1] = pts[50:60, 0]
    ref = colour.algebra.table_interpolation_tetrahedral(pts, table.double().numpy())
    x = torch.from_numpy(pts.T.astype(np.float32)).contiguous().to(device)
    ours = apply_lut(x, LUT3D(table.to(device))).T.double().cpu().numpy()
    assert np.abs(ours - ref).max() < 1e-5


def test_trilinear_matches_colour_science(device):
    table = random_table(9, seed=3)
    pts = np.random.default_rng(3).random((5000, 3))
    ref = colour.algebra.table_interpolation_trilinear(pts, table.double().numpy())
    x = torch.from_numpy(pts.T.astype(np.float32)).contiguous().to(device)
    ours = apply_lut(x, LUT3D(table.to(device)), method="trilinear").T.double().cpu().numpy()
    assert np.abs(ours - ref).max() < 1e-5


def test_domain_and_clamping_match_colour_science(device):
    table = random_table(9, seed=4)
    lut = LUT3D(table.to(device), (-0.5, 0.0, 0.1), (1.5, 2.0, 0.9))
    pts = np.random.default_rng(4).uniform(-1, 2.5, (5000, 3))
    ref_lut = colour.LUT3D(table.double().numpy(), domain=np.array([[-0.5, 0.0, 0.1], [1.5, 2.0, 0.9]]))
    lo, hi = np.array(lut.domain_min), np.array(lut.domain_max)
    ref = ref_lut.apply(np.clip(pts, lo, hi), interpolator=colour.algebra.table_interpolation_tetrahedral)
    x = torch.from_numpy(pts.T.astype(np.float32)).contiguous().to(device)
    assert np.abs(apply_lut(x, lut).T.double().cpu().numpy() - ref).max() < 1e-5


def test_lut1d_and_shaper_match_numpy_interp(device):
    t = torch.rand(64, 3, generator=torch.Generator().manual_seed(5)).sort(0).values
    lut = LUT1D(t.to(device), (0.0, -1.0, 0.0), (2.0, 1.0, 4.0))
    pts = np.random.default_rng(5).uniform(-1.5, 4.5, (3, 2000))
    ours = apply_lut(torch.from_numpy(pts).float().to(device), lut).cpu().double().numpy()
    for c in range(3):
        nodes = np.linspace(lut.domain_min[c], lut.domain_max[c], 64)
        assert np.abs(ours[c] - np.interp(pts[c], nodes, t[:, c].double().numpy())).max() < 1e-5


def test_apply_is_differentiable_in_the_table_and_leaves_input(device):
    table = random_table(5).to(device).requires_grad_(True)
    x = torch.rand(3, 1000, generator=torch.Generator().manual_seed(6)).to(device)
    x0 = x.clone()
    w = torch.rand(3, 1000, generator=torch.Generator().manual_seed(7)).to(device)
    (apply_lut(x, LUT3D(table)) * w).sum().backward()
    assert torch.equal(x, x0)
    # the output is linear in the table: its gradient is the output with the table replaced by the weights
    eps = torch.zeros_like(table)
    eps[2, 1, 3, 0] = 1.0
    expected = (apply_lut(x, LUT3D(eps)) * w).sum()
    assert abs(table.grad[2, 1, 3, 0].item() - expected.item()) < 1e-4


def test_apply_matches_pillow_color3dlut_8bit(data_dir):
    """Sanity against Pillow's 8-bit trilinear Color3DLUT on a Kodak image (tolerance: 8-bit steps)."""
    x = kodak(data_dir, 3)
    table = bake(known_look, size=17).table.clamp(0, 1)
    flat = table.permute(2, 1, 0, 3).reshape(-1, 3).tolist()  # Pillow wants red fastest, like .cube
    im = Image.fromarray(np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    ref = np.asarray(im.filter(ImageFilter.Color3DLUT(17, flat)), dtype=np.float64) / 255
    x8 = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1)
    ours = apply_lut(x8, LUT3D(table), method="trilinear").permute(1, 2, 0).double().numpy()
    assert np.abs(ours - ref).max() < 2.5 / 255
    assert np.abs(ours - ref).mean() < 0.5 / 255


# ------------------------------------------------------------------------------------------ .cube io


@pytest.mark.parametrize("dialect", ["resolve", "adobe"])
def test_cube_round_trips_through_colour_science(tmp_path, dialect):
    lut = LUT3D(random_table(9, seed=8) * 1.2 - 0.1, (-0.1,) * 3, (1.5,) * 3, title="round trip")
    p = write_cube(lut, tmp_path / f"a_{dialect}.cube", dialect=dialect)
    theirs = colour.io.read_LUT(str(p))
    assert isinstance(theirs, colour.LUT3D)
    np.testing.assert_allclose(theirs.table, lut.table.numpy(), atol=1e-6)
    np.testing.assert_allclose(theirs.domain, [lut.domain_min, lut.domain_max])
    ours = read_cube(p)
    assert ours.title == "round trip" and ours.domain_min == lut.domain_min and ours.domain_max == lut.domain_max
    assert (ours.table - lut.table).abs().max().item() < 1e-6


def test_cube_written_by_colour_science_reads_back(tmp_path):
    table = random_table(6, seed=9).double().numpy()
    ref = colour.LUT3D(table, name="from colour", domain=np.array([[0, 0, 0], [2, 2, 2]]))
    colour.io.write_LUT(ref, str(tmp_path / "c.cube"), method="Iridas Cube")
    ours = read_cube(tmp_path / "c.cube")
    assert ours.domain_max == (2.0, 2.0, 2.0)
    assert np.abs(ours.table.double().numpy() - table).max() < 1e-6
    one = colour.LUT3x1D(np.random.default_rng(9).random((20, 3)), domain=np.array([[0, 0, 0], [1, 2, 3]]))
    colour.io.write_LUT(one, str(tmp_path / "d.cube"), method="Iridas Cube")
    lut1 = read_cube(tmp_path / "d.cube")
    assert isinstance(lut1, LUT1D) and lut1.domain_max == (1.0, 2.0, 3.0)
    assert np.abs(lut1.table.double().numpy() - one.table).max() < 1e-6


def test_resolve_cube_with_shaper_round_trips_through_colour_science(tmp_path):
    lut = bake_linear(known_look, size=17, shaper="log2", shaper_size=256, title="lin")
    p = write_cube(lut, tmp_path / "s.cube")
    seq = colour.io.read_LUT(str(p))
    assert isinstance(seq, colour.LUTSequence) and len(seq) == 2
    np.testing.assert_allclose(seq[0].table, lut.shaper.table.numpy(), atol=1e-6)
    np.testing.assert_allclose(seq[0].domain[1], lut.shaper.domain_max, rtol=1e-6)
    np.testing.assert_allclose(seq[1].table, lut.table.numpy(), atol=1e-6)
    back = read_cube(p)
    assert back.shaper is not None and back.shaper.size == 256 and back.size == 17
    x = torch.rand(3, 500, generator=torch.Generator().manual_seed(10)) * 2.5
    assert (apply_lut(x, back) - apply_lut(x, lut)).abs().max().item() < 1e-5
    ref = seq.apply(x.T.double().numpy().clip(0, lut.shaper.domain_max[0]))  # colour: linear 1D + trilinear 3D
    assert np.abs(apply_lut(x, back, method="trilinear").T.double().numpy() - ref).max() < 1e-5


def test_read_cube_tolerates_comments_and_resolve_keywords(tmp_path):
    lines = ["# comment", 'TITLE "hello world"', "LUT_3D_SIZE 2", "LUT_IN_VIDEO_RANGE", "", "LUT_3D_INPUT_RANGE 0 2"]
    vals = [f"{r} {g} {b}" for b in (0, 1) for g in (0, 1) for r in (0, 1)]
    (tmp_path / "x.cube").write_text("\n".join(lines + vals) + "\n")
    lut = read_cube(tmp_path / "x.cube")
    assert lut.title == "hello world" and lut.domain_max == (2.0, 2.0, 2.0)
    # red changes fastest in the file: table[r, g, b] == (r, g, b)
    assert lut.table[1, 0, 0].tolist() == [1, 0, 0] and lut.table[0, 0, 1].tolist() == [0, 0, 1]


def test_write_cube_never_overwrites(tmp_path):
    p = write_cube(identity_lut(2), tmp_path / "a.cube")
    before = p.read_text()
    with pytest.raises(OutputExists, match=r"a\.cube"):
        write_cube(identity_lut(3), p)
    assert p.read_text() == before
    write_cube(identity_lut(3), p, overwrite=True)
    assert read_cube(p).size == 3


BAD_CUBES = {
    "wrong_count.cube": ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7, "holds 7 table entries; LUT_3D_SIZE 2³ needs 8"),
    "bad_number.cube": ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7 + "0 x 1\n", "bad number"),
    "nan.cube": ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7 + "0 nan 1\n", "non-finite"),
    "two_numbers.cube": ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7 + "0 1\n", "needs 3 numbers"),
    "too_big.cube": ("LUT_3D_SIZE 300\n0 0 0\n", "out of range"),
    "size_not_int.cube": ("LUT_3D_SIZE 2.5\n0 0 0\n", "not an integer"),
    "no_size.cube": ('TITLE "x"\n' + "0 0 0\n" * 8, "missing LUT_3D_SIZE"),
    "empty.cube": ("", "missing LUT_3D_SIZE"),
    "junk.cube": ("LUT_3D_SIZE 2\nhello there\n", "not a .cube keyword"),
    "bad_domain.cube": ("LUT_3D_SIZE 2\nDOMAIN_MIN 1 1 1\nDOMAIN_MAX 0 0 0\n" + "0 0 0\n" * 8, "domain_min"),
}


@pytest.mark.parametrize("name", sorted(BAD_CUBES))
def test_malformed_cube_files_raise_corrupt_file(tmp_path, name):
    text, problem = BAD_CUBES[name]
    (tmp_path / name).write_text(text)
    with pytest.raises(CorruptFile, match=problem) as e:
        read_cube(tmp_path / name)
    assert name in str(e.value)


def test_truncated_cube_file_raises_corrupt_file(tmp_path):
    p = write_cube(bake(known_look, size=9), tmp_path / "full.cube")
    data = p.read_bytes()
    (tmp_path / "cut.cube").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFile, match=r"cut.cube.*(truncated|needs 3 numbers)"):
        read_cube(tmp_path / "cut.cube")


def test_missing_or_binary_cube_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.cube"):
        read_cube(tmp_path / "nope.cube")
    (tmp_path / "bin.cube").write_bytes(b"\x89PNG\x00\x00\x01")
    with pytest.raises(CorruptFile, match=r"bin\.cube"):
        read_cube(tmp_path / "bin.cube")


# ------------------------------------------------------------------------------------------ OpenColorIO


@pytest.mark.parametrize("dialect", ["resolve", "adobe"])
def test_baked_look_applied_by_opencolorio_matches_random_colours(tmp_path, dialect):
    lut = bake_srgb(known_look, size=33, title="known")
    p = write_cube(lut, tmp_path / "known.cube", dialect=dialect)
    x = torch.rand(3, 20_000, generator=torch.Generator().manual_seed(11))
    theirs = ocio_apply(p, x.T.numpy())
    assert np.abs(theirs - apply_lut(x, lut).T.numpy()).max() < 1e-5  # same interpolation
    assert np.abs(theirs - known_look(x).T.numpy()).max() < 2e-3  # and the look itself


def test_baked_look_applied_by_opencolorio_matches_on_kodak(tmp_path, data_dir):
    lut = bake_srgb(known_look, size=33)
    p = write_cube(lut, tmp_path / "k.cube")
    for i in (1, 7, 13):
        x = kodak(data_dir, i)
        theirs = ocio_apply(p, x.permute(1, 2, 0).reshape(-1, 3).numpy())
        own = known_look(x).permute(1, 2, 0).reshape(-1, 3).numpy()
        assert np.abs(theirs - own).max() < 2e-3
        assert np.abs(theirs - apply_lut(x, lut).permute(1, 2, 0).reshape(-1, 3).numpy()).max() < 1e-5


@pytest.mark.parametrize("shaper", ["log2", "srgb"])
def test_linear_bake_with_shaper_matches_opencolorio(tmp_path, shaper):
    def fn(lin: torch.Tensor) -> torch.Tensor:  # linear in → look → encoded sRGB out
        from obscura.core.colour import srgb_encode

        return known_look(srgb_encode((lin / 2.88 if shaper == "log2" else lin).clamp(0, 1)))

    lut = bake_linear(fn, size=65, shaper=shaper)  # 65³: 12 stops in log2 need the finer grid
    p = write_cube(lut, tmp_path / "lin.cube")
    hi = lut.shaper.domain_max[0]
    x = torch.rand(3, 20_000, generator=torch.Generator().manual_seed(12)) ** 2 * hi
    theirs = ocio_apply(p, x.T.numpy())
    assert np.abs(theirs - apply_lut(x, lut).T.numpy()).max() < 1e-5
    bright = (x > 0.05 * hi).all(0)  # away from the toe, where a 1D shaper sampled in linear steps is coarse
    assert np.abs(theirs[bright.numpy()] - fn(x).T.numpy()[bright.numpy()]).max() < 2e-3


# ------------------------------------------------------------------------------------------------ Hald


def test_hald_round_trip_and_layout(tmp_path):
    lut = bake(known_look, size=16)  # level 4: 64×64 pixels
    p = write_hald(LUT3D(lut.table.clamp(0, 1)), tmp_path / "h.png", level=4)
    arr = np.asarray(Image.open(p))
    assert arr.shape == (64, 64, 3)
    # Hald layout: pixel k in raster order is node r = k % 16, g = k // 16 % 16, b = k // 256
    img = __import__("imagecodecs").imread(str(p)).reshape(-1, 3) / 65535
    k = 1 + 16 * 3 + 256 * 5
    np.testing.assert_allclose(img[k], lut.table[1, 3, 5].clamp(0, 1).numpy(), atol=1e-4)
    back = read_hald(p)
    assert back.size == 16 and (back.table - lut.table.clamp(0, 1)).abs().max().item() <= 0.5 / 65535 + 1e-7


def test_hald_resamples_other_sizes(tmp_path):
    lut = bake(lambda x: x**2, size=33)
    back = read_hald(write_hald(lut, tmp_path / "r.png", level=3))
    x = torch.rand(3, 1000, generator=torch.Generator().manual_seed(14))
    assert back.size == 9 and (apply_lut(x, back) - x**2).abs().max().item() < 0.02


def test_hald_identity_matches_imagemagick(tmp_path):
    exe = shutil.which("magick") or shutil.which("convert")
    cmd = [exe, "hald:4", "-depth", "16", str(tmp_path / "im.png")] if exe else []
    if not exe or subprocess.run(cmd, capture_output=True).returncode != 0:
        pytest.skip("ImageMagick (with its hald: generator) is not installed")
    lut = read_hald(tmp_path / "im.png")
    assert lut.size == 16 and (lut.table - identity_lut(16).table).abs().max().item() < 1e-4
    mine = write_hald(identity_lut(16), tmp_path / "mine.png", level=4)
    assert np.abs(np.asarray(Image.open(mine), np.float64) - np.asarray(Image.open(tmp_path / "im.png"))).max() <= 1


def test_bad_hald_images(tmp_path):
    Image.new("RGB", (100, 100)).save(tmp_path / "sq.png")
    with pytest.raises(ShapeError, match=r"sq.png.*level³ × level³.*100×100"):
        read_hald(tmp_path / "sq.png")
    Image.new("RGB", (64, 8)).save(tmp_path / "wide.png")
    with pytest.raises(ShapeError, match=r"wide\.png"):
        read_hald(tmp_path / "wide.png")
    Image.new("L", (64, 64)).save(tmp_path / "grey.png")
    with pytest.raises(ShapeError, match=r"grey\.png.*RGB"):
        read_hald(tmp_path / "grey.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(CorruptFile, match=r"broken\.png"):
        read_hald(tmp_path / "broken.png")
    with pytest.raises(InputError, match=r"missing\.png"):
        read_hald(tmp_path / "missing.png")
    with pytest.raises(InvalidParameter, match="level"):
        write_hald(identity_lut(4), tmp_path / "x.png", level=40)


# ------------------------------------------------------------------------------------------ bad input


def test_bad_inputs_raise_obscura_errors():
    with pytest.raises(ShapeError, match=r"\(N, N, N, 3\).*\(4, 4, 5, 3\)"):
        LUT3D(torch.zeros(4, 4, 5, 3))
    with pytest.raises(ShapeError, match="300"):
        LUT3D(torch.zeros(300, 300, 300, 3)[:, :, :, :3].expand(300, 300, 300, 3))
    with pytest.raises(ShapeError, match=r"\(N, 3\)"):
        LUT1D(torch.zeros(10, 4))
    with pytest.raises(InvalidParameter, match="domain_min"):
        identity_lut(5, domain_min=(1, 1, 1), domain_max=(0, 0, 0))
    with pytest.raises(InvalidParameter, match="size"):
        identity_lut(1)
    with pytest.raises(InvalidParameter, match="size"):
        identity_lut(257)
    with pytest.raises(ShapeError, match=r"\(3, H, W\).*\(4, 5, 5\)"):
        apply_lut(torch.zeros(4, 5, 5), identity_lut(2))
    with pytest.raises(ShapeError, match="floating"):
        apply_lut(torch.zeros(3, 5, 5, dtype=torch.uint8), identity_lut(2))
    with pytest.raises(UnknownMethod, match="tetrahedral, trilinear"):
        apply_lut(torch.zeros(3, 5, 5), identity_lut(2), method="cubic")
    with pytest.raises(InvalidParameter, match="LUT3D or LUT1D"):
        apply_lut(torch.zeros(3, 5, 5), "x.cube")
    with pytest.raises(InvalidParameter, match="dialect"):
        write_cube(identity_lut(2), "x.cube", dialect="nuke")
    with pytest.raises(InvalidParameter, match="shaper"):
        write_cube(bake_linear(lambda x: x, size=2, shaper_size=8), "x.cube", dialect="adobe")
    with pytest.raises(ShapeError, match="fn must return"):
        bake(lambda x: x[:2], size=3)
    with pytest.raises(InvalidParameter, match="non-finite"):
        bake(lambda x: x / 0, size=3)
    with pytest.raises(InvalidParameter, match="strictly increasing"):
        bake(lambda x: x, size=3, shaper=LUT1D(torch.zeros(4, 3)))
    with pytest.raises(InvalidParameter, match="shaper must be"):
        bake_linear(lambda x: x, shaper="gamma")
    with pytest.raises(InvalidParameter, match="stops_below"):
        shaper_log2(stops_below=-1)
    assert INTERPOLATION.names() == ["tetrahedral", "trilinear"]


def test_resample_and_identity_1d():
    lut = bake(known_look, size=33)
    small = resample(lut, size=17)
    x = torch.rand(3, 2000, generator=torch.Generator().manual_seed(15))
    assert (apply_lut(x, small) - known_look(x)).abs().max().item() < 3e-3
    assert (apply_lut(x, identity_lut1d(16)) - x).abs().max().item() < 1e-6
