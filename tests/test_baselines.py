"""The Captum baselines: references by hand and in float64, the reduction rule, targets."""

import copy
import warnings

import pytest
import torch
from captum.attr import (
    Deconvolution,
    GuidedBackprop,
    GuidedGradCam,
    InputXGradient,
    IntegratedGradients,
    Occlusion,
    Saliency,
)
from torch import nn

from squeezex import get_explainer, list_explainers
from squeezex.explainers import (
    GradCAM,
    GradCAMPlusPlus,
    GuidedGradCAM,
    IntegratedGradientsAttribution,
    OcclusionAttribution,
    PixelAttribution,
    explainer_info,
    gradcam_pp_map,
    pixel_map,
)
from squeezex.explainers.vebi import feature_heatmap
from squeezex.geometry import minmax, to_common_footing
from tests.conftest import hook_count
from tests.test_explainers import make

#: Every registered method built on Captum in squeezex.explainers.baselines, from the
#: registry (Grad-CAM and the random floor have tests of their own).
BASELINES = [
    n
    for n in list_explainers()
    if explainer_info(n).factory.__module__ == "squeezex.explainers.baselines"
]
NEW = [n for n in BASELINES if n not in ("gradcam", "random")]
PIXEL = [n for n in NEW if issubclass(explainer_info(n).factory, PixelAttribution)]
GRADIENT_METHODS = [n for n in list_explainers() if explainer_info(n).needs_gradients]


def test_all_baselines_are_registered_with_their_flags():
    assert {"gradcam++", "guided-gradcam", "saliency", "occlusion", "deconvolution"} <= set(NEW)
    own = {n for n in NEW if explainer_info(n).base == n}  # presets are the same class
    assert set(PIXEL) == own - {"gradcam++", "guided-gradcam", "eigencam"}
    for n in NEW:
        info = explainer_info(n)
        assert info.description and not info.needs_se
        assert info.needs_gradients == (n not in ("occlusion", "eigencam"))


# -- tiny models whose answers are known ------------------------------------------------------
class Tiny(nn.Module):
    """conv-ReLU-conv(stride 2)-ReLU feature layer, then a flatten + linear head (8×8 in)."""

    def __init__(
        self, k: int = 3, classes: int = 5, seed: int = 0, positive_head=False, last_relu=True
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(4, k, 3, stride=2, padding=1),
            nn.ReLU() if last_relu else nn.Identity(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(k * 16, classes))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            self.features[2].bias.add_(0.5)  # most feature cells alive
            if positive_head:
                self.head[1].weight.abs_()

    def forward(self, x):
        return self.head(self.features(x))


class GapHead(nn.Module):
    """Feature layer then global average pooling + linear: ∂S/∂A is constant per channel."""

    def __init__(self, seed: int = 0):
        super().__init__()
        tiny = Tiny(seed=seed)
        self.features = tiny.features
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 5))
        with torch.no_grad():
            self.head[2].weight.copy_(
                torch.randn(5, 3, generator=torch.Generator().manual_seed(seed + 1))
            )

    def forward(self, x):
        return self.head(self.features(x))


def _x(n=3, size=8, seed=3, dtype=torch.float32):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _literal_gradcam_pp(model, x, target):
    """Grad-CAM++ written out cell by cell in float64, straight from the paper's eq. 19."""
    a = model.features(x)
    score = model.head(a)[torch.arange(x.shape[0]), target].sum()
    (g,) = torch.autograd.grad(score, a)
    a, g = a.detach(), g.detach()
    n, k, h, w = a.shape
    out = torch.zeros(n, 1, h, w, dtype=torch.float64)
    for s in range(n):
        for c in range(k):
            total = sum(float(a[s, c, i, j]) for i in range(h) for j in range(w))
            weight = 0.0
            for i in range(h):
                for j in range(w):
                    gij = float(g[s, c, i, j])
                    denom = 2 * gij**2 + total * gij**3
                    alpha = gij**2 / denom if denom != 0 else 0.0
                    weight += max(gij, 0.0) * alpha
            out[s, 0] += weight * a[s, c]
    return out


# -- Grad-CAM++ -------------------------------------------------------------------------------
@pytest.mark.parametrize("last_relu", [True, False])
def test_gradcam_pp_matches_a_literal_float64_reimplementation(last_relu):
    model = Tiny(last_relu=last_relu).double().eval()
    x = _x(dtype=torch.float64)
    target = torch.tensor([0, 3, 4])
    ref = _literal_gradcam_pp(model, x, target)
    got = gradcam_pp_map(model, model.features, x, target)
    assert ref.std() > 0.1  # a real test: not constant
    if not last_relu:  # signed activations: negative maps (and α of either sign)
        assert (ref < 0).any()
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)
    # and the explainer's output is that map on the common footing
    ex = GradCAMPlusPlus(model, layer=model.features)
    maps = ex.attribute(x, target=target)
    geometry = ex.geometry(model.features, x)
    torch.testing.assert_close(
        maps, to_common_footing(ref, (8, 8), geometry), rtol=1e-8, atol=1e-10
    )


def test_gradcam_pp_weights_by_hand_on_a_global_average_pooling_head():
    """With S = Σ_k v_k mean(A_k) + b, g = v_k/hw everywhere, so α_k = 1/(2 + c_k) with
    c_k = v_k mean(A_k) (channel k's contribution to the score), and w_k = relu(v_k)/(2 + c_k)."""
    model = GapHead().double().eval()
    x = _x(dtype=torch.float64)
    target = torch.tensor([0, 1, 2])
    a = model.features(x).detach()
    v = model.head[2].weight.detach()[target]  # N×K
    c = v * a.mean((2, 3))
    w = v.clamp_min(0) / (2 + c)
    expected = (w[:, :, None, None] * a).sum(1, keepdim=True)
    got = gradcam_pp_map(model, model.features, x, target)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_gradcam_pp_equals_gradcam_on_a_single_channel_layer():
    """One channel A: Grad-CAM is mean(g)·A and Grad-CAM++ is (Σ relu(g)·α)·A, both
    positive multiples of A when the head's weights are positive, so after the footing
    (ReLU, upsampling, min-max) the maps are the same. (A single-*cell* layer is no test:
    its map is constant, hence 0 after min-max, and for K > 1 channels the weights
    relu(g_k)/(2 + A_k g_k) and g_k are not proportional.)"""
    model = Tiny(k=1, positive_head=True).eval()
    x = _x(n=4)
    target = [0, 1, 2, 4]
    pp = GradCAMPlusPlus(model, layer=model.features).attribute(x, target=target)
    cam = GradCAM(model, layer=model.features).attribute(x, target=target)
    assert (pp.flatten(1).max(1).values == 1).all()
    torch.testing.assert_close(pp, cam, rtol=1e-5, atol=1e-6)
    # with several channels they differ: the check above is not vacuous
    model3 = Tiny(k=3).eval()
    pp3 = GradCAMPlusPlus(model3, layer=model3.features).attribute(x, target=target)
    cam3 = GradCAM(model3, layer=model3.features).attribute(x, target=target)
    assert (pp3 - cam3).abs().max() > 0.05


def test_gradcam_pp_on_the_se_model_reads_the_gradcam_layer(se_model, images):
    ex = get_explainer("gradcam++", se_model)
    assert ex.layer(images) is get_explainer("gradcam", se_model).layer(images)


# -- the reduction rule -----------------------------------------------------------------------
def test_pixel_map_is_positive_part_then_l2_over_channels():
    a = torch.tensor([[[[3.0, -1.0]], [[4.0, 2.0]], [[-5.0, -2.0]]]])  # 1×3×1×2
    torch.testing.assert_close(pixel_map(a), torch.tensor([[[[5.0, 2.0]]]]))
    signal = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    # the same rule as VEBI's backward signals
    torch.testing.assert_close(minmax(pixel_map(signal)), feature_heatmap(signal))


def _captum_reference(name, model, x, target):
    if name == "guided-backprop":
        return GuidedBackprop(model).attribute(x, target=target)
    if name == "deconvolution":
        return Deconvolution(model).attribute(x, target=target)
    if name == "saliency":
        return Saliency(model).attribute(x, target=target, abs=True)
    if name == "input-x-gradient":
        return InputXGradient(model).attribute(x, target=target)
    if name == "integrated-gradients":
        return IntegratedGradients(model).attribute(x, target=target, n_steps=32)
    if name == "occlusion":
        return Occlusion(model).attribute(
            x, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), target=target
        )
    raise AssertionError(name)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", PIXEL)
def test_pixel_methods_are_captum_plus_the_one_rule(name, se_model, images):
    target = torch.tensor([0, 1, 5])
    got = get_explainer(name, se_model).attribute(images, target=target)
    x = images.clone().requires_grad_(name != "occlusion")
    ref = _captum_reference(name, se_model, x, target).detach()
    torch.testing.assert_close(got, minmax(pixel_map(ref)), rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_guided_gradcam_is_captums_product_with_geometry_upsampling(se_model, images):
    target = torch.tensor([0, 1, 5])
    layer = get_explainer("gradcam", se_model).layer(images)
    ref = GuidedGradCam(se_model, layer).attribute(
        images.clone(), target=target, interpolate_mode="bilinear"
    )
    naive = GuidedGradCAM(se_model, upsample="interpolate").attribute(images, target=target)
    torch.testing.assert_close(naive, minmax(pixel_map(ref)), rtol=1e-4, atol=1e-5)
    # the default samples the Grad-CAM map where the cells really sit: a different map
    geo = GuidedGradCAM(se_model).attribute(images, target=target)
    assert (geo - naive).abs().max() > 1e-3


# -- guided backprop / deconvolution by hand, inplace ReLUs -----------------------------------
class OneByOne(nn.Module):
    def __init__(self, inplace: bool):
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.conv = nn.Conv2d(3, 4, 1)
        self.relu = nn.ReLU(inplace=inplace)
        self.fc = nn.Linear(4 * 6 * 6, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).flatten(1))


@pytest.mark.parametrize("inplace", [True, False])
@pytest.mark.parametrize("name", ["guided-backprop", "deconvolution"])
def test_modified_relu_methods_by_hand(name, inplace):
    model = OneByOne(inplace).eval()
    x = _x(n=2, size=6)
    target = torch.tensor([2, 0])
    z = model.conv(x).detach()
    g = model.fc.weight.detach()[target].view(2, 4, 6, 6)  # ∂S/∂relu-output
    back = g.clamp_min(0) * (z > 0) if name == "guided-backprop" else g.clamp_min(0)
    grad_x = torch.einsum("kc,nkhw->nchw", model.conv.weight.detach()[:, :, 0, 0], back)
    hooks = hook_count(model)
    got = get_explainer(name, model).attribute(x, target=target)
    assert hook_count(model) == hooks
    torch.testing.assert_close(got, minmax(pixel_map(grad_x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["guided-backprop", "deconvolution", "guided-gradcam"])
def test_inplace_relus_give_the_same_maps_as_out_of_place_ones(name, se_model, images):
    assert any(isinstance(m, nn.ReLU) and m.inplace for m in se_model.modules())
    plain = copy.deepcopy(se_model)
    for m in plain.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    a = get_explainer(name, se_model).attribute(images, target=[0, 1, 5])
    b = get_explainer(name, plain).attribute(images, target=[0, 1, 5])
    torch.testing.assert_close(a, b)
    # the hooks did something: guided backprop is not the plain gradient
    if name == "guided-backprop":
        sal = get_explainer("saliency", se_model).attribute(images, target=[0, 1, 5])
        assert (a - sal).abs().max() > 0.05


# -- targets ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GRADIENT_METHODS + ["occlusion"])
def test_sample_two_of_a_batch_gets_its_own_target(name, se_model, images):
    ex = make(name, se_model)
    batch = ex.attribute(images, target=[0, 1, 5])
    alone = ex.attribute(images[2:3], target=5)
    torch.testing.assert_close(batch[2:3], alone, atol=1e-4, rtol=1e-4)
    if name in NEW:  # and the target matters: class 0 gives sample 2 another map
        other = ex.attribute(images, target=[0, 1, 0])
        assert (other[2] - batch[2]).abs().max() > 1e-3
        torch.testing.assert_close(other[:2], batch[:2], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", NEW)
def test_no_target_explains_the_predicted_class(name, se_model, images):
    ex = get_explainer(name, se_model)
    with torch.no_grad():
        predicted = se_model(images).argmax(1)
    torch.testing.assert_close(ex.attribute(images), ex.attribute(images, target=predicted))


@pytest.mark.parametrize("name", NEW)
def test_the_callers_input_is_left_alone(name, se_model, images):
    x = images.clone()
    get_explainer(name, se_model).attribute(x, target=1)
    assert not x.requires_grad and x.grad is None
    torch.testing.assert_close(x, images)
    leaf = images.clone().requires_grad_()
    get_explainer(name, se_model).attribute(leaf, target=1)
    assert leaf.requires_grad and leaf.grad is None


@pytest.mark.parametrize("name", NEW)
def test_only_the_expected_captum_warnings_are_silenced(name, se_model, images):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_explainer(name, se_model).attribute(images, target=1)

    class Noisy(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            warnings.warn("a warning of the model's own", UserWarning, stacklevel=1)
            return self.inner(x)

    with pytest.warns(UserWarning, match="of the model's own"):
        get_explainer(name, Noisy(se_model)).attribute(images, target=1)


# -- options ----------------------------------------------------------------------------------
def test_integrated_gradients_bounds_the_rows_per_forward(se_model, images):
    rows = []
    h = se_model.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    try:
        small = IntegratedGradientsAttribution(se_model, n_steps=4, internal_batch_size=2)
        a = small.attribute(images, target=[0, 1, 5])
    finally:
        h.remove()
    assert max(rows) <= 2
    b = IntegratedGradientsAttribution(se_model, n_steps=4).attribute(images, target=[0, 1, 5])
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert IntegratedGradientsAttribution(se_model).n_steps == 32
    few = get_explainer("integrated-gradients", se_model).attribute(images, target=1, n_steps=4)
    assert few.shape == (3, 1, 32, 32)
    with pytest.raises(ValueError, match="n_steps"):
        IntegratedGradientsAttribution(se_model, n_steps=0)


def test_occlusion_window_scales_with_the_input_and_is_configurable(se_model, images):
    ex = OcclusionAttribution(se_model)
    assert ex.window(torch.zeros(1, 3, 64, 64)) == ((3, 8, 8), (3, 4, 4))
    assert ex.window(torch.zeros(1, 3, 32, 32)) == ((3, 4, 4), (3, 2, 2))
    assert ex.window(torch.zeros(1, 3, 224, 224)) == ((3, 28, 28), (3, 14, 14))
    custom = OcclusionAttribution(se_model, sliding_window_shapes=8, strides=(8, 4))
    assert custom.window(images) == ((3, 8, 8), (3, 8, 4))
    a = custom.attribute(images, target=1)
    b = ex.attribute(images, target=1, sliding_window_shapes=8, strides=(8, 4))
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="window"):
        OcclusionAttribution(se_model, sliding_window_shapes=(4, 4, 4)).attribute(images)
    with pytest.raises(ValueError, match="larger than the input"):
        ex.attribute(images, sliding_window_shapes=40)
    rows = []
    h = se_model.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    try:
        OcclusionAttribution(se_model, max_rows=6, sliding_window_shapes=16, strides=8).attribute(
            images, target=1
        )
    finally:
        h.remove()
    assert max(rows) <= 6


# -- clips ------------------------------------------------------------------------------------
class Tiny3d(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.features = nn.Sequential(nn.Conv3d(3, 4, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveMaxPool3d(1), nn.Flatten(), nn.Linear(4, 3))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        return self.head(self.features(x))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", NEW)
def test_clips_get_one_map_per_sample(name):
    model = Tiny3d().eval()
    x = torch.rand(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    kw = {"layer": model.features} if name in ("gradcam++", "guided-gradcam") else {}
    maps = get_explainer(name, model, **kw).attribute(x, target=[0, 2])
    assert maps.shape == (2, 1, 4, 8, 8) and torch.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1
