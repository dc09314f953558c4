"""Moved to :mod:`squeezex.widgets.speakers` (the :class:`SpeakerExplorer` widget),
:mod:`squeezex.widgets.speaker_logic` (what it computes) and
:mod:`squeezex.widgets.speaker_render` (its renderings); these names keep working
(deprecated)."""

import warnings

from .widgets.speaker_logic import (  # noqa: F401
    LABEL_NAMES,
    Clip,
    ClipExplanation,
    ClipFacts,
    clip_facts,
    explain_clip,
    load_clip,
    speaker_methods,
)
from .widgets.speaker_render import (  # noqa: F401
    AXES_RECT,
    IMPORTANCE_SIZE,
    MARKER,
    MODALITY_COLOURS,
    TIMELINE_WIDTH,
    draw_curve,
    draw_importance,
    draw_spectrogram,
    render_curve,
    render_frame,
    render_importance,
    render_spectrogram,
    speaker_figure,
)
from .widgets.speakers import LEFT_COLUMN, SpeakerExplorer  # noqa: F401

__all__ = [
    "Clip",
    "ClipFacts",
    "ClipExplanation",
    "speaker_methods",
    "load_clip",
    "clip_facts",
    "explain_clip",
    "render_frame",
    "draw_spectrogram",
    "draw_importance",
    "draw_curve",
    "render_spectrogram",
    "render_importance",
    "render_curve",
    "speaker_figure",
    "SpeakerExplorer",
]

warnings.warn(
    "squeezex.speaker_explorer moved to squeezex.widgets.speakers, .speaker_logic and "
    ".speaker_render",
    DeprecationWarning,
    stacklevel=2,
)
