"""Figures in one paper style: overlays and grids (matplotlib, no global state touched).

Figures are built on ``matplotlib.figure.Figure`` objects inside ``rc_context``, so
rcParams and pyplot's figure list are left as they were.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from .io import atomic_write_bytes

__all__ = [
    "STYLE",
    "ONE_COLUMN",
    "TWO_COLUMN",
    "OKABE_ITO",
    "LINE_COLOURS",
    "blend",
    "outline",
    "overlay",
    "explanation_grid",
    "heatmap_colorbar",
    "se_vector_figure",
    "feature_grid",
    "save_figure",
]

#: Figure widths in inches: one column and the full text width of a two-column paper.
ONE_COLUMN = 3.5
TWO_COLUMN = 7.1
#: Okabe & Ito's colour-blind-safe palette.
OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "bluish green": "#009E73",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "sky blue": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}
#: Line and marker colours, in order (Okabe-Ito without yellow, too pale on white).
LINE_COLOURS = tuple(v for k, v in OKABE_ITO.items() if k != "yellow")

#: The paper style: small sans-serif fonts (DejaVu Sans, shipped with matplotlib, so
#: every machine draws the same glyphs), thin lines, colour-blind-safe colours and maps.
STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "mathtext.fontset": "dejavusans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.0,
    "savefig.dpi": 150,
    "image.cmap": "inferno",
    "svg.hashsalt": "squeezex",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "axes.prop_cycle": matplotlib.cycler(color=list(LINE_COLOURS)),
}
HEATMAP_CMAP = "inferno"
MASK_COLOUR = "#56B4E9"  # Okabe-Ito sky blue


def _rgb(image: torch.Tensor) -> np.ndarray:
    """C×H×W (or H×W) in [0, 1] → H×W×3 float array (grey images repeated)."""
    img = image.detach().cpu().float().clamp(0, 1)
    if img.dim() == 2:
        img = img[None]
    if img.shape[0] == 1:
        img = img.expand(3, *img.shape[1:])
    return img[:3].permute(1, 2, 0).numpy()


def outline(mask: torch.Tensor) -> np.ndarray:
    """H×W bool: the pixels of ``mask`` (its parts united) that touch its outside."""
    m = mask.detach().cpu().reshape(-1, *mask.shape[-2:]).any(0).numpy()
    p = np.pad(m, 1)  # outside the image counts as outside the mask
    inner = m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


def blend(image, heatmap=None, mask=None, opacity: float = 0.55) -> np.ndarray:
    """The one overlay renderer: ``image`` (C×H×W in [0, 1]) with ``heatmap`` (H×W in
    [0, 1]) blended at ``opacity`` in :data:`HEATMAP_CMAP` and the outline of ``mask``
    in :data:`MASK_COLOUR`; an H×W×3 float array in [0, 1]. The widgets' tiles, their
    static pictures and the paper figures all draw with it."""
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    rgb = _rgb(image)
    if heatmap is not None:
        h = heatmap.detach().cpu().float().reshape(rgb.shape[:2]).clamp(0, 1).numpy()
        rgb = (1 - opacity) * rgb + opacity * matplotlib.colormaps[HEATMAP_CMAP](h)[..., :3]
    if mask is not None:
        rgb = rgb.copy()
        rgb[outline(mask)] = np.asarray(matplotlib.colors.to_rgb(MASK_COLOUR))
    return rgb


def overlay(ax, image, heatmap=None, mask=None, alpha: float = 0.55, point: bool = False) -> None:
    """Draw :func:`blend` of ``image``, ``heatmap`` and ``mask`` on ``ax``; with ``point``,
    mark the map's maximum with +."""
    ax.imshow(blend(image, heatmap, mask, alpha), interpolation="nearest")
    if heatmap is not None and point:
        h = heatmap.detach().cpu().float().reshape(heatmap.shape[-2:]).numpy()
        y, x = np.unravel_index(np.argmax(h), h.shape)
        ax.plot([x], [y], marker="+", color="white", markersize=6, mew=1.2)
    ax.set_xticks([])
    ax.set_yticks([])


def explanation_grid(
    images: torch.Tensor,
    maps: dict[str, torch.Tensor],
    masks: torch.Tensor | None = None,
    row_labels: list[str] | None = None,
    cell: float = 1.1,
    colorbar: bool = True,
) -> Figure:
    """Rows: samples; columns: the image, then each method's heatmap (mask outlined,
    the map's maximum marked with +), and with ``colorbar`` one colour bar for every
    map (:func:`heatmap_colorbar`)."""
    n = images.shape[0]
    cols = ["image", *maps]
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(cell * len(cols), cell * n + 0.3), layout="constrained")
        axes = fig.subplots(n, len(cols), squeeze=False)
        for i in range(n):
            m = masks[i] if masks is not None else None
            overlay(axes[i, 0], images[i], None, m)
            if row_labels is not None:
                axes[i, 0].set_ylabel(row_labels[i], fontsize=6)
            for j, name in enumerate(maps, start=1):
                overlay(axes[i, j], images[i], maps[name][i], m, point=True)
        for j, name in enumerate(cols):
            axes[0, j].set_title(name, fontsize=7)
    if colorbar and maps:
        heatmap_colorbar(fig, axes[:, 1:].ravel())
    return fig


def heatmap_colorbar(
    fig: Figure,
    axes,
    label: str = "relevance (normalised per map)",
    cmap=None,
    vmin: float = 0.0,
    vmax: float = 1.0,
):
    """One labelled colour bar beside ``axes`` (the heatmaps of ``fig``) for the colour
    map ``cmap`` (default :data:`HEATMAP_CMAP`) from ``vmin`` to ``vmax``; returns it."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    mappable = ScalarMappable(Normalize(vmin, vmax), cmap or HEATMAP_CMAP)
    with matplotlib.rc_context(STYLE):
        cb = fig.colorbar(mappable, ax=list(axes), shrink=0.6, aspect=25)
        cb.set_label(label, fontsize=6)
        cb.ax.tick_params(labelsize=5, width=0.4, length=2)
        cb.outline.set_linewidth(0.4)
    return cb


def se_vector_figure(s: torch.Tensor, thresholds: dict[str, float] | None = None) -> Figure:
    """Histogram of SE-vector entries (all samples × channels) with rule thresholds."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(3.3, 2.0), layout="constrained")
        ax = fig.subplots()
        ax.hist(s.detach().cpu().flatten().numpy(), bins=50, range=(0, 1), color="#0072B2")
        for (name, t), ls in zip((thresholds or {}).items(), ["--", ":", "-."], strict=False):
            ax.axvline(t, color="#D55E00", ls=ls, label=name)
        ax.set_xlabel("SE vector entry s_c")
        ax.set_ylabel("count")
        if thresholds:
            ax.legend(frameon=False)
    return fig


def feature_grid(interp, cell: float = 0.9, heat: bool = False) -> Figure:
    """VEBI's interpretation as a class × feature grid (rows: classes, largest weight first).

    Each cell is a feature's average visualisation: the signed backward signal, grey at
    0 (colour images: 0.5 + v/2 per channel; grey images: a diverging map), or with
    ``heat=True`` the average heatmap. Titles give ``layer:channel`` and the weight.
    """
    rows = len(interp.classes)
    cols = max(1, max(len(f) for f in interp.features))
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(cell * cols + 0.5, cell * rows + 0.3), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        for i, (label, feats) in enumerate(zip(interp.classes, interp.features, strict=True)):
            for j in range(cols):
                ax = axes[i, j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(feats):
                    ax.set_axis_off()
                    continue
                layer, channel, w = feats[j]
                if heat:
                    img = interp.heatmaps[i][j, 0].numpy()
                    ax.imshow(img, cmap=HEATMAP_CMAP, vmin=0, vmax=1)
                else:
                    v = interp.images[i][j].float()
                    v = v / v.abs().max().clamp_min(1e-12)
                    if v.shape[0] == 3:
                        ax.imshow((0.5 + 0.5 * v).clamp(0, 1).permute(1, 2, 0).numpy())
                    else:
                        ax.imshow(v[0].numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
                ax.set_title(f"{layer.rsplit('.', 1)[-1]}:{channel} ({w:.2g})", fontsize=5)
            axes[i, 0].set_ylabel(label, fontsize=6)
    return fig


def save_figure(fig: Figure, path, **kwargs) -> Path:
    """Save atomically, without timestamps or version stamps (PNG, PDF, SVG), so a figure
    built the same way gives the same bytes. Save each ``Figure`` to one format only: an
    earlier save in another format can move a constrained layout by a pixel."""
    import io

    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    buf = io.BytesIO()
    meta = {
        "png": {"Software": None},
        "svg": {"Creator": None, "Date": None},
    }.get(fmt, {"Creator": None, "Producer": None, "CreationDate": None})
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format=fmt, metadata=meta, **kwargs)
    return atomic_write_bytes(path, buf.getvalue())
