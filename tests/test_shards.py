"""Sharded benchmark runs: the shard plan, claims on cells, shards in separate processes
reduced to the same tables as one process, and a shard killed mid-cell then rerun."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from squeezex.bench import (
    IncompleteRunError,
    claims,
    parse_shard,
    plan,
    reduce,
    run_shard,
    shard_from_env,
    submit,
)
from squeezex.bench.claims import Claim, holder
from squeezex.bench.submit import ShardsFailedError, finished_shards, parse_time
from tests.sharding import cfg_at, cli, comparable


@pytest.fixture(scope="module")
def single(single_bench):
    return single_bench[0]


# -- the plan ------------------------------------------------------------------------------------
def test_the_plan_covers_every_unit_and_cell_once_for_any_shard_count(tmp_path):
    cfg = cfg_at(tmp_path)
    units = [(d, s) for d in cfg.datasets for s in cfg.train_seeds]
    n_cells = len(cfg.methods) + 4  # methods + references (silhouette on scenes only)
    most = len(units) + 2 * (len(cfg.methods) + 2)
    for count in range(1, most + 1):
        shards = plan(cfg, count)
        assert [s.index for s in shards] == list(range(count))
        owned = {}
        for shard in shards:
            for part in shard.parts:
                for j in range(n_cells):
                    if part.owns(j):
                        owned.setdefault((part.dataset, part.seed, j), []).append(shard.index)
        assert set(owned) == {(d, s, j) for d, s in units for j in range(n_cells)}
        assert all(len(v) == 1 for v in owned.values())  # no cell twice
        trainers = [(p.dataset, p.seed) for s in shards for p in s.parts if p.trains]
        assert sorted(trainers) == sorted(units)  # every model trained by exactly one shard
        if count <= len(units):
            assert all(p.parts == 1 for s in shards for p in s.parts)  # whole units
    with pytest.raises(ValueError, match=f"1 to {most} shards"):
        plan(cfg, most + 1)


def test_with_as_many_shards_as_units_the_explained_units_go_to_different_shards(tmp_path):
    cfg = cfg_at(tmp_path)  # 2 datasets × 2 seeds, seed 0 explained
    two = plan(cfg, 2)
    explained = [[p for p in s.parts if p.seed == 0] for s in two]
    assert [len(e) for e in explained] == [1, 1]


def test_shard_arguments_and_slurm_array_environment():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "1", "a/b", "-1/3"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)
    env = {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert shard_from_env(env) == (1, 3)
    assert shard_from_env({"SLURM_JOB_ID": "7"}) is None
    with pytest.raises(ValueError, match="--array=0-"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3"})
    assert parse_time("90") == 90 and parse_time("1:30:00") == 90 and parse_time("1-0") == 1440
    with pytest.raises(ValueError, match="--time"):
        parse_time("soon")


# -- claims --------------------------------------------------------------------------------------
def test_a_claim_is_exclusive_until_released(tmp_path):
    a, b = Claim(tmp_path / "x.claim"), Claim(tmp_path / "x.claim")
    assert a.acquire() and not b.acquire()
    assert holder(a.path)["pid"] == os.getpid()
    a.release()
    assert not a.path.exists() and b.acquire()
    b.release()


def test_a_stale_claim_is_broken_a_live_one_is_not(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    path = tmp_path / "cell.claim"
    live = Claim(path)
    assert live.acquire()
    assert not Claim(path).acquire()  # held by a live process (this one)
    live.release()
    body = json.loads(json.dumps({"host": holder.__globals__["_HOST"], "pid": int(dead)}))
    path.write_text(json.dumps({**body, "token": "old"}))  # a killed worker's claim
    c = Claim(path)
    assert c.acquire() and holder(path)["token"] == c.token
    c.release()
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "far"}))
    assert not Claim(path, stale_after=60).acquire()  # another host's, refreshed recently
    os.utime(path, (time.time() - 120, time.time() - 120))
    assert Claim(path, stale_after=60).acquire()  # not refreshed for 2 minutes: stale


def test_racing_processes_get_one_claim(tmp_path):
    code = (  # the module alone (stdlib only): six interpreters start quickly
        "import importlib.util as u, sys, time\n"
        f"spec = u.spec_from_file_location('claims', {str(Path(claims.__file__))!r})\n"
        "m = u.module_from_spec(spec); spec.loader.exec_module(m); Claim = m.Claim\n"
        "time.sleep(max(0, float(sys.argv[2]) - time.time()))\n"
        "c = Claim(sys.argv[1]); got = c.acquire(); print(int(got)); time.sleep(1.0)"
    )
    start = time.time() + 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "c.claim"), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(6)
    ]
    won = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert sum(won) == 1


# -- shards in processes -------------------------------------------------------------------------
def test_two_shard_processes_then_reduce_equal_one_process(tmp_path, single):
    out = ["--out", str(tmp_path / "run"), "--checkpoints", str(tmp_path / "ck")]
    procs = [cli("--shard", f"{i}/2", *out) for i in range(2)]  # at the same time
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert "--reduce" in logs[0]
    assert not (tmp_path / "run" / "results.json").exists()  # shards write cells only
    assert sorted(finished_shards(cfg_at(tmp_path), 2)) == [0, 1]
    reduced = reduce(cfg_at(tmp_path))
    assert comparable(reduced) == comparable(single)
    assert len(comparable(single)) > 100
    assert reduced["models"] == {
        d: {**m, "train_seconds": reduced["models"][d]["train_seconds"]}
        for d, m in single["models"].items()
    }  # accuracy per seed, with and without SE, read back from the shards' checkpoints


def test_reduce_names_what_is_missing(tmp_path):
    cfg = cfg_at(tmp_path, dataset="an8flower-single-6c", seeds=1, methods=["se", "random"])
    with pytest.raises(IncompleteRunError, match="no checkpoint"):
        reduce(cfg)
    other = replace(cfg, families=["localisation"])
    run_shard(other, 0, 1)  # another configuration's cells
    with pytest.raises(ValueError, match="families localisation → localisation,faithfulness"):
        run_shard(cfg, 0, 1)  # a folder holds one configuration: refused before computing
    assert not list((tmp_path / "run" / "cells" / cfg.fingerprint()).glob("*/*/*.json"))
    run_shard(replace(cfg, replace_other=True), 0, 1)
    assert not (tmp_path / "run" / "cells" / other.fingerprint()).exists()
    assert not (tmp_path / "run" / "shards" / other.fingerprint()).exists()
    cells = tmp_path / "run" / "cells" / cfg.fingerprint()
    (cells / "an8flower-single-6c" / "0" / "random.json").unlink()
    with pytest.raises(IncompleteRunError, match=r"1 cell\(s\).*an8flower-single-6c/0/random"):
        reduce(cfg)
    assert finished_shards(cfg, 1) == []  # its marker no longer holds: resubmitted


def test_a_lost_checkpoint_makes_its_training_shard_run_again(tmp_path):
    cfg = cfg_at(tmp_path, dataset="an8flower-single-6c", methods=["random"])  # seeds 0, 1
    for i in range(2):
        run_shard(cfg, i, 2)
    reduce(cfg)
    assert finished_shards(cfg, 2) == [0, 1]
    (lost,) = (tmp_path / "ck").glob("an8flower-single-6c-plain-1-*.pt")  # seed 1: no cells
    lost.unlink()
    with pytest.raises(IncompleteRunError, match=f"no checkpoint {lost.name}"):
        reduce(cfg)
    assert finished_shards(cfg, 2) == []  # submitting again runs the shard that trains it


def test_a_shard_killed_mid_cell_is_finished_by_a_rerun_without_redoing_cells(tmp_path, single):
    out = ["--out", str(tmp_path / "run"), "--checkpoints", str(tmp_path / "ck")]
    cells = tmp_path / "run" / "cells"
    proc = cli("--shard", "0/1", *out)
    deadline = time.monotonic() + 300

    def finished():  # cells written and released (the one in progress may be written)
        return [p for p in cells.glob("*/*/0/[!_]*.json") if not p.with_suffix(".claim").exists()]

    while not finished() or not list(cells.glob("*/*/0/*.claim")):
        assert proc.poll() is None, proc.communicate()[0]  # a cell is done and one started
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (claim,) = list(cells.glob("*/*/0/*.claim"))  # the killed worker's: left behind
    if claim.with_suffix(".json").exists():
        # on a loaded machine the kill can land after the cell was written and before its
        # claim was released: take the record away, the state of a kill mid-cell (its
        # maps, written first, may stay, as they do after a kill mid-write)
        claim.with_suffix(".json").unlink()
    assert not claim.with_suffix(".json").exists()  # the cell in progress was not written
    done = {p: p.stat().st_mtime_ns for p in cells.glob("*/*/0/[!_]*.json")}
    assert done
    rerun = cli("--shard", "0/1", *out)
    log = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, log
    assert {p: p.stat().st_mtime_ns for p in done} == done  # finished cells not redone
    assert not list(cells.glob("*/*/*/*.claim"))  # the stale claim was broken and released
    assert comparable(reduce(cfg_at(tmp_path))) == comparable(single)


def test_fresh_cannot_be_sharded(tmp_path):
    with pytest.raises(ValueError, match="--fresh cannot be combined with --shard"):
        run_shard(cfg_at(tmp_path, resume=False), 0, 2)
    with pytest.raises(ValueError, match="checkpoint cache"):
        run_shard(cfg_at(tmp_path, checkpoints=None), 0, 2)


def test_submitted_local_jobs_report_a_failed_shard_and_a_resubmission_finishes(
    tmp_path, single, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the jobs inherit it: as many threads as `single`
    cfg = cfg_at(tmp_path)
    (scenes,) = [s for s in plan(cfg, 2) if s.parts[0].dataset == "scenes-6c"]
    blocker = tmp_path / "run" / "cells" / cfg.fingerprint() / "scenes-6c"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the shard's cells go")  # that shard fails
    said = []
    with pytest.raises(ShardsFailedError) as err:
        submit(cfg, 2, cluster="local", poll=0.2, log=said.append)
    message = str(err.value)
    assert "1 of 2 shards did not finish" in message and f"shard {scenes.index}/2" in message
    (log,) = [w for w in message.split() if w.endswith("_log.err")]
    assert Path(log).is_file() and "scenes-6c" in Path(log).read_text()  # the traceback
    assert any("FAILED" in s for s in said) and any("finished after" in s for s in said)
    blocker.unlink()
    said.clear()
    results = submit(cfg, 2, cluster="local", poll=0.2, log=said.append)
    assert said[0] == "1 of 2 shards already finished: submitting 1"
    assert comparable(results) == comparable(single)


def test_an_empty_claim_left_by_a_writer_killed_at_creation_is_broken(tmp_path):
    path = tmp_path / "cell.claim"
    path.write_text("")  # created, never written
    assert not Claim(path).acquire()  # young: perhaps being written right now
    os.utime(path, (time.time() - 60, time.time() - 60))
    c = Claim(path)
    assert c.acquire() and holder(path)["token"] == c.token
    c.release()
