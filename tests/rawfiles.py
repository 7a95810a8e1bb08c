"""The real raw files of ../shared/data/raw and how to open the headerless ones (from its README)."""

from __future__ import annotations

from pathlib import Path

# rawpy/LibRaw opens these
LIBRAW_FILES = [
    "tinydngloader/colorchart.dng",
    "boost_gil/RAW_CANON_D30_SRGB.CRW",
    "more/blackmagic_pocket_cinema_camera_4k_12bit.dng",
    "more/skia_lg-h815_sample_1mp.dng",
    "more/skia_lg-h815_sample_1mp_rotated.dng",
]

# headerless mosaics and their layout as the data README gives it
HEADERLESS = {
    "mushfiqulalam_isp/DSC_1339_768x512_rggb.raw": dict(
        height=512, width=768, dtype="uint16", cfa="RGGB", black_level=(600.0,), white_level=15520.0
    ),
    "halide/bayer_small.png": dict(
        height=344, width=256, dtype="uint16", cfa="GRBG", black_level=(25.0,), white_level=1023.0
    ),
    "more/infinite_isp_Indoor1_2592x1536_8bit_GRBG.raw": dict(
        height=1536, width=2592, dtype="uint8", cfa="GRBG", black_level=(12.5,), white_level=255.0
    ),
}


def read_any(data_dir: Path, rel: str):
    from obscura.io.raw import read_headerless, read_raw

    path = data_dir / "raw" / rel
    if rel in HEADERLESS:
        return read_headerless(path, **HEADERLESS[rel])
    return read_raw(path)
