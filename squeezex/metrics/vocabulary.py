"""The one vocabulary of metric names: family, direction, what each needs, its function.

Every metric the benchmark harness can put in a results row has an entry in
:data:`METRICS`; rankings, the Compare widget, the figures and the LaTeX tables read
directions from here, so the slowest method is never ranked first and a descriptive
metric is never bolded. A test runs ``--methods all`` and checks that every metric name
of the rows is here.

Directions: ``"higher"`` (higher is better), ``"lower"`` (lower is better) or
``"descriptive"`` (no better direction; ``reason`` says why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .artifacts import checkerboard_energy
from .ava import frame_pointing_game, speech_mass
from .complexity import gini
from .faithfulness import deletion_auc, infidelity_score, insertion_auc, sensitivity_score
from .localisation import (
    box_pointing_game,
    coverage,
    energy_pointing_game,
    iou,
    iou_at,
    mask_auc,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from .road import road_lerf_auc, road_morf_auc, road_score
from .sanity import spearman, ssim

__all__ = ["Metric", "METRICS", "FAMILIES", "DIRECTIONS", "metric", "higher_is_better"]

#: Metric families, in the order tables show them.
#: ``modality``: how much each stream of an audio-visual model counts (speakers only).
FAMILIES = ("localisation", "artifact", "complexity", "faithfulness", "sanity", "cost", "modality")
DIRECTIONS = ("higher", "lower", "descriptive")


@dataclass(frozen=True)
class Metric:
    """One metric name.

    Attributes:
        name: the name in results rows.
        family: one of :data:`FAMILIES`.
        direction: ``"higher"``, ``"lower"`` or ``"descriptive"``.
        description: what the number is, in one line.
        needs: what it is computed from (``"maps + masks"``, ``"model + maps"``, …).
        fn: the function that computes it, where one function does (``None`` for the
            numbers the harness measures itself: cost, the sanity summaries).
        reason: why a descriptive metric has no better direction.
        unit: the unit of its values ("" for a share or a score in [0, 1]).
    """

    name: str
    family: str
    direction: str
    description: str
    needs: str
    fn: Callable | None = None
    reason: str = ""
    unit: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}, got {self.family!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{self.name}: direction must be one of {DIRECTIONS}")
        if self.direction == "descriptive" and not self.reason:
            raise ValueError(f"{self.name}: a descriptive metric needs its reason")

    @property
    def higher_is_better(self) -> bool | None:
        """True, False, or None for a descriptive metric."""
        return {"higher": True, "lower": False}.get(self.direction)


def _m(*args, **kwargs) -> tuple[str, Metric]:
    m = Metric(*args, **kwargs)
    return m.name, m


_MASKS, _MODEL = "maps + masks", "model + maps"
_MODALITY = (
    "which stream should count depends on the clip (a dubbed clip is told apart by its "
    "mouth, a silent one by its audio): read it per clip kind"
)
_SANITY = (
    "Spearman rank correlation of the maps with the original model's after redrawing "
    "the model's layers from the output down"
)

#: name → :class:`Metric`, for every metric the harness emits (and the per-sample
#: functions the sanity and localisation families are built from).
METRICS: dict[str, Metric] = dict(
    [
        _m("pointing_game", "localisation", "higher", "the map's maximum lies in the mask", _MASKS, pointing_game),
        _m("energy_pointing_game", "localisation", "higher", "share of the map's energy inside the mask", _MASKS, energy_pointing_game),
        _m("relevance_mass", "localisation", "higher", "share of positive relevance inside the mask (Arras et al.)", _MASKS, relevance_mass_accuracy),
        _m("relevance_rank", "localisation", "higher", "share of the mask-sized top of the map inside the mask", _MASKS, relevance_rank_accuracy),
        _m("iou", "localisation", "higher", "IoU of the mask and the map above its mean", _MASKS, iou),
        _m("auc", "localisation", "higher", "ROC AUC of the map as a detector of mask pixels (0.5: chance)", _MASKS, mask_auc),
        _m("iou_at", "localisation", "higher", "IoU of the mask and the map above fixed thresholds", _MASKS, iou_at),
        _m("coverage", "localisation", "higher", "share of the class's informative parts where the map reaches half its maximum", "maps + part masks", coverage),
        _m("cue_mass", "localisation", "descriptive", "share of positive relevance on the planted cue", "maps + cue mask", relevance_mass_accuracy,
           reason="which region a faithful map favours depends on what the model relies on: read it beside the model's measured reliance on the cue"),
        _m("object_mass", "localisation", "descriptive", "share of positive relevance on the object (the discriminative part)", "maps + part mask", relevance_mass_accuracy,
           reason="which region a faithful map favours depends on what the model relies on: read it beside the model's measured reliance on the cue"),
        _m("box_pointing_game", "localisation", "higher", "the map's maximum lies in a box", "maps + boxes", box_pointing_game),
        _m("checkerboard", "artifact", "lower", "share of spectral energy at the stride harmonics", "maps + strides", checkerboard_energy),
        _m("empty_map", "complexity", "lower", "share of maps that are all zero or not finite: not explanations (the explainer warns and flags them)", "maps"),
        _m("gini", "complexity", "descriptive", "Gini sparseness of the map", "maps", gini,
           reason="sparser is not better in itself: a sparse map can be sparse in the wrong place"),
        _m("deletion_auc", "faithfulness", "lower", "class probability as the map's top pixels are removed (area)", _MODEL, deletion_auc),
        _m("insertion_auc", "faithfulness", "higher", "class probability as the map's top pixels are put back (area)", _MODEL, insertion_auc),
        _m("road_morf", "faithfulness", "lower", "ROAD: class probability as the most relevant pixels are imputed (noisy linear), mean over fractions", _MODEL, road_morf_auc),
        _m("road_lerf", "faithfulness", "higher", "ROAD: class probability as the least relevant pixels are imputed, mean over fractions", _MODEL, road_lerf_auc),
        _m("road", "faithfulness", "higher", "ROAD LeRF − MoRF (Rong et al. 2022): the gap between keeping and removing the map's top", _MODEL, road_score),
        _m("infidelity", "faithfulness", "lower", "Captum infidelity when random squares are removed to the deletion baseline (normalised map)", _MODEL, infidelity_score),
        _m("sensitivity", "faithfulness", "lower", "Captum max-sensitivity of the map to small input noise", "explainer", sensitivity_score),
        _m("sanity_top", "sanity", "lower", _SANITY + ", down to the last convolution (lower: the map follows the model)", "explainer"),
        _m("sanity_all", "sanity", "lower", _SANITY + ", after every layer (lower: the map follows the model)", "explainer"),
        _m("sanity_constant", "sanity", "descriptive", "share of maps that are constant once every layer is randomised (or were from the start): no rank order, so not scored", "explainer",
           reason="a map that goes blank has changed, but says nothing: counted apart, neither good nor bad"),
        _m("spearman", "sanity", "lower", "Spearman rank correlation of two maps (per randomisation step)", "two maps", spearman),
        _m("ssim", "sanity", "lower", "structural similarity of two maps (per randomisation step)", "two maps", ssim),
        _m("ms_per_image", "cost", "lower", "wall time to explain one image", "timing", unit="ms"),
        _m("cost_ratio", "cost", "lower", "time per image over a plain forward pass of the same batch", "timing", unit="× forward"),
        _m("frame_pointing_game", "localisation", "higher", "share of a clip's frames whose map maximum lies on the mouth", "clip maps + mouth masks", frame_pointing_game),
        _m("speech_mass", "localisation", "higher", "share of the spectrogram map's relevance inside the speech segments (time axis)", "audio maps + speech segments", speech_mass),
        _m("ms_per_clip", "cost", "lower", "wall time to explain one clip (both streams)", "timing", unit="ms"),
        _m("fusion_visual", "modality", "descriptive", "mean of the fusion SE vector over the visual slice (per clip)", "model", reason=_MODALITY),
        _m("fusion_audio", "modality", "descriptive", "mean of the fusion SE vector over the audio slice (per clip)", "model", reason=_MODALITY),
        _m("fa_visual", "modality", "descriptive", "Captum FeatureAblation: drop of the clip's mean logit with black frames", "model", reason=_MODALITY),
        _m("fa_audio", "modality", "descriptive", "Captum FeatureAblation: drop of the clip's mean logit with silent audio", "model", reason=_MODALITY),
        _m("ablation_visual_drop", "modality", "descriptive", "drop of the clip's mean logit when the visual fusion-SE entries below the SE rule's threshold are zeroed", "model", reason=_MODALITY),
        _m("ablation_audio_drop", "modality", "descriptive", "drop of the clip's mean logit when the audio fusion-SE entries below the SE rule's threshold are zeroed", "model", reason=_MODALITY),
        _m("ablation_visual_dmap", "modality", "descriptive", "change of the frame mAP when the visual fusion-SE entries below the SE rule's threshold are zeroed", "model", reason=_MODALITY),
        _m("ablation_audio_dmap", "modality", "descriptive", "change of the frame mAP when the audio fusion-SE entries below the SE rule's threshold are zeroed", "model", reason=_MODALITY),
    ]
)  # fmt: skip


def metric(name: str) -> Metric:
    """The vocabulary entry of ``name``; a ``KeyError`` naming the known metrics otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(
            f"no metric {name!r} in the vocabulary; known: {', '.join(METRICS)}"
        ) from None


def higher_is_better(name: str) -> bool | None:
    """True / False / None (descriptive) for a metric name."""
    return metric(name).higher_is_better
