"""ImageNet (ILSVRC-2012 CLS-LOC) images with their bounding boxes as ground-truth masks.

:class:`ImageNetBoxes` reads a local ImageNet-style folder (nothing is downloaded) and
the bounding-box XML files ImageNet ships, in the PASCAL VOC schema. The layout is
documented on the class and in ``data/README.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .voc import (
    _BoxDataset,
    _check_classes,
    check_size,
    parse_box_xml,
)

__all__ = ["ImageNetBoxes"]

_IMAGE_EXT = {".jpeg", ".jpg", ".png"}
_HINT = (
    "put the images at <root>/<split>/<wnid>/<image>.JPEG and their box files at "
    "<root>/bbox/<split>/<wnid>/<image>.xml or <root>/bbox/<split>/<image>.xml "
    "(see data/README.md); squeezex never downloads ImageNet"
)


class ImageNetBoxes(_BoxDataset):
    """ImageNet images whose class object is boxed: ``(image, target, mask)``.

    ImageNet (Russakovsky et al., IJCV 2015) ships bounding boxes for all validation
    images and for part of the training images, one PASCAL VOC XML file per image whose
    ``<object><name>`` is the image's wnid. Layout read here::

        <root>/<split>/<wnid>/<image>.JPEG      images, one folder per class
        <root>/bbox/<split>/<wnid>/<image>.xml  their boxes (same file stem) ...
        <root>/bbox/<split>/<image>.xml         ... or flat, as the val boxes unpack

    Unpack the box archives (``ILSVRC2012_bbox_train_v2.tar.gz``: ``<wnid>/<image>.xml``
    files; ``ILSVRC2012_bbox_val_v3.tgz``: flat ``<image>.xml`` files) so that their
    files land in ``<root>/bbox/train`` and ``<root>/bbox/val``. Validation images must
    be sorted into ``<wnid>`` folders (the box files name each image's wnid). Images
    without a box file are left out (``n_skipped`` counts them; ImageNet boxes only part
    of its training images), as are images whose box file has no box of their wnid.

    Target: the index of the image's wnid in ``classes`` (default: the sorted wnid
    folders of ``<root>/<split>``). Mask (1×H×W bool): the union of the boxes of that
    wnid. Box coordinates in the XML are read as 0-based inclusive pixel indices and
    clipped to the image.

    Args:
        root: the ImageNet folder, e.g. ``data/imagenet``.
        split: the sub-folder of images (and of ``bbox``), e.g. ``"val"`` or ``"train"``.
        size: resize images to ``size``×``size`` (an int; default 224, the aspect ratio
            is not kept so that no box is cropped) or ``(h, w)``; ``None`` keeps each
            image's size. Boxes and masks follow the resize.
        classes: wnids in the order of the targets; every one needs its folder.
        transform, target_transform: applied to the image (a float32 tensor 3×H×W in
            [0, 1]) and to the target. Masks and boxes are not transformed: use
            photometric transforms only.

    Attributes:
        classes: wnids. targets: N long. files: image paths. n_skipped: images left out.

    Raises:
        FileNotFoundError: a folder is missing or holds no boxed image; the message
            says where the files go.
        ValueError: bad ``size`` or ``classes``.

    Example (needs the real ImageNet images and boxes, so it is not run as a test)::

        ds = ImageNetBoxes("data/imagenet", split="val")
        image, target, mask = ds[0]  # 3×224×224, a class index, 1×224×224 bool
        ds.classes[target], ds.boxes(0)  # its wnid ('n01440764', …) and its K×4 boxes
    """

    def __init__(
        self,
        root,
        *,
        split: str = "val",
        size=224,
        classes: Sequence[str] | None = None,
        transform=None,
        target_transform=None,
    ) -> None:
        self.root, self.split = Path(root), str(split)
        self.size = check_size(size)
        self.transform, self.target_transform = transform, target_transform
        image_root = self.root / self.split
        box_root = self.root / "bbox" / self.split
        if not image_root.is_dir():
            raise FileNotFoundError(f"ImageNet image folder {image_root} does not exist: {_HINT}")
        if not box_root.is_dir():
            raise FileNotFoundError(f"ImageNet box folder {box_root} does not exist: {_HINT}")
        if classes is None:
            classes = sorted(p.name for p in image_root.iterdir() if p.is_dir())
            if not classes:
                raise FileNotFoundError(f"{image_root} holds no <wnid> folder: {_HINT}")
        self.classes = _check_classes(classes, None, "wnids")
        self.files: list[Path] = []
        self._boxes: list[torch.Tensor] = []
        targets = []
        self.n_skipped = 0
        for label, wnid in enumerate(self.classes):
            folder = image_root / wnid
            if not folder.is_dir():
                raise FileNotFoundError(f"no folder {folder} for class {wnid!r}: {_HINT}")
            for img in sorted(folder.iterdir()):
                if img.suffix.lower() not in _IMAGE_EXT:
                    continue
                xml = box_root / wnid / f"{img.stem}.xml"
                if not xml.is_file():
                    xml = box_root / f"{img.stem}.xml"
                if not xml.is_file():
                    self.n_skipped += 1
                    continue
                boxes = [o.box for o in parse_box_xml(xml, one_based=False) if o.name == wnid]
                if not boxes:
                    self.n_skipped += 1
                    continue
                self.files.append(img)
                self._boxes.append(torch.tensor(boxes, dtype=torch.float32))
                targets.append(label)
        if not targets:
            raise FileNotFoundError(
                f"no image under {image_root} has a box file under {box_root}: {_HINT}"
            )
        self.targets = torch.tensor(targets, dtype=torch.long)

    def __repr__(self) -> str:
        return (
            f"ImageNetBoxes(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
            f"size={self.size}, classes={len(self.classes)})"
        )
