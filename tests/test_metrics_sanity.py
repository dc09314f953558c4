"""Sanity checks: SSIM and Spearman against literal references, and the cascading
model-parameter randomisation test of Adebayo et al. (2018)."""

import math

import pytest
import torch
from scipy.stats import spearmanr

from squeezex import get_explainer
from squeezex.metrics import cascading_randomization, randomization_layers, spearman, ssim


# -- SSIM ---------------------------------------------------------------------------------------
def _ssim_literal(a: torch.Tensor, b: torch.Tensor, size=11, sigma=1.5, c1=1e-4, c2=9e-4):
    """Wang et al. (2004), window by window, in float64 plain Python."""
    h, w = a.shape
    g = [math.exp(-((k - (size - 1) / 2) ** 2) / (2 * sigma**2)) for k in range(size)]
    g = [v / sum(g) for v in g]
    a, b = a.double().tolist(), b.double().tolist()
    values = []
    for i in range(h - size + 1):
        for j in range(w - size + 1):
            mx = my = sxx = syy = sxy = 0.0
            for u in range(size):
                for v in range(size):
                    wt = g[u] * g[v]
                    x, y = a[i + u][j + v], b[i + u][j + v]
                    mx += wt * x
                    my += wt * y
                    sxx += wt * x * x
                    syy += wt * y * y
                    sxy += wt * x * y
            vx, vy, cxy = sxx - mx * mx, syy - my * my, sxy - mx * my
            values.append(
                (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
            )
    return sum(values) / len(values)


def test_ssim_of_identical_maps_is_one():
    x = torch.rand(3, 1, 20, 20, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ssim(x, x), torch.ones(3))


def test_ssim_of_constant_maps_by_hand():
    # no variance anywhere: SSIM = (2ab + C1) / (a² + b² + C1), C1 = (0.01·1)²
    a, b = 0.2, 0.6
    expected = (2 * a * b + 1e-4) / (a * a + b * b + 1e-4)
    got = ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # against black: C1 / (1 + C1) ≈ 1e-4
    assert ssim(torch.zeros(1, 1, 12, 12), torch.ones(1, 1, 12, 12)).item() == pytest.approx(
        1e-4 / (1 + 1e-4), rel=1e-4
    )


def test_ssim_matches_a_literal_window_loop():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, 1, 14, 15, generator=g)
    b = (a + 0.3 * torch.rand(2, 1, 14, 15, generator=g)).clamp(0, 1)
    ours = ssim(a, b)
    for i in range(2):
        assert ours[i].item() == pytest.approx(_ssim_literal(a[i, 0], b[i, 0]), abs=1e-6)
    # maps smaller than the window use the largest odd window that fits (8×9 → 7)
    small_a, small_b = a[:1, :, :8, :9], b[:1, :, :8, :9]
    assert ssim(small_a, small_b).item() == pytest.approx(
        _ssim_literal(small_a[0, 0], small_b[0, 0], size=7), abs=1e-6
    )
    # clips average their frames
    clip_a = torch.stack([a[:1], b[:1]], 2)  # 1×1×2×H×W
    clip_b = torch.stack([b[:1], b[:1]], 2)
    assert ssim(clip_a, clip_b).item() == pytest.approx((ours[0].item() + 1) / 2, abs=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(a, b[:1])


# -- Spearman -----------------------------------------------------------------------------------
def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(2)
    a = (torch.rand(4, 1, 6, 6, generator=g) * 3).floor()
    b = (a + torch.rand(4, 1, 6, 6, generator=g) * 2).floor()
    ours = spearman(a, b)
    for i in range(4):
        ref = spearmanr(a[i].flatten().numpy(), b[i].flatten().numpy()).statistic
        assert ours[i].item() == pytest.approx(ref, abs=1e-6)
    assert spearman(a, a).tolist() == pytest.approx([1.0] * 4)
    assert spearman(a, -a).tolist() == pytest.approx([-1.0] * 4)
    assert math.isnan(spearman(torch.zeros(1, 1, 3, 3), a[:1, :, :3, :3]).item())  # constant


# -- cascading randomisation --------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add synchronisation, which costs ~100× when
    the cores are shared with other jobs (measured: 7 s vs 0.1 s per test)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _gradcam(model):
    return get_explainer("gradcam", model)


@pytest.fixture
def small_batch():
    return torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_cascading_randomization_destroys_gradcam(se_model, small_batch):
    se_model.train()  # the caller's mode and weights must survive
    before = {k: v.clone() for k, v in se_model.state_dict().items()}
    rng = torch.random.get_rng_state()
    res = cascading_randomization(se_model, _gradcam, small_batch, 1, seed=0, init="reset")
    layers = res["layers"]
    assert layers[0] == "fc" and layers[-1] == "features.body.0"  # output first
    assert "features.se.fc2" in layers and "features.body.1" in layers  # SE, BatchNorm
    assert len(layers) == 15  # 6 convs, 6 BatchNorms, SE fc1 and fc2, fc
    assert res["spearman"].shape == res["ssim"].shape == (len(layers), 4)
    # (an untrained model: randomising fc alone already moves Grad-CAM a lot, and some
    # classes give all-zero maps, NaN correlations; class 1 of seed 0 gives neither)
    assert torch.isfinite(res["spearman"]).all()
    first, last = res["spearman"][0].mean(), res["spearman"][-1].mean()
    assert first > 0.4 and last < first - 0.5, (first, last)
    assert res["ssim"][-1].mean() < res["ssim"][0].mean() - 0.3
    # the caller's model is untouched, and so is the global RNG
    after = se_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(m.training for m in se_model.modules())
    assert torch.equal(rng, torch.random.get_rng_state())


def test_cascading_randomization_is_seeded_and_takes_layer_names(se_model, small_batch):
    names = ["fc", "features.body.15"]
    a = cascading_randomization(se_model, _gradcam, small_batch, 1, layers=names, seed=3)
    b = cascading_randomization(
        se_model, _gradcam, small_batch, 1, layers=names, seed=3, batch_size=3, return_maps=True
    )
    assert a["layers"] == names and a["spearman"].shape == (2, 4)
    assert b["maps"].shape == (3, 4, 1, 16, 16)
    # explaining 3 samples at a time: the same up to float noise in the maps
    torch.testing.assert_close(a["spearman"], b["spearman"], equal_nan=True, atol=1e-3, rtol=0)
    torch.testing.assert_close(a["ssim"], b["ssim"], atol=1e-4, rtol=0)
    other = cascading_randomization(
        se_model, _gradcam, small_batch, 1, layers=["fc"], seed=4, return_maps=True
    )
    torch.testing.assert_close(other["maps"][0], b["maps"][0])  # the original maps
    assert not torch.allclose(other["maps"][1], b["maps"][1])  # another seed, another fc
    with pytest.raises(ValueError, match="no module named"):
        cascading_randomization(se_model, _gradcam, small_batch, 1, layers=["fc", "nope"])
    with pytest.raises(ValueError, match="no parameters"):
        cascading_randomization(se_model, _gradcam, small_batch, 1, layers=["pool"])


class _IgnoresTheModel:
    """A fake explainer: the input's channel mean, whatever the model."""

    def __init__(self, model) -> None:
        self.model = model

    def attribute(self, inputs, target=None):
        return inputs.mean(1, keepdim=True)


def test_an_explainer_that_ignores_the_model_fails_the_check(se_model, small_batch):
    res = cascading_randomization(se_model, _IgnoresTheModel, small_batch, 0)
    n_layers = len(randomization_layers(se_model, small_batch))
    assert res["spearman"].shape == (n_layers, 4)
    torch.testing.assert_close(res["spearman"], torch.ones(n_layers, 4))
    torch.testing.assert_close(res["ssim"], torch.ones(n_layers, 4))


def test_redraw_keeps_each_parameters_scale_and_reset_restores_the_init():
    from squeezex.metrics.sanity import _randomise

    bn = torch.nn.BatchNorm2d(64)
    with torch.no_grad():
        bn.weight.copy_(1.0 + 0.1 * torch.randn(64, generator=torch.Generator().manual_seed(0)))
    trained = bn.weight.clone()
    _randomise(bn, seed=1, recurse=False, init="redraw")
    new = bn.weight.detach()
    assert not torch.equal(new, trained)  # redrawn ...
    assert abs(new.mean() - trained.mean()) < 0.05 and 0.05 < new.std() < 0.2  # ... at its scale
    _randomise(bn, seed=1, recurse=False, init="reset")
    assert torch.equal(bn.weight.detach(), torch.ones(64))  # the identity again
    conv = torch.nn.Conv2d(4, 8, 3)
    w = conv.weight.detach().clone()
    _randomise(conv, seed=2, recurse=False, init="redraw")
    assert abs(float(conv.weight.std()) - float(w.std())) < 0.3 * float(w.std())
    with pytest.raises(ValueError, match="init must be one of"):
        cascading_randomization(conv, lambda m: m, torch.zeros(1, 4, 5, 5), 0, init="xavier")
