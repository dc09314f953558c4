"""Moved to :mod:`squeezex.figures.speakers` (the figures are one package); these names
keep working (deprecated)."""

import warnings

from .figures.speakers import *  # noqa: F403
from .figures.speakers import FPS, LABELS, NAMES, PANELS, __all__  # noqa: F401

warnings.warn(
    "squeezex.speaker_figures moved to squeezex.figures.speakers", DeprecationWarning, stacklevel=2
)
