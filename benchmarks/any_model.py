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

    python benchmarks/any_model.py [--only vit_b_16,swin3d_t] [--out FILE]
"""

from __future__ import annotations

import argparse
import time
import warnings

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


def _redraw_zero_heads(model: nn.Module) -> None:
    """ViT's head starts at zero (logits ≡ 0): redraw it, or nothing depends on anything."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.Linear) and not m.weight.any():
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)


def _depends(model: nn.Module, x: torch.Tensor) -> bool:
    se = find_se_block(model)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        base = model(x)
        h = se.scale_activation.register_forward_hook(
            lambda m, a, s: s * torch.rand(s.shape, generator=g, dtype=s.dtype)
        )
        try:
            changed = model(x)
        finally:
            h.remove()
    return bool((changed - base).abs().max() > 1e-6 * (1 + base.abs().max()))


def _timed(fn, repeat: int = 2) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def check(name: str, kind: str) -> dict:
    """One model: what attaching SE and explaining a random input gives."""
    row = {"model": name, "kind": kind}
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, num_classes=10).eval()
    size = declared_input_size(model) or ((3, 8, 112, 112) if kind == "video" else (3, 224, 224))
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
            fwd = _timed(lambda: model(x))
        row["cost_ratio"] = _timed(lambda: ex.attribute(x)) / fwd
        row["forward_s"] = fwd
        row["status"] = "ok" if not ex.flags else "flagged: " + ", ".join(ex.flags.values())
    except ValueError as exc:
        row["status"] = f"ValueError: {exc}"
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help="comma-separated model names (default: all)")
    p.add_argument("--out", default="benchmarks/any_model.json")
    args = p.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    rows = []
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name, kind in _builders():
        if only and name not in only:
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
