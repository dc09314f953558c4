"""Captions: what each figure of :func:`squeezex.figures.make_figures` shows, with units
and directions, and the captions file written beside the figures.

Example:
    >>> from squeezex.bench import Run
    >>> caption(Run("data/runs/demo"), "bars-pointing_game")  # doctest: +SKIP
    >>> CAPTIONS_FILE
    'CAPTIONS.md'
"""

from __future__ import annotations

from pathlib import Path

from ..bench import Run
from .labels import axis_reference, metric_label

__all__ = ["CAPTIONS", "CAPTIONS_FILE", "caption", "captions_text"]


#: The captions file :func:`squeezex.figures.make_figures` writes beside the figures.
CAPTIONS_FILE = "CAPTIONS.md"
_REF_NOTE = (
    "hatched grey bars are reference maps (no model; the oracle and silhouette see the mask)"
)
#: What each figure shows, by name; ``bars-<metric>`` and ``cost-vs-<metric>`` are
#: written from the metric's label (:func:`caption`).
CAPTIONS = {
    "qualitative": "One test image per class (rows) and each method's heatmap over it "
    "(columns), min–max normalised per map (colour bar: relevance 0 to 1); + marks the "
    "map's maximum, the blue outline the ground-truth mask.",
    "attributes": "One face, one row per attribute it has: each method's map for that "
    "attribute, normalised per map (colour bar), the attribute's region outlined. A "
    "class-agnostic map is the same in every row.",
    "faithfulness": "Class probability (mean over the test images, fitted axis) as the "
    "map's most relevant pixels are deleted (left; lower area is better) or inserted into "
    "the baseline (right; higher area is better), against the fraction of pixels changed. "
    "The legend lists the methods best first on the left panel with both areas (mean "
    "class probability); dotted: chance, one over the number of classes.",
    "road": "ROAD: class probability (mean over the test images, fitted axis) as pixels are "
    "imputed by noisy linear imputation, most relevant first (left, MoRF; lower area is "
    "better) or least relevant first (right, LeRF; higher area is better). The legend "
    "lists the methods best first on the left panel with both areas; dotted: chance.",
    "se-distribution": "Histogram of the SE-vector entries s_c (channel weights, 0 to 1; "
    "count on a log scale) of every test image. Dashed: the paper's threshold mean + "
    "1.282·std averaged over the images; band: its range over the images. The notes give "
    "the share of entries above their image's threshold and how alike the selected "
    "channels are across images and classes (Jaccard, 1: identical).",
    "vebi-features": "VEBI: for each class (rows) its relevant features by decreasing lasso "
    "weight; each panel is a feature's mean guided backward signal, normalised per panel "
    "(grey = 0), titled layer:channel (weight).",
    "bias": "The bias sweep over ρ, how tightly a corner mark is tied to the attribute in "
    "training. Left: the model's accuracy on the attribute (decorrelated test split) and "
    "its reliance on the mark (0 to 1). Right: each method's relevance mass (share of "
    "positive relevance) on the mark (solid) and on the attribute (dashed), with 95 % "
    "intervals; the constant map is chance.",
    "speaker-clips": "Audio-visual clips × methods: every third video frame with the "
    "method's visual heatmap (mouth outlined) and the clip's spectrogram with its audio "
    "heatmap, the speech segments as a bar above it.",
    "speaker-kinds": "How much each stream (visual, audio) counts, by clip kind and over "
    "all clips, one panel per measure, with 95 % bootstrap intervals; read per clip kind "
    "(no better direction).",
    "examples": "The run's first look: one test image per class (rows) of its first dataset "
    "and seed, each method's heatmap over it (columns), min–max normalised per map (colour "
    "bar: relevance 0 to 1); + marks the map's maximum, the blue outline the ground-truth "
    "mask.",
    "speaker": "One clip's per-frame heatmaps as an animated GIF, beside the spectrogram "
    "with the audio map, the speech bar and the current frame boxed.",
}


def caption(run: Run, name: str, dataset: str | None = None, seed: int | None = None) -> str:
    """What figure ``name`` of :func:`squeezex.figures.make_figures` (without its ``_<dataset>`` /
    ``_seed<k>`` suffix) shows, with units and directions, in a sentence or three."""
    if name.startswith("bars-"):
        metric = name.removeprefix("bars-")
        try:
            refs = any(r.kind == "reference" for r in run.ranking(metric, dataset, seed))
        except KeyError:
            refs = False
        return (
            f"{_sentence(metric_label(metric, run))}: each method's mean over the test "
            f"images with its 95 % bootstrap interval, best first"
            + (f"; {_REF_NOTE}." if refs else ".")
            + _line_note("Dotted line", _safe_reference(run, metric, dataset, seed))
        )
    if name.startswith("cost-vs-"):
        metric = name.removeprefix("cost-vs-")
        return (
            f"{_sentence(metric_label('ms_per_image', run, 'log scale'))} against "
            f"{metric_label(metric, run)}, one point per timed method; grey bars: 95 % "
            "bootstrap intervals. Dashed: one plain forward pass of the model."
            + _line_note("Dotted", _safe_reference(run, metric, dataset, seed))
        )
    return CAPTIONS.get(name, "")


def _line_note(what: str, ref: tuple[float, str] | None) -> str:
    """The sentence naming a figure's reference line, ``" Dotted line: random maps
    (<value>)."`` (the value to three significant digits, unless its label gives it), or
    nothing without a reference: a reader learns what the line marks without the plot."""
    if ref is None:
        return ""
    label = ref[1].removeprefix("= ")
    return f" {what}: {label}" + ("." if "(" in label else f" ({ref[0]:.3g}).")


def _sentence(text: str) -> str:
    """``text`` with a capital first letter, to open a caption with a metric's label."""
    return text[:1].upper() + text[1:]


def _safe_reference(run: Run, metric: str, dataset, seed) -> tuple[float, str] | None:
    """:func:`~squeezex.figures.labels.axis_reference`, or ``None`` when the run does not
    rank ``metric`` (a caption is written for every figure, and never fails on one)."""
    try:
        return axis_reference(run, metric, dataset, seed)
    except KeyError:
        return None


def _run_lines(run: Run, tables: list[Path]) -> list[str]:
    """The captions file's header: the run, its datasets, methods, models, settings."""
    res, refs = run.results, [m for m in run.methods if run.kind(m) == "reference"]
    out = [
        f"Run `{run.root}`: datasets {', '.join(run.datasets)}; seeds "
        f"{', '.join(map(str, run.seeds))}; methods "
        f"{', '.join(m for m in run.methods if m not in refs)}"
        + (f"; reference maps {', '.join(refs)}." if refs else ".")
    ]
    for name, mo in res.get("models", {}).items():
        if "accuracy_mean" in mo:
            unit = "clips" if mo.get("kinds") else "images"
            sizes = f", {mo.get('n_train')} training and {mo['n_test']} test {unit}"
            sizes = sizes if "n_test" in mo else ""
            norm = f"; input normalisation {mo['normalisation']}" if mo.get("normalisation") else ""
            out.append(f"Model on {name}: {mo.get('arch', 'CNN')}{norm}{sizes}; "
                       f"{mo.get('score', 'test accuracy')} {mo['accuracy_mean']:.3f}.")  # fmt: skip
    cfg = res.get("config", {})
    said = [w.format(cfg[k]) for k, w in (("size", "image side {} px"), ("epochs", "{} epochs"))
            if cfg.get(k) is not None]  # fmt: skip
    if said:
        out.append("Settings: " + ", ".join(said) + ".")
    if res.get("pixel_baselines"):
        out.append(f"Faithfulness baselines, in pixel space: {res['pixel_baselines']}.")
    out.append(
        "Intervals are 95 % bootstrap intervals over the test images. LaTeX tables: "
        + ", ".join(f"`{p.name}`" for p in tables)
        + "."
    )
    return out


def captions_text(run: Run, entries: list[tuple], tables: list[Path]) -> str:
    """The captions file: the run's header, then one entry per figure written."""
    lines = [f"# Figures of the run `{run.root.name}`", "", *_run_lines(run, tables), ""]
    for name, dataset, seed, files in entries:
        if not files:
            continue
        where = "all datasets" if dataset is None else f"{dataset}, seed {seed}"
        lines += [
            f"## {files[0].stem}",
            "",
            f"{', '.join(f'`{p.name}`' for p in files)} · {where}",
            "",
            caption(run, name, dataset, seed),
            "",
        ]
    return "\n".join(lines)
