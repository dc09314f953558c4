"""an8Flower's hard difficulty, its per-part regions, and the easy images kept as they were."""

import hashlib

import numpy as np
import pytest

from squeezex.datasets import An8Flower, get_dataset
from squeezex.datasets.an8flower import _VARIANTS, CLASS_COLOURS

#: sha256 of images, targets, masks, object masks and part masks, computed with the
#: generator as it was before ``difficulty="hard"`` was rebuilt: easy must not change.
EASY_HASHES = [
    (
        ("single-6c", "train", 2, 48, 0, False),
        "e184a0a160d54b5aeb030921f630989a71ffc4c1573fa976054e743643e0239b",
    ),
    (
        ("double-12c", "test", 1, 64, 3, False),
        "ed2ff15176e598455a463ec5390917e666a253938af3331e1691825e2cdc989b",
    ),
    (
        ("single-6c", "test", 1, 40, 1, True),
        "2dd9eea0a59befa1bcc2fb837270c236784e9ace610643383dabde3d19bbbc92",
    ),
]


def _digest(ds) -> str:
    h = hashlib.sha256()
    for t in (ds.images, ds.targets, ds.masks, ds.object_masks):
        h.update(t.numpy().tobytes())
    for k in sorted(ds.part_masks):
        h.update(k.encode())
        h.update(ds.part_masks[k].numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize(("args", "expected"), EASY_HASHES)
def test_easy_images_are_byte_identical_to_before(args, expected):
    variant, split, n, size, seed, hide = args
    ds = An8Flower(variant, split, n_per_class=n, size=size, seed=seed, hide_parts=hide)
    assert _digest(ds) == expected


_NAMES = _VARIANTS["single-6c"][1][0]
_REF = np.array([CLASS_COLOURS[c] for c in _NAMES])
_REF = _REF / _REF.max(1, keepdims=True)  # brightness-free: lighting scales a colour


def _nearest(pixels: np.ndarray):
    """Nearest class colour of each K×3 pixel (brightness normalised) and its distance."""
    n = pixels / np.maximum(pixels.max(1, keepdims=True), 1e-6)
    d = np.linalg.norm(n[:, None] - _REF[None], axis=2)
    return d.argmin(1), d.min(1)


@pytest.fixture(scope="module")
def pair():
    kw = {"split": "test", "n_per_class": 10, "size": 64, "seed": 1}
    return An8Flower("single-6c", **kw), An8Flower("single-6c", difficulty="hard", **kw)


def _other_parts_in_class_colours(ds) -> float:
    x = ds.images.permute(0, 2, 3, 1).numpy() / 255
    hits = []
    for i in range(len(ds)):
        for part in ("leaf2", "petals", "centre", "bud"):
            m = ds.part_masks[part][i, 0].numpy()
            if m.sum() >= 3:
                hits.append(_nearest(x[i][m].mean(0, keepdims=True))[1][0] < 0.15)
    return float(np.mean(hits))


def _majority_colour_oracle(ds) -> float:
    """Predict the class colour that covers the most pixels anywhere in the image."""
    x = ds.images.permute(0, 2, 3, 1).numpy() / 255
    right = []
    for i in range(len(ds)):
        pix = x[i].reshape(-1, 3)
        k, d = _nearest(pix[pix.max(1) > 0.3])
        right.append(np.bincount(k[d < 0.12], minlength=6).argmax() == int(ds.targets[i]))
    return float(np.mean(right))


def test_hard_puts_class_colours_on_other_parts_and_in_the_background(pair):
    easy, hard = pair
    assert _other_parts_in_class_colours(easy) == 0.0
    assert _other_parts_in_class_colours(hard) > 0.25
    # the most common class colour in the image gives the class in easy, not in hard
    assert _majority_colour_oracle(easy) > 0.95
    assert _majority_colour_oracle(hard) < 0.45


def test_hard_part_masks_are_the_visible_leaf_and_smaller(pair):
    easy, hard = pair
    x = hard.images.permute(0, 2, 3, 1).numpy() / 255
    mean_ok, pixel_share = [], []
    for i in range(len(hard)):
        m = hard.masks[i, 0].numpy()
        label = int(hard.targets[i])
        k, d = _nearest(x[i][m].mean(0, keepdims=True))
        mean_ok.append(k[0] == label and d[0] < 0.15)
        k, d = _nearest(x[i][m])
        pixel_share.append(((k == label) & (d < 0.25)).mean())
    # the mask holds the leaf's colour, not the stroke across it nor the background
    assert np.mean(mean_ok) > 0.95
    assert np.mean(pixel_share) > 0.8 and np.min(pixel_share) > 0.5
    # 0.6× the size (0.36× the area) and partly covered by a stroke
    ratio = hard.masks.float().mean() / easy.masks.float().mean()
    assert 0.15 < ratio < 0.4
    assert hard.masks.flatten(1).sum(1).min() >= 15
    assert not (hard.masks & ~hard.object_masks).any()


def test_regions_are_the_discriminative_parts():
    ds = An8Flower("double-12c", n_per_class=1, size=64, seed=0, difficulty="hard")
    assert sorted(ds.regions) == ["bud", "leaf"]
    assert (ds.regions["leaf"] | ds.regions["bud"]).equal(ds.masks)
    assert not (ds.regions["leaf"] & ds.regions["bud"]).any()
    for r in ds.regions.values():
        assert r.dtype == ds.masks.dtype and r.shape == ds.masks.shape
        assert r.flatten(1).any(1).all()  # every image shows every part
    assert list(An8Flower(n_per_class=1, size=48).regions) == ["leaf"]


def test_hard_is_registered_and_deterministic():
    spec = get_dataset("an8flower-hard")
    a = spec.build("test", n_per_class=1, size=48, seed=2)
    b = spec.build("test", n_per_class=1, size=48, seed=2)
    assert len(a.classes) == 6 and a.difficulty == "hard" and a.variant == "single-6c"
    assert a.images.equal(b.images) and a.masks.equal(b.masks)
    assert not a.images.equal(spec.build("train", n_per_class=1, size=48, seed=2).images)
