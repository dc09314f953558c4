"""The conformance suite, parametrised over the registry × five model kinds: every
explainer gets every check on an SE CNN, a CNN without SE (SE methods must refuse it by
name), a clip model (5-D inputs), a two-headed model (tuple output, ``output=0``) and a
plain vision transformer (tokens read through squeezex's reshape)."""

import re
import warnings

import numpy as np
import pytest
import torch
from captum.attr import NoiseTunnel
from torch import nn

from squeezex import get_explainer, list_explainers
from squeezex.common import ExplanationWarning
from squeezex.explainers import explainer_info, register_explainer
from tests.conftest import CASES, PLAIN, hook_count, make_case

NAMES = list_explainers()


#: The noise methods of torchcam cost their number of draws × Score-CAM per map; the
#: checks here do not depend on how many draws there are, so they run with two.
LIGHT = {"tc-sscam": {"num_samples": 2}, "tc-iscam": {"num_samples": 2}}

#: (model kind, model, fit function) → (the model, the fit's keyword arguments): a method
#: with a fit step (VEBI) is fitted once per model, not once per check.
_FITS: dict = {}


def make(name, model, case=None, *, fresh_fit=False, **kw):
    """``get_explainer`` plus the method's fit step (if any) on a small labelled set — on a
    conformance case, fitted once per (model kind, fit) unless ``fresh_fit``."""
    info = explainer_info(name)
    options = dict(case.options if case is not None else {})
    kwargs = {}
    if info.fit is not None:
        if case is not None:
            key = (case.name, id(model), info.fit)
            if fresh_fit or key not in _FITS:
                fitted = info.fit(model, case.fit_data(), progress=False, **options)
                if fresh_fit:
                    return get_explainer(name, model, **fitted, **options, **kw)
                _FITS[key] = (model, fitted)  # the model kept: its id is not reused
            kwargs = _FITS[key][1]
        else:
            g = torch.Generator().manual_seed(1)
            data = (torch.rand(24, 3, 32, 32, generator=g), torch.arange(24) % 6)
            kwargs = info.fit(model, data, progress=False, **options)
    if case is not None:
        kw = {**LIGHT.get(name, {}), **kw}
    return get_explainer(name, model, **kwargs, **options, **kw)


#: (model kind, method, target) → the case's maps: computed once, shared by the checks
#: that need them (a check of a property of computing, such as determinism or leaving no
#: hooks, computes its own).
_MAPS: dict = {}


def reference(name, case, target):
    key = (case.name, name, repr(target))
    if key not in _MAPS:
        _MAPS[key] = make(name, case.model, case).attribute(case.x, target=target).detach()
    return _MAPS[key]


_CASES = {}


def _case(kind):
    """One model of each kind for the whole module (the tests restore what they change)."""
    if kind not in _CASES:
        _CASES[kind] = make_case(kind)
    return _CASES[kind]


#: What the plain ViT adds: the methods that read a layer through squeezex's token
#: reshape (library adapters included) and rollout. Pixel-space methods (saliency …) and
#: VEBI see a ViT as any model; the slow perturbation CAMs are checked on the CNNs.
VIT_METHODS = {
    "activation-mean", "gradcam", "gradcam++", "eigencam", "guided-gradcam", "rollout",
    "random", "pgc-gradcam", "pgc-xgradcam", "pgc-layercam", "pgc-gradcam++",
    "pgc-eigencam", "tc-gradcam", "tc-layercam", "tc-cam",
}  # fmt: skip

#: (model kind, method): every method on every model kind it applies to (an SE method on
#: the models without SE is checked by the test just below instead).
COMBOS = [
    pytest.param(kind, name, id=f"{kind}-{name}")
    for kind in CASES
    for name in NAMES
    if (kind not in PLAIN or not explainer_info(name).needs_se)
    and (kind != "plain-vit" or name in VIT_METHODS)
]


def skip_if_unsupported(name, model, x, options=None):
    """Skip a model kind the method's library cannot handle, with the method's own reason
    (an explainer's ``unsupported(x)``, e.g. the adapters of 2-D-only library methods on
    clips) — after checking that ``attribute`` refuses it with that reason, by name."""
    if not hasattr(explainer_info(name).factory, "unsupported"):
        return
    ex = get_explainer(name, model, **(options or {}))
    reason = ex.unsupported(x)
    if reason is not None:
        with pytest.raises(ValueError, match=re.escape(reason)):
            ex.attribute(x, target=0)
        pytest.skip(reason)


@pytest.fixture
def case(kind, name):
    c = _case(kind)
    skip_if_unsupported(name, c.model, c.x, c.options)
    return c


@pytest.mark.parametrize("name", [n for n in NAMES if explainer_info(n).needs_se])
def test_se_methods_refuse_a_model_without_se_by_name(name):
    case = make_case("plain-cnn")
    with pytest.raises(ValueError, match="has no SE block.*attach_se_head"):
        make(name, case.model, case)


def test_registry_lists_the_required_methods():
    assert {"se", "se-paper", "se-class", "gradcam", "random"} <= set(NAMES)


def test_registry_refuses_duplicates_and_odd_names():
    with pytest.raises(ValueError, match="already registered"):
        register_explainer("se", description="again")(lambda m: None)
    with pytest.raises(ValueError, match="already registered"):
        register_explainer("new-one", description="x", presets={"se-paper": ("x", {})})(
            lambda m: None
        )
    with pytest.raises(ValueError, match="lower case"):
        register_explainer("_hidden", description="x")(lambda m: None)
    assert "new-one" not in list_explainers(), "a refused registration registers nothing"


def test_presets_are_one_method_with_fixed_options(se_model):
    for preset, option in [
        ("se-paper", ("selection", "paper")),
        ("se-topk", ("selection", "topk")),
        ("se-logit", ("selection", "logit")),
        ("se-class", ("class_aware", True)),
    ]:
        info = explainer_info(preset)
        assert info.base == "se" and info.factory is explainer_info("se").factory
        assert getattr(get_explainer(preset, se_model), option[0]) == option[1]
    assert explainer_info("vebi-nofix").preset == {"stride_fix": False}


def test_unknown_explainer_names_the_choices(se_model):
    with pytest.raises(ValueError, match="unknown explainer 'nope'.*gradcam"):
        get_explainer("nope", se_model)


@pytest.mark.parametrize("kind, name", COMBOS)
class TestConformance:
    def test_shape_range_and_footing(self, name, case):
        maps = reference(name, case, 1)
        assert maps.shape == (3, 1, *case.x.shape[2:])
        assert torch.isfinite(maps).all()
        assert maps.min() >= 0 and maps.max() <= 1
        flat = maps.flatten(1)
        assert torch.allclose(flat.min(1).values, torch.zeros(3))  # min-max per sample
        peak = flat.max(1).values
        one = (peak - 1).abs() < 1e-5
        # an untrained model can give a method nothing positive (an all-zero map) except
        # on the SE CNN, where every method has been checked to reach 1
        assert one.all() if case.name == "se-cnn" else (one | (peak == 0)).all(), peak

    def test_batch_matches_single(self, name, case):
        ex = make(name, case.model, case)
        if not ex.per_sample:
            pytest.skip(f"{name} maps depend on the batch by design (per_sample=False)")
        batch = reference(name, case, [0, 1, 2])
        for i in range(3):
            single = ex.attribute(case.x[i : i + 1], target=i)
            torch.testing.assert_close(batch[i : i + 1], single, atol=1e-4, rtol=1e-4)

    def test_deterministic(self, name, case):
        a = reference(name, case, 2)
        b = make(name, case.model, case).attribute(case.x, target=2)
        torch.testing.assert_close(a, b)

    @pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
    def test_no_hooks_left_and_model_unchanged(self, name, case, mode):
        # the explainer must not leave any module's flag changed, nor update BN stats
        model = case.model
        model.train(mode == "train")
        if mode == "mixed":
            list(model.modules())[1].train()
        try:
            before = {k: v.clone() for k, v in model.state_dict().items()}
            flags = [m.training for m in model.modules()]
            hooks = hook_count(model)
            make(name, model, case, fresh_fit=True).attribute(case.x, target=0)  # fit included
            assert hook_count(model) == hooks
            assert [m.training for m in model.modules()] == flags
            for k, v in model.state_dict().items():
                torch.testing.assert_close(v, before[k], msg=f"{k} changed")
            assert all(p.grad is None for p in model.parameters())
        finally:
            model.eval()

    def test_no_hooks_left_after_an_exception(self, name, case):

        def boom(module, args):
            raise RuntimeError("boom")

        ex = make(name, case.model, case)
        h = case.head.register_forward_pre_hook(boom)
        hooks = hook_count(case.model)
        try:
            with pytest.raises((RuntimeError, ValueError), match="boom"):
                ex.attribute(case.x, target=0)  # a target makes every method run the model
            assert hook_count(case.model) == hooks
        finally:
            h.remove()

    def test_works_under_no_grad_and_inference_mode(self, name, case):
        ex = make(name, case.model, case)
        expected = reference(name, case, 1)
        with torch.no_grad():
            got = ex.attribute(case.x, target=1)
        torch.testing.assert_close(got, expected)
        with torch.inference_mode():
            x = case.x.clone()  # an inference tensor
            got = ex.attribute(x, target=1)
        torch.testing.assert_close(got, expected)

    def test_tuple_in_tuple_out(self, name, case):
        out = make(name, case.model, case).attribute((case.x,), target=1)
        assert (
            isinstance(out, tuple) and len(out) == 1 and out[0].shape == (3, 1, *case.x.shape[2:])
        )
        torch.testing.assert_close(out[0], reference(name, case, 1))

    def test_bad_targets_are_named(self, name, case):
        ex = make(name, case.model, case)
        x = case.x
        with pytest.raises(ValueError, match="one entry per sample|class indices"):
            ex.attribute(x, target=torch.tensor([0, 1]))
        with pytest.raises(ValueError, match=r"class indices in \[0, 6\)"):
            ex.attribute(x, target=7)
        for bad in (torch.tensor([1.7, 2.9, 0.0]), True, 1.0, np.array([0.0, 1.0, 2.0])):
            with pytest.raises(ValueError, match="integer|class index"):
                ex.attribute(x, target=bad)
        with pytest.raises(ValueError, match=">= 0"):
            ex.attribute(x, target=-1)
        as_numpy = ex.attribute(x, target=np.array([0, 1, 2]))
        torch.testing.assert_close(as_numpy, reference(name, case, [0, 1, 2]))

    def test_bad_inputs_are_named_before_the_model_runs(self, name, case):
        ex = make(name, case.model, case)
        x = case.x
        with pytest.raises(ValueError, match="N×C×H×W"):
            ex.attribute(x[0, 0])
        with pytest.raises(ValueError, match="channels-last"):
            ex.attribute(x.movedim(1, -1).contiguous())
        with pytest.raises(ValueError, match="takes 3 channel"):
            ex.attribute(x[:, :1])
        for dtype in (torch.float64, torch.float16):
            wrong = str(dtype).removeprefix("torch.")
            with pytest.raises(ValueError, match=f"{wrong} but the model's parameters are float32"):
                ex.attribute(x.to(dtype))
        with pytest.raises(ValueError, match="meta tensor"):
            ex.attribute(x.to("meta"))
        nan = x.clone()
        nan[1, 0, 0, 0] = float("nan")
        with pytest.raises(ValueError, match=r"NaN or infinite values in sample\(s\) \[1\]"):
            ex.attribute(nan)

    def test_noise_tunnel_wraps_it(self, name, case):
        nt = NoiseTunnel(make(name, case.model, case))
        maps = nt.attribute(case.x, nt_type="smoothgrad", nt_samples=2, stdevs=0.05, target=1)
        assert maps.shape == (3, 1, *case.x.shape[2:]) and torch.isfinite(maps).all()


@pytest.mark.parametrize("name", NAMES)
def test_targets_follow_a_replaced_head(name, se_model, images):
    """Targets are checked against the model's real output, not a cached classifier."""
    if name.startswith("vebi"):
        pytest.skip("a VEBI fit belongs to the model it was made for")
    skip_if_unsupported(name, se_model, images)
    ex = make(name, se_model)
    se_model.fc = nn.Linear(se_model.fc.in_features, 10)
    assert ex.attribute(images, target=8).shape == (3, 1, 32, 32), "8 of 10 is valid"
    se_model.fc = nn.Linear(se_model.fc.in_features, 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        ex.attribute(images, target=5)


@pytest.mark.parametrize("name", [n for n in NAMES if not explainer_info(n).needs_se])
def test_a_convolutional_head_without_a_linear_layer_is_checked_too(name):
    """No nn.Linear anywhere: the width of the output still bounds the target."""
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2, padding=1),
        nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
    ).eval()  # fmt: skip
    case = make_case("se-cnn")
    case.model, case.classes = model, 4
    x = torch.rand(2, 3, 16, 16, generator=g)
    skip_if_unsupported(name, model, x)
    ex = make(name, model, case)
    assert ex.attribute(x, target=3).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        ex.attribute(x, target=9)


class HeadFirst(nn.Module):
    """Declares its head before its body: the first registered convolution is not the one
    that reads the input."""

    def __init__(self):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(16, 4, 1), nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())

    def forward(self, x):
        return self.head(self.body(x))


@pytest.mark.parametrize("name", ["gradcam", "saliency", "occlusion", "random"])
def test_valid_inputs_are_never_refused_for_the_order_of_registration(name):
    model = HeadFirst().eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ex = get_explainer(name, model, **({"layer": "body.0"} if name == "gradcam" else {}))
    assert ex.attribute(x, target=1).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="takes 3 channel"):
        ex.attribute(torch.rand(2, 5, 8, 8), target=1)  # no convolution takes 5


def test_a_two_headed_model_needs_a_chosen_head():
    case = make_case("two-heads")
    ex = get_explainer("gradcam", case.model)
    with pytest.raises(ValueError, match="returns a tuple of 2 outputs.*output="):
        ex.attribute(case.x)
    aux = get_explainer("gradcam", case.model, output=1)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        aux.attribute(case.x, target=4)
    assert aux.attribute(case.x, target=2).shape == (3, 1, 32, 32)


@pytest.mark.parametrize("name", ["gradcam", "saliency", "integrated-gradients", "occlusion"])
def test_non_finite_maps_are_reported_by_name(name, se_model, images):
    with torch.no_grad():
        se_model.fc.weight[0, 0] = float("nan")  # NaN scores: NaN gradients and drops
    with pytest.warns(ExplanationWarning, match=r"sample\(s\) \[0, 1, 2\].*not explanations"):
        ex = get_explainer(name, se_model)
        ex.attribute(images, target=0)


def test_finite_maps_warn_nothing(se_model, images):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExplanationWarning)
        get_explainer("gradcam", se_model).attribute(images, target=0)


def test_scalar_target_applies_to_every_sample_and_sample_two_gets_its_own(se_model, images):
    """The pytorch-grad-cam bug: one target for a batch must not mean 'first sample only'."""
    ex = get_explainer("gradcam", se_model)
    batch = ex.attribute(images, target=[0, 1, 5])
    alone = ex.attribute(images[2:3], target=5)
    torch.testing.assert_close(batch[2:3], alone, atol=1e-5, rtol=1e-4)
    same = ex.attribute(images, target=4)
    for i in range(3):
        torch.testing.assert_close(
            same[i : i + 1], ex.attribute(images[i : i + 1], target=4), atol=1e-5, rtol=1e-4
        )


def test_info_flags_come_from_the_classes():
    assert explainer_info("gradcam").needs_gradients
    assert explainer_info("se").needs_se and not explainer_info("se").needs_gradients
    assert not explainer_info("occlusion").needs_gradients
    assert explainer_info("vebi-nofix").needs_gradients and explainer_info("vebi").fit is not None
