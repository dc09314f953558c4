"""scikit-learn's digits (no download) and the MNIST loader (on fake IDX files)."""

import gzip
import struct

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from squeezex.datasets import Digits, mnist
from squeezex.datasets.digits import MNIST_FILES
from squeezex.models import build_model
from squeezex.training import evaluate, fit

N_DIGITS = 1797


def test_items_shapes_types_and_range():
    ds = Digits("train", size=20)
    assert len(ds) == 1437 and ds.classes == [str(d) for d in range(10)]
    assert ds.images.shape == (len(ds), 1, 20, 20) and ds.images.dtype == torch.float32
    assert 0 <= ds.images.min() and ds.images.max() <= 1 and ds.images.max() > 0.9
    assert ds.targets.dtype == torch.long and ds.targets.shape == (len(ds),)
    image, target = ds[5]
    assert image.shape == (1, 20, 20) and image.dtype == torch.float32
    assert isinstance(target, int) and target == int(ds.targets[5])


def test_size_8_is_the_original_pixels_scaled():
    ds = Digits("test", size=8)
    raw = load_digits()
    expected = torch.from_numpy(raw.images[ds.indices.numpy()] / 16).float()[:, None]
    torch.testing.assert_close(ds.images, expected)
    assert torch.equal(ds.targets, torch.from_numpy(raw.target[ds.indices.numpy()]))


def test_upsampling_is_bilinear_align_corners_false():
    small, big = Digits("test", size=8), Digits("test", size=24)
    expected = torch.nn.functional.interpolate(
        small.images, size=(24, 24), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(big.images, expected)


def test_split_is_stratified_disjoint_and_deterministic():
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state is the point)
    tr, te = Digits("train", size=8, seed=1), Digits("test", size=8, seed=1)
    assert len(tr) + len(te) == N_DIGITS and len(te) == 360
    a, b = set(tr.indices.tolist()), set(te.indices.tolist())
    assert not a & b and len(a | b) == N_DIGITS
    all_counts = np.bincount(load_digits().target, minlength=10)
    for ds in (tr, te):
        counts = np.bincount(ds.targets.numpy(), minlength=10)
        assert (counts > 0).all(), "every class in both splits"
        share = len(ds) / N_DIGITS
        assert np.abs(counts - all_counts * share).max() <= 1, "stratified by class"
    again = Digits("train", size=8, seed=1)
    assert torch.equal(tr.images, again.images) and torch.equal(tr.targets, again.targets)
    other = Digits("train", size=8, seed=2)
    assert set(other.indices.tolist()) != a
    assert torch.equal(torch.get_rng_state(), state)
    assert (np.random.get_state()[1] == np_state).all()  # noqa: NPY002


def test_test_fraction_and_transforms():
    ds = Digits("test", size=8, test_fraction=0.5)
    assert len(ds) in (898, 899)
    ds = Digits("test", size=8, transform=lambda x: x * 2, target_transform=lambda t: f"digit {t}")
    image, target = ds[0]
    torch.testing.assert_close(image, ds.images[0] * 2)
    assert target == f"digit {int(ds.targets[0])}"


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        Digits("val")
    with pytest.raises(ValueError, match="size"):
        Digits(size=7)
    with pytest.raises(ValueError, match="size"):
        Digits(size=16.0)
    with pytest.raises(ValueError, match="test_fraction"):
        Digits(test_fraction=1.0)
    with pytest.raises(ValueError, match="test_fraction"):
        Digits(test_fraction=0.001)  # 2 test images for 10 classes
    with pytest.raises(TypeError):
        Digits("train", 32)  # options are keyword-only


def test_repr():
    r = repr(Digits("test", size=12, seed=3))
    assert r.startswith("Digits(") and "split='test'" in r and "n=360" in r
    assert "size=12" in r and "seed=3" in r


def test_small_cnn_learns_digits_quickly():
    """~1.3 s on 2 idle CPU cores (98 % test accuracy); no wall-clock assertion, as a
    shared machine can make it 10x slower."""
    train, test = Digits("train", size=32), Digits("test", size=32)
    model = build_model("small", 10, in_channels=1, seed=0)
    fit(model, train, epochs=2, progress=False)  # (image, target) items, no mask
    acc = evaluate(model, test)
    assert acc > 0.8, f"test accuracy {acc:.3f} (chance 0.1)"


# --- MNIST, on fake files in the real on-disk format ---------------------------------


def _write_idx_images(path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes())


def _write_idx_labels(path, labels: np.ndarray) -> None:
    path.write_bytes(
        struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()
    )


def _fake_mnist(root, n_train=7, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    written = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the range
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        _write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
        written[prefix] = (images, labels)
    return written


@pytest.mark.parametrize("train", [True, False])
def test_mnist_reads_what_was_written(tmp_path, train):
    written = _fake_mnist(tmp_path)
    images, labels = written["train" if train else "t10k"]
    ds = mnist(tmp_path, train=train)
    assert len(ds) == len(labels) and ds.classes == [str(d) for d in range(10)]
    assert torch.equal(ds.data, torch.from_numpy(images))
    assert torch.equal(ds.targets, torch.from_numpy(labels).long())
    for i in range(len(ds)):
        image, target = ds[i]
        assert image.shape == (1, 28, 28) and image.dtype == torch.float32
        torch.testing.assert_close(image[0], torch.from_numpy(images[i] / 255).float())
        assert isinstance(target, int) and target == labels[i]
    assert ds[0][0].min() == 0 and ds[0][0].max() == 1
    assert f"train={train}" in repr(ds) and f"n={len(labels)}" in repr(ds)


def test_mnist_resize_and_transforms(tmp_path):
    written = _fake_mnist(tmp_path)
    ds = mnist(tmp_path, size=14, transform=lambda x: 1 - x, target_transform=lambda t: t + 100)
    image, target = ds[2]
    assert image.shape == (1, 14, 14) and 0 <= image.min() and image.max() <= 1
    assert target == written["train"][1][2] + 100
    big = mnist(tmp_path, size=32)
    assert big[0][0].shape == (1, 32, 32)
    with pytest.raises(ValueError, match="size"):
        mnist(tmp_path, size=0)


def test_mnist_missing_files_say_where_to_put_them(tmp_path, monkeypatch):
    import torchvision.datasets

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", no_network)
    raw = tmp_path / "MNIST" / "raw"
    with pytest.raises(FileNotFoundError) as err:
        mnist(tmp_path)
    msg = str(err.value)
    assert str(raw) in msg and all(f in msg for f in MNIST_FILES)
    assert not raw.exists(), "nothing created"

    # Only the .gz files, as downloaded by hand: the message says to unpack them.
    raw.mkdir(parents=True)
    for f in MNIST_FILES:
        with gzip.open(raw / f"{f}.gz", "wb") as fh:
            fh.write(b"")
    with pytest.raises(FileNotFoundError, match="gunzip"):
        mnist(tmp_path, train=False)


def test_mnist_files_in_the_wrong_folder_are_pointed_at(tmp_path):
    _fake_mnist(tmp_path / "elsewhere")
    wrong = tmp_path / "elsewhere" / "MNIST" / "raw"
    with pytest.raises(FileNotFoundError, match="move them") as err:
        mnist(wrong)
    assert str(wrong / "MNIST" / "raw") in str(err.value)


def test_mnist_a_truncated_file_is_named_not_reported_missing(tmp_path):
    _fake_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte holds \d+ bytes.*truncated"):
        mnist(tmp_path)


def test_mnist_labels_outside_0_to_9_and_count_mismatches_are_named(tmp_path):
    _fake_mnist(tmp_path, n_train=5, n_test=4)
    raw = tmp_path / "MNIST" / "raw"
    _write_idx_labels(raw / "train-labels-idx1-ubyte", np.array([1, 2, 11, 3, 4]))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte has labels \[11\]"):
        mnist(tmp_path)
    _write_idx_labels(raw / "train-labels-idx1-ubyte", np.array([1, 2, 3, 4]))
    with pytest.raises(ValueError, match="holds 5 images but .*train-labels.* holds 4 labels"):
        mnist(tmp_path)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03" + bytes(16))
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes with 1 dimension"):
        mnist(tmp_path)
