"""Options checked at the door: one rule per option, one message format.

Every explainer declares what each of its options takes in its ``OPTIONS`` class attribute
(a name → :class:`Option` mapping, merged along the class hierarchy by
:func:`options_of`), and checks each value when it is made, before any model runs. The
same rules check :func:`~squeezex.attach_se_head`, the widgets and the run views.
A value of the wrong type is a ``TypeError``, a value of the right type outside its range
(or not finite, or not one of the choices) a ``ValueError``; both read::

    <option> must be <what it takes>, got <the value>

so ``n_steps=2.5`` gives "n_steps must be an integer ≥ 1, got 2.5". Integers are ints
(``numpy`` integers too, not ``bool``, not ``2.0``); numbers are ints or floats, finite;
flags are ``bool``. The tests draw random values inside and outside each rule
(Hypothesis, ``tests/test_options.py``): every value a rule accepts must give a working
explainer, and every value it refuses must be refused when the explainer is made.

Example:
    >>> check("k", 0.25, Either(Float(0, 1, low_open=True), Int(1)))
    0.25
    >>> check("n_steps", 2.5, Int(1))
    Traceback (most recent call last):
    TypeError: n_steps must be an integer ≥ 1, got 2.5
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

__all__ = [
    "Option",
    "Int",
    "Float",
    "Bool",
    "Choice",
    "Text",
    "Either",
    "Sizes",
    "Module",
    "check",
    "check_options",
    "options_of",
]


class Option:
    """A rule for one option's values (see the module docstring)."""

    #: Whether ``None`` is a value the option takes.
    none: bool = False

    def describe(self) -> str:  # pragma: no cover - every rule says what it takes
        raise NotImplementedError

    def typed(self, value) -> bool:
        """Whether ``value`` has a type the rule takes (range not looked at)."""
        raise NotImplementedError  # pragma: no cover

    def valid(self, value) -> bool:
        """Whether ``value`` (of a type the rule takes) is in the rule's range."""
        return True

    def accepts(self, value) -> bool:
        return (value is None and self.none) or (self.typed(value) and self.valid(value))

    def message(self, name: str, value) -> str:
        what = self.describe() + (" or None" if self.none else "")
        return f"{name} must be {what}, got {_show(value)}"


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounds(low, high, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '≥'} {low}"
    if high is not None:
        return f" {'<' if high_open else '≤'} {high}"
    return ""


@dataclass(frozen=True)
class Int(Option):
    """An integer in ``[low, high]`` (either end open-ended when ``None``)."""

    low: int | None = None
    high: int | None = None
    none: bool = False

    def describe(self) -> str:
        return "an integer" + _bounds(self.low, self.high)

    def typed(self, value) -> bool:
        return _is_int(value)

    def valid(self, value) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class Float(Option):
    """A finite number in the interval from ``low`` to ``high`` (ends closed unless
    ``low_open``/``high_open``; ``None``: open-ended)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    none: bool = False

    def describe(self) -> str:
        return "a finite number" + _bounds(self.low, self.high, self.low_open, self.high_open)

    def typed(self, value) -> bool:
        return _is_number(value)

    def valid(self, value) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


@dataclass(frozen=True)
class Bool(Option):
    """``True`` or ``False``."""

    none: bool = False

    def describe(self) -> str:
        return "True or False"

    def typed(self, value) -> bool:
        return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy's


@dataclass(frozen=True)
class Choice(Option):
    """One of ``values`` (compared with ``==`` and of the same type: ``True`` is not 1)."""

    values: tuple = ()
    none: bool = False

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def typed(self, value) -> bool:
        return any(type(value) is type(v) for v in self.values)

    def valid(self, value) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)


@dataclass(frozen=True)
class Text(Option):
    """Any non-empty string."""

    none: bool = False

    def describe(self) -> str:
        return "a non-empty string"

    def typed(self, value) -> bool:
        return isinstance(value, str)

    def valid(self, value) -> bool:
        return bool(value)


@dataclass(frozen=True)
class Module(Option):
    """A ``torch.nn.Module`` or the dotted name of one in the model (``layer=``); whether
    the name exists is checked where the model is read."""

    none: bool = False

    def describe(self) -> str:
        return "a torch.nn.Module or a module's dotted name"

    def typed(self, value) -> bool:
        from torch import nn

        return isinstance(value, nn.Module | str)

    def valid(self, value) -> bool:
        return not isinstance(value, str) or bool(value)


@dataclass(frozen=True)
class Sizes(Option):
    """A positive integer, or a tuple/list of them (one per spatial axis: how many is
    checked against the input)."""

    none: bool = False

    def describe(self) -> str:
        return "a positive integer or a tuple of them"

    def typed(self, value) -> bool:
        if isinstance(value, tuple | list):
            return bool(value) and all(_is_int(v) for v in value)
        return _is_int(value)

    def valid(self, value) -> bool:
        return all(v >= 1 for v in (value if isinstance(value, tuple | list) else (value,)))


@dataclass(frozen=True)
class Either(Option):
    """A value one of ``options`` accepts."""

    options: tuple = ()
    none: bool = False

    def __init__(self, *options: Option, none: bool = False) -> None:
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "none", none)

    def describe(self) -> str:
        return " or ".join(o.describe() for o in self.options)

    def typed(self, value) -> bool:
        return any(o.typed(value) for o in self.options)

    def valid(self, value) -> bool:
        return any(o.typed(value) and o.valid(value) for o in self.options)


def check(name: str, value, option: Option):
    """``value`` when ``option`` takes it (an ``int`` for :class:`Int`, a ``float`` for
    :class:`Float`, as given otherwise).

    Raises:
        TypeError: a value of a type the option does not take (named).
        ValueError: a value out of the option's range or choices (named).
    """
    if value is None and option.none:
        return None
    if not option.typed(value):
        raise TypeError(option.message(name, value))
    if not option.valid(value):
        raise ValueError(option.message(name, value))
    if isinstance(option, Int):
        return int(value)
    if isinstance(option, Float):
        return float(value)
    if isinstance(option, Bool):
        return bool(value)
    return value


def options_of(cls) -> dict[str, Option]:
    """The option rules of ``cls`` (an explainer class or an instance): its ``OPTIONS``
    merged along the class hierarchy, a subclass's rule replacing its base's."""
    cls = cls if isinstance(cls, type) else type(cls)
    merged: dict[str, Option] = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("OPTIONS", {}))
    return merged


def check_options(owner, **values) -> dict:
    """Every ``name=value`` checked against ``owner``'s rule for it (:func:`options_of`,
    or ``owner`` itself when it is a name → rule dict); returns the checked values in the
    order given."""
    rules = owner if isinstance(owner, dict) else options_of(owner)
    return {name: check(name, value, rules[name]) for name, value in values.items()}
