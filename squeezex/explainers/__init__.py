"""Explainers: the SE explanation, baselines through Captum, and the registry."""

from .base import HeatmapAttribution, normalize_target
from .baselines import (
    DeconvolutionAttribution,
    GradCAM,
    GradCAMPlusPlus,
    GuidedBackpropAttribution,
    GuidedGradCAM,
    InputXGradientAttribution,
    IntegratedGradientsAttribution,
    OcclusionAttribution,
    PixelAttribution,
    RandomAttribution,
    SaliencyAttribution,
    feature_module,
    gradcam_pp_map,
    pixel_map,
)
from .registry import explainer_info, get_explainer, list_explainers, register_explainer
from .se import SELECTIONS, SEAttribution, SEVector, select_channels
from .vebi import (
    Interpretation,
    RelevantFeatures,
    VEBIAttribution,
    backproject,
    extract_features,
    interpret,
    mu_lasso,
)


@register_explainer(
    "se", description="SE explanation, default rule (all channels weighted by s)", needs_se=True
)
def _se(model, **kw):
    return SEAttribution(model, **kw)


@register_explainer(
    "se-topk",
    description="SE explanation, the 10 % channels with the largest excitation",
    needs_se=True,
)
def _se_topk(model, **kw):
    return SEAttribution(model, **{"selection": "topk", **kw})


@register_explainer(
    "se-paper", description="SE explanation, the paper's literal z-score rule", needs_se=True
)
def _se_paper(model, **kw):
    return SEAttribution(model, **{"selection": "paper", **kw})


@register_explainer(
    "se-logit", description="SE explanation, z-score on the pre-sigmoid excitation", needs_se=True
)
def _se_logit(model, **kw):
    return SEAttribution(model, **{"selection": "logit", **kw})


class _ClassAwareSE(SEAttribution):
    """SE explanation, class-aware (squeezex extension): CAM on the SE output."""

    def _heatmaps(self, x, target, extra, **kw):
        kw.setdefault("class_aware", True)
        return super()._heatmaps(x, target, extra, **kw)


@register_explainer(
    "se-class", description="SE, class-aware extension (CAM on the SE output)", needs_se=True
)
def _se_class(model, **kw):
    return _ClassAwareSE(model, **kw)


@register_explainer(
    "gradcam", description="Grad-CAM (Captum LayerGradCam) on the same layer", needs_gradients=True
)
def _gradcam(model, **kw):
    return GradCAM(model, **kw)


@register_explainer(
    "gradcam++",
    description="Grad-CAM++ (closed form, exp score) on the same layer as Grad-CAM",
    needs_gradients=True,
)
def _gradcam_pp(model, **kw):
    return GradCAMPlusPlus(model, **kw)


@register_explainer(
    "guided-gradcam",
    description="Guided Grad-CAM (Captum GuidedGradCam): guided backprop × Grad-CAM map",
    needs_gradients=True,
)
def _guided_gradcam(model, **kw):
    return GuidedGradCAM(model, **kw)


@register_explainer(
    "guided-backprop",
    description="guided backpropagation (Captum GuidedBackprop): positive-gradient ReLUs",
    needs_gradients=True,
)
def _guided_backprop(model, **kw):
    return GuidedBackpropAttribution(model, **kw)


@register_explainer(
    "deconvolution",
    description="deconvolution (Captum Deconvolution): ReLU of the backward signal",
    needs_gradients=True,
)
def _deconvolution(model, **kw):
    return DeconvolutionAttribution(model, **kw)


@register_explainer(
    "saliency",
    description="saliency (Captum Saliency): absolute input gradient",
    needs_gradients=True,
)
def _saliency(model, **kw):
    return SaliencyAttribution(model, **kw)


@register_explainer(
    "input-x-gradient",
    description="input × gradient (Captum InputXGradient)",
    needs_gradients=True,
)
def _input_x_gradient(model, **kw):
    return InputXGradientAttribution(model, **kw)


@register_explainer(
    "integrated-gradients",
    description="integrated gradients (Captum), black baseline, 32 steps",
    needs_gradients=True,
)
def _integrated_gradients(model, **kw):
    return IntegratedGradientsAttribution(model, **kw)


@register_explainer(
    "occlusion",
    description="occlusion (Captum Occlusion): score drop under a black 1/8-side window",
)
def _occlusion(model, **kw):
    return OcclusionAttribution(model, **kw)


@register_explainer("random", description="random floor: coarse uniform noise")
def _random(model, **kw):
    return RandomAttribution(model, **kw)


def fit_vebi(model, data, *, cache=None, mu: float = 10.0, device="cpu", progress=True):
    """The ``fit`` step of ``vebi``: relevant features of ``model`` on ``data``.

    With ``cache`` (a file path), a fit read from it is used when it was made for this
    very model (same weights), with the same μ and default options, on data of the same
    size (and the same labels, when ``data`` has ``targets``); anything else, including
    an unreadable file, is a cache miss: the fit is made and written there atomically.
    """
    from pathlib import Path

    if cache is not None and Path(cache).is_file():
        try:
            rf = RelevantFeatures.load(cache, model)
        except Exception:  # a stale, foreign or broken file is a miss, never an error
            rf = None
        if rf is not None and _fit_matches(rf, data, mu):
            return {"relevant": rf}
    rf = RelevantFeatures(mu=mu, device=device, progress=progress).fit(model, data)
    if cache is not None:
        rf.save(cache)
    return {"relevant": rf}


def _fit_matches(rf: RelevantFeatures, data, mu: float) -> bool:
    import numpy as np

    if rf.mu != mu or rf.layers is not None or rf.labels != "true":
        return False
    if isinstance(data, tuple) and len(data) == 2:
        n, targets = len(data[0]), data[1]
    else:
        n, targets = len(data), getattr(data, "targets", None)
    if n != len(rf.train_labels_):
        return False
    if targets is not None and not np.array_equal(np.asarray(targets), rf.train_labels_):
        return False
    return True


@register_explainer(
    "vebi",
    description="VEBI: top-3 μ-lasso features, guided backward pass, stride fix",
    needs_gradients=True,
    fit=fit_vebi,
)
def _vebi(model, **kw):
    return VEBIAttribution(model, **kw)


@register_explainer(
    "vebi-nofix",
    description="VEBI without the stride fix (transposed strided convs; for the ablation)",
    needs_gradients=True,
    fit=fit_vebi,
)
def _vebi_nofix(model, **kw):
    return VEBIAttribution(model, **{"stride_fix": False, **kw})


__all__ = [
    "VEBIAttribution",
    "RelevantFeatures",
    "Interpretation",
    "interpret",
    "backproject",
    "extract_features",
    "mu_lasso",
    "fit_vebi",
    "HeatmapAttribution",
    "SEAttribution",
    "SEVector",
    "SELECTIONS",
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
    "gradcam_pp_map",
    "pixel_map",
    "select_channels",
    "normalize_target",
    "feature_module",
    "register_explainer",
    "get_explainer",
    "list_explainers",
    "explainer_info",
]
