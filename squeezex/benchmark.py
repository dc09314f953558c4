"""The benchmark: train with and without SE, explain with every method, score every metric.

``run(BenchConfig(...))`` returns the results dictionary (the ``results.json`` schema) and
writes ``results.json`` (atomically), ``results.csv`` and ``examples.png`` to ``out``.
The reference maps (``centre``, ``silhouette``, ``oracle``) are always scored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .datasets import An8Flower
from .explainers import explainer_info, get_explainer, list_explainers
from .explainers.references import REFERENCES, centre_map, oracle_map, silhouette_map
from .geometry import feature_geometry
from .io import atomic_write_json, atomic_write_text
from .metrics import LOCALISATION, checkerboard_energy, stride_periods
from .models import build_model
from .se import find_se_block, layer_output_shape
from .training import evaluate, fit, load_checkpoint, save_checkpoint
from .viz import explanation_grid, save_figure

__all__ = ["BenchConfig", "run", "DATASETS", "DEFAULT_METHODS", "format_table", "bootstrap_ci"]

DATASETS = {
    # name: (variant, train images per class, test images per class)
    "an8flower-single-6c": ("single-6c", 200, 50),
    "an8flower-double-12c": ("double-12c", 100, 25),
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


@dataclass
class BenchConfig:
    """Everything a benchmark run depends on (saved in results.json)."""

    dataset: str = "an8flower-single-6c"
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    seed: int = 0
    seeds: int = 3
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
    n_examples: int = 6
    progress: bool = True

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}")
        if self.methods == ["all"]:
            self.methods = list_explainers()
        unknown = [m for m in self.methods if m not in list_explainers()]
        if unknown:
            raise ValueError(
                f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(list_explainers())}"
            )
        for name in ("seeds", "epochs", "batch_size", "n_examples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.size < 32:
            raise ValueError(f"size must be >= 32, got {self.size}")
        for name in ("n_train_per_class", "n_test_per_class"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if self.pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {self.pool!r}")
        if self.vebi_mu is not None and not self.vebi_mu > 0:
            raise ValueError(f"vebi_mu must be > 0, got {self.vebi_mu}")


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0):
    """Percentile bootstrap interval of the mean (own generator, global RNG untouched)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _datasets(cfg: BenchConfig):
    variant, n_train, n_test = DATASETS[cfg.dataset]
    n_train = cfg.n_train_per_class or n_train
    n_test = cfg.n_test_per_class or n_test
    train = An8Flower(variant, "train", n_per_class=n_train, size=cfg.size, seed=cfg.seed)
    test = An8Flower(variant, "test", n_per_class=n_test, size=cfg.size, seed=cfg.seed)
    return train, test


def _train(cfg: BenchConfig, train, se: bool, seed: int):
    model = build_model("small", len(train.classes), se=se, seed=seed, pool=cfg.pool)
    key = json.dumps(
        [
            cfg.dataset,
            cfg.size,
            len(train),
            cfg.epochs,
            cfg.batch_size,
            cfg.lr,
            cfg.pool,
            se,
            seed,
            cfg.seed,
        ],
    )
    tag = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = (
        Path(cfg.checkpoints) / f"{cfg.dataset}-{'se' if se else 'plain'}-{seed}-{tag}.pt"
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
        batch_size=cfg.batch_size,
        seed=seed,
        device=cfg.device,
        progress=cfg.progress,
        desc=f"train {'SE' if se else 'plain'} seed {seed}",
    )
    if path is not None:
        save_checkpoint(path, model, config=key)
    return model.eval(), result.seconds, path


def _explain(explainer, x, y, batch_size: int) -> tuple[torch.Tensor, float]:
    maps = []
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        maps.append(explainer.attribute(x[i : i + batch_size], target=y[i : i + batch_size]))
    return torch.cat(maps), (time.perf_counter() - start) * 1000 / len(x)


@torch.no_grad()
def _forward_ms(model, x, batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        model(x[i : i + batch_size])
    return (time.perf_counter() - start) * 1000 / len(x)


def _fit_method(cfg: BenchConfig, fit_fn, model, train, ckpt: Path | None):
    """Run a method's fit step (cached beside the model's checkpoint); returns the
    factory's keyword arguments and a summary for results.json."""
    import inspect

    options = {}
    if "mu" in inspect.signature(fit_fn).parameters:  # VEBI's budget
        options["mu"] = cfg.vebi_mu or VEBI_MU.get(cfg.dataset, 10.0)
    tag = "".join(f"-{k}{v:g}" for k, v in options.items())
    name = fit_fn.__name__.removeprefix("fit_")
    cache = ckpt.with_name(f"{ckpt.stem}-{name}{tag}.pt") if ckpt is not None else None
    start = time.perf_counter()
    kwargs = fit_fn(model, train, cache=cache, device=cfg.device, progress=cfg.progress, **options)
    summary = {"fit_seconds": time.perf_counter() - start, "cache": str(cache) if cache else None}
    for v in kwargs.values():
        if hasattr(v, "summary"):
            summary.update(v.summary())
    return kwargs, summary


def run(cfg: BenchConfig) -> dict:
    """Run the benchmark described by ``cfg``; returns the results dictionary."""
    out = Path(cfg.out)
    train, test = _datasets(cfg)
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    acc_se, acc_plain, train_seconds = [], [], []
    models = {}
    for s in seeds:
        for se in (True, False):
            model, secs, path = _train(cfg, train, se, s)
            (acc_se if se else acc_plain).append(evaluate(model, test, device=cfg.device))
            train_seconds.append(secs)
            if se and s == cfg.seed:
                models["se"] = model, path
    model, ckpt = models["se"]
    model = model.to(cfg.device)

    x = (test.images.float() / 255).to(cfg.device)
    y = test.targets.to(cfg.device)
    masks = test.masks
    bs = cfg.batch_size

    se_block = find_se_block(model)
    geometry = feature_geometry(model, se_block, x[:1])
    feature_size = layer_output_shape(model, se_block, x[:1])[2:]
    maps: dict[str, torch.Tensor] = {}
    timing = {"forward_ms_per_image": _forward_ms(model, x, bs)}
    fitted, fits = {}, {}
    for name in tqdm(cfg.methods, desc="explain", disable=not cfg.progress, leave=False):
        kwargs = {}
        fit_fn = explainer_info(name).fit
        if fit_fn is not None:  # one fit per fit function (vebi and vebi-nofix share it)
            if fit_fn not in fitted:
                fitted[fit_fn] = _fit_method(cfg, fit_fn, model, train, ckpt)
            kwargs, fits[name] = fitted[fit_fn]
        explainer = get_explainer(name, model, **kwargs)
        explainer.attribute(x[:2], target=y[:2])  # warm-up (geometry cache, allocator)
        maps[name], timing[f"{name}_ms_per_image"] = _explain(explainer, x, y, bs)
    refs = {
        "centre": centre_map(len(x), tuple(x.shape[-2:])),
        "silhouette": silhouette_map(test.object_masks),
        "oracle": oracle_map(masks, feature_size, geometry),
    }
    assert set(refs) == set(REFERENCES)

    periods = stride_periods(model, x[:1])
    metrics = {
        **{k: ("localisation", lambda m, f=f: f(m, masks)) for k, f in LOCALISATION.items()},
        "checkerboard": ("artifact", lambda m: checkerboard_energy(m, periods)),
    }
    rows = []
    for name, m in {**maps, **refs}.items():
        m = m.detach().cpu()
        for metric, (family, fn) in metrics.items():
            v = fn(m).numpy()
            lo, hi = bootstrap_ci(v)
            rows.append(
                {
                    "method": name,
                    "metric": metric,
                    "family": family,
                    "value": float(v.mean()),
                    "ci_low": lo,
                    "ci_high": hi,
                    "n": int(len(v)),
                    "kind": "reference" if name in refs else "method",
                }
            )

    results = {
        "dataset": cfg.dataset,
        "seed": cfg.seed,
        "n_train": len(train),
        "n_test": len(test),
        "model": {
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
        },
        "rows": rows,
        "fits": fits,
        "stride_periods": list(periods),
        "timing": timing,
        "config": asdict(cfg),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.csv", _csv(rows))
    idx = _example_indices(test, cfg.n_examples)
    fig = explanation_grid(
        x[idx].cpu(),
        {k: v[idx] for k, v in {**maps, **refs}.items()},
        masks[idx],
        row_labels=[test.classes[int(test.targets[i])] for i in idx],
    )
    save_figure(fig, out / "examples.png")
    return results


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
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def format_table(results: dict) -> str:
    """Methods × metrics, mean [95 % interval], references marked; accuracy and timing."""
    rows = results["rows"]
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    kind = {r["method"]: r.get("kind", "method") for r in rows}
    cell = {(r["method"], r["metric"]): r for r in rows}
    width = max(len(m) for m in methods) + 8
    head = f"{'method':<{width}}" + "".join(f"{m:>22}" for m in metrics) + f"{'ms/img':>9}"
    lines = [head, "-" * len(head)]
    for m in methods:
        label = m + (" (ref)" if kind[m] == "reference" else "")
        vals = []
        for k in metrics:
            r = cell[(m, k)]
            vals.append(f"{r['value']:.3f} [{r['ci_low']:.2f},{r['ci_high']:.2f}]".rjust(22))
        ms = results["timing"].get(f"{m}_ms_per_image")
        lines.append(
            f"{label:<{width}}" + "".join(vals) + (f"{ms:9.2f}" if ms is not None else " " * 9)
        )
    mo = results["model"]
    lines += [
        "",
        f"dataset {results['dataset']}  train {results['n_train']}  test {results['n_test']}  "
        f"seed {results['seed']}  model {mo['arch']}",
        f"test accuracy with SE {mo['accuracy_mean']:.3f} ± {mo['accuracy_sd']:.3f}, "
        f"without SE {mo['accuracy_without_se_mean']:.3f} ± {mo['accuracy_without_se_sd']:.3f} "
        f"(mean ± sd over seeds {mo['seeds']})",
        f"plain forward {results['timing']['forward_ms_per_image']:.2f} ms/img",
    ]
    if "stride_periods" in results:
        lines.append(
            f"checkerboard: share of spectral energy at the stride harmonics "
            f"(periods {results['stride_periods']} px; lower is better)"
        )
    shared: dict[str, list[str]] = {}  # methods sharing one fit get one line
    for name, info in results.get("fits", {}).items():
        if "relevant_per_class" in info:
            line = (
                f"μ = {info['mu']:g}, relevant features per class "
                f"{info['relevant_per_class']} of {info['n_features']}"
            )
            shared.setdefault(line, []).append(name)
    lines += [f"{', '.join(names)}: {line}" for line, names in shared.items()]
    return "\n".join(lines)
