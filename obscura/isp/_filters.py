"""Small filters shared by the denoise, tone and sharpen stages (torch, any device).

They run inside the pipeline on tensors, so they are written here rather than taken from OpenCV or
scikit-image (which would need numpy round trips and would not run on CUDA).

Speed note: on the CPU, allocating fresh full-frame temporaries dominates the cost of elementwise
chains (page faults on first touch of each new 100 MB buffer). :func:`strip_map` runs a filter on
overlapping horizontal strips that stay in cache and writes into one preallocated output, which is
5–15× faster at 24 MP than running the same chain on the whole frame. On CUDA it runs in one piece.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
from torch.nn import functional as F  # noqa: N812

__all__ = [
    "strip_map",
    "parallel_map",
    "parallel_threads",
    "pad_replicate",
    "gaussian_kernel1d",
    "blur_separable",
    "gaussian_blur",
    "box_filter",
    "guided_filter",
    "pyr_down",
    "pyr_up",
    "laplacian_pyramid",
    "collapse_laplacian",
    "gaussian_pyramid",
    "local_min_max3",
    "upsample_rows",
    "bin2",
]

T = TypeVar("T")

_STRIP_PIXELS = 1 << 18  # pixels per plane in one strip: small enough to stay in cache

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()
_LOCAL = threading.local()


def _worker_init() -> None:
    # Ops inside a worker run single-threaded: the strips are the parallelism. An OpenMP parallel region per
    # small op stalls for a scheduler time slice whenever the cores are shared (measured 16× slower per op
    # on a loaded 2-core machine), while one task per strip does not care.
    _LOCAL.worker = True
    torch.set_num_threads(1)


def _pool(n: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or n != _POOL_SIZE:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(n, thread_name_prefix="obscura-strip", initializer=_worker_init)
            _POOL_SIZE = n
        return _POOL


def parallel_threads(device: torch.device) -> int:
    """How many strip workers to use for work on ``device`` from this thread (1: run in this thread).

    ``torch.get_num_threads()`` on the CPU, except inside a worker (nested calls run serially) and where
    the caller already limited torch to one thread (e.g. its own pool of strips).
    """
    if device.type != "cpu" or getattr(_LOCAL, "worker", False):
        return 1
    return torch.get_num_threads()


def parallel_map(fn: Callable[[T], None], items: Sequence[T], *, threads: int) -> None:
    """Call ``fn`` on every item, spread over ``threads`` workers with single-threaded torch ops.

    ``fn`` returns nothing (it writes its result into a preallocated tensor). Torch releases the GIL in
    its ops, so workers run in parallel. With ``threads`` ≤ 1 or one item, runs in the calling thread.
    """
    if threads <= 1 or len(items) <= 1:
        for it in items:
            fn(it)
        return
    for f in [_pool(threads).submit(fn, it) for it in items]:
        f.result()
    # a worker's set_num_threads(1) also sets the default that new threads start with: restore it
    torch.set_num_threads(threads)


def strip_map(
    fn: Callable[..., torch.Tensor],
    *xs: torch.Tensor,
    halo: int,
    rows: int | None = None,
) -> torch.Tensor:
    """Apply ``fn`` to overlapping horizontal strips of the (..., H, W) tensors ``xs``; stitch the result.

    ``fn`` gets strips of every tensor (rows ``[lo, hi)``, all with the same H and W) and must return a
    (..., hi - lo, W) tensor that depends only on rows within ``halo`` of each output row, padding the
    strip's own borders itself. The output rows are then exactly those of ``fn`` run on the whole frame.
    On the CPU the strips are spread over :func:`parallel_threads` workers.
    """
    H = xs[0].shape[-2]
    if rows is None:
        rows = max(8, _STRIP_PIXELS // max(1, xs[0].shape[-1]))
    if xs[0].device.type != "cpu" or rows + 2 * halo >= H:
        return fn(*xs)
    out: list[torch.Tensor] = []
    lock = threading.Lock()

    def one(top: int) -> None:
        bot = min(H, top + rows)
        lo, hi = max(0, top - halo), min(H, bot + halo)
        y = fn(*(x[..., lo:hi, :] for x in xs))
        with lock:
            if not out:
                out.append(torch.empty((*y.shape[:-2], H, y.shape[-1]), dtype=y.dtype, device=y.device))
        out[0][..., top:bot, :] = y[..., top - lo : bot - lo, :]

    parallel_map(one, range(0, H, rows), threads=parallel_threads(xs[0].device))
    return out[0]


def pad_replicate(x: torch.Tensor, r: int, c: int | None = None) -> torch.Tensor:
    """Replicate-pad the last two dims of a (..., H, W) tensor by ``r`` rows and ``c`` columns."""
    c = r if c is None else c
    if r == 0 and c == 0:
        return x
    shape = x.shape
    y = F.pad(x.reshape(1, -1, *shape[-2:]), (c, c, r, r), mode="replicate")
    return y.reshape(*shape[:-2], *y.shape[-2:])


def gaussian_kernel1d(
    sigma: float, *, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu", radius: int | None = None
) -> torch.Tensor:
    """A normalised sampled Gaussian of standard deviation ``sigma`` (radius ⌈3σ⌉ unless given)."""
    r = max(1, math.ceil(3.0 * sigma)) if radius is None else int(radius)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / max(sigma, 1e-6)) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def blur_separable(x: torch.Tensor, k: torch.Tensor, *, padded: torch.Tensor | None = None) -> torch.Tensor:
    """Filter the last two dims of ``x`` with the separable kernel ``k ⊗ k`` (replicate borders).

    Written as shifted multiply-adds: on CPU this is much faster than conv2d for short kernels.
    ``padded``: ``x`` already replicate-padded by the kernel radius on the left and right, when the
    caller has it.
    """
    r = (k.numel() - 1) // 2
    H, W = x.shape[-2:]
    kl = [float(v) for v in k]
    xp = pad_replicate(x, 0, r) if padded is None else padded
    h = xp[..., :, 0:W] * kl[0]
    for i in range(1, 2 * r + 1):
        h.add_(xp[..., :, i : i + W], alpha=kl[i])
    hp = pad_replicate(h, r, 0)
    v = hp[..., 0:H, :] * kl[0]
    for i in range(1, 2 * r + 1):
        v.add_(hp[..., i : i + H, :], alpha=kl[i])
    return v


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of the last two dims of a (..., H, W) tensor (separable, replicate borders)."""
    if sigma <= 0:
        return x.clone()
    k = gaussian_kernel1d(sigma, dtype=x.dtype, device=x.device)
    r = (k.numel() - 1) // 2
    return strip_map(lambda s: blur_separable(s, k), x, halo=r)


def box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)² window of the last two dims (replicate borders)."""
    if r <= 0:
        return x.clone()
    shape = x.shape
    y = pad_replicate(x.reshape(1, -1, *shape[-2:]), r)
    y = F.avg_pool2d(y, 2 * r + 1, stride=1)
    return y.reshape(shape)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, *, r: int, eps: float) -> torch.Tensor:
    """Edge-preserving smoothing of ``src`` guided by ``guide`` (He, Sun, Tang 2010); both (..., H, W)."""
    mi, mp = box_filter(guide, r), box_filter(src, r)
    cov = box_filter(guide * src, r) - mi * mp
    var = box_filter(guide * guide, r) - mi * mi
    a = cov / (var + eps)
    b = mp - a * mi
    return box_filter(a, r) * guide + box_filter(b, r)


_BINOMIAL5 = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """One level down a Gaussian pyramid: 5-tap binomial blur, then keep every other pixel (Burt & Adelson 1983)."""
    k = torch.tensor(_BINOMIAL5, dtype=x.dtype, device=x.device)
    return blur_separable(x, k)[..., ::2, ::2]


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsample a (..., h, w) level to ``size`` (bilinear; the inverse step of :func:`pyr_down`)."""
    shape = x.shape
    y = F.interpolate(x.reshape(1, -1, *shape[-2:]), size=size, mode="bilinear", align_corners=False)
    return y.reshape(*shape[:-2], *size)


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``levels`` Gaussian pyramid levels, finest first."""
    out = [x]
    for _ in range(levels - 1):
        out.append(pyr_down(out[-1]))
    return out


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid (Burt & Adelson 1983): band-pass levels, finest first, then the low-pass residual."""
    g = gaussian_pyramid(x, levels)
    return [g[i] - pyr_up(g[i + 1], tuple(g[i].shape[-2:])) for i in range(levels - 1)] + [g[-1]]


def collapse_laplacian(pyr: list[torch.Tensor]) -> torch.Tensor:
    """Rebuild the image from :func:`laplacian_pyramid` (exact inverse)."""
    x = pyr[-1]
    for lap in reversed(pyr[:-1]):
        x = lap + pyr_up(x, tuple(lap.shape[-2:]))
    return x


def local_min_max3(x: torch.Tensor, *, padded: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum and maximum over the 3×3 neighbourhood of each pixel (replicate borders), by shifts.

    ``padded``: ``x`` already replicate-padded by one column on the left and right, when the caller has it.
    """
    H, W = x.shape[-2:]
    xp = pad_replicate(x, 0, 1) if padded is None else padded
    mid = xp[..., :, 1 : W + 1]
    hmin = torch.minimum(xp[..., :, 0:W], mid)
    hmin = torch.minimum(hmin, xp[..., :, 2 : W + 2], out=hmin)
    hmax = torch.maximum(xp[..., :, 0:W], mid)
    hmax = torch.maximum(hmax, xp[..., :, 2 : W + 2], out=hmax)
    out = []
    for h, op in ((hmin, torch.minimum), (hmax, torch.maximum)):
        # rows: the middle ones from three shifts; the first and last (replicate border) from two
        v = torch.empty_like(h)
        if H > 1:
            op(h[..., 0:1, :], h[..., 1:2, :], out=v[..., 0:1, :])
            op(h[..., H - 2 : H - 1, :], h[..., H - 1 : H, :], out=v[..., H - 1 : H, :])
            if H > 2:
                op(op(h[..., 0 : H - 2, :], h[..., 1 : H - 1, :]), h[..., 2:H, :], out=v[..., 1 : H - 1, :])
        else:
            v.copy_(h)
        out.append(v)
    return out[0], out[1]


def upsample_rows(low: torch.Tensor, top: int, bot: int, size: tuple[int, int]) -> torch.Tensor:
    """Rows [top, bot) of the bilinear resize (align_corners=False) of ``low`` (C, h, w) to ``size``.

    Equal to ``F.interpolate(low[None], size=size, mode="bilinear")[0, :, top:bot]`` without building
    the whole full-size result (which, on CPU, costs more than the interpolation itself).
    """
    h = low.shape[-2]
    H, W = size
    i = torch.arange(top, bot, device=low.device, dtype=torch.float64)
    src = ((i + 0.5) * (h / H) - 0.5).clamp_min(0.0)
    i0 = src.floor().long().clamp_max(h - 1)
    i1 = (i0 + 1).clamp_max(h - 1)
    lam = (src - i0).to(low.dtype)[:, None]
    rows = low[:, i0] * (1 - lam) + low[:, i1] * lam  # (C, bot - top, w)
    return F.interpolate(rows[None], size=(bot - top, W), mode="bilinear", align_corners=False)[0]


def bin2(x: torch.Tensor) -> torch.Tensor:
    """Mean of each 2×2 block of the last two dims (odd trailing row/column dropped).

    Strided adds: about twice as fast as ``avg_pool2d`` on CPU.
    """
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    out = torch.add(x[..., 0:h:2, 0:w:2], x[..., 0:h:2, 1:w:2])
    return out.add_(x[..., 1:h:2, 0:w:2]).add_(x[..., 1:h:2, 1:w:2]).mul_(0.25)
