"""Explainers: the SE explanation, baselines through Captum, and the registry."""

from .base import HeatmapAttribution, normalize_target
from .baselines import GradCAM, RandomAttribution, feature_module
from .registry import explainer_info, get_explainer, list_explainers, register_explainer
from .se import SELECTIONS, SEAttribution, SEVector, select_channels


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


@register_explainer("random", description="random floor: coarse uniform noise")
def _random(model, **kw):
    return RandomAttribution(model, **kw)


__all__ = [
    "HeatmapAttribution",
    "SEAttribution",
    "SEVector",
    "SELECTIONS",
    "GradCAM",
    "RandomAttribution",
    "select_channels",
    "normalize_target",
    "feature_module",
    "register_explainer",
    "get_explainer",
    "list_explainers",
    "explainer_info",
]
