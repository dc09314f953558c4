"""The models a benchmark explains: trained once per (dataset, seed, with/without SE) and
cached as checkpoints (a damaged checkpoint is retrained, with a warning)."""

from __future__ import annotations

import hashlib
import json
import statistics
import warnings
from pathlib import Path

from ..datasets import DatasetSpec
from ..models import build_model
from ..training import (
    attribute_accuracy,
    evaluate,
    fit,
    load_checkpoint,
    predict,
    save_checkpoint,
)
from .claims import Claim
from .config import BenchConfig
from .store import IncompleteRunError, RunWarning

__all__ = [
    "splits",
    "trained_model",
    "example_grid",
    "train_models",
    "shard_models",
    "model_summary",
    "model_reliance",
]


def splits(cfg: BenchConfig, dataset: str):
    """The ``(train, test)`` splits a run with ``cfg`` uses for ``dataset``."""
    from ..datasets import get_dataset

    spec = get_dataset(dataset)
    options = {"size": cfg.size, "seed": cfg.seed}
    train = spec.build("train", n_per_class=cfg.n_train_per_class, **options)
    test = spec.build("test", n_per_class=cfg.n_test_per_class, **options)
    return train, test


def trained_model(cfg: BenchConfig, dataset: str, seed: int | None = None, *, se: bool = True):
    """The model a run with ``cfg`` trains on ``dataset`` for training ``seed`` (default:
    the first), from its checkpoint when there is one (trained and cached otherwise);
    in eval mode, on ``cfg.device``. On an audio-visual dataset, a
    :class:`~squeezex.models.SpeakerNet`."""
    from ..datasets import get_dataset

    train, _ = splits(cfg, dataset)
    seed = cfg.seed if seed is None else seed
    spec = get_dataset(dataset)
    if spec.task == "audio-visual":  # a SpeakerNet
        from .speakers import speaker_model as train_one
    else:
        train_one = _train_one
    model, _, _ = train_one(cfg, spec, train, se, seed)
    return model.to(cfg.device)


def example_grid(cfg: BenchConfig, dataset: str, methods=("se", "gradcam"), n: int = 4):
    """A first look before a benchmark: the first ``n`` test images of ``dataset`` (the
    split a run with ``cfg`` scores) explained by ``methods`` with the run's SE model
    (trained and cached on first use), each map's maximum marked, the mask outlined. A
    method with a fit step (VEBI) is fitted on the run's training split."""
    from ..explainers import explainer_info
    from ..viz import explanation_grid

    train, test = splits(cfg, dataset)
    model = trained_model(cfg, dataset)
    x, y = test.images[:n].float() / 255, test.targets[:n]
    maps = {}
    for name in methods:
        info = explainer_info(name)
        kwargs = info.fit(model, train, progress=False) if info.fit else {}
        maps[name] = (
            info.build(model, **kwargs).attribute(x.to(cfg.device), target=y.to(cfg.device)).cpu()
        )
    labels = [f"{test.classes[int(t)]}" for t in y]
    return explanation_grid(x, maps, test.masks[:n], row_labels=labels)


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
    :func:`squeezex.bulk.load_model`) is saved in the checkpoint.

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


def _train_one(cfg: BenchConfig, spec: DatasetSpec, train, se: bool, seed: int,
               may_train: bool = True):  # fmt: skip
    """``(model in eval mode, training seconds (0 if loaded), checkpoint path)``."""

    def build():
        return build_model("small", len(train.classes), se=se, seed=seed, pool=cfg.pool)

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
        ).seconds

    arch = {"builder": "small", "num_classes": len(train.classes), "se": se, "pool": cfg.pool,
            "size": cfg.size, "classes": list(train.classes), "dataset": spec.name}  # fmt: skip
    return cached_model(cfg, spec, len(train), se, seed, build, train_it, may_train, arch)


def train_models(cfg: BenchConfig, spec: DatasetSpec, train, test, may_train: bool = True):
    """Train (or load) a model with and without SE for every training seed (only load,
    without ``may_train``: see :func:`cached_model`).

    Returns:
        ``({seed: (SE model on cfg.device, checkpoint path)} for the explained seeds,
        the accuracy summary)``.
    """
    acc_se, acc_plain, seconds, explained, reliance = [], [], [], {}, {}
    per_attribute = {"se": [], "plain": []}
    multi = spec.task == "multi-label"
    for s in cfg.train_seeds:
        for se in (True, False):
            model, secs, path = _train_one(cfg, spec, train, se, s, may_train)
            (acc_se if se else acc_plain).append(evaluate(model, test, device=cfg.device))
            if multi:
                acc = attribute_accuracy(model, test, device=cfg.device)
                per_attribute["se" if se else "plain"].append(acc)
            seconds.append(secs)
            if se and s in cfg.explained_seeds:
                explained[s] = (model.to(cfg.device), path)
            if se and hasattr(test, "cue_targets"):
                reliance[str(s)] = model_reliance(model, test, cfg.device)
    summary = model_summary(cfg, acc_se, acc_plain, seconds)
    summary.update(n_train=len(train), n_test=len(test))
    if multi:
        summary.update(attributes=list(test.classes), attribute_accuracy=per_attribute)
    if reliance:
        summary["reliance"] = reliance
    if getattr(test, "bias_rho", None) is not None:
        summary["bias"] = {"rho": test.bias_rho, "attribute": test.classes[test.cue_attribute]}
    return explained, summary


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
    train_one = train_one or _train_one
    explained = {}
    for part in parts:
        for se in (True, False) if part.trains else (True,):
            model, _, path = train_one(cfg, spec, train, se, part.seed)
            if se and part.seed in cfg.explained_seeds:
                explained[part.seed] = (model.to(cfg.device), path)
    return explained


def model_reliance(model, test, device: str = "cpu") -> dict:
    """What a model of a cue dataset follows on its test split: the share of the images
    whose cue and object disagree on which the model predicts the cue's class
    (``reliance``) or the object's (``object``). On a biased faces split the classes are
    the biased attribute's yes/no: the mark says yes, the attribute's label says no (or
    the reverse), and ``reliance`` is the share of those faces the model answers as the
    mark does."""
    from ..datasets.cues import cue_reliance

    preds, _ = predict(model, test, device=device)
    if preds.dim() == 2:  # multi-label: the decision on the attribute the cue is tied to
        preds = preds[:, test.cue_attribute]
    return cue_reliance(preds, test.cue_targets, test.object_targets)


def model_summary(cfg: BenchConfig, acc_se, acc_plain, seconds) -> dict:
    """Accuracy with and without SE over the training seeds (the paper's no-cost claim)."""
    sd = statistics.stdev if len(acc_se) > 1 else (lambda v: 0.0)
    return {
        "arch": f"SmallCNN(stride=4, pool={cfg.pool}) + SE(r=16)",
        "accuracy": acc_se[0],
        "accuracy_without_se": acc_plain[0],
        "seeds": cfg.train_seeds,
        "accuracy_per_seed": acc_se,
        "accuracy_without_se_per_seed": acc_plain,
        "accuracy_mean": statistics.fmean(acc_se),
        "accuracy_sd": sd(acc_se),
        "accuracy_without_se_mean": statistics.fmean(acc_plain),
        "accuracy_without_se_sd": sd(acc_plain),
        "train_seconds": seconds,
    }
