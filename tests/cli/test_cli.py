"""The command line: info, develop, demo, and bad input (one line, exit code 2, no file lost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage

from obscura.cli.main import main

COLORCHART = "raw/tinydngloader/colorchart.dng"


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("obscura: error: ")
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "Traceback" not in err


def test_info_json(data_dir, capsys):
    code, out, _ = _run(["info", data_dir / COLORCHART, "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["cfa"] == "RGGB" and d["make"] == "Canon" and d["white_level"] == 15000
    assert d["shape"][0] % 2 == 0 and d["shape"][1] % 2 == 0


def test_info_text_and_layout(data_dir, capsys):
    rel = data_dir / "raw/mushfiqulalam_isp/DSC_1339_768x512_rggb.raw"
    layout = "height=512,width=768,dtype=uint16,cfa=RGGB,black=600,white=15520"
    code, out, _ = _run(["info", rel, "--layout", layout], capsys)
    assert code == 0 and "RGGB" in out and "15520" in out


def test_develop_one_file_and_no_overwrite(data_dir, tmp_path, capsys):
    dst = tmp_path / "chart.jpg"
    code, _, err = _run(["develop", data_dir / COLORCHART, "-o", dst, "--recipe", "fast"], capsys)
    assert code == 0, err
    with PILImage.open(dst) as im:
        assert im.format == "JPEG" and im.size[0] > 100
    before = dst.read_bytes()
    code, _, err = _run(["develop", data_dir / COLORCHART, "-o", dst, "--recipe", "fast"], capsys)
    assert code == 2
    _one_error_line(err, str(dst), "already exists")
    assert dst.read_bytes() == before
    code, _, err = _run(["develop", data_dir / COLORCHART, "-o", dst, "--recipe", "fast", "--overwrite"], capsys)
    assert code == 0, err


def test_develop_several_files_into_a_folder(data_dir, tmp_path, capsys):
    files = [data_dir / COLORCHART, data_dir / "raw/more/skia_lg-h815_sample_1mp.dng"]
    out = tmp_path / "out"
    code, _, err = _run(["develop", *files, "-o", out, "--recipe", "fast", "--format", "png", "--quiet"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["colorchart.png", "skia_lg-h815_sample_1mp.png"]


def _bad_inputs(data_dir: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    rnd = tmp / "random.dng"
    rnd.write_bytes(os.urandom(20000))
    txt = tmp / "notes.dng"
    txt.write_text("this is not a raw file\n" * 50)
    folder = tmp / "a_folder.dng"
    folder.mkdir()
    truncated = tmp / "truncated.dng"
    truncated.write_bytes((data_dir / COLORCHART).read_bytes()[:300_000])
    return {
        "truncated": (truncated, ""),
        "truncated_real": (data_dir / "raw/bad/filetype_leica_m10_truncated.dng", ""),
        "random": (rnd, ""),
        "text": (txt, ""),
        "folder": (folder, ""),
        "missing": (tmp / "missing.dng", ""),
        "empty_pixels": (data_dir / "raw/bad/exiftool_DNG.dng", ""),
        "jpeg_as_nef": (data_dir / "raw/bad/metadata-extractor_nikon_d70s_jpeg_misnamed.nef", ""),
    }


@pytest.mark.parametrize(
    "case", ["truncated", "truncated_real", "random", "text", "folder", "missing", "empty_pixels", "jpeg_as_nef"]
)
def test_develop_bad_input_one_line_exit_2_no_output(data_dir, tmp_path, capsys, case):
    src, _ = _bad_inputs(data_dir, tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = _run(["develop", src, "-o", out / "x.jpg"], capsys)
    assert code == 2
    _one_error_line(err, str(src))
    assert list(out.iterdir()) == []  # no partial output, no temporary file


def test_develop_unwritable_output_folder(data_dir, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    target = ro if not os.access(ro, os.W_OK) else Path("/sys")  # root ignores permissions
    try:
        code, _, err = _run(["develop", data_dir / COLORCHART, "-o", target / "x.jpg", "--recipe", "fast"], capsys)
    finally:
        ro.chmod(0o700)
    assert code == 2
    _one_error_line(err, str(target / "x.jpg"))
    assert not (target / "x.jpg").exists()


def test_unknown_recipe_and_bad_layout(data_dir, tmp_path, capsys):
    code, _, err = _run(["develop", data_dir / COLORCHART, "-o", tmp_path / "x.jpg", "--recipe", "nope"], capsys)
    assert code == 2
    _one_error_line(err, "nope", "default")
    code, _, err = _run(["info", data_dir / COLORCHART, "--layout", "height=3"], capsys)
    assert code == 2
    _one_error_line(err, "--layout")


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "obscura.cli", "demo", "-o", str(out)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["outputs"]) == {"default", "reference"}
    for entry in summary["outputs"].values():
        with PILImage.open(entry["file"]) as im:
            assert im.format == "JPEG" and list(im.size) == entry["size"]
    assert summary["outputs"]["reference"]["mean_delta_e00_vs_libraw"] < 2.0
    lab = summary["lab"]  # simulate → develop → measure → report on the virtual camera
    html = (out / "lab" / "report.html").read_text()
    assert "data:image/png;base64," in html and "overall" in html
    assert set(lab["overall"]) == {"default", "reference", "libraw"}
    assert all(0 < v <= 100 for v in lab["overall"].values())
    assert len(list((out / "lab").glob("*.json"))) == 3


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["-o", "{tmp}/x.bmp"], "suffix"), (["-o", "{tmp}/x.jpg", "--quality", "0"], "--quality")],
)
def test_bad_options_fail_before_any_work(data_dir, tmp_path, capsys, extra, needle):
    argv = ["develop", data_dir / COLORCHART, *[a.format(tmp=tmp_path) for a in extra]]
    code, _, err = _run(argv, capsys)
    assert code == 2
    _one_error_line(err, needle)
    assert list(tmp_path.iterdir()) == []
