"""How long each notebook takes, short (``make test``) and at full size
(``make test-notebooks``), from the JUnit XML of an nbval run: the sum of its cells' times.

    SQUEEZEX_SMOKE=1 pytest notebooks --nbval-lax -n 0 --junitxml=smoke.xml
    pytest notebooks --nbval-lax -n 0 --junitxml=full.xml       # tens of minutes
    python benchmarks/notebook_times.py --smoke smoke.xml --full full.xml

writes ``benchmarks/notebook_times.json`` (the notebooks' README renders its table from it,
``benchmarks/tables.py``). A notebook is matched by its name without the number, so a run
from before a renumbering still counts. Each run is one process on this 2-core machine,
from a clean ``data/`` (every model trained, every benchmark cell computed).
"""

from __future__ import annotations

import argparse
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def per_notebook(xml: Path) -> dict[str, float]:
    """Seconds per notebook (keyed by its name without the number) in an nbval JUnit XML."""
    times: dict[str, float] = defaultdict(float)
    for case in ET.parse(xml).getroot().iter("testcase"):
        found = re.search(r"\d\d_(\w+)\.ipynb|\d\d_(\w+)", case.get("classname", "") + " "
                          + case.get("file", ""))  # fmt: skip
        if found:
            times[found[1] or found[2]] += float(case.get("time", 0))
    return dict(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", type=Path, help="JUnit XML of the short run")
    ap.add_argument("--full", type=Path, help="JUnit XML of the full-size run")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, default=HERE / "notebook_times.json")
    args = ap.parse_args(argv)
    old = json.loads(args.out.read_text()) if args.out.exists() else {"notebooks": {}}
    runs = {"smoke": args.smoke, "full": args.full}
    measured = {kind: per_notebook(x) for kind, x in runs.items() if x is not None}
    notebooks = {}
    for path in sorted((HERE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        key = path.stem[3:]
        before = old["notebooks"].get(path.name, {})
        notebooks[path.name] = {
            kind: round(measured[kind][key], 1) if kind in measured and key in measured[kind]
            else before.get(kind)
            for kind in runs
        }  # fmt: skip
    note = args.note or old.get("note", "")
    args.out.write_text(json.dumps({"notebooks": notebooks, "note": note}, indent=1) + "\n")
    print(json.dumps(notebooks, indent=1))


if __name__ == "__main__":
    main()
