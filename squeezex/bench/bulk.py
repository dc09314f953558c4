"""Bulk explanation: every image of a folder or a dataset explained by a checkpoint's model.

``squeezex explain --model CKPT --data FOLDER|DATASET --methods se,gradcam --out DIR``
writes, per method and shard, one file ``DIR/<method>/shard-<i>-of-<n>.pt`` holding the
maps as uint8 (N×1×H×W, 1/255 steps) with their sample indices and labels, and
``DIR/index.json`` naming the model, the data and every file. ``--shard I/N`` (or a Slurm
array task, or a ``torchrun`` rank) explains only its range of samples. The ranges are cut
at batch boundaries of the unsharded run, so every shard computes exactly the batches one
process would: the maps of a sharded run are those of an unsharded one, byte for byte,
and no sample is padded in twice (as ``DistributedSampler`` does).

An image folder is read as :func:`open_data` says: with class sub-folders, by class
(ImageFolder's walk, :func:`squeezex.images.list_images`; images at its top level are
left out with a warning), without any, or with ``--flat``, every image under it
unlabelled; every file through :func:`squeezex.images.read_image`.

**Whose maps a folder holds.** A run is its model (the checkpoint's sha256), its data,
the number of images, the image size, the target mode and the sharding (shards and batch
size). ``index.json`` and every shard file record the run that made them (a shard file
also its method, its range and a checksum of its tensors). Then:

* a shard file of this run, intact (complete, its checksum right), is *reused*, not
  explained again (resumable per shard);
* a shard file that is missing, damaged (truncated, unreadable, its checksum wrong),
  misplaced (another method's or range's under this name) or written by an older
  squeezex that recorded no run, is *explained again* and replaced: the folder's
  ``index.json`` says whose the folder is, so such a file is no one else's maps;
* a folder whose ``index.json`` names another run, or, when it has no ``index.json``,
  any of whose shard files records another run, is *refused* with an error naming the
  file, both models and both data (choose another ``--out``): another run's maps are
  never overwritten, nor reused as this run's, and ``index.json`` is not rewritten;
* :class:`ExplainedMaps` reads a shard only when it records the run ``index.json``
  names (another run's is an error; a damaged or older one is "not finished").

Read the maps back with :class:`ExplainedMaps`. Here a checkpoint of a benchmark model (a
tiny one, trained in seconds) explains 12 generated images, as ``squeezex explain`` does
without ``--shard``:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from squeezex.bench import BenchConfig, trained_model
    >>> tmp = Path(tempfile.mkdtemp())
    >>> cfg = BenchConfig(dataset="an8flower-single-6c", n_train_per_class=4, size=32,
    ...                   epochs=1, checkpoints=str(tmp), progress=False)
    >>> _ = trained_model(cfg, "an8flower-single-6c")  # cached as tmp/an8flower-single-6c-se-0-….pt
    >>> (checkpoint,) = tmp.glob("*.pt")
    >>> job = ExplainJob(str(checkpoint), "an8flower-single-6c", ["se", "gradcam"],
    ...                  str(tmp / "maps"), n_per_class=2, progress=False)
    >>> _ = explain_shard(job)
    >>> maps = ExplainedMaps(tmp / "maps")
    >>> maps.methods, maps.load("se").shape
    (['se', 'gradcam'], torch.Size([12, 1, 32, 32]))
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..datasets import get_dataset
from ..explainers import explainer_info
from ..images import list_images, read_image
from ..io import atomic_torch_save, atomic_write_json, ensure_folder
from ..progress import progress as progress_bar
from .config import check_device
from .models import _norm, load_model
from .store import quantise
from .tasks import task_datasets

__all__ = [
    "ExplainJob",
    "ExplainedMaps",
    "explain_shard",
    "load_model",
    "open_data",
    "shard_range",
    "rank_from_env",
    "inference_throughput",
]


# -- the model ----------------------------------------------------------------------------------
# -- the data -----------------------------------------------------------------------------------
class _Tensors(torch.utils.data.Dataset):
    """uint8 images in memory (a generated split) → (float image, label, index)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i].float() / 255, int(self.labels[i]), i


class _Files(torch.utils.data.Dataset):
    """Image files (class sub-folders or one flat folder) → (float image, label, index),
    read by :func:`squeezex.images.read_image`."""

    def __init__(self, files: list[Path], labels: list[int], size: int | None) -> None:
        self.files, self.labels, self.size = files, labels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from torchvision.transforms.functional import pil_to_tensor, resize

        x = pil_to_tensor(read_image(self.files[i]))
        if self.size is not None and tuple(x.shape[1:]) != (self.size, self.size):
            x = resize(x, [self.size, self.size], antialias=True)
        return x.float() / 255, self.labels[i], i


@dataclass
class Data:
    """What :func:`open_data` found: the dataset, class names and where it came from."""

    dataset: torch.utils.data.Dataset
    classes: list[str] | None
    source: str


def open_data(data: str, size: int | None, classes=None, *, split: str = "test",
              n_per_class: int | None = None, seed: int = 0, flat: bool = False) -> Data:  # fmt: skip
    """A folder of images or a registered single-label dataset's ``split`` (generated:
    ``n_per_class``, ``seed``).

    A folder is walked as :func:`squeezex.images.list_images` says: with class
    sub-folders, ImageFolder's ``<class>/<image>`` layout (images found recursively in
    each class folder; their class names map to the model's ``classes`` when it has them;
    images at the top level are left out with a warning); with none, or with ``flat``,
    every image under it, recursively, unlabelled (-1).

    Raises:
        ValueError: ``data`` is neither, the folder holds no image (or a class folder
            holds none), or ``flat`` with a dataset.
    """

    folder = Path(data)
    if folder.is_dir():
        found = list_images(folder, flat=flat, label="--data")
        names = found.classes or []
        index = {_norm(c): i for i, c in enumerate(classes or names)}
        labels = [index.get(_norm(names[y]), -1) if y >= 0 else -1 for y in found.labels]
        ds = _Files(found.files, labels, size)
        how = "" if found.classes else " (flat)"
        return Data(ds, list(classes or names) or None, f"folder {folder.resolve()}{how}")
    if flat:
        raise ValueError(f"--flat reads an image folder; --data {data!r} is not one")
    if data in (labelled := _explainable_datasets()):
        spec = get_dataset(data)
        split_ds = spec.build(split, n_per_class=n_per_class, size=size or 64, seed=seed)
        source = f"dataset {data} split={split} n_per_class={n_per_class} size={size} seed={seed}"
        return Data(_Tensors(split_ds.images, split_ds.targets), list(split_ds.classes), source)
    raise ValueError(
        f"--data {data!r} is neither a folder nor a single-label dataset ({', '.join(labelled)})"
    )


def _explainable_datasets() -> list[str]:
    """The registered datasets whose images and class labels ``squeezex explain`` reads:
    one image of one class per sample (their task's ``class_folders``)."""
    return task_datasets(class_folders=True)


# -- shards -------------------------------------------------------------------------------------
def shard_range(n: int, index: int, count: int, batch_size: int) -> range:
    """Samples of shard ``index`` of ``count``: whole batches of the unsharded run, as
    evenly as batches allow; together the shards cover ``range(n)`` once."""
    batches = -(-n // batch_size)
    lo, hi = index * batches // count, (index + 1) * batches // count
    return range(min(lo * batch_size, n), min(hi * batch_size, n))


def rank_from_env(environ=None) -> tuple[int, int] | None:
    """``(RANK, WORLD_SIZE)`` under ``torchrun`` (more than one process), else ``None``."""
    env = os.environ if environ is None else environ
    world = int(env.get("WORLD_SIZE", "1"))
    return (int(env.get("RANK", "0")), world) if world > 1 else None


# -- the job ------------------------------------------------------------------------------------
@dataclass
class ExplainJob:
    """What ``squeezex explain`` does (picklable: a Slurm job gets it as it is); ``flat``
    reads an image folder as one flat set of images (:func:`open_data`)."""

    model: str
    data: str
    methods: list[str]
    out: str
    batch_size: int = 64
    workers: int = 0
    device: str = "cpu"
    size: int | None = None
    split: str = "test"
    n_per_class: int | None = None
    seed: int = 0
    target: str = "predicted"
    progress: bool = True
    flat: bool = False

    def __post_init__(self) -> None:

        if not self.methods:
            raise ValueError("--methods is empty")
        for m in self.methods:
            if explainer_info(m).fit is not None:  # a ValueError for unknown names too
                raise ValueError(
                    f"{m} learns from training data (a fit step): explain it with squeezex bench"
                )
        if self.batch_size < 1 or self.workers < 0:
            raise ValueError("--batch-size must be >= 1 and --workers >= 0")
        if self.target not in ("predicted", "label"):
            raise ValueError(f"--target must be 'predicted' or 'label', got {self.target!r}")
        check_device(self.device)
        if not Path(self.model).is_file():
            raise FileNotFoundError(f"no checkpoint at {self.model}")


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _file(out: Path, method: str, index: int, count: int) -> Path:
    return out / method / f"shard-{index:05d}-of-{count:05d}.pt"


#: What makes a maps folder one run's: ``index.json`` and every shard file record these,
#: and a folder or file whose values differ holds another run's maps (refused).
_RUN = ("model_sha256", "data", "n", "size", "target", "shards", "batch_size")


def _index(job: ExplainJob, data: Data, n: int, size, count: int) -> dict:
    return {
        "schema": 1,
        "model": str(Path(job.model).resolve()),
        "model_sha256": _sha(job.model),
        "data": data.source,
        "n": n,
        "size": size,
        "target": job.target,
        "classes": data.classes,
        "shards": count,
        "batch_size": job.batch_size,
        "ranges": [
            [r.start, r.stop]
            for r in (shard_range(n, i, count, job.batch_size) for i in range(count))
        ],
        "methods": list(job.methods),
    }


def _old_index(out: Path) -> dict | None:
    """The folder's ``index.json``, or ``None`` when there is none (or none readable)."""
    try:
        old = json.loads((out / "index.json").read_text())
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) else None


def _write_index(out: Path, index: dict) -> None:
    """Write ``index.json``; a folder holding another model's or data's maps is refused:
    by its ``index.json``, or without one, by any of its shard files."""
    old = _old_index(out)
    if old is None:  # no index: whose are the shards here?
        for f in sorted(out.glob("*/shard-*-of-*.pt")):
            if (saved := _read_shard(f)) is not None:
                _check_owner(f, saved["made_by"], index)
    else:
        if any(old.get(k) != index[k] for k in _RUN):
            diff = [k for k in _RUN if old.get(k) != index[k]]
            raise ValueError(
                f"{out} holds maps of another run (its {', '.join(diff)} differ): "
                "choose another --out"
            )
        index["methods"] = list(dict.fromkeys(old.get("methods", []) + index["methods"]))
    atomic_write_json(out / "index.json", index)


def explain_shard(job: ExplainJob, index: int = 0, count: int = 1) -> dict:
    """Explain shard ``index`` of ``count`` with every method of ``job``; returns, per
    method, the images explained, the seconds and images/s (``reused`` when the shard's
    file was intact and of this run).

    Raises:
        ValueError: ``job.out`` holds maps of another run (its ``index.json`` or a shard
            file records another model, data, size, target or sharding; named).
    """
    out = ensure_folder(job.out)
    model, arch = load_model(job.model, job.device)
    size = job.size or arch.get("size")
    data = open_data(job.data, size, arch.get("classes"), split=job.split,
                     n_per_class=job.n_per_class, seed=job.seed, flat=job.flat)  # fmt: skip
    n = len(data.dataset)
    record = _index(job, data, n, size, count)
    _write_index(out, record)
    made_by = {m: _made_by(record, m, index) for m in job.methods}
    reuse = {m: _reusable(_file(out, m, index, count), made_by[m]) for m in job.methods}
    rows = shard_range(n, index, count, job.batch_size)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(data.dataset, list(rows)), batch_size=job.batch_size,
        num_workers=job.workers, shuffle=False,
    )  # fmt: skip
    report = {}
    for method in job.methods:
        if reuse[method]:
            report[method] = {"images": len(rows), "reused": True}
            continue
        path = _file(out, method, index, count)
        report[method] = _explain_method(job, model, method, loader, made_by[method], path)
    return {"shard": f"{index}/{count}", "range": [rows.start, rows.stop], "methods": report}


# -- what a shard file holds and whose it is ----------------------------------------------------
def _made_by(index: dict, method: str, shard: int) -> dict:
    """What a shard file records of the run that made it: the run's values of :data:`_RUN`
    (as ``index.json`` has them), the method and the shard's range."""
    return {**{k: index[k] for k in _RUN}, "method": method, "range": list(index["ranges"][shard])}


def _digest(saved: dict) -> str:
    """A checksum of a shard's tensors (a damaged byte in them is caught)."""
    h = hashlib.sha256()
    for key in ("indices", "labels", "maps"):
        t = saved[key].contiguous()
        h.update(f"{key} {t.dtype} {tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def _read_shard(path: Path) -> dict | None:
    """The shard file's contents, or ``None`` when it is missing, unreadable or records
    no run (damaged, or written before shard files recorded theirs)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any unreadable file is one to explain again
        return None
    ok = isinstance(saved, dict) and isinstance(saved.get("made_by"), dict)
    return saved if ok else None


def _check_owner(path: Path, made_by: dict, run: dict) -> None:
    """Refuse a shard file another run made (another model, data, size, target or
    sharding): it is someone's maps, not to be overwritten nor read as these."""
    if diff := [k for k in _RUN if made_by.get(k) != run[k]]:
        raise ValueError(
            f"{path} holds maps of model {made_by.get('model_sha256')} on "
            f"{made_by.get('data')}; this run is model {run['model_sha256']} on {run['data']} "
            f"(the {', '.join(diff)} differ): choose another --out"
        )


def _intact(path: Path, saved: dict | None, made_by: dict) -> bool:
    """Whether ``saved`` (read from ``path``) is the whole shard ``made_by`` describes, its
    tensors unchanged; a shard of another run raises (:func:`_check_owner`)."""
    if saved is None:
        return False
    _check_owner(path, saved["made_by"], made_by)
    try:
        rows = range(*made_by["range"])
        return (
            saved["made_by"] == made_by
            and saved["indices"].tolist() == list(rows)
            and len(saved["maps"]) == len(saved["labels"]) == len(rows)
            and saved["maps"].dtype == torch.uint8
            and saved["digest"] == _digest(saved)
        )
    except Exception:  # a damaged record is not intact
        return False


def _reusable(path: Path, made_by: dict) -> bool:
    return _intact(path, _read_shard(path), made_by)


def _explain_method(job: ExplainJob, model, method: str, loader, made_by: dict, path: Path) -> dict:

    explainer = explainer_info(method).build(model)
    rows = range(*made_by["range"])
    maps, labels = [], []
    bar = progress_bar(total=len(rows), desc=f"{method} [{rows.start}:{rows.stop})", unit="img",
                       disable=not job.progress)  # fmt: skip
    start = time.perf_counter()
    for x, y, _ in loader:
        x = x.to(job.device)
        target = y.to(job.device) if job.target == "label" else None
        if target is not None and (target < 0).any():
            raise ValueError(f"--target label, but {job.data} has unlabelled images")
        maps.append(quantise(explainer.attribute(x, target=target)))
        labels.append(y)
        bar.update(len(x))
    seconds = time.perf_counter() - start
    bar.close()
    record = {
        "indices": torch.tensor(list(rows), dtype=torch.long),
        "labels": torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long),
        "maps": torch.cat(maps) if maps else torch.zeros(0, 1, 0, 0, dtype=torch.uint8),
        "method": method,
        "seconds": seconds,
        "made_by": made_by,
    }
    record["digest"] = _digest(record)
    atomic_torch_save(record, path)
    return {"images": len(rows), "seconds": seconds,
            "images_per_second": len(rows) / max(seconds, 1e-9), "reused": False}  # fmt: skip


@torch.no_grad()
def inference_throughput(model: nn.Module, loader, device: str = "cpu") -> float:
    """Images per second of a plain forward pass over ``loader`` (the footing against which
    a method's images/s is read)."""
    n, start = 0, time.perf_counter()
    for x, *_ in loader:
        model(x.to(device))
        n += len(x)
    return n / max(time.perf_counter() - start, 1e-9)


# -- reading maps back --------------------------------------------------------------------------
class ExplainedMaps:
    """The maps ``squeezex explain`` wrote to ``out``: ``load(method)`` gives them in
    sample order (float in [0, 1], or uint8 with ``raw=True``). Only shard files that
    record the run ``index.json`` names are read: another run's is an error (named), a
    damaged one or one of an older squeezex is "not finished"."""

    def __init__(self, out) -> None:
        self.root = Path(out)
        path = self.root / "index.json"
        if not path.is_file():
            raise FileNotFoundError(f"no index.json in {self.root}: run `squeezex explain` first")
        self.index = json.loads(path.read_text())
        self.n, self.methods = self.index["n"], self.index["methods"]

    def __repr__(self) -> str:
        return f"ExplainedMaps({str(self.root)!r}, n={self.n}, methods={self.methods})"

    def files(self, method: str) -> list[Path]:
        return [
            _file(self.root, method, i, self.index["shards"]) for i in range(self.index["shards"])
        ]

    def missing(self, method: str) -> list[Path]:
        """The shard files of ``method`` not written (or not intact) yet.

        Raises:
            ValueError: a shard file holds another run's maps than ``index.json`` names.
        """
        return [f for f, saved in self._read(method) if not saved]

    def _read(self, method: str) -> list[tuple[Path, dict | None]]:
        """Each shard file of ``method`` with its contents when intact (else ``None``)."""
        out = []
        for i, f in enumerate(self.files(method)):
            saved = _read_shard(f)
            out.append((f, saved if _intact(f, saved, _made_by(self.index, method, i)) else None))
        return out

    def _parts(self, method: str) -> list[dict]:
        if method not in self.methods:
            raise ValueError(f"no maps of {method!r} here; these are {', '.join(self.methods)}")
        parts = self._read(method)
        if missing := [f for f, saved in parts if not saved]:
            raise ValueError(
                f"{len(missing)} shard(s) of {method} are not finished: "
                f"{', '.join(str(m) for m in missing[:3])} (run squeezex explain again: it "
                "explains only these)"
            )
        return [saved for _, saved in parts]

    def load(self, method: str, raw: bool = False) -> torch.Tensor:
        """Every map of ``method``, N×1×H×W in sample order.

        Raises:
            ValueError: an unknown method, shards not finished (named), or a shard file
                holding another run's maps than ``index.json`` names.
        """
        maps = torch.cat([p["maps"] for p in self._parts(method) if len(p["maps"])])
        return maps if raw else maps.float() / 255

    def labels(self, method: str) -> torch.Tensor:
        return torch.cat([p["labels"] for p in self._parts(method)])

    def throughput(self, method: str) -> float:
        """Images per second over the shards' explaining time (loading included)."""
        parts = self._parts(method)
        return sum(len(p["maps"]) for p in parts) / max(sum(p["seconds"] for p in parts), 1e-9)


def submit_explain(job: ExplainJob, shards: int = 2, *, cluster: str = "local", folder=None,
                   poll: float = 5.0, log=print, **resources) -> dict:  # fmt: skip
    """``job`` as ``shards`` jobs of one array on ``cluster`` (``"slurm"`` or ``"local"``;
    ``resources`` as :func:`squeezex.bench.submit.submit`'s), waited for; returns the
    images/s per method over the shards (reused shards keep their first timing).

    Raises:
        ShardsFailedError: a shard failed (named with its log); submitting again explains
            only the shards whose files are missing.
    """
    from dataclasses import replace

    from .submit import run_array  # submitit, imported when submitting

    worker = replace(job, progress=False)
    out = Path(job.out)
    todo = list(range(shards))
    if (out / "index.json").is_file():
        done = ExplainedMaps(out)
        if done.index.get("shards") == shards and set(job.methods) <= set(done.methods):
            missing = {f.name for m in job.methods for f in done.missing(m)}
            todo = [i for i in todo if _file(out, "x", i, shards).name in missing]
            if len(todo) < shards:
                log(
                    f"{shards - len(todo)} of {shards} shards already explained: submitting {len(todo)}"
                )
    run_array(
        explain_shard, [(worker, i, shards) for i in todo], todo, shards, cluster=cluster,
        folder=Path(folder) if folder else out / "jobs", name="squeezex-explain", poll=poll,
        log=log, describe_result=_describe_explained, **resources,
    )  # fmt: skip
    maps = ExplainedMaps(out)
    return {m: maps.throughput(m) for m in job.methods}


def _describe_explained(result: dict) -> str:
    return "; ".join(
        f"{m} {r['images']} images" + (" (reused)" if r["reused"] else
                                       f" at {r['images_per_second']:.0f} images/s")
        for m, r in result["methods"].items()
    )  # fmt: skip
