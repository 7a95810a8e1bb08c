"""``obscura simulate``: DNGs plus ground truth from the command line; bad input exits 2 with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from obscura.cli.main import main
from obscura.io.raw import read_raw


@pytest.fixture
def scene_png(tmp_path):
    g = np.random.default_rng(0)
    x = (g.random((24, 32, 3)) * 255).astype(np.uint8)
    p = tmp_path / "scene.png"
    PILImage.fromarray(x).resize((128, 96), PILImage.BICUBIC).save(p)
    return p


def test_list_cameras(capsys) -> None:
    assert main(["simulate", "--list-cameras"]) == 0
    out = capsys.readouterr().out
    for name in ("phone-main", "phone-tele", "phone-ultrawide", "fullframe", "monochrome"):
        assert name in out


def test_burst_with_settings(tmp_path, scene_png) -> None:
    out = tmp_path / "out"
    rc = main(
        [
            "simulate", str(scene_png), "-o", str(out), "--camera", "phone-main", "--iso", "3200",
            "--exposure", "1/30", "--burst", "3", "--size", "96x128", "--seed", "4", "--quiet",
        ]
    )  # fmt: skip
    assert rc == 0
    dngs = sorted(out.glob("frame_*.dng"))
    assert len(dngs) == 3
    f = read_raw(dngs[0])
    assert f.meta.iso == 3200 and f.meta.exposure_time == pytest.approx(1 / 30)
    motion = json.loads((out / "truth" / "motion.json").read_text())
    assert len(motion["frames"]) == 3 and any(abs(m["dx"]) > 0 for m in motion["frames"])
    # the scene was lit so that the chosen settings meter correctly: the frame is neither black nor clipped
    x = (f.data - f.meta.black_level[0]) / (f.meta.white_level - f.meta.black_level[0])
    assert 0.03 < float(x.mean()) < 0.6
    # same seed, same files
    out2 = tmp_path / "out2"
    main(["simulate", str(scene_png), "-o", str(out2), "--iso", "3200", "--exposure", "1/30", "--burst", "3",
          "--size", "96x128", "--seed", "4", "--quiet"])  # fmt: skip
    assert (out2 / "frame_01.dng").read_bytes() == (out / "frame_01.dng").read_bytes()


def test_brackets_and_chart(tmp_path) -> None:
    out = tmp_path / "b"
    rc = main(["simulate", "colorchecker", "-o", str(out), "--camera", "fullframe", "--brackets", "-2,0,2",
               "--size", "96x144", "--tripod", "--quiet"])  # fmt: skip
    assert rc == 0
    times = [read_raw(p).meta.exposure_time for p in sorted(out.glob("*.dng"))]
    assert times[0] * 4 == pytest.approx(times[1]) and times[1] * 4 == pytest.approx(times[2])
    clean = read_raw(sorted(out.glob("*.dng"))[1])
    assert clean.data.shape == (96, 144) and torch.isfinite(clean.data).all()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--camera", "nope"], "valid"),
        (["--iso", "0"], "iso"),
        (["--exposure", "-1/30"], "exposure"),
        (["--exposure", "abc"], "exposure"),
        (["--f-number", "0.3"], "f_number"),
        (["--brackets", "a,b"], "brackets"),
        (["--size", "10x"], "size"),
        (["--burst", "0"], "burst"),
    ],
)
def test_bad_input_exit_2(tmp_path, scene_png, capsys, args, needle) -> None:
    rc = main(["simulate", str(scene_png), "-o", str(tmp_path / "o"), "--size", "96x128", "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("obscura: error:") and len(err.splitlines()) == 1 and needle in err.lower(), err


def test_missing_scene_and_existing_output(tmp_path, scene_png, capsys) -> None:
    assert main(["simulate", str(tmp_path / "none.png"), "-o", str(tmp_path / "o"), "--quiet"]) == 2
    assert "none.png" in capsys.readouterr().err
    out = tmp_path / "keep"
    assert main(["simulate", str(scene_png), "-o", str(out), "--size", "96x128", "--quiet"]) == 0
    before = (out / "frame_00.dng").read_bytes()
    assert main(["simulate", str(scene_png), "-o", str(out), "--size", "96x128", "--seed", "9", "--quiet"]) == 2
    assert "exists" in capsys.readouterr().err
    assert (out / "frame_00.dng").read_bytes() == before
