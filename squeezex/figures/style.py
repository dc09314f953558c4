"""The paper style every figure kind shares: one colour, line style and marker per
method (reference maps grey), and the small axis helpers that keep figures alike.

The base style (fonts, sizes, widths, the Okabe-Ito palette) is :data:`squeezex.viz.STYLE`;
this module adds what the figures of a run need on top of it: which methods to draw and
how to name them, spines, wrapped labels and axis limits that respect a metric's bounds.

Example:
    >>> wrap("guided-backprop-interp", "-", 9)
    'guided-\\nbackprop-\\ninterp'
    >>> padded(2.0, 6.0, frac=0.25)
    (1.0, 7.0)
    >>> padded(0.0, 1.0, bounds=(0, 1))  # a share: the axis stops at 0 and 1
    (0.0, 1.0)
"""

from __future__ import annotations

from ..bench import Run
from ..viz import LINE_COLOURS, OKABE_ITO

__all__ = [
    "LINESTYLES",
    "MARKERS",
    "REF_GREYS",
    "BAR_COLOUR",
    "method_styles",
    "pick_methods",
    "method_label",
    "despine",
    "wrap",
    "padded",
]

#: Line styles methods cycle through once the colours are used up.
LINESTYLES = ("-", "--", ":", (0, (5, 1, 1, 1)))
#: One marker per method, in run order.
MARKERS = ("o", "s", "^", "D", "v", "p", "h", "<", ">", "*")
#: The greys of reference maps (oracle, centre, …), in run order.
REF_GREYS = ("#555555", "#888888", "#AAAAAA", "#CCCCCC")
#: The colour of a method's bar (reference maps' bars are white and hatched).
BAR_COLOUR = OKABE_ITO["blue"]


def method_styles(run: Run) -> dict[str, dict]:
    """``{method: {"color", "linestyle", "marker"}}`` for every method of ``run``.

    Methods cycle through the Okabe-Ito colours, then line styles (7 colours × 4 styles),
    in the order the run scored them; reference maps get greys and a dash-dot line.
    """
    styles, i, j = {}, 0, 0
    for m in run.methods:
        if run.kind(m) == "reference":
            styles[m] = {"color": REF_GREYS[j % len(REF_GREYS)], "linestyle": "-.", "marker": "."}
            j += 1
        else:
            styles[m] = {
                "color": LINE_COLOURS[i % len(LINE_COLOURS)],
                "linestyle": LINESTYLES[(i // len(LINE_COLOURS)) % len(LINESTYLES)],
                "marker": MARKERS[i % len(MARKERS)],
            }
            i += 1
    return styles


def pick_methods(run: Run, methods, references: bool) -> list[str]:
    """``methods`` (checked) or the run's methods, references included if asked."""
    if methods is not None:
        unknown = [m for m in methods if m not in run.methods]
        if unknown:
            raise KeyError(f"no method {', '.join(unknown)} in this run; it has {run.methods}")
        return list(methods)
    return [m for m in run.methods if references or run.kind(m) == "method"]


def method_label(run: Run, method: str) -> str:
    """``method`` as a figure names it: a reference map marked ``(ref)``, so that a reader
    never takes the oracle's score for a method's."""
    return method + (" (ref)" if run.kind(method) == "reference" else "")


def despine(ax) -> None:
    """Hide the top and right spines of ``ax``: the paper style draws only the axes
    that carry a scale."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def wrap(name: str, sep: str, width: int) -> str:
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


def padded(lo: float, hi: float, bounds=None, frac: float = 0.06) -> tuple[float, float]:
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
