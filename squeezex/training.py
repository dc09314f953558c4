"""Training and evaluation with progress bars; checkpoints written atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .common import eval_mode, make_loader, split_batch
from .io import atomic_torch_save
from .progress import progress as progress_bar

__all__ = [
    "fit",
    "fit_speakers",
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
) -> FitResult:
    """Train ``model`` with AdamW and a one-cycle schedule on ``(input, target, …)`` items.

    Class-index targets train with cross-entropy; N×K 0/1 targets (a multi-label dataset
    such as :class:`~squeezex.datasets.SyntheticFaces`) with a binary cross-entropy on
    every output, and the training accuracy is then the mean attribute accuracy.

    Shuffling uses its own generator seeded with ``seed`` (global RNG untouched). The
    model is left in eval mode.
    """
    import time

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    loader = make_loader(data, batch_size, shuffle=True, seed=seed)
    model.to(device).train()
    opt, sched = _optimiser(model, lr, weight_decay, epochs * len(loader))
    result = FitResult()
    start = time.perf_counter()
    bar = progress_bar(range(epochs), desc=desc, disable=not progress)
    for _ in bar:
        total, correct, loss_sum = 0, 0, 0.0
        for batch in loader:
            x, y = split_batch(batch)
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss = _loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            hit = (_decide(out, y) == y).float()  # multi-label: each image's attribute share
            correct += (hit.mean(1) if hit.dim() == 2 else hit).sum().item()
            total += len(y)
        result.losses.append(loss_sum / total)
        result.train_accuracy.append(correct / total)
        bar.set_postfix(loss=f"{result.losses[-1]:.3f}", acc=f"{result.train_accuracy[-1]:.3f}")
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


def _optimiser(model: nn.Module, lr: float, weight_decay: float, total_steps: int):
    """AdamW and its one-cycle schedule (25 % warm-up), as every squeezex model trains.
    (With exactly 4 steps the warm-up would end at step 0, where ``OneCycleLR`` divides by
    zero: those 4 steps warm up for half.)"""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
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


def fit_speakers(
    model: nn.Module,
    data,
    *,
    epochs: int = 12,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 16,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "train speakers",
) -> FitResult:
    """Train a :class:`~squeezex.models.SpeakerNet` on a
    :class:`~squeezex.datasets.SyntheticSpeakers`-like dataset (``frames``, ``audio``,
    ``frame_labels``) with :func:`~squeezex.models.speaker_loss` (the combined per-frame
    loss plus 0.4 × each stream's), AdamW and a one-cycle schedule, as :func:`fit` does.
    ``train_accuracy`` holds the per-frame accuracy of the combined head. Shuffling uses its
    own generator seeded with ``seed``; the model is left in eval mode."""
    import time

    from .models.speakers import speaker_loss

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    video, audio, labels = data.frames, data.audio, data.frame_labels
    n = len(labels)
    steps = -(-n // batch_size)
    model.to(device).train()
    opt, sched = _optimiser(model, lr, weight_decay, epochs * steps)
    g = torch.Generator().manual_seed(seed)
    result, start = FitResult(), time.perf_counter()
    bar = progress_bar(range(epochs), desc=desc, disable=not progress)
    for _ in bar:
        loss_sum, correct = 0.0, 0.0
        for idx in torch.randperm(n, generator=g).split(batch_size):
            y = labels[idx].to(device)
            out = model.forward_all(video[idx].to(device), audio[idx].to(device))
            loss = speaker_loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += ((out["av"] > 0).long() == y).float().mean(1).sum().item()
        result.losses.append(loss_sum / n)
        result.train_accuracy.append(correct / n)
        bar.set_postfix(loss=f"{result.losses[-1]:.3f}", acc=f"{result.train_accuracy[-1]:.3f}")
    result.seconds = time.perf_counter() - start
    model.eval()
    return result
