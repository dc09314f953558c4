"""The dataset registry: benchmark dataset names → specs (builder, task, training options).

The command line (``squeezex bench --dataset``, ``squeezex generate``), the benchmark
harness and the widgets all look datasets up here; a new setting adds an entry next to
its generator (the generators register when :mod:`squeezex.datasets` imports them, which
it does before anything can look a name up: this module is part of that package)::

    @register_dataset("an8flower-single-6c", description="...", n_train=200, n_test=50,
                      vebi_mu=5.0)
    def _an8flower_single(split, *, n_per_class, size, seed):
        return An8Flower("single-6c", split, n_per_class=n_per_class, size=size, seed=seed)

A builder takes the split (``"train"`` or ``"test"``), the images per class, the image
side and the seed, and returns a dataset whose items are ``(image, target, mask)`` and
which holds its whole split as tensors: ``images`` (N×C×H×W uint8), ``targets``,
``masks`` (N×1×H×W bool), ``classes`` (and ``object_masks`` where it has them).
Optionally, ``regions`` (a dict name → N×1×H×W bool: named ground-truth regions, e.g.
an8Flower's discriminative parts, or a cue dataset's ``"cue"`` and ``"object"``) and, for
cue datasets (:mod:`squeezex.datasets.cues`), ``cue_targets`` and ``object_targets`` (N
long: the class the cue, and the object, indicates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "TASKS",
    "TrainOptions",
    "DatasetSpec",
    "register_dataset",
    "get_dataset",
    "list_datasets",
    "build_dataset",
]

#: Task kinds a spec can declare. ``"multi-label"`` datasets (faces) hold N×K 0/1
#: ``targets`` and K×H×W masks per item, train with a binary cross-entropy, and are
#: explained per (image, present attribute) through their ``explanation_view()``.
TASKS = ("single-label", "multi-label", "audio-visual")


@dataclass(frozen=True)
class TrainOptions:
    """How the benchmark trains a model on a dataset; ``None`` takes the run's setting."""

    batch_size: int | None = None
    epochs: int | None = None
    lr: float | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A registered benchmark dataset.

    Attributes:
        name: the registry name (``--dataset``).
        builder: ``builder(split, *, n_per_class, size, seed)`` → the dataset.
        description: one line for ``--help`` and the README.
        task: one of :data:`TASKS`.
        n_train, n_test: default images per class of the two splits (for an
            ``"audio-visual"`` dataset: clips; for a
            ``"multi-label"`` dataset: images).
        train: training options that differ from the run's defaults.
        vebi_mu: VEBI's L1 budget μ on this dataset (``None``: 10, the paper's value
            for ImageNet and MNIST).
        masks: whether items carry ground-truth masks (localisation metrics need them).
        pointing_tolerance: the slack in pixels of the benchmark's pointing game on this
            dataset (0: the maximum must fall inside the mask). Faces use 2: their regions
            are 1–3 px thick (a mouth line, glasses frames) on a 4-px feature grid.
    """

    name: str
    builder: Callable
    description: str
    task: str = "single-label"
    n_train: int = 200
    n_test: int = 50
    train: TrainOptions = field(default_factory=TrainOptions)
    vebi_mu: float | None = None
    masks: bool = True
    pointing_tolerance: int = 0

    def key(self) -> str:
        """What the benchmark's cells of this dataset depend on besides the model (which
        its checkpoint names): a changed default changes the key, so old cells are not
        reused."""
        return repr((self.task, self.n_train, self.n_test, self.train, self.vebi_mu,
                     self.masks, self.pointing_tolerance))  # fmt: skip

    def build(self, split: str, *, n_per_class: int | None = None, size: int = 64, seed: int = 0):
        """The ``split`` (``"train"`` or ``"test"``) with the spec's default size unless
        ``n_per_class`` is given."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        n = n_per_class or (self.n_train if split == "train" else self.n_test)
        return self.builder(split, n_per_class=n, size=size, seed=seed)


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(
    name: str,
    *,
    description: str,
    task: str = "single-label",
    n_train: int = 200,
    n_test: int = 50,
    train: TrainOptions | None = None,
    vebi_mu: float | None = None,
    masks: bool = True,
    pointing_tolerance: int = 0,
):
    """Decorator: register ``builder(split, *, n_per_class, size, seed)`` under ``name``
    (duplicates and unknown task kinds refused)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def deco(builder):
        if name in _REGISTRY:
            raise ValueError(f"a dataset named {name!r} is already registered")
        _REGISTRY[name] = DatasetSpec(
            name, builder, description, task, n_train, n_test, train or TrainOptions(),
            vebi_mu, masks, pointing_tolerance,
        )  # fmt: skip
        return builder

    return deco


def list_datasets(task: str | None = None) -> list[str]:
    """Registered dataset names (of one task kind if given), in registration order."""
    return [n for n, s in _REGISTRY.items() if task is None or s.task == task]


def get_dataset(name: str) -> DatasetSpec:
    """The spec registered as ``name``; a ``ValueError`` listing the names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def build_dataset(name: str, split: str, **kwargs):
    """``get_dataset(name).build(split, **kwargs)``."""
    return get_dataset(name).build(split, **kwargs)
