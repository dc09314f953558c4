"""Read a run folder back: what figures and the Compare widget are drawn from.

:class:`Run` reads ``results.json`` and, through the folder's :class:`RunStore`, the
cells (per-sample scores, mean curves, uint8 maps; an audio-visual run's spectrogram
maps), the test split, the SE vectors and VEBI's interpretation — each checked as it is
loaded: a damaged file raises :class:`~squeezex.bench.store.CorruptRunError` naming it, a
file the run never made a ``FileNotFoundError``. Directions come from the metric vocabulary. It loads lazily and
caches, so a widget can ask for one method's maps without reading the others.

Example:
    A run folder written by a benchmark small enough for seconds, read back:

    >>> import tempfile
    >>> from squeezex.bench import BenchConfig, run
    >>> out = tempfile.mkdtemp()
    >>> _ = run(BenchConfig(dataset="an8flower-single-6c", methods=["se", "random"],
    ...                     families=["localisation"], n_train_per_class=4, n_test_per_class=2,
    ...                     size=32, epochs=1, seeds=1, out=out, checkpoints=None, progress=False))
    >>> r = Run(out)
    >>> r.datasets, r.methods  # the methods, then the reference maps
    (['an8flower-single-6c'], ['se', 'random', 'centre', 'silhouette', 'oracle', 'constant'])
    >>> r.ranking("pointing_game")[0]
    RankRow(method='oracle', kind='reference', value=1.0, ci_low=1.0, ci_high=1.0, n=12, rank=1)
    >>> r.maps("se").shape  # the 12 test images' maps, float in [0, 1]
    torch.Size([12, 1, 32, 32])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..options import Int, check
from .cells import CellKey
from .store import (
    CorruptRunError,
    RunStore,
    check_data,
    check_interpretation,
    check_se,
    dequantise,
    load_results,
)
from .tables import direction

__all__ = ["Run", "RankRow"]


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
        path: the folder holding ``results.json`` (or the file itself).
        results: an already loaded results dictionary (``path`` is then its folder).

    Raises:
        FileNotFoundError: no ``results.json``.
        CorruptRunError: the results are unreadable, from an older squeezex, or empty.
    """

    def __init__(self, path: str | Path, results: dict | None = None) -> None:
        self.root = Path(path)
        if self.root.is_file():
            self.root = self.root.parent
        self.results = results if results is not None else load_results(self.root)
        if not self.results["rows"]:
            raise CorruptRunError(
                f"{self.root} holds no results yet (no finished cell): run "
                f"`squeezex bench --out {self.root}` until at least one cell is done"
            )
        fingerprint = Path(self.results.get("cells_dir", "cells/?")).name
        self.store = RunStore(self.root, fingerprint)
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
        return list(dict.fromkeys(r["dataset"] for r in self.rows))

    @cached_property
    def methods(self) -> list[str]:
        """Methods and reference maps, in the order of the tables."""
        return list(dict.fromkeys(r["method"] for r in self.rows))

    @cached_property
    def seeds(self) -> list[int]:
        return sorted({int(r["seed"]) for r in self.rows})

    def blocks(self) -> list[tuple[str, int]]:
        """The (dataset, seed) pairs that have rows, in order."""
        return list(dict.fromkeys((r["dataset"], int(r["seed"])) for r in self.rows))

    def attribute_rows(
        self, metric: str | None = None, dataset: str | None = None, seed: int | None = None
    ) -> list[dict]:
        """Multi-label datasets: the rows per attribute (each with an ``attribute`` field)
        of one (dataset, seed), of one metric if given; ``[]`` for single-label runs."""
        dataset, seed = self._check(dataset, seed)
        return [
            r for r in self.results.get("attribute_rows", [])
            if r["dataset"] == dataset and r["seed"] == seed
            and (metric is None or r["metric"] == metric)
        ]  # fmt: skip

    def kind(self, method: str) -> str:
        for r in self.rows:
            if r["method"] == method:
                return r.get("kind", "method")
        raise KeyError(f"no method {method!r} in this run; it has {', '.join(self.methods)}")

    def metrics(self, family: str | None = None) -> list[str]:
        return list(
            dict.fromkeys(r["metric"] for r in self.rows if family is None or r["family"] == family)
        )

    def family(self, metric: str) -> str:
        for r in self.rows:
            if r["metric"] == metric:
                return r["family"]
        raise KeyError(f"no metric {metric!r} in this run")

    def higher_is_better(self, metric: str) -> bool | None:
        """From the metric vocabulary: True, False, or None (descriptive)."""
        return direction(metric, self.results)

    def _check(self, dataset: str | None, seed: int | None) -> tuple[str, int]:
        dataset = dataset or self.datasets[0]
        if dataset not in self.datasets:
            raise KeyError(f"no dataset {dataset!r} in this run; it has {', '.join(self.datasets)}")
        seed = self.seeds[0] if seed is None else int(seed)
        if seed not in self.seeds:
            raise KeyError(f"no seed {seed} in this run; it has {self.seeds}")
        return dataset, seed

    def block(self, dataset: str | None = None, seed: int | None = None) -> list[dict]:
        """The rows of one (dataset, seed)."""
        dataset, seed = self._check(dataset, seed)
        return [r for r in self.rows if r["dataset"] == dataset and int(r["seed"]) == seed]

    # -- tables ---------------------------------------------------------------------------
    def ranking(
        self, metric: str, dataset: str | None = None, seed: int | None = None
    ) -> list[RankRow]:
        """Methods ordered best first on ``metric`` by its direction (reference maps
        included, marked by ``kind``); descriptive metrics are ordered by value, largest
        first. Methods with no value (NaN) come last."""
        dataset, seed = self._check(dataset, seed)
        rows = [r for r in self.block(dataset, seed) if r["metric"] == metric]
        if not rows:
            raise KeyError(
                f"no scores for metric {metric!r} on {dataset} seed {seed}; "
                f"metrics: {', '.join(self.metrics())}"
            )
        sign = 1.0 if self.higher_is_better(metric) is False else -1.0

        def key(r):
            v = r["value"]
            return (math.isnan(v), sign * v if not math.isnan(v) else 0.0, r["method"])

        return [
            RankRow(r["method"], r.get("kind", "method"), float(r["value"]),
                    float(r["ci_low"]), float(r["ci_high"]), int(r["n"]), i + 1)
            for i, r in enumerate(sorted(rows, key=key))
        ]  # fmt: skip

    # -- cells ----------------------------------------------------------------------------
    def _cell_path(self, method: str, dataset: str | None, seed: int | None) -> Path:
        dataset, seed = self._check(dataset, seed)
        kind = self.kind(method)
        path = self.store.cell_path(CellKey(dataset, seed, method, kind))
        if not path.is_file():
            raise FileNotFoundError(f"no cell for {method!r} on {dataset} seed {seed}: {path}")
        return path

    def _read(self, read, *args):
        """``read(*args)`` with a damaged file's error saying how to mend it."""
        try:
            return read(*args)
        except CorruptRunError as exc:
            raise CorruptRunError(
                f"{exc}: rerun `squeezex bench --out {self.root}` with the same settings to "
                "rewrite it"
            ) from None

    def cell(self, method: str, dataset: str | None = None, seed: int | None = None) -> dict:
        """The cell record of ``method`` (checked against its digests)."""
        return self._read(self.store.record, self._cell_path(method, dataset, seed))

    def samples(
        self, method: str, metric: str, dataset: str | None = None, seed: int | None = None
    ) -> np.ndarray:
        """Per-sample scores of ``method`` on ``metric`` (one per test image)."""
        cell = self.cell(method, dataset, seed)
        if metric not in cell["samples"]:
            raise KeyError(
                f"{metric!r} has no per-sample scores for {method!r} "
                f"(per-sample: {', '.join(cell['samples'])})"
            )
        return np.asarray(cell["samples"][metric], dtype=np.float64)

    def best_worst(
        self, method: str, metric: str, k: int = 3, dataset: str | None = None, seed=None
    ) -> tuple[list[int], list[int]]:
        """Indices of the ``k`` best and ``k`` worst test images of ``method`` on ``metric``
        (by its better direction; ties broken by index; NaN scores left out). With more
        than half the images, the two lists share some.

        Raises:
            TypeError, ValueError: ``k`` is not an integer ≥ 0 (named).
        """
        k = check("k", k, Int(0))
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
        key = (*self._check(dataset, seed), method)
        if key not in self._maps:
            self._maps[key] = self._read(self.store.maps, self._cell_path(method, dataset, seed))
        return self._maps[key]

    def extra_maps(self, method: str, name: str, dataset: str | None = None,
                   seed: int | None = None, *, what: str | None = None,
                   check=None) -> torch.Tensor:  # fmt: skip
        """A cell's further maps ``name`` (written beside its maps by a task that has them,
        e.g. an audio-visual cell's ``"audio"``) as float N×1×… in [0, 1]. ``what`` names
        them in messages; ``check(maps, n)`` says what is wrong with them (``None``: they
        fit a cell of ``n`` samples).

        Raises:
            FileNotFoundError: the method has no cell here, or its cell no such maps.
            CorruptRunError: the file is damaged or does not fit the cell.
        """
        check = check or _check_extra_maps
        dataset, seed = self._check(dataset, seed)
        key = (dataset, seed, method, name)
        if key not in self._maps:
            n = self.cell(method, dataset, seed)["n"]
            cell = CellKey(dataset, seed, method, self.kind(method))
            path = self.store.extra_maps_path(cell, name)
            if not path.is_file():
                what = what or f"{name} maps"
                raise FileNotFoundError(
                    f"no {what} for {method!r} on {dataset} seed {seed}: {path}"
                )
            self._maps[key] = dequantise(self._read(self.store.load, path, lambda a: check(a, n)))
        return self._maps[key]

    def audio_maps(self, method: str, dataset: str | None = None, seed: int | None = None):
        """Audio-visual runs: the spectrogram maps of ``method``'s cell (its ``"audio"``
        further maps, :meth:`extra_maps`) as float N×1×mels×audio-frames in [0, 1].

        Raises:
            FileNotFoundError: the method has no cell here, or its cell no spectrogram maps
                (an image dataset, or a cell without maps such as ``feature-ablation``).
            CorruptRunError: the file is damaged or does not fit the cell.
        """
        return self.extra_maps(method, "audio", dataset, seed, what="spectrogram maps",
                               check=_check_audio_maps)  # fmt: skip

    def data(self, dataset: str | None = None) -> dict:
        """The test split: ``images`` (float N×C×H×W in [0, 1]), ``masks``, ``targets``,
        ``classes`` (and ``object_masks`` where the dataset has them). An audio-visual
        run's clips: ``images`` N×T×1×H×W, ``masks`` N×T×H×W, and ``audio``,
        ``frame_labels``, ``speech``, ``kinds``."""
        dataset, _ = self._check(dataset, None)
        if dataset not in self._data:
            d = dict(self._read(self.store.load, self.store.data_path(dataset), check_data))
            d["images"] = (
                d["images"].float() / 255 if d["images"].dtype == torch.uint8 else d["images"]
            )
            self._data[dataset] = d
        return self._data[dataset]

    def se_vectors(self, dataset: str | None = None, seed: int | None = None) -> dict:
        """``{"s": N×C SE vectors, "logits": N×C pre-sigmoid excitation}`` of the test set."""
        dataset, seed = self._check(dataset, seed)
        return self._read(self.store.load, self.store.se_path(dataset, seed), check_se)

    def interpretation(self, dataset: str | None = None, seed: int | None = None):
        """VEBI's :class:`~squeezex.explainers.Interpretation`, or ``None`` (no VEBI)."""
        from ..explainers.vebi import Interpretation

        dataset, seed = self._check(dataset, seed)
        path = self.store.vebi_path(dataset, seed)
        if not path.is_file():
            return None
        return Interpretation(**self._read(self.store.load, path, check_interpretation))

    def cost(self, dataset: str | None = None, seed: int | None = None) -> dict[str, float]:
        """Milliseconds per image of every method the run timed."""
        return {
            r["method"]: float(r["value"])
            for r in self.block(dataset, seed)
            if r["metric"] == "ms_per_image"
        }


def _check_extra_maps(a, n: int) -> str | None:
    """Further maps: an N×1×… tensor, one per sample of the cell."""
    if not isinstance(a, torch.Tensor) or a.dim() < 3 or a.shape[1] != 1:
        return "not N×1×… maps"
    if len(a) != n:
        return f"{len(a)} maps for a cell of {n} samples"
    return None


def _check_audio_maps(a, n: int) -> str | None:
    """Spectrogram maps: an N×1×mels×frames tensor, one per clip of the cell."""
    if not isinstance(a, torch.Tensor) or a.dim() != 4 or a.shape[1] != 1:
        return "not N×1×mels×frames spectrogram maps"
    if len(a) != n:
        return f"{len(a)} spectrogram maps for a cell of {n} clips"
    return None
