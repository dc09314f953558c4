"""The explainer registry: names → factories, refusing duplicates (like torchvision's).

Tests are parametrised over :func:`list_explainers`, so a newly registered method gets
the whole conformance suite for free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

__all__ = ["register_explainer", "get_explainer", "list_explainers", "explainer_info"]


@dataclass(frozen=True)
class ExplainerInfo:
    name: str
    factory: Callable[..., object]
    description: str
    needs_se: bool = False
    needs_gradients: bool = False
    #: ``fit(model, train_data, *, cache=None, device="cpu", progress=True, **options)`` →
    #: keyword arguments for the factory, for methods that learn from training data
    #: (VEBI's relevant features). ``None`` when the method needs no fit.
    fit: Callable[..., dict] | None = None


_REGISTRY: dict[str, ExplainerInfo] = {}


def register_explainer(
    name: str,
    *,
    description: str,
    needs_se: bool = False,
    needs_gradients: bool = False,
    fit: Callable[..., dict] | None = None,
):
    """Decorator: register ``factory(model, **kw)`` under ``name`` (duplicates refused).

    A method that learns from training data passes ``fit``; callers (the benchmark, the
    conformance suite) run ``fit(model, train_data, ...)`` once and hand the returned
    keyword arguments to the factory.
    """

    def deco(factory):
        if name in _REGISTRY:
            raise ValueError(f"an explainer named {name!r} is already registered")
        _REGISTRY[name] = ExplainerInfo(name, factory, description, needs_se, needs_gradients, fit)
        return factory

    return deco


def list_explainers() -> list[str]:
    """Registered explainer names, in registration order."""
    return list(_REGISTRY)


def explainer_info(name: str) -> ExplainerInfo:
    if name not in _REGISTRY:
        raise ValueError(f"unknown explainer {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def get_explainer(name: str, model: nn.Module, **kwargs):
    """An explainer instance: ``get_explainer("se", model)``."""
    return explainer_info(name).factory(model, **kwargs)
