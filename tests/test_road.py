"""ROAD (squeezex.metrics.road): the noisy linear imputation against linear equations
solved by hand, its invariants, the MoRF / LeRF curves on a toy model whose evidence is
known, input validation, and (when installed) agreement with pytorch-grad-cam."""

import numpy as np
import pytest
import torch
from torch import nn

from squeezex.metrics.road import (
    NEIGHBOUR_WEIGHTS,
    _ranks,
    impute_noisy_linear,
    road_curve,
    road_lerf_auc,
    road_morf_auc,
    road_score,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors (see conftest)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _neighbour_mean(img: torch.Tensor, y: int, x: int) -> torch.Tensor:
    """Σ w·img[neighbour] / Σ w over the neighbours inside the image (C values)."""
    h, w = img.shape[-2:]
    num, den = 0.0, 0.0
    for dy, dx, wt in NEIGHBOUR_WEIGHTS:
        if 0 <= y + dy < h and 0 <= x + dx < w:
            num = num + wt * img[:, y + dy, x + dx]
            den += wt
    return num / den


# -- the imputation ----------------------------------------------------------------------------
def test_weights_are_the_papers():
    direct = [w for dy, dx, w in NEIGHBOUR_WEIGHTS if abs(dy) + abs(dx) == 1]
    diagonal = [w for dy, dx, w in NEIGHBOUR_WEIGHTS if abs(dy) + abs(dx) == 2]
    assert direct == [1 / 6] * 4 and diagonal == [1 / 12] * 4
    assert sum(direct) + sum(diagonal) == pytest.approx(1.0)


def test_one_removed_pixel_is_the_weighted_mean_of_its_neighbours():
    img = _rand(2, 4, 4)
    for y, x in [(1, 2), (0, 0), (3, 1)]:  # interior, corner (weights 1/6+1/6+1/12), edge
        removed = torch.zeros(4, 4, dtype=torch.bool)
        removed[y, x] = True
        out = impute_noisy_linear(img, removed, noise=0)
        torch.testing.assert_close(out[:, y, x], _neighbour_mean(img, y, x))
    # the corner by hand: (x01/6 + x10/6 + x11/12) / (5/12)
    removed = torch.zeros(4, 4, dtype=torch.bool)
    removed[0, 0] = True
    corner = (img[:, 0, 1] / 6 + img[:, 1, 0] / 6 + img[:, 1, 1] / 12) / (5 / 12)
    torch.testing.assert_close(impute_noisy_linear(img, removed, noise=0)[:, 0, 0], corner)


def test_two_adjacent_removed_pixels_solve_the_coupled_equations():
    """a = Ka + b/6 and b = Kb + a/6 (interior pixels, weights sum to 1), where K is the
    weighted sum over the known neighbours: a = (Ka + Kb/6) / (35/36), b likewise."""
    img = _rand(3, 4, 4, seed=1)
    removed = torch.zeros(4, 4, dtype=torch.bool)
    removed[1, 1] = removed[1, 2] = True

    def known_sum(y, x):
        s = 0.0
        for dy, dx, wt in NEIGHBOUR_WEIGHTS:
            if not removed[y + dy, x + dx]:
                s = s + wt * img[:, y + dy, x + dx]
        return s

    ka, kb = known_sum(1, 1), known_sum(1, 2)
    a = (ka + kb / 6) / (35 / 36)
    b = (kb + ka / 6) / (35 / 36)
    out = impute_noisy_linear(img, removed, noise=0)
    torch.testing.assert_close(out[:, 1, 1], a)
    torch.testing.assert_close(out[:, 1, 2], b)
    torch.testing.assert_close(out[:, ~removed], img[:, ~removed], rtol=0, atol=0)


def test_every_imputed_pixel_is_the_mean_of_its_neighbours_after_the_solve():
    img = _rand(3, 9, 7, seed=2)
    removed = _rand(9, 7, seed=3) < 0.7
    removed[0, 0] = False
    out = impute_noisy_linear(img, removed, noise=0)
    for y, x in torch.nonzero(removed).tolist():
        torch.testing.assert_close(out[:, y, x], _neighbour_mean(out, y, x))


def test_all_removed_but_the_border_reproduces_a_linear_ramp():
    """The stencil is symmetric, so a linear function is its own neighbour mean: a ramp
    kept on the border is imputed exactly inside."""
    yy, xx = torch.meshgrid(torch.arange(8.0), torch.arange(10.0), indexing="ij")
    img = torch.stack([0.3 * yy - 0.2 * xx + 1, 0.05 * xx, -0.1 * yy]).double()
    removed = torch.zeros(8, 10, dtype=torch.bool)
    removed[1:-1, 1:-1] = True
    out = impute_noisy_linear(img, removed, noise=0)
    torch.testing.assert_close(out, img)


def test_constant_image_stays_constant_and_known_pixels_are_untouched():
    img = torch.full((3, 6, 6), 0.25)
    img[1] = -2.0
    removed = _rand(6, 6, seed=4) < 0.8
    removed[5, 5] = False
    torch.testing.assert_close(impute_noisy_linear(img, removed, noise=0), img)
    noisy = impute_noisy_linear(img, removed, noise=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy[:, ~removed], img[:, ~removed])
    assert noisy.dtype == img.dtype and noisy.shape == img.shape


def test_noise_zero_is_deterministic_and_a_seeded_generator_reproduces_the_noise():
    img = _rand(2, 3, 16, 16, seed=5).float()
    removed = _rand(2, 16, 16, seed=6) < 0.5
    a = impute_noisy_linear(img, removed, noise=0)
    assert torch.equal(a, impute_noisy_linear(img, removed, noise=0))

    def noisy(seed):
        g = torch.Generator().manual_seed(seed)
        return impute_noisy_linear(img, removed, noise=0.05, generator=g)

    assert torch.equal(noisy(1), noisy(1))
    assert not torch.equal(noisy(1), noisy(2))
    diff = (noisy(1) - a).permute(1, 0, 2, 3)  # C×N×H×W
    assert torch.all(diff[:, removed] != 0) and torch.all(diff[:, ~removed] == 0)
    assert diff[:, removed].std().item() == pytest.approx(0.05, rel=0.15)


def test_a_batch_is_imputed_image_by_image_and_a_shared_mask_broadcasts():
    img = _rand(3, 2, 7, 7, seed=7)
    removed = _rand(3, 7, 7, seed=8) < 0.6
    removed[:, 3, 3] = False
    batch = impute_noisy_linear(img, removed, noise=0)
    for k in range(3):
        torch.testing.assert_close(batch[k], impute_noisy_linear(img[k], removed[k], noise=0))
    shared = impute_noisy_linear(img, removed[0], noise=0)
    torch.testing.assert_close(shared[2], impute_noisy_linear(img[2], removed[0], noise=0))


@pytest.mark.parametrize(
    ("image", "removed", "kwargs", "message"),
    [
        (torch.rand(4, 4), torch.zeros(4, 4, dtype=torch.bool), {}, "C×H×W or N×C×H×W"),
        (torch.rand(1, 3, 2, 4, 4), torch.zeros(4, 4, dtype=torch.bool), {}, "C×H×W or N×C×H×W"),
        (torch.rand(3, 4, 4), torch.zeros(4, 4), {}, "bool tensor"),
        (torch.rand(3, 4, 4), torch.zeros(4, 5, dtype=torch.bool), {}, "H×W"),
        (torch.rand(2, 3, 4, 4), torch.zeros(3, 4, 4, dtype=torch.bool), {}, "N×H×W"),
        (torch.rand(3, 4, 4), torch.ones(4, 4, dtype=torch.bool), {}, "every pixel removed"),
        (torch.rand(3, 4, 4), torch.zeros(4, 4, dtype=torch.bool), {"noise": -1}, "noise"),
        (
            torch.rand(3, 4, 4),
            torch.zeros(4, 4, dtype=torch.bool),
            {"noise": float("inf")},
            "finite",
        ),
        (torch.ones(3, 4, 4, dtype=torch.long), torch.zeros(4, 4, dtype=torch.bool), {}, "float"),
    ],
)
def test_imputation_rejects_bad_input(image, removed, kwargs, message):
    with pytest.raises(ValueError, match=message):
        impute_noisy_linear(image, removed, **kwargs)


# -- the curves --------------------------------------------------------------------------------
class CentreEvidence(nn.Module):
    """Logits (S, −S, 0), S = w · mean of the pixels in a central square (all channels).

    The image is 1 in the square and 0 elsewhere: only the square carries the class.
    Records its mode during forward (the metric must run in eval mode without grad).
    """

    def __init__(self, size=16, half=2, w=3.0) -> None:
        super().__init__()
        c = size // 2
        self.box = (slice(c - half, c + half), slice(c - half, c + half))
        self.w = w
        self.drop = nn.Dropout(0.5)
        self.seen = []

    def forward(self, x, scale=None):
        self.seen.append((self.training, torch.is_grad_enabled()))
        s = self.w * x[:, :, self.box[0], self.box[1]].mean((1, 2, 3))
        if scale is not None:
            s = s * scale
        s = self.drop(s)
        return torch.stack([s, -s, torch.zeros_like(s)], 1)


def _toy(n=3, size=16):
    model = CentreEvidence(size)
    x = torch.zeros(n, 3, size, size)
    x[:, :, model.box[0], model.box[1]] = 1.0
    good = torch.zeros(n, 1, size, size)
    good[:, :, model.box[0], model.box[1]] = 1.0
    good += 0.01 * _rand(n, 1, size, size, seed=9).float()  # distinct values
    rand = _rand(n, 1, size, size, seed=10).float()
    return model, x, good, rand


def test_morf_falls_faster_and_lerf_stays_higher_with_the_true_map():
    model, x, good, rand = _toy()
    morf_good = road_morf_auc(model, x, good, 0, noise=0.01)
    morf_rand = road_morf_auc(model, x, rand, 0, noise=0.01)
    lerf_good = road_lerf_auc(model, x, good, 0, noise=0.01)
    lerf_rand = road_lerf_auc(model, x, rand, 0, noise=0.01)
    assert torch.all(morf_good < morf_rand - 0.3), (morf_good, morf_rand)
    # Random removal inside the square is imputed from the square's remaining pixels
    # (ROAD's point: the removal itself no longer deletes the evidence), so a random
    # map's LeRF stays fairly high; the true map's is higher still.
    assert torch.all(lerf_good > lerf_rand + 0.02), (lerf_good, lerf_rand)
    # the inverted map is the worst: its LeRF removes the square first
    worst = -good
    assert torch.all(road_lerf_auc(model, x, worst, 0) < lerf_rand - 0.1)
    assert torch.all(road_morf_auc(model, x, worst, 0) > morf_good + 0.3)
    assert torch.all(road_score(model, x, good, 0) > road_score(model, x, rand, 0))
    # the true map's MoRF removes the square at once: the evidence is gone at 10 %
    _, sc = road_curve(model, x, good, 0, fractions=[0.0, 0.1], noise=0)
    p0 = torch.softmax(torch.tensor([3.0, -3.0, 0.0]), 0)[0]
    torch.testing.assert_close(sc[:, 0], p0.expand(3))
    assert torch.all(sc[:, 1] < 0.5)
    assert all(seen == (False, False) for seen in model.seen)
    assert model.training  # restored


def test_curve_shapes_fractions_and_aucs():
    model, x, good, _ = _toy(2)
    fr, sc = road_curve(model, x, good, [0, 1], fractions=(0.0, 0.25, 0.5), order="lerf")
    torch.testing.assert_close(fr, torch.tensor([0.0, 0.25, 0.5]))
    assert sc.shape == (2, 3) and sc.dtype == torch.float32
    assert torch.all((sc >= 0) & (sc <= 1))
    # actual fractions: round(f·P) / P with P = 256
    fr, _ = road_curve(model, x, good, 0, fractions=[0.1])
    assert fr.item() == pytest.approx(26 / 256)
    fr, sc = road_curve(model, x, good, 0)  # default fractions
    expected = torch.trapezoid(sc, fr, dim=1) / (fr[-1] - fr[0])
    torch.testing.assert_close(road_morf_auc(model, x, good, 0), expected)
    _, one = road_curve(model, x, good, 0, fractions=[0.3], order="lerf")
    torch.testing.assert_close(road_lerf_auc(model, x, good, 0, fractions=[0.3]), one[:, 0])
    score = road_score(model, x, good, 0, fractions=[0.2, 0.6])
    lerf = road_lerf_auc(model, x, good, 0, fractions=[0.2, 0.6])
    morf = road_morf_auc(model, x, good, 0, fractions=[0.2, 0.6])
    torch.testing.assert_close(score, lerf - morf)


def test_curve_is_seeded_and_independent_of_the_batch_size():
    model, x, _, rand = _toy()
    x = x + 0.3 * _rand(*x.shape, seed=11).float()
    kw = {"fractions": [0.2, 0.5, 0.8], "noise": 0.2}
    _, a = road_curve(model, x, rand, None, batch_size=1, seed=3, **kw)
    _, b = road_curve(model, x, rand, None, batch_size=4, seed=3, **kw)
    _, c = road_curve(model, x, rand, None, batch_size=64, seed=4, **kw)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)


def test_additional_forward_args_follow_the_samples():
    model, x, good, _ = _toy(2)
    scale = torch.tensor([1.0, 0.0])  # sample 1: logits 0 → probability 1/3 throughout
    _, sc = road_curve(
        model, x, good, 0, order="lerf", batch_size=3, additional_forward_args=(scale,)
    )
    torch.testing.assert_close(sc[1], torch.full((5,), 1 / 3), check_dtype=False)
    assert torch.all(sc[0] > 0.9)  # LeRF with the true map keeps the square


def test_ties_are_broken_by_a_seeded_permutation_and_distinct_values_keep_their_order():
    g = torch.Generator().manual_seed(0)
    distinct = torch.randperm(20, generator=torch.Generator().manual_seed(1)).float()
    rank = _ranks(distinct.view(1, 1, 4, 5), g)[0]
    assert torch.equal(rank, (19 - distinct).long())  # highest value: rank 0
    flat = torch.zeros(2, 1, 4, 5)
    r1 = _ranks(flat, torch.Generator().manual_seed(0))
    r2 = _ranks(flat, torch.Generator().manual_seed(0))
    r3 = _ranks(flat, torch.Generator().manual_seed(1))
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    assert torch.equal(r1[0].sort().values, torch.arange(20))
    assert not torch.equal(r1[0], torch.arange(20))  # not raster order
    mixed = torch.tensor([[0.0, 1.0, 0.0, 1.0, 2.0]]).view(1, 1, 1, 5)
    rm = _ranks(mixed, torch.Generator().manual_seed(5))[0].view(-1)
    assert rm[4] == 0 and set(rm[[1, 3]].tolist()) == {1, 2} and set(rm[[0, 2]].tolist()) == {3, 4}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": "MoRF-ish"}, "order must be 'morf' or 'lerf'"),
        ({"fractions": [0.5, 0.2]}, "strictly increasing"),
        ({"fractions": [0.2, 1.0]}, r"\[0, 1\)"),
        ({"fractions": [-0.1]}, r"\[0, 1\)"),
        ({"fractions": []}, "non-empty"),
        ({"fractions": "0.5"}, "non-empty"),
        ({"fractions": [0.999]}, "removes all 256 pixels"),
        ({"noise": -0.1}, "noise"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_curve_rejects_bad_options(kwargs, message):
    model, x, good, _ = _toy(1)
    with pytest.raises(ValueError, match=message):
        road_curve(model, x, good, 0, **kwargs)


def test_curve_rejects_bad_inputs_maps_and_targets():
    model, x, good, _ = _toy(2)
    with pytest.raises(ValueError, match="maps must be N×1"):
        road_curve(model, x, good[:, :, :8], 0)
    with pytest.raises(ValueError, match="NaN"):
        road_curve(model, x, good * float("nan"), 0)
    with pytest.raises(ValueError, match="clips"):
        road_curve(model, x[:, :, None], good[:, :, None], 0)
    with pytest.raises(ValueError, match="target"):
        road_curve(model, x, good, 0.5)
    with pytest.raises(ValueError, match="floating point"):
        road_curve(model, x.long(), good, 0)


# -- pytorch-grad-cam (the paper's code), when installed -----------------------------------
def test_imputation_matches_pytorch_grad_cam():
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    g = torch.Generator().manual_seed(0)
    for h, w in [(8, 8), (12, 9), (20, 20)]:
        img = torch.rand(3, h, w, generator=g)
        removed = torch.rand(h, w, generator=g) < 0.7
        removed[0, 0] = False
        theirs = NoisyLinearImputer(noise=0)(img, (~removed).float())
        ours = impute_noisy_linear(img, removed, noise=0)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)
