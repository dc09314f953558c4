"""A small benchmark configuration run in processes (CLI) and in-process, for the sharding,
Slurm and bulk-explanation tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

from squeezex.bench import BenchConfig

TINY = dict(
    dataset="an8flower-single-6c,scenes-6c",
    n_train_per_class=6,
    n_test_per_class=2,
    epochs=8,
    seeds=2,
    size=32,
    methods=["se", "gradcam", "random"],
    families=["localisation", "faithfulness", "complexity", "cost"],
    progress=False,
)
ARGS = [
    "--dataset", TINY["dataset"], "--n-train", "6", "--n-test", "2", "--epochs", "8",
    "--seeds", "2", "--size", "32", "--methods", "se,gradcam,random",
    "--families", "localisation,faithfulness,complexity,cost", "--quiet",
]  # fmt: skip
ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


def cfg_at(root: Path, **kw) -> BenchConfig:
    return BenchConfig(**{**TINY, "out": str(root / "run"), "checkpoints": str(root / "ck"), **kw})


def comparable(results: dict) -> list[str]:
    """Every row but the timings (cost: measured, so never equal between two runs)."""
    rows = [r for r in results["rows"] if r["family"] != "cost"]
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


def cli(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "squeezex", "bench", *ARGS, *args],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw,
    )  # fmt: skip


def single_run(root: Path) -> dict:
    """The reference: the configuration run in one process, with the same number of
    threads as the shards (float sums in another order differ in the last bits)."""
    proc = cli("--out", str(root / "run"), "--checkpoints", str(root / "ck"))
    log = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, log
    return json.loads((root / "run" / "results.json").read_text())
