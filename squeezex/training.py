"""Training and evaluation with progress bars; checkpoints written atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .common import eval_mode, make_loader, split_batch, train_mode
from .io import atomic_torch_save
from .progress import progress as progress_bar

__all__ = [
    "fit",
    "fit_speakers",
    "Objective",
    "Classification",
    "evaluate",
    "predict",
    "attribute_accuracy",
    "FitResult",
    "save_checkpoint",
    "load_checkpoint",
]


@dataclass
class FitResult:
    """What :func:`fit` did: per-epoch training loss and accuracy, and final test accuracy."""

    losses: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


class Objective(Protocol):
    """How :func:`fit` trains a kind of model.

    ``batches(data, batch_size, seed)`` is what one epoch iterates (iterated again every
    epoch, with a length: the batches per epoch), yielding ``(inputs, targets)``; inputs
    are a tensor or, for a multi-input model, a tuple of tensors. ``loss(model, inputs,
    targets)`` is one step's loss and each sample's training accuracy (N values in [0, 1]).
    """

    def batches(self, data, batch_size: int, seed: int): ...

    def loss(self, model: nn.Module, inputs, targets) -> tuple[torch.Tensor, torch.Tensor]: ...


class Classification:
    """The :class:`Objective` of image classifiers: ``(input, target, …)`` items shuffled by
    a DataLoader; class-index targets train with cross-entropy, N×K 0/1 targets (a
    multi-label dataset such as :class:`~squeezex.datasets.SyntheticFaces`) with a binary
    cross-entropy on every output, whose training accuracy is then the mean attribute
    accuracy."""

    def batches(self, data, batch_size: int, seed: int):
        return _Pairs(make_loader(data, batch_size, shuffle=True, seed=seed))

    def loss(self, model: nn.Module, inputs, targets) -> tuple[torch.Tensor, torch.Tensor]:
        out = model(inputs)
        loss = _loss(out, targets)  # first: it checks multi-label targets' shape
        hit = (_decide(out, targets) == targets).float()  # multi-label: each image's share
        return loss, (hit.mean(1) if hit.dim() == 2 else hit)


class _Pairs:
    """A DataLoader's batches as ``(inputs, targets)``."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return (split_batch(b) for b in self.loader)


def fit(
    model: nn.Module,
    data,
    *,
    epochs: int = 15,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "train",
    objective: Objective | None = None,
    parameters=None,
) -> FitResult:
    """Train ``model`` with AdamW and a one-cycle schedule.

    ``objective`` says what an epoch iterates and what a step's loss is; the default,
    :class:`Classification`, trains an image classifier on ``(input, target, …)`` items
    (cross-entropy, or binary cross-entropy for N×K multi-label targets). An audio-visual
    :class:`~squeezex.models.SpeakerNet` trains with
    :class:`~squeezex.models.speakers.SpeakerObjective`.

    ``parameters`` (default: all of the model's) are the ones trained. The others are
    frozen while it trains (``requires_grad`` off, restored after), and every module
    that owns none of the trained parameters stays in eval mode: the BatchNorm
    statistics and the dropout of the frozen part do not change, so its parameters and
    buffers come out byte for byte as they went in (what :func:`squeezex.squeeze` needs).

    Shuffling uses its own generator seeded with ``seed`` (global RNG untouched). The
    model is left in eval mode.
    """
    import time

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    objective = objective or Classification()
    batches = objective.batches(data, batch_size, seed)
    model.to(device)
    trained = _trained(model, parameters)
    opt, sched = _optimiser(trained, lr, weight_decay, epochs * len(batches))
    result = FitResult()
    start = time.perf_counter()
    with train_mode(model, None if parameters is None else trained):
        _train_loop(model, objective, batches, opt, sched, epochs, device, progress, desc, result)
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


def _train_loop(model, objective, batches, opt, sched, epochs, device, progress, desc,
                result: FitResult) -> None:  # fmt: skip
    bar = progress_bar(range(epochs), desc=desc, disable=not progress)
    for _ in bar:
        total, correct, loss_sum = 0, 0, 0.0
        for x, y in batches:
            x, y = _to(x, device), y.to(device)
            loss, hits = objective.loss(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            correct += hits.sum().item()
            total += len(y)
        result.losses.append(loss_sum / total)
        result.train_accuracy.append(correct / total)
        bar.set_postfix(loss=f"{result.losses[-1]:.3f}", acc=f"{result.train_accuracy[-1]:.3f}")


def _trained(model: nn.Module, parameters) -> list[nn.Parameter]:
    """The parameters :func:`fit` trains: all of ``model``'s, or those given (each one
    of the model's)."""
    if parameters is None:
        return list(model.parameters())
    own = {id(p) for p in model.parameters()}
    trained = list(parameters)
    if not trained:
        raise ValueError("parameters is empty: there is nothing to train")
    if any(id(p) not in own for p in trained):
        raise ValueError("parameters must be parameters of the model being trained")
    return trained


def _to(x, device):
    """A tensor, or a tuple of them (a multi-input model's), on ``device``."""
    return tuple(t.to(device) for t in x) if isinstance(x, tuple | list) else x.to(device)


def _optimiser(parameters: list, lr: float, weight_decay: float, total_steps: int):
    """AdamW and its one-cycle schedule (25 % warm-up), as every squeezex model trains.
    (With exactly 4 steps the warm-up would end at step 0, where ``OneCycleLR`` divides by
    zero: those 4 steps warm up for half.)"""
    opt = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    pct = 0.5 if total_steps == 4 else 0.25
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=total_steps, pct_start=pct
    )
    return opt, sched


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.dim() == 2:  # multi-label: one binary decision per output
        if y.shape != out.shape:
            raise ValueError(
                f"multi-label targets must be N×{out.shape[1]} like the model's output, "
                f"got {tuple(y.shape)}"
            )
        return F.binary_cross_entropy_with_logits(out, y.to(out.dtype))
    return F.cross_entropy(out, y)


def _decide(out: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """The class (argmax) or, for multi-label targets, each output's 0/1 decision."""
    multi = out.dim() == 2 and y is not None and y.dim() == 2
    return (out > 0).long() if multi else out.argmax(1)


@torch.no_grad()
def predict(
    model: nn.Module, data, *, batch_size: int = 256, device="cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes and true targets over ``data`` (eval mode, restored after); for
    multi-label targets (N×K), the N×K 0/1 decisions (logit > 0)."""
    loader = make_loader(data, batch_size)
    preds, targets = [], []
    with eval_mode(model):
        for batch in loader:
            x, y = split_batch(batch)
            y = torch.as_tensor(y)
            preds.append(_decide(model(x.to(device)), y).cpu())
            targets.append(y)
    return torch.cat(preds), torch.cat(targets)


def evaluate(model: nn.Module, data, *, batch_size: int = 256, device="cpu") -> float:
    """Top-1 accuracy of ``model`` on ``data`` (multi-label: the mean attribute accuracy)."""
    pred, target = predict(model, data, batch_size=batch_size, device=device)
    return (pred == target).float().mean().item()


def attribute_accuracy(model: nn.Module, data, *, batch_size: int = 256, device="cpu") -> list:
    """Per-attribute accuracy of a multi-label ``model`` on ``data`` (K floats)."""
    pred, target = predict(model, data, batch_size=batch_size, device=device)
    if target.dim() != 2:
        raise ValueError("attribute_accuracy needs multi-label (N×K) targets")
    return (pred == target).float().mean(0).tolist()


def save_checkpoint(path, model: nn.Module, **meta) -> Path:
    """Write ``{"state_dict", **meta}`` to ``path`` atomically (temp file, then rename)."""
    return atomic_torch_save({"state_dict": model.state_dict(), **meta}, path)


def load_checkpoint(path, model: nn.Module) -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` into ``model``; returns its meta.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is unreadable (truncated, say) or holds another model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state = ckpt.pop("state_dict")
    except Exception as exc:  # truncated, not a torch file, or not a checkpoint
        raise ValueError(
            f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path} does not fit {type(model).__name__}: {exc}") from None
    return ckpt


def fit_speakers(model: nn.Module, data, *, epochs: int = 12, batch_size: int = 16,
                 desc: str = "train speakers", **kwargs) -> FitResult:  # fmt: skip
    """:func:`fit` with :class:`~squeezex.models.speakers.SpeakerObjective`: a
    :class:`~squeezex.models.SpeakerNet` on a :class:`~squeezex.datasets.SyntheticSpeakers`-
    like dataset (``frames``, ``audio``, ``frame_labels``), its defaults (12 epochs, 16 clips
    a batch). ``train_accuracy`` holds the per-frame accuracy of the combined head."""
    from .models.speakers import SpeakerObjective

    return fit(model, data, epochs=epochs, batch_size=batch_size, desc=desc,
               objective=SpeakerObjective(), **kwargs)  # fmt: skip
