"""The adapters (squeezex.adapters): pytorch-grad-cam and torchcam behind the base class.

Agreement on the same layer after the common footing (a small SE CNN and a torchvision
ResNet-18, random weights), Grad-CAM++ where the libraries' formulas agree and where they
do not, per-sample targets (pytorch-grad-cam's one-target-per-batch pitfall), hooks and
model state, and the path without the libraries. The conformance suite
(tests/test_explainers.py) runs every registered adapter on its four model kinds.
"""

import subprocess
import sys

import pytest
import torch
import torchvision
from captum._utils.gradient import compute_layer_gradients_and_eval
from captum.attr import LayerGradCam
from torch import nn

from squeezex import attach_se_head, get_explainer, list_explainers
from squeezex.explainers import adapters, explainer_info, registry
from squeezex.explainers.adapters import ADAPTERS, INSTALL_HINT, library_missing
from squeezex.models import SmallCNN
from tests.conftest import hook_count

PGC = library_missing("pytorch-grad-cam")
TC = library_missing("torchcam")
needs_pgc = pytest.mark.skipif(PGC is not None, reason=PGC or "")
needs_tc = pytest.mark.skipif(TC is not None, reason=TC or "")
needs_both = pytest.mark.skipif(bool(PGC or TC), reason=PGC or TC or "")


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors (see conftest)


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample Pearson correlation of two N×… map batches (float64)."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def _models():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cnn = attach_se_head(SmallCNN(num_classes=6)).eval()
        resnet = torchvision.models.resnet18(num_classes=10).eval()
    g = torch.Generator().manual_seed(0)
    return {
        "se-cnn": (cnn, torch.rand(4, 3, 64, 64, generator=g)),
        "resnet18": (resnet, torch.rand(4, 3, 64, 64, generator=g)),
    }


MODELS = _models()
TARGETS = [0, 1, 2, 3]


@pytest.fixture(params=list(MODELS))
def model_x(request):
    return MODELS[request.param]


def _on_footing(ref, raw, x):
    """``raw`` (N×1×h×w at ``ref``'s layer) on the footing ``ref`` gives its own maps."""
    layer = ref.layer(x)
    return ref.footing(raw.detach().float(), x, ref.geometry(layer, x))


# -- agreement -------------------------------------------------------------------------------
@needs_both
@pytest.mark.parametrize("name", ["pgc-gradcam", "tc-gradcam", "captum"])
def test_gradcam_agrees_across_libraries(model_x, name):
    model, x = model_x
    ref = get_explainer("gradcam", model)
    ours = ref.attribute(x, target=TARGETS)
    if name == "captum":  # Captum's LayerGradCam on the same layer, then the footing
        raw = LayerGradCam(model, ref.layer(x)).attribute(x, target=TARGETS)
        theirs = _on_footing(ref, raw, x)
    else:
        theirs = get_explainer(name, model).attribute(x, target=TARGETS)
    r = pearson(ours, theirs)
    assert (r >= 0.99).all(), r
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)  # the same formula


@needs_both
def test_token_models_are_read_through_the_se_blocks_channels_first_view():
    """A ViT with a token SE block: the libraries read the layer squeezex reads (the
    block's N×C×grid view), so their Grad-CAM is squeezex's there too."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vit = torchvision.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
            mlp_dim=64, num_classes=4,
        )  # fmt: skip
        nn.init.normal_(vit.heads.head.weight, std=0.5)  # torchvision starts it at zero
        vit = attach_se_head(vit).eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ours = get_explainer("gradcam", vit).attribute(x, target=[0, 1])
    for name in ("pgc-gradcam", "tc-gradcam"):
        theirs = get_explainer(name, vit).attribute(x, target=[0, 1])
        torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)
    assert hook_count(vit) == 0


@needs_pgc
def test_pytorch_grad_cams_own_output_is_gradcam_interp(model_x):
    """The library's unmodified pipeline (cv2 resize, min-max) with one target per sample
    is squeezex's ``gradcam-interp``; one target for the batch explains sample 0 only."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, x = model_x
    ref = get_explainer("gradcam-interp", model)
    cam = GradCAM(model, [ref.layer(x)])
    try:
        own = cam(x, targets=[ClassifierOutputTarget(t) for t in TARGETS])
        pitfall = cam(x, targets=[ClassifierOutputTarget(0)])
    finally:
        cam.activations_and_grads.release()
        model.zero_grad()
    own, pitfall = torch.from_numpy(own)[:, None], torch.from_numpy(pitfall)[:, None]
    torch.testing.assert_close(own, ref.attribute(x, target=TARGETS), atol=1e-5, rtol=1e-4)
    assert (pitfall[1:] == 0).all() and pitfall[0].max() > 0, "the library's pitfall"
    adapter = get_explainer("pgc-gradcam", model, upsample="interpolate")
    torch.testing.assert_close(adapter.attribute(x, target=0), ref.attribute(x, target=0))


def _gradcam_pp_terms(model, ref, x):
    grads, evals = compute_layer_gradients_and_eval(model, ref.layer(x), x, torch.tensor(TARGETS))
    return grads[0].double(), evals[0].double()


@needs_pgc
def test_pgc_gradcam_plus_plus_is_squeezex_gradcam_plus_plus(model_x):
    """The same closed form; pytorch-grad-cam only adds ε = 1e-6 to the denominator."""
    model, x = model_x
    ours = get_explainer("gradcam++", model).attribute(x, target=TARGETS)
    theirs = get_explainer("pgc-gradcam++", model).attribute(x, target=TARGETS)
    r = pearson(ours, theirs)
    assert (r >= 0.99).all(), r


@needs_tc
def test_tc_gradcam_plus_plus_is_its_literal_formula_not_the_papers(model_x):
    """torchcam 0.5.0's GradCAMpp: α stays g² (its in-place division hits a copy), so
    w_k = Σ_ij relu(g)³. Its intended α (denominator 2g² + Σ_ab g³A) would agree with
    squeezex's Grad-CAM++ on these models; the literal one does not."""
    model, x = model_x
    ref = get_explainer("gradcam", model)
    g, a = _gradcam_pp_terms(model, ref, x)
    dims = (2, 3)
    literal = ((g.clamp_min(0) ** 3).sum(dims, keepdim=True) * a).sum(1, keepdim=True)
    g2 = g * g
    alpha = torch.where(g2 > 0, g2 / (2 * g2 + (g2 * g * a).sum(dims, keepdim=True)), 0.0)
    intended = ((alpha * g.clamp_min(0)).sum(dims, keepdim=True) * a).sum(1, keepdim=True)
    theirs = get_explainer("tc-gradcam++", model).attribute(x, target=TARGETS)
    squeezex_pp = get_explainer("gradcam++", model).attribute(x, target=TARGETS)
    assert (pearson(theirs, _on_footing(ref, literal, x)) >= 0.999).all()
    assert (pearson(squeezex_pp, _on_footing(ref, intended, x)) >= 0.999).all()
    assert (pearson(theirs, squeezex_pp) < 0.999).any(), "the formulas differ"


# -- targets, hooks, state ------------------------------------------------------------------
def _small():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)  # every adapter's map of these two samples is non-zero
        model = attach_se_head(SmallCNN(num_classes=6)).eval()
    return model, torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))


NAMES = [n for n in ADAPTERS if n in list_explainers()]
CLASS_AGNOSTIC = {"pgc-eigencam"}


@pytest.mark.parametrize("name", NAMES)
def test_per_sample_targets_are_honoured(name):
    """Two samples, two targets: the batch gives each sample's own map (as one at a time),
    and a scalar target applies to both samples, not to the first only."""
    model, x = _small()
    ex = get_explainer(name, model)
    batch = ex.attribute(x, target=[3, 5])
    for i, t in enumerate([3, 5]):
        alone = ex.attribute(x[i : i + 1], target=t)
        torch.testing.assert_close(batch[i : i + 1], alone, atol=1e-4, rtol=1e-4)
    scalar = ex.attribute(x, target=5)
    torch.testing.assert_close(scalar[1:], batch[1:], atol=1e-4, rtol=1e-4)
    assert scalar[0].max() > 0 and scalar[1].max() > 0
    if name not in CLASS_AGNOSTIC:
        assert not torch.allclose(scalar[0], batch[0]), "the target changes the map"


@pytest.mark.parametrize("name", NAMES)
def test_no_hooks_no_grad_and_state_as_before(name, monkeypatch):
    if name.startswith("pgc-"):  # the adapter releases the hooks, not the library's __del__
        from pytorch_grad_cam.base_cam import BaseCAM

        monkeypatch.setattr(BaseCAM, "__del__", lambda self: None)
    model, x = _small()
    model.train()
    model.fc.requires_grad_(False)  # a frozen head stays frozen, the rest trainable
    flags = [m.training for m in model.modules()]
    needs = [p.requires_grad for p in model.parameters()]
    layers = dict(model.named_modules())
    get_explainer(name, model).attribute(x, target=[0, 1])
    assert hook_count(model) == 0
    assert [m.training for m in model.modules()] == flags
    assert [p.requires_grad for p in model.parameters()] == needs
    assert all(p.grad is None for p in model.parameters())
    assert dict(model.named_modules()) == layers


@pytest.mark.parametrize("name", NAMES)
def test_the_libraries_do_not_switch_the_models_mode(name):
    """pytorch-grad-cam calls ``model.eval()``: with ``eval_mode=False`` the model runs in
    the mode it is in, and stays in it."""
    model, x = _small()
    model.train()
    get_explainer(name, model, eval_mode=False).attribute(x, target=[0, 1])
    assert all(m.training for m in model.modules())


@needs_pgc
def test_ablation_cam_puts_the_layer_back_when_its_ablation_pass_fails():
    model, x = _small()
    se = model.features.se

    def fail_on_ablated_copies(module, args):
        if args[0].shape[0] > len(x):  # only the library's batch of ablated copies
            raise RuntimeError("ablation pass failed")

    handle = model.fc.register_forward_pre_hook(fail_on_ablated_copies)
    try:
        with pytest.raises(RuntimeError, match="ablation pass failed"):
            get_explainer("pgc-ablationcam", model).attribute(x, target=0)
    finally:
        handle.remove()
    assert model.features.se is se
    assert hook_count(model) == 0


@needs_both
def test_progress_bars_are_silenced_and_the_rng_is_left_alone(capfd):
    import pytorch_grad_cam.score_cam as score_cam

    model, x = _small()
    tqdm_before, rng = score_cam.tqdm, torch.get_rng_state()
    for name in ("pgc-scorecam", "pgc-ablationcam", "tc-smoothgradcam++"):
        get_explainer(name, model).attribute(x, target=1)
    assert "it/s" not in capfd.readouterr().err
    assert score_cam.tqdm is tqdm_before
    assert torch.equal(torch.get_rng_state(), rng), "noise is drawn from a forked generator"


@needs_tc
def test_cam_refuses_a_model_without_its_linear_classifier_by_name():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    ex = get_explainer("tc-cam", model.eval())
    with pytest.raises(ValueError, match="tc-cam: torchcam's CAM needs one linear classifier"):
        ex.attribute(torch.rand(1, 3, 8, 8), target=0)
    assert hook_count(model) == 0


# -- registry, footing, the path without the libraries -------------------------------------
@needs_both
def test_adapters_register_after_squeezexs_methods_with_their_footing():
    names = list_explainers()
    assert names[-len(ADAPTERS) :] == list(ADAPTERS)
    assert names.index("pgc-gradcam") > names.index("random")
    assert {
        "pgc-gradcam", "pgc-hirescam", "pgc-xgradcam", "pgc-layercam", "pgc-gradcam++",
        "pgc-scorecam", "pgc-eigencam", "pgc-ablationcam", "tc-gradcam", "tc-layercam",
        "tc-scorecam",
    } <= set(names)  # fmt: skip
    for name in ADAPTERS:
        info = explainer_info(name)
        library = "pytorch-grad-cam" if name.startswith("pgc-") else "torchcam"
        assert info.footing.startswith(f"{library} {ADAPTERS[name].METHOD}'s raw map"), name
        assert "squeezex footing: ReLU, geometry-aware upsampling, min-max" in info.footing


def test_without_the_libraries_nothing_registers_and_asking_gives_the_hint(monkeypatch):
    for module in list(sys.modules):
        if module.split(".")[0] in ("pytorch_grad_cam", "torchcam"):
            monkeypatch.setitem(sys.modules, module, None)  # `import` now fails
    for module in ("pytorch_grad_cam", "torchcam"):
        monkeypatch.setitem(sys.modules, module, None)
    others = {k: v for k, v in registry._REGISTRY["image"].items() if k not in ADAPTERS}
    monkeypatch.setitem(registry._REGISTRY, "image", others)
    monkeypatch.setattr(registry, "_UNAVAILABLE", {})
    assert adapters.register_adapters() == []
    assert not set(ADAPTERS) & set(list_explainers())
    assert adapters.available_adapters() == []
    missing = adapters.missing_adapters()
    assert list(missing) == list(ADAPTERS)
    assert all(INSTALL_HINT in text for text in missing.values())
    with pytest.raises(ImportError, match=r"pgc-gradcam: pytorch-grad-cam is not installed.*"
                       r"pip install squeezex\[cam\]"):  # fmt: skip
        adapters.adapter_class("pgc-gradcam")
    with pytest.raises(ImportError, match=r"tc-layercam: torchcam is not installed"):
        ADAPTERS["tc-layercam"](SmallCNN(num_classes=6))
    with pytest.raises(ImportError, match=r"torchcam cannot be imported.*squeezex\[cam\]"):
        adapters.load_library("torchcam", "methods")
    with pytest.raises(ValueError, match="unknown adapter 'nope'.*pgc-gradcam"):
        adapters.adapter_class("nope")


def test_squeezex_imports_without_the_libraries():
    code = (
        "import sys; sys.modules['pytorch_grad_cam'] = None; sys.modules['torchcam'] = None\n"
        "import squeezex, squeezex.explainers.adapters as a, squeezex.bench\n"
        "assert not [n for n in squeezex.list_explainers() if n.startswith(('pgc-', 'tc-'))]\n"
        "assert 'pgc-gradcam' in a.ADAPTERS and 'tc-layercam' in a.missing_adapters()\n"
        "print(a.missing_adapters()['pgc-gradcam'])\n"
        "for call in (lambda: squeezex.get_explainer('pgc-scorecam', None),\n"
        "             lambda: squeezex.bench.BenchConfig(methods=['se', 'tc-layercam'])):\n"
        "    try:\n"
        "        call()\n"
        "    except ValueError as e:\n"
        "        print('refused:', e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "pip install squeezex[cam]" in done.stdout
    refused = [line for line in done.stdout.splitlines() if line.startswith("refused:")]
    assert len(refused) == 2 and all("squeezex[cam]" in line for line in refused), done.stdout
    assert "pgc-scorecam: pytorch-grad-cam" in refused[0] and "tc-layercam: torchcam" in refused[1]
