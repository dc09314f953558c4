"""The study across architectures the paper's claims need: is the SE explanation as good,
as free and as much "its own" on a ResNet, a ConvNeXt and a ViT as on the SmallCNN?

Why: every headline number of squeezex came from one 4-layer CNN. This trains each
registered architecture (``squeezex bench --arch``: small, resnet, convnext, vit) from
scratch on the default datasets (an8flower-hard, scenes-6c) with and without SE, three
training seeds, and explains and scores **every** seed (one seed is not the model), then
squeezes each model trained without SE (:func:`squeezex.squeeze`, the SE block alone, five
epochs) and scores that too. Per architecture it reports: test accuracy with SE, without,
and squeezed (mean ± sd over seeds); the methods' localisation, faithfulness and sanity
as the mean over seeds with the spread across seeds beside it (sd, min–max) and the mean
within-seed 95 % bootstrap interval; SE against activation-mean (per-image correlation,
paired difference); the SE-vector diagnostics (does s vary across images?); and cost.
Printed and written to ``benchmarks/archs.json``; the run folders are kept in
``data/runs/archs/`` and the models in ``data/checkpoints/`` (a rerun reuses them).

    make bench-archs                                  # the study (~1 h on 2 cores)
    python benchmarks/archs.py --archs resnet --seeds 1 --datasets scenes-6c   # a look
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
METHODS = ["se", "activation-mean", "gradcam", "random"]
FAMILIES = ["localisation", "faithfulness", "sanity", "complexity", "cost"]
#: the metrics the docs' table shows, one or two per family
#: (architecture, dataset) pairs the study leaves out, and why (measured)
SKIP = {
    ("vit", "scenes-6c"): "no ViT configuration learned scenes-6c from scratch here: test "
    "accuracy 0.15–0.19 (chance 0.167) with 8-px patches or a convolutional stem, 12 or 30 "
    "epochs, lr 1e-3 or 3e-4, the class token or a max over the tokens read (single-seed "
    "probes); explanations of a model that learned nothing measure nothing",
}
#: started first, so that the last to finish is not a long one alone (measured: training
#: resnet ≈ 2× the others on one thread)
LONGEST_FIRST = ["resnet", "vit", "small", "convnext"]
SHOWN = ["pointing_game", "relevance_mass", "deletion_auc", "road", "sanity_top", "ms_per_image"]


def run_arch(arch: str, args) -> dict:
    """Train, explain and score one architecture (a worker process: one torch thread)."""
    import torch

    torch.set_num_threads(1)
    from squeezex.bench import preset, run

    start = time.perf_counter()
    small = {"n_train_per_class": args.n_train, "n_test_per_class": args.n_test}
    small = {k: v for k, v in small.items() if v} | ({"epochs": args.epochs} if args.epochs else {})
    datasets = ",".join(d for d in args.datasets.split(",") if (arch, d) not in SKIP)
    cfg = preset("full", arch=arch, dataset=datasets, seeds=args.seeds,
                 explain_seeds=args.seeds, methods=METHODS, families=FAMILIES,
                 out=str(Path(args.runs) / arch), progress=False, **small)  # fmt: skip
    results = run(cfg)
    out = {"arch": arch, "trained": summarise(results), "seconds_trained": None,
           "skipped": {d: why for (a, d), why in SKIP.items() if a == arch}}  # fmt: skip
    out["seconds_trained"] = time.perf_counter() - start
    squeezed = {}
    for dataset in cfg.datasets:
        for i, seed in enumerate(cfg.train_seeds):
            squeezed[f"{dataset}/{seed}"] = squeeze_one(cfg, dataset, seed, args.squeeze_epochs,
                                                        score=i < args.score_squeezed)  # fmt: skip
    out["squeezed"] = squeezed
    out["seconds"] = time.perf_counter() - start
    return out


def squeeze_one(cfg, dataset: str, seed: int, epochs: int, score: bool = True) -> dict:
    """Squeeze the model ``cfg`` trained without SE on ``dataset`` for ``seed`` (the SE
    block alone; kept as a checkpoint that rebuilds, reused on a rerun) and, with
    ``score``, score it like the others (``squeezex bench --model``)."""
    from squeezex import squeeze
    from squeezex.bench import BenchConfig, run
    from squeezex.bench.models import load_model, load_or_train, splits
    from squeezex.datasets import get_dataset
    from squeezex.models.records import arch_record
    from squeezex.training import save_checkpoint

    train, test = splits(cfg, dataset)
    plain, _, path = load_or_train(cfg, get_dataset(dataset), train, False, seed)
    ckpt = Path(cfg.checkpoints) / "squeezed" / f"{Path(path).stem}-se{epochs}.pt"
    if ckpt.is_file():
        report = load_model(ckpt)[1]["squeezed"]
    else:
        model, rep = squeeze(plain, train, train="se", epochs=epochs, val_data=test, seed=seed,
                             progress=False)  # fmt: skip
        report = rep.to_dict()
        record = arch_record(f"squeezex:{cfg.arch}", model, classes=list(train.classes),
                             size=cfg.size, pool=cfg.pool, dataset=dataset, squeezed=report)  # fmt: skip
        save_checkpoint(ckpt, model, arch=record)
    out = {k: report[k] for k in ("accuracy_original", "accuracy_squeezed",
                                  "identity_max_abs_diff", "frozen_unchanged", "seconds")}  # fmt: skip
    out["se_vector"] = report["se_vector"]
    if score:
        scored = BenchConfig(**{**_fields(cfg), "model": str(ckpt), "dataset": dataset,
                                "out": str(Path(cfg.out) / f"squeezed-{dataset}-{seed}")})  # fmt: skip
        results = run(scored)
        out.update(rows=[r for r in results["rows"] if r["kind"] == "method"],
                   se_vs_activation_mean=results["se_vs_activation_mean"],
                   se_diagnostics=results["se_diagnostics"])  # fmt: skip
    return out


def _fields(cfg) -> dict:
    from dataclasses import asdict

    keep = asdict(cfg)
    keep.update(seeds=1, explain_seeds=1, arch="small")
    return keep


def summarise(results: dict) -> dict:
    """Per (method, metric): the mean over seeds (of each seed's mean over test images),
    the spread across seeds and the mean within-seed interval, pooled over datasets per
    dataset; plus accuracy, SE against activation-mean and the SE-vector diagnostics."""
    cells: dict = {}
    for r in results["rows"]:
        if r["kind"] != "method":
            continue
        cells.setdefault((r["dataset"], r["method"], r["metric"]), []).append(r)
    metrics = {}
    for (dataset, method, metric), rows in cells.items():
        values = [r["value"] for r in rows if r["value"] is not None and math.isfinite(r["value"])]
        if not values:
            continue
        metrics.setdefault(dataset, {}).setdefault(method, {})[metric] = spread(values, rows)
    return {
        "models": {d: _accuracy(m) for d, m in results["models"].items()},
        "metrics": metrics,
        "se_vs_activation_mean": results["se_vs_activation_mean"],
        "se_diagnostics": results["se_diagnostics"],
        "normalisation": results.get("normalisation"),
        "arch": results.get("arch"),
    }


def spread(values: list[float], rows: list[dict]) -> dict:
    """Mean over seeds, sd and min–max across seeds, mean within-seed 95 % interval."""
    lows = [r["ci_low"] for r in rows if r.get("ci_low") is not None]
    highs = [r["ci_high"] for r in rows if r.get("ci_high") is not None]
    return {
        "mean": statistics.fmean(values),
        "sd_seeds": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "per_seed": values,
        "ci_within": [statistics.fmean(lows), statistics.fmean(highs)] if lows else None,
    }


def _accuracy(m: dict) -> dict:
    keys = ("accuracy_per_seed", "accuracy_without_se_per_seed", "accuracy_mean",
            "accuracy_sd", "accuracy_without_se_mean", "accuracy_without_se_sd",
            "train_seconds")  # fmt: skip
    return {k: m.get(k) for k in keys}


def table(study: dict) -> str:
    """The study's tables, from its JSON (``--report`` prints them; ``benchmarks/tables.py``
    renders them into the docs)."""
    lines = ["**Accuracy** (test, mean ± sd over the seeds; squeezed: the no-SE model with "
             "the SE block trained alone)", "",
             "| architecture | dataset | with SE | without SE | squeezed | with − without, "
             "paired by seed [95 % t-interval] | squeezed − original |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for arch, a in study["archs"].items():
        for dataset in study["datasets"]:
            m = a["trained"]["models"].get(dataset)
            if not m:
                if why := a.get("skipped", {}).get(dataset):
                    lines.append(f"| {arch} | {dataset} | not run: {why} | | | | |")
                continue
            sq = [v["accuracy_squeezed"] for k, v in a["squeezed"].items() if k.startswith(dataset)]
            gap = [x - y for x, y in zip(m["accuracy_per_seed"],
                                         m["accuracy_without_se_per_seed"], strict=True)]  # fmt: skip
            dsq = [v["accuracy_squeezed"] - v["accuracy_original"]
                   for k, v in a["squeezed"].items() if k.startswith(dataset)]  # fmt: skip
            lines.append(f"| {arch} | {dataset} | {m['accuracy_mean']:.3f} ± {m['accuracy_sd']:.3f} "
                         f"| {m['accuracy_without_se_mean']:.3f} ± {m['accuracy_without_se_sd']:.3f} "
                         f"| {statistics.fmean(sq):.3f} ± {_sd(sq):.3f} | {_paired(gap)} "
                         f"| {statistics.fmean(dsq):+.3f} ({min(dsq):+.3f} to {max(dsq):+.3f}) |")  # fmt: skip
    for dataset in study["datasets"]:
        lines += ["", f"**{dataset}**: mean over the seeds (min–max across seeds); the last "
                  "row of each architecture is the SE map of the squeezed model (the seeds "
                  "--score-squeezed scores, the first by default)", "",
                  "| architecture | method | " + " | ".join(SHOWN) + " |",
                  "|---|---|" + "---|" * len(SHOWN)]  # fmt: skip
        for arch, a in study["archs"].items():
            if dataset not in a["trained"]["models"]:
                continue
            per = a["trained"]["metrics"].get(dataset, {})
            for i, method in enumerate(METHODS):
                cells = [_cell(per.get(method, {}).get(k)) for k in SHOWN]
                lines.append(f"| {arch if i == 0 else ''} | {method} | " + " | ".join(cells) + " |")
            squeezed = squeezed_metrics(a, dataset)
            cells = [_cell(squeezed.get(k)) for k in SHOWN]
            lines.append("| | se (squeezed) | " + " | ".join(cells) + " |")
    lines += ["", "**SE against activation-mean** (the SE map with s replaced by ones) and the "
              "SE vector: per-image correlation of the two maps, the difference in pointing "
              "game and relevance mass (SE − activation-mean; mean over seeds), the spread of s "
              "within an image, and the mean Jaccard overlap of the channels the paper's rule "
              "selects across images", "",
              "| architecture | dataset | r (maps) | Δ pointing | Δ rel. mass | s range | "
              "per-image sd of s | Jaccard across images |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for arch, a in study["archs"].items():
        for dataset in [d for d in study["datasets"] if d in a["trained"]["models"]]:
            lines.append(
                f"| {arch} | {dataset} | " + " | ".join(se_row(a["trained"], dataset)) + " |"
            )
            squeezed = {"se_vs_activation_mean": {}, "se_diagnostics": {}}
            for k, v in a["squeezed"].items():
                if k.startswith(dataset + "/"):
                    seed = k.split("/")[1]
                    for part in squeezed:
                        for val in v.get(part, {}).values():
                            squeezed[part][f"{dataset}/{seed}"] = val
            lines.append(f"| {arch} (squeezed) | {dataset} | "
                         + " | ".join(se_row(squeezed, dataset)) + " |")  # fmt: skip
    return "\n".join(lines)


def squeezed_metrics(a: dict, dataset: str) -> dict:
    """The squeezed models' SE-map metrics on ``dataset``: mean and spread over seeds."""
    per: dict = {}
    for key, v in a["squeezed"].items():
        if key.startswith(dataset + "/"):
            for r in v.get("rows", []):
                if r["method"] == "se" and r["value"] is not None and math.isfinite(r["value"]):
                    per.setdefault(r["metric"], []).append(r)
    return {k: spread([r["value"] for r in rows], rows) for k, rows in per.items()}


def se_row(part: dict, dataset: str) -> list[str]:
    """SE against activation-mean and the SE-vector diagnostics, over the seeds."""
    vs = [v for k, v in part["se_vs_activation_mean"].items() if k.startswith(dataset + "/")]
    diag = [v.get("paper", v.get("all", {})) for k, v in part["se_diagnostics"].items()
            if k.startswith(dataset + "/")]  # fmt: skip
    if not vs or not diag:
        return ["–"] * 6

    def mean(values):
        values = [x for x in values if x is not None and math.isfinite(x)]
        return statistics.fmean(values) if values else float("nan")

    r = mean(v["correlation"]["value"] for v in vs)
    dp = mean(v["metrics"]["pointing_game"]["difference"]["value"] for v in vs)
    dm = mean(v["metrics"]["relevance_mass"]["difference"]["value"] for v in vs)
    lo, hi = min(d["s_min"] for d in diag), max(d["s_max"] for d in diag)
    return [f"{r:.4f}", f"{dp:+.3f}", f"{dm:+.3f}", f"[{lo:.2f}, {hi:.2f}]",
            f"{mean(d['image_std_mean'] for d in diag):.3f}",
            f"{mean(d.get('jaccard_images') for d in diag):.2f}"]  # fmt: skip


def _cell(v: dict | None) -> str:
    if v is None:
        return "–"
    return f"{v['mean']:.3f} ({v['min']:.2f}–{v['max']:.2f})"


#: two-sided 95 % quantiles of Student's t by degrees of freedom (seeds − 1)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}


def _paired(d: list[float]) -> str:
    """Mean of paired differences with a 95 % t-interval over the seeds."""
    mean = statistics.fmean(d)
    if len(d) < 2:
        return f"{mean:+.3f}"
    half = T95.get(len(d) - 1, 1.96) * statistics.stdev(d) / math.sqrt(len(d))
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


def _sd(v: list[float]) -> float:
    return statistics.stdev(v) if len(v) > 1 else 0.0


def _rounded(x):
    """Floats to 6 decimals (the JSON stays small; the tables print 3)."""
    if isinstance(x, float):
        return round(x, 6)
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default="small,resnet,convnext,vit")
    ap.add_argument("--datasets", default="an8flower-hard,scenes-6c")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--squeeze-epochs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2, help="architectures at once (one thread each)")
    ap.add_argument("--out", type=Path, default=HERE / "archs.json")
    ap.add_argument("--runs", default=str(ROOT / "data/runs/archs"), help="the run folders")
    ap.add_argument("--n-train", type=int, default=None, help="a quick look: fewer images")
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None, help="a quick look: fewer epochs")
    ap.add_argument(
        "--score-squeezed",
        type=int,
        default=1,
        help="how many seeds' squeezed models are scored (all are squeezed)",
    )
    ap.add_argument("--report", action="store_true", help="redraw the tables from --out")
    args = ap.parse_args()
    if args.report:
        print(table(json.loads(args.out.read_text())))
        return
    start = time.perf_counter()
    archs = args.archs.split(",")
    order = sorted(archs, key=lambda a: LONGEST_FIRST.index(a) if a in LONGEST_FIRST else 0)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {a: pool.submit(run_arch, a, args) for a in order}
        done = {a: futures[a].result() for a in archs}
    study = {
        "args": vars(args) | {"out": str(args.out)},
        "datasets": args.datasets.split(","),
        "methods": METHODS,
        "archs": done,
        "seconds": time.perf_counter() - start,
    }
    import torch

    study["torch"] = torch.__version__
    args.out.write_text(json.dumps(_rounded(study), separators=(",", ":"), default=str))
    print(table(study))
    print(f"\n{time.perf_counter() - start:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
