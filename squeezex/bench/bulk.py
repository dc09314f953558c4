"""Bulk explanation: every image of a folder or a dataset explained by a checkpoint's model.

``squeezex explain --model CKPT --data FOLDER|DATASET --methods se,gradcam --out DIR``
writes, per method and shard, one file ``DIR/<method>/shard-<i>-of-<n>.pt`` holding the
maps as uint8 (N×1×H×W, 1/255 steps) with their sample indices and labels, and
``DIR/index.json`` naming the model, the data and every file. A shard whose file is intact
is not explained again (resumable per shard); ``--shard I/N`` (or a Slurm array task, or a
``torchrun`` rank) explains only its range of samples. The ranges are cut at batch
boundaries of the unsharded run, so every shard computes exactly the batches one process
would: the maps of a sharded run are those of an unsharded one, byte for byte, and no
sample is padded in twice (as ``DistributedSampler`` does).

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

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


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
    """Image files (class sub-folders or one flat folder) → (float image, label, index)."""

    def __init__(self, files: list[Path], labels: list[int], size: int | None) -> None:
        self.files, self.labels, self.size = files, labels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor, resize

        with Image.open(self.files[i]) as im:
            x = pil_to_tensor(im.convert("RGB"))
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
              n_per_class: int | None = None, seed: int = 0) -> Data:  # fmt: skip
    """A folder of images (ImageFolder's ``<class>/<image>`` layout, whose class names map
    to the model's ``classes`` when it has them, or one flat folder: labels -1) or a
    registered single-label dataset's ``split`` (generated: ``n_per_class``, ``seed``).

    Raises:
        ValueError: ``data`` is neither, or the folder holds no image.
    """

    folder = Path(data)
    if folder.is_dir():
        subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
        found = [(p, d.name) for d in subdirs for p in sorted(d.iterdir())] if subdirs else []
        found = found or [(p, None) for p in sorted(folder.iterdir())]
        found = [(p, c) for p, c in found if p.suffix.lower() in IMAGE_SUFFIXES]
        if not found:
            raise ValueError(f"--data {folder} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        names = sorted({c for _, c in found if c is not None})
        index = {_norm(c): i for i, c in enumerate(classes or names)}
        labels = [index.get(_norm(c), -1) if c is not None else -1 for _, c in found]
        ds = _Files([p for p, _ in found], labels, size)
        return Data(ds, list(classes or names) or None, f"folder {folder.resolve()}")
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
    """What ``squeezex explain`` does (picklable: a Slurm job gets it as it is)."""

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


def _write_index(out: Path, index: dict) -> None:
    """Write ``index.json``; a folder holding another model's or data's maps is refused."""
    path = out / "index.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        same = ("model_sha256", "data", "n", "size", "target", "shards", "batch_size")
        if old is not None and any(old.get(k) != index[k] for k in same):
            diff = [k for k in same if old.get(k) != index[k]]
            raise ValueError(
                f"{out} holds maps of another run (its {', '.join(diff)} differ): "
                "choose another --out"
            )
        if old is not None:
            index["methods"] = list(dict.fromkeys(old.get("methods", []) + index["methods"]))
    atomic_write_json(path, index)


def explain_shard(job: ExplainJob, index: int = 0, count: int = 1) -> dict:
    """Explain shard ``index`` of ``count`` with every method of ``job``; returns, per
    method, the images explained, the seconds and images/s (``reused`` when the shard's
    file was intact)."""
    out = ensure_folder(job.out)
    model, arch = load_model(job.model, job.device)
    size = job.size or arch.get("size")
    data = open_data(job.data, size, arch.get("classes"), split=job.split,
                     n_per_class=job.n_per_class, seed=job.seed)  # fmt: skip
    n = len(data.dataset)
    _write_index(out, _index(job, data, n, size, count))
    rows = shard_range(n, index, count, job.batch_size)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(data.dataset, list(rows)), batch_size=job.batch_size,
        num_workers=job.workers, shuffle=False,
    )  # fmt: skip
    report = {}
    for method in job.methods:
        path = _file(out, method, index, count)
        if _intact(path, rows):
            report[method] = {"images": len(rows), "reused": True}
            continue
        report[method] = _explain_method(job, model, method, loader, rows, path)
    return {"shard": f"{index}/{count}", "range": [rows.start, rows.stop], "methods": report}


def _intact(path: Path, rows: range) -> bool:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return saved["indices"].tolist() == list(rows) and len(saved["maps"]) == len(rows)
    except Exception:
        return False


def _explain_method(job: ExplainJob, model, method: str, loader, rows: range, path: Path) -> dict:

    explainer = explainer_info(method).build(model)
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
    }
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
    sample order (float in [0, 1], or uint8 with ``raw=True``)."""

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
        """The shard files of ``method`` not written (or not intact) yet."""
        return [
            f for f, (a, b) in zip(self.files(method), self.index["ranges"], strict=True)
            if not _intact(f, range(a, b))
        ]  # fmt: skip

    def load(self, method: str, raw: bool = False) -> torch.Tensor:
        """Every map of ``method``, N×1×H×W in sample order.

        Raises:
            ValueError: an unknown method, or shards not finished (named).
        """
        if method not in self.methods:
            raise ValueError(f"no maps of {method!r} here; these are {', '.join(self.methods)}")
        if missing := self.missing(method):
            raise ValueError(
                f"{len(missing)} shard(s) of {method} are not finished: "
                f"{', '.join(str(m) for m in missing[:3])}"
            )
        parts = [torch.load(f, map_location="cpu", weights_only=True) for f in self.files(method)]
        maps = torch.cat([p["maps"] for p in parts if len(p["maps"])])
        return maps if raw else maps.float() / 255

    def labels(self, method: str) -> torch.Tensor:
        parts = [torch.load(f, map_location="cpu", weights_only=True) for f in self.files(method)]
        return torch.cat([p["labels"] for p in parts])

    def throughput(self, method: str) -> float:
        """Images per second over the shards' explaining time (loading included)."""
        parts = [torch.load(f, map_location="cpu", weights_only=True) for f in self.files(method)]
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
