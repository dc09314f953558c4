"""The architectures the benchmark trains from scratch (``squeezex bench --arch NAME``):
CPU-sized configurations of torchvision's own classes at the benchmark's 64 px, each a
name in a registry (:func:`register_arch`), built with or without an SE head.

Every model takes images in [0, 1] (what every explainer and metric of squeezex gives it).
An architecture that declares a normalisation carries it as its first layer
(:class:`~squeezex.models.Normalize`), as a user's torchvision model trained on
normalised inputs is squeezed (:mod:`squeezex.bench.squeeze_job`): the maps, overlays and
faithfulness baselines stay in pixel space, where "delete a pixel" means black.

Configurations (chosen so that a model trains on a 2-core CPU in minutes and keeps an 8×8
or finer last feature map at 64 px; ``benchmarks/archs.py`` measures their accuracy, maps
and cost, its JSON holds the numbers):

- ``small``: :class:`~squeezex.models.SmallCNN` (16×16 features, no normalisation; its
  head pools by ``--pool``);
- ``resnet``: torchvision ``ResNet`` with ``BasicBlock`` at CIFAR widths (32, 64, 128:
  one block per stage, three stages, as He et al. built ResNets for small images) behind a
  3×3 stride-2 stem without the max pool (ImageNet's 7×7 stride-2 stem, the pool and a
  fourth stage would leave a 2×2 last feature map at 64 px); last features 8×8; its own
  global average pooling (with max pooling it learned an8flower-hard worse when tried);
- ``convnext``: torchvision ``ConvNeXt`` with its own 4×4 stride-4 patchify stem and two
  stages of two blocks (48, 96 channels); last features 8×8; global **max** pooling (with
  torchvision's average pooling it stayed at chance on an8flower-hard when tried: the
  small leaf is averaged away, the SmallCNN's finding again);
- ``vit``: torchvision ``VisionTransformer`` (:func:`~squeezex.models.small_vit`: 4
  blocks of width 64, a class token) whose patchify layer is a 3-convolution stem of
  stride 8 (Xiao et al., "Early convolutions help transformers see better", 2021), trained
  30 epochs: with 8-px patches, or 12 epochs, it stayed near chance on an8flower-hard
  when tried. Its SE head sits on the tokens entering the last block.

Example:
    >>> from squeezex.models.archs import build_arch, list_archs
    >>> list_archs()
    ['small', 'resnet', 'convnext', 'vit']
    >>> model = build_arch("resnet", 6, se=True, seed=0)
    >>> model(torch.rand(2, 3, 64, 64)).shape
    torch.Size([2, 6])
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .cnn import SmallCNN
from .normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize
from .se import attach_se_head
from .vit import small_vit

__all__ = [
    "Arch",
    "register_arch",
    "get_arch",
    "list_archs",
    "build_arch",
    "arch_backbone",
    "normalisation_words",
]


@dataclass(frozen=True)
class Arch:
    """A registered architecture.

    Attributes:
        name: the registry name (``--arch``).
        make: ``make(num_classes, pool=..., size=...)`` → the classifier with random
            weights for ``size``-px images.
        description: one line for ``--help`` and the README.
        mean, std: the normalisation it carries as its first layer (``None``: none).
        lr, epochs: the learning rate and epochs the benchmark trains it with (``None``:
            the run's, or the dataset's).
        pool: the global pooling of its head whatever ``--pool`` says (``None``: it
            follows ``--pool``); chosen by measurement (the module's doc).
        reduction: the SE block's reduction ratio on it.
    """

    name: str
    make: Callable
    description: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    lr: float | None = None
    epochs: int | None = None
    reduction: int = 16
    pool: str | None = None

    @property
    def normalisation(self) -> str:
        """How inputs are normalised, in words (tables and captions print it)."""
        return normalisation_words(self.mean, self.std)

    def key(self) -> str:
        """What a checkpoint trained with it depends on: its settings and the names and
        shapes of its parameters (an edited configuration is another key)."""
        return repr((self.name, self.mean, self.std, self.lr, self.epochs, self.reduction,
                     self.pool, _layout(self)))  # fmt: skip


_ARCHS: dict[str, Arch] = {}


def normalisation_words(mean, std) -> str:
    """A model's input normalisation (its :class:`Normalize` layer's mean and std, or
    ``None``), in words."""
    if mean is None:
        return "none (pixels in [0, 1])"
    imagenet = [*IMAGENET_MEAN, *IMAGENET_STD]
    given = [*mean, *std]
    same = len(given) == len(imagenet)
    if same and all(abs(a - b) < 1e-6 for a, b in zip(given, imagenet, strict=True)):
        return "ImageNet mean/std, inside the model (pixels in [0, 1])"
    return f"mean {list(mean)}, std {list(std)}, inside the model (pixels in [0, 1])"


@functools.cache
def _layout(arch: Arch) -> str:
    """A digest of the parameter names and shapes of ``arch`` for 2 classes at 64 px."""
    with torch.random.fork_rng(devices=[]):  # building draws weights: not from the caller's RNG
        state = arch.make(2, pool="max", size=64).state_dict()
    text = repr([(k, tuple(v.shape)) for k, v in state.items()])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def register_arch(name: str, make: Callable, description: str, **options) -> Arch:
    """Register ``make(num_classes, pool=..., size=...)`` as the architecture ``name`` (duplicates
    refused); ``options`` are :class:`Arch`'s fields."""
    if name in _ARCHS:
        raise ValueError(f"an architecture named {name!r} is already registered")
    _ARCHS[name] = arch = Arch(name, make, description, **options)
    return arch


def list_archs() -> list[str]:
    """Registered architecture names, in registration order."""
    return list(_ARCHS)


def get_arch(name: str) -> Arch:
    """The architecture registered as ``name``; a ``ValueError`` listing them otherwise."""
    if name not in _ARCHS:
        raise ValueError(f"unknown architecture {name!r}; choose from {', '.join(_ARCHS)}")
    return _ARCHS[name]


def arch_backbone(name: str, num_classes: int, pool: str = "max", size: int = 64) -> nn.Module:
    """The registered architecture's classifier with random weights, without its
    normalisation or SE head (what :func:`squeezex.models.records.rebuild` builds for
    ``squeezex:<name>``)."""
    arch = get_arch(name)
    return arch.make(num_classes, pool=arch.pool or pool, size=size)


def build_arch(name: str, num_classes: int, *, se: bool = False, seed: int | None = None,
               pool: str = "max", size: int = 64) -> nn.Module:  # fmt: skip
    """The architecture ``name`` for ``num_classes`` classes at ``size`` px: its
    normalisation first, then the classifier, with an SE head when ``se`` (the paper's
    sigmoid gate, trained from scratch with the rest). ``seed`` fixes the initial weights;
    the global RNG is untouched."""
    arch = get_arch(name)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        model = arch.make(num_classes, pool=arch.pool or pool, size=size)
        if arch.mean is not None:
            model = nn.Sequential(Normalize(arch.mean, arch.std), model)
        if se:
            attach_se_head(model, reduction=arch.reduction, example=torch.zeros(1, 3, size, size))
    return model


# -- the built-in configurations -----------------------------------------------------------------
def _small(num_classes: int, pool: str = "max", size: int = 64) -> nn.Module:
    return SmallCNN(num_classes, pool=pool)


def _resnet(num_classes: int, pool: str = "max", size: int = 64, width: int = 32) -> nn.Module:
    from torchvision.models.resnet import BasicBlock, ResNet

    model = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)
    model.inplanes = width  # torchvision's own _make_layer, at CIFAR widths
    model.conv1 = nn.Conv2d(3, width, 3, 2, 1, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    model.maxpool = nn.Identity()
    model.layer1 = model._make_layer(BasicBlock, width, 1)
    model.layer2 = model._make_layer(BasicBlock, 2 * width, 1, stride=2)
    model.layer3 = model._make_layer(BasicBlock, 4 * width, 1, stride=2)
    model.layer4 = nn.Identity()
    model.fc = nn.Linear(4 * width, num_classes)
    model.avgpool = _pool(pool)
    for m in model.modules():  # ResNet.__init__'s initialisation, on the new layers
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def _convnext(num_classes: int, pool: str = "max", size: int = 64) -> nn.Module:
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    stages = [CNBlockConfig(48, 96, 2), CNBlockConfig(96, None, 2)]
    model = ConvNeXt(stages, stochastic_depth_prob=0.0, num_classes=num_classes)
    model.avgpool = _pool(pool)
    return model


def _pool(pool: str) -> nn.Module:
    """The head's global pooling: ``--pool`` (max by default, as the SmallCNN's: see its
    docstring), in place of torchvision's average."""
    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    return nn.AdaptiveMaxPool2d(1) if pool == "max" else nn.AdaptiveAvgPool2d(1)


def _vit(num_classes: int, pool: str = "max", size: int = 64) -> nn.Module:
    model = small_vit(num_classes, size)
    width = model.hidden_dim
    model.conv_proj = nn.Sequential(  # a convolutional stem of stride 8: one token per 8 px
        *_conv_bn_relu(3, 16, 2), *_conv_bn_relu(16, 32, 2), *_conv_bn_relu(32, 64, 2),
        nn.Conv2d(64, width, 1),
    )  # fmt: skip
    return model


def _conv_bn_relu(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


_IMAGENET = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
register_arch(
    "small",
    _small,
    "SmallCNN: five 3×3 conv-BN-ReLU layers (stride 4), 1×1 mixing, global pooling by --pool (16×16 features)",
)
register_arch("resnet", _resnet, "torchvision ResNet, BasicBlock ×1 in 3 stages (32/64/128), 3×3 stride-2 stem, no max pool, global average pooling (8×8 features)", pool="avg", **_IMAGENET)  # fmt: skip
register_arch("convnext", _convnext, "torchvision ConvNeXt, 2 stages × 2 blocks (48/96), 4×4 patchify stem, global max pooling (8×8 features)", lr=1e-3, pool="max", **_IMAGENET)  # fmt: skip
register_arch("vit", _vit, "torchvision VisionTransformer, 4 blocks of width 64, class token, a 3-conv stride-8 stem (8×8 tokens), 30 epochs", lr=1e-3, epochs=30, reduction=4, **_IMAGENET)  # fmt: skip
