"""torchcam (``pip install torchcam``, import ``torchcam.methods``) behind squeezex.

Each adapter builds torchcam's extractor on squeezex's layer for one call, runs the
explained head once (the extractor's hooks record the layer), and asks for the maps with
one class per sample (``class_idx`` a list) and ``normalized=False``: N×h×w at the
layer's resolution (ReLU'd where torchcam ReLUs), which the common footing then
upsamples and normalises. The hooks are removed (``remove_hooks()``) in ``finally``;
torchcam takes gradients with ``torch.autograd.grad``, so no ``.grad`` is left, and its
own eval-mode switch sees :class:`~.base.Bound` (the mode for the call is the
explainer's). SmoothGrad-CAM++ and SS-CAM draw noise from the global generator: here each
sample's noise comes from a generator seeded with ``seed`` (the caller's RNG state is left
as it was), one sample at a time, so the maps are deterministic and a batch gives the
maps of its samples one at a time.
"""

from __future__ import annotations

from torch import nn

from ...models.tokens import token_view
from ...options import Float, Int, check, check_options
from ..baselines import layer_activations
from .base import Bound, LibraryCAM, load_library

__all__ = [
    "TCAdapter",
    "TCCAM",
    "TCGradCAM",
    "TCGradCAMpp",
    "TCSmoothGradCAMpp",
    "TCXGradCAM",
    "TCLayerCAM",
    "TCScoreCAM",
    "TCSSCAM",
    "TCISCAM",
    "TC_ADAPTERS",
]

_LAYER = "Grad-CAM layer (SE block output, else last spatial layer)"
_FOOTING = "squeezex footing: ReLU, {upsampling}, min-max (not its F.interpolate)"


class TCAdapter(LibraryCAM):
    """A torchcam method on squeezex's layer and footing.

    Args:
        model: the model to explain.
        layer: the layer to read (default: the one squeezex's ``gradcam`` reads).
        seed: the seed of the noise of the noisy methods (SmoothGrad-CAM++, SS-CAM).
        **kwargs: :class:`~squeezex.explainers.base.HeatmapAttribution` options.

    Example:
        >>> import torch
        >>> from squeezex.models import SmallCNN
        >>> from squeezex.explainers.adapters.tc import TCLayerCAM
        >>> cam = TCLayerCAM(SmallCNN(num_classes=6).eval())
        >>> cam.attribute(torch.rand(2, 3, 64, 64), target=[0, 3]).shape
        torch.Size([2, 1, 64, 64])
    """

    LIBRARY = "torchcam"

    def _extractor(self, model: nn.Module, layer: nn.Module, x):
        """torchcam's extractor on ``layer`` of ``model`` (its hooks registered)."""
        methods = load_library(self.LIBRARY, "methods")
        return getattr(methods, self.METHOD)(model, target_layer=layer, **self._options())

    def _options(self) -> dict:
        return {}

    def _raw(self, layer, x, target, extra):
        model = Bound(self.forward_model, extra, token_view(self.model, create=False))
        cam = self._extractor(model, layer, x)
        try:
            with self._grad_mode():
                scores = model(self._grad_input(x))  # the hooks record the layer (and input)
                maps = cam([int(t) for t in target.tolist()], scores, normalized=False)
        finally:
            cam.remove_hooks()
            cam.reset_hooks()
        return maps[0].detach().unsqueeze(1)


class TCCAM(TCAdapter):
    """CAM (Zhou et al., CVPR 2016), torchcam's ``CAM``: channel weights = the classifier's
    weights for the class. It needs a linear classifier reading the layer's channels after
    global pooling: the ``nn.Linear`` with the layer's channels in and the explained head's
    classes out (refused by name when there is none or several). A head that reads a class
    token (ViT) matches by shape but is not CAM's pooled head: the map is then not CAM."""

    NAME, METHOD = "tc-cam", "CAM"
    DESCRIPTION = "CAM (torchcam CAM): the classifier's weights for the class"
    FOOTING = (
        f"torchcam CAM's raw map of the {_LAYER}, classifier weights, no gradients, {_FOOTING}"
    )
    needs_gradients = False
    _fc: nn.Module | None = None

    def unsupported(self, x):
        reason = super().unsupported(x)
        if reason is None:
            reason = self._classifier(x[:1])[1]
        return reason

    def _classifier(self, x, extra: tuple = ()) -> tuple[nn.Module | None, str | None]:
        """The linear classifier CAM reads, or why there is none (one no-grad pass)."""
        layer = self.layer(x)
        scores, acts = layer_activations(self, layer, x, extra)
        c, k = acts.shape[1], scores.shape[1]
        found = [
            m
            for m in self.model.modules()
            if isinstance(m, nn.Linear) and (m.in_features, m.out_features) == (c, k)
        ]
        if len(found) == 1:
            return found[0], None
        return None, (
            f"{self.NAME}: torchcam's CAM needs one linear classifier from the layer's {c} "
            f"channels to the {k} classes (after global pooling); the model has "
            f"{len(found) or 'no'} such nn.Linear"
        )

    def _raw(self, layer, x, target, extra):
        self._fc, reason = self._classifier(x, extra)
        if reason is not None:
            raise ValueError(reason)
        return super()._raw(layer, x, target, extra)

    def _extractor(self, model, layer, x):
        methods = load_library(self.LIBRARY, "methods")
        return methods.CAM(model, target_layer=layer, fc_layer=self._fc)


class TCGradCAM(TCAdapter):
    """Grad-CAM (Selvaraju et al., ICCV 2017), torchcam's ``GradCAM``. Equals squeezex's
    ``gradcam``."""

    NAME, METHOD = "tc-gradcam", "GradCAM"
    DESCRIPTION = "Grad-CAM (torchcam GradCAM) on the same layer"
    FOOTING = f"torchcam GradCAM's raw map of the {_LAYER}, layer gradients, {_FOOTING}"


class TCGradCAMpp(TCAdapter):
    """Grad-CAM++ (Chattopadhay et al., WACV 2018) as torchcam 0.5.0's ``GradCAMpp``
    computes it, which is **not** squeezex's ``gradcam++``:

    * its denominator is 2g²_ij + Σ_ab g³_ab·A_ab (the paper, and squeezex:
      2g²_ij + (Σ_ab A_ab)·g³_ij) — the same when g is constant over the positions (a
      global-average-pooling head);
    * and its division is lost: ``alpha[idx][mask].div_(...)`` divides a copy made by
      the boolean indexing, so α stays g² and the weights are w_k = Σ_ij relu(g_ij)³.

    tests/test_adapters.py checks the map against that literal formula.
    """

    NAME, METHOD = "tc-gradcam++", "GradCAMpp"
    DESCRIPTION = "Grad-CAM++ as torchcam GradCAMpp computes it (w = Σ relu(g)³, see docs)"
    FOOTING = f"torchcam GradCAMpp's raw map of the {_LAYER}, layer gradients, {_FOOTING}"


class TCSmoothGradCAMpp(TCAdapter):
    """Smooth Grad-CAM++ (Omeiza et al., 2019), torchcam's ``SmoothGradCAMpp``: Grad-CAM++
    weights from gradients averaged over ``num_samples`` noisy copies of the input (noise
    N(0, ``std``²), torchcam's defaults 4 and 0.3), seeded per sample with ``seed``."""

    NAME, METHOD = "tc-smoothgradcam++", "SmoothGradCAMpp"
    DESCRIPTION = "Smooth Grad-CAM++ (torchcam SmoothGradCAMpp): Grad-CAM++ over noisy inputs"
    FOOTING = (
        f"torchcam SmoothGradCAMpp's raw map of the {_LAYER}, layer gradients of seeded noisy "
        f"inputs, {_FOOTING}"
    )
    noisy = True

    #: a noise scale under 1e-6 rounds to 0 in float32 (torch's Normal refuses it)
    OPTIONS = {"num_samples": Int(1), "std": Float(1e-6)}

    def __init__(self, model, layer=None, num_samples: int = 4, std: float = 0.3, **kwargs):
        checked = check_options(self, num_samples=num_samples, std=std)
        super().__init__(model, layer, **kwargs)
        self.num_samples, self.std = checked.values()

    def _options(self) -> dict:
        return {"num_samples": self.num_samples, "std": self.std}


class TCXGradCAM(TCAdapter):
    """XGrad-CAM (Fu et al., BMVC 2020), torchcam's ``XGradCAM``: w_k = Σ g·A / Σ A."""

    NAME, METHOD = "tc-xgradcam", "XGradCAM"
    DESCRIPTION = "XGrad-CAM (torchcam XGradCAM): activation-weighted gradients"
    FOOTING = f"torchcam XGradCAM's raw map of the {_LAYER}, layer gradients, {_FOOTING}"


class TCLayerCAM(TCAdapter):
    """LayerCAM (Jiang et al., TIP 2021), torchcam's ``LayerCAM``: Σ_k relu(g)·A."""

    NAME, METHOD = "tc-layercam", "LayerCAM"
    DESCRIPTION = "LayerCAM (torchcam LayerCAM): positive gradients × activations"
    FOOTING = f"torchcam LayerCAM's raw map of the {_LAYER}, layer gradients, {_FOOTING}"


class TCScoreCAM(TCAdapter):
    """Score-CAM (Wang et al., CVPR-W 2020), torchcam's ``ScoreCAM``: channel weights =
    softmax over channels of the score gain of the input masked by each channel (upsampled
    with F.interpolate, min-max). One forward pass per channel, in batches of
    ``batch_size`` (default 16: small for the CPU)."""

    NAME, METHOD = "tc-scorecam", "ScoreCAM"
    DESCRIPTION = "Score-CAM (torchcam ScoreCAM): scores of channel-masked inputs"
    FOOTING = (
        f"torchcam ScoreCAM's raw map of the {_LAYER}, forward passes on masked inputs, "
        f"gradient-free, {_FOOTING}"
    )
    needs_gradients = False

    OPTIONS = {"batch_size": Int(1)}

    def __init__(self, model, layer=None, batch_size: int = 16, **kwargs):
        batch_size = check("batch_size", batch_size, Int(1))
        super().__init__(model, layer, **kwargs)
        self.batch_size = batch_size

    def _options(self) -> dict:
        return {"batch_size": self.batch_size}


class TCSSCAM(TCScoreCAM):
    """SS-CAM (Wang et al., 2020), torchcam's ``SSCAM``: Score-CAM with the masks smoothed
    by noise N(0, ``std``²) over ``num_samples`` draws, seeded per sample with ``seed``.
    It costs ``num_samples`` × Score-CAM, so the default here is 8 draws, not torchcam's
    35 (pass ``num_samples=35`` for the library's); ``std`` is torchcam's 2.0."""

    NAME, METHOD = "tc-sscam", "SSCAM"
    DESCRIPTION = "SS-CAM (torchcam SSCAM, 8 noise draws, torchcam's default 35): noisy masks"
    FOOTING = (
        f"torchcam SSCAM's raw map of the {_LAYER}, forward passes on seeded noisy masked "
        f"inputs (8 draws), gradient-free, {_FOOTING}"
    )
    noisy = True

    OPTIONS = {"num_samples": Int(1), "std": Float(1e-6)}

    def __init__(self, model, layer=None, num_samples: int = 8, std: float = 2.0, **kwargs):
        checked = check_options(self, num_samples=num_samples, std=std)
        super().__init__(model, layer, **kwargs)
        self.num_samples, self.std = checked.values()

    def _options(self) -> dict:
        return {"batch_size": self.batch_size, "num_samples": self.num_samples, "std": self.std}


class TCISCAM(TCScoreCAM):
    """IS-CAM (Naidu et al., 2020), torchcam's ``ISCAM``: Score-CAM with the masked
    input's score integrated over ``num_samples`` scalings (torchcam's default 10). Costs
    ``num_samples`` × Score-CAM."""

    NAME, METHOD = "tc-iscam", "ISCAM"
    DESCRIPTION = "IS-CAM (torchcam ISCAM): Score-CAM integrated over input scalings"
    FOOTING = (
        f"torchcam ISCAM's raw map of the {_LAYER}, forward passes on scaled masked inputs, "
        f"gradient-free, {_FOOTING}"
    )

    OPTIONS = {"num_samples": Int(1)}

    def __init__(self, model, layer=None, num_samples: int = 10, **kwargs):
        num_samples = check("num_samples", num_samples, Int(1))
        super().__init__(model, layer, **kwargs)
        self.num_samples = num_samples

    def _options(self) -> dict:
        return {"batch_size": self.batch_size, "num_samples": self.num_samples}


TC_ADAPTERS = (
    TCCAM,
    TCGradCAM,
    TCGradCAMpp,
    TCSmoothGradCAMpp,
    TCXGradCAM,
    TCLayerCAM,
    TCScoreCAM,
    TCSSCAM,
    TCISCAM,
)
