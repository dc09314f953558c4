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
from matplotlib.figure import Figure

from .bench import CorruptRunError, Run, example_maps
from .bench.tables import direction, family_tables, latex_table
from .bench.tasks import resolve, task_of
from .bench.tasks.images import example_indices
from .explainers.diagnostics import se_vector_report
from .explainers.se import PAPER_Z, select_channels
from .io import atomic_write_bytes, atomic_write_text
from .metrics.vocabulary import METRICS, direction_text, label_of
from .viz import (
    LINE_COLOURS,
    OKABE_ITO,
    ONE_COLUMN,
    STYLE,
    TWO_COLUMN,
    explanation_grid,
    feature_grid,
    heatmap_colorbar,
    save_figure,
)

__all__ = [
    "method_styles",
    "METRIC_LABELS",
    "metric_label",
    "metric_name",
    "qualitative_grid",
    "metric_bars",
    "faithfulness_curves",
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
    return direction_text(run.higher_is_better(metric), "suffix")


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


# -- readable metric labels ----------------------------------------------------------------------
#: Metric → (what it measures, its unit, the bounds its values cannot leave or ``None``),
#: for axes, titles, legends and captions: a view of the one label table, the metric
#: vocabulary's labels (:class:`squeezex.metrics.vocabulary.Label`).
METRIC_LABELS: dict[str, tuple[str, str, tuple[float, float] | None]] = {
    name: (m.label.name, m.label.unit, m.label.bounds) for name, m in METRICS.items()
}
#: Values with a known meaning on a metric's axis: metric → (value, label).
_CHANCE = {"auc": (0.5, "chance (0.5)")}


def _better(metric: str, results: dict | None = None) -> str:
    """``"higher is better"``, ``"lower is better"`` or ``"no better direction"``."""
    return direction_text(direction(metric, results))


def metric_label(metric: str, run: Run | None = None, extra: str = "") -> str:
    """``metric`` in words with its unit and better direction, e.g. ``"cost (× a forward
    pass, lower is better)"`` (:data:`METRIC_LABELS`; the direction from the vocabulary).
    ``extra`` goes after the unit (``"log scale"``). A metric the table lacks is spelt
    with spaces, never as its snake_case key."""
    name, unit = label_of(metric).name, label_of(metric).unit
    parts = [p for p in (unit, extra, _better(metric, run.results if run else None)) if p]
    return f"{name} ({', '.join(parts)})"


def metric_name(metric: str) -> str:
    """``metric`` in words, without unit or direction (``"pointing game"``)."""
    return label_of(metric).name


def _bounds(metric: str) -> tuple[float, float] | None:
    return label_of(metric).bounds


def _padded(lo: float, hi: float, bounds=None, frac: float = 0.06) -> tuple[float, float]:
    """Axis limits around data from ``lo`` to ``hi``: a margin of ``frac`` of the span on
    each side, cut at the metric's ``bounds`` (0 and 1 for a share) when the data lie
    within them, so that an axis never runs past a value the metric cannot take."""
    span = hi - lo
    pad = frac * span if span > 0 else 0.05 * max(abs(hi), 1.0 if bounds is None else 0.2)
    a, b = lo - pad, hi + pad
    if bounds is not None:
        a = max(a, bounds[0]) if lo >= bounds[0] else a
        b = min(b, bounds[1]) if hi <= bounds[1] else b
    return float(a), float(b)


def _forward_ms(run: Run, dataset: str | None, seed: int | None) -> float | None:
    """Milliseconds of one plain forward pass per image (clip) of the block, if timed."""
    dataset, seed = run._check(dataset, seed)
    fwd = run.results.get("timing", {}).get(f"{dataset}/{seed}/forward_ms_per_image")
    return float(fwd) if fwd else None


def _reference(run: Run, metric: str, dataset, seed) -> tuple[float, str] | None:
    """The one value with a meaning on ``metric``'s axis, ``(value, label)``, or ``None``:
    one forward pass on a cost, a known chance level, else the ``random`` method's score
    (the level of maps that say nothing)."""
    if metric == "cost_ratio":
        return 1.0, "= one forward pass"
    if metric in ("ms_per_image", "ms_per_clip"):
        fwd = _forward_ms(run, dataset, seed)
        return None if fwd is None else (fwd, f"one forward pass ({fwd:.3g} ms)")
    if metric in _CHANCE:
        return _CHANCE[metric]
    if "random" in run.methods and run.family(metric) not in ("cost", "sanity"):
        score = {r.method: r.value for r in run.ranking(metric, dataset, seed)}
        if math.isfinite(score.get("random", math.nan)):
            return score["random"], "random maps"
    return None


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
    if indices is None:  # the first test image of each class
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
    fig = explanation_grid(data["images"][idx], maps, data["masks"][idx], cell=cell, colorbar=False)
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
            text = _wrap(label.replace("_", " "), " ", 8)
            axes[i, 0].set_ylabel(text, fontsize=6, rotation=0, ha="right", va="center")
        heatmap_colorbar(fig, axes.ravel(), "relevance (min–max normalised per map)")
        fig.supxlabel("+: the map's maximum · blue outline: the ground-truth mask", fontsize=6)
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
        _bar_axis(ax, run, metric, dataset, seed, lo, hi)
        ax.set_xlabel(_wrap(metric_label(metric, run), " ", int((width - 0.8) * 15)))
        _despine(ax)
    return fig


def _bar_axis(ax, run: Run, metric: str, dataset, seed, lo, hi) -> None:
    """The x axis of :func:`metric_bars`: from 0 (or the lowest interval) past the
    longest bar with a margin, cut at the metric's bounds; the value with a meaning
    (:func:`_reference`) as a dotted line labelled above the axes; a note when every
    method scores 0."""
    ref = _reference(run, metric, dataset, seed)
    low, high = min(0.0, float(lo.min())), max(0.0, float(hi.max()))
    if ref is not None:
        low, high = min(low, ref[0]), max(high, ref[0])
    bounds = _bounds(metric)
    if high - low <= 0:  # every bar is 0: show the metric's range, say so
        high = bounds[1] if bounds else 1.0
        ax.text(0.5, 0.5, "every method scores 0", transform=ax.transAxes, ha="center",
                va="center", fontsize=7, color="#555555")  # fmt: skip
    left, right = _padded(low, high, bounds, 0.04)
    ax.set_xlim(0.0 if low >= 0 else left, right)  # the bars start on the axis
    if ref is not None:
        ax.axvline(ref[0], color="#333333", lw=0.7, ls=(0, (1.5, 1.5)), zorder=0.5)
        ax.text(ref[0], 1.0, ref[1], transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=6, color="#333333")  # fmt: skip


#: The curve panels of :func:`faithfulness_curves`: (curve key, x key, metric, title,
#: x label); the better direction of each comes from the metric vocabulary.
CURVES = {
    "deletion": (
        ("deletion", "fractions", "deletion_auc", "deletion",
         "fraction of pixels deleted,\nmost relevant first"),
        ("insertion", "fractions", "insertion_auc", "insertion",
         "fraction of pixels inserted,\nmost relevant first"),
    ),
    "road": (
        ("road_morf", "road_fractions", "road_morf", "ROAD, MoRF",
         "fraction of pixels imputed,\nmost relevant first"),
        ("road_lerf", "road_fractions", "road_lerf", "ROAD, LeRF",
         "fraction of pixels imputed,\nleast relevant first"),
    ),
}  # fmt: skip
#: The legend's heading of the two panels' areas.
_AREAS = {"deletion": "deletion | insertion", "road": "MoRF | LeRF"}
#: Methods a legend beside the plot holds; more go below it, in columns.
_LEGEND_ROWS = 12


def faithfulness_curves(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    methods: list[str] | None = None,
    references: bool = True,
    width: float = TWO_COLUMN,
    kind: str = "deletion",
) -> Figure:
    """Mean perturbation curves per method (two panels), the areas in one legend.

    ``kind="deletion"``: the class probability as the map's most relevant pixels are
    deleted (left; lower area is better) or inserted into the baseline (right; higher is
    better). ``kind="road"``: ROAD's curves, the pixels imputed by noisy linear
    imputation most relevant first (left; lower is better) or least relevant first
    (right; higher is better). Averaged over the test images. One legend for the figure
    (beside the panels, or below them for more than 12 methods) lists the methods best
    first on the left panel with their areas on both; a dotted line marks chance, one
    over the number of classes, where the run's test split gives it. The y axis is
    fitted to the curves.

    Returns:
        A figure with two axes, one line per method in each, and one figure legend.
    """
    if kind not in CURVES:
        raise ValueError(f"kind must be one of {sorted(CURVES)}, got {kind!r}")
    panels = CURVES[kind]
    curves = _collect_curves(run, _pick(run, methods, references), dataset, seed, panels)
    below = len(curves) > _LEGEND_ROWS
    rows = math.ceil(len(curves) / 4) if below else 0
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 2.2 + 0.14 * rows), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        areas = [_curve_panel(axes[k], run, panels[k], curves, dataset, seed) for k in (0, 1)]
        values = np.concatenate(
            [np.asarray(c[p[0]], float) for c in curves.values() for p in panels]
        )
        chance = _chance_probability(run, dataset)
        extra = [] if chance is None else [chance[0]]
        axes[0].set_ylim(*_padded(float(np.nanmin([*values, *extra])),
                                  float(np.nanmax([*values, *extra])), (0, 1)))  # fmt: skip
        handles = axes[0].get_lines()[: len(curves)]  # drawn best first, as areas[0]
        labels = [f"{_label(run, m)}  {areas[0][m]:.3f} | {areas[1][m]:.3f}" for m in areas[0]]
        if chance is not None:
            handles.append(_chance_lines(axes, chance[0])[0])
            labels.append(chance[1])
        fig.legend(handles, labels, loc="outside lower center" if below else "outside right upper",
                   ncols=4 if below else 1, frameon=False, handlelength=2.6, columnspacing=1.2,
                   title=f"method  area: {_AREAS[kind]}", title_fontsize=7,
                   alignment="left")  # fmt: skip
        axes[0].set_ylabel("class probability\n(mean over test images)")
    return fig


def _chance_probability(run: Run, dataset: str | None) -> tuple[float, str] | None:
    """(1 / number of classes, its label) for a single-label run whose test split is
    there; ``None`` otherwise (the chance line is then left out)."""
    dataset, _ = run._check(dataset, None)
    if task_of(dataset, missing_ok=True).output != "softmax":
        return None
    try:
        classes = run.data(dataset)["classes"]
    except FileNotFoundError:
        return None
    return 1 / len(classes), f"chance: 1/{len(classes)} classes"


def _chance_lines(axes, level: float) -> list:
    return [ax.axhline(level, color="#333333", lw=0.7, ls=(0, (1.5, 1.5)), zorder=0.5)
            for ax in axes]  # fmt: skip


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


def _curve_panel(ax, run: Run, panel: tuple, curves: dict, dataset, seed) -> dict[str, float]:
    """One panel: every method's mean curve, best first; returns each method's area in
    that order (the run's score where it has one, else the curve's trapezoid area)."""
    key, xkey, metric, title, xlabel = panel
    lower = direction(metric, run.results) is False
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
            label=_label(run, m),
        )
    ax.set_xlabel(xlabel)
    ax.set_title(f"{title} ({_better(metric, run.results)})")
    ax.set_xlim(0, 1)
    _despine(ax)
    return {m: auc[m] for m in order}


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
    shows its range over images. The x axis spans the entries and the band (with a
    margin, within [0, 1]). The text under the plot gives the share of entries above each
    image's threshold and of images whose threshold no entry exceeds (the rule then falls
    back to the strongest channel), the mean per-image spread of s, and how much the
    channels the rule selects overlap across images and across classes (mean Jaccard; 1:
    the same channels for every image, so the SE vector does not pick per image).

    Returns:
        A figure whose first axes holds the histogram, the mean threshold line and the
        range band (the second, without axis lines, the text), and one figure legend.
    """
    vectors = run.se_vectors(dataset, seed)
    s = vectors["s"].float()
    targets = torch.as_tensor(run.data(dataset)["targets"])
    chosen = select_channels(s, vectors["logits"].float(), "paper", z=z).selected
    diag = se_vector_report(s, targets, selected=chosen)
    thr = s.mean(1) + z * s.std(1, unbiased=False)
    t, above = float(thr.mean()), s > thr[:, None]
    values = s.flatten().numpy()
    lo, hi = _padded(min(values.min(), float(thr.min())), max(values.max(), float(thr.max())),
                     (0, 1), 0.04)  # fmt: skip
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 3.1), layout="constrained")
        ax, notes = fig.subplots(2, 1, height_ratios=[2.4, 1])
        counts, _, _ = ax.hist(values, bins=40, range=(lo, hi), color=OKABE_ITO["blue"])
        ax.axvline(
            t,
            color=OKABE_ITO["vermillion"],
            ls="--",
            label=f"paper threshold, mean over images: mean + {z:g}·std = {t:.3f}",
        )
        ax.axvspan(float(thr.min()), float(thr.max()), color=OKABE_ITO["vermillion"],
                   alpha=0.15, lw=0, zorder=0, label="its range over images")  # fmt: skip
        ax.set(xlim=(lo, hi), yscale="log", ylim=(0.8, max(float(counts.max()), 1.0) * 2))
        ax.set_xlabel("SE-vector entry $s_c$ (channel weight, 0 to 1)")
        ax.set_ylabel("entries (log scale)")
        fig.legend(loc="outside upper center", frameon=False, ncols=1, fontsize=6)
        notes.axis("off")
        notes.text(0, 1, f"{s.shape[0]} images × {s.shape[1]} channels; per-image std of s: "
                   f"{diag['image_std_mean']:.3f}\n"
                   f"entries above their image's threshold: {above.float().mean():.1%}\n"
                   f"images with no entry above it: {(~above.any(1)).float().mean():.0%}\n"
                   "overlap of the selected channels (Jaccard):\n"
                   f"    across images {diag['jaccard_images']:.2f}, "
                   f"across classes {diag['jaccard_classes']:.2f}",
                   transform=notes.transAxes, va="top", fontsize=6)  # fmt: skip
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
    A note under the grid says how to read a panel; grey-level and ``heat`` panels (one
    value per pixel) get a colour bar, colour ones (a signed value per RGB channel) none.

    Returns:
        The figure, or ``None`` when the run has no VEBI interpretation.
    """
    interp = run.interpretation(dataset, seed)
    if interp is None:
        return None
    cols = max(1, max(len(f) for f in interp.features))
    cell = 0.75 if width is None else min(1.1, (width - 0.8) / cols)
    fig = feature_grid(interp, cell=cell, heat=heat)
    shown = [ax for ax in fig.axes if ax.images]
    rgb = not heat and any(ax.images[0].get_array().ndim == 3 for ax in shown)
    with matplotlib.rc_context(STYLE):
        for ax in fig.axes:
            if ax.get_ylabel():
                ax.set_ylabel(_wrap(ax.get_ylabel(), " ", 8), rotation=0, ha="right", va="center")
        if heat:
            heatmap_colorbar(fig, shown, "mean relevance (0 to 1)")
        elif not rgb:
            heatmap_colorbar(fig, shown, "backward signal\n(normalised per panel)", "RdBu_r", -1, 1)
        what = "mean heatmap" if heat else "mean guided backward signal"
        grey = "" if heat or not rgb else ", grey = 0, colour = its sign per RGB channel"
        fig.supxlabel(
            _wrap(f"each panel: a relevant feature's {what} (normalised per panel{grey}); "
                  "title: layer:channel (lasso weight); features by decreasing weight", " ",
                  int(fig.get_figwidth() * 17)),
            fontsize=6,
        )  # fmt: skip
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
    refs = (_forward_ms(run, dataset, seed), _reference(run, metric, dataset, seed))
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 2.6), layout="constrained")
        ax = fig.subplots()
        yerr = np.vstack([np.maximum(y - lo, 0), np.maximum(hi - y, 0)])
        ax.errorbar(x, y, yerr=yerr, fmt="none", ecolor="#BBBBBB", elinewidth=0.6, zorder=1,
                    clip_on=False)  # fmt: skip
        for k, m in enumerate(names):
            ax.scatter(x[k], y[k], s=14, color=styles[m]["color"], marker=styles[m]["marker"],
                       zorder=3, linewidths=0, clip_on=False)  # fmt: skip
        _fit_axes(ax, x, y, lo, hi, _bounds(metric), *refs)
        ax.set_xlabel(metric_label("ms_per_image", run, "log scale"))
        ax.set_ylabel(_wrap(metric_label(metric, run), " ", 34))
        _despine(ax)
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
    ax.set_ylim(*_padded(float(min(ys)), float(max(ys)), bounds, 0.08))
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
                  label=f"accuracy on {table[0]['attribute'].replace('_', ' ')} (decorrelated test)")  # fmt: skip
        left.plot(rho, [t["reliance"] for t in table], "s--", color=OKABE_ITO["vermillion"],
                  label="reliance on the mark")  # fmt: skip
        left.set(xlabel="ρ (training tie of mark and attribute)", ylim=(-0.02, 1.02),
                 ylabel="accuracy, reliance (0 to 1)")  # fmt: skip
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
        right.set(
            xlabel="ρ (training tie of mark and attribute)",
            ylabel="relevance mass (share of relevance)",
        )
        right.set_title("solid: on the mark · dashed: on the attribute", fontsize=7)
        (h1, l1), (h2, l2) = (ax.get_legend_handles_labels() for ax in (left, right))
        fig.legend(h1 + h2, l1 + l2, loc="outside lower center", ncols=3, frameon=False,
                   fontsize=6)  # fmt: skip
        for ax in (left, right):
            _despine(ax)
    return fig


# -- captions ------------------------------------------------------------------------------------
#: The captions file :func:`make_figures` writes beside the figures.
CAPTIONS_FILE = "CAPTIONS.md"
_REF_NOTE = (
    "hatched grey bars are reference maps (no model; the oracle and silhouette see the mask)"
)
#: What each figure shows, by name; ``bars-<metric>`` and ``cost-vs-<metric>`` are
#: written from the metric's label (:func:`caption`).
CAPTIONS = {
    "qualitative": "One test image per class (rows) and each method's heatmap over it "
    "(columns), min–max normalised per map (colour bar: relevance 0 to 1); + marks the "
    "map's maximum, the blue outline the ground-truth mask.",
    "attributes": "One face, one row per attribute it has: each method's map for that "
    "attribute, normalised per map (colour bar), the attribute's region outlined. A "
    "class-agnostic map is the same in every row.",
    "faithfulness": "Class probability (mean over the test images, fitted axis) as the "
    "map's most relevant pixels are deleted (left; lower area is better) or inserted into "
    "the baseline (right; higher area is better), against the fraction of pixels changed. "
    "The legend lists the methods best first on the left panel with both areas (mean "
    "class probability); dotted: chance, one over the number of classes.",
    "road": "ROAD: class probability (mean over the test images, fitted axis) as pixels are "
    "imputed by noisy linear imputation, most relevant first (left, MoRF; lower area is "
    "better) or least relevant first (right, LeRF; higher area is better). The legend "
    "lists the methods best first on the left panel with both areas; dotted: chance.",
    "se-distribution": "Histogram of the SE-vector entries s_c (channel weights, 0 to 1; "
    "count on a log scale) of every test image. Dashed: the paper's threshold mean + "
    "1.282·std averaged over the images; band: its range over the images. The notes give "
    "the share of entries above their image's threshold and how alike the selected "
    "channels are across images and classes (Jaccard, 1: identical).",
    "vebi-features": "VEBI: for each class (rows) its relevant features by decreasing lasso "
    "weight; each panel is a feature's mean guided backward signal, normalised per panel "
    "(grey = 0), titled layer:channel (weight).",
    "bias": "The bias sweep over ρ, how tightly a corner mark is tied to the attribute in "
    "training. Left: the model's accuracy on the attribute (decorrelated test split) and "
    "its reliance on the mark (0 to 1). Right: each method's relevance mass (share of "
    "positive relevance) on the mark (solid) and on the attribute (dashed), with 95 % "
    "intervals; the constant map is chance.",
    "speaker-clips": "Audio-visual clips × methods: every third video frame with the "
    "method's visual heatmap (mouth outlined) and the clip's spectrogram with its audio "
    "heatmap, the speech segments as a bar above it.",
    "speaker-kinds": "How much each stream (visual, audio) counts, by clip kind and over "
    "all clips, one panel per measure, with 95 % bootstrap intervals; read per clip kind "
    "(no better direction).",
    "examples": "The run's first look: one test image per class (rows) of its first dataset "
    "and seed, each method's heatmap over it (columns), min–max normalised per map (colour "
    "bar: relevance 0 to 1); + marks the map's maximum, the blue outline the ground-truth "
    "mask.",
    "speaker": "One clip's per-frame heatmaps as an animated GIF, beside the spectrogram "
    "with the audio map, the speech bar and the current frame boxed.",
}


def caption(run: Run, name: str, dataset: str | None = None, seed: int | None = None) -> str:
    """What figure ``name`` of :func:`make_figures` (without its ``_<dataset>`` /
    ``_seed<k>`` suffix) shows, with units and directions, in a sentence or three."""
    if name.startswith("bars-"):
        metric = name.removeprefix("bars-")
        try:
            refs = any(r.kind == "reference" for r in run.ranking(metric, dataset, seed))
        except KeyError:
            refs = False
        return (
            f"{_sentence(metric_label(metric, run))}: each method's mean over the test "
            f"images with its 95 % bootstrap interval, best first"
            + (f"; {_REF_NOTE}." if refs else ".")
            + _line_note("Dotted line", _safe_reference(run, metric, dataset, seed))
        )
    if name.startswith("cost-vs-"):
        metric = name.removeprefix("cost-vs-")
        return (
            f"{_sentence(metric_label('ms_per_image', run, 'log scale'))} against "
            f"{metric_label(metric, run)}, one point per timed method; grey bars: 95 % "
            "bootstrap intervals. Dashed: one plain forward pass of the model."
            + _line_note("Dotted", _safe_reference(run, metric, dataset, seed))
        )
    return CAPTIONS.get(name, "")


def _line_note(what: str, ref: tuple[float, str] | None) -> str:
    """`` Dotted line: random maps (0.0333).``, or nothing without a reference."""
    if ref is None:
        return ""
    label = ref[1].removeprefix("= ")
    return f" {what}: {label}" + ("." if "(" in label else f" ({ref[0]:.3g}).")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _safe_reference(run: Run, metric: str, dataset, seed) -> tuple[float, str] | None:
    try:
        return _reference(run, metric, dataset, seed)
    except KeyError:
        return None


def _run_lines(run: Run, tables: list[Path]) -> list[str]:
    """The captions file's header: the run, its datasets, methods, models, settings."""
    res, refs = run.results, [m for m in run.methods if run.kind(m) == "reference"]
    out = [
        f"Run `{run.root}`: datasets {', '.join(run.datasets)}; seeds "
        f"{', '.join(map(str, run.seeds))}; methods "
        f"{', '.join(m for m in run.methods if m not in refs)}"
        + (f"; reference maps {', '.join(refs)}." if refs else ".")
    ]
    for name, mo in res.get("models", {}).items():
        if "accuracy_mean" in mo:
            unit = "clips" if mo.get("kinds") else "images"
            sizes = f", {mo.get('n_train')} training and {mo['n_test']} test {unit}"
            sizes = sizes if "n_test" in mo else ""
            out.append(f"Model on {name}: {mo.get('arch', 'CNN')}{sizes}; "
                       f"{mo.get('score', 'test accuracy')} {mo['accuracy_mean']:.3f}.")  # fmt: skip
    cfg = res.get("config", {})
    said = [w.format(cfg[k]) for k, w in (("size", "image side {} px"), ("epochs", "{} epochs"))
            if cfg.get(k) is not None]  # fmt: skip
    if said:
        out.append("Settings: " + ", ".join(said) + ".")
    out.append(
        "Intervals are 95 % bootstrap intervals over the test images. LaTeX tables: "
        + ", ".join(f"`{p.name}`" for p in tables)
        + "."
    )
    return out


def _captions_text(run: Run, entries: list[tuple], tables: list[Path]) -> str:
    """The captions file: the run's header, then one entry per figure written."""
    lines = [f"# Figures of the run `{run.root.name}`", "", *_run_lines(run, tables), ""]
    for name, dataset, seed, files in entries:
        if not files:
            continue
        where = "all datasets" if dataset is None else f"{dataset}, seed {seed}"
        lines += [
            f"## {files[0].stem}",
            "",
            f"{', '.join(f'`{p.name}`' for p in files)} · {where}",
            "",
            caption(run, name, dataset, seed),
            "",
        ]
    return "\n".join(lines)


# -- everything into one folder ------------------------------------------------------------------
def _jobs(run: Run, dataset: str, seed: int) -> list[tuple]:
    """``(name, draw)`` — or ``(name, draw, format)`` for a figure drawn as the bytes of one
    fixed format (an animated GIF) — for every figure of one (dataset, seed) of the run: the
    figures of the dataset's task (:attr:`squeezex.bench.tasks.Task.figures`; a dataset
    no longer registered is read as a single-label one)."""
    return resolve(task_of(dataset, missing_ok=True).figures)(run, dataset, seed)


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


def example_grid(cfg, dataset: str, methods=("se", "gradcam"), n: int = 4) -> Figure:
    """A first look before a benchmark: the first ``n`` test images of ``dataset`` (the
    split a run with the :class:`~squeezex.bench.BenchConfig` ``cfg`` scores) explained by
    ``methods`` with the run's SE model (trained and cached on first use), each map's
    maximum marked, the mask outlined (:func:`squeezex.bench.example_maps` computes them;
    a method with a fit step, VEBI, is fitted on the run's training split)."""
    ex = example_maps(cfg, dataset, methods, n)
    return explanation_grid(ex["images"], ex["maps"], ex["masks"], row_labels=ex["labels"])


def examples(run: Run, dataset: str, seed: int, n: int) -> Figure:
    """``examples.png``: one test image per class (at most ``n``) × every method of the
    run's last configuration, each map over its image with the mask outlined."""
    data = run.data(dataset)
    idx = example_indices(data["targets"], n)
    maps = {}
    for m in run.results["config"]["methods"]:
        try:
            maps[m] = run.maps(m, dataset, seed)[idx]
        except (FileNotFoundError, KeyError):  # a method not scored here (skipped)
            continue
    labels = [data["classes"][int(data["targets"][i])] for i in idx]
    return explanation_grid(data["images"][idx], maps, data["masks"][idx], row_labels=labels)


def _multi_label(run: Run, dataset: str) -> bool:
    """Whether the run's test split of ``dataset`` is (face, attribute) pairs; ``False``
    when the run lacks its test split (the figures that need it are skipped, with the
    reason, by :func:`make_figures`)."""
    try:
        return "face_index" in run.data(dataset)
    except FileNotFoundError:
        return False


def _block_figures(run: Run, dataset: str, seed: int, out: Path, formats, dpi: int,
                   skips: list) -> list[tuple]:  # fmt: skip
    """Every figure of one (dataset, seed) block: ``(name, dataset, seed, files)`` each."""
    suffix = (f"_{dataset}" if len(run.datasets) > 1 else "") + (
        f"_seed{seed}" if len(run.seeds) > 1 else ""
    )
    entries = []
    for name, make, *fixed in _jobs(run, dataset, seed):
        if fixed:  # bytes of one format, whatever ``formats`` says (an animated GIF)
            data = _draw(f"{name}.{fixed[0]}", suffix, make, skips)
            path = out / f"{name}{suffix}.{fixed[0]}"
            entries.append(
                (name, dataset, seed, [] if data is None else [atomic_write_bytes(path, data)])
            )
            continue
        fig, files = _draw(name, suffix, make, skips), []
        for k, fmt in enumerate(formats if fig is not None else []):
            # a fresh figure per format: saving one format moves the layout a
            # little, and each file must not depend on which were written before
            fig = fig if k == 0 else make()
            files.append(save_figure(fig, out / f"{name}{suffix}.{fmt}", dpi=dpi))
        entries.append((name, dataset, seed, files))
    return entries


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
    (one per metric family, narrow enough for a column). Captions: :data:`CAPTIONS_FILE`,
    one entry per figure written (its files, what it shows with units and directions,
    its dataset and seed) after a header naming the run and its configuration.
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
        The paths written: the tables, the figures in order, the captions file last.

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
    tables = [atomic_write_text(out / "results.tex", latex_table(run.results))]
    for fam, text in family_tables(run.results).items():
        tables.append(atomic_write_text(out / f"results-{fam}.tex", text))
    entries, skips = [], []  # (name, dataset, seed, files) of every figure; what is skipped
    for dataset, seed in run.blocks():
        entries += _block_figures(run, dataset, seed, out, formats, dpi, skips)
    entries.append(("bias", None, None, _run_figures(run, out, formats, dpi)))
    entries.append(_examples(run, out, skips))
    _report_skips(skips, verbose)
    figures = [f for *_, files in entries for f in files]
    captions = atomic_write_text(out / CAPTIONS_FILE, _captions_text(run, entries, tables))
    return tables + figures + [captions]


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


def _examples(run: Run, out: Path, skips: list) -> tuple:
    """``examples.png`` (PNG whatever ``formats`` says, at the default resolution), drawn
    for the first block of the run's configuration by its task
    (:attr:`squeezex.bench.tasks.Task.examples`), or nothing (the task has none)."""
    config = run.results.get("config", {})
    dataset = next(
        (d.strip() for d in str(config.get("dataset", "")).split(",") if d.strip()), None
    )
    if dataset is None or not (ref := task_of(dataset, missing_ok=True).examples):
        return ("examples", dataset, None, [])
    seed, n = config.get("seed", 0), config.get("n_examples", 6)
    fig = _draw("examples", "", lambda: resolve(ref)(run, dataset, seed, n), skips)
    return (
        "examples",
        dataset,
        seed,
        [] if fig is None else [save_figure(fig, out / "examples.png")],
    )


def _draw(name: str, suffix: str, make, skips: list):
    """The figure, or ``None`` (the reason added to ``skips``) when the run lacks its
    inputs; a damaged file propagates."""
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
        skips.append((name, suffix, reason))
    return fig


def _report_skips(skips: list[tuple[str, str, str]], verbose: bool) -> None:
    """Print (or log) the skipped figures, one line per figure and reason: a figure
    skipped for the same reason on several datasets or seeds names them in brackets,
    ``skipped road (_faces-bias-0, _faces-bias-90): ValueError: …``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, suffix, reason in skips:
        groups.setdefault((name, reason), []).append(suffix)
    for (name, reason), suffixes in groups.items():
        where = suffixes[0] if len(suffixes) == 1 else f" ({', '.join(suffixes)})"
        if len(suffixes) == 1 and name.endswith(".gif"):
            name, where = name.replace(".gif", f"{where}.gif"), ""
        if verbose:
            print(f"skipped {name}{where}: {reason}")
        else:
            log.warning("skipped %s%s: %s", name, where, reason)


def summary(written: list[Path], out: str | Path) -> str:
    """What :func:`make_figures` wrote, in two lines: how many figures (and files, by
    format) and tables, the folder, and the captions file."""
    figs = [p for p in written if p.suffix not in (".tex", ".md")]
    tables = sum(p.suffix == ".tex" for p in written)
    formats = ", ".join(sorted({p.suffix.lstrip(".").upper() for p in figs}))
    head = (
        f"wrote {len(dict.fromkeys(p.stem for p in figs))} figures ({len(figs)} files"
        f"{': ' + formats if formats else ''}) and {tables} LaTeX tables to {out}"
    )
    captions = [p for p in written if p.name == CAPTIONS_FILE]
    return head + (f"\ncaptions: {captions[0]}" if captions else "")
