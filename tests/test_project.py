"""The project's own contracts: one dependency list, notebooks without outputs."""

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip())[0].lower()


def test_environment_yml_lists_the_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [d for group in project["optional-dependencies"].values() for d in group]
    declared = {(_name(d), d.replace(" ", "")) for d in project["dependencies"] + extras}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {(_name(d), d.replace(" ", "")) for d in pip if not d.startswith("-e")}
    assert listed == declared


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "the notebooks folder has notebooks"
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        for c in cells:
            if c["cell_type"] == "code":
                assert not c.get("outputs") and not c.get("execution_count"), (
                    f"{nb.name} has outputs"
                )


def test_the_notebooks_are_numbered_in_reading_order_and_indexed():
    """Files 00, 01, … with no gap; each title carries its file's number; the index
    (notebooks/README.md) lists every one; the test scheduler's notebook paths exist."""
    from tests.conftest import GROUPS, LONGEST_FIRST

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert [nb.name[:3] for nb in notebooks] == [f"{i:02d}_" for i in range(len(notebooks))]
    index = (ROOT / "notebooks" / "README.md").read_text()
    for nb in notebooks:
        title = "".join(json.loads(nb.read_text())["cells"][0]["source"]).splitlines()[0]
        assert title.startswith(f"# {nb.name[:2]} · "), (nb.name, title)
        assert f"`{nb.stem}`" in index, f"notebooks/README.md does not list {nb.stem}"
    for path in [*GROUPS, *LONGEST_FIRST]:
        if path.endswith((".ipynb", ".py")):
            assert (ROOT / path).is_file(), f"tests/conftest.py names a missing file: {path}"


def _notebook_code(nb: Path) -> str:
    """A notebook's code cells as one Python text (IPython magics commented out)."""
    cells = json.loads(nb.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return re.sub(r"^([%!])", r"# \1", "\n".join(code), flags=re.M)


def _private_uses(tree) -> list[str]:
    """Names starting with _ that code imports from squeezex or reads off a module."""
    import ast

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("squeezex"):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            found += [node.module] if any(p.startswith("_") for p in node.module.split(".")) else []
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if not node.attr.startswith("__"):
                found.append(node.attr)
    return found


def test_the_benchmark_notebooks_share_the_package_config_and_no_private_names():
    import ast

    for name in ("05_localisation", "06_faithfulness", "07_sanity", "11_paper_figures"):
        code = _notebook_code(ROOT / "notebooks" / f"{name}.ipynb")
        assert not _private_uses(ast.parse(code)), (name, _private_uses(ast.parse(code)))
        assert 'CONFIG = preset("notebooks")' in code and "BenchConfig(" not in code, name
        first_run = code.index("run(CONFIG)")
        assert -1 < code.find("example_grid(CONFIG") < first_run, f"{name}: explain, then run"
    assert _private_uses(ast.parse("from squeezex.bench.models import _train_one"))


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    import os

    from squeezex.io import atomic_write_text

    path = atomic_write_text(tmp_path / "r.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def _sources(folder: str):
    import ast

    for path in sorted((ROOT / "squeezex" / folder).rglob("*.py")):
        yield path, ast.parse(path.read_text())


def test_metrics_import_nothing_from_the_explainers():
    import ast

    for path, tree in _sources("metrics"):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert "explainers" not in module, f"{path.name} imports {module}"


#: Functions allowed over 60 lines of code (docstrings not counted), with the reason.
LONG_FUNCTIONS: dict[str, str] = {}


def test_no_function_is_over_60_lines_of_code():
    import ast

    long = []
    for path, tree in _sources(""):
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                doc = body[0] if body and isinstance(body[0], ast.Expr) else None
                skip = (
                    doc.end_lineno - doc.lineno + 1
                    if doc and isinstance(getattr(doc, "value", None), ast.Constant)
                    else 0
                )
                n = node.end_lineno - node.lineno + 1 - skip
                if n > 60 and node.name not in LONG_FUNCTIONS:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n})")
    assert not long, long


def test_no_hand_written_mode_save_and_restore():
    """A caller's flags are switched and restored by squeezex.common.eval_mode only:
    nothing else saves ``training`` flags and sets them back (training.fit trains the
    model it is given; the harness puts the models it built in eval mode)."""
    offenders = []
    for path in sorted((ROOT / "squeezex").rglob("*.py")):
        if path.name == "common.py":  # eval_mode itself
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            saves = "was_training" in code or ".training = " in code or "flags = {" in code
            restores = ".train(" in code and "model.to(device).train()" not in code
            if saves or restores:
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, offenders


def test_stale_temp_files_go_and_live_ones_stay(tmp_path):
    import os
    import subprocess
    import sys

    from squeezex.io import _HOST, remove_stale_temps

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)  # fmt: skip
    dead = int(done.stdout)  # a process that has ended
    files = {
        "dead": tmp_path / f".a.json.{_HOST}.{dead}.x1.tmp",
        "live": tmp_path / f".b.json.{_HOST}.{os.getpid()}.x2.tmp",
        "other host, recent": tmp_path / "sub" / ".c.json.otherhost.1.x3.tmp",
        "other host, old": tmp_path / ".d.json.otherhost.1.x4.tmp",
        "a user's file, old": tmp_path / "notes" / ".draft.tmp",
    }
    for p in files.values():
        p.parent.mkdir(exist_ok=True)
        p.write_text("half")
    os.utime(files["other host, old"], (0, 0))
    os.utime(files["a user's file, old"], (0, 0))
    removed = set(remove_stale_temps(tmp_path))
    assert removed == {files["dead"], files["other host, old"]}
    for kept in ("live", "other host, recent", "a user's file, old"):
        assert files[kept].exists(), kept
