"""pytorch-grad-cam (``pip install grad-cam``, import ``pytorch_grad_cam``) behind squeezex.

Each adapter builds the library's class on squeezex's layer for one call and keeps the map
its ``get_cam_image`` returns: N×h×w at the layer's resolution, before the library's ReLU,
``cv2.resize`` and min-max; the common footing replaces those. What the adapter takes care
of, beyond the footing:

* **Targets.** The library zips its ``targets`` with the batch: one
  ``ClassifierOutputTarget`` for a batch explains the first sample only (a known pitfall).
  Here every sample gets its own target (a scalar target is repeated), so a batch gives
  the maps of its samples one at a time.
* **Hooks.** ``ActivationsAndGradients`` hooks the layer in the constructor; it is
  released in ``finally`` (the library's ``__exit__`` is not used: it swallows
  ``IndexError``). AblationCAM's own layer hook and its layer swap are undone whatever
  happens.
* **State.** The library calls ``model.eval()`` and ``model.zero_grad()`` and runs
  ``loss.backward()``: it gets the model through :class:`~.base.Bound` (both calls leave
  the model alone) with its parameters not requiring grad for the call (the input copy
  does), so no ``.grad`` appears and ``requires_grad`` is as it was.
* **Progress bars.** ScoreCAM and AblationCAM draw a tqdm bar per sample; for the call the
  name ``tqdm`` in those two library modules is a silent stand-in (restored after).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager, nullcontext
from types import SimpleNamespace

import torch
from torch import nn

from ...options import Int, check
from .base import Bound, LibraryCAM, load_library, no_parameter_grads

__all__ = [
    "PGCAdapter",
    "PGCGradCAM",
    "PGCHiResCAM",
    "PGCXGradCAM",
    "PGCLayerCAM",
    "PGCGradCAMPlusPlus",
    "PGCScoreCAM",
    "PGCEigenCAM",
    "PGCAblationCAM",
    "PGC_ADAPTERS",
]

_LAYER = "Grad-CAM layer (SE block output, else last spatial layer)"
_FOOTING = "squeezex footing: ReLU, {upsampling}, min-max (not its cv2 resize)"


@functools.cache
def _capturing(cls: type) -> type:
    """``cls`` recording the raw map of its ``get_cam_image`` (and, for AblationCAM, putting
    the layer back if its ablation pass fails)."""

    class Capturing(cls):
        def get_cam_image(self, *args, **kwargs):
            raw = super().get_cam_image(*args, **kwargs)
            self.squeezex_raw = raw
            return raw

        def get_cam_weights(self, input_tensor, target_layer, *args, **kwargs):
            try:
                return super().get_cam_weights(input_tensor, target_layer, *args, **kwargs)
            finally:
                ablation = getattr(self, "ablation_layer", None)
                if ablation is not None:  # a no-op when the library put the layer back
                    replace = load_library("pytorch-grad-cam", "utils.find_layers")
                    replace.replace_layer_recursive(self.model, ablation, target_layer)

    Capturing.__name__ = Capturing.__qualname__ = f"Capturing{cls.__name__}"
    return Capturing


_SILENT_TQDM = SimpleNamespace(tqdm=lambda iterable, *args, **kwargs: iterable)


@contextmanager
def _quiet(*modules: str):
    """The name ``tqdm`` in the library ``modules`` is a silent stand-in inside the block."""
    mods = [load_library("pytorch-grad-cam", m) for m in modules]
    saved = [m.tqdm for m in mods]
    for m in mods:
        m.tqdm = _SILENT_TQDM
    try:
        yield
    finally:
        for m, old in zip(mods, saved, strict=True):
            m.tqdm = old


class PGCAdapter(LibraryCAM):
    """A pytorch-grad-cam method on squeezex's layer and footing.

    Args:
        model: the model to explain.
        layer: the layer to read (default: the one squeezex's ``gradcam`` reads).
        **kwargs: :class:`~squeezex.explainers.base.HeatmapAttribution` options.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> from squeezex.explainers.adapters.pgc import PGCGradCAM
        >>> cam = PGCGradCAM(SmallCNN(num_classes=6).eval())
        >>> cam.attribute(torch.rand(2, 3, 64, 64), target=[0, 3]).shape
        torch.Size([2, 1, 64, 64])
    """

    LIBRARY = "pytorch-grad-cam"
    #: Library modules whose tqdm bars are silenced for the call.
    _BARS: tuple[str, ...] = ()

    def _options(self) -> dict:
        """Keyword arguments of the library's constructor (beyond model and layers)."""
        return {}

    def _configure(self, cam) -> None:
        """Set options the library reads from the instance (none by default)."""

    def _raw(self, layer, x, target, extra):
        lib = load_library(self.LIBRARY)
        targets_mod = load_library(self.LIBRARY, "utils.model_targets")
        # one target per sample: the library zips targets with the batch
        targets = [targets_mod.ClassifierOutputTarget(int(t)) for t in target.tolist()]
        model = Bound(self.forward_model, extra)
        cam = _capturing(getattr(lib, self.METHOD))(model, [layer], **self._options())
        try:
            self._configure(cam)
            frozen = no_parameter_grads(self.model) if self.needs_gradients else nullcontext()
            with frozen, self._grad_mode(), _quiet(*self._BARS):
                cam(self._grad_input(x), targets=targets)
        finally:
            cam.activations_and_grads.release()
        raw = torch.as_tensor(cam.squeezex_raw)
        return raw.unsqueeze(1)


class PGCGradCAM(PGCAdapter):
    """Grad-CAM (Selvaraju et al., ICCV 2017), pytorch-grad-cam's ``GradCAM``: channel
    weights = spatial mean of the layer gradient. Equals squeezex's ``gradcam``."""

    NAME, METHOD = "pgc-gradcam", "GradCAM"
    DESCRIPTION = "Grad-CAM (pytorch-grad-cam GradCAM) on the same layer"
    FOOTING = f"pytorch-grad-cam GradCAM's raw map of the {_LAYER}, layer gradients, {_FOOTING}"


class PGCHiResCAM(PGCAdapter):
    """HiResCAM (Draelos & Carin, 2020), pytorch-grad-cam's ``HiResCAM``: the layer's
    gradient × activation, summed over channels (no spatial averaging)."""

    NAME, METHOD = "pgc-hirescam", "HiResCAM"
    DESCRIPTION = "HiResCAM (pytorch-grad-cam): gradient × activation summed over channels"
    FOOTING = f"pytorch-grad-cam HiResCAM's raw map of the {_LAYER}, layer gradients, {_FOOTING}"


class PGCXGradCAM(PGCAdapter):
    """XGrad-CAM (Fu et al., BMVC 2020), pytorch-grad-cam's ``XGradCAM``: channel weights =
    Σ_ij g·A / Σ_ij A."""

    NAME, METHOD = "pgc-xgradcam", "XGradCAM"
    DESCRIPTION = "XGrad-CAM (pytorch-grad-cam XGradCAM): activation-weighted gradients"
    FOOTING = f"pytorch-grad-cam XGradCAM's raw map of the {_LAYER}, layer gradients, {_FOOTING}"


class PGCLayerCAM(PGCAdapter):
    """LayerCAM (Jiang et al., TIP 2021), pytorch-grad-cam's ``LayerCAM``: Σ_k relu(g)·A."""

    NAME, METHOD = "pgc-layercam", "LayerCAM"
    DESCRIPTION = "LayerCAM (pytorch-grad-cam LayerCAM): positive gradients × activations"
    FOOTING = f"pytorch-grad-cam LayerCAM's raw map of the {_LAYER}, layer gradients, {_FOOTING}"


class PGCGradCAMPlusPlus(PGCAdapter):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018), pytorch-grad-cam's ``GradCAMPlusPlus``.

    The same closed form as squeezex's ``gradcam++`` (:func:`~squeezex.explainers.
    baselines.gradcam_pp_map`: α = g² / (2g² + (Σ_ab A_ab)·g³), w_k = Σ_ij relu(g)·α)
    except for two details: pytorch-grad-cam adds ε = 1e-6 to the denominator, and it
    zeroes α where g = 0 (squeezex: where the denominator is 0). Where g² ≫ 1e-6 the maps
    agree (tests/test_adapters.py checks it).
    """

    NAME, METHOD = "pgc-gradcam++", "GradCAMPlusPlus"
    DESCRIPTION = "Grad-CAM++ (pytorch-grad-cam GradCAMPlusPlus) on the same layer"
    FOOTING = (
        f"pytorch-grad-cam GradCAMPlusPlus's raw map of the {_LAYER}, layer gradients, {_FOOTING}"
    )


class PGCScoreCAM(PGCAdapter):
    """Score-CAM (Wang et al., CVPR-W 2020), pytorch-grad-cam's ``ScoreCAM``: channel
    weights = softmax over channels of the target score of the input masked by each
    channel (upsampled, min-max). One forward pass per channel, batches of ``batch_size``
    (default 16: small for the CPU); images only (its mask upsampling is 2-D)."""

    NAME, METHOD = "pgc-scorecam", "ScoreCAM"
    DESCRIPTION = "Score-CAM (pytorch-grad-cam ScoreCAM): scores of channel-masked inputs"
    FOOTING = (
        f"pytorch-grad-cam ScoreCAM's raw map of the {_LAYER}, forward passes on masked "
        f"inputs, gradient-free, {_FOOTING}"
    )
    needs_gradients = False
    spatial_dims = (2,)
    _BARS = ("score_cam",)

    OPTIONS = {"batch_size": Int(1)}

    def __init__(self, model: nn.Module, layer=None, batch_size: int = 16, **kwargs) -> None:
        batch_size = check("batch_size", batch_size, Int(1))
        super().__init__(model, layer, **kwargs)
        self.batch_size = batch_size

    def _configure(self, cam) -> None:
        cam.batch_size = self.batch_size  # read by the library when set (its default: 16)


class PGCEigenCAM(PGCAdapter):
    """EigenCAM (Muhammad & Yeasin, IJCNN 2020), pytorch-grad-cam's ``EigenCAM``: the
    layer's activations on their first principal component, **sign left to the SVD** (the
    library's; squeezex's ``eigencam`` fixes it). Class-agnostic, gradient-free."""

    NAME, METHOD = "pgc-eigencam", "EigenCAM"
    DESCRIPTION = "EigenCAM (pytorch-grad-cam EigenCAM): first principal component, class-agnostic"
    FOOTING = (
        f"pytorch-grad-cam EigenCAM's raw map of the {_LAYER}, first principal component "
        f"(SVD sign), gradient-free, class-agnostic, {_FOOTING}"
    )
    needs_gradients = False


class PGCAblationCAM(PGCAdapter):
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020), pytorch-grad-cam's ``AblationCAM``:
    channel weights = (y − y_ablated) / y, the relative drop of the target score when the
    channel is zeroed (the library divides by y: a negative score flips the signs). The
    library swaps the layer for its ``AblationLayer`` for the call (put back whatever
    happens); ``batch_size`` ablated copies per forward pass (default 16); images only."""

    NAME, METHOD = "pgc-ablationcam", "AblationCAM"
    DESCRIPTION = "Ablation-CAM (pytorch-grad-cam AblationCAM): score drop per zeroed channel"
    FOOTING = (
        f"pytorch-grad-cam AblationCAM's raw map of the {_LAYER}, forward passes with channels "
        f"ablated, gradient-free, {_FOOTING}"
    )
    needs_gradients = False
    spatial_dims = (2,)
    _BARS = ("ablation_cam",)

    OPTIONS = {"batch_size": Int(1)}

    def __init__(self, model: nn.Module, layer=None, batch_size: int = 16, **kwargs) -> None:
        batch_size = check("batch_size", batch_size, Int(1))
        super().__init__(model, layer, **kwargs)
        self.batch_size = batch_size

    def _options(self) -> dict:
        ablation = load_library(self.LIBRARY, "ablation_layer")
        # a new AblationLayer per call: the library's default argument is one shared instance
        return {"ablation_layer": ablation.AblationLayer(), "batch_size": self.batch_size}


PGC_ADAPTERS = (
    PGCGradCAM,
    PGCHiResCAM,
    PGCXGradCAM,
    PGCLayerCAM,
    PGCGradCAMPlusPlus,
    PGCScoreCAM,
    PGCEigenCAM,
    PGCAblationCAM,
)
