"""isp.highlights: clipped-highlight handling on synthetic scenes with known truth."""

from __future__ import annotations

import math

import pytest
import torch

from obscura.core.errors import InvalidParameter, ShapeError, UnknownMethod
from obscura.isp import highlights as hl

METHODS = ["clip", "blend", "reconstruct"]
SAT = torch.tensor([2.0, 1.0, 1.5])  # white level 1 × WB gains (R, G, B): G clips first, then B, then R


def _grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")


def gradient_scene() -> torch.Tensor:
    """A horizontal exposure ramp (0.2 → 3.0) of a slowly changing colour."""
    yy, xx = _grid(240, 320)
    lum = 0.2 + 2.8 * xx
    return torch.stack([0.8 + 0.4 * yy, 1.0 + 0.1 * xx, 1.2 - 0.4 * yy]) * lum


def lamp_scene() -> torch.Tensor:
    """A bright round light on a dimmer surround, colour varying slowly across the frame."""
    yy, xx = _grid(200, 300)
    lum = 0.3 + 2.5 * torch.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.04)
    return torch.stack([1 + 0.3 * xx, 1 + 0.0 * xx, 1 - 0.3 * yy + 0.1 * xx]) * lum


def sensor_clip(truth: torch.Tensor, sat: torch.Tensor = SAT) -> torch.Tensor:
    return torch.minimum(truth, sat.to(truth)[:, None, None])


def _errors(out, truth, observed):
    clipped = observed >= 0.99 * SAT[:, None, None]
    partial = clipped.any(0) & ~clipped.all(0)
    full = clipped.all(0)
    rmse = (out - truth).pow(2).mean(0).sqrt()
    return float(rmse[partial].mean()), float(rmse[full].mean())


@pytest.mark.parametrize(
    "scene,limits",
    [
        # measured (partly clipped / all clipped RMSE): clip 0.568 / 1.578, blend 0.311 / 1.088,
        # reconstruct 0.126 / 0.636
        (gradient_scene, {"partial": 0.16, "ratio": 0.3}),
        # clip 0.368 / 1.270, blend 0.172 / 0.786, reconstruct 0.008 / 0.489
        (lamp_scene, {"partial": 0.02, "ratio": 0.05}),
    ],
)
def test_reconstruct_is_closer_to_the_truth_than_clip(scene, limits):
    truth = scene()
    obs = sensor_clip(truth)
    part = {m: _errors(hl.reconstruct_highlights(obs, saturation=SAT, method=m), truth, obs) for m in METHODS}
    assert part["reconstruct"][0] < limits["partial"]
    assert part["reconstruct"][0] < limits["ratio"] * part["clip"][0]
    assert part["reconstruct"][1] < 0.5 * part["clip"][1]  # all channels clipped: still better than clip
    assert part["blend"][0] < part["clip"][0] and part["blend"][1] < part["clip"][1]


@pytest.mark.parametrize("method", METHODS)
def test_clipped_white_stays_neutral(method, device):
    """A white ramp clipping channel by channel: no magenta (or any colour) in the highlights."""
    t = torch.linspace(0.2, 3.5, 400, device=device)
    truth = t[None, None, :].expand(3, 50, 400).contiguous()
    obs = sensor_clip(truth)
    # the naive result (white balanced but untreated) is strongly magenta: G clipped first
    naive_chroma = ((obs - obs.mean(0)).abs().amax(0) / obs.mean(0)).max()
    assert naive_chroma > 0.3
    out = hl.reconstruct_highlights(obs, saturation=SAT.to(device), method=method)
    assert out.device.type == device
    lum = out.mean(0)
    chroma = (out - lum).abs().amax(0) / lum
    assert float(chroma.max()) < 1e-5
    assert bool((lum[:, 1:] >= lum[:, :-1] - 1e-6).all())  # brightness keeps rising along the ramp
    if method == "clip":
        assert float(out.max()) == pytest.approx(1.0)
    if method == "reconstruct":  # white is rebuilt exactly while any channel is unclipped
        unclipped_r = truth[0] < 0.99 * 2.0
        torch.testing.assert_close(out[:, unclipped_r], truth[:, unclipped_r], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_monotone_with_exposure(method):
    """More exposure never makes a highlight darker (exactly for clip and blend; reconstruct within 5 %
    where a pixel's own colour departs from its surroundings' as its last channel clips)."""
    yy, xx = _grid(64, 96)
    lum = 0.3 + torch.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.05)
    base = torch.stack([1.3 * (1 + 0.2 * yy), 1.0 + 0.1 * xx, 0.6 * (1 - 0.2 * yy)]) * lum
    prev = None
    for k in torch.linspace(0.2, 3.0, 25):
        out = hl.reconstruct_highlights(sensor_clip(base * k), saturation=SAT, method=method).mean(0)
        if prev is not None:
            if method == "reconstruct":
                assert bool((out >= 0.95 * prev).all())
                assert float(out.mean()) >= float(prev.mean())
            else:
                assert bool((out >= prev - 1e-6).all())
        prev = out


@pytest.mark.parametrize("method", ["blend", "reconstruct"])
def test_unclipped_pixels_are_untouched(method):
    truth = lamp_scene()
    obs = sensor_clip(truth)
    out = hl.reconstruct_highlights(obs, saturation=SAT, method=method)
    ratio = (obs / SAT[:, None, None]).amax(0)
    far = ratio < (0.89 if method == "blend" else 0.99)  # blend fades in over 0.89-0.99 of saturation
    assert bool(far.any()) and bool((~far).any())
    assert torch.equal(out[:, far], obs[:, far])


@pytest.mark.parametrize("method", METHODS)
def test_no_clipping_is_identity(method):
    x = torch.rand(3, 32, 48) * 0.8
    out = hl.reconstruct_highlights(x, saturation=SAT, method=method)
    assert torch.equal(out, x) and out is not x


def test_large_clipped_share_uses_the_whole_image_path():
    """With most cells clipped the work is done on the whole image; the result obeys the same rules."""
    truth = gradient_scene() * 2.0
    obs = sensor_clip(truth)
    for method in ("blend", "reconstruct"):
        out = hl.reconstruct_highlights(obs, saturation=SAT, method=method)
        assert out.shape == obs.shape and bool(torch.isfinite(out).all())
        assert bool((out.mean(0) >= obs.mean(0) - 1e-5).all())  # never darker than the clipped input
    out = hl.reconstruct_highlights(obs, saturation=SAT, method="reconstruct")
    assert float(out.max()) <= 4 * 2.0 + 1e-6  # the stated cap


@pytest.mark.parametrize("method", METHODS)
def test_device_and_purity(method, device):
    truth = lamp_scene().to(device)
    obs = sensor_clip(truth)
    before = obs.clone()
    out = hl.reconstruct_highlights(obs, saturation=SAT.to(device), method=method)
    assert torch.equal(obs, before)
    ref = hl.reconstruct_highlights(obs.cpu(), saturation=SAT, method=method)
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-4, atol=1e-4)


def test_clipped_mask():
    x = torch.tensor([[[1.99, 2.0]], [[0.5, 1.0]], [[1.49, 1.0]]])
    m = hl.clipped_mask(x, saturation=SAT)
    assert m.tolist() == [[[True, True]], [[False, True]], [[True, False]]]


def test_bad_input():
    x = torch.rand(3, 8, 8)
    with pytest.raises(UnknownMethod, match="reconstruct"):
        hl.reconstruct_highlights(x, saturation=SAT, method="inpaint")
    with pytest.raises(ShapeError):
        hl.reconstruct_highlights(torch.rand(8, 8), saturation=SAT)
    with pytest.raises(ShapeError):
        hl.reconstruct_highlights(torch.ones(3, 8, 8, dtype=torch.int32), saturation=SAT)
    with pytest.raises(ShapeError):
        hl.reconstruct_highlights(x, saturation=torch.ones(4))
    with pytest.raises(InvalidParameter):
        hl.reconstruct_highlights(x, saturation=torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(InvalidParameter):
        hl.reconstruct_highlights(x, saturation=torch.tensor([1.0, math.nan, 1.0]))
    with pytest.raises(InvalidParameter):
        hl.reconstruct_highlights(x, saturation=SAT, method="blend", threshold=0.2)
    with pytest.raises(InvalidParameter):
        hl.reconstruct_highlights(x, saturation=SAT, method="blend", soft=0.995)
    with pytest.raises(InvalidParameter):
        hl.reconstruct_highlights(x, saturation=SAT, method="reconstruct", cell=0)


@pytest.mark.parametrize("method", ["blend", "reconstruct"])
def test_sparse_and_whole_image_paths_agree(method, monkeypatch):
    """Working only on the cells near clipping gives exactly what working on every pixel gives."""
    obs = sensor_clip(lamp_scene())
    sparse = hl.reconstruct_highlights(obs, saturation=SAT, method=method)
    original = hl._cells_at_or_above
    _, idx = original(obs, 0.99 * SAT, 8)
    assert idx is not None and idx.numel() < 0.3 * obs[0].numel()  # the lamp scene takes the sparse path
    monkeypatch.setattr(hl, "_cells_at_or_above", lambda *a: (original(*a)[0], None))
    dense = hl.reconstruct_highlights(obs, saturation=SAT, method=method)
    torch.testing.assert_close(sparse, dense, rtol=1e-6, atol=1e-6)
