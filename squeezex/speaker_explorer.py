"""The audio-visual speaker explorer: one active-speaker model, one clip at a time.

:class:`SpeakerExplorer` shows a :class:`~squeezex.models.SpeakerNet`'s explanation of a
clip (:class:`~squeezex.datasets.SyntheticSpeakers`-like data): a frame slider, the frame
with its visual heatmap (the mouth outlined), the log-mel spectrogram with its audio
heatmap and the current frame marked, the fusion SE's modality importance (visual vs
audio, of the clip and of the current frame) and the per-frame speaking probability
against the frame labels. A static PNG stands in where no kernel runs (nbval, GitHub).

What it computes lives in plain functions, tested without a kernel:
:func:`load_clip`, :func:`clip_facts` (spectrogram, probabilities, modality importance:
one per clip), :func:`explain_clip` (adds one method's maps; both cached), and the
renderings :func:`render_frame`, :func:`render_spectrogram`, :func:`render_importance`,
:func:`render_curve` and :func:`speaker_figure` (deterministic PNG bytes / figures).

Example (in JupyterLab)::

    from squeezex.widgets import SpeakerExplorer
    SpeakerExplorer(model, SyntheticSpeakers(24, seed=0, split="test"))
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

import ipywidgets as W
import matplotlib
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import explore as X
from .explainers import explainer_info, list_explainers
from .explainers.speakers import fusion_importance, speaker_probabilities
from .models.se import SEBlock
from .models.speakers import SpeakerNet
from .viz import HEATMAP_CMAP, OKABE_ITO, STYLE, blend, overlay

__all__ = [
    "Clip",
    "ClipFacts",
    "ClipExplanation",
    "speaker_methods",
    "load_clip",
    "clip_facts",
    "explain_clip",
    "render_frame",
    "draw_spectrogram",
    "draw_importance",
    "draw_curve",
    "render_spectrogram",
    "render_importance",
    "render_curve",
    "speaker_figure",
    "SpeakerExplorer",
]

#: The explainer registry's input kind of the models explored here (``(video, audio)``
#: in, a visual and an audio map out): :attr:`squeezex.models.SpeakerNet.input_kind`.
INPUTS = SpeakerNet.input_kind
#: The current frame's marker (spectrogram band, curve line): Okabe-Ito sky blue.
MARKER = OKABE_ITO["sky blue"]
#: Visual and audio bars of the modality importance.
MODALITY_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["orange"])
LABEL_NAMES = ("not speaking", "speaking")
#: Width of the spectrogram and curve images (inches); their time axes sit at the same
#: place (AXES_RECT), so the two line up when stacked.
TIMELINE_WIDTH = 6.4
AXES_RECT = (0.085, 0.24, 0.70, 0.62)
#: Size of the modality-importance chart (inches).
IMPORTANCE_SIZE = (2.8, 2.4)


# -- data ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    """One clip of a speakers dataset (``frame_labels``: speaking per frame)."""

    index: int
    frames: torch.Tensor  #: T×1×H×W in [0, 1]
    wave: torch.Tensor  #: the 16 kHz waveform
    label: int  #: 1: the face speaks
    masks: torch.Tensor | None  #: T×H×W bool, the mouth per frame
    frame_labels: torch.Tensor  #: T long
    kind: str | None  #: "speaking", "silent", "dubbed", "still" (None if unknown)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class ClipFacts:
    """What does not depend on the method: one forward pass or two per clip."""

    spectrogram: torch.Tensor  #: n_mels×4T, the model's own log-mel input
    probs: torch.Tensor  #: T, the speaking probability per frame
    frame_importance: torch.Tensor | None  #: T×2 (visual, audio); None without fusion SE
    clip_importance: torch.Tensor | None  #: 2 (visual, audio)


@dataclass(frozen=True)
class ClipExplanation:
    """A clip, its facts and one method's maps (``visual`` T×H×W, ``audio`` n_mels×4T,
    both in [0, 1], one scale per clip)."""

    clip: Clip
    facts: ClipFacts
    method: str
    visual: torch.Tensor
    audio: torch.Tensor

    @property
    def n_frames(self) -> int:
        return self.clip.n_frames


def _check_model(model) -> SpeakerNet:
    if not isinstance(model, SpeakerNet):
        raise ValueError(
            "the speaker explorer explains a squeezex.models.SpeakerNet ((video N×T×1×H×W, "
            f"audio N×samples) → per-frame logits N×T), got {type(model).__name__}"
        )
    return model


def _has_se(model: SpeakerNet) -> bool:
    return isinstance(model.visual_se, SEBlock) and isinstance(model.fusion_se, SEBlock)


def speaker_methods(model: SpeakerNet) -> list[str]:
    """The methods of the explainer registry's :data:`INPUTS` kind that can explain
    ``model``, in registry order: one that needs SE blocks only when the model has them."""
    _check_model(model)
    return [
        m
        for m in list_explainers(INPUTS)
        if not explainer_info(m, INPUTS).needs_se or _has_se(model)
    ]


def _check_method(model: SpeakerNet, method: str) -> None:
    usable = speaker_methods(model)
    if method not in list_explainers(INPUTS):
        raise ValueError(f"unknown method {method!r}: choose one of {usable}")
    if method not in usable:
        raise ValueError(
            f"method {method!r} needs a SpeakerNet built with se=True; this model has no SE "
            f"blocks: choose one of {usable}"
        )


def _length(data) -> int:
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise ValueError(
            "data must be a map-style speakers dataset (items (frames T×1×H×W, waveform, "
            f"label, mouth masks, speech), e.g. SyntheticSpeakers), got {type(data).__name__}"
        )
    n = len(data)
    if n == 0:
        raise ValueError("the dataset is empty")
    return n


def load_clip(data, index: int) -> Clip:
    """Clip ``index`` of ``data`` (items ``(frames T×1×H×W, waveform, label[, mouth masks
    T×H×W, speech T])``; per-frame labels from ``data.frame_labels`` when it has them,
    else the label where there is speech)."""
    n = _length(data)
    try:
        i = operator.index(index)
    except TypeError:
        raise ValueError(f"the clip index must be an integer, got {index!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"clip index {i} is out of range: the dataset has {n} clips (0–{n - 1})")
    item = data[i]
    if not isinstance(item, tuple | list) or len(item) < 3:
        raise ValueError(
            "speaker dataset items must be (frames T×1×H×W, waveform, label[, mouth masks, "
            f"speech]), got {type(item).__name__}"
        )
    frames, wave, label = torch.as_tensor(item[0]).float(), torch.as_tensor(item[1]), int(item[2])
    if frames.dim() != 4 or frames.shape[1] != 1:
        raise ValueError(f"clip frames must be T×1×H×W (grey), got {tuple(frames.shape)}")
    masks = item[3] if len(item) > 3 and isinstance(item[3], torch.Tensor) else None
    speech = item[4] if len(item) > 4 and isinstance(item[4], torch.Tensor) else None
    if hasattr(data, "frame_labels"):
        fl = torch.as_tensor(data.frame_labels[i]).long()
    elif speech is not None:
        fl = (speech.bool() & bool(label)).long()
    else:
        fl = torch.full((frames.shape[0],), label, dtype=torch.long)
    kinds = getattr(data, "kinds", None)
    kind = str(kinds[i]) if kinds is not None else None
    return Clip(i, frames, wave.float(), label, masks, fl, kind)


def _batch(model: SpeakerNet, clip: Clip, device) -> tuple[torch.Tensor, torch.Tensor]:
    video, audio = clip.frames[None].to(device), clip.wave[None].to(device)
    model.check(video, audio)
    return video, audio


@torch.no_grad()
def clip_facts(model: SpeakerNet, clip: Clip, device: str | torch.device = "cpu") -> ClipFacts:
    """The clip's log-mel spectrogram (the model's front), per-frame speaking
    probabilities (:func:`speaker_probabilities`) and fusion-SE modality importance
    (:func:`fusion_importance`; None for a model without SE)."""
    _check_model(model)
    video, audio = _batch(model, clip, device)
    spec = model.logmel(audio[:, : model.samples])[0, 0].cpu()
    probs = speaker_probabilities(model, video, audio)[0].cpu()
    frame = whole = None
    if _has_se(model):
        imp = fusion_importance(model, (video, audio))
        frame, whole = imp["frame"][0].cpu(), imp["clip"][0].cpu()
    return ClipFacts(spec, probs, frame, whole)


def _cached(cache: X.HeatmapCache | None, key, compute: Callable, stats: dict | None):
    got = cache.get(key) if cache is not None else None
    if got is None:
        got = compute()
        if stats is not None:
            stats[key[0]] = stats.get(key[0], 0) + 1
        if cache is not None:
            cache.put(key, got)
    return got


def explain_clip(
    model: SpeakerNet,
    data,
    index: int,
    method: str = "se",
    *,
    explainers: dict | None = None,
    cache: X.HeatmapCache | None = None,
    device: str | torch.device = "cpu",
    stats: dict | None = None,
) -> ClipExplanation:
    """Clip ``index`` explained by ``method`` (a method of :func:`speaker_methods`).

    ``explainers`` (name → explainer) are reused when given; ``cache`` keeps the facts
    per clip (key ``("facts", index)``) and the maps per (clip, method) (key ``("maps",
    index, method)``), so switching method never reruns the probabilities and moving
    through frames reruns nothing. ``stats`` (when given) counts what was computed
    (``"facts"``, ``"maps"``).
    """
    _check_model(model)
    _check_method(model, method)
    clip = load_clip(data, index)
    facts = _cached(cache, ("facts", clip.index), lambda: clip_facts(model, clip, device), stats)

    def maps():
        ex = (explainers or {}).get(method) or explainer_info(method, INPUTS).build(model)
        v, a = ex.attribute(_batch(model, clip, device))
        return v[0, 0].detach().cpu(), a[0, 0].detach().cpu()

    visual, audio = _cached(cache, ("maps", clip.index, method), maps, stats)
    return ClipExplanation(clip, facts, method, visual, audio)


# -- renderings ---------------------------------------------------------------------------------
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
    ``mouth``), enlarged ``scale``× (:func:`squeezex.explore.render_overlay`)."""
    t = _frame(exp, t)
    mask = exp.clip.masks[t] if mouth and exp.clip.masks is not None else None
    return X.render_overlay(exp.clip.frames[t], exp.visual[t], mask, opacity, scale)


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
    return X.figure_png(fig)


def render_curve(exp: ClipExplanation, t: int) -> bytes:
    """PNG of :func:`draw_curve` (its axes at :data:`AXES_RECT`, the legend beside them)."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(TIMELINE_WIDTH, 2.2))
        ax = fig.add_axes(AXES_RECT)
        draw_curve(ax, exp, t, legend="upper left")
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    return X.figure_png(fig)


def render_importance(exp: ClipExplanation, t: int) -> bytes:
    """PNG of :func:`draw_importance`."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=IMPORTANCE_SIZE, layout="constrained")
        draw_importance(fig.subplots(), exp, t)
    return X.figure_png(fig)


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
        fig.suptitle(_headline(exp), fontsize=9)
    return fig


def _headline(exp: ClipExplanation) -> str:
    clip = exp.clip
    kind = f"{clip.kind}, " if clip.kind else ""
    return (
        f"clip {clip.index} ({kind}label {LABEL_NAMES[clip.label]}); method {exp.method}; "
        f"mean P(speaking) {float(exp.facts.probs.mean()):.2f}"
    )


# -- the widget ---------------------------------------------------------------------------------
#: Width of the widget's left column (frame, modality importance), so that the spectrogram
#: and the curve beside it start at the same place and their time axes line up.
LEFT_COLUMN = "300px"


def _column(*children: W.Widget) -> W.VBox:
    return W.VBox(list(children), layout=W.Layout(width=LEFT_COLUMN, margin="0 8px 4px 0"))


class SpeakerExplorer(W.VBox):
    """Explore an audio-visual active speaker detector's explanations, one clip at a time.

    The SE paper's behavioural-biometrics setting (Roxo et al., arXiv 2412.05134). Controls:
    the clip (its index, kind and label), the method (the explainer registry's
    audio-visual methods, :func:`speaker_methods`), the frame
    (a slider and a play button), the overlay's opacity and the mouth outline. Shown: the
    frame with its heatmap, the spectrogram with its heatmap and the frame marked, the
    fusion SE's modality importance (clip and frame; a note instead for a model without
    SE) and the per-frame speaking probability against the labels.

    Args:
        model: a :class:`~squeezex.models.SpeakerNet` (its training flags are left alone).
        data: a speakers dataset (:class:`~squeezex.datasets.SyntheticSpeakers` or items
            ``(frames, waveform, label, mouth masks, speech)``).
        methods: the method picker's names (default: every method the model supports).
        method: the method shown first (default ``"se"`` when offered).
        index, frame: the clip and frame shown first.
        opacity: the heatmaps' opacity.
        scale: display enlargement of the frame (nearest neighbour).
        device: where the model runs.

    Attributes:
        cache: facts per clip and maps per (clip, method).
        stats: ``"maps"`` / ``"facts"`` computed and images ``"drawn"`` per view, so a test
            (or a curious user) sees what a control change really redid.

    Example:
        >>> SpeakerExplorer(model, SyntheticSpeakers(24, split="test"))  # doctest: +SKIP
    """

    #: What can be redrawn, in drawing order (the info line last: it shows the frame drawn).
    VIEWS = ("frame", "spectrogram", "importance", "curve", "info")

    def __init__(
        self,
        model: SpeakerNet,
        data,
        *,
        methods: Sequence[str] | None = None,
        method: str | None = None,
        index: int = 0,
        frame: int = 0,
        opacity: float = 0.55,
        scale: int = 4,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        self.add_class("squeezex-speaker-explorer")
        _check_model(model)
        self.n = _length(data)
        self.methods = list(methods) if methods is not None else speaker_methods(model)
        if not self.methods:
            raise ValueError(f"methods is empty: choose from {speaker_methods(model)}")
        for m in self.methods:
            _check_method(model, m)
        if method is None:
            method = "se" if "se" in self.methods else self.methods[0]
        if method not in self.methods:
            raise ValueError(f"method {method!r} is not among methods {self.methods}")
        self.model = model.to(device)  # its training flags are the user's: never changed
        self.data, self.device, self.scale = data, torch.device(device), scale
        self.explainers = {m: explainer_info(m, INPUTS).build(self.model) for m in self.methods}
        self.cache = X.HeatmapCache(maxsize=64)
        self.stats = {"maps": 0, "facts": 0, "drawn": dict.fromkeys(self.VIEWS, 0)}
        self.has_importance = _has_se(model)
        first = load_clip(data, index)  # checks the index
        self._build_controls(method, first, frame, opacity)
        self._observe()
        self._load()
        self._draw(*self.VIEWS)

    def _clip_options(self) -> list[tuple[str, int]]:
        labels, kinds = getattr(self.data, "labels", None), getattr(self.data, "kinds", None)
        out = []
        for i in range(self.n):
            label = int(labels[i]) if labels is not None else int(self.data[i][2])
            kind = f"{kinds[i]}, " if kinds is not None else ""
            out.append((f"{i}: {kind}{LABEL_NAMES[label]}", i))
        return out

    def _build_controls(self, method: str, first: Clip, frame: int, opacity: float) -> None:
        last = first.n_frames - 1
        if not 0 <= frame <= last:
            raise ValueError(f"frame {frame} is out of range: the clip has {last + 1} (0–{last})")
        self.clip = W.Dropdown(options=self._clip_options(), value=first.index, description="clip")
        self.method = W.Dropdown(options=self.methods, value=method, description="method")
        self.frame = W.IntSlider(frame, 0, last, description="frame")
        self.play = W.Play(value=frame, min=0, max=last, interval=600)
        W.jslink((self.play, "value"), (self.frame, "value"))
        self.opacity = W.FloatSlider(opacity, min=0.0, max=1.0, step=0.05, description="opacity")
        self.mouth = W.Checkbox(True, description="mouth outline", indent=False)
        self.info = W.HTML()
        self.frame_title = W.HTML()
        # natural sizes (pixels at figure_png's 100 dpi), so the browser never stretches them
        side = int(first.frames.shape[-1]) * self.scale
        self.frame_image = W.Image(format="png", width=str(side))
        self.spectrogram = W.Image(format="png", width=str(round(TIMELINE_WIDTH * 100)))
        self.curve = W.Image(format="png", width=str(round(TIMELINE_WIDTH * 100)))
        self.importance = W.Image(format="png", width=str(round(IMPORTANCE_SIZE[0] * 100)))
        for view in ("frame_image", "spectrogram", "curve", "importance", "info"):  # selectors
            getattr(self, view).add_class(f"squeezex-{view.replace('_image', '')}")
        note = W.HTML("<i>no modality importance: the model has no SE blocks (se=False)</i>")
        imp = self.importance if self.has_importance else note
        self.children = [
            W.HBox(
                [self.clip, self.method, self.opacity, self.mouth],
                layout=W.Layout(flex_flow="row wrap"),
            ),
            W.HBox([self.play, self.frame]),
            self.info,
            W.HBox([_column(self.frame_title, self.frame_image), self.spectrogram]),
            W.HBox([_column(imp), self.curve]),
        ]

    def _observe(self) -> None:
        self.clip.observe(self._on_clip, "value")
        self.method.observe(self._on_method, "value")
        self.frame.observe(self._on_frame, "value")
        self.opacity.observe(self._on_look, "value")
        self.mouth.observe(self._on_mouth, "value")

    # -- state ------------------------------------------------------------------------------
    @property
    def explanation(self) -> ClipExplanation:
        """The clip and method shown, with their maps."""
        return self._exp

    def _load(self) -> None:
        self._exp = explain_clip(
            self.model,
            self.data,
            int(self.clip.value),
            self.method.value,
            explainers=self.explainers,
            cache=self.cache,
            device=self.device,
            stats=self.stats,
        )

    # -- drawing ----------------------------------------------------------------------------
    def _draw(self, *views: str) -> None:
        exp, t, o = self._exp, int(self.frame.value), float(self.opacity.value)
        for view in views:
            if view == "frame":
                self.frame_title.value = (
                    f"<b>frame {t}</b>: {escape(exp.method)} visual heatmap"
                    + (
                        ", mouth outlined"
                        if self.mouth.value and exp.clip.masks is not None
                        else ""
                    )
                )
                self.frame_image.value = render_frame(exp, t, o, bool(self.mouth.value), self.scale)
            elif view == "spectrogram":
                self.spectrogram.value = render_spectrogram(exp, t, o)
            elif view == "importance":
                if not self.has_importance:
                    continue
                self.importance.value = render_importance(exp, t)
            elif view == "curve":
                self.curve.value = render_curve(exp, t)
            else:
                self.info.value = self._info_html(t)
            self.stats["drawn"][view] += 1

    def _info_html(self, t: int) -> str:
        exp = self._exp
        p, y = float(exp.facts.probs[t]), int(exp.clip.frame_labels[t])
        imp = ""
        if exp.facts.frame_importance is not None:
            v, a = (float(x) for x in exp.facts.frame_importance[t])
            imp = f"; fusion SE visual {v:.3f}, audio {a:.3f}"
        return (
            f"{escape(_headline(exp))}<br>frame <b>{t}</b>: label "
            f"<b>{LABEL_NAMES[y]}</b>, P(speaking) <b>{p:.2f}</b>{imp}"
        )

    # -- events -----------------------------------------------------------------------------
    def _on_clip(self, _change=None) -> None:
        self._load()
        last = self._exp.n_frames - 1
        if self.frame.max != last:
            self.frame.value = min(int(self.frame.value), last)
            self.frame.max = self.play.max = last
        self._draw(*self.VIEWS)

    def _on_method(self, _change=None) -> None:
        self._load()  # the facts (probabilities, importance) stay cached per clip
        self._draw("frame", "spectrogram", "info")

    def _on_frame(self, _change=None) -> None:
        self._draw(*self.VIEWS)  # cached maps re-blended, markers moved; nothing recomputed

    def _on_look(self, _change=None) -> None:
        self._draw("frame", "spectrogram")

    def _on_mouth(self, _change=None) -> None:
        self._draw("frame")

    # -- static fallback --------------------------------------------------------------------
    def figure(self) -> Figure:
        """The current view as one matplotlib figure (:func:`speaker_figure`)."""
        return speaker_figure(
            self._exp, int(self.frame.value), float(self.opacity.value), bool(self.mouth.value)
        )

    def to_png(self) -> bytes:
        return X.figure_png(self.figure())

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["image/png"] = self.to_png()
        return bundle
