"""Lab protocol and scores: monotone score functions, auto-exposure, protocol loading, traceable JSON."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from obscura.core.errors import CorruptFile, InputError, InvalidParameter, UnknownMethod
from obscura.lab import score as sc


# ------------------------------------------------------------------------------------- score functions
@pytest.mark.parametrize("fn", [sc.score_linear, sc.score_log])
@pytest.mark.parametrize(("poor", "excellent"), [(2.0, 10.0), (10.0, 2.0), (0.5, 40.0), (40.0, 0.5)])
def test_score_functions_are_monotone_and_hit_their_anchors(fn, poor, excellent):
    rng = np.random.default_rng(0)
    lo, hi = min(poor, excellent), max(poor, excellent)
    xs = np.sort(np.concatenate([rng.uniform(lo / 4, hi * 4, 500), [lo, hi, lo / 4, hi * 4]]))
    s = np.array([fn(float(x), poor=poor, excellent=excellent) for x in xs])
    assert np.all((s >= 0) & (s <= 100))
    d = np.diff(s)
    if excellent > poor:  # higher is better: non-decreasing
        assert np.all(d >= -1e-9)
    else:
        assert np.all(d <= 1e-9)
    assert fn(poor, poor=poor, excellent=excellent) == pytest.approx(0.0, abs=1e-9)
    assert fn(excellent, poor=poor, excellent=excellent) == pytest.approx(100.0, abs=1e-9)
    mid = (poor + excellent) / 2 if fn is sc.score_linear else math.sqrt(poor * excellent)
    assert fn(mid, poor=poor, excellent=excellent) == pytest.approx(50.0, abs=1e-9)
    assert math.isnan(fn(math.nan, poor=poor, excellent=excellent))


@pytest.mark.parametrize("rule", sc.SCORE_RULES, ids=lambda r: f"{r.category}-{r.name}")
def test_every_rule_is_monotone_in_its_measurement(rule):
    """Better measurements never score lower: property over random values of the rule's own quantity."""
    rng = np.random.default_rng(1)
    lo, hi = sorted((rule.poor, rule.excellent))
    q = np.sort(rng.uniform(lo / 3, hi * 3, 400))  # the scored quantity (after the transform)
    s = np.array([sc.score_value(float(v), rule=dataclasses.replace(rule, transform="value")) for v in q])
    assert np.all(np.diff(s) * np.sign(rule.excellent - rule.poor) >= -1e-9)
    assert rule.why, "each rule documents its anchors"
    assert rule.category in sc.CATEGORIES
    # the transforms: |x| and |x − 100| score symmetric values alike
    if rule.transform == "abs":
        assert rule.score(-0.7 * hi) == pytest.approx(rule.score(0.7 * hi))
    if rule.transform == "deviation_from_100":
        assert rule.score(100 - lo - 1) == pytest.approx(rule.score(100 + lo + 1))


def test_score_value_missing_and_bad_anchors():
    rule = sc.SCORE_RULES[0]
    for v in (None, math.nan, math.inf, "3", True):
        assert math.isnan(sc.score_value(v, rule=rule))
    with pytest.raises(InvalidParameter):
        sc.score_linear(1.0, poor=2.0, excellent=2.0)
    with pytest.raises(InvalidParameter):
        sc.score_log(1.0, poor=0.0, excellent=2.0)
    with pytest.raises(UnknownMethod, match="linear"):
        sc.score_value(1.0, rule=dataclasses.replace(rule, function="cubic"))


def test_overall_score_is_the_weighted_mean_of_finite_subscores():
    subs = {"exposure": 80.0, "colour": 60.0, "texture": math.nan, "noise": 40.0, "artifacts": 20.0}
    assert sc.overall_score(subs) == pytest.approx((80 + 60 + 40 + 20) / 4)
    w = {"exposure": 2.0, "colour": 1.0, "texture": 1.0, "noise": 1.0, "artifacts": 0.0}
    assert sc.overall_score(subs, weights=w) == pytest.approx((160 + 60 + 40) / 4)
    assert math.isnan(sc.overall_score({"colour": math.nan}))
    with pytest.raises(InvalidParameter):
        sc.overall_score(subs, weights={"colour": -1.0})


# ------------------------------------------------------------------------------------------ protocols
def test_shipped_protocols_load():
    assert {"quick", "default"} <= set(sc.list_protocols())
    q = sc.load_protocol("quick")
    assert q.size == (480, 640) and len(q.conditions) == 2
    assert {c.lux for c in q.conditions} == {1000.0, 20.0}
    d = sc.load_protocol("default")
    assert {c.lux for c in d.conditions} == {1000.0, 300.0, 20.0, 1.0}
    assert {c.mode for c in d.conditions} == {"tripod", "handheld"}
    assert set(q.weights) == set(sc.CATEGORIES)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("charts = ['edge']\n", "conditions"),
        ("charts = ['nope']\n[[conditions]]\nlux = 10\n", "nope"),
        ("charts = ['star']\n[[conditions]]\nlux = 10\n", "no lab measurement"),
        ("[[conditions]]\nlux = -1\n", "lux"),
        ("[[conditions]]\nlux = 10\nmode = 'flying'\n", "mode"),
        ("size = [100, 7]\n[[conditions]]\nlux = 10\n", "size"),
        ("colour = 1\n[[conditions]]\nlux = 10\n", "unknown keys"),
        ("[weights]\nzoom = 1\n[[conditions]]\nlux = 10\n", "zoom"),
    ],
)
def test_bad_protocols_raise(tmp_path, text, match):
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises((InvalidParameter, UnknownMethod), match=match):
        sc.load_protocol(p)


def test_protocol_file_errors(tmp_path):
    with pytest.raises(InputError, match="no such protocol"):
        sc.load_protocol(tmp_path / "missing.toml")
    p = tmp_path / "bad.toml"
    p.write_text("charts = [")
    with pytest.raises(CorruptFile):
        sc.load_protocol(p)


# ------------------------------------------------------------------------------------------- exposure
def test_auto_exposure_follows_the_meter_and_the_shutter_limit():
    from obscura.lab.charts import CHARTS
    from obscura.sim.camera import load_camera, metered_exposure_time

    cam = load_camera("phone-main")
    base = cam.sensor.base_iso
    for lux, mode in [(1000.0, "tripod"), (20.0, "handheld"), (20.0, "tripod"), (0.05, "handheld")]:
        scene = CHARTS.get("colorchecker")(size=(120, 180), luminance=lux / math.pi).scene
        iso, t = sc.auto_exposure(scene, camera=cam, mode=mode)
        t_base = metered_exposure_time(scene, f_number=cam.lens.f_number, iso=base)
        assert iso * t == pytest.approx(base * t_base, rel=1e-9)  # the meter's exposure (ISO 2720) is kept
        limit = sc.SHUTTER_LIMIT_S[mode]
        if t_base <= limit:
            assert iso == base and t == pytest.approx(t_base)
        elif base * t_base / limit <= base * 2**12:
            assert t == pytest.approx(limit) and iso > base
        else:  # the ISO is clamped at the sensor's maximum and the shutter gets longer
            assert iso == pytest.approx(base * 2**12) and t > limit
    with pytest.raises(InvalidParameter, match="mode"):
        sc.auto_exposure(scene, camera=cam, mode="monopod")


# --------------------------------------------------------------------------------- a small real run
@pytest.fixture(scope="module")
def small_run():
    """Two light levels, three charts, 240×320 frames; a Gaussian-PSF lens to keep the test fast."""
    from obscura.sim.camera import load_camera

    cam = load_camera("phone-main")
    cam = cam.replace(lens=dataclasses.replace(cam.lens, psf="gaussian"))
    proto = sc.Protocol(
        name="small",
        charts=("colorchecker", "noise", "steps"),
        conditions=(sc.Condition("bright", 1000.0, "tripod"), sc.Condition("dark", 0.3, "handheld")),
        size=(240, 320),
    )
    caps = sc.capture_protocol(proto, camera=cam)
    return proto, caps, sc.run_protocol(proto, camera=cam, pipeline="reference", captures=caps)


def test_json_traces_every_subscore_to_its_measurements(small_run):
    _, _, result = small_run
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # JSON-ready, no NaN
    rules = {(r["category"], r["name"]): r for r in d["rules"]}
    n_items = 0
    for cat in sc.CATEGORIES:
        sub = d["subscores"][cat]
        scores = []
        for it in sub["items"]:
            value = d["conditions"][it["condition"]][it["chart"]]["measurements"]
            for part in it["key"].split("."):
                value = value[part]
            assert value == it["value"]
            r = rules[(cat, it["name"])]
            assert (r["poor"], r["excellent"], r["function"]) == (it["poor"], it["excellent"], it["function"])
            rule = sc.ScoreRule(**r)
            assert rule.score(value) == pytest.approx(it["score"], abs=1e-9)
            scores.append(it["score"])
            n_items += 1
        if scores:
            assert sub["score"] == pytest.approx(np.mean(scores))
    subs = {c: d["subscores"][c]["score"] for c in sc.CATEGORIES if d["subscores"][c]["score"] is not None}
    assert d["overall"] == pytest.approx(np.mean(list(subs.values())))
    assert n_items >= 2 * 6  # exposure ×2, colour ×3, noise ×2 per condition (some may be missing)
    assert {"exposure", "colour", "noise"} <= set(subs)


def test_less_light_is_noisier_and_settings_are_recorded(small_run):
    _, caps, result = small_run
    bright, dark = result.measurements["bright"]["noise"], result.measurements["dark"]["noise"]
    assert dark["snr_18_db"] < bright["snr_18_db"] - 3  # 1/3000 of the light: clearly lower SNR
    assert dark["visual_noise"] > bright["visual_noise"]
    s_b, s_d = result.settings["bright"]["noise"], result.settings["dark"]["noise"]
    assert s_b["iso"] == 50.0 and s_d["iso"] > s_b["iso"]
    assert s_d["exposure_time_s"] == pytest.approx(1 / 30)
    # colour of the chart is measured the same way as measure_colorchecker on the developed image
    from obscura.lab.measure.colour import measure_colorchecker

    cap = next(c for c in caps if c.kind == "colorchecker" and c.condition.name == "bright")
    img = sc.develop_capture(cap, pipeline="reference")
    direct = measure_colorchecker(img, cap.chart, encoding=None)
    assert result.measurements["bright"]["colorchecker"]["mean_delta_e00"] == pytest.approx(
        direct.mean_delta_e00, abs=1e-6
    )


def test_unknown_pipeline_fails_before_capturing():
    proto = sc.Protocol(name="x", charts=("colorchecker",), conditions=(sc.Condition("c", 100.0),))
    with pytest.raises(InvalidParameter, match="built-in recipes"):
        sc.run_protocol(proto, pipeline="no-such-recipe")


def test_measure_chart_on_perfect_charts():
    """A chart's own rendering measures as perfect: ΔE00 ≈ 0, no distortion, no shading, MTF50 of the pixel."""
    from obscura.lab.charts import CHARTS
    from obscura.lab.charts.printable import chart_rgb

    def perfect(name, size):
        ch = CHARTS.get(name)(size=size)
        return ch, chart_rgb(ch, encoding="srgb").transpose(2, 0, 1)

    ch, img = perfect("colorchecker", (400, 600))
    m = sc.measure_chart(ch, img)
    assert np.median(m["delta_e00"]) < 0.05 and abs(m["exposure_error_ev"]) < 0.01
    ch, img = perfect("dots", (240, 320))
    assert abs(sc.measure_chart(ch, img)["tv_distortion_pct"]) < 0.01
    ch, img = perfect("flat", (120, 160))
    assert abs(sc.measure_chart(ch, img)["worst_corner_ev"]) < 1e-6
    ch, img = perfect("edge", (480, 640))
    m = sc.measure_chart(ch, img)
    # a pixel-integrated ideal edge: MTF = |sinc(f)|, which falls to 0.5 at f = 0.6034 cycles/pixel
    assert m["mtf50"] == pytest.approx(0.6034, abs=0.015)
    with pytest.raises(InvalidParameter, match="measured charts"):
        sc.measure_chart(ch, img, kind="star")


def test_zone_plate_aliasing_in_the_lab_measurements():
    """Beyond the Nyquist radius a band-limited capture is flat: the pixel-integrated chart aliases a
    little (the box aperture), a point-sampled one much more; gain and offset do not count."""
    import numpy as np

    from obscura.lab.charts import CHARTS
    from obscura.lab.measure.noise import as_planes
    from obscura.lab.score import _chart_linear, measure_chart

    ch = CHARTS.get("zoneplate")(size=(256, 256))
    lin = as_planes(_chart_linear(ch), encoding="linear")
    area = measure_chart(ch, lin, kind="zoneplate")["aliasing_energy"]
    brighter = measure_chart(ch, 0.5 * lin + 0.1, kind="zoneplate")["aliasing_energy"]
    assert brighter == pytest.approx(area, rel=0.05)  # the gain/offset fit absorbs exposure and tone
    # point sampling: cos(k r²) at the pixel centres, no aperture
    k, (cx, cy) = ch.reference["k"], ch.reference["centre"]
    yy, xx = np.mgrid[0:256, 0:256].astype(float)
    lo, hi = float(lin.min()), float(lin.max())
    point = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(k * ((xx - cx) ** 2 + (yy - cy) ** 2))
    sampled = measure_chart(ch, np.repeat(point[None], 3, 0), kind="zoneplate")["aliasing_energy"]
    assert area < 0.1 and sampled > 2 * area
