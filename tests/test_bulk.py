"""squeezex explain: bulk explanation of a folder or dataset, sharded and resumable."""

import subprocess
import sys

import pytest
import torch

from squeezex.bench.bulk import (
    ExplainedMaps,
    ExplainJob,
    explain_shard,
    load_model,
    rank_from_env,
    shard_range,
)
from squeezex.datasets import get_dataset, write_folders
from tests.sharding import ENV

DATA = dict(data="an8flower-single-6c", n_per_class=9, batch_size=8, progress=False)


@pytest.fixture(scope="module")
def checkpoint(single_bench):
    _, root = single_bench
    (path,) = (root / "ck").glob("an8flower-single-6c-se-0-*.pt")
    return path


def job(checkpoint, out, **kw) -> ExplainJob:
    return ExplainJob(**{"model": str(checkpoint), "methods": ["se", "gradcam"], "out": str(out),
                         **DATA, **kw})  # fmt: skip


def test_shard_ranges_are_whole_batches_covering_every_sample_once():
    for n in (1, 7, 64, 65, 200):
        for count in (1, 2, 3, 5):
            for bs in (1, 8, 64):
                ranges = [shard_range(n, i, count, bs) for i in range(count)]
                assert [i for r in ranges for i in r] == list(range(n))
                assert all(r.start % bs == 0 for r in ranges)
    assert rank_from_env({"RANK": "1", "WORLD_SIZE": "4"}) == (1, 4)
    assert rank_from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None


def test_the_checkpoint_says_what_model_it_holds(checkpoint):
    model, arch = load_model(checkpoint)
    assert arch["builder"] == "small" and arch["se"] and arch["size"] == 32
    assert arch["classes"] == list(
        get_dataset("an8flower-single-6c").build("test", n_per_class=1, size=32).classes
    )
    assert not model.training


def test_two_shards_write_the_maps_of_one_process(checkpoint, tmp_path):
    one = explain_shard(job(checkpoint, tmp_path / "one"))
    assert one["range"] == [0, 54] and not one["methods"]["se"]["reused"]
    parts = [explain_shard(job(checkpoint, tmp_path / "two"), i, 2) for i in range(2)]
    assert [p["range"] for p in parts] == [[0, 24], [24, 54]]  # 7 batches of 8: 3 and 4
    a, b = ExplainedMaps(tmp_path / "one"), ExplainedMaps(tmp_path / "two")
    for m in ("se", "gradcam"):
        maps = a.load(m, raw=True)
        assert maps.dtype == torch.uint8 and maps.shape == (54, 1, 32, 32)
        assert torch.equal(maps, b.load(m, raw=True))
        assert maps.float().std() > 0  # real maps, not zeros
    assert not torch.equal(a.load("se"), a.load("gradcam"))
    split = get_dataset("an8flower-single-6c").build("test", n_per_class=9, size=32)
    assert torch.equal(a.labels("se"), split.targets)  # in the split's order
    assert a.throughput("se") > 0


def test_a_shard_is_resumed_when_intact_and_redone_when_damaged(checkpoint, tmp_path):
    j = job(checkpoint, tmp_path, methods=["se"])
    explain_shard(j, 1, 2)
    maps = ExplainedMaps(tmp_path)
    with pytest.raises(ValueError, match="1 shard.* not finished: .*shard-00000-of-00002"):
        maps.load("se")
    assert explain_shard(j, 1, 2)["methods"]["se"]["reused"]
    f = tmp_path / "se" / "shard-00001-of-00002.pt"
    f.write_bytes(f.read_bytes()[:100])  # a truncated file
    assert not explain_shard(j, 1, 2)["methods"]["se"]["reused"]
    with pytest.raises(ValueError, match="no maps of 'rise'"):
        maps.load("rise")


def test_an_image_folder_is_explained_with_its_class_names(checkpoint, tmp_path):
    spec = get_dataset("an8flower-single-6c")
    ds = spec.build("test", n_per_class=2, size=40, seed=3)  # resized to the model's 32 px
    root, _ = write_folders(ds, tmp_path / "images")
    res = explain_shard(job(checkpoint, tmp_path / "maps", data=str(root), target="label"))
    assert res["methods"]["se"]["images"] == 12
    maps = ExplainedMaps(tmp_path / "maps")
    assert maps.load("gradcam").shape == (12, 1, 32, 32)
    assert sorted(maps.labels("se").tolist()) == sorted(ds.targets.tolist())


def test_bad_input_gets_a_clear_error(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="neither a folder nor a single-label dataset"):
        explain_shard(job(checkpoint, tmp_path, data="nowhere"))
    with pytest.raises(ValueError, match="fit step"):
        job(checkpoint, tmp_path, methods=["vebi"])
    with pytest.raises(ValueError, match="unknown explainer"):
        job(checkpoint, tmp_path, methods=["nope"])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        job(tmp_path / "missing.pt", tmp_path)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="holds no image"):
        explain_shard(job(checkpoint, tmp_path / "o1", data=str(tmp_path / "flat")))
    explain_shard(job(checkpoint, tmp_path / "o2", methods=["se"]))
    with pytest.raises(ValueError, match="holds maps of another run"):
        explain_shard(job(checkpoint, tmp_path / "o2", methods=["se"], seed=5))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nonsense")
    with pytest.raises(ValueError, match="not a squeezex checkpoint"):
        load_model(bad)


def test_the_command_line_explains_a_shard_and_reports_images_per_second(checkpoint, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "squeezex", "explain", "--model", str(checkpoint),
         "--data", "an8flower-single-6c", "--n-per-class", "4", "--batch-size", "8",
         "--methods", "se", "--out", str(tmp_path), "--shard", "1/2", "--quiet"],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "se [8:24) of shard 1/2: 16 images in" in out.stdout and "images/s" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "squeezex", "explain", "--model", str(checkpoint), "--data",
         "nowhere", "--out", str(tmp_path / "x")],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "neither a folder nor a single-label dataset" in bad.stderr
