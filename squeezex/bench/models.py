"""The models a benchmark explains: trained once per (dataset, seed, with/without SE) and
cached as checkpoints (a damaged checkpoint is retrained, with a warning). What a model is,
how it trains and how it is scored is the dataset's task's (:mod:`squeezex.bench.tasks`)."""

from __future__ import annotations

import hashlib
import inspect
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from ..datasets import DatasetSpec, get_dataset
from ..explainers import explainer_info
from ..models import build_model
from ..models.archs import get_arch, normalisation_words
from ..models.records import BACKENDS, load_weights, rebuild
from ..models.se import find_se_block
from ..training import fit, load_checkpoint, save_checkpoint
from .cells import fit_cache
from .claims import Claim
from .config import BenchConfig
from .datacache import cached_split
from .store import IncompleteRunError, RunWarning
from .tasks import get_task, model_summary, task_of
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
    "given_model",
    "load_model",
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
    batch_size, epochs, lr = training_options(cfg, spec)
    fields = [spec.name, cfg.size, n_train, epochs, batch_size, lr, cfg.pool, se, seed, cfg.seed]
    if cfg.arch != "small":  # the default's keys (and so its checkpoints) are those before --arch
        fields.append(get_arch(cfg.arch).key())
    if getattr(spec, "digest", None):  # a user's folder: its path and listing
        fields.append(spec.key())
    key = json.dumps(fields)
    if not cfg.checkpoints:
        return None, key
    tag = hashlib.sha256(key.encode()).hexdigest()[:16]
    arch = "" if cfg.arch == "small" else f"{cfg.arch}-"
    name = f"{arch}{spec.name}-{'se' if se else 'plain'}-{seed}-{tag}.pt"
    return Path(cfg.checkpoints) / name, key


def training_options(cfg: BenchConfig, spec: DatasetSpec) -> tuple[int, int, float]:
    """``(batch size, epochs, learning rate)`` of a model of ``cfg`` on ``spec``: the
    architecture's where it sets them (a ConvNeXt or a ViT trains at 1e-3, not the CNNs'
    3e-3; the ViT for 30 epochs), else the dataset's, else the run's."""
    arch = get_arch(cfg.arch)
    return (
        spec.train.batch_size or cfg.batch_size,
        arch.epochs or spec.train.epochs or cfg.epochs,
        arch.lr or spec.train.lr or cfg.lr,
    )


def cached_model(cfg: BenchConfig, spec: DatasetSpec, n_train: int, se: bool, seed: int,
                 build, train, may_train: bool = True, arch: dict | None = None):  # fmt: skip
    """``(model in eval mode, training seconds (0 if loaded), checkpoint path)``: ``build()``
    loaded from its checkpoint, or (none, or a damaged one: warned) trained with
    ``train(model)`` → seconds and saved atomically. Training holds a claim on the
    checkpoint, so concurrent workers (shards) that need the same model train it once:
    the others wait for it and load it. ``arch`` (how to build the model again, for
    :func:`load_model`) is saved in the checkpoint.

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
        batch_size, epochs, lr = training_options(cfg, spec)
        return fit(
            model,
            train,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
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
        A pair: a dict ``{seed: (SE model on cfg.device, checkpoint path)}`` for the
        explained seeds, and the models' summary (the task's
        :meth:`~squeezex.bench.tasks.Task.summarise`).
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


def load_model(path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """The model of a checkpoint the harness wrote (``data/checkpoints/*.pt``), in eval
    mode on ``device``, and what it is (``arch``: builder, classes, SE, pooling, image
    size). Checkpoints written before ``arch`` was recorded are read from their key.

    Raises:
        ValueError: not a readable squeezex checkpoint, or not an image classifier.
        FileNotFoundError: no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state = ckpt["state_dict"]
    except Exception as exc:
        raise ValueError(f"{path} is not a squeezex checkpoint ({type(exc).__name__})") from None
    arch = ckpt.get("arch") or _arch_from_key(path, ckpt.get("config"), state)
    if str(arch.get("builder")).startswith(tuple(f"{b}:" for b in BACKENDS)):
        model = rebuild(arch)  # a squeezed model (squeezex squeeze): builder, normalisation, SE
        load_weights(model, state, str(path))
        return model.eval().to(device), arch
    if arch.get("builder") != "small":
        raise ValueError(
            f"{path} holds a {arch.get('builder')} model: squeezex reads the image "
            "classifiers the benchmark trains (squeezex bench --arch) and models squeezex "
            "squeeze wrote; explain others from Python"
        )
    model = build_model("small", arch["num_classes"], se=arch["se"], pool=arch["pool"])
    load_checkpoint(path, model)
    return model.eval().to(device), arch


def _arch_from_key(path: Path, key, state: dict) -> dict:
    """``arch`` of a checkpoint that records none (written before ``arch`` was, or by a
    task whose checkpoints record none): its training key (dataset, size, …, pool, SE) and
    the dataset's task's model builder."""
    try:
        name, size, _, _, _, _, pool, se = json.loads(key)[:8]
    except (TypeError, ValueError):
        raise ValueError(
            f"{path} does not say what model it holds (no arch record, no training key): "
            "squeezex needs a checkpoint written by squeezex squeeze or squeezex bench, which "
            "record the architecture, classes, input size and normalisation"
        ) from None
    builder = task_of(name, missing_ok=True).builder
    if builder != "small" or "fc.weight" not in state:
        return {"builder": builder if builder != "small" else "unknown"}
    return {"builder": "small", "num_classes": int(state["fc.weight"].shape[0]), "se": se,
            "pool": pool, "size": size, "classes": None, "dataset": name}  # fmt: skip


def given_model(cfg: BenchConfig, spec: DatasetSpec, train, test):
    """The checkpoint ``cfg.model`` (``squeezex squeeze``'s or the harness's) as the run's
    one model, scored on ``test``; the same return as :func:`train_models` (no model
    without SE: its accuracy is ``None``).

    Raises:
        ValueError: the checkpoint is not readable, holds no SE block, has other classes
            than the data, or was made for another input size than ``cfg.size``.
    """
    task = get_task(spec.task)
    model, arch = load_model(cfg.model, cfg.device)
    source = f"--model {cfg.model}"
    if find_se_block(model, required=False) is None:
        raise ValueError(f"{source} has no SE block: squeeze it first (squeezex squeeze)")
    classes = arch.get("classes")
    n = arch.get("num_classes")
    if n is not None and n != len(test.classes):
        raise ValueError(f"{source} has {n} classes, the data {len(test.classes)} "
                         f"({', '.join(test.classes)})")  # fmt: skip
    if classes is not None and [_norm(c) for c in classes] != [_norm(c) for c in test.classes]:
        raise ValueError(f"{source}'s classes ({', '.join(classes)}) are not the data's "
                         f"({', '.join(test.classes)})")  # fmt: skip
    if arch.get("size") and int(arch["size"]) != cfg.size:
        raise ValueError(f"{source} takes {arch['size']}-px images: run with --size {arch['size']}")
    score = task.evaluate(cfg, model, test, se=True, seed=cfg.seed)
    summary = task.summarise(cfg, spec, train, test, [score], [0.0])
    summary.update(
        arch=f"{arch.get('builder')} (given: {Path(cfg.model).name})" + _se_words(arch),
        arch_name=str(arch.get("builder")),
        normalisation=normalisation_words(arch.get("mean"), arch.get("std")),
        checkpoint=str(Path(cfg.model).resolve()),
    )
    return {cfg.seed: (model, Path(cfg.model))}, summary


def _norm(name: str) -> str:
    """A class name as a folder may spell it (``red leaf`` is ``red_leaf``)."""
    return name.replace(" ", "_").lower()


def _se_words(arch: dict) -> str:
    se = arch.get("se")
    if se is True or (isinstance(se, dict) and se.get("gate") in (None, "sigmoid")):
        return " + SE"
    return f" + SE (gate {se['gate']}, squeezed)" if isinstance(se, dict) else ""


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
