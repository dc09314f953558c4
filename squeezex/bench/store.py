"""The run folder as one store: the harness writes it, :class:`~squeezex.bench.Run`, the
figures and the widgets read it, and nothing else touches its files.

Layout of ``<out>`` (everything one configuration computed lives under its fingerprint,
so ``--fresh`` removes exactly that, and another configuration never reads it)::

    results.json, results.csv, results.tex     views of every cell below (rewritten after each cell)
    examples.png
    cells/<fingerprint>/_config.json                 the configuration that writes here
    cells/<fingerprint>/<dataset>/_models.json       accuracy with and without SE, per seed
    cells/<fingerprint>/<dataset>/_test-split.pt     the test split (uint8 images, masks, targets)
    cells/<fingerprint>/<dataset>/<seed>/_se-vectors.pt            SE vectors of the test images
    cells/<fingerprint>/<dataset>/<seed>/_vebi-interpretation.pt   VEBI's average visualisations
    cells/<fingerprint>/<dataset>/<seed>/<method>.json, .pt   a cell: record + uint8 maps
    cells/<fingerprint>/<dataset>/<seed>/_<method>-<name>.pt  a cell's further maps, if its
                                                              task has them (audio-visual:
                                                              ``audio``, the spectrogram's)

Every file is written atomically. A cell's json carries the SHA-256 of its own content
and of its maps file, so a cell is reused only when both are intact and its shapes agree
with the test split; anything else (``{}``, a truncated or short ``.pt``, an edited
value) is recomputed with a :class:`RunWarning` naming the file. The test split, the SE
vectors and VEBI's interpretation are checked when loaded and rewritten when damaged.
Temp files of killed writers are removed when a run opens the folder.

**One configuration per folder.** The tables are views of one configuration's cells, so a
folder holds one: :func:`intact_configurations` lists the fingerprints that hold intact
cells, :func:`stored_config` says which settings wrote them (``_config.json``, or for a
folder written before it existed ``results.json``'s ``config``), and the harness refuses a
run of another configuration into the folder, naming the settings that differ, unless it
is told to replace it (:func:`remove_configuration`: its cells and its shards' records).
Methods, datasets and seeds are not part of the fingerprint: runs that add them share the
folder, and their rows are added to the tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from ..io import atomic_torch_save, atomic_write_json, ensure_folder, remove_stale_temps
from .cells import Cell, CellKey
from .stats import ROW_FIELDS

__all__ = [
    "check_data",
    "check_se",
    "check_interpretation",
    "check_models",
    "RunStore",
    "RunWarning",
    "CorruptRunError",
    "IncompleteRunError",
    "quantise",
    "dequantise",
    "load_results",
    "intact_configurations",
    "stored_config",
    "remove_configuration",
]


class RunWarning(UserWarning):
    """Something in a run folder was damaged and is being recomputed (the file is named)."""


class CorruptRunError(ValueError):
    """A file of a run folder cannot be read back as what the harness wrote."""


class IncompleteRunError(ValueError):
    """A reduce step found work of the run not done (the message names it and its shard)."""


def quantise(maps: torch.Tensor) -> torch.Tensor:
    """Heatmaps in [0, 1] as uint8 (a quarter of the bytes; 1/255 steps)."""
    return (maps.detach().cpu().float().nan_to_num(0.0).clamp(0, 1) * 255).round().to(torch.uint8)


def dequantise(maps: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`quantise` (float maps pass through)."""
    return maps.float() / 255 if maps.dtype == torch.uint8 else maps.float()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(record: dict) -> str:
    """SHA-256 of a record as JSON reads it back (so that keys JSON turns into strings
    give the same digest when written and when read)."""
    body = json.loads(json.dumps({k: v for k, v in record.items() if k != "digest"}))
    return _sha(json.dumps(body, sort_keys=True).encode())


def _read_json(path: Path):
    """Parsed JSON of ``path``; ``CorruptRunError`` naming it when it is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptRunError(f"{path} is not valid JSON ({exc})") from None


def load_results(path) -> dict:
    """``results.json`` of a run folder (or the file itself), checked.

    Raises:
        FileNotFoundError: no results file (the message says how to make one).
        CorruptRunError: the file is not a squeezex results file of this version.
    """
    p = Path(path)
    f = p / "results.json" if p.is_dir() else p
    if not f.is_file():
        raise FileNotFoundError(
            f"no results.json in {p}: run `squeezex bench --out {p}` first"
            if p.is_dir() or not p.suffix
            else f"{f} does not exist"
        )
    results = _read_json(f)
    if not isinstance(results, dict) or not isinstance(results.get("rows"), list):
        raise CorruptRunError(f"{f} is not a squeezex results file (no 'rows')")
    if int(results.get("schema", 0)) < 4:
        raise CorruptRunError(
            f"{f} was written by an older squeezex (schema {results.get('schema')}); "
            f"rerun `squeezex bench --out {f.parent}` to bring the folder up to date"
        )
    bad = [
        i
        for i, r in enumerate(results["rows"])
        if not isinstance(r, dict) or not set(ROW_FIELDS) <= set(r)
    ]
    if bad:
        raise CorruptRunError(
            f"{f}: row {bad[0]} lacks fields of {', '.join(ROW_FIELDS)}: not a results file "
            "this squeezex wrote"
        )
    return results


class RunStore:
    """The files of one run folder, for one configuration (its ``fingerprint``)."""

    def __init__(self, root, fingerprint: str) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.cells_dir = self.root / "cells" / fingerprint
        self._valid: dict[Path, tuple] = {}  # cell json → (stat, record): checked once
        self._warned: set = set()  # (path, stat) of damaged cells already reported

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r}, {self.fingerprint!r})"

    # -- lifecycle ----------------------------------------------------------------------
    def open(self, fresh: bool = False) -> RunStore:
        """Create the folder (a clear ``ValueError`` if it cannot hold files), remove the
        temp files of killed writers, and with ``fresh`` everything of this configuration."""
        ensure_folder(self.root, "output folder")
        removed = remove_stale_temps(self.root, recursive=False)
        removed += remove_stale_temps(self.root / "cells")
        if removed:
            warnings.warn(
                f"removed {len(removed)} temp file(s) left in {self.root} by an interrupted "
                f"run (e.g. {removed[0].name})",
                RunWarning,
                stacklevel=2,
            )
        if fresh and self.cells_dir.exists():
            shutil.rmtree(self.cells_dir)
        self._valid.clear()
        return self

    def write_config(self, config: dict) -> None:
        """Record which configuration writes here (``{"schema", "config"}``, the shape of
        ``results.json``), for :func:`stored_config`."""
        atomic_write_json(self.cells_dir / "_config.json", config)

    # -- layout ---------------------------------------------------------------------------
    def unit_dir(self, dataset: str, seed: int | None = None) -> Path:
        d = self.cells_dir / dataset
        return d if seed is None else d / str(seed)

    def cell_path(self, key: CellKey) -> Path:
        return self.unit_dir(key.dataset, key.seed) / f"{key.method}.json"

    def extra_maps_path(self, key: CellKey, name: str) -> Path:
        """Where a cell's further maps ``name`` are written (beside its maps)."""
        return self.unit_dir(key.dataset, key.seed) / f"_{key.method}-{name}.pt"

    # -- cells ----------------------------------------------------------------------------
    def write_cell(self, cell: Cell) -> dict:
        """Further maps and maps first, then the record naming the maps' digest: a record
        on disk always describes complete maps."""
        path = self.cell_path(cell.key)
        for name, extra in cell.extra_maps.items():
            atomic_torch_save(quantise(extra), self.extra_maps_path(cell.key, name))
        maps = quantise(cell.maps)
        atomic_torch_save(maps, path.with_suffix(".pt"))
        record = {
            "schema": 4,
            **cell.record(),
            "maps_shape": list(maps.shape),
            "maps_sha256": _sha(path.with_suffix(".pt").read_bytes()),
        }
        record["digest"] = _digest(record)
        atomic_write_json(path, record)
        return record

    def read_cell(self, key: CellKey, n: int | None = None) -> dict | None:
        """The record of a reusable cell, or ``None`` (absent, or damaged: a
        :class:`RunWarning` names the file and the cell is to be recomputed)."""
        path = self.cell_path(key)
        if not path.is_file():
            return None
        try:
            return self.record(path, key, n)
        except CorruptRunError as exc:
            warnings.warn(f"{exc}; recomputing the cell", RunWarning, stacklevel=2)
            self._warned.add((path, _stat(path), _stat(path.with_suffix(".pt"))))
            self._valid.pop(path, None)
            return None

    def record(self, path: Path, key: CellKey | None = None, n: int | None = None) -> dict:
        """A cell record, checked (``CorruptRunError`` naming the file otherwise)."""
        path = Path(path)
        stat = _stat(path), _stat(path.with_suffix(".pt"))
        cached = self._valid.get(path)
        if cached is not None and cached[0] == stat:
            record = cached[1]
        else:
            record = _checked_record(path)
            self._valid[path] = (stat, record)
        if key is not None and record["key"] != {**key.__dict__}:
            raise CorruptRunError(f"{path} holds cell {record['key']}, not {key.__dict__}")
        if n is not None and record["n"] != n:
            raise CorruptRunError(f"{path} has {record['n']} maps for a {n}-image test split")
        return record

    def maps(self, path: Path) -> torch.Tensor:
        """A cell's maps as float N×1×… in [0, 1] (the record is checked first)."""
        record = self.record(path)
        maps = _load(path.with_suffix(".pt"))
        if not isinstance(maps, torch.Tensor) or list(maps.shape) != record["maps_shape"]:
            raise CorruptRunError(f"{path.with_suffix('.pt')} does not hold the cell's maps")
        return dequantise(maps)

    def records(self) -> list[tuple[Path, dict]]:
        """Every intact cell of this configuration (a damaged one is warned about and
        left out: it is recomputed when its method runs again)."""
        out = []
        for path in sorted(self.cells_dir.glob("*/*/[!_]*.json")):
            try:
                out.append((path, self.record(path)))
            except CorruptRunError as exc:
                seen = (path, _stat(path), _stat(path.with_suffix(".pt")))
                if seen not in self._warned:
                    self._warned.add(seen)
                    warnings.warn(f"{exc}; left out of the tables", RunWarning, stacklevel=2)
        return out

    # -- artifacts (test split, SE vectors, VEBI's interpretation, model summaries) ----------
    # (their names start with "_", which no registered method name does)
    def data_path(self, dataset: str) -> Path:
        return self.unit_dir(dataset) / "_test-split.pt"

    def models_path(self, dataset: str) -> Path:
        return self.unit_dir(dataset) / "_models.json"

    def se_path(self, dataset: str, seed: int) -> Path:
        return self.unit_dir(dataset, seed) / "_se-vectors.pt"

    def vebi_path(self, dataset: str, seed: int) -> Path:
        return self.unit_dir(dataset, seed) / "_vebi-interpretation.pt"

    def artifact(self, path: Path, make: Callable[[], object], check, fresh: bool = False):
        """The object at ``path`` if it passes ``check`` (and not ``fresh``); otherwise
        ``make()``, written atomically (a damaged file is named in a warning)."""
        if path.is_file() and not fresh:
            try:
                return self.load(path, check)
            except CorruptRunError as exc:
                warnings.warn(f"{exc}; rewriting it", RunWarning, stacklevel=2)
        obj = make()
        if path.suffix == ".json":
            atomic_write_json(path, obj)
        else:
            atomic_torch_save(obj, path)
        return obj

    def load(self, path: Path, check=None):
        """Read an artifact and ``check(obj)`` it; ``CorruptRunError`` names the file."""
        if not path.is_file():
            raise FileNotFoundError(f"the run has no {path.name} here: {path}")
        obj = _read_json(path) if path.suffix == ".json" else _load(path)
        try:
            problem = check(obj) if check is not None else None
        except Exception as exc:  # a check meeting the wrong types is a damaged file too
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            raise CorruptRunError(f"{path} is damaged: {problem}")
        return obj


def _stat(path: Path):
    try:
        s = path.stat()
    except FileNotFoundError:
        return None
    return s.st_mtime_ns, s.st_size


def _load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, empty or not a torch file
        raise CorruptRunError(
            f"{path} is unreadable ({type(exc).__name__}: {str(exc)[:80]}; truncated?)"
        ) from None


def _checked_record(path: Path) -> dict:
    """Parse a cell record and check it against its digests and its maps file."""
    record = _read_json(path)
    need = ("key", "n", "rows", "samples", "maps_shape", "maps_sha256", "digest")
    missing = [k for k in need if not isinstance(record, dict) or k not in record]
    if missing:
        raise CorruptRunError(f"{path} is not a finished cell (no {', '.join(missing)})")
    if record["digest"] != _digest(record):
        raise CorruptRunError(f"{path} was changed after it was written (digest mismatch)")
    pt = path.with_suffix(".pt")
    if not pt.is_file():
        raise CorruptRunError(f"{pt} is missing")
    if _sha(pt.read_bytes()) != record["maps_sha256"]:
        raise CorruptRunError(f"{pt} is not the file the cell was written with (truncated?)")
    try:
        bad = [r for r in record["rows"] if not set(ROW_FIELDS) <= set(r)]
        malformed = bool(bad) or record["maps_shape"][:1] != [record["n"]]
    except (TypeError, KeyError):  # rows or shapes of the wrong types
        malformed = True
    if malformed:
        raise CorruptRunError(f"{path} has malformed rows or maps")
    return record


# -- the configurations a folder holds ------------------------------------------------------------
def intact_configurations(root, *, other_than: str | None = None) -> list[str]:
    """The fingerprints under ``<root>/cells`` (but ``other_than``) with at least one
    intact cell (damaged cells do not count; nothing is warned about here)."""
    cells = Path(root) / "cells"
    folders = sorted(p for p in cells.iterdir() if p.is_dir()) if cells.is_dir() else []
    return [
        f.name for f in folders if f.name != other_than and _holds_a_cell(RunStore(root, f.name))
    ]


def _holds_a_cell(store: RunStore) -> bool:
    for path in sorted(store.cells_dir.glob("*/*/[!_]*.json")):
        try:
            store.record(path)
        except CorruptRunError:
            continue
        return True
    return False


def stored_config(root, fingerprint: str) -> dict | None:
    """What configuration wrote ``<root>/cells/<fingerprint>``: ``{"schema", "config"}``
    from its ``_config.json``, else from ``results.json`` when that names this
    fingerprint; ``None`` when neither says (missing, unreadable, or another's)."""
    root = Path(root)
    for path in (root / "cells" / fingerprint / "_config.json", root / "results.json"):
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(found, dict) or not isinstance(found.get("config"), dict):
            continue
        if path.name == "results.json" and found.get("cells_dir") != f"cells/{fingerprint}":
            continue
        return {"schema": found.get("schema"), "config": found["config"]}
    return None


def remove_configuration(root, fingerprint: str) -> None:
    """Delete what configuration ``fingerprint`` wrote in ``root``: its cells and its
    shards' records (the checkpoint cache is shared between runs and stays)."""
    for folder in (Path(root) / "cells" / fingerprint, Path(root) / "shards" / fingerprint):
        shutil.rmtree(folder, ignore_errors=True)  # a shard may be removing it too
        if folder.exists():  # not for that reason: the OSError names the file and why
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(folder)


# -- what each artifact must hold -----------------------------------------------------------------
def check_data(d) -> str | None:
    """The test split: uint8 images, bool masks, targets, classes, all N long."""
    if not isinstance(d, dict) or not {"images", "masks", "targets", "classes"} <= set(d):
        return "not a test split (images, masks, targets, classes)"
    n = len(d["targets"])
    if not (isinstance(d["images"], torch.Tensor) and d["images"].dim() in (4, 5)):
        return "no N×C×H×W images"
    if len(d["images"]) != n or len(d["masks"]) != n or n == 0:
        return f"{len(d['images'])} images, {len(d['masks'])} masks and {n} targets"
    return None


def check_se(d, n: int | None = None) -> str | None:
    """SE vectors: N×C ``s`` and ``logits``."""
    if not isinstance(d, dict) or not {"s", "logits"} <= set(d):
        return "not SE vectors (s, logits)"
    s, e = d["s"], d["logits"]
    if not (isinstance(s, torch.Tensor) and s.dim() == 2 and s.shape == e.shape):
        return "s and logits are not two N×C tensors"
    if n is not None and len(s) != n:
        return f"{len(s)} SE vectors for {n} test images"
    return None


def check_interpretation(d) -> str | None:
    """VEBI's interpretation: the fields of :class:`~squeezex.explainers.Interpretation`."""
    need = {"classes", "features", "images", "heatmaps", "examples"}
    if not isinstance(d, dict) or not need <= set(d):
        return "not a VEBI interpretation"
    if len({len(d[k]) for k in need}) != 1:
        return "its per-class lists differ in length"
    return None


def check_models(d) -> str | None:
    """The accuracy summary of a dataset's models."""
    need = {"accuracy_per_seed", "accuracy_without_se_per_seed", "seeds"}
    if not isinstance(d, dict) or not need <= set(d):
        return "not a model summary"
    plain = d["accuracy_without_se_per_seed"]
    if not len(d["seeds"]) == len(d["accuracy_per_seed"]) or len(plain) not in (0, len(d["seeds"])):
        return "its per-seed lists differ in length"  # no plain model: a given --model
    return None
