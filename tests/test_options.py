"""Options checked at the door, over the whole registry, by property-based tests.

For every registered image method, Hypothesis draws option values, some inside each
option's rule (``squeezex.options``) and some from a pool of values users type by mistake
(``2.5`` for a count, ``nan``, ``-1``, ``"0.5"``, ``True`` for a number, ``None``, a
list). The property: a value the rule refuses is refused when the explainer is made,
with a ``ValueError``/``TypeError`` naming that option; options the rules accept give an
explainer whose maps are finite, in [0, 1] and of the input's size. The second half is
what keeps the rules honest: a rule that lets through a value the method cannot use
fails here on the real model, not in a user's run.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezex.explainers import explainer_info, list_explainers
from squeezex.options import (
    Bool,
    Choice,
    Either,
    Float,
    Int,
    Module,
    Sizes,
    Text,
    check,
    options_of,
)
from tests.conftest import make_case

NAMES = list_explainers()

#: Options whose valid values depend on the model (a module of it, a head of it): only
#: values their rule refuses are drawn; the conformance suite runs their valid values.
MODEL_SPECIFIC = {"layer", "output"}

#: Bounds for drawing valid values of open-ended rules: cost grows with counts.
BIG = 4

_CASES: dict = {}


def case_for(name: str):
    kind = "plain-vit" if name == "rollout" else "se-cnn"
    if kind not in _CASES:
        _CASES[kind] = make_case(kind)
    return _CASES[kind]


_FITS: dict = {}


def build(name: str, options: dict):
    info = explainer_info(name)
    case = case_for(name)
    extra = {}
    if info.fit is not None:
        if name not in _FITS:
            _FITS[name] = info.fit(case.model, case.fit_data(), progress=False)
        extra = _FITS[name]
    return info.build(case.model, **extra, **options), case


def valid_values(rule) -> st.SearchStrategy:
    """Values ``rule`` accepts (small, so that drawing them costs little)."""
    if isinstance(rule, Int):
        low = rule.low if rule.low is not None else -BIG
        high = rule.high if rule.high is not None else max(low, 0) + BIG
        s = st.integers(low, high)
    elif isinstance(rule, Float):
        s = st.floats(
            rule.low if rule.low is not None else -10.0,
            rule.high if rule.high is not None else 10.0,
            exclude_min=rule.low_open and rule.low is not None,
            exclude_max=rule.high_open and rule.high is not None,
            allow_nan=False,
        )
    elif isinstance(rule, Bool):
        s = st.booleans()
    elif isinstance(rule, Choice):
        s = st.sampled_from(rule.values)
    elif isinstance(rule, Either):
        s = st.one_of([valid_values(o) for o in rule.options])
    elif isinstance(rule, Sizes):
        side = st.integers(1, BIG)
        s = st.one_of(side, st.tuples(side, side))
    elif isinstance(rule, Text | Module):
        s = st.text(min_size=1, max_size=3)
    else:  # a rule the test does not know: draw nothing valid
        raise AssertionError(f"no strategy for {rule!r}")
    return st.one_of(s, st.none()) if rule.none else s


#: What users hand an option by mistake (and some values that are fine for some rules).
MISTAKES = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([2.5, 1.5, 0.0, -0.5, 1e-9, math.nan, math.inf, -math.inf, 1e6]),
    st.booleans(),
    st.none(),
    st.sampled_from(["", "0.5", "3", "weighted", "topk", "bilinear", "mean", "aligned"]),
    st.sampled_from([[], [2], (2, 0), (2.0, 2.0), np.float64(0.5), np.int64(2)]),
)


def drawn_options(name: str) -> st.SearchStrategy:
    """A dict of some of ``name``'s options (not those its preset fixes), each value
    drawn valid or from :data:`MISTAKES`."""
    info = explainer_info(name)
    rules = {k: r for k, r in options_of(info.factory).items() if k not in info.preset}

    def value(key):
        rule = rules[key]
        if key in MODEL_SPECIFIC:
            return MISTAKES.filter(lambda v: v is not None and not rule.accepts(v))
        return st.one_of(valid_values(rule), MISTAKES)

    return st.lists(st.sampled_from(sorted(rules)), max_size=3, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: value(k) for k in keys})
    )


def joint_refusal(name: str, options: dict) -> str | None:
    """An option refused only together with another (named in the message)."""
    info = explainer_info(name)
    merged = {**info.preset, **options}
    if info.base == "se" and merged.get("weights") == "ones":
        if merged.get("selection", "weighted") != "weighted" or merged.get("class_aware"):
            return "weights"
    win, step = merged.get("sliding_window_shapes"), merged.get("strides")
    if name == "occlusion" and win is not None and step is not None:
        rule = Sizes()
        if rule.accepts(win) and rule.accepts(step):
            axes = [v if isinstance(v, tuple | list) else (v, v) for v in (win, step)]
            if len(axes[0]) == len(axes[1]) == 2 and any(
                s > w for s, w in zip(axes[1], axes[0], strict=True)
            ):
                return "strides"
    return None


#: Methods whose maps cost many forward passes (one per channel, per draw or per window)
#: draw fewer examples; the rest draw 10 (×10 under ``--hypothesis-profile=explore``).
FEWER = {
    "tc-sscam": 3, "tc-iscam": 3, "tc-scorecam": 4, "pgc-scorecam": 4,
    "pgc-ablationcam": 4, "occlusion": 6, "integrated-gradients": 6,
}  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_options_are_refused_at_the_door_or_give_finite_maps(name):
    n = FEWER.get(name, 10) * settings.default.max_examples // 100  # the profile's scale

    @settings(max_examples=n, suppress_health_check=[HealthCheck.filter_too_much])
    @given(data=st.data())
    def check_draws(data):
        refused_or_finite(name, data.draw(drawn_options(name), label="options"))

    check_draws()


def refused_or_finite(name: str, options: dict) -> None:
    rules = options_of(explainer_info(name).factory)
    refused = [k for k, v in options.items() if not rules[k].accepts(v)]
    joint = joint_refusal(name, options)
    try:
        explainer, case = build(name, options)
    except (ValueError, TypeError) as exc:
        expected = refused or [joint]
        assert expected != [None], f"{name}{options}: valid options refused: {exc}"
        assert any(k in str(exc) for k in expected), f"{name}: {exc!s} names none of {expected}"
        return
    assert not refused and joint is None, f"{name} accepted {options} ({refused or joint})"
    x = case.x[:2]
    maps = explainer.attribute(x, target=torch.tensor([0, 1]))
    assert maps.shape == (2, 1, *x.shape[2:]), (name, options)
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1, (name, options)


@pytest.mark.parametrize(
    ("rule", "value", "error"),
    [
        (Int(1), 2.5, TypeError),
        (Int(1), 0, ValueError),
        (Int(1), True, TypeError),
        (Float(), math.nan, ValueError),
        (Float(0, 1, high_open=True), 1.0, ValueError),
        (Bool(), 1, TypeError),
        (Choice(("a", "b")), "c", ValueError),
        (Choice((False, True, "aligned")), 1, TypeError),
        (Sizes(), (2, 0), ValueError),
        (Sizes(), [], TypeError),
        (Either(Float(0, 1, low_open=True), Int(1)), 1.5, ValueError),
        (Either(Float(0, 1, low_open=True), Int(1)), "1", TypeError),
    ],
)
def test_one_message_format_names_the_option_and_the_value(rule, value, error):
    with pytest.raises(error, match=rf"^opt must be .*, got {re.escape(repr(value))}$"):
        check("opt", value, rule)


@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=3), st.none()))
@settings(max_examples=200)
def test_check_returns_exactly_what_the_rule_accepts(value):
    for rule in (Int(0, 9), Float(-1, 1), Bool(), Choice((0.5, "x")), Sizes(none=True)):
        if rule.accepts(value):
            assert check("o", value, rule) == value
        else:
            with pytest.raises((TypeError, ValueError), match="^o must be"):
                check("o", value, rule)


def test_every_option_of_every_method_has_a_rule():
    """An option a method takes without a rule would go unchecked: each keyword of each
    factory's ``__init__`` (along its classes) has one."""
    import inspect

    for name in NAMES:
        factory = explainer_info(name).factory
        rules = options_of(factory)
        for klass in factory.__mro__:
            init = vars(klass).get("__init__")
            if init is None or klass.__module__.split(".")[0] != "squeezex":
                continue
            params = inspect.signature(init).parameters
            missing = [
                p for p in params
                if p not in ("self", "model", "relevant") and params[p].kind
                not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
                and p not in rules
            ]  # fmt: skip
            assert not missing, f"{name} ({klass.__name__}) takes {missing} without a rule"


@pytest.mark.parametrize(
    ("name", "options", "error", "named"),
    [
        ("se-topk", {"k": 1.5}, ValueError, "k"),
        ("se-paper", {"z": math.nan}, ValueError, "z"),
        ("integrated-gradients", {"n_steps": 2.5}, TypeError, "n_steps"),
        ("occlusion", {"sliding_window_shapes": 0}, ValueError, "sliding_window_shapes"),
        ("rollout", {"residual": 1.0}, ValueError, "residual"),
        ("activation-mean", {"selection": "topk"}, ValueError, "selection"),
        ("random", {"cell": "8"}, TypeError, "cell"),
        ("tc-smoothgradcam++", {"std": math.inf}, ValueError, "std"),
    ],
)
def test_the_issue_examples_are_refused_by_name(name, options, error, named):
    with pytest.raises(error, match=rf"^{named} must be"):
        build(name, options)


def test_an_integer_count_and_a_fraction_of_one_are_not_the_same_k():
    """k=1 is one channel, k=1.0 every channel (a fraction): neither is rounded."""
    from squeezex.explainers.se import select_channels

    g = torch.Generator().manual_seed(0)
    s = torch.rand(2, 8, generator=g)
    assert select_channels(s, s.logit(), "topk", k=1).selected.sum(1).tolist() == [1, 1]
    assert select_channels(s, s.logit(), "topk", k=1.0).selected.sum(1).tolist() == [8, 8]
    assert select_channels(s, s.logit(), "topk", k=np.int64(2)).selected.sum(1).tolist() == [2, 2]
    with pytest.raises(ValueError, match="^k must be"):
        select_channels(s, s.logit(), "topk", k=1.5)


# -- attach_se_head, the views and the widgets: the same rules, the same messages ------------
@settings(max_examples=40)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "reduction": st.one_of(st.integers(1, 8), MISTAKES),
            "squeeze": st.one_of(st.sampled_from(["sample", "batch"]), MISTAKES),
            "identity": st.one_of(
                st.sampled_from([True, False, "normalised", "2sigmoid"]), MISTAKES
            ),
            "input_size": st.one_of(st.just((3, 32, 32)), MISTAKES),
        },
    )
)
def test_attach_se_head_refuses_by_name_or_gives_a_working_model(options):
    from squeezex import attach_se_head
    from squeezex.models import SmallCNN
    from squeezex.models.se import ATTACH_OPTIONS, find_se_block

    refused = [k for k, v in options.items() if not ATTACH_OPTIONS[k].accepts(v)]
    model = SmallCNN(num_classes=4)
    try:
        attach_se_head(model, **options)
    except (ValueError, TypeError) as exc:
        assert refused, f"valid {options} refused: {exc}"
        assert any(str(exc).startswith(f"{k} must be") for k in refused), str(exc)
        assert find_se_block(model, required=False) is None, "a refused call changed the model"
        return
    assert not refused, f"attach_se_head accepted {options}"
    out = model.eval()(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 4) and torch.isfinite(out).all()


@settings(max_examples=60)
@given(
    scores=st.lists(st.one_of(st.floats(-5, 5), st.just(math.nan)), min_size=1, max_size=12),
    k=st.integers(-3, 14),
    higher=st.booleans(),
)
def test_best_worst_views_take_whole_counts_and_never_mix_the_two_ends(scores, k, higher):
    from types import SimpleNamespace

    from squeezex.bench import Run

    v = np.array(scores)
    run = SimpleNamespace(samples=lambda *a: v, higher_is_better=lambda m: higher)
    if k < 0:
        with pytest.raises(ValueError, match="^k must be an integer ≥ 0"):
            Run.best_worst(run, "se", "m", k)
        return
    best, worst = Run.best_worst(run, "se", "m", k)
    finite = np.flatnonzero(np.isfinite(v))
    assert len(best) == len(worst) == min(k, len(finite))
    assert set(best) <= set(finite.tolist()) and len(set(best)) == len(best)
    sign = 1 if higher else -1
    if best:  # every best image scores at least as well as every image left out
        rest = [i for i in finite if i not in best]
        assert all(sign * v[b] >= sign * v[r] for b in best for r in rest)
    if 2 * k <= len(finite):
        assert not set(best) & set(worst) or len(set(sign * v[finite])) < len(finite)
    with pytest.raises(TypeError, match="^k must be an integer"):
        Run.best_worst(run, "se", "m", 1.5)


def test_widgets_check_their_settings_before_drawing(se_model, images):
    from squeezex.widgets import Compare, Explorer

    data = (images, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"^classes has 2 names but the model outputs 6"):
        Explorer(se_model, data, classes=["cat", "dog"])
    with pytest.raises(ValueError, match="^scale must be an integer ≥ 1, got 0"):
        Explorer(se_model, data, scale=0)
    with pytest.raises(TypeError, match="^threads must be an integer ≥ 1 or None, got 1.5"):
        Explorer(se_model, data, threads=1.5)
    with pytest.raises(ValueError, match="^the dataset is empty"):
        Explorer(se_model, (images[:0], torch.tensor([], dtype=torch.long)))
    with pytest.raises(ValueError, match="^k must be an integer ≥ 1, got -1"):
        Compare("no-such-run", k=-1)


def test_attach_se_head_and_the_views_refuse_the_issue_examples():
    """``attach_se_head(reduction=2.5)`` and best/worst ``k=-1``: refused by name before
    anything is changed or read."""
    from types import SimpleNamespace

    from squeezex import attach_se_head
    from squeezex.bench import Run
    from squeezex.models import SmallCNN
    from squeezex.models.se import find_se_block

    model = SmallCNN(num_classes=4)
    with pytest.raises(TypeError, match=r"^reduction must be an integer ≥ 1, got 2\.5$"):
        attach_se_head(model, reduction=2.5)
    assert find_se_block(model, required=False) is None
    run = SimpleNamespace(samples=lambda *a: np.arange(12.0), higher_is_better=lambda m: True)
    with pytest.raises(ValueError, match=r"^k must be an integer ≥ 0, got -1$"):
        Run.best_worst(run, "se", "pointing_game", k=-1)
    best, worst = Run.best_worst(run, "se", "pointing_game", k=3)
    assert best == [11, 10, 9] and worst == [0, 1, 2]
