"""What every adapter shares: the libraries, the base class, and the guards around a call.

:class:`LibraryCAM` is a :class:`~squeezex.explainers.base.HeatmapAttribution` whose
subclass says which library and which of its classes it runs, and overrides one method,
:meth:`LibraryCAM._raw`: the library's own map of the layer for a batch (N×1×h×w, at the
layer's resolution, before the library's ReLU, resize and normalisation). The base class
reads the layer squeezex's Grad-CAM reads (:func:`~squeezex.explainers.baselines.
feature_module`), turns ``target=None`` into the predicted class, and puts the raw map on
the common footing (ReLU, geometry-aware upsampling, per-sample min-max).

A library is *found* when its module and the modules it imports at import time can be
located (:func:`importlib.util.find_spec`, without importing them: pytorch-grad-cam pulls
scikit-learn and SciPy in, about a second, and ``import squeezex`` stays light); it is
imported on the first call, and an import that fails then is an ``ImportError`` naming the
library and the install hint.
"""

from __future__ import annotations

import importlib
import importlib.util
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ...common import is_batched, select_rows
from ...options import Int, Module, check_options
from ..base import HeatmapAttribution
from ..baselines import feature_module

__all__ = [
    "INSTALL_HINT",
    "LIBRARIES",
    "Library",
    "LibraryCAM",
    "library_missing",
    "load_library",
]

#: How to install the libraries the adapters run.
INSTALL_HINT = "pip install squeezex[cam]"


@dataclass(frozen=True)
class Library:
    """A CAM library: its name, import name, pip name, and the modules it imports at
    import time (found before the library counts as installed)."""

    name: str
    module: str
    pip: str
    needs: tuple[str, ...] = ()


LIBRARIES = {
    "pytorch-grad-cam": Library(
        "pytorch-grad-cam", "pytorch_grad_cam", "grad-cam", ("cv2", "ttach")
    ),
    "torchcam": Library("torchcam", "torchcam", "torchcam"),
}


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that fails, or a module set to None
        return False


def library_missing(library: str) -> str | None:
    """Why ``library`` cannot be used (``None`` when it is installed), with the hint."""
    lib = LIBRARIES[library]
    for module in (lib.module, *lib.needs):
        if not _found(module):
            return (
                f"{library} is not installed (no module {module!r}); "
                f"install it with: {INSTALL_HINT}"
            )
    return None


def load_library(library: str, module: str = ""):
    """Import ``library`` (or its ``module``, a dotted name inside it), or raise an
    ``ImportError`` that names the library and the install hint."""
    lib = LIBRARIES[library]
    name = f"{lib.module}.{module}" if module else lib.module
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"{library} cannot be imported ({exc}); install it with: {INSTALL_HINT}"
        ) from exc


class LibraryCAM(HeatmapAttribution):
    """Base of the adapters: a CAM library's method on squeezex's layer and footing.

    Args:
        model: the model to explain.
        layer: the layer to read (a module or a dotted name); default the layer
            squeezex's ``gradcam`` reads: the SE block's output, else the last spatial one.
        **kwargs: :class:`~squeezex.explainers.base.HeatmapAttribution` options.

    Raises:
        ImportError: the library is not installed (the message says how to install it).
    """

    #: The registry name, the library (a key of :data:`LIBRARIES`) and its class name.
    NAME: ClassVar[str] = ""
    LIBRARY: ClassVar[str] = ""
    METHOD: ClassVar[str] = ""
    DESCRIPTION: ClassVar[str] = ""
    #: Numbers of spatial axes the library's method takes (2: images, 3: clips).
    spatial_dims: ClassVar[tuple[int, ...]] = (2, 3)
    #: Methods drawing random noise run one sample at a time, each from the same seed.
    noisy: ClassVar[bool] = False
    needs_gradients = True
    OPTIONS = {"layer": Module(none=True), "seed": Int(0)}

    def __init__(
        self, model: nn.Module, layer: str | nn.Module | None = None, seed: int = 0, **kwargs
    ) -> None:
        missing = library_missing(self.LIBRARY)
        if missing is not None:
            raise ImportError(f"{self.NAME}: {missing}")
        layer, seed = check_options(self, layer=layer, seed=seed).values()
        super().__init__(model, **kwargs)
        self._layer_arg = layer
        self._layer: nn.Module | None = None
        self.seed = seed

    def layer(self, x: torch.Tensor) -> nn.Module:
        """The layer read (the one squeezex's Grad-CAM reads unless ``layer`` was given)."""
        if self._layer is None:
            self._layer = feature_module(self.model, self._layer_arg, x)
        return self._layer

    def unsupported(self, x: torch.Tensor) -> str | None:
        """Why this method cannot explain inputs like ``x`` on this model (``None`` when it
        can); ``attribute`` raises a ``ValueError`` with this text."""
        if x.dim() - 2 not in self.spatial_dims:
            names = {2: "N×C×H×W images", 3: "N×C×T×H×W clips"}
            kinds = " or ".join(names[d] for d in self.spatial_dims)
            return (
                f"{self.NAME}: {self.LIBRARY}'s {self.METHOD} takes {kinds} only "
                f"(got {x.dim() - 2} spatial axes)"
            )
        return None

    # -- what a subclass overrides ---------------------------------------------------------
    def _raw(self, layer: nn.Module, x: torch.Tensor, target: torch.Tensor, extra: tuple):
        """The library's N×1×h×w map of ``layer`` (``target``: one class per sample)."""
        raise NotImplementedError

    # -- the call --------------------------------------------------------------------------
    def _heatmaps(self, x, target, extra):
        reason = self.unsupported(x)
        if reason is not None:
            raise ValueError(reason)
        layer = self.layer(x)
        if target is None:
            with torch.no_grad():
                target = self._forward(x, extra).argmax(1)
        geometry = self.geometry(layer, x, extra)  # before the call (AblationCAM swaps layers)
        n = x.shape[0]
        one_at_a_time = self.noisy or any(is_batched(e, n) for e in extra)
        chunks = [slice(i, i + 1) for i in range(n)] if one_at_a_time else [slice(0, n)]
        raw = []
        for rows in chunks:
            with _seeded(self.seed) if self.noisy else nullcontext(), hooks_removed_after(layer):
                raw.append(self._raw(layer, x[rows], target[rows], select_rows(extra, rows, n)))
        raw = torch.cat(raw).to(device=x.device, dtype=x.dtype)
        return self.footing(raw, x, geometry)

    def _grad_input(self, x: torch.Tensor) -> torch.Tensor:
        """A copy of ``x`` that requires grad: the layer's output then does even when the
        model's parameters do not."""
        return x.detach().clone().requires_grad_(self.needs_gradients)

    def _grad_mode(self):
        return torch.enable_grad() if self.needs_gradients else torch.no_grad()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__}, {self.LIBRARY} {self.METHOD})"


class Bound(nn.Module):
    """The explained head with the extra forward arguments bound: what a library gets.

    Libraries call ``model(x)`` with one tensor and switch the model's mode
    (pytorch-grad-cam calls ``model.eval()`` in its constructor and ``model.zero_grad()``
    before its backward pass); here both leave the model alone: the mode for the call is
    the explainer's (``eval_mode=``), and the caller's ``.grad`` stays. A per-sample extra
    tensor (one row, the explained sample's) is repeated for the library's batches of
    perturbed copies of that sample.
    """

    def __init__(self, forward_model: nn.Module, extra: tuple, views: nn.Module | None = None):
        super().__init__()
        self.inner = forward_model
        self.extra = extra
        #: a plain ViT's :class:`~squeezex.models.tokens.TokenView`, so that libraries that
        #: look the layer up among the model's modules (torchcam) find its ``view``
        self.token_view = views

    def forward(self, x):
        n = x.shape[0]
        extra = tuple(
            e.expand(n, *e.shape[1:]) if is_batched(e, 1) and n != 1 else e for e in self.extra
        )
        return self.inner(x, *extra)

    def train(self, mode: bool = True):
        return self  # the mode for the call is the explainer's

    def zero_grad(self, set_to_none: bool = True) -> None:
        return None  # the caller's .grad stays


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
#: Where torch keeps flags of a hook under the same id.
_HOOK_FLAGS = (
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
)


@contextmanager
def hooks_removed_after(*modules: nn.Module):
    """Remove the hooks added to ``modules`` inside the block, whatever happens.

    A safety net behind the libraries' own clean-up (``ActivationsAndGradients.release``,
    torchcam's ``remove_hooks``): pytorch-grad-cam's AblationCAM removes the hook it adds
    to the layer only when its forward pass succeeds, and torchcam's CAM hooks the layer
    before it checks its ``fc_layer``.
    """
    before = [{name: set(getattr(m, name, {})) for name in _HOOK_DICTS} for m in modules]
    try:
        yield
    finally:
        for m, old in zip(modules, before, strict=True):
            for name, keys in old.items():
                hooks = getattr(m, name, {})
                for key in [k for k in hooks if k not in keys]:
                    del hooks[key]
                    for side in _HOOK_FLAGS:
                        getattr(m, side, {}).pop(key, None)


@contextmanager
def _seeded(seed: int):
    """The CPU generator seeded with ``seed`` inside the block, the caller's state after
    (the libraries draw their noise on the CPU, then move it)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


@contextmanager
def no_parameter_grads(model: nn.Module):
    """For the block, the parameters of ``model`` do not require grad (restored after).

    pytorch-grad-cam calls ``loss.backward()``, which would fill every parameter's
    ``.grad``; the gradient it needs (at the layer) flows from an input that requires grad.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
