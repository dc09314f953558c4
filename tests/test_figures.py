"""Paper figures from a run folder: what each figure draws, the files, determinism, the CLI."""

import contextlib
import io
import json
import math
import re
import shutil

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text

from squeezex import figures as F
from squeezex.bench import CorruptRunError, Run, latex_table
from squeezex.cli import main
from squeezex.figures.make import report_skips, task_jobs
from squeezex.metrics.vocabulary import METRICS
from squeezex.viz import MASK_COLOUR, blend, explanation_grid, outline, save_figure

METHODS = ["se", "gradcam", "vebi", "random"]
REFS = ["centre", "silhouette", "oracle", "constant"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny benchmark run (6 test images, 3 metric families) written by the CLI."""
    root = tmp_path_factory.mktemp("figrun")
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(
            [
                "bench",
                "--dataset",
                "an8flower-single-6c",
                "--n-train",
                "4",
                "--n-test",
                "1",
                "--epochs",
                "1",
                "--seeds",
                "1",
                "--size",
                "32",
                "--methods",
                ",".join(METHODS),
                "--families",
                "localisation,faithfulness,cost",
                "--out",
                str(root / "run"),
                "--checkpoints",
                str(root / "ckpt"),
                "--quiet",
            ]
        )
    assert code == 0
    return root / "run"


@pytest.fixture(scope="module")
def run(run_dir):
    return Run(run_dir)


@pytest.fixture(scope="module")
def written(run_dir, tmp_path_factory):
    """``squeezex figures`` twice: into the default folder and into another one."""
    other = tmp_path_factory.mktemp("figures-again")
    outputs = []
    for extra in ([], ["--out", str(other)]):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["figures", "--results", str(run_dir), "--dpi", "60", *extra])
        assert code == 0
        outputs.append(buf.getvalue())
    return run_dir / "figures", other, outputs


def _titles(fig, n_cols):
    return [fig.axes[j].get_title().replace("\n", "") for j in range(n_cols)]


# -- the figures ---------------------------------------------------------------------------------
def test_qualitative_grid_is_images_by_methods(run):
    data = run.data()
    n_classes = len(set(data["targets"].tolist()))
    fig = F.qualitative_grid(run)
    assert isinstance(fig, Figure)
    cols = 1 + len(METHODS)
    assert len(fig.axes) == n_classes * cols + 1  # + the colour bar
    assert _titles(fig, cols) == ["image", *METHODS]
    grid = np.array(fig.axes[:-1]).reshape(n_classes, cols)
    for i in range(n_classes):
        for j in range(cols):
            assert len(grid[i, j].images) == 1  # one picture: the image, map and outline blended
    # one image per class: the first of each, labelled with its class
    first = {}
    for i, t in enumerate(data["targets"].tolist()):
        first.setdefault(t, i)
    labels = [grid[i, 0].get_ylabel().replace("\n", " ") for i in range(n_classes)]
    assert labels == [data["classes"][t] for t in sorted(first)]
    # what is drawn is the one overlay renderer's blend of the run's image, map and mask
    i = first[sorted(first)[1]]
    want = blend(data["images"][i], run.maps("se")[i, 0], data["masks"][i])
    np.testing.assert_allclose(grid[1, 1].images[0].get_array(), want, atol=1e-6)
    edge = outline(data["masks"][i])
    assert edge.any() and np.allclose(want[edge], to_rgb(MASK_COLOUR)), "the mask is outlined"


def test_qualitative_grid_options(run):
    fig = F.qualitative_grid(run, methods=["vebi", "oracle"], indices=[0, 3, 5])
    assert len(fig.axes) == 3 * 3 + 1
    assert _titles(fig, 3) == ["image", "vebi", "oracle (ref)"]
    fig = F.qualitative_grid(run, references=True, indices=[0])
    refs = [f"{r} (ref)" for r in REFS]
    assert _titles(fig, 1 + len(METHODS) + len(REFS)) == ["image", *METHODS, *refs]
    with pytest.raises(KeyError, match="no method nope"):
        F.qualitative_grid(run, methods=["nope"])


@pytest.mark.parametrize("metric", ["pointing_game", "deletion_auc"])
def test_metric_bars_are_means_with_their_intervals(run, metric):
    fig = F.metric_bars(run, metric)
    (ax,) = fig.axes
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    ranking = run.ranking(metric)
    assert len(bars.patches) == len(METHODS) + len(REFS) == len(ranking)
    widths = [p.get_width() for p in bars.patches]
    np.testing.assert_allclose(widths, [r.value for r in ranking])
    # best first: the first bar is at the top (y axis inverted)
    lower = run.higher_is_better(metric) is False
    finite = [w for w in widths if math.isfinite(w)]
    assert finite == sorted(finite, reverse=not lower)
    ys = [p.get_y() + p.get_height() / 2 for p in bars.patches]
    assert ax.get_ylim()[0] > ax.get_ylim()[1] and ys == sorted(ys)
    segments = bars.errorbar.lines[2][0].get_segments()
    assert len(segments) == len(ranking)
    for seg, r in zip(segments, ranking, strict=True):
        np.testing.assert_allclose([seg[0][0], seg[1][0]], [r.ci_low, r.ci_high], atol=1e-12)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [r.method + (" (ref)" if r.kind == "reference" else "") for r in ranking]
    hatched = [bool(p.get_hatch()) for p in bars.patches]
    assert hatched == [r.kind == "reference" for r in ranking]
    assert ("lower" if lower else "higher") in ax.get_xlabel()


def test_metric_bars_without_references(run):
    (ax,) = F.metric_bars(run, "relevance_mass", references=False).axes
    (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars.patches) == len(METHODS)
    with pytest.raises(KeyError, match="no scores for metric 'gini'"):
        F.metric_bars(run, "gini")  # complexity was not scored


def _method_lines(ax):
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def test_faithfulness_curves_two_panels_with_auc(run):
    fig = F.faithfulness_curves(run)
    assert len(fig.axes) == 2
    names = METHODS + REFS
    auc = {
        mode: {r.method: r.value for r in run.ranking(f"{mode}_auc")}
        for mode in ("deletion", "insertion")
    }
    # one legend for the figure: each method with both areas, best first on the left
    # panel (deletion: lower is better), then the chance line
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    expected = {
        f"{m}{' (ref)' if m in REFS else ''}  {auc['deletion'][m]:.3f} | {auc['insertion'][m]:.3f}"
        for m in names
    }
    assert set(texts[:-1]) == expected
    left = [auc["deletion"][t.split()[0]] for t in texts[:-1]]
    assert left == sorted(left)
    n_classes = len(run.data()["classes"])
    assert texts[-1] == f"chance: 1/{n_classes} classes"
    for ax, mode in zip(fig.axes, ("deletion", "insertion"), strict=True):
        assert mode in ax.get_title() and "is better" in ax.get_title()
        lines = _method_lines(ax)
        assert len(lines) == len(names)
        for line in lines:
            m = line.get_label().removesuffix(" (ref)")
            np.testing.assert_allclose(line.get_ydata(), run.curves(m)[mode])
            np.testing.assert_allclose(line.get_xdata(), run.curves(m)["fractions"])
        chance = [ln for ln in ax.get_lines() if ln not in lines]
        assert len(chance) == 1 and np.allclose(chance[0].get_ydata(), 1 / n_classes)
    fig = F.faithfulness_curves(run, methods=["se", "vebi"])
    assert [len(_method_lines(ax)) for ax in fig.axes] == [2, 2]


def test_faithfulness_axes_fit_the_curves_and_the_legend_stays_outside(run):
    fig = F.faithfulness_curves(run)
    values = np.concatenate(
        [run.curves(m)[k] for m in METHODS + REFS for k in ("deletion", "insertion")]
    )
    level = 1 / len(run.data()["classes"])
    lo, hi = min(values.min(), level), max(values.max(), level)
    bottom, top = fig.axes[0].get_ylim()
    assert fig.axes[1].get_ylim() == (bottom, top)  # shared
    assert max(0, lo - 0.1 * (hi - lo)) <= bottom <= lo and hi <= top <= hi + 0.1 * (hi - lo)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent(renderer)), "the legend covers a panel"


def test_se_distribution_marks_the_paper_threshold(run):
    fig = F.se_distribution(run)
    ax = fig.axes[0]
    s = run.se_vectors()["s"].float()
    thr = s.mean(1) + 1.282 * s.std(1, unbiased=False)
    vlines = [ln for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1]
    assert len(vlines) == 1
    assert vlines[0].get_xdata()[0] == pytest.approx(float(thr.mean()), abs=1e-6)
    (hist,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    counts = sum(p.get_height() for p in hist.patches)
    assert counts == s.numel()  # every entry of every SE vector is in the histogram
    assert f"{float(thr.mean()):.3f}" in fig.legends[0].get_texts()[0].get_text()
    # the x axis spans the entries and the thresholds' band, not the whole of [0, 1]
    lo = min(float(s.min()), float(thr.min()))
    hi = max(float(s.max()), float(thr.max()))
    left, right = ax.get_xlim()
    assert max(0, lo - 0.1 * (hi - lo)) <= left <= lo and hi <= right <= min(
        1, hi + 0.1 * (hi - lo)
    )


def test_vebi_features_is_the_class_by_feature_grid(run, tmp_path):
    interp = run.interpretation()
    fig = F.vebi_features(run)
    assert isinstance(fig, Figure)
    cols = max(len(f) for f in interp.features)
    assert len(fig.axes) == len(interp.classes) * cols
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == sum(len(f) for f in interp.features)
    # a run without VEBI: no figure
    bare = tmp_path / "bare"
    shutil.copytree(run.root, bare, ignore=shutil.ignore_patterns("figures"))
    for p in bare.rglob("_vebi-interpretation.pt"):
        p.unlink()
    assert F.vebi_features(Run(bare)) is None


def test_cost_vs_localisation_scatter(run):
    fig = F.cost_vs_localisation(run)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    cost = run.cost()
    score = {r.method: r.value for r in run.ranking("pointing_game")}
    points = [c.get_offsets()[0] for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == len(METHODS)  # references have no cost
    for (x, y), m in zip(points, METHODS, strict=True):
        assert x == pytest.approx(cost[m]) and y == pytest.approx(score[m])
    labels = sorted(t.get_text() for t in ax.texts if isinstance(t, Annotation) and t.get_text())
    assert labels == sorted(METHODS)
    # the axes fit the points and their intervals, within the metric's bounds [0, 1]
    ys = [score[m] for m in METHODS] + [
        v
        for r in run.ranking("pointing_game")
        if r.method in METHODS
        for v in (r.ci_low, r.ci_high)
    ]
    bottom, top = ax.get_ylim()
    span = max(ys) - min(ys)
    assert max(0, min(ys) - 0.1 * span) <= bottom <= min(ys)
    assert max(ys) <= top <= min(1, max(ys) + 0.1 * span)
    # one forward pass (dashed, vertical) and the random maps' level (dotted, horizontal)
    fwd = run.results["timing"]["an8flower-single-6c/0/forward_ms_per_image"]
    assert _vline_at(ax, fwd) and _hline_at(ax, score["random"])
    texts = [t.get_text() for t in ax.texts if not isinstance(t, Annotation)]
    assert "= one forward pass" in texts and any("random" in t for t in texts)
    with pytest.raises(KeyError):
        F.cost_vs_localisation(run, metric="no_such_metric")


def _vline_at(ax, x) -> bool:
    return any(np.allclose(np.asarray(ln.get_xdata(), float), x) for ln in ax.get_lines())


def _hline_at(ax, y) -> bool:
    return any(np.allclose(np.asarray(ln.get_ydata(), float), y) for ln in ax.get_lines())


def test_method_styles_are_distinct(run):
    styles = F.method_styles(run)
    assert set(styles) == set(METHODS + REFS)
    assert len({styles[m]["color"] for m in METHODS}) == len(METHODS)
    assert len({styles[m]["color"] for m in REFS}) == len(REFS)
    assert not {styles[m]["color"] for m in METHODS} & {styles[m]["color"] for m in REFS}
    assert {styles[m]["linestyle"] for m in REFS} == {"-."}


def test_figures_leave_matplotlib_state_alone(run):
    import matplotlib
    import matplotlib.pyplot as plt

    before = dict(matplotlib.rcParams)
    figs = plt.get_fignums()
    F.metric_bars(run, "pointing_game")
    F.cost_vs_localisation(run)
    assert plt.get_fignums() == figs
    assert dict(matplotlib.rcParams) == before


# -- readable figures ---------------------------------------------------------------------------
def test_metric_labels_are_words_with_unit_and_direction():
    assert F.metric_label("cost_ratio") == "cost (× a forward pass, lower is better)"
    assert F.metric_label("ms_per_image") == "time per image (ms, lower is better)"
    assert F.metric_label("pointing_game") == "pointing game (share of images, higher is better)"
    assert F.metric_label("gini") == "Gini sparseness (0 to 1, no better direction)"
    assert F.metric_label("ms_per_image", extra="log scale") == (
        "time per image (ms, log scale, lower is better)"
    )
    assert F.metric_label("no_such_metric") == "no such metric (no better direction)"
    # every metric of the vocabulary has a label, whose direction is the vocabulary's;
    # METRIC_LABELS is a view of the vocabulary's labels (the one table)
    assert set(METRICS) <= set(F.METRIC_LABELS)
    assert F.METRIC_LABELS["cost_ratio"] == ("cost", "× a forward pass", None)
    words = {"higher": "higher is better)", "lower": "lower is better)"}
    for name, m in METRICS.items():
        label = F.metric_label(name)
        assert "_" not in label, label
        assert label.endswith(words.get(m.direction, "no better direction)")), label
        if m.unit == "ms":
            assert "(ms" in label


def _texts(fig) -> list[str]:
    """Every text drawn on ``fig``: titles, axis labels, legends, notes, tick labels."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _figures(run):
    """(name, figure) of every figure make_figures draws for the run's first block."""
    for name, make in task_jobs(run, run.datasets[0], run.seeds[0]):
        fig = make()
        if fig is not None:
            yield name, fig


def test_no_figure_text_is_a_snake_case_metric_key(run):
    keys = [k for k in METRICS if "_" in k]
    names = []
    for name, fig in _figures(run):
        names.append(name)
        for text in _texts(fig):
            assert not re.search(r"[A-Za-z]{2,}_[A-Za-z]{2,}", text), (name, text)
            assert not any(k in text for k in keys), (name, text)
    assert {"qualitative", "faithfulness", "road", "se-distribution", "vebi-features"} <= set(
        names
    ) and "bars-cost_ratio" in names


def test_cost_bars_mark_one_forward_pass(run):
    (ax,) = F.metric_bars(run, "cost_ratio").axes
    assert _vline_at(ax, 1.0) and "= one forward pass" in [t.get_text() for t in ax.texts]
    assert ax.get_xlim()[0] == 0  # the bars start on the axis
    assert ax.get_xlabel().replace("\n", " ") == "cost (× a forward pass, lower is better)"
    (ax,) = F.metric_bars(run, "ms_per_image").axes
    fwd = run.results["timing"]["an8flower-single-6c/0/forward_ms_per_image"]
    assert _vline_at(ax, fwd)
    # a localisation metric: the random maps' level; the ROC AUC: chance, 0.5
    (ax,) = F.metric_bars(run, "pointing_game").axes
    random = next(r.value for r in run.ranking("pointing_game") if r.method == "random")
    assert _vline_at(ax, random) and "random maps" in [t.get_text() for t in ax.texts]
    (ax,) = F.metric_bars(run, "auc").axes
    assert _vline_at(ax, 0.5) and "chance (0.5)" in [t.get_text() for t in ax.texts]
    # a share never runs past 1
    (ax,) = F.metric_bars(run, "pointing_game", references=True).axes
    assert ax.get_xlim()[1] <= 1.0 + 1e-12


def _colourbars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_heatmap_figures_have_one_labelled_colour_bar(run):
    (cb,) = _colourbars(F.qualitative_grid(run))
    assert cb.get_ylabel() == "relevance (min–max normalised per map)"
    # the bench's examples.png and the notebooks' grids: viz.explanation_grid
    data = run.data()
    maps = {m: run.maps(m)[:3] for m in METHODS}
    fig = explanation_grid(data["images"][:3], maps, data["masks"][:3])
    (cb,) = _colourbars(fig)
    assert "relevance" in cb.get_ylabel() and len(fig.axes) == 3 * (1 + len(METHODS)) + 1
    assert not _colourbars(explanation_grid(data["images"][:3], maps, colorbar=False))
    (cb,) = _colourbars(F.vebi_features(run, heat=True))
    assert "relevance" in cb.get_ylabel()


def test_one_legend_per_figure_outside_the_axes(run):
    for name, fig in _figures(run):
        inside = [ax for ax in fig.axes if ax.get_legend() is not None]
        assert len(fig.legends) + len(inside) <= 1, name
        if fig.legends:
            renderer = FigureCanvasAgg(fig).get_renderer()
            fig.draw(renderer)
            box = fig.legends[0].get_window_extent(renderer)
            for ax in fig.axes:
                if ax.axison:
                    assert not box.overlaps(ax.get_window_extent(renderer)), name


# -- make_figures and the command line -----------------------------------------------------------
def _expected(run):
    figs = ["qualitative", "faithfulness", "road", "se-distribution", "vebi-features"]
    figs += ["cost-vs-pointing_game"] + [f"bars-{m}" for m in run.metrics()]
    names = {f"{f}.{ext}" for f in figs for ext in ("pdf", "png")}
    tables = {"results.tex"} | {
        f"results-{fam}.tex" for fam in ("localisation", "faithfulness", "cost")
    }
    return names | tables | {"CAPTIONS.md", "examples.png"}  # examples: PNG only


def test_make_figures_writes_every_file(run, written):
    default, _, outputs = written
    files = {p.name for p in default.iterdir()}
    assert files == _expected(run)
    for p in default.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for p in default.glob("*.pdf"):
        assert p.read_bytes()[:5] == b"%PDF-"
    assert (default / "results.tex").read_text() == latex_table(run.results)
    fam = (default / "results-cost.tex").read_text()
    assert "ms\\_per\\_image" in fam and "pointing\\_game" not in fam
    # the command prints a short summary, not every path
    figures = {f for f in files if f.endswith((".pdf", ".png"))}
    tables = {f for f in files if f.endswith(".tex")}
    assert outputs[0].strip().splitlines() == [
        f"wrote {len({f.rsplit('.', 1)[0] for f in figures})} figures ({len(figures)} files: "
        "PDF, PNG) and "
        f"{len(tables)} LaTeX tables to {default}",
        f"captions: {default / 'CAPTIONS.md'}",
    ]


def test_captions_name_every_figure_file(run, run_dir, written):
    default, _, _ = written
    text = (default / "CAPTIONS.md").read_text()
    figures = sorted(p.name for p in default.iterdir() if p.suffix in (".pdf", ".png"))
    for name in figures:
        assert f"`{name}`" in text, name
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert sorted(headings) == sorted({n.rsplit(".", 1)[0] for n in figures})
    for entry in text.split("\n## ")[1:]:  # files, dataset and seed, then the caption
        body = entry.split("\n\n")
        assert "an8flower-single-6c, seed 0" in body[1] and len(body[2]) > 40, entry
    assert str(run_dir) in text and "an8flower-single-6c" in text
    assert "pointing game (share of images, higher is better)" in text.lower()
    assert "Cost (× a forward pass, lower is better)" in text
    assert "ROC AUC of the map" in text
    assert not re.search(r"^[^`#]*[a-z]{2,}_[a-z]{2,}[^`]*$", text.split("\n## ", 1)[1], re.M)


def test_figures_are_deterministic(written):
    first, second, _ = written
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        a, b = (first / name).read_bytes(), (second / name).read_bytes()
        assert a == b, f"{name} differs between two runs"
    png = (first / "qualitative.png").read_bytes()
    pdf = (first / "qualitative.pdf").read_bytes()
    assert b"Software" not in png and b"CreationDate" not in pdf and b"Producer" not in pdf


def test_each_file_is_independent_of_the_other_formats(run_dir, written, tmp_path):
    first, _, _ = written  # written as PDF and PNG
    for p in F.make_figures(run_dir, tmp_path, formats=("png",), dpi=60, verbose=False):
        if p.suffix == ".png":
            assert p.read_bytes() == (first / p.name).read_bytes(), p.name


def test_svg_has_no_date_and_is_deterministic(run, tmp_path):
    a = save_figure(F.metric_bars(run, "pointing_game"), tmp_path / "a.svg").read_bytes()
    b = save_figure(F.metric_bars(run, "pointing_game"), tmp_path / "b.svg").read_bytes()
    assert a == b and b"<svg" in a and b"dc:date" not in a


def test_make_figures_skips_what_the_run_lacks(run, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(run.root, bare, ignore=shutil.ignore_patterns("figures"))
    for name in ("_vebi-interpretation.pt", "_se-vectors.pt", "_test-split.pt"):
        for p in bare.rglob(name):
            p.unlink()
    paths = F.make_figures(bare, tmp_path / "out", formats=("png",), dpi=40)
    out = capsys.readouterr().out
    names = {p.name for p in paths}
    assert "bars-pointing_game.png" in names and "faithfulness.png" in names
    for skipped in ("qualitative", "se-distribution", "vebi-features"):
        assert f"{skipped}.png" not in names
        assert f"skipped {skipped}:" in out
    assert "no VEBI interpretation" in out
    assert all(p.is_file() for p in paths)


def test_skips_are_reported_once_per_figure_and_reason(capsys):
    skips = [
        ("road", "_a", "ValueError: no curves"),
        ("road", "_b", "ValueError: no curves"),
        ("qualitative", "_a", "FileNotFoundError: no test split"),
        ("speaker.gif", "", "FileNotFoundError: no maps"),
    ]
    report_skips(skips, verbose=True)
    assert capsys.readouterr().out.splitlines() == [
        "skipped road (_a, _b): ValueError: no curves",
        "skipped qualitative_a: FileNotFoundError: no test split",
        "skipped speaker.gif: FileNotFoundError: no maps",
    ]


@pytest.mark.parametrize("name", ["_test-split.pt", "_se-vectors.pt", "se.pt", "se.json"])
def test_a_damaged_run_file_is_an_error_not_a_skip(run, tmp_path, capsys, name):
    bare = tmp_path / "bare"
    shutil.copytree(run.root, bare, ignore=shutil.ignore_patterns("figures"))
    (path,) = bare.rglob(name)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(CorruptRunError, match=f"{name}.*rerun"):
        F.make_figures(bare, tmp_path / "out", formats=("png",), dpi=40)
    args = ["--out", str(tmp_path / "o2"), "--formats", "png", "--dpi", "40"]
    assert main(["figures", "--results", str(bare), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0], err


def test_make_figures_rejects_unknown_formats(run_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown format gif"):
        F.make_figures(run_dir, tmp_path, formats=("gif",))


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "no such folder"),
        ("empty", "no results.json"),
        ("invalid", "is not valid JSON"),
        ("not-results", "not a squeezex results file"),
    ],
)
def test_figures_cli_bad_input_exits_2(tmp_path, capsys, setup, message):
    folder = tmp_path / "run"
    if setup != "missing":
        folder.mkdir()
    if setup == "invalid":
        (folder / "results.json").write_text("{not json")
    if setup == "not-results":
        (folder / "results.json").write_text(json.dumps({"a": 1}))
    assert main(["figures", "--results", str(folder)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (folder / "figures").exists()


def test_figures_cli_bad_arguments_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["figures", "--results", str(tmp_path), "--formats", "gif"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid format gif" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        main(["figures"])
    assert e.value.code == 2
