"""The lab protocol: capture charts with the virtual camera, develop, measure, and score (0–100).

A protocol (TOML, see ``obscura/lab/protocols/*.toml``) names the charts and the light conditions
(illuminance in lux; tripod or handheld). :func:`run_protocol` captures every chart under every
condition with :mod:`obscura.sim.camera`, develops it with a pipeline (a develop recipe name or TOML
path, or ``"libraw"``: the raw written as DNG and rendered by LibRaw, an outside baseline), measures it
with :mod:`obscura.lab.measure` and maps the measurements to sub-scores through the documented
monotone functions of :data:`SCORE_RULES`.

Scoring follows the structure of DXOMARK's camera protocol (attributes: exposure, colour, texture,
noise, artifacts, each from lab measurements at several light levels), not its undisclosed numbers:

* every measurement is mapped to 0–100 by a piecewise-linear function between a "poor" anchor (0) and
  an "excellent" anchor (100), clamped outside (:func:`score_linear`), or the same in log₂ of the
  value for ratio-like quantities (:func:`score_log`). Both are monotone: better measurements never
  score lower. The anchors of each rule are stated in :data:`SCORE_RULES` with the reason for them;
* a sub-score is the mean of its rules' scores over all conditions (non-finite measurements skipped);
* the overall score is the weighted mean of the sub-scores (:func:`overall_score`, equal weights by
  default, the protocol may change them).

Every score in :meth:`LabResult.to_dict` lists its items: condition, chart, measurement key, value,
function, anchors and score, so each number can be traced back to the measurement in the same JSON.

Light: a chart of reflectance ρ under ``lux`` has the luminance ρ·lux/π cd/m² (a Lambertian surface),
so the charts are generated with ``luminance = lux / π`` for their white. Exposure: the camera's
averaging meter (:func:`obscura.sim.camera.metered_exposure_time`) with a simple auto-ISO: the base
ISO while the metered shutter is at most the limit (1/30 s handheld, 1/4 s on a tripod), then the ISO
that meters at the limit, clamped to the sensor's range (base … base·2¹²), the shutter following.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from obscura.core.errors import CorruptFile, InputError, InvalidParameter, ObscuraError
from obscura.core.registry import Registry

__all__ = [
    "CATEGORIES",
    "Condition",
    "Protocol",
    "ScoreRule",
    "SCORE_RULES",
    "SCORE_FUNCTIONS",
    "Capture",
    "LabResult",
    "score_linear",
    "score_log",
    "score_value",
    "overall_score",
    "load_protocol",
    "list_protocols",
    "auto_exposure",
    "capture_protocol",
    "develop_capture",
    "measure_chart",
    "sfr_dict",
    "score_measurements",
    "run_protocol",
]

CATEGORIES = ("exposure", "colour", "texture", "noise", "artifacts")
SHUTTER_LIMIT_S = {"handheld": 1.0 / 30.0, "tripod": 1.0 / 4.0}
MAX_ISO_STOPS = 12  # the virtual sensor accepts base ISO … base·2¹²
Progress = Callable[[str], None] | None


# ------------------------------------------------------------------------------------- score functions


def _check_anchors(poor: float, excellent: float) -> None:
    if not (math.isfinite(poor) and math.isfinite(excellent)) or poor == excellent:
        raise InvalidParameter(f"poor and excellent must be finite and different; got {poor!r}, {excellent!r}")


def score_linear(value: float, *, poor: float, excellent: float) -> float:
    """0 at ``poor``, 100 at ``excellent``, linear between, clamped outside (either direction).

    Monotone non-decreasing in ``value`` when ``excellent > poor`` (higher is better), non-increasing
    otherwise (lower is better). NaN gives NaN.
    """
    _check_anchors(poor, excellent)
    if math.isnan(value):
        return math.nan
    t = (value - poor) / (excellent - poor)
    return 100.0 * min(max(t, 0.0), 1.0)


def score_log(value: float, *, poor: float, excellent: float) -> float:
    """:func:`score_linear` in log₂: for ratios (noise, distortion), where halving matters alike at any level.

    Anchors must be > 0; values ≤ 0 count as infinitely small (100 when lower is better, 0 otherwise).
    """
    _check_anchors(poor, excellent)
    if poor <= 0 or excellent <= 0:
        raise InvalidParameter(f"score_log needs positive anchors; got poor={poor!r}, excellent={excellent!r}")
    if math.isnan(value):
        return math.nan
    if value <= 0:
        return 100.0 if excellent < poor else 0.0
    return score_linear(math.log2(value), poor=math.log2(poor), excellent=math.log2(excellent))


SCORE_FUNCTIONS = Registry("score function")
SCORE_FUNCTIONS.register("linear")(score_linear)
SCORE_FUNCTIONS.register("log")(score_log)

# how a measurement is turned into the quantity that is scored
_TRANSFORMS: dict[str, Callable[[float], float]] = {
    "value": lambda v: v,
    "abs": abs,
    "deviation_from_100": lambda v: abs(v - 100.0),
}


@dataclass(frozen=True)
class ScoreRule:
    """One scored measurement: ``chart``'s measurement ``key`` (a dotted path in its dict) → 0–100."""

    category: str
    name: str
    chart: str
    key: str
    poor: float
    excellent: float
    function: str = "linear"
    transform: str = "value"
    weight: float = 1.0
    why: str = ""

    def score(self, value: float) -> float:
        return score_value(value, rule=self)


# The anchors. "excellent" ≈ what the best phones reach in DXOMARK-style tests (or a perceptual
# threshold), "poor" ≈ clearly objectionable. Documented per rule in ``why``.
SCORE_RULES: tuple[ScoreRule, ...] = (
    ScoreRule(
        "exposure",
        "exposure_error",
        "colorchecker",
        "exposure_error_ev",
        poor=1.0,
        excellent=0.1,
        transform="abs",
        why="|EV error| of the 18 % grey: 1/10 stop is invisible, a full stop is a failed exposure",
    ),
    ScoreRule(
        "exposure",
        "dynamic_range",
        "steps",
        "dynamic_range.snr_10",
        poor=5.0,
        excellent=11.0,
        why="stops between clipping and SNR 10: 11 stops is a large-sensor phone at base ISO, 5 is a poor one",
    ),
    ScoreRule(
        "colour",
        "delta_e00",
        "colorchecker",
        "mean_delta_e00_normalized",
        poor=10.0,
        excellent=2.0,
        why="mean ΔE00 of the 24 patches (exposure normalized): 2 is near the JND, 10 is a clearly wrong rendering",
    ),
    ScoreRule(
        "colour",
        "white_balance",
        "colorchecker",
        "wb_error",
        poor=8.0,
        excellent=1.0,
        why="mean chroma error (ΔC*ab) of the neutral patches: 1 is invisible, 8 a visible cast",
    ),
    ScoreRule(
        "colour",
        "saturation",
        "colorchecker",
        "saturation_pct",
        poor=30.0,
        excellent=3.0,
        transform="deviation_from_100",
        why="|saturation − 100 %|: ±3 % is invisible, ±30 % is dull or garish",
    ),
    ScoreRule(
        "texture",
        "texture_acutance",
        "deadleaves",
        "texture_acutance",
        poor=0.3,
        excellent=0.9,
        why="dead-leaves acutance (CPIQ, 100 % on a monitor): 0.9 keeps fine texture, 0.3 is smeared",
    ),
    ScoreRule(
        "texture",
        "sharpness_mtf50",
        "edge",
        "mtf50",
        poor=0.08,
        excellent=0.3,
        why="edge MTF50 (cycles/pixel): 0.3 is a sharp Bayer capture, 0.08 is blurred at 100 %",
    ),
    ScoreRule(
        "noise",
        "visual_noise",
        "noise",
        "visual_noise",
        poor=4.0,
        excellent=0.2,
        function="log",
        why="ISO 15739 visual noise (100 % on a monitor) of the 18 % patch: 0.2 is invisible, 4 objectionable",
    ),
    ScoreRule(
        "noise",
        "snr_18",
        "noise",
        "snr_18_db",
        poor=20.0,
        excellent=40.0,
        why="luminance SNR (dB) of the 18 % patch: 40 dB is clean, 20 dB visibly noisy",
    ),
    ScoreRule(
        "artifacts",
        "distortion",
        "dots",
        "tv_distortion_pct",
        poor=3.0,
        excellent=0.2,
        transform="abs",
        function="log",
        why="|SMIA TV distortion| %: 0.2 % is invisible, 3 % bends straight lines visibly",
    ),
    ScoreRule(
        "artifacts",
        "shading",
        "flat",
        "worst_corner_ev",
        poor=1.5,
        excellent=0.2,
        transform="abs",
        why="worst corner fall-off (EV): 0.2 EV is invisible, 1.5 EV is a dark frame edge",
    ),
    ScoreRule(
        "artifacts",
        "lateral_ca",
        "edge",
        "lateral_ca_max_px",
        poor=1.5,
        excellent=0.2,
        transform="abs",
        why="worst lateral CA (px): 0.2 px is invisible at 100 %, 1.5 px makes coloured fringes",
    ),
    ScoreRule(
        "artifacts",
        "ringing",
        "edge",
        "overshoot_pct",
        poor=30.0,
        excellent=5.0,
        why="edge overshoot (%): 5 % is mild sharpening, 30 % are halos",
    ),
    ScoreRule(
        "artifacts",
        "colour_moire",
        "zoneplate",
        "colour_moire",
        poor=1000.0,
        excellent=10.0,
        function="log",
        why="false colour var(a*)+var(b*) on the neutral zone plate, which reaches 0.8 cycles/px in the corners so"
        " every Bayer camera aliases: 10 is faint, 1000 strong rainbow moiré",
    ),
)


def score_value(value: Any, *, rule: ScoreRule) -> float:
    """The 0–100 score of one measurement under ``rule`` (NaN when the value is missing or not finite)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    v = float(value)
    if not math.isfinite(v):
        return math.nan
    return float(
        SCORE_FUNCTIONS.get(rule.function)(_TRANSFORMS[rule.transform](v), poor=rule.poor, excellent=rule.excellent)
    )


def overall_score(subscores: Mapping[str, float], *, weights: Mapping[str, float] | None = None) -> float:
    """Weighted mean of the finite sub-scores (equal weights by default); NaN when there are none."""
    w = dict(weights) if weights is not None else {c: 1.0 for c in subscores}
    for k, v in w.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise InvalidParameter(f"weight for {k!r} must be a finite number ≥ 0; got {v!r}")
    num = den = 0.0
    for c, s in subscores.items():
        if s is None or not math.isfinite(s) or w.get(c, 0.0) == 0:
            continue
        num += w[c] * s
        den += w[c]
    return num / den if den > 0 else math.nan


# ----------------------------------------------------------------------------------------- protocols


@dataclass(frozen=True)
class Condition:
    """A light condition: illuminance (lux), mode ("tripod" or "handheld"), illuminant, and its charts
    (empty: the protocol's)."""

    name: str
    lux: float
    mode: str = "tripod"
    illuminant: str = "D65"
    charts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["charts"] = list(self.charts)
        return d


@dataclass(frozen=True)
class Protocol:
    """The charts, the light conditions, the frame size (H, W), the seed and the category weights."""

    name: str
    charts: tuple[str, ...]
    conditions: tuple[Condition, ...]
    size: tuple[int, int] = (480, 640)
    seed: int = 0
    weights: Mapping[str, float] = field(default_factory=lambda: {c: 1.0 for c in CATEGORIES})
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "charts": list(self.charts),
            "conditions": [c.to_dict() for c in self.conditions],
            "size": list(self.size),
            "seed": self.seed,
            "weights": dict(self.weights),
        }


# Chart.name (as the generators set it) → the CHARTS registry name
CHART_KINDS = {
    "colorchecker": "colorchecker",
    "step_chart": "steps",
    "noise_chart": "noise",
    "dead_leaves": "deadleaves",
    "slanted_edge": "edge",
    "dot_grid": "dots",
    "flat_field": "flat",
    "zone_plate": "zoneplate",
    "siemens_star": "star",
}
MEASURED_CHARTS = ("colorchecker", "steps", "noise", "deadleaves", "edge", "dots", "flat", "zoneplate")


def protocol_from_dict(d: Mapping[str, Any], *, source: str = "protocol") -> Protocol:
    """Build and validate a Protocol from a parsed TOML table."""
    from obscura.lab.charts import CHARTS

    def bad(msg: str) -> InvalidParameter:
        return InvalidParameter(f"{source}: {msg}")

    known = {"name", "description", "charts", "conditions", "size", "seed", "weights"}
    extra = set(d) - known
    if extra:
        raise bad(f"unknown keys {sorted(extra)}; valid: {sorted(known)}")
    charts = d.get("charts", list(MEASURED_CHARTS))
    if not isinstance(charts, list) or not charts or not all(isinstance(c, str) for c in charts):
        raise bad(f"charts must be a non-empty list of chart names; got {charts!r}")

    def check_charts(names: Any, where: str) -> tuple[str, ...]:
        if not isinstance(names, list) or not names or not all(isinstance(c, str) for c in names):
            raise bad(f"{where} must be a non-empty list of chart names; got {names!r}")
        for c in names:
            if c not in MEASURED_CHARTS:
                CHARTS.get(c)  # an unknown name lists the valid ones
                raise bad(f"chart {c!r} has no lab measurement yet; measured charts: {', '.join(MEASURED_CHARTS)}")
        return tuple(names)

    check_charts(charts, "charts")
    conds = d.get("conditions")
    if not isinstance(conds, list) or not conds:
        raise bad("needs at least one [[conditions]] table (lux = ..., mode = 'tripod' | 'handheld')")
    out = []
    for i, c in enumerate(conds):
        if not isinstance(c, Mapping):
            raise bad(f"conditions[{i}] must be a table; got {c!r}")
        lux = c.get("lux")
        if isinstance(lux, bool) or not isinstance(lux, (int, float)) or not (math.isfinite(lux) and 0 < lux <= 2e5):
            raise bad(f"conditions[{i}].lux must be in (0, 200000]; got {lux!r}")
        mode = c.get("mode", "tripod")
        if mode not in SHUTTER_LIMIT_S:
            raise bad(f"conditions[{i}].mode must be one of {', '.join(SHUTTER_LIMIT_S)}; got {mode!r}")
        extra = set(c) - {"name", "lux", "mode", "illuminant", "charts"}
        if extra:
            raise bad(f"conditions[{i}]: unknown keys {sorted(extra)}; valid: charts, illuminant, lux, mode, name")
        name = str(c.get("name", f"{lux:g} lux {mode}"))
        own = check_charts(c["charts"], f"conditions[{i}].charts") if "charts" in c else ()
        out.append(
            Condition(name=name, lux=float(lux), mode=mode, illuminant=str(c.get("illuminant", "D65")), charts=own)
        )
    if len({c.name for c in out}) != len(out):
        raise bad(f"condition names must be unique; got {[c.name for c in out]}")
    size = d.get("size", [480, 640])
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and 64 <= s <= 8192 and s % 4 == 0 for s in size)
    ):
        raise bad(f"size must be [H, W], multiples of 4 in [64, 8192]; got {size!r}")
    seed = d.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise bad(f"seed must be an integer; got {seed!r}")
    weights = {c: 1.0 for c in CATEGORIES}
    for k, v in dict(d.get("weights", {})).items():
        if k not in CATEGORIES:
            raise bad(f"unknown weight {k!r}; categories: {', '.join(CATEGORIES)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
            raise bad(f"weight {k!r} must be a number ≥ 0; got {v!r}")
        weights[k] = float(v)
    return Protocol(
        name=str(d.get("name", source)),
        description=str(d.get("description", "")),
        charts=tuple(charts),
        conditions=tuple(out),
        size=(int(size[0]), int(size[1])),
        seed=int(seed),
        weights=weights,
    )


def _protocols_dir() -> Any:
    return resources.files("obscura.lab").joinpath("protocols")


def list_protocols() -> list[str]:
    """Names of the shipped protocols (``obscura/lab/protocols/*.toml``)."""
    return sorted(p.name[:-5] for p in _protocols_dir().iterdir() if p.name.endswith(".toml"))


def load_protocol(protocol: str | Path | Protocol) -> Protocol:
    """A Protocol from a shipped name (``"quick"``, ``"default"``), a TOML path, or a Protocol."""
    if isinstance(protocol, Protocol):
        return protocol
    text_source = str(protocol)
    if isinstance(protocol, str) and protocol in list_protocols():
        text = _protocols_dir().joinpath(f"{protocol}.toml").read_text(encoding="utf-8")
    else:
        p = Path(protocol)
        if not p.is_file():
            raise InputError(f"{p}: no such protocol file (shipped protocols: {', '.join(list_protocols())})")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{p}: cannot read: {e}") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CorruptFile(f"{text_source}: not valid TOML: {e}") from None
    return protocol_from_dict(d, source=text_source)


# ------------------------------------------------------------------------------------------- capture


@dataclass(frozen=True, eq=False)
class Capture:
    """One chart captured under one condition: the chart, the shot and the settings chosen."""

    condition: Condition
    chart: Any  # obscura.lab.charts.base.Chart
    shot: Any  # obscura.sim.camera.Shot
    iso: float
    exposure_time: float
    kind: str = ""  # the chart's registry name ("edge", "colorchecker", ...)

    def settings(self) -> dict[str, Any]:
        return {
            "iso": self.iso,
            "exposure_time_s": self.exposure_time,
            "lux": self.condition.lux,
            "mode": self.condition.mode,
        }


def auto_exposure(scene: Any, *, camera: Any, mode: str) -> tuple[float, float]:
    """(ISO, exposure time) by the averaging meter with auto-ISO under the mode's shutter limit."""
    from obscura.sim.camera import metered_exposure_time

    if mode not in SHUTTER_LIMIT_S:
        raise InvalidParameter(f"mode must be one of {', '.join(SHUTTER_LIMIT_S)}; got {mode!r}")
    base = float(camera.sensor.base_iso)
    f_no = float(camera.lens.f_number)
    limit = SHUTTER_LIMIT_S[mode]
    t = metered_exposure_time(scene, f_number=f_no, iso=base)
    if t <= limit:
        return base, t
    iso = min(base * t / limit, base * 2.0**MAX_ISO_STOPS)
    return iso, metered_exposure_time(scene, f_number=f_no, iso=iso)


def _make_chart(name: str, *, size: tuple[int, int], lux: float, illuminant: str) -> Any:
    from obscura.lab.charts import CHARTS

    return CHARTS.get(name)(size=size, luminance=lux / math.pi, illuminant=illuminant)


def capture_protocol(
    protocol: str | Path | Protocol, *, camera: str | Path | Any = "phone-main", progress: Progress = None
) -> list[Capture]:
    """Capture every chart of ``protocol`` under every condition (deterministic: the protocol's seed)."""
    from obscura.sim.camera import load_camera, shoot

    proto = load_protocol(protocol)
    cam = load_camera(camera)
    say = progress or (lambda s: None)
    out = []
    for ci, cond in enumerate(proto.conditions):
        for ki, name in enumerate(cond.charts or proto.charts):
            chart = _make_chart(name, size=proto.size, lux=cond.lux, illuminant=cond.illuminant)
            iso, t = auto_exposure(chart.scene, camera=cam, mode=cond.mode)
            say(f"capture {cond.name} / {name}: ISO {iso:.0f}, 1/{1 / t:.0f} s")
            shot = shoot(
                chart.scene,
                camera=cam,
                size=proto.size,
                iso=iso,
                exposure_time=t,
                handshake=cond.mode == "handheld",
                seed=proto.seed + 1000 * ci + ki,
            )
            out.append(Capture(cond, chart, shot, iso, t, kind=name))
    return out


def develop_capture(capture: Capture, *, pipeline: str | Path) -> Any:
    """The capture developed by ``pipeline`` as an sRGB Image: a develop recipe (name or TOML path) or "libraw"."""
    import torch

    from obscura.core.types import Image

    if str(pipeline) == "libraw":
        import tempfile

        from obscura.io.dng import write_dng
        from obscura.lab.baseline import libraw_srgb

        with tempfile.TemporaryDirectory(prefix="obscura-lab-") as d:
            rgb = libraw_srgb(write_dng(capture.shot.frame, Path(d) / "capture.dng"))
        data = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32))
        return Image(data, "srgb", capture.shot.frame.meta)
    from obscura.isp.develop import develop

    img = develop(capture.shot.frame, recipe=str(pipeline))
    if img.space != "srgb":
        from obscura.core.colour import convert

        img = Image(convert(img.data, src=img.space, dst="srgb").clamp(0, 1), "srgb", img.meta)
    return img


# --------------------------------------------------------------------------------------- measurements


def _roi(a: np.ndarray, box: Sequence[int]) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    return a[..., y0:y1, x0:x1]


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def sfr_dict(r: Any) -> dict[str, Any]:
    """The summary of an :class:`~obscura.lab.measure.sfr.SFRResult` as a JSON-ready dict (nan → None)."""
    return {
        "mtf50": _finite(r.mtf50),
        "mtf50p": _finite(r.mtf50p),
        "overshoot_pct": float(r.overshoot),
        "undershoot_pct": float(r.undershoot),
        "angle_deg": float(r.angle_deg),
        "orientation": r.orientation,
    }


def _nearest(values: Sequence[float], target: float) -> int:
    return int(np.argmin([abs(math.log(max(v, 1e-9) / target)) for v in values]))


def measure_chart(chart: Any, image: Any, *, truth: Any = None, kind: str | None = None) -> dict[str, Any]:
    """Measure a developed capture of ``chart`` (an sRGB Image or (3, H, W) sRGB-encoded array).

    ``truth`` (optional): the ideal linear sRGB (3, H, W) of the scene (``Shot.truth.linear_srgb``),
    used as the dead-leaves reference; without it the chart's own rendering is used. Returns a
    JSON-ready dict whose keys name the measurements (``mtf50`` in cycles/pixel, ``mean_delta_e00``, …).
    ``kind``: the chart's registry name (default: from ``chart.name``).
    """
    from obscura.lab.measure import artifacts, colour, noise, sfr, texture, tone
    from obscura.lab.measure.noise import as_planes

    lin = as_planes(image, encoding="srgb")
    if lin.ndim != 3 or lin.shape[0] != 3:
        raise InvalidParameter(f"image must be (3, H, W); got {tuple(lin.shape)}")
    name = kind if kind is not None else CHART_KINDS.get(chart.name, chart.name)
    ref = chart.reference
    rois = chart.rois
    if name == "colorchecker":
        r = colour.measure_colorchecker(lin, chart, encoding="linear")
        d = r.to_dict()
        names = list(r.names)
        grey = next((i for i, n in enumerate(names) if n.startswith("neutral 5")), 21)
        target = float(np.dot(colour.lab_to_linear_srgb(np.asarray(ref["lab"])[grey]), noise.SRGB_Y_WEIGHTS))
        e = tone.exposure_error(lin, rois[names[grey]], target=target, encoding="linear")
        d.update(e.to_dict())
        d["rois"] = {k: list(v) for k, v in rois.items()}
        return d
    if name == "steps":
        names = [k for k in rois if k.startswith("step_")]
        r = tone.measure_tone(
            lin, {k: rois[k] for k in names}, np.asarray(ref["Y"], dtype=np.float64), encoding="linear", clip_level=1.0
        )
        d = r.to_dict()
        d["dynamic_range"] = {k: _finite(v) for k, v in d["dynamic_range"].items()}
        d["snr"] = [_finite(v) for v in d["snr"]]
        if "grey18" in rois:
            d.update(tone.exposure_error(lin, rois["grey18"], target=0.18, encoding="linear").to_dict())
        return d
    if name == "noise":
        r = noise.measure_snr(lin, dict(rois), encoding="linear", detrend=True)  # shading is not noise
        d = r.to_dict()
        ys = [float(v) for v in ref["Y"]]
        i = _nearest(ys, 0.18)
        patch = list(ref.get("names", rois))[i]
        flat = np.stack([noise.detrend_plane(c) for c in _roi(lin, rois[patch])])  # shading is not noise
        vn = noise.visual_noise_iso15739(flat, encoding="linear", image_height_px=lin.shape[-2])
        d.update(vn.to_dict())
        d["reference_Y"] = ys
        d["snr_18_db"] = _finite(r.patches[list(r.names).index(patch)].luminance_snr_db)
        d["patch_18"] = patch
        return d
    if name == "deadleaves":
        box = rois["deadleaves"]
        truth_lin = (
            np.asarray(truth, dtype=np.float64)
            if truth is not None
            else as_planes(_chart_linear(chart), encoding="linear")
        )
        greys = {k: float(v) for k, v in ref["grey_Y"].items()}
        g = min(greys, key=lambda k: abs(greys[k] - float(ref["mean"])))
        grey = _roi(lin, rois[g])
        r = texture.dead_leaves_mtf(
            _roi(lin, box),
            _roi(truth_lin, box),
            noise=grey if min(grey.shape[-2:]) >= 32 else None,  # a small chart's patches are too small
            encoding="linear",
            normalize=True,
            image_height_px=lin.shape[-2],
        )
        d = r.to_dict()
        d["texture_mtf50"] = _finite(d["texture_mtf50"])
        return d
    if name == "edge":
        results, per = [], {}
        for k, box in rois.items():
            try:
                res = sfr.esfr(_roi(lin, box))
            except ObscuraError as e:  # a clipped or lost edge: recorded, not fatal
                per[k] = {"error": str(e)}
                continue
            results.append((k, res))
            per[k] = sfr_dict(res)
        if not results:
            raise InvalidParameter("no slanted edge could be measured in the edge chart")
        m50 = [r.mtf50 for _, r in results if math.isfinite(r.mtf50)]
        h, w = lin.shape[-2:]
        # the edge nearest the centre gives the SFR curve shown in the report
        k0, r0 = min(
            results,
            key=lambda kr: math.hypot(
                (rois[kr[0]][0] + rois[kr[0]][2]) / 2 - w / 2, (rois[kr[0]][1] + rois[kr[0]][3]) / 2 - h / 2
            ),
        )
        d = {
            "mtf50": _finite(float(np.median(m50))) if m50 else None,
            "mtf50p": _finite(float(np.median([r.mtf50p for _, r in results]))),
            "overshoot_pct": float(np.median([r.overshoot for _, r in results])),
            "undershoot_pct": float(np.median([r.undershoot for _, r in results])),
            "edges": per,
            "centre_edge": k0,
            "freq": r0.freq.tolist(),
            "sfr": r0.sfr.tolist(),
            "sfr_channels": [c.sfr.tolist() for c in r0.channels],
        }
        try:
            d.update(artifacts.lateral_ca(lin, [list(rois[k]) for k, _ in results]).to_dict())
        except ObscuraError as e:
            d["lateral_ca_error"] = str(e)
        return d
    if name == "dots":
        pts = _find_chart_dots(lin, rois["dots"], spacing=float(ref["spacing"]))
        d = {"centres": pts.tolist(), "reference_centres": np.asarray(ref["centres"]).tolist()}
        try:
            d.update(artifacts.tv_distortion(pts).to_dict())
        except ObscuraError as e:
            d["tv_distortion_pct"] = None
            d["error"] = str(e)
        return d
    if name == "flat":
        return artifacts.shading(lin).to_dict()
    if name == "zoneplate":
        mask = np.zeros(lin.shape[-2:], dtype=bool)
        x0, y0, x1, y1 = rois["zoneplate"]
        mask[y0:y1, x0:x1] = True
        d = artifacts.colour_moire(lin, encoding="linear", region=mask).to_dict()
        d.update(_zone_plate_aliasing(lin, chart))
        return d
    raise InvalidParameter(f"chart {name!r} has no lab measurement; measured charts: {', '.join(MEASURED_CHARTS)}")


def _zone_plate_aliasing(lin: np.ndarray, chart: Any) -> dict[str, Any]:
    """Aliasing on the zone plate: modulation beyond the Nyquist radius, where a band-limited camera
    records a flat field, relative to the modulation it records below (artifacts.aliasing_energy).

    The reference is the pixel-integrated zone plate with everything beyond the Nyquist radius set to its
    mean (the ideal band-limited capture); the capture's luminance is first fitted to it (gain and offset
    by least squares over the inner disk) so tone curves and exposure do not count as error.
    """
    from obscura.lab.measure import artifacts
    from obscura.lab.measure.noise import as_planes

    ref = chart.reference
    ideal = as_planes(_chart_linear(chart), encoding="linear")
    y, r_y = _srgb_y(lin), _srgb_y(ideal)
    h, w = y.shape
    cx, cy = ref["centre"]
    rr = np.hypot(np.arange(w)[None, :] - cx, np.arange(h)[:, None] - cy)
    nyq = float(ref["nyquist_radius"])
    inner, outer = rr < 0.8 * nyq, rr > 1.1 * nyq
    if inner.sum() < 64 or outer.sum() < 64:
        return {}
    band_limited = np.where(rr <= nyq, r_y, r_y[rr > nyq].mean())
    A = np.stack([band_limited[inner], np.ones(int(inner.sum()))], axis=1)
    (gain, offset), *_ = np.linalg.lstsq(A, y[inner], rcond=None)
    if not np.isfinite(gain) or abs(gain) < 1e-9:
        return {}
    fitted = (y - offset) / gain
    r = artifacts.aliasing_energy(fitted, band_limited, region=outer)
    return {"aliasing_energy": _finite(r.aliasing_energy), "aliasing_region_px": r.region_pixels}


def _srgb_y(lin: np.ndarray) -> np.ndarray:
    """Luminance factor Y (H, W) of (3, H, W) linear sRGB (the IEC 61966-2-1 XYZ row)."""
    from obscura.lab.measure.noise import SRGB_Y_WEIGHTS

    return np.tensordot(np.asarray(SRGB_Y_WEIGHTS), lin, axes=1)


def _find_chart_dots(lin: np.ndarray, box: Sequence[int], *, spacing: float) -> np.ndarray:
    """Dot centres of a dot-grid capture, found on the image divided by its local ground level.

    Vignetting darkens the corners' ground below the global threshold of ``find_dots``; dividing by
    the local maximum (over two dot spacings, smoothed) flattens it. Only dots inside ``box`` count.
    """
    from scipy import ndimage

    from obscura.lab.measure import artifacts

    y = _srgb_y(lin)
    k = max(3, round(2 * spacing) | 1)
    ground = ndimage.gaussian_filter(ndimage.maximum_filter(y, size=k), sigma=spacing / 2)
    flat = y / np.maximum(ground, 1e-6)
    pts = artifacts.find_dots(flat)
    x0, y0, x1, y1 = box
    inside = (pts[:, 0] >= x0) & (pts[:, 0] < x1) & (pts[:, 1] >= y0) & (pts[:, 1] < y1)
    return pts[inside]


def _chart_linear(chart: Any) -> np.ndarray:
    from obscura.lab.charts.printable import chart_rgb

    a = np.asarray(chart_rgb(chart, encoding="linear"), dtype=np.float64)
    return a.transpose(2, 0, 1) if a.ndim == 3 and a.shape[-1] == 3 else a


# ------------------------------------------------------------------------------------------- scoring


def _lookup(d: Mapping[str, Any], key: str) -> Any:
    cur: Any = d
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def score_measurements(
    measurements: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    rules: Sequence[ScoreRule] = SCORE_RULES,
    weights: Mapping[str, float] | None = None,
) -> tuple[dict[str, dict[str, Any]], float]:
    """Sub-scores and the overall score from ``{condition: {chart: measurement dict}}``.

    Each sub-score carries its items (condition, chart, key, value, function, anchors, score), so it
    can be recomputed from the measurements.
    """
    subs: dict[str, dict[str, Any]] = {c: {"score": math.nan, "items": []} for c in CATEGORIES}
    for cond, charts in measurements.items():
        for rule in rules:
            if rule.chart not in charts:
                continue
            value = _lookup(charts[rule.chart], rule.key)
            s = score_value(value, rule=rule)
            subs[rule.category]["items"].append(
                {
                    "name": rule.name,
                    "condition": cond,
                    "chart": rule.chart,
                    "key": rule.key,
                    "value": value if isinstance(value, (int, float)) else None,
                    "function": rule.function,
                    "transform": rule.transform,
                    "poor": rule.poor,
                    "excellent": rule.excellent,
                    "weight": rule.weight,
                    "score": _finite(s),
                }
            )
    for cat in subs.values():
        good = [(it["weight"], it["score"]) for it in cat["items"] if it["score"] is not None]
        den = sum(w for w, _ in good)
        cat["score"] = sum(w * s for w, s in good) / den if den > 0 else math.nan
    overall = overall_score({c: v["score"] for c, v in subs.items()}, weights=weights)
    for v in subs.values():
        v["score"] = _finite(v["score"])
    return subs, overall


# --------------------------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class LabResult:
    """Measurements per condition and chart, sub-scores, the overall score; ``images`` for the report."""

    protocol: Protocol
    camera: str
    pipeline: str
    measurements: Mapping[str, Mapping[str, Mapping[str, Any]]]
    settings: Mapping[str, Mapping[str, Mapping[str, Any]]]
    subscores: Mapping[str, Mapping[str, Any]]
    overall: float
    images: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)  # sRGB (H, W, 3) uint8
    truth: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)  # ideal sRGB (H, W, 3) uint8

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "obscura.lab.result",
            "version": 1,
            "camera": self.camera,
            "pipeline": self.pipeline,
            "protocol": self.protocol.to_dict(),
            "overall": _finite(self.overall),
            "subscores": {k: dict(v) for k, v in self.subscores.items()},
            "rules": [dataclasses.asdict(r) for r in SCORE_RULES],
            "conditions": {
                cond: {
                    chart: {"settings": dict(self.settings[cond][chart]), "measurements": dict(m)}
                    for chart, m in charts.items()
                }
                for cond, charts in self.measurements.items()
            },
        }


def _to_u8(x: Any) -> np.ndarray:
    import torch

    a = x.detach().to("cpu").float().clamp(0, 1).numpy() if isinstance(x, torch.Tensor) else np.clip(x, 0, 1)
    return np.round(np.asarray(a).transpose(1, 2, 0) * 255).astype(np.uint8)


def run_protocol(
    protocol: str | Path | Protocol,
    *,
    camera: str | Path | Any = "phone-main",
    pipeline: str | Path = "default",
    progress: Progress = None,
    captures: Sequence[Capture] | None = None,
) -> LabResult:
    """Capture (or reuse ``captures`` of the same protocol), develop with ``pipeline``, measure and score."""
    import torch

    from obscura.core.colour import srgb_encode
    from obscura.sim.camera import load_camera

    proto = load_protocol(protocol)
    cam = load_camera(camera)
    say = progress or (lambda s: None)
    if str(pipeline) != "libraw":
        from obscura.isp.recipe import get_recipe

        get_recipe(str(pipeline))  # an unknown recipe fails before any capture
    caps = list(captures) if captures is not None else capture_protocol(proto, camera=cam, progress=progress)
    meas: dict[str, dict[str, Any]] = {}
    sets: dict[str, dict[str, Any]] = {}
    images: dict[str, dict[str, np.ndarray]] = {}
    truths: dict[str, dict[str, np.ndarray]] = {}
    for cap in caps:
        cond, name = cap.condition.name, cap.kind
        say(f"develop + measure {cond} / {name} ({pipeline})")
        img = develop_capture(cap, pipeline=pipeline)
        truth = cap.shot.truth.linear_srgb
        try:
            m = measure_chart(cap.chart, img, kind=cap.kind, truth=truth.detach().to("cpu", torch.float64).numpy())
        except ObscuraError as e:  # a chart that cannot be measured is recorded (its scores are missing), not fatal
            m = {"error": str(e)}
            say(f"  {cond} / {name}: cannot measure: {e}")
        meas.setdefault(cond, {})[name] = m
        sets.setdefault(cond, {})[name] = cap.settings()
        images.setdefault(cond, {})[name] = _to_u8(img.data)
        truths.setdefault(cond, {})[name] = _to_u8(srgb_encode(truth.clamp(0, 1)))
    subs, overall = score_measurements(meas, weights=proto.weights)
    return LabResult(
        protocol=proto,
        camera=cam.name,
        pipeline=str(pipeline),
        measurements=meas,
        settings=sets,
        subscores=subs,
        overall=overall,
        images=images,
        truth=truths,
    )
