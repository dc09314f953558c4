"""``squeezex squeeze``: a model held the way users hold one (a builder name and a local
state-dict file), an image folder, and :func:`squeezex.squeeze`, written as a checkpoint
that records everything needed to rebuild the model
(:func:`squeezex.models.records.rebuild`; ``squeezex explain --model`` reads it).

The images are read in [0, 1] and the model gets its normalisation as its first layer
(:class:`~squeezex.models.Normalize`, ImageNet's mean and std unless told otherwise), so
the checkpoint's model takes pixels, as every explainer and metric of squeezex gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..io import ensure_folder
from ..models import IMAGENET_MEAN, IMAGENET_STD, Normalize
from ..models.records import arch_record, build_backbone, load_weights
from ..squeezing import TRAIN, SqueezeReport, squeeze
from ..training import save_checkpoint
from .bulk import _norm, open_data

__all__ = ["SqueezeJob", "run_squeeze"]


@dataclass
class SqueezeJob:
    """What ``squeezex squeeze`` does (see the command's ``--help``)."""

    arch: str
    data: str
    out: str
    weights: str | None = None
    val: str | None = None
    val_split: float = 0.2
    size: int = 224
    mean: tuple[float, ...] | None = IMAGENET_MEAN
    std: tuple[float, ...] | None = IMAGENET_STD
    train: str = "se"
    gate: str = "normalised"
    epochs: int = 5
    lr: float | None = None
    layer: str | None = None
    batch_size: int = 32
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    select: float = 0.0

    def __post_init__(self) -> None:
        if self.train not in TRAIN:
            raise ValueError(f"--train must be one of {', '.join(TRAIN)}, got {self.train!r}")
        if self.val is None and not 0 < self.val_split < 1:
            raise ValueError(f"--val-split must be in (0, 1), got {self.val_split}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both --mean and --std, or --no-normalize")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"--std must be numbers > 0 (one per channel), got {self.std}")
        if self.weights is not None and not Path(self.weights).is_file():
            raise FileNotFoundError(f"--weights {self.weights}: no such file")
        out = Path(self.out)
        if out.is_dir():
            raise ValueError(f"--out {out} is a folder: name the checkpoint file (.pt)")
        ensure_folder(out.parent, "--out's folder")  # before training, not after


def _datasets(job: SqueezeJob):
    """(train, val, classes) from the folders: ``--val`` as given, or a seeded split of
    ``--data`` (``--val-split`` of its images)."""
    data = open_data(job.data, job.size)
    if not Path(job.data).is_dir() or data.classes is None:
        raise ValueError(f"--data {job.data} must be an image folder with one folder per class")
    classes = data.classes
    if job.val is not None:
        val = open_data(job.val, job.size)
        known = {_norm(c) for c in classes}
        extra = [c for c in val.classes or [] if _norm(c) not in known]
        if extra or val.classes is None:
            raise ValueError(
                f"--val {job.val} has classes the training data does not: "
                f"{', '.join(extra) or 'no class folders'}"
            )
        val = open_data(job.val, job.size, classes=classes)
        return _Pairs(data.dataset), _Pairs(val.dataset), classes
    n = len(data.dataset)
    n_val = max(1, round(n * job.val_split))
    if n - n_val < 1:
        raise ValueError(f"--data {job.data}: {n} images leave none to train on")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(job.seed)).tolist()
    pairs = _Pairs(data.dataset)
    train = torch.utils.data.Subset(pairs, order[n_val:])
    val = torch.utils.data.Subset(pairs, order[:n_val])
    return train, val, classes


class _Pairs(torch.utils.data.Dataset):
    """A folder's ``(image, label, index)`` items as ``(image, label)``."""

    def __init__(self, ds) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        x, y, _ = self.ds[i]
        return x, y


def _model(job: SqueezeJob, num_classes: int) -> nn.Module:
    model = build_backbone(job.arch, num_classes)
    if job.weights is not None:
        try:
            state = torch.load(job.weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"--weights {job.weights} is not a readable state dict "
                             f"({type(exc).__name__})") from None  # fmt: skip
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            raise ValueError(f"--weights {job.weights} holds no state dict")
        load_weights(model, state, f"--weights {job.weights}")
    if job.mean is not None:
        model = nn.Sequential(Normalize(job.mean, job.std), model)
    return model.eval()


def run_squeeze(job: SqueezeJob) -> tuple[Path, SqueezeReport]:
    """Squeeze the job's model on its data; write the checkpoint (atomically) and return
    its path and the report."""
    train, val, classes = _datasets(job)
    model = _model(job, len(classes))
    squeezed, report = squeeze(
        model, train, layer=job.layer, train=job.train, gate=job.gate, epochs=job.epochs, lr=job.lr,
        val_data=val, batch_size=job.batch_size, seed=job.seed, device=job.device,
        progress=job.progress, select=job.select,
    )  # fmt: skip
    builder = job.arch if ":" in job.arch else f"torchvision:{job.arch}"
    arch = arch_record(builder, squeezed.cpu(), classes=classes, size=job.size,
                       weights=job.weights, squeezed=report.to_dict())  # fmt: skip
    path = save_checkpoint(Path(job.out), squeezed, arch=arch)
    return path, report
