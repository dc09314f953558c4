"""What removed pixels become: deletion's baseline and infidelity's perturbation, on an8Flower.

Two defaults rest on this measurement:

* the benchmark's deletion baseline, ``"zero"`` (``BenchConfig.deletion_baseline``): with a
  blurred baseline an an8Flower leaf keeps its colour, the class survives deletion and every
  map, the random one included, scores alike;
* infidelity's ``"squares"`` perturbation (``squeezex.metrics.infidelity_score``): random
  squares replaced by the deletion baseline change the output by about the evidence they
  carried, so the score ranks maps; Yeh et al.'s small Gaussian noise mostly measures the
  model's own non-linearity, and every non-negative map scores alike.

On the benchmark's an8Flower single-6c SE model (``squeezex.bench.trained_model``, seed 0;
trained on first use and cached under ``data/checkpoints``; then the script takes about a
minute and a half of CPU) and its test split, with the true labels as targets, for the maps
of ``se``, ``gradcam``, ``saliency``, the ``random`` floor, a constant map and the signed
gradient of the target logit (summed over colours: the first-order answer to small
perturbations), it measures the deletion AUC (10 steps) with the ``zero``, ``mean`` and
``blur`` baselines, and infidelity (10 perturbations each) with 8-px squares set to zero
and with Gaussian noise (σ = 0.1). Prints a table and writes
``benchmarks/faithfulness_baselines.json``.

Usage: ``python benchmarks/faithfulness_baselines.py [--json FILE]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

DATASET = "an8flower-single-6c"
METHODS = ("se", "gradcam", "saliency", "random")
BASELINES = ("zero", "mean", "blur")
PERTURBATIONS = {"squares": {}, "gaussian": {"noise": 0.1}}


def signed_gradient(model, x, y) -> torch.Tensor:
    """d logit_y / d x, summed over the colour channels (N×1×H×W, signed)."""
    xg = x.clone().requires_grad_(True)
    model(xg).gather(1, y[:, None]).sum().backward()
    return xg.grad.sum(1, keepdim=True).detach()


def all_maps(model, x, y) -> dict[str, torch.Tensor]:
    from squeezex import get_explainer
    from squeezex.explainers.references import constant_map

    maps = {}
    for name in METHODS:
        ex = get_explainer(name, model)
        maps[name] = torch.cat([ex.attribute(x[i : i + 64], target=y[i : i + 64])
                                for i in range(0, len(x), 64)])  # fmt: skip
    maps["constant"] = constant_map(len(x), tuple(x.shape[2:]))
    maps["signed gradient"] = signed_gradient(model, x, y)
    return maps


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    args = p.parse_args(argv)
    from squeezex.bench import BenchConfig, trained_model
    from squeezex.bench.models import splits
    from squeezex.io import atomic_write_json
    from squeezex.metrics import deletion_curve, infidelity_score

    cfg = BenchConfig(dataset=DATASET, progress=False)
    _, test = splits(cfg, DATASET)
    model = trained_model(cfg, DATASET)
    x, y = test.images.float() / 255, test.targets
    results = {"dataset": DATASET, "n_test": len(x), "deletion_auc": {}, "infidelity": {}}
    for name, m in all_maps(model, x, y).items():
        if name != "signed gradient":  # deletion ranks pixels of non-negative maps
            results["deletion_auc"][name] = {}
            for b in BASELINES:
                fractions, scores = deletion_curve(model, x, m, y, steps=10, baseline=b)
                auc = torch.trapezoid(scores, fractions, dim=1).mean().item()
                results["deletion_auc"][name][b] = auc
        results["infidelity"][name] = {
            kind: infidelity_score(model, x, m, y, perturbation=kind, **kw).mean().item()
            for kind, kw in PERTURBATIONS.items()
        }
    atomic_write_json(args.json, results)
    print(f"{DATASET}, {len(x)} test images")
    print(f"{'map':<17}" + "".join(f"{'deletion ' + b:>16}" for b in BASELINES)
          + "".join(f"{'infidelity ' + k:>22}" for k in PERTURBATIONS))  # fmt: skip
    for name, inf in results["infidelity"].items():
        dele = results["deletion_auc"].get(name, {})
        print(f"{name:<17}" + "".join(f"{dele[b]:16.3f}" if b in dele else f"{'—':>16}"
                                      for b in BASELINES)
              + "".join(f"{inf[k]:22.3f}" for k in PERTURBATIONS))  # fmt: skip
    print("(deletion AUC: lower is better; infidelity: lower is better)")


if __name__ == "__main__":
    main()
