"""Every ``>>>`` example in squeezex's docstrings runs, one test per module.

The modules are found on disk (every ``squeezex/**/*.py`` whose text holds ``>>>``), so a
module added later is tested without a line here. Each module's examples run with
:mod:`doctest` (``ELLIPSIS | NORMALIZE_WHITESPACE``) on one torch thread, in a temporary
working directory, with torch's global RNG seeded and restored afterwards; a failing
example fails its module's test with doctest's report. An example that cannot run here
(a real dataset on disk, a cluster, a browser) is written as a literal block
(``Example::``), not as ``>>>`` with ``# doctest: +SKIP``.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import io
import warnings
from pathlib import Path

import pytest
import torch

PACKAGE = Path(__file__).resolve().parents[1] / "squeezex"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: Modules whose examples need an optional extra (``pip install squeezex[cam]``): skipped,
#: with the reason, when the library is missing.
OPTIONAL = {
    "squeezex.explainers.adapters": ("pytorch_grad_cam",),
    "squeezex.explainers.adapters.pgc": ("pytorch_grad_cam",),
    "squeezex.explainers.adapters.tc": ("torchcam",),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_with_examples() -> list[str]:
    """Dotted names of the package's modules whose source holds a ``>>>`` line."""
    return sorted(
        _module_name(p)
        for p in PACKAGE.rglob("*.py")
        if p.name != "__main__.py" and ">>>" in p.read_text(encoding="utf-8")
    )


def run_examples(module) -> tuple[int, int, str]:
    """``(failed, attempted, report)`` of the doctests of ``module``."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = io.StringIO()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for test in finder.find(module, module.__name__):
            runner.run(test, out=out.write)
    return runner.failures, runner.tries, out.getvalue()


def test_the_package_has_examples_to_run():
    names = modules_with_examples()
    assert "squeezex" in names and "squeezex.explainers.se" in names, names


# the examples explain untrained models: an all-zero Grad-CAM map there is expected
@pytest.mark.filterwarnings("ignore::squeezex.common.ExplanationWarning")
@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name, tmp_path, monkeypatch, one_thread):
    for library in OPTIONAL.get(name, ()):
        pytest.importorskip(library, reason=f"{name}'s examples need {library}")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(name)
    failed, attempted, report = run_examples(module)
    assert failed == 0, f"{failed} of {attempted} examples failed in {name}:\n{report}"
    if attempted == 0:
        pytest.skip(
            f"no example of {name} ran: each is marked +SKIP (or `>>>` is not in a docstring)"
        )


def test_a_wrong_example_fails(tmp_path):
    """The runner reports a wrong expected output as a failure (it is not silently passed)."""
    source = tmp_path / "wrong_example.py"
    source.write_text('def f():\n    """\n    >>> 1 + 1\n    3\n    """\n')
    spec = importlib.util.spec_from_file_location("wrong_example", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    failed, attempted, report = run_examples(module)
    assert (failed, attempted) == (1, 1) and "Expected:\n    3\nGot:\n    2" in report


def dangling_references(texts: dict[str, str]) -> list[tuple[str, str]]:
    """``(file, name)`` of every ``squeezex.…`` name quoted in backticks (a Sphinx role or
    inline code) that does not resolve to a module or an attribute of one."""
    import re

    found = []
    for where, text in texts.items():
        for name in sorted(set(re.findall(r"`~?(squeezex(?:\.[A-Za-z_]\w*)+)`", text))):
            parts, obj = name.split("."), None
            for i in range(len(parts), 0, -1):
                try:
                    obj, rest = importlib.import_module(".".join(parts[:i])), parts[i:]
                    break
                except ImportError:
                    continue
            try:
                for attr in rest:
                    obj = getattr(obj, attr)
            except AttributeError:
                found.append((where, name))
    return found


def test_the_reference_check_finds_a_dangling_name():
    assert dangling_references({"x.py": "see :class:`squeezex.se.SEBlock`"}) == [
        ("x.py", "squeezex.se.SEBlock")
    ]
    assert dangling_references({"x.py": "see :class:`~squeezex.models.se.SEBlock`"}) == []


def test_docstrings_name_only_what_exists():
    """Every ``squeezex.…`` a docstring or comment points to exists (a moved name is
    re-exported, or the text follows it)."""
    texts = {str(p.relative_to(PACKAGE.parent)): p.read_text(encoding="utf-8")
             for p in PACKAGE.rglob("*.py")}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the old names' modules warn
        assert dangling_references(texts) == []
