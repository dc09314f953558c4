"""Print the project's dependency list (``--list``) or a short hash of it (``--hash``).

The list is the dependencies plus the ``dev``, ``cam`` and ``docs`` extras (``cam``:
pytorch-grad-cam and torchcam, so CI runs the adapters' tests; ``docs``: ``make test``
builds the documentation).

The Makefile keys its cached virtual environment on this hash, so the environment is
rebuilt exactly when ``pyproject.toml``'s dependencies or extras change.
"""

import hashlib
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
extras = project["optional-dependencies"]
deps = [*project["dependencies"], *extras["dev"], *extras["cam"], *extras["docs"]]
if "--hash" in sys.argv:
    key = "\n".join([sys.version.split()[0], *deps])
    print(hashlib.sha256(key.encode()).hexdigest()[:12])
else:
    print("\n".join(deps))
