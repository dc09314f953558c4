"""The results dictionary (``results.json``) as a view of every cell in the run folder.

Rows come from every intact cell of the configuration — the methods of this run first, in
its order, then any other method an earlier run into the same folder scored, then the
reference maps — so running more methods adds rows and nothing is ever dropped, and
``results.json``, ``results.csv`` and ``results.tex`` are always written together from
the same rows.
"""

from __future__ import annotations

from dataclasses import asdict

from ..datasets import get_dataset, list_datasets
from ..explainers import list_explainers
from ..explainers.references import REFERENCES
from ..io import atomic_write_json, atomic_write_text
from ..metrics.vocabulary import METRICS
from .config import SCHEMA_VERSION, BenchConfig
from .report import discrimination, most_discriminating, paired_comparison, se_diagnostics
from .store import CorruptRunError, RunStore, check_models
from .tables import csv_text, latex_table
from .tasks import task_of

__all__ = ["assemble", "write_results"]


def _order(cfg: BenchConfig):
    datasets = {d: i for i, d in enumerate(cfg.datasets)}
    methods = {m: i for i, m in enumerate(cfg.methods)}
    registry = {m: i for i, m in enumerate(list_explainers())}
    refs = {r: i for i, r in enumerate(REFERENCES)}

    def key(record: dict):
        k = record["key"]
        d = (0, datasets[k["dataset"]], "") if k["dataset"] in datasets else (1, 0, k["dataset"])
        name = k["method"]
        if k["kind"] == "reference":
            m = (3, refs.get(name, len(refs)), name)
        elif name in methods:
            m = (0, methods[name], "")
        else:
            m = (1, registry.get(name, len(registry)), name)
        return d, k["seed"], m

    return key


def _models(store: RunStore, datasets: list[str]) -> dict:
    out = {}
    for d in datasets:
        try:
            out[d] = store.load(store.models_path(d), check_models)
        except (FileNotFoundError, CorruptRunError):
            continue
    return out


def assemble(store: RunStore, cfg: BenchConfig, cells: list[dict] | None = None) -> dict:
    """The results dictionary of ``cfg``'s cells in ``store``; ``cells`` lists what this
    invocation did (``{"key", "reused"}``), kept for the record."""
    records = sorted((r for _, r in store.records()), key=_order(cfg))
    rows = [row for r in records for row in r["rows"]]
    datasets = list(dict.fromkeys(r["key"]["dataset"] for r in records)) or cfg.datasets
    models = _models(store, datasets)
    first = datasets[0]
    timing, fits, fits_by_cell, sanity, load = {}, {}, {}, {}, {}
    for r in records:
        k = r["key"]
        cid = f"{k['dataset']}/{k['seed']}/{k['method']}"
        if r.get("load"):
            load[cid] = r["load"]
        for name, v in (r.get("timing") or {}).items():
            label = "forward" if name == "forward_ms_per_image" else k["method"]
            timing[f"{k['dataset']}/{k['seed']}/{label}_ms_per_image"] = v
        if r.get("fit"):
            fits_by_cell[cid] = r["fit"]
            if k["dataset"] == first:
                fits.setdefault(k["method"], r["fit"])
        if r.get("sanity"):
            sanity[cid] = r["sanity"]
    prefix = f"{first}/{cfg.seed}/"  # the first block's timings under short names too
    timing.update({k[len(prefix) :]: v for k, v in list(timing.items()) if k.startswith(prefix)})
    names = list(dict.fromkeys(row["metric"] for row in rows))
    blocks = list(dict.fromkeys((r["dataset"], r["seed"]) for r in rows))
    separation = discrimination(rows)
    return {
        "schema": SCHEMA_VERSION,
        "dataset": first,
        "datasets": datasets,
        "seed": cfg.seed,
        "n_train": models.get(first, {}).get("n_train"),
        "n_test": models.get(first, {}).get("n_test"),
        "model": models.get(first, {}),
        "arch": models.get(first, {}).get("arch"),
        "normalisation": models.get(first, {}).get("normalisation"),
        "pixel_baselines": PIXEL_BASELINES.get(cfg.deletion_baseline, cfg.deletion_baseline),
        "models": models,
        "rows": rows,
        "attribute_rows": [row for r in records for row in r.get("attribute_rows") or []],
        "metrics": {k: _describe(k) for k in names},
        "higher_is_better": {k: METRICS[k].higher_is_better for k in names if k in METRICS},
        "fits": fits,
        "fits_by_cell": fits_by_cell,
        "sanity": sanity,
        "timing": timing,
        "load": load,
        "footing": _footing(records),
        "pointing_tolerance": _tolerances(datasets),
        "discrimination": separation,
        "most_discriminating": most_discriminating(separation),
        "se_vs_activation_mean": paired_comparison(store, records, "se", "activation-mean"),
        "se_diagnostics": se_diagnostics(store, blocks),
        "cells": list(cells or []),
        #: cell id → why the method does not apply to that model (not scored)
        "skipped": {c["key"]: c["skipped"] for c in cells or [] if "skipped" in c},
        "cells_dir": f"cells/{store.fingerprint}",
        "config": asdict(cfg),
    }


#: What the faithfulness metrics put in place of a pixel, stated (images in [0, 1]; a
#: normalised model normalises inside itself, so the baselines are the same for all).
PIXEL_BASELINES = {
    "zero": "deletion, insertion's start and infidelity's removal: black (0 in pixel "
    "space, before any normalisation); ROAD: the neighbours' linear imputation",
    "mean": "deletion, insertion's start and infidelity's removal: the image's mean colour "
    "(pixel space); ROAD: the neighbours' linear imputation",
    "blur": "deletion, insertion's start and infidelity's removal: a blurred copy (pixel "
    "space); ROAD: the neighbours' linear imputation",
}


def _footing(records: list[dict]) -> dict:
    """Method → on what footing its maps are made (layer, gradients, upsampling): the
    dataset's task's words (an image method under its name; the methods of other input
    kinds under ``"<method> (<dataset>)"``). A dataset no longer registered is read as a
    single-label one."""
    out = {}
    for r in records:
        k = r["key"]
        task = task_of(k["dataset"], missing_ok=True)
        if (entry := task.footing(k["dataset"], k["method"], k["kind"])) is not None:
            out[entry[0]] = entry[1]
    return out


def _tolerances(datasets: list[str]) -> dict[str, int]:
    """Dataset → the pointing game's slack in pixels, where it is not 0."""
    known = set(list_datasets())
    return {d: t for d in datasets if d in known and (t := get_dataset(d).pointing_tolerance)}


def _describe(name: str) -> dict:
    m = METRICS.get(name)
    if m is None:
        return {"family": None, "direction": "descriptive", "reason": "not in the vocabulary"}
    return {
        "family": m.family,
        "direction": m.direction,
        "description": m.description,
        "unit": m.unit,
        "reason": m.reason,
    }


def write_results(store: RunStore, cfg: BenchConfig, cells: list[dict] | None = None) -> dict:
    """Assemble the results and write ``results.json``, ``.csv`` and ``.tex`` together."""
    results = assemble(store, cfg, cells)
    atomic_write_json(store.root / "results.json", results)
    atomic_write_text(store.root / "results.csv", csv_text(results["rows"]))
    if results["attribute_rows"]:  # multi-label datasets: the same metrics per attribute
        atomic_write_text(
            store.root / "results-attributes.csv", csv_text(results["attribute_rows"])
        )
    atomic_write_text(store.root / "results.tex", latex_table(results))
    return results
