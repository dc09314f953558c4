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

import math
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torchvision.ops import SqueezeExcitation

from ..common import diagnose_inputs, eval_mode
from ..options import Bool, Choice, Either, Int, Sizes, Text, check_options
from .tokens import map_to_tokens, patches_to_map, prefix_tokens, token_site

__all__ = [
    "SEBlock",
    "TokenSEBlock",
    "LAYOUTS",
    "GATES",
    "SEWrapper",
    "attach_se_head",
    "find_feature_layer",
    "find_se_block",
    "se_site",
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
        gate: how the SE vector s = σ(fc2(relu(fc1(z)))) scales U. ``"sigmoid"``: s · U,
            the paper's block. The two others start as the identity once ``fc2`` is zero
            (:meth:`make_identity`, what :func:`squeezex.squeeze` attaches to a trained
            model): ``"2sigmoid"``: 2 · s · U (2 · σ(0) = 1); ``"normalised"``:
            s / mean_c(s) · U, which can only move weight between channels, never scale
            them all up at once (``benchmarks/squeeze.py`` compares the two). Both are
            exact: with ``fc2`` zero the output is U bit for bit. s itself is the
            sigmoid's output in (0, 1) under every gate, so the maps and the channel
            rules read the same vector.
    """

    #: Set by :meth:`recording` (a class default, so blocks pickled before it exist load).
    _tape: dict | None = None
    #: A class default too, so blocks pickled before the gate existed load as the paper's.
    gate: str = "sigmoid"
    #: A model holding an SE block reads its tokens through the block, not through a
    #: :class:`~squeezex.models.tokens.TokenView` (:func:`~squeezex.models.tokens.token_view`).
    reads_tokens_itself = True

    def __init__(self, channels: int, reduction: int = 16, squeeze: str = "sample",
                 gate: str = "sigmoid") -> None:  # fmt: skip
        reduction, squeeze = check_options(
            ATTACH_OPTIONS, reduction=reduction, squeeze=squeeze
        ).values()
        if gate not in GATES:
            raise ValueError(f"gate must be one of {', '.join(GATES)}, got {gate!r}")
        super().__init__(channels, max(channels // reduction, 1))
        self.channels = channels
        self.reduction = reduction
        self.squeeze = squeeze
        self.gate = gate

    def make_identity(self, gate: str = "normalised") -> SEBlock:
        """Use ``gate`` (``"normalised"`` or ``"2sigmoid"``) and zero ``fc2`` (weights and
        bias): the block then passes its input through unchanged (σ(0) = ½ on every
        channel: ``2 · ½ · U`` and ``½ / ½ · U`` are U exactly) until it is trained. Only
        ``fc2`` learns at the first step; ``fc1``'s gradient is zero until ``fc2`` moves
        off zero (the zero-initialised residual branch's habit)."""
        if gate not in GATES[1:]:
            raise ValueError(
                f"an identity block's gate is one of {', '.join(GATES[1:])}, got {gate!r}"
            )
        self.gate = gate
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)
        return self

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
        if self.gate == "2sigmoid":
            scale = 2 * scale
        elif self.gate == "normalised":
            scale = scale / scale.mean(dim=1, keepdim=True)
        return scale.reshape(scale.shape[0], self.channels, *([1] * (input.dim() - 2)))

    def extra_repr(self) -> str:
        gate = f", gate={self.gate!r}" if self.gate != "sigmoid" else ""
        return (f"channels={self.channels}, reduction={self.reduction}, "
                f"squeeze={self.squeeze!r}{gate}")  # fmt: skip


#: How an SE block's vector scales the features (:class:`SEBlock`'s ``gate``).
GATES = ("sigmoid", "2sigmoid", "normalised")

#: Feature layouts an SE block reads: N×C×… (convolutions), N×…×C (Swin, video Swin),
#: N×L×D tokens (ViT, MViT), optionally after ``prefix`` class/register tokens.
LAYOUTS = ("channels_first", "channels_last", "tokens")


class TokenSEBlock(SEBlock):
    """Squeeze-and-Excitation on transformer features: channels-last maps or tokens.

    The SE "channels" are the embedding dimensions. ``layout="channels_last"``: features
    N×H×W×C (Swin) or N×T×H×W×C (video Swin); the squeeze averages every position.
    ``layout="tokens"``: features N×(P+L)×D where the first ``prefix`` = P tokens are the
    class (and register) tokens. The squeeze averages the L patch tokens only (the class
    token is a summary, not a place), and s scales **every** token, the class token
    included, so a head that reads only the class token still depends on s. The patch
    tokens map back to a ``grid`` in raster order: (h, w) for images, (t, h, w) for video
    (given, or inferred as a square from L); each cell is one patch, so the heatmap's
    geometry is the patch size and stride (non-overlapping patches tile the input, which
    is :meth:`~squeezex.geometry.FeatureGeometry.naive`).

    What the SE explanation reads (:meth:`recording`) is the channels-first view of the
    patch tokens, N×D×h×w (N×D×t×h×w): U, X = s·U and the excitation, as for a CNN. The
    block's output is rebuilt from ``view(s·U)`` (an identity module), so Grad-CAM and the
    other layer-map methods read the tokens as a feature map through ``view``.

    These features are signed (a residual stream or a LayerNorm's output, not behind a
    ReLU): the SE map is the channel mean of ``|X − X̄|``, the departure of each place from
    the squeezed features, rather than of X clamped at 0
    (:class:`~squeezex.explainers.se.SEAttribution`).
    """

    def __init__(
        self, channels: int, reduction: int = 16, squeeze: str = "sample",
        layout: str = "channels_last", prefix: int = 0, grid: Sequence[int] | None = None,
        gate: str = "sigmoid",
    ) -> None:  # fmt: skip
        super().__init__(channels, reduction, squeeze, gate)
        if layout not in LAYOUTS[1:]:
            raise ValueError(f"layout must be 'channels_last' or 'tokens', got {layout!r}")
        if prefix < 0 or (prefix and layout != "tokens"):
            raise ValueError(f"prefix tokens ({prefix}) need layout='tokens' and must be >= 0")
        self.layout, self.prefix = layout, prefix
        self.grid = tuple(grid) if grid is not None else None
        self.last_grid: tuple[int, ...] | None = None  # the grid of the last forward pass
        #: An identity on the channels-first view s·U (N×C×grid): CAM-style methods hook
        #: it (squeezex's reshape transform: tokens as a feature map, gradients included).
        self.view = nn.Identity()

    def channels_first(self, input: torch.Tensor) -> torch.Tensor:
        """The patch features as N×C×grid (prefix tokens dropped)."""
        if input.shape[-1] != self.channels or input.dim() < 3:
            raise ValueError(
                f"TokenSEBlock expects N×…×{self.channels} features ({self.layout}), got "
                f"shape {tuple(input.shape)}"
            )
        if self.layout == "channels_last":
            return input.movedim(-1, 1)
        return patches_to_map(input, self.prefix, self.grid, "attach_se_head")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        u = self.channels_first(input)
        scale = self._scale(u)  # N×C×1×…
        self.last_grid = tuple(u.shape[2:])
        x = self.view(u * scale)  # N×C×grid: what layer-map methods (Grad-CAM) read
        if self._tape is not None:
            self._tape["u"], self._tape["x"] = u, x
        if self.layout == "channels_last":
            return x.movedim(1, -1)
        s = scale.reshape(scale.shape[0], 1, self.channels)
        return map_to_tokens(x, input[:, : self.prefix] * s, self.prefix)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", layout={self.layout!r}, prefix={self.prefix}"


class SEWrapper(nn.Sequential):
    """``body`` followed by ``se``: the layer an SE block was attached to, and the block.
    A body that returns a tuple (MViT's blocks: tokens and their grid) has its first item
    scaled and the rest passed on."""

    def __init__(self, body: nn.Module, se: SEBlock) -> None:
        super().__init__()
        self.body = body
        self.se = se

    def forward(self, *args, **kwargs):
        out = self.body(*args, **kwargs)
        if isinstance(out, tuple):
            return (self.se(out[0]), *out[1:])
        return self.se(out)


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


def declared_input_size(model: nn.Module) -> tuple[int, ...] | None:
    """The (C, H, W) or (C, T, H, W) input a model declares it takes, or ``None``:
    torchvision's ViT (``image_size``) and MViT (its positional encoding's grid times the
    patch embedding's stride) accept no other size."""
    proj = getattr(model, "conv_proj", None)
    if isinstance(getattr(model, "image_size", None), int) and isinstance(proj, nn.Conv2d):
        return (proj.in_channels, model.image_size, model.image_size)
    pos = getattr(model, "pos_encoding", None)
    if isinstance(proj, nn.Conv3d) and hasattr(pos, "temporal_size"):
        t, (h, w) = pos.temporal_size, pos.spatial_size
        st, sh, sw = proj.stride
        return (proj.in_channels, t * st, h * sh, w * sw)
    return None


def _example_input(
    model: nn.Module, input_size: Sequence[int] | None, example: torch.Tensor | None = None
) -> torch.Tensor:
    """What the layer probes run on: the user's ``example`` (its first sample), else
    zeros of ``input_size``, of the size the model declares, or of a default size."""
    param = next(model.parameters(), None)
    kw = {"device": param.device, "dtype": param.dtype} if param is not None else {}
    if example is not None:
        return torch.as_tensor(example)[:1].detach().to(**kw)
    size = input_size if input_size is not None else declared_input_size(model)
    if size is not None:
        return torch.zeros(1, *size, **kw)
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
def find_feature_layer(
    model: nn.Module, input_size: Sequence[int] | None = None, example: torch.Tensor | None = None
) -> str:
    """Dotted name of the model's last spatial feature layer.

    Runs one forward pass on the user's ``example`` (its first sample), or on zeros of
    ``input_size`` = (C, …), of the size the model declares (:func:`declared_input_size`),
    or else of 224×224 images / 8×112×112 clips, and returns the outermost module that produced the
    last spatial (N×C×…, at least one spatial axis > 1) tensor before the head. Pooling
    to a vector (adaptive pools) does not count, so VGG's ``avgpool`` is skipped in
    favour of ``features``; nor does a convolutional classifier (a top-level child named
    ``classifier``, ``head``, ``heads`` or ``fc``: SqueezeNet's class maps). The model's ``training`` flag is restored afterwards.

    Raises:
        ValueError: the model has no spatial feature layer, or cannot run on the example.
    """
    x = _example_input(model, input_size, example)
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
        names = [n for n, _ in model.named_children()]
        raise ValueError(
            f"could not run {type(model).__name__} on an example input of shape "
            f"{tuple(x.shape)} to find its feature layer ({type(exc).__name__}: "
            f"{str(exc)[:200]}); pass example=<one of your inputs>, input_size=(C, H, W), "
            f"or layer='dotted.name' (its top-level children: {names})"
        ) from exc
    finally:
        for h in handles:
            h.remove()
    if not produced:
        raise ValueError(
            f"{type(model).__name__} has no spatial feature layer (no module returns an "
            "N×C×H×W or N×C×T×H×W map); an SE explanation needs one"
        )
    # A convolutional classifier (SqueezeNet's classifier.1: class maps) is the head, not
    # a feature layer: the SE block goes before it, when there is anything before it.
    body = [(n, t) for n, t in produced if n.split(".")[0] not in _HEAD_NAMES]
    produced = body or produced
    last = produced[-1][1]
    # Modules finishing with the same tensor: the outermost (shortest name) wins.
    same = [n for n, t in produced if t is last]
    return min(same, key=lambda n: n.count("."))


#: top-level children that are a model's classifier (torchvision's names)
_HEAD_NAMES = ("classifier", "head", "heads", "fc")


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


#: What each option of :func:`attach_se_head` takes (:mod:`squeezex.options`).
ATTACH_OPTIONS = {
    "layer": Text(none=True),
    "reduction": Int(1),
    "squeeze": Choice(("sample", "batch")),
    "input_size": Sizes(none=True),
    "layout": Choice(LAYOUTS, none=True),
    "grid": Sizes(none=True),
    "identity": Either(Bool(), Choice(("normalised", "2sigmoid"))),
}


def attach_se_head(
    model: nn.Module,
    layer: str | None = None,
    reduction: int = 16,
    *,
    squeeze: str = "sample",
    input_size: Sequence[int] | None = None,
    example: torch.Tensor | None = None,
    layout: str | None = None,
    grid: Sequence[int] | None = None,
    identity: bool | str = False,
) -> nn.Module:
    """Put an SE block on the output of ``model``'s last spatial feature layer.

    The layer (found by :func:`find_feature_layer`, or the dotted name ``layer``) is
    replaced in place by ``SEWrapper(body=layer, se=block)``, so everything downstream
    sees the SE-scaled features; output shapes do not change. State-dict keys of that
    layer gain a ``body.`` prefix: load pretrained weights before attaching.

    Layouts (``layout``, detected when ``None``: the classifier's input width tells the
    channel axis): ``"channels_first"`` N×C×… (CNNs, MaxViT, Swin after its permute) gets
    an :class:`SEBlock`; ``"channels_last"`` N×…×C (video Swin) and ``"tokens"`` N×(P+L)×D
    (ViT, MViT) get a :class:`TokenSEBlock`, whose channels are the embedding dimensions.
    **Where the block sits on a class-token model** (torchvision's ViT): the head reads
    only the class token, so a block on the last tokens would be read only through that
    token; the block goes on the tokens that *enter the last encoder block* (the ones the
    class token attends to last), scales every token there (the class token too), and its
    patch tokens are the map. MViT's blocks pass (tokens, grid) along: the block goes on
    the output of the second-to-last one, with the grid it reports.

    Args:
        model: any CNN or vision transformer (torchvision image and video models,
            ``nn.Sequential`` CNNs).
        layer: dotted module name; found automatically when ``None``.
        reduction: SE reduction ratio r.
        squeeze: ``"sample"`` (default) or ``"batch"``, see :class:`SEBlock`.
        input_size: (C, H, W) or (C, T, H, W) of an input the model takes.
        example: one of your inputs (a batch; its first sample is used): the probes run
            on it instead of a size squeezex guesses.
        layout: force ``"channels_first"``, ``"channels_last"`` or ``"tokens"``.
        grid: the patch grid of a token layout when it is not square.
        identity: start the block as the identity with this gate (``"normalised"`` or
            ``"2sigmoid"``, see :class:`SEBlock`; ``True`` means ``"normalised"``), so a
            trained model's outputs do not change until the block is trained (what
            :func:`squeezex.squeeze` does). Default: the paper's block, randomly
            initialised, which changes the outputs at once.

    Returns:
        The same ``model`` object, modified.

    Raises:
        ValueError: no spatial feature layer, an unknown ``layer``, a ``layer`` whose
            output is not spatial (a classifier, say), or an SE block already attached.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    layer, reduction, squeeze, input_size, layout, grid, identity = check_options(
        ATTACH_OPTIONS, layer=layer, reduction=reduction, squeeze=squeeze,
        input_size=input_size, layout=layout, grid=grid, identity=identity,
    ).values()  # fmt: skip
    if example is not None and not isinstance(example, torch.Tensor):
        raise TypeError(f"example must be a torch.Tensor batch, got {type(example).__name__}")
    if find_se_block(model, required=False) is not None:
        raise ValueError(f"{type(model).__name__} already has an SE block")
    x = _example_input(model, input_size, example)
    if layer is None:
        _refuse_branches(model)
    name = layer if layer is not None else find_feature_layer(model, example=x)
    target = get_submodule(model, name)
    if isinstance(target, SEWrapper | SEBlock):
        raise ValueError(f"{name!r} is already an SE block")
    shape = layer_output_shape(model, target, x)
    layout = layout or _layout(model, shape, grid)
    if layout == "channels_first":
        _check_spatial(model, name, shape, input_size)
        se = SEBlock(shape[1], reduction, squeeze)
    else:
        if layer is None and layout == "tokens":
            name, grid = _token_site(model, name, x, grid)
        se = TokenSEBlock(shape[-1], reduction, squeeze, layout, prefix_tokens(model), grid)
    if identity:
        se.make_identity("normalised" if identity is True else identity)
    param = next(model.parameters(), None)
    if param is not None:
        se = se.to(device=param.device, dtype=param.dtype)
    _set_submodule(model, name, SEWrapper(get_submodule(model, name), se))
    return model


def _refuse_branches(model: nn.Module) -> None:
    """A model with several token branches whose heads are averaged (timm's CrossViT) has
    no one feature map: say which to pass."""
    norms = getattr(model, "norm", None)
    if isinstance(norms, nn.ModuleList) and len(norms) > 1:
        names = ", ".join(f"'norm.{i}'" for i in range(len(norms)))
        blocks = getattr(model, "blocks", None)
        last = len(blocks) - 1 if isinstance(blocks, nn.ModuleList) and len(blocks) else None
        hint = (
            " or ".join(f"layer='blocks.{last}.blocks.{i}'" for i in range(len(norms)))
            if last is not None and hasattr(blocks[last], "blocks")
            else "layer= one branch's last token block"
        )
        raise ValueError(
            f"{type(model).__name__} has {len(norms)} token branches ({names}) whose heads are "
            f"averaged: one SE head explains one branch. Pass {hint} (the tokens its last "
            "fusion reads) with layout='tokens'"
        )


def _check_spatial(model: nn.Module, name: str, shape, input_size) -> None:
    one_d = any(isinstance(m, nn.Conv1d) for m in model.modules())  # 1-D signal models
    if shape is None or len(shape) not in ((3, 4, 5) if one_d else (4, 5)):
        got = "no tensor" if shape is None else "N×" + "×".join(map(str, shape[1:]))
        got += "" if shape is None or len(shape) > 2 else " (no spatial axes)"
        raise ValueError(
            f"{type(model).__name__}.{name} outputs {got}: the SE block goes on a spatial "
            f"feature map N×C×H×W (or N×C×T×H×W), such as layer={_layer_hint(model, input_size)}"
        )


def _layout(model: nn.Module, shape, grid=None) -> str:
    """The channel axis of a feature map: the classifier's input width tells it (a linear
    layer takes the embedding width of tokens and channels-last maps). Tokens must also
    come after a class token or fill a grid (a square, or the ``grid`` given)."""
    if shape is None or len(shape) < 3:
        return "channels_first"  # refused with the usual message
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    widths = {m.in_features for m in linears}
    # the classifier's width last (N×L×D) is tokens even when L is some other layer's width
    # (an MLP-Mixer's token-mixing MLPs take the L tokens)
    head = bool(linears) and shape[-1] == linears[-1].in_features != shape[1]
    if not head and (shape[-1] not in widths or shape[1] in widths):
        return "channels_first"
    if len(shape) > 3:
        return "channels_last"
    prefix = prefix_tokens(model)
    n = shape[1] - prefix
    fits = (n > 0 and math.isqrt(n) ** 2 == n) or (grid is not None and math.prod(grid) == n)
    return "tokens" if fits or prefix else "channels_first"


def _token_site(model: nn.Module, name: str, x: torch.Tensor, grid):
    """Where a token model's block goes (see :func:`attach_se_head`) and its grid."""
    site = token_site(model)
    if site is None:
        return name, grid
    owner = site.rsplit("blocks.", 1)[0].rstrip(".") if "blocks." in site else None
    mvit = owner is not None and hasattr(
        model.get_submodule(owner) if owner else model, "pos_encoding"
    )
    if mvit and grid is None:  # MViT: blocks return (tokens, [t, h, w])
        thw = []
        h = model.get_submodule(site).register_forward_hook(lambda m, a, o: thw.append(tuple(o[1])))
        try:
            with eval_mode(model), torch.no_grad():
                model(x)
        finally:
            h.remove()
        grid = thw[-1]
    return site, grid


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


def se_site(model: nn.Module) -> str | None:
    """The dotted name of the layer :func:`attach_se_head` wrapped (its ``SEWrapper``), or
    ``None`` when the model has none."""
    return next((n for n, m in model.named_modules() if isinstance(m, SEWrapper)), None)
