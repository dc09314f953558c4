"""The SE explanation's channel-selection rules, and the small CNN's global pooling, on an8Flower.

Two design choices rest on this measurement:

* ``SEAttribution``'s default rule, ``"weighted"`` (every channel, weighted by its SE
  entry), against the paper's literal z-score rule (``"paper"``), the same rule on the
  pre-sigmoid excitation (``"logit"``) and the top 10 % (``"topk"``);
* ``SmallCNN``'s head, global **max** pooling, against global average pooling (``pool="avg"``).

For three of the benchmark's models — an8Flower single-6c and double-12c with the default
max-pooling head, and single-6c with ``pool="avg"`` (the benchmark's own recipe and
checkpoints: ``squeezex.bench.trained_model``, seed 0, with SE; trained on first use, a
few minutes each on one core, and cached under ``data/checkpoints``; then the script takes
about a minute and a half of CPU, most of it generating the datasets) — it measures on the
test split: accuracy; the SE vector s (median, 5th and 95th percentile, the per-channel
spread across images, and how often the paper's rule selects nothing and falls back to the
strongest channel); and the pointing game and energy pointing game against the
discriminative part's mask of every rule, of ``activation-mean`` (s := 1) and of Grad-CAM
on the same layer. Prints a table and writes ``benchmarks/se_rules.json``.

Usage: ``python benchmarks/se_rules.py [--json benchmarks/se_rules.json]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

#: (dataset, head pooling) of the models measured
MODELS = [
    ("an8flower-single-6c", "max"),
    ("an8flower-double-12c", "max"),
    ("an8flower-single-6c", "avg"),
]
RULES = ("weighted", "paper", "logit", "topk")
OTHERS = ("activation-mean", "gradcam")


def _maps(explainer, x, y, batch: int = 64) -> torch.Tensor:
    return torch.cat(
        [
            explainer.attribute(x[i : i + batch], target=y[i : i + batch])
            for i in range(0, len(x), batch)
        ]
    )


def se_vector_stats(model, x) -> dict:
    """Where the SE entries lie, how much they vary across images, and how often the
    paper's rule selects nothing (the rule then takes the strongest channel)."""
    from squeezex import SEAttribution

    v = SEAttribution(model, selection="paper").se_vector(x)
    q = torch.quantile(v.s.flatten(), torch.tensor([0.05, 0.5, 0.95]))
    return {
        "s_p05": q[0].item(),
        "s_median": q[1].item(),
        "s_p95": q[2].item(),
        "s_spread_across_images": v.s.std(0).mean().item(),
        "paper_fallback_share": v.fallback.float().mean().item(),
        "paper_channels_selected": v.selected.sum(1).float().mean().item(),
    }


def measure(dataset: str, pool: str) -> dict:
    from squeezex import SEAttribution, get_explainer
    from squeezex.bench import BenchConfig, trained_model
    from squeezex.bench.models import splits
    from squeezex.metrics import energy_pointing_game, pointing_game
    from squeezex.training import evaluate

    cfg = BenchConfig(dataset=dataset, pool=pool, progress=False)
    _, test = splits(cfg, dataset)
    model = trained_model(cfg, dataset)
    x, y = test.images.float() / 255, test.targets
    explainers = {rule: SEAttribution(model, selection=rule) for rule in RULES}
    explainers.update({name: get_explainer(name, model) for name in OTHERS})
    scores = {}
    for name, ex in explainers.items():
        maps = _maps(ex, x, y)
        scores[name] = {
            "pointing_game": pointing_game(maps, test.masks).mean().item(),
            "energy_pointing_game": energy_pointing_game(maps, test.masks).mean().item(),
        }
    return {
        "dataset": dataset,
        "pool": pool,
        "n_test": len(test),
        "accuracy": evaluate(model, test),
        "se_vector": se_vector_stats(model, x),
        "scores": scores,
    }


def report(rows: list[dict]) -> None:
    names = list(RULES) + list(OTHERS)
    print(f"{'model':<28}{'acc':>6}  " + "".join(f"{n:>17}" for n in names))
    for r in rows:
        cells = "".join(
            f"{r['scores'][n]['pointing_game']:9.3f} /{r['scores'][n]['energy_pointing_game']:6.3f}"
            for n in names
        )
        print(f"{r['dataset'] + ' ' + r['pool']:<28}{r['accuracy']:6.3f}  {cells}")
    print("(pointing game / energy pointing game on the test split)\n")
    for r in rows:
        v = r["se_vector"]
        print(
            f"{r['dataset'] + ' ' + r['pool']:<28} s: median {v['s_median']:.3f} "
            f"[5 %: {v['s_p05']:.3f}, 95 %: {v['s_p95']:.3f}], spread across images "
            f"{v['s_spread_across_images']:.3f}; paper rule: "
            f"{v['paper_channels_selected']:.1f} channels, falls back on "
            f"{100 * v['paper_fallback_share']:.0f} % of images"
        )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    args = p.parse_args(argv)
    from squeezex.io import atomic_write_json

    rows = []
    for dataset, pool in MODELS:
        rows.append(measure(dataset, pool))
        atomic_write_json(args.json, rows)
    report(rows)


if __name__ == "__main__":
    main()
