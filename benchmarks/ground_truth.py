"""What the generators' ground truth allows: oracle and reference maps, colour probes, sizes.

The generated datasets are designed against the traps of METHODS.md §3 (a coarse feature
map capping the pointing game, a position prior or a colour histogram solving the task).
This measures, on the generators alone (no trained model), the numbers their docstrings
rest on:

* **an8Flower** single-6c, easy and hard (300 test images each, 64 px): the share of the
  image the leaf covers; the pointing game of an oracle map at stride 4 and 8 (the mask
  averaged over stride×stride cells and upsampled back, both nearest and smoothly from the
  cells' centres as the benchmark's ``oracle`` reference); and how often the most common
  class colour anywhere in the image gives the class.
* **scenes** (the tests' 1,380 images, seed 0: 200 training and 30 test images per class,
  at 48 and 64 px): the class shape's mean area share; the pointing game of an
  image-centre Gaussian and of the oracle maps at stride 4 (overall, and on the ring); a
  colour-histogram probe's test accuracy against chance; and how often a random layout
  fits 5 or 6 distractors beside the class shape (the generator's own placement).
* **faces** (64 px): a colour-histogram probe per attribute (600 training and 300 test
  faces, as ``tests/test_faces.py``), and per attribute the pointing game of the
  benchmark's ``oracle`` reference (the mask at the small CNN's stride-4 feature
  resolution, upsampled with its geometry) on 400 test faces' (face, attribute) pairs,
  with no slack and with the benchmark's 2-px slack.

Prints the numbers and writes ``benchmarks/ground_truth.json``; about a minute on one core.

Usage: ``python benchmarks/ground_truth.py [--json benchmarks/ground_truth.json]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 64


def pointing(maps: torch.Tensor, masks: torch.Tensor) -> float:
    from squeezex.metrics import pointing_game

    return pointing_game(maps, masks).mean().item()


def oracle(masks: torch.Tensor, stride: int, smooth: bool) -> torch.Tensor:
    """The mask averaged over stride×stride cells, upsampled back: nearest (each cell's
    block; its first pixel in raster order is the block's corner), or ``smooth``: bilinear
    from the cells' centres (``squeezex.explainers.references.oracle_map``, the benchmark's
    ``oracle`` reference, with the geometry of a stride×stride pooling)."""
    from squeezex.explainers.references import oracle_map
    from squeezex.geometry import feature_geometry

    if not smooth:
        return F.interpolate(F.avg_pool2d(masks.float(), stride), scale_factor=stride)
    pool = torch.nn.Sequential(torch.nn.AvgPool2d(stride))
    geometry = feature_geometry(pool, pool[0], masks[:1].float())
    h, w = masks.shape[-2:]
    return oracle_map(masks, (h // stride, w // stride), geometry)


def oracle_pointing(masks: torch.Tensor, strides=(4, 8)) -> dict:
    """The pointing game of both oracle maps at each stride."""
    return {
        f"oracle_{'smooth' if smooth else 'nearest'}_stride{s}": pointing(
            oracle(masks, s, smooth), masks
        )
        for s in strides
        for smooth in (False, True)
    }


def colour_histograms(images: torch.Tensor, bins: int = 8, counts: bool = False) -> np.ndarray:
    """bins×bins×bins RGB histograms of N×3×H×W uint8 images: square roots of the pixel
    shares (the scenes probe), or the pixel counts (the faces probe)."""
    x = images.permute(0, 2, 3, 1).reshape(len(images), -1, 3).numpy().astype(np.int64)
    x = x // (256 // bins)
    codes = x[..., 0] * bins * bins + x[..., 1] * bins + x[..., 2]
    hist = np.stack([np.bincount(c, minlength=bins**3) for c in codes]).astype(np.float64)
    return hist if counts else np.sqrt(hist / codes.shape[1])


# -- an8Flower -------------------------------------------------------------------------------
def majority_colour_share(ds) -> float:
    """How often the class colour that covers the most pixels anywhere gives the class
    (colours compared brightness-free, as lighting scales them)."""
    from squeezex.datasets.an8flower import CLASS_COLOURS

    ref = np.array([CLASS_COLOURS[c.split()[0]] for c in ds.classes], dtype=float)
    ref = ref / ref.max(1, keepdims=True)
    x = ds.images.permute(0, 2, 3, 1).numpy() / 255
    right = []
    for i in range(len(ds)):
        pix = x[i].reshape(-1, 3)
        pix = pix[pix.max(1) > 0.3]
        n = pix / pix.max(1, keepdims=True)
        d = np.linalg.norm(n[:, None] - ref[None], axis=2)
        k = d.argmin(1)[d.min(1) < 0.12]
        right.append(np.bincount(k, minlength=len(ref)).argmax() == int(ds.targets[i]))
    return float(np.mean(right))


def an8flower() -> dict:
    from squeezex.datasets import An8Flower

    out = {}
    for difficulty in ("easy", "hard"):
        ds = An8Flower("single-6c", "test", n_per_class=50, size=SIZE, seed=0,
                       difficulty=difficulty)  # fmt: skip
        out[difficulty] = {
            "n": len(ds),
            "leaf_area_share": ds.masks.float().mean().item(),
            **oracle_pointing(ds.masks),
            "majority_colour_gives_class": majority_colour_share(ds),
        }
    return out


# -- scenes ----------------------------------------------------------------------------------
def layout_fit_rate(size: int, k: int, trials: int = 300) -> float:
    """The share of random layouts (the class shape placed anywhere, then ``k`` distractors
    around it, as the generator tries them) in which every distractor fits."""
    from squeezex.datasets.scenes import DISTRACTOR_SHAPES, SHAPES, _layout, _place

    rng = np.random.default_rng(0)
    fits = 0
    for _ in range(trials):
        target = SHAPES[rng.integers(len(SHAPES))]
        first = _place(rng, target, size, np.zeros((size, size), dtype=bool))
        names = [DISTRACTOR_SHAPES[j] for j in rng.integers(len(DISTRACTOR_SHAPES), size=k)]
        fits += first is not None and _layout(rng, first, names, size) is not None
    return fits / trials


def scenes_at(size: int) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from squeezex.datasets import Scenes
    from squeezex.explainers.references import centre_map

    train, test = Scenes(200, size=size, seed=0), Scenes(30, size=size, split="test", seed=0)
    masks = torch.cat([train.masks, test.masks])
    ring = torch.cat([train.targets, test.targets]) == train.classes.index("ring")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000))
    probe.fit(colour_histograms(train.images), train.targets.numpy())
    return {
        "n": len(masks),
        "class_shape_area_share": masks.float().mean().item(),
        "centre_pointing": pointing(centre_map(len(masks), (size, size)), masks),
        **oracle_pointing(masks, strides=(4,)),
        "ring": oracle_pointing(masks[ring], strides=(4,)),
        "colour_probe_accuracy": probe.score(colour_histograms(test.images), test.targets.numpy()),
        "chance": 1 / len(train.classes),
    }


def scenes() -> dict:
    out = {f"size {s}": scenes_at(s) for s in (48, 64)}
    cases = ((64, 5), (64, 6), (48, 5), (48, 6), (32, 5))
    out["layouts_that_fit"] = {
        f"{k} distractors at {s} px": layout_fit_rate(s, k) for s, k in cases
    }
    return out


# -- faces -----------------------------------------------------------------------------------
def face_probes() -> dict:
    """A logistic-regression probe on 8×8×8-bin RGB histograms, per attribute."""
    from sklearn.linear_model import LogisticRegression

    from squeezex.datasets import ATTRIBUTES, make_faces

    train = make_faces(600, seed=0, split="train")
    test = make_faces(300, seed=0, split="test")
    htr = colour_histograms(train.images, counts=True)
    hte = colour_histograms(test.images, counts=True)
    out = {}
    for k, name in enumerate(ATTRIBUTES):
        probe = LogisticRegression(max_iter=2000, C=10).fit(htr, train.attributes[:, k].numpy())
        out[name] = probe.score(hte, test.attributes[:, k].numpy())
    return out


def face_oracle() -> dict:
    """The ``oracle`` reference's pointing game per attribute, no slack and 2 px."""
    from squeezex import find_se_block
    from squeezex.datasets import AttributePairs, SyntheticFaces
    from squeezex.datasets.faces import FACES_POINTING_TOLERANCE
    from squeezex.explainers.references import oracle_map
    from squeezex.geometry import feature_geometry
    from squeezex.metrics import pointing_game
    from squeezex.models import build_model
    from squeezex.models.se import layer_output_shape

    pairs = AttributePairs(SyntheticFaces("test", n=400, size=SIZE, seed=0))
    model = build_model("small", len(pairs.classes), se=True, seed=0).eval()
    x = pairs.images[:1].float() / 255
    block = find_se_block(model)
    size = layer_output_shape(model, block, x)[2:]
    maps = oracle_map(pairs.masks, size, feature_geometry(model, block, x))
    out = {}
    for k, name in enumerate(pairs.classes):
        on = pairs.targets == k
        out[name] = {
            "pairs": int(on.sum()),
            "no_slack": pointing_game(maps[on], pairs.masks[on]).mean().item(),
            f"slack_{FACES_POINTING_TOLERANCE}px": pointing_game(
                maps[on], pairs.masks[on], tolerance=FACES_POINTING_TOLERANCE
            )
            .mean()
            .item(),
        }
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=str(Path(__file__).with_suffix(".json")))
    args = p.parse_args(argv)
    from squeezex.io import atomic_write_json

    results = {
        "an8flower": an8flower(),
        "scenes": scenes(),
        "faces": {"colour_probe_accuracy": face_probes(), "oracle_pointing": face_oracle()},
    }
    atomic_write_json(args.json, results)
    print(json_text(results))


def json_text(results: dict, indent: str = "") -> str:
    """The results as indented lines, floats to 3 places."""
    lines = []
    for key, value in results.items():
        if isinstance(value, dict):
            lines += [f"{indent}{key}:", json_text(value, indent + "  ")]
        else:
            lines.append(f"{indent}{key}: {value:.3f}" if isinstance(value, float) else
                         f"{indent}{key}: {value}")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
