"""Submitting a run's shards as one job array (Slurm, or local processes) with submitit.

:func:`submit` plans the shards (:func:`~squeezex.bench.shards.plan`), submits those not
yet finished as one job array, reports each shard as its job ends (a failed one with its
log file), and once every shard has finished assembles the tables (:func:`~squeezex.bench.
harness.reduce`). Submitting again does only what is missing: finished shards are skipped,
and a shard that reruns reuses every intact cell. The same code runs on a laptop or in CI
with submitit's local executor (``cluster="local"``).

Example (on a Slurm cluster's login node; not run as a test)::

    from squeezex.bench import BenchConfig, submit

    cfg = BenchConfig(out="data/runs/big", seeds=5, explain_seeds=5)
    submit(cfg, shards=10, cluster="slurm", partition="cpu", time="4:00:00")
"""

from __future__ import annotations

import json
import re
import subprocess
import time as _time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .config import BenchConfig
from .harness import one_configuration, reduce, run_shard, shard_marker
from .shards import plan
from .store import CorruptRunError, RunStore

__all__ = [
    "submit",
    "default_shards",
    "describe",
    "parse_time",
    "ShardsFailedError",
    "finished_shards",
]

CLUSTERS = ("slurm", "local")


class ShardsFailedError(RuntimeError):
    """Some shards of a submitted run failed (the message names each and its log)."""


def default_shards(cfg: BenchConfig) -> int:
    """One shard per training unit, (dataset, training seed): no model trained twice."""
    return len(cfg.datasets) * cfg.seeds


_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time(text) -> int:
    """A Slurm time limit (``MM``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) in whole minutes.

    Raises:
        ValueError: not a Slurm time.
    """
    m = _TIME.match(str(text).strip())
    if not m:
        raise ValueError(f"--time must be minutes or [D-]HH:MM[:SS], got {text!r}")
    days, a, b, c = (int(g) if g else 0 for g in m.groups())
    if m.group(1):  # D-HH[:MM[:SS]]
        minutes = days * 1440 + a * 60 + b + (c > 0)
    elif m.group(4):  # HH:MM:SS
        minutes = a * 60 + b + (c > 0)
    elif m.group(3):  # MM:SS
        minutes = a + (b > 0)
    else:
        minutes = a
    if minutes < 1:
        raise ValueError(f"--time {text!r} is under a minute")
    return minutes


def finished_shards(cfg: BenchConfig, count: int) -> list[int]:
    """The shards of ``count`` that recorded themselves finished and whose cells are all
    still intact in the run folder."""
    store = RunStore(cfg.out, cfg.fingerprint())
    out = []
    for i in range(count):
        marker = shard_marker(cfg, count, i)
        try:
            cells = json.loads(marker.read_text())["cells"]
            for c in cells:
                if "skipped" not in c:
                    d, s, m = c["key"].rsplit("/", 2)
                    store.record(store.unit_dir(d, int(s)) / f"{m}.json")
        except (OSError, ValueError, KeyError, CorruptRunError):
            continue
        out.append(i)
    return out


def _executor(cluster: str, folder: Path, *, partition, minutes, gpus, cpus, parallelism, name):
    import submitit

    if cluster not in CLUSTERS:
        raise ValueError(f"unknown cluster {cluster!r}: choose from {', '.join(CLUSTERS)}")
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
    params = {"name": name, "timeout_min": minutes, "cpus_per_task": cpus}
    if gpus:
        params["gpus_per_node"] = gpus
    if partition:
        params["slurm_partition"] = partition
    if parallelism:
        params["slurm_array_parallelism"] = parallelism
    ex.update_parameters(**params)
    return ex


def submit(
    cfg: BenchConfig,
    shards: int | None = None,
    *,
    cluster: str = "local",
    folder=None,
    poll: float = 5.0,
    log: Callable[[str], None] = print,
    **resources,
) -> dict:
    """Run ``cfg`` as ``shards`` jobs (default :func:`default_shards`) on ``cluster``
    (``"slurm"`` or ``"local"``), wait for them, and reduce; returns the results dictionary.

    ``resources``: ``partition``, ``time`` (each job's limit: minutes or a Slurm time),
    ``gpus``, ``cpus_per_task``, ``array_parallelism`` (how many run at once). Job files
    and logs go to ``folder`` (default ``<out>/jobs``). ``cfg.resume=False`` (``--fresh``)
    clears the run's cells once, before submitting; a folder holding another
    configuration's cells is refused before anything is submitted, or with
    ``cfg.replace_other`` (``--replace``) cleared of them once
    (:func:`~squeezex.bench.harness.one_configuration`).

    Raises:
        ValueError: the folder holds another configuration's cells (the message names the
            settings that differ).
        ShardsFailedError: a shard failed or was killed (each named with its log); the
            finished shards are kept, and calling again resubmits only the others.
    """
    count = shards or default_shards(cfg)
    plan(cfg, count)  # checks count and the time limit before anything is cleared or submitted
    parse_time(resources.get("time", 60))
    one_configuration(cfg)
    if not cfg.resume:
        RunStore(cfg.out, cfg.fingerprint()).open(fresh=True)
        for i in range(count):
            shard_marker(cfg, count, i).unlink(missing_ok=True)
    worker = replace(cfg, resume=True, replace_other=False, progress=False)
    finished = finished_shards(worker, count)
    todo = [i for i in range(count) if i not in finished]
    if finished:
        log(f"{len(finished)} of {count} shards already finished: submitting {len(todo)}")
    run_array(
        run_shard, [(worker, i, count) for i in todo], todo, count, cluster=cluster,
        folder=Path(folder) if folder else Path(cfg.out) / "jobs", name="squeezex-bench",
        poll=poll, log=log, **resources,
    )  # fmt: skip
    return reduce(replace(worker, progress=cfg.progress))


def run_array(fn, calls: list[tuple], ids: list[int], count: int, *, cluster: str, folder: Path,
              name: str, poll: float = 5.0, log=print, describe_result=None,
              partition: str | None = None, time: str | int = 60, gpus: int = 0,
              cpus_per_task: int = 1, array_parallelism: int | None = None) -> None:  # fmt: skip
    """Submit ``fn(*call)`` for each call as one job array (shard ``ids[k]`` of ``count``),
    log each as it ends (``describe_result(result)`` says what it did), and raise
    :class:`ShardsFailedError` naming every failed shard and its log."""
    if not calls:
        return
    ex = _executor(
        cluster, folder, partition=partition, minutes=parse_time(time), gpus=gpus,
        cpus=cpus_per_task, parallelism=array_parallelism, name=name,
    )  # fmt: skip
    waves = [list(range(len(calls)))]
    if cluster == "local" and array_parallelism:  # local jobs all start at once
        waves = [
            waves[0][i : i + array_parallelism] for i in range(0, len(calls), array_parallelism)
        ]
    failed = []
    for wave in waves:
        jobs = ex.map_array(fn, *zip(*[calls[k] for k in wave], strict=True))
        shown = [ids[k] for k in wave]
        job = str(jobs[0].job_id).split("_")[0]
        log(f"submitted shard(s) {_span(shown)} of {count} to {cluster}: job {job}")
        failed += _watch(jobs, shown, count, log, poll, describe_result or _describe_cells)
    if failed:
        lines = "\n".join(failed)
        raise ShardsFailedError(
            f"{len(failed)} of {count} shards did not finish:\n{lines}\n"
            "Submit the same run again: only the unfinished shards run, and they reuse "
            "everything already written."
        )


def _describe_cells(result: dict) -> str:
    return describe(result["cells"])


def describe(cells: list[dict]) -> str:
    """What a shard did with its cells, in words."""
    if not cells:
        return "models only (a seed trained for the accuracy summary)"
    counts = {
        "computed": sum(1 for c in cells if set(c) == {"key", "reused"} and not c["reused"]),
        "reused": sum(1 for c in cells if c.get("reused")),
        "left to another worker": sum(1 for c in cells if "claimed" in c),
        "skipped (not applicable)": sum(1 for c in cells if "skipped" in c),
    }
    return ", ".join(f"{n} cells {what}" for what, n in counts.items() if n)


def _span(ids: list[int]) -> str:
    return f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0])


def _watch(jobs, ids: list[int], count: int, log, poll: float, what) -> list[str]:
    """Wait for ``jobs``, logging each as it ends; returns a line per failed shard."""
    pending, failed = dict(zip(ids, jobs, strict=True)), []
    start = _time.monotonic()
    while pending:
        for i, job in list(pending.items()):
            if not _ended(job):
                continue
            del pending[i]
            took = _time.monotonic() - start
            try:
                result = job.result()
            except Exception as exc:  # a raised error, or a killed or cancelled job
                why = _last_error(exc)
                failed.append(
                    f"  shard {i}/{count} (job {job.job_id}): {why}; log: {job.paths.stderr}"
                )
                log(f"shard {i}/{count} FAILED after {took:.0f} s; log: {job.paths.stderr}")
                continue
            log(
                f"shard {i}/{count} finished after {took:.0f} s: {what(result)} "
                f"({count - len(pending) - len(failed)} done, {len(pending)} running)"
            )
        if pending:
            _time.sleep(poll)
    return failed


def _last_error(exc: Exception) -> str:
    """The error a job raised, in one line (submitit's message holds the whole traceback
    and then the log paths)."""
    text = str(exc).split("\n----")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def _ended(job) -> bool:
    """Whether ``job`` ended: its result (or error) is written, or — a Slurm job — it left
    the queue without one (killed or cancelled). ``squeue`` rather than submitit's
    ``sacct`` watcher, which never answers on a cluster without accounting storage."""
    if type(job).__name__ != "SlurmJob":
        return job.done()
    if job.paths.result_pickle.exists():
        return True
    try:
        out = subprocess.run(
            ["squeue", "-h", "-o", "%i", "-j", str(job.job_id)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    if out.stdout.strip():
        return False  # still queued or running
    if out.returncode != 0 and "invalid job id" not in out.stderr.lower():
        return False  # squeue cannot tell (the controller is busy or down): ask again later
    _time.sleep(1)  # a result written just before the job left the queue
    return not job.paths.result_pickle.exists()
