"""Multi-label models on the synthetic faces, with and without the SE block (the paper's
"no cost" claim), and the control attribute a model cannot learn.

For each architecture (the benchmark's small CNN, torchvision's resnet18 with random
weights) and each training seed, trains the model with and without an SE head on the
same faces with the same budget (binary cross-entropy over the 7 attributes plus the
invisible control ``Unseen``), and prints the mean attribute accuracy over the 7 visible
attributes, each attribute's accuracy, and the accuracy on ``Unseen`` (chance is the
majority rate of its test labels). Writes ``benchmarks/faces_models.json``.

    python benchmarks/faces_models.py                      # small CNN and resnet18, 3 seeds
    python benchmarks/faces_models.py --arch small --seeds 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from squeezex.datasets import ATTRIBUTES, SyntheticFaces
from squeezex.io import atomic_write_text
from squeezex.models import build_model
from squeezex.training import attribute_accuracy, fit

#: epochs per architecture (batches of 32, as the faces benchmark trains)
EPOCHS = {"small": 20, "resnet18": 12}


def train_one(arch: str, se: bool, seed: int, train, test, epochs: int, size: int) -> dict:
    model = build_model(arch, len(train.classes), se=se, seed=seed, input_size=(3, size, size))
    start = time.perf_counter()
    fit(model, train, epochs=epochs, lr=3e-3, batch_size=32, seed=seed, progress=False)
    acc = attribute_accuracy(model, test)
    k = len(ATTRIBUTES)
    return {
        "arch": arch, "se": se, "seed": seed, "epochs": epochs,
        "mean": statistics.fmean(acc[:k]), "per_attribute": dict(zip(train.classes, acc, strict=True)),
        "unseen": acc[k], "seconds": time.perf_counter() - start,
    }  # fmt: skip


def summary_lines(results: list[dict], chance: float) -> list[str]:
    lines = [
        f"{'arch':<9}{'SE':<5}{'mean attribute accuracy':>26}{'Unseen (chance ' + f'{chance:.3f})':>24}"
    ]
    for arch in dict.fromkeys(r["arch"] for r in results):
        for se in (True, False):
            rs = [r for r in results if r["arch"] == arch and r["se"] == se]
            means = [r["mean"] for r in rs]
            sd = statistics.stdev(means) if len(means) > 1 else 0.0
            unseen = statistics.fmean(r["unseen"] for r in rs)
            lines.append(
                f"{arch:<9}{'yes' if se else 'no':<5}"
                f"{statistics.fmean(means):>18.3f} ± {sd:.3f}{unseen:>24.3f}"
            )
            per = {a: statistics.fmean(r["per_attribute"][a] for r in rs) for a in ATTRIBUTES}
            lines.append("    " + ", ".join(f"{a} {v:.3f}" for a, v in per.items()))
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="small,resnet18", help="comma-separated: small, resnet18")
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1")
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=400)
    p.add_argument("--size", type=int, default=64, choices=(64, 128))
    p.add_argument("--out", default=str(Path(__file__).with_name("faces_models.json")))
    args = p.parse_args(argv)
    train = SyntheticFaces("train", n=args.n_train, size=args.size, invisible=True)
    test = SyntheticFaces("test", n=args.n_test, size=args.size, invisible=True)
    rate = test.targets[:, -1].float().mean().item()
    chance = max(rate, 1 - rate)
    results = []
    for arch in args.arch.split(","):
        for seed in range(args.seeds):
            for se in (True, False):
                r = train_one(arch, se, seed, train, test, EPOCHS[arch], args.size)
                print(f"{arch} SE={se} seed {seed}: mean {r['mean']:.3f}, Unseen "
                      f"{r['unseen']:.3f} ({r['seconds']:.0f} s)", flush=True)  # fmt: skip
                results.append(r)
    lines = summary_lines(results, chance)
    print("\n".join(lines))
    record = {"n_train": args.n_train, "n_test": args.n_test, "size": args.size,
              "unseen_chance": chance, "results": results, "table": lines}  # fmt: skip
    atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
