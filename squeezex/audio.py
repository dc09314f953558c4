"""Audio features for audio-visual models, with ``torch.stft`` (torchaudio has no release
for current torch): a mel filter bank, log-mel spectrograms and MFCCs, framed the way
active-speaker-detection code frames them — 4 audio frames on each video frame at 25 fps
(a 10 ms hop and a 25 ms window at 16 kHz), so audio frame ``4·t … 4·t + 3`` belongs to
video frame ``t``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["mel_filterbank", "log_mel", "mfcc", "hz_to_mel", "mel_to_hz"]


def hz_to_mel(f):
    """The HTK mel scale: 2595·log10(1 + f/700)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m):
    """The inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (torch.as_tensor(m, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_fft: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular filters on the HTK mel scale, ``(n_fft // 2 + 1) × n_mels`` (float32),
    peak 1 at each filter's centre (no area normalisation)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(
            f"need 0 <= f_min < f_max <= sample_rate / 2, got {f_min}, {f_max}, {sample_rate}"
        )
    if n_mels < 1 or n_fft < 2:
        raise ValueError(f"n_mels must be >= 1 and n_fft >= 2, got {n_mels}, {n_fft}")
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lo) / (mid - lo)
    down = (hi - freqs[:, None]) / (hi - mid)
    return torch.clamp(torch.minimum(up, down), min=0.0).float()


def _framing(sample_rate: int, fps: float, per_frame: int) -> tuple[int, int]:
    hop = sample_rate / (fps * per_frame)
    if hop != int(hop):
        raise ValueError(
            f"{per_frame} audio frames per video frame at {fps} fps need a whole-sample hop; "
            f"{sample_rate} Hz gives {hop:g}"
        )
    return int(hop), int(round(0.025 * sample_rate))  # hop, 25 ms window


def log_mel(
    waveform: torch.Tensor,
    sample_rate: int = 16000,
    *,
    fps: float = 25.0,
    per_frame: int = 4,
    n_mels: int = 40,
    n_fft: int = 512,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Log-mel spectrogram, ``… × n_mels × F`` with ``F = per_frame · floor(samples ·
    fps / sample_rate)``: ``per_frame`` audio frames on each whole video frame.

    Args:
        waveform: ``(samples,)`` or ``(N, samples)`` float audio.
        sample_rate: Hz.
        fps: the video's frame rate.
        per_frame: audio frames per video frame (4 at 25 fps: a 10 ms hop at 16 kHz).
        n_mels, n_fft: filters and FFT size (the window is 25 ms, zero-padded to n_fft).
        eps: added to the mel power before the log.
    """
    x = torch.as_tensor(waveform)
    if not x.is_floating_point() or x.dim() not in (1, 2) or x.shape[-1] == 0:
        raise ValueError(f"waveform must be float (samples,) or (N, samples), got {tuple(x.shape)}")
    hop, win = _framing(sample_rate, fps, per_frame)
    if win > n_fft:
        raise ValueError(f"n_fft ({n_fft}) must hold the 25 ms window ({win} samples)")
    video_frames = int(x.shape[-1] * fps // sample_rate)
    spec = torch.stft(
        x.float(), n_fft, hop_length=hop, win_length=win,
        window=torch.hann_window(win, device=x.device), center=True, return_complex=True,
    )  # fmt: skip
    power = spec.abs() ** 2  # … × freq × frames
    fb = mel_filterbank(n_fft, n_mels, sample_rate).to(power.device)
    mel = torch.einsum("...ft,fm->...mt", power, fb)
    return torch.log(mel + eps)[..., : video_frames * per_frame]


def mfcc(waveform: torch.Tensor, sample_rate: int = 16000, *, n_mfcc: int = 13, **kwargs):
    """MFCCs: the orthonormal DCT-II of :func:`log_mel` over the mel axis, first
    ``n_mfcc`` coefficients (``… × n_mfcc × F``); ``kwargs`` go to :func:`log_mel`."""
    lm = log_mel(waveform, sample_rate, **kwargs)
    n = lm.shape[-2]
    if not 1 <= n_mfcc <= n:
        raise ValueError(f"n_mfcc must be in [1, {n}] (the mel filters), got {n_mfcc}")
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    dct = torch.cos(math.pi / n * (i + 0.5) * k) * math.sqrt(2.0 / n)
    dct[0] /= math.sqrt(2.0)
    return torch.einsum("km,...mt->...kt", dct.to(lm), lm)
