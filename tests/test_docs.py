"""The documentation a user reads: the README's contract, its quick start run as written,
every code snippet of the README and the docs run, and every number table rendered from
its committed result (``benchmarks/tables.py``).

Python snippets run page by page in a fresh interpreter, in a temporary folder, each page's
snippets in order in one namespace, after a prelude that defines the names a page assumes
its reader has (``images``, ``train_set``, ``my_resnet``…: small random stand-ins, named in
:data:`PRELUDE`). Shell snippets are not run (``make bench`` is minutes to hours): each
``squeezex`` command line is parsed by the command's own parser, and each ``make`` target
must exist in the Makefile.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_tables():
    """benchmarks/tables.py, under a name no installed package has (PyTables is `tables`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "squeezex_doc_tables", ROOT / "benchmarks/tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


tables = _load_tables()

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if "docs/notebooks" not in str(p)]
FENCE = re.compile(r"```(?P<lang>\w+)\n(?P<code>.*?)```", re.S)

#: what a page's snippets assume the reader already has: small random stand-ins
PRELUDE = """
import torch, torchvision
from torch.utils.data import TensorDataset
torch.manual_seed(0)
images = torch.rand(4, 3, 64, 64)
train_set = TensorDataset(torch.rand(36, 3, 64, 64), torch.arange(36) % 6)
val_set = test_set = TensorDataset(torch.rand(12, 3, 64, 64), torch.arange(12) % 6)
my_resnet = torchvision.models.resnet18(num_classes=6)
from squeezex.models import build_model
model = build_model("small", num_classes=6, se=True)

class MyGenerator(TensorDataset):
    def __init__(self, split, *, n_per_class, size, seed):
        super().__init__(torch.rand(6 * n_per_class, 3, size, size), torch.arange(6 * n_per_class) % 6)
"""


def snippets(page: Path, lang: str) -> list[str]:
    return [m["code"] for m in FENCE.finditer(page.read_text()) if m["lang"] == lang]


def test_readme_is_short_and_the_project_says_its_licence_and_how_to_cite():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] and cff["license"] == "MIT" and len(cff["references"]) == 2
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT", "project.license is an SPDX string, not a table"
    assert "@inproceedings{roxo2024squeeze" in "\n".join(lines)


def test_every_number_table_is_rendered_from_its_committed_result():
    problems = tables.update(check=True)
    assert not problems, "\n".join(problems) + "\n(python benchmarks/tables.py redraws them)"


def test_a_typed_table_is_found_and_a_stale_block_is_caught(tmp_path):
    page = tmp_path / "page.md"
    block = "<!-- table: se-cost -->\n" + tables.render("se-cost") + "<!-- /table -->\n"
    page.write_text("| method | time |\n|---|---|\n| se | 1.03× |\n\n" + block)
    problems = tables.update(check=True, paths=[page])
    assert len(problems) == 1 and "typed number table" in problems[0], problems
    assert "| se | 1.03× |" in problems[0]
    page.write_text(block.replace("| resnet18 |", "| resnet18 (edited) |"))
    assert [p for p in tables.update(check=True, paths=[page]) if "differs" in p]
    tables.update(paths=[page])  # rewritten from the JSON
    assert page.read_text() == block
    assert tables.update(check=True, paths=[page]) == []


def _page_ids(pages):
    return [str(p.relative_to(ROOT)) for p in pages]


#: the README's one Python snippet is its quick start, run as written by its own test
PY_PAGES = [p for p in PAGES if snippets(p, "python") and p.name != "README.md"]


@pytest.mark.parametrize("page", PY_PAGES, ids=_page_ids(PY_PAGES))
def test_the_python_snippets_of_a_page_run(page, tmp_path):
    code = "\n".join([PRELUDE, *snippets(page, "python")])
    (tmp_path / "data").mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", code + "\nprint('SNIPPETS-RAN')"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env=_env(),
    )  # fmt: skip
    assert done.returncode == 0 and "SNIPPETS-RAN" in done.stdout, (
        f"{page.relative_to(ROOT)}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )


def _env() -> dict:
    import os

    env = dict(os.environ, MPLBACKEND="Agg", SQUEEZEX_PROGRESS="off")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _readme_inputs(folder: Path) -> None:
    """What the README's quick start reads: a resnet18 state dict and an image folder."""
    import torch
    import torchvision
    from PIL import Image

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), folder / "my_resnet18.pt")
    for k, name in enumerate(["cat", "dog", "fox"]):
        (folder / "my_images" / name).mkdir(parents=True)
        for i in range(4):
            pixels = (torch.rand(48, 48, 3) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(folder / "my_images" / name / f"{k}{i}.png")


def test_the_readme_quick_start_runs_as_written(tmp_path):
    """The block after the ``snippet: quickstart`` marker, alone, as a user pastes it."""
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- snippet: quickstart")
    code = FENCE.search(text, start)["code"]
    _readme_inputs(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=_env())  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("torch.Size([4, 1, 224, 224])") == 2, done.stdout[-2000:]
    assert "identity" in done.stdout.lower(), "the squeeze report is printed"


def _command_lines(code: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line.split("#")[0].strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip


SH_PAGES = [p for p in PAGES if snippets(p, "sh")]


@pytest.mark.parametrize("page", SH_PAGES, ids=_page_ids(SH_PAGES))
def test_the_shell_snippets_of_a_page_name_real_commands_and_options(page):
    from squeezex.cli import _parser

    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    checked = 0
    for code in snippets(page, "sh"):
        for line in _command_lines(code):
            words = shlex.split(line.replace("[", "").replace("]", "").replace("|", " "))
            if words[0] == "make":
                assert words[1] in targets, f"{page.name}: no make target {words[1]!r}"
                checked += 1
            elif words[0] == "squeezex":
                argv = [w for w in words[1:] if w != "..."]
                parser = _parser(argv)
                try:
                    parser.parse_args(argv)
                except SystemExit as exc:
                    pytest.fail(f"{page.name}: `{line}` does not parse ({exc})")
                checked += 1
    assert checked or page.name == "install.md", f"{page.name}: no command checked"
