"""A small vision transformer that trains on a CPU in minutes (torchvision's own class)."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from .se import attach_se_head

__all__ = ["small_vit"]


def small_vit(
    num_classes: int,
    image_size: int = 64,
    *,
    se: bool = False,
    seed: int | None = None,
    patch_size: int = 8,
    layers: int = 4,
    width: int = 64,
    heads: int = 4,
    reduction: int = 4,
) -> nn.Module:
    """``torchvision.models.VisionTransformer`` at ``image_size`` px with ``patch_size``-px
    patches (64 px, 8 px: an 8×8 grid and a class token), ``layers`` encoder blocks of
    ``width`` channels and ``heads`` heads, MLP 2×width; with ``se=True`` an SE head on
    the tokens entering the last block (:func:`~squeezex.attach_se_head`). ``seed`` fixes
    the initial weights; the global RNG is untouched.

    Example:
        >>> vit = small_vit(6, se=True, seed=0)
        >>> vit(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 6])
    """
    if image_size % patch_size:
        raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = torchvision.models.VisionTransformer(
            image_size=image_size, patch_size=patch_size, num_layers=layers, num_heads=heads,
            hidden_dim=width, mlp_dim=2 * width, num_classes=num_classes,
        )  # fmt: skip
        if se:
            example = torch.zeros(1, 3, image_size, image_size)
            attach_se_head(model, reduction=reduction, example=example)
    return model
