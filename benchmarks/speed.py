"""Performance report: every registered method's time per image and peak memory.

For resnet18 at 224×224 and the an8Flower CNN at 64×64 (both with an SE head and random
weights: cost does not depend on training), at batch 1 and batch 32, measured in one run:

* time per image: the median of repeated ``attribute(x, target=y)`` calls, each followed by
  a plain ``torch.no_grad()`` forward of the same batch; the ratio to a forward pass is
  the ratio of the two medians (cheap calls are repeated for about a second, calls over a
  second at least once); the ratio to Captum-backed Grad-CAM
  (squeezex's ``gradcam``, Captum ``LayerGradCam`` + the common footing);
* peak memory: the peak of live tensor bytes during one call (torch profiler's CPU
  allocator events), and its ratio to Grad-CAM's.

Methods with a fit step (VEBI) are fitted once on random images with random labels first.
Writes ``benchmarks/speed.json`` and ``benchmarks/speed.png``.

Usage: ``python benchmarks/speed.py [--repeats 5] [--models an8flower-cnn,resnet18]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

MODELS = {"an8flower-cnn": (3, 64, 64), "resnet18": (3, 224, 224)}
BATCHES = (1, 32)


def _model(name: str):
    from squeezex.models import build_model

    if name == "resnet18":
        return build_model("resnet18", 10, se=True, seed=0, input_size=MODELS[name]).eval()
    return build_model("small", 6, se=True, seed=0).eval()


def peak_tensor_bytes(fn) -> int:
    """Peak bytes of live tensors allocated while ``fn`` runs (torch profiler, CPU allocator).

    Every allocation and free is an event with its self memory; their running sum in
    time order is the live total, and its maximum the peak. Independent of the process's
    other memory (imports, thread pools), so small models are measured as well as big ones.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    live = peak = 0
    for e in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += e.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


def _explainers(model, name: str, methods: list[str]):
    from squeezex.explainers import explainer_info, get_explainer

    n_classes = model.fc.out_features
    g = torch.Generator().manual_seed(1)
    fit_data = (torch.rand(24, *MODELS[name], generator=g), torch.arange(24) % n_classes)
    fitted, out = {}, {}
    for m in methods:
        info = explainer_info(m)
        kwargs = {}
        if info.fit is not None:
            if info.fit not in fitted:
                fitted[info.fit] = info.fit(model, fit_data, progress=False)
            kwargs = fitted[info.fit]
        out[m] = get_explainer(m, model, **kwargs)
    return out


@torch.no_grad()
def _forward(model, x):
    return model(x)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _paired(fn, forward, repeats: int, budget: float) -> tuple[float, float]:
    """Median seconds of ``fn`` and of ``forward``, timed alternately (so drift, cache
    state and frequency changes hit both alike): at least ``repeats`` pairs, more for
    cheap calls until ``budget`` seconds are spent, fewer (≥ 1) for calls over a second."""
    first = _timed(fn)  # warm-up; kept as a sample for calls over a second (minutes)
    forward()
    if first >= 1.0:
        n = max(1, repeats // 3)
    else:
        first = _timed(fn)
        n = min(max(repeats, int(budget / max(first, 1e-6))), 1000)
    a, b = [first], [_timed(forward)]
    for _ in range(n - 1):
        a.append(_timed(fn))
        b.append(_timed(forward))
    return statistics.median(a), statistics.median(b)


def measure(
    name: str, batch: int, repeats: int, methods: list[str], memory: bool, budget: float = 1.0
) -> dict:
    torch.set_num_threads(2)  # (a spawned process starts from the defaults)
    warnings.filterwarnings("ignore", message=".*backward hooks.*")
    warnings.filterwarnings("ignore", message=".*required_grads has been set.*")
    model = _model(name)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *MODELS[name], generator=g)
    y = torch.arange(batch) % model.fc.out_features
    explainers = _explainers(model, name, methods)

    def forward():
        return _forward(model, x)

    deadline = time.perf_counter() + 0.5  # warm up: a fresh process's first calls are slow
    while time.perf_counter() < deadline:
        forward()
    calls = {"forward": forward}
    calls.update({m: (lambda e=e: e.attribute(x, target=y)) for m, e in explainers.items()})
    rows = {}
    for m, fn in calls.items():
        seconds, fwd_seconds = _paired(fn, forward, repeats, budget)
        rows[m] = {"ms_per_image": 1000 * seconds / batch, "over_forward": seconds / fwd_seconds}
    rows["forward"]["over_forward"] = 1.0
    if memory:  # after every timing: the profiler slows the rest of its process down
        for m, fn in calls.items():
            rows[m]["peak_mb"] = peak_tensor_bytes(fn) / 2**20
    cam = rows.get("gradcam", {})
    for r in rows.values():
        if cam:
            r["over_gradcam"] = r["ms_per_image"] / cam["ms_per_image"]
            if memory and cam.get("peak_mb"):
                r["memory_over_gradcam"] = r["peak_mb"] / cam["peak_mb"]
    return rows


def plot(results: dict, path: Path) -> None:
    import matplotlib
    from matplotlib.figure import Figure

    from squeezex.viz import STYLE, save_figure

    keys = list(results)
    with matplotlib.rc_context(STYLE):
        fig = Figure(
            figsize=(7.0, 0.25 * len(next(iter(results.values()))) + 1.2), layout="constrained"
        )
        axes = fig.subplots(1, len(keys), sharey=True, squeeze=False)[0]
        for ax, key in zip(axes, keys, strict=True):
            rows = results[key]
            names = list(rows)
            vals = [rows[m]["over_forward"] for m in names]
            ax.barh(names, vals, color="#0072B2")
            ax.axvline(1.0, color="#D55E00", lw=0.8)
            ax.set_xscale("log")
            ax.set_title(key, fontsize=7)
            ax.set_xlabel("time / forward pass")
        axes[0].invert_yaxis()
    save_figure(fig, path)


def main() -> None:
    from squeezex import list_explainers

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=float, default=1.0, help="seconds per cheap method")
    p.add_argument(
        "--merge", action="store_true", help="update these rows of an existing --json file"
    )
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--methods", default="all", help="comma-separated registry names or 'all'")
    p.add_argument("--batches", default=",".join(map(str, BATCHES)))
    p.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    p.add_argument("--png", default=str(Path(__file__).with_suffix(".png")))
    args = p.parse_args()
    methods = list_explainers() if args.methods == "all" else args.methods.split(",")
    results = {}
    if args.merge and Path(args.json).is_file():  # re-measure some rows, keep the others
        results = json.loads(Path(args.json).read_text())
    for name in args.models.split(","):
        for batch in map(int, args.batches.split(",")):
            key = f"{name} batch {batch}"
            # each configuration in a fresh process: the torch profiler (peak memory)
            # leaves its process many times slower, and the warm state of one model
            # would favour the next
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
                results[key] = ex.submit(
                    measure, name, batch, args.repeats, methods, True, args.budget
                ).result()
            print(f"\n{key}")
            print(
                f"{'method':<22}{'ms/img':>10}{'×forward':>10}{'×Grad-CAM':>11}"
                f"{'peak MB':>10}{'mem ×Grad-CAM':>15}"
            )
            for m, r in results[key].items():
                print(
                    f"{m:<22}{r['ms_per_image']:10.2f}{r['over_forward']:10.2f}"
                    f"{r.get('over_gradcam', float('nan')):11.2f}{r.get('peak_mb', 0):10.1f}"
                    f"{r.get('memory_over_gradcam', float('nan')):15.2f}"
                )
    from squeezex.io import atomic_write_json

    atomic_write_json(args.json, results)
    plot(results, Path(args.png))
    print(f"\nwrote {args.json} and {args.png}")


if __name__ == "__main__":
    main()
