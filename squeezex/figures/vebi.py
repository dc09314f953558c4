"""VEBI's class × relevant-feature average visualisations, with a note on how to read them.

Example:
    >>> from squeezex.bench import Run
    >>> vebi_features(Run("data/runs/demo"), heat=True)  # doctest: +SKIP
"""

from __future__ import annotations

import matplotlib
from matplotlib.figure import Figure

from ..bench import Run
from ..viz import STYLE, feature_grid, heatmap_colorbar
from .style import wrap

__all__ = ["vebi_features"]


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
                ax.set_ylabel(wrap(ax.get_ylabel(), " ", 8), rotation=0, ha="right", va="center")
        if heat:
            heatmap_colorbar(fig, shown, "mean relevance (0 to 1)")
        elif not rgb:
            heatmap_colorbar(fig, shown, "backward signal\n(normalised per panel)", "RdBu_r", -1, 1)
        what = "mean heatmap" if heat else "mean guided backward signal"
        grey = "" if heat or not rgb else ", grey = 0, colour = its sign per RGB channel"
        fig.supxlabel(
            wrap(f"each panel: a relevant feature's {what} (normalised per panel{grey}); "
                  "title: layer:channel (lasso weight); features by decreasing weight", " ",
                  int(fig.get_figwidth() * 17)),
            fontsize=6,
        )  # fmt: skip
    return fig
