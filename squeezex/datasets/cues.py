"""Cues: a small class-coding mark planted beside the object, to measure shortcut reliance.

A *cue* is a square mark (8×8 pixels at 64×64; side ``round(size / 8)``, at least 6)
whose pattern encodes a class: a one-pixel green frame around a grid of cells, each
cell green or black (2×2 cells, 16 codes; 3×3 cells for more than 16 classes).
Every code of the first six has exactly two green cells, so the cue's colour content is
the same for every class: only the pattern carries it. Green (0, 255, 0) and black are
far from every an8Flower class colour (the closest, cyan, is 0.9 apart in RGB on [0, 1])
and from every neutral colour taken as a whole (the cue's black is 0.48 from dark green,
its green 0.63), so a cue is never read as a leaf colour.

:func:`plant_cue` works on any generator's ``images`` and ``object_masks``: the mark
goes at a random one of 8 border positions (corners and edge midpoints, 2 px in) whose
square, grown by one pixel, is clear of the object; when none is clear it is drawn on
top anyway and the caller removes its pixels from the object's masks (so masks stay the
visible pixels). :class:`CueDataset` wraps any generated dataset (an8Flower, scenes …)
in one of three regimes, and :class:`CueFlowers` is it on an8Flower single-6c:

* ``"cue-only"``: the label is the cue; the object's class is independent of it (the
  labels are a seeded permutation of the object's classes). ``masks`` = the cue.
* ``"object-only"``: the label is the object's class; the cue's class is uniform noise.
  ``masks`` = the object's discriminative region.
* ``"confounded"``: the label is the object's class; in ``train`` the cue shows the
  label with probability ``rho`` (else another class, uniformly), in ``test``/``val``
  the cue is uniform and independent of the label, so :func:`cue_reliance` can measure
  how often a model follows the cue when cue and object disagree.

Every regime carries ``regions = {"cue": …, "object": …}``, ``cue_targets`` and
``object_targets``; everything is a function of ``(seed, split, index)``.

The benchmark's small CNN learns either signal alone (``cue-only``, ``object-only``). On
``confounded`` (rho = 1) how far it follows the cue where cue and leaf disagree depends
on its training seed — from a little to entirely, its accuracy on the leaf falling as it
does — so report reliance over several seeds: ``squeezex bench --dataset confounded``
records each seed's in ``results.json`` (``models[dataset]["reliance"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import torch

from .an8flower import An8Flower
from .base import TensorSplit
from .registry import register_dataset

__all__ = [
    "REGIMES",
    "CUE_COLOURS",
    "CueDataset",
    "CueFlowers",
    "plant_cue",
    "decode_cue",
    "cue_labels",
    "cue_code",
    "cue_reliance",
]

#: The regimes a cue dataset can be built in.
REGIMES = ("cue-only", "object-only", "confounded")
#: The cue's two colours (uint8 RGB): the frame and the "on" cells, and the "off" cells.
CUE_COLOURS = {"green": (0, 255, 0), "black": (0, 0, 0)}
_SPLITS = {"train": 0, "val": 1, "test": 2}
_LABEL_SALT, _PLANT_SALT = 7001, 7002  # separate random streams for labels and placement


@cache
def _codes(grid: int) -> tuple[tuple[int, ...], ...]:
    """All on/off patterns of a ``grid``×``grid`` cell grid, those with half the cells on
    first (so the first codes all hold the same amount of each colour)."""
    n = grid * grid
    patterns = [tuple((k >> b) & 1 for b in range(n)) for k in range(2**n)]
    return tuple(sorted(patterns, key=lambda p: abs(sum(p) - n / 2)))


def _grid(n_classes: int) -> int:
    if n_classes > 512:
        raise ValueError(f"a cue encodes at most 512 classes, got {n_classes}")
    return 2 if n_classes <= 16 else 3


def cue_code(cls: int, n_classes: int) -> np.ndarray:
    """The grid×grid bool pattern (row-major, ``True`` = green) that encodes ``cls``."""
    grid = _grid(n_classes)
    return np.array(_codes(grid)[cls], dtype=bool).reshape(grid, grid)


def _cue_side(size: int) -> int:
    return max(6, round(size / 8))


def _cell_edges(side: int, grid: int) -> np.ndarray:
    return np.round(np.linspace(1, side - 1, grid + 1)).astype(int)


def _draw_cue(side: int, code: np.ndarray, channels: int) -> np.ndarray:
    """The cue as a channels×side×side uint8 array."""
    on = np.array(CUE_COLOURS["green"] if channels == 3 else (255,), dtype=np.uint8)
    off = np.array(CUE_COLOURS["black"] if channels == 3 else (0,), dtype=np.uint8)
    out = np.empty((channels, side, side), dtype=np.uint8)
    out[:] = on[:, None, None]
    e = _cell_edges(side, code.shape[0])
    for r in range(code.shape[0]):
        for c in range(code.shape[1]):
            if not code[r, c]:
                out[:, e[r] : e[r + 1], e[c] : e[c + 1]] = off[:, None, None]
    return out


def _positions(size: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the 8 border positions (corners, edge midpoints)."""
    m = 2 if size - side >= 8 else 0
    lo, mid, hi = m, (size - side) // 2, size - side - m
    return [(y, x) for y in (lo, mid, hi) for x in (lo, mid, hi) if (y, x) != (mid, mid)]


def plant_cue(
    images: torch.Tensor,
    object_masks: torch.Tensor,
    cue_classes,
    seed: int | Sequence[int],
    *,
    n_classes: int | None = None,
    side: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plant a class-coding cue in every image, away from the object where it fits.

    Args:
        images: N×C×H×W uint8 (C = 3, or 1: then the cue is white on black).
        object_masks: N×1×H×W bool, what the cue must not cover (the whole object, or
            every object of a scene).
        cue_classes: N class indices, the class each cue encodes.
        seed: an int or a sequence of ints; image ``i``'s position is drawn from
            ``numpy.random.default_rng([*seed, i])`` (global RNG untouched).
        n_classes: the number of classes (decides the code grid; default: the largest
            class + 1).
        side: the cue's side in pixels (default ``max(6, round(H / 8))``).

    Returns:
        ``(images, cue_masks)``: a new uint8 tensor with the cues drawn, and N×1×H×W bool,
        the cue's pixels (the only pixels that may differ from ``images``). Where no
        position is clear of the object, the cue covers part of it: remove the cue's
        pixels from the object's masks (``mask & ~cue_masks``).
    """
    cues = torch.as_tensor(cue_classes).long()
    n, channels, height, width = images.shape
    if images.dtype != torch.uint8 or channels not in (1, 3) or height != width:
        raise ValueError(f"images must be N×3×S×S (or N×1×S×S) uint8, got {tuple(images.shape)}")
    if len(cues) != n or object_masks.shape != (n, 1, height, width):
        raise ValueError("object_masks and cue_classes must have one entry per image")
    n_classes = int(cues.max()) + 1 if n_classes is None else n_classes
    if n and (cues.min() < 0 or cues.max() >= n_classes):
        raise ValueError(f"cue classes must lie in [0, {n_classes}), got {cues.tolist()}")
    side = _cue_side(height) if side is None else side
    seed = [seed] if isinstance(seed, int | np.integer) else list(seed)
    out, masks = images.clone().numpy(), np.zeros((n, 1, height, width), dtype=bool)
    obj = object_masks.numpy()
    spots = _positions(height, side)
    for i in range(n):
        rng = np.random.default_rng([*seed, i])
        free = [
            (y, x)
            for y, x in spots
            if not obj[i, 0, max(y - 1, 0) : y + side + 1, max(x - 1, 0) : x + side + 1].any()
        ]
        y, x = (free or spots)[rng.integers(len(free or spots))]
        out[i, :, y : y + side, x : x + side] = _draw_cue(
            side, cue_code(int(cues[i]), n_classes), channels
        )
        masks[i, 0, y : y + side, x : x + side] = True
    return torch.from_numpy(out), torch.from_numpy(masks)


def decode_cue(images: torch.Tensor, cue_masks: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Read the class off each image's cue (``-1`` where no cue or an unknown pattern):
    the oracle a cue-reading model could be, and a check of :func:`plant_cue`."""
    grid = _grid(n_classes)
    lookup = {code: k for k, code in enumerate(_codes(grid)[:n_classes])}
    out = torch.full((len(images),), -1, dtype=torch.long)
    for i in range(len(images)):
        ys, xs = np.nonzero(cue_masks[i, 0].numpy())
        if len(ys) == 0:
            continue
        y, x, side = ys.min(), xs.min(), ys.max() - ys.min() + 1
        patch = images[i, :, y : y + side, x : x + side].float().numpy()
        green = patch[1] - patch[0] if patch.shape[0] == 3 else patch[0]
        e = _cell_edges(side, grid)
        bits = tuple(
            int(green[e[r] : e[r + 1], e[c] : e[c + 1]].mean() > 127)
            for r in range(grid)
            for c in range(grid)
        )
        out[i] = lookup.get(bits, -1)
    return out


def cue_labels(
    regime: str, split: str, object_targets, n_classes: int, seed: int, rho: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(targets, cue_targets)`` of a cue dataset in ``regime`` (see the module notes).

    ``object_targets`` are the classes the objects show; the draws come from their own
    stream of ``(seed, split)``.
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got {regime!r}")
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {tuple(_SPLITS)}, got {split!r}")
    if not 0.0 <= rho <= 1.0:
        raise ValueError(f"rho must lie in [0, 1], got {rho}")
    obj = torch.as_tensor(object_targets).long().numpy()
    rng = np.random.default_rng([seed, _SPLITS[split], _LABEL_SALT])
    uniform = rng.integers(n_classes, size=len(obj))
    if regime == "cue-only":
        targets = obj[rng.permutation(len(obj))]
        cues = targets
    elif regime == "object-only" or split != "train":
        targets, cues = obj, uniform
    else:
        other = (obj + rng.integers(1, max(n_classes, 2), size=len(obj))) % n_classes
        targets, cues = obj, np.where(rng.random(len(obj)) < rho, obj, other)
    return torch.from_numpy(targets.copy()), torch.from_numpy(cues.copy())


def cue_reliance(predictions, cue_targets, object_targets) -> dict:
    """How a model treats the cue where cue and object disagree.

    Returns:
        ``reliance``: share of those images predicted as the cue's class; ``object``: as
        the object's class; ``other``: neither; ``n``: how many images (cue ≠ object).
        The shares are NaN when ``n`` is 0.
    """
    pred, cue, obj = (
        torch.as_tensor(t).long().flatten() for t in (predictions, cue_targets, object_targets)
    )
    if not len(pred) == len(cue) == len(obj):
        raise ValueError(f"lengths differ: {len(pred)}, {len(cue)}, {len(obj)}")
    differ = cue != obj
    n = int(differ.sum())
    if n == 0:
        return {"reliance": float("nan"), "object": float("nan"), "other": float("nan"), "n": 0}
    reliance = (pred[differ] == cue[differ]).float().mean().item()
    on_object = (pred[differ] == obj[differ]).float().mean().item()
    return {"reliance": reliance, "object": on_object, "other": 1 - reliance - on_object, "n": n}


class CueDataset(TensorSplit):
    """A generated dataset with a class-coding cue planted in every image.

    Args:
        base: a dataset holding its split as tensors: ``images`` (N×C×H×W uint8),
            ``targets`` (the object's classes), ``masks`` (the object's discriminative
            region), ``object_masks`` (what the cue avoids), ``classes`` (and optionally
            ``part_masks``, cleared of the cue's pixels too).
        regime: one of :data:`REGIMES`.
        split: the base's split (``"train"``, ``"val"`` or ``"test"``).
        seed: the labels' and the cue positions' seed.
        rho: in ``"confounded"`` training data, the probability that the cue shows the
            label.

    Attributes:
        images, targets, masks (the cue in ``"cue-only"``, the object's region
        otherwise), object_masks, classes, regions (``{"cue", "object"}``), cue_targets,
        object_targets, cue_masks.
    """

    def __init__(
        self, base, regime: str, *, split: str, seed: int = 0, rho: float = 1.0,
        transform=None, target_transform=None,
    ) -> None:  # fmt: skip
        self.regime, self.split, self.seed, self.rho = regime, split, seed, rho
        self.transform, self.target_transform = transform, target_transform
        self.classes = list(base.classes)
        self.object_targets = base.targets.clone()
        self.targets, self.cue_targets = cue_labels(
            regime, split, self.object_targets, len(self.classes), seed, rho
        )
        self.images, self.cue_masks = plant_cue(
            base.images, base.object_masks, self.cue_targets, (seed, _SPLITS[split], _PLANT_SALT),
            n_classes=len(self.classes),
        )  # fmt: skip
        keep = ~self.cue_masks
        self.object_masks = base.object_masks & keep
        self.part_masks = {k: v & keep for k, v in getattr(base, "part_masks", {}).items()}
        region = base.masks & keep
        self.regions = {"cue": self.cue_masks, "object": region}
        self.masks = self.cue_masks if regime == "cue-only" else region

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(regime={self.regime!r}, split={self.split!r}, "
            f"n={len(self)}, seed={self.seed}, rho={self.rho}, classes={len(self.classes)})"
        )


class CueFlowers(CueDataset):
    """an8Flower (single-6c by default) with a class-coding cue: see the module notes.

    The flowers are those of :class:`~squeezex.datasets.An8Flower` with the same
    arguments; the object's region (``regions["object"]``, and ``masks`` outside
    ``"cue-only"``) is the leaf, ``object_masks`` the whole flower.

    Example:
        >>> ds = CueFlowers("confounded", "test", n_per_class=2, size=64, seed=0)
        >>> sorted(ds.regions), ds.cue_targets.shape, ds.object_targets.shape
        (['cue', 'object'], torch.Size([12]), torch.Size([12]))
    """

    def __init__(
        self, regime: str = "confounded", split: str = "train", n_per_class: int = 200,
        size: int = 64, seed: int = 0, *, rho: float = 1.0, variant: str = "single-6c",
        difficulty: str = "easy", transform=None, target_transform=None,
    ) -> None:  # fmt: skip
        base = An8Flower(
            variant, split, n_per_class=n_per_class, size=size, seed=seed, difficulty=difficulty
        )
        super().__init__(
            base, regime, split=split, seed=seed, rho=rho, transform=transform,
            target_transform=target_transform,
        )  # fmt: skip
        self.variant, self.size, self.difficulty = variant, size, difficulty


# -- benchmark datasets ------------------------------------------------------------------------------
def _register(regime: str, description: str) -> None:
    @register_dataset(regime, description=description, n_train=200, n_test=25, vebi_mu=5.0)
    def _build(split: str, *, n_per_class: int, size: int, seed: int) -> CueFlowers:
        return CueFlowers(regime, split, n_per_class=n_per_class, size=size, seed=seed)


_register("cue-only", "an8Flower single-6c + cue: the label is the cue, the leaf is noise")
_register("object-only", "an8Flower single-6c + cue: the label is the leaf, the cue is noise")
_register(
    "confounded",
    "an8Flower single-6c + cue: cue = leaf = label in train, cue random in test (reliance)",
)
