"""The layout's rules (ARCHITECTURE.md), checked on the source: no import cycles, the arrows
run one way, every module imports on its own, the library does not pull in the lab, and
generic code never branches on a task's or a dataset's name."""

import ast
import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "squeezex"


# -- the import graph, read from the source ---------------------------------------------------
def _modules() -> dict[str, tuple[Path, list[str]]]:
    """Every squeezex module: name → (file, the package its relative imports start from)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
            package = parts
        else:
            package = parts[:-1]
        out[".".join(parts)] = (path, package)
    return out


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The squeezex module an imported name lives in (``a.b.C`` → ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node, package: list[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    return [f"{base}.{a.name}" for a in node.names] + [base]


def imports(module: str) -> dict[str, int]:
    """The squeezex modules ``module`` imports — at the top or inside a function (a
    function-level import is an arrow too) — with the line, and the packages Python runs
    on the way (importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``)."""
    path, package = MODULES[module]
    out: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in _targets(node, package):
            owner = _owner(target) if target.startswith("squeezex") else None
            if owner is None or owner == module:
                continue
            parts = owner.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name in MODULES and not module.startswith(name + ".") and name != module:
                    out.setdefault(name, node.lineno)
    return out


GRAPH = {m: imports(m) for m in MODULES}


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


@functools.cache
def closure(module: str) -> frozenset[str]:
    """Every squeezex module ``module`` can import, directly or not."""
    seen, todo = set(), [module]
    while todo:
        for w in GRAPH[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return frozenset(seen)


@functools.cache
def third_party(module: str) -> set[str]:
    """The top-level names of the other packages ``module`` imports (anywhere in it)."""
    path, _ = MODULES[module]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out - {"squeezex"}


def test_the_graph_sees_imports_and_cycles():
    """The checker itself: it finds a function-level import, a package's ``__init__`` on
    the way, and a cycle, when there is one."""
    assert "squeezex.bench.tasks.base" in GRAPH["squeezex.bench.tasks.images"]
    assert "squeezex.explainers" in GRAPH["squeezex.bench.cells"]  # `from ..explainers import`
    assert "squeezex.bench.submit" in GRAPH["squeezex.bench.bulk"]  # inside submit_explain
    saved = dict(GRAPH["squeezex.common"])
    try:
        GRAPH["squeezex.common"]["squeezex.bench.harness"] = 0  # what a cycle looks like
        assert any("squeezex.common" in c for c in _cycles())
    finally:
        GRAPH["squeezex.common"] = saved


def test_no_import_cycles():
    assert _cycles() == []


#: What may import what: a layer's modules import only from the layers below it.
LAYERS = [
    (
        "squeezex.common",
        "squeezex.io",
        "squeezex.progress",
        "squeezex.audio",
        "squeezex.images",
        "squeezex.options",
    ),
    ("squeezex.geometry", "squeezex.models"),
    (
        "squeezex.datasets",
        "squeezex.metrics",
        "squeezex.explainers",
        "squeezex.training",
        "squeezex.squeezing",
    ),
    ("squeezex.bench",),
    (
        "squeezex.viz",
        "squeezex.figures",
        "squeezex.widgets",
        "squeezex.explore",
        "squeezex.speaker_figures",
        "squeezex.speaker_explorer",
    ),
    ("squeezex.cli",),
]


def _layer(module: str) -> int | None:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_arrows_run_one_way(module):
    """cli → widgets/figures → bench → explainers, metrics, datasets, training → models,
    geometry → common: a module imports nothing from a layer above its own (within a
    layer, siblings may import each other when no cycle forms); the compatibility modules
    that keep a moved name working sit above what they re-export."""
    mine = _layer(module)
    if mine is None:  # squeezex itself, and the compatibility modules: checked below
        return
    above = {w: line for w, line in GRAPH[module].items() if (_layer(w) or 0) > mine}
    assert not above, f"{module} imports from a layer above it: {above}"


def test_explainers_import_no_dataset_code_and_metrics_no_explainer():
    for module in (m for m in MODULES if m.startswith("squeezex.explainers")):
        bad = {w for w in closure(module) if w.startswith("squeezex.datasets")}
        assert not bad, f"{module} reaches dataset code: {bad}"
    for module in (m for m in MODULES if m.startswith("squeezex.metrics")):
        bad = {
            w for w in closure(module) if w.startswith(("squeezex.explainers", "squeezex.bench"))
        }
        assert not bad, f"{module} reaches {bad}"


def test_the_harness_imports_nothing_that_draws():
    """Nothing the benchmark's modules import, directly or not, is a figure, a widget or
    ``viz``, nor imports matplotlib or ipywidgets (``bench.models.example_grid`` is a
    deprecated alias that reaches :mod:`squeezex.figures` only when asked for)."""
    for module in (m for m in MODULES if m.startswith("squeezex.bench")):
        reach = closure(module) | {module}
        drawing = {w for w in reach if w.startswith(("squeezex.viz", "squeezex.figures",
                                                      "squeezex.widgets", "squeezex.speaker_"))}  # fmt: skip
        assert not drawing, f"{module} reaches {drawing}"
        libs = {w: third_party(w) & {"matplotlib", "ipywidgets"} for w in reach}
        assert not {w: v for w, v in libs.items() if v}, f"{module} reaches drawing libraries"


def test_every_module_imports_on_its_own(tmp_path):
    """Each module in a fresh interpreter of its own (a fork of one that has imported the
    third-party packages and nothing of squeezex): an import that works only after
    another squeezex module was imported fails here. The forks keep compiled squeezex
    modules in a temporary folder, so that each source is compiled once even where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on this project's machines): compiling the
    package again in every fork was half of this test's time."""
    code = (
        "import os, sys, importlib, warnings\n"
        "import numpy, torch, torchvision, captum.attr, matplotlib, ipywidgets, sklearn, wave\n"
        "import scipy.ndimage, scipy.signal, scipy.optimize, scipy.sparse.linalg\n"
        "sys.pycache_prefix, sys.dont_write_bytecode = sys.argv[1], False\n"
        "bad = []\n"
        "for name in sys.argv[2:]:\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        warnings.simplefilter('ignore')\n"
        "        try:\n"
        "            importlib.import_module(name)\n"
        "        except BaseException as e:\n"
        "            print(name, type(e).__name__, e, flush=True)\n"
        "            os._exit(1)\n"
        "        os._exit(0)\n"
        "    if os.waitpid(pid, 0)[1] != 0:\n"
        "        bad.append(name)\n"
        "print('FAILED', bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    names = sorted(m for m in MODULES if m != "squeezex.__main__")  # that one runs the CLI
    pyc = str(tmp_path / "pycache")
    done = subprocess.run([sys.executable, "-c", code, pyc, *names], capture_output=True,
                          text=True, env=env, timeout=600, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("FAILED []"), done.stdout[-3000:]


def _fresh(code: str) -> list[str]:
    """The modules of interest loaded by ``code`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def test_one_explainer_loads_none_of_the_lab():
    """``import squeezex`` and one explainer load no widget, figure, cluster or drawing
    code of squeezex, nor ipywidgets or submitit. (matplotlib is imported by Captum's own
    ``captum.attr`` package, which every explainer subclasses: it is loaded before the
    snapshot, so what is counted is what squeezex adds.)"""
    code = (
        "import sys, captum.attr\n"
        "before = set(sys.modules)\n"
        "import squeezex, torch\n"
        "from squeezex.models import SmallCNN\n"
        "model = squeezex.attach_se_head(SmallCNN(num_classes=6)).eval()\n"
        "squeezex.get_explainer('se', model).attribute(torch.rand(1, 3, 64, 64))\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    loaded = _fresh(code)
    assert "squeezex.explainers.se" in loaded  # the snapshot does see what is imported
    lab = [m for m in loaded if m.split(".")[0] in ("matplotlib", "ipywidgets", "submitit")
           or m.startswith(("squeezex.viz", "squeezex.figures", "squeezex.widgets",
                            "squeezex.bench", "squeezex.cli", "squeezex.speaker_"))]  # fmt: skip
    assert lab == []


def test_import_squeezex_is_light():
    loaded = _fresh("import sys, squeezex; print(' '.join(sys.modules))")
    assert "squeezex" in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "matplotlib", "captum")]


# -- no branching on names ------------------------------------------------------------------------
def _names() -> set[str]:
    from squeezex.datasets import TASKS, list_datasets

    return set(TASKS) | set(list_datasets())


#: Where a task's or a dataset's name may be written in a comparison: its own code.
OWN_CODE = ("squeezex.bench.tasks", "squeezex.datasets")


def branches_on_names(source: str, names: set[str]) -> list[tuple[int, str]]:
    """``(line, name)`` of every comparison, membership test or call that takes a task's
    or a dataset's name as a positional argument: ``x == "speakers"``,
    ``x in ("faces", …)``, ``list_datasets("single-label")``, ``name.startswith("faces")``
    (a keyword argument is a setting: ``BenchConfig(dataset="scenes-6c")``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        consts = []
        if isinstance(node, ast.Compare):
            for part in [node.left, *node.comparators]:
                consts += [n for n in ast.walk(part) if isinstance(n, ast.Constant)]
        elif isinstance(node, ast.Call):
            consts += [a for a in node.args if isinstance(a, ast.Constant)]
        found += [(c.lineno, c.value) for c in consts if isinstance(c.value, str)
                  and c.value in names]  # fmt: skip
    return found


def test_the_name_check_catches_branching():
    names = {"speakers", "audio-visual", "single-label"}
    assert branches_on_names('if name == "speakers":\n    pass', names) == [(1, "speakers")]
    assert branches_on_names('ok = task in ("audio-visual",)', names) == [(1, "audio-visual")]
    assert branches_on_names('d = list_datasets("single-label")', names) == [(1, "single-label")]
    assert branches_on_names('x = name.startswith("speakers")', names) == [(1, "speakers")]
    assert branches_on_names('x = dict(dataset="speakers")', names) == []  # a setting


def test_no_module_branches_on_a_task_or_dataset_name():
    names = _names()
    found = {}
    for module, (path, _) in MODULES.items():
        if module.startswith(OWN_CODE):
            continue
        if hits := branches_on_names(path.read_text(), names):
            found[module] = hits
    assert found == {}
