"""A cell: one method (or reference map) on one (dataset, seed), explained and scored.

:class:`Unit` is what every cell of one (dataset, training seed) shares — the model, the
test split, the reference maps, the forward-pass timing and the methods' fit steps —
and :func:`compute_cell` turns a :class:`CellKey` into a :class:`Cell`: the maps, every
metric's per-sample values, the mean deletion/insertion curves, the timing, the fit
summary and the sanity curve. The store (:mod:`.store`) writes and reads cells.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import metrics as M
from ..common import quiet_empty_maps, stratified_indices
from ..explainers import explainer_info
from ..metrics.road import mean_height
from ..models.se import find_se_block
from .claims import Claim
from .config import BenchConfig
from .presets import smoke
from .stats import summarise

__all__ = ["CellKey", "Cell", "Unit", "compute_cell", "model_id", "fit_cache"]

#: Metrics computed on the first few test images only (not one value per test image).
SUBSET_METRICS = (
    "sanity_top",
    "sanity_all",
    "sanity_constant",
    "sensitivity",
    "road_morf",
    "road_lerf",
    "road",
)


@dataclass(frozen=True)
class CellKey:
    """Which cell: ``kind`` is ``"method"`` (a registered explainer) or ``"reference"``."""

    dataset: str
    seed: int
    method: str
    kind: str = "method"

    @property
    def id(self) -> str:
        return f"{self.dataset}/{self.seed}/{self.method}"


@dataclass
class Cell:
    """A finished cell. ``values``: metric → (family, per-sample values)."""

    key: CellKey
    values: dict[str, tuple[str, np.ndarray]]
    maps: torch.Tensor
    curves: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    fit: dict | None = None
    sanity: dict | None = None
    #: multi-label datasets: attribute → the indices of its (image, attribute) pairs
    groups: dict[str, list[int]] | None = None
    #: the model explained: its checkpoint's name (which holds the training key) and digest
    model: str | None = None
    #: the dataset spec's key (``DatasetSpec.key()``) when the cell was made
    spec: str | None = None
    #: the machine's load when the maps were timed (:func:`machine_load`)
    load: dict | None = None
    #: further maps, written beside the cell's (name → N×1×… in [0, 1]; e.g. an
    #: audio-visual cell's spectrogram maps under ``"audio"``)
    extra_maps: dict[str, torch.Tensor] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        k = self.key
        return [
            summarise(v, dataset=k.dataset, seed=k.seed, method=k.method, metric=name,
                      family=fam, kind=k.kind)
            for name, (fam, v) in self.values.items()
        ]  # fmt: skip

    def attribute_rows(self) -> list[dict]:
        """Per attribute (multi-label datasets): the rows of the metrics with one value
        per (image, attribute) pair, over that attribute's pairs; each carries an
        ``attribute`` field. Metrics computed on a subset (sanity, ROAD, sensitivity)
        and per-cell numbers (cost) have no per-attribute rows."""
        if not self.groups:
            return []
        k, n = self.key, len(self.maps)
        return [
            summarise(np.asarray(v, dtype=np.float64).reshape(-1)[idx], dataset=k.dataset,
                      seed=k.seed, method=k.method, metric=name, family=fam, kind=k.kind,
                      attribute=attr)
            for name, (fam, v) in self.values.items()
            if np.asarray(v).size == n and name not in SUBSET_METRICS
            for attr, idx in self.groups.items()
        ]  # fmt: skip

    def samples(self) -> dict[str, list[float]]:
        """Per-sample scores over every test image (for best and worst samples)."""
        n = len(self.maps)
        return {
            k: [float(v) for v in np.asarray(vals, dtype=np.float64).reshape(-1)]
            for k, (_, vals) in self.values.items()
            if np.asarray(vals).size == n and k not in SUBSET_METRICS
        }

    def record(self) -> dict:
        """What the store writes to the cell's json (the maps go to its ``.pt``)."""
        return {
            "key": {**self.key.__dict__},
            "n": len(self.maps),
            "rows": self.rows(),
            "attribute_rows": self.attribute_rows(),
            "samples": self.samples(),
            "curves": self.curves,
            "timing": self.timing,
            "fit": self.fit,
            "sanity": self.sanity,
            "model": self.model,
            "spec": self.spec,
            "load": self.load,
        }


@dataclass
class Unit:
    """What every cell of one (dataset, training seed) shares."""

    cfg: BenchConfig
    dataset: str
    seed: int
    model: nn.Module
    train: Any
    x: torch.Tensor
    y: torch.Tensor
    masks: torch.Tensor
    periods: tuple
    forward_ms: float
    references: dict[str, torch.Tensor]
    checkpoint: Path | None = None
    fits: dict = field(default_factory=dict)
    #: named ground-truth regions (N×1×H×W bool): a planted cue and the object, or the
    #: informative parts of the class (see :func:`_region_metrics`)
    regions: dict = field(default_factory=dict)
    #: how the faithfulness curves read the model: ``"softmax"`` or, for a multi-label
    #: model, ``"sigmoid"`` (each attribute's own probability)
    output: str = "softmax"
    #: multi-label datasets: attribute → the indices of its (image, attribute) pairs
    groups: dict[str, list[int]] | None = None
    #: the pointing game's slack in pixels (the dataset's ``pointing_tolerance``)
    pointing_tolerance: int = 0
    #: what the cells depend on besides the config and the model (``DatasetSpec.key()``)
    spec_key: str | None = None
    #: metric families this unit cannot score → why (no masks: no localisation)
    skipped_families: dict[str, str] = field(default_factory=dict)

    def keys(self, methods) -> list[CellKey]:
        """The method cells, then the reference cells."""
        return [CellKey(self.dataset, self.seed, m) for m in methods] + [
            CellKey(self.dataset, self.seed, r, "reference") for r in self.references
        ]

    def fit_kwargs(self, name: str) -> tuple[dict, dict | None]:
        """The factory keyword arguments of ``name``'s fit step (run once per fit
        function and unit, cached beside the checkpoint) and its summary."""
        fit_fn = explainer_info(name).fit
        if fit_fn is None:
            return {}, None
        if fit_fn not in self.fits:
            self.fits[fit_fn] = _run_fit(self, fit_fn)
        return self.fits[fit_fn]


def fit_cache(checkpoint: Path | None, fit_fn, options: dict) -> Path | None:
    """Where the fit ``fit_fn(model, …, **options)`` of a checkpoint's model is kept, beside
    the checkpoint (``None`` without one): ``<checkpoint>-<fit>-<option><value>….pt``."""
    if checkpoint is None:
        return None
    tag = "".join(f"-{k}{v:g}" for k, v in options.items())
    short = fit_fn.__name__.removeprefix("fit_")
    return checkpoint.with_name(f"{checkpoint.stem}-{short}{tag}.pt")


def _run_fit(unit: Unit, fit_fn) -> tuple[dict, dict]:
    cfg = unit.cfg
    options = {}
    if "mu" in inspect.signature(fit_fn).parameters:  # VEBI's budget
        options["mu"] = cfg.vebi_budget(unit.dataset)
    cache = fit_cache(unit.checkpoint, fit_fn, options)
    if cache is not None and not cfg.resume:
        cache.unlink(missing_ok=True)  # --fresh: fit again
    start = time.perf_counter()
    claim = Claim(cache.with_name(cache.name + ".claim")) if cache is not None else None
    if claim is not None:  # shards splitting a unit's cells fit once; the others wait and load
        claim.acquire(wait=True)
    try:
        kwargs = fit_fn(
            unit.model, unit.train, cache=cache, device=cfg.device, progress=cfg.progress,
            **options,
        )  # fmt: skip
    finally:
        if claim is not None:
            claim.release()
    summary = {"fit_seconds": time.perf_counter() - start, "cache": str(cache) if cache else None}
    for v in kwargs.values():
        if hasattr(v, "summary"):
            summary.update(v.summary())
    return kwargs, summary


def model_id(checkpoint: Path | None) -> str | None:
    """What a cell records of the model it explained: the checkpoint's name (which holds
    its training key) and the first 12 hex digits of its SHA-256, so a checkpoint retrained
    under the same name (deleted, or damaged and retrained) does not pass for the old one."""
    if checkpoint is None:
        return None
    import hashlib

    return f"{checkpoint.name}:{hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:12]}"


# -- computing a cell -------------------------------------------------------------------------
def not_applicable(unit: Unit, method: str) -> str | None:
    """Why ``method`` cannot explain this unit's model and inputs (its explainer's own
    ``unsupported`` reason, e.g. attention rollout on a CNN), or ``None``: a
    ``--methods all`` run skips such a method, and says so, rather than failing."""
    info = explainer_info(method)
    if not hasattr(info.factory, "unsupported"):
        return None
    kwargs, _ = unit.fit_kwargs(method)
    return info.build(unit.model, **kwargs).unsupported(unit.x[:1])


def compute_cell(unit: Unit, key: CellKey) -> Cell:
    """Explain the unit's test images with ``key.method`` (or take the reference map) and
    score every metric family of the run."""
    families = [f for f in unit.cfg.families if f not in unit.skipped_families]
    if key.kind == "reference":
        cell = Cell(key, {}, unit.references[key.method], groups=unit.groups)
        make = None
    else:
        kwargs, fit_summary = unit.fit_kwargs(key.method)

        def make(model, kwargs=kwargs):
            return explainer_info(key.method).build(model, **kwargs)

        explainer = make(unit.model)
        maps = _explain(explainer, unit)
        cell = Cell(key, {}, maps, fit=fit_summary, groups=unit.groups)
        cell.timing = time_against_forward(explainer, unit)
        cell.load = machine_load()
    cell.model = model_id(unit.checkpoint)
    cell.spec = unit.spec_key
    cell.values.update(_map_metrics(unit, cell.maps, families))
    if "faithfulness" in families:
        cell.values.update(_faithfulness(unit, cell.maps, make, cell.curves))
    if key.kind == "method" and "cost" in families:
        ms, fwd = cell.timing["ms_per_image"], cell.timing["forward_ms_per_image"]
        cell.values["ms_per_image"] = ("cost", np.array([ms]))
        cell.values["cost_ratio"] = ("cost", np.array([ms / max(fwd, 1e-9)]))
    if key.kind == "method" and "sanity" in families:
        cell.sanity = _sanity(unit, make, cell.values)
    return cell


def machine_load() -> dict:
    """The 1-minute load average and the cores this process may use, read just after a
    timing, and whether the machine was ``busy``: other work kept more than half of the
    cores busy. This process's own threads count in the load (up to the cores: a benchmark
    alone on the machine keeps its own cores busy), so the load beyond them is the other
    work's, and with it the times are inflated."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return {}
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity else os.cpu_count() or 1
    own = min(torch.get_num_threads(), cores)
    return {"load_1min": round(load, 2), "cores": cores, "busy": load - own > cores / 2}


def _explain(explainer, unit: Unit) -> torch.Tensor:
    """All test maps, in batches."""
    device, bs = unit.cfg.device, unit.cfg.batch_size
    x, y = unit.x.to(device), unit.y.to(device)
    maps = [
        explainer.attribute(x[i : i + bs], target=y[i : i + bs]).detach()
        for i in range(0, len(x), bs)
    ]
    return torch.cat(maps).cpu()


#: the timing's rounds: at most this many, and no new round once this many seconds passed
TIMING_ROUNDS, TIMING_BUDGET_S = 7, 1.5
#: the budget under ``SQUEEZEX_SMOKE=1`` (the tests' and CI notebooks' short runs, whose
#: cost rows are checked for their form, not read as measurements)
SMOKE_TIMING_BUDGET_S = 0.25


def time_against_forward(explainer, unit: Unit) -> dict:
    """Milliseconds per image of the explainer and of a plain ``no_grad`` forward pass on
    the same test batch, in alternating rounds (after a warm-up of each), as medians: a
    drift of the machine (frequency, other work) hits both alike, so their ratio holds.
    A single pass over a few hundred small images lasts a fraction of a second, and single
    passes timed apart varied so much from one cell to the next that methods came out
    cheaper than the forward pass they contain."""
    device, bs = unit.cfg.device, unit.cfg.batch_size
    x, y = unit.x[:bs].to(device), unit.y[:bs].to(device)
    model = unit.model
    explainer.attribute(x, target=y)  # warm-up (geometry cache, allocator)
    ex, fw = [], []
    budget = min(TIMING_BUDGET_S, SMOKE_TIMING_BUDGET_S) if smoke() else TIMING_BUDGET_S
    start = time.perf_counter()
    while len(ex) < TIMING_ROUNDS and (not ex or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        with torch.no_grad():
            model(x)
        t1 = time.perf_counter()
        explainer.attribute(x, target=y)
        t2 = time.perf_counter()
        fw.append(t1 - t0)
        ex.append(t2 - t1)
    per = 1000 / len(x)
    return {
        "ms_per_image": float(np.median(ex)) * per,
        "forward_ms_per_image": float(np.median(fw)) * per,
    }


def _map_metrics(unit: Unit, maps: torch.Tensor, families) -> dict:
    """The families that need only the maps (and the masks). With complexity,
    ``empty_map``: a map that is all zero or not finite is not an explanation (the
    explainer flags it), and the rows count them."""
    out = {}
    if "localisation" in families:
        for k, fn in M.LOCALISATION.items():
            kw = {"tolerance": unit.pointing_tolerance} if k == "pointing_game" else {}
            out[k] = ("localisation", fn(maps, unit.masks, **kw).numpy())
        out.update(_region_metrics(maps, unit.regions))
    if "artifact" in families:
        out["checkerboard"] = ("artifact", M.checkerboard_energy(maps, unit.periods).numpy())
    if "complexity" in families:
        flat = maps.flatten(1)
        empty = ~torch.isfinite(flat).all(1) | (flat.abs().amax(1) == 0)
        out["empty_map"] = ("complexity", empty.double().numpy())
        out["gini"] = ("complexity", M.gini(maps).numpy())
    return out


def _region_metrics(maps: torch.Tensor, regions: dict) -> dict:
    """Where the dataset names regions: relevance mass on a planted cue and on the object
    (cue datasets), or the coverage of the class's informative parts (two or more)."""
    if "cue" in regions:
        return {
            f"{name}_mass": (
                "localisation",
                _where_visible(M.relevance_mass_accuracy, maps, regions[name]),
            )
            for name in ("cue", "object")
            if name in regions
        }
    if len(regions) >= 2:
        parts = torch.cat([regions[k] for k in sorted(regions)], dim=1)
        return {"coverage": ("localisation", M.coverage(maps, parts).numpy())}
    return {}


def _where_visible(fn, maps: torch.Tensor, region: torch.Tensor) -> np.ndarray:
    """``fn(maps, region)`` on the samples whose region is visible, NaN on the others
    (an occluded part has no pixel to score)."""
    out = np.full(len(maps), np.nan)
    ok = region.flatten(1).any(1)
    if ok.any():
        out[ok.numpy()] = fn(maps[ok], region[ok]).numpy()
    return out


def _faithfulness(unit: Unit, maps: torch.Tensor, make, curves: dict) -> dict:
    """Deletion and insertion (their mean curves kept in ``curves``), infidelity, and the
    sensitivity of methods (reference maps have no explainer to perturb)."""
    cfg = unit.cfg
    x, y = unit.x.to(cfg.device), unit.y.to(cfg.device)
    m = maps.to(x.device)
    out = {}
    kw = {"steps": cfg.deletion_steps, "baseline": cfg.deletion_baseline, "output": unit.output}
    for mode, curve in (("deletion", M.deletion_curve), ("insertion", M.insertion_curve)):
        fractions, scores = curve(unit.model, x, m, y, **kw)
        auc = torch.trapezoid(scores, fractions, dim=1)
        out[f"{mode}_auc"] = ("faithfulness", auc.cpu().numpy())
        curves["fractions"] = fractions.tolist()
        curves[mode] = scores.mean(0).cpu().tolist()
    infid = M.infidelity_score(unit.model, x, m, y, baseline=cfg.deletion_baseline)
    out["infidelity"] = ("faithfulness", infid.cpu().numpy())
    out.update(_road(unit, m, curves))
    if make is not None:
        idx = stratified_indices(unit.y, cfg.n_sensitivity).to(x.device)
        with quiet_empty_maps():  # the maps of perturbed inputs: not this cell's maps
            vals = M.sensitivity_score(make(unit.model), x[idx], y[idx])
        out["sensitivity"] = ("faithfulness", vals.cpu().numpy())
    return out


def _road(unit: Unit, maps: torch.Tensor, curves: dict) -> dict:
    """ROAD's MoRF and LeRF on ``n_road`` test images (stratified by class), their
    difference, and the mean curves (in ``curves``)."""
    idx = stratified_indices(unit.y, unit.cfg.n_road)
    x, y = unit.x[idx].to(unit.cfg.device), unit.y[idx].to(unit.cfg.device)
    m = maps[idx].to(x.device)
    out = {}
    for order in ("morf", "lerf"):
        fractions, scores = M.road_curve(unit.model, x, m, y, order=order, output=unit.output)
        out[f"road_{order}"] = ("faithfulness", mean_height(fractions, scores).cpu().numpy())
        curves["road_fractions"] = fractions.tolist()
        curves[f"road_{order}"] = scores.mean(0).cpu().tolist()
    out["road"] = ("faithfulness", out["road_lerf"][1] - out["road_morf"][1])
    return out


def _sanity(unit: Unit, make, values: dict) -> dict:
    """Cascading randomisation on ``n_sanity`` test images (stratified by class).

    Adds ``sanity_top`` (Spearman after randomising the layers from the output down to
    and including the last convolution of the features, so the step touches what the
    maps are made of — not only the classifier, BatchNorm or the SE block's own 1×1
    convolutions),
    ``sanity_all`` (after every layer) and ``sanity_constant`` (the share of maps that
    became constant after every layer: they have no rank order, so they are counted here
    instead of scoring a flattering 0). Returns the mean curves and the layer names."""
    idx = stratified_indices(unit.y, unit.cfg.n_sanity)
    x, y = unit.x[idx].to(unit.cfg.device), unit.y[idx].to(unit.cfg.device)
    res = M.cascading_randomization(unit.model, make, x, y, seed=0, init=unit.cfg.sanity_init)
    sp = torch.as_tensor(res["spearman"]).float().numpy()
    ss = torch.as_tensor(res["ssim"]).float().numpy()
    kinds = res["kinds"]
    se = find_se_block(unit.model, required=False)
    own = {n for n, m in unit.model.named_modules() if se is not None and _within(m, se)}
    convs = [i for i, (n, k) in enumerate(zip(res["layers"], kinds, strict=True))
             if "Conv" in k and n not in own]  # fmt: skip
    top = convs[0] if convs else min(3, len(kinds)) - 1
    values["sanity_top"] = ("sanity", sp[top])
    values["sanity_all"] = ("sanity", sp[-1])
    values["sanity_constant"] = ("sanity", np.isnan(sp[-1]).astype(np.float64))
    return {
        "layers": [f"{n} ({k})" for n, k in zip(res["layers"], kinds, strict=True)],
        "top_step": top,
        "init": unit.cfg.sanity_init,
        "spearman": _finite_means(sp),
        "constant": np.isnan(sp).mean(1).tolist(),
        "ssim": _finite_means(ss),
    }


def _within(module: nn.Module, block: nn.Module) -> bool:
    return any(module is m for m in block.modules())


def _finite_means(a: np.ndarray) -> list[float]:
    """Row means over the finite values (NaN for a row with none)."""
    ok = np.isfinite(a)
    sums = np.where(ok, a, 0.0).sum(1)
    return [float(s / k) if k else float("nan") for s, k in zip(sums, ok.sum(1), strict=True)]
