"""VEBI stage 3's machinery: the guided backward pass and its checkerboard fix.

:class:`_Tracer` installs the forward hooks of one VEBI pass (layer energies, kept
outputs, the guided rule on every ``nn.ReLU``/``nn.ReLU6`` and the stride fix on strided
convolutions); :func:`backproject` runs a feature's own activation map back to the
input through it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...common import eval_mode
from ...geometry import minmax
from ...models.se import get_submodule

__all__ = ["backproject", "feature_heatmap", "STRIDE_FIXES"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_RELU = (nn.ReLU, nn.ReLU6)
STRIDE_FIXES = (False, True, "aligned", "nearest")
_TRANSPOSED = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_EPS = 1e-12


def _normalise(energies: list[torch.Tensor]) -> torch.Tensor:
    """Per layer L1, concatenated, overall L2 (METHODS.md §2)."""
    parts = [e / e.sum(1, keepdim=True).clamp_min(_EPS) for e in energies]
    x = torch.cat(parts, 1)
    return x / x.norm(dim=1, keepdim=True).clamp_min(_EPS)


class _GuidedReLU(torch.autograd.Function):
    """Identity forward; backward keeps the positive part of the signal (guided rule)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp_min(0)


class _StrideFixed(torch.autograd.Function):
    """A strided convolution's output whose backward pass is the checkerboard-free one."""

    @staticmethod
    def forward(ctx, inp, out, module, mode):
        ctx.module = module
        ctx.mode = mode
        ctx.in_shape = tuple(inp.shape[2:])
        return out.detach().clone()

    @staticmethod
    def backward(ctx, grad):
        m = ctx.module
        d = len(ctx.in_shape)
        pad = m.padding if not isinstance(m.padding, str) else (0,) * d
        size = [
            ctx.in_shape[i] + 2 * pad[i] - m.dilation[i] * (m.kernel_size[i] - 1) for i in range(d)
        ]
        if ctx.mode == "nearest":
            up = _nearest(grad, size)
        else:
            up = _aligned_nearest(grad, size, m.stride)
        up = up * (grad[0].numel() / max(up[0].numel(), 1))  # keep the signal's mass
        w = m.weight.to(up.dtype)
        back = _TRANSPOSED[d](up, w, stride=1, padding=pad, dilation=m.dilation, groups=m.groups)
        return back, None, None, None


def _nearest(x: torch.Tensor, size) -> torch.Tensor:
    """Nearest-neighbour resize of the spatial axes (source index ⌊i·in/out⌋, as
    ``F.interpolate(mode="nearest")``, several times faster on CPU for whole factors)."""
    size = tuple(size)
    if all(o % n == 0 for o, n in zip(size, x.shape[2:], strict=True)):  # whole factors
        for d, out in enumerate(size, start=2):
            n = x.shape[d]
            if n != out:
                shape = list(x.shape)
                x = x.unsqueeze(d + 1).expand(*shape[: d + 1], out // n, *shape[d + 1 :])
                x = x.reshape(*shape[:d], out, *shape[d + 1 :])
        return x
    return F.interpolate(x.contiguous(), size=size, mode="nearest")


def _spread(s: int, dtype, device) -> torch.Tensor:
    """1-D weights of the aligned nearest resize by ``s``: s ones centred (odd s), or
    [½, 1, …, 1, ½] over s + 1 cells (even s: the halfway cells are shared)."""
    if s % 2:
        return torch.ones(s, dtype=dtype, device=device)
    w = torch.ones(s + 1, dtype=dtype, device=device)
    w[0] = w[-1] = 0.5
    return w


def _aligned_nearest(x: torch.Tensor, size, stride) -> torch.Tensor:
    """Nearest-neighbour resize where source cell j sits at target cell stride·j."""
    for d, (out, s) in enumerate(zip(size, stride, strict=True)):
        dim = 2 + d
        if s == 1 and x.shape[dim] == out:
            continue
        w = _spread(s, x.dtype, x.device).tolist()
        centre = (len(w) - 1) // 2
        shape = list(x.shape)
        shape[dim] = out
        y = x.new_zeros(shape)
        n = x.shape[dim]
        for k, weight in enumerate(w):  # target s·j + t receives weight(t)·x[j]
            t = k - centre
            first = 0 if t >= 0 else 1  # first j with s·j + t >= 0
            last = min(n - 1, (out - 1 - t) // s)  # last j with s·j + t < out
            if last < first:
                continue
            count = last - first + 1
            src = x.narrow(dim, first, count)
            start = s * first + t
            where = [slice(None)] * y.dim()
            where[dim] = slice(start, start + s * (count - 1) + 1, s)
            y[tuple(where)] += weight * src
        x = y
    return x


def _strided(m: nn.Module) -> bool:
    return isinstance(m, _CONV) and any(s > 1 for s in m.stride)


class _Tracer:
    """Forward hooks for one VEBI pass: energies of ``layers``, outputs of ``keep``, and
    (when ``guided``) the guided rule and the stride fix on the backward pass."""

    def __init__(self, model, layers, keep=(), guided=False, stride_fix=False):
        self.model = model
        self.layers = list(layers)
        self.keep = set(keep)
        self.guided = guided
        self.stride_fix = stride_fix
        self.energy: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []

    def __enter__(self):
        try:
            if self.guided:
                mode = _fix_mode(self.stride_fix)
                relus = 0
                for m in self.model.modules():
                    if isinstance(m, _RELU):
                        relus += 1
                        self._handles.append(m.register_forward_hook(_guided_hook))
                    elif mode and _strided(m):
                        self._handles.append(m.register_forward_hook(_fix_hook(mode)))
                if not relus:
                    warnings.warn(
                        f"{type(self.model).__name__} has no nn.ReLU/nn.ReLU6 module: the "
                        "backward pass keeps the plain gradient rule (no guided ReLU)",
                        stacklevel=4,
                    )
            for name in dict.fromkeys([*self.layers, *self.keep]):
                m = get_submodule(self.model, name)
                self._handles.append(m.register_forward_hook(self._capture(name)))
        except BaseException:
            self.close()
            raise
        return self

    def _capture(self, name):
        def hook(module, args, output):
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"layer {name!r} does not return a tensor")
            if name in self.layers:
                a = output.detach().flatten(2)
                self.energy[name] = (a * a).sum(2, dtype=torch.float64)
            if name in self.keep:
                self.outputs[name] = output
                return output.clone()  # later in-place ops must not change what we keep
            return None

        return hook

    def features(self) -> torch.Tensor:
        missing = [n for n in self.layers if n not in self.energy]
        if missing:
            raise ValueError(f"the forward pass did not run layer(s) {', '.join(missing)}")
        return _normalise([self.energy[n] for n in self.layers])

    def close(self):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __exit__(self, *exc):
        self.close()
        return False


def _guided_hook(module, args, output):
    return _GuidedReLU.apply(output)


def _fix_mode(stride_fix) -> str | None:
    if stride_fix not in STRIDE_FIXES:
        raise ValueError(f"stride_fix must be one of {STRIDE_FIXES}, got {stride_fix!r}")
    if stride_fix is False:
        return None
    return "aligned" if stride_fix is True else stride_fix


def _fix_hook(mode: str):
    def hook(module, args, output):
        return _StrideFixed.apply(args[0], output, module, mode)

    return hook


def _backward(
    x: torch.Tensor, outputs: dict[str, torch.Tensor], picks: list[tuple[str, int] | None], retain
) -> torch.Tensor:
    """Raw input-space signal of one feature per sample, from its own activation map."""
    seeds: dict[str, torch.Tensor] = {}
    for i, pick in enumerate(picks):
        if pick is None:
            continue
        layer, c = pick
        out = outputs[layer]
        if layer not in seeds:
            seeds[layer] = torch.zeros_like(out)
        seeds[layer][i, c] = out[i, c].detach()
    if not seeds:
        return torch.zeros_like(x)
    names = list(seeds)
    (grad,) = torch.autograd.grad(
        [outputs[n] for n in names],
        x,
        grad_outputs=[seeds[n] for n in names],
        retain_graph=retain,
        allow_unused=True,
    )
    return torch.zeros_like(x) if grad is None else grad


def backproject(
    model: nn.Module,
    inputs: torch.Tensor,
    features: tuple[str, int] | Sequence[tuple[str, int]],
    *,
    stride_fix: bool = True,
    additional_forward_args=None,
) -> torch.Tensor:
    """VEBI's backward pass: the raw input-space signal of one feature per sample.

    Starts from the feature's own forward activation map (all other channels zero) and
    runs back with the guided rule, transposed convolutions (stride-fixed when
    ``stride_fix``) and unpooling with switches.

    Args:
        model: the network (run in eval mode; flags restored).
        inputs: N×C×H×W (or N×C×T×H×W).
        features: one ``(layer, channel)`` for every sample, or one per sample.

    Returns:
        N×C×… signed signal, same shape as ``inputs``.
    """
    n = inputs.shape[0]
    if isinstance(features, tuple) and len(features) == 2 and isinstance(features[0], str):
        features = [features] * n
    features = list(features)
    if len(features) != n:
        raise ValueError(f"features must be one (layer, channel) or {n} of them")
    extra = () if additional_forward_args is None else tuple(additional_forward_args)
    keep = {layer for layer, _ in features}
    with eval_mode(model), torch.enable_grad():
        x = inputs.detach().clone().requires_grad_(True)
        with _Tracer(model, (), keep=keep, guided=True, stride_fix=stride_fix) as tr:
            model(x, *extra)
        for layer, c in features:
            if layer not in tr.outputs:
                raise ValueError(f"the forward pass did not run layer {layer!r}")
            if not 0 <= c < tr.outputs[layer].shape[1]:
                raise ValueError(f"layer {layer!r} has no channel {c}")
        return _backward(x, tr.outputs, features, retain=False).detach()


def feature_heatmap(signal: torch.Tensor) -> torch.Tensor:
    """Positive part, L2 over colour channels, min-max per sample: N×1×… in [0, 1]."""
    pos = signal.clamp_min(0)
    return minmax((pos * pos).sum(1, keepdim=True).sqrt())  # (faster than norm(dim=1) on CPU)
