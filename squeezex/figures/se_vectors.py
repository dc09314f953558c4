"""The distribution of the test images' SE-vector entries, with the paper's threshold.

Example:
    >>> from squeezex.bench import Run
    >>> se_distribution(Run("data/runs/demo"))  # doctest: +SKIP
"""

from __future__ import annotations

import matplotlib
import torch
from matplotlib.figure import Figure

from ..bench import Run
from ..explainers.diagnostics import se_vector_report
from ..explainers.se import PAPER_Z, select_channels
from ..viz import OKABE_ITO, ONE_COLUMN, STYLE
from .style import despine, padded

__all__ = ["se_distribution"]


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
    lo, hi = padded(min(values.min(), float(thr.min())), max(values.max(), float(thr.max())),
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
        despine(ax)
    return fig
