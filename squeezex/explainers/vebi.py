"""VEBI: visual explanation by interpretation (Oramas, Wang & Tuytelaars, ICLR 2019).

Three stages (METHODS.md §2):

1. :func:`extract_features` — every channel of the chosen layers is one feature, its
   squared-L2 energy over positions; L1-normalised within the layer, concatenated,
   L2-normalised overall.
2. :class:`RelevantFeatures` — per class, a non-negative least-squares fit with an L1
   budget μ (the "μ-lasso", solved on scikit-learn's LARS/Lasso path with
   ``positive=True``); the non-zero weights are the class's relevant features.
3. :func:`interpret` (average visualisation of each relevant feature over the images of
   its class where it responds most) and :class:`VEBIAttribution` (test-time heatmaps:
   the top relevant features of the class, each propagated back to the input from its
   own activation map with the guided rule, transposed convolutions and unpooling with
   switches, combined by pixel-wise max).

The backward pass runs through autograd with forward hooks, so it works on any
``nn.Module`` (skip connections, strided convolutions and max-pools anywhere): the
gradient of a convolution *is* its transposed convolution, the gradient of a max-pool
*is* unpooling with the forward switches, and a hook on every ``nn.ReLU`` (and
``nn.ReLU6``) adds the guided
rule (the backward signal is clamped at 0; autograd's ReLU gradient already masks where
the forward input was not positive). ReLUs called as functions (``F.relu``) are not
modules and keep the plain gradient rule.

**Stride fix.** Run backwards, a convolution with stride s > 1 paints a checkerboard
(its kernel overlaps the input unevenly). With ``stride_fix=True`` (default) the
incoming signal is resized to the size a stride-1 convolution of that layer would give
(its own input size + 2·padding − dilation·(kernel − 1)), divided by the number of copies
so its mass is kept, and run through the transposed convolution with stride 1 and the
same kernel, padding and dilation. The resize is nearest-neighbour *aligned to where the
cells sit*: cell j of the strided output covers the same input window as cell s·j of the
stride-1 output, so stride-1 cell i takes the value of the strided cell nearest to i/s
(halfway between two cells it takes half of each). ``stride_fix="nearest"`` is the
literal reading (``F.interpolate(mode="nearest")``: cell j fills cells s·j … s·j + s − 1),
which removes the checkerboard as well but shifts the map by (s − 1)/2 pixels per strided
layer. Max-pools keep unpooling with switches (the deconvnet rule). Padding modes other
than zeros are treated as zeros in the fixed backward pass.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..geometry import minmax
from ..io import atomic_torch_save
from ..se import get_submodule
from .base import HeatmapAttribution, eval_mode

__all__ = [
    "default_layers",
    "extract_features",
    "FeatureSet",
    "mu_lasso",
    "RelevantFeatures",
    "backproject",
    "interpret",
    "Interpretation",
    "VEBIAttribution",
]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_RELU = (nn.ReLU, nn.ReLU6)
_FEATURE_TYPES = (*_CONV, *_RELU, *_POOL)
STRIDE_FIXES = (False, True, "aligned", "nearest")
_TRANSPOSED = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_EPS = 1e-12


# -- stage 1: features -------------------------------------------------------------------------
def default_layers(model: nn.Module, example: torch.Tensor, *extra) -> list[str]:
    """Dotted names of every conv, ReLU and (non-adaptive) pool whose output is spatial.

    One dry forward pass on ``example`` decides which modules run and have more than one
    position (the SE block's 1×1 convolutions and the head are not features).
    """
    found: dict[str, bool] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, _FEATURE_TYPES):

            def hook(module, args, output, name=name):
                found[name] = (
                    isinstance(output, torch.Tensor)
                    and output.dim() >= 3
                    and math.prod(output.shape[2:]) > 1
                )

            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad(), eval_mode(model):
            model(example[:1], *extra)
    finally:
        for h in handles:
            h.remove()
    layers = [name for name, _ in model.named_modules() if found.get(name)]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no conv, ReLU or pool module with a spatial output; "
            "VEBI needs a CNN (pass layers=[...] to choose modules)"
        )
    return layers


def _normalise(energies: list[torch.Tensor]) -> torch.Tensor:
    """Per layer L1, concatenated, overall L2 (METHODS.md §2)."""
    parts = [e / e.sum(1, keepdim=True).clamp_min(_EPS) for e in energies]
    x = torch.cat(parts, 1)
    return x / x.norm(dim=1, keepdim=True).clamp_min(_EPS)


class _GuidedReLU(torch.autograd.Function):
    """Identity forward; backward keeps the positive part of the signal (guided rule)."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp_min(0)


class _StrideFixed(torch.autograd.Function):
    """A strided convolution's output whose backward pass is the checkerboard-free one."""

    @staticmethod
    def forward(ctx, inp, out, module, mode):
        ctx.module = module
        ctx.mode = mode
        ctx.in_shape = tuple(inp.shape[2:])
        return out.detach().clone()

    @staticmethod
    def backward(ctx, grad):
        m = ctx.module
        d = len(ctx.in_shape)
        pad = m.padding if not isinstance(m.padding, str) else (0,) * d
        size = [
            ctx.in_shape[i] + 2 * pad[i] - m.dilation[i] * (m.kernel_size[i] - 1) for i in range(d)
        ]
        if ctx.mode == "nearest":
            up = _nearest(grad, size)
        else:
            up = _aligned_nearest(grad, size, m.stride)
        up = up * (grad[0].numel() / max(up[0].numel(), 1))  # keep the signal's mass
        w = m.weight.to(up.dtype)
        back = _TRANSPOSED[d](up, w, stride=1, padding=pad, dilation=m.dilation, groups=m.groups)
        return back, None, None, None


def _nearest(x: torch.Tensor, size) -> torch.Tensor:
    """Nearest-neighbour resize of the spatial axes (source index ⌊i·in/out⌋, as
    ``F.interpolate(mode="nearest")``, several times faster on CPU for whole factors)."""
    size = tuple(size)
    if all(o % n == 0 for o, n in zip(size, x.shape[2:], strict=True)):  # whole factors
        for d, out in enumerate(size, start=2):
            n = x.shape[d]
            if n != out:
                shape = list(x.shape)
                x = x.unsqueeze(d + 1).expand(*shape[: d + 1], out // n, *shape[d + 1 :])
                x = x.reshape(*shape[:d], out, *shape[d + 1 :])
        return x
    return F.interpolate(x.contiguous(), size=size, mode="nearest")


def _spread(s: int, dtype, device) -> torch.Tensor:
    """1-D weights of the aligned nearest resize by ``s``: s ones centred (odd s), or
    [½, 1, …, 1, ½] over s + 1 cells (even s: the halfway cells are shared)."""
    if s % 2:
        return torch.ones(s, dtype=dtype, device=device)
    w = torch.ones(s + 1, dtype=dtype, device=device)
    w[0] = w[-1] = 0.5
    return w


def _aligned_nearest(x: torch.Tensor, size, stride) -> torch.Tensor:
    """Nearest-neighbour resize where source cell j sits at target cell stride·j."""
    for d, (out, s) in enumerate(zip(size, stride, strict=True)):
        dim = 2 + d
        if s == 1 and x.shape[dim] == out:
            continue
        w = _spread(s, x.dtype, x.device).tolist()
        centre = (len(w) - 1) // 2
        shape = list(x.shape)
        shape[dim] = out
        y = x.new_zeros(shape)
        n = x.shape[dim]
        for k, weight in enumerate(w):  # target s·j + t receives weight(t)·x[j]
            t = k - centre
            first = 0 if t >= 0 else 1  # first j with s·j + t >= 0
            last = min(n - 1, (out - 1 - t) // s)  # last j with s·j + t < out
            if last < first:
                continue
            count = last - first + 1
            src = x.narrow(dim, first, count)
            start = s * first + t
            where = [slice(None)] * y.dim()
            where[dim] = slice(start, start + s * (count - 1) + 1, s)
            y[tuple(where)] += weight * src
        x = y
    return x


def _strided(m: nn.Module) -> bool:
    return isinstance(m, _CONV) and any(s > 1 for s in m.stride)


class _Tracer:
    """Forward hooks for one VEBI pass: energies of ``layers``, outputs of ``keep``, and
    (when ``guided``) the guided rule and the stride fix on the backward pass."""

    def __init__(self, model, layers, keep=(), guided=False, stride_fix=False):
        self.model = model
        self.layers = list(layers)
        self.keep = set(keep)
        self.guided = guided
        self.stride_fix = stride_fix
        self.energy: dict[str, torch.Tensor] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []

    def __enter__(self):
        try:
            if self.guided:
                mode = _fix_mode(self.stride_fix)
                relus = 0
                for m in self.model.modules():
                    if isinstance(m, _RELU):
                        relus += 1
                        self._handles.append(m.register_forward_hook(_guided_hook))
                    elif mode and _strided(m):
                        self._handles.append(m.register_forward_hook(_fix_hook(mode)))
                if not relus:
                    warnings.warn(
                        f"{type(self.model).__name__} has no nn.ReLU/nn.ReLU6 module: the "
                        "backward pass keeps the plain gradient rule (no guided ReLU)",
                        stacklevel=4,
                    )
            for name in dict.fromkeys([*self.layers, *self.keep]):
                m = get_submodule(self.model, name)
                self._handles.append(m.register_forward_hook(self._capture(name)))
        except BaseException:
            self.close()
            raise
        return self

    def _capture(self, name):
        def hook(module, args, output):
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"layer {name!r} does not return a tensor")
            if name in self.layers:
                a = output.detach().flatten(2)
                self.energy[name] = (a * a).sum(2, dtype=torch.float64)
            if name in self.keep:
                self.outputs[name] = output
                return output.clone()  # later in-place ops must not change what we keep
            return None

        return hook

    def features(self) -> torch.Tensor:
        missing = [n for n in self.layers if n not in self.energy]
        if missing:
            raise ValueError(f"the forward pass did not run layer(s) {', '.join(missing)}")
        return _normalise([self.energy[n] for n in self.layers])

    def close(self):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __exit__(self, *exc):
        self.close()
        return False


def _guided_hook(module, args, output):
    return _GuidedReLU.apply(output)


def _fix_mode(stride_fix) -> str | None:
    if stride_fix not in STRIDE_FIXES:
        raise ValueError(f"stride_fix must be one of {STRIDE_FIXES}, got {stride_fix!r}")
    if stride_fix is False:
        return None
    return "aligned" if stride_fix is True else stride_fix


def _fix_hook(mode: str):
    def hook(module, args, output):
        return _StrideFixed.apply(args[0], output, module, mode)

    return hook


@dataclass
class FeatureSet:
    """What :func:`extract_features` returns: N×m features and the labels seen."""

    X: torch.Tensor
    targets: torch.Tensor
    predictions: torch.Tensor
    layers: list[str]
    features: list[tuple[str, int]]


def _loader(data, batch_size: int):
    from ..training import _loader as loader

    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        data = torch.utils.data.TensorDataset(*data)
    return loader(data, batch_size, shuffle=False, seed=0)


def extract_features(
    model: nn.Module,
    data,
    layers: Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "VEBI features",
) -> FeatureSet:
    """VEBI features of every item of ``data`` (a Dataset, a DataLoader or ``(x, y)``).

    Runs under ``no_grad`` in eval mode (restored afterwards) with a progress bar.

    Returns:
        A :class:`FeatureSet`: ``X`` (N×m float64), ground-truth ``targets``, the
        model's ``predictions``, the ``layers`` and the (layer, channel) of each column.
    """
    loader = _loader(data, batch_size)
    xs, ys, preds = [], [], []
    sizes: dict[str, int] = {}
    with eval_mode(model), torch.no_grad():
        for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
            if not isinstance(batch, list | tuple) or len(batch) < 2:
                raise ValueError("a dataset item must be (input, target) or (input, target, mask)")
            x = batch[0].to(device)
            if layers is None:
                layers = default_layers(model, x)
            with _Tracer(model, layers) as tr:
                logits = model(x)
            xs.append(tr.features())
            sizes = {n: tr.energy[n].shape[1] for n in layers}
            ys.append(torch.as_tensor(batch[1]).long().cpu())
            preds.append(logits.argmax(1).cpu())
    if not xs:
        raise ValueError("data is empty")
    features = [(n, c) for n in layers for c in range(sizes[n])]
    return FeatureSet(torch.cat(xs).cpu(), torch.cat(ys), torch.cat(preds), list(layers), features)


# -- stage 2: relevant features ----------------------------------------------------------------
def mu_lasso(X, y, mu: float, *, gram=None) -> np.ndarray:
    """min ‖Xw − y‖² s.t. ‖w‖₁ ≤ μ, w ≥ 0, on scikit-learn's positive LARS/Lasso path.

    Walks the path (piecewise linear in the penalty) to the point whose L1 norm is μ,
    interpolating inside the last segment; the unconstrained non-negative solution when
    its norm is below μ.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import lars_path, lars_path_gram

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be N×m and y of length N, got {X.shape} and {y.shape}")
    if not mu > 0:
        raise ValueError(f"mu must be > 0, got {mu}")
    n, m = X.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if gram is None and m > _GRAM_MAX:  # m×m would not fit: work on X (O(N·m) memory)
            _, _, coefs = lars_path(
                X, y, method="lasso", positive=True, max_iter=max(500, 4 * min(n, m))
            )
        else:
            _, _, coefs = lars_path_gram(
                X.T @ y,
                X.T @ X if gram is None else gram,
                n_samples=n,
                method="lasso",
                positive=True,
                max_iter=max(500, 4 * m),
            )
    l1 = np.abs(coefs).sum(0)
    over = np.flatnonzero(l1 > mu)
    if len(over) == 0:  # the budget does not bind: the non-negative least-squares solution
        w = coefs[:, -1]
        if m <= _GRAM_MAX:  # LARS's endpoint is only close to it; refine on its support
            from scipy.optimize import nnls

            refined = nnls(X, y)[0]
            if refined.sum() <= mu and _sq(X, y, refined) <= _sq(X, y, w):
                w = refined
    else:
        i = over[0]
        if i == 0:
            w = np.zeros(X.shape[1])
        else:
            t = (mu - l1[i - 1]) / (l1[i] - l1[i - 1])
            w = coefs[:, i - 1] + t * (coefs[:, i] - coefs[:, i - 1])
    return np.clip(w, 0, None)


_GRAM_MAX = 4000  # features above which the m×m Gram matrix is not formed


def _sq(X, y, w) -> float:
    r = X @ w - y
    return float(r @ r)


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of the model's parameters and buffers (to tie a fit to its model)."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class RelevantFeatures:
    """The relevant internal features of each class, found by the μ-lasso (VEBI stage 1).

    From Oramas, Wang & Tuytelaars, *Visual Explanation by Interpretation*, ICLR 2019.
    scikit-learn style: parameters in ``__init__``, :meth:`fit` sets the attributes
    ending in ``_``.

    Args:
        mu: the L1 budget μ of each class's weights (10 for ImageNet/MNIST in the paper,
            5 for an8Flower).
        layers: dotted module names; ``None`` takes every conv/ReLU/pool output
            (:func:`default_layers`).
        labels: ``"true"`` (ground truth, default) or ``"predicted"`` (the model's).
        batch_size, device, progress: for the feature pass.

    Attributes:
        layers_: the layers used. ``features_``: (layer, channel) of each column.
        coef_: C×m non-negative weights. ``relevant_``: per class, the indices of its
        non-zero weights, largest first. ``train_features_``: the N×m fit features.

    Example:
        >>> rf = RelevantFeatures(mu=5).fit(model, train_set)      # doctest: +SKIP
        >>> rf.relevant(0)[:3]                                       # doctest: +SKIP
        [('features.14', 7, 2.31), ('features.11', 40, 1.02), ...]
    """

    def __init__(
        self,
        mu: float = 10.0,
        layers: Sequence[str] | None = None,
        labels: str = "true",
        *,
        batch_size: int = 64,
        device: str | torch.device = "cpu",
        progress: bool = True,
    ) -> None:
        self.mu = mu
        self.layers = layers
        self.labels = labels
        self.batch_size = batch_size
        self.device = device
        self.progress = progress

    def fit(self, model: nn.Module, data) -> RelevantFeatures:
        """Extract features of ``data`` and solve one μ-lasso per class."""
        if not self.mu > 0:
            raise ValueError(f"mu must be > 0, got {self.mu}")
        if self.labels not in ("true", "predicted"):
            raise ValueError(f"labels must be 'true' or 'predicted', got {self.labels!r}")
        fs = extract_features(
            model,
            data,
            self.layers,
            batch_size=self.batch_size,
            device=self.device,
            progress=self.progress,
        )
        y = fs.targets if self.labels == "true" else fs.predictions
        n_classes = _num_outputs(model, fs, y)
        X = fs.X.numpy()
        gram = X.T @ X if X.shape[1] <= _GRAM_MAX else None
        coef = np.zeros((n_classes, X.shape[1]))
        for j in tqdm(range(n_classes), desc="μ-lasso", disable=not self.progress, leave=False):
            target = (y.numpy() == j).astype(np.float64)
            if target.any():
                coef[j] = mu_lasso(X, target, self.mu, gram=gram)
        self.layers_ = fs.layers
        self.features_ = fs.features
        self.coef_ = coef
        self.relevant_ = [np.flatnonzero(c)[np.argsort(-c[c > 0], kind="stable")] for c in coef]
        self.classes_ = np.arange(n_classes)
        self.n_features_in_ = X.shape[1]
        self.train_features_ = X
        self.train_labels_ = y.numpy()
        self.model_fingerprint_ = model_fingerprint(model)
        self.data_fingerprint_ = data_fingerprint(X, y.numpy())
        return self

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise ValueError("RelevantFeatures is not fitted: call fit(model, data) first")

    def relevant(self, cls: int) -> list[tuple[str, int, float]]:
        """Class ``cls``'s relevant features as (layer, channel, weight), largest first."""
        self._check_fitted()
        if not 0 <= cls < len(self.coef_):
            raise ValueError(f"class must be in [0, {len(self.coef_)}), got {cls}")
        return [(*self.features_[i], float(self.coef_[cls, i])) for i in self.relevant_[cls]]

    def counts(self) -> list[int]:
        """Number of relevant features per class."""
        self._check_fitted()
        return [len(r) for r in self.relevant_]

    def summary(self) -> dict:
        """What the fit found, for results files: μ, feature count, relevant per class."""
        self._check_fitted()
        layers = sorted({self.features_[i][0] for r in self.relevant_ for i in r})
        return {
            "mu": float(self.mu),
            "labels": self.labels,
            "n_features": int(self.n_features_in_),
            "n_layers": len(self.layers_),
            "relevant_per_class": self.counts(),
            "relevant_layers": layers,
        }

    def get_feature_names_out(self) -> list[str]:
        self._check_fitted()
        return [f"{layer}:{c}" for layer, c in self.features_]

    def save(self, path) -> Path:
        """Write the fit to ``path`` atomically (``torch.save`` of plain types)."""
        self._check_fitted()
        state = {
            "params": {"mu": float(self.mu), "layers": self.layers, "labels": self.labels},
            "layers_": list(self.layers_),
            "features_": [[layer, int(c)] for layer, c in self.features_],
            "coef_": torch.from_numpy(self.coef_),
            "train_features_": torch.from_numpy(self.train_features_),
            "train_labels_": torch.from_numpy(self.train_labels_),
            "model_fingerprint_": self.model_fingerprint_,
            "data_fingerprint_": self.data_fingerprint_,
        }
        return atomic_torch_save(state, path)

    @classmethod
    def load(cls, path, model: nn.Module | None = None) -> RelevantFeatures:
        """Read a fit written by :meth:`save`; with ``model``, check it is the same model."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no VEBI fit at {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        p = state["params"]
        self = cls(mu=p["mu"], layers=p["layers"], labels=p["labels"])
        self.layers_ = state["layers_"]
        self.features_ = [(layer, int(c)) for layer, c in state["features_"]]
        self.coef_ = state["coef_"].numpy()
        self.relevant_ = [
            np.flatnonzero(c)[np.argsort(-c[c > 0], kind="stable")] for c in self.coef_
        ]
        self.classes_ = np.arange(len(self.coef_))
        self.n_features_in_ = self.coef_.shape[1]
        self.train_features_ = state["train_features_"].numpy()
        self.train_labels_ = state["train_labels_"].numpy()
        self.model_fingerprint_ = state["model_fingerprint_"]
        self.data_fingerprint_ = state.get("data_fingerprint_")
        if model is not None and model_fingerprint(model) != self.model_fingerprint_:
            raise ValueError(f"the VEBI fit at {path} was made for a different model")
        return self

    def __repr__(self) -> str:
        fitted = (
            f", {len(self.coef_)} classes, relevant per class {self.counts()}"
            if hasattr(self, "coef_")
            else ""
        )
        return f"RelevantFeatures(mu={self.mu}, labels={self.labels!r}{fitted})"


def data_fingerprint(X: np.ndarray, labels: np.ndarray) -> str:
    """A short hash of a fit's features and labels (to tell whether a cached fit applies)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def _num_outputs(model, fs: FeatureSet, y) -> int:
    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m
    n = last.out_features if last is not None else int(y.max()) + 1
    if int(y.max()) >= n or int(y.min()) < 0:
        raise ValueError(f"labels must be in [0, {n}), got {int(y.min())}..{int(y.max())}")
    return n


# -- stage 3: the backward pass ----------------------------------------------------------------
def _backward(
    x: torch.Tensor, outputs: dict[str, torch.Tensor], picks: list[tuple[str, int] | None], retain
) -> torch.Tensor:
    """Raw input-space signal of one feature per sample, from its own activation map."""
    seeds: dict[str, torch.Tensor] = {}
    for i, pick in enumerate(picks):
        if pick is None:
            continue
        layer, c = pick
        out = outputs[layer]
        if layer not in seeds:
            seeds[layer] = torch.zeros_like(out)
        seeds[layer][i, c] = out[i, c].detach()
    if not seeds:
        return torch.zeros_like(x)
    names = list(seeds)
    (grad,) = torch.autograd.grad(
        [outputs[n] for n in names],
        x,
        grad_outputs=[seeds[n] for n in names],
        retain_graph=retain,
        allow_unused=True,
    )
    return torch.zeros_like(x) if grad is None else grad


def backproject(
    model: nn.Module,
    inputs: torch.Tensor,
    features: tuple[str, int] | Sequence[tuple[str, int]],
    *,
    stride_fix: bool = True,
    additional_forward_args=None,
) -> torch.Tensor:
    """VEBI's backward pass: the raw input-space signal of one feature per sample.

    Starts from the feature's own forward activation map (all other channels zero) and
    runs back with the guided rule, transposed convolutions (stride-fixed when
    ``stride_fix``) and unpooling with switches.

    Args:
        model: the network (run in eval mode; flags restored).
        inputs: N×C×H×W (or N×C×T×H×W).
        features: one ``(layer, channel)`` for every sample, or one per sample.

    Returns:
        N×C×… signed signal, same shape as ``inputs``.
    """
    n = inputs.shape[0]
    if isinstance(features, tuple) and len(features) == 2 and isinstance(features[0], str):
        features = [features] * n
    features = list(features)
    if len(features) != n:
        raise ValueError(f"features must be one (layer, channel) or {n} of them")
    extra = () if additional_forward_args is None else tuple(additional_forward_args)
    keep = {layer for layer, _ in features}
    with eval_mode(model), torch.enable_grad():
        x = inputs.detach().clone().requires_grad_(True)
        with _Tracer(model, (), keep=keep, guided=True, stride_fix=stride_fix) as tr:
            model(x, *extra)
        for layer, c in features:
            if layer not in tr.outputs:
                raise ValueError(f"the forward pass did not run layer {layer!r}")
            if not 0 <= c < tr.outputs[layer].shape[1]:
                raise ValueError(f"layer {layer!r} has no channel {c}")
        return _backward(x, tr.outputs, features, retain=False).detach()


def feature_heatmap(signal: torch.Tensor) -> torch.Tensor:
    """Positive part, L2 over colour channels, min-max per sample: N×1×… in [0, 1]."""
    pos = signal.clamp_min(0)
    return minmax((pos * pos).sum(1, keepdim=True).sqrt())  # (faster than norm(dim=1) on CPU)


# -- interpretation ----------------------------------------------------------------------------
@dataclass
class Interpretation:
    """Average visualisations of each class's relevant features (VEBI's interpretation).

    ``images[j]``: K×C×H×W signed average of the backward signals (each scaled to
    [-1, 1] before averaging); ``heatmaps[j]``: K×1×H×W average of the per-image
    heatmaps; ``examples[j]``: K×N indices into the data of the images averaged;
    ``features[j]``: (layer, channel, weight) of the K features.
    """

    classes: list[str]
    features: list[list[tuple[str, int, float]]]
    images: list[torch.Tensor]
    heatmaps: list[torch.Tensor]
    examples: list[torch.Tensor]
    stride_fix: bool = True
    n_images: int = 10


def interpret(
    model: nn.Module,
    relevant: RelevantFeatures,
    data,
    *,
    n_images: int = 10,
    max_features: int | None = 6,
    classes: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    stride_fix: bool = True,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> Interpretation:
    """For each class and relevant feature, the average visualisation over the
    ``n_images`` images of that class (in ``data``) where the feature responds most.

    Args:
        max_features: show at most this many features per class (largest weights first);
            ``None`` shows all.
        classes: which classes (default: all).
    """
    relevant._check_fitted()
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        data = torch.utils.data.TensorDataset(*data)
    if isinstance(data, torch.utils.data.DataLoader):  # its order may be shuffled: index
        batch_size = data.batch_size or batch_size  # the dataset itself, in order
        data = data.dataset
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    fs = extract_features(
        model,
        data,
        relevant.layers_,
        batch_size=batch_size,
        device=device,
        progress=progress,
        desc="VEBI interpretation",
    )
    if fs.X.shape[1] != relevant.n_features_in_:
        raise ValueError("data gives a different feature layout than the fit")
    dataset = data
    classes = list(range(len(relevant.coef_))) if classes is None else list(classes)
    names = list(class_names) if class_names is not None else getattr(dataset, "classes", None)
    feats, images, heats, examples = [], [], [], []
    for j in tqdm(classes, desc="average visualisations", disable=not progress, leave=False):
        idx_class = torch.nonzero(fs.targets == j).flatten()
        rel = relevant.relevant(j)[:max_features] if len(idx_class) else []
        imgs, hs, exs = [], [], []
        for layer, c, _ in rel:
            col = relevant.features_.index((layer, c))
            order = torch.argsort(fs.X[idx_class, col], descending=True, stable=True)
            top = idx_class[order[:n_images]]
            x = torch.stack([_item(dataset, int(i)) for i in top]).to(device)
            sig = backproject(model, x, (layer, c), stride_fix=stride_fix)
            scale = sig.flatten(1).abs().max(1).values.clamp_min(_EPS)
            sig = sig / scale.reshape(-1, *([1] * (sig.dim() - 1)))
            imgs.append(sig.mean(0).cpu())
            hs.append(feature_heatmap(sig).mean(0).cpu())
            exs.append(top)
        shape = (0, *_item(dataset, 0).shape)
        feats.append(rel)
        images.append(torch.stack(imgs) if imgs else torch.zeros(shape))
        heats.append(torch.stack(hs) if hs else torch.zeros(0, 1, *shape[2:]))
        examples.append(torch.stack(exs) if exs else torch.zeros(0, n_images, dtype=torch.long))
    labels = [names[j] if names is not None else str(j) for j in classes]
    return Interpretation(labels, feats, images, heats, examples, stride_fix, n_images)


def _item(dataset, i: int) -> torch.Tensor:
    item = dataset[i]
    return item[0] if isinstance(item, list | tuple) else item


# -- test-time explanation ---------------------------------------------------------------------
class VEBIAttribution(HeatmapAttribution):
    """VEBI's test-time explanation (Oramas, Wang & Tuytelaars, ICLR 2019).

    For each sample: the class (given, or predicted), the relevance of each of its
    relevant features r = x ⊙ w / Σw, the top ``top_k`` positive ones, each propagated
    back from its own activation map (:func:`backproject`), per-feature maps (positive
    part, L2 over colours, min-max), combined by pixel-wise max, on the common footing.

    Args:
        model: the network the fit was made for.
        relevant: a fitted :class:`RelevantFeatures` (or a path written by its ``save``).
        top_k: features per explanation (3 in the paper).
        stride_fix: the checkerboard fix for strided convolutions: ``True`` (default, the
            cell-aligned resize), ``"nearest"`` (the literal resize) or ``False``.

    Example:
        >>> rf = RelevantFeatures(mu=5).fit(model, train_set)      # doctest: +SKIP
        >>> maps = VEBIAttribution(model, rf).attribute(x)           # doctest: +SKIP
        >>> maps, per_feature, index = VEBIAttribution(model, rf).attribute(
        ...     x, return_features=True)                             # doctest: +SKIP
    """

    needs_gradients = True

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
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        _fix_mode(stride_fix)
        self.relevant = relevant
        self.top_k = top_k
        self.stride_fix = stride_fix
        self._coef = torch.from_numpy(relevant.coef_)

    @property
    def num_classes(self) -> int:
        return len(self.relevant.coef_)

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
