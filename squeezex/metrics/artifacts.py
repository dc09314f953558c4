"""Artifact metrics: how much of a heatmap is the checkerboard that strided layers paint.

A deconvnet / guided-backprop backward pass runs every stride-``s`` convolution or pooling
backwards as a transposed convolution. Its kernel overlaps unevenly on the output grid, so
the map comes out multiplied by a gain pattern that repeats every ``s`` pixels: the
well-known checkerboard. Multiplying a smooth map by an ``s``-periodic pattern copies the
map's (low-frequency) spectrum onto the harmonics of the stride frequency, the DFT bins
``(a·H/s, b·W/s)``. :func:`checkerboard_energy` measures the share of the map's spectral
energy sitting at and around those bins; :func:`stride_periods` reads the periods to look
for off a model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from ..common import eval_mode

__all__ = ["checkerboard_energy", "stride_periods"]

#: Layer types whose stride leaves a periodic footprint when run backwards.
_STRIDED = (nn.Conv2d, nn.Conv3d, nn.MaxPool2d, nn.AvgPool2d, nn.MaxPool3d, nn.AvgPool3d)


def _harmonic_bins(n: int, period: int) -> set[int]:
    """Bins ``±round(a·n/period) mod n`` for a = 0 … period-1 (symmetric under negation)."""
    bins = set()
    for a in range(period):
        k = math.floor(a * n / period + 0.5)  # round half up, mirrored below
        bins.add(k % n)
        bins.add(-k % n)
    return bins


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Circular Chebyshev dilation of a boolean H×W mask (the spectrum wraps around)."""
    out = mask.clone()
    for du in range(-radius, radius + 1):
        for dv in range(-radius, radius + 1):
            out |= torch.roll(mask, shifts=(du, dv), dims=(0, 1))
    return out


def _masks(
    h: int, w: int, periods: Sequence[int], radius: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(harmonic mask, valid mask) on the H×W DFT grid; both exclude the DC neighbourhood."""
    dc = torch.zeros(h, w, dtype=torch.bool)
    dc[0, 0] = True
    valid = ~_dilate(dc, radius)
    if not valid.any():
        raise ValueError(
            f"a {h}×{w} map has no frequency bins outside the DC neighbourhood of radius "
            f"{radius}: use a larger map or a smaller radius"
        )
    harmonic = torch.zeros(h, w, dtype=torch.bool)
    for p in periods:
        points = torch.zeros(h, w, dtype=torch.bool)
        rows = sorted(_harmonic_bins(h, p))
        cols = sorted(_harmonic_bins(w, p))
        points[torch.tensor(rows)[:, None], torch.tensor(cols)[None, :]] = True
        points[0, 0] = False  # the (a, b) = (0, 0) "harmonic" is DC
        region = _dilate(points, radius) & valid
        if not region.any():
            raise ValueError(
                f"period {p} has no harmonic bins outside the DC neighbourhood of radius "
                f"{radius} on a {h}×{w} map: use a larger map or a smaller radius"
            )
        harmonic |= region
    return harmonic, valid


def _check_periods(periods: Iterable[int], h: int, w: int) -> tuple[int, ...]:
    if isinstance(periods, int):
        periods = (periods,)
    out = []
    for p in periods:
        if isinstance(p, bool) or int(p) != p:
            raise ValueError(f"periods must be integers, got {p!r}")
        p = int(p)
        if p < 2:
            raise ValueError(f"periods must be >= 2 (period 1 is the DC bin), got {p}")
        if p > h or p > w:
            raise ValueError(f"period {p} is larger than the {h}×{w} map")
        out.append(p)
    if not out:
        raise ValueError("periods is empty: give at least one period >= 2")
    return tuple(sorted(set(out)))


def checkerboard_energy(
    maps: torch.Tensor,
    periods: Sequence[int] = (2,),
    *,
    radius: int = 1,
    window: bool = True,
) -> torch.Tensor:
    """Share of each map's spectral energy at the harmonics of the given stride periods.

    Each 2-D map is mean-subtracted, optionally multiplied by a separable (periodic) Hann
    window to stop the map's edges leaking energy across the spectrum, and transformed with
    a 2-D FFT. The score is::

        Σ_{bins near harmonics} |F|² / Σ_{all bins} |F|²,

    where a bin is "near a harmonic" when it lies within Chebyshev distance ``radius`` of a
    non-DC harmonic ``(u, v) = (a·H/p, b·W/p) mod (H, W)`` (integers a, b, rounded to the
    nearest bin when H or W is not divisible by ``p``; negative frequencies included, so
    the set is symmetric) for some ``p`` in ``periods``. The DC bin and every bin within
    ``radius`` of it are left out of both sums: they hold the map's overall level and its
    slowest trend (and, with the window on, the window's own leakage), not artifacts.

    Reading the number: 0 means no energy at the stride harmonics, 1 means the map is
    entirely a pattern repeating every ``p`` pixels (a pure 2-px checkerboard scores ≈ 1
    with ``periods=(2,)``). A smooth saliency map scores near 0, a smooth map multiplied by
    a checkerboard gain pattern scores in between, growing with the pattern's strength.
    White noise spreads its energy evenly over all bins, so it scores roughly
    (number of harmonic bins) / (number of bins), both counted outside the DC
    neighbourhood; e.g. ``periods=(2,)``, ``radius=1`` on 32×32 maps gives
    3·9 / (1024 - 9) ≈ 0.027. Scores well above that chance level indicate a stride
    artifact; compare methods at the same map size, periods and radius, as the chance
    level depends on all three. Use :func:`stride_periods` to find which periods a model's
    strided layers can paint.

    Args:
        maps: N×1×H×W heatmaps, or N×1×T×H×W (each frame is scored as a 2-D map and the
            frame scores are averaged per sample). float or double; values need not be in
            [0, 1] as the score does not depend on the map's scale or offset.
        periods: stride periods ``p >= 2`` (in pixels) whose harmonics to collect; the bins
            of several periods are united, not double-counted.
        radius: Chebyshev radius in bins around each harmonic (and around DC for the
            exclusion). 1 catches the spread of a windowed pure harmonic and of an
            artifact modulating a smooth map; 0 counts the harmonic bins only.
        window: multiply by a separable periodic Hann window before the FFT (default).
            Without it, the jump between opposite edges of a non-periodic map leaks energy
            along the axes, including onto the ``(0, W/p)`` / ``(H/p, 0)`` harmonics.

    Returns:
        Tensor of N scores in [0, 1] (float64 for double input, float32 otherwise).
        A constant map (or frame) scores 0.

    Raises:
        ValueError: for maps that are not N×1×H×W / N×1×T×H×W, maps with NaN or inf,
            periods that are not integers >= 2 or are larger than the map, a negative
            radius, or a map too small to leave harmonic bins outside the DC neighbourhood.
    """
    if not isinstance(maps, torch.Tensor):
        raise ValueError(f"maps must be a tensor, got {type(maps).__name__}")
    if maps.dim() not in (4, 5) or maps.shape[1] != 1:
        raise ValueError(f"maps must be N×1×H×W (or N×1×T×H×W), got shape {tuple(maps.shape)}")
    if maps.numel() == 0:
        raise ValueError(f"maps is empty, got shape {tuple(maps.shape)}")
    if isinstance(radius, bool) or int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be an integer >= 0, got {radius!r}")
    radius = int(radius)
    n = maps.shape[0]
    h, w = maps.shape[-2:]
    periods = _check_periods(periods, h, w)

    x = maps.detach()
    x = x.double() if x.dtype == torch.float64 else x.float()
    if not torch.isfinite(x).all():
        raise ValueError("maps contain NaN or inf")
    frames = x.reshape(-1, h, w)  # (N·T)×H×W

    harmonic, valid = _masks(h, w, periods, radius)
    harmonic, valid = harmonic.to(frames.device), valid.to(frames.device)

    centred = frames - frames.mean(dim=(-2, -1), keepdim=True)
    if window:
        wh = torch.hann_window(h, periodic=True, dtype=x.dtype, device=x.device)
        ww = torch.hann_window(w, periodic=True, dtype=x.dtype, device=x.device)
        centred = centred * (wh[:, None] * ww[None, :])
    power = torch.fft.fft2(centred).abs().square()

    total = (power * valid).sum(dim=(-2, -1))
    inside = (power * harmonic).sum(dim=(-2, -1))
    flat = frames.flatten(1)
    constant = flat.amax(1) <= flat.amin(1)
    ok = ~constant & (total > 0)
    share = torch.where(ok, inside / torch.where(ok, total, torch.ones_like(total)), 0.0)
    return share.clamp(0.0, 1.0).reshape(n, -1).mean(1)


def _spatial_strided(module: nn.Module) -> bool:
    stride = module.stride
    if stride is None:  # pools default their stride to the kernel size
        stride = module.kernel_size
    strides = (stride,) if isinstance(stride, int) else tuple(stride)
    return any(int(s) > 1 for s in strides)


def stride_periods(model: nn.Module, example: torch.Tensor) -> tuple[int, ...]:
    """Cumulative strides of a model's strided layers: the periods its artifacts repeat at.

    Runs one forward pass of ``model`` on ``example`` under ``torch.no_grad`` and in eval
    mode, with forward hooks on every ``nn.Conv2d`` / ``nn.Conv3d`` / ``nn.MaxPool2d`` /
    ``nn.AvgPool2d`` (and the 3-D pools) whose stride exceeds 1. For each such layer the
    cumulative stride of its output relative to the input is
    ``round(input_H / output_H)`` (the larger of the H and W ratios, should they differ).
    Running that layer backwards as a transposed convolution paints a pattern repeating
    every that-many input pixels, so the result is what to pass as ``periods`` to
    :func:`checkerboard_energy`: a CNN with two stride-2 convolutions gives ``(2, 4)``,
    meaning its deconvnet / guided-backprop maps may carry 2-px and 4-px checkerboards.

    Hooks are removed and every module's own ``training`` flag is restored afterwards,
    even if the forward pass raises.

    Args:
        model: the network, on the same device as ``example``.
        example: one input batch, N×C×H×W (or N×C×T×H×W for 3-D models).

    Returns:
        Sorted distinct cumulative strides >= 2 (layers that only stride along time add
        nothing); ``()`` when the model has no spatially strided layer.
    """
    if not isinstance(example, torch.Tensor) or example.dim() < 3:
        raise ValueError("example must be an N×C×H×W (or N×C×T×H×W) tensor")
    in_h, in_w = example.shape[-2:]
    found: set[int] = set()

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, tuple | list):  # e.g. max-pool with return_indices=True
            output = output[0]
        out_h, out_w = output.shape[-2:]
        ratio = max(round(in_h / max(out_h, 1)), round(in_w / max(out_w, 1)))
        if ratio >= 2:
            found.add(int(ratio))

    handles = []
    try:
        for m in model.modules():
            if isinstance(m, _STRIDED) and _spatial_strided(m):
                handles.append(m.register_forward_hook(hook))
        with eval_mode(model), torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return tuple(sorted(found))
