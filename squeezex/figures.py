"""Paper figures from a benchmark run folder (:class:`squeezex.bench.Run`).

Each figure function takes a :class:`~squeezex.bench.Run` (plus a dataset and a seed, by
default the run's first) and returns a ``matplotlib.figure.Figure`` in the paper style
(:data:`squeezex.viz.STYLE`), built without pyplot and without touching rcParams.
:func:`make_figures` writes all of them, and the LaTeX tables, into one folder;
``squeezex figures --results DIR`` is its command line.

Every method keeps one colour, line style and marker across figures
(:func:`method_styles`); reference maps are grey and hatched or dash-dotted.

These are the figures of image datasets; an audio-visual dataset (``speakers``) gets its
own, from :mod:`squeezex.speaker_figures`, and :func:`make_figures` picks by the dataset's
registry task.

Example:
    >>> from squeezex.bench import Run
    >>> run = Run("data/runs/demo")  # doctest: +SKIP
    >>> metric_bars(run, "pointing_game")  # doctest: +SKIP
    >>> make_figures("data/runs/demo")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .bench import CorruptRunError, Run
from .bench.tables import family_tables, latex_table
from .explainers.diagnostics import se_vector_report
from .explainers.se import PAPER_Z, select_channels
from .io import atomic_write_bytes, atomic_write_text
from .viz import (
    HEATMAP_CMAP,
    LINE_COLOURS,
    OKABE_ITO,
    ONE_COLUMN,
    STYLE,
    TWO_COLUMN,
    explanation_grid,
    feature_grid,
    save_figure,
    se_vector_figure,
)

__all__ = [
    "method_styles",
    "qualitative_grid",
    "metric_bars",
    "faithfulness_curves",
    "se_distribution",
    "vebi_features",
    "cost_vs_localisation",
    "attribute_grid",
    "bias_curve",
    "make_figures",
    "FORMATS",
]

log = logging.getLogger(__name__)

#: File formats :func:`make_figures` can write.
FORMATS = ("pdf", "png", "svg")
_LINESTYLES = ("-", "--", ":", (0, (5, 1, 1, 1)))
_MARKERS = ("o", "s", "^", "D", "v", "p", "h", "<", ">", "*")
_REF_GREYS = ("#555555", "#888888", "#AAAAAA", "#CCCCCC")
_BAR_COLOUR = OKABE_ITO["blue"]
#: What a figure function raises when the run lacks its inputs (make_figures skips it);
#: a damaged file (CorruptRunError) is never skipped.
_MISSING = (FileNotFoundError, KeyError, ValueError)


# -- shared helpers ------------------------------------------------------------------------------
def method_styles(run: Run) -> dict[str, dict]:
    """``{method: {"color", "linestyle", "marker"}}`` for every method of ``run``.

    Methods cycle through the Okabe-Ito colours, then line styles (7 colours × 4 styles),
    in the order the run scored them; reference maps get greys and a dash-dot line.
    """
    styles, i, j = {}, 0, 0
    for m in run.methods:
        if run.kind(m) == "reference":
            styles[m] = {"color": _REF_GREYS[j % len(_REF_GREYS)], "linestyle": "-.", "marker": "."}
            j += 1
        else:
            styles[m] = {
                "color": LINE_COLOURS[i % len(LINE_COLOURS)],
                "linestyle": _LINESTYLES[(i // len(LINE_COLOURS)) % len(_LINESTYLES)],
                "marker": _MARKERS[i % len(_MARKERS)],
            }
            i += 1
    return styles


def _pick(run: Run, methods, references: bool) -> list[str]:
    """``methods`` (checked) or the run's methods, references included if asked."""
    if methods is not None:
        unknown = [m for m in methods if m not in run.methods]
        if unknown:
            raise KeyError(f"no method {', '.join(unknown)} in this run; it has {run.methods}")
        return list(methods)
    return [m for m in run.methods if references or run.kind(m) == "method"]


def _label(run: Run, method: str) -> str:
    return method + (" (ref)" if run.kind(method) == "reference" else "")


def _direction(run: Run, metric: str) -> str:
    better = run.higher_is_better(metric)
    return "" if better is None else (" (higher is better)" if better else " (lower is better)")


def _despine(ax) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def _wrap(name: str, sep: str, width: int) -> str:
    """Break ``name`` after ``sep`` so that no line is much longer than ``width``."""
    parts = name.split(sep)
    lines, cur = [], ""
    for k, p in enumerate(parts):
        piece = p + (sep if k < len(parts) - 1 and sep != " " else "")
        if cur and len(cur) + len(piece) > width:
            lines.append(cur.rstrip())
            cur = ""
        cur += piece + (" " if sep == " " else "")
    lines.append(cur.rstrip())
    return "\n".join(lines)


# -- figures -------------------------------------------------------------------------------------
def qualitative_grid(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    methods: list[str] | None = None,
    indices: list[int] | None = None,
    references: bool = False,
    width: float = TWO_COLUMN,
) -> Figure:
    """Test images × methods' heatmaps, the ground-truth mask outlined.

    Args:
        run: the benchmark run.
        dataset, seed: which cell of the run (default: the first of each).
        methods: columns after the image (default: the run's methods, in run order).
        indices: test images, one per row (default: the first image of each class).
        references: add the reference maps (oracle, centre, …) when ``methods`` is None.
        width: figure width in inches; the cells shrink to fit it.

    Returns:
        A figure with ``len(indices)`` rows and ``1 + len(methods)`` image columns, plus a
        colour bar. Each map's maximum is marked with +.
    """
    names = _pick(run, methods, references)
    if not names:
        raise ValueError("no methods to show")
    data = run.data(dataset)
    if indices is None:
        seen: dict[int, int] = {}
        for i, t in enumerate(data["targets"].tolist()):
            seen.setdefault(int(t), i)
        indices = [seen[t] for t in sorted(seen)]
    idx = torch.as_tensor(list(indices), dtype=torch.long)
    maps = {m: run.maps(m, dataset, seed)[idx] for m in names}
    rows = [data["classes"][int(data["targets"][i])] for i in idx]
    cols = 1 + len(names)
    # the width left for images: row labels on the left, the colour bar on the right
    cell = min(1.1, (width - 1.25) / cols)
    rotate = cell < 0.62  # narrow columns: vertical titles
    fig = explanation_grid(data["images"][idx], maps, data["masks"][idx], cell=cell)
    fig.set_size_inches(width, (cell + 0.03) * len(idx) + (0.75 if rotate else 0.3))
    axes = np.array(fig.axes).reshape(len(idx), cols)
    with matplotlib.rc_context(STYLE):
        for j, name in enumerate(["image", *(_label(run, m) for m in names)]):
            title = _wrap(name, "-", 12 if rotate else max(4, int(cell * 14)))
            axes[0, j].set_title(
                title, fontsize=6, rotation=90 if rotate else 0, va="bottom", linespacing=1.0
            )
        for ax in axes[:, 1:].ravel():  # the + of each map's maximum, to the cell's scale
            for line in ax.get_lines():
                line.set_markersize(min(6.0, 9 * cell))
                line.set_markeredgewidth(min(1.2, 2 * cell))
        for i, label in enumerate(rows):
            axes[i, 0].set_ylabel(
                _wrap(label, " ", 8), fontsize=6, rotation=0, ha="right", va="center"
            )
        mappable = ScalarMappable(Normalize(0, 1), HEATMAP_CMAP)
        cb = fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.6, aspect=25)
        cb.set_label("relevance (normalised)", fontsize=6)
        cb.ax.tick_params(labelsize=5, width=0.4, length=2)
        cb.outline.set_linewidth(0.4)
    return fig


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
    keep = set(_pick(run, methods, references))
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
            color=["white" if r else _BAR_COLOUR for r in ref],
            edgecolor=["#777777" if r else _BAR_COLOUR for r in ref],
            linewidth=0.5,
            error_kw={"elinewidth": 0.7, "capsize": 1.5, "capthick": 0.7, "ecolor": "black"},
        )
        for patch, r in zip(bars.patches, ref, strict=True):
            if r:
                patch.set_hatch("/////")
        ax.set_yticks(y, [_label(run, r.method) for r in ranked])
        for tick, r in zip(ax.get_yticklabels(), ref, strict=True):
            if r:
                tick.set_color("#555555")
        ax.set_ylim(len(ranked) - 0.4, -0.6)  # best on top
        ax.tick_params(axis="y", length=0)
        if (v < 0).any() or (lo < 0).any():
            ax.axvline(0, color="black", lw=0.5)
        ax.set_xlabel(metric + _direction(run, metric))
        _despine(ax)
    return fig


#: The curve panels of :func:`faithfulness_curves`: (curve key, x key, metric, lower is
#: better, title, x label).
CURVES = {
    "deletion": (
        ("deletion", "fractions", "deletion_auc", True, "deletion",
         "fraction of pixels deleted, most relevant first"),
        ("insertion", "fractions", "insertion_auc", False, "insertion",
         "fraction of pixels inserted, most relevant first"),
    ),
    "road": (
        ("road_morf", "road_fractions", "road_morf", True, "ROAD, most relevant first",
         "fraction of pixels imputed, most relevant first"),
        ("road_lerf", "road_fractions", "road_lerf", False, "ROAD, least relevant first",
         "fraction of pixels imputed, least relevant first"),
    ),
}  # fmt: skip


def faithfulness_curves(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    methods: list[str] | None = None,
    references: bool = True,
    width: float = TWO_COLUMN,
    kind: str = "deletion",
) -> Figure:
    """Mean perturbation curves per method (two panels), the area in the legend.

    ``kind="deletion"``: the class probability as the map's most relevant pixels are
    deleted (left; lower area is better) or inserted into the baseline (right; higher is
    better). ``kind="road"``: ROAD's curves, the pixels imputed by noisy linear
    imputation most relevant first (left; lower is better) or least relevant first
    (right; higher is better). Averaged over the test images; legends list methods best
    first with their area.

    Returns:
        A figure with two axes, one line per method in each.
    """
    if kind not in CURVES:
        raise ValueError(f"kind must be one of {sorted(CURVES)}, got {kind!r}")
    panels = CURVES[kind]
    curves = _collect_curves(run, _pick(run, methods, references), dataset, seed, panels)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 2.2 + 0.075 * len(curves)), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        for ax, panel in zip(axes, panels, strict=True):
            _curve_panel(ax, run, panel, curves, dataset, seed)
        axes[0].set_ylabel("mean class probability")
    return fig


def _collect_curves(run: Run, names: list[str], dataset, seed, panels) -> dict[str, dict]:
    need = {k for p in panels for k in p[:2]}
    curves, missing = {}, []
    for m in names:
        try:
            c = run.curves(m, dataset, seed)
        except FileNotFoundError as exc:
            missing.append(exc)
            continue
        if need <= set(c):
            curves[m] = c
    if not curves:
        if missing:
            raise missing[0]
        raise ValueError(f"the run has no {' / '.join(p[0] for p in panels)} curves")
    for exc in missing:
        log.info("faithfulness curves: %s", exc)
    return curves


def _curve_panel(ax, run: Run, panel: tuple, curves: dict, dataset, seed) -> None:
    """One panel: every method's mean curve, the legend best first with its area."""
    key, xkey, metric, lower, title, xlabel = panel
    styles = method_styles(run)
    try:
        value = {r.method: r.value for r in run.ranking(metric, dataset, seed)}
    except KeyError:
        value = {}
    auc = {m: value.get(m, float(np.trapezoid(c[key], c[xkey]))) for m, c in curves.items()}
    order = sorted(curves, key=lambda m: (math.isnan(auc[m]), (1 if lower else -1) * auc[m]))
    for m in order:
        st = styles[m]
        ax.plot(
            curves[m][xkey],
            curves[m][key],
            color=st["color"],
            linestyle=st["linestyle"],
            marker=st["marker"],
            markevery=max(1, len(curves[m][xkey]) // 5),
            markersize=2.5,
            lw=0.9,
            label=f"{_label(run, m)}  {auc[m]:.3f}",
        )
    ax.set_xlabel(xlabel)
    ax.set_title(f"{title} ({'lower' if lower else 'higher'} is better)")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    _despine(ax)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        ncol=2 if len(curves) > 4 else 1,
        frameon=False,
        title="method  area",
        title_fontsize=7,
        handlelength=2.6,
        columnspacing=1.2,
    )


def se_distribution(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    z: float = PAPER_Z,
    width: float = ONE_COLUMN,
) -> Figure:
    """Histogram of the test images' SE-vector entries with the paper's threshold.

    The threshold of the paper's rule, mean(s) + z·std(s) per image (z = 1.282, the top
    10 % of a normal), is averaged over the images and drawn as a dashed line; the band
    shows its range over images. The text gives the share of entries above each image's
    threshold and of images whose threshold no entry exceeds (the rule then falls back
    to the strongest channel), the mean per-image spread of s, and how much the channels
    the rule selects overlap across images and across classes (mean Jaccard; 1: the same
    channels for every image, so the SE vector does not pick per image).

    Returns:
        One axes: the histogram, the mean threshold line and the range band.
    """
    vectors = run.se_vectors(dataset, seed)
    s = vectors["s"].float()
    targets = torch.as_tensor(run.data(dataset)["targets"])
    chosen = select_channels(s, vectors["logits"].float(), "paper", z=z).selected
    diag = se_vector_report(s, targets, selected=chosen)
    thr = s.mean(1) + z * s.std(1, unbiased=False)
    t = float(thr.mean())
    above = s > thr[:, None]
    fig = se_vector_figure(s, {f"paper threshold: mean + {z:g}·std, {t:.3f}": t})
    fig.set_size_inches(width, 2.3)
    ax = fig.axes[0]
    with matplotlib.rc_context(STYLE):
        ax.axvspan(
            float(thr.min()),
            float(thr.max()),
            color=OKABE_ITO["vermillion"],
            alpha=0.15,
            lw=0,
            zorder=0,
            label="its range over images",
        )
        ax.set_yscale("log")
        top = max((p.get_height() for p in ax.patches), default=1.0)
        ax.set_ylim(0.8, max(top, 1.0) * 400)  # headroom for the six lines of text
        ax.set_xlabel("SE vector entry $s_c$")
        ax.set_ylabel("entries")
        ax.text(
            0.02,
            0.97,
            f"{s.shape[0]} images × {s.shape[1]} channels\n"
            f"{above.float().mean():.1%} of entries above\n"
            f"{(~above.any(1)).float().mean():.0%} of images: none above\n"
            f"per-image std of s {diag['image_std_mean']:.3f}\n"
            f"selections overlap (Jaccard) across images {diag['jaccard_images']:.2f},\n"
            f"  across classes {diag['jaccard_classes']:.2f}",
            transform=ax.transAxes,
            va="top",
            fontsize=6,
        )
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=1)
        _despine(ax)
    return fig


def vebi_features(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    heat: bool = False,
    width: float | None = None,
) -> Figure | None:
    """VEBI's class × relevant-feature average visualisations (:func:`viz.feature_grid`).

    Rows are classes, features by decreasing weight (titled ``layer:channel (weight)``).

    Returns:
        The figure, or ``None`` when the run has no VEBI interpretation.
    """
    interp = run.interpretation(dataset, seed)
    if interp is None:
        return None
    cols = max(1, max(len(f) for f in interp.features))
    cell = 0.75 if width is None else min(1.1, (width - 0.8) / cols)
    fig = feature_grid(interp, cell=cell, heat=heat)
    with matplotlib.rc_context(STYLE):
        for ax in fig.axes:
            if ax.get_ylabel():
                ax.set_ylabel(_wrap(ax.get_ylabel(), " ", 8), rotation=0, ha="right", va="center")
    return fig


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

    ``width`` defaults to one column for up to 8 methods, the text width beyond.

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
        for m in _pick(run, methods, False)
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
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 2.6), layout="constrained")
        ax = fig.subplots()
        ax.errorbar(
            x,
            y,
            yerr=np.vstack([np.maximum(y - lo, 0), np.maximum(hi - y, 0)]),
            fmt="none",
            ecolor="#BBBBBB",
            elinewidth=0.6,
            zorder=1,
        )
        for k, m in enumerate(names):
            ax.scatter(
                x[k],
                y[k],
                s=14,
                color=styles[m]["color"],
                marker=styles[m]["marker"],
                zorder=3,
                linewidths=0,
            )
        _fit_axes(ax, x, y, lo, hi)
        ax.set_xlabel("ms per image (log scale)")
        ax.set_ylabel(metric + _direction(run, metric))
        _despine(ax)
        _place_labels(fig, ax, x, y, names, [styles[m]["color"] for m in names])
    return fig


def _fit_axes(ax, x, y, lo, hi) -> None:
    """A log x axis with a margin around the points, a y axis around their intervals."""
    ax.set_xscale("log")
    span = np.log10(x.max() / x.min()) if len(x) > 1 else 1.0
    pad = 10 ** (0.12 * max(span, 1.0))
    ax.set_xlim(x.min() / pad, x.max() * pad)
    ylo, yhi = float(min(y.min(), np.nanmin(lo))), float(max(y.max(), np.nanmax(hi)))
    ypad = 0.1 * max(yhi - ylo, 0.1)
    ax.set_ylim(ylo - ypad, yhi + ypad)


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


# -- multi-label runs (faces) -------------------------------------------------------------------
def attribute_grid(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    methods: list[str] | None = None,
    face: int | None = None,
    width: float = TWO_COLUMN,
) -> Figure:
    """One face, one row per attribute it has: each method's map *for that attribute*.

    A class-aware map (``se-class``, Grad-CAM, VEBI) changes from row to row and should
    land on the row's attribute (outlined); a class-agnostic map (``se``, ``se-paper``)
    is the same in every row — one map per face, which can show one attribute at most.

    Args:
        face: the face's index in the test split (default: the first face with the most
            present attributes).
        Others as :func:`qualitative_grid`.

    Raises:
        ValueError: the run's dataset is not multi-label, or ``face`` has no pair.
    """
    data = run.data(dataset)
    if "face_index" not in data:
        raise ValueError("attribute_grid needs a multi-label dataset (faces)")
    faces = data["face_index"].tolist()
    if face is None:
        face = max(dict.fromkeys(faces), key=faces.count)
    pairs = [p for p, f in enumerate(faces) if f == face]
    if not pairs:
        raise ValueError(f"face {face} has no (face, attribute) pair in the test split")
    return qualitative_grid(run, dataset, seed, methods, indices=pairs, width=width)


def bias_curve(run: Run, methods: list[str] | None = None, width: float = TWO_COLUMN) -> Figure:
    """The bias sweep (faces-bias datasets of the run, by ρ): left, the model's accuracy
    on the biased attribute on the decorrelated test split and its reliance on the mark;
    right, each method's relevance mass on the mark (solid) and on the attribute
    (dashed), with 95 % intervals, and the constant map's (chance). Methods that
    coincide on the model (the class-aware SE map and Grad-CAM on a global-pool head)
    draw on top of each other. A method that reveals the bias moves its mass to the
    mark as the model comes to rely on it.

    Raises:
        ValueError: the run has no biased dataset.
    """
    from .bench.attributes import bias_table

    if methods is None:  # the methods, and the constant map as chance (other references
        # — the oracle's mass on the attribute — would squash the scale)
        methods = [m for m in run.methods if run.kind(m) == "method" or m == "constant"]
    table = bias_table(run, methods)
    if not table:
        raise ValueError("the run has no faces-bias dataset")
    rho = [t["rho"] for t in table]
    styles = method_styles(run)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, width * 0.36), layout="constrained")
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
        left.plot(rho, [t["accuracy"] for t in table], "o-", color="black",
                  label=f"accuracy on {table[0]['attribute']} (decorrelated test)")  # fmt: skip
        left.plot(rho, [t["reliance"] for t in table], "s--", color=OKABE_ITO["vermillion"],
                  label="reliance on the mark")  # fmt: skip
        left.set(xlabel="ρ (training tie of mark and attribute)", ylim=(-0.02, 1.02))
        left.legend(fontsize=6, frameon=False, loc="center left")
        names = list(dict.fromkeys(m for t in table for m in t["methods"]))
        for m in names:
            st = styles.get(m, {})
            for metric, ls in (("cue_mass", "-"), ("object_mass", "--")):
                rows = [t["methods"].get(m, {}).get(metric) for t in table]
                ok = [(x, r) for x, r in zip(rho, rows, strict=True) if r is not None]
                if not ok:
                    continue
                xs, rs = zip(*ok, strict=True)
                y = [r["value"] for r in rs]
                err = [[v - r["ci_low"] for v, r in zip(y, rs, strict=True)],
                       [r["ci_high"] - v for v, r in zip(y, rs, strict=True)]]  # fmt: skip
                right.errorbar(xs, y, yerr=err, ls=ls, color=st.get("color"), marker=st.get(
                    "marker", "o"), ms=3, lw=1, capsize=2,
                    label=_label(run, m) if metric == "cue_mass" else None)  # fmt: skip
        right.set(xlabel="ρ", ylabel="relevance mass (— mark, - - attribute)")
        right.legend(fontsize=6, frameon=False, ncols=2, loc="upper left")
        for ax in (left, right):
            _despine(ax)
    return fig


# -- everything into one folder ------------------------------------------------------------------
def _jobs(run: Run, dataset: str, seed: int) -> list[tuple]:
    """(name, draw) for every figure of one (dataset, seed) of the run: for an
    audio-visual dataset the speaker figures (:func:`squeezex.speaker_figures.speaker_jobs`),
    none of the image figures."""
    if _task(dataset) == "audio-visual":
        from .speaker_figures import speaker_jobs

        return speaker_jobs(run, dataset, seed)
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


def _task(dataset: str) -> str | None:
    """The registry task of ``dataset`` (``None`` for a name no longer registered)."""
    from .datasets import get_dataset

    try:
        return get_dataset(dataset).task
    except ValueError:
        return None


def _speaker_gif(run: Run, dataset: str, seed: int, path: Path, verbose: bool) -> list[Path]:
    """An audio-visual dataset's animated clip (:func:`squeezex.speaker_figures.speaker_gif`)
    written to ``path``, or nothing (an image dataset, or skipped with the reason)."""
    if _task(dataset) != "audio-visual":
        return []
    from .speaker_figures import speaker_gif

    data = _draw(path.name, lambda: speaker_gif(run, dataset, seed), verbose)
    return [] if data is None else [atomic_write_bytes(path, data)]


def _multi_label(run: Run, dataset: str) -> bool:
    """Whether the run's test split of ``dataset`` is (face, attribute) pairs; ``False``
    when the run lacks its test split (the figures that need it are skipped, with the
    reason, by :func:`make_figures`)."""
    try:
        return "face_index" in run.data(dataset)
    except FileNotFoundError:
        return False


def make_figures(
    results_dir: str | Path | Run,
    out_dir: str | Path | None = None,
    formats=("pdf", "png"),
    *,
    dpi: int = 300,
    verbose: bool = True,
) -> list[Path]:
    """Write every figure of a run, and its LaTeX tables, into ``out_dir``.

    Figures (per dataset and seed of the run; file names get ``_<dataset>`` and
    ``_seed<k>`` suffixes only when the run has several): ``qualitative``,
    ``bars-<metric>`` for every metric, ``faithfulness``, ``se-distribution``,
    ``vebi-features``, ``cost-vs-pointing_game``; for a multi-label dataset also
    ``attributes`` (:func:`attribute_grid`), and for a run with faces-bias datasets
    ``bias`` (:func:`bias_curve`, one for the run). An audio-visual dataset (``speakers``)
    gets :func:`squeezex.speaker_figures.speaker_jobs` instead, and ``speaker.gif`` whatever
    ``formats`` says. Tables: ``results.tex`` (every metric) and ``results-<family>.tex``
    (one per metric family, narrow enough for a column).
    A figure whose inputs the run did not compute is skipped with a logged (and, if
    ``verbose``, printed) reason; a damaged file is an error, never a skip. Every file
    is written atomically and deterministically: the same run gives byte-identical files.

    Args:
        results_dir: the run folder (holding ``results.json``), or its :class:`Run`.
        out_dir: where to write (default ``<results_dir>/figures``).
        formats: any of :data:`FORMATS`.
        dpi: resolution of raster formats.
        verbose: print what is skipped and why.

    Returns:
        The paths written, in order.

    Raises:
        FileNotFoundError: no run folder or no results in it.
        CorruptRunError: a file of the run is damaged (named).
    """
    formats = _check_formats(formats)
    if isinstance(results_dir, Run):
        run = results_dir
    else:
        root = Path(results_dir)
        if not root.exists():
            raise FileNotFoundError(f"no such folder: {root}")
        run = Run(root)
    out = Path(out_dir) if out_dir is not None else run.root / "figures"
    written = [atomic_write_text(out / "results.tex", latex_table(run.results))]
    for fam, text in family_tables(run.results).items():
        written.append(atomic_write_text(out / f"results-{fam}.tex", text))
    for dataset, seed in run.blocks():
        suffix = (f"_{dataset}" if len(run.datasets) > 1 else "") + (
            f"_seed{seed}" if len(run.seeds) > 1 else ""
        )
        for name, make in _jobs(run, dataset, seed):
            fig = _draw(name + suffix, make, verbose)
            for k, fmt in enumerate(formats if fig is not None else []):
                # a fresh figure per format: saving one format moves the layout a
                # little, and each file must not depend on which were written before
                fig = fig if k == 0 else make()
                written.append(save_figure(fig, out / f"{name}{suffix}.{fmt}", dpi=dpi))
        written += _speaker_gif(run, dataset, seed, out / f"speaker{suffix}.gif", verbose)
    return written + _run_figures(run, out, formats, dpi)


def _check_formats(formats) -> list[str]:
    formats = [formats] if isinstance(formats, str) else list(formats)
    bad = [f for f in formats if f not in FORMATS]
    if not formats or bad:
        raise ValueError(f"unknown format {', '.join(bad) or '(none)'}; choose from {FORMATS}")
    return formats


def _run_figures(run: Run, out: Path, formats, dpi: int) -> list[Path]:
    """The figures that span the run's datasets: the bias sweep (faces-bias datasets)."""
    if not any(m.get("bias") for m in run.results.get("models", {}).values()):
        return []
    return [save_figure(bias_curve(run), out / f"bias.{fmt}", dpi=dpi) for fmt in formats]


def _draw(name: str, make, verbose: bool):
    """The figure, or ``None`` (with the reason printed or logged) when the run lacks
    its inputs; a damaged file propagates."""
    try:
        fig = make()
    except CorruptRunError:
        raise
    except _MISSING as exc:
        reason = f"{type(exc).__name__}: {exc.args[0] if exc.args else exc}"
        fig = None
    else:
        reason = "the run has no VEBI interpretation"
    if fig is None:
        if verbose:
            print(f"skipped {name}: {reason}")
        else:
            log.warning("skipped %s: %s", name, reason)
    return fig
