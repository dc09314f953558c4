"""Metrics on heatmaps: plain functions on tensors, one value per sample."""

from .artifacts import checkerboard_energy, stride_periods
from .localisation import (
    energy_pointing_game,
    iou,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)

__all__ = [
    "pointing_game",
    "energy_pointing_game",
    "iou",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "checkerboard_energy",
    "stride_periods",
    "LOCALISATION",
]

#: name → function(maps, masks) → per-sample scores, as the benchmark tables them.
LOCALISATION = {
    "pointing_game": pointing_game,
    "energy_pointing_game": energy_pointing_game,
    "relevance_mass": relevance_mass_accuracy,
    "relevance_rank": relevance_rank_accuracy,
    "iou": iou,
}
