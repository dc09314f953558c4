"""The conformance suite, parametrised over the registry: every explainer gets every check."""

import pytest
import torch
from captum.attr import NoiseTunnel

from squeezex import get_explainer, list_explainers
from squeezex.explainers import explainer_info, register_explainer
from tests.conftest import hook_count

NAMES = list_explainers()


def make(name, model):
    """``get_explainer`` plus the method's fit step (if any) on a small labelled set."""
    info = explainer_info(name)
    kwargs = {}
    if info.fit is not None:
        g = torch.Generator().manual_seed(1)
        x = torch.rand(24, 3, 32, 32, generator=g)
        y = torch.arange(24) % 6
        kwargs = info.fit(model, (x, y), progress=False)
    return get_explainer(name, model, **kwargs)


def test_registry_lists_the_required_methods():
    assert {"se", "se-paper", "se-class", "gradcam", "random"} <= set(NAMES)


def test_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_explainer("se", description="again")(lambda m: None)


def test_unknown_explainer_names_the_choices(se_model):
    with pytest.raises(ValueError, match="unknown explainer 'nope'.*gradcam"):
        get_explainer("nope", se_model)


@pytest.mark.parametrize("name", NAMES)
class TestConformance:
    def test_shape_range_and_footing(self, name, se_model, images):
        maps = make(name, se_model).attribute(images, target=1)
        assert maps.shape == (3, 1, 32, 32)
        assert torch.isfinite(maps).all()
        assert maps.min() >= 0 and maps.max() <= 1
        flat = maps.flatten(1)
        assert torch.allclose(flat.max(1).values, torch.ones(3))  # min-max per sample
        assert torch.allclose(flat.min(1).values, torch.zeros(3))

    def test_batch_matches_single(self, name, se_model, images):
        ex = make(name, se_model)
        if not ex.per_sample:
            pytest.skip(f"{name} maps depend on the batch by design (per_sample=False)")
        batch = ex.attribute(images, target=[0, 1, 2])
        for i in range(3):
            single = ex.attribute(images[i : i + 1], target=i)
            torch.testing.assert_close(batch[i : i + 1], single, atol=1e-4, rtol=1e-4)

    def test_deterministic(self, name, se_model, images):
        a = make(name, se_model).attribute(images, target=2)
        b = make(name, se_model).attribute(images, target=2)
        torch.testing.assert_close(a, b)

    @pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
    def test_no_hooks_left_and_model_unchanged(self, name, se_model, images, mode):
        # the explainer must not leave any module's flag changed, nor update BN stats
        se_model.train(mode == "train")
        if mode == "mixed":
            list(se_model.modules())[1].train()
        before = {k: v.clone() for k, v in se_model.state_dict().items()}
        flags = [m.training for m in se_model.modules()]
        hooks = hook_count(se_model)
        make(name, se_model).attribute(images, target=0)
        assert hook_count(se_model) == hooks
        assert [m.training for m in se_model.modules()] == flags
        for k, v in se_model.state_dict().items():
            torch.testing.assert_close(v, before[k], msg=f"{k} changed")
        assert all(p.grad is None for p in se_model.parameters())

    def test_no_hooks_left_after_an_exception(self, name, se_model, images):
        def boom(module, args):
            raise RuntimeError("boom")

        ex = make(name, se_model)
        h = se_model.fc.register_forward_pre_hook(boom)
        hooks = hook_count(se_model)
        try:
            ex.attribute(images, target=0)
        except RuntimeError as exc:
            assert "boom" in str(exc)
        assert hook_count(se_model) == hooks
        h.remove()

    def test_works_under_no_grad(self, name, se_model, images):
        ex = make(name, se_model)
        expected = ex.attribute(images, target=1)
        with torch.no_grad():
            got = ex.attribute(images, target=1)
        torch.testing.assert_close(got, expected)

    def test_tuple_in_tuple_out(self, name, se_model, images):
        out = make(name, se_model).attribute((images,), target=1)
        assert isinstance(out, tuple) and len(out) == 1 and out[0].shape == (3, 1, 32, 32)

    def test_bad_targets_are_named(self, name, se_model, images):
        ex = make(name, se_model)
        with pytest.raises(ValueError, match="one entry per sample|class indices"):
            ex.attribute(images, target=torch.tensor([0, 1]))
        with pytest.raises(ValueError, match=r"class indices in \[0, 6\)"):
            ex.attribute(images, target=7)

    def test_bad_inputs_are_named(self, name, se_model):
        ex = make(name, se_model)
        with pytest.raises(ValueError, match="N×C×H×W"):
            ex.attribute(torch.rand(3, 32, 32))

    def test_noise_tunnel_wraps_it(self, name, se_model, images):
        nt = NoiseTunnel(make(name, se_model))
        maps = nt.attribute(images, nt_type="smoothgrad", nt_samples=2, stdevs=0.05, target=1)
        assert maps.shape == (3, 1, 32, 32) and torch.isfinite(maps).all()


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


def test_info_flags():
    assert explainer_info("gradcam").needs_gradients
    assert explainer_info("se").needs_se and not explainer_info("se").needs_gradients
