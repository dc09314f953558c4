"""Cost against localisation: milliseconds per image (log scale) against a metric, one
labelled point per timed method, the labels placed so that none overlaps another.

The placement is greedy: each label tries offsets around its point, nearest first, and
keeps the first whose box stays inside the axes and clear of the labels and points
placed before it.

Example:
    >>> from squeezex.bench import Run
    >>> cost_vs_localisation(Run("data/runs/demo"), "pointing_game")  # doctest: +SKIP
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..bench import Run
from ..viz import ONE_COLUMN, STYLE, TWO_COLUMN
from .labels import axis_reference, forward_ms, metric_bounds, metric_label
from .style import despine, method_styles, padded, pick_methods, wrap

__all__ = ["cost_vs_localisation"]


def cost_vs_localisation(
    run: Run,
    metric: str = "pointing_game",
    dataset: str | None = None,
    seed: int | None = None,
    methods: list[str] | None = None,
    width: float | None = None,
) -> Figure:
    """Milliseconds per image (log scale) against a localisation metric, one labelled
    point per timed method, with the metric's 95 % interval as a vertical bar.

    Axes are fitted to the points and their intervals (with a margin, within the
    metric's bounds). A dashed vertical line marks one plain forward pass of the model,
    a dotted horizontal one the metric's reference (chance, or the ``random`` method's
    score: maps that say nothing), each labelled outside the axes. ``width`` defaults to
    one column for up to 8 methods, the text width beyond.

    Returns:
        One axes with one point (a ``PathCollection``) and one label per method; labels
        are placed greedily around their points so that they do not overlap.
    """
    cost = run.cost(dataset, seed)
    if not cost:
        raise ValueError("the run has no cost rows (cost family not scored)")
    score = {r.method: r for r in run.ranking(metric, dataset, seed)}
    names = [
        m
        for m in pick_methods(run, methods, False)
        if m in cost and m in score and math.isfinite(score[m].value) and cost[m] > 0
    ]
    if not names:
        raise ValueError(f"no method has both a cost and a {metric!r} score")
    styles = method_styles(run)
    x = np.array([cost[m] for m in names])
    y = np.array([score[m].value for m in names])
    lo = np.array([score[m].ci_low for m in names])
    hi = np.array([score[m].ci_high for m in names])
    if width is None:
        width = ONE_COLUMN if len(names) <= 8 else TWO_COLUMN
    refs = (forward_ms(run, dataset, seed), axis_reference(run, metric, dataset, seed))
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 2.6), layout="constrained")
        ax = fig.subplots()
        yerr = np.vstack([np.maximum(y - lo, 0), np.maximum(hi - y, 0)])
        ax.errorbar(x, y, yerr=yerr, fmt="none", ecolor="#BBBBBB", elinewidth=0.6, zorder=1,
                    clip_on=False)  # fmt: skip
        for k, m in enumerate(names):
            ax.scatter(x[k], y[k], s=14, color=styles[m]["color"], marker=styles[m]["marker"],
                       zorder=3, linewidths=0, clip_on=False)  # fmt: skip
        _fit_axes(ax, x, y, lo, hi, metric_bounds(metric), *refs)
        ax.set_xlabel(metric_label("ms_per_image", run, "log scale"))
        ax.set_ylabel(wrap(metric_label(metric, run), " ", 34))
        despine(ax)
        _place_labels(fig, ax, x, y, names, [styles[m]["color"] for m in names])
    return fig


def _fit_axes(ax, x, y, lo, hi, bounds=None, forward=None, level=None) -> None:
    """A log x axis with a margin around the points and ``forward`` (the milliseconds
    of a forward pass, drawn dashed), a y axis around the intervals and ``level`` (a
    ``(value, label)`` reference, drawn dotted) within the metric's ``bounds``."""
    ax.set_xscale("log")
    xs = np.append(x, forward) if forward else x
    span = np.log10(xs.max() / xs.min()) if len(xs) > 1 else 1.0
    pad = 10 ** (0.1 * max(span, 1.0))
    ax.set_xlim(xs.min() / pad, xs.max() * pad)
    ys = [*y, *lo[np.isfinite(lo)], *hi[np.isfinite(hi)], *([level[0]] if level else [])]
    ax.set_ylim(*padded(float(min(ys)), float(max(ys)), bounds, 0.08))
    kw = {"color": "#333333", "lw": 0.7, "zorder": 0.5}
    if forward:
        ax.axvline(forward, ls=(0, (4, 2)), **kw)
        ax.text(forward, 1.0, "= one forward pass", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=6, color=kw["color"])  # fmt: skip
    if level:
        ax.axhline(level[0], ls=(0, (1.5, 1.5)), **kw)
        ax.text(1.0, level[0], " " + level[1], transform=ax.get_yaxis_transform(),
                ha="left", va="center", fontsize=6, color=kw["color"])  # fmt: skip


def _label_offsets() -> list[tuple]:
    """Candidate label offsets (points) around a point, nearest first, with alignments."""
    cands = []
    for r in (6, 11, 17, 24, 32, 42, 54, 68):
        n = 8 if r < 17 else 16
        for a in range(n):
            t = 2 * math.pi * a / n
            c, sn = math.cos(t), math.sin(t)
            ha = "left" if c > 0.3 else "right" if c < -0.3 else "center"
            va = "bottom" if sn > 0.3 else "top" if sn < -0.3 else "center"
            cands.append((round(r * c, 2), round(r * sn, 2), ha, va))
    return cands


def _overlap(b, taken: list[tuple], box, px: float) -> float:
    """How much label box ``b`` overlaps the ``taken`` boxes, plus a large penalty for
    leaving the axes ``box``. Labels keep 2 pt apart, plus 4 % of their width: text
    measured at one dpi can come out a little wider at another."""
    padx, pady = 2 * px + 0.04 * b.width, 2 * px
    area = 0.0
    for t in taken:
        w = min(b.x1 + padx, t[2]) - max(b.x0 - padx, t[0])
        h = min(b.y1 + pady, t[3]) - max(b.y0 - pady, t[1])
        if w > 0 and h > 0:
            area += w * h
    outside = (
        max(0, box.x0 - b.x0)
        + max(0, b.x1 - box.x1)
        + max(0, box.y0 - b.y0)
        + max(0, b.y1 - box.y1)
    )
    return area + 1e3 * outside


def _place_labels(fig: Figure, ax, x, y, labels, colours) -> None:
    """Annotate points without overlaps: try offsets around each point, nearest first,
    keep the first whose box stays inside the axes and clear of the other labels and
    points (fall back to the least overlapping one). The layout is frozen first."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    fig.set_layout_engine("none")  # keep the positions the labels were placed against
    box = ax.get_window_extent(renderer)
    pts = ax.transData.transform(np.c_[x, y])
    px = fig.dpi / 72
    m = 2.5 * px  # half a marker
    taken = [(p[0] - m, p[1] - m, p[0] + m, p[1] + m) for p in pts]
    cands = _label_offsets()
    for k in np.lexsort((np.arange(len(x)), -pts[:, 1])):
        text = ax.annotate(
            labels[k], (x[k], y[k]), xytext=(0, 0), textcoords="offset points", fontsize=6,
            color="black", annotation_clip=False, in_layout=False,
        )  # fmt: skip
        best = None
        for dx, dy, ha, va in cands:
            text.set_position((dx, dy))
            text.set_ha(ha)
            text.set_va(va)
            b = text.get_window_extent(renderer)
            score = _overlap(b, taken, box, px)
            if best is None or score < best[0]:
                best = (score, dx, dy, ha, va, b)
            if score == 0:
                break
        _, dx, dy, ha, va, b = best
        text.set_position((dx, dy))
        text.set_ha(ha)
        text.set_va(va)
        if math.hypot(dx, dy) > 7:  # not next to its point: a leader line
            arrow = {
                "arrowstyle": "-",
                "lw": 0.4,
                "color": colours[k],
                "shrinkA": 0,
                "shrinkB": 2.5,
            }
            ax.annotate(
                "", (x[k], y[k]), xytext=(dx, dy), textcoords="offset points",
                arrowprops=arrow, in_layout=False,
            )  # fmt: skip
        taken.append((b.x0, b.y0, b.x1, b.y1))
