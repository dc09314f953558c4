"""The command line's door, by property-based tests: every numeric option of every
command, given what is not a number it can use (``nan``, ``inf``, ``x``, ``""``, a
negative count, ``2.5`` for a count), is refused before any work starts — by argparse
(status 2, one line naming the option) or by the job's own checks (a ``ValueError`` naming
it). Valid values drawn from each option's range are accepted by both."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezex import cli

#: What each command needs to get past argparse (files that exist, so that the jobs'
#: checks of paths pass and the option drawn is what is checked).
REQUIRED = {
    "bench": [],
    "explain": ["--model", "{model}", "--data", "{data}", "--out", "{out}"],
    "squeeze": ["--arch", "resnet18", "--data", "{data}", "--out", "{out}/m.pt"],
    "generate": ["--out", "{out}"],
}

#: Never a number any option can use.
NOT_NUMBERS = ["nan", "inf", "-inf", "x", "", "1e999", "0x10"]


def numeric_options(command: str) -> dict[str, object]:
    """``--option`` → its argparse type, for the options of ``command`` that parse numbers."""
    parser = cli._parser([command]).commands[command]
    out = {}
    for action in parser._actions:
        kind = getattr(action.type, "__qualname__", "")
        if action.option_strings and (
            action.type in (int, float)
            or kind.startswith(("_at_least", "_greater_than"))
            or action.type in (cli._floats, cli._fraction, cli._nonnegative)
        ):
            out[action.option_strings[0]] = action.type
    return out


def whole(kind) -> bool:
    return getattr(kind, "__qualname__", "").startswith("_at_least") or kind is int


def outcome(command: str, argv: list[str]) -> tuple[str, str]:
    """``("refused", message)`` or ``("accepted", "")``: argparse, then the job's checks."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = cli._parser(argv).parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 2
        return "refused", err.getvalue()
    try:
        if command == "bench":
            args.given = cli._given(argv, command) if args.preset or args.data else set()
            cli._bench_config(args)
        elif command == "explain":
            cli._explain_job(args)
        elif command == "squeeze":
            cli._squeeze_job(args)
    except (ValueError, TypeError) as exc:
        return "refused", str(exc)
    return "accepted", ""


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-fuzz")
    (root / "model.pt").write_bytes(b"")
    (root / "data" / "a").mkdir(parents=True)
    return {"model": str(root / "model.pt"), "data": str(root / "data"), "out": str(root / "o")}


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_numeric_options_refuse_what_is_not_a_number_they_can_use(command, paths):
    options = numeric_options(command)
    assert options, f"{command} has no numeric option: the test reads the parser wrongly"
    base = [command, *(a.format(**paths) for a in REQUIRED[command])]

    @settings(max_examples=40)
    @given(option=st.sampled_from(sorted(options)), data=st.data())
    def check(option, data):
        kind = options[option]
        bad = NOT_NUMBERS + (
            ["2.5", "-1"] if whole(kind) else ["-1"] if kind is not cli._floats else []
        )
        value = data.draw(st.sampled_from(bad), label="value")
        verdict, message = outcome(command, [*base, option, value])
        assert verdict == "refused", f"{command} {option} {value!r} was accepted"
        assert option in message or option.lstrip("-").replace("-", "_") in message, message
        assert "Traceback" not in message and message.count("\n") <= 1, message

    check()


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_any_number_is_taken_or_refused_by_name(command, paths):
    """Numbers of the right kind pass argparse; a range argparse does not know (``--size``
    at least 32, ``--explain-seeds`` at most ``--seeds``) is the job's to refuse, by name."""
    options = numeric_options(command)
    base = [command, *(a.format(**paths) for a in REQUIRED[command])]

    @settings(max_examples=30)
    @given(option=st.sampled_from(sorted(options)), n=st.integers(0, 300))
    def check(option, n):
        kind = options[option]
        if kind is cli._fraction or kind is cli._floats:
            value = str(n / 301) if kind is cli._fraction else ",".join([str(n / 7)] * 3)
        else:
            value = str(n)
        verdict, message = outcome(command, [*base, option, value])
        if verdict == "refused":
            name = option.lstrip("-").replace("-", "_")
            assert option in message or name in message, f"{option} {value}: {message}"

    check()


def test_the_parsers_found_are_the_cli_s_own():
    """The fuzz reads option types off the parsers: check it finds the known ones."""
    assert isinstance(cli._parser(["bench"]), argparse.ArgumentParser)
    assert {"--size", "--epochs", "--vebi-mu"} <= set(numeric_options("bench"))
    assert {"--lr", "--std", "--val-split"} <= set(numeric_options("squeeze"))
