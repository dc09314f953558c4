"""Scenes: several shapes on a cluttered background; the class is the one class-shape.

Every image holds exactly one *class shape* (disc, square, triangle, cross, ring or
star: that is the label) among a few *distractor shapes* (ellipse, bar, crescent,
L-shape, half-disc), on a noisy, textured background. Colours are drawn independently
of the class, and every shape's area from the same range, so only the outline of the
class shape decides the label, and its pixel mask is the true explanation
(METHODS.md §3: "a class decided by a region we draw, so the mask is exact").

Design, against the traps of METHODS.md §3 (``benchmarks/ground_truth.py`` measures each
point on the tests' 1,380 images, seed 0, at 48×48 and 64×64; its JSON holds the numbers):

* The class shape is placed first, uniformly among all the positions where it fits in
  the frame, at a random rotation and scale; distractors go uniformly wherever they
  fit around it. So an image-centre Gaussian rarely points inside the class shape, which
  covers a small share of the image (tested < 0.5).
* Shapes are sized (4–7.5 % of the image each) so that an oracle map at stride 4 (the
  mask averaged over 4×4 cells and upsampled back) points inside the class shape for
  nearly every image (tested >= 0.9; the thin ring is the hardest, at 48×48).
* Shapes never overlap and keep one pixel clear of each other, so the mask is the
  exact visible class shape (pixels at least half covered) and two distractors never
  merge into something like a class shape.
* Colours, areas and positions do not depend on the class: a colour-histogram probe
  is at chance, the class shape's mean area is equal across classes (tested). A small
  CNN learns the shapes (``tests/test_object_datasets.py`` trains one at 48×48: 200
  images per class, 8 epochs, batches of 16), but only with enough optimisation steps:
  with far fewer images per class it learns little.

:func:`make_scenes` returns the arrays (scikit-learn's ``make_*`` style);
:class:`Scenes` is the torchvision-style dataset around them.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from functools import cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from scipy import ndimage, signal

from .base import TensorSplit
from .registry import TrainOptions, register_dataset

__all__ = ["Scenes", "SceneArrays", "make_scenes", "SHAPES", "DISTRACTOR_SHAPES"]

_SPLITS = {"train": 0, "val": 1, "test": 2}
_SS = 4  # supersampling factor for anti-aliasing and exact masks
_AREA = (0.04, 0.075)  # every shape's area as a share of the image
_GAP = 1  # pixels kept clear around every shape
_MAX_DISTRACTORS = 5  # 6 rarely fit beside the class shape (benchmarks/ground_truth.py)
_BG_VALUE = (0.15, 0.55)  # HSV value of the background colours: darker than the shapes
_FG_VALUE = (0.65, 1.0)  # HSV value of the shapes' colours
_BLOTCHES, _TEXTURE = 0.08, 0.05  # amplitudes of the background's coarse and fine noise


def _circle(r: float = 1.0, n: int = 64, cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _regular(n: int, r: float = 1.0, phase: float = -math.pi / 2) -> np.ndarray:
    t = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    t = -math.pi / 2 + math.pi * np.arange(2 * points) / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _cross(w: float = 0.34) -> np.ndarray:
    return np.array(
        [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w)]
        + [(w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)],
        dtype=float,
    )


def _half_disc() -> np.ndarray:
    t = np.linspace(0, math.pi, 33)
    return np.stack([np.cos(t), np.sin(t) - 0.42], 1)


# A shape is a list of (polygon, fill) drawn in order: fill 1 adds, 0 cuts a hole.
_SHAPE_OPS: dict[str, list[tuple[np.ndarray, int]]] = {
    "disc": [(_circle(), 1)],
    "square": [(_regular(4, phase=math.pi / 4), 1)],
    "triangle": [(_regular(3), 1)],
    "cross": [(_cross(), 1)],
    "ring": [(_circle(), 1), (_circle(0.5), 0)],
    "star": [(_star(), 1)],
    # distractor shapes: none of them looks like a class shape at any rotation
    "ellipse": [(_circle() * [1.0, 0.42], 1)],
    "bar": [(np.array([(-1, -0.3), (1, -0.3), (1, 0.3), (-1, 0.3)], dtype=float), 1)],
    "crescent": [(_circle(), 1), (_circle(0.86, cx=0.5), 0)],
    "L-shape": [
        (np.array([(-0.6, -1), (-0.15, -1), (-0.15, 0.55), (0.8, 0.55), (0.8, 1), (-0.6, 1)]), 1)
    ],
    "half-disc": [(_half_disc(), 1)],
}

#: The shapes that can be a class (the default classes, in this order).
SHAPES = ("disc", "square", "triangle", "cross", "ring", "star")
#: Shapes that are never a class; every unused class shape joins them as a distractor.
DISTRACTOR_SHAPES = ("ellipse", "bar", "crescent", "L-shape", "half-disc")


@cache
def _unit_area(name: str) -> float:
    """Area of a shape at scale 1, measured by rasterising it finely."""
    n = 1024
    img = Image.new("L", (n, n), 0)
    draw = ImageDraw.Draw(img)
    for poly, fill in _SHAPE_OPS[name]:
        draw.polygon([tuple(p) for p in (poly * n / 2.5 + n / 2)], fill=255 * fill)
    return float((np.asarray(img) > 127).sum()) * (2.5 / n) ** 2


class SceneArrays(NamedTuple):
    """What :func:`make_scenes` returns."""

    #: N×3×H×W uint8.
    images: torch.Tensor
    #: N long, index into ``classes``.
    targets: torch.Tensor
    #: N×1×H×W bool, the visible pixels of the class shape.
    masks: torch.Tensor
    #: N×4 float, the class shape's box ``x1, y1, x2, y2`` in pixels (``x2``, ``y2``
    #: exclusive: the box covers columns ``x1 .. x2 - 1``).
    boxes: torch.Tensor
    #: N×1×H×W bool, every shape (class shape and distractors).
    object_masks: torch.Tensor
    #: the class names, ``classes[targets[i]]`` is image ``i``'s class shape.
    classes: list[str]
    #: per image, the names of its distractor shapes.
    distractors: list[list[str]]


def _check_options(n_per_class, size, n_distractors, split, classes):
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, int | np.integer):
        raise ValueError(f"n_per_class must be an integer >= 1, got {n_per_class!r}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 32:
        raise ValueError(f"size must be an integer >= 32 pixels, got {size!r}")
    if isinstance(n_distractors, int | np.integer) and not isinstance(n_distractors, bool):
        lo = hi = int(n_distractors)
    else:
        try:
            lo, hi = (int(v) for v in n_distractors)
        except (TypeError, ValueError):
            raise ValueError(
                f"n_distractors must be an int or a (min, max) pair, got {n_distractors!r}"
            ) from None
    if not 0 <= lo <= hi <= _MAX_DISTRACTORS:
        raise ValueError(
            f"n_distractors must satisfy 0 <= min <= max <= {_MAX_DISTRACTORS}, "
            f"got {n_distractors!r}"
        )
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}, got {split!r}")
    classes = list(SHAPES if classes is None else classes)
    unknown = [c for c in classes if c not in SHAPES]
    if unknown:
        raise ValueError(f"unknown class shapes {unknown}; choose from {list(SHAPES)}")
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must name at least two distinct shapes, got {classes}")
    return int(n_per_class), int(size), (lo, hi), classes


def _random_colour(rng: np.random.Generator, value: tuple[float, float]) -> np.ndarray:
    h, s, v = rng.random(), rng.uniform(0.2, 1.0), rng.uniform(*value)
    return np.array(colorsys.hsv_to_rgb(h, s, v))


def _smooth_noise(rng: np.random.Generator, n: int, cells: int, channels: int) -> np.ndarray:
    """A random cells×cells grid of N(0, 1) upsampled smoothly (bicubic) to n×n×channels."""
    grid = torch.from_numpy(rng.normal(0, 1, (1, channels, cells, cells)))
    up = F.interpolate(grid, size=(n, n), mode="bicubic", align_corners=False)
    return up[0].permute(1, 2, 0).numpy()


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """H×W×3 clutter: a two-colour gradient, coloured blotches, a finer texture."""
    c0 = _random_colour(rng, _BG_VALUE)
    c1 = _random_colour(rng, _BG_VALUE)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
    ang = rng.uniform(0, 2 * math.pi)
    t = np.clip(xx * math.cos(ang) + yy * math.sin(ang) + 0.5, 0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    img = img + _BLOTCHES * _smooth_noise(rng, size, int(rng.integers(3, 7)), 3)
    img = img + _TEXTURE * _smooth_noise(rng, size, size // 4, 3)
    return img


def _polygons(name: str, cx: float, cy: float, scale: float, angle: float):
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return [(poly @ rot.T * scale + [cx, cy], fill) for poly, fill in _SHAPE_OPS[name]]


class _Cover(NamedTuple):
    """A shape's hi-res coverage inside its box of output pixels ``[y0, y1) × [x0, x1)``."""

    y0: int
    x0: int
    hires: np.ndarray

    @property
    def region(self) -> tuple[slice, slice]:
        h, w = self.hires.shape[0] // _SS, self.hires.shape[1] // _SS
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


def _pose(rng: np.random.Generator, name: str, size: int) -> np.ndarray:
    """``name`` at a random area, angle and sub-pixel phase, rasterised hi-res in a patch of
    whole output pixels with ``_GAP`` empty pixels on each side."""
    area = rng.uniform(*_AREA) * size * size
    scale = math.sqrt(area / _unit_area(name))
    polys = _polygons(name, 0.0, 0.0, scale, rng.uniform(0, 2 * math.pi))
    pts = np.concatenate([p for p, _ in polys])
    shift = _GAP + rng.uniform(0, 1, 2) - pts.min(0)
    w, h = (int(v) for v in np.ceil(pts.max(0) + shift) + _GAP)
    img = Image.new("L", (w * _SS, h * _SS), 0)
    draw = ImageDraw.Draw(img)
    for poly, fill in polys:
        # output pixel j spans [j, j + 1); a hi-res pixel's centre sits at an integer
        draw.polygon(((poly + shift) * _SS - 0.5).ravel().tolist(), fill=255 * fill)
    return np.asarray(img) > 127


def _down(a: np.ndarray) -> np.ndarray:
    s = _SS
    return a.reshape(a.shape[0] // s, s, a.shape[1] // s, s, *a.shape[2:]).mean(axis=(1, 3))


def _touched(cover: _Cover) -> np.ndarray:
    a = cover.hires
    return a.reshape(a.shape[0] // _SS, _SS, a.shape[1] // _SS, _SS).any(axis=(1, 3))


def _place(rng, name: str, size: int, occupied: np.ndarray, tries: int = 5) -> _Cover | None:
    """``name`` at a random pose, uniformly among the positions where it fits in the frame
    without touching ``occupied``; None if ``tries`` poses found no room."""
    for _ in range(tries):
        hires = _pose(rng, name, size)
        foot = _touched(_Cover(0, 0, hires))
        h, w = foot.shape
        if h > size or w > size:
            continue
        if occupied.any():
            hits = signal.correlate(occupied.astype(np.float32), foot.astype(np.float32), "valid")
            free = np.flatnonzero(hits.ravel() < 0.5)
        else:
            free = np.arange((size - h + 1) * (size - w + 1))
        if free.size:
            y0, x0 = divmod(int(rng.choice(free)), size - w + 1)
            return _Cover(y0, x0, hires)
    return None


def _layout(rng, first: _Cover, names: list[str], size: int) -> list[_Cover] | None:
    """``first`` plus one cover per name, none touching another; None if one did not fit."""
    occupied = np.zeros((size, size), dtype=bool)
    covers = []
    cover = first
    for name in [*names, None]:
        covers.append(cover)
        touched = np.zeros_like(occupied)
        touched[cover.region] = _touched(cover)
        occupied |= ndimage.binary_dilation(touched, iterations=_GAP)
        if name is not None:
            cover = _place(rng, name, size, occupied)
            if cover is None:
                return None
    return covers


def _render(rng: np.random.Generator, size: int, target: str, pool: list[str], k: int):
    """One scene: image H×W×3 in [0, 1], class mask, all-objects mask, distractor names."""
    names = [pool[j] for j in rng.integers(len(pool), size=k)]
    covers = None
    for _ in range(200):  # the class shape anywhere, then the distractors around it
        target_cover = _place(rng, target, size, np.zeros((size, size), dtype=bool))
        for _ in range(5):  # a few layouts of the distractors, else move the class shape
            covers = _layout(rng, target_cover, names, size)
            if covers is not None:
                break
        if covers is not None:
            break
    else:
        raise ValueError(
            f"could not fit {k} distractors beside the class shape in {size}×{size} pixels "
            "in 1000 layouts: use a larger size or fewer n_distractors"
        )
    img = _background(rng, size)
    masks = []
    for cover in covers:
        # shapes never share an output pixel, so each is composited on its own patch
        frac = _down(cover.hires.astype(np.float64))
        patch = img[cover.region]
        local = patch[frac > 0].mean(0)
        for _ in range(20):  # keep every shape visible against the background under it
            colour = _random_colour(rng, _FG_VALUE)
            if np.abs(colour - local).sum() > 0.6:
                break
        h, w = cover.hires.shape
        ang = rng.uniform(0, 2 * math.pi)
        u = np.add.outer(np.arange(h) * math.sin(ang), np.arange(w) * math.cos(ang))
        u = (u - u[cover.hires].mean()) / max(np.ptp(u[cover.hires]), 1e-9)
        shade = np.where(cover.hires, 1 + rng.uniform(0.0, 0.25) * u, 0.0)
        img[cover.region] = np.clip(
            patch * (1 - frac[..., None]) + _down(shade)[..., None] * colour, 0, None
        )
        mask = np.zeros((size, size), dtype=bool)
        mask[cover.region] = frac >= 0.5
        masks.append(mask)
    light = rng.uniform(0.85, 1.15)
    img = np.clip(img, 0, 1) * light
    img = np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1)
    return img, masks[0], np.logical_or.reduce(masks), names


def make_scenes(
    n_per_class: int = 100,
    *,
    size: int = 64,
    n_distractors: int | tuple[int, int] = (2, 4),
    split: str = "train",
    seed: int = 0,
    classes: Sequence[str] | None = None,
) -> SceneArrays:
    """Generate multi-shape scenes whose class is the one class shape in each.

    Image ``i`` shows class ``i % len(classes)``: its class shape, drawn once, and
    ``n_distractors`` distractor shapes (:data:`DISTRACTOR_SHAPES`, plus any shape of
    :data:`SHAPES` not among ``classes``), none overlapping, on a cluttered, noisy
    background. Colours, areas (4–7.5 % of the image each), rotations and positions
    (anywhere in the frame) are drawn independently of the class; shapes are brighter
    than the background (hue and saturation are free).

    Args:
        n_per_class: images per class.
        size: image side in pixels (>= 32).
        n_distractors: distractors per image, an int or an inclusive ``(min, max)``
            range (at most 5; at ``size=32`` even 5 fit in few random layouts, which
            makes generation slow; ``benchmarks/ground_truth.py`` counts them).
        split: ``"train"``, ``"val"`` or ``"test"``: independent random streams.
        seed: everything is a function of ``(seed, split, index)``; the global RNG is
            never touched.
        classes: class shapes, a subset of :data:`SHAPES` (default: all six, in order).

    Returns:
        SceneArrays: ``images`` (N×3×H×W uint8), ``targets``, ``masks`` (N×1×H×W bool,
        the class shape), ``boxes`` (N×4), ``object_masks``, ``classes``,
        ``distractors``.

    Raises:
        ValueError: an option is out of range or names an unknown shape.

    Example:
        >>> data = make_scenes(2, size=48, seed=0)
        >>> data.images.shape, data.masks.shape, data.classes[int(data.targets[3])]
        (torch.Size([12, 3, 48, 48]), torch.Size([12, 1, 48, 48]), 'cross')
    """
    n_per_class, size, (lo, hi), classes = _check_options(
        n_per_class, size, n_distractors, split, classes
    )
    pool = [s for s in SHAPES if s not in classes] + list(DISTRACTOR_SHAPES)
    n = n_per_class * len(classes)
    images = np.zeros((n, 3, size, size), dtype=np.uint8)
    masks = np.zeros((n, 1, size, size), dtype=bool)
    objects = np.zeros((n, 1, size, size), dtype=bool)
    targets = np.arange(n) % len(classes)
    boxes = np.zeros((n, 4), dtype=np.float32)
    distractors = []
    for i in range(n):
        rng = np.random.default_rng([seed, _SPLITS[split], i])
        k = int(rng.integers(lo, hi + 1))
        img, mask, obj, names = _render(rng, size, classes[targets[i]], pool, k)
        images[i] = np.round(img.transpose(2, 0, 1) * 255).astype(np.uint8)
        masks[i, 0], objects[i, 0] = mask, obj
        ys, xs = np.nonzero(mask)
        boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        distractors.append(names)
    return SceneArrays(
        torch.from_numpy(images),
        torch.from_numpy(targets.astype(np.int64)),
        torch.from_numpy(masks),
        torch.from_numpy(boxes),
        torch.from_numpy(objects),
        classes,
        distractors,
    )


class Scenes(TensorSplit):
    """Multi-shape scenes: ``(image, target, mask)`` where the mask is the class shape.

    A ground-truth setting in the spirit of an8Flower (Oramas et al., ICLR 2019;
    METHODS.md §3) with several objects per image: the class is decided by the shape of
    one object among distractors, not by colour, size or position. See
    :func:`make_scenes` for how the images are drawn.

    Args:
        n_per_class: images per class.
        size: image side in pixels (>= 32).
        n_distractors: distractors per image, an int or an inclusive ``(min, max)``.
        split: ``"train"``, ``"val"`` or ``"test"`` (independent random streams).
        seed: everything is a function of ``(seed, split, index)``; global RNG untouched.
        classes: class shapes, a subset of :data:`SHAPES` (default: all six).
        transform, target_transform: applied to the image (a float tensor 3×H×W in
            [0, 1]) and to the target. Masks are not transformed: use photometric
            transforms only.

    Attributes:
        classes: class names (shape names). images: N×3×H×W uint8. targets: N long.
        masks: N×1×H×W bool, the class shape. object_masks: N×1×H×W bool, every shape
        (for the silhouette reference). target_boxes: N×4 float ``x1, y1, x2, y2``
        (``x2``, ``y2`` exclusive). distractors: per image, its distractor names.

    Example:
        >>> ds = Scenes(2, size=48, seed=0)
        >>> image, target, mask = ds[0]
        >>> image.shape, ds.classes[target], mask.dtype, ds.boxes(0).shape
        (torch.Size([3, 48, 48]), 'disc', torch.bool, torch.Size([1, 4]))
    """

    def __init__(
        self,
        n_per_class: int = 100,
        *,
        size: int = 64,
        n_distractors: int | tuple[int, int] = (2, 4),
        split: str = "train",
        seed: int = 0,
        classes: Sequence[str] | None = None,
        transform=None,
        target_transform=None,
    ) -> None:
        data = make_scenes(
            n_per_class,
            size=size,
            n_distractors=n_distractors,
            split=split,
            seed=seed,
            classes=classes,
        )
        self.n_per_class, self.size, self.split, self.seed = n_per_class, size, split, seed
        self.n_distractors = n_distractors
        self.transform, self.target_transform = transform, target_transform
        self.images, self.targets, self.masks = data.images, data.targets, data.masks
        self.target_boxes, self.object_masks = data.boxes, data.object_masks
        self.classes, self.distractors = data.classes, data.distractors

    def boxes(self, i: int) -> torch.Tensor:
        """The class shape's box in image ``i``: a 1×4 float tensor ``x1, y1, x2, y2``."""
        return self.target_boxes[i][None].clone()

    def __repr__(self) -> str:
        return (
            f"Scenes(split={self.split!r}, n={len(self)}, size={self.size}, "
            f"n_distractors={self.n_distractors}, seed={self.seed}, classes={self.classes})"
        )


# -- benchmark datasets ------------------------------------------------------------------------------
@register_dataset(
    "scenes-6c",
    description="scenes: 6 classes, the one class shape among distractors",
    n_train=200,
    n_test=25,
    # picking the class shape among distractors needs >= 150 images per class and small
    # batches (at 100 per class the small CNN learned little); results.json records accuracy
    train=TrainOptions(batch_size=16),
)
def _scenes(split: str, *, n_per_class: int, size: int, seed: int) -> Scenes:
    return Scenes(n_per_class, size=size, split=split, seed=seed)
