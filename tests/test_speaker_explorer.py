"""SpeakerExplorer and the plain functions behind it, without a kernel."""

import io

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from squeezex.datasets import SyntheticSpeakers
from squeezex.explainers.speakers import (
    SpeakerSEAttribution,
    fusion_importance,
    speaker_probabilities,
)
from squeezex.models import SpeakerNet
from squeezex.widgets import SpeakerExplorer
from squeezex.widgets import logic as L
from squeezex.widgets import render as R
from squeezex.widgets import speaker_logic as SL
from squeezex.widgets import speaker_render as SR


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


# Short, small clips keep the file fast (the widget does not care about the size).
FRAMES, SIZE = 8, 32


def _model(se: bool) -> SpeakerNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return SpeakerNet(se=se, frames=FRAMES, size=SIZE).eval()


@pytest.fixture(scope="module")
def model():
    return _model(se=True)


@pytest.fixture(scope="module")
def data():
    return SyntheticSpeakers(4, frames=FRAMES, size=SIZE, seed=0, split="test")


@pytest.fixture(scope="module")
def exp(model, data):
    return SL.explain_clip(model, data, 1, "se")


def _gid(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, f"expected one artist with gid {gid!r}, found {len(found)}"
    return found[0]


# -- plain functions -------------------------------------------------------------------------------
def test_explain_clip_matches_the_explainers_and_caches_facts_and_maps_apart(model, data):
    cache, stats = L.HeatmapCache(), {}
    e = SL.explain_clip(model, data, 2, "se", cache=cache, stats=stats)
    video, audio = data.frames[2:3], data.audio[2:3]
    v, a = SpeakerSEAttribution(model).attribute((video, audio))
    torch.testing.assert_close(e.visual, v[0, 0])
    torch.testing.assert_close(e.audio, a[0, 0])
    torch.testing.assert_close(e.facts.probs, speaker_probabilities(model, video, audio)[0])
    imp = fusion_importance(model, (video, audio))
    torch.testing.assert_close(e.facts.frame_importance, imp["frame"][0])
    torch.testing.assert_close(e.facts.clip_importance, imp["clip"][0])
    torch.testing.assert_close(e.facts.spectrogram, model.logmel(audio[:, : model.samples])[0, 0])
    assert e.clip.kind == data.kinds[2] and e.clip.label == int(data.labels[2])
    assert torch.equal(e.clip.frame_labels, data.frame_labels[2])
    assert stats == {"facts": 1, "maps": 1}
    again = SL.explain_clip(model, data, 2, "se", cache=cache, stats=stats)
    assert stats == {"facts": 1, "maps": 1} and again.visual is e.visual
    SL.explain_clip(model, data, 2, "random", cache=cache, stats=stats)
    assert stats == {"facts": 1, "maps": 2}  # another method: new maps, the same facts


def test_the_curve_plots_speaker_probabilities_against_the_frame_labels(model, data, exp):
    fig = Figure()
    ax = fig.subplots()
    SR.draw_curve(ax, exp, 3)
    line = _gid(ax, "probability")
    want = speaker_probabilities(model, data.frames[1:2], data.audio[1:2])[0]
    np.testing.assert_allclose(line.get_xdata(), np.arange(data.n_frames))
    np.testing.assert_allclose(line.get_ydata(), want.numpy(), rtol=1e-6)
    shaded = _gid(ax, "label").get_paths()[0].vertices[:, 1]  # the step fill's heights
    assert shaded.max() == float(data.frame_labels[1].max())


@pytest.mark.parametrize("t", [0, 3, FRAMES - 1])
def test_the_marker_follows_the_frame(exp, t):
    fig = Figure()
    spec_ax, curve_ax = fig.subplots(2)
    SR.draw_spectrogram(spec_ax, exp, t)
    band = _gid(spec_ax, "frame-marker")
    assert (band.get_x(), band.get_width()) == (t - 0.5, 1.0)  # frame t's 4 audio columns
    SR.draw_curve(curve_ax, exp, t)
    np.testing.assert_array_equal(_gid(curve_ax, "frame-marker").get_xdata(), [t, t])


def test_the_rendered_marker_moves_right_with_the_frame(exp):
    marker = np.round(np.array(to_rgb(SR.MARKER)) * 255)

    def marker_x(png: bytes) -> float:
        px = _pixels(png).astype(int)
        hit = (np.abs(px - marker) <= 8).all(-1)
        assert hit.sum() > 50, "the frame marker is not drawn"
        cols = np.nonzero(hit)[1]
        return (cols.min() + cols.max()) / 2  # the band's or the line's centre

    for render in (lambda t: SR.render_spectrogram(exp, t, 0.0), lambda t: SR.render_curve(exp, t)):
        xs = [marker_x(render(t)) for t in (0, 2, 4, 6)]
        steps = np.diff(xs)
        assert (steps > 0).all(), xs  # to the right, by equal steps (one frame each)
        np.testing.assert_allclose(steps, steps.mean(), rtol=0.1)


def test_frame_rendering_is_the_overlay_of_that_frame(exp):
    png = SR.render_frame(exp, 4, 0.5, mouth=True, scale=2)
    want = R.render_overlay(exp.clip.frames[4], exp.visual[4], exp.clip.masks[4], 0.5, 2)
    assert png == want and _pixels(png).shape == (2 * SIZE, 2 * SIZE, 3)
    assert SR.render_frame(exp, 5, 0.5) != SR.render_frame(exp, 4, 0.5)
    assert SR.render_frame(exp, 4, 0.5, mouth=False) != SR.render_frame(exp, 4, 0.5)


def test_importance_bars_show_the_clip_and_the_frame(exp):
    fig = Figure()
    ax = fig.subplots()
    SR.draw_importance(ax, exp, 6)
    for k, name in enumerate(("visual", "audio")):
        heights = [p.get_height() for p in ax.patches if p.get_gid() == name]
        want = [exp.facts.clip_importance[k], exp.facts.frame_importance[6][k]]
        np.testing.assert_allclose(heights, [float(w) for w in want])


# -- the widget ------------------------------------------------------------------------------------
def test_the_frame_slider_redraws_from_cached_maps_only(model, data):
    w = SpeakerExplorer(model, data, index=1)
    assert w.method.value == "se" and w.stats["maps"] == 1 and w.stats["facts"] == 1
    before = {k: getattr(w, k).value for k in ("frame_image", "spectrogram", "curve", "importance")}
    drawn = dict(w.stats["drawn"])
    w.frame.value = 5
    assert (w.stats["maps"], w.stats["facts"]) == (1, 1)  # nothing recomputed
    assert w.frame_image.value == SR.render_frame(w.explanation, 5, 0.55, True, w.scale)
    for k, v in before.items():
        assert getattr(w, k).value != v, f"{k} did not follow the frame"
    assert all(w.stats["drawn"][k] == drawn[k] + 1 for k in drawn)
    assert "frame <b>5</b>" in w.info.value and "frame 5" in w.frame_title.value

    drawn = dict(w.stats["drawn"])
    w.opacity.value = 0.9  # re-blends the two heatmap views only
    w.mouth.value = False  # the frame only
    assert {k: w.stats["drawn"][k] - drawn[k] for k in drawn} == {
        "frame": 2, "spectrogram": 1, "importance": 0, "curve": 0, "info": 0,
    }  # fmt: skip
    drawn = dict(w.stats["drawn"])
    w.method.value = "random"  # new maps, the same probabilities and importance
    assert (w.stats["maps"], w.stats["facts"]) == (2, 1)
    assert w.stats["drawn"]["curve"] == drawn["curve"]
    w.clip.value = 0
    w.clip.value = 1  # back: all from the cache
    assert (w.stats["maps"], w.stats["facts"]) == (3, 2)


def test_the_clip_picker_names_each_clips_kind_and_label(model, data):
    w = SpeakerExplorer(model, data, method="random")
    for (text, i), kind, label in zip(w.clip.options, data.kinds, data.labels, strict=True):
        assert text.startswith(f"{i}: {kind}") and SL.LABEL_NAMES[int(label)] in text
    assert list(w.method.options) == ["se", "gradcam", "random"]


def test_the_methods_are_the_registrys_audio_visual_ones(model, data, monkeypatch):
    """A method registered for audio-visual inputs is offered and explains, with no change
    to the widget (here a preset of the random floor with another seed)."""
    from squeezex.explainers import list_explainers, registry
    from squeezex.explainers.speakers import SpeakerRandom

    kind = SpeakerNet.input_kind
    extra = registry.ExplainerInfo(
        "random-7", SpeakerRandom, "another seed", base="random", preset={"seed": 7}, inputs=kind
    )
    monkeypatch.setitem(registry._REGISTRY, kind, {**registry._REGISTRY[kind], "random-7": extra})
    monkeypatch.setitem(registry._SEQUENCE, (kind, "random-7"), len(registry._SEQUENCE))
    assert SL.speaker_methods(model) == list_explainers(kind) == [
        "se", "gradcam", "random", "random-7"
    ]  # fmt: skip
    assert SL.speaker_methods(_model(se=False)) == ["gradcam", "random", "random-7"]
    w = SpeakerExplorer(model, data, method="random-7")
    v, a = SpeakerRandom(model, seed=7).attribute((data.frames[:1], data.audio[:1]))
    torch.testing.assert_close(w.explanation.visual, v[0, 0])
    torch.testing.assert_close(w.explanation.audio, a[0, 0])


def test_the_static_png_is_a_png_of_the_current_view(model, data):
    w = SpeakerExplorer(model, data, method="random", frame=3)
    bundle = w._repr_mimebundle_()
    png = bundle["image/png"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert _pixels(png).shape[1] >= 700  # readable, not a thumbnail
    assert w.to_png() == png  # deterministic
    w.frame.value = 4
    assert w.to_png() != png


def test_a_model_without_se_gets_a_note_instead_of_the_importance(data):
    plain = _model(se=False)
    w = SpeakerExplorer(plain, data, method="random")
    assert list(w.method.options) == ["gradcam", "random"]
    assert w.explanation.facts.frame_importance is None
    shown = [c for box in w.children for c in getattr(box, "children", ())]
    notes = [
        c for col in shown for c in getattr(col, "children", ()) if isinstance(c, type(w.info))
    ]
    assert any("se=False" in n.value for n in notes)
    assert w.importance not in [c for col in shown for c in getattr(col, "children", ())]
    assert w.to_png().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="se=True"):
        SL.explain_clip(plain, data, 0, "se")
    with pytest.raises(ValueError, match="se=False"):
        SR.draw_importance(Figure().subplots(), w.explanation, 0)


def test_bad_input_gets_a_clear_error(model, data, exp):
    with pytest.raises(ValueError, match="SpeakerNet.*got Linear"):
        SpeakerExplorer(nn.Linear(2, 2), data)
    with pytest.raises(ValueError, match=r"clip index 4 is out of range.*4 clips"):
        SpeakerExplorer(model, data, index=4)
    with pytest.raises(ValueError, match=r"clip index -1 is out of range"):
        SL.explain_clip(model, data, -1)
    with pytest.raises(ValueError, match=r"unknown method 'lime'.*\['se', 'gradcam', 'random'\]"):
        SpeakerExplorer(model, data, method="lime", methods=["se", "lime"])
    with pytest.raises(ValueError, match=r"method 'gradcam' is not among methods \['se'\]"):
        SpeakerExplorer(model, data, methods=["se"], method="gradcam")
    with pytest.raises(ValueError, match=f"frame {FRAMES} is out of range.*{FRAMES}"):
        SpeakerExplorer(model, data, frame=FRAMES)
    with pytest.raises(ValueError, match="frame -1 is out of range"):
        SR.render_frame(exp, -1)
    with pytest.raises(ValueError, match="opacity"):
        SR.render_frame(exp, 0, opacity=2.0)
    with pytest.raises(ValueError, match="map-style speakers dataset"):
        SpeakerExplorer(model, 42)
    with pytest.raises(ValueError, match="video must be"):
        SL.explain_clip(model, SyntheticSpeakers(1, frames=FRAMES, size=48), 0)
