"""The harness loop: datasets × training seeds × methods → cells in the run folder.

For each dataset (from the registry) the models are trained or loaded, the test split
is stored, and for each explained seed a :class:`~squeezex.bench.cells.Unit` is made; each
of its cells is reused from the store when intact or computed and written, and the
tables are rewritten from the store after every cell, so an interrupted run loses at
most the cell in progress and a rerun picks up where it stopped.

A run folder holds one configuration (:func:`one_configuration`): a run, a shard, a
reduce step or a submission into a folder that holds intact cells of another
configuration stops before computing anything, with a ``ValueError`` naming the settings
that differ (e.g. ``epochs 1 → 2``) and the two ways out — another ``--out`` to keep both,
or ``--replace`` (``replace_other=True``) to delete the other configuration's cells and
shard records. Settings outside the fingerprint (methods, datasets, seeds, progress)
never make another configuration: such runs add their cells to the folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..datasets import get_dataset
from ..datasets.user import register_folder
from ..io import atomic_write_json, remove_stale_temps
from ..progress import progress as progress_bar
from .cells import CellKey, model_id
from .claims import Claim, holder
from .config import SCHEMA_VERSION, BenchConfig
from .models import given_model, shard_models, splits, train_models
from .results import write_results
from .shards import Part, Shard, plan
from .store import (
    IncompleteRunError,
    RunStore,
    check_data,
    check_models,
    intact_configurations,
    remove_configuration,
    stored_config,
)
from .tasks import Task, get_task, task_of
from .tasks.images import attribute_groups, split_record

__all__ = [
    "run",
    "run_shard",
    "reduce",
    "run_cells",
    "one_configuration",
    "shard_marker",
    "Work",
    "explanation_view",
    "split_record",
    "attribute_groups",
    "reuse_or_compute",
]


@dataclass
class Work:
    """What one invocation does: every training unit (``shard=None``) or one shard's
    parts of them; with ``compute=False`` (a reduce step) nothing is trained or computed,
    and the cells not found are listed in ``missing``."""

    shard: Shard | None = None
    compute: bool = True
    missing: list[str] = field(default_factory=list)

    def parts(self, cfg: BenchConfig, dataset: str) -> list[Part]:
        if self.shard is None:
            return [Part(dataset, s) for s in cfg.train_seeds]
        return self.shard.of(dataset)


def run(cfg: BenchConfig) -> dict:
    """Run the benchmark described by ``cfg`` in this process: train or load the models,
    compute the cells the run folder does not hold yet, and write the tables; returns
    the results dictionary.

    Raises:
        ValueError: the output folder cannot hold files (named), or it holds another
            configuration's cells (:func:`one_configuration`).
    """
    return _execute(cfg, Work())


def run_shard(cfg: BenchConfig, index: int, count: int) -> dict:
    """Shard ``index`` (from 0) of ``count`` of ``cfg``'s run (:func:`~squeezex.bench.
    shards.plan`): its models and cells only — the tables are the reduce step's
    (:func:`reduce`). Cells another live worker has claimed are left to it. Returns
    ``{"shard": "I/N", "cells": [...]}`` and records the shard as finished in the run
    folder (``shards/``), so a resubmission skips it.

    Raises:
        ValueError: ``cfg.resume`` is off (clear the folder once before submitting, not in
            every shard), no checkpoint folder, ``index``/``count`` out of range, or the
            folder holds another configuration's cells (:func:`one_configuration`).
    """
    if not cfg.resume:
        raise ValueError(
            "--fresh cannot be combined with --shard (every shard would clear the others' "
            "cells): clear the run once, e.g. with --submit --fresh, then run the shards"
        )
    if not 0 <= index < count:
        raise ValueError(f"shard {index} is not one of {count} (counted from 0)")
    shard = plan(cfg, count)[index]
    done = _execute(cfg, Work(shard))
    marker = {"shard": str(shard), "parts": [asdict(p) for p in shard.parts], "cells": done}
    if not any("claimed" in c for c in done):  # finished, unless it left cells to others
        atomic_write_json(shard_marker(cfg, count, index), marker)
    return marker


def reduce(cfg: BenchConfig) -> dict:
    """Assemble the tables of a sharded run from its cells, once (nothing is trained or
    computed: the accuracy summary is read from the shards' checkpoints).

    Raises:
        IncompleteRunError: cells or checkpoints are missing (named, up to five): a shard
            has not finished, or what it wrote is gone — the shards' records of having
            finished are then removed, so a resubmission runs every shard again (reusing
            all that is intact).
        ValueError: the folder holds another configuration's cells
            (:func:`one_configuration`).
    """
    try:
        return _execute(cfg, Work(compute=False))
    except IncompleteRunError:
        shutil.rmtree(Path(cfg.out) / "shards" / cfg.fingerprint(), ignore_errors=True)
        raise


def shard_marker(cfg: BenchConfig, count: int, index: int) -> Path:
    """Where shard ``index`` of ``count`` records that it finished."""
    key = json.dumps([cfg.datasets, cfg.methods, cfg.train_seeds, cfg.explained_seeds, count])
    plan_id = hashlib.sha256(key.encode()).hexdigest()[:10]
    return Path(cfg.out) / "shards" / cfg.fingerprint() / f"{plan_id}-{index}-of-{count}.json"


def one_configuration(cfg: BenchConfig) -> list[str]:
    """Make sure ``cfg.out`` holds no cells of another configuration than ``cfg``'s: with
    ``cfg.replace_other`` every other configuration's folder is deleted (its cells and
    its shards' records; returns their fingerprints), otherwise a folder holding intact
    cells of another is refused. Called before anything is computed (by :func:`run`,
    :func:`run_shard`, :func:`reduce` and :func:`~squeezex.bench.submit.submit`).

    Raises:
        ValueError: the folder holds another configuration's intact cells; the message
            names the settings that differ and the two ways out.
    """
    mine, cells = cfg.fingerprint(), Path(cfg.out) / "cells"
    if cfg.replace_other:
        others = sorted(p.name for p in cells.iterdir() if p.is_dir()) if cells.is_dir() else []
        others = [f for f in others if f != mine]
        for fingerprint in others:
            remove_configuration(cfg.out, fingerprint)
        if others:  # the tables must not list the cells just removed
            write_results(RunStore(cfg.out, mine), cfg, [])
        return others
    if others := intact_configurations(cfg.out, other_than=mine):
        said = "; ".join(f"{f}: {_difference(cfg, f)}" for f in others)
        raise ValueError(
            f"{cfg.out} holds the cells of another configuration ({said}); this run's "
            "tables would leave them out. To keep both, give this run another --out; to "
            "replace the other configuration (its cells are deleted), rerun with --replace "
            "(BenchConfig(replace_other=True))"
        )
    return []


def _difference(cfg: BenchConfig, fingerprint: str) -> str:
    """How ``cfg`` differs from the configuration that wrote ``fingerprint``, in words."""
    stored = stored_config(cfg.out, fingerprint)
    if stored is None:
        return "its settings are not recorded there"
    changes = cfg.changes_from(stored["config"])
    if stored["schema"] not in (None, SCHEMA_VERSION):
        changes.append(f"schema {stored['schema']} → {SCHEMA_VERSION} (another squeezex version)")
    return ", ".join(changes) or (
        "the same settings, but another content of the --model checkpoint or another "
        "definition of the architecture"
    )


def _execute(cfg: BenchConfig, work: Work):
    sharded = work.shard is not None
    fresh = not cfg.resume and not sharded and work.compute
    if cfg.data is not None:  # registered where the config was made; here too (a worker)
        register_folder(cfg.data)
    one_configuration(cfg)
    store = RunStore(cfg.out, cfg.fingerprint()).open(fresh=fresh)
    store.write_config({"schema": SCHEMA_VERSION, "config": asdict(cfg)})
    if cfg.checkpoints:
        remove_stale_temps(cfg.checkpoints, recursive=False)  # checkpoints and fits
        if (Path(cfg.checkpoints) / "splits").is_dir():
            remove_stale_temps(Path(cfg.checkpoints) / "splits", recursive=False)
    done: list[dict] = []
    if fresh:  # the tables must not list the cells just removed
        write_results(store, cfg, done)
    for dname in cfg.datasets:
        if work.parts(cfg, dname):
            _run_dataset(cfg, store, dname, done, work)
    if work.missing:
        shown = ", ".join(work.missing[:5]) + (", …" if len(work.missing) > 5 else "")
        raise IncompleteRunError(
            f"{len(work.missing)} cell(s) of this run are missing ({shown}): a shard has not "
            "finished. Resubmit (only what is missing runs) or run `squeezex bench` with the "
            "same options to compute them here"
        )
    return done if sharded else write_results(store, cfg, done)


def _run_dataset(cfg: BenchConfig, store: RunStore, dname: str, done: list[dict],
                 work: Work) -> None:  # fmt: skip
    """Train or load the models of ``dname``, store its test split, then reuse or compute
    the cells of each of its units: what they are is the dataset's task's."""
    spec = get_dataset(dname)
    task = get_task(spec.task)
    train, test = splits(cfg, dname)
    parts = work.parts(cfg, dname)
    if cfg.model is not None:  # a given checkpoint: nothing to train
        models, summary = given_model(cfg, spec, train, test)
        store.artifact(store.models_path(dname), lambda: summary, check_models, fresh=True)
    elif work.shard is None:
        models, summary = train_models(cfg, spec, train, test, may_train=work.compute)
        store.artifact(store.models_path(dname), lambda: summary, check_models, fresh=True)
    else:
        models = shard_models(cfg, spec, train, parts)
    test = task.explanation_view(test)
    store.artifact(store.data_path(dname), lambda: task.split_record(test), check_data)
    for part in (p for p in parts if p.seed in models):
        model, ckpt = models[part.seed]
        unit = task.make_unit(cfg, store, dname, part.seed, model, ckpt, train, test)
        keys = [k for j, k in enumerate(task.cell_keys(unit)) if part.owns(j)]
        _drop_incomplete(store, task, keys)
        run_cells(store, unit, keys, done, work, task=task)
        if part.trains:
            task.finish_unit(store, unit)


def _drop_incomplete(store: RunStore, task: Task, keys: list[CellKey]) -> None:
    """Remove the method cells whose further maps (the task's ``extra_maps``) are gone, so
    that they are computed again."""
    for key in keys:
        if key.kind == "method" and any(
            not store.extra_maps_path(key, name).is_file() for name in task.extra_maps
        ):
            store.cell_path(key).unlink(missing_ok=True)


def run_cells(store: RunStore, unit, keys, done: list[dict], work: Work, compute=None, *,
              task: Task | None = None) -> None:  # fmt: skip
    """Reuse or compute (``compute(unit, key)``, default the unit's task's
    :meth:`~squeezex.bench.tasks.Task.compute_cell`) each of ``keys``, with a progress bar;
    an unsharded run rewrites the tables after each computed cell, so an interrupted run
    loses at most the cell in progress. A method that does not apply to the unit's model
    is skipped, with why."""
    cfg = unit.cfg
    task = task or task_of(unit.dataset)
    skip = task.not_applicable if compute is None else (lambda unit, method: None)
    compute = compute or task.compute_cell
    bar = progress_bar(keys, desc=f"{unit.dataset} seed {unit.seed}", disable=not cfg.progress)
    for key in bar:
        bar.set_postfix_str(key.method)
        if key.kind == "method" and (why := skip(unit, key.method)):
            bar.write(f"skipped {key.id}: {why}")  # e.g. rollout on a CNN
            done.append({"key": key.id, "skipped": why})
            continue
        outcome = reuse_or_compute(store, unit, key, compute, may_compute=work.compute)
        done.append(outcome)
        if outcome.get("missing"):
            work.missing.append(key.id)
        elif outcome.get("claimed"):
            bar.write(f"left {key.id} to {outcome['claimed']}, which is computing it")
        elif not outcome["reused"] and work.shard is None:
            write_results(store, cfg, done)


def reuse_or_compute(store: RunStore, unit, key: CellKey, compute=None, *,
                     may_compute: bool = True) -> dict:  # fmt: skip
    """Reuse the cell when the store has it intact and made from the same model and
    dataset spec (a changed registered default — a dataset's epochs, its test size, its
    pointing tolerance — is not in the run's fingerprint: it trains a new checkpoint or
    changes the spec's key, and the cells are computed anew), else compute it
    (``compute(unit, key)``, default the unit's task's
    :meth:`~squeezex.bench.tasks.Task.compute_cell`) and write it — under a claim (:class:`~squeezex.bench.claims.Claim`), so that two workers
    never compute the same cell at once: one that finds the cell claimed by a live worker
    leaves it (``{"claimed": who}``). Without ``may_compute`` a missing cell is reported
    (``{"missing": True}``)."""
    if _reusable(store, unit, key):
        return {"key": key.id, "reused": True}
    if not may_compute:
        return {"key": key.id, "reused": False, "missing": True}
    claim = Claim(store.cell_path(key).with_suffix(".claim"))
    if not claim.acquire():
        who = holder(claim.path) or {}
        job = f" (Slurm job {who['job']})" if who.get("job") else ""
        return {
            "key": key.id,
            "reused": False,
            "claimed": f"{who.get('host')}:{who.get('pid')}{job}",
        }
    try:
        if _reusable(store, unit, key):  # the claim's last holder finished it
            return {"key": key.id, "reused": True}
        store.write_cell((compute or task_of(unit.dataset).compute_cell)(unit, key))
    finally:
        claim.release()
    return {"key": key.id, "reused": False}


def _reusable(store: RunStore, unit, key: CellKey) -> bool:
    record = store.read_cell(key, n=len(unit.x))
    same = record is not None and record.get("model", model_id(unit.checkpoint)) == model_id(
        unit.checkpoint
    )
    return same and record.get("spec", unit.spec_key) == unit.spec_key


def explanation_view(test):
    """What a run explains of a test split: the split itself, or for a multi-label
    dataset its (image, present attribute) pairs (``test.explanation_view()``; the task's
    :meth:`~squeezex.bench.tasks.Task.explanation_view`)."""
    return test.explanation_view() if hasattr(test, "explanation_view") else test
