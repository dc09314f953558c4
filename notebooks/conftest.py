"""Save each notebook as nbval executed it, for the documentation.

With ``SQUEEZEX_EXECUTED_NOTEBOOKS=DIR`` set (``make test`` and ``make docs`` set it to
``build/notebooks``), every notebook nbval runs is written to ``DIR/<name>.ipynb`` with the
outputs its cells produced in that run, once its last cell has run. The docs build
(``docs/conf.py``) renders those copies, so the site shows the outputs of the very run that
tested the notebooks, and no notebook is executed twice. The file is written atomically; a
notebook with a failed cell is saved as far as it ran (and the test run fails); one whose
outputs are not valid nbformat (a PNG sent as raw bytes) fails its last cell's teardown.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat


def _target() -> Path | None:
    folder = os.environ.get("SQUEEZEX_EXECUTED_NOTEBOOKS")
    return Path(folder) if folder else None


def pytest_runtest_makereport(item, call):
    if call.when != "call" or _target() is None:
        return
    outputs = getattr(item, "test_outputs", None)
    cell = getattr(item, "cell", None)
    if outputs is None or cell is None:
        return
    cell.outputs = [copy.deepcopy(out) for out in outputs]
    cell.execution_count = getattr(item, "cell_num", 0) + 1


def pytest_runtest_teardown(item, nextitem):
    target = _target()
    notebook = getattr(item.parent, "nb", None)
    if target is None or notebook is None or getattr(item, "cell", None) is None:
        return
    if nextitem is not None and nextitem.parent is item.parent:
        return  # not the notebook's last cell
    nbformat.validate(notebook)  # an output no reader can show (raw bytes…) fails here
    target.mkdir(parents=True, exist_ok=True)
    path = target / Path(str(item.parent.path)).name
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    nbformat.write(notebook, str(temp))
    os.replace(temp, path)
