"""The command line: a tiny benchmark run end to end, and one-line errors with status 2."""

import csv
import json
import subprocess
import sys

import pytest

from squeezex.cli import main


def test_bench_writes_the_schema(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "bench",
            "--n-train",
            "4",
            "--n-test",
            "2",
            "--epochs",
            "1",
            "--seeds",
            "2",
            "--size",
            "32",
            "--methods",
            "se,gradcam,vebi,random",
            "--out",
            str(out),
            "--checkpoints",
            str(tmp_path / "ckpt"),
            "--quiet",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "oracle (ref)" in table and "gradcam" in table and "pointing_game" in table
    res = json.loads((out / "results.json").read_text())
    assert res["dataset"] == "an8flower-single-6c" and res["seed"] == 0
    assert res["n_train"] == 24 and res["n_test"] == 12
    model = res["model"]
    for key in ("arch", "accuracy", "accuracy_without_se"):
        assert key in model
    assert len(model["accuracy_per_seed"]) == 2
    methods = {r["method"] for r in res["rows"]}
    assert methods == {"se", "gradcam", "vebi", "random", "centre", "silhouette", "oracle"}
    for r in res["rows"]:
        assert set(r) >= {"dataset", "seed", "method", "metric", "family", "value", "n"}
        if r["family"] in ("localisation", "artifact"):
            assert 0 <= r["value"] <= 1
        assert r["ci_low"] <= r["value"] <= r["ci_high"]
    assert (out / "results.tex").read_text().startswith(r"\begin{table}")
    assert {r["metric"] for r in res["rows"] if r["family"] == "artifact"} == {"checkerboard"}
    fit = res["fits"]["vebi"]
    assert fit["mu"] == 5 and len(fit["relevant_per_class"]) == 6
    assert fit["cache"].endswith("-vebi-mu5.pt")
    assert list((tmp_path / "ckpt").glob("*-se-0-*-vebi-mu5.pt")), "the fit is cached"
    assert "relevant features per class" in table
    assert {"forward_ms_per_image", "se_ms_per_image", "vebi_ms_per_image"} <= set(res["timing"])
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == len(res["rows"])
    assert (out / "examples.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("*.tmp")), "no temp files left behind"


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--methods", "se,nope"], "unknown method(s) nope"),
        (["bench", "--seeds", "0"], "expected a number >= 1"),
        (["bench", "--dataset", "mnist"], "invalid dataset mnist"),
        (["bench", "--families", "vibes"], "invalid metric family vibes"),
        (["bench", "--epochs", "two"], "expected a whole number"),
        (["bench", "--vebi-mu", "0"], "vebi_mu must be > 0"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message):
    proc = subprocess.run([sys.executable, "-m", "squeezex", *args], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
