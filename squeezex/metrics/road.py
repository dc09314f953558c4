"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci, ICML 2022).

"A Consistent and Efficient Evaluation Strategy for Attribution Methods",
https://arxiv.org/abs/2202.00449 (reference code: github.com/tleemann/road_evaluation,
also shipped as ``pytorch_grad_cam.metrics.road``).

Why not plain deletion? :func:`~squeezex.metrics.faithfulness.deletion_curve` replaces
the removed pixels by a baseline (black, mean or blurred pixels). The perturbed image is
out of the training distribution, so part of the drop in the class probability measures
the removal *artifact*, not the loss of information. Worse, the shape of the removed
region is itself visible: the paper shows that a classifier can read the class off the
binary removal mask alone (*class information leakage*), so that MoRF and LeRF rankings
of attribution methods can contradict each other. ROAD removes pixels by **noisy linear
imputation**: each removed pixel takes the weighted mean of its eight neighbours (1/6
for the four direct ones, 1/12 for the diagonal ones, normalised by the weights inside
the image), all removed pixels of an image at once as one sparse linear system, plus
Gaussian noise of standard deviation ``noise`` (0.01 in the paper). The imputed values
follow the surrounding image, so the removal leaks much less of the removed pattern
and the perturbed images stay closer to natural ones; no retraining is needed.

- :func:`impute_noisy_linear`: the imputation itself.
- :func:`road_curve`: the class probability after removing a fraction of the pixels,
  most relevant first (``order="morf"``) or least relevant first (``"lerf"``).
- :func:`road_morf_auc`: the MoRF curve's mean height, **lower is better** (removing
  the top pixels destroys the evidence).
- :func:`road_lerf_auc`: the LeRF curve's mean height, **higher is better** (removing
  the least relevant pixels keeps the evidence).
- :func:`road_score`: LeRF − MoRF, **higher is better** (``ROADCombined`` of
  pytorch-grad-cam is half of it).

Only images (N×C×H×W) are supported: the imputation is a 2-D neighbourhood scheme.
The solve runs on the CPU with SciPy (float64); the model runs on the inputs' device.
All randomness (tie-breaking, noise) comes from an own ``torch.Generator`` seeded by
``seed``: results are reproducible, independent of ``batch_size``, and the global RNG
is never touched by the curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import splu
from torch import nn

from ..common import as_tuple, eval_mode, select_rows
from .faithfulness import (
    _check_inputs,
    _check_maps,
    _logits,
    _positive_int,
    _targets,
    probabilities,
)

__all__ = [
    "impute_noisy_linear",
    "road_curve",
    "road_morf_auc",
    "road_lerf_auc",
    "road_score",
    "mean_height",
    "NEIGHBOUR_WEIGHTS",
    "DEFAULT_FRACTIONS",
]

#: (dy, dx, weight) of the eight neighbours, as in the paper's reference code.
NEIGHBOUR_WEIGHTS: tuple[tuple[int, int, float], ...] = (
    (-1, -1, 1 / 12),
    (-1, 0, 1 / 6),
    (-1, 1, 1 / 12),
    (0, -1, 1 / 6),
    (0, 1, 1 / 6),
    (1, -1, 1 / 12),
    (1, 0, 1 / 6),
    (1, 1, 1 / 12),
)

#: Fractions of pixels removed by default: the paper's 10 %…90 % range, every 20 %.
DEFAULT_FRACTIONS: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)


# -- the imputation ----------------------------------------------------------------------------
def _linear_system(img: np.ndarray, removed: np.ndarray):
    """The sparse system A·v = b of the removed pixels of a batch, one block per image.

    Row k (the k-th removed pixel in ``np.nonzero`` order, image-major) says
    (Σ_in-image w)·v_k − Σ_removed-neighbours w·v_j = Σ_known-neighbours w·x_j,
    i.e. v_k is the weighted mean of its neighbours inside the image. A is symmetric
    and positive definite when every image keeps at least one pixel. Returns
    ``(A, b, (n, y, x))`` with b of shape (U, C).
    """
    _, c, h, w = img.shape
    n, ys, xs = np.nonzero(removed)
    u = len(n)
    var = np.full(removed.shape, -1, dtype=np.int64)
    var[n, ys, xs] = np.arange(u)
    diag = np.zeros(u)
    rhs = np.zeros((u, c))
    rows, cols, vals = [np.arange(u)], [np.arange(u)], []
    for dy, dx, wt in NEIGHBOUR_WEIGHTS:
        yy, xx = ys + dy, xs + dx
        r = np.flatnonzero((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w))
        nn, y2, x2 = n[r], yy[r], xx[r]
        diag[r] += wt
        j = var[nn, y2, x2]
        unknown = j >= 0
        rows.append(r[unknown])
        cols.append(j[unknown])
        vals.append(np.full(int(unknown.sum()), -wt))
        known = ~unknown
        rhs[r[known]] += wt * img[nn[known], :, y2[known], x2[known]]  # r is unique here
    a = sp.csc_matrix(
        (np.concatenate([diag, *vals]), (np.concatenate(rows), np.concatenate(cols))),
        shape=(u, u),
    )
    return a, rhs, (n, ys, xs)


def _impute(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Noise-free linear imputation of a float64 CPU batch N×C×H×W (``removed`` N×H×W)."""
    out = x.clone()
    if not removed.any():
        return out
    a, b, (n, ys, xs) = _linear_system(x.numpy(), removed.numpy())
    # One LU for all channels. A is a symmetric, diagonally dominant M-matrix: the LU
    # needs no pivoting (diag_pivot_thresh=0, faster than spsolve's partial pivoting).
    v = splu(a, permc_spec="COLAMD", diag_pivot_thresh=0).solve(b).reshape(b.shape)
    out.numpy()[n, :, ys, xs] = v
    return out


def _check_removed(removed: Any, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(removed, torch.Tensor) or removed.dtype != torch.bool:
        what = removed.dtype if isinstance(removed, torch.Tensor) else type(removed).__name__
        raise ValueError(f"removed must be a bool tensor (True = pixel removed), got {what}")
    hw = tuple(x.shape[-2:])
    if tuple(removed.shape) == hw:
        removed = removed.expand(x.shape[0], *hw)
    elif tuple(removed.shape) != (x.shape[0], *hw):
        raise ValueError(
            f"removed must be H×W {hw} or N×H×W {(x.shape[0], *hw)} for images "
            f"{tuple(x.shape)}, got {tuple(removed.shape)}"
        )
    full = removed.flatten(1).all(1)
    if full.any():
        k = torch.nonzero(full)[0, 0].item()
        raise ValueError(f"image {k} has every pixel removed: nothing to impute from")
    return removed.cpu()


def _check_noise(noise: Any) -> float:
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not noise >= 0:
        raise ValueError(f"noise must be a standard deviation ≥ 0, got {noise!r}")
    if not math.isfinite(noise):
        raise ValueError(f"noise must be finite, got {noise!r}")
    return float(noise)


def impute_noisy_linear(
    image: torch.Tensor,
    removed: torch.Tensor,
    *,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """ROAD's noisy linear imputation of the removed pixels (Rong et al., ICML 2022).

    Every removed pixel gets the weighted mean of its eight neighbours — 1/6 for the
    four direct ones, 1/12 for the diagonal ones (:data:`NEIGHBOUR_WEIGHTS`), divided by
    the sum of the weights of the neighbours inside the image — where neighbours that
    are themselves removed enter as unknowns: all removed pixels of an image are solved
    together as one sparse linear system (one factorisation for all channels). Known
    pixels are returned unchanged. Then Gaussian noise of standard deviation ``noise``
    is added to the imputed pixels only.

    Args:
        image: C×H×W or N×C×H×W floating-point images.
        removed: bool, True where a pixel (all its channels) is removed: H×W (the same
            for every image) or N×H×W. Each image must keep at least one pixel.
        noise: absolute standard deviation of the noise, in the image's units; the
            paper's 0.01 is for pixels in [0, 1] (before normalisation: for inputs
            normalised by σ, the same noise is 0.01/σ). 0 gives the deterministic
            imputation.
        generator: the ``torch.Generator`` of the noise (a full C×H×W draw per image,
            of which the removed pixels are used); ``None``: torch's global RNG.

    Returns:
        A tensor like ``image`` (shape, dtype, device).
    """
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a tensor C×H×W or N×C×H×W, got {shape}")
    single = image.dim() == 3
    x = _check_inputs(image[None] if single else image)
    m = _check_removed(removed, x)
    noise = _check_noise(noise)
    out = _impute(x.detach().cpu().double(), m)
    if noise > 0:
        dev = generator.device if generator is not None else "cpu"
        eps = torch.randn(x.shape, generator=generator, dtype=torch.float64, device=dev)
        out = out + noise * eps.cpu()
    out = torch.where(m[:, None].to(x.device), out.to(x), x)
    return out[0] if single else out


# -- the curves --------------------------------------------------------------------------------
def _check_fractions(fractions: Any, p: int) -> torch.Tensor:
    """Pixel counts round(f·P) (half up) for valid fractions 0 ≤ f < 1, increasing."""
    if isinstance(fractions, torch.Tensor | np.ndarray):
        fractions = fractions.tolist()
    if (
        isinstance(fractions, str)
        or not isinstance(fractions, Sequence)
        or not fractions
        or not all(isinstance(f, int | float) and not isinstance(f, bool) for f in fractions)
    ):
        raise ValueError(f"fractions must be a non-empty list of numbers, got {fractions!r}")
    if not all(0 <= f < 1 for f in fractions):
        raise ValueError(f"fractions must lie in [0, 1) (fractions removed), got {fractions!r}")
    if any(b <= a for a, b in zip(fractions, fractions[1:], strict=False)):
        raise ValueError(f"fractions must be strictly increasing, got {fractions!r}")
    counts = [math.floor(f * p + 0.5) for f in fractions]
    if counts[-1] >= p:
        raise ValueError(
            f"fraction {fractions[-1]} removes all {p} pixels: nothing is left to impute from"
        )
    return torch.tensor(counts)


def _ranks(maps: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each pixel's rank by map value, descending (0 = most relevant), ties at random.

    The values are visited in a seeded random permutation and sorted stably: tied pixels
    come in a uniformly random order, distinct values are never reordered.
    """
    flat = maps.detach().flatten(1).cpu().double()
    n, p = flat.shape
    perm = torch.stack([torch.randperm(p, generator=g) for _ in range(n)])
    order = perm.gather(1, flat.gather(1, perm).sort(dim=1, descending=True, stable=True).indices)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(p).expand(n, p))
    return rank


def _check_order(order: Any) -> str:
    if order not in ("morf", "lerf"):
        raise ValueError(f"order must be 'morf' or 'lerf', got {order!r}")
    return order


def road_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: torch.Tensor,
    target: Any,
    *,
    fractions: Sequence[float] | torch.Tensor = DEFAULT_FRACTIONS,
    order: str = "morf",
    noise: float = 0.01,
    seed: int = 0,
    batch_size: int = 64,
    additional_forward_args: Any = None,
    output: str = "softmax",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ROAD curve: the class probability as pixels are removed and imputed.

    For each fraction f, the round(f·P) (half up) pixels of highest map value
    (``order="morf"``, most relevant first) or of lowest value (``"lerf"``, least
    relevant first) are removed from each image and refilled by
    :func:`impute_noisy_linear`; the model's softmax probability of ``target`` is
    recorded. MoRF: a faithful map makes it fall fast (lower is better); LeRF: it should
    stay high (higher is better).

    Args:
        model: a classifier returning N×classes scores (run in eval mode, no_grad).
        inputs: N×C×H×W images (clips are not supported).
        maps: N×1×H×W heatmaps at input resolution.
        target: the class whose probability is recorded: one index for every sample,
            one per sample, or ``None`` for the class predicted on ``inputs``.
        fractions: fractions of pixels removed, strictly increasing in [0, 1) (0: the
            unperturbed input). Default :data:`DEFAULT_FRACTIONS` (0.1, 0.3, …, 0.9);
            the paper and pytorch-grad-cam use 0.1, 0.2, …, 0.9.
        order: ``"morf"`` or ``"lerf"``.
        noise: the imputation noise's standard deviation, absolute (see
            :func:`impute_noisy_linear`); the paper's 0.01 is for [0, 1] pixels.
        seed: seeds an own generator that breaks ties in the map (the pixels of equal
            value are visited in a random permutation, drawn first, one per sample; the
            paper adds 1e-4·N(0, 1) to the min-max normalised map instead, which may also
            reorder close distinct values) and then draws the noise, one C×H×W draw per
            image and fraction, sample-major.
        batch_size: images per imputation and forward pass (the result does not depend
            on it).
        additional_forward_args: extra positional arguments for the model; tensors whose
            first dimension is N are indexed along with the samples.
        output: ``"softmax"`` (default) or ``"sigmoid"`` for a multi-label model.

    Returns:
        ``(fractions, scores)``: the fractions actually removed (counts / P, float32)
        and the N×len(fractions) class probabilities.
    """
    probabilities(torch.zeros(1, 1), output)  # checks the name
    x = _check_inputs(inputs, model)
    if x.dim() != 4:
        raise ValueError(f"ROAD needs N×C×H×W images, got clips {tuple(x.shape)}")
    maps = _check_maps(maps, x)
    order = _check_order(order)
    noise = _check_noise(noise)
    batch_size = _positive_int("batch_size", batch_size)
    n, p = x.shape[0], x.shape[2] * x.shape[3]
    counts = _check_fractions(fractions, p)
    s = len(counts)
    extra = as_tuple(additional_forward_args)
    tgt = _targets(model, x, target, extra, batch_size)
    g = torch.Generator().manual_seed(seed)
    rank = _ranks(maps, g)
    if order == "lerf":
        rank = p - 1 - rank  # least relevant first
    x64 = x.detach().cpu().double()
    total = n * s
    scores = torch.empty(total, dtype=torch.float64, device=x.device)
    with torch.no_grad(), eval_mode(model):
        for start in range(0, total, batch_size):
            t = torch.arange(start, min(start + batch_size, total))
            i, j = t // s, t % s
            removed = (rank[i] < counts[j][:, None]).view(len(t), *x.shape[2:])
            img = _impute(x64[i], removed)
            if noise > 0:
                eps = torch.stack(
                    [torch.randn(x.shape[1:], generator=g, dtype=img.dtype) for _ in range(len(t))]
                )
                img = torch.where(removed[:, None], img + noise * eps, img)
            img = img.to(x)
            idx = i.to(x.device)
            prob = probabilities(_logits(model, img, select_rows(extra, idx, n)), output)
            scores[idx * s + j.to(x.device)] = prob.gather(1, tgt[idx][:, None])[:, 0]
    return (counts.double() / p).float(), scores.view(n, s).float()


def mean_height(fractions: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Trapezoid area over the fractions divided by their span (one point: its value)."""
    span = float(fractions[-1] - fractions[0])
    if len(fractions) == 1 or span <= 0:
        return scores.mean(1)
    return torch.trapezoid(scores, fractions.to(scores.device), dim=1) / span


def road_morf_auc(model: nn.Module, inputs, maps, target, **kwargs) -> torch.Tensor:
    """ROAD, most relevant first: the MoRF :func:`road_curve`'s mean height.

    The trapezoid area over the fractions divided by their span, so it stays a
    probability in [0, 1] whatever the fractions (over [0, 1] it is the plain area, as in
    :func:`~squeezex.metrics.faithfulness.deletion_auc`). **Lower is better.** Keyword
    arguments are those of :func:`road_curve` (except ``order``).

    Returns:
        N floats in [0, 1].
    """
    fractions, scores = road_curve(model, inputs, maps, target, order="morf", **kwargs)
    return mean_height(fractions, scores)


def road_lerf_auc(model: nn.Module, inputs, maps, target, **kwargs) -> torch.Tensor:
    """ROAD, least relevant first: the LeRF :func:`road_curve`'s mean height.

    As :func:`road_morf_auc`, but removing the lowest-ranked pixels first. **Higher is
    better.** Keyword arguments are those of :func:`road_curve` (except ``order``).

    Returns:
        N floats in [0, 1].
    """
    fractions, scores = road_curve(model, inputs, maps, target, order="lerf", **kwargs)
    return mean_height(fractions, scores)


def road_score(model: nn.Module, inputs, maps, target, **kwargs) -> torch.Tensor:
    """ROAD combined: :func:`road_lerf_auc` − :func:`road_morf_auc`, per sample.

    **Higher is better.** The paper argues that MoRF and LeRF should be read together;
    pytorch-grad-cam's ``ROADCombined`` is (LeRF − MoRF) / 2 with plain means over its
    percentiles (the unperturbed score it subtracts cancels). Both curves use the same
    ``seed`` (the same tie-breaking). Keyword arguments are those of :func:`road_curve`
    (except ``order``).

    Returns:
        N floats in [−1, 1].
    """
    lerf = road_lerf_auc(model, inputs, maps, target, **kwargs)
    return lerf - road_morf_auc(model, inputs, maps, target, **kwargs)
