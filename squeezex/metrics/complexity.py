"""Complexity metrics: how concentrated a heatmap is.

:func:`gini` is the sparseness of Chalasani et al., "Concise Explanations of Neural
Networks using Adversarial Training" (ICML 2020), as Quantus' ``Sparseness``: the Gini
index of the map's values. 1 − 1/P for a one-hot map of P pixels (all relevance on one
pixel), 0 for a constant map. Higher means sparser, which is not better in itself: a
sparse map can be sparse in the wrong place, so read it beside the localisation and
faithfulness metrics (``HIGHER_IS_BETTER["gini"]`` is ``None``).
"""

from __future__ import annotations

import torch

__all__ = ["gini"]


def gini(maps: torch.Tensor) -> torch.Tensor:
    """Gini index of the flattened non-negative map values, per sample.

    With the P values sorted ascending, a₍₁₎ ≤ … ≤ a₍ₚ₎:
    G = Σᵢ (2i − P − 1)·a₍ᵢ₎ / (P·Σᵢ a₍ᵢ₎). Quantus adds 1e-7 to every value first;
    here an all-zero map scores 0 (constant) instead.

    Args:
        maps: N×1×H×W (or N×1×T×H×W) non-negative heatmaps.

    Returns:
        N floats in [0, 1 − 1/P].
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() < 3 or maps.shape[1] != 1:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ValueError(f"maps must be N×1×H×W (or N×1×T×H×W), got {shape}")
    flat = maps.detach().flatten(1).double()
    if not torch.isfinite(flat).all():
        raise ValueError("maps contain NaN or infinite values")
    if (flat < 0).any():
        raise ValueError("gini needs non-negative maps (take a ReLU or abs first)")
    values = flat.sort(1).values
    p = values.shape[1]
    i = torch.arange(1, p + 1, dtype=torch.float64, device=values.device)
    total = values.sum(1)
    num = ((2 * i - p - 1) * values).sum(1)
    return torch.where(total > 0, num / (p * total).clamp_min(1e-300), 0.0).float()
