"""The harness wing: resumable cells, the run folder as a store that checks what it reads,
tables as views of every cell, one metric vocabulary, the dataset registry."""

import json
import warnings
from pathlib import Path

import pytest
import torch

from squeezex.bench import (
    BenchConfig,
    CorruptRunError,
    Run,
    RunWarning,
    latex_table,
    run,
)
from squeezex.bench.tasks import get_task
from squeezex.metrics import METRICS

TINY = dict(
    dataset="an8flower-single-6c",
    n_train_per_class=3,
    n_test_per_class=2,
    epochs=1,
    seeds=1,
    size=32,
    n_sanity=2,
    n_sensitivity=2,
    deletion_steps=4,
    progress=False,
)


#: The checkpoint folder of the whole test run (conftest's ``checkpoints``): the tests'
#: models are trained once; a test that changes a checkpoint or its fits uses its own.
_SHARED: dict = {}


@pytest.fixture(autouse=True)
def _shared_checkpoints(checkpoints):
    _SHARED["folder"] = checkpoints


def _cfg(tmp_path, *, own_checkpoints=False, **kw):
    ck = tmp_path / "ck" if own_checkpoints else _SHARED["folder"]
    base = dict(TINY, out=str(tmp_path / "run"), checkpoints=str(ck))
    return BenchConfig(**{**base, **kw})


def _cells(tmp_path):
    return tmp_path / "run" / "cells"


def _cell_file(tmp_path, method, suffix=".json"):
    (path,) = _cells(tmp_path).glob(f"*/*/*/{method}{suffix}")
    return path


def _quiet(fn, *args):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn(*args)
    return out, [str(x.message) for x in w if issubclass(x.category, RunWarning)]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, checkpoints):
    tmp = tmp_path_factory.mktemp("bench")
    _SHARED["folder"] = checkpoints
    cfg = _cfg(tmp, methods=["se", "random"], families=["localisation", "cost"])
    return tmp, cfg, run(cfg)


def test_a_rerun_reuses_finished_cells_and_recomputes_missing_ones(tmp_path):
    cfg = _cfg(tmp_path, methods=["se", "random"])
    first = run(cfg)
    assert [c["reused"] for c in first["cells"]] == [False] * len(first["cells"])
    cells = sorted(p for p in _cells(tmp_path).rglob("*.json") if not p.name.startswith("_"))
    assert {p.stem for p in cells} == {"se", "random", "centre", "silhouette", "oracle", "constant"}
    cells[0].unlink()
    again = run(cfg)
    reused = {c["key"].split("/")[-1]: c["reused"] for c in again["cells"]}
    assert reused == {n: n != cells[0].stem for n in reused}
    assert again["rows"] == first["rows"], "a reused cell gives the same rows"
    more = run(BenchConfig(**{**cfg.__dict__, "methods": ["se", "random", "gradcam"]}))
    assert {c["key"].split("/")[-1] for c in more["cells"] if not c["reused"]} == {"gradcam"}
    other = {**cfg.__dict__, "deletion_steps": 5}
    with pytest.raises(ValueError, match="deletion_steps 4 → 5.*another --out.*--replace"):
        run(BenchConfig(**other))  # a folder holds one configuration
    changed = run(BenchConfig(**{**other, "replace_other": True}))
    assert not any(c["reused"] for c in changed["cells"]), "other settings, other cells"
    assert [p.name for p in _cells(tmp_path).iterdir()] == [BenchConfig(**other).fingerprint()]
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_results_are_written_after_every_cell(tmp_path, monkeypatch):
    calls = {"n": 0}
    task = get_task("single-label")
    real = task.compute_cell

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user stops the run in the third cell
        return real(*args, **kwargs)

    monkeypatch.setattr(task, "compute_cell", flaky)
    cfg = _cfg(tmp_path, methods=["se", "gradcam", "random"], checkpoints=None)
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    partial = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {r["method"] for r in partial["rows"]} == {"se", "gradcam"}
    csv_methods = {line.split(",")[2] for line in (tmp_path / "run" / "results.csv").open()}
    assert csv_methods == {"method", "se", "gradcam"}, "CSV and JSON are written together"
    monkeypatch.undo()
    done = run(cfg)
    assert [c["reused"] for c in done["cells"]][:2] == [True, True]
    assert {r["method"] for r in done["rows"]} >= {"se", "gradcam", "random", "oracle"}


def test_another_method_list_adds_rows_and_drops_none(tmp_path):
    cfg = _cfg(tmp_path, methods=["se", "gradcam"], families=["localisation"])
    run(cfg)
    fewer = run(BenchConfig(**{**cfg.__dict__, "methods": ["random"]}))
    methods = list(dict.fromkeys(r["method"] for r in fewer["rows"]))
    assert methods[0] == "random", "this run's methods first"
    assert set(methods) == {"random", "se", "gradcam", "centre", "silhouette", "oracle", "constant"}
    tex = (tmp_path / "run" / "results.tex").read_text()
    csv = (tmp_path / "run" / "results.csv").read_text()
    for m in ("se", "gradcam", "random"):
        assert f"\n{m} &" in tex and f",{m}," in csv, f"{m} is in every table"


@pytest.mark.parametrize(
    "damage",
    ["empty json", "truncated maps", "short maps", "tampered value", "json garbage"],
)
def test_a_damaged_cell_is_named_and_recomputed(tmp_path, damage):
    cfg = _cfg(tmp_path, methods=["se", "random"], families=["localisation"])
    first = run(cfg)
    path = _cell_file(tmp_path, "se")
    if damage == "empty json":
        path.write_text("{}")
    elif damage == "json garbage":
        path.write_text('{"rows": [')
    elif damage == "truncated maps":
        pt = path.with_suffix(".pt")
        pt.write_bytes(pt.read_bytes()[:100])
    elif damage == "short maps":
        pt = path.with_suffix(".pt")
        torch.save(torch.load(pt)[:1], pt)
    else:
        record = json.loads(path.read_text())
        record["rows"][0]["value"] = 0.999
        path.write_text(json.dumps(record))
    again, said = _quiet(run, cfg)
    assert any(str(path.with_suffix("")) in m and "recomputing" in m for m in said), said
    reused = {c["key"].split("/")[-1]: c["reused"] for c in again["cells"]}
    assert reused["se"] is False and reused["random"] is True
    assert again["rows"] == first["rows"], "the recomputed cell has the true values"
    third, said = _quiet(run, cfg)
    assert all(c["reused"] for c in third["cells"]) and not said


def test_a_damaged_cell_of_another_method_is_left_out_not_passed_on(tmp_path):
    cfg = _cfg(tmp_path, methods=["se", "random"], families=["localisation"])
    run(cfg)
    path = _cell_file(tmp_path, "random")
    record = json.loads(path.read_text())
    record["rows"][0]["value"] = 0.999
    path.write_text(json.dumps(record))
    res, said = _quiet(run, BenchConfig(**{**cfg.__dict__, "methods": ["se"]}))
    assert any(str(path) in m and "left out" in m for m in said)
    assert "random" not in {r["method"] for r in res["rows"]}


@pytest.mark.parametrize("artifact", ["_test-split.pt", "_se-vectors.pt"])
def test_damaged_artifacts_are_rewritten_and_fresh_means_fresh(tmp_path, artifact):
    cfg = _cfg(tmp_path, methods=["se"], families=["localisation"])
    run(cfg)
    (path,) = _cells(tmp_path).rglob(artifact)
    good = torch.load(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptRunError, match=f"{artifact}.*rerun"):
        Run(tmp_path / "run").data() if "split" in artifact else Run(tmp_path / "run").se_vectors()
    _, said = _quiet(run, cfg)
    assert any(artifact in m and "rewriting" in m for m in said)
    again = torch.load(path)
    assert again.keys() == good.keys()
    for k in good:
        if isinstance(good[k], list):
            assert again[k] == good[k]
        elif isinstance(good[k], dict):  # the named regions
            assert again[k].keys() == good[k].keys()
            assert all(torch.equal(again[k][r], good[k][r]) for r in good[k])
        else:
            assert torch.equal(again[k], good[k])
    stray = path.parent / f".{artifact}.elsewhere.1.x.tmp"
    stray.write_bytes(b"half")
    import os

    os.utime(stray, (0, 0))  # a day old: stale whoever wrote it
    fresh, _ = _quiet(run, BenchConfig(**{**cfg.__dict__, "resume": False}))
    assert not any(c["reused"] for c in fresh["cells"]), "--fresh recomputes every cell"
    assert not stray.exists(), "temp files of dead writers are removed"


def test_a_damaged_artifact_of_the_wrong_types_is_rewritten_not_a_crash(tmp_path):
    cfg = _cfg(tmp_path, methods=["se"], families=["localisation"])
    run(cfg)
    (path,) = _cells(tmp_path).rglob("_se-vectors.pt")
    good = torch.load(path)
    torch.save({"s": good["s"], "logits": [1, 2]}, path)  # loads, but is not SE vectors
    _, said = _quiet(run, cfg)
    assert any("_se-vectors.pt is damaged" in m and "rewriting" in m for m in said), said
    torch.testing.assert_close(torch.load(path)["logits"], good["logits"])


def test_more_seeds_reuse_the_cells_of_the_first_and_fresh_starts_over(tmp_path):
    cfg = _cfg(tmp_path, methods=["se", "vebi"], families=["localisation"], seeds=1,
               own_checkpoints=True)  # fmt: skip
    run(cfg)
    two = run(BenchConfig(**{**cfg.__dict__, "seeds": 2, "explain_seeds": 2}))
    reused = {c["key"]: c["reused"] for c in two["cells"]}
    assert all(v for k, v in reused.items() if "/0/" in k), "seed 0 was already done"
    assert not any(v for k, v in reused.items() if "/1/" in k)
    (fit,) = (tmp_path / "ck").glob("*-se-0-*-vebi-mu5.pt")
    stamp = fit.stat().st_mtime_ns
    fresh = run(BenchConfig(**{**cfg.__dict__, "resume": False}))
    assert not any(c["reused"] for c in fresh["cells"])
    assert fit.stat().st_mtime_ns != stamp, "--fresh fits VEBI again"
    assert {r["seed"] for r in fresh["rows"]} == {0}, "the tables hold what this run made"


def test_a_cell_with_integer_keys_passes_its_own_digest(tmp_path):
    from squeezex.bench import RunStore
    from squeezex.bench.cells import Cell, CellKey

    store = RunStore(tmp_path, "fp").open()
    key = CellKey("d", 0, "m")
    cell = Cell(key, {"iou": ("localisation", torch.rand(3).numpy())}, torch.rand(3, 1, 4, 4))
    cell.fit = {"per_class": {2: 1, 10: 2}}  # JSON turns these keys into strings
    store.write_cell(cell)
    assert store.read_cell(key, n=3) is not None


def test_datasets_and_seeds_are_dimensions(tmp_path):
    cfg = _cfg(
        tmp_path,
        dataset="an8flower-single-6c,an8flower-double-12c",
        methods=["se"],
        families=["localisation"],
        checkpoints=None,
        seeds=2,
        explain_seeds=2,
    )
    res = run(cfg)
    dims = {(r["dataset"], r["seed"]) for r in res["rows"]}
    assert dims == {(d, s) for d in cfg.datasets for s in (0, 1)}
    assert set(res["models"]) == set(cfg.datasets)
    assert {r["family"] for r in res["rows"]} == {"localisation"}
    assert Run(tmp_path / "run").blocks() == [(d, s) for d in cfg.datasets for s in (0, 1)]


def test_ranking_uses_the_vocabulary_fastest_first(first_run):
    tmp, _, res = first_run
    r = Run(tmp / "run")
    ms = {row["method"]: row["value"] for row in res["rows"] if row["metric"] == "ms_per_image"}
    ranked = [row.method for row in r.ranking("ms_per_image")]
    assert ranked == sorted(ms, key=ms.get), "the fastest method first"
    assert r.higher_is_better("ms_per_image") is False
    assert r.higher_is_better("cost_ratio") is False
    assert res["metrics"]["ms_per_image"]["direction"] == "lower"


def test_the_machine_load_is_recorded_and_a_busy_one_warned_under_the_cost_rows(
    first_run, monkeypatch
):
    import os

    from squeezex.bench import format_table
    from squeezex.bench.cells import machine_load
    from squeezex.bench.tables import busy_lines

    _, _, res = first_run
    cores = len(os.sched_getaffinity(0))
    own = min(torch.get_num_threads(), cores)
    load = res["load"]["an8flower-single-6c/0/se"]
    assert load["cores"] == cores and load["busy"] == (load["load_1min"] - own > cores / 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (float(own), 0.0, 0.0))
    assert machine_load()["busy"] is False, "this run alone is not a busy machine"
    quiet = {**res, "load": {k: {**v, "busy": False} for k, v in res["load"].items()}}
    assert busy_lines(quiet, "an8flower-single-6c", 0) == []
    assert "WARNING" not in format_table(quiet)
    monkeypatch.setattr(os, "getloadavg", lambda: (2 * cores + 1.0, 0.0, 0.0))
    assert machine_load() == {"load_1min": 2 * cores + 1.0, "cores": cores, "busy": True}
    busy = {**res, "load": {"an8flower-single-6c/0/se": machine_load()}}
    (line,) = busy_lines(busy, "an8flower-single-6c", 0)
    assert line.startswith("WARNING: se timed while the machine was busy") and str(cores) in line
    table = format_table(busy)
    assert table.index(line) > table.index("ms_per_image"), "under the cost rows"


def test_cost_is_timed_in_rounds_against_a_forward_pass_on_the_same_batch(first_run):
    import time
    from types import SimpleNamespace

    from squeezex.bench.cells import TIMING_ROUNDS, time_against_forward

    calls = []

    class Slow:  # 20 ms a call, whatever the batch
        def attribute(self, x, target=None):
            calls.append(len(x))
            time.sleep(0.02)
            return x

    cfg = SimpleNamespace(device="cpu", batch_size=4)
    unit = SimpleNamespace(
        cfg=cfg, x=torch.rand(10, 3, 8, 8), y=torch.zeros(10, dtype=torch.long),
        model=torch.nn.Identity(),
    )  # fmt: skip
    t = time_against_forward(Slow(), unit)
    assert calls == [4] * (1 + TIMING_ROUNDS), "a warm-up, then every round on one batch"
    assert t["ms_per_image"] >= 20 / 4 > t["forward_ms_per_image"]
    _, _, res = first_run
    rows = {r["method"]: r["value"] for r in res["rows"] if r["metric"] == "cost_ratio"}
    ms = {r["method"]: r["value"] for r in res["rows"] if r["metric"] == "ms_per_image"}
    assert rows and all(v > 0 for v in rows.values()) and set(rows) == set(ms)


def test_every_metric_of_a_methods_all_run_has_a_direction(tmp_path, monkeypatch):
    from dataclasses import replace

    from squeezex.bench import cells
    from squeezex.explainers import registry

    # what is checked (every metric's direction and family, which methods apply) does not
    # depend on how long a method runs: torchcam's noise CAMs take two draws, not 8–10
    # (each draw is a Score-CAM), and the cost is timed in one short round
    image = registry._REGISTRY["image"]
    for name in ("tc-sscam", "tc-iscam"):
        if name in image:
            monkeypatch.setitem(image, name, replace(image[name], preset={"num_samples": 2}))
    monkeypatch.setattr(cells, "TIMING_BUDGET_S", 0.0)
    cfg = _cfg(tmp_path, methods=["all"], n_test_per_class=1, checkpoints=None)
    res = run(cfg)
    names = {r["metric"] for r in res["rows"]}
    assert {"sanity_top", "ms_per_image", "cost_ratio", "deletion_auc", "gini"} <= names
    assert names <= set(METRICS), f"not in the vocabulary: {names - set(METRICS)}"
    for n in names:
        m = METRICS[n]
        assert m.direction in ("higher", "lower") or m.reason, n
        assert {r["family"] for r in res["rows"] if r["metric"] == n} == {m.family}
    scored = {r["method"] for r in res["rows"] if r["kind"] == "method"}
    skipped = {k.split("/")[2]: why for k, why in res["skipped"].items()}
    assert scored | set(skipped) == set(cfg.methods) and not scored & set(skipped)
    assert skipped.keys() == {"rollout"}, "only rollout does not apply to a CNN"
    assert "has none" in skipped["rollout"]
    assert {"pgc-scorecam", "tc-layercam", "pgc-ablationcam"} <= scored, "the adapters"


def test_latex_marks_the_best_method_per_metric_by_the_vocabulary():
    rows = [
        dict(dataset="d", seed=0, method=m, metric=k, family="f", value=v, ci_low=v,
             ci_high=v, n=1, kind=kind)
        for m, k, v, kind in [
            ("a", "pointing_game", 0.5, "method"),
            ("b", "pointing_game", 0.9, "method"),
            ("oracle", "pointing_game", 1.0, "reference"),
            ("a", "ms_per_image", 1.0, "method"),
            ("b", "ms_per_image", 20.0, "method"),
            ("a", "gini", 0.3, "method"),
            ("b", "gini", 0.6, "method"),
        ]
    ]  # fmt: skip
    tex = latex_table({"rows": rows, "dataset": "d"})
    assert r"b & \textbf{0.900} & 20.000 & 0.600 \\" in tex
    assert r"a & 0.500 & \textbf{1.000} & 0.300 \\" in tex, "the fastest is bolded"
    assert r"oracle (ref) & 1.000 &  &  \\" in tex, "references are not ranked"
    assert tex.count(r"\begin{tabular}") == 1 and r"\bottomrule" in tex


def test_bad_config_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset mnist.*an8flower-single-6c"):
        BenchConfig(dataset="mnist")
    with pytest.raises(ValueError, match="explain_seeds"):
        BenchConfig(seeds=1, explain_seeds=2)
    with pytest.raises(ValueError, match="unknown metric family"):
        BenchConfig(families=["vibes"])
    with pytest.raises(ValueError, match="unknown device 'nope'"):
        BenchConfig(device="nope")
    with pytest.raises(ValueError, match="seed must be >= 0"):
        BenchConfig(seed=-1)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            BenchConfig(device="cuda")
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(ValueError, match="file"):
            run(BenchConfig(out=str(out), **TINY))


def test_results_whose_rows_lack_fields_are_named(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"schema": 4, "rows": [{"value": 1}]}))
    with pytest.raises(CorruptRunError, match="row 0 lacks fields"):
        Run(tmp_path)


def test_an_empty_run_folder_is_named(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"schema": 4, "rows": []}))
    with pytest.raises(CorruptRunError, match="no results yet"):
        Run(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"schema": 3, "rows": [{}]}))
    with pytest.raises(CorruptRunError, match="older squeezex"):
        Run(tmp_path)


def test_a_changed_dataset_default_recomputes_its_cells(tmp_path, monkeypatch):
    """Registered defaults (a dataset's test size, epochs, pointing tolerance) are not in
    the run's fingerprint: the cells remember the spec and the model they were made
    from, and are recomputed when either changed."""
    from dataclasses import replace

    from squeezex.datasets import registry as R

    cfg = _cfg(tmp_path, methods=["random"], families=["localisation"])
    first = run(cfg)
    assert first["pointing_tolerance"] == {}
    spec = R.get_dataset("an8flower-single-6c")
    monkeypatch.setitem(R._REGISTRY, spec.name, replace(spec, pointing_tolerance=3))
    changed = run(cfg)
    assert changed["cells"] and not any(c["reused"] for c in changed["cells"])
    assert changed["pointing_tolerance"] == {"an8flower-single-6c": 3}
    again = run(cfg)
    assert all(c["reused"] for c in again["cells"])


def test_a_retrained_checkpoint_of_the_same_name_recomputes_the_cells(tmp_path):
    """A checkpoint deleted and retrained keeps its name (its training key): the cells
    record its digest too, so they are not passed off as the new model's."""
    cfg = _cfg(tmp_path, methods=["random"], families=["localisation"], own_checkpoints=True)
    run(cfg)
    (ckpt,) = Path(cfg.checkpoints).glob("*-se-0-*.pt")
    saved = torch.load(ckpt, weights_only=False)
    state = saved["state_dict"] if "state_dict" in saved else saved
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 0.01  # same name, other weights: a retrained model
    torch.save(saved, ckpt)
    again = run(cfg)
    assert again["cells"] and not any(c["reused"] for c in again["cells"])
