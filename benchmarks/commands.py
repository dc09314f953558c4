"""Time a README command as a new user runs it: in a fresh clone of this checkout's HEAD.

    python benchmarks/commands.py "make test" --what "pytest, the notebooks, the docs"

clones the repository into a temporary folder, runs the command there (the environment
cached by the Makefile is reused, as on any machine that ran ``make`` once), and records
its wall time, exit status, commit and date in ``benchmarks/commands.json``, replacing
the command's previous entry. The README and docs render their timing table from it
(``benchmarks/tables.py``). A command that fails is recorded as failed and the script
exits with its status.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command")
    ap.add_argument("--what", required=True, help="what the command does, for the table")
    ap.add_argument(
        "--label",
        help="the command as the table names it (default: the command itself), e.g. "
        "'make test' for 'bash .ci/run', which starts Chromium and Slurm and calls it",
    )
    ap.add_argument("--log", type=Path, help="where the command's output goes")
    ap.add_argument("--out", type=Path, default=HERE / "commands.json")
    args = ap.parse_args(argv)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "squeezex"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        log = open(args.log or os.devnull, "w")  # noqa: SIM115
        start = time.monotonic()
        status = subprocess.run(args.command, shell=True, cwd=clone, stdout=log,
                                stderr=subprocess.STDOUT).returncode  # fmt: skip
        seconds = time.monotonic() - start
        log.close()
    data = json.loads(args.out.read_text()) if args.out.exists() else {"runs": []}
    entry = {"command": args.label or args.command, "ran": args.command, "what": args.what, "seconds": round(seconds, 1),
             "status": status, "commit": commit, "cores": len(os.sched_getaffinity(0)),
             "where": f"{len(os.sched_getaffinity(0))} cores, fresh clone",
             "date": datetime.date.today().isoformat()}  # fmt: skip
    data["runs"] = [r for r in data["runs"] if r["command"] != entry["command"]] + [entry]
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(entry))
    return status


if __name__ == "__main__":
    sys.exit(main())
