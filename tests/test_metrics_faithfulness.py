"""Faithfulness metrics on tiny models whose answers are known by hand, and against
float64 literal re-implementations of the formulas."""

import math

import pytest
import torch
from torch import nn

from squeezex.metrics import (
    FAITHFULNESS,
    deletion_auc,
    deletion_curve,
    infidelity_score,
    insertion_auc,
    insertion_curve,
    perturbation_baseline,
    sensitivity_score,
)
from squeezex.metrics.faithfulness import _square_masks


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add synchronisation, which costs ~100× when
    the cores are shared with other jobs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class RegionSum(nn.Module):
    """Logits (S, −S, 0) with S = w · Σ of the pixels (all channels) in ``region``.

    Softmax of (S, 0) alone would be sigmoid(S); with three classes class 0's
    probability is e^S / (e^S + e^−S + 1). It also records its mode during forward.
    """

    def __init__(self, region=(slice(0, 2), slice(0, 2)), w=1.0) -> None:
        super().__init__()
        self.region = region
        self.w = w
        self.drop = nn.Dropout(0.5)  # must be inactive: the metrics run in eval mode
        self.seen = []

    def forward(self, x, scale=None):
        self.seen.append((self.training, torch.is_grad_enabled()))
        s = self.w * x[:, :, self.region[0], self.region[1]].sum((1, 2, 3))
        if scale is not None:
            s = s * scale
        s = self.drop(s)
        return torch.stack([s, -s, torch.zeros_like(s)], 1)


def _p(s: float, cls: int = 0) -> float:
    logits = [s, -s, 0.0]
    z = sum(math.exp(v) for v in logits)
    return math.exp(logits[cls]) / z


def _maps_region_first():
    """On 4×4: the top-left 2×2 region ranks first, the rest after (raster order)."""
    m = torch.zeros(1, 1, 4, 4)
    m[0, 0, :2, :2] = 1.0
    m[0, 0] += torch.arange(16).reshape(4, 4) * -0.01  # distinct values, raster order
    return m


def test_deletion_and_insertion_by_hand():
    model = RegionSum()
    x = torch.ones(1, 1, 4, 4)
    good = _maps_region_first()
    rev = -good  # region last
    # steps=4 → 4 pixels per step. good: S = 4, 0, 0, 0, 0; reversed: S = 4, 4, 4, 4, 0
    fr, sc = deletion_curve(model, x, good, 0, steps=4, baseline="zero")
    torch.testing.assert_close(fr, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    torch.testing.assert_close(sc[0], torch.tensor([_p(4), _p(0), _p(0), _p(0), _p(0)]))
    _, sc_rev = deletion_curve(model, x, rev, 0, steps=4, baseline="zero")
    torch.testing.assert_close(sc_rev[0], torch.tensor([_p(4)] * 4 + [_p(0)]))
    # insertion from zero: good S = 0, 4, 4, 4, 4; reversed S = 0, 0, 0, 0, 4
    _, ins = insertion_curve(model, x, good, 0, steps=4, baseline="zero")
    torch.testing.assert_close(ins[0], torch.tensor([_p(0)] + [_p(4)] * 4))
    # trapezoids with Δf = 1/4
    del_good = 0.25 * ((_p(4) + _p(0)) / 2 + 3 * _p(0))
    del_rev = 0.25 * (3 * _p(4) + (_p(4) + _p(0)) / 2)
    assert deletion_auc(model, x, good, 0, steps=4, baseline="zero").item() == pytest.approx(
        del_good, abs=1e-6
    )
    assert deletion_auc(model, x, rev, 0, steps=4, baseline="zero").item() == pytest.approx(
        del_rev, abs=1e-6
    )
    ins_good = insertion_auc(model, x, good, 0, steps=4, baseline="zero").item()
    ins_rev = insertion_auc(model, x, rev, 0, steps=4, baseline="zero").item()
    assert ins_good == pytest.approx(0.25 * ((_p(0) + _p(4)) / 2 + 3 * _p(4)), abs=1e-6)
    assert ins_rev == pytest.approx(0.25 * (3 * _p(0) + (_p(0) + _p(4)) / 2), abs=1e-6)
    assert del_good < del_rev and ins_good > ins_rev
    # the model ran in eval mode without autograd, and its flag is back
    assert model.training and all(s == (False, False) for s in model.seen)


def test_ties_are_broken_in_raster_order():
    model = RegionSum()
    x = torch.ones(1, 1, 4, 4)
    # constant map: rows are deleted top-down; row 0 holds 2 region pixels, row 1 the others
    _, sc = deletion_curve(model, x, torch.zeros(1, 1, 4, 4), 0, steps=4, baseline="zero")
    torch.testing.assert_close(sc[0], torch.tensor([_p(4), _p(2), _p(0), _p(0), _p(0)]))


def _literal_curve(model, x, maps, target, steps, base, mode):
    """Per sample, per step: build the image pixel by pixel (float64)."""
    model.eval()
    n, c, h, w = x.shape
    p = h * w
    out = torch.empty(n, steps + 1, dtype=torch.float64)
    for i in range(n):
        vals = maps[i, 0].flatten().tolist()
        order = sorted(range(p), key=lambda k: (-vals[k], k))
        for j in range(steps + 1):
            k = math.floor(j * p / steps + 0.5)
            changed = set(order[:k])
            img = x[i].clone().double()
            for q in range(p):
                r, col = divmod(q, w)
                if (q in changed) == (mode == "deletion"):
                    img[:, r, col] = base[i, :, r, col].double()
            logits = model(img[None].float()).double()
            out[i, j] = logits.softmax(1)[0, target[i]]
    return out


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_curves_match_a_literal_reference(mode):
    g = torch.Generator().manual_seed(0)
    model = RegionSum(region=(slice(1, 4), slice(2, 5)), w=0.7)
    x = torch.rand(3, 2, 6, 6, generator=g)
    maps = (torch.rand(3, 1, 6, 6, generator=g) * 5).floor() / 5  # ties
    target = [0, 1, 2]
    base = perturbation_baseline(x, "mean")
    fn = deletion_curve if mode == "deletion" else insertion_curve
    # P = 36, steps = 5 → 0, 7, 14, 22, 29, 36 pixels (round half up)
    fr, sc = fn(model, x, maps, target, steps=5, baseline="mean", batch_size=4)
    torch.testing.assert_close(fr, torch.tensor([0, 7, 14, 22, 29, 36]) / 36)
    assert model.training  # restored; the reference runs in eval mode (no dropout)
    ref = _literal_curve(model, x, maps, target, 5, base, mode)
    torch.testing.assert_close(sc.double(), ref, atol=1e-6, rtol=1e-5)


def test_batched_equals_per_sample_and_extra_args_follow_the_samples():
    g = torch.Generator().manual_seed(1)
    model = RegionSum(w=0.3)
    x = torch.rand(3, 3, 8, 8, generator=g)
    maps = torch.rand(3, 1, 8, 8, generator=g)
    scale = torch.tensor([1.0, -2.0, 0.5])
    kw = {"steps": 7, "baseline": "blur", "additional_forward_args": scale}
    _, together = insertion_curve(model, x, maps, [0, 1, 0], batch_size=5, **kw)
    for i, t in enumerate([0, 1, 0]):
        one = dict(kw, additional_forward_args=scale[i : i + 1])
        _, alone = insertion_curve(model, x[i : i + 1], maps[i : i + 1], t, batch_size=64, **one)
        torch.testing.assert_close(together[i : i + 1], alone)
    a = deletion_auc(model, x, maps, 0, steps=7, batch_size=1)
    b = deletion_auc(model, x, maps, torch.tensor(0), steps=7, batch_size=100)
    torch.testing.assert_close(a, b)


def test_target_none_is_the_predicted_class():
    model = RegionSum()
    x = torch.stack([torch.ones(1, 4, 4), -torch.ones(1, 4, 4)])  # predicts class 0, then 1
    maps = _maps_region_first().expand(2, 1, 4, 4)
    a = deletion_auc(model, x, maps, None, steps=4, baseline="zero")
    b = deletion_auc(model, x, maps, [0, 1], steps=4, baseline="zero")
    torch.testing.assert_close(a, b)


def test_baselines():
    x = torch.rand(2, 3, 9, 9, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(perturbation_baseline(x, "zero"), torch.zeros_like(x))
    mean = perturbation_baseline(x, "mean")
    torch.testing.assert_close(mean[:, :, 4, 4], x.mean((2, 3)))
    torch.testing.assert_close(perturbation_baseline(x, 0.5), torch.full_like(x, 0.5))
    chan = torch.tensor([0.1, 0.2, 0.3])[:, None, None]
    torch.testing.assert_close(perturbation_baseline(x, chan)[1, :, 0, 0], chan.flatten())
    # blur of an impulse in the middle = the outer product of the normalised 1-d kernel
    imp = torch.zeros(1, 1, 21, 21)
    imp[0, 0, 10, 10] = 1.0
    sigma = 1.0
    k = torch.exp(-((torch.arange(7.0) - 3) ** 2) / (2 * sigma**2))  # ±3σ
    k = k / k.sum()
    blurred = perturbation_baseline(imp, "blur", blur_sigma=sigma)
    torch.testing.assert_close(blurred[0, 0, 7:14, 7:14], torch.outer(k, k))
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-5)
    # default σ: 5 % of the side (here 1.05 px at 21 px) — a constant image stays constant
    const = torch.full((1, 2, 21, 21), 0.3)
    torch.testing.assert_close(perturbation_baseline(const, "blur"), const)
    with pytest.raises(ValueError, match="baseline must be"):
        perturbation_baseline(x, "noise")
    with pytest.raises(ValueError, match="does not broadcast"):
        perturbation_baseline(x, torch.zeros(5))


def test_curve_errors_are_named():
    model = RegionSum()
    x = torch.ones(2, 1, 4, 4)
    with pytest.raises(ValueError, match="maps must be N×1×"):
        deletion_curve(model, x, torch.zeros(2, 1, 3, 4), 0)
    with pytest.raises(ValueError, match="steps must be"):
        deletion_curve(model, x, torch.zeros(2, 1, 4, 4), 0, steps=0)
    with pytest.raises(ValueError, match="one entry per sample"):
        deletion_curve(model, x, torch.zeros(2, 1, 4, 4), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="NaN"):
        deletion_curve(model, x, torch.full((2, 1, 4, 4), float("nan")), 0)


def test_global_rng_untouched():
    model = RegionSum(w=0.1)
    x = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    maps = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    state = torch.random.get_rng_state()
    deletion_auc(model, x, maps, 0, steps=3)
    infidelity_score(model, x, maps, 0, n_perturb=3)
    sensitivity_score(lambda inp, target=None: inp, x, 0, n_perturb=3)
    assert torch.equal(state, torch.random.get_rng_state())


# -- infidelity ---------------------------------------------------------------------------------
class Linear(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:  # classes × C×H×W
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x):
        return x.flatten(1) @ self.weight.flatten(1).T


def _infidelity_reference(model, x, maps, target, pert, normalize):
    """Captum's formula, literally, in float64, for given perturbations pert[k, i]."""
    n = x.shape[0]
    out = torch.empty(n, dtype=torch.float64)
    for i in range(n):
        phi = maps[i].double().expand_as(x[i])
        dots, diffs = [], []
        for k in range(pert.shape[0]):
            pk = pert[k, i].double()
            dots.append((pk * phi).sum())
            f = model(x[i : i + 1].double())[0, target[i]]
            f_pert = model((x[i : i + 1] - pert[k, i : i + 1]).double())[0, target[i]]
            diffs.append(f - f_pert)
        dots, diffs = torch.stack(dots), torch.stack(diffs)
        if normalize:
            beta = (dots * diffs).sum() / (dots**2).sum()
            dots = beta * dots
        out[i] = ((dots - diffs) ** 2).mean()
    return out


@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_matches_the_formula(normalize):
    g = torch.Generator().manual_seed(5)
    weight = torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64)
    model = Linear(weight).double()
    x = torch.rand(2, 2, 4, 4, generator=g, dtype=torch.float64)
    maps = torch.rand(2, 1, 4, 4, generator=g, dtype=torch.float64)
    target = [2, 0]
    kw = {"perturbation": "gaussian", "noise": 0.3, "seed": 7, "normalize": normalize}
    ours = infidelity_score(model, x, maps, target, n_perturb=6, **kw)
    # the perturbations: N(0, 0.3²) drawn as (n_perturb, N, C, H, W) from a seed-7 generator
    pert = torch.randn(
        (6, *x.shape), generator=torch.Generator().manual_seed(7), dtype=torch.float64
    )
    ref = _infidelity_reference(model, x, maps, target, pert * 0.3, normalize)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-6, atol=1e-9)
    # Captum's batching does not change the draws
    chunked = infidelity_score(model, x, maps, target, n_perturb=6, batch_size=4, **kw)
    torch.testing.assert_close(chunked, ours)


@pytest.mark.parametrize("normalize", [False, True])
def test_square_removal_infidelity_matches_the_formula(normalize):
    g = torch.Generator().manual_seed(5)
    model = Linear(torch.randn(3, 2, 8, 8, generator=g, dtype=torch.float64)).double()
    x = torch.rand(2, 2, 8, 8, generator=g, dtype=torch.float64)
    maps = torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)
    ours = infidelity_score(model, x, maps, [1, 2], n_perturb=5, square=2, p=0.3, seed=3,
                            baseline=0.5, normalize=normalize)  # fmt: skip
    removed = _square_masks(5, x, 2, 0.3, torch.Generator().manual_seed(3))
    assert removed.shape == (5, 2, 1, 8, 8) and removed.flatten(2).any(2).all()
    pert = removed * (x - 0.5)  # I: x − baseline on the removed squares, 0 elsewhere
    ref = _infidelity_reference(model, x, maps, [1, 2], pert, normalize)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-6, atol=1e-9)


def test_square_removal_ranks_a_constant_map_below_the_true_one():
    # f = w·x: the true explanation of removing squares is w (per pixel); a constant
    # map and a random one predict the output change worse
    g = torch.Generator().manual_seed(11)
    w = torch.zeros(2, 1, 16, 16, dtype=torch.float64)
    w[1, 0, 2:6, 3:9] = 1.0
    w[1] += 0.05 * torch.rand(1, 16, 16, generator=g, dtype=torch.float64)
    model = Linear(w).double()
    x = torch.rand(4, 1, 16, 16, generator=g, dtype=torch.float64)
    true = infidelity_score(model, x, w[1:2].expand(4, 1, 16, 16), 1, n_perturb=20)
    const = infidelity_score(
        model, x, torch.ones(4, 1, 16, 16, dtype=torch.float64), 1, n_perturb=20
    )
    rand = infidelity_score(
        model, x, torch.rand(4, 1, 16, 16, generator=g, dtype=torch.float64), 1, n_perturb=20
    )
    assert (true < 1e-9).all() and (const > 1e-3).all() and (rand > 1e-3).all()


def test_infidelity_options_are_checked():
    model, x = Linear(torch.ones(2, 1, 4, 4)), torch.rand(1, 1, 4, 4)
    with pytest.raises(ValueError, match="perturbation must be"):
        infidelity_score(model, x, x, 0, perturbation="blur")
    with pytest.raises(ValueError, match="p must be in"):
        infidelity_score(model, x, x, 0, p=0)
    with pytest.raises(ValueError, match="noise must be"):
        infidelity_score(model, x, x, 0, perturbation="gaussian", noise=0)
    with pytest.raises(ValueError, match="noise does not apply to 'squares'"):
        infidelity_score(model, x, x, 0, noise=0.3)
    with pytest.raises(ValueError, match="square, p does not apply to 'gaussian'"):
        infidelity_score(model, x, x, 0, perturbation="gaussian", square=2, p=0.5)


def test_every_square_draw_removes_pixels_inside_the_image():
    # sparse draws (p = 0.02) on a small image: many would remove nothing without the guard
    x = torch.zeros(3, 1, 8, 8)
    masks = _square_masks(400, x, 2, 0.02, torch.Generator().manual_seed(0))
    assert masks.shape == (400, 3, 1, 8, 8)
    assert masks.flatten(2).any(2).all()
    # each draw removes whole cells of a 2-pixel grid shifted by its own offset: 2×2
    # blocks start at odd rows in some draws and at even rows in others
    starts = {int(m.nonzero()[0, 0]) % 2 for m in masks[:, 0, 0] if m[1:].any() and not m[0].any()}
    assert starts == {0, 1}


def test_infidelity_is_zero_for_the_exact_linear_explanation():
    # f = w·x with a single channel: f(x) − f(x − I) = w·I exactly, whatever I is
    w = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    model = Linear(w).double()
    x = torch.rand(3, 1, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    maps = w[1:2].expand(3, 1, 5, 5)
    for normalize, scale in ((False, 1.0), (True, 3.0)):  # normalised: scale-invariant
        v = infidelity_score(model, x, maps * scale, 1, normalize=normalize)
        torch.testing.assert_close(v, torch.zeros(3, dtype=v.dtype), atol=1e-12, rtol=0)
    # a wrong map is not
    assert (infidelity_score(model, x, maps.flip(-1), 1, normalize=False) > 1e-4).all()
    assert FAITHFULNESS["infidelity"] is infidelity_score


# -- sensitivity --------------------------------------------------------------------------------
def test_sensitivity_of_constant_and_identity_explainers():
    x = torch.ones(2, 1, 16, 16)
    const = sensitivity_score(lambda inp, target=None: torch.ones(inp.shape[0], 1, 16, 16), x, 0)
    torch.testing.assert_close(const, torch.zeros(2))

    def identity(inp, target=None):
        return 2 * inp  # proportional to the input

    r = 0.05
    ours = sensitivity_score(identity, x, 0, radius=r, n_perturb=5, seed=3)
    # ‖Φ(x+δ) − Φ(x)‖ / ‖Φ(x)‖ = ‖δ‖ / ‖x‖ = ‖δ‖ / 16, max over the 5 draws of U(−r, r)^256
    draws = torch.rand(
        (5, 2, 1, 16, 16), generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    deltas = ((draws * 2 - 1) * r).float()
    ref = deltas.flatten(2).norm(dim=2).max(0).values / 16
    torch.testing.assert_close(ours, ref)
    # and that is ≈ r/√3 (the RMS of U(−r, r)), never above r
    assert ((ours - r / math.sqrt(3)).abs() < 0.1 * r).all() and (ours <= r).all()


def test_sensitivity_with_an_attribution_object_is_seeded(se_model):
    from squeezex import get_explainer

    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    gradcam = get_explainer("gradcam", se_model)
    a = sensitivity_score(gradcam, x, [1, 2], n_perturb=3, seed=0)
    b = sensitivity_score(gradcam, x, [1, 2], n_perturb=3, seed=0, batch_size=4)  # 2 chunks
    torch.testing.assert_close(a, b)
    assert a.shape == (2,) and torch.isfinite(a).all() and (a >= 0).all()
    one = sensitivity_score(gradcam, x[:1], 1, n_perturb=2, seed=1)  # a single sample
    assert one.shape == (1,) and one.item() != a[0].item()
