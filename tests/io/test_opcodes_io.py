"""DNG opcode lists: hand-built byte strings per opcode (DNG 1.4 §6) and round trips."""

from __future__ import annotations

import struct

import pytest

from obscura.core.errors import CorruptFile, InvalidParameter
from obscura.core.types import DngOpcode
from obscura.io.opcodes import make_opcode, parse_opcode_list, serialize_opcode_list

AREA = struct.pack(">8I", 1, 2, 30, 40, 0, 3, 2, 2)
AREA_KEYS = {"top": 1, "left": 2, "bottom": 30, "right": 40, "plane": 0, "planes": 3, "row_pitch": 2, "col_pitch": 2}


def _one(op_id: int, body: bytes, flags: int = 1) -> bytes:
    return struct.pack(">I", 1) + struct.pack(">4I", op_id, 0x01030000, flags, len(body)) + body


CASES = [
    (
        1,
        struct.pack(">I", 1) + struct.pack(">6d", 1.0, 0.1, -0.2, 0.3, 0.01, -0.02) + struct.pack(">2d", 0.5, 0.4),
        {"planes": 1, "coefficients": ((1.0, 0.1, -0.2, 0.3, 0.01, -0.02),), "center_x": 0.5, "center_y": 0.4},
    ),
    (
        2,
        struct.pack(">I", 2) + struct.pack(">8d", 1, 2, 3, 4, 5, 6, 7, 8) + struct.pack(">2d", 0.25, 0.75),
        {"planes": 2, "coefficients": ((1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0)), "center_x": 0.25, "center_y": 0.75},
    ),
    (
        3,
        struct.pack(">7d", 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
        {"k": (0.1, 0.2, 0.3, 0.4, 0.5), "center_x": 0.6, "center_y": 0.7},
    ),
    (4, struct.pack(">2I", 0, 1), {"constant": 0, "bayer_phase": 1}),
    (
        5,
        struct.pack(">3I", 2, 2, 1) + struct.pack(">4I", 5, 6, 7, 8) + struct.pack(">4I", 10, 11, 12, 13),
        {"bayer_phase": 2, "bad_points": ((5, 6), (7, 8)), "bad_rects": ((10, 11, 12, 13),)},
    ),
    (6, struct.pack(">4I", 8, 9, 100, 200), {"top": 8, "left": 9, "bottom": 100, "right": 200}),
    (7, AREA + struct.pack(">I3H", 3, 0, 500, 65535), {**AREA_KEYS, "table": (0, 500, 65535)}),
    (8, AREA + struct.pack(">I3d", 2, 0.0, 1.5, -0.25), {**AREA_KEYS, "coefficients": (0.0, 1.5, -0.25)}),
    (
        9,
        AREA + struct.pack(">2I4dI", 2, 3, 0.5, 0.25, 0.1, 0.2, 1) + struct.pack(">6f", 1.0, 1.5, 2.0, 0.5, 0.25, 3.0),
        {
            **AREA_KEYS,
            "map_points_v": 2,
            "map_points_h": 3,
            "map_spacing_v": 0.5,
            "map_spacing_h": 0.25,
            "map_origin_v": 0.1,
            "map_origin_h": 0.2,
            "map_planes": 1,
            "gains": (1.0, 1.5, 2.0, 0.5, 0.25, 3.0),
        },
    ),
    (10, AREA + struct.pack(">I2f", 2, 0.5, -1.5), {**AREA_KEYS, "deltas": (0.5, -1.5)}),
    (11, AREA + struct.pack(">I1f", 1, 2.0), {**AREA_KEYS, "deltas": (2.0,)}),
    (12, AREA + struct.pack(">I2f", 2, 1.25, 0.75), {**AREA_KEYS, "scales": (1.25, 0.75)}),
    (13, AREA + struct.pack(">I0f", 0), {**AREA_KEYS, "scales": ()}),
    (
        14,
        struct.pack(">I", 1) + struct.pack(">17d", *range(17)) + struct.pack(">2dI", 0.5, 0.5, 1),
        {
            "planes": 1,
            "coefficients": (tuple(float(i) for i in range(17)),),
            "center_x": 0.5,
            "center_y": 0.5,
            "reciprocal_radial": 1,
        },
    ),
]


@pytest.mark.parametrize(("op_id", "body", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_parse_hand_built_fields(op_id, body, expected):
    (op,) = parse_opcode_list(_one(op_id, body))
    assert op.id == op_id and op.version == 0x01030000 and op.flags == 1
    assert dict(op.params) == expected
    assert serialize_opcode_list([op]) == _one(op_id, body)  # byte-exact round trip


def test_unknown_opcode_keeps_bytes_and_round_trips():
    raw = _one(99, b"\x01\x02\x03")
    (op,) = parse_opcode_list(raw)
    assert op.params == {"data": b"\x01\x02\x03"}
    assert serialize_opcode_list([op]) == raw


def test_round_trip_of_a_list():
    ops = tuple(parse_opcode_list(_one(i, b))[0] for i, b, _ in CASES)
    data = serialize_opcode_list(ops)
    assert struct.unpack(">I", data[:4])[0] == len(CASES)
    assert parse_opcode_list(data) == ops


def test_make_opcode_normalises():
    op = make_opcode("TrimBounds", top=1, left=2, bottom=3, right=4)
    assert op == DngOpcode(id=6, name="TrimBounds", params={"top": 1, "left": 2, "bottom": 3, "right": 4})


def test_bad_inputs():
    with pytest.raises(CorruptFile):
        parse_opcode_list(b"\x00\x00")
    with pytest.raises(CorruptFile):
        parse_opcode_list(_one(6, struct.pack(">3I", 1, 2, 3)))  # TrimBounds needs 16 bytes
    with pytest.raises(CorruptFile):
        parse_opcode_list(struct.pack(">I", 2) + _one(6, struct.pack(">4I", 1, 2, 3, 4))[4:])  # says 2, holds 1
    with pytest.raises(InvalidParameter):
        make_opcode(
            "GainMap",
            **AREA_KEYS,
            map_points_v=2,
            map_points_h=2,
            map_spacing_v=1,
            map_spacing_h=1,
            map_origin_v=0,
            map_origin_h=0,
            map_planes=1,
            gains=(1.0,),
        )
    with pytest.raises(InvalidParameter):
        make_opcode("NoSuchOpcode")
