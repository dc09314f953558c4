"""The thin base class every squeezex explainer extends.

A subclass overrides one method, :meth:`HeatmapAttribution._heatmaps`, which receives the
first input tensor (already validated), per-sample targets and the extra forward
arguments, and returns N×1×… heatmaps at feature or input resolution. The base class owns
everything else: Captum's calling convention (Tensor or tuple in, same structure out,
``log_usage`` so ``NoiseTunnel`` can wrap it), target checking, eval mode for the call
(restored afterwards), and the common footing of METHODS.md §4 (ReLU, geometry-aware
upsampling, per-sample min-max).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from captum.attr import Attribution
from captum.log import log_usage
from torch import nn

from ..geometry import FeatureGeometry, feature_geometry, to_common_footing
from ..modes import eval_mode

__all__ = ["HeatmapAttribution", "normalize_target", "eval_mode"]


def normalize_target(target: Any, n: int, device=None) -> torch.Tensor | None:
    """Per-sample class indices (LongTensor of length ``n``) or ``None``.

    A scalar (int or 0-d tensor) applies to every sample; a sequence or 1-d tensor must
    have length ``n``. Anything else is a ``ValueError`` that names the problem.
    """
    if target is None:
        return None
    if isinstance(target, torch.Tensor):
        if target.dim() == 0:
            return target.to(device=device, dtype=torch.long).expand(n).clone()
        if target.dim() == 1 and target.numel() == n:
            return target.to(device=device, dtype=torch.long)
        raise ValueError(
            f"target must be a scalar or have one entry per sample ({n}), got shape "
            f"{tuple(target.shape)}"
        )
    if isinstance(target, int | bool) or hasattr(target, "__index__"):
        return torch.full((n,), int(target), dtype=torch.long, device=device)
    if isinstance(target, Sequence) and not isinstance(target, str):
        if len(target) != n or not all(
            isinstance(t, int) or hasattr(t, "__index__") for t in target
        ):
            raise ValueError(
                f"target must be a class index or a list of {n} class indices, got {target!r}"
            )
        return torch.tensor([int(t) for t in target], dtype=torch.long, device=device)
    raise ValueError(f"target must be a class index or one index per sample, got {target!r}")


class HeatmapAttribution(Attribution):
    """Base for explainers that return one heatmap per sample on the common footing.

    Args:
        model: the model to explain (an ``nn.Module``; its ``forward`` is Captum's
            ``forward_func``).
        upsample: ``"geometry"`` (default: sample feature maps where the network's cells
            really sit) or ``"interpolate"`` (``F.interpolate``'s even tiling, for
            comparison only).
        interpolation: ``"bilinear"`` (trilinear for video) or ``"bicubic"``.
        eval_mode: run the model in eval mode during ``attribute`` (restored afterwards),
            so batch-norm statistics are neither used per batch nor updated.
    """

    #: True when a sample's map does not depend on the other samples of its batch.
    per_sample: bool = True
    #: True when ``attribute`` needs autograd (a backward pass).
    needs_gradients: bool = False

    def __init__(
        self,
        model: nn.Module,
        *,
        upsample: str = "geometry",
        interpolation: str = "bilinear",
        eval_mode: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if upsample not in ("geometry", "interpolate"):
            raise ValueError(f"upsample must be 'geometry' or 'interpolate', got {upsample!r}")
        if interpolation not in ("bilinear", "bicubic"):
            raise ValueError(
                f"interpolation must be 'bilinear' or 'bicubic', got {interpolation!r}"
            )
        super().__init__(model)
        self.model = model
        self.upsample = upsample
        self.interpolation = interpolation
        self.eval_mode = eval_mode
        self._geometry: dict[tuple, FeatureGeometry] = {}

    # -- Captum's interface --------------------------------------------------------------
    def has_convergence_delta(self) -> bool:
        return False

    @property
    def multiplies_by_inputs(self) -> bool:
        return False

    @log_usage()
    def attribute(
        self,
        inputs: torch.Tensor | tuple[torch.Tensor, ...],
        target: Any = None,
        additional_forward_args: Any = None,
        **kwargs: Any,
    ):
        """Heatmaps for ``inputs``: N×1×H×W (N×1×T×H×W for clips) in [0, 1].

        Args:
            inputs: a tensor N×C×H×W (or N×C×T×H×W), or a tuple whose first tensor is
                that; the other tensors are passed to the model too.
            target: class index for every sample, or one index per sample; ``None``
                explains the predicted class (methods that need a class).
            additional_forward_args: extra positional arguments for the model.
            **kwargs: method options (see the subclass).

        Returns:
            The same structure as ``inputs``: the heatmap for the first tensor, and zero
            maps of the same layout for any other tensor.
        """
        is_tuple = isinstance(inputs, tuple)
        tensors = inputs if is_tuple else (inputs,)
        x = self._check_inputs(tensors)
        extra = tuple(tensors[1:]) + _as_tuple(additional_forward_args)
        target = normalize_target(target, x.shape[0], x.device)
        if target is not None:
            self._check_target(target)
        with eval_mode(self.model, self.eval_mode):
            out = self._heatmaps(x, target, extra, **kwargs)
        extras = ()
        if isinstance(out, tuple):
            out, *extras = out
            extras = tuple(extras)
        if not is_tuple:
            return (out, *extras) if extras else out
        rest = tuple(
            torch.zeros(t.shape[0], 1, *t.shape[2:], dtype=out.dtype, device=out.device)
            for t in tensors[1:]
        )
        return ((out, *rest), *extras) if extras else (out, *rest)

    # -- what a subclass overrides -------------------------------------------------------
    def _heatmaps(self, x: torch.Tensor, target, extra: tuple, **kwargs):
        raise NotImplementedError

    # -- shared helpers --------------------------------------------------------------------
    def _check_inputs(self, tensors: tuple) -> torch.Tensor:
        if len(tensors) == 0 or not isinstance(tensors[0], torch.Tensor):
            raise ValueError("inputs must be a tensor or a tuple whose first element is a tensor")
        x = tensors[0]
        if x.dim() not in (4, 5):
            raise ValueError(
                f"inputs must be N×C×H×W images or N×C×T×H×W clips, got shape {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError("inputs is an empty batch")
        if not x.is_floating_point():
            raise ValueError(f"inputs must be floating point, got {x.dtype}")
        return x

    def _check_target(self, target: torch.Tensor) -> None:
        n = self.num_classes
        if n is None:
            return
        values = target.tolist()  # one op: per-op overhead dominates on small batches
        if min(values) < 0 or max(values) >= n:
            raise ValueError(f"target must be class indices in [0, {n}), got {values}")

    @property
    def num_classes(self) -> int | None:
        """Number of outputs of the model's last linear layer, when it has one."""
        if getattr(self, "_num_classes", None) is None:
            last = None
            for m in self.model.modules():
                if isinstance(m, nn.Linear):
                    last = m
            self._num_classes = (last.out_features if last is not None else None, last)
        n, last = self._num_classes
        if last is not None and last.out_features != n:  # the head was replaced or resized
            self._num_classes = None
            return self.num_classes
        return n

    def geometry(
        self, layer: nn.Module, x: torch.Tensor, extra: tuple = ()
    ) -> FeatureGeometry | None:
        """The cached geometry of ``layer``'s output for inputs shaped like ``x``."""
        if self.upsample == "interpolate":
            return None
        key = (id(layer), tuple(x.shape[1:]))
        if key not in self._geometry:
            probe = torch.zeros(1, *x.shape[1:], dtype=x.dtype, device=x.device)
            wrapped = _BoundForward(
                self.model, tuple(e[:1] if _batched(e, x) else e for e in extra)
            )
            self._geometry[key] = feature_geometry(wrapped, layer, probe)
        return self._geometry[key]

    def footing(self, maps: torch.Tensor, x: torch.Tensor, geometry: FeatureGeometry | None):
        """ReLU, upsample to ``x``'s grid with ``geometry``, min-max per sample."""
        return to_common_footing(maps, tuple(x.shape[2:]), geometry, self.interpolation)

    def _forward(self, x: torch.Tensor, extra: tuple):
        return self.model(x, *extra)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"


def _as_tuple(v) -> tuple:
    if v is None:
        return ()
    return v if isinstance(v, tuple) else (v,)


def _batched(e, x) -> bool:
    return isinstance(e, torch.Tensor) and e.dim() > 0 and e.shape[0] == x.shape[0]


class _BoundForward(nn.Module):
    """``model`` with fixed extra forward arguments, for tracing geometry."""

    def __init__(self, model: nn.Module, extra: tuple) -> None:
        super().__init__()
        self.model = model
        self.extra = extra

    def forward(self, x):
        return self.model(x, *self.extra)
