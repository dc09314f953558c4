"""Baselines on the common footing: Captum's methods, post-processed like every method.

Captum's ``LayerGradCam`` keeps signs, does not upsample and does not normalise; here
its layer map gets exactly the post-processing SE gets (ReLU, upsampling with the
network's geometry, per-sample min-max), so a table compares methods, not
post-processing (METHODS.md §4).

Two families:

* **Layer maps** (Grad-CAM, Grad-CAM++, EigenCAM) read the layer :func:`feature_module`
  picks (the SE block's output when there is one) and are upsampled with the network's
  geometry, like the SE explanation. The ``-interp`` presets (``gradcam-interp``,
  ``gradcam++-interp``) upsample with ``F.interpolate`` instead, as Captum, torchcam and
  pytorch-grad-cam output their maps, so a table can show what the geometry changes. Guided Grad-CAM multiplies the geometry-upsampled Grad-CAM map
  into Captum's guided backpropagation, so it too sees the cells where they really sit.
* **Pixel attributions** (guided backprop, deconvolution, saliency, input × gradient,
  integrated gradients, occlusion, and guided Grad-CAM's product) are N×C×H×W. Every
  one is reduced to one map per sample by the same rule, :func:`pixel_map`: **the
  positive part, then the L2 norm over channels** (√Σ_c max(a_c, 0)²). Why this rule:
  it is the rule VEBI's backward signals get (``vebi.feature_heatmap``), so the pixel
  methods and VEBI are post-processed alike and a table compares methods, not
  reductions; and it agrees with the footing, whose ReLU already reads a signed map's
  negative part as evidence *against* the class (for Grad-CAM as for SE), so the
  negative part is dropped here too instead of being folded in by an absolute value.
  (Saliency is defined with ``abs``, so its positive part is all of it.) The reduced
  map then goes through :meth:`~squeezex.explainers.base.HeatmapAttribution.footing`
  (ReLU + min-max; no upsampling: it is already at input resolution).

Every method explains the predicted class when ``target`` is ``None``, a scalar target
applies to every sample and a per-sample target has one entry per sample; gradients are
taken under ``torch.enable_grad()`` with respect to a detached copy of the input, so
callers under ``torch.no_grad()`` work and no ``.grad`` is left on the input or the
parameters. Captum's guided backprop and deconvolution hook every ``nn.ReLU`` (inplace
ones included) and remove the hooks in ``finally``; the warnings Captum emits for that
(and for switching on the input's ``requires_grad``) are expected and silenced, and
only those.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch
from captum._utils.gradient import compute_layer_gradients_and_eval
from captum.attr import (
    Deconvolution,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from torch import nn

from ..common import is_batched
from ..geometry import upsample
from ..models.se import find_feature_layer, find_se_block, get_submodule
from ..models.tokens import active_token_views, token_view
from ..options import Int, Module, Sizes, check, check_options
from .base import HeatmapAttribution
from .registry import register_explainer

__all__ = [
    "GradCAM",
    "GradCAMPlusPlus",
    "GuidedGradCAM",
    "PixelAttribution",
    "GuidedBackpropAttribution",
    "DeconvolutionAttribution",
    "SaliencyAttribution",
    "InputXGradientAttribution",
    "IntegratedGradientsAttribution",
    "OcclusionAttribution",
    "RandomAttribution",
    "EigenCAM",
    "feature_module",
    "layer_activations",
    "gradcam_pp_map",
    "eigen_map",
    "pixel_map",
]

#: What the ``-interp`` presets say about themselves.
_INTERP = "upsampled as Captum, torchcam, pytorch-grad-cam output it (bilinear F.interpolate)"

#: The warnings Captum emits on every call of the methods wrapped here, by design.
_EXPECTED_WARNINGS = (
    r"Setting backward hooks on ReLU activations",
    r"Input Tensor \d+ did not already require gradients",
)


@contextmanager
def _captum_warnings():
    """Silence exactly the warnings Captum emits by design; let every other one through."""
    with warnings.catch_warnings():
        for message in _EXPECTED_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def pixel_map(attributions: torch.Tensor) -> torch.Tensor:
    """One map per sample from N×C×… pixel attributions: positive part, L2 over channels.

    Returns N×1×… (not normalised; :meth:`HeatmapAttribution.footing` does that).
    """
    pos = attributions.clamp_min(0)
    return (pos * pos).sum(1, keepdim=True).sqrt()


def feature_module(model: nn.Module, layer: str | nn.Module | None = None, x=None) -> nn.Module:
    """The layer a CAM-style method reads: ``layer`` if given, else the SE block's output
    (a :class:`~squeezex.models.se.TokenSEBlock`'s channels-first ``view`` of its patch
    tokens), else for a plain ViT or MViT the tokens entering its last encoder block as a
    map (:class:`~squeezex.models.tokens.TokenView`: squeezex's ``reshape_transform``,
    live while an explainer runs), else the model's last spatial feature layer."""
    if isinstance(layer, nn.Module):
        return layer
    if isinstance(layer, str):
        return get_submodule(model, layer)
    se = find_se_block(model, required=False)
    if se is not None:  # a token block's channels-first view: tokens as a feature map
        return getattr(se, "view", se)
    tokens = token_view(model)
    if tokens is not None:
        return tokens.view
    size = tuple(x.shape[1:]) if x is not None else None
    return get_submodule(model, find_feature_layer(model, size))


def layer_activations(
    ex: HeatmapAttribution, layer: nn.Module, x: torch.Tensor, extra: tuple = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """One no-grad forward pass of ``ex``'s explained head: (N×K scores, ``layer``'s output).

    The output is copied (a later in-place op of the model cannot change it); the hook
    is removed whatever happens.
    """
    got: dict = {}

    def keep(module, args, output):
        got["a"] = output.clone() if isinstance(output, torch.Tensor) else output

    handle = layer.register_forward_hook(keep)
    try:
        with torch.no_grad(), active_token_views(ex.model):  # also outside attribute
            scores = ex._forward(x, extra)
    finally:
        handle.remove()
    a = got.get("a")
    if not isinstance(a, torch.Tensor) or a.dim() < 3:
        raise ValueError(
            f"layer {type(layer).__name__} gave no N×C×… feature map in the forward pass "
            f"(got {type(a).__name__ if a is None else tuple(getattr(a, 'shape', ()))}); "
            "pass layer= a spatial feature layer the model runs"
        )
    return scores, a


def _target_or_prediction(ex: HeatmapAttribution, x, target, extra) -> torch.Tensor:
    """``target`` (already one index per sample), or the predicted class when ``None``."""
    if target is not None:
        return target
    with torch.no_grad():
        return ex._forward(x, extra).argmax(1)


# -- the Grad-CAM family: layer maps -------------------------------------------------------
@register_explainer(
    "gradcam",
    description="Grad-CAM (Captum LayerGradCam) on the same layer",
    presets={"gradcam-interp": (f"Grad-CAM, {_INTERP}", {"upsample": "interpolate"})},
)
class GradCAM(HeatmapAttribution):
    """Grad-CAM (Selvaraju et al., ICCV 2017) through Captum's ``LayerGradCam``.

    Reads the same layer as the SE explanation (the SE block's output when the model
    has one), so both methods see the same features; ``target=None`` explains the
    predicted class. ``gradcam-interp`` (``upsample="interpolate"``) is exactly Captum's
    ``LayerGradCam(relu_attributions=True)`` + ``LayerAttribution.interpolate(...,
    "bilinear")`` + min-max.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> cam = GradCAM(SmallCNN(num_classes=6).eval())
        >>> cam.attribute(torch.rand(2, 3, 64, 64), target=[0, 3]).shape
        torch.Size([2, 1, 64, 64])
    """

    needs_gradients = True
    FOOTING = (
        "Grad-CAM layer (SE block output, else last spatial layer), layer gradients, {upsampling}"
    )

    OPTIONS = {"layer": Module(none=True)}

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None, **kwargs) -> None:
        layer = check("layer", layer, Module(none=True))
        super().__init__(model, **kwargs)
        self._layer_arg = layer
        self._layer: nn.Module | None = None

    def layer(self, x: torch.Tensor) -> nn.Module:
        if self._layer is None:
            self._layer = feature_module(self.model, self._layer_arg, x)
        return self._layer

    def _heatmaps(self, x, target, extra):
        layer = self.layer(x)
        target = _target_or_prediction(self, x, target, extra)
        with torch.enable_grad():
            raw = LayerGradCam(self.forward_model, layer).attribute(
                x.detach(), target=target, additional_forward_args=extra or None
            )
        return self.footing(raw.detach(), x, self.geometry(layer, x, extra))


def gradcam_pp_map(
    model: nn.Module,
    layer: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    additional_forward_args: tuple = (),
) -> torch.Tensor:
    """The signed Grad-CAM++ map Σ_k w_k A_k of ``layer`` (N×1×h×w, before any footing).

    The closed form of Chattopadhay et al. (WACV 2018) for an exponential score exp(S):
    with g = ∂S/∂A (Captum's ``compute_layer_gradients_and_eval``),

        α_k,ij = g²_k,ij / (2 g²_k,ij + (Σ_ab A_k,ab) g³_k,ij)    (0 where that is 0),
        w_k = Σ_ij relu(g_k,ij) α_k,ij.

    The common factor exp(S) of the paper's w_k is dropped (per-sample scale, removed by
    min-max). Works on any number of spatial axes (video: N×K×t×h×w).
    """
    with torch.enable_grad():
        grads, evals = compute_layer_gradients_and_eval(
            model, layer, x.detach(), target, additional_forward_args or None
        )
    g, a = grads[0].detach(), evals[0].detach()
    dims = tuple(range(2, g.dim()))
    g2 = g * g
    denom = 2 * g2 + a.sum(dims, keepdim=True) * g2 * g
    nonzero = denom != 0
    alpha = torch.where(nonzero, g2 / torch.where(nonzero, denom, torch.ones_like(denom)), 0.0)
    weights = (alpha * g.clamp_min(0)).sum(dims, keepdim=True)
    return (weights * a).sum(1, keepdim=True)


@register_explainer(
    "gradcam++",
    description="Grad-CAM++ (closed form, exp score) on the same layer as Grad-CAM",
    presets={"gradcam++-interp": (f"Grad-CAM++, {_INTERP}", {"upsample": "interpolate"})},
)
class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018) on the same layer as Grad-CAM.

    Captum has no Grad-CAM++; the layer's activations and gradients come from Captum's
    ``compute_layer_gradients_and_eval`` and the closed form is :func:`gradcam_pp_map`.
    Weighting each gradient by α favours channels that fire on several object parts.
    Post-processed exactly like Grad-CAM (ReLU, geometry upsampling, min-max).

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> cam = GradCAMPlusPlus(SmallCNN(num_classes=6).eval())
        >>> cam.attribute(torch.rand(2, 3, 64, 64), target=1).shape
        torch.Size([2, 1, 64, 64])
    """

    def _heatmaps(self, x, target, extra):
        layer = self.layer(x)
        target = _target_or_prediction(self, x, target, extra)
        raw = gradcam_pp_map(self.forward_model, layer, x, target, extra)
        return self.footing(raw, x, self.geometry(layer, x, extra))


@register_explainer(
    "guided-gradcam",
    description="Guided Grad-CAM (Captum GuidedGradCam): guided backprop × Grad-CAM map",
)
class GuidedGradCAM(GradCAM):
    """Guided Grad-CAM (Selvaraju et al., ICCV 2017) through Captum's ``GuidedGradCam``.

    Captum's ``GuidedGradCam`` on the Grad-CAM layer, with one change: its Grad-CAM map
    (ReLU'd) is upsampled to the input with the network's geometry (``upsample=
    "geometry"``, the default) instead of ``F.interpolate``'s even tiling; with
    ``upsample="interpolate"`` the product is exactly Captum's ``GuidedGradCam`` with
    ``interpolate_mode="bilinear"``. The N×C×H×W product is reduced by
    :func:`pixel_map` like every pixel attribution.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> ggc = GuidedGradCAM(SmallCNN(num_classes=6).eval())
        >>> ggc.attribute(torch.rand(2, 3, 64, 64), target=[0, 3]).shape
        torch.Size([2, 1, 64, 64])
    """

    FOOTING = "input gradients (guided backprop) × Grad-CAM layer map by {upsampling}"

    def product(self, x, target, extra: tuple = ()) -> torch.Tensor:
        """The N×C×H×W guided Grad-CAM attribution (``target``: one index per sample)."""
        layer = self.layer(x)
        captum = GuidedGradCam(self.forward_model, layer)
        args = extra or None
        xd = x.detach()
        with torch.enable_grad(), _captum_warnings():
            cam = captum.grad_cam.attribute(
                xd, target=target, additional_forward_args=args, relu_attributions=True
            )
            guided = captum.guided_backprop.attribute(
                xd, target=target, additional_forward_args=args
            )
        mode = self.interpolation if x.dim() == 4 else "bilinear"
        cam = upsample(cam.detach(), tuple(x.shape[2:]), self.geometry(layer, x, extra), mode)
        return guided.detach() * cam.clamp_min(0)

    def _heatmaps(self, x, target, extra):
        target = _target_or_prediction(self, x, target, extra)
        return self.footing(pixel_map(self.product(x, target, extra)), x, None)


def eigen_map(activations: torch.Tensor) -> torch.Tensor:
    """EigenCAM's signed map: each sample's activations on their first principal component.

    Per sample, the C×… activations become a P×C matrix M (P positions, time included
    for clips), centred over the positions (as pytorch-grad-cam's ``get_2d_projection``
    does); the map is M·v₁, v₁ the first right singular vector. v₁'s sign is arbitrary
    (pytorch-grad-cam keeps what the SVD returns); here it is fixed so that the map
    correlates positively with the channel-sum activation (equivalently Σ_c v₁,c ≥ 0),
    so the ReLU of the footing keeps the strongly activated side. A sample with
    non-finite activations gets a NaN map. Returns N×1×… (before any footing).
    """
    n, c = activations.shape[:2]
    m = activations.reshape(n, c, -1).transpose(1, 2)  # N×P×C
    m = m - m.mean(1, keepdim=True)
    bad = ~torch.isfinite(m).flatten(1).all(1)
    m = torch.where(bad[:, None, None], torch.zeros_like(m), m)
    v = torch.linalg.svd(m, full_matrices=False).Vh[:, 0, :]  # N×C
    proj = (m @ v.unsqueeze(-1)).squeeze(-1)  # N×P
    flip = (proj * m.sum(2)).sum(1) < 0  # against the (centred) channel sum
    proj = torch.where(flip[:, None], -proj, proj)
    proj = torch.where(bad[:, None], torch.full_like(proj, float("nan")), proj)
    return proj.reshape(n, 1, *activations.shape[2:])


@register_explainer(
    "eigencam",
    description="EigenCAM: first principal component of the Grad-CAM layer (class-agnostic)",
)
class EigenCAM(GradCAM):
    """EigenCAM (Muhammad & Yeasin, IJCNN 2020), pytorch-grad-cam's ``EigenCAM``.

    The Grad-CAM layer's activations projected on their first principal component
    (:func:`eigen_map`), then the common footing (ReLU, geometry upsampling, min-max).
    One forward pass, **no gradients**, and **class-agnostic**: ``target`` is checked
    against the model's output but does not change the map. The sign of the component
    is fixed (positive correlation with the channel-sum activation), where
    pytorch-grad-cam leaves it to the SVD.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> cam = EigenCAM(SmallCNN(num_classes=6).eval())
        >>> cam.attribute(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 1, 64, 64])
    """

    needs_gradients = False
    FOOTING = (
        "Grad-CAM layer (SE block output, else last spatial layer), first principal "
        "component, gradient-free, class-agnostic, {upsampling}"
    )

    def _heatmaps(self, x, target, extra):
        layer = self.layer(x)
        _, acts = layer_activations(self, layer, x, extra)
        return self.footing(eigen_map(acts), x, self.geometry(layer, x, extra))


# -- pixel attributions ----------------------------------------------------------------------
class PixelAttribution(HeatmapAttribution):
    """Base for Captum methods whose attribution is N×C×H×W, reduced by :func:`pixel_map`.

    A subclass overrides :meth:`_pixels` (Captum's attribution of the detached input for
    per-sample ``target``); this class picks the predicted class when ``target`` is
    ``None``, turns on autograd, silences Captum's expected warnings, reduces the
    channels and puts the map on the common footing.
    """

    needs_gradients = True
    FOOTING = "input gradients, input resolution (no upsampling)"

    def _pixels(self, x: torch.Tensor, target: torch.Tensor, extra: tuple, **kwargs):
        raise NotImplementedError

    def _heatmaps(self, x, target, extra, **kwargs):
        target = _target_or_prediction(self, x, target, extra)
        with torch.enable_grad(), _captum_warnings():
            attr = self._pixels(x.detach(), target, extra, **kwargs)
        return self.footing(pixel_map(attr.detach()), x, None)


@register_explainer(
    "guided-backprop",
    description="guided backpropagation (Captum GuidedBackprop): positive-gradient ReLUs",
)
class GuidedBackpropAttribution(PixelAttribution):
    """Guided backpropagation (Springenberg et al., ICLR-W 2015) via Captum's ``GuidedBackprop``.

    The input gradient with every ``nn.ReLU``'s backward pass letting only positive
    gradients through (Captum hooks the ReLU modules for the call; functional ReLUs are
    not modified).

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> gb = GuidedBackpropAttribution(SmallCNN(num_classes=6).eval())
        >>> gb.attribute(torch.rand(2, 3, 64, 64), target=2).shape
        torch.Size([2, 1, 64, 64])
    """

    def _pixels(self, x, target, extra):
        return GuidedBackprop(self.forward_model).attribute(
            x, target=target, additional_forward_args=extra or None
        )


@register_explainer(
    "deconvolution", description="deconvolution (Captum Deconvolution): ReLU of the backward signal"
)
class DeconvolutionAttribution(PixelAttribution):
    """Deconvolution (Zeiler & Fergus, ECCV 2014) via Captum's ``Deconvolution``.

    The input gradient with every ``nn.ReLU``'s backward pass replaced by a ReLU of the
    incoming gradient (ignoring the forward activation).

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> dc = DeconvolutionAttribution(SmallCNN(num_classes=6).eval())
        >>> dc.attribute(torch.rand(2, 3, 64, 64), target=2).shape
        torch.Size([2, 1, 64, 64])
    """

    def _pixels(self, x, target, extra):
        return Deconvolution(self.forward_model).attribute(
            x, target=target, additional_forward_args=extra or None
        )


@register_explainer("saliency", description="saliency (Captum Saliency): absolute input gradient")
class SaliencyAttribution(PixelAttribution):
    """Saliency (Simonyan et al., ICLR-W 2014) via Captum's ``Saliency``: ``|∂S/∂x|``.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> sal = SaliencyAttribution(SmallCNN(num_classes=6).eval())
        >>> sal.attribute(torch.rand(2, 3, 64, 64), target=2).shape
        torch.Size([2, 1, 64, 64])
    """

    def _pixels(self, x, target, extra):
        return Saliency(self.forward_model).attribute(
            x, target=target, abs=True, additional_forward_args=extra or None
        )


@register_explainer("input-x-gradient", description="input × gradient (Captum InputXGradient)")
class InputXGradientAttribution(PixelAttribution):
    """Input × gradient (Shrikumar et al., 2016) via Captum's ``InputXGradient``.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> ixg = InputXGradientAttribution(SmallCNN(num_classes=6).eval())
        >>> ixg.attribute(torch.rand(2, 3, 64, 64), target=2).shape
        torch.Size([2, 1, 64, 64])
    """

    def _pixels(self, x, target, extra):
        return InputXGradient(self.forward_model).attribute(
            x, target=target, additional_forward_args=extra or None
        )


@register_explainer(
    "integrated-gradients", description="integrated gradients (Captum), black baseline, 32 steps"
)
class IntegratedGradientsAttribution(PixelAttribution):
    """Integrated gradients (Sundararajan et al., ICML 2017) via Captum.

    Zero baseline (black for images in [0, 1], the mean colour for normalised ones),
    Captum's default Gauss-Legendre quadrature with ``n_steps`` points.

    Args:
        model: the model to explain.
        n_steps: quadrature points (default 32); overridable per call.
        internal_batch_size: at most this many interpolated images go through the model
            at once (default 128). Captum's own ``internal_batch_size`` cannot go below
            the batch size, so the batch is first split into chunks of at most this many
            samples: memory is bounded whatever the batch.
        **kwargs: :class:`HeatmapAttribution` options.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> ig = IntegratedGradientsAttribution(SmallCNN(num_classes=6).eval(), n_steps=8)
        >>> ig.attribute(torch.rand(2, 3, 64, 64), target=2).shape
        torch.Size([2, 1, 64, 64])
    """

    OPTIONS = {"n_steps": Int(1), "internal_batch_size": Int(1)}

    def __init__(
        self, model: nn.Module, n_steps: int = 32, internal_batch_size: int = 128, **kwargs
    ) -> None:
        checked = check_options(self, n_steps=n_steps, internal_batch_size=internal_batch_size)
        super().__init__(model, **kwargs)
        self.n_steps, self.internal_batch_size = checked.values()

    def _pixels(self, x, target, extra, n_steps: int | None = None):
        ig = IntegratedGradients(self.forward_model)
        n_steps = self.n_steps if n_steps is None else n_steps
        size = self.internal_batch_size
        out = []
        for start in range(0, x.shape[0], size):
            rows = slice(start, start + size)
            sub_extra = tuple(e[rows] if is_batched(e, len(x)) else e for e in extra)
            out.append(
                ig.attribute(
                    x[rows],
                    target=target[rows],
                    additional_forward_args=sub_extra or None,
                    n_steps=n_steps,
                    internal_batch_size=size,
                ).detach()
            )
        return torch.cat(out)


@register_explainer(
    "occlusion",
    description="occlusion (Captum Occlusion): score drop under a black 1/8-side window",
)
class OcclusionAttribution(PixelAttribution):
    """Occlusion (Zeiler & Fergus, ECCV 2014) via Captum's ``Occlusion``.

    Each window of the image is replaced by zeros (black for images in [0, 1], the mean
    colour for normalised ones), and every pixel gets the mean drop of the target score
    over the windows that cover it. No gradients.

    Args:
        model: the model to explain.
        sliding_window_shapes: the window per spatial axis (an int for all); default
            1/8 of the side (8×8 at 64×64, 4×4 at 32×32), so the cost (15×15 windows
            with the default stride) does not depend on the input size.
        strides: the step per spatial axis (an int for all); default 1/16 of the side
            (at most the window); never larger than the window.
        max_rows: at most this many occluded images go through the model at once
            (Captum's ``perturbations_per_eval`` = max_rows // batch, at least 1).
        **kwargs: :class:`HeatmapAttribution` options.

    The window and stride are overridable per call (``sliding_window_shapes=``,
    ``strides=``), spatial axes only: the window always spans every channel.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> occ = OcclusionAttribution(SmallCNN(num_classes=6).eval())
        >>> occ.attribute(torch.rand(2, 3, 64, 64), target=2).shape
        torch.Size([2, 1, 64, 64])
    """

    needs_gradients = False
    FOOTING = "forward passes on occluded inputs, gradient-free, input resolution (no upsampling)"
    OPTIONS = {
        "sliding_window_shapes": Sizes(none=True),
        "strides": Sizes(none=True),
        "max_rows": Int(1),
    }

    def __init__(
        self,
        model: nn.Module,
        sliding_window_shapes: int | tuple[int, ...] | None = None,
        strides: int | tuple[int, ...] | None = None,
        max_rows: int = 256,
        **kwargs,
    ) -> None:
        checked = check_options(
            self, sliding_window_shapes=sliding_window_shapes, strides=strides, max_rows=max_rows
        )
        super().__init__(model, **kwargs)
        self.sliding_window_shapes, self.strides, self.max_rows = checked.values()
        if strides is not None and sliding_window_shapes is not None:
            axes = max(
                len(v) if isinstance(v, tuple | list) else 1
                for v in (strides, sliding_window_shapes)
            )
            self._strides_fit(_per_axis(sliding_window_shapes, (1,) * axes, 8, "sliding_window_shapes"),
                              _per_axis(strides, (1,) * axes, 16, "strides"))  # fmt: skip

    def window(self, x: torch.Tensor, sliding_window_shapes=None, strides=None):
        """The (window, stride) Captum gets for ``x``: both C×… (full channel span)."""
        size = tuple(x.shape[2:])
        if sliding_window_shapes is None:
            sliding_window_shapes = self.sliding_window_shapes
        if strides is None:
            strides = self.strides
        win = _per_axis(sliding_window_shapes, size, 8, "sliding_window_shapes")
        given = strides is not None
        step = _per_axis(strides, size, 16, "strides")
        if not given:  # the default stride never skips pixels a small window would cover
            step = tuple(min(s, w) for s, w in zip(step, win, strict=True))
        else:
            self._strides_fit(win, step)
        for w, s in zip(win, size, strict=True):
            if w > s:
                raise ValueError(
                    f"sliding_window_shapes {win} is larger than the input {size}: the "
                    "occlusion window must fit in the image"
                )
        return (x.shape[1], *win), (x.shape[1], *step)

    @staticmethod
    def _strides_fit(win: tuple, step: tuple) -> None:
        if any(s > w for s, w in zip(step, win, strict=True)):
            raise ValueError(
                f"strides {step} is larger than sliding_window_shapes {win}: the windows "
                "would skip pixels (no map there)"
            )

    def _pixels(self, x, target, extra, sliding_window_shapes=None, strides=None):
        win, step = self.window(x, sliding_window_shapes, strides)
        return Occlusion(self.forward_model).attribute(
            x,
            sliding_window_shapes=win,
            strides=step,
            baselines=0.0,
            target=target,
            additional_forward_args=extra or None,
            perturbations_per_eval=max(1, self.max_rows // x.shape[0]),
        )


def _per_axis(value, size: tuple[int, ...], fraction: int, what: str) -> tuple[int, ...]:
    if value is None:
        return tuple(max(1, round(s / fraction)) for s in size)
    value = check(what, value, Sizes())
    if not isinstance(value, tuple | list):
        value = (value,) * len(size)
    if len(value) != len(size):
        raise ValueError(
            f"{what} must be a positive integer or one per spatial axis ({len(size)}), "
            f"got {tuple(value)}"
        )
    return tuple(int(v) for v in value)


# -- the floor ---------------------------------------------------------------------------------
@register_explainer("random", description="random floor: coarse uniform noise")
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
    FOOTING = "reference map: seeded coarse noise, bilinear interpolation (F.interpolate)"

    OPTIONS = {"cell": Int(1), "seed": Int(0)}

    def __init__(self, model: nn.Module, cell: int = 8, seed: int = 0, **kwargs) -> None:
        checked = check_options(self, cell=cell, seed=seed)
        super().__init__(model, **kwargs)
        self.cell, self.seed = checked.values()

    def _heatmaps(self, x, target, extra):
        self._probe(x, extra)  # the noise does not read the model: check it takes x
        g = torch.Generator().manual_seed(self.seed)
        size = tuple(max(1, -(-s // self.cell)) for s in x.shape[2:])
        noise = torch.rand(x.shape[0], 1, *size, generator=g, dtype=torch.float64)
        noise = noise.to(device=x.device, dtype=x.dtype)
        return self.footing(noise, x, None)
