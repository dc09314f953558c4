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

Every name belongs to an *input kind* (:attr:`ExplainerInfo.inputs`): ``"image"`` (one
tensor in, N×1×H×W or N×1×T×H×W maps out: every method the image benchmark and the
conformance suite run) by default, or another kind such as ``"audio-visual"`` (a
``(video, audio)`` tuple in, one map per stream out). Each kind has its own names, so
``"se"`` is both the image SE explanation and the audio-visual one; a task of the
benchmark (:mod:`squeezex.bench.tasks`) runs the methods of its kind.

The tables list the methods in registry order, which does not depend on the order in which
modules happen to be imported: the built-in methods come by the module that defines them
(:data:`BUILTIN_ORDER`), then in the order that module registers them; methods registered
anywhere else (a user's) follow, in registration order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

__all__ = [
    "BUILTIN_ORDER",
    "register_explainer",
    "mark_unavailable",
    "input_kind",
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


#: The modules that define the built-in methods, in the order their methods are listed.
BUILTIN_ORDER = (
    "squeezex.explainers.se",
    "squeezex.explainers.baselines",
    "squeezex.explainers.vebi",
    "squeezex.explainers.rollout",
    "squeezex.explainers.adapters",
    "squeezex.explainers.speakers",
)


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
    #: The input kind: ``"image"`` or, e.g., ``"audio-visual"`` (see the module docstring).
    inputs: str = "image"

    def build(self, model: nn.Module, **kwargs):
        """An explainer for ``model``: the factory with the preset, then ``kwargs``."""
        return self.factory(model, **{**self.preset, **kwargs})


#: input kind → name → entry
_REGISTRY: dict[str, dict[str, ExplainerInfo]] = {}
#: input kind → name → why a known method cannot run here (its library is missing)
_UNAVAILABLE: dict[str, dict[str, str]] = {}
_NAME = re.compile(r"[a-z0-9][a-z0-9+-]*")
_SEQUENCE: dict[tuple[str, str], int] = {}  # (kind, name) → when it was registered


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
    inputs: str = "image",
):
    """Decorator: register ``factory(model, **kw)`` (a class or a function) under ``name``
    for models of the input kind ``inputs``.

    ``needs_se`` and ``needs_gradients`` default to the class attributes of the same
    names. A method that learns from training data passes ``fit``; callers (the
    benchmark, the conformance suite) run ``fit(model, train_data, ...)`` once and hand
    the returned keyword arguments to the factory. ``presets`` maps more names to
    ``(description, options)``: the same factory with those options fixed. Every name,
    presets included, must be new. ``footing`` defaults to the class's ``FOOTING``
    attribute (see :func:`footing_of`).
    """
    if not _NAME.fullmatch(inputs):
        raise ValueError(f"inputs must be an input kind such as 'image', got {inputs!r}")

    def deco(factory):
        names = [name, *(presets or {})]
        odd = [n for n in names if not _NAME.fullmatch(n)]
        if odd:
            raise ValueError(
                f"explainer name {odd[0]!r} must be lower case letters, digits, '+' and '-', "
                "starting with a letter or digit"
            )
        registry = _REGISTRY.setdefault(inputs, {})
        taken = [n for n in names if n in registry]
        if taken or len(set(names)) != len(names):
            kind = "" if inputs == "image" else f" for {inputs} inputs"
            raise ValueError(
                f"an explainer named {(taken or names)[0]!r} is already registered{kind}"
            )
        se = _flag(factory, "needs_se", needs_se)
        grads = _flag(factory, "needs_gradients", needs_gradients)
        entries = {name: (description, {}), **(presets or {})}
        lines = {n: footing_of(factory, o, grads, footing) for n, (_, o) in entries.items()}
        registry[name] = ExplainerInfo(
            name, factory, description, se, grads, fit, name, footing=lines[name], inputs=inputs
        )
        for preset, (text, options) in (presets or {}).items():
            registry[preset] = ExplainerInfo(
                preset, factory, text, se, grads, fit, name, dict(options), lines[preset], inputs
            )
        for n in names:
            _SEQUENCE[inputs, n] = len(_SEQUENCE)
            _UNAVAILABLE.get(inputs, {}).pop(n, None)
        return factory

    return deco


def mark_unavailable(name: str, reason: str, *, inputs: str = "image") -> None:
    """Record that ``name`` is a method squeezex knows but cannot run here (its library is
    not installed): asking for it raises a ``ValueError`` with ``reason`` (the install
    hint) instead of "unknown explainer". Registering the name later lifts this."""
    _UNAVAILABLE.setdefault(inputs, {})[name] = reason


def _rank(info: ExplainerInfo) -> tuple[int, int]:
    module = getattr(info.factory, "__module__", "") or ""
    for i, prefix in enumerate(BUILTIN_ORDER):
        if module == prefix or module.startswith(prefix + "."):
            return i, _SEQUENCE[info.inputs, info.name]
    return len(BUILTIN_ORDER), _SEQUENCE[info.inputs, info.name]


def list_explainers(inputs: str = "image") -> list[str]:
    """Registered explainer names of the input kind ``inputs`` (presets after their base),
    in registry order (see the module docstring)."""
    return sorted(_REGISTRY.get(inputs, {}), key=lambda n: _rank(_REGISTRY[inputs][n]))


def explainer_info(name: str, inputs: str = "image") -> ExplainerInfo:
    """The registry entry of ``name`` for the input kind ``inputs`` (a ``ValueError``
    listing the names otherwise, or saying how to install a known method's library)."""
    registry = _REGISTRY.get(inputs, {})
    if name not in registry:
        if name in (missing := _UNAVAILABLE.get(inputs, {})):  # e.g. an adapter's library
            raise ValueError(missing[name])
        kind = "" if inputs == "image" else f" for {inputs} inputs"
        names = ", ".join(list_explainers(inputs)) or "(none registered)"
        raise ValueError(f"unknown explainer {name!r}{kind}; choose from {names}")
    return registry[name]


def input_kind(model) -> str:
    """The input kind a model is explained on: its ``input_kind`` attribute (e.g. an
    audio-visual :class:`~squeezex.models.SpeakerNet`), else ``"image"``."""
    kind = getattr(model, "input_kind", "image")
    return kind if isinstance(kind, str) else "image"


def get_explainer(name: str, model: nn.Module, *, inputs: str | None = None, **kwargs):
    """An explainer instance: ``get_explainer("se", model)``. ``inputs`` is the input kind
    (default: the model's, :func:`input_kind`)."""
    return explainer_info(name, inputs or input_kind(model)).build(model, **kwargs)
