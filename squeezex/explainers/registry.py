"""The explainer registry: names → factories, refusing duplicates (like torchvision's).

Classes register themselves where they are defined::

    @register_explainer("se", description="...", presets={"se-paper": ("...", {"selection": "paper"})})
    class SEAttribution(HeatmapAttribution): ...

A *preset* is a registered name for the same class with fixed options (the SE rules, VEBI
without its stride fix): one method, several table rows. Tests are parametrised over
:func:`list_explainers`, so a newly registered method gets the conformance suite for free.

Every name also has a *footing* (:attr:`ExplainerInfo.footing`): one short line saying on
what the map is produced, so a table can say which rows are on equal terms. It is the
class's ``FOOTING`` attribute (or the ``footing=`` argument) with ``{upsampling}``
replaced by the upsampling the name runs with (the preset's ``upsample`` option, else the
default ``"geometry"``), see :data:`UPSAMPLING`; a class without one gets a generic line
from its ``needs_gradients`` flag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

__all__ = [
    "register_explainer",
    "footing_of",
    "get_explainer",
    "list_explainers",
    "explainer_info",
    "ExplainerInfo",
    "UPSAMPLING",
]

#: How each ``upsample`` option is named in a footing.
UPSAMPLING = {
    "geometry": "geometry-aware upsampling",
    "interpolate": (
        "bilinear interpolation (F.interpolate, as Captum, torchcam, pytorch-grad-cam output it)"
    ),
}


@dataclass(frozen=True)
class ExplainerInfo:
    """What the registry knows of a name."""

    name: str
    factory: Callable[..., object]
    description: str
    needs_se: bool = False
    needs_gradients: bool = False
    #: ``fit(model, train_data, *, cache=None, device="cpu", progress=True, **options)`` →
    #: keyword arguments for the factory, for methods that learn from training data
    #: (VEBI's relevant features). ``None`` when the method needs no fit.
    fit: Callable[..., dict] | None = None
    #: The name this one is a preset of (itself for a base method).
    base: str = ""
    #: The options the preset fixes ({} for a base method).
    preset: dict = field(default_factory=dict)
    #: On what footing the map is produced (layer, gradients or not, upsampling), one line.
    footing: str = ""

    def build(self, model: nn.Module, **kwargs):
        """An explainer for ``model``: the factory with the preset, then ``kwargs``."""
        return self.factory(model, **{**self.preset, **kwargs})


_REGISTRY: dict[str, ExplainerInfo] = {}
_NAME = re.compile(r"[a-z0-9][a-z0-9+-]*")


def _flag(factory, name: str, given: bool | None) -> bool:
    if given is not None:
        return given
    return bool(getattr(factory, name, False))  # a class's capability attribute


def footing_of(factory, options: dict, needs_gradients: bool, given: str | None = None) -> str:
    """The footing line of ``factory`` run with ``options`` (see the module docstring)."""
    text = (
        given
        or getattr(factory, "FOOTING", "")
        or (
            "backward pass to the input"
            if needs_gradients
            else "forward passes only, gradient-free"
        )
    )
    mode = options.get("upsample", "geometry")
    if mode not in UPSAMPLING:
        raise ValueError(f"upsample must be one of {tuple(UPSAMPLING)}, got {mode!r}")
    if "{upsampling}" in text:
        return text.replace("{upsampling}", UPSAMPLING[mode])
    return f"{text}, {UPSAMPLING[mode]}" if "upsample" in options else text


def register_explainer(
    name: str,
    *,
    description: str,
    needs_se: bool | None = None,
    needs_gradients: bool | None = None,
    fit: Callable[..., dict] | None = None,
    presets: dict[str, tuple[str, dict]] | None = None,
    footing: str | None = None,
):
    """Decorator: register ``factory(model, **kw)`` (a class or a function) under ``name``.

    ``needs_se`` and ``needs_gradients`` default to the class attributes of the same
    names. A method that learns from training data passes ``fit``; callers (the
    benchmark, the conformance suite) run ``fit(model, train_data, ...)`` once and hand
    the returned keyword arguments to the factory. ``presets`` maps more names to
    ``(description, options)``: the same factory with those options fixed. Every name,
    presets included, must be new. ``footing`` defaults to the class's ``FOOTING``
    attribute (see :func:`footing_of`).
    """

    def deco(factory):
        names = [name, *(presets or {})]
        odd = [n for n in names if not _NAME.fullmatch(n)]
        if odd:
            raise ValueError(
                f"explainer name {odd[0]!r} must be lower case letters, digits, '+' and '-', "
                "starting with a letter or digit"
            )
        taken = [n for n in names if n in _REGISTRY]
        if taken or len(set(names)) != len(names):
            raise ValueError(f"an explainer named {(taken or names)[0]!r} is already registered")
        se = _flag(factory, "needs_se", needs_se)
        grads = _flag(factory, "needs_gradients", needs_gradients)
        entries = {name: (description, {}), **(presets or {})}
        lines = {n: footing_of(factory, o, grads, footing) for n, (_, o) in entries.items()}
        _REGISTRY[name] = ExplainerInfo(
            name, factory, description, se, grads, fit, name, footing=lines[name]
        )
        for preset, (text, options) in (presets or {}).items():
            _REGISTRY[preset] = ExplainerInfo(
                preset, factory, text, se, grads, fit, name, dict(options), lines[preset]
            )
        return factory

    return deco


def list_explainers() -> list[str]:
    """Registered explainer names (presets after their base), in registration order."""
    return list(_REGISTRY)


def explainer_info(name: str) -> ExplainerInfo:
    """The registry entry of ``name`` (a ``ValueError`` listing the names otherwise)."""
    if name not in _REGISTRY:
        from ..adapters import missing_adapters  # here: the adapters import this module

        if name in (missing := missing_adapters()):  # an adapter whose library is missing
            raise ValueError(missing[name])
        raise ValueError(f"unknown explainer {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def get_explainer(name: str, model: nn.Module, **kwargs):
    """An explainer instance: ``get_explainer("se", model)``."""
    return explainer_info(name).build(model, **kwargs)
