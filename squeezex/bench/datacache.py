"""Generated splits, kept beside the checkpoints so that a run made again does not draw its
data again.

A benchmark run draws its training and test splits from a generator (thousands of
rendered images); every later run of the same configuration — a rerun that reuses every
cell, each notebook that shares one run, ``trained_model``, ``example_grid`` — would draw
them again, identically. :func:`cached_split` keeps each split in
``<checkpoints>/splits/<dataset>-<split>-<key>.pt`` (``folder``: the run's checkpoint
folder; ``None`` keeps nothing) and reads it back instead. The key is
made of everything the split depends on: the dataset's spec, the split, its size, image
side and seed, and a digest of squeezex's dataset code and of the torch and NumPy versions
(a changed generator or library draws anew). Only squeezex's own generators are cached (a
user's builder may read files or code this key does not see), and only splits whose state
is tensors and plain values (read back with ``torch.load(weights_only=True)``); the file is
written atomically, and an unreadable one is drawn again.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from pathlib import Path

import numpy as np
import torch

from ..datasets import DatasetSpec
from ..io import atomic_torch_save

__all__ = ["cached_split", "split_path"]

_PLAIN = (str, int, float, bool, type(None))


@functools.cache
def _code_digest() -> str:
    """SHA-256 of squeezex's dataset code, and the torch and NumPy versions."""
    h = hashlib.sha256(f"{torch.__version__} {np.__version__}".encode())
    for path in sorted((Path(__file__).resolve().parents[1] / "datasets").glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def _ours(spec: DatasetSpec) -> bool:
    return getattr(spec.builder, "__module__", "").startswith("squeezex.datasets")


def split_path(spec: DatasetSpec, split: str, *, n_per_class, size: int, seed: int, folder):
    """Where :func:`cached_split` keeps this split (``None``: not cached: no folder, or not
    one of squeezex's generators)."""
    if folder is None or not _ours(spec):
        return None
    key = json.dumps([spec.name, spec.key(), split, n_per_class, size, seed, _code_digest()])
    tag = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(folder) / "splits" / f"{spec.name}-{split}-{tag}.pt"


def _plain(value) -> bool:
    """Whether ``value`` is a tensor or a plain value, or a list, tuple or dict of them."""
    if isinstance(value, (torch.Tensor, *_PLAIN)):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _load(path: Path):
    """The split kept at ``path``, or ``None`` (absent, unreadable, or not a squeezex
    dataset)."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        module, _, name = saved["class"].partition(":")
        if not module.startswith("squeezex.datasets"):
            return None
        cls = getattr(importlib.import_module(module), name)
        split = cls.__new__(cls)
        split.__dict__.update(saved["state"])
        return split
    except Exception:  # a damaged or foreign file is drawn again, never an error
        return None


def cached_split(spec: DatasetSpec, split: str, *, n_per_class, size: int, seed: int, folder):
    """``spec.build(split, …)``, read from ``folder`` when it holds it (see the module
    docstring), drawn and kept there otherwise."""
    path = split_path(spec, split, n_per_class=n_per_class, size=size, seed=seed, folder=folder)
    if path is not None and path.is_file() and (kept := _load(path)) is not None:
        return kept
    drawn = spec.build(split, n_per_class=n_per_class, size=size, seed=seed)
    state = vars(drawn)
    if path is not None and _plain(state):
        cls = type(drawn)
        atomic_torch_save({"class": f"{cls.__module__}:{cls.__qualname__}", "state": state}, path)
    return drawn
