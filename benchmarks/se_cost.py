"""What an SE explanation costs: time against a plain forward, memory against Grad-CAM.

For resnet18 at 224×224 and the an8Flower CNN at 64×64 (both with an SE head, random
weights: cost does not depend on training), measured in one run:

* time ratio: ``SEAttribution.attribute(x, return_logits=True)`` (heatmaps + logits from
  one forward pass) over a plain ``torch.no_grad()`` forward of the same batch;
  interleaved repetitions, median of each.
* memory ratio: peak bytes of live tensors during one call at batch 64 (torch profiler's
  CPU allocator events), SE over Captum's ``LayerGradCam`` on the same layer.

Usage: ``python benchmarks/se_cost.py [--repeats 7] [--json benchmarks/se_cost.json]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from speed import peak_tensor_bytes  # benchmarks/ is the script's folder

MODELS = {"resnet18": (3, 224, 224), "an8flower-cnn": (3, 64, 64)}


def _model(name: str):
    from squeezex.models import build_model

    if name == "resnet18":
        return build_model("resnet18", 10, se=True, seed=0, input_size=MODELS[name]).eval()
    return build_model("small", 6, se=True, seed=0).eval()


def memory(name: str, batch: int) -> dict:
    from captum.attr import LayerGradCam

    from squeezex import SEAttribution, find_se_block

    model = _model(name)
    x = torch.rand(batch, *MODELS[name], generator=torch.Generator().manual_seed(0))
    se = SEAttribution(model)
    se.attribute(x[:1])  # geometry cache
    se_bytes = peak_tensor_bytes(lambda: se.attribute(x, return_logits=True))
    cam = LayerGradCam(model, find_se_block(model))
    cam_bytes = peak_tensor_bytes(lambda: cam.attribute(x, target=0))
    return {
        "memory_batch": batch,
        "se_peak_mb": se_bytes / 2**20,
        "gradcam_peak_mb": cam_bytes / 2**20,
        "memory_ratio": se_bytes / max(cam_bytes, 1),
    }


def time_ratio(name: str, batch: int, repeats: int) -> dict:
    from squeezex import SEAttribution

    model = _model(name)
    x = torch.rand(batch, *MODELS[name], generator=torch.Generator().manual_seed(0))
    se = SEAttribution(model)
    se.attribute(x[:2], return_logits=True)
    with torch.no_grad():
        model(x)
    fwd, exp = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.no_grad():
            model(x)
        fwd.append(time.perf_counter() - t)
        t = time.perf_counter()
        se.attribute(x, return_logits=True)
        exp.append(time.perf_counter() - t)
    f, e = statistics.median(fwd), statistics.median(exp)
    return {"batch": batch, "forward_ms": 1000 * f, "se_ms": 1000 * e, "time_ratio": e / f}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--time-batch", type=int, default=32)
    p.add_argument("--memory-batch", type=int, default=64)
    p.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    args = p.parse_args()
    torch.set_num_threads(2)
    results = {}
    for name in MODELS:
        results[name] = {
            **time_ratio(name, args.time_batch, args.repeats),
            **memory(name, args.memory_batch),
        }
    print(
        f"{'model':<15}{'forward ms':>12}{'SE ms':>10}{'SE/forward':>12}"
        f"{'SE MB':>10}{'Grad-CAM MB':>13}{'SE/Grad-CAM':>13}"
    )
    for name, r in results.items():
        print(
            f"{name:<15}{r['forward_ms']:12.1f}{r['se_ms']:10.1f}{r['time_ratio']:12.3f}"
            f"{r['se_peak_mb']:10.1f}{r['gradcam_peak_mb']:13.1f}{r['memory_ratio']:13.3f}"
        )
    print(
        f"(time at batch {args.time_batch}, median of {args.repeats}; memory at batch "
        f"{args.memory_batch}, peak of live tensors during one call)"
    )
    from squeezex.io import atomic_write_json

    atomic_write_json(args.json, results)


if __name__ == "__main__":
    main()
