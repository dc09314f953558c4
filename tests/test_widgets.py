"""Explorer, Compare and the plain functions behind them, without a kernel."""

import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from squeezex import get_explainer
from squeezex.bench import Run, load_results
from squeezex.cli import main
from squeezex.explainers.se import SEAttribution
from squeezex.widgets import Compare, Explorer
from squeezex.widgets import logic as L
from squeezex.widgets import render as R


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 32, 32, generator=g)
    targets = torch.tensor([0, 1, 2, 3])
    masks = torch.zeros(4, 1, 32, 32, dtype=torch.bool)
    masks[:, :, 8:16, 8:16] = True
    return images, targets, masks


# -- plain functions -------------------------------------------------------------------------------
def test_overlay_blends_at_the_given_opacity_and_outlines_the_mask():
    image = torch.full((3, 4, 4), 0.5)
    heat = torch.zeros(4, 4)
    heat[0, 0] = 1.0
    plain = _pixels(R.render_overlay(image, heat, None, opacity=0.0, scale=1))
    assert (plain == 128).all()  # opacity 0: the image itself
    full = _pixels(R.render_overlay(image, heat, None, opacity=1.0, scale=1))
    import matplotlib

    cmap = matplotlib.colormaps["inferno"]
    np.testing.assert_allclose(full[0, 0], np.round(np.array(cmap(1.0)[:3]) * 255), atol=1)
    np.testing.assert_allclose(full[1, 1], np.round(np.array(cmap(0.0)[:3]) * 255), atol=1)
    half = _pixels(R.render_overlay(image, heat, None, opacity=0.5, scale=1))
    np.testing.assert_allclose(
        half[0, 0], (0.5 * 0.5 + 0.5 * np.array(cmap(1.0)[:3])) * 255, atol=1
    )
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 1:4, 1:4] = True
    outlined = _pixels(R.render_overlay(image, None, mask, scale=1))
    edge = (outlined != 128).any(-1)
    assert edge[1, 1] and edge[3, 3] and not edge[2, 2] and not edge[0, 0]  # the border only
    big = _pixels(R.render_overlay(image, heat, mask, scale=3))
    assert big.shape == (12, 12, 3)
    assert R.render_overlay(image, heat, mask) == R.render_overlay(image, heat, mask)
    with pytest.raises(ValueError, match="opacity"):
        R.render_overlay(image, heat, opacity=1.5)


def test_cache_evicts_the_least_recently_used():
    c = L.HeatmapCache(maxsize=2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # a is now the most recent
    c.put("c", 3)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3
    assert (c.hits, c.misses) == (3, 1)


def test_explain_sample_caches_and_only_the_tunable_se_method_uses_the_settings(se_model, data):
    images, _, _ = data
    ex = L.make_explainers(se_model, ["se", "se-paper", "gradcam"])
    cache = L.HeatmapCache()
    a = L.explain_sample(ex, images[0], 2, sample=0, cache=cache)
    assert cache.misses == 3
    torch.testing.assert_close(
        a["gradcam"], get_explainer("gradcam", se_model).attribute(images[:1], target=2)[0, 0]
    )
    L.explain_sample(ex, images[0], 2, sample=0, cache=cache)
    assert cache.misses == 3 and cache.hits == 3
    topk = L.SESettings("topk", k=0.05)
    b = L.explain_sample(ex, images[0], 2, sample=0, settings=topk, cache=cache)
    assert cache.misses == 4  # only "se" recomputed
    expected = SEAttribution(se_model).attribute(images[:1], selection="topk", k=0.05)[0, 0]
    torch.testing.assert_close(b["se"], expected)
    assert not torch.allclose(a["se"], b["se"])
    torch.testing.assert_close(a["se-paper"], b["se-paper"])


def test_sample_scores_are_the_metrics_on_one_sample():
    heat = torch.zeros(8, 8)
    heat[2, 2] = 1.0
    heat[6, 6] = 0.5
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[0, 1:4, 1:4] = True
    s = L.sample_scores({"m": heat}, mask)["m"]
    assert s["pointing_game"] == 1.0
    assert s["energy_pointing_game"] == pytest.approx(1.0 / 1.5)
    assert L.sample_scores({"m": heat}, None) == {}


def test_as_samples_accepts_tensors_and_datasets_and_names_bad_input(data):
    images, targets, masks = data
    get, n, classes = L.as_samples((images, targets, masks))
    x, t, m = get(2)
    assert n == 4 and t == 2 and m.shape == (1, 32, 32) and classes is None
    get, n, _ = L.as_samples((images.mul(255).to(torch.uint8), targets))
    assert get(0)[0].max() <= 1 and get(0)[2] is None
    with pytest.raises(ValueError, match="one target each"):
        L.as_samples((images, targets[:2]))
    with pytest.raises(TypeError, match="map-style dataset"):
        L.as_samples(42)
    with pytest.raises(ValueError, match="empty"):
        L.as_samples((images[:0], targets[:0]))


def test_se_vector_chart_marks_the_selection(se_model, data):
    images, _, _ = data
    v = L.se_vector(SEAttribution(se_model), images[0], L.SESettings("topk", k=4))
    assert int(v.selected.sum()) == 4
    png = R.render_se_vector(v)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == R.render_se_vector(v)


# -- Explorer -------------------------------------------------------------------------------------
PART = re.compile(r"<div class='sqx-(tiles|se|scores)' data-state='([^']*)'")


def _states(html: str) -> dict[str, str]:
    """The state each part of the Explorer's view says it shows (read from its HTML)."""
    return dict(PART.findall(html))


def test_explorer_redraws_only_what_a_control_changes(se_model, data):
    e = Explorer(se_model, data, methods=["se", "gradcam", "saliency"], classes=list("abcdef"))
    assert "squeezex-explorer" in e._dom_classes and "squeezex-view" in e.view._dom_classes
    assert re.findall(r"data-method='([^']*)'", e.view.value) == ["image", "se", "gradcam"]
    assert e.stats == {"computed": 2, "drawn": 3}
    se_png = e._pngs["se"]

    e.opacity.value = 0.9  # re-blend, no new maps
    assert e.stats == {"computed": 2, "drawn": 6}
    assert e._pngs["se"] != se_png

    e.method_picker.value = ("se", "gradcam", "saliency")  # one new map, one new tile
    assert e.stats == {"computed": 3, "drawn": 7}
    assert re.findall(r"data-method='([^']*)'", e.view.value)[-1] == "saliency"

    chart = e._parts["se"][1]
    e.rule.value = "topk"  # only SE recomputed and redrawn, plus its chart
    assert e.stats == {"computed": 4, "drawn": 8}
    assert e._parts["se"][1] != chart
    assert e.z.layout.display == "none" and e.k.layout.display is None

    e.sample.value = 2
    assert e.stats["computed"] == 7
    e.sample.value = 0  # every map of sample 0 is cached
    assert e.stats["computed"] == 7

    e.target.value = 4  # explaining another class: target-dependent maps recomputed
    assert e.stats["computed"] == 10
    assert "explaining <b>e</b>" in e.view.value
    assert "<td><b>gradcam</b></td>" in e.view.value

    bundle = e._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_explorer_tiles_chart_and_scores_always_show_one_state(se_model, data):
    """Every change swaps the three parts in one assignment of the view, after a busy
    indicator went up; an observer never sees two states at once."""
    e = Explorer(se_model, data, methods=["se", "gradcam", "saliency"], classes=list("abcdef"))
    events = []

    def on_view(change):
        states = _states(change["new"])
        assert set(states) == {"tiles", "se", "scores"}
        events.append(("view", set(states.values()), e.busy.value, e.sample.disabled))

    def on_busy(change):  # mid-update: the view still shows the old state, whole
        events.append(("busy", change["new"], set(_states(e.view.value).values())))

    e.view.observe(on_view, "value")
    e.busy.observe(on_busy, "value")
    changes = [
        ("sample", 2, "sample 2 · target"),
        ("target", 3, "target d · rule weighted"),
        ("rule", "paper", "rule paper z=1.282"),
        ("z", 1.5, "rule paper z=1.500"),
        ("sample", 1, "sample 1 · target d · rule paper z=1.500"),
        ("target", -1, "(predicted)"),
        ("method_picker", ("se", "saliency"), "sample 1"),
    ]
    for control, value, expect in changes:
        before = set(e.shown.values())
        events.clear()
        getattr(e, control).value = value
        kinds = [ev[0] for ev in events]
        assert kinds == ["busy", "view", "busy"], f"{control}: {events}"
        assert "computing" in events[0][1] and events[0][2] == before  # old state, unmixed
        (_, states, busy, disabled) = events[1]
        assert len(states) == 1 and expect in next(iter(states)), (control, states)
        assert "computing" in busy and disabled  # swapped while the indicator is up
        assert events[2][1] == "" and not e.sample.disabled and not e.rule.disabled
        assert set(e.shown.values()) == states
    events.clear()
    e.opacity.value = 0.3  # a quick re-blend: no indicator, one swap, same state
    assert [ev[0] for ev in events] == ["view"] and events[0][1] == states


def test_explorer_clears_the_busy_indicator_when_a_method_fails(se_model, data, monkeypatch):
    e = Explorer(se_model, data, methods=["se", "gradcam"])
    shown, view = e.shown, e.view.value

    def boom(*args, **kwargs):
        raise RuntimeError("explainer failed")

    monkeypatch.setattr(e.explainers["gradcam"], "attribute", boom)
    with pytest.raises(RuntimeError, match="explainer failed"):
        e.sample.value = 3
    assert e.busy.value == "" and not e.sample.disabled and not e.method_picker.disabled
    assert e.shown == shown and e.view.value == view  # the last consistent view stays
    assert e._s.index == 0  # nothing half-committed


def test_explorer_scores_name_their_mask_and_each_quantity_once(se_model, data):
    e = Explorer(se_model, data, methods=["se", "gradcam"], classes=list("abcdef"))
    html = e._parts["scores"][1]
    assert "pointing game ↑" in html and "mask AUC ↑" in html and "IoU ↑" in html
    assert "relevance mass" in html and html.count("relevance mass") == 1  # = energy
    assert "energy_pointing_game" not in html and "relevance_mass" not in html
    assert "scored against the mask of: <b>a</b> (true label)" in html
    e.target.value = 5  # another class than the mask's: said so
    html = e._parts["scores"][1]
    assert "mask of: <b>a</b> (true label)" in html and "the maps explain <b>f</b>" in html
    assert "relevance_mass" not in L.SCORES and L.score_label("deletion_auc").endswith("↓")
    from squeezex import metrics as M

    h, m = torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8) > 0.5
    torch.testing.assert_close(  # why it is shown once: one quantity under two names
        M.LOCALISATION["relevance_mass"](h, m), M.LOCALISATION["energy_pointing_game"](h, m)
    )


def test_explorer_z_is_the_papers_and_the_tiles_have_a_colour_bar(se_model, data):
    from squeezex.explainers.se import PAPER_Z

    e = Explorer(se_model, data, methods=["se"])
    assert e.z.value == PAPER_Z == 1.282 and e.z.readout_format == ".3f"
    assert round(e.z.value / e.z.step) * e.z.step == pytest.approx(PAPER_Z)  # on the grid
    assert f"alt='{R.COLORBAR_LABEL}'" in e.view.value
    bar = R.render_colorbar()
    assert bar == R.render_colorbar() and R.png_size(bar)[0] > 4 * R.png_size(bar)[1]
    assert "<img" in e._parts["se"][1] and "width='600'" in e._parts["se"][1]


def test_torch_threads_restores_the_setting():
    n = torch.get_num_threads()
    with L.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == n
    with pytest.raises(ValueError), L.torch_threads(1):
        raise ValueError
    assert torch.get_num_threads() == n
    with L.torch_threads(None):
        assert torch.get_num_threads() == n


def test_explorer_leaves_the_users_model_as_it_was(se_model, data):
    se_model.train()
    se_model.features[1].eval()  # a frozen BatchNorm
    flags = [m.training for m in se_model.modules()]
    before = {k: v.clone() for k, v in se_model.state_dict().items()}
    e = Explorer(se_model, data, methods=["se", "gradcam"])
    e.sample.value = 1
    e.method_picker.value = ("se",)
    assert [m.training for m in se_model.modules()] == flags, "no flag changed"
    for k, v in se_model.state_dict().items():
        torch.testing.assert_close(v, before[k], msg=f"{k} changed (BN statistics updated?)")


def test_explorer_takes_a_registered_dataset_by_name(se_model):
    from squeezex.datasets import get_dataset

    get, n, classes = L.as_samples("an8flower-single-6c")
    test_size = 6 * get_dataset("an8flower-single-6c").n_test  # the registered test split
    assert n == test_size and classes[0] == "red leaf" and get(0)[2].dtype == torch.bool
    e = Explorer(se_model, "an8flower-single-6c", methods=["se"])
    assert e.n == test_size and "red leaf" in str(e.target.options)


def test_explorer_on_faces_picks_an_attribute_and_scores_against_its_region():
    from squeezex.datasets import SyntheticFaces
    from squeezex.models import build_model

    faces = SyntheticFaces("test", n=4, seed=0)
    model = build_model("small", len(faces.classes), se=True, seed=0).eval()
    e = Explorer(model, faces, methods=["se-class", "gradcam"])
    assert e.target.description == "attribute" and "Wearing_Hat" in str(e.target.options)
    i = int(torch.nonzero(faces.targets[:, 3]).flatten()[0])  # a face with a hat
    e.sample.value = i
    e.target.value = 3
    assert torch.equal(e._mask[0], faces.masks[i, 3]) and "Wearing_Hat" in e.view.value
    assert "present" in e.view.value and "<table>" in e._parts["scores"][1]
    assert "scored against the region of: <b>Wearing_Hat</b>" in e._parts["scores"][1]
    hat = e._maps["gradcam"].clone()
    j = int(torch.nonzero(faces.targets[i] == 0).flatten()[0])  # an attribute it lacks
    e.target.value = j
    assert e._mask is None and "absent" in e.view.value and "no scores" in e._parts["scores"][1]
    assert not torch.equal(hat, e._maps["gradcam"])  # explained for the other attribute
    assert e.to_png()[:8] == b"\x89PNG\r\n\x1a\n"  # the static fallback too
    _, probs = L.predict(model, faces[i][0], multi_label=True)
    assert torch.allclose(probs, torch.sigmoid(model(faces[i][0][None])[0]).detach())


def test_explorer_names_bad_arguments(se_model, data):
    with pytest.raises(ValueError, match="methods is empty"):
        Explorer(se_model, data, methods=[])
    with pytest.raises(ValueError, match="must be among methods"):
        Explorer(se_model, data, methods=["se"], selected=["gradcam"])
    with pytest.raises(ValueError, match="unknown explainer 'no-such-method'"):
        Explorer(se_model, data, methods=["no-such-method"])


# -- the explorer of a task, and the old module paths ----------------------------------------------
def test_explorer_for_opens_the_explorer_the_datas_task_names(se_model, data):
    from squeezex.bench.tasks import get_task, resolve
    from squeezex.datasets import SyntheticFaces, SyntheticSpeakers, get_dataset
    from squeezex.models import SpeakerNet, build_model
    from squeezex.widgets import SpeakerExplorer, explorer_for, task_for

    for kind, widget in [("single-label", Explorer), ("multi-label", Explorer),
                         ("audio-visual", SpeakerExplorer)]:  # fmt: skip
        assert resolve(get_task(kind).explorer) is widget
    e = explorer_for(se_model, data, methods=["se"])  # no task declared: single-label
    assert type(e) is Explorer and e.methods == ["se"] and not e.multi_label
    e = explorer_for(se_model, "an8flower-single-6c", methods=["se"])  # a registered name
    assert type(e) is Explorer and e.n == 6 * get_dataset("an8flower-single-6c").n_test
    faces = SyntheticFaces("test", n=2, seed=0)  # declares its task: multi-label
    model = build_model("small", len(faces.classes), se=True, seed=0).eval()
    assert explorer_for(model, faces, methods=["se-class"]).target.description == "attribute"
    speaker = SpeakerNet(frames=8, size=32).eval()  # no task declared: the model's inputs
    clips = SyntheticSpeakers(2, frames=8, size=32, split="test")
    assert type(explorer_for(speaker, clips, method="random")) is SpeakerExplorer
    assert task_for(se_model, "speakers").name == "audio-visual"


def test_explorer_for_says_when_a_task_names_no_explorer(se_model, data, monkeypatch):
    from squeezex.bench.tasks import SingleLabel
    from squeezex.widgets import explorer_for

    monkeypatch.setattr(SingleLabel, "explorer", "")
    with pytest.raises(ValueError, match="'single-label' task kind names no explorer"):
        explorer_for(se_model, data)


def test_the_old_module_paths_still_work_and_say_where_they_moved(monkeypatch):
    import importlib
    import sys

    from squeezex.widgets import speaker_logic, speaker_render, speakers

    moved = {
        "squeezex.explore": [L, R],
        "squeezex.speaker_explorer": [speaker_logic, speaker_render, speakers],
    }
    for name, homes in moved.items():
        monkeypatch.delitem(sys.modules, name, raising=False)
        with pytest.warns(DeprecationWarning, match=f"{name} moved to squeezex.widgets"):
            old = importlib.import_module(name)
        public = [n for n in dir(old) if not n.startswith("_") and n != "warnings"]
        assert set(old.__all__) <= set(public)
        for n in public:  # the very objects of their new home
            home = [h for h in homes if hasattr(h, n)]
            assert home and getattr(old, n) is getattr(home[0], n), (name, n)


# -- runs and Compare ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    out = tmp / "run"
    args = ["bench", "--dataset", "an8flower-single-6c", "--n-train", "4", "--n-test", "2"]
    args += ["--epochs", "1", "--seeds", "1"]
    args += ["--size", "32", "--methods", "se,gradcam,random", "--out", str(out)]
    args += [
        "--checkpoints",
        str(tmp / "ckpt"),
        "--quiet",
        "--families",
        "localisation,faithfulness",
    ]
    assert main(args) == 0
    return out


def test_run_ranks_by_the_metric_direction_and_finds_best_and_worst(run_dir):
    run = Run(run_dir)
    rank = run.ranking("deletion_auc")  # lower is better
    assert [r.rank for r in rank] == list(range(1, len(rank) + 1))
    assert all(a.value <= b.value for a, b in zip(rank, rank[1:], strict=False))
    rank = run.ranking("pointing_game")
    assert all(a.value >= b.value for a, b in zip(rank, rank[1:], strict=False))
    v = run.samples("gradcam", "energy_pointing_game")
    best, worst = run.best_worst("gradcam", "energy_pointing_game", k=2)
    assert v[best[0]] == v.max() and v[worst[0]] == v.min()
    row = next(
        r for r in run.rows if r["method"] == "gradcam" and r["metric"] == "energy_pointing_game"
    )
    assert row["value"] == pytest.approx(v.mean())
    assert run.maps("se").shape == (len(v), 1, 32, 32)
    assert run.data()["images"].shape == (len(v), 3, 32, 32)
    curves = run.curves("se")
    steps = run.results["config"]["deletion_steps"]
    assert len(curves["deletion"]) == len(curves["fractions"]) == steps + 1
    with pytest.raises(KeyError, match="no metric|no scores"):
        run.ranking("no_such_metric")


def test_load_results_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="squeezex bench"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_results(tmp_path)


def test_compare_follows_metric_and_method(run_dir):
    c = Compare(run_dir, k=2)
    assert c.metric.value == "pointing_game"
    chart = c.chart.value
    c.metric.value = "deletion_auc"
    assert c.chart.value != chart
    assert c.method.options[0] == c.ranking()[0].method
    c.method.value = "gradcam"
    best, worst = c.samples.children
    assert "best gradcam" in best.children[0].value and len(best.children[1].children) == 2
    png = c._repr_mimebundle_()["image/png"]
    assert type(png) is bytes and png == c.chart.value  # bytes: what a kernel sends as base64


def test_compare_shows_its_ranking_sharp_unstretched_below_its_controls(run_dir):
    c = Compare(run_dir, k=2)
    controls, method, plots = c.children
    assert c.dataset in controls.children and method is c.method  # every control on top
    assert c.chart in plots.children and c.samples in plots.children
    w, h = R.png_size(c.chart.value)
    assert int(c.chart.width) * c.PIXEL_RATIO == w  # shown at half its pixels: sharp
    assert not c.chart.height and c.chart.layout.height == "auto"  # aspect ratio kept
    assert c.chart.layout.align_self == "flex-start"  # not stretched to the box's width
