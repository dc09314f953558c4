"""The benchmark: datasets × training seeds × methods × metric families → a run folder.

One concept per module:

* :mod:`.config` — :class:`BenchConfig`, what a run depends on (checked when made);
* :mod:`.tasks` — the task kinds (single-label, multi-label, audio-visual): what a
  model, a unit and a cell are for the datasets of each kind;
* :mod:`.cells` — a cell (one method on one dataset and seed) as an object, and the
  :class:`Unit` an image dataset's cells share;
* :mod:`.models` — the models explained, trained once and cached as checkpoints;
* :mod:`.harness` — :func:`run`, the loop (the same for every task kind);
* :mod:`.store` — the run folder as one store (written by the harness, read by
  :class:`Run`), which checks what it loads and cleans up after killed runs;
* :mod:`.results`, :mod:`.tables` — results.json, CSV and LaTeX as views of every cell
  in the folder;
* :mod:`.reader` — :class:`Run`, the reader that figures and widgets use;
* :mod:`.attributes` — multi-label runs (faces): where a class-agnostic map points, and
  the bias sweep.

Example:
    A run small enough for seconds (4 training images per class, one epoch, 32 px), then
    its ranking read back from the folder:

    >>> import tempfile
    >>> from squeezex.bench import BenchConfig, Run, run
    >>> out = tempfile.mkdtemp()
    >>> cfg = BenchConfig(dataset="an8flower-single-6c", methods=["se", "gradcam"],
    ...                   families=["localisation"], n_train_per_class=4, n_test_per_class=2,
    ...                   size=32, epochs=1, seeds=1, out=out, checkpoints=None, progress=False)
    >>> results = run(cfg)  # results.json, .csv, .tex and the cells, in out
    >>> sorted({row["method"] for row in results["rows"]})
    ['centre', 'constant', 'gradcam', 'oracle', 'se', 'silhouette']
    >>> best = Run(out).ranking("pointing_game")[0]
    >>> best.method, best.rank  # the oracle reference (the mask itself) points best
    ('oracle', 1)
"""

from .attributes import agnostic_report, bias_table
from .config import (
    DEFAULT_DATASETS,
    DEFAULT_METHODS,
    FAMILIES,
    SCHEMA_VERSION,
    BenchConfig,
    check_device,
)
from .harness import reduce, run, run_shard
from .models import example_maps, model_reliance, splits, trained_model
from .presets import list_presets, preset
from .reader import RankRow, Run
from .results import assemble, write_results
from .shards import parse_shard, plan, shard_from_env
from .stats import bootstrap_ci
from .store import (
    CorruptRunError,
    IncompleteRunError,
    RunStore,
    RunWarning,
    dequantise,
    load_results,
    quantise,
)
from .submit import ShardsFailedError, default_shards, submit
from .tables import csv_text, family_tables, format_table, latex_table

__all__ = [
    "example_maps",
    "preset",
    "list_presets",
    "agnostic_report",
    "bias_table",
    "DEFAULT_DATASETS",
    "model_reliance",
    "BenchConfig",
    "DEFAULT_METHODS",
    "FAMILIES",
    "SCHEMA_VERSION",
    "check_device",
    "run",
    "run_shard",
    "submit",
    "default_shards",
    "ShardsFailedError",
    "reduce",
    "plan",
    "parse_shard",
    "shard_from_env",
    "IncompleteRunError",
    "splits",
    "trained_model",
    "assemble",
    "write_results",
    "Run",
    "RankRow",
    "RunStore",
    "RunWarning",
    "CorruptRunError",
    "load_results",
    "quantise",
    "dequantise",
    "bootstrap_ci",
    "format_table",
    "latex_table",
    "csv_text",
    "family_tables",
]


def __getattr__(name: str):
    if name == "example_grid":  # it draws: moved to squeezex.figures (this name still works)
        from . import models

        return models.example_grid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
