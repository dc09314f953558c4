"""Shared helpers, and the small pieces of the benchmark's new views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from squeezex.bench.cells import _region_metrics
from squeezex.bench.report import discrimination, most_discriminating
from squeezex.common import stratified_indices
from squeezex.metrics import coverage


def test_stratified_indices_take_the_classes_in_turns():
    t = torch.tensor([2, 2, 1, 1, 0, 0, 0, 0])
    assert stratified_indices(t, 3).tolist() == [0, 2, 4]  # one of each class
    assert stratified_indices(t, 4).tolist() == [0, 2, 4, 5]  # then class 0 first again
    assert stratified_indices(t, 99).tolist() == list(range(8))
    # a test split ordered by class: the first rows would all be class 0
    ordered = torch.arange(6).repeat_interleave(10)
    picked = ordered[stratified_indices(ordered, 12)]
    assert torch.bincount(picked).tolist() == [2] * 6
    with pytest.raises(ValueError, match="1-D class indices"):
        stratified_indices(torch.zeros(4, 3), 2)


def test_coverage_counts_the_parts_a_map_reaches():
    maps = torch.zeros(3, 1, 8, 8)
    maps[:, 0, 1, 1] = 1.0  # peak in part A
    maps[1, 0, 6, 6] = 0.6  # sample 1 also reaches part B (≥ half the maximum)
    maps[2, 0, 6, 6] = 0.4  # sample 2 does not
    parts = torch.zeros(3, 2, 8, 8, dtype=torch.bool)
    parts[:, 0, 0:3, 0:3] = True
    parts[:, 1, 5:8, 5:8] = True
    assert coverage(maps, parts).tolist() == [0.5, 1.0, 0.5]
    # a part with no visible pixel is left out; nothing visible: NaN; a constant map: 0
    hidden = parts.clone()
    hidden[0, 1] = False
    hidden[2] = False
    out = coverage(maps, hidden)
    assert out[0] == 1.0 and math.isnan(out[2])
    assert coverage(torch.ones(3, 1, 8, 8), parts).tolist() == [0.0, 0.0, 0.0]


def test_region_metrics_follow_the_datasets_regions():
    maps = torch.zeros(2, 1, 8, 8)
    maps[:, 0, 0, 0] = 3.0
    maps[:, 0, 7, 7] = 1.0
    cue = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    cue[:, 0, 0, 0] = True
    obj = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    obj[0, 0, 7, 7] = True  # sample 1's object is not visible
    out = _region_metrics(maps, {"cue": cue, "object": obj})
    assert set(out) == {"cue_mass", "object_mass"}
    assert out["cue_mass"][1].tolist() == [0.75, 0.75]
    assert out["object_mass"][1][0] == 0.25 and np.isnan(out["object_mass"][1][1])
    parts = _region_metrics(maps, {"leaf": cue, "bud": obj})
    assert set(parts) == {"coverage"}
    assert _region_metrics(maps, {"leaf": cue}) == {}  # one part: the pointing game says it


def _row(method, metric, value, lo, hi, dataset="d"):
    return dict(dataset=dataset, seed=0, method=method, metric=metric, family="x",
                value=value, ci_low=lo, ci_high=hi, n=10, kind="method")  # fmt: skip


def test_discrimination_counts_separated_pairs_by_direction():
    rows = [
        _row("a", "pointing_game", 0.9, 0.85, 0.95),
        _row("b", "pointing_game", 0.5, 0.40, 0.60),
        _row("c", "pointing_game", 0.55, 0.45, 0.65),
        _row("random", "pointing_game", 0.05, 0.0, 0.1),
        _row("a", "deletion_auc", 0.2, 0.1, 0.3),  # lower is better
        _row("b", "deletion_auc", 0.6, 0.5, 0.7),
        _row("a", "gini", 0.3, 0.2, 0.4),  # descriptive: not ranked
        {**_row("oracle", "pointing_game", 1.0, 1.0, 1.0), "kind": "reference"},
    ]
    report = discrimination(rows)["d/0"]
    pg = report["pointing_game"]
    assert (pg["pairs"], pg["separated"]) == (3, 2)  # the floor and the reference left out
    assert pg["best"][0] == "a" and pg["worst"][0] == "b" and pg["best_vs_worst_separated"]
    assert pg["spread"] == pytest.approx(0.4)
    dl = report["deletion_auc"]
    assert dl["best"][0] == "a" and dl["spread"] == pytest.approx(0.4)
    assert "gini" not in report
    other = discrimination(
        [_row("a", "iou", 0.5, 0.4, 0.6, "e"), _row("b", "iou", 0.5, 0.4, 0.6, "e")]
    )
    assert most_discriminating({**discrimination(rows), **other}) == "d/0"


def test_quiet_empty_maps_silences_all_zero_maps_only():
    """The all-zero warning names its method first ("SEAttribution: the heatmap…"): the
    filter must match inside the message (an anchored one let 48 warnings into a run's log)."""
    import warnings

    import squeezex
    from squeezex.common import ExplanationWarning, quiet_empty_maps
    from squeezex.models import build_model

    model = build_model("small", 6, se=True, seed=0)
    for p in model.parameters():
        p.data.zero_()
    x = torch.rand(2, 3, 32, 32)
    with pytest.warns(ExplanationWarning, match="SEAttribution: the heatmap .* is all zero"):
        squeezex.get_explainer("se", model).attribute(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_empty_maps():
            squeezex.get_explainer("se", model).attribute(x)
            warnings.warn("X: the heatmap of sample(s) [0] has NaN", ExplanationWarning, 1)
    assert [str(w.message) for w in caught] == ["X: the heatmap of sample(s) [0] has NaN"]
