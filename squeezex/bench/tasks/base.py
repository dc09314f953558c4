"""The protocol of a task kind, and the registry of task kinds.

A *task kind* (single-label image classification, multi-label, audio-visual, …) is what a
registered dataset declares (:attr:`squeezex.datasets.DatasetSpec.task`). Its
:class:`Task` says everything the benchmark does differently for it: what of a test split
is explained and stored, how a model is built, trained and scored, what the cells of one
(dataset, training seed) share (the *unit*) and what a cell computes, on what footing its
maps are made, and which figures and explorer show it. The harness, the results, the
reader, the figures, bulk explanation, the widgets and the command line look the task up
(:func:`get_task`, :func:`task_of`) and never branch on its name or a dataset's.

A new kind subclasses :class:`Task`, overrides what differs, and registers an instance
(:func:`register_task`); its name must be one of :data:`squeezex.datasets.TASKS`, the
kinds a dataset may declare. Figures and explorers are named as ``"module:attribute"``
strings and imported only when drawn, so the harness never imports drawing code.
"""

from __future__ import annotations

import importlib
import statistics
from typing import ClassVar

from torch import nn

from ...datasets import TASKS, get_dataset, list_datasets
from ...models.archs import get_arch
from ..cells import Cell, CellKey

__all__ = [
    "Task",
    "register_task",
    "get_task",
    "list_tasks",
    "task_of",
    "task_datasets",
    "resolve",
    "model_summary",
]


class Task:
    """What the benchmark does for the datasets of one task kind (see the module
    docstring). Subclasses override the methods marked *required*."""

    #: the kind datasets declare (one of :data:`squeezex.datasets.TASKS`)
    name: ClassVar[str] = ""
    #: the input kind of the explainer registry whose methods explain its models
    #: (:func:`squeezex.explainers.list_explainers`)
    inputs: ClassVar[str] = "image"
    #: whether a sample has several labels at once (N×K 0/1 targets), each explained
    multi_label: ClassVar[bool] = False
    #: how the faithfulness curves read the model: ``"softmax"`` (one class per sample:
    #: chance is one over the classes), ``"sigmoid"`` (each label's own probability), or
    #: ``""`` (no faithfulness curves)
    output: ClassVar[str] = ""
    #: whether a sample is one image of one class, so that a split can be written as class
    #: folders and read back from an image folder (``squeezex generate``, ``explain``)
    class_folders: ClassVar[bool] = False
    #: the name of the model builder its checkpoints hold (:func:`squeezex.bench.models.load_model`)
    builder: ClassVar[str] = "small"
    #: further maps a method cell writes beside its maps (:meth:`RunStore.extra_maps_path`)
    extra_maps: ClassVar[tuple[str, ...]] = ()
    #: ``"module:function"``: ``function(run, dataset, seed)`` → the ``(name, draw)`` jobs
    #: of one (dataset, seed) block's figures (:func:`squeezex.figures.make_figures`)
    figures: ClassVar[str] = ""
    #: ``"module:function"``: ``function(run, dataset, seed, n)`` → the run's example
    #: figure (``examples.png``) when the run's first dataset has this kind, or ``""``
    examples: ClassVar[str] = ""
    #: ``"module:class"``: the widget that explores a model of this kind
    explorer: ClassVar[str] = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, inputs={self.inputs!r})"

    # -- data -----------------------------------------------------------------------------
    def explanation_view(self, test):
        """What a run explains of a test split (the split itself by default)."""
        return test

    def split_record(self, test) -> dict:
        """What the run folder stores of the explained test split (*required*)."""
        raise NotImplementedError

    # -- models ---------------------------------------------------------------------------
    #: how :func:`squeezex.training.fit` trains its models (``None``: classification)
    objective = None

    def build_model(self, cfg, spec, train, *, se: bool, seed: int) -> nn.Module:
        """A new, untrained model for ``train`` (*required*)."""
        raise NotImplementedError

    def arch(self, cfg, spec, train, *, se: bool) -> dict | None:
        """What a checkpoint records to rebuild the model (``None``: nothing)."""
        return None

    def evaluate(self, cfg, model: nn.Module, test, *, se: bool, seed: int) -> dict:
        """One trained model's scores on the test split, ``{"se", "seed", "score", …}``
        (*required*)."""
        raise NotImplementedError

    def summarise(self, cfg, spec, train, test, scores: list[dict], seconds: list) -> dict:
        """The models' summary (``_models.json``) from every model's :meth:`evaluate`,
        in training order (*required*)."""
        raise NotImplementedError

    # -- cells ----------------------------------------------------------------------------
    def make_unit(self, cfg, store, dataset: str, seed: int, model, checkpoint, train, test):
        """What every cell of (dataset, training seed) shares (*required*)."""
        raise NotImplementedError

    def cell_keys(self, unit) -> list[CellKey]:
        """The unit's cells, in the order they are computed (*required*)."""
        raise NotImplementedError

    def not_applicable(self, unit, method: str) -> str | None:
        """Why ``method`` cannot explain the unit's model (``None``: it can)."""
        return None

    def compute_cell(self, unit, key: CellKey) -> Cell:
        """Explain and score one cell (*required*)."""
        raise NotImplementedError

    def finish_unit(self, store, unit) -> None:
        """What the unit stores once its cells are done (nothing by default)."""

    def footing(self, dataset: str, method: str, kind: str) -> tuple[str, str] | None:
        """``(key, text)``: on what footing a cell's maps are made, under which key of
        ``results.json``'s ``footing`` (``None``: not described)."""
        return None


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Register ``task`` under its name (a kind of :data:`squeezex.datasets.TASKS`,
    registered once)."""
    if task.name not in TASKS:
        raise ValueError(f"a task's name must be one of {TASKS}, got {task.name!r}")
    if task.name in _TASKS:
        raise ValueError(f"a task named {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The task registered as ``name``; a ``ValueError`` listing the names otherwise."""
    if name not in _TASKS:
        raise ValueError(f"unknown task kind {name!r}; choose from {', '.join(_TASKS)}")
    return _TASKS[name]


def list_tasks() -> list[str]:
    """The registered task kinds, in the order of :data:`squeezex.datasets.TASKS`."""
    return [t for t in TASKS if t in _TASKS]


#: The kind of a dataset that is no longer registered (read from an old run folder).
DEFAULT_TASK = "single-label"


def task_of(dataset: str, *, missing_ok: bool = False) -> Task:
    """The task of a registered dataset. With ``missing_ok``, a name no longer registered
    (read from an old run folder) gets the :data:`DEFAULT_TASK`'s; else a ``ValueError``."""
    try:
        spec = get_dataset(dataset)
    except ValueError:
        if not missing_ok:
            raise
        return get_task(DEFAULT_TASK)
    return get_task(spec.task)


def task_datasets(**capabilities) -> list[str]:
    """The registered datasets whose task has every capability given, e.g.
    ``task_datasets(class_folders=True)``: those whose samples are one image of one class."""
    return [
        d for d in list_datasets()
        if all(getattr(get_task(get_dataset(d).task), k) == v for k, v in capabilities.items())
    ]  # fmt: skip


def resolve(ref: str):
    """The object a ``"module:attribute"`` string names, imported now."""
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ValueError(f"expected 'module:attribute', got {ref!r}")
    return getattr(importlib.import_module(module), attr)


def model_summary(cfg, acc_se, acc_plain, seconds) -> dict:
    """A score with and without SE over the training seeds (the paper's no-cost claim),
    under ``accuracy*``: every table that reads accuracy reads it."""
    sd = statistics.stdev if len(acc_se) > 1 else (lambda v: 0.0)
    mean = statistics.fmean
    return {
        **arch_summary(cfg),
        "accuracy": acc_se[0],
        "accuracy_without_se": acc_plain[0] if acc_plain else None,
        "seeds": cfg.train_seeds,
        "accuracy_per_seed": acc_se,
        "accuracy_without_se_per_seed": acc_plain,
        "accuracy_mean": mean(acc_se),
        "accuracy_sd": sd(acc_se),
        "accuracy_without_se_mean": mean(acc_plain) if acc_plain else None,
        "accuracy_without_se_sd": (statistics.stdev(acc_plain) if len(acc_plain) > 1 else 0.0)
        if acc_plain
        else None,
        "train_seconds": seconds,
    }


def arch_summary(cfg) -> dict:
    """What the run's models are, in words: ``arch`` (the architecture, ``--arch``'s
    name and configuration), ``normalisation`` (of the inputs, inside the model)."""
    arch = get_arch(cfg.arch)
    if cfg.arch == "small":
        name = f"SmallCNN(stride=4, pool={cfg.pool}) + SE(r=16)"
    else:
        name = f"{arch.name}: {arch.description} + SE(r={arch.reduction})"
    return {"arch": name, "arch_name": arch.name, "normalisation": arch.normalisation}
