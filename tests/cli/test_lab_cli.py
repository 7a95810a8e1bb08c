"""``obscura lab run | measure | compare`` through the CLI entry point."""

from __future__ import annotations

import json

import pytest

from obscura.cli.main import main
from obscura.lab.charts import CHARTS

SINC_MTF50 = 0.6034  # |sinc(f)| = 0.5: the MTF50 of an ideal pixel-integrated edge (cycles/pixel)


@pytest.fixture(scope="module")
def chart_pngs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("charts")
    assert main(["lab", "charts", "-o", str(folder), "--chart", "edge", "--chart", "colorchecker", "--quiet"]) == 0
    lin = folder / "linear"
    assert main(["lab", "charts", "-o", str(lin), "--chart", "colorchecker", "--encoding", "linear", "--quiet"]) == 0
    return folder


def _json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1  # one JSON object
    return json.loads(out)


def test_measure_edge_png_gives_the_pixel_sinc_mtf50(chart_pngs, capsys):
    d = _json(capsys, ["lab", "measure", str(chart_pngs / "edge.png"), "--chart", "edge", "--json"])
    assert d["chart"] == "edge"
    assert d["mtf50"] == pytest.approx(SINC_MTF50, abs=0.015)
    assert d["overshoot_pct"] < 1.0 and d["lateral_ca_max_px"] < 0.05
    # one edge given by --roi (as for a real photo): the same MTF50
    h, w = d["size"]
    roi = CHARTS.get("edge")(size=(h, w)).rois["edge_r1c1_v"]
    d1 = _json(
        capsys,
        ["lab", "measure", str(chart_pngs / "edge.png"), "--chart", "edge", "--roi", ",".join(map(str, roi)), "--json"],
    )
    assert d1["roi"] == list(roi)
    assert d1["mtf50"] == pytest.approx(SINC_MTF50, abs=0.02)
    assert abs(d1["angle_deg"]) == pytest.approx(5.0, abs=0.2)


def test_measure_colorchecker_png(chart_pngs, capsys):
    d = _json(capsys, ["lab", "measure", str(chart_pngs / "colorchecker.png"), "--chart", "colorchecker", "--json"])
    assert d["mean_delta_e00"] < 1.0
    assert abs(d["exposure_error_ev"]) < 0.02
    assert len(d["delta_e00"]) == 24
    # the linear PNG, read as linear, measures the same
    p = chart_pngs / "linear" / "colorchecker.png"
    d2 = _json(capsys, ["lab", "measure", str(p), "--chart", "colorchecker", "--encoding", "linear", "--json"])
    assert d2["mean_delta_e00"] < 1.0
    # ... and read as sRGB it is clearly wrong (the encoding matters)
    d3 = _json(capsys, ["lab", "measure", str(p), "--chart", "colorchecker", "--encoding", "srgb", "--json"])
    assert d3["mean_delta_e00"] > 5.0
    # without --json: a short human summary
    assert main(["lab", "measure", str(chart_pngs / "colorchecker.png"), "--chart", "colorchecker"]) == 0
    assert "mean_delta_e00" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--chart", "nope"], "unknown chart"),
        (["--chart", "edge", "--roi", "1,2,3"], "--roi"),
        (["--chart", "edge", "--roi", "0,0,99999,40"], "--roi"),
        (["--chart", "edge", "--roi", "0,0,5,5"], "--roi"),
        (["--chart", "edge", "--encoding", "gamma"], "--encoding"),
    ],
)
def test_measure_bad_input_exits_2_with_one_line(chart_pngs, capsys, extra, match):
    assert main(["lab", "measure", str(chart_pngs / "edge.png"), *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("obscura: error:") and match in err


def test_measure_missing_file(tmp_path, capsys):
    assert main(["lab", "measure", str(tmp_path / "none.png"), "--chart", "edge"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no such file" in err


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    proto = folder / "tiny.toml"
    proto.write_text(
        'name = "tiny"\nsize = [240, 320]\ncharts = ["colorchecker", "noise"]\n'
        '[[conditions]]\nname = "office"\nlux = 300.0\nmode = "tripod"\n'
    )
    out = folder / "out"
    argv = ["lab", "run", "--protocol", str(proto), "--pipeline", "reference", "--pipeline", "libraw"]
    code = main([*argv, "-o", str(out), "--quiet"])
    return code, out, argv


def test_run_writes_report_and_json(lab_run, capsys):
    code, out, argv = lab_run
    assert code == 0
    assert (out / "report.html").is_file()
    d = json.loads((out / "phone-main_reference.json").read_text())
    assert d["pipeline"] == "reference" and d["camera"] == "phone-main" and d["protocol"]["name"] == "tiny"
    assert set(d["conditions"]["office"]) == {"colorchecker", "noise"}
    assert d["subscores"]["colour"]["score"] is not None
    assert (out / "phone-main_libraw.json").is_file()
    # an existing report is not overwritten without --overwrite
    assert main([*argv, "-o", str(out), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_compare_builds_a_leaderboard(lab_run, tmp_path, capsys):
    _, out, _ = lab_run
    html = tmp_path / "board.html"
    a, b = out / "phone-main_reference.json", out / "phone-main_libraw.json"
    assert main(["lab", "compare", str(a), str(b), "-o", str(html)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "overall" in lines[0]
    ranked = [ln for ln in lines if ln.strip()[:1].isdigit()]
    assert len(ranked) == 2
    assert any("reference" in ln for ln in ranked) and any("libraw" in ln for ln in ranked)
    overall = [float(ln.split()[-1]) for ln in ranked]
    assert overall == sorted(overall, reverse=True)
    assert html.is_file() and 'id="leaderboard"' in html.read_text()


def test_compare_and_run_bad_input(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["lab", "compare", str(bad)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["lab", "compare", str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["lab", "run", "--pipeline", "nope", "-o", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "recipe" in err
    assert main(["lab", "run", "--protocol", "nope", "-o", str(tmp_path / "o"), "--quiet"]) == 2
    assert "protocol" in capsys.readouterr().err


def test_measure_colorchecker_in_a_photo_is_detected(tmp_path, capsys):
    """A photo of a ColorChecker (rotated 5° on a grey table, noisy): found by colour-checker-detection."""
    pytest.importorskip("colour_checker_detection")
    import numpy as np
    from PIL import Image as PILImage

    from obscura.lab.charts.colorchecker import colorchecker_chart
    from tests.lab.test_detect import _photo

    chart = colorchecker_chart(size=(400, 600))
    enc = _photo(chart.scene.linear_srgb().numpy().astype(np.float64), 5.0, seed=3)
    p = tmp_path / "photo.png"
    PILImage.fromarray((enc.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)).save(p)
    d = _json(capsys, ["lab", "measure", str(p), "--chart", "colorchecker", "--json"])
    assert len(d["detected_quad"]) == 4
    assert d["mean_delta_e00_normalized"] < 2.0


def test_measure_edges_found_in_a_real_photo(data_dir, capsys):
    """The real satellite knife-edge crop (no chart layout): edges found automatically, e-SFR on each."""
    tif = next((data_dir / "charts" / "mtf_estimator").glob("*.tif"))
    d = _json(capsys, ["lab", "measure", str(tif), "--chart", "edge", "--json"])
    assert len(d["edges"]) >= 2
    assert 0.1 < d["mtf50"] < 0.3  # a blurred satellite edge; two estimates agree
    assert max(e["mtf50"] for e in d["edges"]) - min(e["mtf50"] for e in d["edges"]) < 0.03
