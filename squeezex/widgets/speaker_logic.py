"""What the speaker explorer computes, as plain functions (tested without a kernel).

:class:`~squeezex.widgets.SpeakerExplorer` wires its controls to these: a clip of a
speakers dataset (:func:`load_clip`), what does not depend on the method (the
spectrogram, the per-frame probabilities and the modality importance: :func:`clip_facts`,
once per clip) and one method's maps (:func:`explain_clip`, both cached, so that moving
through frames recomputes nothing). The methods are the explainer registry's
audio-visual ones (:func:`speaker_methods`). The renderings are in :mod:`.speaker_render`.

Example:
    >>> from squeezex.datasets import SyntheticSpeakers
    >>> model = SpeakerNet(frames=8, size=32).eval()
    >>> data = SyntheticSpeakers(2, frames=8, size=32, split="test")
    >>> exp = explain_clip(model, data, 1, "se")
    >>> exp.n_frames, tuple(exp.visual.shape), tuple(exp.facts.probs.shape)
    (8, (8, 32, 32), (8,))
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..explainers import explainer_info, list_explainers
from ..explainers.speakers import fusion_importance, speaker_probabilities
from ..models.se import SEBlock
from ..models.speakers import SpeakerNet
from .logic import HeatmapCache

__all__ = [
    "INPUTS",
    "LABEL_NAMES",
    "Clip",
    "ClipFacts",
    "ClipExplanation",
    "check_model",
    "has_se",
    "speaker_methods",
    "check_method",
    "speaker_explainers",
    "n_clips",
    "load_clip",
    "clip_facts",
    "explain_clip",
    "headline",
]

#: The explainer registry's input kind of the models explored here (``(video, audio)``
#: in, a visual and an audio map out): :attr:`squeezex.models.SpeakerNet.input_kind`.
INPUTS = SpeakerNet.input_kind
#: The two labels of a clip and of a frame.
LABEL_NAMES = ("not speaking", "speaking")


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


def check_model(model) -> SpeakerNet:
    """``model`` itself when it is a :class:`~squeezex.models.SpeakerNet`; a
    ``ValueError`` saying what the speaker explorer explains otherwise."""
    if not isinstance(model, SpeakerNet):
        raise ValueError(
            "the speaker explorer explains a squeezex.models.SpeakerNet ((video N×T×1×H×W, "
            f"audio N×samples) → per-frame logits N×T), got {type(model).__name__}"
        )
    return model


def has_se(model: SpeakerNet) -> bool:
    """Whether ``model`` has its SE blocks (the SE method and the modality importance
    need them)."""
    return isinstance(model.visual_se, SEBlock) and isinstance(model.fusion_se, SEBlock)


def speaker_methods(model: SpeakerNet) -> list[str]:
    """The methods of the explainer registry's :data:`INPUTS` kind that can explain
    ``model``, in registry order: one that needs SE blocks only when the model has them.

    Example:
        >>> speaker_methods(SpeakerNet(se=False, frames=8, size=32))
        ['gradcam', 'random']
    """
    check_model(model)
    return [
        m
        for m in list_explainers(INPUTS)
        if not explainer_info(m, INPUTS).needs_se or has_se(model)
    ]


def check_method(model: SpeakerNet, method: str) -> None:
    """A ``ValueError`` naming the usable methods when ``method`` is not a registered
    audio-visual method or needs SE blocks ``model`` lacks."""
    usable = speaker_methods(model)
    if method not in list_explainers(INPUTS):
        raise ValueError(f"unknown method {method!r}: choose one of {usable}")
    if method not in usable:
        raise ValueError(
            f"method {method!r} needs a SpeakerNet built with se=True; this model has no SE "
            f"blocks: choose one of {usable}"
        )


def speaker_explainers(model: SpeakerNet, methods: Sequence[str]) -> dict:
    """One explainer of ``model`` per method name, built by the explainer registry
    (:func:`squeezex.explainers.explainer_info` of the :data:`INPUTS` kind)."""
    return {m: explainer_info(m, INPUTS).build(model) for m in methods}


def n_clips(data) -> int:
    """The number of clips of ``data``; a ``ValueError`` when it is not a map-style
    dataset or is empty."""
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
    n = n_clips(data)
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
    check_model(model)
    video, audio = _batch(model, clip, device)
    spec = model.logmel(audio[:, : model.samples])[0, 0].cpu()
    probs = speaker_probabilities(model, video, audio)[0].cpu()
    frame = whole = None
    if has_se(model):
        imp = fusion_importance(model, (video, audio))
        frame, whole = imp["frame"][0].cpu(), imp["clip"][0].cpu()
    return ClipFacts(spec, probs, frame, whole)


def _cached(cache: HeatmapCache | None, key, compute: Callable, stats: dict | None):
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
    cache: HeatmapCache | None = None,
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
    check_model(model)
    check_method(model, method)
    clip = load_clip(data, index)
    facts = _cached(cache, ("facts", clip.index), lambda: clip_facts(model, clip, device), stats)

    def maps():
        ex = (explainers or {}).get(method) or explainer_info(method, INPUTS).build(model)
        v, a = ex.attribute(_batch(model, clip, device))
        return v[0, 0].detach().cpu(), a[0, 0].detach().cpu()

    visual, audio = _cached(cache, ("maps", clip.index, method), maps, stats)
    return ClipExplanation(clip, facts, method, visual, audio)


def headline(exp: ClipExplanation) -> str:
    """One line naming the clip (index, kind, label), the method and the clip's mean
    speaking probability: the static figure's title and the widget's info line."""
    clip = exp.clip
    kind = f"{clip.kind}, " if clip.kind else ""
    return (
        f"clip {clip.index} ({kind}label {LABEL_NAMES[clip.label]}); method {exp.method}; "
        f"mean P(speaking) {float(exp.facts.probs.mean()):.2f}"
    )
