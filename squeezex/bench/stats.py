"""Per-sample values → the tidy rows of a results table (mean and bootstrap interval)."""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_ci", "summarise", "ROW_FIELDS"]

#: The fields of every results row, in order.
ROW_FIELDS = (
    "dataset",
    "seed",
    "method",
    "metric",
    "family",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "kind",
)


def bootstrap_ci(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0):
    """Percentile bootstrap interval of the mean (own generator, global RNG untouched)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def summarise(values, **fields) -> dict:
    """One row: ``fields`` (dataset, seed, method, metric, family, kind) plus the mean of
    the finite ``values``, its 95 % bootstrap interval and how many values were finite."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    mean = float(finite.mean()) if len(finite) else float("nan")
    lo, hi = bootstrap_ci(v) if len(finite) > 1 else (mean, mean)
    row = {**fields, "value": mean, "ci_low": lo, "ci_high": hi, "n": int(len(finite))}
    out = {k: row[k] for k in ROW_FIELDS if k in row}
    if "attribute" in fields:  # per-attribute rows of a multi-label dataset
        out["attribute"] = fields["attribute"]
    return out
