"""PASCAL VOC as a ground-truth setting: the largest object's class, its boxes as the mask.

:class:`VOCMasks` reads VOC from a local folder through
``torchvision.datasets.VOCDetection(..., download=False)`` (it never downloads) and
turns each image into ``(image, target, mask)``: the target is the class of the image's
largest object, the mask the union of that class's boxes. A box is a coarse ground
truth (it holds background too), so box-based scores are upper-bounded below 1 for
every method; use them to rank methods, not as absolute numbers.

The helpers here (XML parsing, boxes to masks, resizing) are shared with
:mod:`squeezex.datasets.imagenet`, whose box files are in the same PASCAL VOC XML
schema.
"""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..images import read_image, upright_size  # read_image re-exported: others import it here

__all__ = ["VOCMasks", "VOC_CLASSES"]

#: The 20 PASCAL VOC classes, in the usual (alphabetical) order.
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
_YEARS = tuple(str(y) for y in range(2007, 2013))


class BoxObject(NamedTuple):
    """One ``<object>`` of a PASCAL VOC XML file."""

    name: str
    #: ``x1, y1, x2, y2`` as pixel edges in the image file: the box covers columns
    #: ``x1 .. x2 - 1`` and rows ``y1 .. y2 - 1`` (0-based).
    box: tuple[float, float, float, float]
    difficult: bool

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def parse_box_xml(path, *, one_based: bool) -> list[BoxObject]:
    """The objects of a PASCAL VOC XML annotation file.

    ``<bndbox>`` holds inclusive pixel indices; VOC counts them from 1
    (``one_based=True``), ImageNet's box files from 0. Both are turned into 0-based
    pixel edges (``x2 = xmax + 1`` for 0-based files, ``xmax`` for 1-based). An object
    whose box is inverted (``xmax < xmin`` or ``ymax < ymin``) or not finite, or lies
    wholly outside the image (its ``<size>``, where the file gives one), is left out with
    a warning that names the file, the object (its class and its place in the file) and
    the box; a box partly outside is kept (clipped to the image when read).

    Raises:
        ValueError: the file is not such XML; the message names the file.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
        extent = _extent(root)
        objects = []
        for number, obj in enumerate(root.iter("object"), start=1):
            bb = obj.find("bndbox")
            name = obj.findtext("name", "").strip()
            if bb is None or not name:
                continue
            x1, y1, x2, y2 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            shift = 1.0 if one_based else 0.0
            box = (x1 - shift, y1 - shift, x2 - shift + 1.0, y2 - shift + 1.0)
            if problem := _box_problem(box, extent):
                warnings.warn(
                    f"{path}: the box of {name!r} {problem} (object {number}; xmin {x1:g}, "
                    f"ymin {y1:g}, xmax {x2:g}, ymax {y2:g}); object left out",
                    stacklevel=2,
                )
                continue
            difficult = obj.findtext("difficult", "0").strip() not in ("0", "")
            objects.append(BoxObject(name, box, difficult))
    except (ET.ParseError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is not a PASCAL VOC XML annotation: {e}") from None
    return objects


def _extent(root) -> tuple[float, float] | None:
    """``(width, height)`` of an annotation's ``<size>``; ``None`` when it has none (or
    a size of 0, as some files do: unknown)."""
    try:
        w, h = (float(root.findtext(f"size/{k}")) for k in ("width", "height"))
    except (TypeError, ValueError):
        return None
    return (w, h) if w > 0 and h > 0 and math.isfinite(w * h) else None


def _box_problem(box: tuple[float, ...], extent: tuple[float, float] | None) -> str | None:
    """Why a box (0-based pixel edges) cannot be a mask, or ``None``."""
    x1, y1, x2, y2 = box
    if not all(map(math.isfinite, box)) or not (x2 > x1 and y2 > y1):
        return "is inverted or not finite"
    if extent is not None and (x2 <= 0 or y2 <= 0 or x1 >= extent[0] or y1 >= extent[1]):
        return f"lies wholly outside the {extent[0]:g}×{extent[1]:g} image"
    return None


def check_size(size) -> tuple[int, int] | None:
    """``None``, an int ``s`` (→ ``(s, s)``) or an ``(h, w)`` pair of positive ints."""
    if size is None:
        return None
    if isinstance(size, int | np.integer) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = size
        ok = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 1 or w < 1:
        raise ValueError(f"size must be None, a positive int or an (h, w) pair, got {size!r}")
    return int(h), int(w)


def load_image(path, size: tuple[int, int] | None) -> tuple[torch.Tensor, tuple[int, int]]:
    """A float32 3×H×W image in [0, 1] (resized bilinearly to ``size`` = (h, w) if given)
    and the file's own (h, w)."""
    img = read_image(path)
    orig = (img.height, img.width)
    if size is not None and orig != size:
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1), orig


def image_size(path) -> tuple[int, int]:
    """(h, w) of an image file as :func:`~squeezex.images.read_image` reads it (its EXIF
    orientation applied, so the boxes are scaled as the pixels are), from its header."""
    w, h = upright_size(path)
    return h, w


def scale_boxes(
    boxes: torch.Tensor, orig: tuple[int, int], size: tuple[int, int] | None
) -> torch.Tensor:
    """Boxes (K×4 pixel edges) clipped to an image of (h, w) ``orig``, rescaled to ``size``."""
    h, w = orig
    out = boxes.clone().float()
    out[:, 0::2] = out[:, 0::2].clamp(0, w)
    out[:, 1::2] = out[:, 1::2].clamp(0, h)
    if size is not None:
        out[:, 0::2] *= size[1] / w
        out[:, 1::2] *= size[0] / h
    return out


def boxes_to_mask(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """1×H×W bool: the pixels whose centre lies in any box (at least one pixel per box)."""
    h, w = size
    mask = torch.zeros(1, h, w, dtype=torch.bool)
    for x1, y1, x2, y2 in boxes.tolist():
        c0, c1 = _pixel_span(x1, x2, w)
        r0, r1 = _pixel_span(y1, y2, h)
        mask[0, r0:r1, c0:c1] = True
    return mask


def _pixel_span(a: float, b: float, n: int) -> tuple[int, int]:
    """Pixels j with a <= j + 0.5 < b, never empty, within [0, n)."""
    lo, hi = int(np.ceil(a - 0.5)), int(np.ceil(b - 0.5))
    if hi <= lo:  # a box thinner than a pixel: keep the pixel holding its centre
        lo = int(np.floor((a + b) / 2))
        hi = lo + 1
    lo = min(max(lo, 0), n - 1)
    return lo, min(max(hi, lo + 1), n)


def _check_classes(classes, allowed: Sequence[str] | None, what: str) -> list[str]:
    classes = list(classes)
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be a non-empty list of distinct {what}, got {classes}")
    if allowed is not None:
        unknown = [c for c in classes if c not in allowed]
        if unknown:
            raise ValueError(f"unknown classes {unknown}; choose from {list(allowed)}")
    return classes


class _BoxDataset(Dataset):
    """Items from image files with per-image boxes of the target class: ``(image, target,
    mask)``, the mask being the pixels whose centre lies in a box. Subclasses fill
    ``files``, ``_boxes``, ``targets``, ``size``, ``transform``, ``target_transform``."""

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        image, orig = load_image(self.files[i], self.size)
        mask = boxes_to_mask(scale_boxes(self._boxes[i], orig, self.size), image.shape[-2:])
        target = int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target, mask

    def boxes(self, i: int) -> torch.Tensor:
        """The target class's boxes in image ``i``: float K×4 ``x1, y1, x2, y2``.

        Pixel edges in the returned image (after resizing to ``size``): a box covers
        columns ``x1 .. x2 - 1``; the mask holds the pixels whose centre is in a box.
        """
        return scale_boxes(self._boxes[i], image_size(self.files[i]), self.size)


class VOCMasks(_BoxDataset):
    """PASCAL VOC (Everingham et al., IJCV 2010): the largest object's class and boxes.

    One item per image of the chosen image set: ``(image, target, mask)`` where
    ``target`` is the index in ``classes`` of the class of the image's largest object
    (by box area; difficult objects count only when the image has no other object of
    ``classes``), and ``mask`` (1×H×W bool) is the union of the boxes of *that class* in
    the image (difficult ones included: they are instances of the class). Images with
    no object of ``classes`` are left out (``n_skipped`` counts them); when no image is
    left the dataset is empty, with a ``UserWarning`` saying why (the classes the
    annotations do name). An object whose box is inverted or lies wholly outside the
    image is left out with a warning naming the annotation file and the object
    (:func:`parse_box_xml`); a box partly outside is clipped to the image.

    Files are read from a local folder through
    ``torchvision.datasets.VOCDetection(root, year, image_set, download=False)``;
    nothing is downloaded. The layout is VOC's own::

        <root>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
        <root>/VOCdevkit/VOC2012/Annotations/<id>.xml
        <root>/VOCdevkit/VOC2012/ImageSets/Main/<image_set>.txt

    (``VOC2007`` etc. for other years; 2011 unpacks to ``<root>/TrainVal/VOCdevkit``).

    Args:
        root: the folder holding ``VOCdevkit``, e.g. ``data/voc``.
        year: ``"2007"`` … ``"2012"``.
        image_set: ``"train"``, ``"trainval"`` or ``"val"`` (2007 also ``"test"``).
        classes: class names, a subset of :data:`VOC_CLASSES` in any order (the target
            is the index in this list); default all 20.
        size: resize images to ``size``×``size`` (an int) or ``(h, w)``; boxes and
            masks are computed in the resized image. ``None`` keeps each image's size.
        transform, target_transform: applied to the image (a float32 tensor 3×H×W in
            [0, 1]) and to the target. Masks and boxes are not transformed: use
            photometric transforms only.

    Attributes:
        classes: class names. targets: N long. image_ids: VOC image ids.
        files: image paths. n_skipped: images without an object of ``classes``.

    Raises:
        FileNotFoundError: a VOC folder or file is missing; the message names it and
            says what goes there.
        ValueError: bad ``year``, ``image_set``, ``classes`` or ``size``, or an
            annotation that is not PASCAL VOC XML (named).

    Example (needs the real VOC files under ``data/voc``, so it is not run as a test)::

        ds = VOCMasks("data/voc", "2012", "val", size=224)
        image, target, mask = ds[0]  # 3×224×224, a class index, 1×224×224 bool
        ds.classes[target], ds.boxes(0)  # its class name ('person', …) and its K×4 boxes
    """

    def __init__(
        self,
        root,
        year: str = "2012",
        image_set: str = "val",
        *,
        classes: Sequence[str] | None = None,
        size=None,
        transform=None,
        target_transform=None,
    ) -> None:
        from torchvision.datasets import VOCDetection

        year = str(year)
        if year not in _YEARS:
            raise ValueError(f"year must be one of {list(_YEARS)}, got {year!r}")
        image_sets = ("train", "trainval", "val") + (("test",) if year == "2007" else ())
        if image_set not in image_sets:
            raise ValueError(
                f"image_set must be one of {list(image_sets)} for VOC{year}, got {image_set!r}"
            )
        self.root, self.year, self.image_set = Path(root), year, image_set
        self.size = check_size(size)
        self.transform, self.target_transform = transform, target_transform
        self.classes = _check_classes(
            VOC_CLASSES if classes is None else classes, VOC_CLASSES, "VOC class names"
        )
        self.voc_root = self._check_layout()
        voc = VOCDetection(self.root, year, image_set, download=False)
        self._index(voc.images, voc.annotations)

    def _check_layout(self) -> Path:
        """The devkit folder, with an error that says where files go if anything is absent."""
        from torchvision.datasets.voc import DATASET_YEAR_DICT

        year, image_set = self.year, self.image_set
        key = "2007-test" if (year, image_set) == ("2007", "test") else year
        voc_root = self.root / DATASET_YEAR_DICT[key]["base_dir"]
        base = Path(DATASET_YEAR_DICT[key]["base_dir"]).as_posix()
        for path, what in (
            (voc_root, "the unpacked devkit: JPEGImages/, Annotations/, ImageSets/Main/"),
            (voc_root / "JPEGImages", "the images <id>.jpg"),
            (voc_root / "Annotations", "the annotations <id>.xml"),
            (voc_root / "ImageSets" / "Main" / f"{image_set}.txt", "the image ids, one a line"),
        ):
            if not path.exists():
                raise FileNotFoundError(
                    f"VOC{year} not found: {path} does not exist; it should hold {what}. "
                    f"Unpack the VOC{year} tar into <root> so that <root>/{base}/ exists "
                    "(see data/README.md); squeezex never downloads it"
                )
        return voc_root

    def _index(self, images, annotations) -> None:
        """Each image's target (its largest object's class) and that class's boxes."""
        index = {c: k for k, c in enumerate(self.classes)}
        self.files: list[Path] = []
        self.image_ids: list[str] = []
        self._boxes: list[torch.Tensor] = []
        targets = []
        self.n_skipped = 0
        listing = self.voc_root / "ImageSets" / "Main" / f"{self.image_set}.txt"
        names: set[str] = set()  # the classes the annotations name (for an empty result)
        for img_path, ann_path in zip(images, annotations, strict=True):
            img_path, ann_path = Path(img_path), Path(ann_path)
            for path, what in ((ann_path, "annotation"), (img_path, "image")):
                if not path.is_file():
                    of = f" (annotated in {ann_path})" if path == img_path else ""
                    raise FileNotFoundError(
                        f"missing VOC{self.year} {what} {path}{of}: every id listed in "
                        f"{listing} needs JPEGImages/<id>.jpg and Annotations/<id>.xml (see "
                        "data/README.md)"
                    )
            found = parse_box_xml(ann_path, one_based=True)
            names.update(o.name for o in found)
            objects = [o for o in found if o.name in index]
            candidates = [o for o in objects if not o.difficult] or objects
            if not candidates:
                self.n_skipped += 1
                continue
            largest = max(candidates, key=lambda o: o.area)  # first one on ties
            boxes = [o.box for o in objects if o.name == largest.name]
            self.files.append(img_path)
            self.image_ids.append(img_path.stem)
            self._boxes.append(torch.tensor(boxes, dtype=torch.float32))
            targets.append(index[largest.name])
        if not targets:
            found = ", ".join(sorted(names)) or "no object at all"
            warnings.warn(
                f"VOCMasks is empty: none of the {self.n_skipped} images listed in {listing} "
                f"has an object of classes {self.classes} (their annotations name: {found})",
                stacklevel=3,
            )
        self.targets = torch.tensor(targets, dtype=torch.long)

    def __repr__(self) -> str:
        return (
            f"VOCMasks(root={str(self.root)!r}, year={self.year!r}, "
            f"image_set={self.image_set!r}, n={len(self)}, size={self.size}, "
            f"classes={len(self.classes)})"
        )
