"""Perturbation curves: the class probability as the map's pixels are deleted, inserted
or imputed (ROAD), one line per method, the areas in one legend.

Example:
    >>> from squeezex.bench import Run
    >>> faithfulness_curves(Run("data/runs/demo"), kind="road")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..bench import Run
from ..bench.tables import direction
from ..bench.tasks import task_of
from ..viz import STYLE, TWO_COLUMN
from .labels import better
from .style import despine, method_label, method_styles, padded, pick_methods

__all__ = ["CURVES", "faithfulness_curves"]

log = logging.getLogger(__name__)


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
    curves = _collect_curves(run, pick_methods(run, methods, references), dataset, seed, panels)
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
        axes[0].set_ylim(*padded(float(np.nanmin([*values, *extra])),
                                  float(np.nanmax([*values, *extra])), (0, 1)))  # fmt: skip
        handles = axes[0].get_lines()[: len(curves)]  # drawn best first, as areas[0]
        labels = [
            f"{method_label(run, m)}  {areas[0][m]:.3f} | {areas[1][m]:.3f}" for m in areas[0]
        ]
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
            label=method_label(run, m),
        )
    ax.set_xlabel(xlabel)
    ax.set_title(f"{title} ({better(metric, run.results)})")
    ax.set_xlim(0, 1)
    despine(ax)
    return {m: auc[m] for m in order}
