"""A small ViT on an8Flower single-6c, with and without an SE head: accuracy, and the SE
map's pointing game beside Grad-CAM's (the SE paper's "any model", on a transformer).

``squeezex.models.small_vit``: torchvision's ``VisionTransformer`` (64 px, 8-px patches,
4 layers, width 64, 4 heads, random init), trained here on CPU with ``squeezex.training.fit``; the SE block sits on the
tokens entering the last encoder block (``attach_se_head``). Prints accuracy with and
without SE per seed, then per method the pointing game (and energy pointing game) on the
test split's leaf masks, the random map as the floor: on the SE model the SE map, the
same map with s := 1 (``activation-mean``), its class-aware extension, Grad-CAM, Grad-CAM++ and attention rollout; on the plain ViT
Grad-CAM (through squeezex's token reshape), Grad-CAM++ and rollout. Writes
``benchmarks/vit_an8flower.json`` (``--out``).

    python benchmarks/vit_an8flower.py [--seeds 3] [--epochs 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from squeezex import get_explainer
from squeezex.datasets import build_dataset
from squeezex.io import atomic_write_json
from squeezex.metrics import energy_pointing_game, pointing_game
from squeezex.models import small_vit
from squeezex.training import evaluate, fit

METHODS = {
    True: ("se", "activation-mean", "se-class", "gradcam", "gradcam++", "rollout", "random"),
    False: ("gradcam", "gradcam++", "rollout", "random"),
}


def scores(model, test, methods) -> dict[str, tuple[float, float]]:
    x = test.images.float() / 255
    out = {}
    for name in methods:
        ex = get_explainer(name, model)
        maps = torch.cat([ex.attribute(x[i : i + 64], target=test.targets[i : i + 64])
                          for i in range(0, len(x), 64)])  # fmt: skip
        out[name] = (
            pointing_game(maps, test.masks).mean().item(),
            energy_pointing_game(maps, test.masks).mean().item(),
        )
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", default="benchmarks/vit_an8flower.json")
    args = p.parse_args(argv)
    train = build_dataset("an8flower-single-6c", "train")
    test = build_dataset("an8flower-single-6c", "test")
    runs = []
    for seed in range(args.seeds):
        for se in (True, False):
            model = small_vit(6, 64, se=se, seed=seed)
            res = fit(model, train, epochs=args.epochs, lr=1e-3, batch_size=64, seed=seed,
                      progress=False)  # fmt: skip
            run = {"seed": seed, "se": se, "accuracy": evaluate(model, test),
                   "train_s": res.seconds, "scores": scores(model, test, METHODS[se])}  # fmt: skip
            runs.append(run)
            print(f"seed {seed} {'SE' if se else 'plain'}: accuracy {run['accuracy']:.3f} "
                  f"({res.seconds:.0f} s)", flush=True)  # fmt: skip
            for m, v in run["scores"].items():
                print(f"    {m:10s} pointing {v[0]:.3f}  energy {v[1]:.3f}", flush=True)
            atomic_write_json(args.out, {"epochs": args.epochs, "runs": runs})
    summary(runs)


def summary(runs: list[dict]) -> None:
    """Mean ± sd over seeds: accuracy with and without SE, each method's pointing game."""

    def sd(v):
        return statistics.stdev(v) if len(v) > 1 else 0.0

    for se in (True, False):
        acc = [r["accuracy"] for r in runs if r["se"] is se]
        print(
            f"\n{'SE' if se else 'plain'} ViT: accuracy {statistics.fmean(acc):.3f} ± {sd(acc):.3f}"
        )
        for m in METHODS[se]:
            pg = [r["scores"][m][0] for r in runs if r["se"] is se]
            eg = [r["scores"][m][1] for r in runs if r["se"] is se]
            print(f"    {m:10s} pointing game {statistics.fmean(pg):.3f} ± {sd(pg):.3f}   "
                  f"energy {statistics.fmean(eg):.3f} ± {sd(eg):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
