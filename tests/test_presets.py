"""Named configurations: the demo, the notebooks' shared run, the full benchmark."""

import pytest

from squeezex.bench import BenchConfig, list_presets, preset
from squeezex.bench.presets import project_root
from squeezex.cli import _bench_config, _given, _parser


def test_presets_are_configs_with_their_folders_under_the_root(tmp_path):
    assert set(list_presets()) == {"demo", "notebooks", "full"}
    demo = preset("demo", root=tmp_path)
    assert demo.seeds == 1 and demo.dataset == "scenes-6c"
    assert set(demo.families) == {"localisation", "faithfulness", "cost"}
    assert demo.out == str(tmp_path / "data/runs/demo")
    assert demo.checkpoints == str(tmp_path / "data/checkpoints")
    full = preset("full", root=tmp_path)
    defaults = BenchConfig()
    assert (full.dataset, full.seeds, full.families) == (
        defaults.dataset,
        defaults.seeds,
        defaults.families,
    )


def test_the_notebooks_run_shrinks_under_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("SQUEEZEX_SMOKE", "1")
    small = preset("notebooks", root=tmp_path)
    monkeypatch.delenv("SQUEEZEX_SMOKE")
    big = preset("notebooks", root=tmp_path)
    assert small.n_test_per_class < big.n_test_per_class
    assert set(big.methods) - set(small.methods) == {"occlusion", "integrated-gradients"}
    assert small.n_train_per_class >= 150  # the scenes need that many to be learnt


def test_overrides_and_bad_names():
    assert preset("demo", seeds=2, out="x").seeds == 2
    with pytest.raises(ValueError, match="unknown preset 'quick': choose from demo"):
        preset("quick")
    with pytest.raises(ValueError, match="preset 'demo'.*epochz"):
        preset("demo", epochz=3)
    with pytest.raises(ValueError, match="seeds"):
        preset("demo", seeds=0)


def test_the_root_is_the_checkout_from_any_folder_inside_it(tmp_path):
    (tmp_path / "squeezex").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    assert project_root(tmp_path / "notebooks") == tmp_path
    assert project_root(tmp_path.parent) == tmp_path.parent  # no checkout: the folder itself


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--preset", "demo"], {"seeds": 1, "dataset": "scenes-6c"}),
        # an option given wins, even when it equals the option's own default (3)
        (["--preset", "demo", "--seeds", "3"], {"seeds": 3, "dataset": "scenes-6c"}),
        (["--preset", "demo", "--n-tr", "7"], {"n_train_per_class": 7, "seeds": 1}),
        (["--seeds", "2"], {"seeds": 2, "dataset": BenchConfig().dataset}),
    ],
)
def test_the_command_line_starts_from_the_preset(argv, expected):
    argv = ["bench", *argv, "--out", "somewhere"]
    args = _parser(argv).parse_args(argv)
    args.given = _given(argv, "bench")
    cfg = _bench_config(args)
    assert {k: getattr(cfg, k) for k in expected} == expected and cfg.out == "somewhere"
