"""What a benchmark run depends on: :class:`BenchConfig`, checked when it is made."""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import torch

from ..datasets import get_dataset, list_datasets
from ..datasets.user import register_folder
from ..explainers import list_explainers
from ..explainers.adapters import missing_adapters
from ..metrics.sanity import INITS
from ..metrics.vocabulary import FAMILIES
from ..models.archs import get_arch, list_archs

__all__ = [
    "BenchConfig",
    "DEFAULT_DATASETS",
    "DEFAULT_METHODS",
    "FAMILIES",
    "SCHEMA_VERSION",
    "check_device",
]

#: Version of the run-folder layout and the cells' contents (part of every fingerprint).
SCHEMA_VERSION = 5

#: The default datasets: the two on which methods differ (on an8flower-single-6c every
#: method but the random floor points at the leaf; it is one ``--dataset`` away).
DEFAULT_DATASETS = "an8flower-hard,scenes-6c"

DEFAULT_METHODS = [
    "se",
    "se-paper",
    "se-logit",
    "se-topk",
    "se-class",
    "activation-mean",
    "gradcam",
    "vebi",
    "vebi-nofix",
    "random",
]

#: Settings that do not change what a (dataset, seed, method) cell holds (left out of the
#: fingerprint): which datasets, seeds and methods a run covers, where it writes and caches.
_NOT_IN_FINGERPRINT = (
    "methods",
    "dataset",
    "data",  # its dataset's name (and its spec key: the folder's listing) are the cells'
    "seeds",
    "explain_seeds",
    "out",
    "checkpoints",
    "progress",
    "resume",
    "replace_other",
    "n_examples",
)


def file_digest(path) -> str:
    """The first 16 hex digits of the SHA-256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def check_device(device: str) -> str:
    """``device`` if torch knows it and this machine has it; a ``ValueError`` otherwise."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: use cpu, cuda, cuda:<index> or mps") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} is not available: this machine has no CUDA GPU")
    if d.type == "cuda" and d.index is not None and d.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} is not available: {torch.cuda.device_count()} GPU(s)")
    if d.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} is not available on this machine")
    if d.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r} is not supported: use cpu, cuda or mps")
    return device


@dataclass
class BenchConfig:
    """Everything a benchmark run depends on (saved in results.json).

    ``dataset`` is one registered name (:func:`squeezex.datasets.list_datasets`) or a
    comma-separated list; ``explain_seeds`` > 1 makes the training seed a dimension of
    the table (each seed's SE model is explained and scored). ``families`` picks metric
    families (default: all). ``n_sanity``, ``n_sensitivity`` and ``n_road`` are the
    numbers of test images (stratified by class) the three costliest metrics use; ``sanity_init`` is how the
    sanity check re-initialises a layer ("redraw", Adebayo et al.'s, or "reset"). ``deletion_baseline`` is what deleted pixels
    become ("zero", "mean" or "blur"): zero by measurement — on an8Flower a blurred leaf
    keeps its colour, so the class survives deletion with "blur" and every map, random
    included, scores about the same deletion AUC, near 1; with "zero" the maps that find
    the leaf score far below the random one (``benchmarks/faithfulness_baselines.py``,
    its JSON). Deleted, removed and imputed pixels are defined in pixel space (images in
    [0, 1]): every model takes pixels and a normalised one carries its normalisation as
    its first layer, so "zero" is black for every architecture. ``resume=False``
    recomputes everything the run folder holds for this configuration (``--fresh``).

    A run folder holds one configuration (one :meth:`fingerprint`): a run into a folder
    that holds intact cells of another configuration raises a ``ValueError`` naming the
    settings that differ, before anything is computed. Give it another ``out`` to keep
    both, or ``replace_other=True`` (``--replace``) to delete the other configuration's
    cells and start this one there. Settings outside the fingerprint (more methods,
    datasets or seeds) add to the same folder.

    ``arch`` is the registered architecture the run trains
    (:func:`squeezex.models.archs.list_archs`; its configuration and normalisation are
    part of the fingerprint). ``data`` is a user's image folder
    (:func:`squeezex.datasets.user.register_folder`: masks in ``<data>_MASK`` turn on
    localisation), run instead of ``dataset``. ``model`` instead scores one checkpoint (``squeezex
    squeeze``'s or the harness's) without training: one seed, its content in the
    fingerprint.

    Raises:
        ValueError: a setting is out of range or names something unknown (the message
            lists the choices).
    """

    dataset: str = DEFAULT_DATASETS
    arch: str = "small"
    model: str | None = None
    data: str | None = None
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    seed: int = 0
    seeds: int = 3
    explain_seeds: int = 1
    size: int = 64
    n_train_per_class: int | None = None
    n_test_per_class: int | None = None
    epochs: int = 12
    batch_size: int = 64
    lr: float = 3e-3
    pool: str = "max"
    device: str = "cpu"
    out: str = "data/runs/bench"
    checkpoints: str | None = "data/checkpoints"
    vebi_mu: float | None = None
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    deletion_steps: int = 10
    deletion_baseline: str = "zero"
    n_sensitivity: int = 16
    n_sanity: int = 12
    n_road: int = 24
    sanity_init: str = "redraw"
    n_examples: int = 6
    resume: bool = True
    replace_other: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self._check_names()
        self._check_model()
        self._check_numbers()
        check_device(self.device)

    def _check_names(self) -> None:
        if self.data is not None:  # a user's folder: registered as a dataset, run alone
            self.dataset = register_folder(self.data).name
        names = self.datasets
        if self.arch not in list_archs():
            raise ValueError(
                f"unknown architecture {self.arch!r}; choose from {', '.join(list_archs())}"
            )
        known = list_datasets()
        unknown = [d for d in names if d not in known]
        if not names or unknown:
            raise ValueError(
                f"unknown dataset {', '.join(unknown) or repr(self.dataset)}; "
                f"choose from {', '.join(known)}"
            )
        if self.methods == ["all"]:
            self.methods = list_explainers()
        self.methods = list(dict.fromkeys(self.methods))
        unknown = [m for m in self.methods if m not in list_explainers()]
        missing = missing_adapters()  # adapters without their library: the install hint
        if hints := [missing[m] for m in unknown if m in missing]:
            raise ValueError("; ".join(hints))
        if unknown:
            raise ValueError(
                f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(list_explainers())}"
            )
        if not self.methods:
            raise ValueError("methods is empty")
        bad = [f for f in self.families if f not in FAMILIES]
        if bad or not self.families:
            raise ValueError(f"unknown metric family {', '.join(bad)}; choose from {FAMILIES}")
        if self.pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {self.pool!r}")
        if self.sanity_init not in INITS:
            raise ValueError(f"sanity_init must be one of {INITS}, got {self.sanity_init!r}")
        if self.deletion_baseline not in ("zero", "mean", "blur"):
            raise ValueError(
                f"deletion_baseline must be 'zero', 'mean' or 'blur', got {self.deletion_baseline!r}"
            )

    def _check_model(self) -> None:
        """``model``: a checkpoint file (what it holds is read when the run loads it); the
        run scores that one model, so one training seed."""
        if self.model is None:
            return
        if not Path(self.model).is_file():
            raise ValueError(f"--model {self.model}: no such checkpoint file")
        if self.arch != "small":
            raise ValueError(
                "--model and --arch exclude each other: the checkpoint says its architecture"
            )
        self.seeds = self.explain_seeds = 1

    def _check_numbers(self) -> None:
        for name, least in [
            ("seed", 0),
            ("seeds", 1),
            ("epochs", 1),
            ("batch_size", 1),
            ("n_examples", 1),
            ("explain_seeds", 1),
            ("deletion_steps", 2),
            ("n_sensitivity", 2),
            ("n_sanity", 2),
            ("n_road", 2),
            ("size", 32),
        ]:
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be >= {least}, got {getattr(self, name)}")
        if self.explain_seeds > self.seeds:
            raise ValueError(
                f"explain_seeds ({self.explain_seeds}) must not exceed seeds ({self.seeds})"
            )
        for name in ("n_train_per_class", "n_test_per_class"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if self.vebi_mu is not None and not self.vebi_mu > 0:
            raise ValueError(f"vebi_mu must be > 0, got {self.vebi_mu}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    @property
    def datasets(self) -> list[str]:
        return [d.strip() for d in str(self.dataset).split(",") if d.strip()]

    @property
    def train_seeds(self) -> list[int]:
        """The training seeds (models with and without SE are trained for each)."""
        return list(range(self.seed, self.seed + self.seeds))

    @property
    def explained_seeds(self) -> list[int]:
        """The training seeds whose SE models are explained and scored."""
        return self.train_seeds[: self.explain_seeds]

    def vebi_budget(self, dataset: str) -> float:
        """VEBI's μ on ``dataset``: the run's, else the dataset's, else 10 (the paper's)."""
        return self.vebi_mu or get_dataset(dataset).vebi_mu or 10.0

    def changes_from(self, old: dict) -> list[str]:
        """The fingerprinted settings in which this configuration differs from ``old`` (a
        stored configuration, e.g. ``results.json``'s ``config``), each as
        ``"<setting> <old> → <new>"``. A setting ``old`` lacks (written before it existed)
        counts as its default, and reads as ``"?"`` when this one is not the default."""
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
        out = []
        for k, v in asdict(self).items():
            was = old.get(k, defaults.get(k, "?"))
            if k not in _NOT_IN_FINGERPRINT and was != v:
                out.append(f"{k} {_shown(was)} → {_shown(v)}")
        return out

    def fingerprint(self) -> str:
        """What makes a finished cell reusable: everything but the method and dataset lists
        and the output settings."""
        keep = {k: v for k, v in asdict(self).items() if k not in _NOT_IN_FINGERPRINT}
        keep["schema"] = SCHEMA_VERSION
        if self.arch == "small":  # the default: the fingerprints of runs before --arch hold
            del keep["arch"]
        else:  # its configuration and normalisation, not only its name
            keep["arch"] = get_arch(self.arch).key()
        if self.model is None:
            del keep["model"]
        else:  # the checkpoint's content: a retrained file at the same path is another model
            keep["model"] = file_digest(self.model)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


def _shown(value) -> str:
    """A setting's value as a user typed it (a list comma-separated, ``None`` as none)."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)
