"""Every file a user hands us (issue 28), for the run folder, the claims and two loaders: a
run folder holds one configuration (or refuses another, naming what differs), a worker
waiting on a claim says who holds it, a reused process id does not pass for a claim's
holder, and the AVA-ActiveSpeaker and VOC loaders refuse what they cannot read."""

import json
import math
import os
import warnings
from dataclasses import asdict, replace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squeezex import cli
from squeezex.bench import BenchConfig, RunStore, reduce, run, run_shard, submit
from squeezex.bench import claims as claims_module
from squeezex.bench.cells import Cell, CellKey
from squeezex.bench.claims import UNREADABLE_AFTER, Claim, holder
from squeezex.bench.config import SCHEMA_VERSION
from squeezex.bench.harness import one_configuration
from squeezex.datasets.ava import AVASpeakers
from squeezex.datasets.voc import VOCMasks
from tests.test_ava import _write as _write_ava
from tests.test_object_datasets import _VOC_FAKE, _write_fake_voc

BASE = dict(
    dataset="an8flower-single-6c",
    methods=["random"],
    n_train_per_class=3,
    n_test_per_class=2,
    epochs=1,
    seeds=1,
    size=32,
    families=["localisation"],
    checkpoints=None,
    progress=False,
)
_HOST = claims_module._HOST


# -- a run folder holds one configuration ---------------------------------------------------------
def _cfg(root, **kw) -> BenchConfig:
    return BenchConfig(**{**BASE, "out": str(root / "run"), **kw})


def _fake_cells(cfg: BenchConfig, *, config_file: bool = True) -> RunStore:
    """A cell of ``cfg``'s configuration in its folder, as a run writes it (no training)."""
    store = RunStore(cfg.out, cfg.fingerprint()).open()
    cell = Cell(CellKey(cfg.datasets[0], cfg.seed, "random"),
                {"iou": ("localisation", torch.rand(2).numpy())}, torch.rand(2, 1, 4, 4))  # fmt: skip
    store.write_cell(cell)
    if config_file:
        store.write_config({"schema": SCHEMA_VERSION, "config": asdict(cfg)})
    return store


def test_another_configuration_is_refused_before_anything_naming_what_differs(tmp_path, capsys):
    old = _cfg(tmp_path)
    _fake_cells(old)
    new = _cfg(tmp_path, epochs=2, lr=0.01)
    for attempt in (
        lambda: run(new),
        lambda: run_shard(new, 0, 1),
        lambda: reduce(new),
        lambda: submit(new, 1, cluster="local"),
    ):
        with pytest.raises(ValueError) as err:
            attempt()
        said = " ".join(str(err.value).split())
        assert f"{old.fingerprint()}: epochs 1 → 2, lr 0.003 → 0.01" in said, said
        assert "another --out" in said and "--replace" in said
    folder = tmp_path / "run"
    assert sorted(p.name for p in (folder / "cells").iterdir()) == [old.fingerprint()]
    assert not (folder / "jobs").exists() and not (folder / "results.json").exists()
    argv = ["bench", "--dataset", "an8flower-single-6c", "--methods", "random", "--n-train",
            "3", "--n-test", "2", "--epochs", "2", "--seeds", "1", "--size", "32",
            "--families", "localisation", "--checkpoints", "", "--out", str(folder), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 2
    assert "epochs 1 → 2" in capsys.readouterr().err
    args = cli._parser(argv + ["--replace"]).parse_args(argv + ["--replace"])
    assert cli._bench_config(args).replace_other is True


def test_replace_deletes_the_other_configuration_and_its_rows(tmp_path):
    old = _cfg(tmp_path)
    store = _fake_cells(old)
    (tmp_path / "run" / "shards" / old.fingerprint()).mkdir(parents=True)
    (tmp_path / "run" / "shards" / old.fingerprint() / "x-0-of-1.json").write_text("{}")
    from squeezex.bench.results import write_results

    assert write_results(store, old)["rows"], "the old configuration's rows are in the table"
    new = _cfg(tmp_path, size=48, replace_other=True)
    assert one_configuration(new) == [old.fingerprint()]
    assert not (tmp_path / "run" / "cells" / old.fingerprint()).exists()
    assert not (tmp_path / "run" / "shards" / old.fingerprint()).exists()
    table = json.loads((tmp_path / "run" / "results.json").read_text())
    assert table["rows"] == [] and table["cells_dir"] == f"cells/{new.fingerprint()}"
    assert one_configuration(replace(new, replace_other=False)) == []  # nothing else is left


def test_what_differs_is_read_from_results_json_of_an_older_folder(tmp_path):
    old = _cfg(tmp_path, pool="avg")
    _fake_cells(old, config_file=False)  # written before cells/<fingerprint>/_config.json
    with pytest.raises(ValueError, match="not recorded"):
        one_configuration(_cfg(tmp_path))
    results = {"schema": 4, "cells_dir": f"cells/{old.fingerprint()}", "config": asdict(old)}
    (tmp_path / "run" / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match=r"pool avg → max, schema 4 → \d+ \(another squeezex"):
        one_configuration(_cfg(tmp_path))


def test_a_damaged_other_configuration_does_not_block_the_folder(tmp_path):
    store = _fake_cells(_cfg(tmp_path))
    (cell,) = store.cells_dir.glob("*/*/random.json")
    cell.write_text("{}")  # no intact cell: nothing a table could show
    assert one_configuration(_cfg(tmp_path, epochs=3)) == []


#: fingerprinted settings and values other than BASE's (and the defaults)
CHANGED = {"epochs": 2, "size": 40, "lr": 0.01, "batch_size": 8, "seed": 1, "pool": "avg",
           "deletion_steps": 5, "deletion_baseline": "mean", "n_road": 4, "n_sanity": 3,
           "families": ["localisation", "cost"], "vebi_mu": 2.0}  # fmt: skip
#: settings outside the fingerprint: a run with them adds to the folder
ADDED = st.fixed_dictionaries({}, optional={
    "methods": st.lists(st.sampled_from(["random", "se", "gradcam", "vebi"]), min_size=1,
                        max_size=3, unique=True),
    "seeds": st.integers(1, 3), "progress": st.booleans(), "n_examples": st.integers(1, 9),
    "resume": st.booleans(), "dataset": st.sampled_from(["an8flower-single-6c", "scenes-6c"]),
})  # fmt: skip


@pytest.fixture(scope="module")
def one_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-configuration")
    _fake_cells(_cfg(root))
    return root


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(added=ADDED, changed=st.lists(st.sampled_from(sorted(CHANGED)), max_size=2, unique=True))
def test_only_fingerprinted_settings_make_another_configuration(one_folder, added, changed):
    cfg = _cfg(one_folder, **added, **{k: CHANGED[k] for k in changed})
    if not changed:
        assert one_configuration(cfg) == []  # more methods, seeds, datasets: the same folder
        return
    with pytest.raises(ValueError) as err:
        one_configuration(cfg)
    for k in changed:
        assert f"{k} " in str(err.value) and " → " in str(err.value)


# -- claims: who holds them, and whether that process is still the holder -------------------------
linux = pytest.mark.skipif(not claims_module._PROC, reason="needs /proc (Linux)")


def _claim_file(path, **fields):
    body = {"host": _HOST, "pid": os.getpid(), "token": "theirs", "since": "2026-01-01T10:00:00"}
    path.write_text(json.dumps({**body, **fields}))


@linux
def test_a_reused_process_id_is_not_the_holder(tmp_path):
    path = tmp_path / "cell.claim"
    for pid in (os.getpid(), 1):  # this process, and init (alive, another user's maybe)
        started = claims_module._start_time(pid)
        if started is None:
            continue
        _claim_file(path, pid=pid, start=started)
        assert not Claim(path).acquire(), "the recorded process is alive: a live claim"
        _claim_file(path, pid=pid, start=started + 1)  # the id now belongs to another process
        c = Claim(path)
        assert c.acquire() and holder(path)["token"] == c.token, "stale: broken and taken"
        assert holder(path)["start"] == claims_module._start_time(os.getpid())
        c.release()
    _claim_file(path)  # an older claim without the start time: a live pid holds it
    assert not Claim(path).acquire()


def test_waiting_on_a_claim_says_once_who_holds_it(tmp_path):
    path = tmp_path / "model.pt.claim"
    _claim_file(path, start=claims_module._start_time(os.getpid()), job="77_3")
    said = []
    got = Claim(path).acquire(wait=True, poll=0.01, timeout=0.15, log=said.append)
    assert got is False
    assert said == [f"waiting for {path}: held by {_HOST} pid {os.getpid()} (Slurm job 77_3) "
                    "since 2026-01-01T10:00:00"]  # fmt: skip


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                   max_size=3),
    max_leaves=6,
)  # fmt: skip
FIELDS = st.fixed_dictionaries({}, optional={
    "host": st.sampled_from([_HOST, "elsewhere"]) | JSON,
    "pid": st.sampled_from([os.getpid(), 0, -1, 2**40, True]) | st.integers() | JSON,
    "start": st.integers() | JSON, "since": JSON, "job": JSON, "token": JSON, "age": JSON,
})  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.one_of(st.binary(max_size=30), JSON.map(json.dumps), FIELDS.map(json.dumps)),
       old=st.booleans())  # fmt: skip
def test_any_claim_file_is_judged_never_a_crash(tmp_path_factory, content, old):
    path = tmp_path_factory.mktemp("claim") / "x.claim"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    age = (UNREADABLE_AFTER + 400) if old else 0
    os.utime(path, (os.path.getmtime(path) - age,) * 2)
    c = Claim(path, stale_after=300)
    got = c.acquire()
    info = holder(path) if not got else None
    c.release()
    try:
        parsed = json.loads(content)
    except ValueError:
        parsed = None
    if old and not isinstance(parsed, dict):
        assert got, "an old file that is not a claim is broken"
    if old and isinstance(parsed, dict) and parsed.get("host") != _HOST:
        assert got, "another host's claim not refreshed for stale_after is broken"
    if not got:
        assert info is not None or not isinstance(parsed, dict), "left: a claim file"


# -- AVA-ActiveSpeaker --------------------------------------------------------------------------------
def test_ava_tracks_shorter_than_a_clip_give_an_empty_dataset_and_say_why(tmp_path):
    _write_ava(tmp_path)  # one track of 10 frames
    with pytest.warns(UserWarning, match=r"1 face track\(s\) have 10 frames, fewer than "
                                         r"clip_frames=12; pass clip_frames <= 10"):  # fmt: skip
        assert len(AVASpeakers(tmp_path, clip_frames=12)) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(AVASpeakers(tmp_path, clip_frames=10)) == 1


@pytest.mark.parametrize(
    "line, match",
    [
        ("vidA,900.40,0.1,0.1,0.5,0.5,SHOUTING,vidA:1,1,vidA:1:0", r"unknown label 'SHOUTING'"),
        ("vidA,900.40,0.1,0.1,0.5,0.5,NOT_SPEAKING,vidA:1,1,vidA:1:0",
         r"label_id 1 does not match label NOT_SPEAKING"),
        ("vidA,900.40,0.1,0.1,0.5,0.5,SPEAKING_AUDIBLE,vidA:1,7,vidA:1:0", r"label_id 7"),
        ("vidA,nan,0.1,0.1,0.5,0.5,NOT_SPEAKING,vidA:1,0,vidA:1:0", r"frame_timestamp nan is not finite"),
    ],
)  # fmt: skip
def test_ava_a_row_that_is_not_avas_is_named_with_its_file_and_line(tmp_path, line, match):
    _write_ava(tmp_path)
    csv = tmp_path / "csv" / "val_orig.csv"
    rows = csv.read_text().splitlines()
    csv.write_text("\n".join([*rows[:3], line, *rows[3:]]) + "\n")
    with pytest.raises(ValueError, match=rf"val_orig\.csv:4: {match}"):
        AVASpeakers(tmp_path)


@pytest.fixture(scope="module")
def ava_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ava")
    _write_ava(root)
    return root


@settings(max_examples=40, deadline=None)
@given(clip_frames=st.integers(1, 12), size=st.integers(1, 24),
       fps=st.floats(1, 1000) | st.integers(1, 1000))  # fmt: skip
def test_ava_any_valid_parameters_read_the_files(ava_root, clip_frames, size, fps):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 11 and 12 frames: empty, said by a warning
        ds = AVASpeakers(ava_root, clip_frames=clip_frames, size=size, fps=fps)
    assert len(ds) == 10 // clip_frames
    if len(ds):
        frames, audio, labels = ds[len(ds) - 1]
        assert frames.shape == (clip_frames, 1, size, size) and labels.shape == (clip_frames,)
        assert audio.shape == (round(clip_frames / fps * 16000),)
        assert 0 <= frames.min() and frames.max() <= 1


BAD = {
    "fps": st.sampled_from([0, -25, 0.5, 1001, math.nan, math.inf, -math.inf, "25", None, True,
                            [25]]) | st.floats(max_value=0.99) | st.floats(min_value=1000.01),
    "clip_frames": st.sampled_from([0, -1, 2.0, 8.5, "8", None, True]) | st.integers(max_value=0),
    "size": st.sampled_from([0, 1025, 16.0, "16", None, False]) | st.integers(min_value=1025),
}  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(BAD)).flatmap(lambda k: st.tuples(st.just(k), BAD[k])))
def test_ava_invalid_parameters_are_refused_by_name(ava_root, bad):
    name, value = bad
    with pytest.raises((ValueError, TypeError), match=rf"^{name} must be"):
        AVASpeakers(ava_root, **{name: value})


# -- VOC ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "box, problem",
    [((45, 2, 50, 9), "lies wholly outside the 40×30 image"),  # right of the image
     ((3, 31, 9, 40), "lies wholly outside the 40×30 image"),  # below it (1-based: row 31)
     ((30, 10, 5, 28), "is inverted or not finite")],  # xmax < xmin
)  # fmt: skip
def test_voc_a_box_that_cannot_be_a_mask_is_named_and_left_out(tmp_path, monkeypatch, box,
                                                                problem):  # fmt: skip
    objects = [("cat", (2, 2, 6, 6), False), ("dog", box, False), ("dog", (36, 26, 48, 40), False)]
    monkeypatch.setitem(_VOC_FAKE, "2008_000009", (40, 30, objects))  # the 2nd dog: partly out
    _write_fake_voc(tmp_path, ids=["2008_000009"])
    with pytest.warns(UserWarning, match=rf"2008_000009\.xml: the box of 'dog' {problem} "
                                         r"\(object 2; xmin"):  # fmt: skip
        ds = VOCMasks(tmp_path)
    assert [ds.classes[t] for t in ds.targets] == ["dog"]  # the clipped one: 5×5 pixels left
    assert ds[0][2].sum() == 25 and ds.boxes(0).tolist() == [[35.0, 25.0, 40.0, 30.0]]


def test_voc_a_missing_image_is_named_with_its_annotation(tmp_path):
    base = _write_fake_voc(tmp_path)
    (base / "JPEGImages" / "2008_000002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"2008_000002\.jpg \(annotated in .*"
                                                r"Annotations/2008_000002\.xml\)"):  # fmt: skip
        VOCMasks(tmp_path)


def test_voc_no_image_of_the_classes_is_an_empty_dataset_that_says_why(tmp_path):
    _write_fake_voc(tmp_path)
    with pytest.warns(UserWarning, match=r"none of the 3 images .* has an object of classes "
                                         r"\['sofa', 'train'\] .*name: bird, car, cat, dog, person"):  # fmt: skip
        ds = VOCMasks(tmp_path, classes=["sofa", "train"])
    assert len(ds) == 0 and ds.n_skipped == 3
