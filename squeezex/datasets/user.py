"""A user's image folder as a benchmark dataset (``squeezex bench --data FOLDER``).

The folder is torchvision's ImageFolder layout, ``<root>/<class>/<image>``, walked and
read as :mod:`squeezex.images` says (images found recursively inside each class folder,
hidden names skipped, images at the top level left out with a warning; 16-bit images
scaled, EXIF orientation applied, transparency on white). Masks are optional: a parallel
tree ``<root>_MASK/<class>/<image>.png`` (an8Flower's layout, the same sub-folders; any
non-zero pixel is part of the explanation, a transparent pixel is not: masks are read
on black) turns on the localisation metrics; without it
the run scores what needs no ground truth (faithfulness, sanity, complexity, cost) and
says why it skipped localisation. The images are split into train and test by a seeded
draw per class (a fifth of each class is test), resized to the run's size.

Example:
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp()) / "pets"
    >>> for c in ("cat", "dog"):
    ...     (root / c).mkdir(parents=True)
    ...     for i in range(5):
    ...         Image.fromarray(np.full((40, 30, 3), 60 * i, np.uint8)).save(root / c / f"{i}.png")
    >>> spec = register_folder(root)
    >>> spec.name, spec.masks
    ('folder-pets', False)
    >>> test = spec.build("test", size=32)
    >>> test.images.shape, test.classes
    (torch.Size([2, 3, 32, 32]), ['cat', 'dog'])
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..images import IMAGE_SUFFIXES, find_classes, list_images, read_image
from .base import TensorSplit
from .registry import _REGISTRY, DatasetSpec

__all__ = ["register_folder", "FolderSplit", "IMAGE_SUFFIXES", "TEST_FRACTION"]

#: the share of each class's images that is test
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class FolderSpec(DatasetSpec):
    """A registered folder: its key holds the folder's path and listing (names, sizes,
    modification times), so cells and cached splits of a changed folder are not reused."""

    root: str = ""
    digest: str = ""
    why_no_masks: str | None = None

    def key(self) -> str:
        return repr((super().key(), self.root, self.digest))


class FolderSplit(TensorSplit):
    """One split of a folder held as tensors, like the generated datasets."""

    def __init__(self, images, masks, targets, classes, files) -> None:
        self.images, self.masks, self.targets = images, masks, targets
        self.classes, self.files = list(classes), list(files)


class _Folder:
    """The builder of a registered folder (``builder(split, *, n_per_class, size,
    seed)``)."""

    def __init__(self, root: Path, mask_root: Path | None, samples, classes) -> None:
        self.root, self.mask_root, self.samples, self.classes = root, mask_root, samples, classes

    def build(self, split: str, *, n_per_class: int | None, size: int, seed: int) -> FolderSplit:
        chosen = []
        for label in range(len(self.classes)):
            idx = [i for i, s in enumerate(self.samples) if s[2] == label]
            order = torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))
            n_test = max(1, round(len(idx) * TEST_FRACTION)) if len(idx) > 1 else 0
            part = order[:n_test] if split == "test" else order[n_test:]
            part = sorted(idx[int(j)] for j in part)
            chosen += part[:n_per_class] if n_per_class else part
        images, masks, files = [], [], []
        for i in chosen:
            image, mask = self._read(i, size)
            images.append(image)
            masks.append(mask)
            files.append(str(self.samples[i][0]))
        if not images:
            raise ValueError(
                f"--data {self.root}: no {split} image (each class needs at least 2 images, "
                "one to test)"
            )
        targets = torch.tensor([self.samples[i][2] for i in chosen])
        return FolderSplit(torch.stack(images), torch.stack(masks), targets, self.classes, files)

    def _read(self, i: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, mask_path, _ = self.samples[i]
        img = read_image(path, "RGB")
        if mask_path is not None:
            mask = read_image(mask_path, "L", background=0)
            if mask.size != img.size:
                raise ValueError(
                    f"mask {mask_path} is {mask.size[0]}×{mask.size[1]} but image {path} is "
                    f"{img.size[0]}×{img.size[1]}: a mask must match its image"
                )
            if not mask.getbbox():
                raise ValueError(
                    f"mask {mask_path} is empty: mark at least one pixel of {path.name}'s "
                    f"explanation (or move {self.mask_root} away to skip localisation)"
                )
            mask = mask.resize((size, size), Image.NEAREST)
            mask_t = torch.from_numpy(np.asarray(mask) > 0)[None]
        else:
            mask_t = torch.zeros(1, size, size, dtype=torch.bool)
        img = img.resize((size, size), Image.BILINEAR)
        return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1), mask_t


def register_folder(root, *, mask_root=None, name: str | None = None) -> FolderSpec:
    """Register the ImageFolder at ``root`` as the single-label benchmark dataset
    ``folder-<its name>`` (or ``name``) and return its spec; registering again replaces
    it. Its key holds the folder's path and listing, so the cells, splits and models of
    another folder of the same name, or of this one changed, are not reused.
    ``mask_root`` defaults to ``<root>_MASK`` when that folder exists.

    Raises:
        ValueError: no such folder, no class folders, a class with no image, an image
            without its mask when there are masks (named).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--data {root}: no such folder")
    classes = find_classes(root)
    if len(classes) < 2:
        raise ValueError(
            f"--data {root} needs one folder per class (at least 2), <class>/<image>; "
            f"found {len(classes)}"
        )
    masks = Path(mask_root) if mask_root is not None else Path(str(root) + "_MASK")
    has_masks = masks.is_dir()
    if mask_root is not None and not has_masks:
        raise ValueError(f"mask folder {masks} does not exist")
    found = list_images(root, label="--data")
    samples, listing = [], []
    for f, label in zip(found.files, found.labels, strict=True):
        rel = f.relative_to(root)
        mask = _mask_for(masks, rel) if has_masks else None
        if has_masks and mask is None:
            raise ValueError(f"no mask for {f} under {masks / rel.parent} (same file name)")
        samples.append((f, mask, label))
        stat = f.stat()
        listing.append((rel.as_posix(), stat.st_size, stat.st_mtime_ns))
        if mask is not None:
            m = mask.stat()
            listing.append(("mask:" + mask.relative_to(masks).as_posix(), m.st_size, m.st_mtime_ns))
    digest = hashlib.sha256(repr(listing).encode()).hexdigest()[:16]
    base = name or "folder-" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name) or "data")
    where = str(root.resolve())
    n = max(sum(s[2] == k for s in samples) for k in range(len(classes)))  # caps nothing
    why = None if has_masks else f"no masks: {masks} does not exist (the an8Flower layout)"
    spec = FolderSpec(
        base, _Folder(root, masks if has_masks else None, samples, classes).build,
        f"the image folder {where}", "single-label", n, n,
        masks=has_masks, root=where, digest=digest, why_no_masks=why,
    )  # fmt: skip
    _REGISTRY[base] = spec
    return spec


def _mask_for(mask_root: Path, rel: Path) -> Path | None:
    """The mask of the image at ``rel`` (relative to the root): same sub-folders, same
    name, its extension or .png, .jpg, .bmp."""
    for ext in (rel.suffix, ".png", ".jpg", ".bmp"):
        if (cand := mask_root / rel.parent / (rel.stem + ext)).is_file():
            return cand
    return None
