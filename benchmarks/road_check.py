"""ROAD (squeezex.metrics.road) against pytorch-grad-cam's reference, and its cost.

Measured in one run:

* imputation: ``impute_noisy_linear(noise=0)`` against grad-cam's ``NoisyLinearImputer``
  (the paper's code, noise 0) on random images and masks: the max absolute difference.
* curves: ``road_curve(noise=0)`` against grad-cam's ``ROADMostRelevantFirst`` /
  ``ROADLeastRelevantFirst`` (imputer noise set to 0, ``return_diff=False``, softmax
  target) at its percentiles 10…90, on a small CNN: the max absolute difference of the
  class probabilities. grad-cam thresholds the map at a percentile, so the fraction each
  of its masks removes is counted and passed to ``road_curve``; the map has distinct
  values, so both remove the same pixels.
* time: ``road_curve`` (MoRF, 5 fractions, noise 0.01) on 64 images 3×64×64 with the
  an8Flower CNN (random weights), milliseconds per image; grad-cam's averaged MoRF over
  the same 5 percentiles for reference.

The comparisons are skipped when ``pytorch_grad_cam`` (and its ``cv2``) cannot be
imported; ``--gradcam-path`` adds a folder to ``sys.path`` first (e.g. a throwaway
``pip install --no-deps --target DIR grad-cam opencv-python-headless ttach``).

Usage: ``python benchmarks/road_check.py [--gradcam-path DIR] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from squeezex.metrics.road import impute_noisy_linear, road_curve

PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90]


def _gradcam():
    try:
        from pytorch_grad_cam.metrics import road
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
    except ImportError as e:  # also cv2 missing
        print(f"pytorch_grad_cam not importable ({e}): comparisons skipped")
        return None
    return road, ClassifierOutputSoftmaxTarget


def imputation_difference(road, trials: int = 40) -> float:
    """Max |ours − grad-cam's| of the noise-free imputation on random data."""
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for k in range(trials):
        h, w = [(8, 8), (16, 12), (32, 32), (5, 7), (64, 64)][k % 5]
        img = torch.rand(3, h, w, generator=g)
        removed = torch.rand(h, w, generator=g) < 0.95 * torch.rand(1, generator=g).item()
        removed.view(-1)[k % (h * w)] = False  # at least one known pixel
        theirs = road.NoisyLinearImputer(noise=0.0)(img, (~removed).float())
        ours = impute_noisy_linear(img, removed, noise=0.0)
        worst = max(worst, (theirs - ours).abs().max().item())
    return worst


def _setup(n: int = 8):
    from squeezex.models import build_model

    model = build_model("small", 6, seed=0).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, 64, 64, generator=g)
    maps = torch.rand(n, 1, 64, 64, generator=g, dtype=torch.float64).float()
    return model, x, maps


def curve_difference(road, softmax_target) -> dict:
    """Max |ours − grad-cam's| class probability, MoRF and LeRF, noise 0."""
    model, x, maps = _setup()
    with torch.no_grad():
        tgt = model(x).argmax(1)
    cams = maps[:, 0].numpy()
    targets = [softmax_target(int(t)) for t in tgt]
    out = {}
    for order, cls, pcts in (
        ("morf", road.ROADMostRelevantFirst, PERCENTILES),
        ("lerf", road.ROADLeastRelevantFirst, PERCENTILES),
    ):
        worst = 0.0
        for p in pcts:
            metric = cls(p)
            metric.perturbation.imputer.noise = 0.0
            theirs = metric(x, cams, targets, model, return_diff=False)
            for i in range(x.shape[0]):
                cam = torch.from_numpy(cams[i])
                if order == "lerf":
                    cam = 1 - cam
                kept = (cam < np.percentile(cam.numpy(), p)).sum().item()
                frac = (cam.numel() - kept) / cam.numel()
                _, ours = road_curve(
                    model, x[i : i + 1], maps[i : i + 1], tgt[i : i + 1].tolist(),
                    fractions=[frac], order=order, noise=0.0,
                )  # fmt: skip
                worst = max(worst, abs(float(theirs[i]) - ours[0, 0].item()))
        out[f"{order}_max_abs_diff"] = worst
    return out


def timing(repeats: int, road=None, softmax_target=None) -> dict:
    model, x, maps = _setup(64)
    fractions = [0.1, 0.3, 0.5, 0.7, 0.9]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        road_curve(model, x, maps, None, fractions=fractions, order="morf", batch_size=64)
        times.append(time.perf_counter() - t0)
    out = {"road_curve_ms_per_image": 1000 * statistics.median(times) / x.shape[0]}
    if road is not None:
        with torch.no_grad():
            targets = [softmax_target(int(t)) for t in model(x).argmax(1)]
        averager = road.ROADMostRelevantFirstAverage([90, 70, 50, 30, 10])
        t0 = time.perf_counter()
        averager(x, maps[:, 0].numpy(), targets, model)
        out["gradcam_morf_average_ms_per_image"] = 1000 * (time.perf_counter() - t0) / 64
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gradcam-path", default=None, help="folder to add to sys.path first")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.gradcam_path:
        sys.path.insert(0, args.gradcam_path)
    found = _gradcam()
    results: dict = {"threads": torch.get_num_threads()}
    if found is not None:
        road, target = found
        results["imputation_max_abs_diff"] = imputation_difference(road)
        results.update(curve_difference(road, target))
        results.update(timing(args.repeats, road, target))
    else:
        results.update(timing(args.repeats))
    for k, v in results.items():
        print(f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}")
    return results


if __name__ == "__main__":
    main()
