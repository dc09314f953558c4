"""The bias sweep of a multi-label run (faces-bias datasets, by ρ): the model's reliance
on a planted mark beside each method's relevance on the mark and on the attribute.

Example:
    >>> from squeezex.bench import Run
    >>> bias_curve(Run("data/runs/faces"))  # doctest: +SKIP
"""

from __future__ import annotations

import matplotlib
from matplotlib.figure import Figure

from ..bench import Run
from ..viz import OKABE_ITO, STYLE, TWO_COLUMN
from .style import despine, method_label, method_styles

__all__ = ["bias_curve"]


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
    from ..bench.attributes import bias_table

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
                    label=method_label(run, m) if metric == "cue_mass" else None)  # fmt: skip
        right.set(
            xlabel="ρ (training tie of mark and attribute)",
            ylabel="relevance mass (share of relevance)",
        )
        right.set_title("solid: on the mark · dashed: on the attribute", fontsize=7)
        (h1, l1), (h2, l2) = (ax.get_legend_handles_labels() for ax in (left, right))
        fig.legend(h1 + h2, l1 + l2, loc="outside lower center", ncols=3, frameon=False,
                   fontsize=6)  # fmt: skip
        for ax in (left, right):
            despine(ax)
    return fig
