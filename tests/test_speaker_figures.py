"""Figures of an audio-visual run: what make_figures writes for it, what each speaker
figure draws, the animated GIF, and the reader's spectrogram maps."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
import torch
from matplotlib.container import BarContainer
from matplotlib.patches import Rectangle
from PIL import Image, ImageSequence

from squeezex import figures as F
from squeezex.audio import log_mel
from squeezex.bench import BenchConfig, CorruptRunError, Run, run
from squeezex.figures import speakers as S
from squeezex.viz import blend

IMAGE_ONLY = ("qualitative", "attributes", "faithfulness", "road", "se-distribution",
              "vebi-features", "cost-vs-pointing_game")  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny speakers run: 20 test clips of 8 frames (every clip kind), three methods
    and FeatureAblation, the localisation, cost and modality families."""
    root = tmp_path_factory.mktemp("speakers")
    cfg = BenchConfig(
        dataset="speakers", methods=["se", "gradcam", "random"], seeds=1, size=32,
        n_train_per_class=16, n_test_per_class=20, out=str(root / "run"), checkpoints=None,
        families=["localisation", "cost", "modality"], progress=False,
    )  # fmt: skip
    run(cfg)
    return root / "run"


@pytest.fixture(scope="module")
def sp(run_dir):
    return Run(run_dir)


@pytest.fixture(scope="module")
def written(run_dir, tmp_path_factory):
    """make_figures twice (PNG and PDF), into two folders, with what it printed."""
    out = []
    for k in range(2):
        folder = tmp_path_factory.mktemp(f"speaker-figures-{k}")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            paths = F.make_figures(run_dir, folder, formats=("png", "pdf"), dpi=50)
        out.append((folder, paths, buf.getvalue()))
    return out


# -- make_figures ------------------------------------------------------------------------------
def test_make_figures_writes_the_speaker_figures_and_no_image_figure(sp, written):
    folder, paths, printed = written[0]
    names = {p.name for p in paths}
    assert names == {p.name for p in folder.iterdir()}
    figures = ["speaker-clips", "speaker-kinds"] + [
        f"bars-{m}" for m in ("frame_pointing_game", "speech_mass", "ms_per_clip", "cost_ratio")
    ]
    tables = {"results.tex"} | {f"results-{f}.tex" for f in ("localisation", "cost", "modality")}
    images = {f"{f}.{x}" for f in figures for x in ("png", "pdf")}
    assert names == images | tables | {"speaker.gif", "CAPTIONS.md"}
    for name in IMAGE_ONLY:
        assert not any(n.startswith(name + ".") for n in names), name
    assert "skipped" not in printed  # the image figures do not apply: nothing to report
    assert (folder / "speaker-clips.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_speaker_files_are_byte_stable(written):
    (first, _, _), (second, _, _) = written
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_a_missing_input_is_a_skip_with_its_reason(sp, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(sp.root, bare)
    for p in bare.rglob("_se-audio.pt"):
        p.unlink()
    names = {p.name for p in F.make_figures(bare, tmp_path / "out", formats=("png",), dpi=40)}
    out = capsys.readouterr().out
    assert "speaker-kinds.png" in names and "bars-speech_mass.png" in names
    assert "speaker-clips.png" not in names and "speaker.gif" not in names
    assert "skipped speaker-clips: FileNotFoundError: no spectrogram maps for 'se'" in out
    assert "skipped speaker.gif:" in out


# -- the reader ----------------------------------------------------------------------------------
def test_run_audio_maps(sp, tmp_path):
    data = sp.data()
    n, t = data["images"].shape[:2]
    a = sp.audio_maps("se")
    assert a.shape == (n, 1, 40, 4 * t) == (n, 1, *log_mel(data["audio"][0]).shape)
    assert a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1
    raw = torch.load(next(sp.root.rglob("_se-audio.pt")))
    assert raw.dtype == torch.uint8 and torch.equal(a, raw.float() / 255)
    assert not torch.equal(a, sp.audio_maps("gradcam"))
    with pytest.raises(FileNotFoundError, match="no spectrogram maps for 'feature-ablation'"):
        sp.audio_maps("feature-ablation")
    with pytest.raises(KeyError, match="no method 'vebi'"):
        sp.audio_maps("vebi")
    bare = tmp_path / "bare"
    shutil.copytree(sp.root, bare)
    (path,) = bare.rglob("_gradcam-audio.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptRunError, match="_gradcam-audio.pt.*rerun"):
        Run(bare).audio_maps("gradcam")
    torch.save(raw[:3], path)  # maps for another test split
    with pytest.raises(CorruptRunError, match=f"3 spectrogram maps for a cell of {n} clips"):
        Run(bare).audio_maps("gradcam")
    path.unlink()
    with pytest.raises(FileNotFoundError, match="no spectrogram maps for 'gradcam'"):
        Run(bare).audio_maps("gradcam")


# -- the figures ---------------------------------------------------------------------------------
def test_speaker_clips_draws_frames_maps_and_spectrograms(sp):
    data = sp.data()
    clips = S.default_clips(sp)
    kinds = [data["kinds"][i] for i in clips]
    assert kinds == ["speaking", "silent", "dubbed", "still"]  # one of each, in order
    fig = S.speaker_clips(sp, step=3)
    t = data["images"].shape[1]
    shown = list(range(0, t, 3))
    assert len(fig.subfigs) == len(clips) + 1
    for sub, i in zip(fig.subfigs, clips, strict=False):
        title = sub.get_suptitle()
        assert data["kinds"][i] in title and data["classes"][int(data["targets"][i])] in title
        axes = np.array(sub.axes).reshape(2, len(shown) + 1)  # SE, Grad-CAM
        assert [axes[r, 0].get_ylabel() for r in range(2)] == ["SE", "Grad-CAM"]
        assert [a.get_title() for a in axes[0, :-1]] == [f"frame {s + 1}" for s in shown]
        for r, m in enumerate(("se", "gradcam")):
            want = blend(data["images"][i, shown[1]], sp.maps(m)[i, 0, shown[1]],
                         data["masks"][i, shown[1]])  # fmt: skip
            np.testing.assert_allclose(axes[r, 1].images[0].get_array(), want, atol=1e-6)
            spec = axes[r, -1]
            heat = spec.images[0].get_array()
            np.testing.assert_allclose(
                heat, blend(S._spectrogram(data["audio"][i])[None], sp.audio_maps(m)[i, 0],
                            opacity=0.6), atol=1e-6)  # fmt: skip
            bars = [(p.get_x(), p.get_x() + p.get_width()) for p in spec.patches
                    if isinstance(p, Rectangle)]  # fmt: skip
            speech = data["speech"][i].tolist()  # the bars are the speech segments
            assert sum(stop - start for start, stop in bars) == sum(speech)
            for start, stop in bars:
                start, stop = int(start), int(stop)
                assert all(speech[start:stop]) and not any(speech[start - 1 : start])
                assert not any(speech[stop : stop + 1])
    key = fig.subfigs[-1]  # the colour bar and the ground truth's key
    assert [ax.get_xlabel() for ax in key.axes][0] == "relevance (normalised per clip)"
    texts = [t.get_text() for ax in key.axes if ax.get_legend() for t in ax.get_legend().texts]
    assert texts == ["mouth outline (ground truth)", "speech in the audio (ground truth)"]


def test_speaker_kinds_bars_are_the_per_kind_rows(sp):
    fig = S.speaker_kinds(sp)
    assert [ax.get_title() for ax in fig.axes] == [p[0] for p in S.PANELS]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["visual stream", "audio stream"]
    for ax, (_, _, vis, aud) in zip(fig.axes, S.PANELS, strict=True):
        groups = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
        assert groups == ["speaking", "silent", "dubbed", "still", "all clips"]
        containers = [c for c in ax.containers if isinstance(c, BarContainer)]
        for bars, metric in zip(containers, (vis, aud), strict=True):
            rows = {r["attribute"]: r for r in sp.attribute_rows(metric)}
            (total,) = [r for r in sp.block() if r["metric"] == metric]
            want = [rows[g]["value"] for g in groups[:-1]] + [total["value"]]
            np.testing.assert_allclose([p.get_height() for p in bars.patches], want)
            segs = bars.errorbar.lines[2][0].get_segments()
            lows = [rows[g]["ci_low"] for g in groups[:-1]] + [total["ci_low"]]
            np.testing.assert_allclose([min(s[0][1], s[1][1]) for s in segs], lows, atol=1e-9)
    results = json.loads(json.dumps(sp.results))
    results["rows"] = [r for r in results["rows"] if r["family"] != "modality"]
    results["attribute_rows"] = [r for r in results["attribute_rows"]
                                 if r["family"] != "modality"]  # fmt: skip
    with pytest.raises(ValueError, match="no modality rows"):
        S.speaker_kinds(Run(sp.root, results))


def test_speaker_bars_have_a_readable_axis(sp):
    for metric in ("frame_pointing_game", "speech_mass", "ms_per_clip"):
        (ax,) = S.speaker_bars(sp, metric).axes
        label = ax.get_xlabel()
        assert "_" not in label and "is better" in label, label
        (bars,) = [c for c in ax.containers if isinstance(c, BarContainer)]
        want = [r.value for r in sp.ranking(metric)]
        np.testing.assert_allclose([p.get_width() for p in bars.patches], want)


def test_the_old_module_still_works_and_says_where_it_moved():
    import importlib
    import sys

    sys.modules.pop("squeezex.speaker_figures", None)
    with pytest.warns(DeprecationWarning, match="squeezex.figures.speakers"):
        old = importlib.import_module("squeezex.speaker_figures")
    for name in [*S.__all__, "LABELS", "PANELS", "NAMES", "FPS"]:
        assert getattr(old, name) is getattr(S, name), name
    assert set(S.__all__) <= set(F.__all__)  # the package re-exports them too
    assert old.LABELS["ms_per_clip"] == (
        "milliseconds per clip",
        "time to explain one clip, both streams",
    )


# -- the GIF -------------------------------------------------------------------------------------
def test_gif_has_one_frame_per_video_frame_and_is_byte_stable(sp, written, tmp_path):
    data = sp.data()
    t = data["images"].shape[1]
    (folder, _, _) = written[0]
    gif = (folder / "speaker.gif").read_bytes()
    im = Image.open(io.BytesIO(gif))
    assert im.format == "GIF" and im.n_frames == t and im.info["loop"] == 0
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert len({f.tobytes() for f in frames}) == t  # every frame differs (its number, its map)
    assert "comment" not in im.info and b"matplotlib" not in gif.lower()
    a = S.save_speaker_gif(sp, tmp_path / "a.gif").read_bytes()
    b = S.save_speaker_gif(sp, tmp_path / "b.gif").read_bytes()
    assert a == b == gif == S.speaker_gif(sp)
    other = S.speaker_gif(sp, clip=S.default_clips(sp)[2], method="gradcam")
    assert other != gif and Image.open(io.BytesIO(other)).n_frames == t
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temp file left
