"""CelebA and CelebAMask-HQ loaders, on small fake files written in the real formats: the
annotation text files as CelebA ships them, JPEG faces (178×218 for CelebA, 64×64 for
CelebA-HQ) and binary PNG part masks (32×32 in most tests, 512×512 in one)."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from squeezex.datasets.celeba import (
    ATTRIBUTE_PARTS,
    CELEBA_ATTRIBUTES,
    MASK_PARTS,
    CelebA,
    CelebAMaskHQ,
)

# ------------------------------------------------------------------------------ fakes


def _attr_text(filenames, labels, names=CELEBA_ATTRIBUTES, count=None):
    """An attribute file as CelebA writes it: the count, the names (with a trailing space),
    then ``000001.jpg -1  1 …`` (values right-aligned in two columns, so one or two spaces)."""
    lines = [str(len(filenames) if count is None else count), " ".join(names) + " "]
    for name, row in zip(filenames, labels, strict=True):
        lines.append(f"{name} " + " ".join(f"{v:2d}" for v in row))
    return "\n".join(lines) + "\n"


def _partition_text(filenames, parts):
    return "".join(f"{f} {p}\n" for f, p in zip(filenames, parts, strict=True))


def _save_jpeg(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path, quality=95)


# 8 CelebA images: 3 train, 2 valid, 3 test.
CELEBA_FILES = [f"{i:06d}.jpg" for i in range(1, 9)]
CELEBA_PARTS = [0, 0, 0, 1, 1, 2, 2, 2]
CELEBA_LABELS = np.random.default_rng(0).choice([-1, 1], size=(8, 40))


def _face_178x218():
    """A 178×218 face: red 20-row bands at the top and bottom (what the centre crop cuts
    off), blue in between."""
    img = np.zeros((218, 178, 3), dtype=np.uint8)
    img[:, :, 2] = 255
    img[:20] = img[-20:] = (255, 0, 0)
    return img


@pytest.fixture
def celeba_root(tmp_path):
    """``tmp_path`` in torchvision's layout: ``tmp_path/celeba/...``."""
    folder = tmp_path / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    first = folder / "img_align_celeba" / CELEBA_FILES[0]
    _save_jpeg(first, _face_178x218())
    for name in CELEBA_FILES[1:]:
        shutil.copy(first, folder / "img_align_celeba" / name)
    (folder / "list_attr_celeba.txt").write_text(_attr_text(CELEBA_FILES, CELEBA_LABELS))
    (folder / "list_eval_partition.txt").write_text(_partition_text(CELEBA_FILES, CELEBA_PARTS))
    return tmp_path


# 5 CelebA-HQ images; 2001 lives in mask folder 1. Their CelebA files and splits:
HQ_INDICES = [0, 1, 2, 3, 2001]
HQ_ORIG = ["119614.jpg", "000010.jpg", "050000.jpg", "182000.jpg", "200000.jpg"]
HQ_PARTS = [0, 1, 0, 2, 2]  # train: 0, 2; valid: 1; test: 3, 2001
HQ_LABELS = np.random.default_rng(1).choice([-1, 1], size=(5, 40))


@pytest.fixture
def hq_root(tmp_path):
    """A CelebAMask-HQ folder ``tmp_path/CelebAMask-HQ`` with images, attributes and the
    mapping file, and empty mask folders 0 and 1 (tests draw the parts they need)."""
    root = tmp_path / "CelebAMask-HQ"
    (root / "CelebA-HQ-img").mkdir(parents=True)
    first = root / "CelebA-HQ-img" / "0.jpg"
    _save_jpeg(first, np.full((64, 64, 3), 128))
    for k in HQ_INDICES[1:]:
        shutil.copy(first, root / "CelebA-HQ-img" / f"{k}.jpg")
    for folder in ("0", "1"):
        (root / "CelebAMask-HQ-mask-anno" / folder).mkdir(parents=True)
    files = [f"{k}.jpg" for k in HQ_INDICES]
    (root / "CelebAMask-HQ-attribute-anno.txt").write_text(_attr_text(files, HQ_LABELS))
    mapping = ["idx         orig_idx  orig_file"] + [
        f"{k:<12d}{int(o[:6]) - 1:<10d}{o}" for k, o in zip(HQ_INDICES, HQ_ORIG, strict=True)
    ]
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(mapping) + "\n")
    return root


def _draw_part(root, k, part, rows, cols, *, side=32, mode="L", value=255):
    """Write ``<k:05d>_<part>.png``: ``value`` (white by default) on ``[rows, cols]``, black
    elsewhere; returns the drawn area as a side×side bool array."""
    area = np.zeros((side, side), dtype=bool)
    area[rows, cols] = True
    img = Image.fromarray(area.astype(np.uint8) * value).convert(mode)
    img.save(root / "CelebAMask-HQ-mask-anno" / str(k // 2000) / f"{k:05d}_{part}.png")
    return area


def _write_hq_partition(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "list_eval_partition.txt").write_text(_partition_text(HQ_ORIG, HQ_PARTS))


# ------------------------------------------------------------------------------ CelebA


def test_celeba_labels_are_the_files_values_as_0_1(celeba_root):
    ds = CelebA(celeba_root, "all")
    assert ds.filenames == CELEBA_FILES
    assert ds.attribute_names == CELEBA_ATTRIBUTES
    assert ds.classes == list(CELEBA_ATTRIBUTES)
    assert ds.targets.dtype == torch.long and ds.targets.shape == (8, 40)
    assert torch.equal(ds.targets, torch.from_numpy((CELEBA_LABELS == 1).astype(np.int64)))
    image, attributes = ds[5]
    assert torch.equal(attributes, torch.from_numpy((CELEBA_LABELS[5] == 1).astype(np.int64)))
    assert len(ds) == 8


@pytest.mark.parametrize(
    ("split", "rows"), [("train", [0, 1, 2]), ("valid", [3, 4]), ("test", [5, 6, 7])]
)
def test_celeba_splits_hold_their_partition_rows(celeba_root, split, rows):
    ds = CelebA(celeba_root, split)
    assert ds.filenames == [CELEBA_FILES[r] for r in rows]
    expected = (CELEBA_LABELS[rows] == 1).astype(np.int64)
    assert torch.equal(ds.targets, torch.from_numpy(expected))


def test_celeba_attribute_subset_and_unknown_name(celeba_root):
    ds = CelebA(celeba_root, "all", attributes=["Smiling", "Bangs"])
    cols = [CELEBA_ATTRIBUTES.index("Smiling"), CELEBA_ATTRIBUTES.index("Bangs")]
    assert ds.attribute_names == ("Smiling", "Bangs") and ds.classes == ["Smiling", "Bangs"]
    assert torch.equal(ds.targets, torch.from_numpy((CELEBA_LABELS[:, cols] == 1).astype(int)))
    assert ds[2][1].tolist() == (CELEBA_LABELS[2, cols] == 1).astype(int).tolist()
    one = CelebA(celeba_root, "test", attributes="Young")
    assert one.targets.shape == (3, 1)
    with pytest.raises(ValueError, match=r"unknown attributes \['Smilling'\].*'Smiling'"):
        CelebA(celeba_root, attributes=["Smilling"])


def test_celeba_accepts_the_celeba_folder_itself(celeba_root):
    a, b = CelebA(celeba_root, "valid"), CelebA(celeba_root / "celeba", "valid")
    assert a.filenames == b.filenames == CELEBA_FILES[3:5]
    assert torch.equal(a.targets, b.targets)
    assert b.image_dir == celeba_root / "celeba" / "img_align_celeba"


def test_celeba_missing_root_says_where_files_go(tmp_path):
    expected = str(tmp_path / "nowhere" / "celeba" / "img_align_celeba")
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        CelebA(tmp_path / "nowhere")
    assert expected in str(e.value) and "list_eval_partition.txt" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no celeba folder") as e:
        CelebA(tmp_path / "empty")
    assert str(tmp_path / "empty" / "celeba" / "list_attr_celeba.txt") in str(e.value)


def test_celeba_missing_files(celeba_root):
    partition = celeba_root / "celeba" / "list_eval_partition.txt"
    partition.unlink()
    assert len(CelebA(celeba_root, "all")) == 8  # "all" needs no partition
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt does not exist"):
        CelebA(celeba_root, "train")
    (celeba_root / "celeba" / "list_attr_celeba.txt").unlink()
    with pytest.raises(FileNotFoundError) as e:
        CelebA(celeba_root, "all")
    assert f"{celeba_root / 'celeba' / 'list_attr_celeba.txt'} does not exist" in str(e.value)


def test_celeba_listed_image_missing_or_unreadable(celeba_root):
    images = celeba_root / "celeba" / "img_align_celeba"
    (images / "000004.jpg").write_bytes(b"not a jpeg")
    ds = CelebA(celeba_root, "valid")  # images are read lazily
    with pytest.raises(ValueError, match=r"000004\.jpg is not a readable image"):
        ds[0]
    (images / "000007.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"img_align_celeba/000007\.jpg"):
        CelebA(celeba_root, "all")


def _rewrite(path, line_no, new):
    lines = path.read_text().splitlines()
    lines[line_no - 1] = new
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("line_no", "new", "message"),
    [
        (5, "000003.jpg " + " ".join(["1"] * 39), r"line 5: expected an image name and 40"),
        (7, "000005.jpg " + " ".join(["1"] * 39 + ["0"]), r"line 7: .*got '0' for Young"),
        (9, "000007.jpg " + " ".join(["1"] * 39 + ["2"]), r"line 9: attribute values must be"),
        (4, "000001.jpg " + " ".join(["1"] * 40), r"line 4: 000001.jpg is listed twice"),
        (1, "8 images", r"line 1: expected the number of images"),
        (1, "9", r"line 1 says 9 images but the file lists 8"),
    ],
)
def test_celeba_malformed_attribute_line_is_named(celeba_root, line_no, new, message):
    path = celeba_root / "celeba" / "list_attr_celeba.txt"
    _rewrite(path, line_no, new)
    with pytest.raises(ValueError, match=message) as e:
        CelebA(celeba_root, "all")
    assert str(path) in str(e.value)


def test_celeba_malformed_partition_line_is_named(celeba_root):
    path = celeba_root / "celeba" / "list_eval_partition.txt"
    _rewrite(path, 6, "000006.jpg 3")
    with pytest.raises(ValueError, match=r"list_eval_partition\.txt, line 6: expected") as e:
        CelebA(celeba_root, "test")
    assert "'000006.jpg 3'" in str(e.value)
    _rewrite(path, 6, "000009.jpg 2")  # 000006.jpg now has no line
    with pytest.raises(ValueError, match=r"000006\.jpg has no line in"):
        CelebA(celeba_root, "test")


def test_celeba_images_are_centre_cropped_and_resized(celeba_root):
    ds = CelebA(celeba_root, "train", size=32)
    image, _ = ds[1]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    # the red bands are cropped off, not squashed in: every pixel is (nearly) pure blue
    assert image[2].min() > 0.9 and image[0].max() < 0.1, image[0].max()
    squashed = CelebA(celeba_root, "train", size=16, transform=lambda x: 1 - x)[0][0]
    assert squashed.shape == (3, 16, 16) and squashed[2].max() < 0.1  # transform applied


def test_celeba_bad_split_and_size(celeba_root):
    with pytest.raises(ValueError, match="split must be one of"):
        CelebA(celeba_root, "val")
    with pytest.raises(ValueError, match="size must be a positive int"):
        CelebA(celeba_root, size=0)


# ------------------------------------------------------------------------------ CelebAMask-HQ


def test_attribute_parts_name_real_attributes_and_parts():
    assert set(ATTRIBUTE_PARTS) <= set(CELEBA_ATTRIBUTES)
    assert all(p and set(p) <= set(MASK_PARTS) for p in ATTRIBUTE_PARTS.values())
    assert ATTRIBUTE_PARTS["Smiling"] == ("mouth", "u_lip", "l_lip")
    assert ATTRIBUTE_PARTS["Wearing_Hat"] == ("hat",)
    assert "Mustache" not in ATTRIBUTE_PARTS and "Young" not in ATTRIBUTE_PARTS


def test_hq_labels_subset_and_has_region(hq_root):
    ds = CelebAMaskHQ(hq_root)
    assert ds.filenames == [f"{k}.jpg" for k in HQ_INDICES] and ds.indices == HQ_INDICES
    assert torch.equal(ds.targets, torch.from_numpy((HQ_LABELS == 1).astype(np.int64)))
    assert ds.has_region.dtype == torch.bool and ds.has_region.shape == (40,)
    assert ds.has_region.tolist() == [a in ATTRIBUTE_PARTS for a in CELEBA_ATTRIBUTES]
    names = ["Young", "Wearing_Hat", "Smiling"]
    sub = CelebAMaskHQ(hq_root, attributes=names, size=16)
    cols = [CELEBA_ATTRIBUTES.index(a) for a in names]
    assert sub.attribute_names == tuple(names) and sub.classes == names
    assert torch.equal(sub.targets, torch.from_numpy((HQ_LABELS[:, cols] == 1).astype(int)))
    assert sub.has_region.tolist() == [False, True, True]
    image, attributes, masks = sub[4]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert abs(image.mean().item() - 128 / 255) < 0.02
    assert attributes.tolist() == (HQ_LABELS[4, cols] == 1).astype(int).tolist()
    assert masks.shape == (3, 16, 16) and masks.dtype == torch.bool and not masks.any()
    with pytest.raises(ValueError, match=r"unknown attributes \['Hat'\]"):
        CelebAMaskHQ(hq_root, attributes=["Hat"])


def test_hq_masks_are_unions_of_the_attributes_parts(hq_root):
    k = 2001  # mask folder 1
    hat = _draw_part(hq_root, k, "hat", slice(0, 8), slice(None))
    mouth = _draw_part(hq_root, k, "mouth", slice(22, 24), slice(12, 20), mode="RGB")
    u_lip = _draw_part(hq_root, k, "u_lip", slice(20, 22), slice(10, 22))
    l_lip = _draw_part(hq_root, k, "l_lip", slice(24, 27), slice(10, 22), value=1)
    _draw_part(hq_root, k, "nose", slice(12, 18), slice(14, 18))
    _draw_part(hq_root, 0, "eye_g", slice(8, 12), slice(4, 28))  # another image's glasses
    names = ["Wearing_Hat", "Smiling", "Wearing_Lipstick", "Eyeglasses", "Young"]
    ds = CelebAMaskHQ(hq_root, attributes=names, size=32)
    _, _, masks = ds[HQ_INDICES.index(k)]
    assert masks.shape == (5, 32, 32)
    assert torch.equal(masks[0], torch.from_numpy(hat))
    assert masks[0, :8].all() and not masks[0, 8:].any()
    assert torch.equal(masks[1], torch.from_numpy(mouth | u_lip | l_lip))  # no nose
    assert torch.equal(masks[2], torch.from_numpy(u_lip | l_lip))
    assert not masks[3].any()  # no eye_g file for this image
    assert not masks[4].any()  # Young has no region
    assert ds[0][2][3].sum() == 4 * 24  # image 0 has its glasses
    small = CelebAMaskHQ(hq_root, attributes=["Wearing_Hat"], size=16)[4][2][0]
    assert small[:4].all() and not small[4:].any()  # nearest resize of the top 8 rows


def test_hq_accepts_the_released_512_masks(hq_root):
    hat = _draw_part(hq_root, 3, "hat", slice(0, 128), slice(None), side=512)
    ds = CelebAMaskHQ(hq_root, attributes=["Wearing_Hat"], size=32)
    mask = ds[3][2][0]
    assert mask[:8].all() and not mask[8:].any()
    assert hat.sum() == 128 * 512


def test_hq_mask_with_another_aspect_is_named(hq_root):
    path = hq_root / "CelebAMask-HQ-mask-anno" / "0" / "00001_hat.png"
    Image.fromarray(np.zeros((16, 32), dtype=np.uint8)).save(path)
    ds = CelebAMaskHQ(hq_root, attributes=["Wearing_Hat"])
    assert not ds[0][2].any()
    with pytest.raises(ValueError, match=r"00001_hat\.png is 32×16 but its image is 64×64"):
        ds[1]


def test_hq_split_through_the_mapping_file(hq_root):
    _write_hq_partition(hq_root / ".." / "celeba")  # next to the CelebA folder
    expected = {"train": [0, 2], "valid": [1], "test": [3, 2001]}
    for split, indices in expected.items():
        ds = CelebAMaskHQ(hq_root, split=split, attributes=["Smiling"])
        assert ds.indices == indices and ds.filenames == [f"{k}.jpg" for k in indices]
        rows = [HQ_INDICES.index(k) for k in indices]
        col = CELEBA_ATTRIBUTES.index("Smiling")
        assert ds.targets[:, 0].tolist() == (HQ_LABELS[rows, col] == 1).astype(int).tolist()
    (hq_root / ".." / "celeba" / "list_eval_partition.txt").unlink()
    _write_hq_partition(hq_root)  # or in the CelebAMask-HQ folder itself
    assert CelebAMaskHQ(hq_root, split="test").indices == [3, 2001]


def test_hq_split_errors(hq_root):
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt") as e:
        CelebAMaskHQ(hq_root, split="train")
    assert str(hq_root / ".." / "celeba" / "list_eval_partition.txt") in str(e.value)
    _write_hq_partition(hq_root)
    mapping = hq_root / "CelebA-HQ-to-CelebA-mapping.txt"
    _rewrite(mapping, 3, "1 9")
    with pytest.raises(ValueError, match=r"mapping\.txt, line 3: expected '<idx> <orig_idx>"):
        CelebAMaskHQ(hq_root, split="train")
    mapping.unlink()
    with pytest.raises(FileNotFoundError) as e:
        CelebAMaskHQ(hq_root, split="train")
    assert f"{mapping} does not exist" in str(e.value)


def test_hq_missing_files_say_where_they_go(hq_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        CelebAMaskHQ(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "CelebA-HQ-img") in str(e.value)
    shutil.rmtree(hq_root / "CelebAMask-HQ-mask-anno" / "1")
    with pytest.raises(FileNotFoundError, match=r"CelebAMask-HQ-mask-anno/1 does not exist"):
        CelebAMaskHQ(hq_root)
    (hq_root / "CelebA-HQ-img" / "3.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"CelebA-HQ-img/3\.jpg"):
        CelebAMaskHQ(hq_root)
    path = hq_root / "CelebAMask-HQ-attribute-anno.txt"
    _rewrite(path, 4, "one.jpg " + " ".join(["1"] * 40))
    with pytest.raises(ValueError, match=r"attribute-anno\.txt, line 4: expected an image name"):
        CelebAMaskHQ(hq_root)
