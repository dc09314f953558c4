"""The benchmark and bulk explanation on a real Slurm cluster (`.ci/slurm up` starts a
one-node one; CI does). Job arrays are submitted with submitit (``--submit slurm``) and with
plain ``sbatch --array`` (each task takes its shard from ``SLURM_ARRAY_TASK_ID``); their
results are compared with one process running the same configuration. Without a cluster
answering ``sinfo`` every test here skips, saying why (and the test summary says so)."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from squeezex.bench.bulk import ExplainedMaps, ExplainJob, explain_shard
from tests.sharding import ARGS, ENV, cfg_at, comparable

REPO = Path(__file__).resolve().parents[1]


def slurm_problem() -> str | None:
    """Why Slurm cannot run the tests here (``None``: it can)."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "no sbatch/sinfo on PATH (install: .ci/slurm install; start: .ci/slurm up)"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s"
    if out.returncode != 0:
        return f"sinfo fails ({out.stderr.strip()[:120]}): no controller (start: .ci/slurm up)"
    states = out.stdout.split()
    if not any(s.rstrip("*~#").startswith(("idle", "mix", "alloc")) for s in states):
        return f"no node is up (sinfo: {' '.join(states) or 'no nodes'})"
    return None


@pytest.fixture(scope="module")
def slurm():
    if problem := slurm_problem():
        pytest.skip(f"no Slurm cluster: {problem}")


def squeezex(*args, timeout=900) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "squeezex", *args], env=ENV, cwd=REPO,
                         capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_bench_shards_as_a_slurm_job_array_equal_one_process(slurm, single_bench, tmp_path):
    out = ["--out", str(tmp_path / "run"), "--checkpoints", str(tmp_path / "ck")]
    res = squeezex("bench", *ARGS, *out, "--submit", "slurm", "--shards", "2", "--time", "15")
    assert "submitted shard(s) 0-1 of 2 to slurm: job" in res.stdout
    assert res.stdout.count("finished after") == 2
    job = res.stdout.split("to slurm: job ")[1].split()[0]
    assert job.isdigit()  # a Slurm job id (a local job would be a process id, but not logged so)
    logs = sorted(p.name for p in (tmp_path / "run" / "jobs").glob(f"{job}_*/*_log.out"))
    assert logs == [f"{job}_0_0_log.out", f"{job}_1_0_log.out"]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert comparable(results) == comparable(single_bench[0])


def test_a_cancelled_sbatch_array_is_finished_by_resubmitting(slurm, single_bench, tmp_path):
    run, ck = tmp_path / "run", tmp_path / "ck"
    command = " ".join([sys.executable, "-m", "squeezex", "bench", *ARGS, "--out", str(run),
                        "--checkpoints", str(ck)])  # fmt: skip
    job = subprocess.run(
        ["sbatch", "--parsable", "--array=0-1", f"--output={tmp_path}/task-%a.out",
         f"--chdir={REPO}", "--wrap", command],
        env=ENV, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    cells = run / "cells"
    deadline = time.monotonic() + 300
    while not (list(cells.glob("*/*/0/[!_]*.json")) and list(cells.glob("*/*/0/*.claim"))):
        assert time.monotonic() < deadline, "no shard started a cell within 5 minutes"
        time.sleep(0.01)
    subprocess.run(["scancel", job], check=True)  # mid-cell: a claim is held
    while subprocess.run(
        ["squeue", "-h", "-j", job], capture_output=True, text=True
    ).stdout.strip():
        time.sleep(0.5)
    done = {p: p.stat().st_mtime_ns for p in cells.glob("*/*/0/[!_]*.json")}
    claims = list(cells.glob("*/*/0/*.claim"))
    assert done and claims  # the cancelled tasks left finished cells and their claims
    assert not (run / "results.json").exists()
    res = squeezex("bench", *ARGS, "--out", str(run), "--checkpoints", str(ck),
                   "--submit", "slurm", "--shards", "2")  # fmt: skip
    assert "to slurm: job" in res.stdout
    assert {p: p.stat().st_mtime_ns for p in done} == done  # finished cells not redone
    assert not list(cells.glob("*/*/*/*.claim"))
    results = json.loads((run / "results.json").read_text())
    assert comparable(results) == comparable(single_bench[0])
    logs = "".join((tmp_path / f"task-{i}.out").read_text() for i in range(2))
    assert "CANCELLED" in logs  # slurmstepd's line: the tasks were killed, not finished
    assert cfg_at(tmp_path).fingerprint() in results["cells_dir"]


def test_explain_shards_as_a_slurm_job_array_equal_one_process(slurm, single_bench, tmp_path):
    (ck,) = (single_bench[1] / "ck").glob("an8flower-single-6c-se-0-*.pt")
    data = ["--data", "an8flower-single-6c", "--n-per-class", "9", "--batch-size", "8"]
    res = squeezex("explain", "--model", str(ck), *data, "--methods", "se,gradcam",
                   "--out", str(tmp_path / "slurm"), "--submit", "slurm", "--shards", "2")  # fmt: skip
    assert res.stdout.count("finished after") == 2 and "images/s" in res.stdout
    one = ExplainJob(model=str(ck), data="an8flower-single-6c", n_per_class=9, batch_size=8,
                     methods=["se", "gradcam"], out=str(tmp_path / "one"), progress=False)  # fmt: skip
    explain_shard(one)
    a, b = ExplainedMaps(tmp_path / "one"), ExplainedMaps(tmp_path / "slurm")
    assert b.index["shards"] == 2 and b.index["ranges"] == [[0, 24], [24, 54]]
    for m in ("se", "gradcam"):
        assert torch.equal(a.load(m, raw=True), b.load(m, raw=True))
