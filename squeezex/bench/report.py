"""Views that say what a run's numbers can carry: which metrics tell methods apart, how far
the SE map is from the activation mean it is built on, and what the SE vector does.

* :func:`discrimination`: per (dataset, seed) and ranked metric, how many pairs of methods
  have non-overlapping 95 % intervals, and the best and worst method (the random floor
  left out). A metric on which every pair overlaps carries no ranking on that dataset.
* :func:`paired_comparison`: two methods on the same test images — the per-image
  correlation of their maps and the paired difference of every per-image metric, with
  bootstrap intervals (``se`` vs ``activation-mean`` measures what the SE vector adds).
* :func:`se_diagnostics`: the spread of the SE vector per image and across images, and how
  much the channels each rule selects overlap across images and classes.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from ..explainers.diagnostics import map_correlation, se_vector_report
from ..explainers.se import select_channels
from ..metrics.vocabulary import METRICS
from .cells import CellKey
from .stats import summarise
from .store import CorruptRunError, RunStore, check_data, check_se

__all__ = ["discrimination", "paired_comparison", "se_diagnostics", "most_discriminating"]

#: Methods left out of best / worst: floors, not explanations.
FLOORS = ("random",)


def _ranked(metric: str) -> bool:
    m = METRICS.get(metric)
    return m is not None and m.direction != "descriptive" and m.family != "cost"


def discrimination(rows: list[dict]) -> dict:
    """``{"<dataset>/<seed>": {metric: summary}}`` over the method rows (references out).

    A summary holds ``methods`` (how many were scored), ``pairs`` and ``separated`` (pairs
    of methods whose 95 % intervals do not overlap, the random floor excluded),
    ``best`` and ``worst`` (``[method, value, ci_low, ci_high]`` by the metric's
    direction, the floor excluded), ``spread`` (best − worst, signed so that larger is a
    bigger gap) and ``best_vs_worst_separated``.
    """
    blocks: dict[str, dict[str, list[dict]]] = {}
    for r in rows:
        if r.get("kind") != "method" or not _ranked(r["metric"]) or not np.isfinite(r["value"]):
            continue
        block = blocks.setdefault(f"{r['dataset']}/{r['seed']}", {})
        block.setdefault(r["metric"], []).append(r)
    return {b: {m: _separation(m, rs) for m, rs in ms.items()} for b, ms in blocks.items()}


def _separation(metric: str, rows: list[dict]) -> dict:
    real = [r for r in rows if r["method"] not in FLOORS]
    pairs = list(itertools.combinations(real, 2))
    apart = sum(a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"] for a, b in pairs)
    sign = 1 if METRICS[metric].higher_is_better else -1
    ordered = sorted(real, key=lambda r: sign * r["value"], reverse=True)
    out = {"methods": len(rows), "pairs": len(pairs), "separated": int(apart)}
    if ordered:
        best, worst = ordered[0], ordered[-1]
        out["best"] = [best["method"], best["value"], best["ci_low"], best["ci_high"]]
        out["worst"] = [worst["method"], worst["value"], worst["ci_low"], worst["ci_high"]]
        out["spread"] = sign * (best["value"] - worst["value"])
        out["best_vs_worst_separated"] = bool(
            best["ci_low"] > worst["ci_high"] or best["ci_high"] < worst["ci_low"]
        )
    return out


def most_discriminating(report: dict) -> str | None:
    """The (dataset, seed) block whose ranked metrics separate the most pairs of methods
    (as a share of the pairs compared), ``None`` for an empty report."""
    scores = {
        block: sum(s["separated"] for s in ms.values())
        / max(1, sum(s["pairs"] for s in ms.values()))
        for block, ms in report.items()
    }
    return max(scores, key=scores.get) if scores else None


def paired_comparison(store: RunStore, records: list[dict], a: str, b: str) -> dict:
    """``a`` vs ``b`` on every (dataset, seed) where both were scored: the per-image
    Pearson correlation of the maps, and for each per-image metric both means and the
    paired difference a − b, each with its 95 % bootstrap interval."""
    cells = {(r["key"]["dataset"], r["key"]["seed"], r["key"]["method"]): r for r in records}
    out = {}
    for (dataset, seed, method), rec_a in cells.items():
        rec_b = cells.get((dataset, seed, b))
        if method != a or rec_b is None:
            continue
        try:
            ma = store.maps(store.cell_path(CellKey(dataset, seed, a)))
            mb = store.maps(store.cell_path(CellKey(dataset, seed, b)))
        except (FileNotFoundError, CorruptRunError):
            continue
        if ma.shape != mb.shape:
            continue
        r = map_correlation(ma[:, 0], mb[:, 0]).numpy()
        block = {"correlation": _summary(r), "metrics": {}}
        for name, va in rec_a["samples"].items():
            vb = rec_b["samples"].get(name)
            if vb is None or len(vb) != len(va) or METRICS.get(name) is None:
                continue
            va, vb = np.asarray(va, dtype=np.float64), np.asarray(vb, dtype=np.float64)
            block["metrics"][name] = {
                a: _summary(va),
                b: _summary(vb),
                "difference": _summary(va - vb),
            }
        out[f"{dataset}/{seed}"] = block
    return out


def _summary(values: np.ndarray) -> dict:
    row = summarise(values)
    return {k: row[k] for k in ("value", "ci_low", "ci_high", "n")}


def se_diagnostics(store: RunStore, blocks: list[tuple[str, int]]) -> dict:
    """The SE vector of every (dataset, seed) block: :func:`se_vector_report` of all
    channels, and of the channels the paper's and the top-k rules select."""
    out = {}
    for dataset, seed in blocks:
        try:
            se = store.load(store.se_path(dataset, seed), check_se)
            data = store.load(store.data_path(dataset), check_data)
        except (FileNotFoundError, CorruptRunError):
            continue
        s, logits, targets = se["s"].float(), se["logits"].float(), torch.as_tensor(data["targets"])
        if len(targets) != len(s):
            continue
        try:
            report = {"all": se_vector_report(s, targets)}
            for rule in ("paper", "topk"):
                chosen = select_channels(s, logits, rule).selected
                report[rule] = se_vector_report(s, targets, selected=chosen)
        except ValueError as exc:  # e.g. non-finite SE vectors: say so, keep the tables
            report = {"error": str(exc)}
        out[f"{dataset}/{seed}"] = report
    return out
