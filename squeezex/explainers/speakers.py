"""Explaining an audio-visual active speaker detector: per-frame and spectrogram heatmaps,
modality importance and modality ablation (:class:`~squeezex.models.SpeakerNet`).

Captum, pytorch-grad-cam and torchcam take one input tensor and return one map; an ASD
model takes ``(video, audio)`` and its explanation is a tuple. Every explainer here is a
Captum :class:`~captum.attr.Attribution` whose ``attribute((video, audio))`` returns
``(visual N×1×T×H×W, audio N×1×n_mels×4T)``, each min-max normalised per clip (every frame
of a clip on one scale, so a quiet frame stays quiet):

* :class:`SpeakerSEAttribution` — the SE explanation in each stream: the channel mean of
  the visual SE block's output s·U (one channel set per clip: the block squeezes the clip),
  and of the audio SE block's output, a **time–frequency heatmap** (a squeezex extension:
  the authors' code has none). One forward pass, no gradients.
* :class:`SpeakerGradCAM` — Grad-CAM on the same two layers (Captum's ``LayerGradCam``),
  for the clip's speaking score (the mean per-frame logit).
* :class:`SpeakerRandom` — the random floor, seeded coarse noise on the same grids.

Modality importance: :func:`fusion_importance` (the mean of the fusion SE vector over each
modality's slice, per frame and per clip), :func:`modality_ablation` (zero one modality's
fusion-SE entries below the SE rule's threshold — or all of them — rerun, and compare), and
the baseline :func:`ablation_importance` (Captum's ``FeatureAblation`` with one mask per
modality: the drop of the clip's mean logit when the whole stream is zeroed).

Heatmaps are upsampled from the feature grids with ``F.interpolate`` (bilinear per frame;
on the spectrogram grid likewise): the visual grid has stride 4, the audio grid stride 4
in frequency and time.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from captum.attr import Attribution, FeatureAblation, LayerGradCam
from torch import nn

from ..common import eval_mode
from ..models.se import SEBlock
from ..models.speakers import EMBED, SpeakerNet
from ..options import Int, check_options
from .registry import register_explainer
from .se import PAPER_Z

__all__ = [
    "SpeakerSEAttribution",
    "SpeakerGradCAM",
    "SpeakerRandom",
    "SPEAKER_METHODS",
    "fusion_importance",
    "modality_ablation",
    "ablation_importance",
    "speaker_probabilities",
    "normalise_clip",
]


def _inputs(model: nn.Module, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
        raise ValueError(
            "an audio-visual model is explained on the tuple (video N×T×1×H×W, audio "
            f"N×samples), got {type(inputs).__name__}"
        )
    video, audio = (torch.as_tensor(t) for t in inputs)
    if isinstance(model, SpeakerNet):
        model.check(video, audio)
    return video, audio


def normalise_clip(maps: torch.Tensor) -> torch.Tensor:
    """ReLU, then min-max over each clip's whole map (all its frames on one scale); a
    constant map becomes zeros."""
    m = maps.clamp(min=0).flatten(1)
    lo, hi = m.min(1, keepdim=True).values, m.max(1, keepdim=True).values
    out = (m - lo) / (hi - lo).clamp(min=1e-12)
    return torch.where(hi > lo, out, torch.zeros_like(out)).reshape(maps.shape)


def _visual_up(maps: torch.Tensor, size: int) -> torch.Tensor:
    """``N×1×T×h×w`` → ``N×1×T×size×size`` (bilinear per frame)."""
    n, _, t, h, w = maps.shape
    up = F.interpolate(maps.transpose(1, 2).reshape(n * t, 1, h, w), size=(size, size),
                       mode="bilinear", align_corners=False)  # fmt: skip
    return up.reshape(n, t, 1, size, size).transpose(1, 2)


def _audio_up(maps: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``N×1×F'×T`` → ``N×1×n_mels×4T``."""
    return F.interpolate(maps, size=shape, mode="bilinear", align_corners=False)


_UP = "bilinear F.interpolate per frame and on the spectrogram, min-max per clip"


class _SpeakerAttribution(Attribution):
    """The shared interface: ``attribute((video, audio), target=None)`` → the two maps."""

    def __init__(self, model: SpeakerNet) -> None:
        if not isinstance(model, SpeakerNet):
            raise TypeError(
                f"speaker explainers take a squeezex.models.SpeakerNet, got {type(model).__name__}"
            )
        super().__init__(model)
        self.model = model

    def has_convergence_delta(self) -> bool:
        return False

    def _shapes(self, video: torch.Tensor) -> tuple[int, tuple[int, int]]:
        t = video.shape[1]
        return video.shape[-1], (self.model.logmel.n_mels, 4 * t)

    def attribute(self, inputs, target=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(visual N×1×T×H×W, audio N×1×n_mels×4T)`` in [0, 1]. ``target`` is accepted
        for Captum's signature: the detector has one output (speaking), which is what is
        explained."""
        video, audio = _inputs(self.model, inputs)
        with eval_mode(self.model):
            v, a = self._layer_maps(video, audio)
        size, spec = self._shapes(video)
        return normalise_clip(_visual_up(v, size)), normalise_clip(_audio_up(a, spec))

    def _layer_maps(self, video, audio):  # pragma: no cover - abstract
        raise NotImplementedError


@register_explainer(
    "se",
    inputs="audio-visual",
    description="SE explanation of both streams: the SE blocks' outputs s·U, one forward pass",
    needs_se=True,
)
class SpeakerSEAttribution(_SpeakerAttribution):
    """The SE explanation of both streams, read in one no-grad forward pass (the
    ``weighted`` rule of :class:`~squeezex.explainers.SEAttribution`: the channel mean of
    s·U). Needs a model built with ``se=True``."""

    FOOTING = "visual and audio SE blocks' outputs s·U, one forward pass, gradient-free, " + _UP

    def __init__(self, model: SpeakerNet) -> None:
        super().__init__(model)
        if not isinstance(model.visual_se, SEBlock):
            raise ValueError("SpeakerSEAttribution needs a SpeakerNet built with se=True")

    def _layer_maps(self, video, audio):
        m = self.model
        with m.visual_se.recording() as v, m.audio_se.recording() as a, torch.no_grad():
            m(video, audio)
        return v["x"].mean(1, keepdim=True), a["x"].mean(1, keepdim=True)


@register_explainer(
    "gradcam",
    inputs="audio-visual",
    description="Grad-CAM (Captum LayerGradCam) of the clip's speaking score, both streams",
    needs_gradients=True,
)
class SpeakerGradCAM(_SpeakerAttribution):
    """Grad-CAM (Captum's ``LayerGradCam``) on the layers the SE explanation reads — the
    SE blocks' outputs (their positions, identities, in a model without SE) — for the
    clip's speaking score, the mean of the per-frame logits. Channel weights are the
    gradients averaged over the clip (time and space; time and frequency for audio)."""

    FOOTING = "Captum LayerGradCam on the SE blocks' outputs, clip score gradients, " + _UP

    def _layer_maps(self, video, audio):
        m = self.model

        def score(v, a):
            return m(v, a).mean(1, keepdim=True)

        out = []
        for layer in (m.visual_se, m.audio_se):
            cam = LayerGradCam(score, layer)
            out.append(cam.attribute((video, audio), target=0, relu_attributions=True).detach())
        return out[0], out[1]


@register_explainer(
    "random", inputs="audio-visual", description="random floor: noise on the feature grids"
)
class SpeakerRandom(_SpeakerAttribution):
    """The random floor: uniform noise on the two feature grids (seeded on every call)."""

    FOOTING = "reference map: seeded noise on the two feature grids, " + _UP

    OPTIONS = {"seed": Int(0)}

    def __init__(self, model: SpeakerNet, seed: int = 0) -> None:
        seed = check_options(self, seed=seed)["seed"]
        super().__init__(model)
        self.seed = seed

    def _layer_maps(self, video, audio):
        g = torch.Generator().manual_seed(self.seed)
        n, t, _, h, w = video.shape
        v = torch.rand(n, 1, t, -(-h // 4), -(-w // 4), generator=g)
        a = torch.rand(n, 1, -(-self.model.logmel.n_mels // 4), t, generator=g)
        return v, a


#: Method name → explainer class: the methods registered for audio-visual inputs here
#: (``list_explainers("audio-visual")`` also lists any registered elsewhere).
SPEAKER_METHODS = {"se": SpeakerSEAttribution, "gradcam": SpeakerGradCAM, "random": SpeakerRandom}


# -- modality importance -------------------------------------------------------------------
@torch.no_grad()
def fusion_importance(model: SpeakerNet, inputs) -> dict[str, torch.Tensor]:
    """Modality importance from the fusion SE vector s (N·T×128 per frame).

    Returns ``"frame"`` N×T×2 (the mean of s over the visual slice, then the audio slice)
    and ``"clip"`` N×2 (their mean over the frames), plus ``"s"`` N×T×128.
    """
    if not isinstance(model.fusion_se, SEBlock):
        raise ValueError("fusion importance needs a SpeakerNet built with se=True")
    video, audio = _inputs(model, inputs)
    with eval_mode(model), model.fusion_se.recording() as tape:
        model(video, audio)
    n, t = video.shape[:2]
    s = torch.sigmoid(tape["e"]).reshape(n, t, 2 * EMBED)
    frame = torch.stack([s[..., :EMBED].mean(-1), s[..., EMBED:].mean(-1)], dim=-1)
    return {"frame": frame, "clip": frame.mean(1), "s": s}


@contextmanager
def _gate(model: SpeakerNet, modality: str, rule: str, z: float):
    """Inside, the fusion SE's entries of ``modality`` are zeroed: those below the rule's
    threshold (``"paper"``: s > mean + z·std over the frame's 128 entries is kept), or all
    of them (``"all"``)."""
    lo, hi = (0, EMBED) if modality == "visual" else (EMBED, 2 * EMBED)

    def hook(module, args, s):
        s2 = s.reshape(s.shape[0], -1)
        drop = torch.zeros_like(s2, dtype=torch.bool)
        if rule == "all":
            drop[:, lo:hi] = True
        else:
            keep = s2 > s2.mean(1, keepdim=True) + z * s2.std(1, unbiased=False, keepdim=True)
            drop[:, lo:hi] = ~keep[:, lo:hi]
        return s.masked_fill(drop.reshape(s.shape), 0.0)

    handle = model.fusion_se.scale_activation.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def speaker_probabilities(
    model: SpeakerNet, video: torch.Tensor, audio: torch.Tensor, batch_size: int = 32,
    output: str = "probability",
) -> torch.Tensor:  # fmt: skip
    """Per-frame speaking probabilities ``N×T`` (eval mode, in batches); the logits with
    ``output="logit"``."""
    if output not in ("probability", "logit"):
        raise ValueError(f"output must be 'probability' or 'logit', got {output!r}")
    with eval_mode(model):
        out = torch.cat([model(video[i : i + batch_size], audio[i : i + batch_size])
                         for i in range(0, len(video), batch_size)])  # fmt: skip
    return torch.sigmoid(out) if output == "probability" else out


def modality_ablation(
    model: SpeakerNet, video, audio, *, rule: str = "paper", z: float = PAPER_Z,
    batch_size: int = 32, output: str = "probability",
) -> dict[str, torch.Tensor]:  # fmt: skip
    """Per-frame outputs with each modality's fusion-SE entries zeroed.

    Returns ``{"none": N×T, "visual": N×T, "audio": N×T}`` (``"visual"``: the visual
    slice's entries below the threshold zeroed — or all of them with ``rule="all"``) as
    probabilities, or logits with ``output="logit"``. The mAP change is
    :func:`squeezex.metrics.frame_map` of these against the labels; the drop of a clip's
    mean logit (``none − visual``) is on the footing of :func:`ablation_importance`."""
    if not isinstance(model.fusion_se, SEBlock):
        raise ValueError("modality ablation needs a SpeakerNet built with se=True")
    if rule not in ("paper", "all"):
        raise ValueError(f"rule must be 'paper' or 'all', got {rule!r}")
    out = {"none": speaker_probabilities(model, video, audio, batch_size, output)}
    for modality in ("visual", "audio"):
        with _gate(model, modality, rule, z):
            out[modality] = speaker_probabilities(model, video, audio, batch_size, output)
    return out


def ablation_importance(model: nn.Module, video, audio, batch_size: int = 32) -> torch.Tensor:
    """Captum's ``FeatureAblation`` with one mask per modality: ``N×2`` (visual, audio),
    the drop of the clip's mean per-frame logit when the whole stream is replaced by zeros
    (black frames; a silent waveform).

    Logits, not probabilities: a speaking clip needs both streams, so either one zeroed
    sends the probability to ≈ 0 and the two drops tie at the clip's probability, whichever
    stream matters more; the logit keeps how far each removal goes."""

    def clip_logit(v, a):
        return model(v, a).mean(1)

    fa = FeatureAblation(clip_logit)
    out = []
    with eval_mode(model), torch.no_grad():
        for i in range(0, len(video), batch_size):
            v, a = video[i : i + batch_size], audio[i : i + batch_size]
            masks = (torch.zeros_like(v, dtype=torch.long), torch.ones_like(a, dtype=torch.long))
            av, aa = fa.attribute((v, a), feature_mask=masks, baselines=(0.0, 0.0))
            out.append(torch.stack([av.flatten(1)[:, 0], aa[:, 0]], dim=1))
    return torch.cat(out)
