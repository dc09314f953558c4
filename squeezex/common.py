"""Helpers every layer of squeezex shares; this module imports nothing else of squeezex.

* :func:`eval_mode` — run a model in eval mode for one block, every module's own flag
  restored after (never a hand-written save and restore of the flag).
* :func:`normalize_target` — class indices per sample from whatever a user passes, with
  errors that name the problem (floats, bools, wrong lengths, negative indices).
* :func:`check_inputs` — a batch checked *before* the model runs: layout (N×C×H×W or
  N×C×T×H×W), meta tensors, NaN and inf, and against the model what no model could take
  (a dtype or device none of its parameters has, a channel count none of its
  convolutions takes, channels-last spotted); :func:`diagnose_inputs` names the likely
  mismatch once the model has refused a batch.
* :func:`select_output` — the class scores of a model that returns a tuple (one head).
* :func:`as_tuple`, :func:`select_rows` — extra forward arguments that follow a batch.
* :func:`make_loader`, :func:`split_batch` — the data loader every pass uses.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "ExplanationWarning",
    "quiet_empty_maps",
    "eval_mode",
    "train_mode",
    "normalize_target",
    "check_target_range",
    "check_inputs",
    "diagnose_inputs",
    "non_finite_rows",
    "input_convolution",
    "select_output",
    "as_tuple",
    "is_batched",
    "select_rows",
    "stratified_indices",
    "make_loader",
    "split_batch",
    "ShuffledBatches",
]


class ExplanationWarning(UserWarning):
    """A heatmap that is not an explanation (non-finite values), named with its samples."""


@contextmanager
def quiet_empty_maps():
    """Inside the block, no warning for all-zero maps: for maps that are measured or
    counted elsewhere (a randomised model's, a perturbed input's). Non-finite maps and
    every other warning still show. (The message starts with the method's name, so the
    filter matches anywhere in it.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", r".*the heatmap of sample\(s\) .* is all zero", ExplanationWarning
        )
        yield


# -- modes ---------------------------------------------------------------------------------------
@contextmanager
def eval_mode(model: nn.Module, enabled: bool = True):
    """Run ``model`` in eval mode inside the block; restore every module's flag after."""
    # Only the modules in training mode are switched (and switched back): setting a flag
    # goes through Module.__setattr__, which on a small CNN costs more than its forward.
    training = _training_modules(model) if enabled else []
    for m in training:
        m.training = False
    try:
        yield model
    finally:
        for m in training:
            m.training = True


@contextmanager
def train_mode(model: nn.Module, parameters: Sequence[nn.Parameter] | None = None):
    """Put ``model`` in training mode for :func:`squeezex.training.fit`: all of it, or, when
    ``parameters`` are given, only the modules that own one of them (every other module
    stays in eval mode: frozen BatchNorm statistics and dropout do not change), with
    ``requires_grad`` on for ``parameters`` only. The ``requires_grad`` flags are restored
    on the way out; the modes are not (fit leaves its model in eval mode)."""
    if parameters is None:
        model.train()
        yield model
        return
    ids = {id(p) for p in parameters}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for m in model.modules():
        if any(id(p) in ids for p in m.parameters(recurse=False)):
            m.training = True
    try:
        for p, _ in flags:
            p.requires_grad_(id(p) in ids)
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _training_modules(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` in training mode (a plain walk: faster than ``modules()``)."""
    out, seen, stack = [], set(), [model]
    while stack:
        m = stack.pop()
        if m is None or id(m) in seen:
            continue
        seen.add(id(m))
        if m.training:
            out.append(m)
        stack.extend(m._modules.values())
    return out


# -- targets -------------------------------------------------------------------------------------
def _describe(v: Any) -> str:
    text = repr(v.tolist()) if isinstance(v, torch.Tensor) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(v: Any) -> bool:
    return (
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and type(v).__name__ != "bool_"
    )


def normalize_target(target: Any, n: int, device=None) -> torch.Tensor | None:
    """Per-sample class indices (a LongTensor of length ``n``), or ``None``.

    A scalar (int, NumPy integer, 0-d integer tensor) applies to every sample; a sequence,
    NumPy array or 1-d tensor must have one entry per sample. Floats (even 2.0), bools,
    other lengths and negative indices are a ``ValueError`` that names the problem: a
    target is never silently rounded or cast.
    """
    if target is None:
        return None
    if type(target).__module__ == "numpy":  # arrays and NumPy scalars
        import numpy as np

        target = torch.from_numpy(np.asarray(target).copy())
    if isinstance(target, torch.Tensor):
        t = _tensor_target(target, n)
    elif _is_int(target):
        t = torch.full((n,), int(target), dtype=torch.long)
    elif isinstance(target, Sequence) and not isinstance(target, str):
        if len(target) != n or not all(_is_int(v) for v in target):
            raise ValueError(
                f"target must be a class index or a list of {n} class indices (integers), "
                f"got {_describe(target)}"
            )
        t = torch.tensor([int(v) for v in target], dtype=torch.long)
    else:
        raise ValueError(
            f"target must be a class index (an integer) or one index per sample, "
            f"got {type(target).__name__} {_describe(target)}"
        )
    if len(t) and int(t.min()) < 0:
        raise ValueError(f"target must be class indices >= 0, got {_describe(t)}")
    return t.to(device) if device is not None and t.device != torch.device(device) else t


def _tensor_target(target: torch.Tensor, n: int) -> torch.Tensor:
    if target.dtype == torch.bool or target.is_floating_point() or target.is_complex():
        raise ValueError(
            f"target must hold integer class indices, got a {target.dtype} tensor "
            f"{_describe(target)} (use .long() if the values are whole class indices)"
        )
    if target.dim() == 0:
        return target.long().expand(n).clone()
    if target.dim() == 1 and target.numel() == n:
        return target.long()
    raise ValueError(
        f"target must be a scalar or have one entry per sample ({n}), got shape "
        f"{tuple(target.shape)}"
    )


def check_target_range(
    target: torch.Tensor | None, width: int, what: str = "the model's output"
) -> None:
    """``ValueError`` unless every index in ``target`` is below ``width`` (the number of
    classes ``what`` outputs)."""
    if target is None or target.numel() == 0:
        return
    top = int(target.max())
    if top >= width:
        raise ValueError(
            f"target must be class indices in [0, {width}) ({what}: {width} classes), "
            f"got {_describe(target)}"
        )


# -- model outputs -------------------------------------------------------------------------------
def select_output(out: Any, output: int | str | None = None) -> torch.Tensor:
    """The N×K class scores in a model's output.

    Args:
        out: what the model returned: a tensor, or a tuple/list/dict of heads.
        output: which head (an index, or a key for a dict); ``None`` when the model
            returns one tensor.

    Raises:
        ValueError: the model returns several heads and ``output`` does not name one, or
            the scores are not N×K.
    """
    if isinstance(out, tuple | list | dict):
        kind = type(out).__name__
        keys = list(out) if isinstance(out, dict) else list(range(len(out)))
        if output is None:
            raise ValueError(
                f"the model returns a {kind} of {len(out)} outputs ({_shapes(out)}): pass "
                f"output=<one of {keys}> to choose the head to explain"
            )
        if output not in keys:
            raise ValueError(f"output={output!r} is not one of the model's heads {keys}")
        out = out[output]
    elif output not in (None, 0):
        raise ValueError(f"output={output!r} given, but the model returns one tensor")
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the model's output must be N×classes scores, got {got}")
    return out


def _shapes(out) -> str:
    items = out.values() if isinstance(out, dict) else out
    return ", ".join(
        str(tuple(o.shape)) if isinstance(o, torch.Tensor) else type(o).__name__ for o in items
    )


# -- inputs --------------------------------------------------------------------------------------
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def input_convolution(model: nn.Module) -> nn.Module | None:
    """The first convolution registered in ``model`` (the one that reads the input in
    torchvision models and ``nn.Sequential`` CNNs, though not in every model), or
    ``None``. A plain walk that stops at the first hit: microseconds, never stale."""
    stack = [model]
    while stack:
        m = stack.pop()
        if isinstance(m, _CONV):
            return m
        stack.extend(reversed([c for c in m._modules.values() if c is not None]))
    return None


def check_inputs(x: Any, model: nn.Module | None = None, *, what: str = "inputs") -> torch.Tensor:
    """``x`` checked before ``model`` runs on it; returns ``x``.

    Checks, each a ``ValueError`` that says what to do: a non-empty floating-point
    N×C×H×W (or N×C×T×H×W) tensor with data (not ``meta``) and no NaN or inf (naming the
    samples); against ``model``, only what no model could accept: a dtype or device that
    none of its parameters has, clips for a network of 2-D convolutions only (or images
    for 3-D ones), a channel count that none of its convolutions takes (with a hint when
    the batch looks channels-last). What depends on which convolution reads the input is
    left to :func:`diagnose_inputs`, after the model itself has refused the batch.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{what} must be a tensor N×C×H×W (or N×C×T×H×W), got {type(x).__name__}")
    if x.dim() not in (4, 5):
        raise ValueError(
            f"{what} must be N×C×H×W images or N×C×T×H×W clips, got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{what} is an empty batch")
    if x.is_meta:
        raise ValueError(f"{what} is a meta tensor (a shape without data): pass real values")
    if not x.is_floating_point():
        hint = " (uint8 images: x.float() / 255)" if x.dtype == torch.uint8 else ""
        raise ValueError(f"{what} must be floating point, got {x.dtype}{hint}")
    if model is not None:
        problem = _mismatch(x, model, what, certain=True)
        if problem:
            raise ValueError(problem)
    bad = non_finite_rows(x)
    if bad:
        raise ValueError(
            f"{what} have NaN or infinite values in sample(s) {_describe(bad)}: every method "
            "would return a NaN map for them"
        )
    return x


def diagnose_inputs(x: torch.Tensor, model: nn.Module, what: str = "inputs") -> str | None:
    """Why ``model`` probably refused ``x`` (its first registered parameter and
    convolution taken as the input's), or ``None``: called after the model failed, so a
    model that reads its input elsewhere is never refused for it."""
    return _mismatch(x, model, what, certain=False)


def non_finite_rows(t: torch.Tensor) -> list[int]:
    """The indices of the samples of ``t`` with a NaN or inf (``[]`` for none).

    The sum is finite exactly when every value is (a NaN or inf spreads to it), unless
    finite values overflow it: a fast test first (one reduction, far cheaper than
    ``isfinite`` on every value), the exact one only when it fails."""
    if bool(torch.isfinite(t.sum())):
        return []
    return (~torch.isfinite(t).flatten(1).all(1)).nonzero()[:, 0].tolist()


def _name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _mismatch(x: torch.Tensor, model: nn.Module, what: str, certain: bool) -> str | None:
    """The likely problem between ``x`` and ``model``, judged on the model's first
    parameter and first convolution (microseconds); with ``certain``, kept only when no
    parameter or convolution of the model would accept ``x`` either (a full walk, made
    only when the quick look finds something)."""
    found = _likely(x, model)
    if found is None or (certain and not _nothing_accepts(x, model, found[0])):
        return None
    kind, detail = found
    if kind == "device":
        return f"{what} are on {x.device} but the model is on {detail}: move one of them"
    if kind == "dtype":
        want = _name(detail)
        return (
            f"{what} are {_name(x.dtype)} but the model's parameters are {want}: convert the "
            f"inputs (x.to(torch.{want})) or the model"
        )
    if kind == "kind":
        takes = {2: "N×C×H×W images", 3: "N×C×T×H×W clips"}[len(detail.kernel_size)]
        return (
            f"the model's convolutions are {type(detail).__name__}: it takes {takes}, "
            f"got shape {tuple(x.shape)}"
        )
    c = _input_channels(model, x.dim() - 2) or detail.in_channels
    if x.shape[-1] == c:
        order = "(0, 3, 1, 2)" if x.dim() == 4 else "(0, 4, 1, 2, 3)"
        return (
            f"{what} of shape {tuple(x.shape)} look channels-last; the model takes {c} "
            f"channels first: x.permute{order}"
        )
    return f"the model takes {c} channel(s), {what} have {x.shape[1]} (shape {tuple(x.shape)})"


def _input_channels(model: nn.Module, dims: int) -> int | None:
    """The channel count of the convolution that reads the input, guessed without running
    the model: the first convolution (of ``dims`` spatial axes) whose input width no
    convolution produces."""
    convs = [m for m in model.modules() if isinstance(m, _CONV) and len(m.kernel_size) == dims]
    made = {c.out_channels for c in convs}
    return next((c.in_channels for c in convs if c.in_channels not in made), None)


def _likely(x: torch.Tensor, model: nn.Module):
    """``(problem, detail)`` from the first parameter and convolution, or ``None``."""
    first = _parameters(model, first_only=True)
    p = first[0] if first else None
    if p is not None and p.is_floating_point():
        if p.device != x.device:
            return "device", p.device
        if p.dtype != x.dtype:
            return "dtype", p.dtype
    conv = input_convolution(model)
    if conv is None or len(conv.kernel_size) not in (2, 3):
        return None
    if x.dim() - 2 != len(conv.kernel_size):
        return "kind", conv
    if x.shape[1] != conv.in_channels:
        return "channels", conv
    return None


def _nothing_accepts(x: torch.Tensor, model: nn.Module, problem: str) -> bool:
    """True when no parameter (device, dtype) or convolution (kind, channels) of the model
    matches ``x``: the problem does not depend on which layer reads the input."""
    if problem in ("device", "dtype"):
        params = [p for p in _parameters(model, first_only=False) if p.is_floating_point()]
        return all(getattr(p, problem) != getattr(x, problem) for p in params)
    convs = [m for m in model.modules() if isinstance(m, _CONV)]
    if problem == "kind":
        return all(len(c.kernel_size) != x.dim() - 2 for c in convs)
    return all(c.in_channels != x.shape[1] for c in convs if len(c.kernel_size) == x.dim() - 2)


def _parameters(model: nn.Module, first_only: bool) -> list[torch.Tensor]:
    """The model's parameters (only the first when ``first_only``): a plain walk, cheaper
    than ``model.parameters()``."""
    out, stack, seen = [], [model], set()
    while stack:
        m = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        for p in m._parameters.values():
            if p is not None:
                out.append(p)
                if first_only:
                    return out
        stack.extend(reversed([c for c in m._modules.values() if c is not None]))
    return out


# -- batches -------------------------------------------------------------------------------------
def as_tuple(v: Any) -> tuple:
    """``()`` for ``None``, ``v`` for a tuple, ``(v,)`` otherwise."""
    if v is None:
        return ()
    return v if isinstance(v, tuple) else (v,)


def is_batched(e: Any, n: int) -> bool:
    """True when ``e`` is a tensor with one row per sample of an ``n``-sample batch."""
    return isinstance(e, torch.Tensor) and e.dim() > 0 and e.shape[0] == n


def select_rows(extra: tuple, rows, n: int) -> tuple:
    """The ``rows`` (a slice or an index tensor) of every per-sample tensor in ``extra``."""
    return tuple(e[rows] if is_batched(e, n) else e for e in extra)


def make_loader(data, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader over ``data`` (a Dataset, an ``(x, y)`` pair of tensors, or a
    DataLoader, returned as is); shuffling uses its own generator seeded with ``seed``."""
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        data = torch.utils.data.TensorDataset(*data)
    if not isinstance(data, Dataset) and not hasattr(data, "__getitem__"):
        raise TypeError(f"expected a Dataset or DataLoader, got {type(data).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    g = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=g)


class ShuffledBatches:
    """Batches of rows of tensors held in memory, reshuffled on every iteration (an epoch)
    by its own generator seeded with ``seed``: each epoch draws one permutation and cuts
    it into batches of ``batch_size`` (the last one shorter). ``collate(rows)`` turns the
    indexed tensors (a tuple, in the order given) into a batch."""

    def __init__(self, tensors: Sequence[torch.Tensor], batch_size: int, seed: int = 0,
                 collate=tuple) -> None:  # fmt: skip
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.tensors, self.batch_size, self.collate = tuple(tensors), batch_size, collate
        self.n = len(self.tensors[0])
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        for idx in torch.randperm(self.n, generator=self.generator).split(self.batch_size):
            yield self.collate(tuple(t[idx] for t in self.tensors))


def split_batch(batch) -> tuple[Any, Any]:
    """``(inputs, targets)`` of a batch of ``(input, target[, mask, …])`` items."""
    if not isinstance(batch, list | tuple) or len(batch) < 2:
        raise ValueError("a dataset item must be (input, target) or (input, target, mask)")
    return batch[0], batch[1]


def stratified_indices(targets, n: int) -> torch.Tensor:
    """At most ``n`` row indices of ``targets`` (class indices, 1-D), stratified by class.

    The classes take turns in class order — the first row of each class, then the second
    of each, … — so a subset of a test split holds the classes equally (as far as each
    class has rows) instead of whichever classes its first rows belong to. Returned
    sorted; all rows when ``n >= len(targets)``.
    """
    t = torch.as_tensor(targets).cpu()
    if t.dim() != 1:
        raise ValueError(f"targets must be 1-D class indices, got shape {tuple(t.shape)}")
    if n >= len(t):
        return torch.arange(len(t))
    rows, turn, cls = [], [], []
    for c in torch.unique(t):
        r = torch.nonzero(t == c).flatten()
        rows.append(r)
        turn.append(torch.arange(len(r)))
        cls.append(torch.full((len(r),), int(c)))
    rows, turn, cls = torch.cat(rows), torch.cat(turn), torch.cat(cls)
    order = sorted(range(len(rows)), key=lambda i: (int(turn[i]), int(cls[i])))
    return torch.sort(rows[order[:n]]).values
