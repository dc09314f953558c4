"""What the image widgets compute, as plain functions (tested without a kernel).

:class:`~squeezex.widgets.Explorer` only wires controls to these: the samples of a
dataset, one explainer per method, a prediction, one sample explained by several methods
through a cache (so that a control recomputes only what depends on it), the SE vector of
a sample, its localisation scores, and the torch threads the widget computes with. The
PNG renderings are in :mod:`.render`.

Example:
    >>> import torch
    >>> get, n, classes = as_samples((torch.zeros(2, 3, 8, 8), torch.tensor([0, 1])))
    >>> n, get(1)[1], classes
    (2, 1, None)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..bench.tasks import get_task, list_tasks
from ..common import eval_mode
from ..explainers import explainer_info, get_explainer, list_explainers
from ..explainers.base import HeatmapAttribution
from ..explainers.se import SEAttribution, SEVector
from ..metrics.vocabulary import direction_text, higher_is_better, short_name

__all__ = [
    "TUNABLE",
    "SCORES",
    "SCORE_LABELS",
    "SESettings",
    "HeatmapCache",
    "is_multi_label",
    "dataset_named",
    "as_samples",
    "make_explainers",
    "predict",
    "explain_sample",
    "se_vector",
    "sample_scores",
    "score_label",
    "torch_threads",
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
#: The scores' names in the Explorer's table: the vocabulary's compact names
#: (:func:`squeezex.metrics.vocabulary.short_name`), kept under this name for callers.
SCORE_LABELS = {k: short_name(k) for k in ("pointing_game", "energy_pointing_game", "iou", "auc")}


@dataclass(frozen=True)
class SESettings:
    """The SE channel-selection settings of the Explorer: hashable, so they key the cache.

    Attributes:
        selection: the rule of :func:`squeezex.explainers.se.select_channels`.
        z: the threshold of the ``"paper"`` and ``"logit"`` rules (the paper's 1.282).
        k: the share (or count) of channels the ``"topk"`` rule keeps.
    """

    selection: str = "weighted"
    z: float = 1.282
    k: float = 0.1

    def kwargs(self) -> dict:
        """The settings as keyword arguments of an SE explainer's ``attribute``."""
        return {"selection": self.selection, "z": self.z, "k": self.k}


class HeatmapCache:
    """Heatmaps keyed by (sample, method, target, settings), least recently used evicted.

    The widgets keep every map they computed here, so that going back to a sample, a
    method or a rule redraws without recomputing; :attr:`hits` and :attr:`misses` count
    what was reused and what was computed (the widgets' ``stats`` read them).

    Example:
        >>> cache = HeatmapCache(maxsize=1)
        >>> cache.put("a", 1)
        >>> cache.put("b", 2)  # evicts "a"
        >>> cache.get("a"), cache.get("b"), (cache.hits, cache.misses)
        (None, 2, (1, 1))
    """

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


def dataset_named(name: str):
    """The dataset a widget shows for a registered dataset's name: its test split at
    64×64, seed 0 (:meth:`squeezex.datasets.DatasetSpec.build`)."""
    from ..datasets import get_dataset

    return get_dataset(name).build("test", size=64, seed=0)


def as_samples(dataset) -> tuple:
    """``(get, n, classes)`` for a dataset: ``get(i)`` → (image C×H×W float, target int,
    mask 1×H×W bool or None); for a multi-label dataset (:func:`is_multi_label`, e.g.
    faces) → (image, the K 0/1 attributes, the K×H×W attribute masks).

    Accepts squeezex datasets (items ``(image, target, mask)``), any map-style dataset of
    ``(image, target)`` pairs, a tuple of tensors ``(images, targets[, masks])``, or the
    name of a registered dataset (its test split at 64×64, seed 0).
    """
    if isinstance(dataset, str):
        dataset = dataset_named(dataset)
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
    """A score's readable name with its direction, e.g. ``"pointing game ↑"``: the
    metric vocabulary's compact name and arrow, as every table and figure reads them."""
    try:
        higher = higher_is_better(name)
    except KeyError:
        higher = None
    return short_name(name) + direction_text(higher, "arrow")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: as set), then restore.

    Why: one small image gains nothing from more threads, and on shared cores their
    synchronisation dominates, so the widgets compute on one thread by default.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
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
    from .. import metrics as M

    if mask is None:
        return {}
    m = mask.reshape(1, 1, *mask.shape[-2:]).bool()
    out = {}
    for name, h in maps.items():
        hm = h.reshape(1, 1, *h.shape[-2:]).float()
        out[name] = {k: float(M.LOCALISATION[k](hm, m)[0]) for k in SCORES if k in M.LOCALISATION}
    return out
