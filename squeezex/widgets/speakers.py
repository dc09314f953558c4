"""The audio-visual speaker explorer: one active-speaker model, one clip at a time.

:class:`SpeakerExplorer` shows a :class:`~squeezex.models.SpeakerNet`'s explanation of a
clip (:class:`~squeezex.datasets.SyntheticSpeakers`-like data): a frame slider, the frame
with its visual heatmap (the mouth outlined), the log-mel spectrogram with its audio
heatmap and the current frame marked, the fusion SE's modality importance (visual vs
audio, of the clip and of the current frame) and the per-frame speaking probability
against the frame labels. A static PNG stands in where no kernel runs (nbval, GitHub).

What it computes and draws lives beside it in plain functions, tested without a kernel:
:mod:`.speaker_logic` (clips, their facts and maps, cached; the methods are the explainer
registry's audio-visual ones) and :mod:`.speaker_render` (deterministic PNG bytes and
figures). This module only wires the controls to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import ipywidgets as W
import torch
from matplotlib.figure import Figure

from ..models.speakers import SpeakerNet
from ..options import Float, Int, check_options
from .logic import HeatmapCache
from .render import figure_png
from .speaker_logic import (
    LABEL_NAMES,
    Clip,
    ClipExplanation,
    check_method,
    check_model,
    explain_clip,
    has_se,
    headline,
    load_clip,
    n_clips,
    speaker_explainers,
    speaker_methods,
)
from .speaker_render import (
    IMPORTANCE_SIZE,
    TIMELINE_WIDTH,
    render_curve,
    render_frame,
    render_importance,
    render_spectrogram,
    speaker_figure,
)

__all__ = ["SpeakerExplorer", "LEFT_COLUMN"]

#: Width of the widget's left column (frame, modality importance), so that the spectrogram
#: and the curve beside it start at the same place and their time axes line up.
LEFT_COLUMN = "300px"


def _column(*children: W.Widget) -> W.VBox:
    return W.VBox(list(children), layout=W.Layout(width=LEFT_COLUMN, margin="0 8px 4px 0"))


class SpeakerExplorer(W.VBox):
    """Explore an audio-visual active speaker detector's explanations, one clip at a time.

    The SE paper's behavioural-biometrics setting (Roxo et al., arXiv 2412.05134). Controls:
    the clip (its index, kind and label), the method (the explainer registry's
    audio-visual methods, :func:`.speaker_logic.speaker_methods`), the frame
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
        >>> from squeezex.datasets import SyntheticSpeakers
        >>> model = SpeakerNet(frames=8, size=32).eval()
        >>> w = SpeakerExplorer(model, SyntheticSpeakers(2, frames=8, size=32, split="test"))
        >>> w.method.value, list(w.method.options), w.frame.max
        ('se', ['se', 'gradcam', 'random'], 7)
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
        index, frame, opacity, scale = check_options(
            {"index": Int(0), "frame": Int(0), "opacity": Float(0, 1), "scale": Int(1)},
            index=index, frame=frame, opacity=opacity, scale=scale,
        ).values()  # fmt: skip
        super().__init__()
        self.add_class("squeezex-speaker-explorer")
        check_model(model)
        self.n = n_clips(data)
        self.methods = list(methods) if methods is not None else speaker_methods(model)
        if not self.methods:
            raise ValueError(f"methods is empty: choose from {speaker_methods(model)}")
        for m in self.methods:
            check_method(model, m)
        if method is None:
            method = "se" if "se" in self.methods else self.methods[0]
        if method not in self.methods:
            raise ValueError(f"method {method!r} is not among methods {self.methods}")
        self.model = model.to(device)  # its training flags are the user's: never changed
        self.data, self.device, self.scale = data, torch.device(device), scale
        self.explainers = speaker_explainers(self.model, self.methods)
        self.cache = HeatmapCache(maxsize=64)
        self.stats = {"maps": 0, "facts": 0, "drawn": dict.fromkeys(self.VIEWS, 0)}
        self.has_importance = has_se(model)
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
            f"{escape(headline(exp))}<br>frame <b>{t}</b>: label "
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
        return figure_png(self.figure())

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["image/png"] = self.to_png()
        return bundle
