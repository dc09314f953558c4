"""CelebA and CelebAMask-HQ from a local folder: face attributes, and for CelebAMask-HQ the
hand-drawn face-part masks that give attributes a ground-truth region.

:class:`CelebA` (Liu et al., ICCV 2015) reads the aligned images and the 40 binary
attributes in torchvision's layout; :class:`CelebAMaskHQ` (Lee et al., CVPR 2020) reads
the 30,000 CelebA-HQ images, the same 40 attributes and the 18 part masks, and turns each
attribute into the union of the parts it is seen in (:data:`ATTRIBUTE_PARTS`), so a
per-attribute heatmap on a real face can be scored the way the synthetic faces of
:mod:`squeezex.datasets.faces` are.

Nothing is downloaded: the files must be in place (see ``data/README.md``). The text files
are parsed here rather than through ``torchvision.datasets.CelebA``, which checks the MD5
sums of the annotation files: it rejects any copy that differs by a byte (a re-saved file,
other line endings) and files written in the same format for tests cannot pass it
honestly. The errors name the file and line instead.

Images load lazily in ``__getitem__`` (CelebA holds 202,599 of them). Both loaders
centre-crop each image to a square before resizing it (bilinear): CelebA's aligned
images are 178×218, so the crop keeps the middle 178×178 (20 rows off the top and off
the bottom, the usual CelebA crop) instead of squashing the face; CelebA-HQ's are
already square (1024×1024). Masks get the same crop and a nearest-neighbour resize.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .voc import read_image

__all__ = [
    "CelebA",
    "CelebAMaskHQ",
    "CELEBA_ATTRIBUTES",
    "MASK_PARTS",
    "ATTRIBUTE_PARTS",
]

#: CelebA's 40 binary attributes, in the order of its annotation files.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald",
    "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
    "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)  # fmt: skip

#: CelebAMask-HQ's 18 part names, as in its mask files ``<k:05d>_<part>.png``.
MASK_PARTS = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip

#: The parts whose union is an attribute's ground-truth region in CelebAMask-HQ.
#:
#: Exact: the attribute *is* the part (Eyeglasses: the frames and lenses ``eye_g``;
#: Wearing_Hat, Wearing_Earrings ``ear_r``, Wearing_Necklace ``neck_l``; the lips for
#: Big_Lips and Wearing_Lipstick; the mouth and lips for Smiling and Mouth_Slightly_Open;
#: the brows, eyes and nose for the attributes about them).
#: Coarse (the evidence lies inside the region but fills only part of it, so scores are
#: upper-bounded below 1, as with VOC's boxes): Bangs and the hair colour and texture
#: attributes → all of ``hair`` (there is no fringe part); Wearing_Necktie → ``cloth``;
#: Pale_Skin and Rosy_Cheeks → ``skin`` (the whole face; there is no cheek part).
#: Heavy_Makeup → the eyes and lips, where eye make-up and lipstick show; foundation and
#: blush on the skin are left out, since ``skin`` would make the region the whole face
#: (the synthetic faces draw it as rouge on the cheeks instead).
#: No region (no part holds them): beards and stubble (5_o_Clock_Shadow, Goatee, Mustache,
#: No_Beard, Sideburns), Bald, Receding_Hairline, Bags_Under_Eyes, High_Cheekbones, face
#: shape (Chubby, Double_Chin, Oval_Face) and the global Attractive, Blurry, Male, Young.
ATTRIBUTE_PARTS: dict[str, tuple[str, ...]] = {
    "Arched_Eyebrows": ("l_brow", "r_brow"),
    "Bushy_Eyebrows": ("l_brow", "r_brow"),
    "Narrow_Eyes": ("l_eye", "r_eye"),
    "Eyeglasses": ("eye_g",),
    "Big_Nose": ("nose",),
    "Pointy_Nose": ("nose",),
    "Big_Lips": ("u_lip", "l_lip"),
    "Wearing_Lipstick": ("u_lip", "l_lip"),
    "Smiling": ("mouth", "u_lip", "l_lip"),
    "Mouth_Slightly_Open": ("mouth", "u_lip", "l_lip"),
    "Heavy_Makeup": ("l_eye", "r_eye", "u_lip", "l_lip"),
    "Wearing_Hat": ("hat",),
    "Wearing_Earrings": ("ear_r",),
    "Wearing_Necklace": ("neck_l",),
    "Wearing_Necktie": ("cloth",),
    "Bangs": ("hair",),
    "Black_Hair": ("hair",),
    "Blond_Hair": ("hair",),
    "Brown_Hair": ("hair",),
    "Gray_Hair": ("hair",),
    "Straight_Hair": ("hair",),
    "Wavy_Hair": ("hair",),
    "Pale_Skin": ("skin",),
    "Rosy_Cheeks": ("skin",),
}

_SPLITS = {"train": 0, "valid": 1, "test": 2, "all": None}
_PLUS_MINUS_ONE = frozenset({"1", "+1", "-1"})
_HQ_PER_FOLDER = 2000  # CelebAMask-HQ-mask-anno/<k // 2000>/<k:05d>_<part>.png


class _AttributeFile(NamedTuple):
    """A parsed ``list_attr_celeba.txt`` / ``CelebAMask-HQ-attribute-anno.txt``."""

    names: tuple[str, ...]
    filenames: list[str]
    labels: np.ndarray  # N×K uint8 in {0, 1}
    lines: list[int]  # each row's 1-based line number in the file


def _read_text(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a text file ({exc})") from None


def _read_lines(path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank lines of a text file as (1-based line number, whitespace-split tokens)."""
    return [(n, line.split()) for n, line in enumerate(_read_text(path), 1) if line.strip()]


def _read_attribute_file(path: Path) -> _AttributeFile:
    """Line 1 the number of images, line 2 the attribute names, then ``<file> v1 … vK``
    with every value 1 or -1 (read as 1 and 0). Any other line is a ``ValueError`` that
    names the file and the line."""
    text = _read_text(path)
    nonblank = (i for i, line in enumerate(text) if line.strip())
    i_count, i_names = next(nonblank, None), next(nonblank, None)
    if i_names is None:
        raise ValueError(
            f"{path} is not a CelebA attribute file: it needs the number of images on line "
            "1, the attribute names on line 2, then one line per image"
        )
    count, names = text[i_count].split(), text[i_names].split()
    if len(count) != 1 or not count[0].isdigit():
        raise ValueError(f"{path}, line {i_count + 1}: expected the number of images, got {count}")
    if len(set(names)) != len(names) or any(n.lstrip("+-").isdigit() for n in names):
        raise ValueError(
            f"{path}, line {i_names + 1}: expected distinct attribute names, got {names[:5]} …"
        )
    k = len(names)
    filenames, lines, signs, seen = [], [], [], set()
    for line, row in enumerate(text[i_names + 1 :], i_names + 2):
        tokens = row.split()
        if not tokens:
            continue
        values = tokens[1:]
        if len(values) != k:
            raise ValueError(
                f"{path}, line {line}: expected an image name and {k} values (one per "
                f"attribute), got {len(values)} values: {' '.join(tokens)[:80]!r}"
            )
        if not _PLUS_MINUS_ONE.issuperset(values):
            j = next(j for j, v in enumerate(values) if v not in _PLUS_MINUS_ONE)
            raise ValueError(
                f"{path}, line {line}: attribute values must be 1 or -1, got {values[j]!r} "
                f"for {names[j]} of {tokens[0]}"
            )
        if tokens[0] in seen:
            raise ValueError(f"{path}, line {line}: {tokens[0]} is listed twice")
        seen.add(tokens[0])
        filenames.append(tokens[0])
        lines.append(line)
        signs.append("".join(values))
    if int(count[0]) != len(filenames):
        raise ValueError(
            f"{path}: line {i_count + 1} says {int(count[0])} images but the file lists "
            f"{len(filenames)}; is it truncated?"
        )
    labels = _decode_signs("".join(signs)).reshape(len(filenames), k)
    return _AttributeFile(tuple(names), filenames, labels, lines)


def _decode_signs(signs: str) -> np.ndarray:
    """uint8 labels from checked values ("1", "+1", "-1") written one after another:
    every "1" ends a value, which is 0 when a "-" comes right before it."""
    chars = np.frombuffer(signs.encode("ascii"), dtype=np.uint8)
    ends = np.flatnonzero(chars == ord("1"))
    negative = np.zeros(len(ends), dtype=bool)
    inner = ends > 0
    negative[inner] = chars[ends[inner] - 1] == ord("-")
    return (~negative).astype(np.uint8)


def _read_partition(path: Path) -> dict[str, int]:
    """``list_eval_partition.txt``: lines ``<file> <0|1|2>`` (train, valid, test)."""
    partition = {}
    for line, tokens in _read_lines(path):
        if len(tokens) != 2 or tokens[1] not in ("0", "1", "2"):
            raise ValueError(
                f"{path}, line {line}: expected '<image file> <0, 1 or 2>' (train, valid, "
                f"test), got {' '.join(tokens)!r}"
            )
        partition[tokens[0]] = int(tokens[1])
    return partition


def _read_hq_mapping(path: Path) -> dict[int, str]:
    """``CelebA-HQ-to-CelebA-mapping.txt``: a header ``idx orig_idx orig_file``, then rows
    ``<CelebA-HQ index> <CelebA index> <CelebA file>``; CelebA-HQ index → CelebA file."""
    mapping = {}
    for line, tokens in _read_lines(path):
        if tokens and tokens[0] == "idx":
            continue
        if len(tokens) != 3 or not tokens[0].isdigit():
            raise ValueError(
                f"{path}, line {line}: expected '<idx> <orig_idx> <orig_file>' (e.g. "
                f"'0 119613 119614.jpg'), got {' '.join(tokens)!r}"
            )
        mapping[int(tokens[0])] = tokens[2]
    return mapping


def _split_rows(
    keys: Sequence[str], partition: dict[str, int], split: str, partition_file: Path
) -> list[int]:
    """The positions of ``keys`` (CelebA file names) whose partition is ``split``."""
    want, rows = _SPLITS[split], []
    for i, key in enumerate(keys):
        part = partition.get(key)
        if part is None:
            raise ValueError(f"{key} has no line in {partition_file}, so its split is unknown")
        if part == want:
            rows.append(i)
    if not rows:
        raise ValueError(f"{partition_file} puts no image of this dataset in split {split!r}")
    return rows


def _select_attributes(names: Sequence[str], attributes) -> list[int]:
    """Column indices of ``attributes`` (None: all; a string: that one) among ``names``."""
    if attributes is None:
        return list(range(len(names)))
    chosen = [attributes] if isinstance(attributes, str) else list(attributes)
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"attributes must be distinct attribute names, got {chosen}")
    unknown = [a for a in chosen if a not in names]
    if unknown:
        raise ValueError(f"unknown attributes {unknown}; choose from {list(names)}")
    return [names.index(a) for a in chosen]


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be a positive int (images are size×size), got {size!r}")
    return int(size)


def _check_split(split: str) -> str:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {list(_SPLITS)}, got {split!r}")
    return split


def _require(path: Path, what: str, dataset: str, hint: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{dataset} not found: {path} does not exist; it should hold {what}. {hint}"
        )
    return path


def _check_images(image_dir: Path, filenames: Sequence[str], listing: Path, hint: str) -> None:
    """Every listed image is in ``image_dir`` (one directory listing, not one stat each)."""
    present = {p.name for p in image_dir.iterdir()}
    missing = [f for f in filenames if f not in present]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} image(s) listed in {listing} are missing from {image_dir}, "
            f"first {image_dir / missing[0]}. {hint}"
        )


def _square(img: Image.Image) -> Image.Image:
    """The centred square of side min(h, w) (the middle 178×178 of a 178×218 CelebA face)."""
    side = min(img.width, img.height)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    if (img.width, img.height) == (side, side):
        return img
    return img.crop((left, top, left + side, top + side))


def _load_face(path: Path, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Float32 3×size×size in [0, 1] (centre square, bilinear) and the file's (h, w)."""
    img = read_image(path)
    orig = (img.height, img.width)
    img = _square(img)
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    array = np.asarray(img, dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1).contiguous(), orig


class CelebA(Dataset):
    """CelebA's aligned faces with their 40 binary attributes (multi-label).

    Layout (torchvision's; nothing is downloaded)::

        <root>/celeba/img_align_celeba/000001.jpg …   the aligned 178×218 images
        <root>/celeba/list_attr_celeba.txt             the attributes
        <root>/celeba/list_eval_partition.txt          the splits (not needed for "all")

    ``root`` may also be the ``celeba`` folder itself. ``list_attr_celeba.txt``: line 1 the
    number of images, line 2 the 40 attribute names, then ``000001.jpg  -1  1 …`` (any
    whitespace); ``list_eval_partition.txt``: ``000001.jpg 0`` (0 train, 1 valid, 2 test).

    Items: ``(image, attributes)``: the image float32 3×size×size in [0, 1] (the centred
    178×178 square resized bilinearly, then ``transform``), ``attributes`` long (K,) in
    {0, 1} (CelebA's -1 → 0). Images are read when an item is asked for.

    Args:
        root: the folder holding ``celeba/``, or ``celeba/`` itself.
        split: ``"train"``, ``"valid"``, ``"test"`` or ``"all"``.
        size: the output side in pixels.
        attributes: attribute names to keep, in this order (a string: one); default all 40.
        transform: applied to the image tensor.

    It holds ``attribute_names`` (tuple), ``classes`` (the same, a list), ``targets``
    (N×K long), ``filenames`` (the image file names, in the annotation file's order) and
    ``image_dir``.

    Raises:
        FileNotFoundError: the folder, a text file or a listed image is missing; the
            message says where the files go.
        ValueError: a malformed line (named by file and line number), an unknown
            attribute (the message lists the valid ones), a bad ``split`` or ``size``;
            when an item is read, an image that is not a readable image (named).

    Example (needs the real CelebA files under ``data/celeba``, so it is not run as a test)::

        ds = CelebA("data", split="valid", attributes=["Smiling"])
        image, attributes = ds[0]  # torch.Size([3, 64, 64]) and a (1,) long tensor in {0, 1}
    """

    task = "multi-label"

    def __init__(
        self,
        root,
        split: str = "train",
        *,
        size: int = 64,
        attributes: Sequence[str] | None = None,
        transform=None,
    ) -> None:
        self.root, self.split = Path(root), _check_split(split)
        self.size, self.transform = _check_size(size), transform
        folder, hint = self._folder()
        self.image_dir = _require(
            folder / "img_align_celeba", "the aligned images 000001.jpg …", "CelebA", hint
        )
        attr_file = _require(
            folder / "list_attr_celeba.txt", "the 40 attributes of every image", "CelebA", hint
        )
        table = _read_attribute_file(attr_file)
        columns = _select_attributes(table.names, attributes)
        rows = list(range(len(table.filenames)))
        if self.split != "all":
            part_file = _require(
                folder / "list_eval_partition.txt", "each image's split", "CelebA", hint
            )
            rows = _split_rows(table.filenames, _read_partition(part_file), self.split, part_file)
        self.attribute_names = tuple(table.names[c] for c in columns)
        self.classes = list(self.attribute_names)
        self.filenames = [table.filenames[r] for r in rows]
        self.targets = torch.from_numpy(table.labels[np.ix_(rows, columns)]).long()
        _check_images(self.image_dir, self.filenames, attr_file, hint)

    def _folder(self) -> tuple[Path, str]:
        """The ``celeba`` folder (``<root>/celeba`` or ``root`` itself) and the layout hint."""
        root = self.root
        hint = (
            f"Put CelebA at {root / 'celeba' / 'img_align_celeba'}/000001.jpg …, "
            f"{root / 'celeba' / 'list_attr_celeba.txt'} and "
            f"{root / 'celeba' / 'list_eval_partition.txt'} (or pass that celeba folder "
            "itself as root; see data/README.md); squeezex never downloads CelebA"
        )
        if not root.is_dir():
            raise FileNotFoundError(f"CelebA not found: {root} does not exist. {hint}")
        if (root / "celeba").is_dir():
            return root / "celeba", hint
        if (root / "img_align_celeba").exists() or (root / "list_attr_celeba.txt").exists():
            return root, hint
        raise FileNotFoundError(f"CelebA not found: {root} holds no celeba folder. {hint}")

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, i: int):
        image, _ = _load_face(self.image_dir / self.filenames[i], self.size)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[i].clone()

    def __repr__(self) -> str:
        return (
            f"CelebA(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
            f"size={self.size}, attributes={len(self.attribute_names)})"
        )


class CelebAMaskHQ(Dataset):
    """CelebAMask-HQ: CelebA-HQ faces, their 40 attributes and each attribute's region.

    Layout (as the archive unpacks; nothing is downloaded)::

        <root>/CelebA-HQ-img/0.jpg … 29999.jpg                 1024×1024 images
        <root>/CelebAMask-HQ-mask-anno/<k // 2000>/<k:05d>_<part>.png   part masks
        <root>/CelebAMask-HQ-attribute-anno.txt                 the attributes
        <root>/CelebA-HQ-to-CelebA-mapping.txt                  (only for a split)

    The attribute file has CelebA's format (line 1 the count, line 2 the 40 names, then
    ``<k>.jpg`` and 40 values ±1). A part file (one of :data:`MASK_PARTS`; binary, 512×512
    in the release, any non-zero pixel is part) is absent when the part is not in the
    image. Masks of any size are accepted as long as their aspect ratio is the image's
    (a resized copy of the dataset works), otherwise reading the item is an error.

    Items: ``(image, attributes, masks)``: the image float32 3×size×size in [0, 1]
    (bilinear, then ``transform``), ``attributes`` long (K,) in {0, 1}, ``masks`` bool
    K×size×size: mask k is the union of attribute k's parts in :data:`ATTRIBUTE_PARTS`
    (nearest-neighbour resize), all False when the attribute has no parts
    (``has_region[k]`` False) or none of its part files exists. A mask marks where the
    attribute is seen, whatever its label; masks are not transformed.

    ``split`` other than ``"all"`` maps each image to its CelebA file through
    ``CelebA-HQ-to-CelebA-mapping.txt`` (header ``idx orig_idx orig_file``, then rows
    ``0 119613 119614.jpg``) and takes CelebA's ``list_eval_partition.txt`` from
    ``<root>/``, ``<root>/../celeba/`` or ``<root>/../celeba/celeba/`` (the first found).

    Args:
        root: the CelebAMask-HQ folder, e.g. ``data/CelebAMask-HQ``.
        size: the output side in pixels of images and masks.
        attributes: attribute names to keep, in this order (a string: one); default all 40.
        split: ``"all"`` (default), ``"train"``, ``"valid"`` or ``"test"``.
        transform: applied to the image tensor.

    It holds ``attribute_names`` (tuple), ``classes`` (the same, a list), ``targets``
    (N×K long), ``has_region`` (K bool), ``filenames`` (``<k>.jpg``), ``indices`` (the k),
    ``image_dir`` and ``mask_dir``.

    Raises:
        FileNotFoundError: a folder, a text file, a listed image or a mask folder
            ``<k // 2000>`` is missing; the message says where the files go.
        ValueError: a malformed line (named by file and line number), an unknown
            attribute, a bad ``split`` or ``size``; when an item is read, an unreadable
            image or mask, or a mask whose aspect ratio differs from its image's (named).

    Example (needs the real CelebAMask-HQ files, so it is not run as a test)::

        ds = CelebAMaskHQ("data/CelebAMask-HQ", attributes=["Smiling"])
        image, attributes, masks = ds[0]  # 3×128×128, (1,) in {0, 1}, 1×128×128 bool
    """

    task = "multi-label"

    def __init__(
        self,
        root,
        *,
        size: int = 128,
        attributes: Sequence[str] | None = None,
        split: str = "all",
        transform=None,
    ) -> None:
        self.root, self.split = Path(root), _check_split(split)
        self.size, self.transform = _check_size(size), transform
        root, hint = self.root, self._hint()
        if not root.is_dir():
            raise FileNotFoundError(f"CelebAMask-HQ not found: {root} does not exist. {hint}")
        self.image_dir = _require(
            root / "CelebA-HQ-img", "the images 0.jpg … 29999.jpg", "CelebAMask-HQ", hint
        )
        self.mask_dir = _require(
            root / "CelebAMask-HQ-mask-anno",
            "the part masks <k // 2000>/<k:05d>_<part>.png",
            "CelebAMask-HQ",
            hint,
        )
        attr_file = root / "CelebAMask-HQ-attribute-anno.txt"
        table = _read_attribute_file(
            _require(attr_file, "the 40 attributes of every image", "CelebAMask-HQ", hint)
        )
        columns = _select_attributes(table.names, attributes)
        named = zip(table.filenames, table.lines, strict=True)
        indices = [_hq_index(name, attr_file, line) for name, line in named]
        rows = list(range(len(indices))) if self.split == "all" else self._split_rows(indices)
        self.attribute_names = tuple(table.names[c] for c in columns)
        self.classes = list(self.attribute_names)
        self.filenames = [table.filenames[r] for r in rows]
        self.indices = [indices[r] for r in rows]
        self.targets = torch.from_numpy(table.labels[np.ix_(rows, columns)]).long()
        self._parts = [ATTRIBUTE_PARTS.get(a, ()) for a in self.attribute_names]
        self.has_region = torch.tensor([bool(p) for p in self._parts], dtype=torch.bool)
        _check_images(self.image_dir, self.filenames, attr_file, hint)
        for folder in sorted({k // _HQ_PER_FOLDER for k in self.indices}):
            _require(self.mask_dir / str(folder), "part masks", "CelebAMask-HQ", hint)

    def _hint(self) -> str:
        root = self.root
        return (
            f"Unpack CelebAMask-HQ.zip so that {root / 'CelebA-HQ-img'}/0.jpg …, "
            f"{root / 'CelebAMask-HQ-mask-anno'}/0/00000_skin.png … and "
            f"{root / 'CelebAMask-HQ-attribute-anno.txt'} exist (for a split also "
            f"{root / 'CelebA-HQ-to-CelebA-mapping.txt'} and CelebA's "
            "list_eval_partition.txt; see data/README.md); squeezex never downloads it"
        )

    def _split_rows(self, indices: Sequence[int]) -> list[int]:
        """The rows of ``self.split``: CelebA-HQ index → CelebA file → CelebA partition."""
        hint = self._hint()
        mapping_file = _require(
            self.root / "CelebA-HQ-to-CelebA-mapping.txt",
            "each CelebA-HQ image's CelebA file",
            "CelebAMask-HQ",
            hint,
        )
        candidates = [
            self.root / "list_eval_partition.txt",
            self.root / ".." / "celeba" / "list_eval_partition.txt",
            self.root / ".." / "celeba" / "celeba" / "list_eval_partition.txt",
        ]
        part_file = next((p for p in candidates if p.is_file()), None)
        if part_file is None:
            raise FileNotFoundError(
                f"split {self.split!r} of CelebAMask-HQ needs CelebA's list_eval_partition.txt"
                f" (lines '000001.jpg 0'), looked for at {', '.join(map(str, candidates))}; "
                "put it at one of them, or use split='all'"
            )
        mapping = _read_hq_mapping(mapping_file)
        missing = [k for k in indices if k not in mapping]
        if missing:
            raise ValueError(f"{mapping_file} has no row for CelebA-HQ image {missing[0]}.jpg")
        keys = [mapping[k] for k in indices]
        return _split_rows(keys, _read_partition(part_file), self.split, part_file)

    def part_file(self, i: int, part: str) -> Path:
        """The mask file of ``part`` (one of :data:`MASK_PARTS`) for item ``i`` (it may not
        exist: the part is then not in the image)."""
        if part not in MASK_PARTS:
            raise ValueError(f"unknown part {part!r}; choose from {list(MASK_PARTS)}")
        k = self.indices[i]
        return self.mask_dir / str(k // _HQ_PER_FOLDER) / f"{k:05d}_{part}.png"

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, i: int):
        image, orig = _load_face(self.image_dir / self.filenames[i], self.size)
        masks = torch.zeros(len(self._parts), self.size, self.size, dtype=torch.bool)
        read: dict[str, torch.Tensor | None] = {}
        for a, parts in enumerate(self._parts):
            for part in parts:
                if part not in read:
                    read[part] = self._part_mask(self.part_file(i, part), orig)
                if read[part] is not None:
                    masks[a] |= read[part]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[i].clone(), masks

    def _part_mask(self, path: Path, image_hw: tuple[int, int]) -> torch.Tensor | None:
        """size×size bool (non-zero pixels), or None when the file does not exist."""
        if not path.is_file():
            return None
        img = read_image(path, "L")
        (ih, iw), (mh, mw) = image_hw, (img.height, img.width)
        if abs(mh * iw - mw * ih) > max(iw, mw):  # aspect ratios differ by over a pixel
            raise ValueError(
                f"mask {path} is {mw}×{mh} but its image is {iw}×{ih}: a part mask must have "
                "its image's aspect ratio (512×512 for the 1024×1024 CelebA-HQ images)"
            )
        img = _square(img)
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.NEAREST)
        return torch.from_numpy(np.asarray(img) > 0)

    def __repr__(self) -> str:
        return (
            f"CelebAMaskHQ(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
            f"size={self.size}, attributes={len(self.attribute_names)})"
        )


def _hq_index(filename: str, path: Path, line: int) -> int:
    """k of a CelebA-HQ image file ``<k>.jpg``."""
    stem, dot, ext = filename.partition(".")
    if not stem.isdigit() or not dot or ext.lower() not in ("jpg", "jpeg", "png"):
        raise ValueError(f"{path}, line {line}: expected an image name '<k>.jpg', got {filename!r}")
    return int(stem)
