"""VEBI: the μ-lasso, the features, the guided backward pass against a float64 reference,
the stride fix, the fit's save/load, and the test-time explainer's options."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from squeezex.explainers import (
    RelevantFeatures,
    VEBIAttribution,
    backproject,
    extract_features,
    interpret,
    mu_lasso,
)
from squeezex.explainers.vebi import default_layers
from tests.conftest import hook_count

# -- the μ-lasso -------------------------------------------------------------------------------


def test_mu_lasso_finds_the_features_that_carry_the_label():
    rng = np.random.default_rng(0)
    n, m = 300, 40
    X = rng.uniform(0, 0.2, size=(n, m))
    y = (rng.uniform(size=n) < 0.3).astype(float)
    X[:, 7] += 0.8 * y  # feature 7 carries the label, 21 a little, the rest is noise
    X[:, 21] += 0.3 * y + rng.normal(0, 0.05, n)
    X = np.clip(X, 0, None)
    w = mu_lasso(X, y, mu=0.8)
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(0.8, abs=1e-6), "a binding budget is spent exactly"
    assert np.argmax(w) == 7
    assert set(np.flatnonzero(w)) <= {7, 21} | set(np.argsort(-w)[:4])
    assert (w > 1e-9).sum() <= 4, f"sparse: {np.flatnonzero(w)}"
    small = mu_lasso(X, y, mu=0.05)
    assert np.flatnonzero(small).tolist() == [7], "a small budget keeps only the best feature"


def test_mu_lasso_returns_the_unconstrained_solution_below_the_budget():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(50, 3))
    w_true = np.array([0.5, 0.0, 1.0])
    y = X @ w_true
    w = mu_lasso(X, y, mu=100.0)
    np.testing.assert_allclose(w, w_true, atol=1e-8)


def test_mu_lasso_errors_are_named():
    with pytest.raises(ValueError, match="mu must be > 0"):
        mu_lasso(np.ones((3, 2)), np.ones(3), mu=0)
    with pytest.raises(ValueError, match="N×m"):
        mu_lasso(np.ones((3, 2)), np.ones(4), mu=1)


# -- features and relevant features on a network whose answer is known ---------------------------


class ColourNet(nn.Module):
    """Channel j of ``detect`` is colour channel j (identity 1×1 conv): class j = colour j."""

    def __init__(self, seed=0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.detect = nn.Conv2d(3, 3, 1, bias=False)
            self.detect.weight.data = torch.eye(3).reshape(3, 3, 1, 1)
            self.relu = nn.ReLU()
            self.mix = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.relu2 = nn.ReLU()
            self.pool = nn.AdaptiveMaxPool2d(1)
            self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.relu2(self.mix(self.relu(self.detect(x))))).flatten(1))


def _colour_data(n_per_class=20, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for j in range(3):
        x = 0.1 * torch.rand(n_per_class, 3, size, size, generator=g)
        for i in range(n_per_class):  # a blob of colour j somewhere
            r, c = torch.randint(0, size - 5, (2,), generator=g).tolist()
            x[i, j, r : r + 5, c : c + 5] += 0.9
        xs.append(x)
        ys.append(torch.full((n_per_class,), j))
    return torch.cat(xs), torch.cat(ys)


def test_default_layers_are_the_spatial_conv_relu_pool_outputs(se_model):
    assert default_layers(ColourNet(), torch.rand(1, 3, 16, 16)) == [
        "detect",
        "relu",
        "mix",
        "relu2",
    ]
    names = default_layers(se_model, torch.rand(1, 3, 32, 32))
    assert names and all(n.startswith("features.body.") for n in names), names


def test_features_follow_the_formula():
    net = ColourNet().eval()
    x, y = _colour_data(4)
    fs = extract_features(net, (x, y), ["relu", "mix"], progress=False)
    with torch.no_grad():
        a = net.relu(net.detect(x)).double()
        b = net.mix(net.relu(net.detect(x))).double()
    e = [t.pow(2).sum((2, 3)) for t in (a, b)]
    ref = torch.cat([t / t.sum(1, keepdim=True) for t in e], 1)
    ref = ref / ref.norm(dim=1, keepdim=True)
    torch.testing.assert_close(fs.X, ref)
    assert fs.features[:4] == [("relu", 0), ("relu", 1), ("relu", 2), ("mix", 0)]
    assert torch.equal(fs.targets, y)


def test_relevant_features_pick_each_class_colour_channel():
    net = ColourNet().eval()
    x, y = _colour_data()
    rf = RelevantFeatures(mu=2, layers=["relu"], progress=False).fit(net, (x, y))
    for j in range(3):
        layer, channel, w = rf.relevant(j)[0]
        assert (layer, channel) == ("relu", j) and w > 0
    assert rf.coef_.shape == (3, 3) and (rf.coef_ >= 0).all()
    assert (np.abs(rf.coef_).sum(1) <= 2 + 1e-9).all()
    assert "relevant per class" in repr(rf)


def test_fit_with_predicted_labels_and_bad_options(se_model):
    x, y = _colour_data(2, size=32)
    y = y % 6
    rf = RelevantFeatures(mu=5, labels="predicted", progress=False).fit(se_model, (x, y))
    with torch.no_grad():
        pred = se_model(x).argmax(1).numpy()
    np.testing.assert_array_equal(rf.train_labels_, pred)
    with pytest.raises(ValueError, match="labels must be"):
        RelevantFeatures(labels="gold").fit(se_model, (x, y))
    with pytest.raises(ValueError, match="mu must be > 0"):
        RelevantFeatures(mu=-1).fit(se_model, (x, y))
    with pytest.raises(ValueError, match="not fitted"):
        RelevantFeatures().relevant(0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 6\)"):
        RelevantFeatures(progress=False).fit(se_model, (x, y + 6))


def test_save_load_roundtrip_and_model_check(tmp_path, se_model):
    x, y = _colour_data(2, size=32)
    rf = RelevantFeatures(mu=3, progress=False).fit(se_model, (x, y % 6))
    path = rf.save(tmp_path / "fit.pt")
    back = RelevantFeatures.load(path, se_model)
    np.testing.assert_array_equal(back.coef_, rf.coef_)
    assert back.features_ == rf.features_ and back.layers_ == rf.layers_
    assert [r.tolist() for r in back.relevant_] == [r.tolist() for r in rf.relevant_]
    other = ColourNet()
    with pytest.raises(ValueError, match="different model"):
        RelevantFeatures.load(path, other)
    with pytest.raises(FileNotFoundError, match="no VEBI fit"):
        RelevantFeatures.load(tmp_path / "missing.pt")
    ex = VEBIAttribution(se_model, path)  # a path is loaded (and checked)
    assert ex.attribute(x[:2], target=0).shape == (2, 1, 32, 32)


# -- the backward pass against a float64 reference ----------------------------------------------


class Tiny(nn.Sequential):
    def __init__(self):
        super().__init__(
            nn.Conv2d(2, 3, 3, 1, 1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(3, 4, 3, 2, 1),
            nn.ReLU(inplace=True),
        )


def _transposed_conv(g, w, stride, pad, in_size):
    """Loops: every output cell sends w·g to the input cells its kernel covered."""
    n, cout, ho, wo = g.shape
    cin, k = w.shape[1], w.shape[2]
    out = torch.zeros(n, cin, in_size + 2 * pad, in_size + 2 * pad, dtype=torch.float64)
    for i in range(ho):
        for j in range(wo):
            for u in range(k):
                for v in range(k):
                    contrib = torch.einsum("no,oc->nc", g[:, :, i, j], w[:, :, u, v])
                    out[:, :, i * stride + u, j * stride + v] += contrib
    return out[:, :, pad : pad + in_size, pad : pad + in_size]


def _reference(net, x, layer, c, fix):
    """Float64 literal VEBI backward pass of (layer, c) on ``Tiny``."""
    w1, w2 = net[0].weight.double(), net[3].weight.double()
    a1 = F.conv2d(x, w1, net[0].bias.double(), padding=1)
    r1 = a1.clamp_min(0)
    n, ch, h, w = r1.shape
    win = (
        r1.reshape(n, ch, h // 2, 2, w // 2, 2)
        .permute(0, 1, 2, 4, 3, 5)
        .reshape(n, ch, h // 2, w // 2, 4)
    )
    p, arg = win.max(-1)
    a2 = F.conv2d(p, w2, net[3].bias.double(), stride=2, padding=1)
    r2 = a2.clamp_min(0)
    out = {"1": r1, "3": a2, "4": r2}[layer]
    g = torch.zeros_like(out)
    g[:, c] = out[:, c]
    if layer == "4":
        g = g.clamp_min(0) * (a2 > 0)  # guided ReLU
    if layer in ("3", "4"):
        if fix == "nearest":  # literal nearest to the stride-1 size (4 + 2 − 2), mass kept
            up = g.repeat_interleave(2, 2).repeat_interleave(2, 3) / 4
            g = _transposed_conv(up, w2, 1, 1, p.shape[-1])
        elif fix:  # aligned: strided cell j sits on stride-1 cell 2j; odd cells share halves
            size = p.shape[-1]
            up = torch.zeros(n, g.shape[1], size, size, dtype=torch.float64)
            weight = {0: 1.0, 1: 0.5, -1: 0.5}
            for i in range(size):
                for j in range(size):
                    for a in range(g.shape[2]):
                        for b in range(g.shape[3]):
                            wa, wb = weight.get(i - 2 * a, 0.0), weight.get(j - 2 * b, 0.0)
                            up[:, :, i, j] += wa * wb * g[:, :, a, b]
            g = _transposed_conv(up / 4, w2, 1, 1, size)
        else:
            g = _transposed_conv(g, w2, 2, 1, p.shape[-1])
        un = torch.zeros(n, ch, h // 2, w // 2, 4, dtype=torch.float64)  # unpool with switches
        un.scatter_(-1, arg.unsqueeze(-1), g.unsqueeze(-1))
        g = un.reshape(n, ch, h // 2, w // 2, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, ch, h, w)
    g = g.clamp_min(0) * (a1 > 0)  # guided ReLU
    return _transposed_conv(g, w1, 1, 1, x.shape[-1])


@pytest.mark.parametrize("fix", [False, True, "nearest"])
@pytest.mark.parametrize("layer,c", [("4", 1), ("3", 2), ("1", 0)])
def test_backward_pass_matches_the_float64_reference(layer, c, fix):
    torch.manual_seed(0)
    net = Tiny().double().eval()
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    got = backproject(net, x, (layer, c), stride_fix=fix)
    want = _reference(net, x, layer, c, fix)
    assert want.abs().max() > 0
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert hook_count(net) == 0


def test_backward_pass_reaches_through_skip_connections():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18(num_classes=3).eval()
    x = torch.rand(1, 3, 64, 64)
    fs = extract_features(net, (x, torch.zeros(1)), ["layer2.0.relu"], progress=False)
    c = int(fs.X[0].argmax())  # the block's output channel that fires most (a module
    for fix in (False, True):  # called twice, like this ReLU, is read at its last call)
        sig = backproject(net, x, ("layer2.0.relu", c), stride_fix=fix)
        assert sig.shape == x.shape and sig.abs().sum() > 0
    assert hook_count(net) == 0


def test_backproject_errors_are_named():
    net = Tiny().eval()
    with pytest.raises(ValueError, match="no channel 9"):
        backproject(net, torch.rand(1, 2, 8, 8), ("4", 9))
    with pytest.raises(ValueError, match="one \\(layer, channel\\) or 2"):
        backproject(net, torch.rand(2, 2, 8, 8), [("4", 0)] * 3)


# -- the stride fix ------------------------------------------------------------------------------


def test_stride_fix_removes_the_checkerboard():
    from squeezex.metrics.artifacts import checkerboard_energy

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU()
    ).eval()
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    blob = torch.exp(-((yy - 14) ** 2 + (xx - 18) ** 2) / 60)
    x = (blob * torch.rand(3, 1, 1)).unsqueeze(0).repeat(8, 1, 1, 1) + 0.05 * torch.rand(
        8, 3, 32, 32
    )
    from squeezex.explainers.vebi import feature_heatmap

    feats = [("2", c) for c in range(8)]  # every channel of the stride-2 convolution
    plain = checkerboard_energy(feature_heatmap(backproject(net, x, feats, stride_fix=False)))
    fixed = checkerboard_energy(feature_heatmap(backproject(net, x, feats, stride_fix=True)))
    # measured: mean 0.59 without the fix, 0.013 with it
    assert plain.mean() > 0.3 and fixed.mean() < plain.mean() / 10, (plain, fixed)
    assert (fixed < plain).float().mean() >= 0.75


# -- the explainer -------------------------------------------------------------------------------


@pytest.fixture
def colour_vebi():
    net = ColourNet().eval()
    x, y = _colour_data()
    rf = RelevantFeatures(mu=2, layers=["relu", "relu2"], progress=False).fit(net, (x, y))
    return net, rf, x, y


def test_vebi_points_at_the_class_colour(colour_vebi):
    net, rf, x, y = colour_vebi
    maps = VEBIAttribution(net, rf).attribute(x, target=y)
    blob = torch.zeros_like(maps, dtype=torch.bool)
    for i in range(len(x)):
        blob[i, 0] = x[i, int(y[i])] > 0.5
    hit = blob.flatten(1).gather(1, maps.flatten(1).argmax(1, keepdim=True))
    assert hit.float().mean() == 1.0


def test_return_features_gives_the_per_feature_maps(colour_vebi):
    net, rf, x, y = colour_vebi
    ex = VEBIAttribution(net, rf, top_k=2)
    maps, per_feature, index = ex.attribute(x[:5], target=y[:5], return_features=True)
    assert per_feature.shape == (5, 2, 16, 16) and index.shape == (5, 2)
    valid = index[index >= 0]
    assert ((valid >= 0) & (valid < rf.n_features_in_)).all()
    for i in range(5):  # every chosen feature is relevant for the sample's class
        rel = set(rf.relevant_[int(y[i])].tolist())
        assert {int(j) for j in index[i] if j >= 0} <= rel
    from squeezex.geometry import minmax

    torch.testing.assert_close(maps, minmax(per_feature.amax(1, keepdim=True)))


def test_vebi_errors_are_named(colour_vebi, se_model):
    net, rf, x, y = colour_vebi
    with pytest.raises(ValueError, match="relevant features of each class"):
        VEBIAttribution(net)
    with pytest.raises(ValueError, match="top_k must be an integer ≥ 1"):
        VEBIAttribution(net, rf, top_k=0)
    with pytest.raises(ValueError, match="not fitted"):
        VEBIAttribution(net, RelevantFeatures())
    rf.coef_[1] = 0
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no relevant features"):
        VEBIAttribution(net, rf).attribute(x[:2], target=1)


def test_interpretation_grid(colour_vebi):
    net, rf, x, y = colour_vebi
    interp = interpret(net, rf, (x, y), n_images=4, progress=False)
    assert len(interp.images) == 3
    for j in range(3):
        k = len(interp.features[j])
        assert 1 <= k and interp.images[j].shape == (k, 3, 16, 16)
        assert interp.heatmaps[j].shape == (k, 1, 16, 16)
        assert interp.examples[j].shape == (k, 4)
        assert (y[interp.examples[j]] == j).all(), "averaged over images of the class"
        # the top feature's average visualisation is the class colour
        top = interp.images[j][0].clamp_min(0).sum((1, 2))
        assert top.argmax() == j
    from squeezex.viz import feature_grid

    fig = feature_grid(interp)
    assert len(fig.axes) >= 3


# -- review fixes: alignment, interpretation inputs, caching, scale -----------------------------


@pytest.mark.parametrize("n_strided", [1, 2])
@pytest.mark.filterwarnings("ignore:Sequential has no nn.ReLU")
def test_aligned_stride_fix_puts_a_cell_back_where_it_sits(n_strided):
    from squeezex.explainers.vebi.backward import _Tracer

    layers = []
    for _ in range(n_strided):
        conv = nn.Conv2d(1, 1, 3, 2, 1, bias=False)
        conv.weight.data.fill_(1.0)
        layers.append(conv)
    net = nn.Sequential(*layers).double()
    s = 2**n_strided
    x = torch.ones(1, 1, 32, 32, dtype=torch.float64, requires_grad=True)
    centres = {}
    for mode in ("aligned", "nearest"):
        with _Tracer(net, (), keep={str(n_strided - 1)}, guided=True, stride_fix=mode) as tr:
            net(x)
        out = tr.outputs[str(n_strided - 1)]
        seed = torch.zeros_like(out)
        seed[0, 0, 3, 3] = 1.0
        (g,) = torch.autograd.grad(out, x, seed)
        w = g[0, 0].abs()
        idx = torch.arange(32, dtype=torch.float64)
        centres[mode] = float((w.sum(1) * idx).sum() / w.sum())
    assert centres["aligned"] == pytest.approx(3 * s, abs=1e-9)  # cell j sits on pixel s·j
    assert centres["nearest"] > 3 * s + 0.4, "the literal resize shifts the map"


def test_interpret_indexes_the_dataset_even_through_a_shuffling_loader(colour_vebi):
    net, rf, x, y = colour_vebi
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=7, shuffle=True
    )
    interp = interpret(net, rf, loader, n_images=4, progress=False)
    for j in range(3):
        assert (y[interp.examples[j]] == j).all()
    keep = y != 2  # class 2 has relevant features but no image here
    interp = interpret(net, rf, (x[keep], y[keep]), n_images=4, progress=False)
    assert interp.images[2].shape[0] == 0 and interp.features[2] == []


def test_fit_vebi_cache_is_reused_only_when_it_applies(tmp_path, se_model):
    from squeezex.explainers import fit_vebi

    x, y = _colour_data(2, size=32)
    y = y % 6
    cache = tmp_path / "fit.pt"
    first = fit_vebi(se_model, (x, y), cache=cache, mu=3, progress=False)["relevant"]
    again = fit_vebi(se_model, (x, y), cache=cache, mu=3, progress=False)["relevant"]
    assert again.data_fingerprint_ == first.data_fingerprint_
    smaller = fit_vebi(se_model, (x[:4], y[:4]), cache=cache, mu=3, progress=False)["relevant"]
    assert len(smaller.train_labels_) == 4, "a fit on other data is not reused"
    other_mu = fit_vebi(se_model, (x, y), cache=cache, mu=4, progress=False)["relevant"]
    assert other_mu.mu == 4
    cache.write_bytes(b"not a fit")
    fresh = fit_vebi(se_model, (x, y), cache=cache, mu=3, progress=False)["relevant"]
    assert fresh.mu == 3 and RelevantFeatures.load(cache).mu == 3


def test_mu_lasso_without_the_gram_matrix_agrees(monkeypatch):
    from squeezex.explainers.vebi import lasso as vebi

    rng = np.random.default_rng(2)
    X = rng.uniform(size=(40, 60))
    y = (rng.uniform(size=40) < 0.5).astype(float)
    with_gram = mu_lasso(X, y, mu=0.3)  # a binding budget: both walk the same LARS path
    monkeypatch.setattr(vebi, "_GRAM_MAX", 10)
    without = mu_lasso(X, y, mu=0.3)
    assert with_gram.sum() == pytest.approx(0.3)
    np.testing.assert_allclose(without, with_gram, atol=1e-8)


def test_bad_stride_fix_is_named():
    with pytest.raises(ValueError, match="stride_fix must be one of"):
        backproject(Tiny().eval(), torch.rand(1, 2, 8, 8), ("4", 0), stride_fix="smooth")
    with pytest.raises(ValueError, match="no submodule 'zz'"):
        backproject(Tiny().eval(), torch.rand(1, 2, 8, 8), ("zz", 0))

    class Spare(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.spare = Tiny(), nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return self.body(x)

    with pytest.raises(ValueError, match="did not run layer 'spare'"):
        backproject(Spare().eval(), torch.rand(1, 2, 8, 8), ("spare", 0))


def test_a_network_without_relu_modules_is_warned_about():
    net = nn.Sequential(nn.Conv2d(2, 3, 3, 2, 1)).eval()
    with pytest.warns(UserWarning, match="no nn.ReLU/nn.ReLU6 module"):
        backproject(net, torch.rand(1, 2, 8, 8), ("0", 1))


def test_weights_below_the_tolerance_are_not_relevant():
    from squeezex.explainers.vebi.lasso import WEIGHT_TOL, _prune, _relevant

    coef = np.array([[2.0, 2e-17, 0.0, 0.5], [0.0, 0.0, 1e-3, 3e-10]])
    pruned = _prune(coef, WEIGHT_TOL)
    assert [r.tolist() for r in _relevant(pruned)] == [[0, 3], [2]]
    assert pruned[0, 1] == 0 and pruned[1, 3] == 0 and coef[0, 1] == 2e-17  # input untouched
    assert [r.tolist() for r in _relevant(_prune(coef, 0.0))] == [[0, 3, 1], [2, 3]]
