"""The an8Flower generator and the real-dataset loader (on fake files in the real layout)."""

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from squeezex.datasets import An8Flower, An8FlowerFolder
from squeezex.models import build_model
from squeezex.training import evaluate, fit


def test_items_shapes_and_types():
    ds = An8Flower("single-6c", "train", n_per_class=2, size=48, seed=0)
    assert len(ds) == 12 and len(ds.classes) == 6
    img, target, mask = ds[3]
    assert (
        img.shape == (3, 48, 48) and img.dtype == torch.float32 and 0 <= img.min() <= img.max() <= 1
    )
    assert isinstance(target, int) and 0 <= target < 6
    assert mask.shape == (1, 48, 48) and mask.dtype == torch.bool
    assert ds.masks.flatten(1).any(1).all(), "every image has its discriminative part"
    assert (ds.masks & ~ds.object_masks).sum() == 0, "the part lies on the object"
    assert "single-6c" in repr(ds)


def test_double_12c_masks_cover_two_parts():
    ds = An8Flower("double-12c", n_per_class=1, size=64, seed=0)
    assert len(ds.classes) == 12
    both = ds.part_masks["leaf"].flatten(1).any(1) & ds.part_masks["bud"].flatten(1).any(1)
    assert both.all()
    torch.testing.assert_close(ds.masks, ds.part_masks["leaf"] | ds.part_masks["bud"])


def test_deterministic_from_seed_and_split_without_global_rng():
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state is the point)
    a = An8Flower("single-6c", "train", n_per_class=2, size=40, seed=3)
    b = An8Flower("single-6c", "train", n_per_class=2, size=40, seed=3)
    c = An8Flower("single-6c", "test", n_per_class=2, size=40, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, c.images)
    assert torch.equal(torch.get_rng_state(), state)
    assert (np.random.get_state()[1] == np_state).all()  # noqa: NPY002


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="variant"):
        An8Flower("triple")
    with pytest.raises(ValueError, match="split"):
        An8Flower(split="holdout")
    with pytest.raises(ValueError, match="n_per_class"):
        An8Flower(n_per_class=0)


def _colour_histograms(ds, bins=8):
    x = ds.images.permute(0, 2, 3, 1).reshape(len(ds), -1, 3).numpy() // (256 // bins)
    codes = x[..., 0] * bins * bins + x[..., 1] * bins + x[..., 2]
    return np.sqrt(np.stack([np.bincount(c, minlength=bins**3) for c in codes]) / codes.shape[1])


def test_only_the_discriminative_part_carries_the_class():
    """A colour-histogram probe reads the class off full images, but is at chance when the
    discriminative part is painted in neutral colours; so is a CNN."""
    kw = {"size": 48, "seed": 0}
    full_tr, full_te = (
        An8Flower(n_per_class=60, **kw),
        An8Flower(split="test", n_per_class=40, **kw),
    )
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    probe.fit(_colour_histograms(full_tr), full_tr.targets.numpy())
    assert (
        probe.score(_colour_histograms(full_te), full_te.targets.numpy()) > 0.9
    )  # the probe can see

    hid_tr = An8Flower(n_per_class=60, hide_parts=True, **kw)
    hid_te = An8Flower(split="test", n_per_class=40, hide_parts=True, **kw)
    probe.fit(_colour_histograms(hid_tr), hid_tr.targets.numpy())
    chance = 1 / 6
    assert probe.score(_colour_histograms(hid_te), hid_te.targets.numpy()) < chance + 0.1

    model = build_model("small", 6, seed=0)
    fit(model, hid_tr, epochs=4, progress=False)
    assert evaluate(model, hid_te) < chance + 0.1


def _write_fake_an8flower(root, n=2):
    rng = np.random.default_rng(0)
    for cls in ("class_a", "class_b"):
        (root / cls).mkdir(parents=True)
        (root.parent / (root.name + "_MASK") / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(
                root / cls / f"{i}.png"
            )
            mask = np.zeros((20, 24), dtype=np.uint8)
            mask[5:9, 6:12] = 255
            Image.fromarray(mask).save(root.parent / (root.name + "_MASK") / cls / f"{i}.png")


def test_folder_loader_reads_the_real_layout(tmp_path):
    root = tmp_path / "single_6c"
    _write_fake_an8flower(root)
    ds = An8FlowerFolder(root, size=16)
    assert ds.classes == ["class_a", "class_b"] and len(ds) == 4
    img, target, mask = ds[3]
    assert img.shape == (3, 16, 16) and target == 1 and mask.shape == (1, 16, 16) and mask.any()
    full = An8FlowerFolder(root)[0][2]
    assert full.shape == (1, 20, 24) and full.sum() == 24


def test_folder_loader_errors_say_where_files_go(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist.*<root>/<class>/<image>\.png"):
        An8FlowerFolder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty_MASK").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images"):
        An8FlowerFolder(tmp_path / "empty")
    root = tmp_path / "nomask"
    _write_fake_an8flower(root)
    (root.parent / "nomask_MASK" / "class_a" / "0.png").unlink()
    with pytest.raises(FileNotFoundError, match="no mask for"):
        An8FlowerFolder(root)


def test_folder_loader_names_a_mask_of_another_size_and_a_corrupt_image(tmp_path):
    root = tmp_path / "single_6c"
    _write_fake_an8flower(root)
    mask = root.parent / "single_6c_MASK" / "class_a" / "1.png"
    Image.fromarray(np.zeros((10, 12), dtype=np.uint8)).save(mask)
    ds = An8FlowerFolder(root)
    with pytest.raises(ValueError, match=r"mask .*1\.png is 12×10 but image .*1\.png is 24×20"):
        ds[1]
    assert ds[0][0].shape == (3, 20, 24), "the other items still load"
    sized = An8FlowerFolder(root, size=16)
    with pytest.raises(ValueError, match="must match its image"):
        sized[1]  # not hidden by resizing both to the same size
    broken = root / "class_b" / "0.png"
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"class_b/0\.png is not a readable image"):
        ds[2]


def test_registry_lists_the_benchmark_datasets_and_builds_them():
    from squeezex.datasets import get_dataset, list_datasets

    assert list_datasets() == [
        "an8flower-single-6c", "an8flower-double-12c", "an8flower-hard",
        "cue-only", "object-only", "confounded",
        "faces", "faces-bias-0", "faces-bias-50", "faces-bias-90", "faces-bias", "scenes-6c",
        "speakers",
    ]  # fmt: skip
    assert list_datasets("audio-visual") == ["speakers"]
    assert list_datasets("multi-label") == [
        "faces", "faces-bias-0", "faces-bias-50", "faces-bias-90", "faces-bias",
    ]  # fmt: skip
    spec = get_dataset("scenes-6c")
    assert spec.task == "single-label" and spec.masks and spec.train.batch_size == 16
    assert get_dataset("an8flower-single-6c").vebi_mu == 5.0
    test = spec.build("test", n_per_class=1, size=48, seed=3)
    assert len(test) == 6 and test.images.shape == (6, 3, 48, 48)
    with pytest.raises(ValueError, match="unknown dataset 'celeba'.*scenes-6c"):
        get_dataset("celeba")
    with pytest.raises(ValueError, match="split must be"):
        spec.build("val")
