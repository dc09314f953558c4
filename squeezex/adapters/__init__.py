"""Moved to :mod:`squeezex.explainers.adapters`; this name keeps working (deprecated)."""

import warnings

from ..explainers.adapters import *  # noqa: F403
from ..explainers.adapters import __all__  # noqa: F401

warnings.warn(
    "squeezex.adapters moved to squeezex.explainers.adapters",
    DeprecationWarning,
    stacklevel=2,
)
