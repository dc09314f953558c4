"""Generated splits kept beside the checkpoints (squeezex.bench.datacache): read back equal
to a fresh draw, drawn again when damaged, never kept for a builder squeezex does not own."""

import torch

from squeezex.bench.datacache import cached_split, split_path
from squeezex.datasets import DatasetSpec, get_dataset


def _equal(a, b) -> bool:
    if type(a) is not type(b) or vars(a).keys() != vars(b).keys():
        return False
    for k, v in vars(a).items():
        w = vars(b)[k]
        if isinstance(v, torch.Tensor):
            if not torch.equal(v, w):
                return False
        elif isinstance(v, dict):
            if v.keys() != w.keys() or not all(torch.equal(v[q], w[q]) for q in v):
                return False
        elif v != w or type(v) is not type(w):
            return False
    return True


def test_a_kept_split_reads_back_as_a_fresh_draw(tmp_path):
    spec = get_dataset("scenes-6c")
    options = dict(n_per_class=2, size=32, seed=3, folder=tmp_path)
    first = cached_split(spec, "test", **options)
    path = split_path(spec, "test", **options)
    assert path.is_file() and path.parent == tmp_path / "splits"
    again = cached_split(spec, "test", **options)
    assert again is not first and _equal(again, first)
    assert _equal(again, spec.build("test", n_per_class=2, size=32, seed=3))
    assert len(again) == 12 and again[0][0].shape == (3, 32, 32)
    other = split_path(spec, "test", **{**options, "seed": 4})
    assert other != path, "another seed, another file"


def test_a_damaged_file_is_drawn_again(tmp_path):
    spec = get_dataset("an8flower-single-6c")
    options = dict(n_per_class=1, size=32, seed=0, folder=tmp_path)
    good = cached_split(spec, "test", **options)
    path = split_path(spec, "test", **options)
    path.write_bytes(path.read_bytes()[:50])
    again = cached_split(spec, "test", **options)
    assert _equal(again, good)
    assert _equal(cached_split(spec, "test", **options), good), "and it is kept again"


def test_nothing_is_kept_without_a_folder_or_for_a_builder_squeezex_does_not_own(tmp_path):
    spec = get_dataset("scenes-6c")
    assert split_path(spec, "test", n_per_class=1, size=32, seed=0, folder=None) is None
    calls = []

    def mine(split, *, n_per_class, size, seed):
        calls.append(split)
        return spec.build(split, n_per_class=n_per_class, size=size, seed=seed)

    theirs = DatasetSpec("mine", mine, "a user's builder")
    for _ in range(2):
        cached_split(theirs, "test", n_per_class=1, size=32, seed=0, folder=tmp_path)
    assert calls == ["test", "test"] and not (tmp_path / "splits").exists()
