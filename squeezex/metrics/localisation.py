"""Localisation metrics: how well a heatmap finds the ground-truth region.

Every function takes ``maps`` (N×1×H×W or N×1×T×H×W, non-negative, as the explainers
return them) and boolean ``masks`` of the same spatial size (N×1×… or N×K×…, where K
part masks are united), and returns a float tensor of N per-sample scores
(:func:`iou_at`: N×T, one column per threshold; :func:`box_pointing_game` takes boxes
instead of masks). **Higher is better** for all of them: 1 is a map that finds the
region perfectly. Chance levels differ: the pointing game's is the mask's share of the
image, :func:`mask_auc`'s is 0.5 (a map that ranks mask and background pixels alike).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "coverage",
    "pointing_game",
    "energy_pointing_game",
    "iou",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "iou_at",
    "mask_auc",
    "box_pointing_game",
]


def _check(
    maps: torch.Tensor, masks: torch.Tensor, nonempty: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    if maps.dim() < 3 or maps.shape[1] != 1:
        raise ValueError(f"maps must be N×1×H×W (or N×1×T×H×W), got shape {tuple(maps.shape)}")
    if masks.dim() != maps.dim() or masks.shape[0] != maps.shape[0]:
        raise ValueError(
            f"masks must be N×K×… with the same N and spatial size as maps {tuple(maps.shape)}, "
            f"got {tuple(masks.shape)}"
        )
    if masks.shape[2:] != maps.shape[2:]:
        raise ValueError(
            f"maps {tuple(maps.shape[2:])} and masks {tuple(masks.shape[2:])} differ in size: "
            "explain at input resolution"
        )
    masks = masks.bool().any(1, keepdim=True)
    if nonempty and not masks.flatten(1).any(1).all():
        raise ValueError("every sample needs a non-empty mask")
    return maps.float().flatten(1), masks.flatten(1)


def _pixels(tolerance) -> int:
    """``tolerance`` as a non-negative int (ints, NumPy and 0-d integer tensors)."""
    try:
        if isinstance(tolerance, bool):
            raise TypeError
        value = operator.index(tolerance)
    except TypeError:
        value = -1
    if value < 0:
        raise ValueError(f"tolerance must be a non-negative integer (pixels), got {tolerance!r}")
    return value


def _dilate(masks: torch.Tensor, tolerance: int, norm: str) -> torch.Tensor:
    """Boolean N×1×… masks grown by ``tolerance`` pixels (see :func:`pointing_game`)."""
    m = masks.float()
    spatial = m.dim() - 2
    if norm == "chebyshev":
        pool = F.max_pool3d if spatial == 3 else F.max_pool2d
        return pool(m, 2 * tolerance + 1, stride=1, padding=tolerance) > 0
    # euclidean: offsets d with |d| < tolerance (strictly, as TorchRay), and d = 0
    axis = torch.arange(-tolerance, tolerance + 1, dtype=torch.float32, device=m.device)
    grids = torch.meshgrid(*([axis] * spatial), indexing="ij")
    d2 = sum(g**2 for g in grids)
    kernel = ((d2 < tolerance**2) | (d2 == 0)).float()[None, None]
    conv = F.conv3d if spatial == 3 else F.conv2d
    return conv(m, kernel, padding=tolerance) > 0.5


def pointing_game(
    maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0, norm: str = "chebyshev"
) -> torch.Tensor:
    """1 where the map's maximum falls inside the mask (or within ``tolerance`` pixels).

    The maximum is the first maximal pixel in raster order; a constant map points at
    nothing and scores 0. Higher is better; chance is the mask's share of the image.

    Args:
        maps: N×1×H×W (or N×1×T×H×W) heatmaps.
        masks: boolean N×K×… masks (the K parts are united).
        tolerance: slack in pixels (for clips, frames count as pixels along T too).
        norm: how the slack is measured. ``"chebyshev"`` (default): the mask grown by a
            (2·tolerance+1)-pixel square, so a diagonal neighbour is 1 px away.
            ``"euclidean"``: TorchRay's pointing game (the EBP protocol of Zhang et al.,
            2016, with tolerance 15): a hit when a mask pixel lies at Euclidean distance
            *strictly* below ``tolerance`` from the maximum (tolerance 0 or 1: the
            maximum's own pixel).

    Returns:
        N floats, 1.0 (hit) or 0.0 (miss).
    """
    tolerance = _pixels(tolerance)
    if norm not in ("chebyshev", "euclidean"):
        raise ValueError(f"norm must be 'chebyshev' or 'euclidean', got {norm!r}")
    flat_maps, flat_masks = _check(maps, masks)
    if tolerance > 0:
        united = masks.bool().any(1, keepdim=True)
        flat_masks = _dilate(united, tolerance, norm).flatten(1)
    idx = flat_maps.argmax(1)
    hit = flat_masks.gather(1, idx[:, None])[:, 0]
    constant = flat_maps.max(1).values <= flat_maps.min(1).values
    return (hit & ~constant).float()


def box_pointing_game(
    maps: torch.Tensor,
    boxes: Sequence[torch.Tensor],
    tolerance: int = 0,
    norm: str = "chebyshev",
) -> torch.Tensor:
    """The pointing game against bounding boxes: 1 where the map's maximum is in a box.

    A pixel (row i, column j) covers [j, j+1) × [i, i+1); it belongs to a box
    (x1, y1, x2, y2) when its centre (j + 0.5, i + 0.5) lies in [x1, x2) × [y1, y2).
    For integer boxes that is columns x1 … x2−1 and rows y1 … y2−1, torchvision's
    convention (``torchvision.utils.draw_bounding_boxes``). The boxes are painted
    into a mask and scored by :func:`pointing_game`, so ``tolerance`` and ``norm`` mean
    the same here (parts of boxes outside the image do not matter: the maximum is inside).

    Args:
        maps: N×1×H×W heatmaps.
        boxes: a sequence of N float tensors K×4 (x1, y1, x2, y2 in pixels), K ≥ 1;
            a hit in any of a sample's boxes counts.
        tolerance: slack in pixels, as in :func:`pointing_game`.
        norm: ``"chebyshev"`` or ``"euclidean"``, as in :func:`pointing_game`.

    Returns:
        N floats, 1.0 (hit) or 0.0 (miss). Higher is better.
    """
    if maps.dim() != 4 or maps.shape[1] != 1:
        raise ValueError(f"maps must be N×1×H×W for boxes, got shape {tuple(maps.shape)}")
    n, _, h, w = maps.shape
    if isinstance(boxes, torch.Tensor) or len(boxes) != n:
        got = (
            f"a tensor of shape {tuple(boxes.shape)}"
            if isinstance(boxes, torch.Tensor)
            else (f"{len(boxes)} entries")
        )
        raise ValueError(f"boxes must be a list of {n} K×4 tensors (one per sample), got {got}")
    cols = torch.arange(w, dtype=torch.float64, device=maps.device) + 0.5
    rows = torch.arange(h, dtype=torch.float64, device=maps.device) + 0.5
    masks = torch.zeros(n, 1, h, w, dtype=torch.bool, device=maps.device)
    for i, b in enumerate(boxes):
        b = torch.as_tensor(b, dtype=torch.float64, device=maps.device)
        if b.dim() != 2 or b.shape[1] != 4 or b.shape[0] == 0:
            raise ValueError(
                f"boxes[{i}] must be a K×4 tensor (x1, y1, x2, y2) with K ≥ 1, "
                f"got shape {tuple(b.shape)}"
            )
        if not torch.isfinite(b).all():
            raise ValueError(f"boxes[{i}] has non-finite coordinates")
        x1, y1, x2, y2 = (b[:, k, None] for k in range(4))
        in_x = (cols >= x1) & (cols < x2)  # K×W
        in_y = (rows >= y1) & (rows < y2)  # K×H
        masks[i, 0] = (in_y[:, :, None] & in_x[:, None, :]).any(0)
    if not masks.flatten(1).any(1).all():
        empty = (~masks.flatten(1).any(1)).nonzero()[:, 0].tolist()
        raise ValueError(f"the boxes of samples {empty} cover no pixel of the {h}×{w} map")
    return pointing_game(maps, masks, tolerance=tolerance, norm=norm)


def energy_pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of the map's energy inside the mask, Σ_mask L / Σ L (Wang et al., Score-CAM).

    On non-negative maps this is the relevance mass accuracy of Arras et al.; both are
    reported because both are quoted in the literature.
    """
    flat_maps, flat_masks = _check(maps, masks)
    flat_maps = flat_maps.clamp_min(0)
    total = flat_maps.sum(1)
    inside = (flat_maps * flat_masks).sum(1)
    return torch.where(total > 0, inside / total.clamp_min(1e-12), torch.zeros_like(total))


def relevance_mass_accuracy(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Positive relevance inside the mask over all positive relevance (Arras et al., 2022)."""
    return energy_pointing_game(maps, masks)


def relevance_rank_accuracy(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of the K highest-ranked pixels that lie in the mask, K = mask size (Arras et al.)."""
    flat_maps, flat_masks = _check(maps, masks)
    out = torch.empty(flat_maps.shape[0])
    for i in range(flat_maps.shape[0]):
        k = int(flat_masks[i].sum())
        top = flat_maps[i].topk(k).indices
        out[i] = flat_masks[i, top].float().mean()
    return out


def iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float | str = "mean") -> torch.Tensor:
    """IoU of the mask and the map thresholded at its mean (or at a value in [0, 1])."""
    flat_maps, flat_masks = _check(maps, masks)
    if threshold == "mean":
        thr = flat_maps.mean(1, keepdim=True)
    elif isinstance(threshold, int | float):
        thr = torch.full((flat_maps.shape[0], 1), float(threshold))
    else:
        raise ValueError(f"threshold must be 'mean' or a number, got {threshold!r}")
    pred = flat_maps > thr
    inter = (pred & flat_masks).sum(1).float()
    union = (pred | flat_masks).sum(1).float()
    return inter / union.clamp_min(1)


def iou_at(
    maps: torch.Tensor, masks: torch.Tensor, thresholds: Sequence[float] = (0.25, 0.5, 0.75)
) -> torch.Tensor:
    """IoU of the mask and the map thresholded at each of ``thresholds`` (map ≥ t).

    Args:
        maps: N×1×… heatmaps in [0, 1].
        masks: boolean N×K×… masks (the K parts are united).
        thresholds: T values; a pixel is predicted where the map is ≥ the threshold.

    Returns:
        N×T floats in [0, 1], one column per threshold. Higher is better.
    """
    if isinstance(thresholds, int | float):
        thresholds = (thresholds,)
    thr = [float(t) for t in thresholds]
    if not thr:
        raise ValueError("thresholds is empty: give at least one value")
    flat_maps, flat_masks = _check(maps, masks)
    t = torch.tensor(thr, dtype=flat_maps.dtype, device=flat_maps.device)
    pred = flat_maps[:, None, :] >= t[None, :, None]  # N×T×P
    target = flat_masks[:, None, :]
    inter = (pred & target).sum(2).float()
    union = (pred | target).sum(2).float()
    return inter / union.clamp_min(1)


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of a 1-d tensor, ties sharing their average rank (float64)."""
    values, order = torch.sort(x, stable=True)
    _, inverse, counts = torch.unique_consecutive(values, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2  # the average of ranks (end-count+1) … end
    ranks = torch.empty(x.numel(), dtype=torch.float64, device=x.device)
    ranks[order] = mean_rank[inverse]
    return ranks


def mask_auc(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """ROC AUC of the map's values as a detector of mask pixels, per sample.

    The probability that a random mask pixel scores higher than a random background
    pixel, ties counting one half: the Mann-Whitney U statistic over n₊·n₋, computed with
    average ranks (equal to ``sklearn.metrics.roc_auc_score(mask, map)``). Threshold-free,
    unlike :func:`iou`. 1 is perfect, 0.5 is chance (a constant map scores exactly 0.5),
    0 is a map that prefers the background. Higher is better.

    Raises:
        ValueError: when a mask is empty or covers the whole map (AUC undefined).
    """
    flat_maps, flat_masks = _check(maps, masks)
    if flat_masks.all(1).any():
        full = flat_masks.all(1).nonzero()[:, 0].tolist()
        raise ValueError(
            f"the masks of samples {full} cover the whole map: AUC needs background pixels"
        )
    out = torch.empty(flat_maps.shape[0], dtype=torch.float64)
    for i in range(flat_maps.shape[0]):
        ranks = _average_ranks(flat_maps[i])
        pos = flat_masks[i]
        n_pos = int(pos.sum())
        n_neg = pos.numel() - n_pos
        u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
        out[i] = u / (n_pos * n_neg)
    return out.float()


def coverage(maps: torch.Tensor, parts: torch.Tensor, level: float = 0.5) -> torch.Tensor:
    """Share of the K parts of an explanation that the map covers.

    A part counts as covered when the map reaches at least ``level`` × its maximum
    somewhere inside it. For a class decided by two parts (an8Flower double-12c: leaf
    and bud), a map on one of them is half an explanation: the pointing game scores it
    1, coverage 0.5. Parts with no visible pixel are left out; a constant map covers
    nothing (0). Higher is better.

    Args:
        maps: N×1×H×W (or N×1×T×H×W) heatmaps.
        parts: boolean N×K×… masks, one channel per part (not united).
        level: the share of the map's maximum a part must reach.

    Returns:
        N floats in [0, 1] (NaN for a sample with no visible part).
    """
    if not 0 < level <= 1:
        raise ValueError(f"level must be in (0, 1], got {level!r}")
    flat_maps, _ = _check(maps, parts, nonempty=False)
    k = parts.shape[1]
    flat_parts = parts.bool().reshape(parts.shape[0], k, -1).to(flat_maps.device)
    hi, lo = flat_maps.max(1).values, flat_maps.min(1).values
    inside = torch.where(
        flat_parts, flat_maps[:, None], torch.full_like(flat_maps[:, None], -math.inf)
    )
    reached = inside.max(2).values >= (level * hi)[:, None]
    visible = flat_parts.any(2)
    covered = (reached & visible).sum(1).float() / visible.sum(1).float()
    return torch.where(hi > lo, covered, torch.zeros_like(covered))
