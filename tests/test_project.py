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
    declared = {
        (_name(d), d.replace(" ", ""))
        for d in project["dependencies"] + project["optional-dependencies"]["dev"]
    }
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


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    import os

    from squeezex.io import atomic_write_text

    path = atomic_write_text(tmp_path / "r.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
