"""The thin base class every squeezex explainer extends.

A subclass overrides one method, :meth:`HeatmapAttribution._heatmaps`, which receives the
first input tensor (already validated), per-sample targets and the extra forward
arguments, and returns N×1×… heatmaps at feature or input resolution. The base class owns
everything else: Captum's calling convention (Tensor or tuple in, same structure out,
``log_usage`` so ``NoiseTunnel`` can wrap it), input and target checks, eval mode for the
call (restored afterwards), autograd under ``torch.inference_mode()``, a warning for
non-finite maps, and the common footing of METHODS.md §4 (ReLU, geometry-aware
upsampling, per-sample min-max).

Targets are checked against the model's *real* output: every forward pass an explainer
makes goes through :attr:`HeatmapAttribution.forward_model`, which picks the explained
head of a multi-head model (``output=``) and refuses a target index beyond the width of
that head before Captum or anything else indexes with it.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Any

import torch
from captum.attr import Attribution
from captum.log import log_usage
from torch import nn

from ..common import (
    ExplanationWarning,
    as_tuple,
    check_inputs,
    check_target_range,
    diagnose_inputs,
    eval_mode,
    is_batched,
    non_finite_rows,
    normalize_target,
    select_output,
)
from ..geometry import FeatureGeometry, feature_geometry, to_common_footing
from ..models.tokens import active_token_views
from ..options import Bool, Choice, Either, Int, Text, check_options

__all__ = ["HeatmapAttribution", "ModelOutput"]


class ModelOutput(nn.Module):
    """``model`` seen through one head, with the target range checked on every call.

    What explainers run and hand to Captum as ``forward_func``: it returns the N×K scores
    of head ``output`` (see :func:`squeezex.common.select_output`) and raises a
    ``ValueError`` when the target armed for the current call is out of that head's range.
    It holds ``model`` as a child, so hooks Captum puts on the model's modules see the
    same modules; the user's model itself is not wrapped or changed.
    """

    def __init__(self, model: nn.Module, output: int | str | None = None) -> None:
        super().__init__()
        self.model = model
        self.output = output
        #: Armed by ``HeatmapAttribution.attribute`` for the length of one call.
        self._target: torch.Tensor | None = None

    def forward(self, *args, **kwargs):
        out = select_output(self.model(*args, **kwargs), self.output)
        if self._target is not None:
            check_target_range(self._target, out.shape[1])
        return out


class HeatmapAttribution(Attribution):
    """Base for explainers that return one heatmap per sample on the common footing.

    Args:
        model: the model to explain (an ``nn.Module``).
        output: which head a multi-head model's class scores come from (an index into
            its tuple output, or a dict key); ``None`` for a model returning one tensor.
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
    #: True when the method reads an SE block (the model must have one).
    needs_se: bool = False
    #: What each option takes (:mod:`squeezex.options`), checked when the explainer is
    #: made; a subclass adds its own (merged by :func:`squeezex.options.options_of`).
    OPTIONS = {
        "output": Either(Int(), Text(), none=True),
        "upsample": Choice(("geometry", "interpolate")),
        "interpolation": Choice(("bilinear", "bicubic")),
        "eval_mode": Bool(),
    }

    def __init__(
        self,
        model: nn.Module,
        *,
        output: int | str | None = None,
        upsample: str = "geometry",
        interpolation: str = "bilinear",
        eval_mode: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        output, upsample, interpolation, eval_mode = check_options(
            self, output=output, upsample=upsample, interpolation=interpolation,
            eval_mode=eval_mode,
        ).values()  # fmt: skip
        self.forward_model = ModelOutput(model, output)
        super().__init__(self.forward_model)
        self.model = model
        self.output = output
        self.upsample = upsample
        self.interpolation = interpolation
        self.eval_mode = eval_mode
        self._geometry: dict[tuple, FeatureGeometry] = {}
        #: After each ``attribute`` call: sample index → ``"all zero"`` or
        #: ``"non-finite"`` for the maps that are not explanations (empty: all are).
        self.flags: dict[int, str] = {}

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
            target: class index for every sample, or one index per sample (a list, a
                NumPy array or an integer tensor); ``None`` explains the predicted class
                (methods that need a class).
            additional_forward_args: extra positional arguments for the model.
            **kwargs: method options (see the subclass).

        Returns:
            The same structure as ``inputs``: the heatmap for the first tensor, and zero
            maps of the same layout for any other tensor.

        Raises:
            ValueError: the inputs or the target are not what the model takes (layout,
                channels, dtype, device, NaN/inf values, class range), named.

        Warns:
            ExplanationWarning: a map with NaN or inf values, or one that is all zero,
                naming the samples; :attr:`flags` holds them too (see :meth:`_flag`).
        """
        is_tuple = isinstance(inputs, tuple)
        tensors = inputs if is_tuple else (inputs,)
        if len(tensors) == 0 or not isinstance(tensors[0], torch.Tensor):
            raise ValueError("inputs must be a tensor or a tuple whose first element is a tensor")
        x = self._check_inputs(tensors)
        extra = tuple(tensors[1:]) + as_tuple(additional_forward_args)
        target = normalize_target(target, x.shape[0], x.device)
        out = self._run(x, target, extra, kwargs)
        out, *extras = out if isinstance(out, tuple) else (out,)
        self._flag(out)
        if not is_tuple:
            return (out, *extras) if extras else out
        rest = tuple(
            torch.zeros(t.shape[0], 1, *t.shape[2:], dtype=out.dtype, device=out.device)
            for t in tensors[1:]
        )
        return ((out, *rest), *extras) if extras else (out, *rest)

    def _run(self, x: torch.Tensor, target, extra: tuple, kwargs: dict):
        """:meth:`_heatmaps` in the explainer's mode (eval, autograd where needed, a plain
        ViT's token view live), a refused batch turned into a named ``ValueError``."""
        self.forward_model._target = target  # every forward pass checks it (disarmed below)
        try:
            with (
                eval_mode(self.model, self.eval_mode),
                _autograd_allowed(self.needs_gradients),
                active_token_views(self.model),  # a plain ViT's tokens as a map, in here only
            ):
                if self.needs_gradients:  # inference tensors cannot enter autograd: copy them
                    x, target, extra = _normal(x), _normal(target), tuple(map(_normal, extra))
                return self._heatmaps(x, target, extra, **kwargs)
        except RuntimeError as exc:  # the model refused the batch: say why, if we can tell
            hint = diagnose_inputs(x, self.model)
            if hint is None:
                raise
            raise ValueError(hint) from exc
        finally:
            self.forward_model._target = None

    # -- what a subclass overrides -------------------------------------------------------
    def _heatmaps(self, x: torch.Tensor, target, extra: tuple, **kwargs):
        raise NotImplementedError

    # -- shared helpers --------------------------------------------------------------------
    def _check_inputs(self, tensors: tuple) -> torch.Tensor:
        return check_inputs(tensors[0], self.model)

    def _forward(self, x: torch.Tensor, extra: tuple) -> torch.Tensor:
        """The explained head's N×K scores (the target range checked). The wrapper's own
        ``forward`` is called: it holds no hooks, and skipping ``Module.__call__`` keeps
        the SE explanation's one pass as cheap as the model's."""
        return self.forward_model.forward(x, *extra)

    def _probe(self, x: torch.Tensor, extra: tuple) -> None:
        """For methods that never run the model: one no-grad pass on the first sample, so
        that the model accepts the batch and the target fits its real output."""
        with torch.no_grad():
            self._forward(x[:1], tuple(e[:1] if is_batched(e, len(x)) else e for e in extra))

    def _flag(self, maps: torch.Tensor) -> None:
        """Set :attr:`flags` (sample index → why its map is not an explanation) and warn.

        A map is flagged when it has NaN or inf values (the model's activations or
        gradients are not finite) or when it is **all zero**: every value was ≤ 0 before
        the common footing's ReLU (or the map is constant), so nothing is left to show.
        That happens when a gradient-weighted map (Grad-CAM, ``se-class``) points away
        from the class everywhere, or when a method clamps signed features (no ReLU before
        the layer: MaxViT's stages, a transformer's tokens, EfficientNet's SiLU can leave a
        channel mean below 0 everywhere; the SE map itself is not clamped there, see
        :class:`~squeezex.explainers.se.SEAttribution`). What to do: read another layer (``layer=``), try another method, or check
        the model (an untrained model's maps are often empty).
        """
        bad = non_finite_rows(maps)
        empty = [
            i for i in (maps.flatten(1).abs().amax(1) == 0).nonzero()[:, 0].tolist()
            if i not in bad
        ]  # fmt: skip
        flagged = {i: "non-finite" for i in bad}
        flagged.update((i, "all zero") for i in empty)
        self.flags = flagged
        name = type(self).__name__
        if bad:
            warnings.warn(
                f"{name}: the heatmap of sample(s) {bad[:20]} has NaN or infinite values (the "
                "model's activations or gradients are not finite); they are not explanations",
                ExplanationWarning,
                stacklevel=4,
            )
        if empty:
            warnings.warn(
                f"{name}: the heatmap of sample(s) {empty[:20]} is all zero (every value was "
                "≤ 0 before the ReLU: negative activations at the layer read, or a gradient "
                "against the class); it is not an explanation — try layer=…, se-class or "
                "Grad-CAM, or check the model is trained",
                ExplanationWarning,
                stacklevel=4,
            )

    def geometry(
        self, layer: nn.Module, x: torch.Tensor, extra: tuple = ()
    ) -> FeatureGeometry | None:
        """The cached geometry of ``layer``'s output for inputs shaped like ``x``."""
        if self.upsample == "interpolate":
            return None
        key = (id(layer), tuple(x.shape[1:]))
        if key not in self._geometry:
            probe = torch.zeros(1, *x.shape[1:], dtype=x.dtype, device=x.device)
            n = x.shape[0]
            wrapped = _BoundForward(
                self.model, tuple(e[:1] if is_batched(e, n) else e for e in extra)
            )
            self._geometry[key] = feature_geometry(wrapped, layer, probe)
        return self._geometry[key]

    def footing(self, maps: torch.Tensor, x: torch.Tensor, geometry: FeatureGeometry | None):
        """ReLU, upsample to ``x``'s grid with ``geometry``, min-max per sample."""
        return to_common_footing(maps, tuple(x.shape[2:]), geometry, self.interpolation)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"


def _autograd_allowed(needed: bool):
    """Leave ``torch.inference_mode()`` for methods that need a backward pass (autograd
    cannot run inside it; the caller's mode is back after the block)."""
    if needed and torch.is_inference_mode_enabled():
        return torch.inference_mode(False)
    return nullcontext()


def _normal(e):
    """A normal tensor for an inference-mode one (autograd cannot save those)."""
    return e.clone() if isinstance(e, torch.Tensor) and e.is_inference() else e


class _BoundForward(nn.Module):
    """``model`` with fixed extra forward arguments, for tracing geometry."""

    def __init__(self, model: nn.Module, extra: tuple) -> None:
        super().__init__()
        self.model = model
        self.extra = extra

    def forward(self, x):
        return self.model(x, *self.extra)
