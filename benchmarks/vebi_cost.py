"""What a VEBI explanation costs per image: against a plain forward and Captum's GuidedBackprop.

For the an8Flower CNN at 64×64 and resnet18 at 224×224 (both with an SE head and random
weights: cost does not depend on training; the relevant features come from a μ-lasso fit
on random images with random labels, which puts the top features in the deepest layers
as a trained fit does), measured in one run, interleaved repetitions, median of each:

* ``vebi``: ``VEBIAttribution.attribute`` (one forward with hooks, then one backward pass
  per top feature, 3 by default), with and without the stride fix;
* ``guided``: Captum's ``GuidedBackprop.attribute`` (one forward, one backward) for the
  same targets;
* ``forward``: a plain ``torch.no_grad()`` forward of the same batch.

The ratios are per image, from the same batch. The one-time μ-lasso fit is reported
separately (seconds per training image).

Usage: ``python benchmarks/vebi_cost.py [--repeats 5] [--json benchmarks/vebi_cost.json]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import torch

MODELS = {"an8flower-cnn": (3, 64, 64), "resnet18": (3, 224, 224)}


def _model(name: str):
    from squeezex.models import build_model

    if name == "resnet18":
        return build_model("resnet18", 10, se=True, seed=0, input_size=MODELS[name]).eval()
    return build_model("small", 6, se=True, seed=0).eval()


def measure(name: str, batch: int, repeats: int, n_fit: int) -> dict:
    from captum.attr import GuidedBackprop

    from squeezex import RelevantFeatures, VEBIAttribution

    model = _model(name)
    g = torch.Generator().manual_seed(0)
    n_classes = model.fc.out_features
    fit_x = torch.rand(n_fit, *MODELS[name], generator=g)
    fit_y = torch.arange(n_fit) % n_classes
    start = time.perf_counter()
    rf = RelevantFeatures(mu=5, progress=False).fit(model, (fit_x, fit_y))
    fit_s = time.perf_counter() - start

    x = torch.rand(batch, *MODELS[name], generator=g)
    y = torch.arange(batch) % n_classes
    vebi = VEBIAttribution(model, rf)
    nofix = VEBIAttribution(model, rf, stride_fix=False)
    guided = GuidedBackprop(model)
    runs = {
        "forward": lambda: _forward(model, x),
        "vebi": lambda: vebi.attribute(x, target=y),
        "vebi_nofix": lambda: nofix.attribute(x, target=y),
        "guided_backprop": lambda: guided.attribute(x, target=y),
    }
    for fn in runs.values():  # warm-up
        fn()
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    ms = {k: 1000 * statistics.median(v) / batch for k, v in times.items()}
    return {
        "batch": batch,
        **{f"{k}_ms_per_image": v for k, v in ms.items()},
        "vebi_over_forward": ms["vebi"] / ms["forward"],
        "vebi_over_guided_backprop": ms["vebi"] / ms["guided_backprop"],
        "vebi_nofix_over_guided_backprop": ms["vebi_nofix"] / ms["guided_backprop"],
        "fit_images": n_fit,
        "fit_ms_per_image": 1000 * fit_s / n_fit,
        "relevant_per_class": rf.counts(),
    }


@torch.no_grad()
def _forward(model, x):
    return model(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--fit-images", type=int, default=60)
    p.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    args = p.parse_args()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", message=".*backward hooks.*")
    results = {name: measure(name, args.batch, args.repeats, args.fit_images) for name in MODELS}
    print(
        f"{'model':<15}{'forward':>9}{'GBP':>9}{'VEBI':>9}{'no fix':>9}"
        f"{'VEBI/fwd':>10}{'VEBI/GBP':>10}{'nofix/GBP':>11}{'fit':>9}"
    )
    for name, r in results.items():
        print(
            f"{name:<15}{r['forward_ms_per_image']:9.2f}{r['guided_backprop_ms_per_image']:9.2f}"
            f"{r['vebi_ms_per_image']:9.2f}{r['vebi_nofix_ms_per_image']:9.2f}"
            f"{r['vebi_over_forward']:10.2f}{r['vebi_over_guided_backprop']:10.2f}"
            f"{r['vebi_nofix_over_guided_backprop']:11.2f}{r['fit_ms_per_image']:9.2f}"
        )
    print(
        f"(ms per image at batch {args.batch}, median of {args.repeats}; GBP = Captum "
        "GuidedBackprop; fit = μ-lasso fit, ms per training image)"
    )
    from squeezex.io import atomic_write_json

    atomic_write_json(args.json, results)


if __name__ == "__main__":
    main()
