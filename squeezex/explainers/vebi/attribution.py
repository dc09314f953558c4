"""VEBI's test-time explanation, its fit step and its registration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...common import check_target_range
from ...options import Choice, Int, check_options
from ..base import HeatmapAttribution
from ..registry import register_explainer
from .backward import STRIDE_FIXES, _backward, _Tracer, feature_heatmap
from .lasso import RelevantFeatures

__all__ = ["VEBIAttribution", "fit_vebi"]


def fit_vebi(
    model, data, *, cache=None, mu: float = 10.0, device="cpu", progress=True, output=None
):
    """The ``fit`` step of ``vebi``: relevant features of ``model`` on ``data``.

    With ``cache`` (a file path), a fit read from it is used when it was made for this
    very model (same weights), with the same μ and default options, on data of the same
    size (and the same labels, when ``data`` has ``targets``); anything else, including
    an unreadable file, is a cache miss: the fit is made and written there atomically.
    """
    if cache is not None and Path(cache).is_file():
        try:
            rf = RelevantFeatures.load(cache, model)
        except Exception:  # a stale, foreign or broken file is a miss, never an error
            rf = None
        if rf is not None and _fit_matches(rf, data, mu):
            return {"relevant": rf}
    rf = RelevantFeatures(mu=mu, device=device, progress=progress, output=output).fit(model, data)
    if cache is not None:
        rf.save(cache)
    return {"relevant": rf}


def _fit_matches(rf: RelevantFeatures, data, mu: float) -> bool:
    if rf.mu != mu or rf.layers is not None or rf.labels != "true":
        return False
    if isinstance(data, tuple) and len(data) == 2:
        n, targets = len(data[0]), data[1]
    else:
        n, targets = len(data), getattr(data, "targets", None)
    if n != len(rf.train_labels_):
        return False
    if targets is not None and not np.array_equal(np.asarray(targets), rf.train_labels_):
        return False
    return True


@register_explainer(
    "vebi",
    description="VEBI: top-3 μ-lasso features, guided backward pass, stride fix",
    fit=fit_vebi,
    presets={
        "vebi-nofix": (
            "VEBI without the stride fix (transposed strided convs; for the ablation)",
            {"stride_fix": False},
        )
    },
)
class VEBIAttribution(HeatmapAttribution):
    """VEBI's test-time explanation (Oramas, Wang & Tuytelaars, ICLR 2019).

    For each sample: the class (given, or predicted), the relevance of each of its
    relevant features r = x ⊙ w / Σw, the top ``top_k`` positive ones, each propagated
    back from its own activation map (:func:`backproject`), per-feature maps (positive
    part, L2 over colours, min-max), combined by pixel-wise max, on the common footing.

    Registry names: ``vebi`` and its preset ``vebi-nofix`` (``stride_fix=False``).

    Args:
        model: the network the fit was made for.
        relevant: a fitted :class:`RelevantFeatures` (or a path written by its ``save``).
        top_k: features per explanation (3 in the paper).
        stride_fix: the checkerboard fix for strided convolutions: ``True`` (default, the
            cell-aligned resize), ``"nearest"`` (the literal resize) or ``False``.

    Example:
        >>> from squeezex.datasets import An8Flower
        >>> from squeezex.explainers import RelevantFeatures
        >>> from squeezex.models import SmallCNN
        >>> train_set = An8Flower("single-6c", "train", n_per_class=4, size=32, seed=0)
        >>> model = SmallCNN(num_classes=6).eval()  # a trained model in practice
        >>> rf = RelevantFeatures(mu=5, progress=False).fit(model, train_set)
        >>> x = train_set.images[:2].float() / 255
        >>> VEBIAttribution(model, rf).attribute(x).shape
        torch.Size([2, 1, 32, 32])
        >>> maps, per_feature, index = VEBIAttribution(model, rf).attribute(
        ...     x, return_features=True)
        >>> per_feature.shape, index.shape  # the top 3 features' maps, their rf.features_ index
        (torch.Size([2, 3, 32, 32]), torch.Size([2, 3]))
    """

    needs_gradients = True
    FOOTING = (
        "relevant features fitted on the training data (μ-lasso), guided backward pass "
        "from the top 3 to the input, input resolution"
    )
    OPTIONS = {"top_k": Int(1), "stride_fix": Choice(STRIDE_FIXES)}

    def __init__(
        self,
        model: nn.Module,
        relevant: RelevantFeatures | str | Path | None = None,
        top_k: int = 3,
        stride_fix: bool | str = True,
        **kwargs,
    ) -> None:
        super().__init__(model, **kwargs)
        if relevant is None:
            raise ValueError(
                "VEBI needs the relevant features of each class: pass "
                "relevant=RelevantFeatures(mu=...).fit(model, train_data)"
            )
        if isinstance(relevant, str | Path):
            relevant = RelevantFeatures.load(relevant, model)
        if not isinstance(relevant, RelevantFeatures):
            raise TypeError(f"relevant must be a RelevantFeatures, got {type(relevant).__name__}")
        relevant._check_fitted()
        top_k, stride_fix = check_options(self, top_k=top_k, stride_fix=stride_fix).values()
        self.relevant = relevant
        self.top_k = top_k
        self.stride_fix = stride_fix
        self._coef = torch.from_numpy(relevant.coef_)

    def _heatmaps(self, x, target, extra, return_features=False, stride_fix=None, top_k=None):
        rf = self.relevant
        fix = self.stride_fix if stride_fix is None else stride_fix
        k = self.top_k if top_k is None else top_k
        keep = {layer for layer, _ in (rf.features_[i] for r in rf.relevant_ for i in r)}
        with torch.enable_grad():
            xg = x.detach().clone().requires_grad_(True)
            with _Tracer(self.model, rf.layers_, keep, guided=True, stride_fix=fix) as tr:
                logits = self._forward(xg, extra)
            feats = tr.features()
            if target is None:
                target = logits.detach().argmax(1)
            check_target_range(target, len(self._coef), "the VEBI fit")
            w = self._coef[target.cpu()]  # N×m
            empty = torch.nonzero(w.sum(1) == 0).flatten()
            if len(empty):
                bad = sorted({int(target[i]) for i in empty})
                raise ValueError(f"class(es) {bad} have no relevant features in this VEBI fit")
            r = feats.cpu() * w / w.sum(1, keepdim=True)
            # rank positive relevance first; ties and zeros fall back on the class weight
            score = torch.where(r > 0, r + 1.0, w / w.sum(1, keepdim=True) * 1e-6)
            score = torch.where(w > 0, score, torch.full_like(score, -1.0))
            top = score.topk(min(k, score.shape[1]), dim=1)
            index = torch.where(top.values > 0, top.indices, torch.full_like(top.indices, -1))
            per_feature = []
            for j in range(index.shape[1]):
                picks = [rf.features_[int(i)] if i >= 0 else None for i in index[:, j]]
                sig = _backward(xg, tr.outputs, picks, retain=j < index.shape[1] - 1)
                per_feature.append(feature_heatmap(sig.detach()))
        per_feature = torch.cat(per_feature, 1)
        maps = self.footing(per_feature.amax(1, keepdim=True), x, None)
        if return_features:
            return maps, per_feature, index.to(x.device)
        return maps
