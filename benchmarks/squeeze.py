"""Squeezing a trained model: does the SE block start as the identity, does training it
alone keep the accuracy, and does it leave the backbone as it was?

Why: :func:`squeezex.squeeze` promises that attaching the block changes no prediction,
that training only the block (``train="se"``) keeps every backbone parameter and
BatchNorm statistic byte for byte, and that the accuracy stays where it was. This
measures all three on torchvision's resnet18 trained here without SE (from scratch, the
benchmark's 64-px splits) on an8flower-hard and scenes-6c, three seeds each, with the
test split as the validation data, for both identity gates (``s / mean(s)`` and ``2·s``:
which one :func:`~squeezex.squeeze` uses by default is chosen from this). Printed and written to ``benchmarks/squeeze.json``;
the trained models are kept in ``data/checkpoints/squeeze/`` (a rerun reuses them).

    python benchmarks/squeeze.py                 # the 6 models (~20 min on 2 cores)
    python benchmarks/squeeze.py --seeds 1 --datasets scenes-6c --epochs 4   # a quick look
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from squeezex import squeeze
from squeezex.bench import preset
from squeezex.bench.harness import splits
from squeezex.models import build_model
from squeezex.training import evaluate, fit, load_checkpoint, save_checkpoint

HERE = Path(__file__).resolve().parent
CHECKPOINTS = HERE.parent / "data" / "checkpoints" / "squeeze"


def trained(arch: str, dataset: str, seed: int, train, epochs: int, classes: int):
    """The model trained without SE (loaded when this script trained it before)."""
    path = CHECKPOINTS / f"{arch}-{dataset}-s{seed}-e{epochs}.pt"
    model = build_model(arch, classes, seed=seed)
    if path.is_file():
        meta = load_checkpoint(path, model)
        return model.eval(), meta["seconds"]
    start = time.perf_counter()
    fit(model, train, epochs=epochs, seed=seed, desc=f"{arch} {dataset} seed {seed}")
    seconds = time.perf_counter() - start
    save_checkpoint(path, model, seconds=seconds)
    return model.eval(), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--datasets", default="an8flower-hard,scenes-6c")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12, help="training from scratch")
    ap.add_argument("--squeeze-epochs", type=int, default=5)
    ap.add_argument("--gates", default="normalised,2sigmoid")
    ap.add_argument("--out", type=Path, default=HERE / "squeeze.json")
    args = ap.parse_args()
    cfg = preset("full")
    rows = []
    for dataset in args.datasets.split(","):
        train, test = splits(cfg, dataset)
        classes = len(test.classes)
        for seed in range(args.seeds):
            model, train_seconds = trained(args.arch, dataset, seed, train, args.epochs, classes)
            accuracy = evaluate(model, test)
            for gate in args.gates.split(","):
                _, report = squeeze(model, train, val_data=test, gate=gate,
                                    epochs=args.squeeze_epochs, seed=seed)  # fmt: skip
                row = {
                    "dataset": dataset, "seed": seed, "arch": args.arch,
                    "train_seconds": train_seconds, "accuracy_original": accuracy,
                    **{k: v for k, v in report.to_dict().items() if k not in ("losses",)},
                }  # fmt: skip
                row["accuracy_change"] = report.accuracy_squeezed - report.accuracy_original
                rows.append(row)
                se = report.se_vector
                print(f"{dataset:15s} seed {seed} {gate:10s}: original {accuracy:.3f}, squeezed "
                      f"{report.accuracy_squeezed:.3f} ({row['accuracy_change']:+.3f}); identity "
                      f"max |Δ logit| {report.identity_max_abs_diff:.3g}; frozen unchanged "
                      f"{report.frozen_unchanged}; s in [{se['s_min']:.2f}, {se['s_max']:.2f}], "
                      f"per-image std {se['image_std_mean']:.3f}; {report.seconds:.0f} s",
                      flush=True)  # fmt: skip
    by_gate = {}
    for gate in args.gates.split(","):
        mine = [r for r in rows if r["gate"] == gate]
        by_gate[gate] = {
            "identity_exact": all(r["identity_max_abs_diff"] == 0 for r in mine),
            "frozen_unchanged": all(r["frozen_unchanged"] for r in mine),
            "max_accuracy_drop": max(-r["accuracy_change"] for r in mine),
            "mean_accuracy_change": sum(r["accuracy_change"] for r in mine) / len(mine),
            "within_0.01": sum(abs(r["accuracy_change"]) <= 0.01 + 1e-9 for r in mine),
            "mean_image_std_of_s": sum(r["se_vector"]["image_std_mean"] for r in mine) / len(mine),
        }
    summary = {
        "rows": len(rows),
        "gates": by_gate,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    print(json.dumps(summary, indent=1))
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
