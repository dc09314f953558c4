"""What importing squeezex costs: wall time and what each entry point loads.

Why: the library (one explainer) should not pay for the lab (figures, widgets, cluster
code); ``import squeezex`` and ``squeezex --help`` should not even load torch. Each entry
point runs in fresh interpreters (``--repeats`` times, the median kept), with this checkout
first on ``sys.path``, or another checkout (``--checkout``, e.g. a worktree of an older
commit) to compare before and after. Printed and written to ``benchmarks/import_time.json``
(under the checkout's name as given by ``--label``).

    python benchmarks/import_time.py --label after
    git worktree add /tmp/before e5a0be5
    python benchmarks/import_time.py --checkout /tmp/before --label before

"Loaded" lists which of matplotlib, ipywidgets, submitit, torch and captum an entry point
leaves in ``sys.modules``. Captum's own package imports matplotlib (``captum.attr`` →
``_utils/visualization.py``), so every entry point that builds an explainer loads it;
``squeezex_modules`` counts the squeezex modules loaded, ``lab`` those of the lab (bench,
figures, widgets, viz, cli).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WATCHED = ("matplotlib", "ipywidgets", "submitit", "torch", "captum")
LAB = ("squeezex.bench", "squeezex.figures", "squeezex.widgets", "squeezex.viz", "squeezex.cli",
       "squeezex.explore", "squeezex.speaker_")  # fmt: skip

ENTRY_POINTS = {
    "import squeezex": "import squeezex",
    "get_explainer('se', model)": (
        "import squeezex\n"
        "from squeezex.models import SmallCNN\n"
        "squeezex.get_explainer('se', squeezex.attach_se_head(SmallCNN(num_classes=6)))"
    ),
    "import squeezex.bench": "import squeezex.bench",
    "import squeezex.figures": "import squeezex.figures",
    "import squeezex.widgets": "import squeezex.widgets",
}

PROBE = """
import sys, time
t = time.perf_counter()
exec(compile({code!r}, "<entry>", "exec"))
seconds = time.perf_counter() - t
import json
mods = list(sys.modules)
print(json.dumps({{
    "seconds": seconds,
    "loaded": [w for w in {watched!r} if w in sys.modules],
    "squeezex_modules": sum(m == "squeezex" or m.startswith("squeezex.") for m in mods),
    "lab": sum(m.startswith({lab!r}) for m in mods),
}}))
"""


def measure(checkout: Path, code: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        probe = PROBE.format(code=code, watched=WATCHED, lab=LAB)
        env_code = f"import sys; sys.path.insert(0, {str(checkout)!r})\n{probe}"
        done = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True,
                              cwd="/", check=True)  # fmt: skip
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    out = dict(runs[-1])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    return out


def cli_help(checkout: Path, repeats: int) -> float:
    """Median wall seconds of ``squeezex --help`` (the command's own interpreter)."""
    import time

    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(checkout)!r}); "
                        "sys.argv = ['squeezex', '--help']; from squeezex.cli import main; "
                        "main(['--help'])"], capture_output=True, cwd="/")  # fmt: skip
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, default=HERE.parent)
    ap.add_argument("--label", default="after")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    result = {name: measure(args.checkout, code, args.repeats)
              for name, code in ENTRY_POINTS.items()}  # fmt: skip
    result["squeezex --help"] = {"seconds": cli_help(args.checkout, args.repeats)}
    for name, r in result.items():
        extra = (f"  loaded {', '.join(r['loaded']) or '-'}; {r['squeezex_modules']} squeezex "
                 f"modules ({r['lab']} of the lab)" if "loaded" in r else "")  # fmt: skip
        print(f"{name:30s} {r['seconds']:6.2f} s{extra}")
    path = HERE / "import_time.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    commit = subprocess.run(["git", "-C", str(args.checkout), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    data[args.label] = {"commit": commit, "repeats": args.repeats, **result}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
