"""encode: the last stage, from a linear working space to a display-encoded output space, and quantization.

``encode`` converts the image to the output primaries (matrix through XYZ D50, Bradford; see
obscura.core.colour), brings out-of-gamut colours into range (``gamut=`` method) and applies the sRGB
transfer function (IEC 61966-2-1), which Display P3 shares. ``quantize`` turns [0, 1] values into integer
code values, with triangular (TPDF) dither for 8 bits so that smooth gradients do not band
(Lipshitz, Wannamaker & Vanderkooy 1992: TPDF dither of 2 LSB peak to peak makes the mean and the
variance of the quantization error independent of the signal).

Both run on tensors on the input's device: they are the tail of the pipeline, so they are written here.
"""

from __future__ import annotations

import math

import torch

from obscura.core.colour import SPACES, conversion_matrix, normalised_primary_matrix, srgb_decode
from obscura.core.errors import InvalidParameter, ShapeError
from obscura.core.registry import Registry
from obscura.core.types import Image
from obscura.isp._filters import parallel_map, parallel_threads

__all__ = [
    "ENCODED_SPACES",
    "GAMUT",
    "encode",
    "gamut_clip",
    "gamut_desaturate",
    "quantize",
    "srgb_oetf",
]

ENCODED_SPACES = ("srgb", "display_p3")

GAMUT = Registry("gamut")


# On the CPU the image is processed in chunks of pixels so that the intermediate buffers stay in cache and
# are not allocated at full size (fresh full-size tensors cost page faults: several times the arithmetic).
# On other devices the whole image is one chunk.
_CPU_CHUNK = 1 << 16  # pixels per chunk in encode
_CPU_CHUNK_Q = 1 << 18  # values per chunk in quantize (and length of the dither tile)


def _step(n: int, device: torch.device, chunk: int) -> int:
    return max(1, chunk if device.type == "cpu" else n)


@GAMUT.register("clip")
def gamut_clip(x: torch.Tensor, *, space: str) -> torch.Tensor:
    """Clip each channel to [0, 1] (hue shifts for strongly out-of-gamut colours, but simple and exact in gamut)."""
    return x.clamp(0.0, 1.0)


@GAMUT.register("desaturate")
def gamut_desaturate(x: torch.Tensor, *, space: str) -> torch.Tensor:
    """Move colours with a negative channel towards the grey of the same luminance, then clip to [0, 1].

    ``x`` is channel-first (3, ...). A pixel ``c`` with luminance ``Y`` (in ``space``) and smallest
    channel ``m < 0`` becomes ``Y + t·(c − Y)`` with ``t = Y / (Y − m)``: the hue (in the RGB plane) and
    the luminance are kept and the smallest channel lands on 0. Colours in gamut are unchanged; values
    above 1 are then clipped.
    """
    s = SPACES[space]
    w = torch.as_tensor(normalised_primary_matrix(s.primaries, s.white)[1], dtype=x.dtype, device=x.device)
    y = torch.tensordot(w, x, dims=1).clamp_min(0.0).unsqueeze(0)
    m = x.amin(dim=0, keepdim=True)
    t = torch.where(m < 0, y / (y - m).clamp_min(1e-12), torch.ones_like(m))
    return (y + t * (x - y)).clamp(0.0, 1.0)


_THR = 0.0031308  # the sRGB curve is linear (slope 12.92) up to here
_LOG2_A = math.log2(1.055)


def _srgb_power(x: torch.Tensor) -> torch.Tensor:
    """1.055·max(x, thr)^(1/2.4) − 0.055 as 2^(log2(x)/2.4 + log2 1.055) (half the cost of pow on CPU)."""
    return torch.clamp_min(x, _THR).log2_().mul_(1 / 2.4).add_(_LOG2_A).exp2_().sub_(0.055)


def srgb_oetf(x: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """The sRGB encoding (IEC 61966-2-1) of values in [0, 1].

    Unlike ``core.colour.srgb_encode`` it does not mirror negatives (the input is already in gamut),
    which saves three passes over the image; ``out`` receives the result when given.

    Computed without ``where``: with ``p = power(max(x, thr))`` and ``p0 = power(thr)``, the result is
    ``p + min(12.92·x − p0, 0)``: for ``x > thr`` the linear part lies above the curve (the curve is
    concave and the two pieces meet at ``thr``), so this is ``p``; for ``x ≤ thr`` it is ``12.92·x`` up to
    float rounding (``p = p0`` there).
    """
    p0 = _srgb_power(torch.full((1,), _THR, dtype=x.dtype, device=x.device))
    lo = torch.mul(x, 12.92).sub_(p0).clamp_max_(0.0)
    hi = _srgb_power(x)
    return torch.add(hi, lo, out=out) if out is not None else hi.add_(lo)


def encode(image: Image, *, space: str = "srgb", gamut: str = "clip") -> Image:
    """Convert ``image`` (any linear or encoded space but ``camera``) to the encoded ``space``, values in [0, 1].

    ``space``: ``"srgb"`` or ``"display_p3"``. ``gamut``: how out-of-range values are brought into
    [0, 1] after the matrix: ``"clip"`` (per channel) or ``"desaturate"`` (towards grey at constant
    luminance, then clip). NaN stays NaN (callers check for it); ``meta`` is kept.
    """
    if not isinstance(image, Image):
        raise ShapeError(f"encode expects an Image; got {type(image).__name__}")
    if space not in ENCODED_SPACES:
        raise InvalidParameter(f"output space must be one of {', '.join(ENCODED_SPACES)}; got {space!r}")
    fn = GAMUT.get(gamut)
    src = SPACES[image.space]
    if src.name == "camera":
        raise InvalidParameter("cannot encode an image in camera space: convert it with isp.colour first")
    x = image.data
    if not x.is_floating_point():
        raise ShapeError(f"encode expects a floating-point image; got {x.dtype}")
    dst_linear = SPACES[space].linear
    m = None
    if src.linear != dst_linear:
        m = torch.as_tensor(conversion_matrix(src.linear, dst_linear), dtype=x.dtype, device=x.device)
    _, h, w = x.shape
    flat = x.reshape(3, h * w)
    out = torch.empty_like(flat)
    n = flat.shape[1]
    step = _step(n, x.device, _CPU_CHUNK)

    def one(s: int) -> None:
        c = flat[:, s : s + step]
        if src.transfer == "srgb":
            c = srgb_decode(c)
        if m is not None:
            c = torch.mm(m, c)
        srgb_oetf(fn(c, space=dst_linear), out=out[:, s : s + step])

    parallel_map(one, range(0, n, step), threads=parallel_threads(x.device))
    return Image(out.view(3, h, w), space, image.meta)


def quantize(x: torch.Tensor, *, bits: int = 8, dither: bool = True, seed: int | None = None) -> torch.Tensor:
    """Values in [0, 1] to integer code values: ``uint8`` for 8 bits, ``int32`` for 10 and 16 bits.

    8 bits: triangular (TPDF) dither of ±1 code value (the difference of two uniform variables) before
    rounding, deterministic for a given ``seed`` (and device); ``dither=False`` rounds. 10 and 16 bits:
    plain rounding (the steps are far below visibility). Values outside [0, 1] are clipped, NaN becomes 0.

    On the CPU, for more than 2^18 values, the dither is read from a tile of 2^19 independent TPDF values
    at a random offset per chunk of 2^18 values instead of drawn afresh for every value: random
    generation would otherwise cost more than the rest of encoding, and a repetition shifted at random,
    hundreds of kilopixels apart, is invisible.
    """
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"quantize expects a torch.Tensor; got {type(x).__name__}")
    if not x.is_floating_point():
        raise ShapeError(f"quantize expects floating-point values in [0, 1]; got {x.dtype}")
    if bits not in (8, 10, 16) or isinstance(bits, bool):
        raise InvalidParameter(f"bits must be 8, 10 or 16; got {bits!r}")
    top = float((1 << bits) - 1)
    flat = x.reshape(-1)
    n = flat.numel()
    out = torch.empty(n, dtype=torch.uint8 if bits == 8 else torch.int32, device=x.device)
    step = _step(n, x.device, _CPU_CHUNK_Q)
    noise = offsets = None
    if bits == 8 and dither and n:
        g = torch.Generator(device=x.device)
        if seed is None:
            g.seed()
        else:
            g.manual_seed(int(seed))
        length = n if n <= step else 2 * step
        noise = torch.rand(length, generator=g, device=x.device)
        noise.sub_(torch.rand(length, generator=g, device=x.device))
        chunks = (n + step - 1) // step
        offsets = [0] if n <= step else torch.randint(0, step, (chunks,), generator=g, device="cpu").tolist()
    for i, s in enumerate(range(0, n, step)):
        c = flat[s : s + step].float().mul(top).nan_to_num_(nan=0.0, posinf=top, neginf=0.0)
        if noise is not None:
            o = offsets[i]
            c.add_(noise[o : o + c.numel()])
        out[s : s + step].copy_(c.round_().clamp_(0.0, top))
    return out.view(x.shape)
