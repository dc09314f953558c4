"""Handwritten digits: scikit-learn's bundled 8×8 digits (no download) and real MNIST.

:class:`Digits` wraps ``sklearn.datasets.load_digits()`` (1797 images of 8×8 pixels,
values 0..16, shipped inside scikit-learn), split train/test by class from a seed and
upsampled, so a digit setting runs anywhere without network access.

:func:`mnist` reads the real MNIST from a local folder through
``torchvision.datasets.MNIST(..., download=False)``; it never downloads, and when the
files are missing its :class:`FileNotFoundError` says where to put which files.

Both yield ``(image, target)`` with ``image`` a float32 tensor 1×H×W in [0, 1] and
``target`` an ``int``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["Digits", "MNISTDigits", "mnist", "MNIST_FILES"]

_SPLITS = ("train", "test")
_CLASSES = [str(d) for d in range(10)]

#: The unpacked files ``torchvision.datasets.MNIST`` reads from ``<root>/MNIST/raw``.
#: It checks for all four, whichever split is asked for.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _check_size(size, *, minimum: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < minimum:
        raise ValueError(f"size must be an integer >= {minimum} pixels, got {size!r}")
    return int(size)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of N×1×h×w float images in [0, 1] to N×1×size×size, still in [0, 1]."""
    if x.shape[-2:] == (size, size):
        return x
    down = size < max(x.shape[-2:])
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=down)
    return y.clamp_(0, 1)


def _apply(image, target, transform, target_transform):
    if transform is not None:
        image = transform(image)
    if target_transform is not None:
        target = target_transform(target)
    return image, target


class Digits(Dataset):
    """scikit-learn's 8×8 handwritten digits, upsampled; ``(image, target)``, no download.

    The 1797 images of ``sklearn.datasets.load_digits()`` are split into train and test
    with ``train_test_split(..., stratify=targets, random_state=seed)``, so the split is
    a function of ``(seed, test_fraction)`` only, each class keeps its proportion in both
    parts, and the two parts are disjoint. Pixel values 0..16 are scaled to [0, 1] and
    upsampled bilinearly (``align_corners=False``) to ``size``×``size``.

    Args:
        split: ``"train"`` or ``"test"``.
        size: image side in pixels, >= 8 (the originals are 8×8).
        test_fraction: share of the 1797 images in the test split, in (0, 1); each split
            must keep at least one image per class.
        seed: decides the split; global RNG untouched.
        transform, target_transform: applied to the image (a float tensor 1×H×W in
            [0, 1]) and to the target (an ``int``).

    Attributes:
        classes: ``["0", …, "9"]``. images: N×1×size×size float32 in [0, 1].
        targets: N long. indices: N long, rows of ``load_digits()`` in this split.

    Example:
        >>> ds = Digits("train", size=16)
        >>> image, target = ds[0]
        >>> len(ds), image.shape, image.dtype, type(target).__name__
        (1437, torch.Size([1, 16, 16]), torch.float32, 'int')
    """

    def __init__(
        self,
        split: str = "train",
        *,
        size: int = 32,
        test_fraction: float = 0.2,
        seed: int = 0,
        transform=None,
        target_transform=None,
    ) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        if split not in _SPLITS:
            raise ValueError(f"split must be one of {list(_SPLITS)}, got {split!r}")
        size = _check_size(size, minimum=8)
        if not (isinstance(test_fraction, float | int) and 0 < test_fraction < 1):
            raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
        self.split, self.size, self.test_fraction, self.seed = split, size, test_fraction, seed
        self.transform, self.target_transform = transform, target_transform
        self.classes = list(_CLASSES)

        raw = load_digits()
        y = raw.target.astype(np.int64)
        try:
            train_idx, test_idx = train_test_split(
                np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=seed
            )
        except ValueError as e:
            raise ValueError(
                f"test_fraction={test_fraction!r} leaves a split with fewer images than "
                f"the {len(self.classes)} classes ({e})"
            ) from None
        idx = np.sort(train_idx if split == "train" else test_idx)
        x = torch.from_numpy(raw.images[idx].astype(np.float32) / 16.0)[:, None]
        self.images = _resize(x, size).contiguous()
        self.targets = torch.from_numpy(y[idx])
        self.indices = torch.from_numpy(idx.astype(np.int64))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return _apply(self.images[i], int(self.targets[i]), self.transform, self.target_transform)

    def __repr__(self) -> str:
        return (
            f"Digits(split={self.split!r}, n={len(self)}, size={self.size}, "
            f"test_fraction={self.test_fraction}, seed={self.seed}, classes={len(self.classes)})"
        )


class MNISTDigits(Dataset):
    """Real MNIST read from a local folder (never downloaded); ``(image, target)``.

    Build it with :func:`mnist`. Images are kept as torchvision reads them (uint8,
    ``data``: N×28×28) and turned into a float32 1×H×W tensor in [0, 1], resized
    bilinearly to ``size`` if given, per item.

    Attributes:
        classes: ``["0", …, "9"]``. data: N×28×28 uint8 (as in the files).
        targets: N long. root, train, size.
    """

    def __init__(self, root, train: bool, size, data, targets, transform, target_transform):
        self.root, self.train, self.size = Path(root), train, size
        self.data, self.targets = data, targets
        self.transform, self.target_transform = transform, target_transform
        self.classes = list(_CLASSES)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        image = self.data[i].float().div_(255)[None]
        if self.size is not None:
            image = _resize(image[None], self.size)[0]
        return _apply(image, int(self.targets[i]), self.transform, self.target_transform)

    def __repr__(self) -> str:
        side = self.size if self.size is not None else self.data.shape[-1]
        return (
            f"MNISTDigits(root={str(self.root)!r}, train={self.train}, n={len(self)}, "
            f"size={side}, classes={len(self.classes)})"
        )


def _missing_mnist_message(root: Path, raw: Path, missing: list[str]) -> str:
    lines = [
        f"MNIST not found under root={str(root)!r}: torchvision reads it from {raw} "
        f"and needs all four unpacked IDX files there (for either split); missing: "
        + ", ".join(missing)
        + ".",
        f"Put {', '.join(MNIST_FILES)} in {raw} (this loader never downloads).",
    ]
    gz = [f for f in missing if (raw / f"{f}.gz").is_file()]
    if gz:
        lines.append(
            f"{raw} holds {', '.join(f + '.gz' for f in gz)}: unpack them "
            f"(gunzip -k {raw}/*.gz); torchvision does not read .gz files."
        )
    for elsewhere in (root, root / "raw", root / "mnist" / "raw"):
        found = [
            f for f in missing if (elsewhere / f).is_file() or (elsewhere / f"{f}.gz").is_file()
        ]
        if found and elsewhere != raw:
            lines.append(f"Found {', '.join(found)} (or .gz) in {elsewhere}: move them to {raw}.")
            break
    return " ".join(lines)


def _idx_header(path: Path, ndim: int) -> tuple[int, ...]:
    """The dimensions of an unsigned-byte IDX file, checked against its size."""
    data = path.read_bytes()
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise ValueError(
            f"{path} is not an IDX file of unsigned bytes with {ndim} dimension(s) "
            f"(its header is {data[:4].hex() or 'empty'}; expected 000008{ndim:02x})"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise ValueError(
            f"{path} holds {len(data)} bytes, but its header ({' × '.join(map(str, dims))}) "
            f"needs {expected}: the file is truncated or damaged"
        )
    return dims


def _check_idx_pair(images: Path, labels: Path) -> None:
    """An images file and its labels file: whole, the same count, labels 0-9."""
    n_images = _idx_header(images, 3)[0]
    n_labels = _idx_header(labels, 1)[0]
    if n_images != n_labels:
        raise ValueError(f"{images} holds {n_images} images but {labels} holds {n_labels} labels")
    values = np.frombuffer(labels.read_bytes()[8:], dtype=np.uint8)
    if len(values) and values.max() > 9:
        bad = sorted(set(values[values > 9].tolist()))
        raise ValueError(f"{labels} has labels {bad[:5]} outside the digits 0-9")


def mnist(
    root,
    train: bool = True,
    *,
    size: int | None = None,
    transform=None,
    target_transform=None,
) -> MNISTDigits:
    """The real MNIST from a local folder, never downloaded: ``(image, target)`` items.

    Reads ``torchvision.datasets.MNIST(root, train=train, download=False)``, i.e. the
    unpacked IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` in ``<root>/MNIST/raw``
    (torchvision wants all four for either split, and does not read the ``.gz`` files).

    Args:
        root: the folder that holds ``MNIST/raw``.
        train: the 60 000 training images if true, else the 10 000 test images.
        size: resize images bilinearly to ``size``×``size`` (``None`` keeps 28×28).
        transform, target_transform: applied to the image (a float tensor 1×H×W in
            [0, 1]) and to the target (an ``int``).

    Returns:
        A :class:`MNISTDigits` dataset with ``data``, ``targets`` and ``classes``.

    Raises:
        FileNotFoundError: files are missing; the message names the folder and files.
        ValueError: ``size`` is not a positive integer, or a file is not a whole IDX file
            (truncated, wrong magic number), its labels are not digits 0-9, or an images
            file and its labels file disagree on the count; the message names the file.
    """
    from torchvision.datasets import MNIST

    if size is not None:
        size = _check_size(size, minimum=1)
    root = Path(os.path.expanduser(os.fspath(root)))
    raw = root / "MNIST" / "raw"
    legacy = root / "MNIST" / "processed"
    has_legacy = (legacy / "training.pt").is_file() and (legacy / "test.pt").is_file()
    missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
    if missing and not has_legacy:
        raise FileNotFoundError(_missing_mnist_message(root, raw, missing))
    if not missing:
        _check_idx_pair(raw / MNIST_FILES[0], raw / MNIST_FILES[1])
        _check_idx_pair(raw / MNIST_FILES[2], raw / MNIST_FILES[3])
    try:
        tv = MNIST(root, train=train, download=False)
    except RuntimeError as e:  # torchvision's "Dataset not found"; should not happen
        raise FileNotFoundError(_missing_mnist_message(root, raw, list(MNIST_FILES))) from e
    return MNISTDigits(root, train, size, tv.data, tv.targets.long(), transform, target_transform)
