"""Explainers: the SE explanation, VEBI, baselines through Captum, and the registry.

Each class registers itself where it is defined (``@register_explainer``); importing this
package fills the registry in a fixed order: the SE explanation and its rules, the Captum
baselines and the random floor, VEBI.
"""

# the SE explanation registers first: the registry's order is the tables' order
from .se import SELECTIONS, SEAttribution, SEVector, select_channels  # isort: split

from .base import HeatmapAttribution, ModelOutput
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
from .vebi import (
    Interpretation,
    RelevantFeatures,
    VEBIAttribution,
    backproject,
    extract_features,
    fit_vebi,
    interpret,
    mu_lasso,
)

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
    "ModelOutput",
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
    "feature_module",
    "register_explainer",
    "get_explainer",
    "list_explainers",
    "explainer_info",
]
