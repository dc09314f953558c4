"""squeezex explain: bulk explanation of a folder or dataset, sharded and resumable."""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from squeezex.bench.bulk import (
    ExplainedMaps,
    ExplainJob,
    explain_shard,
    load_model,
    rank_from_env,
    shard_range,
)
from squeezex.cli import main
from squeezex.datasets import get_dataset, write_folders
from tests.sharding import ENV

DATA = dict(data="an8flower-single-6c", n_per_class=9, batch_size=8, progress=False)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models on shared cores: intra-op threads only add synchronisation (conftest's
    ``one_thread``, for the module's fixtures too)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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


# -- whose maps a folder holds ------------------------------------------------------------------
SMALL = dict(n_per_class=2, batch_size=4, methods=["se"])  # 12 images: shards [0, 4) and [4, 12)


@pytest.fixture(scope="module")
def other_checkpoint(checkpoint, tmp_path_factory):
    """Model B: model A's checkpoint with its weights moved a little (another sha256)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {
        k: v + 0.01 if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()
    }
    path = tmp_path_factory.mktemp("model-b") / "b.pt"
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def two_runs(checkpoint, other_checkpoint, tmp_path_factory):
    """Folders of model A's and model B's maps, two shards each."""
    root = tmp_path_factory.mktemp("two-runs")
    for name, ck in (("a", checkpoint), ("b", other_checkpoint)):
        for i in range(2):
            explain_shard(job(ck, root / name, **SMALL), i, 2)
    return root / "a", root / "b"


def _sha(folder) -> str:
    return json.loads((folder / "index.json").read_text())["model_sha256"]


def test_another_models_maps_are_refused_even_without_the_index(
    checkpoint, other_checkpoint, tmp_path, capsys
):
    def explain(ck) -> int:
        return main(["explain", "--model", str(ck), "--data", "an8flower-single-6c",
                     "--n-per-class", "2", "--batch-size", "4", "--methods", "se",
                     "--out", str(tmp_path), "--quiet"])  # fmt: skip

    assert explain(checkpoint) == 0
    shard = tmp_path / "se" / "shard-00000-of-00001.pt"
    before, sha_a = shard.read_bytes(), _sha(tmp_path)
    (tmp_path / "index.json").unlink()
    capsys.readouterr()
    assert explain(other_checkpoint) == 2
    err = capsys.readouterr().err
    assert f"{shard} holds maps of model {sha_a} on dataset an8flower-single-6c" in err
    assert "this run is model " in err and "(the model_sha256 differ): choose another --out" in err
    assert shard.read_bytes() == before, "another model's maps are not overwritten"
    assert not (tmp_path / "index.json").exists(), "nor the index rewritten"
    assert explain(checkpoint) == 0 and "reused (intact)" in capsys.readouterr().out


def test_maps_are_read_only_with_the_index_of_their_model(two_runs, tmp_path):
    a, b = two_runs
    assert _sha(a) != _sha(b) and ExplainedMaps(b).missing("se") == []
    mixed = tmp_path / "mixed"
    shutil.copytree(b, mixed)
    shutil.copy(a / "se" / "shard-00001-of-00002.pt", mixed / "se")
    with pytest.raises(ValueError, match=f"shard-00001-of-00002.pt holds maps of model {_sha(a)}"):
        ExplainedMaps(mixed).load("se")


def test_a_shard_of_an_older_squeezex_is_explained_again(two_runs, checkpoint, tmp_path):
    a, _ = two_runs
    shutil.copytree(a, tmp_path / "a")
    f = tmp_path / "a" / "se" / "shard-00001-of-00002.pt"
    saved = torch.load(f, weights_only=True)
    torch.save({k: v for k, v in saved.items() if k not in ("made_by", "digest")}, f)
    assert ExplainedMaps(tmp_path / "a").missing("se") == [f]
    res = explain_shard(job(checkpoint, tmp_path / "a", **SMALL), 1, 2)
    assert not res["methods"]["se"]["reused"]
    assert torch.load(f, weights_only=True)["made_by"]["model_sha256"] == _sha(a)
    assert torch.equal(ExplainedMaps(tmp_path / "a").load("se"), ExplainedMaps(a).load("se"))


DAMAGE = ["truncated", "random bytes", "a flipped byte", "another range", "older squeezex",
          "another model"]  # fmt: skip


def _damage(f: Path, kind: str, where: float, seed: int, a: Path, b: Path) -> None:
    raw, rng = bytearray(f.read_bytes()), np.random.default_rng(seed)
    if kind == "truncated":
        f.write_bytes(raw[: int(where * len(raw))])
    elif kind == "random bytes":
        f.write_bytes(rng.bytes(int(where * len(raw)) + 1))
    elif kind == "a flipped byte":
        raw[int(where * len(raw))] ^= int(rng.integers(1, 256))
        f.write_bytes(raw)
    elif kind == "another range":
        shutil.copy(a / "se" / "shard-00000-of-00002.pt", f)
    elif kind == "older squeezex":
        saved = torch.load(f, weights_only=True)
        torch.save({k: v for k, v in saved.items() if k not in ("made_by", "digest")}, f)
    else:
        shutil.copy(b / "se" / f.name, f)


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(DAMAGE), st.floats(0, 1, exclude_max=True), st.integers(0, 2**32 - 1))
@example("truncated", 0.5, 0)
@example("random bytes", 0.5, 0)
@example("a flipped byte", 0.9, 0)
@example("another range", 0.0, 0)
@example("older squeezex", 0.0, 0)
@example("another model", 0.0, 0)
def test_a_damaged_or_foreign_shard_is_never_reused(two_runs, checkpoint, kind, where, seed):
    """Each damaged shard file is explained again or refused with a named error; it is
    never read back, nor reused, as maps it does not hold."""
    a, b = two_runs
    want = ExplainedMaps(a).load("se", raw=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "maps"
        shutil.copytree(a, folder)
        f = folder / "se" / "shard-00001-of-00002.pt"
        _damage(f, kind, where, seed, a, b)
        damaged = f.read_bytes()
        try:
            assert torch.equal(ExplainedMaps(folder).load("se", raw=True), want)
        except ValueError as exc:
            assert re.search("not finished|holds maps of model", str(exc)), exc
        try:
            res = explain_shard(job(checkpoint, folder, **SMALL), 1, 2)["methods"]["se"]
        except ValueError as exc:
            assert kind in ("another model", "a flipped byte"), exc
            assert re.search(f"{f} holds maps of model .*choose another --out", str(exc))
            assert f.read_bytes() == damaged, "a refused file is left as it was"
            return
        assert kind != "another model"
        assert not res["reused"] or kind == "a flipped byte"  # a byte no tensor holds
        assert torch.equal(ExplainedMaps(folder).load("se", raw=True), want)
