"""Reference maps that need the ground truth, scored beside every method.

* ``centre``: a Gaussian at the image centre: what a dataset's position prior alone scores.
* ``silhouette``: the whole-object mask, blurred: what "look at the object" scores.
* ``oracle``: the true mask pooled to the network's feature cells and upsampled back
  with its geometry: the ceiling a map of that resolution can reach.
* ``constant``: the same value everywhere: it says nothing. Its relevance mass is the
  mask's share of the image exactly (chance), and the pointing game and coverage score it
  0; metrics that rank pixels break its ties by position (deletion, insertion and
  relevance rank in raster order, ROAD at random), so there it is a floor, not chance.

A method that does not beat ``centre`` and ``silhouette`` clearly has not shown that it
finds the discriminative part.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..geometry import FeatureGeometry, minmax, upsample

__all__ = [
    "centre_map",
    "silhouette_map",
    "oracle_map",
    "constant_map",
    "REFERENCES",
    "REFERENCE_FOOTING",
]

REFERENCES = ("centre", "silhouette", "oracle", "constant")

#: What each reference map is made from (the tables' footing column).
REFERENCE_FOOTING = {
    "centre": "reference: a Gaussian at the image centre (the position prior; no model)",
    "silhouette": "reference: the blurred object mask (ground truth; no model)",
    "oracle": "reference: the true mask at the network's feature resolution (ground truth)",
    "constant": "reference: the same value everywhere (says nothing)",
}


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = _gauss_kernel(sigma)
    r = (len(k) - 1) // 2
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))


def centre_map(n: int, size: tuple[int, int], sigma: float = 0.25) -> torch.Tensor:
    """N×1×H×W Gaussian at the image centre, σ = ``sigma``·side."""
    h, w = size
    yy, xx = torch.meshgrid(
        torch.arange(h) - (h - 1) / 2, torch.arange(w) - (w - 1) / 2, indexing="ij"
    )
    g = torch.exp(-(xx**2 / (2 * (sigma * w) ** 2) + yy**2 / (2 * (sigma * h) ** 2)))
    return minmax(g.expand(n, 1, h, w).clone())


def silhouette_map(object_masks: torch.Tensor, sigma: float = 0.06) -> torch.Tensor:
    """The object masks (N×1×H×W bool) blurred with σ = ``sigma``·side."""
    x = object_masks.float()
    return minmax(_blur(x, sigma * x.shape[-1]))


def oracle_map(
    masks: torch.Tensor, feature_size: tuple[int, int], geometry: FeatureGeometry
) -> torch.Tensor:
    """The mask averaged over each feature cell's footprint, upsampled back with ``geometry``."""
    x = masks.float().any(1, keepdim=True).float()
    if any(s != int(s) for s in geometry.stride):
        raise ValueError(f"oracle_map needs an integer stride, got {geometry.stride}")
    sy, sx = int(geometry.stride[0]), int(geometry.stride[1])
    py = round(sy / 2 - geometry.offset[0])
    px = round(sx / 2 - geometry.offset[1])
    h, w = feature_size
    x = F.pad(x, (px, sx * w - x.shape[-1] - px, py, sy * h - x.shape[-2] - py))
    cells = F.avg_pool2d(x, (sy, sx))
    return minmax(upsample(cells, tuple(masks.shape[-2:]), geometry).clamp_min(0))


def constant_map(n: int, size: tuple[int, ...]) -> torch.Tensor:
    """N×1×… ones: the map that says nothing."""
    return torch.ones(n, 1, *size)
