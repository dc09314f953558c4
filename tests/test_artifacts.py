"""Checkerboard-artifact metric on synthetic maps with known spectra, and stride discovery."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from squeezex.metrics.artifacts import checkerboard_energy, stride_periods


def _checkerboard(h: int, w: int, block: int = 1) -> torch.Tensor:
    i = torch.arange(h)[:, None] // block
    j = torch.arange(w)[None, :] // block
    return ((i + j) % 2).float()[None, None]


def _blob(size: int = 64, sigma: float = 8.0) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    return torch.exp(-((y - 30) ** 2 + (x - 34) ** 2) / (2 * sigma**2))[None, None]


def _smooth(size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 1, 4, 4, generator=g)
    m = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)
    return (m - m.min()) / (m.max() - m.min())


def _analytic_fraction(h: int, w: int, offsets: list[tuple[int, int]], radius: int) -> float:
    """Harmonic bins / all bins, both outside the DC neighbourhood, counted by brute force."""

    def cheb(u, v, cu, cv):
        du = min((u - cu) % h, (cu - u) % h)
        dv = min((v - cv) % w, (cv - v) % w)
        return max(du, dv)

    near_dc = harmonic = 0
    for u in range(h):
        for v in range(w):
            if cheb(u, v, 0, 0) <= radius:
                near_dc += 1
            elif any(cheb(u, v, cu, cv) <= radius for cu, cv in offsets):
                harmonic += 1
    return harmonic / (h * w - near_dc)


def test_pure_checkerboard_is_all_artifact():
    cb = _checkerboard(32, 32)
    assert checkerboard_energy(cb).item() == pytest.approx(1.0, abs=1e-5)
    assert checkerboard_energy(cb, window=False).item() == pytest.approx(1.0, abs=1e-5)
    # odd sizes: the harmonic falls between bins and is rounded, still caught
    assert checkerboard_energy(_checkerboard(15, 17)).item() > 0.95
    # ... on both sides: 7.5 cycles of 15 px rounds to bins 8 and -8 ≡ 7 (radius 0: no slack)
    assert checkerboard_energy(_checkerboard(15, 17), radius=0).item() > 0.8


def test_dc_neighbourhood_is_out_of_both_sums():
    n = torch.arange(32.0)
    slow = 3 * torch.cos(2 * torch.pi * n / 32)[None, None, None, :]  # bin (0, 1): next to DC
    x = _checkerboard(32, 32) + slow
    assert checkerboard_energy(x, window=False).item() == pytest.approx(1.0, abs=1e-5)
    assert checkerboard_energy(x, window=False, radius=0).item() < 0.1  # now it counts


def test_smooth_blob_is_not():
    assert checkerboard_energy(_blob()).item() < 0.02
    assert checkerboard_energy(_blob(), window=False).item() < 0.02


def test_modulated_blob_scores_much_higher():
    blob = _blob()
    c = 2 * _checkerboard(64, 64) - 1  # ±1
    modulated = blob * (1 + 0.5 * c)
    plain, mod = checkerboard_energy(blob).item(), checkerboard_energy(modulated).item()
    assert mod > 0.2
    assert mod > 50 * max(plain, 1e-6)
    # the score does not depend on scale or offset
    assert checkerboard_energy(3 * modulated + 1).item() == pytest.approx(mod, rel=1e-4)


@pytest.mark.parametrize("window", [True, False])
def test_white_noise_matches_bin_fraction(window):
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(256, 1, 32, 32, generator=g)
    expected = _analytic_fraction(32, 32, [(0, 16), (16, 0), (16, 16)], radius=1)
    assert expected == pytest.approx(27 / 1015)
    measured = checkerboard_energy(noise, window=window).mean().item()
    assert measured == pytest.approx(expected, rel=0.1)


def test_transposed_conv_checkerboard_beats_resize_conv():
    smooth = _smooth()
    k = torch.ones(1, 1, 3, 3)
    deconv = F.conv_transpose2d(smooth, k, stride=2, padding=1, output_padding=1)
    resize = F.conv_transpose2d(F.interpolate(smooth, scale_factor=2, mode="nearest"), k, padding=1)
    assert deconv.shape == resize.shape == (1, 1, 32, 32)
    strided, fixed = checkerboard_energy(deconv).item(), checkerboard_energy(resize).item()
    assert strided > 0.3
    assert strided > 10 * fixed


def test_period_four_catches_what_period_two_misses():
    dots = torch.zeros(1, 1, 32, 32)
    dots[..., ::4, ::4] = 1.0  # a 4-px dot grid: 15 equal non-DC harmonics, 3 of them period-2
    two = checkerboard_energy(dots, (2,)).item()
    four = checkerboard_energy(dots, (4,)).item()
    both = checkerboard_energy(dots, (2, 4)).item()
    assert two == pytest.approx(3 / 15, abs=0.01)
    assert four == pytest.approx(1.0, abs=1e-4)
    assert both == pytest.approx(1.0, abs=1e-4)


def test_batch_matches_single_and_dtypes():
    g = torch.Generator().manual_seed(1)
    maps = torch.rand(4, 1, 24, 20, generator=g)
    maps[1] = _checkerboard(24, 20)[0]
    batch = checkerboard_energy(maps, (2, 4))
    single = torch.cat([checkerboard_energy(m[None], (2, 4)) for m in maps])
    torch.testing.assert_close(batch, single)
    double = checkerboard_energy(maps.double(), (2, 4))
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), batch, rtol=1e-4, atol=1e-6)


def test_constant_maps_and_video_frames():
    out = checkerboard_energy(torch.full((2, 1, 8, 8), 0.3))
    assert out.tolist() == [0.0, 0.0]
    # N×1×T×H×W: frame scores averaged per sample
    video = torch.stack([_checkerboard(16, 16)[0], torch.zeros(1, 16, 16)], dim=1)[None]
    assert video.shape == (1, 1, 2, 16, 16)
    assert checkerboard_energy(video).item() == pytest.approx(0.5, abs=1e-5)


@pytest.mark.parametrize(
    ("maps", "kwargs", "message"),
    [
        (torch.rand(2, 3, 8, 8), {}, "N×1×H×W"),
        (torch.rand(8, 8), {}, "N×1×H×W"),
        (torch.rand(1, 1, 8, 8), {"periods": (1,)}, ">= 2"),
        (torch.rand(1, 1, 8, 8), {"periods": (16,)}, "larger than"),
        (torch.rand(1, 1, 8, 8), {"periods": ()}, "empty"),
        (torch.rand(1, 1, 8, 8), {"radius": -1}, "radius"),
        (torch.full((1, 1, 8, 8), float("nan")), {}, "NaN"),
    ],
)
def test_errors_name_the_problem(maps, kwargs, message):
    with pytest.raises(ValueError, match=message):
        checkerboard_energy(maps, **kwargs)


class _RecordsMode(nn.Module):
    def __init__(self):
        super().__init__()
        self.seen: list[bool] = []

    def forward(self, x):
        self.seen.append(self.training)
        return x


def _net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1),  # /2
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),  # stride 1: not counted
        _RecordsMode(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1),  # /4
        nn.MaxPool2d(2),  # /8
    )


def test_stride_periods_reads_cumulative_strides():
    net = _net().train()
    net[1].eval()  # a mixed state must come back as it was
    assert stride_periods(net, torch.rand(2, 3, 32, 32)) == (2, 4, 8)
    assert net[4].seen == [False]  # ran in eval
    assert [m.training for m in net] == [True, False, True, True, True, True, True]
    assert all(len(m._forward_hooks) == 0 for m in net.modules())
    assert stride_periods(nn.Sequential(nn.Conv2d(3, 3, 3)), torch.rand(1, 3, 8, 8)) == ()


def test_stride_periods_3d_ignores_time_only_strides():
    net = nn.Sequential(
        nn.Conv3d(1, 2, 3, stride=(2, 1, 1), padding=1),  # halves T only
        nn.Conv3d(2, 2, 3, stride=2, padding=1),  # /2 in space
    )
    assert stride_periods(net, torch.rand(1, 1, 8, 16, 16)) == (2,)


def test_stride_periods_cleans_up_when_forward_fails():
    net = _net().train()
    with pytest.raises(RuntimeError):
        stride_periods(net, torch.rand(1, 5, 32, 32))  # wrong channel count
    assert net.training and all(m.training for m in net)
    assert all(len(m._forward_hooks) == 0 for m in net.modules())
