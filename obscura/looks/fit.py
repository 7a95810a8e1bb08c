"""Learning a look from examples: a 3D LUT fitted by gradient descent on before/after image pairs.

``before`` is a photo developed neutrally, ``after`` the same photo as a camera or an editor rendered it;
both display-encoded sRGB in [0, 1]. The LUT (initialised at the identity) is fitted with Adam to the
per-pixel mean squared error through the tetrahedral interpolation of :mod:`obscura.looks.lut`, with the
regularizers of Zeng, Cai, Li, Cao & Zhang (2020, "Learning image-adaptive 3D lookup tables", TPAMI):
smoothness (here on second differences, which leave any affine map such as the identity unpenalised, so
cells that the examples never reach stay close to the identity) and monotonicity (each output channel must
not decrease along its own input axis). The fit is reported as CIEDE2000 (via colour-science) on pixels
held out of training.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from obscura.core.device import resolve_device
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.validate import check_number
from obscura.io.atomic import atomic_output, check_output_path
from obscura.lab.baseline import mean_delta_e00
from obscura.looks.lut import LUT3D, identity_lut, interpolate_tetrahedral, write_cube

__all__ = ["FitResult", "fit_lut", "lut_smoothness", "lut_monotonicity", "save_fit"]


@dataclass(frozen=True)
class FitResult:
    """A fitted LUT and how well it fits: mean CIEDE2000 on training and on held-out pixels."""

    lut: LUT3D
    delta_e_train: float
    delta_e_holdout: float
    steps_run: int
    loss: float = float("nan")


def _mean_delta_e00(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean CIEDE2000 between sRGB values (3, ...) clipped to [0, 1] (:func:`obscura.lab.baseline.mean_delta_e00`,
    colour-science). Evaluation only: runs in numpy on the CPU."""
    if a.shape != b.shape or a.ndim < 2 or a.shape[0] != 3:
        raise ShapeError(f"delta_e00 needs two (3, ...) tensors of one shape; got {tuple(a.shape)}, {tuple(b.shape)}")
    pa, pb = (x.detach().reshape(3, -1).T.double().clamp(0, 1).cpu().numpy() for x in (a, b))
    return mean_delta_e00(pa, pb)


def lut_smoothness(table: torch.Tensor) -> torch.Tensor:
    """Mean squared second difference of a (N, N, N, 3) table along r, g and b, scaled by (N-1)² per
    difference so that it approximates the mean squared second derivative (independent of N)."""
    n = table.shape[0]
    k = float((n - 1) ** 2)
    terms = []
    for axis in range(3):
        d2 = table.diff(n=2, dim=axis) * k
        terms.append(d2.square().mean())
    return sum(terms) / 3


def lut_monotonicity(table: torch.Tensor) -> torch.Tensor:
    """Mean squared decrease of each output channel along its own input axis (zero for a rising LUT)."""
    n = table.shape[0]
    terms = []
    for c in range(3):
        d = table[..., c].diff(dim=c) * float(n - 1)
        terms.append(torch.relu(-d).square().mean())
    return sum(terms) / 3


def _pairs(before: list[torch.Tensor], after: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(before, list | tuple) or not isinstance(after, list | tuple):
        raise InvalidParameter("before and after must be lists of (3, H, W) tensors")
    if len(before) != len(after) or not before:
        raise InvalidParameter(
            f"before and after must hold the same number (≥ 1) of images; got {len(before)} and {len(after)}"
        )
    xs, ys = [], []
    for k, (b, a) in enumerate(zip(before, after)):
        for name, t in (("before", b), ("after", a)):
            if not isinstance(t, torch.Tensor) or t.ndim != 3 or t.shape[0] != 3 or not t.is_floating_point():
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ShapeError(f"{name}[{k}] must be a floating-point (3, H, W) tensor; got {got}")
        if b.shape != a.shape:
            raise ShapeError(
                f"before[{k}] and after[{k}] must have the same shape; got {tuple(b.shape)} and {tuple(a.shape)}"
            )
        xs.append(b.reshape(3, -1))
        ys.append(a.reshape(3, -1).to(b.device))
    x, y = torch.cat(xs, 1), torch.cat(ys, 1)
    if not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all())):
        raise InvalidParameter("before/after images hold non-finite values (NaN or inf)")
    return x, y


def fit_lut(
    before: list[torch.Tensor],
    after: list[torch.Tensor],
    *,
    size: int = 33,
    steps: int = 600,
    lr: float = 0.01,
    smoothness: float = 1e-5,
    monotonicity: float = 1e-2,
    holdout: float = 0.1,
    batch: int = 1 << 16,
    max_samples: int = 1_000_000,
    seed: int = 0,
    device: torch.device | str | None = None,
    title: str = "fitted look",
) -> FitResult:
    """Fit a ``size``³ LUT mapping ``before`` images to ``after`` images (display-encoded sRGB, (3, H, W)).

    At most ``max_samples`` pixels are drawn (seeded by ``seed``); a fraction ``holdout`` of them is kept out
    of training and only used for ``delta_e_holdout``. Each of ``steps`` Adam steps (learning rate ``lr``,
    cosine-decayed) uses ``batch`` random training pixels; the loss is MSE + ``smoothness`` ·
    :func:`lut_smoothness` + ``monotonicity`` · :func:`lut_monotonicity`. Returns a :class:`FitResult` with
    the LUT on the CPU.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 2 <= size <= 65:
        raise InvalidParameter(f"size must be an integer in [2, 65] (17 or 33 are typical); got {size!r}")
    for name, v in (("steps", steps), ("batch", batch), ("max_samples", max_samples)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InvalidParameter(f"{name} must be a positive integer; got {v!r}")
    lr = check_number("lr", lr, 0.0, 1.0, lo_open=True)
    smoothness = check_number("smoothness", smoothness, 0.0, 1e6)
    monotonicity = check_number("monotonicity", monotonicity, 0.0, 1e6)
    holdout = check_number("holdout", holdout, 0.0, 0.9)
    x, y = _pairs(before, after)
    dev = resolve_device(device, like=x)
    gen = torch.Generator().manual_seed(int(seed))
    m = x.shape[1]
    take = torch.randperm(m, generator=gen)[: min(m, max_samples)]
    n_hold = round(holdout * take.numel())
    if take.numel() - n_hold < 1:
        raise InvalidParameter(f"no pixels left for training: {m} pixels with holdout {holdout}")
    idx_hold, idx_train = take[:n_hold], take[n_hold:]
    x_tr, y_tr = (
        x[:, idx_train.to(x.device)].to(dev, torch.float32),
        y[:, idx_train.to(y.device)].to(dev, torch.float32),
    )
    # the LUT input is clamped to [0, 1] like apply_lut; node coordinates are fixed, so computed once
    u_tr = x_tr.clamp(0, 1) * (size - 1)
    table = identity_lut(size, device=dev).table.clone().requires_grad_(True)
    opt = torch.optim.Adam([table], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)) * 0.99 + 0.01)
    n_tr = u_tr.shape[1]
    loss_v = float("nan")
    step = 0
    for step in range(1, steps + 1):
        if n_tr > batch:
            sel = torch.randint(0, n_tr, (batch,), generator=gen).to(dev)
            u, t = u_tr[:, sel], y_tr[:, sel]
        else:
            u, t = u_tr, y_tr
        pred = interpolate_tetrahedral(u, table)
        loss = (pred - t).square().mean()
        if smoothness:
            loss = loss + smoothness * lut_smoothness(table)
        if monotonicity:
            loss = loss + monotonicity * lut_monotonicity(table)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_v = float(loss.detach())
        if not math.isfinite(loss_v):
            raise InvalidParameter(f"the fit diverged at step {step} (loss {loss_v}); lower lr (got {lr})")
    lut = LUT3D(table.detach().cpu().contiguous(), title=title)

    def mean_de(ids: torch.Tensor) -> float:
        if ids.numel() == 0:
            return float("nan")
        ids = ids[:200_000]
        xs = x[:, ids.to(x.device)].float().cpu()
        with torch.no_grad():
            pred = interpolate_tetrahedral(xs.clamp(0, 1) * (size - 1), lut.table)
        return _mean_delta_e00(pred, y[:, ids.to(y.device)].float().cpu())

    return FitResult(lut, mean_de(idx_train), mean_de(idx_hold), step, loss_v)


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def save_fit(
    result: FitResult,
    toml_path: str | os.PathLike,
    *,
    cube_path: str | os.PathLike | None = None,
    name: str | None = None,
    description: str | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write the fitted look: a ``.cube`` (default: next to the TOML, same stem) and a look TOML whose
    ``[lut]`` table points at it (``file`` relative to the TOML when in the same folder; ``space = "srgb"``).

    Both outputs are checked before either is written; neither is replaced without ``overwrite=True``.
    Returns (toml_path, cube_path).
    """
    if not isinstance(result, FitResult):
        raise InvalidParameter(f"result must be a FitResult; got {type(result).__name__}")
    tp = Path(toml_path)
    cp = Path(cube_path) if cube_path is not None else tp.with_suffix(".cube")
    if tp.resolve() == cp.resolve():
        raise InvalidParameter(f"{tp}: the look file and the .cube must be different files")
    check_output_path(tp, overwrite=overwrite)
    check_output_path(cp, overwrite=overwrite)
    name = name if name is not None else tp.stem
    if description is None:
        description = (
            f"3D LUT ({result.lut.size}³) fitted to examples; mean ΔE00 {result.delta_e_train:.2f} on training "
            f"pixels, {result.delta_e_holdout:.2f} held out"
        )
    write_cube(result.lut, cp, overwrite=overwrite)
    rel = cp.name if cp.resolve().parent == tp.resolve().parent else str(cp.resolve())
    text = (
        f"name = {_toml_str(name)}\n"
        f"description = {_toml_str(description)}\n\n"
        f'[lut]\nfile = {_toml_str(rel)}\nspace = "srgb"\n'
    )
    with atomic_output(tp, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return tp, cp
