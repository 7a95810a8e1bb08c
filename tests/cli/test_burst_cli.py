"""``obscura burst`` end to end on virtual-camera DNGs written by ``obscura simulate``, and bad input.

Runs through ``obscura.cli.main.main`` when ``burst`` is registered there, else through a local parser
built with :func:`obscura.cli.burst.add_parser` (same error handling: one line, exit code 2).
"""

from __future__ import annotations

import shutil

import pytest
import torch

from obscura.cli import burst as burst_cli
from obscura.cli.main import main as obscura_main
from obscura.io.raw import read_raw
from obscura.io.write import read_image


def run_burst(argv: list[str]) -> int:
    """``obscura burst ARGV`` through the real entry point."""
    return obscura_main(["burst", *argv])


@pytest.fixture(scope="module")
def sims(tmp_path_factory):
    """A 4-frame handheld burst and a −2/0/+2 EV bracket (128×192, phone-main, ISO 800)."""
    root = tmp_path_factory.mktemp("sims")
    common = ["colorchecker", "--size", "128x192", "--iso", "800", "--quiet"]
    assert obscura_main(["simulate", *common, "-o", str(root / "burst"), "--burst", "4", "--seed", "1"]) == 0
    assert obscura_main(["simulate", *common, "-o", str(root / "brackets"), "--brackets=-2,0,2", "--tripod"]) == 0
    return root


@pytest.mark.parametrize("mode", ["merge", "night", "sr"])
def test_burst_modes_end_to_end(sims, tmp_path, mode):
    if mode == "sr":
        pytest.importorskip("obscura.burst.superres")
    out, dng = tmp_path / "out.jpg", tmp_path / "merged.dng"
    assert run_burst([str(sims / "burst"), "-o", str(out), "--mode", mode, "--dng", str(dng), "--quiet"]) == 0
    im = read_image(out)
    scale = 2 if mode == "sr" else 1
    assert (im.height, im.width) == (128 * scale, 192 * scale)
    assert 0.05 < float(im.data.mean()) < 0.95
    raw = read_raw(dng)  # the merged raw opens again
    assert raw.data.shape[-2:] == (128 * scale, 192 * scale)
    frame = read_raw(sims / "burst" / "frame_00.dng")
    if mode != "sr":
        assert raw.meta.cfa == frame.meta.cfa
        # less noise than the input frame: the merged NoiseProfile was reduced
        assert raw.meta.noise_profile[0][0] < frame.meta.noise_profile[0][0]


def test_burst_list_of_files_and_reference(sims, tmp_path):
    files = sorted(str(p) for p in (sims / "burst").glob("*.dng"))
    out = tmp_path / "o.png"
    assert run_burst([*files, "-o", str(out), "--reference", "1", "--quiet"]) == 0
    assert read_image(out).width == 192


def test_hdr_raw_brackets_dng_keeps_the_radiance(sims, tmp_path):
    from obscura.burst.hdr import merge_brackets
    from obscura.io.raw import read_burst

    out, dng = tmp_path / "hdr.jpg", tmp_path / "hdr.dng"
    assert run_burst([str(sims / "brackets"), "-o", str(out), "--mode", "hdr", "--dng", str(dng), "--quiet"]) == 0
    want = merge_brackets(read_burst(sims / "brackets"))
    got = read_raw(dng)
    x = (got.data.float() - got.meta.black_level[0]) / (got.meta.white_level - got.meta.black_level[0])
    y = want.data / want.meta.white_level
    assert float((x - y.clamp(0, 1)).abs().max()) < 2.0 / 65535 + 1e-6  # 16-bit quantization only
    assert got.meta.baseline_exposure == pytest.approx(want.meta.baseline_exposure)


def test_hdr_real_jpeg_brackets_fuse(data_dir, tmp_path):
    out = tmp_path / "fused.jpg"
    folder = data_dir / "brackets" / "colour_hdri_frobisher_001"
    assert run_burst([str(folder), "-o", str(out), "--mode", "hdr", "--quiet"]) == 0
    from obscura.burst.hdr import fuse_exposures

    ims = [read_image(p).data for p in sorted(folder.glob("*.jpg"))]
    want = fuse_exposures(ims)
    got = read_image(out).data
    assert got.shape == want.shape and float((got - want).abs().mean()) < 0.01  # JPEG coding only


def _err(capsys) -> str:
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("obscura: error:"), lines
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--mode", "fast"], "unknown --mode 'fast'; valid modes: merge, sr, hdr, night"),
        (["--mode", "sr", "--scale", "8"], "--scale must be in [1, 4]"),
        (["--mode", "sr", "--scale", "0.5"], "--scale must be in [1, 4]"),
        (["--scale", "2"], "--scale applies to --mode sr only"),
        (["--reference", "9"], "--reference must index a frame"),
        (["--quality", "0"], "--quality must be in 1..100"),
        (["--recipe", "nope"], "unknown recipe"),
        (["--mode", "hdr"], "--mode hdr needs frames of different exposures"),
    ],
)
def test_bad_options(sims, tmp_path, capsys, extra, match):
    assert run_burst([str(sims / "burst"), "-o", str(tmp_path / "o.jpg"), "--quiet", *extra]) == 2
    assert match in _err(capsys)
    assert not (tmp_path / "o.jpg").exists()


def test_bad_inputs(sims, tmp_path, capsys):
    out = str(tmp_path / "o.jpg")
    assert run_burst([str(tmp_path / "missing.dng"), "-o", out, "--quiet"]) == 2
    assert "missing.dng: no such file" in _err(capsys)
    (tmp_path / "empty").mkdir()
    assert run_burst([str(tmp_path / "empty"), "-o", out, "--quiet"]) == 2
    assert "holds no raw files" in _err(capsys)
    assert run_burst([str(sims / "burst"), "-o", str(tmp_path / "o.xyz"), "--quiet"]) == 2
    assert "cannot tell the output format" in _err(capsys)
    # a frame of another size
    mixed = tmp_path / "mixed"
    shutil.copytree(sims / "burst", mixed, ignore=shutil.ignore_patterns("truth"))
    assert obscura_main(["simulate", "colorchecker", "--size", "64x96", "--quiet", "-o", str(tmp_path / "s")]) == 0
    shutil.copy(tmp_path / "s" / "frame_00.dng", mixed / "frame_09.dng")
    assert run_burst([str(mixed), "-o", out, "--quiet"]) == 2
    assert "frame_09.dng: size (64, 96) differs" in _err(capsys)
    # a frame of another camera
    other = tmp_path / "other"
    shutil.copytree(sims / "burst", other, ignore=shutil.ignore_patterns("truth"))
    assert (
        obscura_main(
            [
                "simulate",
                "colorchecker",
                "--size",
                "128x192",
                "--camera",
                "phone-tele",
                "--quiet",
                "-o",
                str(tmp_path / "t"),
            ]
        )
        == 0
    )
    shutil.copy(tmp_path / "t" / "frame_00.dng", other / "frame_09.dng")
    assert run_burst([str(other), "-o", out, "--quiet"]) == 2
    line = _err(capsys)
    assert "frame_09.dng" in line and ("camera" in line or "size" in line or "CFA" in line)
    assert not (tmp_path / "o.jpg").exists()


def test_output_exists_needs_overwrite(sims, tmp_path, capsys):
    out = tmp_path / "o.jpg"
    out.write_bytes(b"keep me")
    assert run_burst([str(sims / "burst"), "-o", str(out), "--quiet"]) == 2
    assert "already exists" in _err(capsys)
    assert out.read_bytes() == b"keep me"
    dng = tmp_path / "m.dng"
    dng.write_bytes(b"keep")
    assert run_burst([str(sims / "burst"), "-o", str(tmp_path / "p.jpg"), "--dng", str(dng), "--quiet"]) == 2
    assert "already exists" in _err(capsys) and dng.read_bytes() == b"keep"
    assert run_burst([str(sims / "burst"), "-o", str(out), "--overwrite", "--quiet"]) == 0
    assert out.read_bytes() != b"keep me"


def test_dng_ready_quantizes_float_frames():
    from obscura.core.types import RawFrame, RawMeta

    f = RawFrame(torch.tensor([[0.0, 0.5], [1.0, 2.5]]), RawMeta(cfa="RGGB", white_level=2.0))
    q = burst_cli.dng_ready(f)
    assert q.meta.white_level == 65535.0
    assert q.data.tolist() == [[0.0, 16384.0], [32768.0, 65535.0]]  # 0.5 of 2 → round(16383.75); clipped at white
