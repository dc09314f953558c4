"""The models a benchmark explains: trained once per (dataset, seed, with/without SE) and
cached as checkpoints (a damaged checkpoint is retrained, with a warning). What a model is,
how it trains and how it is scored is the dataset's task's (:mod:`squeezex.bench.tasks`)."""

from __future__ import annotations

import hashlib
import inspect
import json
import warnings
from pathlib import Path

from ..datasets import DatasetSpec, get_dataset
from ..explainers import explainer_info
from ..training import fit, load_checkpoint, save_checkpoint
from .cells import fit_cache
from .claims import Claim
from .config import BenchConfig
from .datacache import cached_split
from .store import IncompleteRunError, RunWarning
from .tasks import get_task, model_summary
from .tasks.images import model_reliance

__all__ = [
    "splits",
    "trained_model",
    "example_maps",
    "load_or_train",
    "train_models",
    "shard_models",
    "cached_model",
    "model_summary",
    "model_reliance",
]


def splits(cfg: BenchConfig, dataset: str):
    """The ``(train, test)`` splits a run with ``cfg`` uses for ``dataset``: drawn by the
    dataset's generator once, then read back from the checkpoint folder
    (:mod:`squeezex.bench.datacache`)."""
    spec = get_dataset(dataset)
    options = {"size": cfg.size, "seed": cfg.seed, "folder": cfg.checkpoints}
    train = cached_split(spec, "train", n_per_class=cfg.n_train_per_class, **options)
    test = cached_split(spec, "test", n_per_class=cfg.n_test_per_class, **options)
    return train, test


def trained_model(cfg: BenchConfig, dataset: str, seed: int | None = None, *, se: bool = True):
    """The model a run with ``cfg`` trains on ``dataset`` for training ``seed`` (default:
    the first), from its checkpoint when there is one (trained and cached otherwise);
    in eval mode, on ``cfg.device`` (on an audio-visual dataset, a
    :class:`~squeezex.models.SpeakerNet`: the model is the dataset's task's)."""
    train, _ = splits(cfg, dataset)
    seed = cfg.seed if seed is None else seed
    model, _, _ = load_or_train(cfg, get_dataset(dataset), train, se, seed)
    return model.to(cfg.device)


def example_maps(cfg: BenchConfig, dataset: str, methods=("se", "gradcam"), n: int = 4) -> dict:
    """The first ``n`` test images of ``dataset`` (the split a run with ``cfg`` scores)
    explained by ``methods`` with the run's SE model (trained and cached on first use); a
    method with a fit step (VEBI) is fitted on the run's training split. Returns
    ``{"images", "maps": {method: N×1×H×W}, "masks", "labels"}``; drawn by
    :func:`squeezex.figures.example_grid`."""
    train, test = splits(cfg, dataset)
    model, _, checkpoint = load_or_train(cfg, get_dataset(dataset), train, True, cfg.seed)
    model = model.to(cfg.device)
    x, y = test.images[:n].float() / 255, test.targets[:n]
    maps = {}
    for name in methods:
        info = explainer_info(name)
        kwargs = _fit(info.fit, model, train, checkpoint) if info.fit else {}
        maps[name] = (
            info.build(model, **kwargs).attribute(x.to(cfg.device), target=y.to(cfg.device)).cpu()
        )
    labels = [f"{test.classes[int(t)]}" for t in y]
    return {"images": x, "maps": maps, "masks": test.masks[:n], "labels": labels}


def _fit(fit_fn, model, train, checkpoint) -> dict:
    """``fit_fn``'s keyword arguments for ``model`` on ``train`` with its own defaults, kept
    beside the checkpoint (:func:`~squeezex.bench.cells.fit_cache`): a run that fits with
    the same options reads it back (the benchmark fits VEBI with the dataset's μ)."""
    defaults = {k: p.default for k, p in inspect.signature(fit_fn).parameters.items() if k == "mu"}
    return fit_fn(model, train, progress=False, cache=fit_cache(checkpoint, fit_fn, defaults),
                  **defaults)  # fmt: skip


def _checkpoint(cfg: BenchConfig, spec: DatasetSpec, n_train: int, se: bool, seed: int):
    """The checkpoint path of one model and the key it is written with."""
    batch_size = spec.train.batch_size or cfg.batch_size
    epochs = spec.train.epochs or cfg.epochs
    lr = spec.train.lr or cfg.lr
    key = json.dumps(
        [spec.name, cfg.size, n_train, epochs, batch_size, lr, cfg.pool, se, seed, cfg.seed]
    )
    if not cfg.checkpoints:
        return None, key
    tag = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cfg.checkpoints) / f"{spec.name}-{'se' if se else 'plain'}-{seed}-{tag}.pt", key


def cached_model(cfg: BenchConfig, spec: DatasetSpec, n_train: int, se: bool, seed: int,
                 build, train, may_train: bool = True, arch: dict | None = None):  # fmt: skip
    """``(model in eval mode, training seconds (0 if loaded), checkpoint path)``: ``build()``
    loaded from its checkpoint, or (none, or a damaged one: warned) trained with
    ``train(model)`` → seconds and saved atomically. Training holds a claim on the
    checkpoint, so concurrent workers (shards) that need the same model train it once:
    the others wait for it and load it. ``arch`` (how to build the model again, for
    :func:`squeezex.bench.bulk.load_model`) is saved in the checkpoint.

    Raises:
        IncompleteRunError: no checkpoint and not ``may_train`` (a reduce step).
    """
    path, key = _checkpoint(cfg, spec, n_train, se, seed)
    if path is None:
        model = build()
        return model.eval(), train(model), None
    if (model := _load(path, build)) is not None:
        return model, 0.0, path
    if not may_train:
        raise IncompleteRunError(
            f"no checkpoint {path.name} in {path.parent}: a shard that trains it has not "
            "finished (resubmit the shards, or run without --reduce to train it here)"
        )
    claim = Claim(path.with_name(path.name + ".claim"))
    claim.acquire(wait=True)
    try:
        if (model := _load(path, build, warn=False)) is not None:  # another worker trained it
            return model, 0.0, path
        model = build()
        seconds = train(model)
        save_checkpoint(path, model, config=key, **({"arch": arch} if arch else {}))
    finally:
        claim.release()
    return model.eval(), seconds, path


def _load(path: Path, build, warn: bool = True):
    """``build()`` with the checkpoint at ``path`` loaded (in eval mode), or ``None`` (no
    file, or a damaged one: warned, to be retrained)."""
    if not path.is_file():
        return None
    model = build()
    try:
        load_checkpoint(path, model)
    except ValueError as exc:
        if warn:
            warnings.warn(f"{exc}; retraining it", RunWarning, stacklevel=4)
        return None
    return model.eval()


def load_or_train(cfg: BenchConfig, spec: DatasetSpec, train, se: bool, seed: int,
                  may_train: bool = True):  # fmt: skip
    """``(model in eval mode, training seconds (0 if loaded), checkpoint path)`` of the
    dataset's task's model with or without SE for training ``seed``."""
    task = get_task(spec.task)

    def build():
        return task.build_model(cfg, spec, train, se=se, seed=seed)

    def train_it(model):
        return fit(
            model,
            train,
            epochs=spec.train.epochs or cfg.epochs,
            lr=spec.train.lr or cfg.lr,
            batch_size=spec.train.batch_size or cfg.batch_size,
            seed=seed,
            device=cfg.device,
            progress=cfg.progress,
            desc=f"train {spec.name} {'SE' if se else 'plain'} seed {seed}",
            objective=task.objective,
        ).seconds

    arch = task.arch(cfg, spec, train, se=se)
    return cached_model(cfg, spec, len(train), se, seed, build, train_it, may_train, arch)


def train_models(cfg: BenchConfig, spec: DatasetSpec, train, test, may_train: bool = True):
    """Train (or load) a model with and without SE for every training seed (only load,
    without ``may_train``: see :func:`cached_model`), and score each on ``test``.

    Returns:
        ``({seed: (SE model on cfg.device, checkpoint path)} for the explained seeds,
        the models' summary)`` (the task's :meth:`~squeezex.bench.tasks.Task.summarise`).
    """
    task = get_task(spec.task)
    scores, seconds, explained = [], [], {}
    for s in cfg.train_seeds:
        for se in (True, False):
            model, secs, path = load_or_train(cfg, spec, train, se, s, may_train)
            scores.append(task.evaluate(cfg, model, test, se=se, seed=s))
            seconds.append(secs)
            if se and s in cfg.explained_seeds:
                explained[s] = (model.to(cfg.device), path)
    return explained, task.summarise(cfg, spec, train, test, scores, seconds)


def shard_models(cfg: BenchConfig, spec: DatasetSpec, train, parts, train_one=None) -> dict:
    """The models a shard needs: for each of its parts of training units, the part that
    trains (part 0) trains or loads the models with and without SE; the others wait for
    the SE checkpoint. Returns ``{seed: (SE model on cfg.device, checkpoint path)}`` for
    the explained seeds (the accuracy summary is the reduce step's)."""
    if not cfg.checkpoints:
        raise ValueError(
            "a sharded run shares its models through the checkpoint cache: "
            "--checkpoints must name a folder every shard can reach"
        )
    train_one = train_one or load_or_train
    explained = {}
    for part in parts:
        for se in (True, False) if part.trains else (True,):
            model, _, path = train_one(cfg, spec, train, se, part.seed)
            if se and part.seed in cfg.explained_seeds:
                explained[part.seed] = (model.to(cfg.device), path)
    return explained


def __getattr__(name: str):
    if name == "example_grid":  # it draws: moved to squeezex.figures (this name still works)
        import importlib

        warnings.warn(
            "squeezex.bench.models.example_grid moved to squeezex.figures.example_grid",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module("squeezex.figures").example_grid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
