"""``obscura look apply|list|export|fit`` and ``obscura develop --look``: results, and bad input as one line
with exit code 2 and no file lost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from obscura.cli import main as main_mod
from obscura.io.write import read_image
from obscura.looks.look import apply_look, list_looks, load_look


def _main(argv: list[str]) -> int:
    """``obscura ARGV`` through the real entry point."""
    return main_mod.main(argv)


def _run(argv, capsys):
    code = _main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("obscura: error: ")
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _png(path, seed=0, size=(40, 56)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    arr = np.stack([xx * 4, yy * 5, 255 - xx * 3], -1) * 0.7 + rng.uniform(0, 70, (*size, 3))
    arr = arr.clip(0, 255).astype(np.uint8)
    PILImage.fromarray(arr).save(path)
    return arr


def test_list_shows_every_look_with_its_description(capsys):
    code, out, err = _run(["look", "list"], capsys)
    assert code == 0 and not err
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines] == list_looks()
    assert all(len(ln) > 60 for ln in lines)


def test_apply_one_file_matches_apply_look_and_no_overwrite(tmp_path, capsys):
    _png(tmp_path / "a.png")
    out = tmp_path / "a_vibrant.png"
    code, _, err = _run(["look", "apply", tmp_path / "a.png", "--look", "vibrant", "-o", out, "--bits", "16"], capsys)
    assert code == 0, err
    src = read_image(tmp_path / "a.png")
    got = read_image(out)
    ref = apply_look(src.data, look="vibrant", space=src.space).clamp(0, 1)
    assert got.space == "srgb" and float((got.data - ref).abs().max()) < 1e-4
    before = out.read_bytes()
    code, _, err = _run(["look", "apply", tmp_path / "a.png", "--look", "authentic", "-o", out], capsys)
    assert code == 2
    _one_error_line(err, "already exists", "--overwrite")
    assert out.read_bytes() == before
    code, _, err = _run(["look", "apply", tmp_path / "a.png", "--look", "authentic", "-o", out, "--overwrite"], capsys)
    assert code == 0 and out.read_bytes() != before


def test_apply_several_files_into_a_folder_with_a_toml_look(tmp_path, capsys):
    _png(tmp_path / "a.png", 1)
    PILImage.fromarray(_png(tmp_path / "b.png", 2)).save(tmp_path / "b.jpg", quality=95)
    (tmp_path / "mine.toml").write_text('base = "monochrome"\n[grain]\nstrength = 0.0\n')
    outdir = tmp_path / "out"
    code, out, err = _run(
        ["look", "apply", tmp_path / "a.png", tmp_path / "b.jpg", "--look", tmp_path / "mine.toml", "-o", outdir],
        capsys,
    )
    assert code == 0, err
    assert sorted(p.name for p in outdir.iterdir()) == ["a.png", "b.jpg"]
    assert len(out.splitlines()) == 2 and "(mine)" in out
    for name in ("a.png", "b.jpg"):
        rgb = np.asarray(PILImage.open(outdir / name)).astype(int)
        assert np.abs(rgb[..., 0] - rgb[..., 2]).max() <= 3  # black and white (up to dither and JPEG)


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--look", "vivid"], ["unknown look 'vivid'", "authentic", "vibrant"]),
        (["--look", "vibrant", "--quality", "0"], ["--quality"]),
    ],
)
def test_apply_bad_options_one_line(tmp_path, capsys, argv, needles):
    _png(tmp_path / "a.png")
    code, _, err = _run(["look", "apply", tmp_path / "a.png", "-o", tmp_path / "o.png", *argv], capsys)
    assert code == 2
    _one_error_line(err, *needles)
    assert not (tmp_path / "o.png").exists()


def test_apply_bad_inputs_one_line(tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 30)  # a truncated JPEG
    (tmp_path / "bad.toml").write_text("[tone]\ncontrast = 12\n")
    _png(tmp_path / "a.png")
    code, _, err = _run(["look", "apply", tmp_path / "bad.jpg", "--look", "vibrant", "-o", tmp_path / "o.png"], capsys)
    assert code == 2
    _one_error_line(err, "bad.jpg")
    code, _, err = _run(
        ["look", "apply", tmp_path / "a.png", "--look", tmp_path / "bad.toml", "-o", tmp_path / "o.png"], capsys
    )
    assert code == 2
    _one_error_line(err, "tone.contrast", "[0.25, 4.0]")
    code, _, err = _run(["look", "apply", tmp_path / "a.png", "--look", "vibrant", "-o", tmp_path / "o.xyz"], capsys)
    assert code == 2
    _one_error_line(err, ".xyz")
    assert not (tmp_path / "o.png").exists()


def test_export_cube_matches_the_look(tmp_path, capsys):
    from obscura.core.colour import srgb_encode
    from obscura.looks.lut import apply_lut, read_cube

    out = tmp_path / "authentic.cube"
    code, _, err = _run(["look", "export", "authentic", "-o", out, "--size", "17"], capsys)
    assert code == 0
    assert "vignetting and grain" in err  # told what a LUT cannot hold
    lut = read_cube(out)
    assert lut.size == 17
    e = srgb_encode(torch.rand(3, 30, 30, generator=torch.Generator().manual_seed(0)))
    direct = apply_look(e, look=load_look("authentic").without_spatial(), space="srgb").clamp(0, 1)
    assert float((apply_lut(e, lut) - direct).abs().mean()) < 5e-3
    before = out.read_bytes()
    code, _, err = _run(["look", "export", "vibrant", "-o", out], capsys)
    assert code == 2
    _one_error_line(err, "already exists")
    assert out.read_bytes() == before
    for argv, needle in (
        (["vivid", "-o", tmp_path / "v.cube"], "unknown look"),
        (["vibrant", "-o", tmp_path / "v.txt"], ".cube"),
        (["vibrant", "-o", tmp_path / "v.cube", "--size", "1"], "--size"),
    ):
        code, _, err = _run(["look", "export", *argv], capsys)
        assert code == 2
        _one_error_line(err, needle)


def test_fit_writes_a_look_that_reproduces_the_pairs(tmp_path, capsys):
    befores, afters = [], []
    lk = load_look("vibrant").without_spatial()
    for i in range(2):
        b = tmp_path / f"b{i}.png"
        _png(b, 10 + i, size=(48, 48))
        img = read_image(b)
        y = apply_look(img.data, look=lk, space="srgb").clamp(0, 1)
        a = tmp_path / f"a{i}.png"
        PILImage.fromarray((y.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(a)
        befores.append(b)
        afters.append(a)
    out = tmp_path / "mine.toml"
    argv = ["look", "fit", "--before", *befores, "--after", *afters, "-o", out, "--size", "9", "--steps", "150"]
    code, stdout, err = _run(argv, capsys)
    assert code == 0, err
    assert out.is_file() and (tmp_path / "mine.cube").is_file() and "ΔE00" in stdout
    fitted = load_look(out)
    assert fitted.lut is not None
    src = read_image(befores[0])
    got = apply_look(src.data, look=fitted, space="srgb").clamp(0, 1)
    want = read_image(afters[0]).data
    assert float((got - want).abs().mean()) < float((src.data - want).abs().mean()) / 2  # learned most of it
    code, _, err = _run(argv, capsys)
    assert code == 2
    _one_error_line(err, "already exists")
    code, _, err = _run(["look", "fit", "--before", befores[0], "--after", *afters, "-o", tmp_path / "x.toml"], capsys)
    assert code == 2
    _one_error_line(err, "--before", "--after")


def test_develop_with_look(data_dir, tmp_path, capsys):
    from obscura.cli.main import main

    raw = data_dir / "raw/more/skia_lg-h815_sample_1mp.dng"
    plain, looked = tmp_path / "plain.png", tmp_path / "mono.png"
    assert main(["develop", str(raw), "-o", str(plain), "--recipe", "fast", "--quiet"]) == 0
    code = main(["develop", str(raw), "-o", str(looked), "--recipe", "fast", "--look", "monochrome", "--quiet"])
    assert code == 0
    a = np.asarray(PILImage.open(plain)).astype(int)
    b = np.asarray(PILImage.open(looked)).astype(int)
    assert a.shape == b.shape
    assert np.abs(a[..., 0] - a[..., 2]).mean() > 5 and np.abs(b[..., 0] - b[..., 2]).max() <= 2
    capsys.readouterr()
    code = main(["develop", str(raw), "-o", str(tmp_path / "x.png"), "--look", "vivid"])
    _, err = capsys.readouterr()
    assert code == 2
    _one_error_line(err, "unknown look 'vivid'", "authentic")
    assert not (tmp_path / "x.png").exists()
