"""Paper figures from a benchmark run folder (:class:`squeezex.bench.Run`).

Each figure function takes a :class:`~squeezex.bench.Run` (plus a dataset and a seed, by
default the run's first) and returns a ``matplotlib.figure.Figure`` in the paper style
(:data:`squeezex.viz.STYLE`), built without pyplot and without touching rcParams.
:func:`make_figures` writes all of them, and the LaTeX tables, into one folder;
``squeezex figures --results DIR`` is its command line.

Every method keeps one colour, line style and marker across figures
(:func:`method_styles`); reference maps are grey and hatched or dash-dotted. Every axis
says what it measures, in which unit and which way is better, from the one label table
of the metric vocabulary (:func:`metric_label`).

The package, one module per concern:

* :mod:`.style` — method styles, colours, markers, spines, wrapped labels, axis limits;
* :mod:`.labels` — metric labels and the values with a meaning on a metric's axis;
* figure kinds: :mod:`.grids` (qualitative grids), :mod:`.bars`, :mod:`.curves`
  (deletion, insertion, ROAD), :mod:`.se_vectors`, :mod:`.vebi`, :mod:`.cost` (cost
  against localisation, its label placement), :mod:`.bias`, :mod:`.speakers` (an
  audio-visual run's figures and its GIF, and their jobs);
* :mod:`.images` — the jobs of the image tasks' (dataset, seed) blocks;
* :mod:`.captions` — what each figure shows, and the captions file;
* :mod:`.make` — :func:`make_figures`: every figure, table and caption of a run.

A task names its figures (:attr:`squeezex.bench.tasks.Task.figures`, ``.examples``) as
import strings into these modules; :func:`make_figures` resolves them when it draws.

Example:
    >>> from squeezex.bench import Run
    >>> run = Run("data/runs/demo")  # doctest: +SKIP
    >>> metric_bars(run, "pointing_game")  # doctest: +SKIP
    >>> make_figures("data/runs/demo")  # doctest: +SKIP
    >>> metric_label("pointing_game")
    'pointing game (share of images, higher is better)'
"""

from .bars import metric_bars
from .bias import bias_curve
from .captions import CAPTIONS, CAPTIONS_FILE, caption
from .cost import cost_vs_localisation
from .curves import CURVES, faithfulness_curves
from .grids import attribute_grid, example_grid, examples, qualitative_grid
from .images import block_jobs
from .labels import METRIC_LABELS, metric_label, metric_name
from .make import FORMATS, make_figures, summary
from .se_vectors import se_distribution
from .speakers import (
    KINDS,
    default_clips,
    save_speaker_gif,
    speaker_bars,
    speaker_clips,
    speaker_gif,
    speaker_jobs,
    speaker_kinds,
)
from .style import method_styles
from .vebi import vebi_features

__all__ = [
    "method_styles",
    "METRIC_LABELS",
    "metric_label",
    "metric_name",
    "qualitative_grid",
    "metric_bars",
    "faithfulness_curves",
    "CURVES",
    "se_distribution",
    "vebi_features",
    "cost_vs_localisation",
    "attribute_grid",
    "bias_curve",
    "example_grid",
    "examples",
    "block_jobs",
    "make_figures",
    "caption",
    "CAPTIONS",
    "CAPTIONS_FILE",
    "summary",
    "FORMATS",
    "KINDS",
    "default_clips",
    "speaker_clips",
    "speaker_kinds",
    "speaker_bars",
    "speaker_gif",
    "save_speaker_gif",
    "speaker_jobs",
]
