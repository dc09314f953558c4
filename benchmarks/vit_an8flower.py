"""A small ViT on an8Flower single-6c, with and without an SE head: accuracy, and the SE
map's pointing game beside Grad-CAM's (the SE paper's "any model", on a transformer).

torchvision's ``VisionTransformer`` (64 px, 8-px patches, 4 layers, width 64, 4 heads,
random init), trained here on CPU with ``squeezex.training.fit``; the SE block sits on the
tokens entering the last encoder block (``attach_se_head``). Prints accuracy with and
without SE per seed, then per method the pointing game (and energy pointing game) on the
test split's leaf masks, the random map as the floor.

    python benchmarks/vit_an8flower.py [--seeds 3] [--epochs 40]
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torchvision

from squeezex import attach_se_head, get_explainer
from squeezex.datasets import build_dataset
from squeezex.metrics import energy_pointing_game, pointing_game
from squeezex.training import evaluate, fit

METHODS = ("se", "se-class", "gradcam", "gradcam++", "random")


def small_vit(se: bool, seed: int, example: torch.Tensor) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torchvision.models.VisionTransformer(
            image_size=64, patch_size=8, num_layers=4, num_heads=4, hidden_dim=64,
            mlp_dim=128, num_classes=6,
        )  # fmt: skip
        if se:
            attach_se_head(model, reduction=4, example=example)
    return model


def scores(model, test) -> dict[str, tuple[float, float]]:
    x = test.images.float() / 255
    out = {}
    for name in METHODS:
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
    p.add_argument("--epochs", type=int, default=40)
    args = p.parse_args(argv)
    train = build_dataset("an8flower-single-6c", "train")
    test = build_dataset("an8flower-single-6c", "test")
    example = train.images[:1].float() / 255
    acc = {True: [], False: []}
    per_method: dict[str, list] = {m: [] for m in METHODS}
    for seed in range(args.seeds):
        for se in (True, False):
            model = small_vit(se, seed, example)
            res = fit(model, train, epochs=args.epochs, lr=1e-3, batch_size=64, seed=seed,
                      progress=False)  # fmt: skip
            acc[se].append(evaluate(model, test))
            print(f"seed {seed} {'SE' if se else 'plain'}: accuracy {acc[se][-1]:.3f} "
                  f"({res.seconds:.0f} s)", flush=True)  # fmt: skip
            if se:
                for m, v in scores(model, test).items():
                    per_method[m].append(v)
                    print(f"    {m:10s} pointing {v[0]:.3f}  energy {v[1]:.3f}", flush=True)
    sd = statistics.stdev if args.seeds > 1 else (lambda v: 0.0)
    print(f"\naccuracy with SE {statistics.fmean(acc[True]):.3f} ± {sd(acc[True]):.3f}, "
          f"without {statistics.fmean(acc[False]):.3f} ± {sd(acc[False]):.3f}")  # fmt: skip
    for m, vals in per_method.items():
        pg = [v[0] for v in vals]
        print(f"{m:10s} pointing game {statistics.fmean(pg):.3f} ± {sd(pg):.3f}")


if __name__ == "__main__":
    main()
