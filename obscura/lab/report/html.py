"""The lab's self-contained HTML report and leaderboard (images embedded as base64 PNG data URIs).

One report shows one or several lab results (pipelines or cameras on the same protocol): a summary
table of sub-scores and the overall score, the scoring rules, then one section per chart with the
plots (SFR curves, ΔE per patch on the chart, noise against signal, OECF and dynamic range, the
distortion field, texture MTF) and crops of every result side by side with the ground truth.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from obscura.core.errors import CorruptFile, InputError, InvalidParameter
from obscura.lab.report import plots
from obscura.lab.score import CATEGORIES

__all__ = [
    "data_uri",
    "render_report",
    "write_report",
    "read_result",
    "leaderboard",
    "leaderboard_text",
    "leaderboard_html",
    "result_label",
]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1280px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:1.6em}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}.score{font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0}figcaption{font-size:.85em;color:#555}
img{max-width:100%;height:auto}.small{font-size:.85em;color:#555}
"""


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return f"{v:.{nd}f}" if abs(v) < 1e5 else f"{v:.3g}"
    return html.escape(str(v))


def _as_dict(result: Any) -> dict[str, Any]:
    return result if isinstance(result, dict) else result.to_dict()


def result_label(result: Any) -> str:
    """``camera / pipeline`` of a result (a LabResult or its dict)."""
    d = _as_dict(result)
    return f"{d.get('camera', '?')} / {d.get('pipeline', '?')}"


def _img(png: bytes, caption: str) -> str:
    cap = html.escape(caption)
    return f'<figure><img src="{data_uri(png)}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'


def _summary_table(dicts: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(result_label(d))}</th>" for d in dicts)
    rows = [f'<tr><th class="l">sub-score</th>{head}</tr>']
    for c in CATEGORIES:
        cells = "".join(f'<td class="score">{_fmt(d["subscores"].get(c, {}).get("score"))}</td>' for d in dicts)
        rows.append(f'<tr><td class="l">{c}</td>{cells}</tr>')
    cells = "".join(f'<td class="score">{_fmt(d.get("overall"))}</td>' for d in dicts)
    rows.append(f'<tr><td class="l"><b>overall</b></td>{cells}</tr>')
    return f'<table id="summary">{"".join(rows)}</table>'


def _items_table(dicts: Sequence[dict[str, Any]]) -> str:
    """Every scored measurement: value and score per result (the trace from scores to measurements)."""
    keyed: dict[tuple[str, str, str], list[Any]] = {}
    meta: dict[tuple[str, str, str], dict[str, Any]] = {}
    for i, d in enumerate(dicts):
        for cat in CATEGORIES:
            for it in d["subscores"].get(cat, {}).get("items", []):
                k = (cat, it["name"], it["condition"])
                keyed.setdefault(k, [None] * len(dicts))[i] = it
                meta[k] = it
    head = "".join(f"<th>{html.escape(result_label(d))}</th>" for d in dicts)
    rows = [
        '<tr><th class="l">sub-score</th><th class="l">measurement</th><th class="l">condition</th>'
        f'<th class="l">chart.key</th><th>poor → excellent</th>{head}</tr>'
    ]
    for k, its in keyed.items():
        m = meta[k]
        cells = "".join(
            f"<td>{_fmt(it['value'], 3)} → <b>{_fmt(it['score'])}</b></td>" if it else "<td>–</td>" for it in its
        )
        rows.append(
            f'<tr><td class="l">{k[0]}</td><td class="l">{html.escape(k[1])}</td><td class="l">{html.escape(k[2])}'
            f'</td><td class="l">{html.escape(m["chart"])}.{html.escape(m["key"])}</td>'
            f"<td>{_fmt(m['poor'], 2)} → {_fmt(m['excellent'], 2)} ({m['function']}, {m['transform']})</td>{cells}</tr>"
        )
    return f'<table id="items">{"".join(rows)}</table>'


def _rules_list(d: dict[str, Any]) -> str:
    lis = "".join(
        f"<li><b>{html.escape(r['category'])} / {html.escape(r['name'])}</b> ({html.escape(r['chart'])}."
        f"{html.escape(r['key'])}): {html.escape(r['why'])}</li>"
        for r in d.get("rules", [])
    )
    return f'<ul class="small">{lis}</ul>'


def _centre_box(h: int, w: int, side: int = 128) -> tuple[int, int, int, int]:
    s = min(side, h, w)
    x0, y0 = (w - s) // 2, (h - s) // 2
    return x0, y0, x0 + s, y0 + s


def _chart_crop_box(chart: str, h: int, w: int) -> tuple[int, int, int, int]:
    """An informative crop per chart: the top-right edge region, the dead leaves' centre, the centre."""
    if chart == "zoneplate":
        s = min(128, h, w)
        return w - s, 0, w, s  # the corner: above Nyquist, where moiré shows
    return _centre_box(h, w)


def _condition_names(dicts: Sequence[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for d in dicts:
        for c in d["conditions"]:
            if c not in seen:
                seen.append(c)
    return seen


def _chart_section(chart: str, dicts: Sequence[dict[str, Any]], results: Sequence[Any]) -> str:
    parts = [f'<h2 id="chart-{chart}">{html.escape(chart)}</h2>']
    conds = _condition_names(dicts)
    figs = []
    for d in dicts:
        per = {c: d["conditions"][c][chart]["measurements"] for c in conds if chart in d["conditions"].get(c, {})}
        if not per:
            continue
        label = result_label(d)
        if chart == "edge":
            figs.append(_img(plots.plot_sfr(per), f"SFR curves, {label}"))
        elif chart == "deadleaves":
            figs.append(_img(plots.plot_texture(per), f"texture MTF, {label}"))
        elif chart == "noise":
            steps = {c: d["conditions"][c]["steps"]["measurements"] for c in per if "steps" in d["conditions"][c]}
            figs.append(_img(plots.plot_noise(per, steps), f"noise against signal, {label}"))
        elif chart == "steps":
            figs.append(_img(plots.plot_oecf(per), f"OECF and dynamic range, {label}"))
        elif chart == "dots":
            size = tuple(d["protocol"]["size"])
            for c, m in per.items():
                figs.append(_img(plots.plot_distortion(m, size), f"distortion field, {c}, {label}"))
    # ΔE drawn on the chart needs the developed image: only results that still carry their images
    for r in results:
        if isinstance(r, dict) or chart != "colorchecker":
            continue
        for c, imgs in r.images.items():
            if "colorchecker" in imgs:
                m = r.measurements[c]["colorchecker"]
                figs.append(
                    _img(
                        plots.plot_colorchecker_delta_e(imgs["colorchecker"], m),
                        f"ΔE00 per patch, {c}, {result_label(r)}",
                    )
                )
    if figs:
        parts.append(f'<div class="plots">{"".join(figs)}</div>')
    # crops side by side: ground truth and every result, per condition
    for c in conds:
        imgs: dict[str, Any] = {}
        for r in results:
            if isinstance(r, dict) or chart not in r.images.get(c, {}):
                continue
            if not imgs and chart in r.truth.get(c, {}):
                imgs["ground truth"] = r.truth[c][chart]
            imgs[result_label(r)] = r.images[c][chart]
        if len(imgs) >= 2:
            h, w = next(iter(imgs.values())).shape[:2]
            box = _chart_crop_box(chart, h, w)
            png = plots.crops_side_by_side(imgs, box=box)
            parts.append(f'<div class="plots">{_img(png, f"crops {box} at {c}")}</div>')
    # the measurements per condition, compactly
    rows = []
    for d in dicts:
        for c in conds:
            m = d["conditions"].get(c, {}).get(chart)
            if not m:
                continue
            scal = {
                k: v for k, v in m["measurements"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
            kv = ", ".join(f"{html.escape(k)} = {_fmt(v, 3)}" for k, v in scal.items())
            s = m["settings"]
            rows.append(
                f'<tr><td class="l">{html.escape(result_label(d))}</td><td class="l">{html.escape(c)}</td>'
                f'<td>ISO {s["iso"]:.0f}, {s["exposure_time_s"] * 1000:.2f} ms</td><td class="l small">{kv}</td></tr>'
            )
    if rows:
        parts.append(
            '<table><tr><th class="l">result</th><th class="l">condition</th><th>settings</th>'
            f'<th class="l">measurements</th></tr>{"".join(rows)}</table>'
        )
    return "".join(parts)


def render_report(results: Any, *, title: str | None = None) -> str:
    """The HTML text of a report for one LabResult (or a sequence of them / of their dicts)."""
    res = list(results) if isinstance(results, (list, tuple)) else [results]
    if not res:
        raise InvalidParameter("render_report needs at least one lab result")
    dicts = [_as_dict(r) for r in res]
    proto = dicts[0]["protocol"]
    t = title or f"obscura lab: {', '.join(result_label(d) for d in dicts)}"
    charts: list[str] = []
    for d in dicts:
        for c in d["conditions"].values():
            charts.extend(k for k in c if k not in charts)
    conds = "".join(
        f"<li>{html.escape(c['name'])}: {c['lux']:g} lux, {html.escape(c['mode'])}, {html.escape(c['illuminant'])}</li>"
        for c in proto["conditions"]
    )
    body = [
        f"<h1>{html.escape(t)}</h1>",
        f'<p class="small">protocol <b>{html.escape(proto["name"])}</b>: {html.escape(proto.get("description", ""))}; '
        f'frames {proto["size"][1]}×{proto["size"][0]}</p><ul class="small">{conds}</ul>',
        "<h2>Summary</h2>",
        _summary_table(dicts),
        "<h2>Scored measurements</h2>",
        '<p class="small">Each measurement is mapped to 0–100 between its "poor" (0) and "excellent" (100) anchors '
        "(linear or in log2, clamped); a sub-score is the mean of its items, the overall score the weighted mean "
        "of the sub-scores. Values are in the JSON beside this file under conditions.&lt;condition&gt;.&lt;chart&gt;"
        ".measurements.&lt;key&gt;.</p>",
        _items_table(dicts),
        _rules_list(dicts[0]),
    ]
    body.extend(_chart_section(c, dicts, res) for c in charts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(t)}</title>'
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "result"


def write_report(results: Any, directory: str | Path, *, name: str = "report", overwrite: bool = False) -> list[Path]:
    """Write ``DIR/<name>.html`` and one ``DIR/<camera>_<pipeline>.json`` per result; returns the paths.

    Every path is checked before anything is written; files are written atomically.
    """
    from obscura.io.atomic import atomic_output, check_output_path

    res = list(results) if isinstance(results, (list, tuple)) else [results]
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    dicts = [_as_dict(r) for r in res]
    targets = [folder / f"{name}.html"] + [
        folder / f"{_slug(d['camera'])}_{_slug(Path(d['pipeline']).stem)}.json" for d in dicts
    ]
    if len(set(targets)) != len(targets):
        raise InvalidParameter(f"two results would write the same file: {[str(t) for t in targets]}")
    for t in targets:
        check_output_path(t, overwrite=overwrite)
    text = render_report(res)
    with atomic_output(targets[0], overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    for t, d in zip(targets[1:], dicts):
        with atomic_output(t, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(d, indent=1, allow_nan=False), encoding="utf-8")
    return targets


def read_result(path: str | Path) -> dict[str, Any]:
    """A lab result JSON written by ``write_report`` (``obscura lab run``)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptFile(f"{p}: not a lab result JSON: {e}") from None
    if not isinstance(d, dict) or d.get("kind") != "obscura.lab.result" or "subscores" not in d:
        raise CorruptFile(f"{p}: not a lab result JSON (no kind = obscura.lab.result)")
    return d


def leaderboard(results: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows sorted by overall score (best first): rank, label, camera, pipeline, protocol, sub-scores, overall."""
    dicts = [_as_dict(r) for r in results]
    if not dicts:
        raise InvalidParameter("a leaderboard needs at least one result")
    protos = {d["protocol"]["name"] for d in dicts}
    rows = []
    for d in dicts:
        rows.append(
            {
                "label": result_label(d),
                "camera": d["camera"],
                "pipeline": d["pipeline"],
                "protocol": d["protocol"]["name"],
                **{c: d["subscores"].get(c, {}).get("score") for c in CATEGORIES},
                "overall": d.get("overall"),
            }
        )
    rows.sort(key=lambda r: -(r["overall"] if r["overall"] is not None else -math.inf))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
        r["same_protocol"] = len(protos) == 1
    return rows


def leaderboard_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The leaderboard as a fixed-width text table."""
    w = max(len("camera / pipeline"), *(len(r["label"]) for r in rows))
    head = (
        f"{'#':>2}  {'camera / pipeline':<{w}}  " + "  ".join(f"{c[:9]:>9}" for c in CATEGORIES) + f"  {'overall':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['rank']:>2}  {r['label']:<{w}}  "
            + "  ".join(f"{_fmt(r[c]):>9}" for c in CATEGORIES)
            + f"  {_fmt(r['overall']):>7}"
        )
    if rows and not rows[0]["same_protocol"]:
        lines.append("note: the results come from different protocols: scores are not comparable")
    return "\n".join(lines)


def leaderboard_html(rows: Sequence[Mapping[str, Any]], *, title: str = "obscura lab leaderboard") -> str:
    """The leaderboard as a self-contained HTML page."""
    head = "".join(f"<th>{c}</th>" for c in CATEGORIES)
    trs = "".join(
        f'<tr><td>{r["rank"]}</td><td class="l">{html.escape(r["label"])}</td><td class="l">'
        f"{html.escape(r['protocol'])}</td>"
        + "".join(f"<td>{_fmt(r[c])}</td>" for c in CATEGORIES)
        + f'<td class="score">{_fmt(r["overall"])}</td></tr>'
        for r in rows
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<table id="leaderboard"><tr><th>#</th><th class="l">camera / pipeline</th><th class="l">protocol</th>'
        f"{head}<th>overall</th></tr>{trs}</table></body></html>\n"
    )
