"""Moved to :mod:`squeezex.bench.bulk` (bulk explanation is built on the benchmark's store
and shards); these names keep working (deprecated)."""

import warnings

from .bench.bulk import *  # noqa: F403
from .bench.bulk import __all__  # noqa: F401

warnings.warn("squeezex.bulk moved to squeezex.bench.bulk", DeprecationWarning, stacklevel=2)
