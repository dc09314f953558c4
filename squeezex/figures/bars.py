"""Bars of one metric: each method's mean with its 95 % bootstrap interval, best first.

Example:
    >>> from squeezex.bench import Run
    >>> metric_bars(Run("data/runs/demo"), "pointing_game")  # doctest: +SKIP
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..bench import Run
from ..viz import ONE_COLUMN, STYLE
from .labels import axis_reference, metric_bounds, metric_label
from .style import BAR_COLOUR, despine, method_label, padded, pick_methods, wrap

__all__ = ["metric_bars"]


def metric_bars(
    run: Run,
    metric: str,
    dataset: str | None = None,
    seed: int | None = None,
    methods: list[str] | None = None,
    references: bool = True,
    width: float = ONE_COLUMN,
) -> Figure:
    """Mean score per method with its 95 % bootstrap interval, best first.

    Methods are blue bars; reference maps white, grey-hatched and labelled ``(ref)``.
    Descriptive metrics (no better direction) are ordered by value, largest first;
    methods without a finite score are left out.

    Returns:
        A figure with one axes holding one horizontal bar per method (a ``BarContainer``
        in ``ax.containers``) and its error bars (``ci_low`` to ``ci_high``).
    """
    keep = set(pick_methods(run, methods, references))
    ranked = [
        r for r in run.ranking(metric, dataset, seed) if r.method in keep and math.isfinite(r.value)
    ]
    if not ranked:
        raise ValueError(f"no finite {metric!r} scores to plot")
    v = np.array([r.value for r in ranked])
    lo = np.array([r.ci_low if math.isfinite(r.ci_low) else r.value for r in ranked])
    hi = np.array([r.ci_high if math.isfinite(r.ci_high) else r.value for r in ranked])
    ref = [r.kind == "reference" for r in ranked]
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 0.55 + 0.16 * len(ranked)), layout="constrained")
        ax = fig.subplots()
        y = np.arange(len(ranked))
        bars = ax.barh(
            y,
            v,
            height=0.7,
            xerr=np.vstack([np.maximum(v - lo, 0), np.maximum(hi - v, 0)]),
            color=["white" if r else BAR_COLOUR for r in ref],
            edgecolor=["#777777" if r else BAR_COLOUR for r in ref],
            linewidth=0.5,
            error_kw={"elinewidth": 0.7, "capsize": 1.5, "capthick": 0.7, "ecolor": "black"},
        )
        for patch, r in zip(bars.patches, ref, strict=True):
            if r:
                patch.set_hatch("/////")
        ax.set_yticks(y, [method_label(run, r.method) for r in ranked])
        for tick, r in zip(ax.get_yticklabels(), ref, strict=True):
            if r:
                tick.set_color("#555555")
        ax.set_ylim(len(ranked) - 0.4, -0.6)  # best on top
        ax.tick_params(axis="y", length=0)
        if (v < 0).any() or (lo < 0).any():
            ax.axvline(0, color="black", lw=0.5)
        _bar_axis(ax, run, metric, dataset, seed, lo, hi)
        ax.set_xlabel(wrap(metric_label(metric, run), " ", int((width - 0.8) * 15)))
        despine(ax)
    return fig


def _bar_axis(ax, run: Run, metric: str, dataset, seed, lo, hi) -> None:
    """The x axis of :func:`metric_bars`: from 0 (or the lowest interval) past the
    longest bar with a margin, cut at the metric's bounds; the value with a meaning
    (:func:`~squeezex.figures.labels.axis_reference`) as a dotted line labelled above the
    axes; a note when every method scores 0."""
    ref = axis_reference(run, metric, dataset, seed)
    low, high = min(0.0, float(lo.min())), max(0.0, float(hi.max()))
    if ref is not None:
        low, high = min(low, ref[0]), max(high, ref[0])
    bounds = metric_bounds(metric)
    if high - low <= 0:  # every bar is 0: show the metric's range, say so
        high = bounds[1] if bounds else 1.0
        ax.text(0.5, 0.5, "every method scores 0", transform=ax.transAxes, ha="center",
                va="center", fontsize=7, color="#555555")  # fmt: skip
    left, right = padded(low, high, bounds, 0.04)
    ax.set_xlim(0.0 if low >= 0 else left, right)  # the bars start on the axis
    if ref is not None:
        ax.axvline(ref[0], color="#333333", lw=0.7, ls=(0, (1.5, 1.5)), zorder=0.5)
        ax.text(ref[0], 1.0, ref[1], transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=6, color="#333333")  # fmt: skip
