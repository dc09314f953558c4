"""Bulk explanation at scale: ``squeezex explain`` over 2,004 generated an8Flower images at
64 px (334 per class), unsharded and as 2 shards running at once, and its throughput.

* **Identity**: the maps of the 2 shards (submitit's local executor: two processes at once)
  equal those of one process, byte for byte, for every method.
* **Throughput** over the same loader's batches (64 images, no loader workers), in one run,
  interleaved repetitions, the median of each: images/s of a plain ``torch.no_grad()``
  forward pass, of ``se`` and of ``gradcam`` (maps quantised to uint8 as the command writes
  them), and the ratio to the forward pass; the loader alone (generated images to float
  batches) is timed apart, and the rates with loading are combined from the two.
* The wall time of the 2-shard run against the unsharded one (both as the command runs them,
  model loading and data generation included) — on 2 cores, so two processes share them.

The model is the benchmark's an8flower-single-6c SE model (trained here once, cached under
``data/checkpoints``).

Usage: ``python benchmarks/bulk_explain.py [--repeats 3] [--json benchmarks/bulk_explain.json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

N_PER_CLASS = 334  # 6 classes: 2,004 images
METHODS = ["se", "gradcam"]


def model_checkpoint() -> Path:
    from squeezex.bench import BenchConfig, trained_model
    from squeezex.bench.models import _checkpoint, splits
    from squeezex.datasets import get_dataset

    cfg = BenchConfig(dataset="an8flower-single-6c", seeds=1, progress=False)
    trained_model(cfg, "an8flower-single-6c")  # trains once, then loads
    train, _ = splits(cfg, "an8flower-single-6c")
    path, _ = _checkpoint(cfg, get_dataset("an8flower-single-6c"), len(train), True, cfg.seed)
    return path


def identity(ckpt: Path, root: Path) -> dict:
    from squeezex.bench.bulk import ExplainedMaps, ExplainJob, explain_shard, submit_explain

    job = dict(model=str(ckpt), data="an8flower-single-6c", n_per_class=N_PER_CLASS,
               methods=METHODS, batch_size=64, progress=False)  # fmt: skip
    start = time.perf_counter()
    one = explain_shard(ExplainJob(**job, out=str(root / "one")))
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    submit_explain(ExplainJob(**job, out=str(root / "two")), 2, cluster="local", poll=0.5,
                   log=lambda s: print("  " + s))  # fmt: skip
    t_two = time.perf_counter() - start
    a, b = ExplainedMaps(root / "one"), ExplainedMaps(root / "two")
    same = {m: bool(torch.equal(a.load(m, raw=True), b.load(m, raw=True))) for m in METHODS}
    return {
        "n": a.n,
        "identical": same,
        "unsharded_seconds": t_one,
        "two_shards_seconds": t_two,
        "unsharded_images_per_second": {
            m: r["images_per_second"] for m, r in one["methods"].items()
        },
        "ranges": b.index["ranges"],
    }


def throughput(ckpt: Path, repeats: int) -> dict:
    from squeezex.bench.bulk import inference_throughput, load_model, open_data
    from squeezex.bench.store import quantise
    from squeezex.explainers import get_explainer

    model, arch = load_model(ckpt)
    data = open_data("an8flower-single-6c", arch["size"], n_per_class=N_PER_CLASS)
    loader = torch.utils.data.DataLoader(data.dataset, batch_size=64, shuffle=False)
    batches = list(loader)  # the loader's batches, so that loading is timed on its own
    explainers = {m: get_explainer(m, model) for m in METHODS}

    def rate(method: str) -> float:
        n, start = 0, time.perf_counter()
        if method == "loading":
            n = sum(len(x) for x, *_ in loader)
        elif method == "forward":
            return inference_throughput(model, batches)
        else:
            for x, *_ in batches:
                quantise(explainers[method].attribute(x))
                n += len(x)
        return n / (time.perf_counter() - start)

    runs = {m: [] for m in ["loading", "forward", *METHODS]}
    rate("forward")  # warm-up
    for _ in range(repeats):  # interleaved
        for m in runs:
            runs[m].append(rate(m))
    med = {m: statistics.median(v) for m, v in runs.items()}
    return {
        "images_per_second": med,
        "all_runs": runs,
        "ratio_to_forward": {m: med["forward"] / med[m] for m in METHODS},
        "with_loading": {m: 1 / (1 / med[m] + 1 / med["loading"]) for m in ["forward", *METHODS]},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--json", default=None, help="also write the numbers here")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    ckpt = model_checkpoint()
    with tempfile.TemporaryDirectory() as tmp:
        ident = identity(ckpt, Path(tmp))
    rates = throughput(ckpt, args.repeats)
    print(f"{ident['n']} images at 64 px; 2 shards {ident['ranges']}")
    for m in METHODS:
        print(f"  {m:8s} maps of 2 shards identical to one process: {ident['identical'][m]}")
    print(f"  wall: unsharded {ident['unsharded_seconds']:.1f} s, 2 shards at once "
          f"{ident['two_shards_seconds']:.1f} s (2 cores; process start and data generation included)")  # fmt: skip
    print(
        f"throughput over the loader's batches of 64 (median of {args.repeats} interleaved runs):"
    )
    for m, r in rates["images_per_second"].items():
        ratio = f"  ({rates['ratio_to_forward'][m]:.2f}× a forward pass)" if m in METHODS else ""
        load = f"; {rates['with_loading'][m]:.0f} images/s with loading" if m != "loading" else ""
        print(f"  {m:8s} {r:8.0f} images/s{ratio}{load}")
    if args.json:
        out = {"identity": ident, "throughput": rates, "threads": torch.get_num_threads()}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
