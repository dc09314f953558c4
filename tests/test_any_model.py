"""The SE head on token models (ViT, video Swin, channels-last maps), finding the layer on
the user's own input, and no silent empty maps."""

import warnings

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.video.swin_transformer import SwinTransformer3d

from squeezex import SEAttribution, attach_se_head
from squeezex.bench.cells import _map_metrics
from squeezex.common import ExplanationWarning
from squeezex.models.se import (
    SEBlock,
    TokenSEBlock,
    declared_input_size,
    find_feature_layer,
    find_se_block,
)


def _vit(layers=2):
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=layers, num_heads=2, hidden_dim=32,
        mlp_dim=64, num_classes=4,
    )  # fmt: skip
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision starts it at zero
    return model.eval()


def _swin3d():
    torch.manual_seed(0)
    return SwinTransformer3d(
        patch_size=[2, 4, 4], embed_dim=16, depths=[1, 1], num_heads=[2, 2],
        window_size=[2, 4, 4], num_classes=3,
    ).eval()  # fmt: skip


def _perturbed(model, x):
    """The logits with the SE vector rescaled per channel at random."""
    se = find_se_block(model)
    g = torch.Generator().manual_seed(0)
    h = se.scale_activation.register_forward_hook(
        lambda m, a, s: s * torch.rand(s.shape, generator=g)
    )
    try:
        with torch.no_grad():
            return model(x)
    finally:
        h.remove()


def test_token_block_scales_every_token_and_reads_the_patch_grid():
    se = TokenSEBlock(8, reduction=2, layout="tokens", prefix=1)
    x = torch.randn(2, 1 + 16, 8)
    with se.recording() as tape:
        out = se(x)
    u = tape["u"]
    assert u.shape == (2, 8, 4, 4) and se.last_grid == (4, 4)
    assert torch.equal(u[:, :, 0, 1], x[:, 2])  # raster order, the class token left out
    s = (out / x)[:, 0]  # the class token is scaled by s too
    torch.testing.assert_close(out, x * s[:, None])
    torch.testing.assert_close(tape["x"], u * s[:, :, None, None])
    z = u.mean(dim=(2, 3))  # the squeeze ignores the class token
    expect = torch.sigmoid(se.fc2(torch.relu(se.fc1(z[:, :, None, None])))).flatten(1)
    torch.testing.assert_close(s, expect)
    with pytest.raises(ValueError, match="not a square grid"):
        se(torch.randn(1, 1 + 15, 8))
    with pytest.raises(ValueError, match="expects N×…×8"):
        se(torch.randn(1, 17, 6))
    last = TokenSEBlock(8, layout="channels_last")
    y = torch.randn(2, 3, 4, 5, 8)  # N×T×H×W×C
    with last.recording() as tape:
        last(y)
    assert tape["u"].shape == (2, 8, 3, 4, 5)
    with pytest.raises(ValueError, match="layout must be"):
        TokenSEBlock(8, layout="nchw")


def test_vit_gets_its_block_before_the_last_encoder_block_and_the_head_depends_on_it():
    model = _vit()
    x = torch.rand(3, 3, 32, 32)
    attach_se_head(model, example=x)
    se = find_se_block(model)
    assert isinstance(se, TokenSEBlock) and se.layout == "tokens" and se.prefix == 1
    assert isinstance(model.encoder.layers[0][1], TokenSEBlock)  # encoder_layer_0 wrapped
    with torch.no_grad():
        base = model(x)
    assert (_perturbed(model, x) - base).abs().max() > 1e-4
    ex = SEAttribution(model)
    maps = ex.attribute(x)
    assert maps.shape == (3, 1, 32, 32) and torch.isfinite(maps).all()
    geo = ex.geometry(se, x)
    assert geo.stride == (8.0, 8.0) and geo.offset == (3.5, 3.5)  # the real patch geometry
    one = attach_se_head(_vit(layers=1), example=x)
    assert isinstance(one.encoder.dropout[1], TokenSEBlock)  # one block: before it


def test_channels_last_video_swin():
    model = _swin3d()
    x = torch.rand(2, 3, 4, 32, 32)
    attach_se_head(model, example=x)
    se = find_se_block(model)
    assert isinstance(se, TokenSEBlock) and se.layout == "channels_last" and se.channels == 32
    with torch.no_grad():
        base = model(x)
    assert (_perturbed(model, x) - base).abs().max() > 1e-4
    maps = SEAttribution(model).attribute(x)
    assert maps.shape == (2, 1, 4, 32, 32) and torch.isfinite(maps).all()


def test_cnn_layout_is_unchanged():
    model = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    attach_se_head(model, example=torch.rand(1, 3, 64, 64))
    assert type(find_se_block(model)) is SEBlock and find_se_block(model).channels == 512


def test_the_layer_is_found_on_the_users_input_or_a_declared_size():
    vit = _vit()
    assert declared_input_size(vit) == (3, 32, 32)
    assert find_feature_layer(vit) == find_feature_layer(vit, example=torch.rand(2, 3, 32, 32))

    class Fixed(nn.Module):  # takes 40×40 only, declares nothing
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 40 * 40, 2)

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    with pytest.raises(ValueError, match=r"example=.*layer='dotted.name'.*\['conv', 'fc'\]"):
        find_feature_layer(Fixed())
    assert find_feature_layer(Fixed(), example=torch.rand(1, 3, 40, 40)) == "conv"


def test_mvit_declares_its_input_size():
    mvit = torchvision.models.video.mvit_v2_s(weights=None)
    assert declared_input_size(mvit) == (3, 16, 224, 224)


class _NegativeSquare(nn.Module):
    def forward(self, x):
        return -(x**2) - 1


class _Negative(nn.Module):
    """A head on a layer whose activations are all negative (no ReLU before it)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _NegativeSquare())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def test_an_all_zero_map_is_flagged_per_sample_and_warned():
    model = attach_se_head(_Negative(), example=torch.rand(1, 3, 16, 16)).eval()
    with torch.no_grad():
        model.fc.weight.copy_(torch.rand_like(model.fc.weight) + 0.1)  # CAM < 0 everywhere
    ex = SEAttribution(model, class_aware=True)
    with pytest.warns(ExplanationWarning, match=r"sample\(s\) \[0, 1\] is all zero.*layer="):
        maps = ex.attribute(torch.rand(2, 3, 16, 16))
    assert ex.flags == {0: "all zero", 1: "all zero"} and maps.abs().max() == 0
    ok = SEAttribution(attach_se_head(torchvision.models.resnet18(weights=None).eval()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExplanationWarning)
        ok.attribute(torch.rand(1, 3, 64, 64))
    assert ok.flags == {}


def test_the_se_map_of_signed_features_is_measured_from_its_minimum():
    """Negative features (no ReLU before the SE block): not clamped to an empty map, but
    ranked from the minimum, so the argmax is that of the signed channel mean of s·U."""
    model = attach_se_head(_Negative(), example=torch.rand(1, 3, 16, 16)).eval()
    ex = SEAttribution(model)
    x = torch.rand(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExplanationWarning)
        maps = ex.attribute(x)
    assert ex.flags == {}
    with find_se_block(model).recording() as got, torch.no_grad():
        model(x)
    signed = got["x"].mean(1).flatten(1)
    assert (signed < 0).all()
    flat = maps.flatten(1)
    assert torch.equal(flat.argmax(1), signed.argmax(1)) and torch.equal(
        flat.argmin(1), signed.argmin(1)
    )
    assert torch.allclose(
        flat,
        (signed - signed.amin(1, keepdim=True))
        / (signed.amax(1, keepdim=True) - signed.amin(1, keepdim=True)),
        atol=1e-5,
    )


def test_the_benchmark_counts_empty_maps():
    maps = torch.rand(3, 1, 8, 8)
    maps[1] = 0

    class Unit:  # what _map_metrics reads
        masks = torch.ones(3, 1, 8, 8, dtype=torch.bool)
        regions, periods, pointing_tolerance = {}, (), 0

    out = _map_metrics(Unit(), maps, ["complexity"])
    assert out["empty_map"][0] == "complexity"
    assert out["empty_map"][1].tolist() == [0.0, 1.0, 0.0]


def test_layer_map_methods_read_the_token_blocks_channels_first_view():
    from squeezex import get_explainer
    from squeezex.explainers.baselines import feature_module

    model = _vit()
    x = torch.rand(3, 3, 32, 32)
    attach_se_head(model, example=x)
    se = find_se_block(model)
    assert feature_module(model) is se.view
    got = {}

    def seen(module, args, out):
        got.setdefault("shape", tuple(out.shape))

    h = se.view.register_forward_hook(seen)
    try:
        maps = get_explainer("gradcam", model).attribute(x, target=1)
    finally:
        h.remove()
    assert got["shape"] == (3, 32, 4, 4) and maps.shape == (3, 1, 32, 32)
    assert torch.isfinite(maps).all()


# -- plain ViTs: squeezex's reshape for the layer methods, and attention rollout -------------
def test_a_plain_vit_is_read_through_a_token_view_that_leaves_no_trace():
    from squeezex import get_explainer
    from squeezex.explainers.baselines import feature_module
    from squeezex.models.tokens import active_token_views, token_view
    from tests.conftest import hook_count

    model, x = _vit(layers=3), torch.rand(2, 3, 32, 32)
    view = token_view(model)
    assert view.site == "encoder.layers.encoder_layer_1" and view.prefix == 1
    assert feature_module(model) is view.view and "token_view" not in dict(model.named_modules())
    with torch.no_grad():
        plain = model(x)
        with active_token_views(model), active_token_views(model):  # re-entrant: one hook
            assert hook_count(model) == 1
            torch.testing.assert_close(model(x), plain)  # an identity in value
    assert hook_count(model) == 0 and view.last_grid == (4, 4)
    maps = get_explainer("gradcam", model).attribute(x, target=[0, 1])
    assert maps.shape == (2, 1, 32, 32) and hook_count(model) == 0
    assert token_view(torchvision.models.resnet18(weights=None)) is None


def test_gradcam_on_a_plain_vit_equals_pytorch_grad_cams_reshape_transform():
    """squeezex's reshape is pytorch-grad-cam's documented ``reshape_transform`` on the
    tokens entering the last block (the library's own pipeline, bilinear resize)."""
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from squeezex import get_explainer

    def reshape_transform(tokens, h=4, w=4):  # the library's ViT example
        return tokens[:, 1:].reshape(tokens.shape[0], h, w, tokens.shape[2]).permute(0, 3, 1, 2)

    model, x = _vit(layers=3), torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cam = GradCAM(model, [model.encoder.layers[-2]], reshape_transform=reshape_transform)
    try:
        theirs = cam(x, targets=[ClassifierOutputTarget(t) for t in (0, 3)])
    finally:
        cam.activations_and_grads.release()
        model.zero_grad()
    ours = get_explainer("gradcam-interp", model).attribute(x, target=[0, 3])
    torch.testing.assert_close(ours, torch.from_numpy(theirs)[:, None], atol=1e-5, rtol=1e-4)


def test_attention_rollout_is_the_product_of_the_residual_attention_matrices():
    from squeezex import get_explainer

    model, x = _vit(layers=3), torch.rand(2, 3, 32, 32)
    got = []
    for block in model.encoder.layers:  # reference: each block's weights, by hand
        ln = block.ln_1

        def keep(m, a, out, blk=block):
            got.append(blk.self_attention(out, out, out, average_attn_weights=False)[1])

        ln.register_forward_hook(keep)
    with torch.no_grad():
        model(x)
    for block in model.encoder.layers:
        block.ln_1._forward_hooks.clear()
    joint = torch.eye(17).expand(2, 17, 17)
    for a in got:
        a = 0.5 * torch.eye(17) + 0.5 * a.mean(1)
        joint = (a / a.sum(-1, keepdim=True)) @ joint
    want = joint[:, 0, 1:].reshape(2, 1, 4, 4)
    ex = get_explainer("rollout", model)
    maps = ex.attribute(x)
    assert maps.shape == (2, 1, 32, 32) and ex.flags == {}
    ex.footing = lambda m, x, geometry: m  # the patch-grid map before the footing
    torch.testing.assert_close(ex.attribute(x), want, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="rollout: .*nn.MultiheadAttention.*ResNet has none"):
        get_explainer("rollout", torchvision.models.resnet18(weights=None).eval()).attribute(
            torch.rand(1, 3, 32, 32)
        )


def test_the_se_map_of_tokens_is_the_deviation_from_the_squeeze():
    """Tokens have no zero point: the map is the channel mean of |X − X̄| (X̄ the squeezed,
    patch-mean tokens), before the footing; s := 1 (activation-mean) uses U the same way."""
    from squeezex import get_explainer

    model, x = _vit(layers=3), torch.rand(2, 3, 32, 32)
    attach_se_head(model, example=x)
    with find_se_block(model).recording() as got, torch.no_grad():
        model(x)
    for name, feats in (("se", got["x"]), ("activation-mean", got["u"])):
        ex = get_explainer(name, model)
        ex.footing = lambda m, x, geometry: m  # the patch-grid map
        want = (feats - feats.mean((2, 3), keepdim=True)).abs().mean(1, keepdim=True)
        torch.testing.assert_close(ex.attribute(x), want)
    plain = _vit(layers=3)  # a plain ViT's activation-mean reads its token view the same way
    view = get_explainer("activation-mean", plain)
    view.footing = lambda m, x, geometry: m
    assert (view.attribute(x) >= 0).all()


def test_a_convolutional_classifier_is_the_head_not_the_feature_layer():
    """SqueezeNet's classifier is a 1×1 conv to class maps: the SE block goes before it."""
    squeeze = torchvision.models.squeezenet1_1(weights=None, num_classes=10)
    assert find_feature_layer(squeeze, example=torch.rand(1, 3, 64, 64)) == "features"

    class OnlyHead(nn.Module):  # nothing spatial before the head: the head it is
        def __init__(self):
            super().__init__()
            self.head = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

        def forward(self, x):
            return self.head(x)

    assert find_feature_layer(OnlyHead(), example=torch.rand(1, 3, 8, 8)) == "head.0"
