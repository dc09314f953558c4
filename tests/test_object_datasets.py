"""Object datasets with box or shape masks: VOC and ImageNet (on fake files in the real
on-disk format) and the synthetic multi-object Scenes generator."""

import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from squeezex.datasets import (
    DISTRACTOR_SHAPES,
    SHAPES,
    VOC_CLASSES,
    ImageNetBoxes,
    Scenes,
    VOCMasks,
    make_scenes,
)
from squeezex.explainers.references import centre_map
from squeezex.models import build_model
from squeezex.training import evaluate, fit


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small images and batches: intra-op threads only add synchronisation, which costs
    ~10× (the CNN test: 14 s on one thread, 110 s on two) when the cores are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------------- VOC


def _voc_xml(filename, width, height, objects, *, database="The VOC2012 Database"):
    """An annotation in the schema of VOC's Annotations/*.xml (1-based inclusive boxes)."""
    objs = "".join(
        textwrap.dedent(
            f"""\
            \t<object>
            \t\t<name>{name}</name>
            \t\t<pose>Unspecified</pose>
            \t\t<truncated>0</truncated>
            \t\t<occluded>0</occluded>
            \t\t<bndbox>
            \t\t\t<xmin>{x1}</xmin>
            \t\t\t<ymin>{y1}</ymin>
            \t\t\t<xmax>{x2}</xmax>
            \t\t\t<ymax>{y2}</ymax>
            \t\t</bndbox>
            \t\t<difficult>{int(difficult)}</difficult>
            \t</object>
            """
        )
        for name, (x1, y1, x2, y2), difficult in objects
    )
    return (
        "<annotation>\n"
        f"\t<folder>VOC2012</folder>\n\t<filename>{filename}</filename>\n"
        f"\t<source>\n\t\t<database>{database}</database>\n"
        "\t\t<annotation>PASCAL VOC2012</annotation>\n\t\t<image>flickr</image>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n"
        "\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n"
        f"{objs}</annotation>\n"
    )


# id: (width, height, [(name, 1-based inclusive box, difficult), ...])
_VOC_FAKE = {
    "2008_000001": (
        40,
        30,
        [
            ("dog", (1, 1, 10, 10), False),  # 100 px
            ("person", (11, 5, 30, 24), False),  # 400 px: the largest
            ("person", (35, 25, 40, 30), False),  # a second person: in the mask too
            ("cat", (1, 1, 40, 30), True),  # larger, but difficult
        ],
    ),
    "2008_000002": (24, 20, [("car", (5, 6, 8, 9), True)]),  # only a difficult object
    "2008_000003": (20, 20, [("bird", (2, 2, 19, 19), False)]),
}


def _write_fake_voc(root, year="2012", image_set="val", ids=None):
    base = root / "VOCdevkit" / f"VOC{year}"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ids = list(_VOC_FAKE) if ids is None else ids
    for image_id in ids:
        w, h, objects = _VOC_FAKE[image_id]
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
        (base / "Annotations" / f"{image_id}.xml").write_text(
            _voc_xml(f"{image_id}.jpg", w, h, objects)
        )
    (base / "ImageSets" / "Main" / f"{image_set}.txt").write_text("\n".join(ids) + "\n")
    return base


def test_voc_target_is_the_largest_object_and_mask_its_class_boxes(tmp_path):
    _write_fake_voc(tmp_path)
    ds = VOCMasks(tmp_path, "2012", "val")
    assert len(ds) == 3 and ds.classes == list(VOC_CLASSES) and ds.n_skipped == 0
    assert ds.image_ids == list(_VOC_FAKE)
    img, target, mask = ds[0]
    assert img.shape == (3, 30, 40) and img.dtype == torch.float32 and 0 <= img.min() <= 1
    assert ds.classes[target] == "person", "the difficult cat is larger but not chosen"
    assert mask.shape == (1, 30, 40) and mask.dtype == torch.bool
    # VOC boxes are 1-based inclusive: (11, 5, 30, 24) covers columns 10..29, rows 4..23
    torch.testing.assert_close(ds.boxes(0), torch.tensor([[10.0, 4, 30, 24], [34, 24, 40, 30]]))
    expected = torch.zeros(1, 30, 40, dtype=torch.bool)
    expected[0, 4:24, 10:30] = True
    expected[0, 24:30, 34:40] = True
    assert torch.equal(mask, expected)
    _, target, mask = ds[1]
    assert ds.classes[target] == "car", "an image with only difficult objects keeps them"
    assert mask.sum() == 16
    assert ds.targets.tolist() == [VOC_CLASSES.index(c) for c in ("person", "car", "bird")]
    assert "VOCMasks" in repr(ds) and "val" in repr(ds)


def test_voc_resize_moves_image_mask_and_boxes_together(tmp_path):
    _write_fake_voc(tmp_path)
    ds = VOCMasks(tmp_path, size=(15, 20))  # half of the 30×40 image
    img, _, mask = ds[0]
    assert img.shape == (3, 15, 20) and mask.shape == (1, 15, 20)
    torch.testing.assert_close(ds.boxes(0), torch.tensor([[5.0, 2, 15, 12], [17, 12, 20, 15]]))
    assert mask.sum() == 10 * 10 + 3 * 3
    assert mask[0, 2:12, 5:15].all() and mask[0, 12:15, 17:20].all()
    square = VOCMasks(tmp_path, size=16)
    assert square[2][0].shape == (3, 16, 16)
    b = square.boxes(2)
    torch.testing.assert_close(b, torch.tensor([[0.8, 0.8, 15.2, 15.2]]))
    assert square[2][2].sum() == 14 * 14  # pixel centres 1.5 .. 14.5 lie in [0.8, 15.2)


def test_voc_classes_subset_reindexes_and_skips(tmp_path):
    _write_fake_voc(tmp_path)
    ds = VOCMasks(tmp_path, classes=["bird", "dog"])
    assert ds.classes == ["bird", "dog"] and len(ds) == 2 and ds.n_skipped == 1
    assert ds.targets.tolist() == [1, 0], "only the dog counts in the first image now"
    assert ds[0][2].sum() == 100
    with pytest.raises(ValueError, match="unknown classes.*'person '"):
        VOCMasks(tmp_path, classes=["person "])
    with pytest.warns(UserWarning, match=r"empty: none of the 3 images.*name: bird, car, cat"):
        assert len(VOCMasks(tmp_path, classes=["sofa"])) == 0


def test_voc_transforms_apply_to_image_and_target(tmp_path):
    _write_fake_voc(tmp_path)
    ds = VOCMasks(tmp_path, size=8, transform=lambda x: x * 0, target_transform=lambda t: -t)
    img, target, mask = ds[2]
    assert img.abs().sum() == 0 and target == -VOC_CLASSES.index("bird") and mask.any()


def test_voc_missing_files_say_where_they_go(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"VOCdevkit/VOC2012 does not exist.*<root>"):
        VOCMasks(tmp_path)
    base = _write_fake_voc(tmp_path, image_set="train")
    with pytest.raises(FileNotFoundError, match=r"ImageSets/Main/val\.txt.*image ids"):
        VOCMasks(tmp_path, image_set="val")
    (base / "JPEGImages" / "2008_000002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing VOC2012 image .*2008_000002\.jpg"):
        VOCMasks(tmp_path, image_set="train")
    with pytest.raises(FileNotFoundError, match=r"VOCdevkit/VOC2007 does not exist"):
        VOCMasks(tmp_path, year="2007", image_set="test")
    with pytest.raises(ValueError, match="year"):
        VOCMasks(tmp_path, year="2013")
    with pytest.raises(ValueError, match="image_set"):
        VOCMasks(tmp_path, image_set="test")
    with pytest.raises(ValueError, match="size"):
        VOCMasks(tmp_path, image_set="train", size=0)


def test_voc_bad_xml_is_named(tmp_path):
    base = _write_fake_voc(tmp_path)
    (base / "Annotations" / "2008_000003.xml").write_text("<annotation><object>")
    with pytest.raises(ValueError, match=r"2008_000003\.xml is not a PASCAL VOC XML"):
        VOCMasks(tmp_path)


# ---------------------------------------------------------------------- ImageNet


def _imagenet_xml(stem, wnid, width, height, boxes):
    """A box file as ImageNet ships it (PASCAL VOC schema, object name = wnid)."""
    objs = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
        "\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n"
        f"\t\t<bndbox>\n\t\t\t<xmin>{x1}</xmin>\n\t\t\t<ymin>{y1}</ymin>\n"
        f"\t\t\t<xmax>{x2}</xmax>\n\t\t\t<ymax>{y2}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for name, (x1, y1, x2, y2) in boxes
    )
    return (
        f"<annotation>\n\t<folder>{wnid}</folder>\n\t<filename>{stem}</filename>\n"
        "\t<source>\n\t\t<database>ImageNet database</database>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n"
        f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objs}</annotation>\n"
    )


def _write_fake_imagenet(root):
    """Two classes in val: per-wnid box files for one, flat ones (as val ships) for the
    other; one image has no box file."""
    rng = np.random.default_rng(0)
    spec = {
        # wnid: [(stem, (w, h), boxes (0-based inclusive), box file per-wnid?)]
        "n01440764": [
            ("n01440764_18", (32, 24), [("n01440764", (0, 0, 9, 9))], True),
            (
                "n01440764_36",
                (32, 24),
                [("n01440764", (4, 4, 7, 7)), ("n01440764", (20, 10, 31, 23))],
                True,
            ),
            ("n01440764_99", (32, 24), None, True),  # no box file: skipped
        ],
        "n01443537": [
            ("ILSVRC2012_val_00000001", (20, 20), [("n01443537", (10, 0, 19, 4))], False),
        ],
    }
    for wnid, images in spec.items():
        (root / "val" / wnid).mkdir(parents=True)
        for stem, (w, h), boxes, per_wnid in images:
            pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "val" / wnid / f"{stem}.JPEG", format="JPEG")
            if boxes is None:
                continue
            folder = root / "bbox" / "val" / (wnid if per_wnid else "")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{stem}.xml").write_text(_imagenet_xml(stem, wnid, w, h, boxes))
    (root / "val" / "n01440764" / "notes.txt").write_text("not an image")


def test_imagenet_reads_images_and_boxes_in_both_box_layouts(tmp_path):
    _write_fake_imagenet(tmp_path)
    ds = ImageNetBoxes(tmp_path, size=None)
    assert ds.classes == ["n01440764", "n01443537"] and len(ds) == 3 and ds.n_skipped == 1
    assert ds.targets.tolist() == [0, 0, 1]
    img, target, mask = ds[1]
    assert img.shape == (3, 24, 32) and target == 0 and mask.shape == (1, 24, 32)
    torch.testing.assert_close(ds.boxes(1), torch.tensor([[4.0, 4, 8, 8], [20, 10, 32, 24]]))
    assert mask.sum() == 16 + 12 * 14
    _, target, mask = ds[2]  # the flat val box file
    assert target == 1 and mask.sum() == 50 and mask[0, 0:5, 10:20].all()
    assert "ImageNetBoxes" in repr(ds)


def test_imagenet_default_size_and_given_classes(tmp_path):
    _write_fake_imagenet(tmp_path)
    ds = ImageNetBoxes(tmp_path)
    img, _, mask = ds[0]
    assert img.shape == (3, 224, 224) and mask.shape == (1, 224, 224)
    torch.testing.assert_close(ds.boxes(0), torch.tensor([[0.0, 0, 70, 280 / 3]]))
    assert mask[0, :93, :70].all() and mask.sum() == 70 * 93
    swapped = ImageNetBoxes(tmp_path, size=16, classes=["n01443537", "n01440764"])
    assert swapped.targets.tolist() == [0, 1, 1]
    assert swapped[0][2].shape == (1, 16, 16)


def test_imagenet_missing_files_say_where_they_go(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image folder .*val does not exist.*<wnid>"):
        ImageNetBoxes(tmp_path)
    _write_fake_imagenet(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no folder .*n99999999.*bbox"):
        ImageNetBoxes(tmp_path, classes=["n99999999"])
    with pytest.raises(FileNotFoundError, match=r"box folder .*bbox/train does not exist"):
        (tmp_path / "train" / "n01440764").mkdir(parents=True)
        ImageNetBoxes(tmp_path, split="train")
    (tmp_path / "bbox" / "train").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no image under .*has a box file"):
        ImageNetBoxes(tmp_path, split="train")
    with pytest.raises(ValueError, match="distinct"):
        ImageNetBoxes(tmp_path, classes=["n01440764", "n01440764"])


# ------------------------------------------------------------------------ Scenes


@pytest.fixture(scope="module")
def scenes():
    """Train and test scenes shared by the probe, CNN and pointing-game tests."""
    return Scenes(200, size=48, seed=0), Scenes(30, size=48, split="test", seed=0)


def test_scenes_items_shapes_and_types():
    ds = Scenes(2, size=48, seed=0)
    assert len(ds) == 12 and ds.classes == list(SHAPES)
    img, target, mask = ds[3]
    assert img.shape == (3, 48, 48) and img.dtype == torch.float32
    assert 0 <= img.min() <= img.max() <= 1
    assert isinstance(target, int) and ds.classes[target] == "cross"
    assert mask.shape == (1, 48, 48) and mask.dtype == torch.bool
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (12, 3, 48, 48)
    assert ds.targets.tolist() == [i % 6 for i in range(12)]
    assert ds.masks.flatten(1).any(1).all(), "every image shows its class shape"
    assert (ds.masks & ~ds.object_masks).sum() == 0
    assert "Scenes(" in repr(ds) and "n=12" in repr(ds)


def test_scenes_boxes_enclose_the_mask_exactly():
    ds = Scenes(3, size=40, seed=1)
    for i in range(len(ds)):
        ys, xs = torch.nonzero(ds.masks[i, 0], as_tuple=True)
        box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32)
        assert torch.equal(ds.boxes(i), box)
    assert ds.target_boxes.shape == (18, 4)


def test_scenes_distractors_are_other_shapes_and_never_touch_the_class_shape():
    data = make_scenes(4, size=48, n_distractors=(2, 4), seed=2)
    assert all(2 <= len(d) <= 4 for d in data.distractors)
    assert {n for d in data.distractors for n in d} <= set(DISTRACTOR_SHAPES)
    near = F.max_pool2d(data.masks.float(), 3, stride=1, padding=1) > 0
    others = data.object_masks & ~data.masks
    assert (near & others).sum() == 0, "a one-pixel gap around the class shape"
    assert others.flatten(1).any(1).all()
    one = make_scenes(2, size=48, n_distractors=0, seed=2)
    assert torch.equal(one.masks, one.object_masks) and all(d == [] for d in one.distractors)


def test_scenes_class_subset_turns_the_other_shapes_into_distractors():
    data = make_scenes(6, size=48, classes=["star", "disc"], n_distractors=3, seed=0)
    assert data.classes == ["star", "disc"] and data.targets.tolist() == [0, 1] * 6
    names = {n for d in data.distractors for n in d}
    assert not names & {"star", "disc"} and names & {"square", "triangle", "cross", "ring"}


def test_scenes_deterministic_from_seed_and_split_without_global_rng():
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state is the point)
    a = Scenes(1, size=40, seed=3)
    b = make_scenes(1, size=40, seed=3)
    c = Scenes(1, size=40, seed=3, split="val")
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert a.distractors == b.distractors
    assert not torch.equal(a.images, c.images)
    assert torch.equal(torch.get_rng_state(), state)
    assert (np.random.get_state()[1] == np_state).all()  # noqa: NPY002


def test_scenes_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_per_class"):
        Scenes(0)
    with pytest.raises(ValueError, match="size"):
        Scenes(1, size=16)
    for bad in ((3, 1), (0, 6), -1, "two", (1, 2, 3)):
        with pytest.raises(ValueError, match="n_distractors"):
            Scenes(1, n_distractors=bad)
    with pytest.raises(ValueError, match="split"):
        Scenes(1, split="holdout")
    with pytest.raises(ValueError, match="unknown class shapes.*'hexagon'"):
        Scenes(1, classes=["disc", "hexagon"])
    with pytest.raises(ValueError, match="two distinct"):
        Scenes(1, classes=["disc", "disc"])


def test_scenes_transforms_apply_to_image_and_target():
    ds = Scenes(1, size=32, transform=lambda x: 1 - x, target_transform=str)
    img, target, _ = ds[1]
    torch.testing.assert_close(img, 1 - ds.images[1].float() / 255)
    assert target == "1"


def _colour_histograms(images, bins=8):
    x = images.permute(0, 2, 3, 1).reshape(len(images), -1, 3).numpy() // (256 // bins)
    codes = x[..., 0] * bins * bins + x[..., 1] * bins + x[..., 2]
    return np.sqrt(np.stack([np.bincount(c, minlength=bins**3) for c in codes]) / codes.shape[1])


def test_scenes_colour_and_size_do_not_carry_the_class(scenes):
    """Colours and areas are drawn independently of the class: a colour-histogram probe is
    at chance, and so is the class shape's area."""
    train, test = scenes
    chance = 1 / 6
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000))
    probe.fit(_colour_histograms(train.images), train.targets.numpy())
    accuracy = probe.score(_colour_histograms(test.images), test.targets.numpy())
    assert accuracy < chance + 0.1, accuracy  # measured: 0.17
    area = train.masks.flatten(1).sum(1).float()
    per_class = torch.stack([area[train.targets == k].mean() for k in range(6)])
    assert (per_class.max() - per_class.min()) / area.mean() < 0.15, per_class


def test_scenes_small_cnn_learns_the_shapes(scenes):
    """The shape alone decides the class, and a small CNN finds it among the distractors.
    It needs enough steps: at 80 images per class it stays near 0.4, at 200 it is ~0.9."""
    train, test = scenes
    model = build_model("small", 6, seed=0)
    fit(model, train, epochs=8, batch_size=16, progress=False)
    accuracy = evaluate(model, test)
    assert accuracy > 0.6, accuracy  # chance is 1/6


def _pointing(maps, masks):
    """1 where the first maximal pixel (raster order) of each map lies in the mask."""
    idx = maps.flatten(1).argmax(1)
    return masks.flatten(1).gather(1, idx[:, None])[:, 0].float()


def test_scenes_pointing_game_references(scenes):
    """An oracle map at stride 4 (the mask averaged over 4×4 cells, upsampled nearest) almost
    always points inside the class shape; an image-centre Gaussian rarely does."""
    masks = torch.cat([scenes[0].masks, scenes[1].masks])
    oracle = F.interpolate(F.avg_pool2d(masks.float(), 4), scale_factor=4, mode="nearest")
    assert _pointing(oracle, masks).mean() >= 0.9
    centre = centre_map(len(masks), (48, 48))
    assert _pointing(centre, masks).mean() < 0.5


def test_voc_an_inverted_box_is_named_and_left_out(tmp_path, monkeypatch):
    fake = {
        "2008_000009": (40, 30, [("dog", (30, 10, 5, 28), False), ("cat", (2, 2, 6, 6), False)]),
    }  # the dog's box has xmax < xmin
    monkeypatch.setitem(_VOC_FAKE, "2008_000009", fake["2008_000009"])
    _write_fake_voc(tmp_path, ids=["2008_000009"])
    with pytest.warns(UserWarning, match=r"2008_000009\.xml: the box of 'dog' is inverted"):
        ds = VOCMasks(tmp_path, image_set="val")
    assert [ds.classes[t] for t in ds.targets] == ["cat"], "the cat, not a 16-pixel dog"
    assert ds[0][2].sum() == 25
