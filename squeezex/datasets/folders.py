"""Write a generated split as PNG folders in the layout :class:`An8FlowerFolder` reads."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import ensure_folder

__all__ = ["write_folders"]


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.replace("+", "and")).strip("_") or "class"


def write_folders(dataset, out, *, prefix: str = "") -> tuple[Path, Path]:
    """Write ``dataset`` as ``<out>/<class>/<prefix><i>.png`` with its masks in the parallel
    tree ``<out>_MASK`` (white where the mask is set), the layout of the real an8Flower.

    ``dataset`` holds its split as tensors (a generator of :mod:`squeezex.datasets`):
    ``images`` (N×C×H×W uint8), ``masks`` (N×1×H×W bool), ``targets`` and ``classes``.
    Files are written as they are made (a PNG each); existing files are replaced.

    Returns:
        The image and mask roots.

    Raises:
        ValueError: ``out`` is a file, lies under one, or is not writable.
    """
    for name in ("images", "masks", "targets", "classes"):
        if not hasattr(dataset, name):
            raise ValueError(f"{type(dataset).__name__} has no {name!r}: it cannot be written")
    if dataset.targets.dim() != 1:  # N×K 0/1 targets: a multi-label dataset
        raise ValueError(
            f"{type(dataset).__name__} is multi-label (one 0/1 target per attribute): it has "
            "no class folders to write; use it from Python (e.g. squeezex.datasets."
            "SyntheticFaces), or save its tensors with torch.save"
        )
    out = Path(out)
    mask_out = Path(str(out) + "_MASK")
    for root in (out, mask_out):
        ensure_folder(root)
    for i in range(len(dataset.targets)):
        cls = _folder_name(dataset.classes[int(dataset.targets[i])])
        image = dataset.images[i].permute(1, 2, 0).numpy()
        mask = dataset.masks[i].any(0).numpy().astype(np.uint8) * 255
        for root, arr in (
            (out, image[..., 0] if image.shape[-1] == 1 else image),
            (mask_out, mask),
        ):
            (root / cls).mkdir(exist_ok=True)
            Image.fromarray(arr).save(root / cls / f"{prefix}{i:05d}.png")
    return out, mask_out
