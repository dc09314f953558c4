"""The one vocabulary of metric names: family, direction, label, what each needs, its function.

Every metric the benchmark harness can put in a results row has an entry in
:data:`METRICS`; rankings, the Compare widget, the figures and the LaTeX tables read
directions from here, so the slowest method is never ranked first and a descriptive
metric is never bolded. A test runs ``--methods all`` and checks that every metric name
of the rows is here.

Directions: ``"higher"`` (higher is better), ``"lower"`` (lower is better) or
``"descriptive"`` (no better direction; ``reason`` says why). :func:`direction_text`
is the one place a direction becomes text, in each form a reader meets it.

Labels: each entry's :class:`Label` is how the metric is written for a reader — its
name in words, the unit of an axis, the bounds its values cannot leave, a compact name
and a gloss. This is the one label table: the figures' axes and captions
(:func:`squeezex.figures.metric_label`), the audio-visual figures' bar axes and the
widgets' score names read it, so a metric is named the same way everywhere.

Example:
    >>> metric("deletion_auc").label.name
    'deletion area'
    >>> direction_text(higher_is_better("deletion_auc"), "suffix")
    ' (lower is better)'
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

__all__ = [
    "Metric",
    "Label",
    "METRICS",
    "FAMILIES",
    "DIRECTIONS",
    "DIRECTION_FORMS",
    "metric",
    "higher_is_better",
    "label_of",
    "short_name",
    "direction_text",
]

#: Metric families, in the order tables show them.
#: ``modality``: how much each stream of an audio-visual model counts (speakers only).
FAMILIES = ("localisation", "artifact", "complexity", "faithfulness", "sanity", "cost", "modality")
DIRECTIONS = ("higher", "lower", "descriptive")


@dataclass(frozen=True)
class Label:
    """How a metric is written for a reader: its row of the one label table.

    Attributes:
        name: the metric in words, for axes, legends and captions (``"pointing game"``).
        unit: what its values are, in words, for an axis (``"share of images"``, ``"ms"``);
            unlike :attr:`Metric.unit`, which ``results.json`` records ("" for a share).
        bounds: the interval its values cannot leave (``(0, 1)`` for a share), or
            ``None`` (unbounded): figures cut their axes there, so that no axis runs past
            a value the metric cannot take.
        short: a compact name where space is tight (a widget's table of scores); empty:
            the metric's key with spaces for underscores (:func:`short_name`).
        gloss: what a value means, in a line under the metric's ``headline``: the bar axes
            of the audio-visual figures write the two (they alone do, so the cost ratio's
            gloss speaks of clips); empty: none.
        headline: the name above the ``gloss``; empty: :func:`short_name`'s.
    """

    name: str
    unit: str
    bounds: tuple[float, float] | None
    short: str = ""
    gloss: str = ""
    headline: str = ""


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
        label: how it is written for a reader (:class:`Label`; every metric has one).
    """

    name: str
    family: str
    direction: str
    description: str
    needs: str
    fn: Callable | None = None
    reason: str = ""
    unit: str = ""
    label: Label | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}, got {self.family!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{self.name}: direction must be one of {DIRECTIONS}")
        if self.direction == "descriptive" and not self.reason:
            raise ValueError(f"{self.name}: a descriptive metric needs its reason")
        if self.label is None:
            raise ValueError(f"{self.name}: a metric needs its label (how readers see it)")

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
        _m("pointing_game", "localisation", "higher", "the map's maximum lies in the mask", _MASKS, pointing_game,
           label=Label("pointing game", "share of images", (0, 1))),
        _m("energy_pointing_game", "localisation", "higher", "share of the map's energy inside the mask", _MASKS, energy_pointing_game,
           label=Label("energy pointing game", "share of energy in the mask", (0, 1), short="energy in mask (= relevance mass)")),
        _m("relevance_mass", "localisation", "higher", "share of positive relevance inside the mask (Arras et al.)", _MASKS, relevance_mass_accuracy,
           label=Label("relevance mass", "share of positive relevance in the mask", (0, 1))),
        _m("relevance_rank", "localisation", "higher", "share of the mask-sized top of the map inside the mask", _MASKS, relevance_rank_accuracy,
           label=Label("relevance rank", "share of the map's top in the mask", (0, 1))),
        _m("iou", "localisation", "higher", "IoU of the mask and the map above its mean", _MASKS, iou,
           label=Label("IoU of map and mask", "0 to 1", (0, 1), short="IoU")),
        _m("auc", "localisation", "higher", "ROC AUC of the map as a detector of mask pixels (0.5: chance)", _MASKS, mask_auc,
           label=Label("ROC AUC of the map on mask pixels", "0.5 = chance", (0, 1), short="mask AUC")),
        _m("iou_at", "localisation", "higher", "IoU of the mask and the map above fixed thresholds", _MASKS, iou_at,
           label=Label("IoU at fixed thresholds", "0 to 1", (0, 1))),
        _m("coverage", "localisation", "higher", "share of the class's informative parts where the map reaches half its maximum", "maps + part masks", coverage,
           label=Label("coverage of the class's parts", "share of parts", (0, 1))),
        _m("cue_mass", "localisation", "descriptive", "share of positive relevance on the planted cue", "maps + cue mask", relevance_mass_accuracy,
           reason="which region a faithful map favours depends on what the model relies on: read it beside the model's measured reliance on the cue",
           label=Label("relevance mass on the cue", "share of positive relevance", (0, 1))),
        _m("object_mass", "localisation", "descriptive", "share of positive relevance on the object (the discriminative part)", "maps + part mask", relevance_mass_accuracy,
           reason="which region a faithful map favours depends on what the model relies on: read it beside the model's measured reliance on the cue",
           label=Label("relevance mass on the object", "share of positive relevance", (0, 1))),
        _m("box_pointing_game", "localisation", "higher", "the map's maximum lies in a box", "maps + boxes", box_pointing_game,
           label=Label("box pointing game", "share of images", (0, 1))),
        _m("checkerboard", "artifact", "lower", "share of spectral energy at the stride harmonics", "maps + strides", checkerboard_energy,
           label=Label("checkerboard artefacts", "share of spectral energy", (0, 1))),
        _m("empty_map", "complexity", "lower", "share of maps that are all zero or not finite: not explanations (the explainer warns and flags them)", "maps",
           label=Label("empty maps", "share of maps", (0, 1))),
        _m("gini", "complexity", "descriptive", "Gini sparseness of the map", "maps", gini,
           reason="sparser is not better in itself: a sparse map can be sparse in the wrong place",
           label=Label("Gini sparseness", "0 to 1", (0, 1))),
        _m("deletion_auc", "faithfulness", "lower", "class probability as the map's top pixels are removed (area)", _MODEL, deletion_auc,
           label=Label("deletion area", "mean class probability", (0, 1))),
        _m("insertion_auc", "faithfulness", "higher", "class probability as the map's top pixels are put back (area)", _MODEL, insertion_auc,
           label=Label("insertion area", "mean class probability", (0, 1))),
        _m("road_morf", "faithfulness", "lower", "ROAD: class probability as the most relevant pixels are imputed (noisy linear), mean over fractions", _MODEL, road_morf_auc,
           label=Label("ROAD, most relevant first", "mean class probability", (0, 1))),
        _m("road_lerf", "faithfulness", "higher", "ROAD: class probability as the least relevant pixels are imputed, mean over fractions", _MODEL, road_lerf_auc,
           label=Label("ROAD, least relevant first", "mean class probability", (0, 1))),
        _m("road", "faithfulness", "higher", "ROAD LeRF − MoRF (Rong et al. 2022): the gap between keeping and removing the map's top", _MODEL, road_score,
           label=Label("ROAD score, LeRF − MoRF", "class probability", (-1, 1))),
        _m("infidelity", "faithfulness", "lower", "Captum infidelity when random squares are removed to the deletion baseline (normalised map)", _MODEL, infidelity_score,
           label=Label("infidelity", "Captum, squared error", None)),
        _m("sensitivity", "faithfulness", "lower", "Captum max-sensitivity of the map to small input noise", "explainer", sensitivity_score,
           label=Label("max-sensitivity", "Captum, map change under noise", None)),
        _m("sanity_top", "sanity", "lower", _SANITY + ", down to the last convolution (lower: the map follows the model)", "explainer",
           label=Label("map similarity after randomising the top layers", "Spearman ρ", (-1, 1))),
        _m("sanity_all", "sanity", "lower", _SANITY + ", after every layer (lower: the map follows the model)", "explainer",
           label=Label("map similarity after randomising every layer", "Spearman ρ", (-1, 1))),
        _m("sanity_constant", "sanity", "descriptive", "share of maps that are constant once every layer is randomised (or were from the start): no rank order, so not scored", "explainer",
           reason="a map that goes blank has changed, but says nothing: counted apart, neither good nor bad",
           label=Label("maps constant after randomisation", "share of maps", (0, 1))),
        _m("spearman", "sanity", "lower", "Spearman rank correlation of two maps (per randomisation step)", "two maps", spearman,
           label=Label("rank correlation of two maps", "Spearman ρ", (-1, 1))),
        _m("ssim", "sanity", "lower", "structural similarity of two maps (per randomisation step)", "two maps", ssim,
           label=Label("structural similarity of two maps", "SSIM", (-1, 1))),
        _m("ms_per_image", "cost", "lower", "wall time to explain one image", "timing", unit="ms",
           label=Label("time per image", "ms", None)),
        _m("cost_ratio", "cost", "lower", "time per image over a plain forward pass of the same batch", "timing", unit="× forward",
           label=Label("cost", "× a forward pass", None, gloss="time to explain a clip, in plain forward passes")),
        _m("frame_pointing_game", "localisation", "higher", "share of a clip's frames whose map maximum lies on the mouth", "clip maps + mouth masks", frame_pointing_game,
           label=Label("frame pointing game", "share of frames", (0, 1), gloss="share of frames whose map peak is on the mouth")),
        _m("speech_mass", "localisation", "higher", "share of the spectrogram map's relevance inside the speech segments (time axis)", "audio maps + speech segments", speech_mass,
           label=Label("speech mass", "share of relevance in speech", (0, 1), gloss="share of the spectrogram map's relevance inside speech")),
        _m("ms_per_clip", "cost", "lower", "wall time to explain one clip (both streams)", "timing", unit="ms",
           label=Label("time per clip", "ms", None, gloss="time to explain one clip, both streams", headline="milliseconds per clip")),
        _m("fusion_visual", "modality", "descriptive", "mean of the fusion SE vector over the visual slice (per clip)", "model", reason=_MODALITY,
           label=Label("fusion SE weight, visual stream", "mean SE entry", (0, 1))),
        _m("fusion_audio", "modality", "descriptive", "mean of the fusion SE vector over the audio slice (per clip)", "model", reason=_MODALITY,
           label=Label("fusion SE weight, audio stream", "mean SE entry", (0, 1))),
        _m("fa_visual", "modality", "descriptive", "Captum FeatureAblation: drop of the clip's mean logit with black frames", "model", reason=_MODALITY,
           label=Label("logit drop with black frames", "logit", None)),
        _m("fa_audio", "modality", "descriptive", "Captum FeatureAblation: drop of the clip's mean logit with silent audio", "model", reason=_MODALITY,
           label=Label("logit drop with silent audio", "logit", None)),
        _m("ablation_visual_drop", "modality", "descriptive", "drop of the clip's mean logit when the visual fusion-SE entries below the SE rule's threshold are zeroed", "model", reason=_MODALITY,
           label=Label("logit drop, visual SE entries zeroed", "logit", None)),
        _m("ablation_audio_drop", "modality", "descriptive", "drop of the clip's mean logit when the audio fusion-SE entries below the SE rule's threshold are zeroed", "model", reason=_MODALITY,
           label=Label("logit drop, audio SE entries zeroed", "logit", None)),
        _m("ablation_visual_dmap", "modality", "descriptive", "change of the frame mAP when the visual fusion-SE entries below the SE rule's threshold are zeroed", "model", reason=_MODALITY,
           label=Label("frame mAP change, visual SE entries zeroed", "mAP", None)),
        _m("ablation_audio_dmap", "modality", "descriptive", "change of the frame mAP when the audio fusion-SE entries below the SE rule's threshold are zeroed", "model", reason=_MODALITY,
           label=Label("frame mAP change, audio SE entries zeroed", "mAP", None)),
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


def label_of(name: str) -> Label:
    """The :class:`Label` of metric ``name``; a metric the vocabulary lacks (a run may
    hold one, e.g. from an older version) is spelt with spaces, never as its snake_case
    key, with no unit and no bounds.

    Example:
        >>> label_of("ms_per_image").name, label_of("ms_per_image").unit
        ('time per image', 'ms')
        >>> label_of("no_such_metric").name
        'no such metric'
    """
    m = METRICS.get(name)
    return m.label if m is not None else Label(name.replace("_", " "), "", None)


def short_name(name: str) -> str:
    """Metric ``name``'s compact name (:attr:`Label.short`), or its key with spaces for
    underscores when it has none (or the vocabulary lacks it): where space is tight, a
    reader still sees words.

    Example:
        >>> short_name("auc"), short_name("pointing_game"), short_name("no_such_metric")
        ('mask AUC', 'pointing game', 'no such metric')
    """
    return label_of(name).short or name.replace("_", " ")


#: The forms :func:`direction_text` writes a better direction in.
DIRECTION_FORMS = ("words", "suffix", "arrow", "arrow words")
_WORDS = {True: "higher is better", False: "lower is better"}
_ARROWS = {True: "↑", False: "↓"}


def direction_text(higher: bool | None, form: str = "words") -> str:
    """The better direction as text: the one rendering that tables, figures and widgets
    share, so that a direction is written alike wherever a reader meets it.

    Args:
        higher: True (higher is better), False (lower is better) or None (no better
            direction), as :func:`higher_is_better` or a run's reader says.
        form: ``"words"`` for an axis label, a panel title or a caption (``"higher is
            better"``, and ``"no better direction"`` for None); ``"suffix"`` to follow a
            name (``" (higher is better)"``); ``"arrow"`` to follow a name where space is
            tight (``" ↑"``); ``"arrow words"`` for a chart's axis (``"↑ higher is
            better"``). The last three write nothing for None.

    Raises:
        ValueError: an unknown ``form``.

    Example:
        >>> direction_text(True), direction_text(None)
        ('higher is better', 'no better direction')
        >>> direction_text(False, "suffix"), direction_text(None, "suffix")
        (' (lower is better)', '')
        >>> direction_text(True, "arrow"), direction_text(False, "arrow words")
        (' ↑', '↓ lower is better')
    """
    if form not in DIRECTION_FORMS:
        raise ValueError(f"form must be one of {DIRECTION_FORMS}, got {form!r}")
    if higher is None:
        return "no better direction" if form == "words" else ""
    return {
        "words": _WORDS[higher],
        "suffix": f" ({_WORDS[higher]})",
        "arrow": f" {_ARROWS[higher]}",
        "arrow words": f"{_ARROWS[higher]} {_WORDS[higher]}",
    }[form]
