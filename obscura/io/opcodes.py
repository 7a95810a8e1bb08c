"""DNG opcode lists (OpcodeList1/2/3) to and from :class:`~obscura.core.types.DngOpcode`.

Layout per the DNG specification 1.4 (Adobe, 2012), chapter 6 "Opcode List Processing": every
value is big-endian; a list is ``uint32 count`` followed by opcodes, each ``uint32 id``,
``uint32 version`` (DNG version bytes), ``uint32 flags`` (bit 0 optional, bit 1 skip for previews),
``uint32 byte count`` and the parameters. WarpRectilinear2 (id 14) follows DNG 1.6.

Parameters are parsed into ``DngOpcode.params`` with the field names the specification uses
(snake case); opcode ids obscura does not know keep ``{"data": bytes}`` so that they are written
back unchanged. ``parse_opcode_list(serialize_opcode_list(ops)) == ops`` for every list this module
parses.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from obscura.core.errors import CorruptFile, InvalidParameter
from obscura.core.types import DngOpcode

__all__ = ["OPCODE_NAMES", "parse_opcode_list", "serialize_opcode_list", "make_opcode"]

OPCODE_NAMES: dict[int, str] = {
    1: "WarpRectilinear",
    2: "WarpFisheye",
    3: "FixVignetteRadial",
    4: "FixBadPixelsConstant",
    5: "FixBadPixelsList",
    6: "TrimBounds",
    7: "MapTable",
    8: "MapPolynomial",
    9: "GainMap",
    10: "DeltaPerRow",
    11: "DeltaPerColumn",
    12: "ScalePerRow",
    13: "ScalePerColumn",
    14: "WarpRectilinear2",
}
_IDS = {v: k for k, v in OPCODE_NAMES.items()}

_AREA_KEYS = ("top", "left", "bottom", "right", "plane", "planes", "row_pitch", "col_pitch")
_WARP2_RADIAL = 15  # DNG 1.6: kr0..kr14, then kt0, kt1


class _Reader:
    """Big-endian cursor over one opcode's parameter bytes."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.pos = 0
        self.name = name

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(">" + fmt)
        if self.pos + size > len(self.data):
            raise CorruptFile(
                f"DNG opcode {self.name}: parameters end after {len(self.data)} bytes, needed {self.pos + size}"
            )
        out = struct.unpack_from(">" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def u32(self) -> int:
        return int(self.take("I")[0])

    def doubles(self, n: int) -> tuple[float, ...]:
        return tuple(float(v) for v in self.take(f"{n}d")) if n else ()

    def floats(self, n: int) -> tuple[float, ...]:
        return tuple(float(v) for v in self.take(f"{n}f")) if n else ()

    def done(self) -> None:
        if self.pos != len(self.data):
            raise CorruptFile(f"DNG opcode {self.name}: {len(self.data) - self.pos} unexpected trailing bytes")


def _area(r: _Reader) -> dict[str, int]:
    return dict(zip(_AREA_KEYS, r.take("8I"), strict=True))


def _parse_params(op_id: int, data: bytes) -> dict[str, Any]:
    name = OPCODE_NAMES[op_id]
    r = _Reader(data, name)
    p: dict[str, Any]
    if op_id in (1, 2, 14):
        planes = r.u32()
        n = {1: 6, 2: 4, 14: _WARP2_RADIAL + 2}[op_id]
        coeffs = tuple(r.doubles(n) for _ in range(planes))
        cx, cy = r.doubles(2)
        p = {"planes": planes, "coefficients": coeffs, "center_x": cx, "center_y": cy}
        if op_id == 14:
            p["reciprocal_radial"] = r.u32()
    elif op_id == 3:
        k = r.doubles(5)
        cx, cy = r.doubles(2)
        p = {"k": k, "center_x": cx, "center_y": cy}
    elif op_id == 4:
        constant, phase = r.take("2I")
        p = {"constant": constant, "bayer_phase": phase}
    elif op_id == 5:
        phase, n_points, n_rects = r.take("3I")
        points = tuple(tuple(r.take("2I")) for _ in range(n_points))
        rects = tuple(tuple(r.take("4I")) for _ in range(n_rects))
        p = {"bayer_phase": phase, "bad_points": points, "bad_rects": rects}
    elif op_id == 6:
        p = dict(zip(("top", "left", "bottom", "right"), r.take("4I"), strict=True))
    elif op_id == 7:
        p = _area(r)
        n = r.u32()
        p["table"] = tuple(int(v) for v in r.take(f"{n}H")) if n else ()
    elif op_id == 8:
        p = _area(r)
        degree = r.u32()
        p["coefficients"] = r.doubles(degree + 1)
    elif op_id == 9:
        p = _area(r)
        pv, ph = r.take("2I")
        sv, sh, ov, oh = r.doubles(4)
        mp = r.u32()
        p.update(
            map_points_v=pv,
            map_points_h=ph,
            map_spacing_v=sv,
            map_spacing_h=sh,
            map_origin_v=ov,
            map_origin_h=oh,
            map_planes=mp,
            gains=r.floats(pv * ph * mp),
        )
    else:  # 10..13
        p = _area(r)
        n = r.u32()
        p["deltas" if op_id in (10, 11) else "scales"] = r.floats(n)
    r.done()
    return p


def parse_opcode_list(data: bytes) -> tuple[DngOpcode, ...]:
    """Parse a DNG OpcodeList tag value (DNG 1.4 §6) into DngOpcodes; unknown ids keep raw ``data``."""
    data = bytes(data)
    if len(data) < 4:
        raise CorruptFile(f"DNG opcode list is {len(data)} bytes long; needs at least 4")
    (count,) = struct.unpack_from(">I", data, 0)
    pos = 4
    ops = []
    for i in range(count):
        if pos + 16 > len(data):
            raise CorruptFile(f"DNG opcode list ends inside the header of opcode {i} of {count}")
        op_id, version, flags, size = struct.unpack_from(">4I", data, pos)
        pos += 16
        if pos + size > len(data):
            raise CorruptFile(f"DNG opcode {i} (id {op_id}) claims {size} bytes; only {len(data) - pos} remain")
        body = data[pos : pos + size]
        pos += size
        if op_id in OPCODE_NAMES:
            params: dict[str, Any] = _parse_params(op_id, body)
            name = OPCODE_NAMES[op_id]
        else:
            params = {"data": body}
            name = f"Unknown{op_id}"
        ops.append(DngOpcode(id=op_id, name=name, version=version, flags=flags, params=params))
    return tuple(ops)


def _need(params: Mapping[str, Any], key: str, name: str) -> Any:
    if key not in params:
        raise InvalidParameter(f"DNG opcode {name} needs parameter {key!r}; got keys {sorted(params)}")
    return params[key]


def _pack_area(p: Mapping[str, Any], name: str) -> bytes:
    return struct.pack(">8I", *(int(_need(p, k, name)) for k in _AREA_KEYS))


def _serialize_params(op: DngOpcode) -> bytes:
    p, i, name = op.params, op.id, op.name
    if i not in OPCODE_NAMES:
        return bytes(_need(p, "data", name))
    if i in (1, 2, 14):
        coeffs = _need(p, "coefficients", name)
        n = {1: 6, 2: 4, 14: _WARP2_RADIAL + 2}[i]
        planes = int(p.get("planes", len(coeffs)))
        if planes != len(coeffs) or any(len(c) != n for c in coeffs):
            raise InvalidParameter(f"DNG opcode {name} needs {planes} planes of {n} coefficients; got {coeffs!r}")
        out = struct.pack(">I", planes) + b"".join(struct.pack(f">{n}d", *c) for c in coeffs)
        out += struct.pack(">2d", _need(p, "center_x", name), _need(p, "center_y", name))
        if i == 14:
            out += struct.pack(">I", int(p.get("reciprocal_radial", 0)))
        return out
    if i == 3:
        k = tuple(_need(p, "k", name))
        if len(k) != 5:
            raise InvalidParameter(f"FixVignetteRadial needs 5 coefficients k; got {len(k)}")
        return struct.pack(">7d", *k, _need(p, "center_x", name), _need(p, "center_y", name))
    if i == 4:
        return struct.pack(">2I", int(_need(p, "constant", name)), int(_need(p, "bayer_phase", name)))
    if i == 5:
        pts = tuple(p.get("bad_points", ()))
        rects = tuple(p.get("bad_rects", ()))
        out = struct.pack(">3I", int(_need(p, "bayer_phase", name)), len(pts), len(rects))
        out += b"".join(struct.pack(">2I", *map(int, pt)) for pt in pts)
        return out + b"".join(struct.pack(">4I", *map(int, rc)) for rc in rects)
    if i == 6:
        return struct.pack(">4I", *(int(_need(p, k, name)) for k in ("top", "left", "bottom", "right")))
    area = _pack_area(p, name)
    if i == 7:
        table = tuple(_need(p, "table", name))
        return area + struct.pack(f">I{len(table)}H", len(table), *table)
    if i == 8:
        c = tuple(_need(p, "coefficients", name))
        if not c:
            raise InvalidParameter("MapPolynomial needs at least one coefficient; got 0")
        return area + struct.pack(f">I{len(c)}d", len(c) - 1, *c)
    if i == 9:
        pv, ph, mp = (int(_need(p, k, name)) for k in ("map_points_v", "map_points_h", "map_planes"))
        gains = tuple(_need(p, "gains", name))
        if len(gains) != pv * ph * mp:
            raise InvalidParameter(f"GainMap needs {pv}*{ph}*{mp} = {pv * ph * mp} gains; got {len(gains)}")
        head = struct.pack(
            ">2I4dI",
            pv,
            ph,
            *(float(_need(p, k, name)) for k in ("map_spacing_v", "map_spacing_h", "map_origin_v", "map_origin_h")),
            mp,
        )
        return area + head + struct.pack(f">{len(gains)}f", *gains)
    key = "deltas" if i in (10, 11) else "scales"
    vals = tuple(_need(p, key, name))
    return area + struct.pack(f">I{len(vals)}f", len(vals), *vals)


def serialize_opcode_list(ops: Iterable[DngOpcode]) -> bytes:
    """Bytes of a DNG OpcodeList tag (DNG 1.4 §6, big-endian) holding ``ops`` in order."""
    ops = tuple(ops)
    parts = [struct.pack(">I", len(ops))]
    for op in ops:
        if not isinstance(op, DngOpcode):
            raise InvalidParameter(f"opcode lists hold DngOpcode values; got {type(op).__name__}")
        body = _serialize_params(op)
        parts.append(struct.pack(">4I", op.id, op.version, op.flags, len(body)))
        parts.append(body)
    return b"".join(parts)


def make_opcode(name: str, *, version: int = 0x01030000, flags: int = 0, **params: Any) -> DngOpcode:
    """Build a DngOpcode by its specification name, e.g. ``make_opcode("TrimBounds", top=0, ...)``.

    The parameters are normalised the way :func:`parse_opcode_list` returns them (tuples, floats), so
    that a built opcode compares equal to the same opcode read back from a file.
    """
    if name not in _IDS:
        raise InvalidParameter(f"unknown DNG opcode {name!r}; valid: {', '.join(_IDS)}")
    op = DngOpcode(id=_IDS[name], name=name, version=version, flags=flags, params=dict(params))
    return parse_opcode_list(serialize_opcode_list([op]))[0]
