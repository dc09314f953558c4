"""Moved to :mod:`squeezex.bench.tasks.audiovisual` (the audio-visual task kind); these
names keep working (deprecated)."""

import warnings

from .tasks.audiovisual import (  # noqa: F401
    FEATURE_ABLATION,
    SpeakerUnit,
    audio_maps_path,
    compute_speaker_cell,
    modality_values,
    speaker_methods,
    speaker_record,
)

warnings.warn(
    "squeezex.bench.speakers moved to squeezex.bench.tasks.audiovisual",
    DeprecationWarning,
    stacklevel=2,
)
