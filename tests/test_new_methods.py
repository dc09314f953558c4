"""activation-mean (the SE map with s := 1), EigenCAM, the ``-interp`` presets, the
registry's footing line and the SE-vector diagnostics."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam

from squeezex import get_explainer, list_explainers
from squeezex.explainers import (
    ActivationMeanAttribution,
    EigenCAM,
    GradCAM,
    SEAttribution,
    eigen_map,
    explainer_info,
    gradcam_pp_map,
    map_correlation,
    se_vector_report,
    select_channels,
)
from squeezex.explainers.diagnostics import jaccard_matrix
from squeezex.explainers.registry import footing_of
from squeezex.geometry import minmax, to_common_footing
from squeezex.models import build_model

NEW = ["activation-mean", "eigencam", "gradcam-interp", "gradcam++-interp", "se-interp"]


def _se_input(model, x):
    """U, the SE block's input, by a plain forward hook."""
    got = {}
    h = model.features.se.register_forward_hook(lambda m, a, o: got.update(u=a[0]))
    with torch.no_grad():
        model(x)
    h.remove()
    return got["u"]


# -- activation-mean -----------------------------------------------------------------------------
def test_activation_mean_is_the_se_map_with_s_set_to_one(images):
    model = build_model("small", 6, se=True, seed=0).eval()
    se = model.features.se
    with torch.no_grad():  # s = sigmoid(100) = 1.0 exactly in float32: X = U
        se.fc2.weight.zero_()
        se.fc2.bias.fill_(100.0)
    assert SEAttribution(model).se_vector(images).s.eq(1).all()
    ones = get_explainer("activation-mean", model).attribute(images)
    assert torch.equal(ones, get_explainer("se", model).attribute(images))
    assert torch.equal(ones, SEAttribution(model, weights="ones").attribute(images))


def test_activation_mean_is_the_channel_mean_of_u_on_the_se_footing(se_model, images):
    ex = ActivationMeanAttribution(se_model)
    got = ex.attribute(images, target=2)
    u = _se_input(se_model, images)
    geometry = ex.geometry(se_model.features.se, images)
    torch.testing.assert_close(got, to_common_footing(u.mean(1, keepdim=True), (32, 32), geometry))
    # the SE weighting makes a difference on a model whose s is not constant
    assert (got - get_explainer("se", se_model).attribute(images)).abs().max() > 1e-4
    assert torch.equal(got, ex.attribute(images, target=5)), "class-agnostic"


def test_activation_mean_reads_the_gradcam_layer_on_a_model_without_se(images):
    model = build_model("small", 6, se=False, seed=0).eval()
    ex = ActivationMeanAttribution(model)
    layer = GradCAM(model).layer(images)
    got = {}
    h = layer.register_forward_hook(lambda m, a, o: got.update(u=o.clone()))
    with torch.no_grad():
        model(images)
    h.remove()
    ref = to_common_footing(got["u"].mean(1, keepdim=True), (32, 32), ex.geometry(layer, images))
    torch.testing.assert_close(ex.attribute(images), ref)
    info = explainer_info("activation-mean")
    assert not info.needs_se and not info.needs_gradients


def test_activation_mean_options_are_checked(se_model, images):
    with pytest.raises(ValueError, match="weights must be one of"):
        SEAttribution(se_model, weights="twos")
    with pytest.raises(ValueError, match="selection must be 'weighted'"):
        SEAttribution(se_model, weights="ones", selection="topk")
    with pytest.raises(ValueError, match="class_aware must be one of False"):
        ActivationMeanAttribution(se_model, class_aware=True)
    with pytest.raises(ValueError, match="layer= is for weights='ones'"):
        SEAttribution(se_model, layer="features")
    with pytest.raises(ValueError, match="selection must be 'weighted'"):
        ActivationMeanAttribution(se_model).attribute(images, selection="paper")
    plain = build_model("small", 6, se=False, seed=0).eval()
    with pytest.raises(ValueError, match="has no SE block"):
        SEAttribution(plain)
    with pytest.raises(ValueError, match="has no SE block"):
        ActivationMeanAttribution(plain).se_vector(images)


def test_activation_mean_with_an_explicit_layer(se_model, images):
    ex = ActivationMeanAttribution(se_model, layer="features.se")  # X instead of U
    torch.testing.assert_close(
        ex.attribute(images), get_explainer("se", se_model).attribute(images)
    )


# -- EigenCAM ------------------------------------------------------------------------------------
def _numpy_eigen(acts: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's get_2d_projection, with the sign convention of eigen_map."""
    out = []
    for a in acts:
        m = a.reshape(a.shape[0], -1).T
        m = m - m.mean(axis=0)
        _, _, vt = np.linalg.svd(m, full_matrices=True)
        p = m @ vt[0, :]
        if np.corrcoef(p, a.reshape(a.shape[0], -1).sum(0))[0, 1] < 0:
            p = -p
        out.append(p.reshape(a.shape[1:]))
    return np.stack(out)[:, None]


def test_eigen_map_matches_a_numpy_svd():
    g = torch.Generator().manual_seed(3)
    acts = torch.rand(3, 5, 3, 4, generator=g, dtype=torch.float64)
    acts[1] *= torch.linspace(0.1, 2.0, 5, dtype=torch.float64)[:, None, None]
    got = eigen_map(acts)
    assert got.shape == (3, 1, 3, 4)
    np.testing.assert_allclose(got.numpy(), _numpy_eigen(acts.numpy()), rtol=1e-9, atol=1e-12)
    clip = torch.rand(2, 4, 2, 3, 3, generator=g, dtype=torch.float64)  # N×C×T×h×w
    np.testing.assert_allclose(eigen_map(clip).numpy(), _numpy_eigen(clip.numpy()), atol=1e-12)


def test_eigen_map_sign_follows_the_activation():
    """A rank-1 map (every channel a positive multiple of one pattern) comes back as the
    pattern itself (centred), never as its negative."""
    pattern = torch.tensor([[0.0, 1.0, 3.0], [0.5, 2.0, 0.0]], dtype=torch.float64)
    acts = torch.tensor([1.0, 0.2, 3.0], dtype=torch.float64)[:, None, None] * pattern
    for a in (acts, -acts):  # a negated layer flips the component with it
        got = eigen_map(a[None])[0, 0]
        ref = pattern - pattern.mean()
        ref = ref if a.sum() > 0 else -ref
        scale = got.flatten() @ ref.flatten() / (ref.flatten() @ ref.flatten())
        assert scale > 0
        torch.testing.assert_close(got, scale * ref)


def test_eigen_map_gives_nan_for_non_finite_samples_only():
    acts = torch.rand(2, 3, 4, 4)
    acts[0, 1, 2, 2] = float("nan")
    got = eigen_map(acts)
    assert got[0].isnan().all() and torch.isfinite(got[1]).all()


def test_eigencam_is_gradient_free_class_agnostic_and_on_the_gradcam_layer(se_model, images):
    ex = EigenCAM(se_model)
    layer = ex.layer(images)
    assert layer is se_model.features.se
    got = {}
    h = layer.register_forward_hook(lambda m, a, o: got.update(a=o.clone()))
    with torch.no_grad():
        se_model(images)
    h.remove()
    ref = to_common_footing(eigen_map(got["a"]), (32, 32), ex.geometry(layer, images))
    with torch.inference_mode():
        maps = ex.attribute(images, target=0)
    torch.testing.assert_close(maps, ref)
    torch.testing.assert_close(ex.attribute(images, target=[5, 4, 3]), maps)
    info = explainer_info("eigencam")
    assert not info.needs_gradients and not info.needs_se


# -- the -interp presets -------------------------------------------------------------------------
def test_gradcam_interp_is_captum_with_bilinear_interpolation(se_model, images):
    target = torch.tensor([0, 3, 5])
    layer = GradCAM(se_model).layer(images)
    raw = LayerGradCam(se_model, layer).attribute(images, target=target, relu_attributions=True)
    ref = minmax(LayerAttribution.interpolate(raw.detach(), (32, 32), "bilinear"))
    got = get_explainer("gradcam-interp", se_model).attribute(images, target=target)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)
    geo = get_explainer("gradcam", se_model).attribute(images, target=target)
    assert (geo - got).abs().max() > 1e-3, "the default upsampling is another map"


def test_gradcam_pp_and_se_interp_use_f_interpolate(se_model, images):
    target = torch.tensor([1, 2, 0])
    layer = se_model.features.se
    raw = gradcam_pp_map(se_model, layer, images, target).clamp_min(0)
    ref = minmax(F.interpolate(raw, (32, 32), mode="bilinear"))
    got = get_explainer("gradcam++-interp", se_model).attribute(images, target=target)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)
    x = _se_input(se_model, images) * SEAttribution(se_model).se_vector(images).s[..., None, None]
    ref = minmax(F.interpolate(x.mean(1, keepdim=True).clamp_min(0), (32, 32), mode="bilinear"))
    got = get_explainer("se-interp", se_model).attribute(images)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-5)


def test_interp_presets_are_presets_of_their_method():
    for name, base in [("gradcam-interp", "gradcam"), ("gradcam++-interp", "gradcam++")]:
        info = explainer_info(name)
        assert info.base == base and info.preset == {"upsample": "interpolate"}
    assert explainer_info("se-interp").base == "se"


# -- footing -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_explainers())
def test_every_registered_explainer_states_its_footing(name):
    info = explainer_info(name)
    assert isinstance(info.footing, str) and info.footing.strip()
    assert "{" not in info.footing, "no unfilled placeholder"
    if info.preset.get("upsample") == "interpolate":
        assert "interpolation" in info.footing and "Captum" in info.footing
    if "gradient-free" in info.footing:
        assert not info.needs_gradients


def test_footing_lines_of_the_new_names():
    assert "geometry-aware" in explainer_info("gradcam").footing
    assert "interpolation" not in explainer_info("gradcam").footing
    assert "gradient-free" in explainer_info("activation-mean").footing
    assert "class-agnostic" in explainer_info("eigencam").footing
    assert "input gradients" in explainer_info("saliency").footing
    assert "reference map" in explainer_info("random").footing


def test_footing_of_derives_from_the_class():
    class Plain:
        needs_gradients = True

    class Layered:
        FOOTING = "layer L, {upsampling}"

    assert footing_of(Plain, {}, True) == "backward pass to the input"
    assert "gradient-free" in footing_of(Plain, {}, False)
    assert footing_of(Layered, {}, False) == "layer L, geometry-aware upsampling"
    assert "bilinear interpolation" in footing_of(Layered, {"upsample": "interpolate"}, False)
    assert footing_of(Layered, {}, False, given="mine") == "mine"
    assert footing_of(Plain, {"upsample": "interpolate"}, True).endswith("output it)")
    with pytest.raises(ValueError, match="upsample must be one of"):
        footing_of(Layered, {"upsample": "nearest"}, False)


@pytest.mark.parametrize("name", NEW)
def test_new_names_are_registered(name):
    assert name in list_explainers()


# -- SE-vector diagnostics -----------------------------------------------------------------------
def test_report_on_identical_selections():
    s = torch.tensor([[0.1, 0.9, 0.5, 0.5], [0.3, 0.7, 0.2, 0.6], [0.2, 0.8, 0.4, 0.4]])
    targets = torch.tensor([0, 1, 1])
    selected = torch.tensor([[False, True, False, True]] * 3)
    r = se_vector_report(s, targets, selected=selected)
    assert r["jaccard_images"] == 1.0 and r["jaccard_classes"] == 1.0
    assert r["jaccard_same_class"] == 1.0 and r["jaccard_other_class"] == 1.0
    assert r["distinct_selections"] == 1 and r["selected_per_image_mean"] == 2.0
    assert (r["s_min"], r["s_max"]) == pytest.approx((0.1, 0.9))
    assert (r["n_images"], r["n_channels"], r["n_classes"]) == (3, 4, 2)
    # by hand: population std over the channels of each image (√(0.32/4), √(0.17/4),
    # √(0.19/4)), then the mean over the images
    d = s.double().numpy()
    assert r["image_std_mean"] == pytest.approx(np.mean([np.std(row) for row in d]))
    assert r["channel_std_mean"] == pytest.approx(np.mean([np.std(col) for col in d.T]))
    assert r["image_std_mean"] == pytest.approx(np.mean([0.2828427, 0.2061553, 0.2179449]))
    json.dumps(r)  # plain numbers only


def test_report_on_disjoint_selections():
    s = torch.full((3, 6), 0.5)
    selected = torch.zeros(3, 6, dtype=torch.bool)
    for i in range(3):
        selected[i, 2 * i : 2 * i + 2] = True
    r = se_vector_report(s, torch.tensor([0, 1, 2]), selected=selected)
    assert r["jaccard_images"] == 0.0 and r["jaccard_classes"] == 0.0
    assert r["distinct_selections"] == 3
    assert r["image_std_mean"] == 0.0 and r["channel_std_mean"] == 0.0
    assert math.isnan(r["jaccard_same_class"]), "no two images share a class"


def test_report_class_majority_sets_and_partial_overlap():
    # class 0: {0,1} twice and {0} once -> majority {0,1}; class 1: {1,2} -> Jaccard 1/3
    selected = torch.tensor(
        [[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0]], dtype=torch.bool
    )
    r = se_vector_report(torch.rand(4, 4), torch.tensor([0, 0, 0, 1]), selected=selected)
    assert r["jaccard_classes"] == pytest.approx(1 / 3)
    pairs = [1.0, 0.5, 1 / 3, 0.5, 1 / 3, 0.0]  # (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    assert r["jaccard_images"] == pytest.approx(np.mean(pairs))
    assert r["jaccard_same_class"] == pytest.approx(np.mean([1.0, 0.5, 0.5]))
    assert r["jaccard_other_class"] == pytest.approx(np.mean([1 / 3, 1 / 3, 0.0]))
    assert r["distinct_selections"] == 3
    assert "jaccard_images" not in se_vector_report(torch.rand(4, 4), torch.zeros(4).long())


def test_jaccard_matrix_treats_two_empty_sets_as_identical():
    m = jaccard_matrix(torch.tensor([[0, 0], [0, 0], [1, 0]], dtype=torch.bool))
    assert m[0, 1] == 1 and m[0, 2] == 0 and m[2, 2] == 1


def test_report_refuses_bad_inputs():
    s = torch.rand(3, 4)
    t = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="N×C"):
        se_vector_report(s[0], t)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        se_vector_report(s * 3, t)
    with pytest.raises(ValueError, match="integer tensor of shape"):
        se_vector_report(s, t.float())
    with pytest.raises(ValueError, match="integer tensor of shape"):
        se_vector_report(s, t[:2])
    with pytest.raises(ValueError, match="bool tensor shaped like s"):
        se_vector_report(s, t, selected=torch.ones(3, 4))
    with pytest.raises(ValueError, match="finite"):
        se_vector_report(torch.full((3, 4), float("nan")), t)


def test_report_on_a_real_se_vector(se_model, images):
    v = SEAttribution(se_model, selection="topk").se_vector(images)
    r = se_vector_report(v.s, torch.tensor([0, 1, 1]), selected=v.selected)
    assert r["n_channels"] == 64 and r["selected_per_image_mean"] == 7.0
    assert 0 < r["s_min"] <= r["s_max"] < 1 and 0 <= r["jaccard_images"] <= 1
    paper = select_channels(v.s, v.logits, "paper").selected
    assert se_vector_report(v.s, torch.tensor([0, 1, 1]), selected=paper)["n_images"] == 3


def test_map_correlation():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 5, 5, generator=g)
    b = a.clone()
    b[1] = -a[1]
    b[2] = 0.0
    r = map_correlation(a, b)
    assert r.shape == (3,) and r.dtype == torch.float64
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and math.isnan(r[2])
    c = torch.rand(3, 1, 5, 5, generator=g)
    ref = [np.corrcoef(a[i].flatten(), c[i].flatten())[0, 1] for i in range(3)]
    np.testing.assert_allclose(map_correlation(a[:, None], c).numpy(), ref, rtol=1e-6)
    assert math.isnan(map_correlation(torch.full((1, 5, 5), 0.1), c[:1, 0])[0])
    with pytest.raises(ValueError, match="same shape"):
        map_correlation(a, c)


def test_classes_without_a_majority_set_are_not_counted_as_identical():
    from squeezex.explainers import se_vector_report

    s = torch.full((6, 6), 0.5)
    selected = torch.eye(6, dtype=torch.bool)  # image i selects channel i only
    r = se_vector_report(s, torch.tensor([0, 0, 0, 1, 1, 1]), selected=selected)
    # each class picks a different channel in each of its 3 images: no channel reaches
    # half of a class's images, so neither class has a majority set
    assert r["classes_without_majority"] == 2 and math.isnan(r["jaccard_classes"])
