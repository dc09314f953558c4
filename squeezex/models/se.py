"""Squeeze-and-Excitation blocks that can be put before the classifier of any model.

Roxo et al., *How to Squeeze An Explanation Out of Your Model* (arXiv 2412.05134): an SE
block on the output of the last spatial feature layer, trained with the task loss; its
excitation vector then says which channels make the explanation.

Example:
    >>> import torchvision
    >>> from squeezex import attach_se_head
    >>> model = attach_se_head(torchvision.models.resnet18(weights=None))
    >>> type(model.layer4).__name__
    'SEWrapper'
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torchvision.ops import SqueezeExcitation

from ..common import diagnose_inputs, eval_mode

__all__ = [
    "SEBlock",
    "SEWrapper",
    "attach_se_head",
    "find_feature_layer",
    "find_se_block",
    "get_submodule",
    "layer_output_shape",
]

_POOL_TO_VECTOR = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)


class SEBlock(SqueezeExcitation):
    """Squeeze-and-Excitation for 2-D (N×C×H×W) and 3-D (N×C×T×H×W) feature maps.

    ``torchvision.ops.SqueezeExcitation`` with the squeeze generalised to any number of
    spatial (and temporal) axes: z = mean of U over every non-channel axis,
    s = sigmoid(fc2(relu(fc1(z)))), output s·U. The pre-sigmoid excitation is the output
    of ``fc2``; the SE vector s is the output of ``scale_activation`` (hook either).

    Args:
        channels: number of channels C of the feature map.
        reduction: r in C → C/r → C (at least one hidden unit).
        squeeze: ``"sample"`` (default: one z per sample, per clip for video) or
            ``"batch"`` (one z for the whole mini-batch, as in the authors' earlier code;
            explanations then depend on the other samples of the batch).
    """

    #: Set by :meth:`recording` (a class default, so blocks pickled before it exist load).
    _tape: dict | None = None

    def __init__(self, channels: int, reduction: int = 16, squeeze: str = "sample") -> None:
        if reduction < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction}")
        if squeeze not in ("sample", "batch"):
            raise ValueError(f"squeeze must be 'sample' or 'batch', got {squeeze!r}")
        super().__init__(channels, max(channels // reduction, 1))
        self.channels = channels
        self.reduction = reduction
        self.squeeze = squeeze

    @contextmanager
    def recording(self):
        """Inside the block, each forward pass stores U, X = s·U and the pre-sigmoid
        excitation in the yielded dict (keys ``"u"``, ``"x"``, ``"e"``; the last pass wins).

        What the SE explanation reads; cheaper than forward hooks, which send every call
        of the module through ``nn.Module``'s slow path.
        """
        tape: dict = {}
        self._tape = tape
        try:
            yield tape
        finally:
            self._tape = None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        scale = self._scale(input)
        out = scale * input
        if self._tape is not None:
            self._tape["u"], self._tape["x"] = input, out
        return out

    def _scale(self, input: torch.Tensor) -> torch.Tensor:
        if input.dim() < 3 or input.shape[1] != self.channels:
            raise ValueError(
                f"SEBlock expects N×{self.channels}×… feature maps, got shape {tuple(input.shape)}"
            )
        z = input.mean(dim=tuple(range(2, input.dim())), keepdim=True)
        if self.squeeze == "batch":
            z = z.mean(dim=0, keepdim=True).expand_as(z)
        z = z.reshape(z.shape[0], self.channels, 1, 1)
        excite = self.fc2(self.activation(self.fc1(z)))
        if self._tape is not None:
            self._tape["e"] = excite
        scale = self.scale_activation(excite)
        return scale.reshape(scale.shape[0], self.channels, *([1] * (input.dim() - 2)))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}, squeeze={self.squeeze!r}"


class SEWrapper(nn.Sequential):
    """``body`` followed by ``se``: the layer an SE block was attached to, and the block."""

    def __init__(self, body: nn.Module, se: SEBlock) -> None:
        super().__init__()
        self.body = body
        self.se = se


def get_submodule(model: nn.Module, name: str) -> nn.Module:
    """``model.get_submodule(name)`` with an error that lists what exists."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_children()]
        raise ValueError(
            f"{type(model).__name__} has no submodule {name!r}; its top-level children are {names}"
        ) from None


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _example_input(model: nn.Module, input_size: Sequence[int] | None) -> torch.Tensor:
    param = next(model.parameters(), None)
    kw = {"device": param.device, "dtype": param.dtype} if param is not None else {}
    if input_size is not None:
        return torch.zeros(1, *input_size, **kw)
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            return torch.zeros(1, m.in_channels, 8, 112, 112, **kw)
        if isinstance(m, nn.Conv2d):
            return torch.zeros(1, m.in_channels, 224, 224, **kw)
        if isinstance(m, nn.Conv1d):
            return torch.zeros(1, m.in_channels, 1024, **kw)
    raise ValueError(
        f"{type(model).__name__} has no convolution, so it has no spatial feature layer to "
        "attach an SE block to"
    )


@torch.no_grad()
def find_feature_layer(model: nn.Module, input_size: Sequence[int] | None = None) -> str:
    """Dotted name of the model's last spatial feature layer.

    Runs one forward pass on zeros (224×224 images or 8×112×112 clips unless
    ``input_size`` = (C, …) is given) and returns the outermost module that produced the
    last spatial (N×C×…, at least one spatial axis > 1) tensor before the head. Pooling
    to a vector (adaptive pools) does not count, so VGG's ``avgpool`` is skipped in
    favour of ``features``. The model's ``training`` flag is restored afterwards.

    Raises:
        ValueError: the model has no spatial feature layer, or cannot run on the example.
    """
    x = _example_input(model, input_size)
    produced: list[tuple[str, torch.Tensor]] = []
    handles = []

    def hook(name):
        def fn(module, args, output):
            if (
                isinstance(output, torch.Tensor)
                and output.dim() >= 3
                and max(output.shape[2:]) > 1
                and not isinstance(module, _POOL_TO_VECTOR)
            ):
                produced.append((name, output))

        return fn

    for name, m in model.named_modules():
        if name:
            handles.append(m.register_forward_hook(hook(name)))
    try:
        with eval_mode(model):
            model(x)
    except Exception as exc:  # the model's own forward failed on our example input
        hint = diagnose_inputs(x, model, "the example input")
        if hint is not None:
            raise ValueError(hint) from exc
        raise ValueError(
            f"could not run {type(model).__name__} on an example input of shape "
            f"{tuple(x.shape)} to find its feature layer ({type(exc).__name__}: {exc}); "
            "pass layer='dotted.name' or input_size=(C, H, W)"
        ) from exc
    finally:
        for h in handles:
            h.remove()
    if not produced:
        raise ValueError(
            f"{type(model).__name__} has no spatial feature layer (no module returns an "
            "N×C×H×W or N×C×T×H×W map); an SE explanation needs one"
        )
    last = produced[-1][1]
    # Modules finishing with the same tensor: the outermost (shortest name) wins.
    same = [n for n, t in produced if t is last]
    return min(same, key=lambda n: n.count("."))


def layer_output_shape(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    """Shape of ``layer``'s output when ``model`` runs on ``x`` (eval mode, no grad, restored)."""
    shapes = []
    h = layer.register_forward_hook(
        lambda m, a, o: shapes.append(tuple(o.shape) if isinstance(o, torch.Tensor) else None)
    )
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    finally:
        h.remove()
    if not shapes:
        raise ValueError(f"{type(layer).__name__} was not run by the model's forward pass")
    return shapes[-1]


def attach_se_head(
    model: nn.Module,
    layer: str | None = None,
    reduction: int = 16,
    *,
    squeeze: str = "sample",
    input_size: Sequence[int] | None = None,
) -> nn.Module:
    """Put an SE block on the output of ``model``'s last spatial feature layer.

    The layer (found by :func:`find_feature_layer`, or the dotted name ``layer``) is
    replaced in place by ``SEWrapper(body=layer, se=SEBlock)``, so everything downstream
    sees the SE-scaled features; output shapes do not change. State-dict keys of that
    layer gain a ``body.`` prefix: load pretrained weights before attaching.

    Args:
        model: any CNN (torchvision image and video models, ``nn.Sequential`` CNNs).
        layer: dotted module name; found automatically when ``None``.
        reduction: SE reduction ratio r.
        squeeze: ``"sample"`` (default) or ``"batch"``, see :class:`SEBlock`.
        input_size: (C, H, W) or (C, T, H, W) of an example input, when the defaults
            (224×224 images, 8×112×112 clips) do not fit the model.

    Returns:
        The same ``model`` object, modified.

    Raises:
        ValueError: no spatial feature layer, an unknown ``layer``, a ``layer`` whose
            output is not spatial (a classifier, say), or an SE block already attached.
    """
    if find_se_block(model, required=False) is not None:
        raise ValueError(f"{type(model).__name__} already has an SE block")
    name = layer if layer is not None else find_feature_layer(model, input_size)
    target = get_submodule(model, name)
    if isinstance(target, SEWrapper | SEBlock):
        raise ValueError(f"{name!r} is already an SE block")
    shape = layer_output_shape(model, target, _example_input(model, input_size))
    one_d = any(isinstance(m, nn.Conv1d) for m in model.modules())  # 1-D signal models
    if shape is None or len(shape) not in ((3, 4, 5) if one_d else (4, 5)):
        got = "no tensor" if shape is None else "N×" + "×".join(map(str, shape[1:]))
        got += "" if shape is None or len(shape) > 2 else " (no spatial axes)"
        raise ValueError(
            f"{type(model).__name__}.{name} outputs {got}: the SE block goes on a spatial "
            f"feature map N×C×H×W (or N×C×T×H×W), such as layer={_layer_hint(model, input_size)}"
        )
    channels = shape[1]
    param = next(model.parameters(), None)
    se = SEBlock(channels, reduction, squeeze)
    if param is not None:
        se = se.to(device=param.device, dtype=param.dtype)
    _set_submodule(model, name, SEWrapper(target, se))
    return model


def _layer_hint(model: nn.Module, input_size=None) -> str:
    """``repr`` of the automatically found feature layer, or a placeholder."""
    try:
        return repr(find_feature_layer(model, input_size))
    except ValueError:
        return "'dotted.name'"


def find_se_block(model: nn.Module, required: bool = True) -> SEBlock | None:
    """The model's (first) :class:`SEBlock`; a ``ValueError`` when there is none."""
    for m in model.modules():
        if isinstance(m, SEBlock):
            return m
    if required:
        raise ValueError(
            f"{type(model).__name__} has no SE block: call squeezex.attach_se_head(model) "
            "and train the model before asking for an SE explanation"
        )
    return None
