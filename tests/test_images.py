"""squeezex.images: one reader for every image file (16-bit scaled, EXIF orientation,
alpha on a background, broken files named) and ImageFolder's walk; and the readers that
use them (``--data FOLDER`` of bench and explain)."""

import os
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from squeezex.images import (
    IMAGE_SUFFIXES,
    ImageFolderWarning,
    ImageReadError,
    list_images,
    read_image,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _png16(path: Path, values: np.ndarray) -> None:
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA by the last axis), which Pillow cannot
    write for more than one channel."""
    values = values if values.ndim == 3 else values[..., None]
    h, w, c = values.shape
    kind = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = b"".join(b"\0" + values[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, kind, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))  # fmt: skip


def _pixels(path, mode="RGB", **kw) -> np.ndarray:
    return np.asarray(read_image(path, mode, **kw))


# -- the reader ---------------------------------------------------------------------------------
@FAST
@given(
    st.integers(1, 6), st.integers(1, 6), st.sampled_from(["L", "LA", "RGB", "RGBA"]),
    st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_a_16_bit_image_reads_as_the_same_pixels_as_its_8_bit_twin(h, w, kind, seed):
    channels = len(kind)
    a = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        Image.fromarray(a.squeeze(-1) if channels == 1 else a, kind).save(tmp / "8.png")
        twins = [tmp / "16.png"]
        _png16(twins[0], a.astype(np.uint16) * 257)
        if kind == "L":  # Pillow writes 16-bit grey as PNG, TIFF (I;16) and PGM (read as I)
            wide = Image.fromarray(a[..., 0].astype(np.uint16) * 257)
            twins += [tmp / "16.tif", tmp / "16.pgm"]
            for f in twins[1:]:
                wide.save(f)
        for mode in ("RGB", "L"):
            eight = _pixels(tmp / "8.png", mode)
            for f in twins:
                assert np.array_equal(_pixels(f, mode), eight), (f.name, mode)


@FAST
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_16_bit_values_are_scaled_not_clipped(h, w, seed):
    v = np.random.default_rng(seed).integers(0, 65536, (h, w), dtype=np.uint16)
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(v).save(Path(tmp) / "x.png")
        got = _pixels(Path(tmp) / "x.png", "L").astype(np.int64)
    assert np.all(np.abs(got * 257 - v.astype(np.int64)) <= 128)  # round(v / 257)


def _random_image(mode: str, h: int, w: int, rng) -> Image.Image:
    if mode == "1":
        return Image.fromarray(rng.integers(0, 2, (h, w)).astype(bool))
    if mode in ("P", "P+transparency"):
        im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).quantize(4)
        if mode == "P+transparency":
            im.info["transparency"] = 0
        return im
    if mode == "CMYK":
        return Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "CMYK")
    if mode in ("I;16", "I;16B"):
        return Image.fromarray(
            rng.integers(0, 65536, (h, w)).astype("<u2" if mode == "I;16" else ">u2")
        )
    if mode == "I":
        return Image.fromarray(rng.integers(-1000, 70000, (h, w)).astype(np.int32))
    if mode == "F":
        return Image.fromarray((rng.random((h, w)) * rng.choice([1, 300])).astype(np.float32))
    shape = (h, w, len(mode)) if len(mode) > 1 else (h, w)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


#: mode → formats Pillow writes it in
FORMATS = {
    "1": ["png", "bmp", "tif"], "L": ["png", "jpg", "bmp", "pgm", "tif", "webp"],
    "LA": ["png", "tif"], "P": ["png", "gif", "bmp", "tif"], "P+transparency": ["png", "gif"],
    "RGB": ["png", "jpg", "bmp", "ppm", "tif", "webp"], "RGBA": ["png", "tif", "webp"],
    "CMYK": ["jpg", "tif"], "I;16": ["png", "tif", "pgm"], "I;16B": ["tif"], "I": ["tif", "pgm"],
    "F": ["tif"],
}  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.*")  # Pillow's own, on a cut file
@FAST
@given(
    st.sampled_from([(m, f) for m, fs in FORMATS.items() for f in fs]),
    st.integers(1, 7), st.integers(1, 7), st.sampled_from(["RGB", "L"]),
    st.integers(0, 2**32 - 1), st.one_of(st.none(), st.floats(0, 1)),
)  # fmt: skip
def test_every_mode_reads_as_an_8_bit_image_or_a_named_error(case, h, w, mode, seed, cut):
    """Any mode in any format Pillow writes it in reads as 8-bit ``mode`` of the picture's
    size; the same file cut anywhere reads (a complete picture) or raises ImageReadError."""
    kind, fmt = case
    im = _random_image(kind, h, w, np.random.default_rng(seed))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x.{fmt}"
        im.save(path)
        if cut is not None:
            data = path.read_bytes()
            path.write_bytes(data[: int(cut * len(data))])
        try:
            got = read_image(path, mode)
        except ImageReadError as exc:
            assert cut is not None and str(path) in str(exc)
            return
    assert got.mode == mode and got.size == (w, h)
    assert np.asarray(got).dtype == np.uint8


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.*")
@FAST
@given(st.binary(max_size=300), st.sampled_from(IMAGE_SUFFIXES))
def test_random_bytes_read_as_an_image_or_a_named_error(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(data)
        try:
            got = read_image(path)
        except ImageReadError as exc:
            assert str(path) in str(exc) and "is not a readable image: " in str(exc)
        else:
            assert got.mode == "RGB"


def test_the_rules_for_32_bit_and_float_images(tmp_path):
    Image.fromarray(np.array([[-5, 0, 257 * 100, 70000]], np.int32)).save(tmp_path / "i.tif")
    assert _pixels(tmp_path / "i.tif", "L").tolist() == [[0, 0, 100, 255]]  # 16-bit scale
    unit = np.array([[0.0, 0.5, 1.0, np.nan]], np.float32)
    Image.fromarray(unit).save(tmp_path / "unit.tif")
    assert _pixels(tmp_path / "unit.tif", "L").tolist() == [[0, 128, 255, 0]]  # ×255
    wide = np.array([[0.0, 2.0, 100.4, 300.0]], np.float32)
    Image.fromarray(wide).save(tmp_path / "wide.tif")
    assert _pixels(tmp_path / "wide.tif", "L").tolist() == [[0, 2, 100, 255]]  # Pillow's 0..255


def test_exif_orientation_turns_the_pixels(tmp_path):
    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    Image.fromarray(a).save(tmp_path / "o.png", exif=exif)
    assert np.array_equal(_pixels(tmp_path / "o.png"), np.rot90(a, -1))
    Image.fromarray(a).save(tmp_path / "plain.png")
    assert np.array_equal(_pixels(tmp_path / "plain.png"), a)
    from squeezex.images import upright_size

    for name in ("o.png", "plain.png"):  # the header's size, turned as the pixels are
        assert upright_size(tmp_path / name) == read_image(tmp_path / name).size
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ImageReadError, match="bad.png"):
        upright_size(tmp_path / "bad.png")


def test_transparent_pixels_show_the_background(tmp_path):
    rgba = np.array([[[10, 20, 30, 255], [10, 20, 30, 0]]], np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert _pixels(tmp_path / "a.png").tolist() == [[[10, 20, 30], [255, 255, 255]]]
    assert _pixels(tmp_path / "a.png", background=(0, 9, 0)).tolist() == [[[10, 20, 30], [0, 9, 0]]]
    assert _pixels(tmp_path / "a.png", "L", background=0)[0, 1] == 0
    la = Image.fromarray(np.array([[[70, 255], [70, 0]]], np.uint8), "LA")
    la.save(tmp_path / "la.png")
    assert _pixels(tmp_path / "la.png", "L").tolist() == [[70, 255]]
    p = Image.fromarray(np.array([[[200, 0, 0], [0, 0, 200]]], np.uint8)).quantize(2)
    p.info["transparency"] = int(np.asarray(p)[0, 1])  # the blue pixel's palette entry
    p.save(tmp_path / "p.png")
    assert _pixels(tmp_path / "p.png", background=(1, 2, 3))[0, 1].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="background must be"):
        read_image(tmp_path / "a.png", background=(0, 0))
    with pytest.raises(ValueError, match="mode must be 'RGB' or 'L'"):
        read_image(tmp_path / "a.png", "RGBA")


def test_a_many_frame_file_reads_its_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((4, 5), v, np.uint8)) for v in (10, 200)]
    for name in ("m.gif", "m.tif"):
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
        assert Image.open(tmp_path / name).n_frames == 2
        assert set(_pixels(tmp_path / name, "L").ravel().tolist()) == {10}


def test_a_broken_file_is_named_with_the_reason(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    good = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    for name in ("t.png", "t.jpg"):
        good.save(tmp_path / name)
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])  # the header reads: fails at load
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    for name, reason in [("t.png", "truncated"), ("t.jpg", "truncated"),
                         ("notes.png", "not an image format Pillow reads"),
                         ("empty.png", "the file is empty"), ("folder.png", "it is a folder")]:  # fmt: skip
        with pytest.raises(ImageReadError, match=f"{name} is not a readable image: .*{reason}"):
            read_image(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="no image file at .*missing.png"):
        read_image(tmp_path / "missing.png")
    good.save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageReadError, match="big.png is not a readable image: .*decompression"):
        read_image(tmp_path / "big.png")


# -- the walk -----------------------------------------------------------------------------------
def test_the_suffixes_are_torchvisions():
    assert sorted(IMAGE_SUFFIXES) == sorted(IMG_EXTENSIONS)


NAMES = st.sampled_from(["a", "B", "a-b", "a.b", "a_b", ".h"])
FILES = st.tuples(NAMES, st.sampled_from([*IMAGE_SUFFIXES, ".PNG", ".JpG", ".txt", ""]))
TREES = st.lists(
    st.tuples(st.lists(NAMES, max_size=3), FILES), min_size=1, max_size=12
)  # (folders, (stem, suffix)): folders[0] is the class, none is a top-level file


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in Path(path).parts)


@settings(max_examples=40, deadline=None)
@given(TREES)
def test_the_walk_is_image_folders_without_hidden_names(tree):
    """Same files, labels (by class name) and order as torchvision's ImageFolder walk
    (find_classes, make_dataset), less the hidden names; top-level images are warned
    about; flat is ImageFolder's walk of the folder as one class."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        root.mkdir()
        for folders, (stem, suffix) in tree:
            where = root.joinpath(*folders)
            if where.is_file() or any(p.is_file() for p in where.parents):
                continue
            where.mkdir(parents=True, exist_ok=True)
            if not (where / (stem + suffix)).is_dir():
                (where / (stem + suffix)).touch()

        def rel(found) -> list[str]:
            return [os.path.relpath(p, root) for p in found]

        tv_classes = find_classes(root)[0] if any(p.is_dir() for p in root.iterdir()) else []
        classes = [c for c in tv_classes if not c.startswith(".")]
        tv = make_dataset(root, {c: i for i, c in enumerate(tv_classes)}, IMG_EXTENSIONS,
                          allow_empty=True) if tv_classes else []  # fmt: skip
        expected = [(p, tv_classes[y]) for p, y in zip(rel(p for p, _ in tv), (y for _, y in tv),
                                                        strict=True) if not _hidden(p)]  # fmt: skip
        flat = make_dataset(root.parent, {"data": 0}, IMG_EXTENSIONS, allow_empty=True)
        flat = [p for p in rel(p for p, _ in flat) if not _hidden(p)]
        empty = [c for c in classes if all(not p.startswith(c + os.sep) for p, _ in expected)]
        top = [p for p in flat if os.sep not in p]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                found = list_images(root)
            except ValueError as exc:
                assert (empty and f"class folder {empty[0]!r} holds no image" in str(exc)) or (
                    not classes and not flat and "holds no image" in str(exc)
                ), str(exc)
                return
        assert not empty
        if classes:
            assert found.classes == classes
            assert (
                list(zip(rel(found.files), (classes[y] for y in found.labels), strict=True))
                == expected
            )
            said = [w for w in caught if issubclass(w.category, ImageFolderWarning)]
            assert bool(said) == bool(top)
            if top:
                assert f"{len(top)} image(s) at its top level" in str(said[0].message)
                assert "--flat" in str(said[0].message)
        else:
            assert found.classes is None and rel(found.files) == flat
        both = list_images(root, flat=True)
        assert rel(both.files) == flat and set(both.labels) == {-1}


def test_a_class_folder_with_no_image_is_named(tmp_path):
    for name in ("a/1.png", "b/notes.txt", "b/.hidden.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).touch()
    with pytest.raises(ValueError, match="--data .*: class folder 'b' holds no image"):
        list_images(tmp_path, label="--data")
    assert len(list_images(tmp_path, flat=True)) == 1
    with pytest.raises(ValueError, match="no such folder"):
        list_images(tmp_path / "a" / "1.png")


# -- the readers that use them ------------------------------------------------------------------
def _tree(root: Path, files: dict[str, np.ndarray]) -> None:
    for name, a in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if a.dtype == np.uint16:
            _png16(root / name, a)
        else:
            Image.fromarray(a).save(root / name)


def test_explain_reads_classes_nested_or_flat(tmp_path):
    from squeezex.bench.bulk import open_data

    grey = np.full((6, 6), 90, np.uint8)
    _tree(tmp_path / "d", {"cat/1.png": grey, "cat/old/2.PNG": grey, "dog/3.png": grey,
                           "top.png": grey, ".ipynb_checkpoints/4.png": grey,
                           "dog/wide.png": grey.astype(np.uint16) * 257})  # fmt: skip
    with pytest.warns(ImageFolderWarning, match=r"1 image\(s\) at its top level \(e.g. .*top.png"):
        data = open_data(str(tmp_path / "d"), 4, classes=["dog", "cat", "bird"])
    assert data.classes == ["dog", "cat", "bird"] and len(data.dataset) == 4
    assert [data.dataset[i][1] for i in range(4)] == [1, 1, 0, 0]  # the model's indices
    x, y, i = data.dataset[3]  # the 16-bit image reads as its 8-bit twin
    assert x.shape == (3, 4, 4) and torch.allclose(x, torch.full_like(x, 90 / 255))
    flat = open_data(str(tmp_path / "d"), 4, flat=True)
    assert flat.classes is None and len(flat.dataset) == 5 and flat.source.endswith("(flat)")
    assert {flat.dataset[i][1] for i in range(5)} == {-1}
    alone = open_data(str(tmp_path / "d" / "dog"), None)  # no class folder: flat by itself
    assert alone.classes is None and len(alone.dataset) == 2
    with pytest.raises(ValueError, match="--flat reads an image folder"):
        open_data("an8flower-single-6c", 8, flat=True)


def test_the_explain_command_has_a_flat_flag():
    from squeezex.cli import _parser

    argv = ["explain", "--model", "m.pt", "--data", "d", "--out", "o"]
    assert _parser(argv).parse_args([*argv, "--flat"]).flat
    assert not _parser(argv).parse_args(argv).flat


def test_a_benchmark_folder_reads_nested_16_bit_images_and_transparent_masks(
    tmp_path, forget_datasets
):
    from squeezex.datasets.user import register_folder

    grey = np.full((8, 8), 40, np.uint8)
    mask = np.zeros((8, 8, 4), np.uint8)  # transparent white: not marked
    mask[..., :3] = 255
    mask[2:4, 2:4] = [255, 255, 255, 255]
    files = {f"{c}/{s}{i}.png": grey for c in ("a", "b") for s in ("", "sub/") for i in (1, 2)}
    files["a/sub/1.png"] = grey.astype(np.uint16) * 257
    _tree(tmp_path / "d", files)
    _tree(tmp_path / "d_MASK", dict.fromkeys(files, mask))
    spec = register_folder(tmp_path / "d")
    train, test = (spec.build(s, size=8) for s in ("train", "test"))
    assert sorted(train.files + test.files) == sorted(str(tmp_path / "d" / f) for f in files)
    assert (torch.cat([train.images, test.images]) == 40).all()
    masks = torch.cat([train.masks, test.masks])
    assert masks.sum((1, 2, 3)).tolist() == [4] * 8  # only the opaque 2×2 square
    before = spec.key()
    os.utime(tmp_path / "d" / "b" / "sub" / "2.png", ns=(1, 1))  # a nested file changed
    assert register_folder(tmp_path / "d").key() != before
