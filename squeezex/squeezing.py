"""Squeeze an explanation out of a model someone already trained.

:func:`squeeze` puts an SE block before the classifier of a trained model **as the
identity** (:meth:`~squeezex.models.se.SEBlock.make_identity`: with ``fc2`` zero every
channel's s is σ(0) = ½, and the gate — ``s / mean(s)`` by default, or ``2·s`` — turns
that into exactly 1, so the predictions do not change), trains only
what ``train`` names with everything else frozen (its BatchNorm statistics and dropout
included: :func:`~squeezex.training.fit` keeps a module that trains nothing in eval mode),
and reports what it did: the accuracy of the model before and after, overall and per
class, whether the attached block really was the identity, whether the SE vector varies
across images, and the time taken.

Example:
    >>> import torch
    >>> from squeezex import squeeze
    >>> from squeezex.models import SmallCNN
    >>> g = torch.Generator().manual_seed(0)
    >>> x, y = torch.rand(48, 3, 32, 32, generator=g), torch.arange(48) % 3
    >>> model = SmallCNN(num_classes=3).eval()  # stands for a model you trained
    >>> squeezed, report = squeeze(model, (x, y), epochs=1, progress=False)
    >>> report.identity_max_abs_diff  # the block attached as the identity
    0.0
    >>> report.train, report.frozen_unchanged
    ('se', True)
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .common import eval_mode, make_loader, split_batch
from .models.se import GATES, attach_se_head, find_se_block, se_site
from .training import Classification, _decide, fit

__all__ = ["squeeze", "SqueezeReport", "TRAIN", "find_head", "Selective", "selection_entropy"]

#: What :func:`squeeze` may train: the SE block only, the block and the classifier, or
#: every parameter (fine-tuning the whole model with the block in it).
TRAIN = ("se", "se+head", "all")
#: Default learning rates: a new block (and head) learns fast; a whole trained model
#: fine-tunes at a tenth.
DEFAULT_LR = {"se": 3e-3, "se+head": 3e-3, "all": 3e-4}


@dataclass
class SqueezeReport:
    """What :func:`squeeze` did and measured (``str()`` prints it; ``to_dict()`` for JSON)."""

    train: str
    layer: str
    gate: str
    epochs: int
    lr: float
    trained_parameters: int
    frozen_parameters: int
    evaluated_on: str
    #: the largest absolute change of a logit when the block is attached, before any step
    identity_max_abs_diff: float
    accuracy_original: float
    accuracy_squeezed: float
    per_class_original: dict[str, float] = field(default_factory=dict)
    per_class_squeezed: dict[str, float] = field(default_factory=dict)
    #: the frozen parameters and buffers are byte-identical after training (train "se"/"se+head")
    frozen_unchanged: bool | None = None
    losses: list[float] = field(default_factory=list)
    #: :func:`~squeezex.explainers.diagnostics.se_vector_report` of the SE vectors of the
    #: evaluation images (all channels)
    se_vector: dict = field(default_factory=dict)
    seconds: float = 0.0
    #: the weight of the selection penalty (``squeeze(select=...)``; 0: the plain block)
    select: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        se = self.se_vector
        lines = [
            f"squeezed: SE block ({self.gate} gate) on {self.layer!r}, trained {self.train!r} "
            f"({self.trained_parameters:,} parameters; {self.frozen_parameters:,} frozen), "
            f"{self.epochs} epochs at lr {self.lr:g}, {self.seconds:.1f} s",
            f"block attached as the identity: max |Δ logit| = {self.identity_max_abs_diff:.3g}",
            f"accuracy on the {self.evaluated_on}: original {self.accuracy_original:.3f}, "
            f"squeezed {self.accuracy_squeezed:.3f} "
            f"({self.accuracy_squeezed - self.accuracy_original:+.3f})",
        ]
        if self.frozen_unchanged is not None:
            lines.append(f"frozen parameters and buffers unchanged: {self.frozen_unchanged}")
        if se:
            lines.append(
                f"SE vector: s in [{se['s_min']:.2f}, {se['s_max']:.2f}], per-image std "
                f"{se['image_std_mean']:.3f}, per-channel std across images "
                f"{se['channel_std_mean']:.3f}"
                + ("  (s does not vary across images)" if se["channel_std_mean"] < 1e-3 else "")
            )
        change = {c: v - self.per_class_original[c] for c, v in self.per_class_squeezed.items()
                  if c in self.per_class_original}  # fmt: skip
        worst = [c for c in sorted(change, key=change.get) if change[c] < 0][:3]
        if worst:
            lines.append("classes that lost most: " + ", ".join(
                f"{c} {self.per_class_original[c]:.2f} → {self.per_class_squeezed[c]:.2f}"
                for c in worst
            ))  # fmt: skip
        return "\n".join(lines)


def squeeze(
    model: nn.Module,
    train_data,
    *,
    layer: str | None = None,
    train: str = "se",
    gate: str = "normalised",
    epochs: int = 5,
    lr: float | None = None,
    val_data=None,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    reduction: int = 16,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    copy_model: bool = True,
    select: float = 0.0,
) -> tuple[nn.Module, SqueezeReport]:
    """Attach an SE block to a trained ``model`` as the identity and train what ``train``
    names; returns ``(squeezed model, report)``.

    Args:
        model: a trained classifier (any model :func:`~squeezex.attach_se_head` takes:
            torchvision CNNs and vision transformers, timm models, your own). It takes
            the inputs ``train_data`` yields, normalised as it was trained
            (:class:`~squeezex.models.Normalize` puts the normalisation in the model, so
            that explanations are read in pixel space).
        train_data: ``(input, target, …)`` items: a Dataset, a DataLoader, or an
            ``(inputs, targets)`` pair of tensors.
        layer: the layer the block goes after (dotted name; found when ``None``).
        train: ``"se"`` (the block only), ``"se+head"`` (and the classifier, the last
            module with parameters the forward pass calls), or ``"all"``.
        gate: ``"normalised"`` (s / mean(s): the block can only move weight between
            channels) or ``"2sigmoid"`` (2·s: it can also scale every channel up), see
            :class:`~squeezex.models.se.SEBlock`; ``benchmarks/squeeze.py`` compares them.
        epochs, lr, batch_size, weight_decay, seed: the training (AdamW, one-cycle);
            ``lr`` defaults to :data:`DEFAULT_LR` of ``train``.
        val_data: what the report's accuracies are measured on (default: ``train_data``,
            and the report says so).
        reduction: the SE block's r.
        copy_model: squeeze a copy (default) and leave ``model`` as it was; ``False``
            attaches the block to ``model`` itself.
        select: beyond the paper: the weight λ of a penalty that asks the SE vector to
            *select* channels: λ times the entropy of each image's p = s / Σ s over the
            channels, divided by log C (0 when one channel takes all the weight, 1 when s
            is uniform). Default 0: the plain block. ``benchmarks/se_select.py`` measures
            what it does to the selections, the maps and the accuracy.

    Raises:
        ValueError: an unknown ``train``, ``epochs`` < 1, a model that already has an SE
            block, or what :func:`~squeezex.attach_se_head` refuses (with the layers to
            choose from).
    """
    _check(model, train, gate, epochs)
    if not select >= 0:
        raise ValueError(f"select must be >= 0 (the penalty's weight), got {select!r}")
    lr = DEFAULT_LR[train] if lr is None else lr
    start = time.perf_counter()
    net = (copy.deepcopy(model) if copy_model else model).to(device).eval()
    evaluated_on = "validation data" if val_data is not None else "training data (no val_data)"
    eval_data = val_data if val_data is not None else train_data
    before, targets = _logits(net, eval_data, batch_size, device)
    example = _first_inputs(train_data).to(device)
    attach_se_head(net, layer, reduction, example=example, identity=gate)
    after, _ = _logits(net, eval_data, batch_size, device)
    wrapper_name, block = se_site(net), find_se_block(net)
    trained = _parameters(net, train, block, example)
    frozen = _frozen_state(net, trained) if train != "all" else None
    objective = Selective(block, select) if select else None
    result = fit(net, train_data, epochs=epochs, lr=lr, weight_decay=weight_decay,
                 batch_size=batch_size, seed=seed, device=device, progress=progress,
                 desc=f"squeeze ({train})", parameters=trained, objective=objective)  # fmt: skip
    squeezed, _ = _logits(net, eval_data, batch_size, device)
    classes = getattr(eval_data, "classes", None)
    ids = {id(p) for p in trained}
    report = SqueezeReport(
        train=train, layer=wrapper_name, gate=gate, epochs=epochs, lr=lr,
        trained_parameters=sum(p.numel() for p in trained),
        frozen_parameters=sum(p.numel() for p in net.parameters() if id(p) not in ids),
        evaluated_on=evaluated_on,
        identity_max_abs_diff=(before - after).abs().max().item(),
        accuracy_original=_accuracy(before, targets),
        accuracy_squeezed=_accuracy(squeezed, targets),
        per_class_original=_per_class(before, targets, classes),
        per_class_squeezed=_per_class(squeezed, targets, classes),
        frozen_unchanged=None if frozen is None else _unchanged(net, frozen),
        losses=result.losses, se_vector=_se_vector(net, eval_data, targets, batch_size, device),
    )  # fmt: skip
    report.seconds, report.select = time.perf_counter() - start, select
    return net, report


class Selective(Classification):
    """Classification plus ``weight`` × the normalised entropy of each image's SE weights
    p = s / Σ s (see :func:`squeeze`'s ``select``)."""

    def __init__(self, block: nn.Module, weight: float) -> None:
        self.block, self.weight = block, weight

    def loss(self, model: nn.Module, inputs, targets) -> tuple[torch.Tensor, torch.Tensor]:
        with self.block.recording() as tape:
            loss, hits = super().loss(model, inputs, targets)
        return loss + self.weight * selection_entropy(tape["e"]).mean(), hits


def selection_entropy(excitation: torch.Tensor) -> torch.Tensor:
    """Per image, the entropy of p = s / Σ s (s = σ(excitation), N×C×…) over the channels,
    divided by log C: 1 for a uniform s, towards 0 as fewer channels take the weight."""
    s = torch.sigmoid(excitation.flatten(1))
    p = s / s.sum(1, keepdim=True)
    return -(p * p.clamp_min(1e-12).log()).sum(1) / math.log(s.shape[1])


def _check(model: nn.Module, train: str, gate: str, epochs) -> None:
    if train not in TRAIN:
        raise ValueError(f"train must be one of {', '.join(TRAIN)}; got {train!r}")
    if gate not in GATES[1:]:
        raise ValueError(f"gate must be one of {', '.join(GATES[1:])}; got {gate!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if find_se_block(model, required=False) is not None:
        raise ValueError(f"{type(model).__name__} already has an SE block: nothing to squeeze")


def find_head(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The classifier: the last module with parameters of its own that a forward pass on
    ``example`` calls (``fc`` of a ResNet, ``heads.head`` of a ViT, the last ``Linear`` of a
    ConvNeXt's or EfficientNet's ``classifier``)."""
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m))
             for m in model.modules() if next(m.parameters(recurse=False), None) is not None]  # fmt: skip
    try:
        with torch.no_grad(), eval_mode(model):
            model(example[:1])
    finally:
        for h in hooks:
            h.remove()
    if not order:
        raise ValueError(f"{type(model).__name__} called no module with parameters")
    return order[-1]


def _parameters(model: nn.Module, train: str, block: nn.Module, example) -> list:
    if train == "all":
        return list(model.parameters())
    params = list(block.parameters())
    if train == "se+head":
        head = find_head(model, example)
        if head is block or any(head is m for m in block.modules()):
            raise ValueError("the classifier found is inside the SE block: pass layer=")
        params += list(head.parameters(recurse=False))
    return params


def _frozen_state(model: nn.Module, trained: list) -> dict[str, torch.Tensor]:
    """Copies of every parameter not trained and of every buffer (BatchNorm statistics)."""
    ids = {id(p) for p in trained}
    state = {f"param:{n}": p.detach().clone() for n, p in model.named_parameters()
             if id(p) not in ids}  # fmt: skip
    state.update({f"buffer:{n}": b.detach().clone() for n, b in model.named_buffers()})
    return state


def _unchanged(model: nn.Module, frozen: dict[str, torch.Tensor]) -> bool:
    now = {f"param:{n}": p for n, p in model.named_parameters()}
    now.update({f"buffer:{n}": b for n, b in model.named_buffers()})
    return all(torch.equal(now[k], v) for k, v in frozen.items())


def _first_inputs(data) -> torch.Tensor:
    x, _ = split_batch(next(iter(make_loader(data, 2))))
    if not isinstance(x, torch.Tensor):
        raise ValueError("squeeze takes image models: the data's inputs must be tensors")
    return x


@torch.no_grad()
def _logits(model: nn.Module, data, batch_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    outs, targets = [], []
    with eval_mode(model):
        for batch in make_loader(data, batch_size):
            x, y = split_batch(batch)
            outs.append(model(x.to(device)).float().cpu())
            targets.append(torch.as_tensor(y))
    return torch.cat(outs), torch.cat(targets)


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return (_decide(logits, targets) == targets).float().mean().item()


def _per_class(logits: torch.Tensor, targets: torch.Tensor, classes) -> dict[str, float]:
    """Accuracy per class (single-label) or per attribute (multi-label), by name."""
    hits = (_decide(logits, targets) == targets).float()
    if targets.dim() == 2:
        k = targets.shape[1]
        names = classes if classes is not None and len(classes) == k else range(k)
        return {str(c): hits[:, i].mean().item() for i, c in enumerate(names)}
    out = {}
    for c in targets.unique().tolist():
        name = classes[c] if classes is not None and c < len(classes) else c
        out[str(name)] = hits[targets == c].mean().item()
    return out


def _se_vector(model: nn.Module, data, targets, batch_size: int, device) -> dict:
    """:func:`~squeezex.explainers.diagnostics.se_vector_report` of every evaluation
    image's SE vector (single-label data; empty for multi-label targets)."""
    if targets.dim() != 1:
        return {}
    from .explainers import get_explainer
    from .explainers.diagnostics import se_vector_report

    se = get_explainer("se", model)
    vectors = [se.se_vector(split_batch(b)[0].to(device)).s.cpu()
               for b in make_loader(data, batch_size)]  # fmt: skip
    return se_vector_report(torch.cat(vectors).flatten(1), targets.long())
