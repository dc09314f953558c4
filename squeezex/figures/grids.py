"""Qualitative grids: test images × methods' heatmaps, the ground truth outlined.

* :func:`qualitative_grid` — one test image per class × every method of a run;
* :func:`attribute_grid` — one face of a multi-label run, one row per attribute;
* :func:`examples` — a run's first look (``examples.png``), every method it was asked for;
* :func:`example_grid` — a first look before a benchmark, from its configuration.

Each map's maximum is marked with +; one colour bar says what the colours mean.

Example:
    >>> from squeezex.bench import Run
    >>> qualitative_grid(Run("data/runs/demo"), methods=["se", "gradcam"])  # doctest: +SKIP
"""

from __future__ import annotations

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from ..bench import Run, example_maps
from ..bench.tasks.images import example_indices
from ..viz import STYLE, TWO_COLUMN, explanation_grid, heatmap_colorbar
from .style import method_label, pick_methods, wrap

__all__ = ["qualitative_grid", "attribute_grid", "examples", "example_grid"]


def qualitative_grid(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    methods: list[str] | None = None,
    indices: list[int] | None = None,
    references: bool = False,
    width: float = TWO_COLUMN,
) -> Figure:
    """Test images × methods' heatmaps, the ground-truth mask outlined.

    Args:
        run: the benchmark run.
        dataset, seed: which cell of the run (default: the first of each).
        methods: columns after the image (default: the run's methods, in run order).
        indices: test images, one per row (default: the first image of each class).
        references: add the reference maps (oracle, centre, …) when ``methods`` is None.
        width: figure width in inches; the cells shrink to fit it.

    Returns:
        A figure with ``len(indices)`` rows and ``1 + len(methods)`` image columns, plus a
        colour bar. Each map's maximum is marked with +.
    """
    names = pick_methods(run, methods, references)
    if not names:
        raise ValueError("no methods to show")
    data = run.data(dataset)
    if indices is None:  # the first test image of each class
        seen: dict[int, int] = {}
        for i, t in enumerate(data["targets"].tolist()):
            seen.setdefault(int(t), i)
        indices = [seen[t] for t in sorted(seen)]
    idx = torch.as_tensor(list(indices), dtype=torch.long)
    maps = {m: run.maps(m, dataset, seed)[idx] for m in names}
    rows = [data["classes"][int(data["targets"][i])] for i in idx]
    cols = 1 + len(names)
    # the width left for images: row labels on the left, the colour bar on the right
    cell = min(1.1, (width - 1.25) / cols)
    rotate = cell < 0.62  # narrow columns: vertical titles
    fig = explanation_grid(data["images"][idx], maps, data["masks"][idx], cell=cell, colorbar=False)
    fig.set_size_inches(width, (cell + 0.03) * len(idx) + (0.75 if rotate else 0.3))
    axes = np.array(fig.axes).reshape(len(idx), cols)
    with matplotlib.rc_context(STYLE):
        for j, name in enumerate(["image", *(method_label(run, m) for m in names)]):
            title = wrap(name, "-", 12 if rotate else max(4, int(cell * 14)))
            axes[0, j].set_title(
                title, fontsize=6, rotation=90 if rotate else 0, va="bottom", linespacing=1.0
            )
        for ax in axes[:, 1:].ravel():  # the + of each map's maximum, to the cell's scale
            for line in ax.get_lines():
                line.set_markersize(min(6.0, 9 * cell))
                line.set_markeredgewidth(min(1.2, 2 * cell))
        for i, label in enumerate(rows):
            text = wrap(label.replace("_", " "), " ", 8)
            axes[i, 0].set_ylabel(text, fontsize=6, rotation=0, ha="right", va="center")
        heatmap_colorbar(fig, axes.ravel(), "relevance (min–max normalised per map)")
        fig.supxlabel("+: the map's maximum · blue outline: the ground-truth mask", fontsize=6)
    return fig


def attribute_grid(
    run: Run,
    dataset: str | None = None,
    seed: int | None = None,
    methods: list[str] | None = None,
    face: int | None = None,
    width: float = TWO_COLUMN,
) -> Figure:
    """One face, one row per attribute it has: each method's map *for that attribute*.

    A class-aware map (``se-class``, Grad-CAM, VEBI) changes from row to row and should
    land on the row's attribute (outlined); a class-agnostic map (``se``, ``se-paper``)
    is the same in every row — one map per face, which can show one attribute at most.

    The other arguments are those of :func:`qualitative_grid`.

    Args:
        face: the face's index in the test split (default: the first face with the most
            present attributes).

    Raises:
        ValueError: the run's dataset is not multi-label, or ``face`` has no pair.
    """
    data = run.data(dataset)
    if "face_index" not in data:
        raise ValueError("attribute_grid needs a multi-label dataset (faces)")
    faces = data["face_index"].tolist()
    if face is None:
        face = max(dict.fromkeys(faces), key=faces.count)
    pairs = [p for p, f in enumerate(faces) if f == face]
    if not pairs:
        raise ValueError(f"face {face} has no (face, attribute) pair in the test split")
    return qualitative_grid(run, dataset, seed, methods, indices=pairs, width=width)


def examples(run: Run, dataset: str, seed: int, n: int) -> Figure:
    """``examples.png``: one test image per class (at most ``n``) × every method of the
    run's last configuration, each map over its image with the mask outlined."""
    data = run.data(dataset)
    idx = example_indices(data["targets"], n)
    maps = {}
    for m in run.results["config"]["methods"]:
        try:
            maps[m] = run.maps(m, dataset, seed)[idx]
        except (FileNotFoundError, KeyError):  # a method not scored here (skipped)
            continue
    labels = [data["classes"][int(data["targets"][i])] for i in idx]
    return explanation_grid(data["images"][idx], maps, data["masks"][idx], row_labels=labels)


def example_grid(cfg, dataset: str, methods=("se", "gradcam"), n: int = 4) -> Figure:
    """A first look before a benchmark: the first ``n`` test images of ``dataset`` (the
    split a run with the :class:`~squeezex.bench.BenchConfig` ``cfg`` scores) explained by
    ``methods`` with the run's SE model (trained and cached on first use), each map's
    maximum marked, the mask outlined (:func:`squeezex.bench.example_maps` computes them;
    a method with a fit step, VEBI, is fitted on the run's training split)."""
    ex = example_maps(cfg, dataset, methods, n)
    return explanation_grid(ex["images"], ex["maps"], ex["masks"], row_labels=ex["labels"])
