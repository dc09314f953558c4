"""Every torchvision classification and video model with an SE head: does it explain?

For each builder of ``torchvision.models.list_models`` (classification and video), with
random weights (never downloaded): attach an SE head (``squeezex.attach_se_head`` with
one random input of a size the model takes: the size it declares, else 224×224 images or
8×112×112 clips), check that the classifier depends on the SE vector (per-channel random
rescaling of s changes the logits; heads initialised to zero, as ViT's, are redrawn
first), and explain the input with ``SEAttribution``: map shape, finite and non-empty,
and the time of the map over the time of a plain forward pass. Prints a table and writes
``benchmarks/any_model.json`` (``--out``). Random inputs on random weights: the maps say
nothing about the images; this measures that every family *can* be explained.

    python benchmarks/any_model.py [--only vit_b_16,swin3d_t] [--out FILE] [--resume]

``--resume`` keeps the rows already in ``--out`` and checks only the models missing there.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from squeezex import SEAttribution, attach_se_head
from squeezex.io import atomic_write_json
from squeezex.models.se import declared_input_size, find_se_block


def _builders() -> list[tuple[str, str]]:
    out = [(n, "video") for n in torchvision.models.list_models(module=torchvision.models.video)]
    out += [(n, "image") for n in torchvision.models.list_models(module=torchvision.models)]
    return sorted(out, key=lambda t: (t[1], t[0]))


#: models whose fixed pooling needs more than the default clip (S3D ends in AvgPool3d((2, 7, 7)))
SIZES = {"s3d": (3, 16, 224, 224)}


def _redraw_zero_heads(model: nn.Module) -> None:
    """ViT's head starts at zero (logits ≡ 0): redraw it, or nothing depends on anything."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.Linear) and not m.weight.any():
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)


def _with_s(model: nn.Module, x: torch.Tensor, rescale) -> torch.Tensor:
    """The logits with the SE vector s replaced by ``rescale(s)``."""
    h = find_se_block(model).scale_activation.register_forward_hook(lambda m, a, s: rescale(s))
    try:
        with torch.no_grad():
            return model(x)
    finally:
        h.remove()


def _depends(model: nn.Module, x: torch.Tensor) -> bool:
    """Does a random per-channel rescaling of s move the logits, by at least 0.1 % of what
    removing the features (s = 0) does? Relative to that, not to the logits: random-weight
    EfficientNets, MobileNets, ShuffleNets and GoogLeNet have features ~1e-5…1e-13 and
    logits that are mostly the classifier's bias (GoogLeNet's ~1e-11 features are below
    float32's resolution of its logits: the check runs in float64, on a copy)."""
    model, x = copy.deepcopy(model).double(), x.double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        base = model(x)
    changed = _with_s(model, x, lambda s: s * torch.rand(s.shape, generator=g, dtype=s.dtype))
    removed = (_with_s(model, x, torch.zeros_like) - base).abs().max()
    return bool(removed > 0 and (changed - base).abs().max() > 1e-3 * removed)


def _cost_ratio(explain, forward, repeat: int = 3) -> tuple[float, float]:
    """(explanation time / forward time, forward seconds): the fastest of ``repeat``
    interleaved calls of each after a warm-up (the minimum is robust to other load on
    the machine); giant models (a call over 2 s) are timed once."""
    start = time.perf_counter()
    forward(), explain()  # warm-up
    if time.perf_counter() - start > 4.0:
        repeat = 1
    times = {forward: [], explain: []}
    for _ in range(repeat):
        for fn in times:
            start = time.perf_counter()
            fn()
            times[fn].append(time.perf_counter() - start)
    fwd = min(times[forward])
    return min(times[explain]) / fwd, fwd


def check(name: str, kind: str) -> dict:
    """One model: what attaching SE and explaining a random input gives."""
    row = {"model": name, "kind": kind}
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, num_classes=10).eval()
    size = declared_input_size(model) or SIZES.get(name)
    size = size or ((3, 8, 112, 112) if kind == "video" else (3, 224, 224))
    x = torch.rand(1, *size, generator=torch.Generator().manual_seed(0))
    row["input"] = list(size)
    try:
        attach_se_head(model, example=x)
        _redraw_zero_heads(model)
        se = find_se_block(model)
        row["site"] = next(n for n, m in model.named_modules() if m is se).removesuffix(".se")
        row["layout"] = getattr(se, "layout", "channels_first")
        row["channels"] = se.channels
        row["head_depends_on_s"] = _depends(model, x)
        ex = SEAttribution(model)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            maps = ex.attribute(x)
        row["map"] = list(maps.shape)
        row["flags"] = {str(k): v for k, v in ex.flags.items()}
        with torch.no_grad():
            row["cost_ratio"], row["forward_s"] = _cost_ratio(
                lambda: ex.attribute(x), lambda: model(x)
            )
        row["status"] = "ok" if not ex.flags else "flagged: " + ", ".join(ex.flags.values())
    except ValueError as exc:
        row["status"] = f"ValueError: {exc}"
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help="comma-separated model names (default: all)")
    p.add_argument("--out", default="benchmarks/any_model.json")
    p.add_argument("--resume", action="store_true", help="keep the rows already in --out")
    args = p.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    rows = json.loads(Path(args.out).read_text()) if args.resume and Path(args.out).exists() else []
    done = {r["model"] for r in rows}
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name, kind in _builders():
        if (only and name not in only) or name in done:
            continue
        row = check(name, kind)
        rows.append(row)
        print(
            f"{name:28s} {kind:5s} {row['status'][:60]:60s} {row.get('site', '-'):32s} "
            f"{row.get('layout', '-'):15s} {str(row.get('map', '-')):22s} "
            f"{row.get('cost_ratio', float('nan')):6.2f}× depends={row.get('head_depends_on_s')}",
            flush=True,
        )
        atomic_write_json(args.out, rows)
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"\n{ok} of {len(rows)} explained with a finite, non-empty map; the rest named above")


if __name__ == "__main__":
    main()
