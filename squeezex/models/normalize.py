"""The input normalisation a model was trained with, as the model's first layer.

A torchvision or timm model trained on ImageNet takes ``(x − mean) / std``. Putting that
step inside the model (``nn.Sequential(Normalize(mean, std), model)``) lets everything
else work in pixel space, in [0, 1]: the explainers' maps are of the image as the user
sees it, the overlays show it, and the faithfulness baselines (deletion's black, ROAD's
imputation, infidelity's removal) are defined on pixels, so a normalised model is scored
like an unnormalised one. The mean and std are buffers: they travel in the state dict.

Example:
    >>> import torch
    >>> norm = Normalize()  # ImageNet's
    >>> norm(torch.full((1, 3, 2, 2), 0.5))[0, :, 0, 0].round(decimals=3)
    tensor([0.0660, 0.1960, 0.4180])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Normalize", "IMAGENET_MEAN", "IMAGENET_STD"]

#: torchvision's ImageNet statistics (the default of pretrained torchvision and timm models)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    """``(x − mean) / std`` per channel of N×C×… inputs (images, clips).

    Raises:
        ValueError: mean and std of different lengths, a std that is not > 0, or an
            input whose channel count is not theirs.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:  # fmt: skip
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.numel() != std_t.numel() or mean_t.numel() == 0:
            raise ValueError(
                f"mean and std need one value per channel, got {list(mean)} and {list(std)}"
            )
        if not torch.isfinite(mean_t).all() or not (std_t > 0).all():
            raise ValueError(
                f"std must be > 0 and mean finite, got mean {list(mean)}, std {list(std)}"
            )
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.mean.numel():
            raise ValueError(
                f"Normalize expects N×{self.mean.numel()}×… inputs, got shape {tuple(x.shape)}"
            )
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self.mean.view(shape)) / self.std.view(shape)

    def extra_repr(self) -> str:
        mean = ", ".join(f"{v:.3g}" for v in self.mean.tolist())
        std = ", ".join(f"{v:.3g}" for v in self.std.tolist())
        return f"mean=({mean}), std=({std})"
