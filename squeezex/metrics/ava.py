"""Active speaker detection's mAP, computed the way the official AVA-ActiveSpeaker script
(``get_ava_active_speaker_performance.py``) does: prediction rows are matched to the
ground-truth rows on (video, frame timestamp, entity), every ground-truth row must have
a prediction, the rows are ranked by score, and the average precision is the VOC one —
precision made non-increasing from the right, summed over the recall steps. Float64
throughout (the script's ``np.float`` is gone from NumPy).

scikit-learn's ``average_precision_score`` is the same sum without the non-increasing
envelope, so it never exceeds this AP and equals it when precision already falls with
recall (``tests/test_ava_map.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

__all__ = [
    "voc_average_precision",
    "ava_map",
    "frame_map",
    "frame_pointing_game",
    "speech_mass",
    "speech_share",
]


def voc_average_precision(scores, labels) -> float:
    """The VOC-style AP of ``scores`` for binary ``labels`` (1 positive); ties in score
    keep their input order (a stable sort), as the official script's pandas sort does."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if s.shape != y.shape or s.size == 0:
        raise ValueError(
            f"scores and labels must be two equal, non-empty lists: {s.shape}, {y.shape}"
        )
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if y.sum() == 0:
        raise ValueError("no positive label: the average precision is undefined")
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(y[order])
    precision = tp / np.arange(1, len(y) + 1)
    recall = tp / y.sum()
    precision = np.concatenate([[0.0], precision, [0.0]])
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # non-increasing envelope
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def ava_map(predictions: Iterable, ground_truth: Iterable) -> float:
    """mAP of active-speaker predictions against ground truth.

    Args:
        predictions: rows ``(video_id, frame_timestamp, entity_id, score)``.
        ground_truth: rows ``(video_id, frame_timestamp, entity_id, label)``, label 1
            (speaking) or 0; timestamps are matched at 2 decimals, as in the CSVs.

    Raises:
        ValueError: a ground-truth row has no prediction (named), or a key repeats.
    """

    def key(row):
        return (str(row[0]), f"{float(row[1]):.2f}", str(row[2]))

    pred: dict = {}
    for row in predictions:
        k = key(row)
        if k in pred:
            raise ValueError(f"prediction {k} appears twice")
        pred[k] = float(row[3])
    scores, labels = [], []
    for row in ground_truth:
        k = key(row)
        if k not in pred:
            raise ValueError(f"no prediction for ground-truth row {k}")
        scores.append(pred[k])
        labels.append(int(row[3]))
    return voc_average_precision(scores, labels)


# -- clips: per-frame detection and the localisation of its explanations --------------------
def frame_map(probabilities, labels) -> float:
    """The AP over every (clip, frame) row — :func:`ava_map` on clips whose rows are their
    frames (one entity per clip, so matching is by position): ``probabilities`` and
    ``labels`` are N×T."""
    p, y = torch.as_tensor(probabilities), torch.as_tensor(labels)
    if p.shape != y.shape:
        raise ValueError(f"probabilities {tuple(p.shape)} and labels {tuple(y.shape)} differ")
    return voc_average_precision(p.flatten().cpu().numpy(), y.flatten().cpu().numpy())


def frame_pointing_game(maps, masks, tolerance: int = 0) -> torch.Tensor:
    """Per clip, the share of its frames whose map maximum falls on the mouth (within
    ``tolerance`` px), over the frames whose mask has pixels (NaN for a clip with none).

    Args:
        maps: N×1×T×H×W heatmaps.
        masks: N×T×H×W bool (the mouth per frame).
    """
    from .localisation import pointing_game

    if maps.dim() != 5 or masks.dim() != 4 or maps.shape[2:] != masks.shape[1:]:
        raise ValueError(
            f"maps must be N×1×T×H×W and masks N×T×H×W on the same grid, got "
            f"{tuple(maps.shape)} and {tuple(masks.shape)}"
        )
    n, t = masks.shape[:2]
    frames = maps.transpose(1, 2).flatten(0, 1)  # (N·T)×1×H×W
    valid = masks.flatten(2).any(2)
    hit = torch.zeros(n * t, dtype=frames.dtype, device=frames.device)
    ok = valid.flatten()
    if ok.any():
        hit[ok] = pointing_game(frames[ok], masks.flatten(0, 1)[ok][:, None], tolerance=tolerance)
    hit = hit.reshape(n, t)
    total = (hit * valid).sum(1)
    count = valid.sum(1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


def speech_mass(maps, speech) -> torch.Tensor:
    """Per clip, the share of the audio map's relevance that falls in the speech segments
    along time (summed over frequency); NaN for a clip without speech or with an all-zero
    map. A random map scores the clip's share of speech frames (:func:`speech_share`).

    Args:
        maps: N×1×F×A heatmaps on the spectrogram (A audio frames, a multiple of T).
        speech: N×T bool, speech per video frame.
    """
    if maps.dim() != 4 or speech.dim() != 2 or maps.shape[-1] % speech.shape[1]:
        raise ValueError(
            f"maps must be N×1×F×A with A a multiple of the T of speech (N×T), got "
            f"{tuple(maps.shape)} and {tuple(speech.shape)}"
        )
    per = maps.shape[-1] // speech.shape[1]
    profile = maps.clamp(min=0).sum(dim=(1, 2))  # N×A
    inside = speech.bool().repeat_interleave(per, dim=1)
    total = profile.sum(1)
    mass = (profile * inside).sum(1) / total.clamp(min=1e-12)
    ok = (total > 0) & inside.any(1)
    return torch.where(ok, mass, torch.full_like(mass, float("nan")))


def speech_share(speech) -> torch.Tensor:
    """Per clip, the share of its frames with speech (NaN without speech): what a map
    uniform in time scores on :func:`speech_mass`."""
    s = torch.as_tensor(speech).float().mean(1)
    return torch.where(s > 0, s, torch.full_like(s, float("nan")))
