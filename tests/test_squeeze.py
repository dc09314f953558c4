"""squeezex.squeeze: an SE block attached to a trained model as the identity, trained alone
(or with the head, or everything), the frozen rest left byte for byte as it was."""

import copy
import functools

import pytest
import torch
import torchvision
from torch import nn

from squeezex import attach_se_head, squeeze
from squeezex.models import Normalize, SmallCNN
from squeezex.squeezing import find_head
from squeezex.training import fit
from tests.conftest import tiny_vit


def _data(n=48, classes=3, size=32, seed=0):
    """Images whose class is which third of the image is bright: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g) * 0.3
    y = torch.arange(n) % classes
    third = size // classes
    for i, c in enumerate(y.tolist()):
        x[i, :, :, c * third : (c + 1) * third] += 0.6
    return x, y


@functools.cache
def _trained():
    x, y = _data(n=96)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SmallCNN(num_classes=3)
    fit(model, (x, y), epochs=15, progress=False)
    return model.eval()


def _trained_cnn():
    """A SmallCNN trained without SE (1.0 on held-out images): the user's model."""
    return copy.deepcopy(_trained())


def _resnet():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torchvision.models.resnet18(weights=None, num_classes=3).eval()


@pytest.mark.parametrize("gate", ["normalised", "2sigmoid"])
@pytest.mark.parametrize("make", [_resnet, lambda: tiny_vit(3),
                                  lambda: nn.Sequential(Normalize(), _resnet())],
                         ids=["resnet18", "vit", "normalised-resnet18"])  # fmt: skip
def test_an_identity_block_leaves_every_output_exactly_as_it_was(make, gate):
    model = make()
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(x)
    attach_se_head(model, identity=gate)
    with torch.no_grad():
        after = model(x)
    assert torch.equal(before, after)
    block = [m for m in model.modules() if type(m).__name__.endswith("SEBlock")][0]
    assert block.gate == gate and not block.fc2.weight.any()
    with torch.no_grad():
        block.fc2.bias.fill_(1.0)  # every channel alike: only the 2σ gate scales them all
        assert torch.allclose(model(x), before, atol=1e-5) == (gate == "normalised")
        block.fc2.bias.copy_(torch.linspace(-2, 2, block.fc2.bias.numel()))
        assert not torch.allclose(model(x), before, atol=1e-5), "a trained block changes it"


def test_a_paper_block_is_not_the_identity():
    """The control: the default (random) block changes the outputs at once."""
    model = _resnet()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(x)
        attach_se_head(model)
        assert not torch.allclose(before, model(x))


def _without_se_keys(state: dict) -> dict:
    """A squeezed model's state dict under the original's names (the SE block's own
    entries left out)."""
    return {k.replace(".body.", "."): v for k, v in state.items() if ".se." not in k}


def test_squeezing_the_block_only_keeps_the_backbone_and_its_batchnorm_statistics():
    model = _trained_cnn()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _data(seed=1)
    squeezed, report = squeeze(model, (x, y), epochs=2, progress=False, val_data=_data(seed=2))
    assert report.identity_max_abs_diff == 0.0
    assert report.frozen_unchanged is True
    now = _without_se_keys(squeezed.state_dict())
    assert set(now) == set(original)
    changed = [k for k in original if not torch.equal(now[k], original[k])]
    assert changed == [], "every backbone parameter and BatchNorm buffer byte-identical"
    block = [m for m in squeezed.modules() if type(m).__name__ == "SEBlock"][0]
    assert block.fc2.weight.abs().sum() > 0, "the block itself was trained"
    for k, v in model.state_dict().items():  # the user's model is untouched (a copy was squeezed)
        assert torch.equal(v, original[k])
    assert report.trained_parameters == sum(p.numel() for p in block.parameters())
    assert report.evaluated_on == "validation data"
    assert set(report.per_class_original) == {"0", "1", "2"}


def test_se_plus_head_trains_the_classifier_too_and_all_trains_everything():
    model = _trained_cnn()
    x, y = _data(seed=1)
    squeezed, report = squeeze(model, (x, y), train="se+head", epochs=2, progress=False)
    assert find_head(model, x) is model.fc
    assert not torch.equal(squeezed.fc.weight, model.fc.weight)
    assert report.frozen_unchanged is True and report.evaluated_on.startswith("training data")
    conv = [k for k in model.state_dict() if k.startswith("features.0.")][0]
    assert torch.equal(_without_se_keys(squeezed.state_dict())[conv], model.state_dict()[conv])
    squeezed, report = squeeze(model, (x, y), train="all", epochs=1, progress=False)
    assert report.frozen_unchanged is None and report.frozen_parameters == 0
    assert not torch.equal(_without_se_keys(squeezed.state_dict())[conv], model.state_dict()[conv])


def test_squeezing_keeps_the_accuracy_of_a_model_that_learnt_its_task():
    model = _trained_cnn()
    val = _data(n=60, seed=3)
    squeezed, report = squeeze(model, _data(seed=1), epochs=3, progress=False, val_data=val)
    assert report.accuracy_original > 0.9, "the stand-in model learnt the task"
    assert report.accuracy_squeezed >= report.accuracy_original - 0.05
    assert report.se_vector["n_images"] == 60
    text = str(report)
    assert "identity" in text and "squeezed" in text and "SE vector" in text


def test_fit_with_parameters_keeps_frozen_modules_in_eval_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.9), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))  # fmt: skip
    x, y = _data(n=16)
    stats = model[1].running_mean.clone()
    seen = []
    model[2].register_forward_hook(lambda m, i, o: seen.append(m.training))
    fit(model, (x, y), epochs=1, progress=False, parameters=model[6].parameters())
    assert torch.equal(model[1].running_mean, stats) and seen and not any(seen)
    assert all(p.requires_grad for p in model.parameters()), "flags restored"
    with pytest.raises(ValueError, match="parameters of the model"):
        fit(model, (x, y), epochs=1, progress=False, parameters=nn.Linear(2, 2).parameters())
    with pytest.raises(ValueError, match="nothing to train"):
        fit(model, (x, y), epochs=1, progress=False, parameters=[])


def test_bad_requests_are_named():
    model = _trained_cnn()
    data = _data()
    with pytest.raises(ValueError, match="train must be one of se, se\\+head, all"):
        squeeze(model, data, train="head")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        squeeze(model, data, epochs=0)
    with pytest.raises(ValueError, match="already has an SE block"):
        squeeze(attach_se_head(SmallCNN(num_classes=3)), data)
    with pytest.raises(ValueError, match="mean and std need one value per channel"):
        Normalize((0.5, 0.5), (0.2,))
    with pytest.raises(ValueError, match="expects N×3×"):
        Normalize()(torch.rand(1, 1, 4, 4))


def test_prefix_tokens_count_distillation_tokens_and_trust_a_declared_count():
    """A distilled DeiT has a class and a distillation token before its patches (timm
    names them ``cls_token`` and ``dist_token``); a timm model declares the count."""
    from squeezex.models.tokens import prefix_tokens

    class Distilled(nn.Module):
        def __init__(self):
            super().__init__()
            self.cls_token = nn.Parameter(torch.zeros(1, 1, 8))
            self.dist_token = nn.Parameter(torch.zeros(1, 1, 8))

    class Declared(Distilled):
        num_prefix_tokens = 5  # e.g. class + 4 registers, whatever its parameters say

    class Branches(nn.Module):  # timm's CrossViT: a class token per branch
        def __init__(self):
            super().__init__()
            self.cls_token_0 = nn.Parameter(torch.zeros(1, 1, 8))
            self.cls_token_1 = nn.Parameter(torch.zeros(1, 1, 16))

    assert prefix_tokens(Distilled()) == 2
    assert prefix_tokens(Declared()) == 5
    assert prefix_tokens(Branches()) == 1, "each branch has one, not two"
    assert prefix_tokens(tiny_vit(3)) == 1  # torchvision's class_token, as before


class _Mixer(nn.Module):
    """An MLP-Mixer's shape (timm's MlpMixer, ResMLP, gMLP): patch tokens with no class
    token, a token-mixing MLP whose width is the number of tokens, mean over tokens."""

    def __init__(self, classes=3, dim=8, grid=4):
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 8, 8)
        self.mix = nn.Linear(grid * grid, grid * grid)  # across tokens: in_features = L
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = self.stem(x).flatten(2).transpose(1, 2)  # N×L×D
        t = t + self.mix(t.transpose(1, 2)).transpose(1, 2)
        return self.head(self.norm(t).mean(1))


class _PiT(nn.Module):
    """timm's PiT's shape: pooling stages (``transformers``) of token blocks, and a head
    that reads only the class token after the last stage's ``norm``."""

    def __init__(self, classes=3, dim=8):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.stem = nn.Conv2d(3, dim, 8, 8)
        stage = nn.Module()
        stage.blocks = nn.Sequential(*[nn.Linear(dim, dim) for _ in range(3)])
        self.transformers = nn.Sequential(stage)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = self.stem(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(len(t), -1, -1), t], 1)
        for block in self.transformers[0].blocks:
            t = t + torch.softmax(t @ t.transpose(1, 2), -1) @ block(t)  # attention-like
        return self.head(self.norm(t[:, :1])[:, 0])


@pytest.mark.parametrize("make", [_Mixer, _PiT], ids=["token-only", "pooling-transformer"])
def test_token_models_take_the_se_head_where_the_head_reads_them(make):
    """A token-only model (tokens N×L×D whose L is also a token-mixing MLP's width) was
    refused with a message suggesting the very layer it refused; a PiT's class token
    alone reached its final norm, so the block had no patch to map. Both now map."""
    from squeezex import SEAttribution
    from squeezex.models.se import find_se_block, se_site

    torch.manual_seed(0)
    model = attach_se_head(make().eval(), input_size=(3, 32, 32))
    site = se_site(model)
    assert site == ("norm" if make is _Mixer else "transformers.0.blocks.1")
    assert find_se_block(model).layout == "tokens"
    maps = SEAttribution(model).attribute(torch.rand(2, 3, 32, 32), target=0)
    assert maps.shape == (2, 1, 32, 32) and torch.isfinite(maps).all()
    assert (maps.flatten(1).std(1) > 0).all(), "a map over the 4×4 patches, not a constant"


def test_a_multi_branch_model_is_refused_with_what_to_pass():
    class _Cross(_Mixer):
        def __init__(self):
            super().__init__()
            self.norm = nn.ModuleList([nn.LayerNorm(8), nn.LayerNorm(8)])

    with pytest.raises(
        ValueError, match=r"2 token branches \('norm.0', 'norm.1'\).*layer=.*layout='tokens'"
    ):
        attach_se_head(_Cross(), input_size=(3, 32, 32))


def test_the_selection_penalty_is_the_entropy_of_the_se_weights_added_to_the_loss():
    """``select=λ`` trains on cross-entropy + λ × the normalised entropy of s / Σ s; its
    gradient reaches the block once s is not uniform (at the identity, uniform s is the
    entropy's maximum: the classification loss moves it first). What it does to real
    models is measured in ``benchmarks/se_select.py``."""
    from torch.nn import functional as F

    from squeezex.models.se import find_se_block
    from squeezex.squeezing import Selective, selection_entropy

    model, (x, y) = _trained_cnn(), _data(n=16)
    attach_se_head(model, identity=True, input_size=(3, 32, 32))
    block = find_se_block(model)
    torch.nn.init.normal_(block.fc2.weight, std=0.5)  # off the identity: s not uniform
    loss, _ = Selective(block, 2.0).loss(model, x, y)
    with block.recording() as tape:
        plain = F.cross_entropy(model(x), y)
    entropy = selection_entropy(tape["e"])
    assert ((0 < entropy) & (entropy < 1)).all()
    assert loss.item() == pytest.approx((plain + 2.0 * entropy.mean()).item(), rel=1e-5)
    (2.0 * entropy.mean()).backward()
    assert block.fc2.weight.grad.abs().sum() > 0
    assert selection_entropy(torch.zeros(2, 8, 1, 1)).tolist() == pytest.approx([1.0, 1.0])
    squeezed, report = squeeze(_trained_cnn(), _data(n=48), epochs=1, select=0.5, progress=False)
    assert report.select == 0.5 and report.frozen_unchanged
    with pytest.raises(ValueError, match="select must be >= 0"):
        squeeze(_trained_cnn(), _data(n=48), select=-1.0, progress=False)


def test_a_wrapped_vit_takes_the_head_on_the_tokens_its_class_token_reads_last():
    """``nn.Sequential(Normalize(), vit)`` — how a normalised ViT is squeezed and how the
    benchmark's ``vit`` is built — put the block on the encoder's output, whose patch
    tokens the head never reads: Grad-CAM's gradients there were all zero and s read
    places the prediction does not use. It goes where the bare ViT's goes."""
    from squeezex import get_explainer
    from squeezex.models import small_vit
    from squeezex.models.se import se_site

    torch.manual_seed(0)
    vit = small_vit(3, 32)
    torch.nn.init.normal_(vit.heads.head.weight, std=0.5)  # torchvision zero-inits the head
    model = attach_se_head(nn.Sequential(Normalize(), vit).eval(), identity=True,
                           input_size=(3, 32, 32))  # fmt: skip
    assert se_site(model) == "1.encoder.layers.encoder_layer_2"
    maps = get_explainer("gradcam", model).attribute(torch.rand(4, 3, 32, 32), target=0)
    assert (maps.flatten(1).amax(1) > 0).all(), "gradients reach the block's tokens"
