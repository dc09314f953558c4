"""An audio-visual active speaker detector with SE blocks in each stream and at fusion.

The SE paper's behavioural-biometrics setting (Roxo et al., arXiv 2412.05134; the authors'
BIAS model): a visual stream and an audio stream, each with an SE block before its pooling,
and an SE block on the concatenated per-modality embeddings before the classifier. The
fusion SE's vector says how much each modality counts, per clip and per frame.

Shapes (T video frames at 25 fps, 4 audio frames per video frame, 40 mel filters):

* **video** ``N×T×1×H×W`` floats in [0, 1] (a batch of :class:`SyntheticSpeakers` clips);
* **audio** ``N×samples`` waveform at 16 kHz (``T·640`` samples), turned into a log-mel
  spectrogram ``N×1×40×4T`` inside the model (:class:`LogMel`, no parameters);
* output: **per-frame logits** ``N×T`` (speaking at that frame).

Visual stream: a 3-D convolution front (3×5×5, spatial stride 2, *replicate* padding: with
zero padding the first and last frames differ from black frames beyond the clip, which the
front reads as motion everywhere — measured: the maps of the last frame lit the whole face)
→ a 2-D per-frame trunk
(stride 4 in all) → **visual SE** on ``N×C×T×h×w`` (one squeeze per clip, so one channel set
per clip) → spatial max pooling → temporal convolution → ``N×64×T``. Audio stream: 2-D
convolutions on the spectrogram (stride 4 in frequency and time, so one column per video
frame) → **audio SE** on ``N×C×F'×T`` → max pooling over frequency → temporal convolution →
``N×64×T``. Fusion: concatenation ``N×128×T`` → **fusion SE per frame** (visual entries
0–63, audio 64–127) → a temporal classifier (5-frame convolution, then 1×1). Auxiliary heads
on each stream's embedding give the per-stream logits of the training loss
(:func:`speaker_loss`: the combined loss plus 0.4 × each stream's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import log_mel
from ..common import ShuffledBatches
from .se import SEBlock

__all__ = ["LogMel", "SpeakerNet", "SpeakerObjective", "speaker_loss", "EMBED", "AUX_WEIGHT"]

#: Width of each stream's per-frame embedding (the fusion SE sees 2·EMBED channels).
EMBED = 64
#: Weight of each stream's auxiliary loss.
AUX_WEIGHT = 0.4


class LogMel(nn.Module):
    """Waveform ``N×samples`` → log-mel ``N×1×n_mels×4T`` (:func:`squeezex.audio.log_mel`)."""

    def __init__(self, sample_rate: int = 16000, fps: float = 25.0, n_mels: int = 40) -> None:
        super().__init__()
        self.sample_rate, self.fps, self.n_mels = sample_rate, fps, n_mels

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return log_mel(wav, self.sample_rate, fps=self.fps, n_mels=self.n_mels).unsqueeze(1)


def _bn_relu(conv: nn.Module, c: int, bn=nn.BatchNorm2d) -> list[nn.Module]:
    return [conv, bn(c), nn.ReLU(inplace=True)]


class _Identity(nn.Identity):
    """Where the SE block sits in the model without SE (keeps module names aligned)."""


class SpeakerNet(nn.Module):
    """Two-stream active speaker detector (see the module docstring).

    Args:
        se: with the three SE blocks (``visual_se``, ``audio_se``, ``fusion_se``); without,
            identities stand where they were (the same network otherwise).
        reduction: the SE blocks' reduction r.
        frames, size: the clip length and frame size the model is built for (checked).
        n_mels, sample_rate, fps: the audio front's settings.

    Example:
        >>> import torch
        >>> from squeezex.models import SpeakerNet
        >>> net = SpeakerNet().eval()
        >>> net(torch.rand(2, 16, 1, 64, 64), torch.zeros(2, 16 * 640)).shape
        torch.Size([2, 16])
    """

    #: what it is explained on: ``(video, audio)`` (the registry's audio-visual methods,
    #: :func:`squeezex.explainers.registry.input_kind`)
    input_kind = "audio-visual"

    def __init__(
        self, se: bool = True, reduction: int = 8, frames: int = 16, size: int = 64,
        n_mels: int = 40, sample_rate: int = 16000, fps: float = 25.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.frames, self.size, self.se = frames, size, se
        self.samples = int(frames * sample_rate / fps)
        self.front = nn.Sequential(
            *_bn_relu(nn.Conv3d(1, 16, (3, 5, 5), (1, 2, 2), (1, 2, 2), bias=False,
                                padding_mode="replicate"), 16, nn.BatchNorm3d)
        )  # fmt: skip
        self.trunk = nn.Sequential(
            *_bn_relu(nn.Conv2d(16, 32, 3, 2, 1, bias=False), 32),
            *_bn_relu(nn.Conv2d(32, 32, 3, 1, 1, bias=False), 32),
            *_bn_relu(nn.Conv2d(32, 48, 3, 1, 1, bias=False), 48),
        )
        self.visual_se = SEBlock(48, reduction) if se else _Identity()
        self.visual_temporal = nn.Sequential(
            *_bn_relu(nn.Conv1d(48, EMBED, 3, 1, 1, bias=False), EMBED, nn.BatchNorm1d)
        )
        self.logmel = LogMel(sample_rate, fps, n_mels)
        self.audio_norm = nn.BatchNorm2d(1)
        self.audio = nn.Sequential(
            *_bn_relu(nn.Conv2d(1, 16, 3, 1, 1, bias=False), 16),
            *_bn_relu(nn.Conv2d(16, 32, 3, 2, 1, bias=False), 32),
            *_bn_relu(nn.Conv2d(32, 48, 3, 2, 1, bias=False), 48),
        )
        self.audio_se = SEBlock(48, reduction) if se else _Identity()
        self.audio_temporal = nn.Sequential(
            *_bn_relu(nn.Conv1d(48, EMBED, 3, 1, 1, bias=False), EMBED, nn.BatchNorm1d)
        )
        self.fusion_se = SEBlock(2 * EMBED, reduction) if se else _Identity()
        self.classifier = nn.Sequential(
            nn.Conv1d(2 * EMBED, 64, 5, 1, 2), nn.ReLU(inplace=True), nn.Conv1d(64, 1, 1)
        )
        self.visual_head = nn.Conv1d(EMBED, 1, 1)
        self.audio_head = nn.Conv1d(EMBED, 1, 1)

    # -- the streams -------------------------------------------------------------------
    def check(self, video: torch.Tensor, audio: torch.Tensor) -> None:
        """A clear ``ValueError`` for inputs the model was not built for."""
        want = (self.frames, 1, self.size, self.size)
        if video.dim() != 5 or tuple(video.shape[1:]) != want:
            raise ValueError(
                f"video must be N×{self.frames}×1×{self.size}×{self.size} (clips of grey "
                f"frames), got {tuple(video.shape)}"
            )
        if audio.dim() != 2 or audio.shape[0] != video.shape[0] or audio.shape[1] < self.samples:
            raise ValueError(
                f"audio must be N×samples with the video's N ({video.shape[0]}) and at least "
                f"{self.samples} samples ({self.frames} frames at 16 kHz), got {tuple(audio.shape)}"
            )

    def visual_features(self, video: torch.Tensor) -> torch.Tensor:
        """``N×C×T×h×w``: the feature map the visual SE block reads (before it)."""
        n, t = video.shape[:2]
        u = self.front(video.transpose(1, 2))  # N×16×T×H/2×W/2
        u = u.transpose(1, 2).flatten(0, 1)  # (N·T)×16×…
        u = self.trunk(u)
        return u.reshape(n, t, *u.shape[1:]).transpose(1, 2)

    def audio_features(self, audio: torch.Tensor) -> torch.Tensor:
        """``N×C×F'×T``: the feature map the audio SE block reads (before it)."""
        spec = self.audio_norm(self.logmel(audio[:, : self.samples]))
        return self.audio(spec)

    def streams(self, video: torch.Tensor, audio: torch.Tensor):
        """Per-frame embeddings ``(visual N×64×T, audio N×64×T)`` after the streams' SE."""
        v = self.visual_se(self.visual_features(video)).amax(dim=(3, 4))
        a = self.audio_se(self.audio_features(audio)).amax(dim=2)
        return self.visual_temporal(v), self.audio_temporal(a)

    def fuse(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The fusion SE, per frame, on the concatenated embeddings (``N×128×T``)."""
        z = torch.cat([v, a], dim=1)
        n, c, t = z.shape
        z = self.fusion_se(z.transpose(1, 2).reshape(n * t, c, 1))
        return z.reshape(n, t, c).transpose(1, 2)

    def forward_all(self, video: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-frame logits of the combined (``"av"``), visual and audio heads (each N×T)."""
        self.check(video, audio)
        v, a = self.streams(video, audio)
        return {
            "av": self.classifier(self.fuse(v, a)).squeeze(1),
            "visual": self.visual_head(v).squeeze(1),
            "audio": self.audio_head(a).squeeze(1),
        }

    def forward(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``N×T``."""
        self.check(video, audio)
        return self.classifier(self.fuse(*self.streams(video, audio))).squeeze(1)


def speaker_loss(out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per frame of the combined head plus :data:`AUX_WEIGHT` × each
    stream's (``labels`` N×T in {0, 1})."""
    y = labels.float()
    loss = F.binary_cross_entropy_with_logits(out["av"], y)
    for k in ("visual", "audio"):
        loss = loss + AUX_WEIGHT * F.binary_cross_entropy_with_logits(out[k], y)
    return loss


class SpeakerObjective:
    """How :func:`squeezex.training.fit` trains a :class:`SpeakerNet` (an
    :class:`~squeezex.training.Objective`): batches of clips of a
    :class:`~squeezex.datasets.SyntheticSpeakers`-like dataset (``frames``, ``audio``,
    ``frame_labels`` held as tensors), one permutation per epoch; the loss is
    :func:`speaker_loss`, the training accuracy each clip's per-frame accuracy of the
    combined head."""

    def batches(self, data, batch_size: int, seed: int) -> ShuffledBatches:
        def collate(rows):
            video, audio, labels = rows
            return (video, audio), labels

        tensors = (data.frames, data.audio, data.frame_labels)
        return ShuffledBatches(tensors, batch_size, seed, collate=collate)

    def loss(self, model: SpeakerNet, inputs, labels: torch.Tensor):
        out = model.forward_all(*inputs)
        return speaker_loss(out, labels), ((out["av"] > 0).long() == labels).float().mean(1)
