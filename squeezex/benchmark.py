"""The benchmark harness: datasets × training seeds × methods × metrics → tidy rows.

``run(BenchConfig(...))`` trains (or loads) the models, runs each method's fit step (VEBI),
explains the test images with every method, scores every metric family, and returns the
results dictionary (the ``results.json`` schema). Work is done in **cells**, one per
(dataset, seed, method): each finished cell is written atomically under
``<out>/cells/<fingerprint>/`` and ``results.json`` is rewritten after it, so an
interrupted run loses at most the cell in progress, and a rerun with the same settings
reuses every finished cell (``resume=False`` recomputes). The reference maps (``centre``,
``silhouette``, ``oracle``) are cells too, in every localisation table.

Written to ``out``: ``results.json`` (atomic), ``results.csv``, ``results.tex`` (best value
per metric in bold) and ``examples.png``; and what figures and widgets read back
(:mod:`squeezex.runs`): each cell's per-sample scores and mean deletion/insertion curves
(``cells/<fingerprint>/<dataset>/<seed>/<method>.json``) and all its maps as uint8
(``….pt``), the test split (``data/<dataset>.pt``), the SE vectors of the test images
(``se/<dataset>-<seed>.pt``) and VEBI's average visualisations (``vebi/<dataset>-<seed>.pt``).

Metric families (``squeezex.metrics``): localisation (needs masks), artifact
(checkerboard), complexity (Gini), faithfulness (deletion/insertion AUC, infidelity,
sensitivity), sanity (cascading randomisation: rank correlation with the original maps),
cost (ms per image and its ratio to a plain forward pass).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .explainers import explainer_info, get_explainer, list_explainers
from .explainers.references import REFERENCES, centre_map, oracle_map, silhouette_map
from .geometry import feature_geometry
from .io import atomic_torch_save, atomic_write_json, atomic_write_text
from .models import build_model
from .se import find_se_block, layer_output_shape
from .training import evaluate, fit, load_checkpoint, save_checkpoint
from .viz import explanation_grid, save_figure

__all__ = [
    "BenchConfig",
    "run",
    "DATASETS",
    "DEFAULT_METHODS",
    "format_table",
    "latex_table",
    "bootstrap_ci",
]

SCHEMA_VERSION = 3

DATASETS = {
    # name: (generator, variant, train images per class, test images per class,
    #        training batch size or None for the config's)
    "an8flower-single-6c": ("an8flower", "single-6c", 200, 50, None),
    "an8flower-double-12c": ("an8flower", "double-12c", 100, 25, None),
    # Scenes: picking the class shape among distractors needs >= 150 images per class and
    # small batches (measured: 0.93 test accuracy at 200/class, batch 16; 0.3-0.4 at 100)
    "scenes-6c": ("scenes", None, 200, 50, 16),
}
#: VEBI's L1 budget μ per dataset: the paper's reference value for an8Flower.
VEBI_MU = {"an8flower-single-6c": 5.0, "an8flower-double-12c": 5.0}
DEFAULT_METHODS = [
    "se",
    "se-paper",
    "se-logit",
    "se-topk",
    "se-class",
    "gradcam",
    "vebi",
    "vebi-nofix",
    "random",
]
FAMILIES = ("localisation", "artifact", "complexity", "faithfulness", "sanity", "cost")


@dataclass
class BenchConfig:
    """Everything a benchmark run depends on (saved in results.json).

    ``dataset`` is one name or a comma-separated list; ``explain_seeds`` > 1 makes the
    training seed a dimension of the table (each seed's SE model is explained and scored).
    ``families`` picks metric families (default: all). ``n_sanity`` and
    ``n_sensitivity`` are the numbers of test images the two costliest metrics use.
    ``deletion_baseline`` is what deleted pixels become ("zero", "mean" or "blur"): zero by
    measurement — on an8Flower a blurred leaf keeps its colour, so the class survives
    deletion with "blur" and every map, random included, scores 0.98-0.99 deletion AUC
    (zero: SE 0.19, Grad-CAM 0.19, random 0.71, on 100 test images).
    """

    dataset: str = "an8flower-single-6c"
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    seed: int = 0
    seeds: int = 3
    explain_seeds: int = 1
    size: int = 64
    n_train_per_class: int | None = None
    n_test_per_class: int | None = None
    epochs: int = 12
    batch_size: int = 64
    lr: float = 3e-3
    pool: str = "max"
    device: str = "cpu"
    out: str = "data/runs/bench"
    checkpoints: str | None = "data/checkpoints"
    vebi_mu: float | None = None
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    deletion_steps: int = 20
    deletion_baseline: str = "zero"
    n_sensitivity: int = 32
    n_sanity: int = 16
    n_examples: int = 6
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        names = self.datasets
        unknown = [d for d in names if d not in DATASETS]
        if not names or unknown:
            raise ValueError(
                f"unknown dataset {', '.join(unknown) or repr(self.dataset)}; "
                f"choose from {', '.join(DATASETS)}"
            )
        if self.methods == ["all"]:
            self.methods = list_explainers()
        unknown = [m for m in self.methods if m not in list_explainers()]
        if unknown:
            raise ValueError(
                f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(list_explainers())}"
            )
        if not self.methods:
            raise ValueError("methods is empty")
        bad = [f for f in self.families if f not in FAMILIES]
        if bad:
            raise ValueError(f"unknown metric family {', '.join(bad)}; choose from {FAMILIES}")
        for name in ("seeds", "epochs", "batch_size", "n_examples", "explain_seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.explain_seeds > self.seeds:
            raise ValueError(
                f"explain_seeds ({self.explain_seeds}) must not exceed seeds ({self.seeds})"
            )
        for name in ("deletion_steps", "n_sensitivity", "n_sanity"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if self.size < 32:
            raise ValueError(f"size must be >= 32, got {self.size}")
        for name in ("n_train_per_class", "n_test_per_class"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if self.pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {self.pool!r}")
        if self.deletion_baseline not in ("zero", "mean", "blur"):
            raise ValueError(
                f"deletion_baseline must be 'zero', 'mean' or 'blur', got {self.deletion_baseline!r}"
            )
        if self.vebi_mu is not None and not self.vebi_mu > 0:
            raise ValueError(f"vebi_mu must be > 0, got {self.vebi_mu}")

    @property
    def datasets(self) -> list[str]:
        return [d.strip() for d in str(self.dataset).split(",") if d.strip()]

    def fingerprint(self) -> str:
        """What makes a finished cell reusable: everything but the method list and output."""
        keep = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("methods", "out", "progress", "resume", "dataset", "n_examples")
        }
        keep["schema"] = SCHEMA_VERSION
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0):
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


# -- data and models -----------------------------------------------------------------------------
def _datasets(cfg: BenchConfig, name: str):
    kind, variant, n_train, n_test, _ = DATASETS[name]
    n_train = cfg.n_train_per_class or n_train
    n_test = cfg.n_test_per_class or n_test
    if kind == "an8flower":
        from .datasets import An8Flower

        train = An8Flower(variant, "train", n_per_class=n_train, size=cfg.size, seed=cfg.seed)
        test = An8Flower(variant, "test", n_per_class=n_test, size=cfg.size, seed=cfg.seed)
    else:
        from .datasets import Scenes

        train = Scenes(n_train, size=cfg.size, split="train", seed=cfg.seed)
        test = Scenes(n_test, size=cfg.size, split="test", seed=cfg.seed)
    return train, test


def _train(cfg: BenchConfig, name: str, train, se: bool, seed: int):
    model = build_model("small", len(train.classes), se=se, seed=seed, pool=cfg.pool)
    batch_size = DATASETS[name][4] or cfg.batch_size
    key = json.dumps(
        [
            name,
            cfg.size,
            len(train),
            cfg.epochs,
            batch_size,
            cfg.lr,
            cfg.pool,
            se,
            seed,
            cfg.seed,
        ]
    )
    tag = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = (
        Path(cfg.checkpoints) / f"{name}-{'se' if se else 'plain'}-{seed}-{tag}.pt"
        if cfg.checkpoints
        else None
    )
    if path is not None and path.is_file():
        load_checkpoint(path, model)
        return model.eval(), 0.0, path
    result = fit(
        model,
        train,
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=batch_size,
        seed=seed,
        device=cfg.device,
        progress=cfg.progress,
        desc=f"train {name} {'SE' if se else 'plain'} seed {seed}",
    )
    if path is not None:
        save_checkpoint(path, model, config=key)
    return model.eval(), result.seconds, path


def _fit_method(cfg: BenchConfig, name: str, fit_fn, model, train, ckpt: Path | None):
    """Run a method's fit step (cached beside the model's checkpoint); returns the
    factory's keyword arguments and a summary for results.json."""
    import inspect

    options = {}
    if "mu" in inspect.signature(fit_fn).parameters:  # VEBI's budget
        options["mu"] = cfg.vebi_mu or VEBI_MU.get(name, 10.0)
    tag = "".join(f"-{k}{v:g}" for k, v in options.items())
    short = fit_fn.__name__.removeprefix("fit_")
    cache = ckpt.with_name(f"{ckpt.stem}-{short}{tag}.pt") if ckpt is not None else None
    start = time.perf_counter()
    kwargs = fit_fn(model, train, cache=cache, device=cfg.device, progress=cfg.progress, **options)
    summary = {"fit_seconds": time.perf_counter() - start, "cache": str(cache) if cache else None}
    for v in kwargs.values():
        if hasattr(v, "summary"):
            summary.update(v.summary())
    return kwargs, summary


def _explain(explainer, x, y, batch_size: int) -> tuple[torch.Tensor, float]:
    maps = []
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        maps.append(explainer.attribute(x[i : i + batch_size], target=y[i : i + batch_size]))
    return torch.cat(maps).detach().cpu(), (time.perf_counter() - start) * 1000 / len(x)


@torch.no_grad()
def _forward_ms(model, x, batch_size: int) -> float:
    model(x[:batch_size])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        model(x[i : i + batch_size])
    return (time.perf_counter() - start) * 1000 / len(x)


# -- metrics -------------------------------------------------------------------------------------
@dataclass
class _Context:
    """What a cell's metrics may read."""

    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    masks: torch.Tensor
    periods: tuple
    batch_size: int
    cfg: BenchConfig


def _metric_values(
    ctx: _Context, maps: torch.Tensor, make, name: str, families, curves: dict | None = None
) -> dict:
    """{metric: (family, per-sample values)} for one method's maps.

    ``make`` builds the method's explainer for a given model (``None`` for reference
    maps: the model-dependent sanity and sensitivity checks are skipped for them).
    ``curves``, if given, receives the mean deletion and insertion curves.
    """
    from . import metrics as M

    out: dict[str, tuple[str, np.ndarray]] = {}
    if "localisation" in families:
        for k, fn in M.LOCALISATION.items():
            out[k] = ("localisation", fn(maps, ctx.masks).numpy())
    if "artifact" in families:
        out["checkerboard"] = ("artifact", M.checkerboard_energy(maps, ctx.periods).numpy())
    if "complexity" in families and hasattr(M, "gini"):
        out["gini"] = ("complexity", M.gini(maps).numpy())
    if "faithfulness" in families and hasattr(M, "FAITHFULNESS"):
        x = ctx.x.to(ctx.cfg.device)
        kw = {"steps": ctx.cfg.deletion_steps, "baseline": ctx.cfg.deletion_baseline}
        for k, fn in M.FAITHFULNESS.items():
            if k in ("deletion_auc", "insertion_auc"):  # the curve once: its mean is kept
                mode = k.removesuffix("_auc")
                curve = M.deletion_curve if mode == "deletion" else M.insertion_curve
                fractions, scores = curve(ctx.model, x, maps.to(x.device), ctx.y.to(x.device), **kw)
                vals = torch.trapezoid(scores, fractions, dim=1)
                if curves is not None:
                    curves["fractions"] = fractions.tolist()
                    curves[mode] = scores.mean(0).tolist()
            else:
                vals = fn(ctx.model, x, maps.to(x.device), ctx.y.to(x.device))
            out[k] = ("faithfulness", torch.as_tensor(vals).detach().cpu().numpy())
        if make is not None and hasattr(M, "sensitivity_score"):
            n = min(ctx.cfg.n_sensitivity, len(ctx.x))
            vals = M.sensitivity_score(make(ctx.model), x[:n], ctx.y[:n].to(x.device))
            out["sensitivity"] = ("faithfulness", torch.as_tensor(vals).cpu().numpy())
    return out


def _sanity(ctx: _Context, make) -> dict | None:
    from . import metrics as M

    if not hasattr(M, "cascading_randomization"):
        return None
    n = min(ctx.cfg.n_sanity, len(ctx.x))
    x = ctx.x[:n].to(ctx.cfg.device)
    res = M.cascading_randomization(ctx.model, make, x, ctx.y[:n].to(x.device), seed=0)
    sp = torch.as_tensor(res["spearman"]).float()
    ss = torch.as_tensor(res["ssim"]).float()
    return {
        "layers": list(res["layers"]),
        "spearman": sp.nan_to_num(0.0).numpy(),  # a constant map has lost all structure
        "ssim": ss.nan_to_num(0.0).numpy(),
    }


def _rows(values: dict, *, dataset: str, seed: int, method: str, kind: str) -> list[dict]:
    rows = []
    for metric, (family, v) in values.items():
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        finite = v[np.isfinite(v)]
        mean = float(finite.mean()) if len(finite) else float("nan")
        lo, hi = bootstrap_ci(v) if len(finite) > 1 else (mean, mean)
        rows.append(
            {
                "dataset": dataset,
                "seed": seed,
                "method": method,
                "metric": metric,
                "family": family,
                "value": mean,
                "ci_low": lo,
                "ci_high": hi,
                "n": int(len(finite)),
                "kind": kind,
            }
        )
    return rows


# -- the harness ---------------------------------------------------------------------------------
def run(cfg: BenchConfig) -> dict:
    """Run the benchmark described by ``cfg``; returns the results dictionary."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cells_dir = out / "cells" / cfg.fingerprint()
    state = {"rows": [], "models": {}, "fits": {}, "timing": {}, "sanity": {}, "cells": []}
    examples: dict = {}

    for dname in cfg.datasets:
        train, test = _datasets(cfg, dname)
        seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
        explain = seeds[: cfg.explain_seeds]
        acc_se, acc_plain, train_seconds, se_models = [], [], [], {}
        for s in seeds:
            for se in (True, False):
                model, secs, path = _train(cfg, dname, train, se, s)
                (acc_se if se else acc_plain).append(evaluate(model, test, device=cfg.device))
                train_seconds.append(secs)
                if se and s in explain:
                    se_models[s] = (model.to(cfg.device), path)
        state["models"][dname] = _model_summary(cfg, seeds, acc_se, acc_plain, train_seconds)
        state.setdefault("sizes", {})[dname] = (len(train), len(test))

        x = test.images.float() / 255
        y = test.targets
        masks = test.masks
        bs = cfg.batch_size
        save_test_data(out / "data" / f"{dname}.pt", test)
        for s in explain:
            model, ckpt = se_models[s]
            xd = x.to(cfg.device)
            se_block = find_se_block(model)
            geometry = feature_geometry(model, se_block, xd[:1])
            feature_size = layer_output_shape(model, se_block, xd[:1])[2:]
            from .metrics import stride_periods

            ctx = _Context(model, x, y, masks, stride_periods(model, xd[:1]), bs, cfg)
            fwd_ms = _forward_ms(model, xd, bs)
            se_path = out / "se" / f"{dname}-{s}.pt"
            if not se_path.is_file():
                atomic_torch_save(_se_vectors(model, xd, bs), se_path)
            state["timing"][f"{dname}/{s}/forward_ms_per_image"] = fwd_ms
            refs = {
                "centre": centre_map(len(x), tuple(x.shape[-2:])),
                "oracle": oracle_map(masks, feature_size, geometry),
            }
            if hasattr(test, "object_masks"):
                refs["silhouette"] = silhouette_map(test.object_masks)
            assert set(refs) <= set(REFERENCES)
            fitted: dict = {}
            todo = [(m, "method") for m in cfg.methods] + [(r, "reference") for r in refs]
            bar = tqdm(todo, desc=f"{dname} seed {s}", disable=not cfg.progress, leave=False)
            for name, kind in bar:
                bar.set_postfix_str(name)
                key = f"{dname}/{s}/{name}"
                cell_path = cells_dir / dname / str(s) / f"{name}.json"
                maps_path = cell_path.with_suffix(".pt")
                cell = _load_cell(cell_path) if cfg.resume else None
                if cell is None:
                    cell = _compute_cell(
                        cfg, ctx, dname, s, name, kind, refs, train, ckpt, fitted, fwd_ms
                    )
                    atomic_torch_save(quantise(cell.pop("_maps")), maps_path)
                    atomic_write_json(cell_path, cell)
                    cell["reused"] = False
                else:
                    cell["reused"] = True
                state["rows"] += cell["rows"]
                state["timing"].update(cell["timing"])
                if cell.get("fit"):
                    state["fits"][name] = cell["fit"]
                if cell.get("sanity"):
                    state["sanity"][key] = cell["sanity"]
                state["cells"].append({"key": key, "reused": cell["reused"]})
                if dname == cfg.datasets[0] and s == explain[0]:
                    idx = _example_indices(test, cfg.n_examples)
                    examples[name] = dequantise(torch.load(maps_path, weights_only=True)[idx])
                results = _results(cfg, state)
                atomic_write_json(out / "results.json", results)  # after every cell
            _save_interpretation(cfg, out, dname, s, model, train, ckpt, fitted)
        if dname == cfg.datasets[0]:
            idx = _example_indices(test, cfg.n_examples)
            fig = explanation_grid(
                x[idx],
                examples,
                masks[idx],
                row_labels=[test.classes[int(test.targets[i])] for i in idx],
            )
            save_figure(fig, out / "examples.png")

    results = _results(cfg, state)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.csv", _csv(results["rows"]))
    atomic_write_text(out / "results.tex", latex_table(results))
    return results


def _compute_cell(cfg, ctx, dname, seed, name, kind, refs, train, ckpt, fitted, fwd_ms) -> dict:
    timing, fit_summary, sanity = {}, None, None
    if kind == "reference":
        maps, make = refs[name], None
    else:
        kwargs = {}
        fit_fn = explainer_info(name).fit
        if fit_fn is not None:  # one fit per fit function (vebi and vebi-nofix share it)
            if fit_fn not in fitted:
                fitted[fit_fn] = _fit_method(cfg, dname, fit_fn, ctx.model, train, ckpt)
            kwargs, fit_summary = fitted[fit_fn]

        def make(model, kwargs=kwargs):
            return get_explainer(name, model, **kwargs)

        explainer = make(ctx.model)
        xd = ctx.x.to(cfg.device)
        yd = ctx.y.to(cfg.device)
        explainer.attribute(xd[:2], target=yd[:2])  # warm-up (geometry cache, allocator)
        maps, ms = _explain(explainer, xd, yd, ctx.batch_size)
        timing[f"{dname}/{seed}/{name}_ms_per_image"] = ms
    curves: dict = {}
    values = _metric_values(ctx, maps, make, name, cfg.families, curves)
    if kind == "method" and "cost" in cfg.families:
        ms = timing[f"{dname}/{seed}/{name}_ms_per_image"]
        values["ms_per_image"] = ("cost", np.array([ms]))
        values["cost_ratio"] = ("cost", np.array([ms / max(fwd_ms, 1e-9)]))
    if kind == "method" and "sanity" in cfg.families:
        sanity = _sanity(ctx, make)
        if sanity is not None:
            k = min(3, len(sanity["layers"]))
            values["sanity_top"] = ("sanity", sanity["spearman"][k - 1])
            values["sanity_all"] = ("sanity", sanity["spearman"][-1])
            sanity = {
                "layers": sanity["layers"],
                "spearman": sanity["spearman"].mean(1).tolist(),
                "ssim": sanity["ssim"].mean(1).tolist(),
            }
    rows = _rows(values, dataset=dname, seed=seed, method=name, kind=kind)
    n = len(ctx.x)
    samples = {  # per-sample scores (for best/worst samples), not the per-run ones
        k: [float(v) for v in np.asarray(vals, dtype=np.float64).reshape(-1)]
        for k, (_, vals) in values.items()
        if np.asarray(vals).size == n and k not in ("sanity_top", "sanity_all", "sensitivity")
    }
    return {
        "rows": rows,
        "timing": timing,
        "fit": fit_summary,
        "sanity": sanity,
        "samples": samples,
        "curves": curves,
        "_maps": maps,
    }


def quantise(maps: torch.Tensor) -> torch.Tensor:
    """Heatmaps in [0, 1] as uint8 (a quarter of the bytes; 1/255 steps)."""
    return (maps.detach().cpu().float().clamp(0, 1) * 255).round().to(torch.uint8)


def dequantise(maps: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`quantise` (float maps pass through)."""
    return maps.float() / 255 if maps.dtype == torch.uint8 else maps.float()


def save_test_data(path: Path, test) -> None:
    """The test split a run explains (uint8 images, masks, labels, class names), once."""
    if path.is_file():
        return
    data = {
        "images": test.images.clone(),
        "masks": test.masks.clone(),
        "targets": test.targets.clone(),
        "classes": list(test.classes),
    }
    if hasattr(test, "object_masks"):
        data["object_masks"] = test.object_masks.clone()
    atomic_torch_save(data, path)


@torch.no_grad()
def _se_vectors(model, x, batch_size: int) -> dict:
    from .explainers import SEAttribution

    se = SEAttribution(model)
    s, logits = [], []
    for i in range(0, len(x), batch_size):
        v = se.se_vector(x[i : i + batch_size], selection="paper")
        s.append(v.s.cpu())
        logits.append(v.logits.cpu())
    return {"s": torch.cat(s), "logits": torch.cat(logits)}


def _save_interpretation(cfg, out: Path, dname: str, seed: int, model, train, ckpt, fitted):
    """VEBI's class × feature average visualisations, when a VEBI method ran (once)."""
    from .explainers.vebi import interpret

    path = out / "vebi" / f"{dname}-{seed}.pt"
    names = [m for m in cfg.methods if m.startswith("vebi")]
    if not names or path.is_file():
        return
    fit_fn = explainer_info(names[0]).fit
    if fit_fn not in fitted:  # cells reused: the fit itself is cached beside the checkpoint
        fitted[fit_fn] = _fit_method(cfg, dname, fit_fn, model, train, ckpt)
    relevant = fitted[fit_fn][0].get("relevant")
    if relevant is None:
        return
    interp = interpret(
        model,
        relevant,
        train,
        class_names=list(train.classes),
        device=cfg.device,
        progress=cfg.progress,
    )
    atomic_torch_save(asdict(interp), path)


def _load_cell(path: Path) -> dict | None:
    if not path.is_file() or not path.with_suffix(".pt").is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _model_summary(cfg, seeds, acc_se, acc_plain, train_seconds) -> dict:
    return {
        "arch": f"SmallCNN(stride=4, pool={cfg.pool}) + SE(r=16)",
        "accuracy": acc_se[0],
        "accuracy_without_se": acc_plain[0],
        "seeds": seeds,
        "accuracy_per_seed": acc_se,
        "accuracy_without_se_per_seed": acc_plain,
        "accuracy_mean": statistics.fmean(acc_se),
        "accuracy_sd": statistics.stdev(acc_se) if len(acc_se) > 1 else 0.0,
        "accuracy_without_se_mean": statistics.fmean(acc_plain),
        "accuracy_without_se_sd": statistics.stdev(acc_plain) if len(acc_plain) > 1 else 0.0,
        "train_seconds": train_seconds,
    }


def _results(cfg: BenchConfig, state: dict) -> dict:
    first = cfg.datasets[0]
    models = state["models"]
    timing = dict(state["timing"])
    # the first dataset's seed-0 timings also under their short names (the v1 schema)
    prefix = f"{first}/{cfg.seed}/"
    timing.update({k[len(prefix) :]: v for k, v in state["timing"].items() if k.startswith(prefix)})
    from . import metrics

    return {
        "schema": SCHEMA_VERSION,
        "dataset": first,
        "datasets": cfg.datasets,
        "seed": cfg.seed,
        "n_train": state.get("sizes", {}).get(first, (None, None))[0],
        "n_test": state.get("sizes", {}).get(first, (None, None))[1],
        "model": models.get(first, {}),
        "models": models,
        "rows": state["rows"],
        "higher_is_better": getattr(metrics, "HIGHER_IS_BETTER", {}),
        "fits": state["fits"],
        "sanity": state["sanity"],
        "timing": timing,
        "cells": state["cells"],
        "cells_dir": f"cells/{cfg.fingerprint()}",
        "config": asdict(cfg),
    }


def _example_indices(dataset, n: int) -> list[int]:
    """One test image per class, for as many classes as ``n`` allows."""
    seen, idx = set(), []
    for i, t in enumerate(dataset.targets.tolist()):
        if t not in seen:
            seen.add(t)
            idx.append(i)
        if len(idx) == n:
            break
    return idx


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


# -- tables --------------------------------------------------------------------------------------
def _blocks(results: dict):
    """Rows grouped by (dataset, seed), in order."""
    blocks: dict[tuple, list[dict]] = {}
    for r in results["rows"]:
        blocks.setdefault((r.get("dataset", results["dataset"]), r.get("seed", 0)), []).append(r)
    return blocks


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"


def format_table(results: dict, families: list[str] | None = None, intervals: bool = True) -> str:
    """Methods × metrics per (dataset, seed), one block per metric family: mean
    [95 % interval]; references marked (they take no part in model-only families)."""
    lines = []
    for (dname, seed), rows in _blocks(results).items():
        lines.append(f"== {dname}, seed {seed} ==")
        present = list(dict.fromkeys(r.get("family", "localisation") for r in rows))
        for fam in [f for f in FAMILIES if f in present] + [
            f for f in present if f not in FAMILIES
        ]:
            if families is not None and fam not in families:
                continue
            lines += _family_table(
                [r for r in rows if r.get("family", "localisation") == fam], fam, intervals
            )
        mo = results.get("models", {}).get(dname) or results.get("model", {})
        if mo:
            lines.append(
                f"test accuracy with SE {mo['accuracy_mean']:.3f} ± {mo['accuracy_sd']:.3f}, "
                f"without SE {mo['accuracy_without_se_mean']:.3f} ± "
                f"{mo['accuracy_without_se_sd']:.3f} (mean ± sd over seeds {mo['seeds']})"
            )
        fwd = results["timing"].get(f"{dname}/{seed}/forward_ms_per_image")
        if fwd is not None:
            lines.append(f"plain forward {fwd:.2f} ms/img")
        lines.append("")
    hib = results.get("higher_is_better", {})
    lower = sorted(k for k, v in hib.items() if v is False)
    if lower:
        lines.append(f"lower is better: {', '.join(lower)}; intervals: 95 % bootstrap")
    shared: dict[str, list[str]] = {}  # methods sharing one fit get one line
    for name, info in results.get("fits", {}).items():
        if info and "relevant_per_class" in info:
            line = (
                f"μ = {info['mu']:g}, relevant features per class "
                f"{info['relevant_per_class']} of {info['n_features']}"
            )
            shared.setdefault(line, []).append(name)
    lines += [f"{', '.join(names)}: {line}" for line, names in shared.items()]
    return "\n".join(lines).rstrip()


def _family_table(rows: list[dict], family: str, intervals: bool) -> list[str]:
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    kind = {r["method"]: r.get("kind", "method") for r in rows}
    cell = {(r["method"], r["metric"]): r for r in rows}
    width = max(len(m) for m in methods) + 7
    col = max(22 if intervals else 10, max(len(m) for m in metrics) + 2)
    head = f"{family:<{width}}" + "".join(f"{m:>{col}}" for m in metrics)
    out = [head, "-" * len(head)]
    for m in methods:
        label = m + (" (ref)" if kind[m] == "reference" else "")
        vals = []
        for k in metrics:
            r = cell.get((m, k))
            if r is None:
                vals.append(" " * col)
            elif intervals and r["ci_low"] != r["ci_high"]:
                vals.append(
                    f"{_fmt(r['value'])} [{_fmt(r['ci_low'])},{_fmt(r['ci_high'])}]".rjust(col)
                )
            else:
                vals.append(_fmt(r["value"]).rjust(col))
        out.append(f"{label:<{width}}" + "".join(vals))
    out.append("")
    return out


def latex_table(results: dict) -> str:
    """A LaTeX (booktabs) table per (dataset, seed): methods × metrics, the best method
    value per metric in bold (by the metric's direction; references are not ranked)."""
    hib = results.get("higher_is_better", {})
    parts = []
    for (dname, seed), rows in _blocks(results).items():
        metrics = list(dict.fromkeys(r["metric"] for r in rows))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        kind = {r["method"]: r.get("kind", "method") for r in rows}
        cell = {(r["method"], r["metric"]): r for r in rows}
        best = {}
        for k in metrics:
            direction = hib.get(k)
            cands = [
                cell[(m, k)]["value"]
                for m in methods
                if kind[m] == "method" and (m, k) in cell and math.isfinite(cell[(m, k)]["value"])
            ]
            if direction is not None and cands:
                best[k] = max(cands) if direction else min(cands)
        esc = lambda s: s.replace("_", r"\_").replace("%", r"\%")  # noqa: E731
        lines = [
            r"\begin{table}[t]",
            r"\centering\small",
            rf"\caption{{{esc(dname)}, seed {seed}: mean over test images (95\,\% bootstrap "
            r"interval in the CSV). Best method per metric in bold.}",
            r"\begin{tabular}{l" + "r" * len(metrics) + "}",
            r"\toprule",
            "method & " + " & ".join(esc(k) for k in metrics) + r" \\",
            r"\midrule",
        ]
        for m in methods:
            cells = []
            for k in metrics:
                r = cell.get((m, k))
                if r is None:
                    cells.append("")
                    continue
                s = _fmt(r["value"])
                if kind[m] == "method" and k in best and r["value"] == best[k]:
                    s = rf"\textbf{{{s}}}"
                cells.append(s)
            label = esc(m) + (" (ref)" if kind[m] == "reference" else "")
            lines.append(label + " & " + " & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)
