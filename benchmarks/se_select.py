"""Beyond the paper: can the SE vector be asked to *select* channels, and what does that
do to the maps?

Why: on every benchmark model the SE map is the plain channel mean (r ≥ 0.99 with
activation-mean): s spans a narrow band and the paper's rule picks nearly the same channels
for every image. :func:`squeezex.squeeze`'s ``select=λ`` adds λ × the normalised entropy of
each image's s / Σ s to the loss. This squeezes the same trained models (the ones
``benchmarks/archs.py`` trained without SE: the cache in ``data/checkpoints/``, trained here
when missing) with λ = 0 (the plain block) and larger λ, and measures on the test split:
the mean selection entropy; the per-image Jaccard overlap of the channels the paper's rule
selects (low: images pick different channels); the per-image correlation of the SE map
with activation-mean's; the pointing game and relevance mass of the SE map; the accuracy.
Printed and written to ``benchmarks/se_select.json``.

    python benchmarks/se_select.py                       # small and resnet, 2 datasets, 3 seeds
    python benchmarks/se_select.py --archs small --seeds 1 --datasets scenes-6c   # a look
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def measure(model, test, device="cpu") -> dict:
    """The SE vectors, maps and scores of a squeezed ``model`` on ``test``."""
    from squeezex import get_explainer
    from squeezex.explainers.diagnostics import map_correlation, se_vector_report
    from squeezex.metrics import pointing_game, relevance_mass_accuracy
    from squeezex.models.se import find_se_block
    from squeezex.squeezing import selection_entropy

    x, y, masks = test.images.float() / 255, test.targets, test.masks
    se = get_explainer("se", model)
    mean = get_explainer("activation-mean", model)
    block = find_se_block(model)
    with torch.no_grad(), block.recording() as tape:
        logits = model(x)
    v = se.se_vector(x, selection="paper")
    maps = se.attribute(x, target=y)
    means = mean.attribute(x, target=y)
    report = se_vector_report(v.s, y, selected=v.selected)
    return {
        "accuracy": (logits.argmax(1) == y).float().mean().item(),
        "entropy": selection_entropy(tape["e"]).mean().item(),
        "jaccard_images": report["jaccard_images"],
        "selected_per_image": report["selected_per_image_mean"],
        "image_std": report["image_std_mean"],
        "r_activation_mean": map_correlation(maps, means).mean().item(),
        "pointing_game": pointing_game(maps, masks).mean().item(),
        "relevance_mass": relevance_mass_accuracy(maps, masks).mean().item(),
    }


def main() -> None:
    from squeezex import squeeze
    from squeezex.bench import preset
    from squeezex.bench.models import load_or_train, splits
    from squeezex.datasets import get_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default="small,resnet")
    ap.add_argument("--datasets", default="an8flower-hard,scenes-6c")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--selects", default="0,1,10")
    ap.add_argument("--epochs", type=int, default=5, help="squeezing epochs")
    ap.add_argument("--out", type=Path, default=HERE / "se_select.json")
    args = ap.parse_args()
    start, rows = time.perf_counter(), []
    for arch in args.archs.split(","):
        cfg = preset("full", arch=arch, dataset=args.datasets, seeds=args.seeds, progress=False)
        for dataset in cfg.datasets:
            train, test = splits(cfg, dataset)
            for seed in cfg.train_seeds:
                plain, _, _ = load_or_train(cfg, get_dataset(dataset), train, False, seed)
                for select in (float(v) for v in args.selects.split(",")):
                    model, report = squeeze(plain, train, epochs=args.epochs, select=select,
                                            val_data=test, seed=seed, progress=False)  # fmt: skip
                    row = {"arch": arch, "dataset": dataset, "seed": seed, "select": select,
                           "accuracy_original": report.accuracy_original,
                           **measure(model.eval(), test)}  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    summary = summarise(rows)
    args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows,
                                    "summary": summary, "torch": torch.__version__,
                                    "seconds": time.perf_counter() - start}, indent=1))  # fmt: skip
    for line in table(summary):
        print(line)
    print(f"wrote {args.out}")


KEYS = ["accuracy", "entropy", "jaccard_images", "selected_per_image", "r_activation_mean",
        "pointing_game", "relevance_mass"]  # fmt: skip


def summarise(rows: list[dict]) -> dict:
    """Per (arch, dataset, λ): mean and sd over seeds of each measure."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(f"{r['arch']}/{r['dataset']}/{r['select']:g}", []).append(r)
    out = {}
    for key, rs in groups.items():
        out[key] = {}
        for k in KEYS:
            v = [r[k] for r in rs if r[k] == r[k]]  # finite (nan ≠ nan)
            if v:
                sd = statistics.stdev(v) if len(v) > 1 else 0.0
                out[key][k] = {"mean": statistics.fmean(v), "sd": sd}
    return out


def table(summary: dict) -> list[str]:
    lines = ["| model / dataset / λ | " + " | ".join(KEYS) + " |", "|---|" + "---|" * len(KEYS)]
    for key, m in summary.items():
        cells = [f"{m[k]['mean']:.3f} ± {m[k]['sd']:.3f}" if k in m else "–" for k in KEYS]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
