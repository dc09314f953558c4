"""A small CNN for the ground-truth benchmarks, and a torchvision factory (no downloads)."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from .se import attach_se_head

__all__ = ["SmallCNN", "build_model", "torchvision_model"]


def _conv(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(nn.Module):
    """A small CNN: 3×3 conv-BN-ReLU stages, a 1×1 mixing layer, global pooling, linear.

    Sized for the an8Flower benchmark on a CPU. At 64×64 and ``stride=4`` the last
    feature map is 16×16 and a last-layer cell sees 21 px. The head pools globally by
    **max** by default (Oquab et al., CVPR 2015, "Is object localization for free?").
    With global *average* pooling the last-layer features fire on every cell whose
    receptive field touches the leaf, the maps are flat plateaus, and Grad-CAM's maximum
    lands anywhere on the plateau, rarely on the leaf; with max pooling the same network,
    just as accurate, puts its maximum on the leaf, so the benchmark measures
    explanations, not plateau noise (``benchmarks/se_rules.py`` measures both heads on
    an8Flower single-6c; its JSON holds the numbers). ``pool="avg"`` keeps the
    other behaviour for study. Either way the head is global pooling + linear, so CAM,
    Grad-CAM and the class-aware SE map coincide on it (the mean gradient of a max pool
    is the classifier weight over h·w, as for average pooling).

    Args:
        num_classes: outputs of the classifier.
        in_channels: input channels.
        widths: channels at stride 1, 2 and 4 (and 8).
        stride: total stride of the feature map, 4 or 8.
        pool: ``"max"`` (default) or ``"avg"`` global pooling before the classifier.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        widths=(16, 32, 64),
        stride: int = 4,
        pool: str = "max",
    ) -> None:
        super().__init__()
        if stride not in (4, 8):
            raise ValueError(f"stride must be 4 or 8, got {stride}")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        w0, w1, w2 = widths
        layers = [*_conv(in_channels, w0, 1), *_conv(w0, w1, 2), *_conv(w1, w1, 1)]
        layers += [*_conv(w1, w2, 2), *_conv(w2, w2, 1)]
        if stride == 8:
            layers += _conv(w2, w2, 2)
        layers += [nn.Conv2d(w2, w2, 1, bias=False), nn.BatchNorm2d(w2), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1) if pool == "max" else nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(w2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.features(x))))


def torchvision_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """A torchvision classification or video model with random weights (never downloads)."""
    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        raise ValueError(
            f"unknown torchvision model {name!r}; see torchvision.models.list_models()"
        ) from None
    return builder(weights=None, num_classes=num_classes, **kwargs)


def build_model(
    arch: str,
    num_classes: int,
    *,
    se: bool = False,
    reduction: int = 16,
    seed: int | None = None,
    input_size=None,
    **kwargs,
) -> nn.Module:
    """``"small"`` (:class:`SmallCNN`, ``**kwargs`` to it) or a torchvision model name,
    optionally with an SE head. ``seed`` fixes the initial weights; global RNG untouched.
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if arch == "small":
            model = SmallCNN(num_classes, **kwargs)
        else:
            model = torchvision_model(arch, num_classes, **kwargs)
        if se:
            attach_se_head(model, reduction=reduction, input_size=input_size)
    return model
