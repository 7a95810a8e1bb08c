"""Charts as files to print and shoot: 16-bit PNG (sRGB-encoded or linear) and PDF at a stated physical size.

The printed colour of a pixel is the chart's reflectance as a white-balanced photo shows it: the
scene's linear sRGB adapted to D65 (Bradford), so the perfect white is (1, 1, 1); values are clipped
to [0, 1] (a step chart's darkest patches fall below what 16 bits, let alone paper, can hold).
The PNG carries its physical size in a pHYs chunk (pixels per metre) and an ICC profile (sRGB or
linear sRGB); the PDF is a matplotlib page of exactly the chart's size with the image unresampled.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np

from obscura.core.colour import srgb_encode
from obscura.core.errors import InvalidParameter
from obscura.core.validate import check_number
from obscura.io.atomic import atomic_output, check_output_path
from obscura.lab.charts.base import Chart

__all__ = [
    "chart_rgb",
    "chart_preview",
    "write_chart_png",
    "write_chart_pdf",
    "write_chart",
    "print_dpi",
    "pdf_page_size",
    "ENCODINGS",
]

ENCODINGS = ("srgb", "linear")
_OUTLINE = (1.0, 0.0, 0.0)  # ROI outlines: pure red


def _check_chart(chart: object) -> Chart:
    if not isinstance(chart, Chart):
        raise InvalidParameter(f"chart must be an obscura.lab.charts.Chart; got {type(chart).__name__}")
    return chart


def chart_rgb(chart: Chart, *, encoding: str = "srgb") -> np.ndarray:
    """(H, W, 3) float64 in [0, 1]: the chart as printed, sRGB-encoded (IEC 61966-2-1) or ``linear``."""
    _check_chart(chart)
    if encoding not in ENCODINGS:
        raise InvalidParameter(f"encoding must be one of {', '.join(ENCODINGS)}; got {encoding!r}")
    lin = chart.scene.linear_srgb(adapt=True).clamp(0.0, 1.0)
    x = srgb_encode(lin) if encoding == "srgb" else lin
    return x.clamp(0.0, 1.0).permute(1, 2, 0).double().cpu().numpy()


def _outline(rgb: np.ndarray, rois: dict[str, tuple[int, int, int, int]]) -> np.ndarray:
    """A copy of ``rgb`` with each ROI's border (1 px, inside the rectangle) drawn in red."""
    out = rgb.copy()
    h, w = out.shape[:2]
    col = np.asarray(_OUTLINE, dtype=out.dtype)
    for x0, y0, x1, y1 in rois.values():
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x0 >= x1 or y0 >= y1:
            continue
        out[y0, x0:x1] = col
        out[y1 - 1, x0:x1] = col
        out[y0:y1, x0] = col
        out[y0:y1, x1 - 1] = col
    return out


def chart_preview(chart: Chart, *, outline_rois: bool = True, encoding: str = "srgb") -> np.ndarray:
    """(H, W, 3) float64 in [0, 1]: :func:`chart_rgb` with the ROIs outlined in red (for checking layouts)."""
    rgb = chart_rgb(chart, encoding=encoding)
    return _outline(rgb, dict(chart.rois)) if outline_rois else rgb


def print_dpi(chart: Chart, *, dpi: float | None = None, width_mm: float | None = None) -> float:
    """Pixels per inch for printing ``chart``: ``dpi``, or the chart's width over ``width_mm`` (default 300 dpi)."""
    if dpi is not None and width_mm is not None:
        raise InvalidParameter(f"give dpi or width_mm, not both; got dpi={dpi}, width_mm={width_mm}")
    if width_mm is not None:
        mm = check_number("width_mm", width_mm, 1.0, 10000.0)
        return chart.scene.size[1] / (mm / 25.4)
    return check_number("dpi", 300.0 if dpi is None else dpi, 10.0, 10000.0)


def write_chart_png(
    chart: Chart,
    path: str | os.PathLike,
    *,
    encoding: str = "srgb",
    dpi: float | None = None,
    width_mm: float | None = None,
    outline_rois: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``chart`` as a 16-bit RGB PNG, ``encoding`` ``srgb`` (to print) or ``linear``, with a pHYs
    chunk for ``dpi`` (or the ``width_mm`` it is to be printed at; default 300 dpi) and the matching ICC
    profile; ``outline_rois`` draws the ROIs in red (a preview, not for printing). Returns the path."""
    import imagecodecs

    from obscura.io.icc import icc_profile
    from obscura.io.write import png_chunk, png_iccp_chunk, png_insert_after_ihdr

    _check_chart(chart)
    ppi = print_dpi(chart, dpi=dpi, width_mm=width_mm)
    p = check_output_path(path, overwrite=overwrite)
    rgb = chart_preview(chart, outline_rois=outline_rois, encoding=encoding)
    codes = np.round(rgb * 65535.0).astype(np.uint16)
    png = bytes(imagecodecs.png_encode(np.ascontiguousarray(codes), level=6))
    ppm = round(ppi / 0.0254)
    # PNG 1.2 §11.3.5.3 pHYs: pixels per unit x, y, unit 1 = metre; it and iCCP go before IDAT
    extra = png_chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
    extra += png_iccp_chunk(icc_profile("srgb" if encoding == "srgb" else "linear_srgb"))
    with atomic_output(p, overwrite=overwrite) as tmp:
        tmp.write_bytes(png_insert_after_ihdr(png, extra))
    return p


def write_chart_pdf(
    chart: Chart,
    path: str | os.PathLike,
    *,
    dpi: float | None = None,
    width_mm: float | None = None,
    outline_rois: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``chart`` as a one-page PDF of its physical size (``dpi``, or ``width_mm`` wide; default
    300 dpi): the sRGB image (8-bit, as matplotlib embeds it) filling the page, pixel for pixel;
    ``outline_rois`` adds the ROIs as red vector rectangles with their names. Returns the path."""
    from matplotlib.backends.backend_pdf import FigureCanvasPdf
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    _check_chart(chart)
    ppi = print_dpi(chart, dpi=dpi, width_mm=width_mm)
    p = check_output_path(path, overwrite=overwrite)
    rgb = chart_rgb(chart, encoding="srgb")
    h, w = rgb.shape[:2]
    fig = Figure(figsize=(w / ppi, h / ppi), dpi=ppi)
    FigureCanvasPdf(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.imshow(rgb, interpolation="none", extent=(-0.5, w - 0.5, h - 0.5, -0.5), resample=False)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    if outline_rois:
        size = max(2.0, min(6.0, 0.012 * min(h, w) * 72.0 / ppi))  # points
        for name, (x0, y0, x1, y1) in chart.rois.items():
            ax.add_patch(
                Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=_OUTLINE, linewidth=0.5)
            )
            ax.text(x0, y0, name, color=_OUTLINE, fontsize=size, va="top", ha="left")
    meta = {"Title": f"obscura {chart.name} chart", "Creator": "obscura.lab.charts"}
    with atomic_output(p, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="pdf", dpi=ppi, metadata=meta)
    return p


def write_chart(
    chart: Chart,
    path: str | os.PathLike,
    *,
    encoding: str = "srgb",
    dpi: float | None = None,
    width_mm: float | None = None,
    outline_rois: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``chart`` as PNG or PDF by ``path``'s suffix (see :func:`write_chart_png`, :func:`write_chart_pdf`)."""
    suffix = Path(path).suffix.lower()
    opts = {"dpi": dpi, "width_mm": width_mm, "outline_rois": outline_rois, "overwrite": overwrite}
    if suffix == ".png":
        return write_chart_png(chart, path, encoding=encoding, **opts)
    if suffix == ".pdf":
        if encoding != "srgb":
            raise InvalidParameter(f"a PDF chart is sRGB-encoded; got encoding {encoding!r}")
        return write_chart_pdf(chart, path, **opts)
    raise InvalidParameter(f"{path}: chart files are .png or .pdf; got suffix {suffix!r}")


def pdf_page_size(path: str | os.PathLike) -> tuple[float, float]:
    """(width, height) in points of the first /MediaBox in a PDF (1 pt = 1/72 inch)."""
    m = re.search(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", Path(path).read_bytes())
    if m is None:
        raise InvalidParameter(f"{path}: no /MediaBox found")
    x0, y0, x1, y1 = (float(v) for v in m.groups())
    return x1 - x0, y1 - y0
