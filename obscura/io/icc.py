"""ICC profiles for the output spaces: a small writer of ICC v4.3 matrix/TRC display profiles.

Why our own writer: Pillow's ImageCms (LittleCMS) can only create sRGB, LAB and XYZ profiles, not
Display P3 nor linear variants, and no other well-kept Python library writes ICC profiles.

A profile (ICC.1:2022, v4.3) is a 128-byte header, a tag table and the tag data. Ours are display
("mntr") RGB profiles with XYZ as connection space holding: ``desc`` and ``cprt`` (multiLocalizedUnicode),
``wtpt`` (D50, as v4 requires for display profiles), ``chad`` (the Bradford adaptation from the space's
white to D50; Lam 1985), ``rXYZ/gXYZ/bXYZ`` (the D50-adapted colorants) and ``rTRC/gTRC/bTRC``: the sRGB
curve as a parametric curve of type 3 (g = 2.4, a = 1/1.055, b = 0.055/1.055, c = 1/12.92, d = 0.04045),
or gamma 1.0 for the linear variants (used by float TIFFs).
"""

from __future__ import annotations

import hashlib
import struct
from functools import cache

import numpy as np

from obscura.core.colour import SPACES, XYZ_to_xy, bradford_matrix, normalised_primary_matrix
from obscura.core.errors import CorruptFile, InvalidParameter

__all__ = ["ICC_SPACES", "icc_profile", "icc_colorants", "icc_space", "icc_description"]

# The PCS illuminant as the ICC specifies it (ICC.1 §7.2.16), exactly representable in s15Fixed16.
_PCS_D50 = np.array([0x0000F6D6, 0x00010000, 0x0000D32D]) / 65536.0
ICC_SPACES = ("srgb", "display_p3", "linear_srgb", "linear_p3", "linear_prophoto", "linear_rec2020")
_SRGB_PARA = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
_COPYRIGHT = "No copyright, use freely (written by obscura)"


def _s15f16(v: float) -> bytes:
    return struct.pack(">i", round(float(v) * 65536.0))


def _xyz_type(xyz: np.ndarray) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15f16(v) for v in xyz)


def _mluc(text: str) -> bytes:
    s = text.encode("utf-16-be")
    # header (type, reserved, record count, record size), one record (en-US, length, offset), the string
    return b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(s), 28) + s


def _para(params: tuple[float, ...]) -> bytes:
    kind = {1: 0, 3: 1, 4: 2, 5: 3, 7: 4}[len(params)]
    return b"para\0\0\0\0" + struct.pack(">HH", kind, 0) + b"".join(_s15f16(p) for p in params)


def _sf32(m: np.ndarray) -> bytes:
    return b"sf32\0\0\0\0" + b"".join(_s15f16(v) for v in m.reshape(-1))


def _colorants(space: str) -> tuple[np.ndarray, np.ndarray]:
    """(chad, the 3×3 D50-adapted RGB → XYZ matrix quantized so that its rows sum to the PCS white)."""
    s = SPACES[space]
    d50_xy = tuple(XYZ_to_xy(_PCS_D50))
    chad = bradford_matrix(s.white, d50_xy)
    m = chad @ normalised_primary_matrix(s.primaries, s.white)
    # Quantize to s15Fixed16 and move the rounding error of each row onto its largest entry, so that
    # RGB white maps exactly on the PCS white (as ICC.1 Annex F recommends).
    q = np.round(m * 65536.0)
    target = np.round(_PCS_D50 * 65536.0)
    for i in range(3):
        q[i, int(np.argmax(np.abs(q[i])))] += target[i] - q[i].sum()
    return chad, q / 65536.0


def _build(space: str) -> bytes:
    s = SPACES[space]
    linear = s.transfer == "linear"
    chad, m = _colorants(space)
    trc = _para((1.0,)) if linear else _para(_SRGB_PARA)
    name = s.icc_name or space
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _mluc(name)),
        (b"cprt", _mluc(_COPYRIGHT)),
        (b"wtpt", _xyz_type(_PCS_D50)),
        (b"chad", _sf32(chad)),
        (b"rXYZ", _xyz_type(m[:, 0])),
        (b"gXYZ", _xyz_type(m[:, 1])),
        (b"bXYZ", _xyz_type(m[:, 2])),
        (b"rTRC", trc),
        (b"gTRC", trc),
        (b"bTRC", trc),
    ]
    table_end = 128 + 4 + 12 * len(tags)
    data = bytearray()
    entries = []
    shared: dict[bytes, int] = {}  # identical elements (the three TRCs) are stored once
    for sig, elem in tags:
        if elem not in shared:
            shared[elem] = table_end + len(data)
            data += elem + b"\0" * (-len(elem) % 4)  # every element starts on a 4-byte boundary
        entries.append(struct.pack(">4sII", sig, shared[elem], len(elem)))
    body = struct.pack(">I", len(tags)) + b"".join(entries) + bytes(data)
    size = 128 + len(body)
    header = bytearray(128)
    struct.pack_into(">I4sI4s4s4s", header, 0, size, b"\0\0\0\0", 0x04300000, b"mntr", b"RGB ", b"XYZ ")
    struct.pack_into(">6H", header, 24, 2026, 1, 1, 0, 0, 0)  # fixed date: the same bytes on every run
    header[36:40] = b"acsp"
    struct.pack_into(">I", header, 64, 0)  # rendering intent: perceptual
    header[68:80] = b"".join(_s15f16(v) for v in _PCS_D50)
    header[80:84] = b"obsc"  # profile creator
    profile = bytearray(header) + body
    # Profile ID (ICC.1 §7.2.18): MD5 of the profile with flags, rendering intent and the ID zeroed.
    profile[84:100] = hashlib.md5(bytes(profile), usedforsecurity=False).digest()
    return bytes(profile)


@cache
def icc_profile(space: str) -> bytes:
    """The ICC v4.3 display profile of ``space`` (``srgb``, ``display_p3`` or a linear RGB space)."""
    if space not in ICC_SPACES:
        raise InvalidParameter(f"no ICC profile for colour space {space!r}; valid: {', '.join(ICC_SPACES)}")
    return _build(space)


def _tags(profile: bytes) -> dict[bytes, bytes]:
    if len(profile) < 132 or profile[36:40] != b"acsp":
        raise CorruptFile("not an ICC profile (no 'acsp' signature)")
    (count,) = struct.unpack_from(">I", profile, 128)
    out = {}
    for i in range(min(count, (len(profile) - 132) // 12)):
        sig, off, n = struct.unpack_from(">4sII", profile, 132 + 12 * i)
        out[sig] = profile[off : off + n]
    return out


def icc_colorants(profile: bytes) -> np.ndarray | None:
    """The (3, 3) RGB → XYZ D50 matrix of a matrix/TRC ICC profile (columns rXYZ, gXYZ, bXYZ), or None."""
    t = _tags(profile)
    cols = []
    for sig in (b"rXYZ", b"gXYZ", b"bXYZ"):
        e = t.get(sig, b"")
        if len(e) < 20 or e[:4] != b"XYZ ":
            return None
        cols.append([v / 65536.0 for v in struct.unpack_from(">3i", e, 8)])
    return np.array(cols).T


def _is_linear_trc(e: bytes) -> bool:
    if e[:4] == b"curv":
        (n,) = struct.unpack_from(">I", e, 8)
        return n == 0 or (n == 1 and struct.unpack_from(">H", e, 12)[0] == 256)
    if e[:4] == b"para":
        kind, _ = struct.unpack_from(">HH", e, 8)
        return kind == 0 and abs(struct.unpack_from(">i", e, 12)[0] / 65536.0 - 1.0) < 1e-3
    return False


def icc_space(profile: bytes, *, tolerance: float = 2e-3) -> str | None:
    """The obscura colour space a matrix/TRC RGB profile describes (matched on its colorants and curve),
    or None when it matches none of ``ICC_SPACES``."""
    m = icc_colorants(profile)
    if m is None or profile[16:20] != b"RGB ":
        return None
    linear = _is_linear_trc(_tags(profile).get(b"gTRC", b""))
    for name in ICC_SPACES:
        if (SPACES[name].transfer == "linear") != linear:
            continue
        if np.abs(_colorants(name)[1] - m).max() < tolerance:
            return name
    return None


def icc_description(profile: bytes) -> str:
    """The profile's description (``desc`` tag, mluc or v2 text), '' when absent."""
    e = _tags(profile).get(b"desc", b"")
    if e[:4] == b"mluc" and len(e) >= 28:
        n, off = struct.unpack_from(">II", e, 20)
        return e[off : off + n].decode("utf-16-be", errors="replace")
    if e[:4] == b"desc" and len(e) >= 12:
        (n,) = struct.unpack_from(">I", e, 8)
        return e[12 : 12 + n].rstrip(b"\0").decode("latin-1")
    return ""
