"""AVA-ActiveSpeaker mAP: VOC average precision on rows matched by (video, time, entity),
checked by hand and against scikit-learn's average_precision_score."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from squeezex.metrics.ava import ava_map, voc_average_precision


def test_voc_ap_by_hand():
    # ranked labels 1, 0, 1: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1;
    # envelope 1, 2/3, 2/3 → AP = 1/2·1 + 1/2·2/3
    assert voc_average_precision([0.9, 0.8, 0.7], [1, 0, 1]) == pytest.approx(0.5 + 1 / 3)
    assert voc_average_precision([0.9, 0.8, 0.1], [1, 1, 0]) == pytest.approx(1.0)


def test_voc_ap_never_below_sklearn_and_equal_when_precision_already_falls():
    rng = np.random.default_rng(0)
    for _ in range(50):
        y = rng.integers(0, 2, 40)
        y[0] = 1
        s = rng.random(40)
        assert voc_average_precision(s, y) >= average_precision_score(y, s) - 1e-12
    y = np.array([1, 1, 0, 1, 0, 0])  # precision 1, 1, 2/3, 3/4 …: not monotone
    s = np.linspace(1, 0, 6)
    assert voc_average_precision(s, y) > average_precision_score(y, s)
    y = np.array([1, 1, 1, 0, 0, 0])  # falls already: equal
    assert voc_average_precision(s, y) == pytest.approx(average_precision_score(y, s))


def test_ava_map_matches_rows_on_video_time_and_entity():
    gt = [("v1", 0.0, "e1", 1), ("v1", 0.04, "e1", 0), ("v2", 1.0, "e3", 1)]
    pred = [("v2", "1.00", "e3", 0.2), ("v1", 0.04, "e1", 0.9), ("v1", 0.0, "e1", 0.5)]
    expected = voc_average_precision([0.5, 0.9, 0.2], [1, 0, 1])
    assert ava_map(pred, gt) == pytest.approx(expected)
    with pytest.raises(ValueError, match="no prediction for ground-truth row"):
        ava_map(pred[:2], gt)
    with pytest.raises(ValueError, match="appears twice"):
        ava_map(pred + pred[:1], gt)
    with pytest.raises(ValueError, match="no positive label"):
        voc_average_precision([0.1, 0.2], [0, 0])
