"""Cue datasets: a class-coding mark beside the object, its exact masks, the three
regimes' label statistics, and the reliance measure."""

import numpy as np
import pytest
import torch

from squeezex.datasets import (
    An8Flower,
    CueDataset,
    CueFlowers,
    Scenes,
    cue_reliance,
    decode_cue,
    get_dataset,
    plant_cue,
)
from squeezex.datasets.an8flower import _VARIANTS, CLASS_COLOURS
from squeezex.datasets.cues import CUE_COLOURS, cue_code, cue_labels
from squeezex.models import build_model
from squeezex.training import evaluate, fit

KW = {"n_per_class": 40, "size": 64, "seed": 0}
CHANCE = 1 / 6


@pytest.fixture(scope="module")
def base():
    return {s: An8Flower("single-6c", s, **KW) for s in ("train", "test")}


@pytest.fixture(scope="module")
def sets(base):
    """What ``CueFlowers(regime, split, **KW)`` builds (tested below), flowers drawn once."""
    return {
        (regime, split): CueDataset(base[split], regime, split=split, seed=KW["seed"])
        for regime in ("cue-only", "object-only", "confounded")
        for split in ("train", "test")
    }


def _leaf_oracle(ds) -> torch.Tensor:
    """The class whose colour is nearest the leaf's mean colour (brightness normalised)."""
    ref = np.array([CLASS_COLOURS[c] for c in _VARIANTS["single-6c"][1][0]])
    ref = ref / ref.max(1, keepdims=True)
    x = ds.images.permute(0, 2, 3, 1).numpy() / 255
    out = []
    for i in range(len(ds)):
        mean = x[i][ds.regions["object"][i, 0].numpy()].mean(0)
        out.append(np.linalg.norm(mean / mean.max() - ref, axis=1).argmin())
    return torch.tensor(out)


def _acc(a, b) -> float:
    return (torch.as_tensor(a) == torch.as_tensor(b)).float().mean().item()


def test_deterministic_by_seed_and_split():
    a = CueFlowers("confounded", "test", n_per_class=3, size=48, seed=5)
    wrapped = CueDataset(
        An8Flower("single-6c", "test", n_per_class=3, size=48, seed=5), "confounded",
        split="test", seed=5,
    )  # fmt: skip
    assert a.images.equal(wrapped.images) and a.targets.equal(wrapped.targets)
    b = CueFlowers("confounded", "test", n_per_class=3, size=48, seed=5)
    for name in ("images", "targets", "cue_targets", "object_targets", "masks", "cue_masks"):
        assert getattr(a, name).equal(getattr(b, name)), name
    c = CueFlowers("confounded", "test", n_per_class=3, size=48, seed=6)
    assert not a.cue_masks.equal(c.cue_masks)
    assert not a.images.equal(CueFlowers("confounded", "train", n_per_class=3, size=48).images)


def test_cue_mask_is_exactly_the_planted_pixels(sets, base):
    for (_, split), ds in sets.items():
        changed = (ds.images != base[split].images).any(1, keepdim=True)
        assert not (changed & ~ds.cue_masks).any()  # nothing changes outside the cue
        assert (ds.cue_masks & ~changed).sum() <= 2 * len(ds)  # and (nearly) all of it does
        assert (ds.cue_masks.flatten(1).sum(1) == 8 * 8).all()  # 8×8 at 64×64
        assert not (ds.cue_masks & base[split].object_masks).any()  # never on the flower
        assert ds.object_masks.equal(base[split].object_masks)
        assert ds.regions["object"].equal(base[split].masks)
        green = torch.tensor(CUE_COLOURS["green"], dtype=torch.uint8)[:, None]
        # its pixels are the cue's two colours only
        pix = ds.images.permute(1, 0, 2, 3)[:, ds.cue_masks[:, 0]]
        assert ((pix == green).all(0) | (pix == 0).all(0)).all()


def test_regimes_masks_and_regions(sets):
    for (regime, _), ds in sets.items():
        assert sorted(ds.regions) == ["cue", "object"]
        assert ds.regions["cue"].equal(ds.cue_masks)
        expected = ds.cue_masks if regime == "cue-only" else ds.regions["object"]
        assert ds.masks.equal(expected)
        image, target, mask = ds[0]
        assert image.shape == (3, 64, 64) and mask.equal(ds.masks[0])
        assert target == int(ds.targets[0])
        assert len(ds.cue_targets) == len(ds.object_targets) == len(ds)


def test_cue_only_labels_are_the_cue_and_not_the_leaf(sets):
    for split in ("train", "test"):
        ds = sets[("cue-only", split)]
        assert ds.targets.equal(ds.cue_targets)
        assert decode_cue(ds.images, ds.cue_masks, 6).equal(ds.targets)
        leaf = _leaf_oracle(ds)
        assert _acc(leaf, ds.object_targets) == 1.0  # the oracle can read leaves
        assert _acc(leaf, ds.targets) < CHANCE + 0.1  # but they say nothing of the label
        assert ds.targets.bincount().tolist() == [40] * 6  # labels stay balanced


def test_object_only_cue_is_noise(sets):
    for split in ("train", "test"):
        ds = sets[("object-only", split)]
        assert ds.targets.equal(ds.object_targets)
        cue = decode_cue(ds.images, ds.cue_masks, 6)
        assert cue.equal(ds.cue_targets)
        assert _acc(cue, ds.targets) < CHANCE + 0.1
        assert _acc(_leaf_oracle(ds), ds.targets) == 1.0


def test_confounded_train_agrees_and_test_is_decorrelated(sets):
    train, test = sets[("confounded", "train")], sets[("confounded", "test")]
    assert train.cue_targets.equal(train.targets) and train.targets.equal(train.object_targets)
    assert decode_cue(train.images, train.cue_masks, 6).equal(train.targets)
    assert test.targets.equal(test.object_targets)
    assert _acc(test.cue_targets, test.targets) < CHANCE + 0.1
    assert len(set(test.cue_targets.tolist())) == 6
    half = CueFlowers("confounded", "train", n_per_class=40, size=48, seed=0, rho=0.5)
    assert 0.35 < _acc(half.cue_targets, half.targets) < 0.65
    with pytest.raises(ValueError, match="rho"):
        cue_labels("confounded", "train", torch.zeros(3), 6, 0, rho=1.5)
    with pytest.raises(ValueError, match="regime"):
        cue_labels("cue-first", "train", torch.zeros(3), 6, 0)


def test_cue_reliance_on_hand_made_predictions():
    cue = torch.tensor([0, 1, 2, 3, 4, 5])
    obj = torch.tensor([0, 2, 3, 4, 5, 0])  # the first agrees: left out
    pred = torch.tensor([0, 1, 2, 3, 4, 1])  # cue, cue, cue, cue, other
    r = cue_reliance(pred, cue, obj)
    assert r["n"] == 5
    assert r["reliance"] == pytest.approx(0.8) and r["object"] == 0.0
    assert r["other"] == pytest.approx(0.2)
    r = cue_reliance(obj, cue, obj)
    assert r["reliance"] == 0.0 and r["object"] == 1.0
    assert np.isnan(cue_reliance(cue, cue, cue)["reliance"])


def test_plant_cue_on_top_when_nothing_is_clear_and_on_any_generator():
    images = torch.full((4, 3, 40, 40), 128, dtype=torch.uint8)
    full = torch.ones(4, 1, 40, 40, dtype=torch.bool)
    out, masks = plant_cue(images, full, torch.tensor([0, 1, 2, 3]), seed=(1, 2))
    assert (masks.flatten(1).sum(1) == 6 * 6).all()  # drawn anyway, on the object
    assert ((out != images).any(1, keepdim=True) == masks).all()
    assert images.eq(128).all()  # the input is left alone
    # a code grid of 3×3 once a class index reaches 16; codes decode back
    classes = torch.tensor([0, 7, 16, 19])
    out, masks = plant_cue(images, ~full, classes, seed=0, n_classes=20)
    assert decode_cue(out, masks, 20).equal(classes)
    assert cue_code(19, 20).shape == (3, 3) and cue_code(5, 6).sum() == 2
    # scenes: the same wrapper, the cue beside every shape
    scenes = Scenes(4, size=48, split="test", seed=0)
    ds = CueDataset(scenes, "object-only", split="test", seed=0)
    assert not (ds.cue_masks & scenes.object_masks).any()
    assert ds.masks.equal(scenes.masks) and len(ds.classes) == 6


def test_registered_cue_datasets():
    for name in ("cue-only", "object-only", "confounded"):
        spec = get_dataset(name)
        assert spec.n_test >= 20
        ds = spec.build("test", n_per_class=1, size=48, seed=0)
        assert ds.regime == name and isinstance(ds, CueFlowers)


def test_a_small_cnn_learns_the_cue():
    """A few seconds of training read the cue: 0.78-0.97 over model seeds 0-3 (chance 1/6)."""
    train = CueFlowers("cue-only", "train", n_per_class=20, size=48, seed=0)
    test = CueFlowers("cue-only", "test", n_per_class=10, size=48, seed=0)
    model = build_model("small", 6, seed=0)
    fit(model, train, epochs=8, batch_size=16, progress=False)
    assert evaluate(model, test) > 0.6
