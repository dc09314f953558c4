"""Diagnostics of SE vectors and of maps: how spread the SE vectors are, how much the
channels a rule selects overlap across images and classes, how alike two methods' maps are.

Getting the inputs for a batch ``x`` with labels ``y``::

    v = SEAttribution(model, selection="topk").se_vector(x)   # an SEVector
    report = se_vector_report(v.s, y, selected=v.selected)
    r = map_correlation(get_explainer("se", model).attribute(x),
                        get_explainer("activation-mean", model).attribute(x))

(for another rule on the same vectors: ``select_channels(v.s, v.logits, "paper").selected``).
Everything in the report is a plain Python number, so it goes to JSON as it is (``nan``
where a quantity is undefined: one image, one class).
"""

from __future__ import annotations

import math

import torch

__all__ = ["se_vector_report", "map_correlation", "jaccard_matrix"]


def _check_report_inputs(s, targets, selected) -> None:
    if not isinstance(s, torch.Tensor) or s.dim() != 2 or 0 in s.shape:
        raise ValueError(f"s must be a non-empty N×C tensor, got {_shape(s)}")
    if not s.is_floating_point() or not torch.isfinite(s).all():
        raise ValueError("s must be finite floating-point SE vectors (after the sigmoid)")
    if s.min() < 0 or s.max() > 1:
        raise ValueError(
            f"s must be SE vectors after the sigmoid, in [0, 1]; got values in "
            f"[{s.min().item():.3g}, {s.max().item():.3g}] (pass sigmoid(logits))"
        )
    n = s.shape[0]
    if (
        not isinstance(targets, torch.Tensor)
        or targets.shape != (n,)
        or targets.is_floating_point()
        or targets.dtype == torch.bool
    ):
        raise ValueError(
            f"targets must be an integer tensor of shape ({n},), got {_shape(targets)}"
        )
    if selected is not None and (
        not isinstance(selected, torch.Tensor)
        or selected.dtype != torch.bool
        or selected.shape != s.shape
    ):
        raise ValueError(
            f"selected must be a bool tensor shaped like s {tuple(s.shape)}, got {_shape(selected)}"
        )


def _shape(t) -> str:
    if isinstance(t, torch.Tensor):
        return f"{t.dtype} tensor of shape {tuple(t.shape)}"
    return type(t).__name__


def jaccard_matrix(sets: torch.Tensor) -> torch.Tensor:
    """Pairwise Jaccard overlap ``|A∩B| / |A∪B|`` of the rows of an M×C bool tensor (M×M,
    float64). Two empty sets are taken as identical (overlap 1)."""
    a = sets.to(torch.float64)
    inter = a @ a.T
    size = a.sum(1)
    union = size[:, None] + size[None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))


def _mean_pairs(matrix: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean of the off-diagonal upper triangle (where ``mask``); nan without any pair."""
    m = matrix.shape[0]
    upper = torch.ones(m, m, dtype=torch.bool, device=matrix.device).triu(1)
    keep = upper if mask is None else upper & mask
    return matrix[keep].mean().item() if keep.any() else math.nan


def _selection_report(selected: torch.Tensor, targets: torch.Tensor) -> dict:
    pairs = jaccard_matrix(selected)
    same = targets[:, None] == targets[None, :]
    classes = targets.unique()
    freq = torch.stack([selected[targets == c].double().mean(0) for c in classes])
    majority = freq >= 0.5  # channels selected in at least half of the class's images
    kept = majority.any(1)  # a class with no majority channel has no set to compare
    return {
        "selected_per_image_mean": selected.sum(1).double().mean().item(),
        "jaccard_images": _mean_pairs(pairs),
        "jaccard_same_class": _mean_pairs(pairs, same),
        "jaccard_other_class": _mean_pairs(pairs, ~same),
        "jaccard_classes": _mean_pairs(jaccard_matrix(majority[kept])),
        "classes_without_majority": int((~kept).sum()),
        "distinct_selections": int(torch.unique(selected, dim=0).shape[0]),
    }


def se_vector_report(
    s: torch.Tensor, targets: torch.Tensor, *, selected: torch.Tensor | None = None
) -> dict:
    """How spread a set of SE vectors is, and how stable the channels a rule selects are.

    Args:
        s: N×C SE vectors after the sigmoid (``SEAttribution.se_vector(x).s``).
        targets: N integer labels (ground truth or predicted).
        selected: N×C bool, the channels a rule keeps (``.selected`` of an
            :class:`~squeezex.explainers.se.SEVector`, or :func:`select_channels`).

    Returns:
        A dict of plain numbers: ``n_images``, ``n_channels``, ``n_classes``;
        ``s_min``, ``s_max``; ``image_std_mean`` (the std of s over the channels of one
        image, averaged over images) and ``channel_std_mean`` (the std of one channel
        over the images, averaged over channels), both population stds (ddof 0, as the
        paper's rule); ``s_median``. With ``selected``: ``selected_per_image_mean``;
        ``jaccard_images``, the mean Jaccard overlap of the selected sets over all pairs
        of images (1: every image selects the same channels, 0: disjoint), and the same
        over pairs of one class (``jaccard_same_class``) and of different classes
        (``jaccard_other_class``); ``jaccard_classes``, the mean pairwise Jaccard of the
        classes' *majority sets* (the channels a class selects in at least half of its
        images, i.e. per-class selection frequency ≥ 0.5), over the classes that have
        one (``classes_without_majority`` counts the others, so that two empty sets never
        read as "the same channels"); ``distinct_selections``, the number of different
        selected sets. Two empty image selections overlap 1; a quantity without any pair
        (one image, one class) is ``nan``.

    Raises:
        ValueError: ``s`` is not N×C in [0, 1], ``targets`` not N integers, ``selected``
            not a bool tensor shaped like ``s``.
    """
    _check_report_inputs(s, targets, selected)
    targets = targets.to(s.device)
    d = s.detach().to(torch.float64)
    report = {
        "n_images": int(d.shape[0]),
        "n_channels": int(d.shape[1]),
        "n_classes": int(targets.unique().numel()),
        "s_min": d.min().item(),
        "s_max": d.max().item(),
        "s_median": d.median().item(),
        "image_std_mean": d.std(1, unbiased=False).mean().item(),
        "channel_std_mean": d.std(0, unbiased=False).mean().item(),
    }
    if selected is not None:
        report.update(_selection_report(selected.to(s.device), targets))
    return report


def map_correlation(a, b) -> torch.Tensor:
    """Per-sample Pearson correlation of two batches of maps (N×H×W, N×1×H×W or any N×…).

    Each sample's maps are flattened and correlated in float64. A sample where either
    map is constant (zero variance, e.g. an all-zero map) has no correlation: ``nan``.
    Returns an N float64 tensor.

    Raises:
        ValueError: the two batches differ in shape, or are not N×… with N ≥ 1.
    """
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape or a.dim() < 2 or a.shape[0] == 0:
        raise ValueError(
            f"map_correlation needs two N×… batches of the same shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    x = a.detach().to(torch.float64).flatten(1)
    y = b.detach().to(device=a.device, dtype=torch.float64).flatten(1)
    constant = (x.amax(1) == x.amin(1)) | (y.amax(1) == y.amin(1))  # exact, before rounding
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    r = (x * y).sum(1) / (x.square().sum(1).sqrt() * y.square().sum(1).sqrt())
    return torch.where(constant, torch.full_like(r, math.nan), r.clamp(-1, 1))
