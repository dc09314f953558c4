"""Image files as squeezex reads them: one reader for every file a user hands over, and
the walk of an image folder (torchvision's ImageFolder layout, or flat).

:func:`read_image` opens any file Pillow reads and returns an 8-bit ``"RGB"`` or ``"L"``
image, the file closed. Its rules, the same for every reader of squeezex:

* **bit depth** — 16-bit images (modes ``I;16``, ``I;16B``, ...) are *scaled* to 8 bits,
  0..65535 → 0..255 (divided by 257, rounded), never clipped: a picture saved with 8 bits
  and with 16 bits (each value ×257) reads back as the same pixels. 32-bit integer
  images (mode ``I``: what Pillow opens a 16-bit PGM as) are read on the same 16-bit
  scale; values below 0 or above 65535 are clipped. Float images (mode ``F``) whose
  values all lie in [0, 1] are read as [0, 1] (×255, the float-image convention);
  any other float image is read on Pillow's own 0..255 scale (its ``L`` → ``F``
  conversion), clipped to it; NaN reads as 0. A 16-bit colour PNG, which Pillow opens
  as 8-bit RGB(A), keeps Pillow's high byte (the same rule for 8-bit values ×257).
* **orientation** — the EXIF Orientation tag is applied
  (:func:`PIL.ImageOps.exif_transpose`): the pixels come out as a viewer shows them.
* **transparency** — an alpha channel (modes ``LA``, ``RGBA``, ``PA``; a palette or a
  colour with a transparent entry) is composited on ``background``, white unless told
  (the transparent entry of a 16-bit grey PNG is ignored).
* **several frames** (an animated GIF, a multi-page TIFF) — the first frame is read.
* **colour** — every other mode (``1``, ``P``, ``CMYK``, ``YCbCr``, ...) is converted
  by Pillow (``CMYK`` without its ICC profile).
* **broken files** — a truncated or corrupt file, a text file named ``.png``, an empty
  file, a folder, or an image above Pillow's decompression-bomb limit raise
  :class:`ImageReadError` (a :class:`ValueError`) naming the path and the reason; a
  missing path raises :class:`FileNotFoundError`.

:func:`list_images` walks a folder as torchvision's ``ImageFolder`` does
(``find_classes`` and ``make_dataset``): each top-level sub-folder is a class (sorted by
name, label = its position), and its images are found *recursively* (a nested folder
counts for its class), by extension (:data:`IMAGE_SUFFIXES`, any case), in
ImageFolder's order (folders by path, then files by name). Two differences, both
deliberate:

* **hidden names are skipped** — a file or folder whose name starts with ``.`` (at any
  depth) is not read. ImageFolder takes a hidden folder such as ``.ipynb_checkpoints``
  as a class, and a macOS ``._photo.jpg`` resource file as an image, that no reader
  opens;
* **images at the top level are not dropped silently** — ImageFolder ignores them; here
  they are left out too (they have no class) but with an :class:`ImageFolderWarning` (a
  :class:`UserWarning`) that says how many, names one, and points at the flat mode.

A class folder with no image is an error (as ImageFolder's), naming the folder. With
``flat=True`` every image under the folder, recursively and without classes, is read
(labels -1); a folder with no class sub-folder is read flat without being asked.

Example:
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("cat/a.png", "cat/old/b.PNG", "dog/c.png", ".ipynb_checkpoints/d.png"):
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     Image.fromarray(np.zeros((4, 4), np.uint16)).save(root / name)  # 16-bit
    >>> found = list_images(root)
    >>> found.classes, [str(f.relative_to(root)) for f in found.files], found.labels
    (['cat', 'dog'], ['cat/a.png', 'cat/old/b.PNG', 'dog/c.png'], [0, 0, 1])
    >>> read_image(found.files[0]).mode, read_image(found.files[0], "L").size
    ('RGB', (4, 4))
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["IMAGE_SUFFIXES", "ImageReadError", "ImageFolderWarning", "ImageList", "read_image",
           "upright_size", "list_images", "find_classes", "is_image_file"]  # fmt: skip

#: The extensions of the files read as images, matched in any case (torchvision's
#: ``IMG_EXTENSIONS``).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

_MODES = ("RGB", "L")
_WIDE = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # read on the 16-bit scale
_ALPHA = ("LA", "La", "RGBA", "RGBa", "PA")


class ImageReadError(ValueError):
    """A file that is not a readable image; the message names the file and the reason."""


class ImageFolderWarning(UserWarning):
    """Images of a folder left out of its reading (at the top level, beside class folders)."""


# -- reading one image --------------------------------------------------------------------------
def read_image(path, mode: str = "RGB", *, background=(255, 255, 255)) -> Image.Image:
    """The image in the file at ``path``, 8-bit, in ``mode`` (``"RGB"`` or ``"L"``), with
    the rules of :mod:`squeezex.images` (16-bit scaled, EXIF orientation applied, alpha
    composited on ``background``, the first frame); the file is closed.

    Args:
        path: the image file.
        mode: ``"RGB"`` or ``"L"``.
        background: the colour transparent pixels are composited on: an RGB triple or one
            grey level, 0..255 (default white).

    Raises:
        ImageReadError: the file is not a readable image (named, with the reason).
        FileNotFoundError: no such file.
        ValueError: ``mode`` or ``background`` is not one of the above.
    """
    if mode not in _MODES:
        raise ValueError(f"read_image: mode must be 'RGB' or 'L', got {mode!r}")
    fill = _background(background)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no image file at {path}")
    if path.is_dir():
        raise ImageReadError(f"{path} is not a readable image: it is a folder")
    image = _decode(path)
    try:
        return _to_8bit(image, fill).convert(mode)
    except (ValueError, OSError) as exc:  # a mode Pillow cannot convert (LAB, say)
        raise ImageReadError(f"{path} is not a readable image: its mode {image.mode} "
                             f"cannot be converted to {mode} ({exc})") from None  # fmt: skip


#: EXIF orientations that turn the picture a quarter (width and height swap).
_QUARTER_TURNS = (5, 6, 7, 8)


def upright_size(path) -> tuple[int, int]:
    """``(width, height)`` of the image :func:`read_image` gives for ``path``, read from
    the file's header (no pixels decoded; EXIF orientation applied).

    Raises:
        ImageReadError: the file is not a readable image (named, with the reason).
        FileNotFoundError: no such file.
    """
    try:
        with Image.open(path) as im:
            w, h = im.size
            turned = im.getexif().get(0x0112) in _QUARTER_TURNS  # the Orientation tag
    except FileNotFoundError:
        raise
    except Exception:  # the reader says why, in its words
        read_image(path)
        raise
    return (h, w) if turned else (w, h)


def _background(background) -> tuple[int, int, int]:
    fill = (background,) * 3 if isinstance(background, int) else tuple(background)
    if len(fill) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in fill):
        raise ValueError(
            f"read_image: background must be an RGB triple or a grey level in 0..255, "
            f"got {background!r}"
        )
    return fill


def _decode(path: Path) -> Image.Image:
    """The first frame, loaded (a truncated file fails here, not later) and turned upright."""
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im)  # a copy: independent of the closed file
    except Image.DecompressionBombError as exc:
        reason = f"larger than Pillow's decompression-bomb limit ({exc})"
    except UnidentifiedImageError:
        empty = path.stat().st_size == 0
        reason = "the file is empty" if empty else "not an image format Pillow reads"
    except Exception as exc:  # any decoder failure is a broken file
        reason = str(exc) or type(exc).__name__
    raise ImageReadError(f"{path} is not a readable image: {reason}")


def _to_8bit(im: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """An ``"L"``, ``"RGB"`` or ``"1"`` image with the same picture (no alpha)."""
    if im.mode in _WIDE or im.mode == "F":
        return Image.fromarray(_scaled(np.asarray(im), im.mode), "L")
    if im.mode in _ALPHA or im.has_transparency_data:
        rgba = (im.convert("LA") if im.mode == "La" else im).convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", im.size, (*fill, 255)), rgba).convert("RGB")
    return im if im.mode in ("L", "RGB", "1") else im.convert("RGB")


def _scaled(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer or float pixel values as uint8 (the module's rules)."""
    if mode == "F":
        v = np.nan_to_num(values.astype(np.float64), nan=0.0)
        unit = v.size and v.min() >= 0 and v.max() <= 1
        return np.clip(np.rint(v * 255 if unit else v), 0, 255).astype(np.uint8)
    v = np.clip(values.astype(np.int64), 0, 65535)
    return ((v + 128) // 257).astype(np.uint8)  # round(v / 257): 257·a reads back as a


# -- walking a folder ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageList:
    """The images :func:`list_images` found: ``files[i]`` has label ``labels[i]``, the
    position of its class in ``classes`` (``None`` and -1 when read flat)."""

    root: Path
    files: list[Path]
    labels: list[int]
    classes: list[str] | None

    def __len__(self) -> int:
        return len(self.files)


def is_image_file(path) -> bool:
    """Whether ``path`` names an image by its extension (any case) and is not hidden."""
    name = Path(path).name
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def find_classes(root) -> list[str]:
    """The class folders of ``root``: its sub-folders not hidden, sorted by name."""
    return sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))


def list_images(root, *, flat: bool = False, label: str = "folder") -> ImageList:
    """The images of the folder ``root`` as ImageFolder finds them (classes = its
    sub-folders, images found recursively inside each), or with ``flat=True`` (or when
    ``root`` has no class sub-folder) every image under it without classes (labels -1).
    Hidden files and folders are skipped; top-level images beside class folders are left
    out with an :class:`ImageFolderWarning` (see :mod:`squeezex.images`).

    Args:
        root: the folder.
        flat: read every image, recursively, without classes.
        label: how error messages name the folder (an option such as ``"--data"``).

    Raises:
        ValueError: ``root`` is not a folder, holds no image, or has a class folder with
            no image (named).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{label} {root}: no such folder")
    classes = [] if flat else find_classes(root)
    if not classes:
        files = _walk(root)
        if not files:
            raise ValueError(f"{label} {root} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        return ImageList(root, files, [-1] * len(files), None)
    files, labels = [], []
    for i, cls in enumerate(classes):
        found = _walk(root / cls)
        if not found:
            raise ValueError(
                f"{label} {root}: class folder {cls!r} holds no image "
                f"({', '.join(IMAGE_SUFFIXES)}); remove it, or read the folder flat"
            )
        files += found
        labels += [i] * len(found)
    _warn_top_images(root, label)
    return ImageList(root, files, labels, classes)


def _walk(folder: Path) -> list[Path]:
    """The images under ``folder``, recursively, in ImageFolder's order (folders sorted by
    path, files by name; symbolic links followed), hidden names skipped."""
    found = []
    for where, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.append((where, sorted(n for n in names if is_image_file(n))))
    return [Path(where, n) for where, names in sorted(found) for n in names]


def _warn_top_images(root: Path, label: str) -> None:
    top = sorted(e.name for e in os.scandir(root) if e.is_file() and is_image_file(e.name))
    if top:
        warnings.warn(
            f"{label} {root}: {len(top)} image(s) at its top level (e.g. {root / top[0]}) "
            "are in no class folder and are left out; read every image without classes "
            "with the flat mode (squeezex explain --flat)",
            ImageFolderWarning,
            stacklevel=3,
        )
