"""Explainers: the SE explanation, VEBI, baselines through Captum, and the registry.

Each class registers itself where it is defined (``@register_explainer``); importing this
package fills the registry. The tables list the methods in the registry's order
(:data:`~squeezex.explainers.registry.BUILTIN_ORDER`), whatever the import order: the SE
explanation, its rules and its gradient-free baseline ``activation-mean`` (s := 1), the
Captum baselines (with EigenCAM and the ``-interp`` presets) and the random floor, VEBI,
attention rollout (ViTs), then the adapters of the other CAM libraries
(:mod:`squeezex.explainers.adapters`). The audio-visual methods (:mod:`.speakers`) are
registered under their own input kind (``inputs="audio-visual"``).
``explainer_info(name).footing`` says on what footing each name's map is produced.
:mod:`.diagnostics` describes SE vectors (range, spread, overlap of the selected channels)
and compares maps.
"""

from . import adapters  # noqa: F401  (registers pgc-*/tc-* when the libraries are installed)
from .base import HeatmapAttribution, ModelOutput
from .baselines import (
    DeconvolutionAttribution,
    EigenCAM,
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
    eigen_map,
    feature_module,
    gradcam_pp_map,
    layer_activations,
    pixel_map,
)
from .diagnostics import map_correlation, se_vector_report
from .registry import (
    UPSAMPLING,
    ExplainerInfo,
    explainer_info,
    get_explainer,
    input_kind,
    list_explainers,
    register_explainer,
)
from .rollout import AttentionRollout
from .se import (
    SELECTIONS,
    WEIGHTS,
    ActivationMeanAttribution,
    SEAttribution,
    SEVector,
    select_channels,
)
from .speakers import (
    SPEAKER_METHODS,
    SpeakerGradCAM,
    SpeakerRandom,
    SpeakerSEAttribution,
    ablation_importance,
    fusion_importance,
    modality_ablation,
)
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
    "AttentionRollout",
    "SpeakerSEAttribution",
    "SpeakerGradCAM",
    "SpeakerRandom",
    "SPEAKER_METHODS",
    "fusion_importance",
    "modality_ablation",
    "ablation_importance",
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
    "ActivationMeanAttribution",
    "SEVector",
    "SELECTIONS",
    "WEIGHTS",
    "GradCAM",
    "EigenCAM",
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
    "eigen_map",
    "pixel_map",
    "select_channels",
    "feature_module",
    "layer_activations",
    "se_vector_report",
    "map_correlation",
    "register_explainer",
    "get_explainer",
    "list_explainers",
    "explainer_info",
    "input_kind",
    "ExplainerInfo",
    "UPSAMPLING",
]
