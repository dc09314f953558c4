"""attach_se_head on torchvision's zoo and plain CNNs; SEAttribution against references."""

import pytest
import torch
import torchvision
from captum.attr import LayerGradCam
from captum.metrics import infidelity, sensitivity_max
from torch import nn

from squeezex import SEAttribution, attach_se_head, find_feature_layer
from squeezex.explainers.se import select_channels
from squeezex.geometry import to_common_footing
from squeezex.models import build_model
from squeezex.models.se import SEBlock, SEWrapper

ZOO = {
    # name: (expected feature layer, input shape)
    "resnet18": ("layer4", (3, 64, 64)),
    "resnet50": ("layer4", (3, 64, 64)),
    "vgg11": ("features", (3, 64, 64)),
    "mobilenet_v3_small": ("features", (3, 64, 64)),
    "efficientnet_b0": ("features", (3, 64, 64)),
    "densenet121": ("features", (3, 64, 64)),
    "convnext_tiny": ("features", (3, 64, 64)),
    "r3d_18": ("layer4", (3, 4, 32, 32)),
}


@pytest.mark.parametrize("name", list(ZOO))
def test_attach_se_head_on_the_zoo(name):
    layer, shape = ZOO[name]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torchvision.models.get_model(name, weights=None, num_classes=5).eval()
    x = torch.rand(2, *shape)
    with torch.no_grad():
        before = model(x).shape
    assert find_feature_layer(model, input_size=shape) == layer
    attach_se_head(model, input_size=shape)
    wrapped = model.get_submodule(layer)
    assert isinstance(wrapped, SEWrapper) and isinstance(wrapped.se, SEBlock)
    with torch.no_grad():
        assert model(x).shape == before
    maps = SEAttribution(model).attribute(x)
    assert maps.shape == (2, 1, *shape[1:])  # N×1×T×H×W for video


def test_attach_se_head_on_a_sequential_cnn():
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 3),
    )
    assert find_feature_layer(model, (1, 28, 28)) == "3"
    attach_se_head(model, input_size=(1, 28, 28), reduction=4)
    assert isinstance(model[3], SEWrapper) and model[3].se.fc1.out_channels == 4
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 3)


def test_dotted_layer_name_overrides_and_unknown_names_are_errors():
    model = torchvision.models.resnet18(weights=None, num_classes=3)
    attach_se_head(model, layer="layer3", input_size=(3, 64, 64))
    assert isinstance(model.layer3, SEWrapper)
    other = torchvision.models.resnet18(weights=None, num_classes=3)
    with pytest.raises(ValueError, match="no submodule 'layer9'"):
        attach_se_head(other, layer="layer9", input_size=(3, 64, 64))
    with pytest.raises(ValueError, match="already has an SE block"):
        attach_se_head(model, input_size=(3, 64, 64))


def test_a_layer_that_is_not_spatial_is_refused_at_attach_time():
    model = build_model("small", 4)
    with pytest.raises(
        ValueError, match=r"SmallCNN\.fc outputs N×4 \(no spatial axes\).*'features'"
    ):
        attach_se_head(model, layer="fc", input_size=(3, 32, 32))
    assert isinstance(model.fc, nn.Linear), "nothing was attached"
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 4), "the model still runs"


def test_a_token_like_output_is_not_taken_for_a_feature_map():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(2), nn.Linear(36, 36), nn.Flatten(), nn.Linear(288, 2)
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"outputs N×8×36.*N×C×H×W"):
        attach_se_head(model, layer="2", input_size=(3, 6, 6))


@pytest.mark.parametrize("what", ["attach", "find"])
def test_attaching_leaves_every_modules_own_training_flag(what):
    model = build_model("small", 4)
    model.train()
    frozen = model.features[1]  # a BatchNorm the user froze
    frozen.eval()
    flags = {id(m): m.training for m in model.modules()}
    if what == "attach":
        attach_se_head(model, input_size=(3, 32, 32))
    else:
        find_feature_layer(model, (3, 32, 32))
    assert {id(m): m.training for m in model.modules() if id(m) in flags} == flags
    assert not frozen.training, "a frozen BatchNorm must not start training"


def test_model_without_spatial_layer_is_a_value_error():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    with pytest.raises(ValueError, match="no convolution"):
        attach_se_head(mlp)
    pooled_early = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(3, 4, 1), nn.Flatten())
    with pytest.raises(ValueError, match="no spatial feature layer"):
        attach_se_head(pooled_early, input_size=(3, 8, 8))


def test_se_attribution_without_se_block_tells_what_to_do():
    with pytest.raises(ValueError, match="attach_se_head"):
        SEAttribution(build_model("small", 3))


def test_se_block_squeezes_per_sample_by_default_and_per_batch_on_request():
    torch.manual_seed(0)
    block = SEBlock(8, reduction=2).eval()
    x = torch.rand(3, 8, 5, 5)
    out_all = block(x)
    torch.testing.assert_close(out_all[1:2], block(x[1:2]))
    block.squeeze = "batch"
    assert not torch.allclose(block(x)[1:2], block(x[1:2]))
    # the literal formula: s = sigmoid(W2 relu(W1 z)), X = s·U
    block.squeeze = "sample"
    z = x.mean((2, 3))
    s = torch.sigmoid(block.fc2(torch.relu(block.fc1(z[..., None, None]))))
    torch.testing.assert_close(out_all, x * s)


def test_se_block_recording_holds_u_x_and_the_excitation_only_inside_the_block():
    torch.manual_seed(0)
    block = SEBlock(8, reduction=2).eval()
    x = torch.rand(2, 8, 5, 5)
    with block.recording() as tape:
        out = block(x)
    assert tape["u"] is x and tape["x"] is out
    e = block.fc2(torch.relu(block.fc1(x.mean((2, 3))[..., None, None])))
    torch.testing.assert_close(tape["e"], e)
    torch.testing.assert_close(out, x * torch.sigmoid(e))
    block(torch.rand(2, 8, 5, 5))  # outside the block nothing is kept
    assert tape["u"] is x and block._tape is None


def test_heatmap_matches_a_float64_literal_reimplementation(se_model, images):
    model = se_model.double()
    x = images.double()
    feats = {}
    h = model.features.se.register_forward_hook(lambda m, a, o: feats.update(u=a[0], x=o))
    with torch.no_grad():
        model(x)
    h.remove()
    u, X = feats["u"], feats["x"]
    se = model.features.se
    z = u.mean((2, 3))[..., None, None]  # the literal formula, in float64
    s = torch.sigmoid(se.fc2(torch.relu(se.fc1(z)))).flatten(1)
    k = max(1, round(0.1 * s.shape[1] + 0.5 - 1e-9))  # ceil(0.1·C)
    expected = []
    for i in range(len(x)):
        top = s[i].argsort(descending=True)[:k]
        expected.append(X[i, top].mean(0, keepdim=True))
    expected = torch.stack(expected)
    ref = to_common_footing(expected, (32, 32), SEAttribution(model).geometry(model.features.se, x))
    got = SEAttribution(model, selection="topk").attribute(x)
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_class_aware_se_equals_gradcam_on_the_se_output(pool, images):
    model = build_model("small", 6, se=True, seed=1, pool=pool).eval()
    # break the symmetry of an untrained net a little
    target = torch.tensor([0, 3, 5])
    se_class = SEAttribution(model).attribute(images, target=target, class_aware=True)
    raw = LayerGradCam(model, model.features.se).attribute(images, target=target)
    ex = SEAttribution(model)
    ref = to_common_footing(raw.detach(), (32, 32), ex.geometry(model.features.se, images))
    torch.testing.assert_close(se_class, ref, atol=1e-5, rtol=1e-4)


def test_return_logits_is_the_models_own_output(se_model, images):
    maps, logits = SEAttribution(se_model).attribute(images, return_logits=True)
    with torch.no_grad():
        torch.testing.assert_close(logits, se_model(images))
    assert maps.shape == (3, 1, 32, 32)


def test_selection_rules_on_constructed_vectors():
    logits = torch.tensor([[4.0, 3.0, 0.0, -1.0, 5.0, 0.5, 0.1, 0.2, -2.0, 0.0]])
    s = torch.sigmoid(logits)
    top = select_channels(s, logits, "topk", k=0.2)
    assert top.selected[0].nonzero().flatten().tolist() == [0, 4]
    assert select_channels(s, logits, "topk", k=3).selected.sum() == 3
    w = select_channels(s, logits, "weighted")
    assert w.selected.all() and w.threshold is None
    logit = select_channels(s, logits, "logit", z=1.0)
    thr = logits.mean() + logits.std(unbiased=False)
    assert logit.selected[0].tolist() == (logits[0] > thr).tolist()
    # saturated vector: the paper's threshold lands above 1 -> fallback to the strongest channel
    sat_logits = torch.tensor([[9.0, 8.0, 10.0, 7.5, 9.5, 8.5, 8.0, 9.0, 12.0, 7.0]])
    sat = torch.sigmoid(sat_logits).to(torch.float32)
    paper = select_channels(sat, sat_logits, "paper")
    assert paper.selected.sum() >= 1
    with pytest.raises(ValueError, match="selection must be one of"):
        select_channels(s, logits, "median")


def test_paper_rule_falls_back_instead_of_selecting_nothing():
    s = torch.full((1, 6), 0.5)
    logits = torch.zeros(1, 6)
    v = select_channels(s, logits, "paper")
    assert v.fallback.item() and v.selected.sum().item() == 1


def test_se_vector_reports_the_vector_and_selection(se_model, images):
    v = SEAttribution(se_model, selection="topk").se_vector(images)
    assert v.s.shape == (3, 64) and ((v.s > 0) & (v.s < 1)).all()
    assert v.selected.shape == (3, 64) and v.selected.sum(1).eq(7).all()  # ceil(10 % of 64)
    assert torch.allclose(v.s, torch.sigmoid(v.logits))


def test_captum_metrics_accept_the_se_explainer(se_model, images):
    ex = SEAttribution(se_model)
    sens = sensitivity_max(ex.attribute, images, perturb_radius=0.02, n_perturb_samples=2)
    assert sens.shape == (3,) and torch.isfinite(sens).all()

    def perturb(inputs):
        noise = torch.randn_like(inputs) * 0.01
        return noise, inputs - noise

    maps = ex.attribute(images).expand_as(images)  # broadcast to the input's shape
    infid = infidelity(se_model, perturb, images, maps, target=0, n_perturb_samples=2)
    assert infid.shape == (3,) and torch.isfinite(infid).all()
