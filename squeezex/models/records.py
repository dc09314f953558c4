"""What a checkpoint records to rebuild the model it holds, and the rebuilding.

A model squeezed from a torchvision (or timm) builder is saved as its state dict and an
``arch`` record: the builder, the classes, the input size and normalisation, and where
its SE block sits. :func:`rebuild` makes the same module again (random weights, then the
state dict loads into it), so ``squeezex explain`` and the benchmark can read a squeezed
checkpoint with nothing else.

Example:
    >>> import torch, torchvision
    >>> from squeezex import attach_se_head
    >>> from squeezex.models import Normalize
    >>> from squeezex.models.records import arch_record, rebuild
    >>> model = torch.nn.Sequential(Normalize(), torchvision.models.resnet18(num_classes=3))
    >>> model = attach_se_head(model, identity=True)
    >>> record = arch_record("torchvision:resnet18", model, classes=["a", "b", "c"], size=64)
    >>> record["se"], record["mean"] is not None
    ({'layer': '1.layer4', 'reduction': 16, 'gate': 'normalised'}, True)
    >>> again = rebuild(record)
    >>> again.load_state_dict(model.state_dict())
    <All keys matched successfully>
"""

from __future__ import annotations

from torch import nn

from .normalize import Normalize
from .se import attach_se_head, find_se_block, se_site

__all__ = ["arch_record", "rebuild", "build_backbone", "load_weights", "BACKENDS"]

#: Where a builder name comes from: ``torchvision:<name>`` (any classification builder),
#: ``timm:<name>`` (with the optional extra ``squeezex[timm]``) or ``squeezex:<name>``
#: (an architecture the benchmark trains, :mod:`squeezex.models.archs`).
BACKENDS = ("torchvision", "timm", "squeezex")


def build_backbone(builder: str, num_classes: int, pool: str = "max", size: int = 64) -> nn.Module:
    """A classifier with random weights from ``builder`` (``torchvision:resnet50``,
    ``timm:convnext_atto``; a bare name is torchvision's). Never downloads.

    Raises:
        ValueError: an unknown backend or name (torchvision's message lists where to look),
            or timm asked for without it installed.
    """
    backend, _, name = builder.rpartition(":")
    backend = backend or "torchvision"
    if backend == "torchvision":
        from .cnn import torchvision_model

        return torchvision_model(name, num_classes)
    if backend == "squeezex":
        from .archs import arch_backbone

        return arch_backbone(name, num_classes, pool=pool, size=size)
    if backend == "timm":
        try:
            import timm
        except ImportError:
            raise ValueError(
                f"{builder}: timm is not installed (pip install 'squeezex[timm]')"
            ) from None
        if name not in timm.list_models():
            raise ValueError(f"unknown timm model {name!r}; see timm.list_models()")
        return timm.create_model(name, pretrained=False, num_classes=num_classes)
    raise ValueError(f"unknown model source {backend!r} in {builder!r}: use {', '.join(BACKENDS)}")


def load_weights(model: nn.Module, state: dict, source: str) -> None:
    """``model.load_state_dict(state)`` with an error that names the first keys that do not
    fit (missing, unexpected, or of another shape): weights of another architecture, or
    with another number of classes, say which."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} ≠ {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]  # fmt: skip
    if missing or unexpected or shapes:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
            if keys:
                more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
                parts.append(f"{what}: {', '.join(keys[:3])}{more}")
        raise ValueError(
            f"{source} does not fit {type(model).__name__}: "
            + "; ".join(parts)
            + " (weights of another architecture or number of classes?)"
        )
    model.load_state_dict(state)


def arch_record(builder: str, model: nn.Module, *, classes: list[str] | None, size: int,
                **extra) -> dict:  # fmt: skip
    """What rebuilds ``model``: the builder, classes, input size, its :class:`Normalize`
    (first module of an ``nn.Sequential``) and its SE block's site, reduction and gate."""
    norm = (
        model[0] if isinstance(model, nn.Sequential) and isinstance(model[0], Normalize) else None
    )
    block = find_se_block(model, required=False)
    site = se_site(model)
    head = model[1] if norm is not None else model
    out = _num_classes(head)
    return {
        "builder": builder,
        "num_classes": out,
        "classes": list(classes) if classes is not None else None,
        "size": size,
        "mean": norm.mean.tolist() if norm is not None else None,
        "std": norm.std.tolist() if norm is not None else None,
        "se": None
        if block is None
        else {"layer": site, "reduction": block.reduction, "gate": block.gate},  # fmt: skip
        **extra,
    }


def rebuild(arch: dict) -> nn.Module:
    """A module with the architecture of ``arch`` (from :func:`arch_record`) and random
    weights, in eval mode: load the checkpoint's state dict into it."""
    model = build_backbone(arch["builder"], arch["num_classes"], pool=arch.get("pool", "max"),
                           size=arch.get("size") or 64)  # fmt: skip
    if arch.get("mean") is not None:
        model = nn.Sequential(Normalize(arch["mean"], arch["std"]), model)
    se = arch.get("se")
    if se:
        size = arch.get("size") or 224
        attach_se_head(model, se["layer"], se["reduction"], input_size=(3, size, size))
        find_se_block(model).gate = se.get("gate", "sigmoid")
    return model.eval()


def _num_classes(model: nn.Module) -> int | None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None
