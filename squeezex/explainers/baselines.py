"""Baselines on the common footing: Captum's methods, post-processed like every method.

Captum's ``LayerGradCam`` keeps signs, does not upsample and does not normalise; here
its layer map gets exactly the post-processing SE gets (ReLU, upsampling with the
network's geometry, per-sample min-max), so a table compares methods, not
post-processing (METHODS.md §4).
"""

from __future__ import annotations

import torch
from captum.attr import LayerGradCam
from torch import nn

from ..se import find_feature_layer, find_se_block, get_submodule
from .base import HeatmapAttribution

__all__ = ["GradCAM", "RandomAttribution", "feature_module"]


def feature_module(model: nn.Module, layer: str | nn.Module | None = None, x=None) -> nn.Module:
    """The layer a CAM-style method reads: ``layer`` if given, else the SE block's output,
    else the model's last spatial feature layer."""
    if isinstance(layer, nn.Module):
        return layer
    if isinstance(layer, str):
        return get_submodule(model, layer)
    se = find_se_block(model, required=False)
    if se is not None:
        return se
    size = tuple(x.shape[1:]) if x is not None else None
    return get_submodule(model, find_feature_layer(model, size))


class GradCAM(HeatmapAttribution):
    """Grad-CAM (Selvaraju et al., ICCV 2017) through Captum's ``LayerGradCam``.

    Reads the same layer as the SE explanation (the SE block's output when the model
    has one), so both methods see the same features; ``target=None`` explains the
    predicted class.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> cam = GradCAM(SmallCNN(num_classes=6).eval())
        >>> cam.attribute(torch.rand(2, 3, 64, 64), target=[0, 3]).shape
        torch.Size([2, 1, 64, 64])
    """

    needs_gradients = True

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self._layer_arg = layer
        self._layer: nn.Module | None = None

    def layer(self, x: torch.Tensor) -> nn.Module:
        if self._layer is None:
            self._layer = feature_module(self.model, self._layer_arg, x)
        return self._layer

    def _heatmaps(self, x, target, extra):
        layer = self.layer(x)
        if target is None:
            with torch.no_grad():
                target = self._forward(x, extra).argmax(1)
        with torch.enable_grad():
            raw = LayerGradCam(self.model, layer).attribute(
                x, target=target, additional_forward_args=extra or None
            )
        return self.footing(raw.detach(), x, self.geometry(layer, x, extra))


class RandomAttribution(HeatmapAttribution):
    """The random floor: uniform noise at a coarse grid, upsampled like a CAM map.

    Args:
        model: unused except for the common interface.
        cell: size in pixels of one noise cell (default 8, the stride of the an8Flower
            CNN), so the floor has the same spatial resolution as the CAM methods.
        seed: the noise is drawn from a generator seeded with ``seed`` on every call,
            so the same batch gets the same maps.
    """

    per_sample = False

    def __init__(self, model: nn.Module, cell: int = 8, seed: int = 0, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.cell = cell
        self.seed = seed

    def _heatmaps(self, x, target, extra):
        g = torch.Generator().manual_seed(self.seed)
        size = tuple(max(1, -(-s // self.cell)) for s in x.shape[2:])
        noise = torch.rand(x.shape[0], 1, *size, generator=g, dtype=torch.float64)
        noise = noise.to(device=x.device, dtype=x.dtype)
        return self.footing(noise, x, None)
