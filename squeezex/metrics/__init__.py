"""Metrics on heatmaps: plain functions on tensors, one value per sample.

Families (each module's docstring says what its metrics measure and how to read them):

- :mod:`.localisation` — against ground-truth masks or boxes (higher is better);
- :mod:`.faithfulness` — against the model: deletion / insertion, infidelity,
  sensitivity (deletion, infidelity, sensitivity: lower is better; insertion: higher);
- :mod:`.sanity` — cascading model randomisation (lower similarity is better);
- :mod:`.complexity` — the Gini sparseness of a map (descriptive);
- :mod:`.artifacts` — the checkerboard of strided backward passes (lower is better).

:data:`LOCALISATION` and :data:`FAITHFULNESS` are what a benchmark harness loops over;
:data:`HIGHER_IS_BETTER` says which way each metric name points.
"""

from .artifacts import checkerboard_energy, stride_periods
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
    energy_pointing_game,
    iou,
    iou_at,
    mask_auc,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from .sanity import cascading_randomization, randomization_layers, spearman, ssim

__all__ = [
    "pointing_game",
    "box_pointing_game",
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
]

#: name → function(maps, masks) → per-sample scores, as the benchmark tables them.
LOCALISATION = {
    "pointing_game": pointing_game,
    "energy_pointing_game": energy_pointing_game,
    "relevance_mass": relevance_mass_accuracy,
    "relevance_rank": relevance_rank_accuracy,
    "iou": iou,
    "auc": mask_auc,
}

#: name → function(model, inputs, maps, target, **options) → per-sample scores.
#: (``sensitivity_score`` needs the explainer, not its maps, so it is not here.)
FAITHFULNESS = {
    "deletion_auc": deletion_auc,
    "insertion_auc": insertion_auc,
    "infidelity": infidelity_score,
}

#: metric name → True (higher is better), False (lower is better) or None (descriptive).
HIGHER_IS_BETTER: dict[str, bool | None] = {
    # localisation
    "pointing_game": True,
    "box_pointing_game": True,
    "energy_pointing_game": True,
    "relevance_mass": True,
    "relevance_rank": True,
    "iou": True,
    "iou_at": True,
    "auc": True,
    # faithfulness
    "deletion_auc": False,
    "insertion_auc": True,
    "infidelity": False,
    "sensitivity": False,
    # artifacts
    "checkerboard": False,
    # complexity: higher is sparser, not better in itself
    "gini": None,
    # sanity (cascading randomisation): similarity to the original model's maps
    "spearman": False,
    "ssim": False,
}
