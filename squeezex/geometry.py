"""Where feature cells sit in the input, and upsampling that respects it.

After a 3×3 convolution with stride 2 and padding 1, feature cell i is centred on input
pixel 2·i; ``F.interpolate(align_corners=False)`` puts it at 2·i + 0.5 instead, and the
error compounds to ~7.5 px at stride 16 (METHODS.md §4). :func:`feature_geometry` derives
the exact affine map ``pixel = stride·i + offset`` per axis from the layers a tensor went
through, and :func:`upsample` samples a feature map at every input pixel with that map.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import eval_mode

__all__ = ["FeatureGeometry", "feature_geometry", "upsample", "minmax", "to_common_footing"]

_STRIDED = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
)


def _tuple(v, n):
    return tuple(v) if isinstance(v, tuple | list) else (v,) * n


@dataclass(frozen=True)
class FeatureGeometry:
    """Affine map from feature-cell index to input-pixel coordinate, per spatial axis.

    ``pixel = stride[d] * index + offset[d]`` (pixel centres at integer coordinates).
    """

    stride: tuple[float, ...]
    offset: tuple[float, ...]

    @classmethod
    def naive(cls, feature_size, input_size) -> FeatureGeometry:
        """What ``F.interpolate(align_corners=False)`` assumes: cells tile the input evenly."""
        stride = tuple(i / f for f, i in zip(feature_size, input_size, strict=True))
        return cls(stride, tuple((s - 1) / 2 for s in stride))


def feature_geometry(model: nn.Module, layer: nn.Module, example: torch.Tensor) -> FeatureGeometry:
    """Derive the geometry of ``layer``'s output by following one forward pass.

    Every convolution and pooling layer whose input has the current main-path size is
    composed (centre_in = s·centre_out + (k−1)·d/2 − p); side branches (a ResNet
    shortcut, an SE branch's 1×1 maps) do not have that size and are skipped. Runs
    ``model`` once on ``example`` under ``no_grad``; every module's ``training`` is restored.
    """
    n = example.dim() - 2
    state = {"size": tuple(example.shape[2:]), "a": (1.0,) * n, "b": (0.0,) * n, "done": None}

    def on_strided(module, args, output):
        if state["done"] is not None or not isinstance(output, torch.Tensor):
            return
        x = args[0]
        if x.dim() - 2 != n or tuple(x.shape[2:]) != state["size"]:
            return
        k = _tuple(module.kernel_size, n)
        s = _tuple(module.stride, n)
        p = _tuple(module.padding, n)
        d = _tuple(getattr(module, "dilation", 1), n)
        if isinstance(p, tuple) and any(isinstance(v, str) for v in p):  # padding="same"
            p = tuple((kk - 1) * dd / 2 for kk, dd in zip(k, d, strict=True))
        off = [(kk - 1) * dd / 2 - pp for kk, dd, pp in zip(k, d, p, strict=True)]
        a, b = state["a"], state["b"]
        state["b"] = tuple(bb + aa * o for aa, bb, o in zip(a, b, off, strict=True))
        state["a"] = tuple(aa * ss for aa, ss in zip(a, s, strict=True))
        state["size"] = tuple(output.shape[2:])

    def on_layer(module, args, output):
        if state["done"] is None:  # a token SE block says which grid its tokens form
            grid = getattr(module, "last_grid", None)
            state["done"] = tuple(grid) if grid is not None else tuple(output.shape[2:])

    handles = [
        m.register_forward_hook(on_strided) for m in model.modules() if isinstance(m, _STRIDED)
    ]
    handles.append(layer.register_forward_hook(on_layer))
    try:  # every module's flag is restored (a wrapper's own flag says nothing of its inside)
        with eval_mode(model), torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    if state["done"] is None:
        raise ValueError("the feature layer was not reached by the forward pass")
    if state["done"] != state["size"]:
        # The layer's output did not come from the traced main path (an op we do not
        # model, e.g. functional interpolation): fall back to even tiling.
        return FeatureGeometry.naive(state["done"], tuple(example.shape[2:]))
    return FeatureGeometry(state["a"], state["b"])


def upsample(
    maps: torch.Tensor,
    size: tuple[int, ...],
    geometry: FeatureGeometry | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Resample N×K×h×w (or N×K×t×h×w) feature maps to the input grid ``size``.

    Each input pixel j reads the feature map at (j − offset)/stride, interpolated
    (``"bilinear"``, trilinear for 5-D, or ``"bicubic"`` for 4-D) and clamped at the
    border. ``geometry=None`` gives ``F.interpolate``'s even tiling.
    """
    n = maps.dim() - 2
    size = tuple(int(s) for s in size)
    if len(size) != n:
        raise ValueError(f"size {size} does not match a map with {n} spatial axes")
    fsize = tuple(maps.shape[2:])
    if geometry is None:
        geometry = FeatureGeometry.naive(fsize, size)
    grid = _grid(fsize, size, geometry, maps.dtype, maps.device)
    grid = grid.expand(maps.shape[0], *grid.shape[1:])
    if mode == "bicubic" and n != 2:
        raise ValueError("bicubic upsampling is for 2-D maps")
    return F.grid_sample(maps, grid, mode=mode, padding_mode="border", align_corners=True)


@functools.lru_cache(maxsize=64)
def _grid(fsize, size, geometry: FeatureGeometry, dtype, device) -> torch.Tensor:
    """The 1×…×n sampling grid of :func:`upsample` (cached: it depends only on shapes)."""
    axes = []
    for S, f, a, b in zip(size, fsize, geometry.stride, geometry.offset, strict=True):
        u = (torch.arange(S, dtype=torch.float64, device=device) - b) / a
        axes.append(torch.zeros_like(u) if f == 1 else (2 * u / (f - 1) - 1))
    mesh = torch.meshgrid(*axes, indexing="ij")  # each of shape `size`
    return torch.stack(mesh[::-1], dim=-1).to(dtype).unsqueeze(0)  # grid_sample wants (x, y[, t])


def minmax(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Min-max normalise each sample of an N×… tensor to [0, 1] (constant maps → 0)."""
    return _minmax_(maps.clone(memory_format=torch.contiguous_format), eps)


def _minmax_(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """:func:`minmax` in place, on a contiguous tensor the caller owns."""
    flat = maps.view(maps.shape[0], -1)
    lo, hi = flat.aminmax(dim=1, keepdim=True)
    return flat.sub_(lo).div_(hi.sub_(lo).clamp_min_(eps)).view(maps.shape)


def to_common_footing(
    maps: torch.Tensor,
    size: tuple[int, ...],
    geometry: FeatureGeometry | None = None,
    mode: str = "bilinear",
) -> torch.Tensor:
    """The common footing of METHODS.md §4: ReLU, upsample to the input grid, min-max.

    ``maps``: N×1×h×w (or N×1×t×h×w) feature-resolution maps; returns N×1×H×W.
    Every op after the first works in place on tensors made here: on a small model at
    batch 1 each op costs about as much as a convolution layer (it runs cache-cold after
    the forward pass), and the footing is most of what SE adds to a forward pass.
    """
    maps = maps.clamp_min(0)
    if tuple(maps.shape[2:]) != tuple(size):
        maps = upsample(maps, size, geometry, mode)
        if mode == "bicubic":  # bilinear/trilinear weights are convex: no new negatives
            maps.clamp_min_(0)
    return _minmax_(maps.contiguous())
