"""Figures of an audio-visual (active-speaker) run: ``squeezex bench --dataset speakers``.

The image figures (the other figure kinds of :mod:`squeezex.figures`) do not apply to a
clip dataset; these do:

* :func:`speaker_clips` — one clip of each kind, a few frames with each method's visual
  heatmap, and the spectrogram with its audio heatmap and the speech segments;
* :func:`speaker_kinds` — how much each stream counts, by clip kind: fusion SE, the
  modality ablation and Captum's FeatureAblation;
* :func:`speaker_bars` — :func:`squeezex.figures.metric_bars` with a two-line axis label
  (the headline and gloss of the metric vocabulary's labels);
* :func:`speaker_gif` / :func:`save_speaker_gif` — one clip's per-frame heatmaps as an
  animated GIF (byte-stable: the same run gives the same bytes).

:func:`squeezex.figures.make_figures` writes them for every dataset of the audio-visual
task, which names :func:`speaker_jobs` as its figures
(:attr:`squeezex.bench.tasks.Task.figures`).

Example:
    >>> from squeezex.bench import Run
    >>> run = Run("data/runs/speakers")  # doctest: +SKIP
    >>> speaker_clips(run)  # doctest: +SKIP
    >>> save_speaker_gif(run, "speaker.gif")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ..audio import log_mel
from ..bench import Run
from ..io import atomic_write_bytes
from ..metrics.vocabulary import METRICS, direction_text, short_name
from ..viz import HEATMAP_CMAP, MASK_COLOUR, OKABE_ITO, ONE_COLUMN, STYLE, TWO_COLUMN, blend
from .bars import metric_bars
from .style import despine

__all__ = [
    "KINDS",
    "default_clips",
    "speaker_clips",
    "speaker_kinds",
    "speaker_bars",
    "speaker_gif",
    "save_speaker_gif",
    "speaker_jobs",
]

#: Clip kinds in the order the figures show them, with what makes each one.
KINDS = {
    "speaking": "the mouth moves with this audio's speech",
    "silent": "the mouth moves, the audio holds no speech",
    "dubbed": "the mouth moves with another voice",
    "still": "speech in the audio, the mouth closed",
}
#: Readable names of the speaker methods.
NAMES = {
    "se": "SE",
    "gradcam": "Grad-CAM",
    "random": "random",
    "feature-ablation": "FeatureAblation",
}
#: Axis labels of the metrics :func:`speaker_bars` draws, (name, what it measures): the
#: headline and gloss of every metric with a gloss in the metric vocabulary's labels.
LABELS = {
    k: (m.label.headline or short_name(k), m.label.gloss)
    for k, m in METRICS.items()
    if m.label.gloss
}
#: Video frames per second of the clips (:mod:`squeezex.audio` frames the audio on it).
FPS = 25
_SPEECH_BAND = (41.0, 44.0)  # where the speech bar sits above the 40 mel bands


# -- shared helpers ------------------------------------------------------------------------------
def _name(method: str) -> str:
    return NAMES.get(method, method)


def _clip_title(data: dict, i: int) -> str:
    kind = data["kinds"][i]
    label = data["classes"][int(data["targets"][i])]
    return f"{kind} clip (test clip {i}): {KINDS.get(kind, kind)}; labelled {label}"


def default_clips(run: Run, dataset: str | None = None) -> list[int]:
    """The first test clip of each kind, in the order of :data:`KINDS`."""
    kinds = list(run.data(dataset)["kinds"])
    order = [k for k in KINDS if k in kinds] + [k for k in dict.fromkeys(kinds) if k not in KINDS]
    return [kinds.index(k) for k in order]


def _methods(run: Run, methods) -> list[str]:
    """The map methods to show: ``methods``, or those of SE and Grad-CAM the run has."""
    if methods is not None:
        return list(methods)
    names = [m for m in ("se", "gradcam") if m in run.methods]
    if not names:
        raise KeyError(f"the run has neither an 'se' nor a 'gradcam' cell; it has {run.methods}")
    return names


def _spectrogram(wave: torch.Tensor) -> torch.Tensor:
    """The clip's log-mel spectrogram (mels × audio frames) scaled to [0, 1] for display:
    the 1st to 99th percentile of the clip, clipped."""
    s = log_mel(wave.float())
    lo, hi = torch.quantile(s.flatten(), torch.tensor([0.01, 0.99], dtype=s.dtype))
    return ((s - lo) / (hi - lo).clamp_min(1e-6)).clamp(0, 1)


def _runs(flags) -> list[tuple[int, int]]:
    """``[(start, stop)]`` of the runs of True in a bool sequence."""
    out, start = [], None
    for t, f in enumerate([*map(bool, flags), False]):
        if f and start is None:
            start = t
        elif not f and start is not None:
            out.append((start, t))
            start = None
    return out


def _spectrogram_panel(
    ax, spec, heat, speech, shown=(), xlabel: bool = True, fontsize: float = 5
) -> None:
    """The spectrogram (low bands at the bottom) blended with ``heat``, x in video frames,
    the speech segments as a bar above it, and ticks at the ``shown`` frames (labelled
    with ``xlabel``)."""
    n = len(speech)
    ax.imshow(blend(spec[None], heat, opacity=0.6), origin="lower", aspect="auto",
              extent=(0, n, 0, spec.shape[0]), interpolation="nearest")  # fmt: skip
    for a, b in _runs(speech):
        ax.add_patch(Rectangle((a, _SPEECH_BAND[0]), b - a, _SPEECH_BAND[1] - _SPEECH_BAND[0],
                               color=MASK_COLOUR, lw=0))  # fmt: skip
    ax.set_xlim(0, n)
    ax.set_ylim(0, _SPEECH_BAND[1] + 0.5)
    ax.set_yticks([spec.shape[0] / 2, sum(_SPEECH_BAND) / 2], ["mel bands", "speech"])
    ticks = list(shown) or list(range(0, n, max(1, n // 4)))
    ax.set_xticks([t + 0.5 for t in ticks], [str(t + 1) for t in ticks] if xlabel else [])
    ax.tick_params(length=0, labelsize=fontsize, pad=1.5)
    ax.tick_params(axis="x", length=1.5, width=0.4)
    if xlabel:
        ax.set_xlabel(f"video frame ({FPS} per second)", fontsize=fontsize + 1, labelpad=1)
    for side in ax.spines.values():
        side.set_visible(False)


# -- the clips -----------------------------------------------------------------------------------
def speaker_clips(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    methods: list[str] | None = None,
    clips: list[int] | None = None,
    step: int = 3,
    width: float = TWO_COLUMN,
) -> Figure:
    """Clips × methods: every ``step``-th frame with the method's visual heatmap (the
    mouth outlined), and the clip's spectrogram with its audio heatmap, the speech
    segments as a bar above it (ticks at the frames shown).

    Args:
        run: an audio-visual run.
        dataset, seed: which cell of the run (default: the first of each).
        methods: one row per method per clip (default: ``se`` and ``gradcam``).
        clips: test clips, one block each (default: the first clip of each kind).
        step: show frames 1, 1 + step, … (1-based), and the last one when it is half a
            step or more after them.
        width: figure width in inches.

    Returns:
        A figure with one subfigure per clip (titled with its kind and label) holding
        ``len(methods)`` rows of frames + one spectrogram, and a last one with the colour
        bar and the key.
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    names = _methods(run, methods)
    data = run.data(dataset)
    clips = default_clips(run, dataset) if clips is None else list(clips)
    if not clips or not names:
        raise ValueError("no clips or no methods to show")
    n_frames = data["images"].shape[1]
    shown = list(range(0, n_frames, step))
    if shown[-1] != n_frames - 1 and (n_frames - 1 - shown[-1]) * 2 >= step:
        shown.append(n_frames - 1)
    maps = {m: run.maps(m, dataset, seed) for m in names}
    audio = {m: run.audio_maps(m, dataset, seed) for m in names}
    spec_ratio = 3.2
    cell = min(0.62, (width - 0.6) / (len(shown) + spec_ratio))
    block = len(names) * (cell + 0.04) + 0.32
    heights = [block] * (len(clips) - 1) + [block + 0.22, 0.5]  # the last: + the time axis
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, sum(heights)), layout="constrained")
        subs = fig.subfigures(len(clips) + 1, 1, height_ratios=heights)
        for k, (sub, i) in enumerate(zip(subs[:-1], clips, strict=True)):
            spec = _spectrogram(data["audio"][i])
            axes = sub.subplots(len(names), len(shown) + 1, squeeze=False,
                                width_ratios=[1] * len(shown) + [spec_ratio])  # fmt: skip
            sub.suptitle(_clip_title(data, i), fontsize=7, x=0.01, ha="left")
            for r, m in enumerate(names):
                _frames_row(axes[r, :-1], data, i, maps[m][i, 0], shown, r == 0)
                axes[r, 0].set_ylabel(_name(m), fontsize=7)
                last = r == len(names) - 1
                _spectrogram_panel(axes[r, -1], spec, audio[m][i, 0], data["speech"][i], shown,
                                   xlabel=last and k == len(clips) - 1)  # fmt: skip
        _key(subs[-1])
    return fig


def _frames_row(axes, data: dict, i: int, heat: torch.Tensor, shown, titles: bool) -> None:
    """The ``shown`` frames of clip ``i`` with ``heat`` (T×H×W) and the mouth outlined."""
    for ax, t in zip(axes, shown, strict=True):
        ax.imshow(blend(data["images"][i, t], heat[t], data["masks"][i, t]),
                  interpolation="nearest")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        if titles:
            ax.set_title(f"frame {t + 1}", fontsize=6, pad=2)


def _key(sub) -> None:
    """The colour bar of the heatmaps and the key of the ground truth, side by side."""
    cax, lax = sub.subplots(1, 2, width_ratios=[1, 1])
    bar = sub.colorbar(ScalarMappable(Normalize(0, 1), HEATMAP_CMAP), cax=cax,
                       orientation="horizontal")  # fmt: skip
    bar.set_label("relevance (normalised per clip)", fontsize=6, labelpad=1)
    bar.ax.tick_params(labelsize=5, width=0.4, length=2)
    bar.outline.set_linewidth(0.4)
    lax.set_axis_off()
    handles = [Line2D([], [], color=MASK_COLOUR, lw=1), Patch(color=MASK_COLOUR, lw=0)]
    lax.legend(handles, ["mouth outline (ground truth)", "speech in the audio (ground truth)"],
               loc="center", ncols=2, frameon=False, fontsize=6, handlelength=1.5)  # fmt: skip


# -- modality importance by clip kind ----------------------------------------------------------
#: The panels of :func:`speaker_kinds`: (title, y label, visual metric, audio metric).
PANELS = (
    ("fusion SE", "mean fusion-SE entry\nof the stream",
     "fusion_visual", "fusion_audio"),
    ("modality ablation (SE)", "drop of the clip's mean logit,\nweak SE entries zeroed",
     "ablation_visual_drop", "ablation_audio_drop"),
    ("FeatureAblation (Captum)", "drop of the clip's mean logit,\nstream blanked",
     "fa_visual", "fa_audio"),
)  # fmt: skip
_STREAMS = (("visual stream", OKABE_ITO["blue"], ""), ("audio stream", OKABE_ITO["orange"], "////"))


def _kind_values(run: Run, metric: str, dataset, seed) -> dict[str, tuple]:
    """``{kind: (value, ci_low, ci_high, n)}`` of ``metric``, plus ``"all clips"``."""
    out = {}
    for r in run.attribute_rows(metric, dataset, seed):
        out.setdefault(r["attribute"], (r["value"], r["ci_low"], r["ci_high"], r["n"]))
    for r in run.block(dataset, seed):
        if r["metric"] == metric:
            out.setdefault("all clips", (r["value"], r["ci_low"], r["ci_high"], r["n"]))
    return out


def speaker_kinds(
    run: Run, dataset: str | None = None, seed: int | None = None, width: float = TWO_COLUMN
) -> Figure:
    """How much each stream counts, by clip kind (and over all clips): one panel per
    measure of :data:`PANELS` the run scored, visual and audio bars side by side with
    their 95 % bootstrap intervals (from the per-kind rows).

    A dubbed clip can only be told apart by its mouth, a silent one by its audio: a
    measure that follows the model should shift from one stream to the other there.

    Raises:
        ValueError: the run has no modality rows (the ``modality`` family not scored).
    """
    panels = []
    for title, ylabel, vis, aud in PANELS:
        values = [_kind_values(run, m, dataset, seed) for m in (vis, aud)]
        if values[0] or values[1]:
            panels.append((title, ylabel, values))
    if not panels:
        raise ValueError("the run has no modality rows (family 'modality' not scored)")
    seen = {k for *_, values in panels for v in values for k in v}
    groups = [k for k in (*KINDS, "all clips") if k in seen] + sorted(
        seen - set(KINDS) - {"all clips"}
    )
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 2.5), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (title, ylabel, values) in zip(axes, panels, strict=True):
            _kind_panel(ax, groups, values)
            ax.set_title(title)
            ax.set_ylabel(ylabel, fontsize=7)
        handles = [Patch(facecolor=c, edgecolor="white", hatch=h, lw=0) for _, c, h in _STREAMS]
        fig.legend(handles, [s[0] for s in _STREAMS], loc="outside upper center", ncols=2,
                   frameon=False)  # fmt: skip
    return fig


def _kind_panel(ax, groups: list[str], values: list[dict]) -> None:
    """Grouped bars: per group, the visual and the audio value with their intervals."""
    x = np.arange(len(groups))
    for s, ((_, colour, hatch), vals) in enumerate(zip(_STREAMS, values, strict=True)):
        v, lo, hi = (np.array([vals.get(g, (math.nan,) * 3)[j] for g in groups], dtype=float)
                     for j in range(3))  # fmt: skip
        err = np.nan_to_num(np.vstack([np.maximum(v - lo, 0), np.maximum(hi - v, 0)]))
        ax.bar(x + (s - 0.5) * 0.38, v, 0.38, yerr=err, color=colour, edgecolor="white",
               hatch=hatch, lw=0, error_kw={"elinewidth": 0.6, "capsize": 1.5,
                                            "capthick": 0.6, "ecolor": "black"})  # fmt: skip
    counts = {g: vals[g][3] for vals in values for g in vals}
    ax.set_xticks(x, [f"{g}\n({counts[g]})" for g in groups], fontsize=5.5)
    if "all clips" in groups and len(groups) > 1:  # the pooled group apart from the kinds
        ax.axvline(groups.index("all clips") - 0.5, color="#999999", lw=0.5, ls=":")
    ax.set_xlabel("clip kind (number of clips)", fontsize=6)
    ax.tick_params(axis="x", length=0)
    ax.axhline(0, color="black", lw=0.5)
    despine(ax)


# -- bars of one metric --------------------------------------------------------------------------
def speaker_bars(
    run: Run,
    metric: str,
    dataset: str | None = None,
    seed: int | None = None,
    width: float = ONE_COLUMN,
) -> Figure:
    """:func:`squeezex.figures.metric_bars` of ``metric``, its axis labelled in words
    (:data:`LABELS`) with the better direction."""
    fig = metric_bars(run, metric, dataset, seed, width=width)
    name, what = LABELS.get(metric, (metric, ""))
    better = direction_text(run.higher_is_better(metric), "suffix")
    with matplotlib.rc_context(STYLE):
        fig.axes[0].set_xlabel(f"{name}{better}\n{what}".strip(), fontsize=7)
    return fig


# -- the animated clip ---------------------------------------------------------------------------
def _gif_figure(data: dict, i: int, method: str, heat, aheat, dpi: int):
    """The GIF's figure: (figure, frame image, cursor, the frame's title and caption)."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(4.0, 2.1), dpi=dpi, layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[1, 1.9])
        image = left.imshow(blend(data["images"][i, 0], heat[0], data["masks"][i, 0]),
                            interpolation="nearest")  # fmt: skip
        left.set_xticks([])
        left.set_yticks([])
        title = left.set_title(" ", fontsize=7)
        caption = left.set_xlabel(" ", fontsize=6)
        _spectrogram_panel(right, _spectrogram(data["audio"][i]), aheat, data["speech"][i],
                           fontsize=6)  # fmt: skip
        right.set_title(f"spectrogram, {_name(method)} audio map", fontsize=7)
        cursor = Rectangle((0, 0), 1, 40, fill=False, edgecolor="white", lw=1.2, clip_on=False)
        right.add_patch(cursor)
        fig.suptitle(f"{_clip_title(data, i).split(':')[0]}, labelled "
                     f"{data['classes'][int(data['targets'][i])]}: {_name(method)} maps",
                     fontsize=7)  # fmt: skip
    return fig, image, cursor, title, caption


def _gif_frames(run: Run, dataset, seed, clip, method: str, dpi: int) -> list[np.ndarray]:
    """One RGB array per video frame: the frame with the heatmap, the spectrogram with
    the audio map and a box on the frame's time. The layout is fixed after one draw, so
    nothing moves from frame to frame."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    data = run.data(dataset)
    i = default_clips(run, dataset)[0] if clip is None else int(clip)
    heat = run.maps(method, dataset, seed)[i, 0]
    aheat = run.audio_maps(method, dataset, seed)[i, 0]
    fig, image, cursor, title, caption = _gif_figure(data, i, method, heat, aheat, dpi)
    canvas = FigureCanvasAgg(fig)
    n, speech = data["images"].shape[1], data["speech"][i].tolist()
    words = ("no speech in the audio", "speech in the audio")
    title.set_text(f"frame {n} of {n}")  # the widest texts: lay out once, then freeze
    caption.set_text(words[0])
    with matplotlib.rc_context(STYLE):
        canvas.draw()
        fig.set_layout_engine("none")
        frames = []
        for t in range(n):
            image.set_data(blend(data["images"][i, t], heat[t], data["masks"][i, t]))
            cursor.set_x(t)
            title.set_text(f"frame {t + 1} of {n}")
            caption.set_text(words[bool(speech[t])])
            canvas.draw()
            frames.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return frames


def speaker_gif(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    clip: int | None = None,
    method: str = "se",
    frame_ms: int = 200,
    dpi: int = 120,
) -> bytes:
    """One clip's per-frame heatmaps as an animated GIF: each video frame with the
    method's heatmap (mouth outlined) and its number, beside the spectrogram with the
    audio map, the speech bar and a box on the frame's time. Played at ``frame_ms`` per
    frame (the clips run at 25 fps: 200 ms is five times slower), looping.

    One palette for every frame (median cut of all of them, no dithering) and no
    metadata: the same run gives the same bytes.

    Args:
        clip: the test clip (default: the first speaking clip).
        method: whose maps (a method cell with spectrogram maps).
    """
    from PIL import Image

    arrays = _gif_frames(run, dataset, seed, clip, method, dpi)
    frames = [Image.fromarray(a, "RGB") for a in arrays]
    palette = Image.fromarray(np.concatenate(arrays, axis=0), "RGB").quantize(
        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=int(frame_ms), loop=0, optimize=False, disposal=1)  # fmt: skip
    return buf.getvalue()


def save_speaker_gif(run: Run, path: str | Path, **kwargs) -> Path:
    """Write :func:`speaker_gif` (keyword arguments passed on) atomically to ``path``."""
    return atomic_write_bytes(Path(path), speaker_gif(run, **kwargs))


# -- what make_figures draws ---------------------------------------------------------------------
def speaker_jobs(run: Run, dataset: str, seed: int) -> list[tuple]:
    """``(name, draw)`` of the figures of one (audio-visual dataset, seed):
    ``speaker-clips``, ``speaker-kinds`` and ``bars-<metric>`` of the localisation and cost
    metrics (a modality metric has one method per row: :func:`speaker_kinds` shows them),
    then ``("speaker", draw, "gif")``: the animated clip, always a GIF."""
    metrics = dict.fromkeys(r["metric"] for r in run.block(dataset, seed)
                            if r["family"] in ("localisation", "cost"))  # fmt: skip
    return [
        ("speaker-clips", lambda: speaker_clips(run, dataset, seed)),
        ("speaker-kinds", lambda: speaker_kinds(run, dataset, seed)),
        *((f"bars-{m}", lambda m=m: speaker_bars(run, m, dataset, seed)) for m in metrics),
        ("speaker", lambda: speaker_gif(run, dataset, seed), "gif"),
    ]
