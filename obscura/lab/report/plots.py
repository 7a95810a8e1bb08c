"""Plots of lab measurements (matplotlib, Agg backend) as PNG bytes, for the self-contained HTML report.

Each function takes the JSON-ready measurement dicts of :func:`obscura.lab.score.measure_chart`
(``{condition: dict}`` where several conditions share one plot) and returns PNG bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "figure_png",
    "plot_sfr",
    "plot_colorchecker_delta_e",
    "plot_noise",
    "plot_oecf",
    "plot_distortion",
    "plot_texture",
    "crops_side_by_side",
]

DPI = 96


def _figure(w: float = 6.4, h: float = 3.6) -> Any:
    # the object-oriented API without pyplot: no global state, no GUI backend, thread-safe
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=DPI, layout="constrained")


def figure_png(fig: Any) -> bytes:
    """A matplotlib Figure rendered to PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def plot_sfr(edges: Mapping[str, Mapping[str, Any]]) -> bytes:
    """SFR of the centre edge per condition (luminance solid, R/G/B thin), Nyquist marked."""
    fig = _figure()
    ax = fig.add_subplot()
    for i, (cond, d) in enumerate(edges.items()):
        f = np.asarray(d["freq"])
        colour = f"C{i}"
        mtf50 = d.get("mtf50")
        label = f"{cond} (MTF50 {mtf50:.3f} c/px)" if mtf50 is not None else cond
        ax.plot(f, d["sfr"], color=colour, lw=2, label=label)
        for ch, ls in zip(d.get("sfr_channels", []), ("--", "-.", ":")):
            ax.plot(f, ch, color=colour, lw=0.7, ls=ls)
    ax.axvline(0.5, color="0.5", lw=0.8, ls="--")
    ax.text(0.5, 0.02, " Nyquist", color="0.4", fontsize=8)
    ax.axhline(0.5, color="0.8", lw=0.6)
    ax.set(xlim=(0, 1), ylim=(0, None), xlabel="frequency (cycles/pixel)", ylabel="SFR", title="e-SFR (ISO 12233)")
    ax.legend(fontsize=8)
    return figure_png(fig)


def plot_texture(textures: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Dead-leaves texture MTF per condition (noise power subtracted)."""
    fig = _figure()
    ax = fig.add_subplot()
    for i, (cond, d) in enumerate(textures.items()):
        ax.plot(d["freq"], d["texture_mtf"], color=f"C{i}", label=f"{cond} (acutance {d['texture_acutance']:.2f})")
    ax.axvline(0.5, color="0.5", lw=0.8, ls="--")
    # the first bins carry the window's DC leakage: the axis stops at 1.6 so the curve stays readable
    ax.set(xlim=(0, 0.5 * math.sqrt(2)), ylim=(0, 1.6), xlabel="frequency (cycles/pixel)", ylabel="texture MTF")
    ax.set_title("Dead-leaves texture MTF")
    ax.legend(fontsize=8)
    return figure_png(fig)


def plot_colorchecker_delta_e(image: np.ndarray, colour: Mapping[str, Any]) -> bytes:
    """The developed ColorChecker with each patch's ΔE00 written on it (red when above 5)."""
    h, w = image.shape[:2]
    fig = _figure(6.4, 6.4 * h / w + 0.4)
    ax = fig.add_subplot()
    ax.imshow(image, interpolation="nearest")
    de = colour["delta_e00"]
    for (_name, (x0, y0, x1, y1)), v in zip(colour["rois"].items(), de):
        ax.add_patch(_rect(x0, y0, x1 - x0, y1 - y0, "white" if v <= 5 else "red"))
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            f"{v:.1f}",
            ha="center",
            va="center",
            fontsize=9,
            color="white",
            bbox={"facecolor": "black", "alpha": 0.55, "pad": 1.5, "lw": 0},
        )
    ax.set_axis_off()
    ax.set_title(
        f"ΔE00 per patch (mean {colour['mean_delta_e00']:.2f}, normalized {colour['mean_delta_e00_normalized']:.2f})",
        fontsize=10,
    )
    return figure_png(fig)


def _rect(x: float, y: float, w: float, h: float, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor=colour, lw=1)


def plot_noise(noises: Mapping[str, Mapping[str, Any]], steps: Mapping[str, Mapping[str, Any]] | None = None) -> bytes:
    """Luminance SNR (dB) against the linear signal: noise-chart patches (dots) and step chart (line)."""
    fig = _figure()
    ax = fig.add_subplot()
    for i, (cond, d) in enumerate(noises.items()):
        pats = d["patches"]
        m = [p["luminance_mean"] for p in pats.values()]
        s = [p["luminance_snr_db"] for p in pats.values()]
        ax.plot(m, s, "o", color=f"C{i}", label=f"{cond}: noise chart")
    for i, (cond, d) in enumerate((steps or {}).items()):
        snr = np.array([np.nan if v is None else v for v in d["snr"]], dtype=float)
        mean = np.asarray(d["mean"], dtype=float)
        ok = (mean > 0) & np.isfinite(snr) & (snr > 0)
        ax.plot(mean[ok], 20 * np.log10(snr[ok]), "-", color=f"C{i}", lw=1, label=f"{cond}: step chart")
    ax.set_xscale("log")
    ax.set(xlabel="mean signal (linear, white = 1)", ylabel="luminance SNR (dB)", title="Noise against signal")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8)
    return figure_png(fig)


def plot_oecf(steps: Mapping[str, Mapping[str, Any]]) -> bytes:
    """OECF (output against scene exposure) and SNR per step with the SNR 1/10/32 thresholds and DR."""
    fig = _figure(6.4, 5.2)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    for i, (cond, d) in enumerate(steps.items()):
        x = np.asarray(d["log2_exposure"], dtype=float)
        mean = np.clip(np.asarray(d["mean"], dtype=float), 1e-6, None)
        ax1.plot(x, np.log2(mean), "o-", ms=3, color=f"C{i}", label=cond)
        snr = np.array([np.nan if v is None else v for v in d["snr"]], dtype=float)
        dr = d["dynamic_range"]
        drs = ", ".join(f"SNR {k[4:]}: {v:.1f}" if v is not None else f"SNR {k[4:]}: –" for k, v in dr.items())
        ax2.plot(x, np.where(snr > 0, snr, np.nan), "o-", ms=3, color=f"C{i}", label=f"{cond} (DR stops {drs})")
    for t in (1, 10, 32):
        ax2.axhline(t, color="0.6", lw=0.7, ls="--")
    ax1.set(ylabel="log2 output (linear)", title="OECF and dynamic range")
    ax2.set(yscale="log", xlabel="log2 relative scene exposure", ylabel="SNR")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=7)
    ax1.grid(True, lw=0.3)
    ax2.grid(True, which="both", lw=0.3)
    return figure_png(fig)


def distortion_vectors(measured: np.ndarray, ideal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs each measured dot with its nearest ideal dot after removing the mean scale about the centre.

    Returns (ideal positions (K, 2), displacements (K, 2)) for the dots matched within half a spacing.
    """
    m, u = np.asarray(measured, dtype=float), np.asarray(ideal, dtype=float)
    if len(m) < 3 or len(u) < 3:
        return np.zeros((0, 2)), np.zeros((0, 2))
    c = u.mean(axis=0)
    d = np.sqrt(((u[:, None, :] - u[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    spacing = float(np.median(d.min(axis=1)))
    j = np.argmin(((m[:, None, :] - u[None, :, :]) ** 2).sum(-1), axis=1)
    ok = np.hypot(*(m - u[j]).T) < 0.5 * spacing
    m, uj = m[ok], u[j[ok]]
    if len(m) < 3:
        return np.zeros((0, 2)), np.zeros((0, 2))
    # the least-squares scale of (m − c) on (u − c): what a different field of view would explain
    s = float(((m - c) * (uj - c)).sum() / max(((uj - c) ** 2).sum(), 1e-12))
    return uj, (m - c) - s * (uj - c)


def plot_distortion(dots: Mapping[str, Any], size: tuple[int, int]) -> bytes:
    """The distortion field: each dot's displacement from the ideal grid (scale removed), magnified."""
    pos, vec = distortion_vectors(np.asarray(dots["centres"]), np.asarray(dots["reference_centres"]))
    h, w = size
    fig = _figure(6.4, 6.4 * h / w + 0.5)
    ax = fig.add_subplot()
    if len(pos):
        mag = np.hypot(*vec.T)
        gain = 0.15 * min(h, w) / max(float(mag.max()), 1e-9)
        q = ax.quiver(
            pos[:, 0],
            pos[:, 1],
            vec[:, 0],
            vec[:, 1],
            mag,
            angles="xy",
            scale_units="xy",
            scale=1 / gain,
            cmap="viridis",
        )
        fig.colorbar(q, ax=ax, label="displacement (px)", shrink=0.8)
    ax.set(xlim=(0, w), ylim=(h, 0), aspect="equal")
    tv = dots.get("tv_distortion_pct")
    ax.set_title(f"Distortion field (SMIA TV distortion {tv:+.2f} %)" if tv is not None else "Distortion field")
    return figure_png(fig)


def crops_side_by_side(images: Mapping[str, np.ndarray], *, box: tuple[int, int, int, int], scale: int = 2) -> bytes:
    """The same crop ``box`` (x0, y0, x1, y1) of several (H, W, 3) uint8 images, side by side, labelled."""
    x0, y0, x1, y1 = box
    n = len(images)
    cw, ch = (x1 - x0) * scale, (y1 - y0) * scale
    fig = _figure(min(3.2 * n, 12.8), 3.2 * ch / cw + 0.5)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (label, img) in zip(axes, images.items()):
        ax.imshow(img[y0:y1, x0:x1], interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    return figure_png(fig)
