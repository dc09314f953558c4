"""Sanity checks: does the explanation depend on the model it claims to explain?

:func:`cascading_randomization` is the model-parameter randomisation test of Adebayo et
al., "Sanity Checks for Saliency Maps" (NeurIPS 2018): re-initialise the layers from the
output down, one more at a time, re-explain after each step, and compare the new maps to
the original ones with :func:`spearman` (rank correlation) and :func:`ssim` (structural
similarity). An explanation of the model should change as the model is destroyed:
**lower similarity is better** here. A map that stays the same (Spearman ≈ 1 to the end)
explains the input, not the model — an edge detector passes for a saliency map.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..common import eval_mode, normalize_target, quiet_empty_maps
from .localisation import _average_ranks

__all__ = ["cascading_randomization", "spearman", "ssim", "randomization_layers", "INITS"]


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape:
        raise ValueError(f"the two maps differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() < 2 or a.shape[0] == 0:
        raise ValueError(f"maps must be N×1×H×W (N ≥ 1), got shape {tuple(a.shape)}")
    return a.detach().double(), b.detach().double()


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of the flattened maps, per sample.

    The Pearson correlation of average ranks (ties share their mean rank), as
    ``scipy.stats.spearmanr``. NaN when either map is constant (no ranking to compare).

    Args:
        a, b: N×1×… maps of the same shape.

    Returns:
        N floats in [−1, 1] (or NaN).
    """
    a, b = _pair(a, b)
    out = torch.empty(a.shape[0], dtype=torch.float64)
    for i in range(a.shape[0]):
        ra = _average_ranks(a[i].flatten()).cpu()
        rb = _average_ranks(b[i].flatten()).cpu()
        ra, rb = ra - ra.mean(), rb - rb.mean()
        den = (ra.square().sum() * rb.square().sum()).sqrt()
        out[i] = (ra * rb).sum() / den if den > 0 else float("nan")
    return out.float()


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    window: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity (Wang et al., 2004) of two maps, per sample.

    The standard Gaussian-window SSIM: local means, variances and covariance under an
    11×11 Gaussian window (σ = 1.5, weights summing to 1, population statistics), only
    where the window fits inside the map ("valid"), C₁ = (k₁·L)², C₂ = (k₂·L)² with L =
    ``data_range``, averaged over the map. Maps smaller than the window use the largest
    odd window that fits. Clips (N×1×T×H×W) average the SSIM of their frames.

    Args:
        a, b: N×1×H×W (or N×1×T×H×W) maps in [0, ``data_range``].
        window: odd window side in pixels.
        sigma: the Gaussian's standard deviation in pixels.
        data_range: L, the maps' value range.
        k1, k2: the stabilising constants.

    Returns:
        N floats in [−1, 1]; 1 for identical maps.
    """
    a, b = _pair(a, b)
    if a.dim() not in (4, 5) or a.shape[1] != 1:
        raise ValueError(f"maps must be N×1×H×W (or N×1×T×H×W), got shape {tuple(a.shape)}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number of pixels, got {window}")
    n = a.shape[0]
    h, w = a.shape[-2:]
    a, b = a.reshape(-1, 1, h, w), b.reshape(-1, 1, h, w)
    size = min(window, h if h % 2 else h - 1, w if w % 2 else w - 1)
    g = _gaussian_window(size, sigma).to(a.device)

    def filt(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(t, g.view(1, 1, -1, 1))
        return F.conv2d(t, g.view(1, 1, 1, -1))

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    m = a.shape[0]
    mu_a, mu_b, e_aa, e_bb, e_ab = filt(torch.cat([a, b, a * a, b * b, a * b])).split(m)
    var_a = e_aa - mu_a**2
    var_b = e_bb - mu_b**2
    cov = e_ab - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return s.reshape(n, -1).mean(1).float().cpu()


# -- the randomisation test --------------------------------------------------------------------
def _first(inputs: Any) -> torch.Tensor:
    x = inputs[0] if isinstance(inputs, tuple) else inputs
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0:
        raise ValueError("inputs must be a non-empty batch tensor (or a tuple starting with one)")
    return x


def _rows(inputs: Any, sl: slice, n: int) -> Any:
    if isinstance(inputs, tuple):
        return tuple(
            t[sl] if isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape[0] == n else t
            for t in inputs
        )
    return inputs[sl]


def randomization_layers(model: nn.Module, inputs: Any) -> list[str]:
    """The default layers of :func:`cascading_randomization`, output first.

    Every module with parameters of its own (Conv, Linear, BatchNorm, …), in the reverse
    order of their first call in a forward pass on the first sample of ``inputs`` (run
    in eval mode, under no_grad, hooks removed afterwards). Modules the forward pass
    never calls are left out. The model itself is not changed.
    """
    candidates = {
        m: name for name, m in model.named_modules() if next(m.parameters(False), None) is not None
    }
    order: list[str] = []
    handles = []

    def record(module, args):
        name = candidates[module]
        if name not in order:
            order.append(name)

    try:
        for m in candidates:
            handles.append(m.register_forward_pre_hook(record))
        one = _rows(inputs, slice(0, 1), _first(inputs).shape[0])
        with torch.no_grad(), eval_mode(model):
            model(*one) if isinstance(one, tuple) else model(one)
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError(f"{type(model).__name__} calls no module with parameters")
    return order[::-1]


def _fill(p: torch.Tensor) -> None:
    """Redraw from N(m, s²) with m and s the parameter's own mean and spread (its RMS if
    it has no spread, 1 if that is 0 too): the scale is kept, what was learned is not."""
    m = float(p.mean()) if p.numel() else 0.0
    s = float(p.std()) if p.numel() > 1 else 0.0
    if not s > 0:
        s = float(p.square().mean().sqrt()) or 1.0
    p.normal_(m, s)


#: How :func:`cascading_randomization` re-initialises a layer.
INITS = ("redraw", "reset")


def _randomise(module: nn.Module, seed: int, recurse: bool, init: str = "redraw") -> None:
    """Re-initialise ``module``'s parameters from ``seed`` (global RNG state restored).

    ``init="redraw"`` (the default; Adebayo et al. re-initialise with random weights):
    every parameter is drawn afresh from a normal with the parameter's own mean and
    spread — a convolution gets new random filters of its trained scale, a BatchNorm new
    scales and shifts around its trained ones — so the layer keeps its scale but none of
    its learned structure. ``init="reset"``: a module with ``reset_parameters`` (Conv,
    Linear, BatchNorm, …) uses it, i.e. its own initialisation: BatchNorm goes back to the
    *identity* (scale 1, shift 0, fresh running statistics); other parameters are
    redrawn.
    """
    modules = list(module.modules()) if recurse else [module]
    devices = (
        list(range(torch.cuda.device_count()))
        if torch.cuda.is_available() and torch.cuda.is_initialized()
        else []
    )
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for m in modules:
            own = list(m.parameters(recurse=False))
            if not own:
                continue
            reset = getattr(m, "reset_parameters", None) if init == "reset" else None
            if callable(reset):
                reset()
            else:
                for p in own:
                    _fill(p)


def _explain(make_explainer, model, inputs, target, batch_size) -> torch.Tensor:
    x = _first(inputs)
    n = x.shape[0]
    step = n if batch_size is None else batch_size
    explainer = make_explainer(model)
    maps = []
    for s in range(0, n, step):
        sl = slice(s, min(s + step, n))
        with quiet_empty_maps():  # a randomised model's empty maps are counted apart
            out = explainer.attribute(
                _rows(inputs, sl, n), target=None if target is None else target[sl]
            )
        if isinstance(out, tuple):
            out = out[0]
        maps.append(out.detach())
    maps = torch.cat(maps)
    if maps.shape[0] != n or maps.dim() < 3 or maps.shape[1] != 1:
        raise ValueError(f"the explainer must return N×1×… maps, got shape {tuple(maps.shape)}")
    return maps


def cascading_randomization(
    model: nn.Module,
    make_explainer: Callable[[nn.Module], Any],
    inputs: torch.Tensor | tuple,
    target: Any,
    *,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    init: str = "redraw",
    batch_size: int | None = None,
    return_maps: bool = False,
) -> dict:
    """Cascading model-parameter randomisation (Adebayo et al., NeurIPS 2018).

    On a deep copy of ``model`` (the caller's model is never changed), the layers are
    re-initialised from the output down, cumulatively: step k has the top k layers
    randomised. After each step the copy is re-explained with
    ``make_explainer(copy).attribute(inputs, target=target)`` and the maps are compared
    with the original model's. Lower similarity is better: the explanation follows the
    model.

    Args:
        model: the trained model.
        make_explainer: builds an explainer (an object with ``attribute``) for a model,
            e.g. ``lambda m: squeezex.get_explainer("gradcam", m)``.
        inputs: the batch to explain (a tensor, or a tuple for multi-input models).
        target: one class index for every sample, one per sample, or ``None``.
        layers: dotted module names to randomise in this order (all parameters under
            each name); default :func:`randomization_layers` (modules with parameters
            of their own, output first).
        seed: seeds each layer's re-initialisation (global RNG state is restored).
        init: ``"redraw"`` (default: fresh random weights with each parameter's own mean
            and spread) or ``"reset"`` (the modules' ``reset_parameters``; BatchNorm
            becomes the identity).
        batch_size: explain this many samples at a time (default: all at once).
        return_maps: also return the maps, original first: (L+1)×N×1×….

    Returns:
        A dict with ``"layers"`` (L names, top first), ``"kinds"`` (L module class
        names), ``"spearman"`` and ``"ssim"`` (L×N float tensors; row k compares the
        maps after randomising ``layers[:k+1]`` with the original maps; a map that
        became constant has no rank order, so its Spearman is NaN — count those apart,
        do not score them), plus ``"maps"`` when asked.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    x = _first(inputs)
    n = x.shape[0]
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    tgt = normalize_target(target, n, x.device)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    work = copy.deepcopy(model)
    if layers is None:
        names, recurse = randomization_layers(work, inputs), False
    else:
        names, recurse = list(layers), True
        known = dict(work.named_modules())
        missing = [name for name in names if name not in known]
        if missing:
            raise ValueError(f"no module named {missing} in {type(model).__name__}")
        empty = [name for name in names if next(known[name].parameters(), None) is None]
        if empty:
            raise ValueError(f"modules {empty} have no parameters to randomise")
        if not names:
            raise ValueError("layers is empty: name at least one module")

    original = _explain(make_explainer, work, inputs, tgt, batch_size)
    g = torch.Generator().manual_seed(seed)
    sp, ss, maps = [], [], [original]
    for name in names:
        layer_seed = int(torch.randint(0, 2**62, (1,), generator=g))
        _randomise(work.get_submodule(name), layer_seed, recurse, init)
        m = _explain(make_explainer, work, inputs, tgt, batch_size)
        sp.append(spearman(original, m))
        ss.append(ssim(original, m))
        if return_maps:
            maps.append(m)
    kinds = [type(work.get_submodule(name)).__name__ for name in names]
    out = {"layers": names, "kinds": kinds, "spearman": torch.stack(sp), "ssim": torch.stack(ss)}
    if return_maps:
        out["maps"] = torch.stack(maps)
    return out
