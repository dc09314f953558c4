"""Localisation metrics: how well a heatmap finds the ground-truth region.

Every function takes ``maps`` (N×1×H×W or N×1×T×H×W, non-negative, as the explainers
return them) and boolean ``masks`` of the same spatial size (N×1×… or N×K×…, where K
part masks are united), and returns a float tensor of N per-sample scores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "pointing_game",
    "energy_pointing_game",
    "iou",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
]


def _check(maps: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
    if not masks.flatten(1).any(1).all():
        raise ValueError("every sample needs a non-empty mask")
    return maps.float().flatten(1), masks.flatten(1)


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """1 where the map's maximum falls inside the mask (or within ``tolerance`` pixels).

    The maximum is the first maximal pixel in raster order; a constant map points at
    nothing and scores 0.
    """
    flat_maps, flat_masks = _check(maps, masks)
    if tolerance > 0:
        m = masks.bool().any(1, keepdim=True).float()
        k = 2 * tolerance + 1
        pool = F.max_pool3d if m.dim() == 5 else F.max_pool2d
        flat_masks = pool(m, k, stride=1, padding=tolerance).flatten(1) > 0
    idx = flat_maps.argmax(1)
    hit = flat_masks.gather(1, idx[:, None])[:, 0]
    constant = flat_maps.max(1).values <= flat_maps.min(1).values
    return (hit & ~constant).float()


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
