"""What an image task draws for one (dataset, seed) block of a run: the jobs that
:func:`squeezex.figures.make_figures` runs, named by the single- and multi-label tasks
(:attr:`squeezex.bench.tasks.Task.figures`).

Example:
    >>> from squeezex.bench import Run
    >>> [name for name, _ in block_jobs(Run("data/runs/demo"), "scenes-6c", 0)]  # doctest: +SKIP
"""

from __future__ import annotations

from ..bench import Run
from .bars import metric_bars
from .cost import cost_vs_localisation
from .curves import faithfulness_curves
from .grids import attribute_grid, qualitative_grid
from .se_vectors import se_distribution
from .vebi import vebi_features

__all__ = ["block_jobs"]


def block_jobs(run: Run, dataset: str, seed: int) -> list[tuple]:
    """(name, draw) for every figure of one (image dataset, seed) block of the run."""
    metrics = list(dict.fromkeys(r["metric"] for r in run.block(dataset, seed)))
    jobs = [("qualitative", lambda: qualitative_grid(run, dataset, seed))]
    if _multi_label(run, dataset):  # one face, every attribute
        jobs.append(("attributes", lambda: attribute_grid(run, dataset, seed)))
    jobs += [(f"bars-{m}", lambda m=m: metric_bars(run, m, dataset, seed)) for m in metrics]
    jobs += [
        ("faithfulness", lambda: faithfulness_curves(run, dataset, seed)),
        ("road", lambda: faithfulness_curves(run, dataset, seed, kind="road")),
        ("se-distribution", lambda: se_distribution(run, dataset, seed)),
        ("vebi-features", lambda: vebi_features(run, dataset, seed)),
        (
            "cost-vs-pointing_game",
            lambda: cost_vs_localisation(run, "pointing_game", dataset, seed),
        ),
    ]
    return jobs


def _multi_label(run: Run, dataset: str) -> bool:
    """Whether the run's test split of ``dataset`` is (face, attribute) pairs; ``False``
    when the run lacks its test split (the figures that need it are skipped, with the
    reason, by :func:`squeezex.figures.make_figures`)."""
    try:
        return "face_index" in run.data(dataset)
    except FileNotFoundError:
        return False
