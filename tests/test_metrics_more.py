"""More localisation metrics (tolerances, IoU at thresholds, AUC, boxes), complexity,
and the metric tables: hand-computed cases and literal references."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from squeezex import metrics as M
from squeezex.metrics import box_pointing_game, gini, iou_at, mask_auc, pointing_game


def _square_mask(n=1, h=8, w=8, rows=(2, 4), cols=(3, 6)):
    masks = torch.zeros(n, 1, h, w, dtype=torch.bool)
    masks[:, 0, rows[0] : rows[1], cols[0] : cols[1]] = True
    return masks


def _point_map(points, h=8, w=8):
    maps = torch.zeros(len(points), 1, h, w)
    for i, (r, c) in enumerate(points):
        maps[i, 0, r, c] = 1.0
    return maps


# -- pointing game tolerance -------------------------------------------------------------------
def test_pointing_game_tolerance_is_a_chebyshev_square_by_default():
    masks = _square_mask(4)  # rows 2-3, cols 3-5
    # (1, 2) is diagonal to the corner (2, 3); (0, 3) is 2 rows above; (7, 7) is far
    maps = _point_map([(1, 2), (0, 3), (7, 7), (2, 3)])
    assert pointing_game(maps, masks).tolist() == [0, 0, 0, 1]
    assert pointing_game(maps, masks, tolerance=1).tolist() == [1, 0, 0, 1]
    assert pointing_game(maps, masks, tolerance=2).tolist() == [1, 1, 0, 1]
    # (7, 7) → nearest mask pixel (3, 5): 4 rows, 2 columns away
    assert pointing_game(maps, masks, tolerance=3).tolist() == [1, 1, 0, 1]
    assert pointing_game(maps, masks, tolerance=4).tolist() == [1, 1, 1, 1]
    assert pointing_game(maps, masks, tolerance=100).tolist() == [1, 1, 1, 1]


def _torchray_hit(mask: torch.Tensor, point: tuple[int, int], tolerance: int) -> bool:
    """TorchRay's ``PointingGame.evaluate`` (u = column, v = row), literally."""
    v, u = torch.meshgrid(
        (torch.arange(mask.shape[0], dtype=torch.float32) - point[1]) ** 2,
        (torch.arange(mask.shape[1], dtype=torch.float32) - point[0]) ** 2,
        indexing="ij",
    )
    accept = (v + u) < tolerance**2
    return bool((mask & accept).view(-1).any())


def test_pointing_game_euclidean_matches_torchray():
    masks = _square_mask(1, 12, 12, rows=(4, 7), cols=(5, 8))[0, 0]
    points = [(r, c) for r in range(12) for c in range(12)]
    maps = _point_map(points, 12, 12)
    for tol in (2, 3, 4):
        ours = pointing_game(maps, masks.expand(len(points), 1, 12, 12), tol, norm="euclidean")
        ref = [float(_torchray_hit(masks, (c, r), tol)) for r, c in points]
        assert ours.tolist() == ref, tol
    # by hand: (2, 3) is √(2² + 2²) ≈ 2.83 from the corner (4, 5): a hit at 3, not at 2
    one = _point_map([(2, 3)], 12, 12)
    m = masks[None, None]
    assert pointing_game(one, m, 2, norm="euclidean").item() == 0.0
    assert pointing_game(one, m, 3, norm="euclidean").item() == 1.0
    assert pointing_game(one, m, 2).item() == 1.0  # the Chebyshev square reaches it


def test_pointing_game_tolerance_errors():
    maps, masks = _point_map([(0, 0)]), _square_mask()
    with pytest.raises(ValueError, match="non-negative integer"):
        pointing_game(maps, masks, tolerance=1.5)
    with pytest.raises(ValueError, match="non-negative integer"):
        pointing_game(maps, masks, tolerance=-1)
    with pytest.raises(ValueError, match="got True"):
        pointing_game(maps, masks, tolerance=True)
    assert pointing_game(maps, masks, tolerance=np.int64(3)).item() == 1.0  # (0,0)→(2,3)
    with pytest.raises(ValueError, match="norm"):
        pointing_game(maps, masks, tolerance=1, norm="manhattan")


def test_pointing_game_tolerance_on_clips():
    masks = torch.zeros(1, 1, 3, 5, 5, dtype=torch.bool)
    masks[0, 0, 0, 2, 2] = True
    maps = torch.zeros(1, 1, 3, 5, 5)
    maps[0, 0, 1, 3, 3] = 1.0  # one frame, one row, one column away
    assert pointing_game(maps, masks).item() == 0.0
    assert pointing_game(maps, masks, tolerance=1).item() == 1.0


# -- boxes --------------------------------------------------------------------------------------
def test_box_pointing_game_by_hand():
    # box columns 3..5, rows 2..3 (x1=3, y1=2, x2=6, y2=4: inclusive-exclusive)
    box = torch.tensor([[3.0, 2.0, 6.0, 4.0]])
    maps = _point_map([(2, 3), (3, 5), (3, 6), (4, 5), (1, 3), (0, 0)])
    boxes = [box] * 6
    assert box_pointing_game(maps, boxes).tolist() == [1, 1, 0, 0, 0, 0]
    assert box_pointing_game(maps, boxes, tolerance=1).tolist() == [1, 1, 1, 1, 1, 0]
    # any of several boxes counts
    two = [torch.tensor([[3.0, 2.0, 6.0, 4.0], [0.0, 0.0, 1.0, 1.0]])] * 6
    assert box_pointing_game(maps, two).tolist() == [1, 1, 0, 0, 0, 1]
    # float boxes: a pixel is in when its centre is: column 6 (centre 6.5) is in [3, 6.5)? no
    assert box_pointing_game(maps[2:3], [torch.tensor([[3.0, 2.0, 6.5, 4.0]])]).item() == 0.0
    assert box_pointing_game(maps[2:3], [torch.tensor([[3.0, 2.0, 6.6, 4.0]])]).item() == 1.0


def test_box_pointing_game_equals_pointing_game_on_the_painted_mask():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(16, 1, 10, 12, generator=g)
    boxes, masks = [], torch.zeros(16, 1, 10, 12, dtype=torch.bool)
    for i in range(16):
        x1, y1 = torch.randint(0, 10, (2,), generator=g).tolist()
        w, h = torch.randint(1, 5, (2,), generator=g).tolist()
        boxes.append(torch.tensor([[x1, y1, x1 + w, y1 + h]], dtype=torch.float32))
        masks[i, 0, y1 : y1 + h, x1 : x1 + w] = True  # torchvision-style slicing
    for tol in (0, 1, 3):
        for norm in ("chebyshev", "euclidean"):
            torch.testing.assert_close(
                box_pointing_game(maps, boxes, tol, norm), pointing_game(maps, masks, tol, norm)
            )


def test_box_pointing_game_errors():
    maps = _point_map([(0, 0), (1, 1)])
    box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    with pytest.raises(ValueError, match="list of 2"):
        box_pointing_game(maps, [box])
    with pytest.raises(ValueError, match="K×4"):
        box_pointing_game(maps, [box, torch.zeros(0, 4)])
    with pytest.raises(ValueError, match="cover no pixel"):
        box_pointing_game(maps, [box, torch.tensor([[20.0, 20.0, 30.0, 30.0]])])
    with pytest.raises(ValueError, match="N×1×H×W"):
        box_pointing_game(maps[:, 0], [box, box])


# -- IoU at thresholds --------------------------------------------------------------------------
def test_iou_at_by_hand():
    maps = torch.tensor([[0.1, 0.3, 0.5], [0.6, 0.8, 1.0]]).reshape(1, 1, 2, 3)
    masks = torch.tensor([[0, 0, 1], [0, 1, 1]], dtype=torch.bool).reshape(1, 1, 2, 3)
    # ≥0.25: 5 px, inter 3 → 3/5; ≥0.5: 4 px (0.5 counts), inter 3 → 3/4; ≥0.75: 2 px → 2/3
    torch.testing.assert_close(iou_at(maps, masks), torch.tensor([[3 / 5, 3 / 4, 2 / 3]]))
    torch.testing.assert_close(
        iou_at(maps, masks, thresholds=[0.9, 1.1]), torch.tensor([[1 / 3, 0.0]])
    )
    assert iou_at(maps.expand(3, 1, 2, 3), masks.expand(3, 1, 2, 3)).shape == (3, 3)
    with pytest.raises(ValueError, match="thresholds is empty"):
        iou_at(maps, masks, thresholds=[])


# -- AUC ----------------------------------------------------------------------------------------
def test_mask_auc_matches_sklearn_with_ties():
    g = torch.Generator().manual_seed(1)
    maps = (torch.rand(5, 1, 6, 7, generator=g) * 4).floor() / 4  # few levels: many ties
    masks = torch.rand(5, 2, 6, 7, generator=g) > 0.7  # two parts, united
    ours = mask_auc(maps, masks)
    for i in range(5):
        y = masks[i].any(0).flatten().numpy()
        ref = roc_auc_score(y, maps[i].flatten().numpy())
        assert ours[i].item() == pytest.approx(ref, abs=1e-6)


def test_mask_auc_by_hand():
    masks = _square_mask(3)
    perfect = masks.float() * 0.5 + 0.25
    assert mask_auc(perfect, masks).tolist() == [1.0, 1.0, 1.0]
    assert mask_auc(1 - perfect, masks).tolist() == [0.0, 0.0, 0.0]
    assert mask_auc(torch.zeros(3, 1, 8, 8), masks).tolist() == [0.5, 0.5, 0.5]
    # 1 positive, 3 negatives: positive 0.5 vs negatives (0, 0.5, 1) → (1 + ½ + 0) / 3
    m = torch.tensor([0.5, 0.0, 0.5, 1.0]).reshape(1, 1, 2, 2)
    k = torch.tensor([True, False, False, False]).reshape(1, 1, 2, 2)
    assert mask_auc(m, k).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="whole map"):
        mask_auc(m, torch.ones_like(k))
    assert M.LOCALISATION["auc"] is mask_auc


# -- complexity ---------------------------------------------------------------------------------
def test_gini_literal_formula():
    maps = torch.tensor([3.0, 0.0, 1.0, 0.0]).reshape(1, 1, 2, 2)
    # sorted 0, 0, 1, 3: Σ(2i − 5)·a = −3·0 − 1·0 + 1·1 + 3·3 = 10; P·Σa = 16
    assert gini(maps).item() == pytest.approx(10 / 16)
    one_hot = torch.zeros(2, 1, 5, 5)
    one_hot[0, 0, 2, 2] = 1.0
    one_hot[1, 0, 0, 4] = 0.3  # scale does not matter
    torch.testing.assert_close(gini(one_hot), torch.full((2,), 1 - 1 / 25))
    torch.testing.assert_close(gini(torch.full((2, 1, 3, 3), 0.7)), torch.zeros(2))
    assert gini(torch.zeros(1, 1, 3, 3)).item() == 0.0


def test_gini_against_a_float64_loop():
    g = torch.Generator().manual_seed(2)
    maps = torch.rand(3, 1, 4, 5, generator=g) ** 3
    for i in range(3):
        a = sorted(maps[i].flatten().double().tolist())
        p = len(a)
        ref = sum((2 * (k + 1) - p - 1) * v for k, v in enumerate(a)) / (p * sum(a))
        assert gini(maps)[i].item() == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        gini(maps - 0.5)
    with pytest.raises(ValueError, match="N×1×H×W"):
        gini(maps[:, 0])


# -- the tables ---------------------------------------------------------------------------------
def test_metric_tables_say_which_way_is_better():
    names = set(M.LOCALISATION) | set(M.FAITHFULNESS)
    names |= {"checkerboard", "gini", "spearman", "ssim", "sensitivity"}
    assert names <= set(M.HIGHER_IS_BETTER)
    assert M.HIGHER_IS_BETTER["deletion_auc"] is False
    assert M.HIGHER_IS_BETTER["insertion_auc"] is True
    assert M.HIGHER_IS_BETTER["checkerboard"] is False
    assert M.HIGHER_IS_BETTER["gini"] is None
    assert M.HIGHER_IS_BETTER["spearman"] is False and M.HIGHER_IS_BETTER["ssim"] is False
    assert all(v in (True, False, None) for v in M.HIGHER_IS_BETTER.values())
    assert set(M.__all__) <= set(dir(M))
    assert not math.isnan(M.LOCALISATION["auc"](_point_map([(2, 3)]), _square_mask()).item())


def test_direction_text_is_the_one_rendering_of_a_direction():
    from squeezex.metrics.vocabulary import DIRECTION_FORMS, direction_text

    assert [direction_text(h) for h in (True, False, None)] == [
        "higher is better",
        "lower is better",
        "no better direction",
    ]
    assert [direction_text(h, "suffix") for h in (True, False, None)] == [
        " (higher is better)",
        " (lower is better)",
        "",
    ]
    assert [direction_text(h, "arrow") for h in (True, False, None)] == [" ↑", " ↓", ""]
    assert direction_text(False, "arrow words") == "↓ lower is better"
    assert direction_text(None, "arrow words") == ""
    assert len(DIRECTION_FORMS) == 4
    with pytest.raises(ValueError, match="form must be one of"):
        direction_text(True, "emoji")


def test_every_metric_has_one_label_row():
    from squeezex.metrics.vocabulary import METRICS, Metric, label_of, short_name

    for name, m in METRICS.items():
        assert m.label.name and "_" not in m.label.name, name
        assert m.label.bounds is None or m.label.bounds[0] < m.label.bounds[1], name
        assert label_of(name) is m.label
    assert label_of("no_such_metric").name == "no such metric"
    assert short_name("iou") == "IoU" and short_name("speech_mass") == "speech mass"
    with pytest.raises(ValueError, match="needs its label"):
        Metric("x", "cost", "lower", "a number", "timing")
