"""VEBI's interpretation: average visualisations of each class's relevant features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ...progress import progress as progress_bar
from .backward import _EPS, backproject, feature_heatmap
from .features import extract_features
from .lasso import RelevantFeatures

__all__ = ["Interpretation", "interpret"]


@dataclass
class Interpretation:
    """Average visualisations of each class's relevant features (VEBI's interpretation).

    ``images[j]``: K×C×H×W signed average of the backward signals (each scaled to
    [-1, 1] before averaging); ``heatmaps[j]``: K×1×H×W average of the per-image
    heatmaps; ``examples[j]``: K×N indices into the data of the images averaged;
    ``features[j]``: (layer, channel, weight) of the K features.
    """

    classes: list[str]
    features: list[list[tuple[str, int, float]]]
    images: list[torch.Tensor]
    heatmaps: list[torch.Tensor]
    examples: list[torch.Tensor]
    stride_fix: bool = True
    n_images: int = 10


def interpret(
    model: nn.Module,
    relevant: RelevantFeatures,
    data,
    *,
    n_images: int = 10,
    max_features: int | None = 6,
    classes: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    stride_fix: bool = True,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Interpretation:
    """For each class and relevant feature, the average visualisation over the
    ``n_images`` images of that class (in ``data``) where the feature responds most.

    Args:
        max_features: show at most this many features per class (largest weights first);
            ``None`` shows all.
        classes: which classes (default: all).
    """
    relevant._check_fitted()
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        data = torch.utils.data.TensorDataset(*data)
    if isinstance(data, torch.utils.data.DataLoader):  # its order may be shuffled: index
        batch_size = data.batch_size or batch_size  # the dataset itself, in order
        data = data.dataset
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    fs = extract_features(
        model,
        data,
        relevant.layers_,
        batch_size=batch_size,
        device=device,
        progress=progress,
        desc="VEBI interpretation",
        output=getattr(relevant, "output", None),
    )
    if fs.X.shape[1] != relevant.n_features_in_:
        raise ValueError("data gives a different feature layout than the fit")
    dataset = data
    classes = list(range(len(relevant.coef_))) if classes is None else list(classes)
    names = list(class_names) if class_names is not None else getattr(dataset, "classes", None)
    feats, images, heats, examples = [], [], [], []
    for j in progress_bar(classes, desc="average visualisations", disable=not progress):
        idx_class = _members(fs.targets, j)
        rel = relevant.relevant(j)[:max_features] if len(idx_class) else []
        imgs, hs, exs = [], [], []
        for layer, c, _ in rel:
            top, mean_signal, mean_heat = _average(
                model, relevant, fs, dataset, idx_class, (layer, c), n_images, stride_fix, device
            )
            imgs.append(mean_signal)
            hs.append(mean_heat)
            exs.append(top)
        shape = (0, *_item(dataset, 0).shape)
        feats.append(rel)
        images.append(torch.stack(imgs) if imgs else torch.zeros(shape))
        heats.append(torch.stack(hs) if hs else torch.zeros(0, 1, *shape[2:]))
        examples.append(torch.stack(exs) if exs else torch.zeros(0, n_images, dtype=torch.long))
    labels = [names[j] if names is not None else str(j) for j in classes]
    return Interpretation(labels, feats, images, heats, examples, stride_fix, n_images)


def _members(targets: torch.Tensor, j: int) -> torch.Tensor:
    """The images of class ``j`` (multi-label N×K targets: the images with attribute j)."""
    return torch.nonzero(targets[:, j] == 1 if targets.dim() == 2 else targets == j).flatten()


def _average(model, relevant, fs, dataset, idx_class, feature, n_images, stride_fix, device):
    """One feature's ``n_images`` strongest images of a class, and the averages of their
    backward signals (each scaled to [-1, 1]) and of their heatmaps."""
    col = relevant.features_.index(feature)
    order = torch.argsort(fs.X[idx_class, col], descending=True, stable=True)
    top = idx_class[order[:n_images]]
    x = torch.stack([_item(dataset, int(i)) for i in top]).to(device)
    sig = backproject(model, x, feature, stride_fix=stride_fix)
    scale = sig.flatten(1).abs().max(1).values.clamp_min(_EPS)
    sig = sig / scale.reshape(-1, *([1] * (sig.dim() - 1)))
    return top, sig.mean(0).cpu(), feature_heatmap(sig).mean(0).cpu()


def _item(dataset, i: int) -> torch.Tensor:
    item = dataset[i]
    return item[0] if isinstance(item, list | tuple) else item
