"""The speaker explorer's renderings, as plain functions (tested without a kernel).

The frame with its visual heatmap (:func:`render_frame`), the log-mel spectrogram with its
audio heatmap and the current frame framed (:func:`draw_spectrogram`), the fusion SE's
modality importance (:func:`draw_importance`) and the per-frame speaking probability
against the labels (:func:`draw_curve`), each as PNG bytes (``render_*``) or drawn on a
matplotlib axes (``draw_*``), and the whole view as one figure (:func:`speaker_figure`,
the widget's static picture). Deterministic: the same inputs give the same bytes.

Example:
    >>> from squeezex.datasets import SyntheticSpeakers
    >>> from squeezex.models import SpeakerNet
    >>> from squeezex.widgets.render import png_size
    >>> from squeezex.widgets.speaker_logic import explain_clip
    >>> model = SpeakerNet(frames=8, size=32).eval()
    >>> data = SyntheticSpeakers(2, frames=8, size=32, split="test")
    >>> exp = explain_clip(model, data, 0, "random")
    >>> png_size(render_frame(exp, 2, scale=2))
    (64, 64)
"""

from __future__ import annotations

import operator

import matplotlib
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..viz import HEATMAP_CMAP, OKABE_ITO, STYLE, blend, overlay
from .render import figure_png, render_overlay
from .speaker_logic import LABEL_NAMES, ClipExplanation, headline

__all__ = [
    "MARKER",
    "MODALITY_COLOURS",
    "TIMELINE_WIDTH",
    "AXES_RECT",
    "IMPORTANCE_SIZE",
    "render_frame",
    "draw_spectrogram",
    "draw_importance",
    "draw_curve",
    "render_spectrogram",
    "render_importance",
    "render_curve",
    "speaker_figure",
]

#: The current frame's marker (spectrogram band, curve line): Okabe-Ito sky blue.
MARKER = OKABE_ITO["sky blue"]
#: Visual and audio bars of the modality importance.
MODALITY_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["orange"])
#: Width of the spectrogram and curve images (inches); their time axes sit at the same
#: place (AXES_RECT), so the two line up when stacked.
TIMELINE_WIDTH = 6.4
AXES_RECT = (0.085, 0.24, 0.70, 0.62)
#: Size of the modality-importance chart (inches).
IMPORTANCE_SIZE = (2.8, 2.4)


def _frame(exp: ClipExplanation, t: int) -> int:
    t = operator.index(t)
    if not 0 <= t < exp.n_frames:
        raise ValueError(
            f"frame {t} is out of range: the clip has {exp.n_frames} (0–{exp.n_frames - 1})"
        )
    return t


def render_frame(
    exp: ClipExplanation, t: int, opacity: float = 0.55, mouth: bool = True, scale: int = 4
) -> bytes:
    """PNG of frame ``t`` with its visual heatmap at ``opacity`` (the mouth outlined when
    ``mouth``), enlarged ``scale`` times (:func:`.render.render_overlay`)."""
    t = _frame(exp, t)
    mask = exp.clip.masks[t] if mouth and exp.clip.masks is not None else None
    return render_overlay(exp.clip.frames[t], exp.visual[t], mask, opacity, scale)


def _spectrogram_rgb(spec: torch.Tensor, heat: torch.Tensor, opacity: float) -> np.ndarray:
    s = spec.float()
    s = (s - s.min()) / (s.max() - s.min()).clamp(min=1e-12)  # grey: min-max over the clip
    return blend(s[None], heat, None, opacity)


def draw_spectrogram(ax, exp: ClipExplanation, t: int, opacity: float = 0.55) -> ScalarMappable:
    """The log-mel spectrogram (grey) with the audio heatmap blended at ``opacity`` and
    frame ``t``'s four audio columns framed (a rectangle with gid ``"frame-marker"``).
    The x axis counts video frames; returns the heatmap's colour scale (for a colour bar)."""
    t = _frame(exp, t)
    n_mels, T = exp.facts.spectrogram.shape[0], exp.n_frames
    rgb = _spectrogram_rgb(exp.facts.spectrogram, exp.audio, opacity)
    extent = (-0.5, T - 0.5, -0.5, n_mels - 0.5)
    ax.imshow(rgb, origin="lower", aspect="auto", interpolation="nearest", extent=extent)
    ax.add_patch(
        Rectangle(
            (t - 0.5, -0.5),
            1.0,
            n_mels,
            fill=False,
            ec=MARKER,
            lw=2.0,
            gid="frame-marker",
            clip_on=False,
        )
    )
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(-0.5, n_mels - 0.5)
    ax.set_xlabel("video frame (4 audio frames each)")
    ax.set_ylabel("mel band")
    ax.set_title(
        f"log-mel spectrogram, {exp.method} audio heatmap (opacity {opacity:.2f}); frame {t} framed"
    )
    return ScalarMappable(Normalize(0, 1), HEATMAP_CMAP)


def draw_importance(ax, exp: ClipExplanation, t: int) -> None:
    """Bars of the fusion SE's mean excitation over the visual and the audio entries, for
    the clip and for frame ``t`` (values written on the bars)."""
    t = _frame(exp, t)
    if exp.facts.frame_importance is None:
        raise ValueError("no modality importance: the model was built with se=False")
    groups = [("clip", exp.facts.clip_importance), (f"frame {t}", exp.facts.frame_importance[t])]
    x = np.arange(len(groups))
    for k, (name, colour) in enumerate(zip(("visual", "audio"), MODALITY_COLOURS, strict=True)):
        vals = [float(g[1][k]) for g in groups]
        bars = ax.bar(x + (k - 0.5) * 0.38, vals, 0.36, color=colour, label=name, gid=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, [g[0] for g in groups])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("mean fusion-SE $s$")
    ax.set_title("modality importance (fusion SE)")
    ax.legend(frameon=False, loc="upper center", ncols=2)


def draw_curve(ax, exp: ClipExplanation, t: int, legend: str = "upper right") -> None:
    """The per-frame speaking probability (line with gid ``"probability"``) against the
    frame labels (shaded, gid ``"label"``), the 0.5 threshold and frame ``t`` marked (a
    vertical line with gid ``"frame-marker"``)."""
    t = _frame(exp, t)
    p, y = exp.facts.probs.numpy(), exp.clip.frame_labels.numpy()
    frames = np.arange(exp.n_frames)
    ax.fill_between(
        frames, 0, y, step="mid", color="#DDDDDD", lw=0, gid="label", label="label: speaking"
    )
    ax.axhline(0.5, color="#999999", lw=0.6, ls=":")
    ax.plot(
        frames, p, color=OKABE_ITO["blue"], marker="o", ms=3, gid="probability", label="P(speaking)"
    )
    ax.axvline(t, color=MARKER, lw=2.0, gid="frame-marker")
    ax.plot([t], [p[t]], "o", ms=6, mfc="none", mec=OKABE_ITO["vermillion"], mew=1.5)
    ax.set_xlim(-0.5, exp.n_frames - 0.5)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("video frame")
    ax.set_ylabel("probability")
    ax.set_title(f"prediction per frame; frame {t}: P = {p[t]:.2f}, label {LABEL_NAMES[y[t]]}")
    ax.legend(frameon=False, loc=legend, fontsize=7)


def render_spectrogram(exp: ClipExplanation, t: int, opacity: float = 0.55) -> bytes:
    """PNG of :func:`draw_spectrogram` with a colour bar (its axes at :data:`AXES_RECT`)."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(TIMELINE_WIDTH, 2.4))
        ax = fig.add_axes(AXES_RECT)
        scale = draw_spectrogram(ax, exp, t, opacity)
        left, b, w, h = AXES_RECT
        fig.colorbar(scale, cax=fig.add_axes((left + w + 0.015, b, 0.018, h)), label="heatmap")
    return figure_png(fig)


def render_curve(exp: ClipExplanation, t: int) -> bytes:
    """PNG of :func:`draw_curve` (its axes at :data:`AXES_RECT`, the legend beside them)."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(TIMELINE_WIDTH, 2.2))
        ax = fig.add_axes(AXES_RECT)
        draw_curve(ax, exp, t, legend="upper left")
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    return figure_png(fig)


def render_importance(exp: ClipExplanation, t: int) -> bytes:
    """PNG of :func:`draw_importance`."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=IMPORTANCE_SIZE, layout="constrained")
        draw_importance(fig.subplots(), exp, t)
    return figure_png(fig)


def speaker_figure(
    exp: ClipExplanation, t: int, opacity: float = 0.55, mouth: bool = True
) -> Figure:
    """The whole view as one figure (the widgets' static picture): frame ``t`` with its
    heatmap and the modality importance on the left, the spectrogram and the curve on
    the right (time axes aligned), one colour bar for both heatmaps."""
    t = _frame(exp, t)
    clip = exp.clip
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(8.4, 5.0), layout="constrained")
        gs = fig.add_gridspec(2, 2, width_ratios=(1, 2.3))
        ax_frame, ax_spec = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
        ax_imp, ax_curve = fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[1, 1], sharex=ax_spec)
        mask = clip.masks[t] if mouth and clip.masks is not None else None
        overlay(ax_frame, clip.frames[t], exp.visual[t], mask, alpha=opacity)
        ax_frame.set_title(
            f"frame {t}, {exp.method} visual heatmap"
            + ("\n(mouth outlined)" if mask is not None else "")
        )
        scale = draw_spectrogram(ax_spec, exp, t, opacity)
        fig.colorbar(scale, ax=[ax_spec, ax_curve], label="heatmap (both maps)", shrink=0.6)
        draw_curve(ax_curve, exp, t)
        if exp.facts.frame_importance is not None:
            draw_importance(ax_imp, exp, t)
        else:
            ax_imp.set_axis_off()
            ax_imp.text(
                0.5,
                0.5,
                "no modality importance:\nthe model has no SE (se=False)",
                ha="center",
                va="center",
                transform=ax_imp.transAxes,
            )
        fig.suptitle(headline(exp), fontsize=9)
    return fig
