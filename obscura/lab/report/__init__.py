"""The lab report: self-contained HTML with plots and crops, the JSON beside it, and the leaderboard."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **{
        name: "obscura.lab.report.html"
        for name in (
            "render_report",
            "write_report",
            "read_result",
            "leaderboard",
            "leaderboard_text",
            "leaderboard_html",
            "data_uri",
        )
    },
    **{
        name: "obscura.lab.report.plots"
        for name in (
            "plot_sfr",
            "plot_colorchecker_delta_e",
            "plot_noise",
            "plot_oecf",
            "plot_distortion",
            "plot_texture",
            "crops_side_by_side",
        )
    },
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
