"""The harness: resumable cells, tidy rows over datasets and seeds, CSV/LaTeX outputs."""

import json

import pytest

from squeezex.benchmark import BenchConfig, latex_table, run

TINY = dict(
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


def test_a_rerun_reuses_finished_cells_and_recomputes_missing_ones(tmp_path):
    cfg = BenchConfig(
        methods=["se", "random"],
        out=str(tmp_path / "run"),
        checkpoints=str(tmp_path / "ck"),
        **TINY,
    )
    first = run(cfg)
    assert [c["reused"] for c in first["cells"]] == [False] * len(first["cells"])
    cells = sorted((tmp_path / "run" / "cells").rglob("*.json"))
    assert {p.stem for p in cells} == {"se", "random", "centre", "silhouette", "oracle"}
    (tmp_path / "run" / "cells" / cells[0].relative_to(tmp_path / "run" / "cells")).unlink()
    again = run(cfg)
    reused = {c["key"].split("/")[-1]: c["reused"] for c in again["cells"]}
    assert reused == {n: n != cells[0].stem for n in reused}
    assert again["rows"] == first["rows"], "a reused cell gives the same rows"
    more = run(BenchConfig(**{**cfg.__dict__, "methods": ["se", "random", "gradcam"]}))
    assert {c["key"].split("/")[-1] for c in more["cells"] if not c["reused"]} == {"gradcam"}
    changed = run(BenchConfig(**{**cfg.__dict__, "deletion_steps": 5}))
    assert not any(c["reused"] for c in changed["cells"]), "other settings, other cells"
    assert not list((tmp_path / "run").rglob("*.tmp"))


def test_results_are_written_after_every_cell(tmp_path, monkeypatch):
    import squeezex.benchmark as B

    calls = {"n": 0}
    real = B._compute_cell

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user stops the run in the third cell
        return real(*args, **kwargs)

    monkeypatch.setattr(B, "_compute_cell", flaky)
    cfg = BenchConfig(
        methods=["se", "gradcam", "random"], out=str(tmp_path / "run"), checkpoints=None, **TINY
    )
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    partial = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {r["method"] for r in partial["rows"]} == {"se", "gradcam"}
    monkeypatch.setattr(B, "_compute_cell", real)
    done = run(cfg)
    assert [c["reused"] for c in done["cells"]][:2] == [True, True]
    assert {r["method"] for r in done["rows"]} >= {"se", "gradcam", "random", "oracle"}


def test_datasets_and_seeds_are_dimensions(tmp_path):
    cfg = BenchConfig(
        dataset="an8flower-single-6c,an8flower-double-12c",
        methods=["se"],
        families=["localisation"],
        out=str(tmp_path / "run"),
        checkpoints=None,
        **{**TINY, "seeds": 2},
        explain_seeds=2,
    )
    res = run(cfg)
    dims = {(r["dataset"], r["seed"]) for r in res["rows"]}
    assert dims == {(d, s) for d in cfg.datasets for s in (0, 1)}
    assert set(res["models"]) == set(cfg.datasets)
    assert {r["family"] for r in res["rows"]} == {"localisation"}


def test_latex_marks_the_best_method_per_metric():
    rows = [
        dict(
            dataset="d",
            seed=0,
            method=m,
            metric=k,
            family="f",
            value=v,
            ci_low=v,
            ci_high=v,
            n=1,
            kind=kind,
        )
        for m, k, v, kind in [
            ("a", "pointing_game", 0.5, "method"),
            ("b", "pointing_game", 0.9, "method"),
            ("oracle", "pointing_game", 1.0, "reference"),
            ("a", "checkerboard", 0.01, "method"),
            ("b", "checkerboard", 0.20, "method"),
        ]
    ]
    tex = latex_table(
        {
            "rows": rows,
            "dataset": "d",
            "higher_is_better": {"pointing_game": True, "checkerboard": False},
        }
    )
    assert r"b & \textbf{0.900} & 0.200 \\" in tex
    assert r"a & 0.500 & \textbf{0.010} \\" in tex
    assert r"oracle (ref) & 1.000 &  \\" in tex, "references are not ranked"
    assert tex.count(r"\begin{tabular}") == 1 and r"\bottomrule" in tex


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="unknown dataset mnist"):
        BenchConfig(dataset="mnist")
    with pytest.raises(ValueError, match="explain_seeds"):
        BenchConfig(seeds=1, explain_seeds=2)
    with pytest.raises(ValueError, match="unknown metric family"):
        BenchConfig(families=["vibes"])
