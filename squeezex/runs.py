"""Read a benchmark run folder back: what figures and the Compare widget are drawn from.

A run folder is what ``squeezex bench`` (:func:`squeezex.benchmark.run`) writes:
``results.json`` and, beside it, the cells (per-sample scores, mean curves, uint8 maps),
the test split, the SE vectors and VEBI's interpretation. :class:`Run` loads lazily and
caches, so a widget can ask for one method's maps without reading the others.

Example:
    >>> run = Run("data/runs/demo")  # doctest: +SKIP
    >>> run.ranking("pointing_game")[:3]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

__all__ = ["Run", "RankRow", "load_results"]


def load_results(path: str | Path) -> dict:
    """``results.json`` of a run folder (or the file itself), with a clear error if absent."""
    p = Path(path)
    f = p / "results.json" if p.is_dir() else p
    if not f.is_file():
        raise FileNotFoundError(
            f"no results.json in {p} — run `squeezex bench --out {p}` first"
            if p.is_dir() or not p.suffix
            else f"{f} does not exist"
        )
    try:
        results = json.loads(f.read_text())
    except ValueError as e:
        raise ValueError(f"{f} is not valid JSON: {e}") from None
    if not isinstance(results, dict) or "rows" not in results:
        raise ValueError(f"{f} is not a squeezex results file (no 'rows')")
    return results


@dataclass(frozen=True)
class RankRow:
    """One method's mean score on a metric, its 95 % interval and its rank (1 = best)."""

    method: str
    kind: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    rank: int


class Run:
    """A benchmark run folder.

    Args:
        path: the folder holding ``results.json`` (or a results dictionary plus ``root``).
        results: an already loaded results dictionary (``path`` is then its folder).
    """

    def __init__(self, path: str | Path, results: dict | None = None) -> None:
        self.root = Path(path)
        if self.root.is_file():
            self.root = self.root.parent
        self.results = results if results is not None else load_results(self.root)
        self._cells: dict = {}
        self._maps: dict = {}
        self._data: dict = {}

    def __repr__(self) -> str:
        return (
            f"Run({str(self.root)!r}: {', '.join(self.datasets)}; "
            f"{len(self.methods)} methods, {len(self.metrics())} metrics)"
        )

    # -- what the run holds ----------------------------------------------------------------
    @property
    def rows(self) -> list[dict]:
        return self.results["rows"]

    @cached_property
    def datasets(self) -> list[str]:
        return list(self.results.get("datasets") or [self.results["dataset"]])

    @cached_property
    def methods(self) -> list[str]:
        """Methods and reference maps, in the order the run scored them."""
        return list(dict.fromkeys(r["method"] for r in self.rows))

    @cached_property
    def seeds(self) -> list[int]:
        return sorted({int(r.get("seed", 0)) for r in self.rows})

    def kind(self, method: str) -> str:
        for r in self.rows:
            if r["method"] == method:
                return r.get("kind", "method")
        raise KeyError(f"no method {method!r} in this run; it has {', '.join(self.methods)}")

    def metrics(self, family: str | None = None) -> list[str]:
        return list(
            dict.fromkeys(
                r["metric"] for r in self.rows if family is None or r.get("family") == family
            )
        )

    def family(self, metric: str) -> str:
        for r in self.rows:
            if r["metric"] == metric:
                return r.get("family", "")
        raise KeyError(f"no metric {metric!r} in this run")

    def higher_is_better(self, metric: str) -> bool | None:
        return self.results.get("higher_is_better", {}).get(metric)

    def _check(self, dataset: str | None, seed: int | None) -> tuple[str, int]:
        dataset = dataset or self.datasets[0]
        if dataset not in self.datasets:
            raise KeyError(f"no dataset {dataset!r} in this run; it has {', '.join(self.datasets)}")
        seed = self.seeds[0] if seed is None else int(seed)
        return dataset, seed

    def _block(self, dataset: str, seed: int) -> list[dict]:
        """The rows of one (dataset, seed)."""
        first = self.results["dataset"]
        return [
            r
            for r in self.rows
            if r.get("dataset", first) == dataset and int(r.get("seed", 0)) == seed
        ]

    # -- tables ---------------------------------------------------------------------------
    def ranking(
        self, metric: str, dataset: str | None = None, seed: int | None = None
    ) -> list[RankRow]:
        """Methods ordered best first on ``metric`` (reference maps included, marked by
        ``kind``); descriptive metrics (no better direction) are ordered by value."""
        dataset, seed = self._check(dataset, seed)
        rows = [r for r in self._block(dataset, seed) if r["metric"] == metric]
        if not rows:
            raise KeyError(
                f"no scores for metric {metric!r} on {dataset} seed {seed}; "
                f"metrics: {', '.join(self.metrics())}"
            )
        better = self.higher_is_better(metric)
        sign = -1.0 if better in (True, None) else 1.0

        def key(r):
            v = r["value"]
            return (math.isnan(v), sign * v if not math.isnan(v) else 0.0, r["method"])

        out = []
        for i, r in enumerate(sorted(rows, key=key)):
            out.append(
                RankRow(
                    r["method"],
                    r.get("kind", "method"),
                    float(r["value"]),
                    float(r.get("ci_low", r["value"])),
                    float(r.get("ci_high", r["value"])),
                    int(r.get("n", 0)),
                    i + 1,
                )
            )
        return out

    # -- cells ----------------------------------------------------------------------------
    def _cell_path(self, dataset: str, seed: int, method: str) -> Path:
        cells = self.results.get("cells_dir")
        if cells is None:  # written before results.json named it: the only cells folder
            found = [p for p in (self.root / "cells").glob("*") if p.is_dir()]
            cells = found[0].relative_to(self.root) if len(found) == 1 else None
        if cells is None:
            raise FileNotFoundError(
                f"{self.root} was written by an older squeezex (no per-sample data); "
                "rerun `squeezex bench` into it"
            )
        return self.root / cells / dataset / str(seed) / f"{method}.json"

    def cell(self, method: str, dataset: str | None = None, seed: int | None = None) -> dict:
        dataset, seed = self._check(dataset, seed)
        key = (dataset, seed, method)
        if key not in self._cells:
            path = self._cell_path(dataset, seed, method)
            if not path.is_file():
                raise FileNotFoundError(f"no cell for {method!r} on {dataset} seed {seed}: {path}")
            self._cells[key] = json.loads(path.read_text())
        return self._cells[key]

    def samples(
        self, method: str, metric: str, dataset: str | None = None, seed: int | None = None
    ) -> np.ndarray:
        """Per-sample scores of ``method`` on ``metric`` (one per test image)."""
        cell = self.cell(method, dataset, seed)
        if metric not in cell.get("samples", {}):
            raise KeyError(
                f"{metric!r} has no per-sample scores for {method!r} "
                f"(per-sample: {', '.join(cell.get('samples', {}))})"
            )
        return np.asarray(cell["samples"][metric], dtype=np.float64)

    def best_worst(
        self,
        method: str,
        metric: str,
        k: int = 3,
        dataset: str | None = None,
        seed: int | None = None,
    ) -> tuple[list[int], list[int]]:
        """Indices of the ``k`` best and ``k`` worst test images of ``method`` on ``metric``
        (by its better direction; ties broken by index; NaN scores left out)."""
        v = self.samples(method, metric, dataset, seed)
        idx = np.flatnonzero(np.isfinite(v))
        better = self.higher_is_better(metric)
        order = idx[np.lexsort((idx, -v[idx] if better in (True, None) else v[idx]))]
        k = min(k, len(order))
        return [int(i) for i in order[:k]], [int(i) for i in order[::-1][:k]]

    def curves(self, method: str, dataset: str | None = None, seed: int | None = None) -> dict:
        """``{"fractions", "deletion", "insertion"}`` mean curves ({} if not scored)."""
        return dict(self.cell(method, dataset, seed).get("curves") or {})

    def maps(self, method: str, dataset: str | None = None, seed: int | None = None):
        """All test-image maps of ``method`` as float N×1×H×W in [0, 1]."""
        from .benchmark import dequantise

        dataset, seed = self._check(dataset, seed)
        key = (dataset, seed, method)
        if key not in self._maps:
            path = self._cell_path(dataset, seed, method).with_suffix(".pt")
            if not path.is_file():
                raise FileNotFoundError(f"no maps for {method!r} on {dataset} seed {seed}: {path}")
            self._maps[key] = dequantise(torch.load(path, weights_only=True))
        return self._maps[key]

    def data(self, dataset: str | None = None) -> dict:
        """The test split: ``images`` (float N×C×H×W in [0, 1]), ``masks``, ``targets``,
        ``classes`` (and ``object_masks`` where the dataset has them)."""
        dataset, _ = self._check(dataset, None)
        if dataset not in self._data:
            path = self.root / "data" / f"{dataset}.pt"
            if not path.is_file():
                raise FileNotFoundError(f"no test data for {dataset}: {path}")
            d = torch.load(path, weights_only=True)
            d["images"] = (
                d["images"].float() / 255 if d["images"].dtype == torch.uint8 else d["images"]
            )
            self._data[dataset] = d
        return self._data[dataset]

    def se_vectors(self, dataset: str | None = None, seed: int | None = None) -> dict:
        """``{"s": N×C SE vectors, "logits": N×C pre-sigmoid excitation}`` of the test set."""
        dataset, seed = self._check(dataset, seed)
        path = self.root / "se" / f"{dataset}-{seed}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"no SE vectors for {dataset} seed {seed}: {path}")
        return torch.load(path, weights_only=True)

    def interpretation(self, dataset: str | None = None, seed: int | None = None):
        """VEBI's :class:`~squeezex.explainers.vebi.Interpretation`, or ``None``."""
        from .explainers.vebi import Interpretation

        dataset, seed = self._check(dataset, seed)
        path = self.root / "vebi" / f"{dataset}-{seed}.pt"
        if not path.is_file():
            return None
        return Interpretation(**torch.load(path, weights_only=True))

    def cost(self, dataset: str | None = None, seed: int | None = None) -> dict[str, float]:
        """Milliseconds per image of every method the run timed."""
        dataset, seed = self._check(dataset, seed)
        return {
            r["method"]: float(r["value"])
            for r in self._block(dataset, seed)
            if r["metric"] == "ms_per_image"
        }
