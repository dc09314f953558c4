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

__all__ = ["voc_average_precision", "ava_map"]


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
