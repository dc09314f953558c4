"""Localisation metrics on hand-computed cases."""

import pytest
import torch

from squeezex.metrics import (
    energy_pointing_game,
    iou,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)


def _case():
    maps = torch.zeros(2, 1, 4, 4)
    maps[0, 0, 1, 1] = 1.0  # max inside the mask
    maps[0, 0, 3, 3] = 0.5
    maps[1, 0, 0, 3] = 1.0  # max outside
    maps[1, 0, 1, 1] = 0.25
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    masks[:, 0, 1:3, 1:3] = True  # a 2×2 square
    return maps, masks


def test_pointing_game_by_hand():
    maps, masks = _case()
    assert pointing_game(maps, masks).tolist() == [1.0, 0.0]
    # (0, 3) is 1 px from (1, 2): a hit with tolerance 1
    assert pointing_game(maps, masks, tolerance=1).tolist() == [1.0, 1.0]
    assert pointing_game(torch.zeros(1, 1, 4, 4), masks[:1]).item() == 0.0  # constant map


def test_energy_and_mass_by_hand():
    maps, masks = _case()
    expected = torch.tensor([1.0 / 1.5, 0.25 / 1.25])
    torch.testing.assert_close(energy_pointing_game(maps, masks), expected)
    torch.testing.assert_close(relevance_mass_accuracy(maps, masks), expected)


def test_rank_accuracy_by_hand():
    maps, masks = _case()
    # K = 4 mask pixels; sample 0's top 4: (1,1), (3,3) and two zeros → ties resolved by topk
    m = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    # the top 4 of 0..15 are pixels 12..15 (bottom row): none in the 2×2 centre square
    assert relevance_rank_accuracy(m, masks[:1]).item() == 0.0
    m2 = masks[:1].float() * 2 + m / 100
    assert relevance_rank_accuracy(m2, masks[:1]).item() == 1.0


def test_iou_by_hand():
    maps, masks = _case()
    # sample 0: mean = 1.5/16; pixels above: (1,1), (3,3) → inter 1, union 5
    torch.testing.assert_close(iou(maps, masks), torch.tensor([1 / 5, 1 / 5]))
    torch.testing.assert_close(iou(masks.float(), masks), torch.ones(2))


def test_shape_errors_are_named():
    maps, masks = _case()
    with pytest.raises(ValueError, match="differ in size"):
        pointing_game(maps, masks[..., :3])
    with pytest.raises(ValueError, match="N×1×H×W"):
        iou(maps[:, 0], masks)
    with pytest.raises(ValueError, match="non-empty mask"):
        iou(maps, torch.zeros_like(masks))
