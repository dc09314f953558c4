"""What the widgets compute, as plain functions (tested without a kernel).

:mod:`squeezex.widgets` only wires controls to these: explaining one sample with several
methods through a cache, the SE vector of a sample, a sample's metric scores, and the
PNG renderings (overlays, the SE-vector bar chart, a ranking chart). Renderings are
deterministic: the same inputs give the same PNG bytes.
"""

from __future__ import annotations

import base64
import io
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from .bench.tasks import get_task, list_tasks
from .common import eval_mode
from .explainers import explainer_info, get_explainer, list_explainers
from .explainers.base import HeatmapAttribution
from .explainers.se import SEAttribution, SEVector
from .viz import HEATMAP_CMAP, STYLE, blend

__all__ = [
    "SESettings",
    "HeatmapCache",
    "as_samples",
    "make_explainers",
    "predict",
    "explain_sample",
    "se_vector",
    "sample_scores",
    "score_label",
    "torch_threads",
    "render_overlay",
    "render_colorbar",
    "render_se_vector",
    "render_ranking",
    "figure_png",
    "png_size",
    "data_uri",
]

#: The SE methods whose channel selection the Explorer's SE controls drive: the SE base
#: method (its presets se-paper/se-logit/se-topk/se-class keep their own rule).
TUNABLE = tuple(
    n for n in list_explainers() if explainer_info(n).base == "se" and not explainer_info(n).preset
)
#: Per-sample scores the Explorer shows (names of squeezex.metrics.LOCALISATION). The
#: relevance mass accuracy is the energy pointing game (same function): shown once.
SCORES = ("pointing_game", "energy_pointing_game", "iou", "auc")
#: Readable names of the scores (the direction arrow is added from the metric vocabulary).
SCORE_LABELS = {
    "pointing_game": "pointing game",
    "energy_pointing_game": "energy in mask (= relevance mass)",
    "iou": "IoU",
    "auc": "mask AUC",
}
#: What the tiles' colour bar measures: every map is min-max normalised on its own.
COLORBAR_LABEL = "relevance (normalised per map)"


@dataclass(frozen=True)
class SESettings:
    """The SE channel-selection settings of the Explorer (see ``select_channels``)."""

    selection: str = "weighted"
    z: float = 1.282
    k: float = 0.1

    def kwargs(self) -> dict:
        return {"selection": self.selection, "z": self.z, "k": self.k}


class HeatmapCache:
    """Heatmaps keyed by (sample, method, target, settings), least recently used evicted."""

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._d: OrderedDict = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        if key in self._d:
            self._d.move_to_end(key)
            self.hits += 1
            return self._d[key]
        self.misses += 1
        return None

    def put(self, key, value) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.maxsize:
            self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


def is_multi_label(dataset) -> bool:
    """Whether ``dataset`` declares (its ``task`` attribute) a task kind whose samples
    have several labels at once (:attr:`squeezex.bench.tasks.Task.multi_label`)."""
    kind = getattr(dataset, "task", None)
    return isinstance(kind, str) and kind in list_tasks() and get_task(kind).multi_label


def as_samples(dataset) -> tuple:
    """``(get, n, classes)`` for a dataset: ``get(i)`` → (image C×H×W float, target int,
    mask 1×H×W bool or None); for a multi-label dataset (:func:`is_multi_label`, e.g.
    faces) → (image, the K 0/1 attributes, the K×H×W attribute masks).

    Accepts squeezex datasets (items ``(image, target, mask)``), any map-style dataset of
    ``(image, target)`` pairs, a tuple of tensors ``(images, targets[, masks])``, or the
    name of a registered dataset (its test split at 64×64, seed 0).
    """
    if isinstance(dataset, str):
        from .datasets import get_dataset

        dataset = get_dataset(dataset).build("test", size=64, seed=0)
    if isinstance(dataset, tuple | list) and dataset and isinstance(dataset[0], torch.Tensor):
        if len(dataset) not in (2, 3):
            raise ValueError("a tensor dataset is (images, targets) or (images, targets, masks)")
        images, targets = dataset[0], dataset[1]
        masks = dataset[2] if len(dataset) == 3 else None
        if images.dim() != 4 or len(targets) != len(images):
            raise ValueError(
                f"images must be N×C×H×W with one target each, got {tuple(images.shape)} "
                f"and {len(targets)} targets"
            )

        def get(i):
            img = images[i].float() / 255 if images.dtype == torch.uint8 else images[i].float()
            return img, int(targets[i]), (masks[i] if masks is not None else None)

        n = len(images)
        classes = None
    else:
        multi = is_multi_label(dataset)
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(
                f"dataset must be a map-style dataset or (images, targets[, masks]), "
                f"got {type(dataset).__name__}"
            )

        def get(i):
            item = dataset[i]
            if not isinstance(item, tuple | list) or len(item) < 2:
                raise ValueError("dataset items must be (image, target) or (image, target, mask)")
            mask = item[2] if len(item) > 2 and isinstance(item[2], torch.Tensor) else None
            if multi:  # (image, K attributes, K×H×W masks): kept whole
                return item[0].float(), torch.as_tensor(item[1]), mask
            return item[0].float(), int(item[1]), mask

        n = len(dataset)
        classes = list(getattr(dataset, "classes", []) or []) or None
    if n == 0:
        raise ValueError("the dataset is empty")
    return get, n, classes


def make_explainers(model, methods: Sequence[str], **options) -> dict[str, HeatmapAttribution]:
    """One explainer per registry name (``options[name]``: that method's factory kwargs)."""
    out = {}
    for m in methods:
        out[m] = get_explainer(m, model, **options.get(m, {}))
    return out


@torch.no_grad()
def predict(model, x: torch.Tensor, multi_label: bool = False) -> tuple[int, torch.Tensor]:
    """Predicted class and class probabilities of one image (C×H×W); for a multi-label
    model the most confident attribute and each attribute's own (sigmoid) probability."""
    with eval_mode(model):
        out = model(x[None])[0]
    p = out.sigmoid() if multi_label else out.softmax(0)
    return int(p.argmax()), p


def explain_sample(
    explainers: dict[str, HeatmapAttribution],
    x: torch.Tensor,
    target: int,
    *,
    sample: int | str,
    settings: SESettings | None = None,
    tunable: Sequence[str] = TUNABLE,
    cache: HeatmapCache | None = None,
) -> dict[str, torch.Tensor]:
    """Each method's H×W heatmap of image ``x`` (C×H×W) for class ``target``.

    The SE methods named in ``tunable`` get ``settings`` (the fixed-rule variants
    ``se-paper``/``se-logit``/``se-topk``/``se-class`` and every other method ignore
    them, so changing the SE settings never recomputes Grad-CAM). Maps come from
    ``cache`` when it has them, keyed by (sample, method, target, the settings it uses).
    """
    settings = settings or SESettings()
    out = {}
    for name, ex in explainers.items():
        uses = name in tunable and isinstance(ex, SEAttribution)
        key = (sample, name, int(target), settings if uses else None)
        got = cache.get(key) if cache is not None else None
        if got is None:
            kwargs = settings.kwargs() if uses else {}
            got = ex.attribute(x[None], target=int(target), **kwargs)[0, 0].detach().cpu()
            if cache is not None:
                cache.put(key, got)
        out[name] = got
    return out


def se_vector(explainer: SEAttribution, x: torch.Tensor, settings: SESettings) -> SEVector:
    """The SE vector of one image and the channels ``settings`` selects."""
    return explainer.se_vector(x[None], **settings.kwargs())


def score_label(name: str) -> str:
    """A score's readable name with its direction, e.g. ``"pointing game ↑"``."""
    from .metrics import higher_is_better

    try:
        arrow = {True: " ↑", False: " ↓"}.get(higher_is_better(name), "")
    except KeyError:
        arrow = ""
    return SCORE_LABELS.get(name, name.replace("_", " ")) + arrow


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: as set), then restore.

    One small image gains nothing from more threads, and on shared cores their
    synchronisation dominates: measured on 2 busy cores, a new sample in the Explorer took
    0.5–3.4 s with 2 threads and 0.15–0.37 s with 1."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sample_scores(maps: dict[str, torch.Tensor], mask: torch.Tensor | None) -> dict[str, dict]:
    """Localisation scores (:data:`SCORES`) of one sample's maps against its mask ({}
    without a mask)."""
    from . import metrics as M

    if mask is None:
        return {}
    m = mask.reshape(1, 1, *mask.shape[-2:]).bool()
    out = {}
    for name, h in maps.items():
        hm = h.reshape(1, 1, *h.shape[-2:]).float()
        out[name] = {k: float(M.LOCALISATION[k](hm, m)[0]) for k in SCORES if k in M.LOCALISATION}
    return out


# -- renderings -----------------------------------------------------------------------------------
def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def render_overlay(
    image: torch.Tensor,
    heatmap: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    opacity: float = 0.55,
    scale: int = 3,
) -> bytes:
    """PNG of ``image`` (C×H×W in [0, 1]) with ``heatmap`` (H×W in [0, 1]) blended at
    ``opacity`` in the paper's colour map and ``mask``'s outline; enlarged ``scale``×
    (nearest neighbour, so pixels stay pixels)."""
    rgb = blend(image, heatmap, mask, opacity)
    arr = np.round(rgb * 255).astype(np.uint8)
    if scale > 1:
        arr = arr.repeat(scale, 0).repeat(scale, 1)
    return _png(arr)


@lru_cache(maxsize=8)
def render_colorbar(label: str = COLORBAR_LABEL, width: float = 3.2, dpi: int = 100) -> bytes:
    """PNG of the heatmaps' colour scale (:data:`~squeezex.viz.HEATMAP_CMAP` from 0 to 1),
    horizontal, ``width`` inches wide, titled ``label``."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 0.55), layout="constrained")
        ax = fig.subplots()
        sm = ScalarMappable(Normalize(0.0, 1.0), matplotlib.colormaps[HEATMAP_CMAP])
        bar = fig.colorbar(sm, cax=ax, orientation="horizontal", ticks=[0, 0.25, 0.5, 0.75, 1])
        bar.set_label(label)
        bar.outline.set_linewidth(0.4)
    return figure_png(fig, dpi)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes without timestamp metadata."""
    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def render_se_vector(v: SEVector, index: int = 0, size=(6.0, 1.8)) -> bytes:
    """Bar chart of sample ``index``'s SE vector: selected channels highlighted and the
    rule's threshold drawn (on the pre-sigmoid excitation for the ``"logit"`` rule); the
    title gives the spread of s (a vector near-constant across channels weights every
    channel alike, and the SE map is then the plain channel mean)."""
    on_logits = v.rule == "logit"
    vals = (v.logits if on_logits else v.s)[index].detach().cpu().float().numpy()
    sel = v.selected[index].cpu().numpy()
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size, layout="constrained")
        ax = fig.subplots()
        c = np.arange(len(vals))
        ax.bar(c[~sel], vals[~sel], width=0.9, color="#BBBBBB", label="not selected")
        ax.bar(c[sel], vals[sel], width=0.9, color="#D55E00", label=f"selected ({sel.sum()})")
        if v.threshold is not None:
            t = float(v.threshold[index])
            ax.axhline(t, color="#0072B2", lw=0.8, ls="--", label=f"threshold {t:.3g}")
        ax.set_xlim(-0.5, len(vals) - 0.5)
        top = max(float(vals.max()), 0.0)
        ax.set_ylim(top=top * 1.3 if top > 0 else 1.0)  # room for the legend
        ax.set_xlabel("channel")
        ax.set_ylabel("excitation (logit)" if on_logits else "SE vector $s_c$")
        note = " — fell back to the strongest channel" if bool(v.fallback[index]) else ""
        s = v.s[index].detach().float()
        spread = f"s in [{float(s.min()):.2f}, {float(s.max()):.2f}], std {float(s.std(unbiased=False)):.3f}"
        ax.set_title(f"SE vector, rule {v.rule!r}{note}\n{spread}", fontsize=8)
        ax.legend(frameon=False, loc="upper right", ncols=3)
    return figure_png(fig)


def render_ranking(
    rows, metric: str, higher_is_better: bool | None, size=(5.0, None), dpi: int = 100
) -> bytes:
    """Horizontal bars of a ranking (``squeezex.runs.RankRow``s, best first) with their
    95 % intervals; reference maps grey. ``size`` in inches (height: from the number of
    rows when None); the PNG is ``size × dpi`` pixels (render at twice the displayed
    size and show it at half for a sharp chart on high-density screens)."""
    n = len(rows)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(size[0], size[1] or 0.22 * n + 0.8), layout="constrained")
        ax = fig.subplots()
        y = np.arange(n)
        vals = np.array([r.value for r in rows])
        lo = np.array([r.value - r.ci_low for r in rows])
        hi = np.array([r.ci_high - r.value for r in rows])
        colours = ["#0072B2" if r.kind == "method" else "#CCCCCC" for r in rows]
        ax.barh(y, vals, color=colours, xerr=np.vstack([lo, hi]), error_kw={"lw": 0.8})
        ax.set_yticks(y, [f"{r.rank}. {r.method}" for r in rows])
        ax.invert_yaxis()
        arrow = {True: "↑ higher is better", False: "↓ lower is better"}.get(higher_is_better, "")
        ax.set_xlabel(f"{metric} {arrow}".strip())
    return figure_png(fig, dpi)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels of PNG bytes (read from the header)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not PNG bytes")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:`` URI, for an ``<img>`` inside an HTML widget."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
