"""VEBI stage 1: every channel of the chosen layers is one feature (its energy)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ...common import eval_mode, make_loader, select_output, split_batch
from ...progress import progress as progress_bar
from .backward import _CONV, _RELU, _Tracer

__all__ = ["default_layers", "extract_features", "FeatureSet"]

_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_FEATURE_TYPES = (*_CONV, *_RELU, *_POOL)


def default_layers(model: nn.Module, example: torch.Tensor, *extra) -> list[str]:
    """Dotted names of every conv, ReLU and (non-adaptive) pool whose output is spatial.

    One dry forward pass on ``example`` decides which modules run and have more than one
    position (the SE block's 1×1 convolutions and the head are not features).
    """
    found: dict[str, bool] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, _FEATURE_TYPES):

            def hook(module, args, output, name=name):
                found[name] = (
                    isinstance(output, torch.Tensor)
                    and output.dim() >= 3
                    and math.prod(output.shape[2:]) > 1
                )

            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad(), eval_mode(model):
            model(example[:1], *extra)
    finally:
        for h in handles:
            h.remove()
    layers = [name for name, _ in model.named_modules() if found.get(name)]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no conv, ReLU or pool module with a spatial output; "
            "VEBI needs a CNN (pass layers=[...] to choose modules)"
        )
    return layers


@dataclass
class FeatureSet:
    """What :func:`extract_features` returns: N×m features and the labels seen."""

    X: torch.Tensor
    targets: torch.Tensor
    predictions: torch.Tensor
    layers: list[str]
    features: list[tuple[str, int]]
    #: The number of classes (the width of the model's selected logits).
    n_outputs: int = 0


def extract_features(
    model: nn.Module,
    data,
    layers: Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "VEBI features",
    output: int | str | None = None,
) -> FeatureSet:
    """VEBI features of every item of ``data`` (a Dataset, a DataLoader or ``(x, y)``).

    Runs under ``no_grad`` in eval mode (restored afterwards) with a progress bar.
    ``output`` picks the head of a model that returns several (see
    :func:`squeezex.common.select_output`).

    Returns:
        A :class:`FeatureSet`: ``X`` (N×m float64), ground-truth ``targets``, the
        model's ``predictions``, the ``layers`` and the (layer, channel) of each column.
    """
    loader = make_loader(data, batch_size)
    xs, ys, preds = [], [], []
    sizes: dict[str, int] = {}
    width = 0
    with eval_mode(model), torch.no_grad():
        for batch in progress_bar(loader, desc=desc, disable=not progress):
            x, y = split_batch(batch)
            x = x.to(device)
            if layers is None:
                layers = default_layers(model, x)
            with _Tracer(model, layers) as tr:
                logits = select_output(model(x), output)
            xs.append(tr.features())
            width = logits.shape[1]
            sizes = {n: tr.energy[n].shape[1] for n in layers}
            ys.append(torch.as_tensor(y).long().cpu())
            preds.append(logits.argmax(1).cpu())
    if not xs:
        raise ValueError("data is empty")
    features = [(n, c) for n in layers for c in range(sizes[n])]
    return FeatureSet(
        torch.cat(xs).cpu(), torch.cat(ys), torch.cat(preds), list(layers), features, width
    )
