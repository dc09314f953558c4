"""Metrics on heatmaps: plain functions on tensors, one value per sample.

Families (each module's docstring says what its metrics measure and how to read them):

- :mod:`.localisation` — against ground-truth masks or boxes (higher is better);
- :mod:`.faithfulness` — against the model: deletion / insertion, infidelity,
  sensitivity (deletion, infidelity, sensitivity: lower is better; insertion: higher);
- :mod:`.road` — ROAD (remove and debias): removal by noisy linear imputation, most and
  least relevant first (MoRF lower is better, LeRF higher);
- :mod:`.sanity` — cascading model randomisation (lower similarity is better);
- :mod:`.complexity` — the Gini sparseness of a map (descriptive);
- :mod:`.artifacts` — the checkerboard of strided backward passes (lower is better).

:data:`METRICS` (:mod:`.vocabulary`) is the one table of metric names: family,
direction and function. :data:`LOCALISATION` and :data:`FAITHFULNESS` (what a benchmark
harness loops over) and :data:`HIGHER_IS_BETTER` are views of it.
"""

from .artifacts import checkerboard_energy, stride_periods
from .ava import (
    ava_map,
    frame_map,
    frame_pointing_game,
    speech_mass,
    speech_share,
    voc_average_precision,
)
from .complexity import gini
from .faithfulness import (
    deletion_auc,
    deletion_curve,
    infidelity_score,
    insertion_auc,
    insertion_curve,
    perturbation_baseline,
    sensitivity_score,
)
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
from .road import impute_noisy_linear, road_curve, road_lerf_auc, road_morf_auc, road_score
from .sanity import cascading_randomization, randomization_layers, spearman, ssim
from .vocabulary import FAMILIES, METRICS, Metric, higher_is_better, metric

__all__ = [
    "ava_map",
    "voc_average_precision",
    "frame_map",
    "frame_pointing_game",
    "speech_mass",
    "speech_share",
    "pointing_game",
    "box_pointing_game",
    "coverage",
    "energy_pointing_game",
    "iou",
    "iou_at",
    "mask_auc",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "deletion_curve",
    "insertion_curve",
    "deletion_auc",
    "insertion_auc",
    "perturbation_baseline",
    "infidelity_score",
    "impute_noisy_linear",
    "road_curve",
    "road_morf_auc",
    "road_lerf_auc",
    "road_score",
    "sensitivity_score",
    "cascading_randomization",
    "randomization_layers",
    "spearman",
    "ssim",
    "gini",
    "checkerboard_energy",
    "stride_periods",
    "LOCALISATION",
    "FAITHFULNESS",
    "HIGHER_IS_BETTER",
    "METRICS",
    "FAMILIES",
    "Metric",
    "metric",
    "higher_is_better",
]

#: name → function(maps, masks) → per-sample scores, as the benchmark tables them.
LOCALISATION = {
    k: METRICS[k].fn
    for k in (
        "pointing_game",
        "energy_pointing_game",
        "relevance_mass",
        "relevance_rank",
        "iou",
        "auc",
    )
}

#: name → ``function(model, inputs, maps, target, **options)`` → per-sample scores.
#: (``sensitivity_score`` needs the explainer, not its maps, so it is not here.)
FAITHFULNESS = {k: METRICS[k].fn for k in ("deletion_auc", "insertion_auc", "infidelity")}

#: metric name → True (higher is better), False (lower is better) or None (descriptive):
#: a view of :data:`METRICS`, the one vocabulary.
HIGHER_IS_BETTER: dict[str, bool | None] = {k: m.higher_is_better for k, m in METRICS.items()}
