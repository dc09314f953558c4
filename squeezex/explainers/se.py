"""The SE explanation: heatmaps read off a Squeeze-and-Excitation block in one forward pass.

Roxo, Costa, Inácio, Proença, *How to Squeeze An Explanation Out of Your Model*,
arXiv 2412.05134 (xAI4Biometrics, ECCV 2024 workshops). See METHODS.md §1.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import nn

from ..common import as_tuple, eval_mode
from ..models.se import SEBlock, TokenSEBlock, find_se_block
from ..options import Bool, Choice, Either, Float, Int, Module, check, check_options
from .base import HeatmapAttribution
from .baselines import feature_module, layer_activations
from .registry import register_explainer

__all__ = [
    "SEAttribution",
    "ActivationMeanAttribution",
    "SEVector",
    "select_channels",
    "SELECTIONS",
    "WEIGHTS",
    "linear_head",
]

#: Channel-selection rules: the paper's literal rule and the robust ones.
SELECTIONS = ("paper", "logit", "topk", "weighted")
#: Channel weights of the map: the SE vector s (the SE explanation) or ones (s := 1, the
#: ``activation-mean`` baseline).
WEIGHTS = ("se", "ones")
#: z of the paper (≈ top 10 % of a normal distribution).
PAPER_Z = 1.282
#: What ``k`` takes: a fraction of the channels in (0, 1], or a count ≥ 1.
K_RULE = Either(Float(0, 1, low_open=True), Int(1))


@dataclass
class SEVector:
    """The SE vector of a batch and the channels a rule selects.

    Attributes:
        s: N×C SE vector (after the sigmoid, in (0, 1)).
        logits: N×C pre-sigmoid excitation.
        selected: N×C bool, the channels that make each heatmap (never empty).
        threshold: N thresholds of the rule, on ``s`` for ``"paper"``, on ``logits`` for
            ``"logit"``, the k-th largest ``s`` for ``"topk"``; ``None`` for ``"weighted"``.
        rule: the selection rule used.
        fallback: N bool, True where the rule selected nothing and the strongest channel
            was taken instead (the paper's rule on saturated vectors).
    """

    s: torch.Tensor
    logits: torch.Tensor
    selected: torch.Tensor
    threshold: torch.Tensor | None
    rule: str
    fallback: torch.Tensor


def select_channels(
    s: torch.Tensor, logits: torch.Tensor, rule: str, z: float = PAPER_Z, k: float = 0.1
) -> SEVector:
    """Apply a channel-selection rule to N×C SE vectors.

    The rules:

    * ``"paper"``: s_c > mean(s) + z·std(s) (population std), the paper's literal rule.
      Behind a global average-pooling head trained SE vectors saturate near 1, and
      the threshold can exceed every s_c (``benchmarks/se_rules.py`` measures it).
    * ``"logit"``: the same z-score rule on the pre-sigmoid excitation (unbounded, so
      saturation cannot push the threshold out of reach).
    * ``"topk"``: the ceil(k·C) channels with the largest excitation (k a float fraction
      in (0, 1], 1.0 being every channel, or an integer count ≥ 1). Ranked on the logits,
      which keep their order where s rounds to 1.0.
    * ``"weighted"``: every channel, weighted by s (the map is the channel mean of s·U).

    A rule never selects zero channels: where it would, the channel with the largest
    excitation is taken and ``fallback`` is set for that sample.
    """
    rule, z, k = (
        check("selection", rule, Choice(SELECTIONS)),
        check("z", z, Float()),
        check("k", k, K_RULE),
    )
    n, c = s.shape
    threshold = None
    if rule == "paper":
        threshold = s.mean(1) + z * s.std(1, unbiased=False)
        selected = s > threshold[:, None]
    elif rule == "logit":
        threshold = logits.mean(1) + z * logits.std(1, unbiased=False)
        selected = logits > threshold[:, None]
    elif rule == "topk":
        count = int(k) if isinstance(k, numbers.Integral) else math.ceil(k * c)
        count = min(max(count, 1), c)
        idx = logits.topk(count, dim=1).indices
        selected = torch.zeros_like(s, dtype=torch.bool).scatter_(1, idx, True)
        threshold = s.gather(1, idx).min(1).values
    else:
        selected = torch.ones_like(s, dtype=torch.bool)
    fallback = ~selected.any(1)
    if fallback.any():
        best = logits.argmax(1)
        selected = selected.clone()
        selected[fallback, best[fallback]] = True
    return SEVector(s, logits, selected, threshold, rule, fallback)


def linear_head(model: nn.Module, channels: int) -> nn.Linear:
    """The model's last ``nn.Linear`` that takes ``channels`` inputs (the classifier)."""
    head = None
    for m in model.modules():
        if isinstance(m, nn.Linear) and m.in_features == channels:
            head = m
    if head is None:
        raise ValueError(
            f"class_aware needs a classifier nn.Linear with {channels} inputs after the SE "
            f"block (global pooling + linear head); {type(model).__name__} has none"
        )
    return head


@register_explainer(
    "se",
    description="SE explanation, default rule (all channels weighted by s)",
    presets={
        "se-topk": (
            "SE explanation, the 10 % channels with the largest excitation",
            {"selection": "topk"},
        ),
        "se-paper": ("SE explanation, the paper's literal z-score rule", {"selection": "paper"}),
        "se-logit": (
            "SE explanation, z-score on the pre-sigmoid excitation",
            {"selection": "logit"},
        ),
        "se-class": (
            "SE, class-aware extension (CAM on the SE output)",
            {"class_aware": True},
        ),
        "se-interp": (
            "SE explanation, upsampled as Captum, torchcam, pytorch-grad-cam output it "
            "(bilinear F.interpolate)",
            {"upsample": "interpolate"},
        ),
    },
)
class SEAttribution(HeatmapAttribution):
    """SE explanation (Roxo et al., arXiv 2412.05134): no gradients, no extra pass.

    The model must carry an :class:`~squeezex.models.se.SEBlock` (``attach_se_head``) and
    be trained with it. One forward pass gives the prediction and, through hooks on the SE
    block, the feature map U, the SE vector s and the SE-scaled map X = s·U. The heatmap
    is the mean of X over the selected channels, clamped at 0, upsampled with the
    network's geometry and min-max normalised. It is class-agnostic (``target`` is
    ignored) unless ``class_aware=True``. Features behind a ReLU give maps ≥ 0; where a
    map dips below 0 the features are signed (ConvNeXt's or MaxViT's stages, SiLU) and
    have no zero point, so the clamp would cut at an arbitrary level (random-weight
    ``convnext_large`` gives a map ≤ 0 everywhere): such a map is measured from its own
    minimum instead (the argmax, so the pointing game, is the same either way).

    **Tokens** (a :class:`~squeezex.models.se.TokenSEBlock`: a transformer's residual
    stream, whose sign and offset per channel mean nothing) use the squeeze as the zero
    point: the map is the channel mean of ``|X − X̄|``, X̄ = s·Ū the squeezed (patch-mean)
    tokens — where a patch departs from the average patch in the channels s keeps. Chosen
    on a small ViT on an8Flower single-6c (seed 0; seeds 1 and 2 held out) over X itself,
    ``s·|U|`` and the token norm ‖X‖, which all found the leaf less often (token norms mark
    high-norm background tokens). ``benchmarks/vit_an8flower.py`` measures the chosen map
    against Grad-CAM and attention rollout on three seeds (its JSON holds the numbers).

    **Default rule: ``"weighted"``** (every channel, weighted by its SE entry; the map is
    the channel mean of X), chosen by measurement (``benchmarks/se_rules.py`` and its
    JSON: every rule and Grad-CAM on the benchmark's an8Flower models). On single-6c
    every rule points at the leaf; on double-12c, with two discriminative parts, a handful
    of channels often covers only one of them, and the rules that select channels point
    worse than ``"weighted"``, which is level with Grad-CAM. Behind a global
    average-pooling head (``SmallCNN(pool="avg")``) the SE vector saturates near 1 and
    mean + z·std exceeds every entry, so the paper's literal rule falls back to one channel
    on every image and spreads the least of its map on the part. ``"paper"`` stays
    available, never selecting zero channels.

    **Class-aware (a squeezex extension, not in the paper).** ``class_aware=True``
    weights each channel of X by the classifier's weight for the target class (CAM on
    the SE output). For a global-average-pooling + linear head this equals Grad-CAM on
    the SE output, from the forward pass alone.

    Args:
        model: a model with an SE block.
        selection: default rule, one of ``SELECTIONS``.
        z: z of the ``"paper"`` and ``"logit"`` rules.
        k: fraction (or count) of channels for ``"topk"``.
        class_aware: the class-aware extension by default (registry name ``se-class``).
        weights: ``"se"`` (default: the SE explanation) or ``"ones"``: the same map with
            s replaced by ones, i.e. the channel mean of U (the SE block's *input*), same
            ReLU, upsampling and min-max: the gradient-free baseline ``activation-mean``.
            With ``"ones"`` the model needs no SE block: without one, U is the output of
            the layer Grad-CAM reads (:func:`~squeezex.explainers.baselines.feature_module`);
            every channel is kept (``selection="weighted"``, no ``class_aware``).
        layer: with ``weights="ones"`` only: read this layer's output (a module or a
            dotted name) as U instead of the SE block's input.
        **kwargs: see :class:`HeatmapAttribution` (``output``, ``upsample``,
            ``interpolation``, ``eval_mode``).

    Registry names: ``se`` and its presets ``se-topk``, ``se-paper``, ``se-logit``
    (the selection rules), ``se-class`` (``class_aware=True``) and ``se-interp``
    (``upsample="interpolate"``, the upsampling other libraries use). The SE vector of a
    batch is public: :meth:`se_vector` (``.s``, ``.logits``, ``.selected``).

    Example:
        >>> from squeezex import attach_se_head, SEAttribution
        >>> from squeezex.models import SmallCNN
        >>> import torch
        >>> model = attach_se_head(SmallCNN(num_classes=6)).eval()
        >>> maps, logits = SEAttribution(model).attribute(torch.rand(2, 3, 64, 64), return_logits=True)
        >>> maps.shape, logits.shape
        (torch.Size([2, 1, 64, 64]), torch.Size([2, 6]))
    """

    def __init__(
        self,
        model: nn.Module,
        selection: str = "weighted",
        z: float = PAPER_Z,
        k: float = 0.1,
        class_aware: bool = False,
        weights: str = "se",
        layer: str | nn.Module | None = None,
        **kwargs,
    ) -> None:
        selection, z, k, class_aware, weights, layer = check_options(
            self, selection=selection, z=z, k=k, class_aware=class_aware, weights=weights,
            layer=layer,
        ).values()  # fmt: skip
        super().__init__(model, **kwargs)
        if weights == "ones":
            _check_ones(selection, class_aware)
        elif layer is not None:
            raise ValueError("layer= is for weights='ones'; the SE explanation reads its SE block")
        self.se_block: SEBlock | None = find_se_block(model, required=weights == "se")
        self.selection = selection
        self.z = z
        self.k = k
        self.class_aware = class_aware
        self.weights = weights
        self._layer_arg = layer
        self._layer: nn.Module | None = None
        self.per_sample = weights == "ones" or self.se_block.squeeze == "sample"

    needs_se = True
    FOOTING = "SE block output s·U, one forward pass, gradient-free, {upsampling}"
    OPTIONS = {
        "selection": Choice(SELECTIONS),
        "z": Float(),
        "k": K_RULE,
        "class_aware": Bool(),
        "weights": Choice(WEIGHTS),
        "layer": Module(none=True),
    }

    def _capture(self, x: torch.Tensor, extra: tuple):
        """One no-grad forward pass; returns logits, U, X and the N×C pre-sigmoid excitation."""
        with self.se_block.recording() as got, torch.no_grad():
            logits = self._forward(x, extra)
        if "x" not in got:
            raise ValueError("the model's forward pass did not go through its SE block")
        e = got["e"].reshape(got["e"].shape[0], -1)
        if e.shape[0] == 1 and x.shape[0] > 1:  # batch squeeze
            e = e.expand(x.shape[0], -1)
        return logits, got["u"], got["x"], e

    def se_vector(
        self,
        inputs: torch.Tensor | tuple,
        additional_forward_args=None,
        selection: str | None = None,
        z: float | None = None,
        k: float | None = None,
    ) -> SEVector:
        """The N×C SE vector of ``inputs`` and the channels ``selection`` keeps."""
        if self.se_block is None:
            find_se_block(self.model)  # raises: no SE block, no SE vector
        tensors = inputs if isinstance(inputs, tuple) else (inputs,)
        x = self._check_inputs(tensors)
        extra = tuple(tensors[1:]) + as_tuple(additional_forward_args)
        with eval_mode(self.model, self.eval_mode):
            _, _, _, e = self._capture(x, extra)
        return self._select(e, selection, z, k)

    def _select(self, e, selection, z, k) -> SEVector:
        return select_channels(
            torch.sigmoid(e),
            e,
            selection or self.selection,
            self.z if z is None else z,
            self.k if k is None else k,
        )

    def _heatmaps(
        self,
        x,
        target,
        extra,
        selection: str | None = None,
        z: float | None = None,
        k: float | None = None,
        class_aware: bool | None = None,
        return_logits: bool = False,
    ):
        aware = self.class_aware if class_aware is None else class_aware
        rule = selection or self.selection
        if self.weights == "ones":  # s := 1: X is U, every channel kept
            _check_ones(rule, aware)
            logits, feats, layer = self._unweighted(x, extra)
        else:
            logits, _, feats, e = self._capture(x, extra)
            layer = self.se_block
        if _reads_tokens(layer) and not aware:  # signed tokens: |X − squeeze(X)|
            feats = (feats - feats.mean(tuple(range(2, feats.dim())), keepdim=True)).abs_()
        if aware:
            head = linear_head(self.model, feats.shape[1])
            if target is None:
                target = logits.argmax(1)
            weights = head.weight.detach()[target]  # N×C
            maps = torch.einsum("nc...,nc->n...", feats, weights.to(feats.dtype)).unsqueeze(1)
        elif rule == "weighted":  # every channel: the mean of X (of U for weights="ones")
            maps = feats.mean(1, keepdim=True)
        else:
            sel = self._select(e, selection, z, k).selected.to(feats.dtype)
            shape = (*sel.shape, *([1] * (feats.dim() - 2)))
            maps = (feats * sel.reshape(shape)).sum(1, keepdim=True) / sel.sum(1).reshape(
                sel.shape[0], *([1] * (feats.dim() - 1))
            )
        if not aware:
            maps = _from_minimum(maps)
        maps = self.footing(maps, x, self.geometry(layer, x, extra))
        return (maps, logits) if return_logits else maps

    def _unweighted(self, x: torch.Tensor, extra: tuple):
        """``weights="ones"``: the scores, U and the layer U comes out of (for its geometry).

        U is the SE block's input when the model has one (and no ``layer`` was given),
        else the output of the layer Grad-CAM reads.
        """
        if self._layer_arg is None and self.se_block is not None:
            logits, u, _, _ = self._capture(x, extra)
            return logits, u, self.se_block
        if self._layer is None:
            self._layer = feature_module(self.model, self._layer_arg, x)
        logits, u = layer_activations(self, self._layer, x, extra)
        return logits, u, self._layer


def _reads_tokens(layer: nn.Module) -> bool:
    """A token SE block, or a plain transformer's token view (``activation-mean``)."""
    return isinstance(layer, TokenSEBlock) or getattr(layer, "reads_tokens", False)


def _from_minimum(maps: torch.Tensor) -> torch.Tensor:
    """A map that dips below 0 comes from signed features (a residual stream, a
    LayerNorm, SiLU/GELU): they have no zero point, so that map is measured from its own
    minimum and the footing's ReLU cuts nothing (the argmax, so the pointing game, is
    unchanged). Maps ≥ 0 (features behind a ReLU) are returned as they are."""
    low = maps.flatten(1).amin(1).clamp_max(0).reshape(-1, *([1] * (maps.dim() - 1)))
    return maps - low if bool((low < 0).any()) else maps


def _check_ones(selection: str, class_aware: bool) -> None:
    if selection != "weighted" or class_aware:
        raise ValueError(
            "weights='ones' (s := 1) keeps every channel unweighted: selection must be "
            f"'weighted' and class_aware False, got {selection!r} and {class_aware}"
        )


@register_explainer(
    "activation-mean",
    description="channel mean of U, no SE weighting: the SE map with s := 1 (gradient-free)",
)
class ActivationMeanAttribution(SEAttribution):
    """The gradient-free baseline of the SE explanation: its map with s replaced by ones.

    ``SEAttribution(model, weights="ones")``, one code path with the SE explanation's
    ``"weighted"`` rule: the channel mean of U (the SE block's input), clamped at 0,
    upsampled with the same geometry and min-max normalised. Whatever SE adds over it is
    what the SE weighting adds. Class-agnostic (``target`` is ignored). Works on a model
    without an SE block too: U is then the output of the layer Grad-CAM reads (the last
    spatial feature layer), or of ``layer`` when given.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> am = ActivationMeanAttribution(SmallCNN(num_classes=6).eval())
        >>> am.attribute(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 1, 64, 64])
    """

    needs_se = False
    FOOTING = (
        "SE block input U (else Grad-CAM's layer), unweighted channel mean, gradient-free, "
        "{upsampling}"
    )
    #: s := 1 keeps every channel, unweighted: the SE rules' options take one value here.
    OPTIONS = {
        "selection": Choice(("weighted",)),
        "class_aware": Choice((False,)),
        "weights": Choice(("ones",)),
    }

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None, **kwargs) -> None:
        super().__init__(model, layer=layer, **{"weights": "ones", **kwargs})
