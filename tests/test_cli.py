"""The command line: a tiny benchmark run end to end, and one-line errors with status 2."""

import csv
import json
import math
import subprocess
import sys

import pytest

from squeezex.cli import main


def test_bench_writes_the_schema(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "bench",
            "--dataset",
            "an8flower-single-6c",
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
    assert methods == {
        "se",
        "gradcam",
        "vebi",
        "random",
        "centre",
        "silhouette",
        "oracle",
        "constant",
    }
    for r in res["rows"]:
        assert set(r) >= {"dataset", "seed", "method", "metric", "family", "value", "n"}
        if r["n"] == 0:  # no finite value: a sanity step whose maps all went constant
            assert r["metric"] in ("sanity_top", "sanity_all") and math.isnan(r["value"])
            continue
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
    assert not (out / "examples.png").exists(), "the harness draws nothing: figures do"
    assert not list(out.rglob("*.tmp")), "no temp files left behind"


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--methods", "se,nope"], "unknown method(s) nope"),
        (["bench", "--seeds", "0"], "expected a number >= 1"),
        (["bench", "--dataset", "mnist"], "invalid dataset mnist (choose from an8flower"),
        (["bench", "--device", "nope", "--n-train", "1"], "unknown device 'nope'"),
        (["generate", "--dataset", "mnist", "--out", "x"], "invalid choice: 'mnist'"),
        (["bench", "--families", "vibes"], "invalid metric family vibes"),
        (["bench", "--epochs", "two"], "expected a whole number"),
        (["bench", "--seed", "-1"], "argument --seed: expected a number >= 0"),
        (["bench", "--vebi-mu", "0"], "argument --vebi-mu: expected a finite number > 0"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message, capsys):
    assert _main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def _main(args) -> int:
    """``main(args)`` in this process, argparse's exit included (the subprocess tests below
    check that ``python -m squeezex`` behaves the same)."""
    try:
        return main(args)
    except SystemExit as exc:
        return exc.code


def _squeezex(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "squeezex", *args], capture_output=True, text=True, cwd=cwd
    )


def test_output_folders_that_cannot_be_written_exit_2_with_one_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    run = tmp_path / "empty-run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({"schema": 4, "rows": []}))
    cases = [
        (["bench", "--out", str(afile), "--quiet"], "is a file, not a folder"),
        (["bench", "--out", str(afile / "sub"), "--quiet"], "a part of its path is a file"),
        (["figures", "--results", str(run), "--out", str(afile)], "is a file, not a folder"),
        (["figures", "--results", str(run)], "holds no results yet"),
        (["generate", "--out", str(afile / "x")], "a part of its path is a file"),
    ]
    for args, message in cases:
        assert _main(args) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, lines)


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "--seeds", "0"], "expected a number >= 1"),
        (["bench", "--device", "nope"], "nope"),
    ],
)
def test_python_m_squeezex_exits_2_with_one_line(args, message):
    proc = _squeezex(*args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr


def test_an_unwritable_folder_is_named(tmp_path, monkeypatch):
    import tempfile

    from squeezex.io import ensure_folder

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ValueError, match="is not writable"):
        ensure_folder(tmp_path / "out")


def test_generate_writes_a_registered_dataset_the_folder_loader_reads(tmp_path, capsys):
    from squeezex.datasets import An8FlowerFolder

    out = tmp_path / "scenes"
    code = main(
        ["generate", "--dataset", "scenes-6c", "--n-per-class", "2", "--size", "48",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0 and "wrote 12 images" in capsys.readouterr().out
    ds = An8FlowerFolder(out)
    image, target, mask = ds[0]
    assert len(ds) == 12 and len(ds.classes) == 6
    assert image.shape == (3, 48, 48) and mask.shape == (1, 48, 48) and mask.any()


def test_help_and_version_answer_without_importing_torch():
    """The top-level help and --version import no torch (a command's options do)."""
    code = (
        "import sys\n"
        "from squeezex.cli import main\n"
        "for argv in (['--help'], ['--version']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "False"  # torch was not imported
    assert "squeezex 0." in out.stdout and "examples:" in out.stdout
    for command in ("bench", "explain", "figures", "generate"):
        assert command in out.stdout


def test_a_command_s_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--methods" in text and "--shard I/N" in text and "--submit" in text


def test_every_option_says_what_it_does_and_its_default():
    import argparse

    from squeezex.cli import _COMMANDS, _parser

    vague = []
    for name in _COMMANDS:
        (sub,) = [a for a in _parser([name])._actions if isinstance(a, argparse._SubParsersAction)]
        for action in sub.choices[name]._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = action.help or ""
            flag = isinstance(action, argparse._StoreTrueAction)
            if not text or not (flag or action.required or "default" in text):
                vague.append(f"{name} {action.option_strings[0]}")
    assert not vague, vague


def test_help_never_wraps_inside_a_method_name(capsys):
    from squeezex.explainers import list_explainers

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    lines = capsys.readouterr().out.splitlines()
    words = {w.strip(",()") for line in lines for w in line.split()}
    assert set(list_explainers()) <= words  # every name whole on one line
