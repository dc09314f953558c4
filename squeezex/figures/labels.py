"""Metric labels for axes, titles, legends and captions, read from the one label table
(the metric vocabulary's :class:`~squeezex.metrics.vocabulary.Label`), and the value
with a meaning on a metric's axis (one forward pass, chance, the random maps' score).

Every axis says what it measures, in which unit and which way is better; the direction
is written by :func:`squeezex.metrics.vocabulary.direction_text`, as in the tables.

Example:
    >>> metric_label("cost_ratio")
    'cost (× a forward pass, lower is better)'
    >>> metric_label("ms_per_image", extra="log scale")
    'time per image (ms, log scale, lower is better)'
    >>> metric_name("pointing_game"), metric_bounds("road")
    ('pointing game', (-1, 1))
"""

from __future__ import annotations

import math

from ..bench import Run
from ..bench.tables import direction
from ..metrics.vocabulary import METRICS, direction_text, label_of

__all__ = [
    "METRIC_LABELS",
    "metric_label",
    "metric_name",
    "metric_bounds",
    "better",
    "forward_ms",
    "axis_reference",
]


#: Metric → (what it measures, its unit, the bounds its values cannot leave or ``None``),
#: for axes, titles, legends and captions: a view of the one label table, the metric
#: vocabulary's labels (:class:`squeezex.metrics.vocabulary.Label`).
METRIC_LABELS: dict[str, tuple[str, str, tuple[float, float] | None]] = {
    name: (m.label.name, m.label.unit, m.label.bounds) for name, m in METRICS.items()
}
#: Values with a known meaning on a metric's axis: metric → (value, label).
_CHANCE = {"auc": (0.5, "chance (0.5)")}


def better(metric: str, results: dict | None = None) -> str:
    """``"higher is better"``, ``"lower is better"`` or ``"no better direction"``: the
    direction of the vocabulary (or, for a metric it lacks, the one ``results`` recorded)
    in :func:`~squeezex.metrics.vocabulary.direction_text`'s words."""
    return direction_text(direction(metric, results))


def metric_label(metric: str, run: Run | None = None, extra: str = "") -> str:
    """``metric`` in words with its unit and better direction, e.g. ``"cost (× a forward
    pass, lower is better)"`` (:data:`METRIC_LABELS`; the direction from the vocabulary).
    ``extra`` goes after the unit (``"log scale"``). A metric the table lacks is spelt
    with spaces, never as its snake_case key."""
    name, unit = label_of(metric).name, label_of(metric).unit
    parts = [p for p in (unit, extra, better(metric, run.results if run else None)) if p]
    return f"{name} ({', '.join(parts)})"


def metric_name(metric: str) -> str:
    """``metric`` in words, without unit or direction (``"pointing game"``)."""
    return label_of(metric).name


def metric_bounds(metric: str) -> tuple[float, float] | None:
    """The interval ``metric``'s values cannot leave (``(0, 1)`` for a share), or ``None``:
    figures cut their axes there (:func:`squeezex.figures.style.padded`)."""
    return label_of(metric).bounds


def forward_ms(run: Run, dataset: str | None, seed: int | None) -> float | None:
    """Milliseconds of one plain forward pass per image (clip) of the block, if timed."""
    dataset, seed = run._check(dataset, seed)
    fwd = run.results.get("timing", {}).get(f"{dataset}/{seed}/forward_ms_per_image")
    return float(fwd) if fwd else None


def axis_reference(run: Run, metric: str, dataset, seed) -> tuple[float, str] | None:
    """The one value with a meaning on ``metric``'s axis, ``(value, label)``, or ``None``:
    one forward pass on a cost, a known chance level, else the ``random`` method's score
    (the level of maps that say nothing)."""
    if metric == "cost_ratio":
        return 1.0, "= one forward pass"
    if metric in ("ms_per_image", "ms_per_clip"):
        fwd = forward_ms(run, dataset, seed)
        return None if fwd is None else (fwd, f"one forward pass ({fwd:.3g} ms)")
    if metric in _CHANCE:
        return _CHANCE[metric]
    if "random" in run.methods and run.family(metric) not in ("cost", "sanity"):
        score = {r.method: r.value for r in run.ranking(metric, dataset, seed)}
        if math.isfinite(score.get("random", math.nan)):
            return score["random"], "random maps"
    return None
