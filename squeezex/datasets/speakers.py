"""Synthetic talking heads: a face-crop clip and its audio, where *speaking* means the
mouth follows this audio's speech envelope — with the hard negatives ASD models fail on.

Each clip: ``frames`` grey face crops (a textured background, a face with pose jitter per
clip and a little per frame, eyes, a mouth whose opening is set per frame) and 16 kHz
audio of voiced bursts (a harmonic series on a gliding pitch of 100–250 Hz, shaped by two
formant-like peaks) in noise. Four kinds, each a share of the data:

* ``"speaking"`` (½, label 1): the mouth opens with this audio's speech segments;
* ``"silent"`` (⅙, label 0): the mouth moves, the audio is noise only;
* ``"dubbed"`` (⅙, label 0): the mouth moves with *another* speaker's segments, the audio
  has its own (not aligned);
* ``"still"`` (⅙, label 0): speech in the audio, the mouth closed.

Ground truth per clip: the mouth's pixels per frame (``mouth_masks`` T×H×W) and the
speech segments per video frame (``speech`` T bool: the audio holds speech in that
frame's 40 ms). Everything is a function of ``(seed, split, index)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .registry import TrainOptions, register_dataset

__all__ = ["KINDS", "SpeakerArrays", "SyntheticSpeakers", "make_speakers"]

#: The clip kinds and their shares.
KINDS = {"speaking": 3, "silent": 1, "dubbed": 1, "still": 1}
_SPLITS = {"train": 0, "val": 1, "test": 2}


class SpeakerArrays(NamedTuple):
    frames: torch.Tensor  #: N×T×1×H×W float in [0, 1]
    audio: torch.Tensor  #: N×samples float
    labels: torch.Tensor  #: N long (1: speaking)
    mouth_masks: torch.Tensor  #: N×T×H×W bool
    speech: torch.Tensor  #: N×T bool: speech in the audio during each video frame
    kinds: list  #: N kind names


def _segments(rng: np.random.Generator, frames: int) -> np.ndarray:
    """2–3 speech bursts of 3–6 frames each, at least one frame apart (T bool)."""
    on = np.zeros(frames, bool)
    for _ in range(rng.integers(2, 4)):
        length = int(rng.integers(3, 7))
        start = int(rng.integers(0, max(1, frames - length)))
        on[start : start + length] = True
    return on


def _voice(rng, on: np.ndarray, fps: float, rate: int) -> np.ndarray:
    """Voiced bursts where ``on`` (per video frame), silence elsewhere; no noise yet."""
    per = int(rate / fps)
    n = len(on) * per
    t = np.arange(n) / rate
    f0 = rng.uniform(100, 250) * (1 + 0.15 * np.sin(2 * math.pi * rng.uniform(1, 3) * t))
    phase = 2 * math.pi * np.cumsum(f0) / rate
    formants = (rng.uniform(500, 800), rng.uniform(1200, 2200))
    wave = np.zeros(n)
    for h in range(1, 16):
        freq = f0.mean() * h
        gain = sum(np.exp(-(((freq - f) / 250) ** 2)) for f in formants) + 0.05
        wave += gain * np.sin(h * phase) / h
    env = np.repeat(on.astype(float), per)
    ramp = np.hanning(per // 2 * 2 + 1)
    env = np.convolve(env, ramp / ramp.sum(), mode="same")  # no clicks at the edges
    return 0.3 * wave / np.abs(wave).max() * env


def _face(rng, frames: int, size: int, opening: np.ndarray):
    """The grey clip (T×H×W) and the mouth's pixels per frame."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    bg = rng.uniform(0.2, 0.8) + 0.1 * rng.normal(0, 1, (size // 8, size // 8)).repeat(8, 0).repeat(
        8, 1
    )
    for _ in range(rng.integers(2, 5)):  # distracting blobs
        cx, cy, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(0.05, 0.15) * size]
        bg = np.where((x - cx) ** 2 + (y - cy) ** 2 < r * r, rng.uniform(0, 1), bg)
    skin = rng.uniform(0.45, 0.85)
    cx0, cy0 = size * (0.5 + rng.uniform(-0.06, 0.06, 2))
    r = size * 0.32 * rng.uniform(0.9, 1.1)
    out = np.empty((frames, size, size))
    masks = np.zeros((frames, size, size), bool)
    for k in range(frames):
        cx, cy = cx0 + rng.normal(0, 0.6), cy0 + rng.normal(0, 0.6)
        img = bg.copy()
        img[((x - cx) / (0.8 * r)) ** 2 + ((y - cy) / r) ** 2 <= 1] = skin
        for side in (-1, 1):
            img[
                ((x - cx - side * 0.3 * r) / (0.12 * r)) ** 2
                + ((y - cy + 0.2 * r) / (0.07 * r)) ** 2
                <= 1
            ] = 0.1
        mouth = ((x - cx) / (0.28 * r)) ** 2 + (
            (y - cy - 0.45 * r) / (r * (0.03 + 0.16 * opening[k]))
        ) ** 2 <= 1
        img[mouth] = 0.08
        masks[k] = mouth
        out[k] = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
    return out, masks


def make_speakers(
    n: int, *, frames: int = 16, size: int = 64, fps: float = 25.0, rate: int = 16000,
    seed: int = 0, split: str = "train",
) -> SpeakerArrays:  # fmt: skip
    """Draw ``n`` clips (see the module docstring)."""
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {tuple(_SPLITS)}, got {split!r}")
    if n < 1 or frames < 8 or not 32 <= size <= 128:
        raise ValueError(
            f"need n >= 1, frames >= 8 and 32 <= size <= 128; got {n}, {frames}, {size}"
        )
    names = [k for k, share in KINDS.items() for _ in range(share)]
    out = {"frames": [], "audio": [], "labels": [], "masks": [], "speech": [], "kinds": []}
    for i in range(n):
        rng = np.random.default_rng([seed, _SPLITS[split], i, 5051])
        kind = names[int(rng.integers(len(names)))]
        own = _segments(rng, frames)
        voice = (
            _voice(rng, own, fps, rate) if kind != "silent" else np.zeros(frames * int(rate / fps))
        )
        mouth = {"speaking": own, "silent": own, "dubbed": _segments(rng, frames),
                 "still": np.zeros(frames, bool)}[kind]  # fmt: skip
        opening = np.convolve(mouth.astype(float), [0.25, 0.5, 0.25], mode="same")
        clip, masks = _face(rng, frames, size, opening)
        out["frames"].append(clip[:, None])
        out["audio"].append(voice + rng.normal(0, 0.01, len(voice)))
        out["labels"].append(int(kind == "speaking"))
        out["masks"].append(masks)
        out["speech"].append(own & (kind != "silent"))
        out["kinds"].append(kind)
    return SpeakerArrays(
        torch.from_numpy(np.stack(out["frames"])).float(),
        torch.from_numpy(np.stack(out["audio"])).float(),
        torch.tensor(out["labels"]),
        torch.from_numpy(np.stack(out["masks"])),
        torch.from_numpy(np.stack(out["speech"])),
        out["kinds"],
    )


class SyntheticSpeakers(Dataset):
    """Synthetic talking-head clips (see the module docstring), an explicit ``seed``.

    Items: ``(frames T×1×H×W, waveform, label, mouth masks T×H×W, speech T)``: the clip in
    [0, 1], its 16 kHz audio, 1 when the face speaks, the mouth's pixels per frame and the
    speech segments per video frame. Per-frame labels (what the detector predicts and the
    AVA mAP scores) are :attr:`frame_labels`: a frame is *speaking* when the clip is a
    speaking clip and its audio holds speech in that frame, as AVA labels frames.

    Args:
        n: clips.
        frames, size: frames per clip (>= 8) and their side in pixels (32–128; 64 default).
        seed, split: what the clips are a function of (with the index).

    Example:
        >>> from squeezex.datasets import SyntheticSpeakers
        >>> data = SyntheticSpeakers(12, seed=0)
        >>> frames, wave, label, masks, speech = data[0]
        >>> frames.shape, wave.shape, masks.shape, speech.shape
        (torch.Size([16, 1, 64, 64]), torch.Size([10240]), torch.Size([16, 64, 64]), torch.Size([16]))
    """

    #: the task kind its registered dataset declares (``speakers``)
    task = "audio-visual"
    classes = ("not speaking", "speaking")
    fps = 25.0
    sample_rate = 16000

    def __init__(
        self, n: int, *, frames: int = 16, size: int = 64, seed: int = 0, split: str = "train"
    ) -> None:
        a = make_speakers(n, frames=frames, size=size, seed=seed, split=split)
        self.frames, self.audio, self.labels = a.frames, a.audio, a.labels
        self.mouth_masks, self.speech, self.kinds = a.mouth_masks, a.speech, a.kinds
        self.seed, self.split, self.size, self.n_frames = seed, split, size, frames

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return (
            self.frames[i],
            self.audio[i],
            int(self.labels[i]),
            self.mouth_masks[i],
            self.speech[i],
        )

    @property
    def frame_labels(self) -> torch.Tensor:
        """N×T long: speaking clip and speech in that frame."""
        return (self.labels[:, None].bool() & self.speech).long()

    def kind_groups(self) -> dict[str, list[int]]:
        """Kind → the indices of its clips (the hard-negative breakdown)."""
        return {k: [i for i, v in enumerate(self.kinds) if v == k] for k in KINDS}

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.kind_counts().items())
        return (
            f"SyntheticSpeakers({len(self)} clips of {self.n_frames}×{self.size}×{self.size}, "
            f"split={self.split!r}, seed={self.seed}: {counts})"
        )

    def kind_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.kind_groups().items()}


@register_dataset(
    "speakers",
    description="synthetic talking heads with 16 kHz audio and hard negatives (audio-visual)",
    task="audio-visual",
    n_train=480,
    n_test=120,
    train=TrainOptions(epochs=12, batch_size=16, lr=3e-3),
    pointing_tolerance=2,
)
def _speakers(split: str, *, n_per_class: int, size: int, seed: int) -> SyntheticSpeakers:
    return SyntheticSpeakers(n_per_class, size=size, seed=seed, split=split)
