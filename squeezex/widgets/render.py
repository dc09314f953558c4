"""The widgets' PNG renderings, as plain functions (tested without a kernel).

Overlays of a heatmap on an image, the heatmaps' colour bar, the SE-vector bar chart and
a benchmark ranking chart, plus the PNG helpers the widgets show them with. Renderings are
deterministic (no timestamp in the PNG): the same inputs give the same bytes, so the
widgets' static pictures are stable in nbval and in a diff.

Example:
    >>> import torch
    >>> png = render_overlay(torch.zeros(3, 4, 4), scale=2)
    >>> png_size(png)
    (8, 8)
    >>> data_uri(png)[:22]
    'data:image/png;base64,'
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from ..explainers.se import SEVector
from ..metrics.vocabulary import direction_text
from ..viz import HEATMAP_CMAP, STYLE, blend

__all__ = [
    "COLORBAR_LABEL",
    "render_overlay",
    "render_colorbar",
    "render_se_vector",
    "render_ranking",
    "figure_png",
    "png_size",
    "data_uri",
]

#: What the tiles' colour bar measures: every map is min-max normalised on its own.
COLORBAR_LABEL = "relevance (normalised per map)"


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def render_overlay(
    image: torch.Tensor,
    heatmap: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    opacity: float = 0.55,
    scale: int = 3,
) -> bytes:
    """PNG of ``image`` (C×H×W in [0, 1]) with ``heatmap`` (H×W in [0, 1]) blended at
    ``opacity`` in the paper's colour map and ``mask``'s outline; enlarged ``scale`` times
    (nearest neighbour, so pixels stay pixels)."""
    rgb = blend(image, heatmap, mask, opacity)
    arr = np.round(rgb * 255).astype(np.uint8)
    if scale > 1:
        arr = arr.repeat(scale, 0).repeat(scale, 1)
    return _png(arr)


@lru_cache(maxsize=8)
def render_colorbar(label: str = COLORBAR_LABEL, width: float = 3.2, dpi: int = 100) -> bytes:
    """PNG of the heatmaps' colour scale (:data:`~squeezex.viz.HEATMAP_CMAP` from 0 to 1),
    horizontal, ``width`` inches wide, titled ``label``."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 0.55), layout="constrained")
        ax = fig.subplots()
        sm = ScalarMappable(Normalize(0.0, 1.0), matplotlib.colormaps[HEATMAP_CMAP])
        bar = fig.colorbar(sm, cax=ax, orientation="horizontal", ticks=[0, 0.25, 0.5, 0.75, 1])
        bar.set_label(label)
        bar.outline.set_linewidth(0.4)
    return figure_png(fig, dpi)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes without timestamp metadata."""
    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def render_se_vector(v: SEVector, index: int = 0, size=(6.0, 1.8)) -> bytes:
    """Bar chart of sample ``index``'s SE vector: selected channels highlighted and the
    rule's threshold drawn (on the pre-sigmoid excitation for the ``"logit"`` rule); the
    title gives the spread of s (a vector near-constant across channels weights every
    channel alike, and the SE map is then the plain channel mean)."""
    on_logits = v.rule == "logit"
    vals = (v.logits if on_logits else v.s)[index].detach().cpu().float().numpy()
    sel = v.selected[index].cpu().numpy()
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")
        ax = fig.subplots()
        c = np.arange(len(vals))
        ax.bar(c[~sel], vals[~sel], width=0.9, color="#BBBBBB", label="not selected")
        ax.bar(c[sel], vals[sel], width=0.9, color="#D55E00", label=f"selected ({sel.sum()})")
        if v.threshold is not None:
            t = float(v.threshold[index])
            ax.axhline(t, color="#0072B2", lw=0.8, ls="--", label=f"threshold {t:.3g}")
        ax.set_xlim(-0.5, len(vals) - 0.5)
        top = max(float(vals.max()), 0.0)
        ax.set_ylim(top=top * 1.3 if top > 0 else 1.0)  # room for the legend
        ax.set_xlabel("channel")
        ax.set_ylabel("excitation (logit)" if on_logits else "SE vector $s_c$")
        note = " — fell back to the strongest channel" if bool(v.fallback[index]) else ""
        s = v.s[index].detach().float()
        spread = f"s in [{float(s.min()):.2f}, {float(s.max()):.2f}], std {float(s.std(unbiased=False)):.3f}"
        ax.set_title(f"SE vector, rule {v.rule!r}{note}\n{spread}", fontsize=8)
        ax.legend(frameon=False, loc="upper right", ncols=3)
    return figure_png(fig)


def render_ranking(
    rows, metric: str, higher_is_better: bool | None, size=(5.0, None), dpi: int = 100
) -> bytes:
    """Horizontal bars of a ranking (:class:`~squeezex.bench.RankRow` rows, best first) with their
    95 % intervals; reference maps grey. ``size`` in inches (height: from the number of
    rows when None); the PNG is ``size × dpi`` pixels (render at twice the displayed
    size and show it at half for a sharp chart on high-density screens)."""
    n = len(rows)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(size[0], size[1] or 0.22 * n + 0.8), layout="constrained")
        ax = fig.subplots()
        y = np.arange(n)
        vals = np.array([r.value for r in rows])
        lo = np.array([r.value - r.ci_low for r in rows])
        hi = np.array([r.ci_high - r.value for r in rows])
        colours = ["#0072B2" if r.kind == "method" else "#CCCCCC" for r in rows]
        ax.barh(y, vals, color=colours, xerr=np.vstack([lo, hi]), error_kw={"lw": 0.8})
        ax.set_yticks(y, [f"{r.rank}. {r.method}" for r in rows])
        ax.invert_yaxis()
        arrow = direction_text(higher_is_better, "arrow words")
        ax.set_xlabel(f"{metric} {arrow}".strip())
    return figure_png(fig, dpi)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of PNG bytes (read from the header)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not PNG bytes")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI, for an ``<img>`` inside an HTML widget."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
