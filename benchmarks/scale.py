"""Cost on paper: what full-size runs cost, from costs measured here, and how to shard them.

Measured on this machine (CPU, torch's default threads), in one run:

1. **methods at 224 px**: the time per image of every registered method that applies to
   resnet18 with an SE head (random weights: cost does not depend on training), on a batch
   of 4 after a warm-up call (a method whose warm-up image takes over 5 s: that image's
   time), and a plain forward pass (VEBI's fit step and attention
   rollout, ViT-only, are left out);
2. **the harness** on an8flower-hard at 64 px (every metric family): the training cost per
   (dataset, seed) — the SE and plain models, in seconds per training image and epoch —
   and each cell's cost, fitted as ``a + b·n_test`` from cells at two test sizes and
   expressed per test image as ``k`` forward passes of the model;
3. **the speakers model** (SpeakerNet, 8-frame clips and log-mel audio): forward and
   training time per clip. The faces benchmark trains the same SmallCNN at 64 px as
   an8Flower, so its costs per image are those of (2).

Then it prints plans for full-size runs — CPU-hours, the shard count that fits a wall time
(``--wall``, hours) and the speed-up of N workers. Harness runs are split by
:func:`squeezex.bench.plan` (training units, then cells), and the speed-up is the total
over the most loaded shard; bulk explanation splits images evenly, each job paying the
measured start-up (interpreter, torch, model). The full sizes are assumptions, printed
with each plan: ImageNet-val's 50,000 images × every method; CelebA's 162,770 training
and 19,962 test images; the speakers benchmark at 100,000 training and 20,000 test clips.

Usage: ``python benchmarks/scale.py [--wall 4] [--json benchmarks/scale.json]`` (and
``--replan benchmarks/scale.json`` to plan again from those measurements).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch


# -- 1. methods at 224 px -------------------------------------------------------------------------
def method_costs(batch: int = 4) -> dict[str, float]:
    """Milliseconds per image at 224 px (resnet18 + SE) of every applicable method."""
    from squeezex.explainers import explainer_info, list_explainers
    from squeezex.models import build_model

    model = build_model("resnet18", 10, se=True, seed=0, input_size=(3, 224, 224)).eval()
    x = torch.rand(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    y = torch.arange(batch) % 10
    out = {"forward": _forward_ms(model, x)}
    for name in list_explainers():
        info = explainer_info(name)
        explainer = None if info.fit else info.build(model)
        if explainer is None or (hasattr(explainer, "unsupported") and explainer.unsupported(x)):
            continue
        start = time.perf_counter()
        explainer.attribute(x[:1], target=y[:1])  # warm-up
        one = time.perf_counter() - start
        if one > 5:  # slow (hundreds of forward passes per image): one image is enough
            out[name] = one * 1000
        else:
            start = time.perf_counter()
            explainer.attribute(x, target=y)
            out[name] = (time.perf_counter() - start) * 1000 / batch
        print(f"  {name:22s} {out[name]:9.1f} ms/image", flush=True)
    return out


@torch.no_grad()
def _forward_ms(model, x) -> float:
    model(x)
    start = time.perf_counter()
    model(x)
    return (time.perf_counter() - start) * 1000 / len(x)


# -- 2. the harness --------------------------------------------------------------------------------
def harness_costs(root: Path, sizes=(4, 16)) -> dict:
    """Training seconds per image-epoch and each cell's ``a + b·n`` (seconds) and ``k``."""
    from squeezex.bench import DEFAULT_METHODS, BenchConfig, run
    from squeezex.bench.tasks import get_task

    task = get_task("single-label")
    timed: dict[tuple[int, str], float] = {}
    compute = task.compute_cell

    fits: dict[str, float] = {}
    seen: set[int] = set()

    def timed_cell(unit, key):  # explaining and scoring, without VEBI's one-time fit
        start = time.perf_counter()
        cell = compute(unit, key)
        fit = 0.0
        if cell.fit is not None and id(cell.fit) not in seen:  # the cell that ran the fit
            seen.add(id(cell.fit))  # (the unit's other VEBI cells share its summary)
            fit = cell.fit.get("fit_seconds", 0.0)
            fits[key.method] = max(fits.get(key.method, 0.0), fit)
        timed[(len(unit.x), key.method)] = time.perf_counter() - start - fit
        return cell

    task.compute_cell = timed_cell
    try:
        results = [
            run(
                BenchConfig(
                    dataset="an8flower-hard",
                    methods=list(DEFAULT_METHODS),
                    seeds=1,
                    n_test_per_class=n,
                    out=str(root / f"run{n}"),
                    checkpoints=str(root / "ck"),
                    progress=False,
                )
            )  # fmt: skip
            for n in sizes
        ]
    finally:
        del task.compute_cell  # the class's method again
    first = results[0]["models"]["an8flower-hard"]
    epochs = results[0]["config"]["epochs"]
    from squeezex.datasets import get_dataset

    epochs = get_dataset("an8flower-hard").train.epochs or epochs
    train_img = sum(first["train_seconds"]) / 2 / (epochs * first["n_train"])
    forward_ms = results[-1]["timing"]["forward_ms_per_image"]
    (n1, n2) = sorted({n for n, _ in timed})
    cells = {}
    for m in sorted({m for _, m in timed}):
        b = (timed[(n2, m)] - timed[(n1, m)]) / (n2 - n1)
        a = timed[(n1, m)] - b * n1
        cells[m] = {"a": max(a, 0.0), "b": max(b, 0.0), "k": max(b, 0.0) * 1000 / forward_ms}
    fit = max(fits.values(), default=0.0)  # the μ-lasso fit, once per unit
    return {"train_seconds_per_image_epoch": train_img, "forward_ms": forward_ms,
            "epochs": epochs, "cells": cells, "vebi_fit_seconds": fit,
            "vebi_fit_train_images": first["n_train"]}  # fmt: skip


# -- 3. speakers and job start-up ---------------------------------------------------------------
def speaker_costs(n: int = 32) -> dict:
    from squeezex.datasets import SyntheticSpeakers
    from squeezex.models import SpeakerNet
    from squeezex.training import fit_speakers

    data = SyntheticSpeakers(n, seed=0, split="train")
    model = SpeakerNet(se=True, frames=data.n_frames, size=data.size).eval()
    with torch.no_grad():
        model(data.frames[:16], data.audio[:16])
        start = time.perf_counter()
        model(data.frames, data.audio)
        forward = (time.perf_counter() - start) * 1000 / n
    r = fit_speakers(model, data, epochs=1, batch_size=16, progress=False)
    return {"forward_ms": forward, "train_seconds_per_clip_epoch": r.seconds / n}


def startup_seconds() -> float:
    """A job's fixed cost: a Python that imports squeezex (torch, torchvision, captum)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import squeezex.bench, squeezex.bench.bulk"], check=True)
    return time.perf_counter() - start


# -- plans ------------------------------------------------------------------------------------------
def harness_plan(name: str, datasets: list[str], n_train: int, n_test: int, seeds: int,
                 methods: list[str], costs: dict, wall_h: float, startup: float) -> dict:  # fmt: skip
    """Seconds per piece of work, the total, and the shards that fit ``wall_h`` hours;
    ``costs``: forward ms, training s per image-epoch, cells, VEBI's fit."""
    from squeezex.bench import BenchConfig, plan
    from squeezex.bench.shards import most_shards
    from squeezex.datasets import get_dataset

    cfg = BenchConfig(dataset=",".join(datasets), methods=methods, seeds=seeds,
                      explain_seeds=seeds, progress=False)  # fmt: skip
    cells = costs["cells"]

    def cell(m):
        c = cells.get(m, cells["se"])  # a method not measured here costs what se costs
        return c["a"] + c["k"] * costs["forward_ms"] / 1000 * n_test

    unit_cells = [cell(m) for m in [*methods, "centre", "oracle", "constant", "silhouette"]]
    epochs = max(get_dataset(d).train.epochs or 12 for d in datasets)
    train = 2 * epochs * n_train * costs["train"]
    if any(m.startswith("vebi") for m in methods):  # the μ-lasso fit, once per unit
        train += costs["vebi_fit_seconds"] * n_train / costs["vebi_fit_train_images"]

    def load(shard):
        return startup + sum(
            (train if p.trains else 0.0) + sum(c for j, c in enumerate(unit_cells) if p.owns(j))
            for p in shard.parts
        )

    total = len(datasets) * seeds * (train + sum(unit_cells))
    loads = {n: max(load(s) for s in plan(cfg, n)) for n in range(1, most_shards(cfg) + 1)}
    fits = next((n for n, v in loads.items() if v <= wall_h * 3600), None)
    return {"name": name, "cpu_hours": total / 3600, "unit_training_hours": train / 3600,
            "shards_for_wall": fits, "fewest_hours": min(loads.values()) / 3600,
            "speedup": {n: total / loads[n] for n in (2, 4, 8, 16) if n in loads}}  # fmt: skip


def bulk_plan(name, n_images, ms_per_image: dict, wall_h, startup) -> dict:
    total = n_images * sum(ms_per_image.values()) / 1000
    fits = math.ceil(total / max(wall_h * 3600 - startup, 1))
    speedups = {n: total / (total / n + startup) for n in (2, 4, 8, 16, 64)}
    return {"name": name, "cpu_hours": total / 3600, "shards_for_wall": fits, "speedup": speedups}


def plans(measured: dict, wall_h: float) -> list[dict]:
    from squeezex.bench import DEFAULT_METHODS

    h, sp, up = measured["harness"], measured["speakers"], measured["startup"]
    methods = {k: v for k, v in measured["methods"].items() if k != "forward"}
    fast = {k: v for k, v in methods.items() if v < 1000}
    image = {"forward_ms": h["forward_ms"], "train": h["train_seconds_per_image_epoch"], **h}
    speakers = {
        **image,
        "forward_ms": sp["forward_ms"],
        "train": sp["train_seconds_per_clip_epoch"],
    }
    ten = list(DEFAULT_METHODS)
    return [
        bulk_plan(f"ImageNet-val: 50,000 images × all {len(methods)} methods at 224 px (resnet18)",
                  50_000, methods, wall_h, up),
        bulk_plan(f"ImageNet-val: 50,000 images × the {len(fast)} methods under 1 s per image",
                  50_000, fast, wall_h, up),
        harness_plan("default benchmark (an8flower-hard, scenes-6c) at 1,800 training and 3,000 "
                     "test images each, 10 methods, 5 seeds all explained",
                     ["an8flower-hard", "scenes-6c"], 1800, 3000, 5, ten, image, wall_h, up),
        harness_plan("faces at CelebA size: 162,770 training and 19,962 test images, 64 px, "
                     "10 methods, 3 seeds all explained",
                     ["faces"], 162_770, 19_962, 3, ten, image, wall_h, up),
        harness_plan("speakers: 100,000 training and 20,000 test clips, se/gradcam/random, "
                     "3 seeds all explained", ["speakers"], 100_000, 20_000, 3,
                     ["se", "gradcam", "random"], speakers, wall_h, up),
    ]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wall", type=float, default=4.0, help="wall time per job, hours")
    p.add_argument("--json", default=None, help="write the measurements and plans here")
    p.add_argument("--replan", default=None, help="plan from this JSON's measurements")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    if args.replan:
        measured = json.loads(Path(args.replan).read_text())["measured"]
    else:
        measured = measure()
        if args.json:  # kept before planning
            Path(args.json).write_text(json.dumps({"measured": measured}, indent=2) + "\n")
    rows = plans(measured, args.wall)
    report(measured, rows, args.wall)
    if args.json:
        out = {"measured": measured, "plans": rows, "wall_hours": args.wall}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


def measure() -> dict:
    print("1. methods at 224 px (resnet18 + SE, batch 4):", flush=True)
    measured = {"methods": method_costs()}
    with tempfile.TemporaryDirectory() as tmp:
        print("2. the harness on an8flower-hard (two test sizes) ...", flush=True)
        measured["harness"] = harness_costs(Path(tmp))
    measured["speakers"] = speaker_costs()
    measured["startup"] = startup_seconds()
    measured["threads"] = torch.get_num_threads()
    return measured


def report(measured: dict, rows: list[dict], wall_h: float) -> None:
    h = measured["harness"]
    print(f"\nmeasured here ({measured['threads']} threads): job start-up {measured['startup']:.1f} s; "
          f"SmallCNN 64 px forward {h['forward_ms']:.2f} ms/image, training "
          f"{h['train_seconds_per_image_epoch'] * 1000:.2f} ms per image-epoch; VEBI's fit "
          f"{h['vebi_fit_seconds']:.0f} s on {h['vebi_fit_train_images']} training images; "
          f"SpeakerNet forward {measured['speakers']['forward_ms']:.1f} ms/clip")  # fmt: skip
    print("harness cells (all families), forward passes per test image (k) + fixed seconds (a):")
    for m, c in h["cells"].items():
        print(f"  {m:16s} k = {c['k']:7.1f}   a = {c['a']:6.1f} s")
    print(f"\nplans (hours of this {measured['threads']}-thread machine; jobs of {wall_h:g} h):")
    for r in rows:
        sp = ", ".join(f"{n}: {s:.1f}×" for n, s in r["speedup"].items())
        fit = (
            f"{r['shards_for_wall']} shards fit {wall_h:g} h"
            if r["shards_for_wall"]
            else f"no shard count fits {wall_h:g} h: one (dataset, seed)'s training alone takes "
            f"{r['unit_training_hours']:.1f} h (the most shards finish in {r['fewest_hours']:.1f} h)"
        )
        print(f"- {r['name']}\n    {r['cpu_hours']:.1f} h in all; {fit}; speed-up by workers {sp}")  # fmt: skip


if __name__ == "__main__":
    main()
