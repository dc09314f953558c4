"""Faithfulness metrics: does the model's output really depend on what the map highlights?

They need the model (no masks), and read as follows:

- :func:`deletion_curve` / :func:`deletion_auc` (Petsiuk et al., RISE, BMVC 2018): remove
  pixels in the map's order, most important first, replacing them by a baseline (a
  blurred, zero or mean image), and record the class probability. A faithful map makes
  it fall fast: **lower deletion AUC is better**.
- :func:`insertion_curve` / :func:`insertion_auc`: start from the baseline and put the
  pixels back in the map's order; the probability should rise fast: **higher insertion
  AUC is better**.
- :func:`infidelity_score` (Yeh et al., NeurIPS 2019; Captum's ``infidelity``): the mean
  squared error between the map's predicted effect of a perturbation I, Iᵀ·map, and the
  real change of the model's output, f(x) − f(x − I). **Lower is better**. The default
  perturbation removes random squares (to the deletion baseline); Yeh et al.'s small
  Gaussian noise is an option, but it measures the model more than the map (see there).
- :func:`sensitivity_score` (Yeh et al.; Captum's ``sensitivity_max``): how much the map
  changes when the input moves within a small ball, max ‖map(x+δ) − map(x)‖ / ‖map(x)‖.
  **Lower is better** (a stable explanation), though a constant map scores a perfect 0,
  so read it beside the others.

All randomness (the perturbations of infidelity and sensitivity) comes from a
``torch.Generator`` seeded by ``seed``: results are reproducible and the global RNG is
never touched. The model runs under ``torch.no_grad()`` in eval mode, every module's
``training`` flag restored afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torchvision.transforms.functional as TF
from captum.metrics import infidelity, sensitivity_max
from torch import nn

from ..common import as_tuple, check_inputs, eval_mode, normalize_target, select_rows

__all__ = [
    "deletion_curve",
    "insertion_curve",
    "deletion_auc",
    "probabilities",
    "insertion_auc",
    "infidelity_score",
    "sensitivity_score",
    "perturbation_baseline",
]


# -- shared checks -----------------------------------------------------------------------------
def _check_inputs(inputs: Any, model: nn.Module | None = None) -> torch.Tensor:
    return check_inputs(inputs, model)


def _check_maps(maps: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(maps, torch.Tensor):
        raise ValueError(f"maps must be a tensor N×1×H×W, got {type(maps)}")
    expected = (x.shape[0], 1, *x.shape[2:])
    if tuple(maps.shape) != expected:
        raise ValueError(
            f"maps must be N×1×… at input resolution, {expected} for inputs "
            f"{tuple(x.shape)}, got {tuple(maps.shape)}"
        )
    if not torch.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values")
    return maps.to(device=x.device)


#: How a model's scores become the probability a curve records.
OUTPUTS = ("softmax", "sigmoid")


def _check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")


def probabilities(logits: torch.Tensor, output: str = "softmax") -> torch.Tensor:
    """The class probabilities (float64) of N×classes scores: ``"softmax"`` over the
    classes (single-label), or ``"sigmoid"`` of each output on its own (multi-label: each
    output is one attribute's yes/no, and a softmax across attributes would make
    them compete)."""
    _check_output(output)
    x = logits.double()
    return x.softmax(1) if output == "softmax" else x.sigmoid()


def _logits(model: nn.Module, x: torch.Tensor, extra: tuple) -> torch.Tensor:
    out = model(x, *extra)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the model must return N×classes scores, got {shape}")
    return out


def _targets(model, x, target, extra, batch_size: int) -> torch.Tensor:
    """Per-sample class indices; ``None`` means the class the model predicts for ``x``."""
    n = x.shape[0]
    tgt = normalize_target(target, n, x.device)
    if tgt is not None:
        return tgt
    with torch.no_grad(), eval_mode(model):
        preds = []
        for s in range(0, n, batch_size):
            idx = torch.arange(s, min(s + batch_size, n), device=x.device)
            preds.append(_logits(model, x[idx], select_rows(extra, idx, n)).argmax(1))
    return torch.cat(preds)


def _positive_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return v


# -- deletion / insertion ----------------------------------------------------------------------
def perturbation_baseline(
    inputs: torch.Tensor, baseline: str | float | torch.Tensor = "blur", blur_sigma=None
) -> torch.Tensor:
    """The image that replaces deleted pixels (deletion) or that insertion starts from.

    Args:
        inputs: N×C×H×W (or N×C×T×H×W) images.
        baseline: ``"blur"`` (a Gaussian blur of each image, RISE's insertion start),
            ``"zero"``, ``"mean"`` (each image's per-channel mean), a number, or a tensor
            broadcastable to ``inputs``.
        blur_sigma: the blur's standard deviation in pixels; default 5 % of the longer
            image side. The kernel spans ±3σ (capped by the image size; reflect padding).

    Returns:
        A tensor shaped like ``inputs``.
    """
    x = _check_inputs(inputs)
    if isinstance(baseline, str):
        if baseline == "zero":
            return torch.zeros_like(x)
        if baseline == "mean":
            return x.mean(dim=tuple(range(2, x.dim())), keepdim=True).expand_as(x).clone()
        if baseline == "blur":
            h, w = x.shape[-2:]
            sigma = 0.05 * max(h, w) if blur_sigma is None else float(blur_sigma)
            if not sigma > 0:
                raise ValueError(f"blur_sigma must be positive, got {blur_sigma!r}")
            half = min(math.ceil(3 * sigma), h - 1, w - 1)  # reflect padding needs < size
            if half < 1:
                return x.clone()
            flat = x.reshape(x.shape[0], -1, h, w)  # clips: blur every frame spatially
            out = TF.gaussian_blur(flat, [2 * half + 1] * 2, [sigma, sigma])
            return out.reshape(x.shape)
        raise ValueError(
            f"baseline must be 'blur', 'zero', 'mean', a number or a tensor, got {baseline!r}"
        )
    if isinstance(baseline, int | float) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if isinstance(baseline, torch.Tensor):
        if not baseline.is_floating_point():
            raise ValueError(f"a baseline tensor must be floating point, got {baseline.dtype}")
        try:
            return torch.broadcast_to(baseline.to(x), x.shape).clone()
        except RuntimeError:
            raise ValueError(
                f"baseline of shape {tuple(baseline.shape)} does not broadcast to inputs "
                f"{tuple(x.shape)}"
            ) from None
    raise ValueError(
        f"baseline must be 'blur', 'zero', 'mean', a number or a tensor, got {baseline!r}"
    )


def _curve(
    mode: str,
    model: nn.Module,
    inputs: torch.Tensor,
    maps: torch.Tensor,
    target: Any,
    steps: int,
    baseline,
    batch_size: int,
    additional_forward_args: Any,
    blur_sigma,
    output: str = "softmax",
) -> tuple[torch.Tensor, torch.Tensor]:
    _check_output(output)
    x = _check_inputs(inputs, model)
    maps = _check_maps(maps, x)
    steps = _positive_int("steps", steps)
    batch_size = _positive_int("batch_size", batch_size)
    n = x.shape[0]
    extra = as_tuple(additional_forward_args)
    base = perturbation_baseline(x, baseline, blur_sigma)
    tgt = _targets(model, x, target, extra, batch_size)

    flat = maps.flatten(1)
    p = flat.shape[1]
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices  # ties: by index
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(p, device=x.device).expand(n, p))
    counts = torch.tensor(  # pixels changed after step j: round(j·P/steps), half up
        [(j * p + steps // 2) // steps for j in range(steps + 1)], device=x.device
    )
    fractions = counts.double() / p

    total = n * (steps + 1)
    scores = torch.empty(total, dtype=torch.float64, device=x.device)
    spatial = (1, *x.shape[2:])
    with torch.no_grad(), eval_mode(model):
        for s in range(0, total, batch_size):
            t = torch.arange(s, min(s + batch_size, total), device=x.device)
            i, j = t // (steps + 1), t % (steps + 1)
            changed = (rank[i] < counts[j][:, None]).view(len(t), *spatial)
            if mode == "deletion":
                img = torch.where(changed, base[i], x[i])
            else:
                img = torch.where(changed, x[i], base[i])
            prob = probabilities(_logits(model, img, select_rows(extra, i, n)), output)
            scores[t] = prob.gather(1, tgt[i][:, None])[:, 0]
    return fractions.float(), scores.view(n, steps + 1).float()


_CURVE_ARGS = """
    Args:
        model: a classifier returning N×classes scores (run in eval mode, no_grad).
        inputs: N×C×H×W (or N×C×T×H×W) images.
        maps: N×1×… heatmaps at input resolution; pixels are ranked by value,
            descending, ties in raster order (a stable sort).
        target: the class whose softmax probability is recorded: one index for every
            sample, one per sample, or ``None`` for the class predicted on ``inputs``.
        steps: the curve has ``steps + 1`` points; after step j, round(j·P/steps) of the
            P pixels have been changed (all channels of a pixel together).
        baseline: ``"blur"`` (default), ``"zero"``, ``"mean"``, a number or a tensor
            broadcastable to ``inputs`` (see :func:`perturbation_baseline`).
        batch_size: images per forward pass; all N·(steps+1) images of the curves go
            through the model in chunks of this size (the result does not depend on it).
        output: ``"softmax"`` (default) or ``"sigmoid"`` for a multi-label model (see
            :func:`probabilities`).
        additional_forward_args: extra positional arguments for the model; tensors whose
            first dimension is N are indexed along with the samples.
        blur_sigma: the ``"blur"`` baseline's σ in pixels (default 5 % of the image side).

"""


def deletion_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: torch.Tensor,
    target: Any,
    *,
    steps: int = 20,
    baseline: str | float | torch.Tensor = "blur",
    batch_size: int = 64,
    additional_forward_args: Any = None,
    blur_sigma: float | None = None,
    output: str = "softmax",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The deletion curve: the class probability as the map's top pixels are removed.

    Pixels are replaced by the baseline, most important first.
    {args}
    Returns:
        ``(fractions, scores)``: the fractions of pixels deleted, a (steps+1,) tensor
        from 0 to 1, and the N×(steps+1) class probabilities.
    """
    return _curve(
        "deletion",
        model,
        inputs,
        maps,
        target,
        steps,
        baseline,
        batch_size,
        additional_forward_args,
        blur_sigma,
        output,
    )


def insertion_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: torch.Tensor,
    target: Any,
    *,
    steps: int = 20,
    baseline: str | float | torch.Tensor = "blur",
    batch_size: int = 64,
    additional_forward_args: Any = None,
    blur_sigma: float | None = None,
    output: str = "softmax",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The insertion curve: the class probability as the map's top pixels are put back.

    Starts from the baseline image and restores the input's pixels, most important first.
    {args}
    Returns:
        ``(fractions, scores)``: the fractions of pixels inserted, a (steps+1,) tensor
        from 0 to 1, and the N×(steps+1) class probabilities.
    """
    return _curve(
        "insertion",
        model,
        inputs,
        maps,
        target,
        steps,
        baseline,
        batch_size,
        additional_forward_args,
        blur_sigma,
        output,
    )


def deletion_auc(model: nn.Module, inputs, maps, target, **kwargs) -> torch.Tensor:
    """Area under :func:`deletion_curve` (trapezoid rule over fractions in [0, 1]).

    Lower is better: a faithful map's top pixels carry the class evidence. Keyword
    arguments are those of :func:`deletion_curve`.

    Returns:
        N floats in [0, 1].
    """
    fractions, scores = deletion_curve(model, inputs, maps, target, **kwargs)
    return torch.trapezoid(scores, fractions, dim=1)


def insertion_auc(model: nn.Module, inputs, maps, target, **kwargs) -> torch.Tensor:
    """Area under :func:`insertion_curve` (trapezoid rule over fractions in [0, 1]).

    Higher is better. Keyword arguments are those of :func:`insertion_curve`.

    Returns:
        N floats in [0, 1].
    """
    fractions, scores = insertion_curve(model, inputs, maps, target, **kwargs)
    return torch.trapezoid(scores, fractions, dim=1)


for _f in (deletion_curve, insertion_curve):
    if _f.__doc__:  # None under python -OO
        _f.__doc__ = _f.__doc__.replace("    {args}\n", _CURVE_ARGS)


# -- Captum's infidelity and sensitivity -------------------------------------------------------
def _captum_target(tgt: torch.Tensor | None):
    """Captum expands a per-sample target only when it has more than one element: a
    single sample's target goes as a 0-d tensor, which applies to every copy."""
    return tgt[0] if tgt is not None and tgt.numel() == 1 else tgt


class _SeededNoise:
    """Pre-drawn perturbations, handed out in Captum's repeat-interleaved batch order.

    Captum calls the perturbation function on the inputs repeated ``k`` times per sample
    (sample-major), ``k`` depending on its batching; drawing all ``n_perturb`` draws up
    front makes the result independent of that batching.
    """

    def __init__(self, noise: torch.Tensor) -> None:
        self.noise = noise  # n_perturb × N × …
        self.offset = 0

    def take(self, n_rows: int) -> torch.Tensor:
        n = self.noise.shape[1]
        if n_rows % n:
            raise RuntimeError(f"Captum asked for {n_rows} perturbations of {n} samples")
        k = n_rows // n
        chunk = self.noise[self.offset : self.offset + k]
        self.offset += k
        return chunk.transpose(0, 1).reshape(n_rows, *self.noise.shape[2:])


def _square_masks(n_perturb: int, x: torch.Tensor, square: int, p: float, g) -> torch.Tensor:
    """n_perturb × N × 1 × H × W masks of removed squares: each draw tiles the image into
    ``square``-pixel cells (the grid shifted by its own random offset) and removes each
    cell with probability ``p``; a draw that would remove nothing inside the image gets
    the cell under a random pixel instead."""
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    gh, gw = h // square + 2, w // square + 2
    cells = torch.rand((n_perturb, n, gh, gw), generator=g) < p
    oy, ox = torch.randint(0, square, (2, n_perturb, 1), generator=g)
    rows = (torch.arange(h) + oy) // square  # n_perturb × H: the cell row of each pixel row
    cols = (torch.arange(w) + ox) // square
    k = torch.arange(n_perturb)[:, None, None, None]
    i = torch.arange(n)[None, :, None, None]

    def pixels():
        return cells[k, i, rows[:, None, :, None], cols[:, None, None, :]]

    empty = ~pixels().flatten(2).any(2)
    if empty.any():  # never a draw that removes nothing (its change would be 0 = 0)
        kk, ii = empty.nonzero(as_tuple=True)
        r = torch.randint(0, h, (len(kk),), generator=g)
        c = torch.randint(0, w, (len(kk),), generator=g)
        cells[kk, ii, rows[kk, r], cols[kk, c]] = True
    masks = pixels()[:, :, None]
    return masks.reshape(n_perturb, n, 1, *([1] * (x.dim() - 4)), h, w).to(x.device)


def infidelity_score(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: torch.Tensor,
    target: Any,
    *,
    perturbation: str = "squares",
    n_perturb: int = 10,
    noise: float | None = None,
    square: int | None = None,
    p: float | None = None,
    baseline: str | float | torch.Tensor = "zero",
    seed: int = 0,
    normalize: bool = True,
    batch_size: int | None = None,
    additional_forward_args: Any = None,
) -> torch.Tensor:
    """Explanation infidelity (Yeh et al., 2019), with seeded perturbations.

    Wraps ``captum.metrics.infidelity``: for perturbations I, infidelity = mean over I of
    (Iᵀ·Φ − (f(x) − f(x − I)))², where f is the model's output (logit) at ``target`` and
    Φ the map broadcast over the input's channels (N×1×H×W → N×C×H×W). Lower is better.

    Two perturbations:

    * ``"squares"`` (default): random ``square``-pixel squares of the image are replaced
      by ``baseline`` (the deletion baseline), i.e. I = (x − baseline) on the squares and
      0 elsewhere. Removing a region changes the output by roughly the evidence the region
      carried, which is what a map claims to show, so the score ranks maps: the random
      and the constant map score alike and far worse than SE, Grad-CAM or saliency.
    * ``"gaussian"``: I ~ N(0, noise²) on every value (Yeh et al.'s default). With a
      small σ the output change of a ReLU network is mostly second order, so this measures
      the *model's* non-linearity more than the map: on the same model every
      non-negative map — random and constant included — scores about the same. Kept for
      comparison with published numbers; the benchmark does not rank it.

    Both measured on the benchmark's an8Flower single-6c model by
    ``benchmarks/faithfulness_baselines.py`` (its JSON holds the numbers).

    Args:
        model: a classifier returning N×classes scores (run in eval mode).
        inputs: N×C×H×W (or N×C×T×H×W) images.
        maps: N×1×… heatmaps at input resolution.
        target: one class index for every sample, one per sample, or ``None`` for the
            class predicted on ``inputs``.
        perturbation: ``"squares"`` or ``"gaussian"``.
        n_perturb: perturbations per sample.
        noise: standard deviation of the Gaussian perturbation (default 0.1; only with
            ``"gaussian"``).
        square: side of the removed squares in pixels (default: 1/8 of the image side;
            only with ``"squares"``).
        p: probability that a square is removed (default 0.1; at least one is, per draw;
            only with ``"squares"``).
        baseline: what removed squares become (see :func:`perturbation_baseline`).
        seed: seeds the perturbations (own generator; global RNG untouched).
        normalize: Captum's ``normalize``: rescale the map by the least-squares optimal
            β first, so the score does not depend on the map's scale. On by default
            because maps here are min-max normalised, so their scale says nothing.
        batch_size: Captum's ``max_examples_per_batch`` (at least N are processed
            together); the result does not depend on it.
        additional_forward_args: extra positional arguments for the model.

    Returns:
        N non-negative floats.
    """
    x = _check_inputs(inputs, model)
    maps = _check_maps(maps, x)
    n_perturb = _positive_int("n_perturb", n_perturb)
    draws = _infidelity_draws(x, perturbation, n_perturb, noise, square, p, baseline, seed)
    n = x.shape[0]
    extra = as_tuple(additional_forward_args)
    tgt = _targets(model, x, target, extra, n if batch_size is None else max(batch_size, n))

    def perturb(inp: torch.Tensor):
        pert = draws.take(inp.shape[0])
        return pert, inp - pert

    attributions = maps.to(x.dtype).expand_as(x).contiguous()
    with eval_mode(model):
        out = infidelity(
            model,
            perturb,
            x,
            attributions,
            additional_forward_args=additional_forward_args,
            target=_captum_target(tgt),
            n_perturb_samples=n_perturb,
            max_examples_per_batch=None if batch_size is None else max(batch_size, n),
            normalize=normalize,
        )
    return out.reshape(n)


def _infidelity_draws(x, perturbation, n_perturb, noise, square, p, baseline, seed) -> _SeededNoise:
    """Every perturbation I of :func:`infidelity_score`, drawn up front."""
    g = torch.Generator().manual_seed(seed)
    if perturbation not in ("squares", "gaussian"):
        raise ValueError(f"perturbation must be 'squares' or 'gaussian', got {perturbation!r}")
    given = [k for k, v in (("noise", noise), ("square", square), ("p", p)) if v is not None]
    wrong = [k for k in given if (k == "noise") == (perturbation == "squares")]
    if wrong:
        raise ValueError(f"{', '.join(wrong)} does not apply to {perturbation!r} perturbations")
    if perturbation == "gaussian":
        noise = 0.1 if noise is None else noise
        if not noise > 0:
            raise ValueError(f"noise must be a positive standard deviation, got {noise!r}")
        return _SeededNoise(
            (torch.randn((n_perturb, *x.shape), generator=g, dtype=torch.float64) * noise).to(x)
        )
    p = 0.1 if p is None else p
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p!r}")
    side = max(1, min(x.shape[-2:]) // 8) if square is None else _positive_int("square", square)
    removed = _square_masks(n_perturb, x, side, p, g)
    delta = x - perturbation_baseline(x, baseline)
    return _SeededNoise(removed * delta.unsqueeze(0))


def sensitivity_score(
    explain: Any,
    inputs: torch.Tensor | tuple[torch.Tensor, ...],
    target: Any,
    *,
    radius: float = 0.02,
    n_perturb: int = 10,
    seed: int = 0,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Max-sensitivity of an explanation (Yeh et al., 2019) with seeded perturbations.

    Wraps ``captum.metrics.sensitivity_max``: max over δ ~ U(−radius, radius)ⁿ of
    ‖Φ(x + δ) − Φ(x)‖_F / ‖Φ(x)‖_F. Captum's default perturbation uses the global RNG;
    here the draws come from an own generator seeded by ``seed``. The explainer is called
    under ``torch.no_grad()`` (as Captum does). Lower is better (stabler maps), but a
    constant map scores 0.

    Args:
        explain: a Captum ``Attribution`` (its ``attribute(inputs, target=...)`` is used)
            or a callable ``explain(inputs, target=...)`` returning the maps.
        inputs: N×C×H×W (or N×C×T×H×W) images, or a tuple of tensors (all perturbed).
        target: one class index for every sample, one per sample, or ``None`` (passed on
            to the explainer: each perturbed input is then explained for its own
            predicted class).
        radius: half-width of the uniform perturbation of every input value.
        n_perturb: perturbations per sample.
        seed: seeds the perturbations (own generator; global RNG untouched).
        batch_size: Captum's ``max_examples_per_batch`` (at least N are processed
            together); the result does not depend on it.

    Returns:
        N non-negative floats.
    """
    fn: Callable = explain.attribute if hasattr(explain, "attribute") else explain
    if not callable(fn):
        raise ValueError(
            f"explain must be a Captum Attribution or a callable, got {type(explain).__name__}"
        )
    single = isinstance(inputs, torch.Tensor)
    tensors = (inputs,) if single else tuple(inputs)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError("inputs must be a tensor or a tuple of tensors")
    _check_inputs(tensors[0])
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors):
        raise ValueError(f"all input tensors need the same batch size {n}")
    n_perturb = _positive_int("n_perturb", n_perturb)
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    tgt = normalize_target(target, n, tensors[0].device)
    g = torch.Generator().manual_seed(seed)
    draws = [
        _SeededNoise(
            (
                (torch.rand((n_perturb, *t.shape), generator=g, dtype=torch.float64) * 2 - 1)
                * radius
            ).to(t)
        )
        for t in tensors
    ]

    def perturb(inp):
        inp = (inp,) if isinstance(inp, torch.Tensor) else inp
        out = tuple(t + d.take(t.shape[0]) for t, d in zip(inp, draws, strict=True))
        return out[0] if single else out

    def explanation(inp, target=None):
        if single and isinstance(inp, tuple):  # Captum passes the clean input as a tuple
            (inp,) = inp
        out = fn(inp, target=target)
        # always a tuple: Captum iterates over the clean explanation as a tuple of tensors
        return (out.float(),) if isinstance(out, torch.Tensor) else tuple(o.float() for o in out)

    out = sensitivity_max(
        explanation,
        inputs if single else tensors,
        perturb_func=perturb,
        n_perturb_samples=n_perturb,
        max_examples_per_batch=None if batch_size is None else max(batch_size, n),
        target=_captum_target(tgt),
    )
    return out.reshape(n)
