"""Moved to :mod:`squeezex.widgets.logic` (what the widgets compute) and
:mod:`squeezex.widgets.render` (their PNG renderings); these names keep working
(deprecated)."""

import warnings

from .widgets.logic import (  # noqa: F401
    SCORE_LABELS,
    SCORES,
    TUNABLE,
    HeatmapCache,
    SESettings,
    as_samples,
    explain_sample,
    is_multi_label,
    make_explainers,
    predict,
    sample_scores,
    score_label,
    se_vector,
    torch_threads,
)
from .widgets.render import (  # noqa: F401
    COLORBAR_LABEL,
    data_uri,
    figure_png,
    png_size,
    render_colorbar,
    render_overlay,
    render_ranking,
    render_se_vector,
)

__all__ = [
    "SESettings",
    "HeatmapCache",
    "as_samples",
    "make_explainers",
    "predict",
    "explain_sample",
    "se_vector",
    "sample_scores",
    "score_label",
    "torch_threads",
    "render_overlay",
    "render_colorbar",
    "render_se_vector",
    "render_ranking",
    "figure_png",
    "png_size",
    "data_uri",
]

warnings.warn(
    "squeezex.explore moved to squeezex.widgets.logic and squeezex.widgets.render",
    DeprecationWarning,
    stacklevel=2,
)
