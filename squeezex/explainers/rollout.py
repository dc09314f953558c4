"""Attention rollout (Abnar & Zuidema, ACL 2020): the ViT-native, gradient-free baseline.

Each attention layer's weights (heads fused) get the residual connection added as an
identity, Â = r·I + (1 − r)·A with rows renormalised (the paper's r = 0.5), and the
layers are chained, R = Â_L ··· Â_1: how much of each input token flows into each token
at the top. The map is the class token's row over the patch tokens, on the patch grid,
upsampled with the patch geometry and min-max normalised like every other map. It is
class-agnostic (``target`` is ignored), like the SE explanation.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.tokens import patches_to_map, prefix_tokens
from ..options import Choice, Float, check_options
from .base import HeatmapAttribution
from .baselines import feature_module
from .registry import register_explainer

__all__ = ["AttentionRollout", "HEAD_FUSIONS"]

HEAD_FUSIONS = ("mean", "max", "min")
#: How the heads (axis 1) of a layer's N×heads×T×T attention are fused.
FUSE = {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}


@register_explainer(
    "rollout",
    description="attention rollout (Abnar & Zuidema 2020): the class token's attention "
    "flow to the patches, ViT-native, gradient-free",
)
class AttentionRollout(HeatmapAttribution):
    """Attention rollout on a vision transformer (torchvision's ``VisionTransformer``, with
    or without an SE head): every ``nn.MultiheadAttention`` over class + patch tokens.

    Args:
        model: a transformer with a class token and ``nn.MultiheadAttention`` layers.
        residual: the weight r of the identity (the skip connection) in each layer.
        head_fusion: how the heads of a layer are fused: ``"mean"`` (the paper), ``"max"``
            or ``"min"`` (as in pytorch-grad-cam's examples).
        **kwargs: see :class:`~squeezex.explainers.base.HeatmapAttribution`.

    Other models (CNNs; MViT's pooled and Swin's windowed attention, which do not relate
    every token to every other) are refused by name: :meth:`unsupported` says why.

    Example:
        >>> import torch, torchvision
        >>> vit = torchvision.models.VisionTransformer(32, 8, 2, 2, 32, 64, num_classes=4)
        >>> AttentionRollout(vit.eval()).attribute(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 1, 32, 32])
    """

    FOOTING = (
        "attention rollout of every attention layer (class-token row, r = 0.5 identity), "
        "one forward pass, gradient-free, {upsampling}"
    )
    OPTIONS = {"residual": Float(0, 1, high_open=True), "head_fusion": Choice(HEAD_FUSIONS)}

    def __init__(
        self, model: nn.Module, residual: float = 0.5, head_fusion: str = "mean", **kwargs
    ) -> None:
        checked = check_options(self, residual=residual, head_fusion=head_fusion)
        super().__init__(model, **kwargs)
        self.residual, self.head_fusion = checked.values()
        self._layers = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
        self._prefix = prefix_tokens(model)

    def unsupported(self, x: torch.Tensor) -> str | None:
        """Why rollout cannot explain inputs like ``x`` on this model (``None``: it can)."""
        name = type(self.model).__name__
        if not self._layers:
            return (
                f"rollout: attention rollout reads nn.MultiheadAttention layers over all "
                f"tokens (torchvision's VisionTransformer); {name} has none"
            )
        if not self._prefix:
            return f"rollout: attention rollout reads the class token's row; {name} has none"
        if x.dim() != 4:
            return f"rollout: N×C×H×W images only (got {x.dim() - 2} spatial axes)"
        return None

    def _heatmaps(self, x, target, extra):
        reason = self.unsupported(x)
        if reason is not None:
            raise ValueError(reason)
        joint = None
        for a in self._attentions(x, extra):
            a = FUSE[self.head_fusion](a)
            a = self.residual * torch.eye(a.shape[-1], dtype=a.dtype) + (1 - self.residual) * a
            a = a / a.sum(-1, keepdim=True)
            joint = a if joint is None else a @ joint
        row = joint[:, :1].transpose(1, 2)  # N×L×1: the class token's row, as one channel
        maps = patches_to_map(row, self._prefix, hint="rollout")
        layer = feature_module(self.model, None, x)  # the patch grid's geometry
        return self.footing(maps, x, self.geometry(layer, x, extra))

    def _attentions(self, x: torch.Tensor, extra: tuple) -> list[torch.Tensor]:
        """Every attention layer's N×heads×L×L weights from one no-grad forward pass."""
        got: list[torch.Tensor] = []

        def ask(module, args, kwargs):
            return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

        def keep(module, args, output):
            got.append(output[1].detach())

        handles = [h for m in self._layers for h in (
            m.register_forward_pre_hook(ask, with_kwargs=True), m.register_forward_hook(keep)
        )]  # fmt: skip
        try:
            with torch.no_grad():
                self._forward(x, extra)
        finally:
            for h in handles:
                h.remove()
        if len(got) != len(self._layers) or got[0].dim() != 4:
            raise ValueError(
                "rollout: the attention layers did not all run with per-head weights "
                f"({len(got)} of {len(self._layers)} reported)"
            )
        return got
