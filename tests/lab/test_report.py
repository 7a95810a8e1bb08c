"""The lab's HTML report, its JSON and the leaderboard, from a small real protocol run."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image as PILImage

from obscura.core.errors import CorruptFile, InputError, InvalidParameter, OutputExists
from obscura.lab import score as sc
from obscura.lab.report import html as rh
from obscura.lab.report import plots


class _Collect(HTMLParser):
    """Image sources, table ids, and the cells of the summary table."""

    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.links: list[str] = []
        self.tables: list[str] = []
        self.rows: list[list[str]] = []
        self._in: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a.get("src", ""))
        if tag in ("link", "script") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src"))
        if tag == "table":
            self._in = a.get("id")
            self.tables.append(a.get("id"))
        if tag == "tr" and self._in == "summary":
            self.rows.append([])
        if tag in ("td", "th") and self._in == "summary":
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._in = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def results():
    """One condition, every measured chart, 240×320 frames, the reference recipe and LibRaw."""
    from obscura.sim.camera import load_camera

    cam = load_camera("phone-main")
    cam = cam.replace(lens=dataclasses.replace(cam.lens, psf="gaussian"))
    proto = sc.Protocol(
        name="report-test", charts=sc.MEASURED_CHARTS, conditions=(sc.Condition("office", 300.0),), size=(240, 320)
    )
    caps = sc.capture_protocol(proto, camera=cam)
    return [sc.run_protocol(proto, camera=cam, pipeline=p, captures=caps) for p in ("reference", "libraw")]


@pytest.fixture(scope="module")
def written(results, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab-report")
    return folder, rh.write_report(results, folder)


def test_report_is_self_contained_with_plots_and_summary(results, written):
    folder, paths = written
    assert [p.name for p in paths] == ["report.html", "phone-main_reference.json", "phone-main_libraw.json"]
    text = paths[0].read_text(encoding="utf-8")
    p = _Collect()
    p.feed(text)
    assert not p.links, "no external assets"
    assert "http://" not in text and "https://" not in text
    assert len(p.srcs) >= 10  # SFR, texture, noise, OECF, distortion, ΔE charts ×2, crops
    for src in p.srcs:
        assert src.startswith("data:image/png;base64,")
        im = PILImage.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        im.load()
        assert im.size[0] > 50 and im.size[1] > 50
    assert {"summary", "items"} <= set(p.tables)
    # the summary table shows the JSON's sub-scores and overall for each result
    header, *body = p.rows
    assert header[1:] == ["phone-main / reference", "phone-main / libraw"]
    table = {r[0]: r[1:] for r in body}
    assert set(table) == {*sc.CATEGORIES, "overall"}
    for i, path in enumerate(paths[1:]):
        d = rh.read_result(path)
        for c in sc.CATEGORIES:
            v = d["subscores"][c]["score"]
            assert table[c][i] == ("–" if v is None else f"{v:.1f}")
        assert table["overall"][i] == f"{d['overall']:.1f}"
    for chart in sc.MEASURED_CHARTS:
        assert f'id="chart-{chart}"' in text
    with pytest.raises(OutputExists):
        rh.write_report(results, folder)


def test_every_chart_measured_and_reference_vs_libraw_recorded(results):
    ref, libraw = results
    for r in results:
        for chart, m in r.measurements["office"].items():
            assert "error" not in m, (r.pipeline, chart, m.get("error"))
    # both render with the camera's matrices and white balance: their colour errors are close
    # (recorded, not ranked: neither is consistently better on the virtual camera)
    de_ref = ref.measurements["office"]["colorchecker"]["mean_delta_e00_normalized"]
    de_lr = libraw.measurements["office"]["colorchecker"]["mean_delta_e00_normalized"]
    assert de_ref < 8 and de_lr < 8
    assert abs(de_ref - de_lr) < 1.5
    # the lens has −1 % poly3 distortion: barrel, measured negative
    assert ref.measurements["office"]["dots"]["tv_distortion_pct"] < -0.3


def test_leaderboard_from_two_json_files(written):
    _, paths = written
    rows = rh.leaderboard([rh.read_result(p) for p in paths[1:]])
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["overall"] >= rows[1]["overall"]
    assert {r["pipeline"] for r in rows} == {"reference", "libraw"}
    text = rh.leaderboard_text(rows)
    assert rows[0]["label"] in text.splitlines()[2] and f"{rows[0]['overall']:.1f}" in text.splitlines()[2]
    page = rh.leaderboard_html(rows)
    assert page.count("<tr>") == 3 and 'id="leaderboard"' in page
    with pytest.raises(InvalidParameter):
        rh.leaderboard([])


def test_read_result_rejects_other_files(tmp_path):
    with pytest.raises(InputError):
        rh.read_result(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CorruptFile):
        rh.read_result(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(CorruptFile, match="not a lab result"):
        rh.read_result(other)


def test_distortion_vectors_recover_a_known_radial_field():
    """Points displaced by r' = r·(1 + k·r²) about the centre: after removing the best scale the
    displacement is radial, outward at the corners for k > 0 (pincushion) and of the right size."""
    yy, xx = np.mgrid[0:7, 0:9]
    ideal = np.stack([xx.ravel() * 30.0 + 40, yy.ravel() * 30.0 + 30], axis=1)
    c = ideal.mean(axis=0)
    k = 2e-6
    r2 = ((ideal - c) ** 2).sum(axis=1, keepdims=True)
    measured = c + (ideal - c) * (1 + k * r2)
    pos, vec = plots.distortion_vectors(measured, ideal)
    np.testing.assert_array_equal(pos, ideal)  # every dot matched to its own ideal position
    # closed form: the least-squares scale of r·(1 + k·r²) on r is 1 + k·Σr⁴/Σr², so what remains of each
    # dot's displacement is k·(r² − Σr⁴/Σr²)·r, radial
    expected = k * (r2 - (r2**2).sum() / r2.sum()) * (ideal - c)
    np.testing.assert_allclose(vec, expected, rtol=1e-9, atol=1e-9)
    corner = np.argmax(r2)
    assert np.dot(vec[corner], ideal[corner] - c) > 0  # pincushion: corners pushed out beyond the mean scale
    centre = np.argmin(r2)
    assert r2[centre] == 0 and np.hypot(*vec[centre]) < 1e-9  # the centre dot sits on the centre: no shift


def test_plots_return_png(results):
    m = results[0].measurements["office"]
    for png in (
        plots.plot_sfr({"office": m["edge"]}),
        plots.plot_oecf({"office": m["steps"]}),
        plots.plot_noise({"office": m["noise"]}, {"office": m["steps"]}),
        plots.plot_texture({"office": m["deadleaves"]}),
        plots.plot_distortion(m["dots"], (240, 320)),
        plots.plot_colorchecker_delta_e(results[0].images["office"]["colorchecker"], m["colorchecker"]),
    ):
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidParameter):
        rh.render_report([])
