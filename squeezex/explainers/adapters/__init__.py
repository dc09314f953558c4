"""Adapters: the methods of other CAM libraries behind the squeezex base class.

pytorch-grad-cam (``pgc-*``) and torchcam (``tc-*``) methods become Captum
``Attribution`` s on the common footing, registered next to squeezex's own methods, so the
benchmark scores them, the widgets show them and the conformance suite checks them. Each
adapter reads the layer squeezex's ``gradcam`` reads (the SE block's output, else the last
spatial layer), takes the library's raw map at that layer's resolution, and applies the
squeezex footing (ReLU, geometry-aware upsampling, per-sample min-max) instead of the
library's resize and normalisation: a table compares methods, not post-processing.
``explainer_info(name).footing`` says what each name computes. The pitfalls each library
has (pytorch-grad-cam's one-target-per-batch, hooks, mode and ``.grad`` changes, progress
bars, torchcam's global-RNG noise) are handled in :mod:`.pgc` and :mod:`.tc`.

The libraries are an optional extra (``pip install squeezex[cam]``). Without them
``import squeezex`` works, :data:`ADAPTERS` still lists every adapter name, nothing is
registered for the missing library, and asking for one of its adapters
(:func:`adapter_class`, or building the class) raises an ``ImportError`` with the hint.

Example:
    >>> import torch, squeezex
    >>> from squeezex.models import SmallCNN
    >>> model = squeezex.attach_se_head(SmallCNN(num_classes=6)).eval()
    >>> squeezex.get_explainer("pgc-gradcam", model).attribute(torch.rand(1, 3, 64, 64)).shape
    torch.Size([1, 1, 64, 64])
"""

from __future__ import annotations

from ..registry import list_explainers, mark_unavailable, register_explainer
from .base import INSTALL_HINT, LIBRARIES, LibraryCAM, library_missing, load_library
from .pgc import PGC_ADAPTERS
from .tc import TC_ADAPTERS

__all__ = [
    "ADAPTERS",
    "INSTALL_HINT",
    "LIBRARIES",
    "LibraryCAM",
    "adapter_class",
    "available_adapters",
    "missing_adapters",
    "register_adapters",
    "library_missing",
    "load_library",
]

#: Every adapter, registry name → class, whether its library is installed or not.
ADAPTERS: dict[str, type[LibraryCAM]] = {cls.NAME: cls for cls in PGC_ADAPTERS + TC_ADAPTERS}


def available_adapters() -> list[str]:
    """The adapter names whose library is installed."""
    return [name for name, cls in ADAPTERS.items() if library_missing(cls.LIBRARY) is None]


def missing_adapters() -> dict[str, str]:
    """The adapter names whose library is missing, each with why and how to install it."""
    out = {}
    for name, cls in ADAPTERS.items():
        reason = library_missing(cls.LIBRARY)
        if reason is not None:
            out[name] = f"{name}: {reason}"
    return out


def adapter_class(name: str) -> type[LibraryCAM]:
    """The class of adapter ``name``.

    Raises:
        ValueError: ``name`` is not an adapter (the message lists them).
        ImportError: its library is not installed (the message gives the install hint).
    """
    if name not in ADAPTERS:
        raise ValueError(f"unknown adapter {name!r}; choose from {', '.join(ADAPTERS)}")
    cls = ADAPTERS[name]
    reason = library_missing(cls.LIBRARY)
    if reason is not None:
        raise ImportError(f"{name}: {reason}")
    return cls


def register_adapters() -> list[str]:
    """Register every adapter whose library is installed and that is not registered yet
    (in :data:`ADAPTERS` order); the others are marked unavailable, so that asking for one
    gives the install hint. Returns the names registered by this call."""
    done = []
    taken = set(list_explainers())
    for name, cls in ADAPTERS.items():
        if name in taken:
            continue
        if (reason := library_missing(cls.LIBRARY)) is not None:
            mark_unavailable(name, f"{name}: {reason}")
            continue
        register_explainer(name, description=cls.DESCRIPTION)(cls)
        done.append(name)
    return done


register_adapters()
