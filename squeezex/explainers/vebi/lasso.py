"""VEBI stage 2: the relevant features of each class, by a non-negative μ-lasso."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...io import atomic_torch_save
from ...progress import progress as progress_bar
from .features import FeatureSet, extract_features

__all__ = ["mu_lasso", "RelevantFeatures", "model_fingerprint", "data_fingerprint"]


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


#: Relative tolerance of :class:`RelevantFeatures`: a weight below this share of its
#: class's largest weight is treated as 0.
WEIGHT_TOL = 1e-6


def _prune(coef: np.ndarray, tol: float) -> np.ndarray:
    """``coef`` with every weight below ``tol`` × its row's maximum set to 0."""
    coef = np.array(coef, dtype=np.float64)
    top = coef.max(axis=1, keepdims=True) if coef.size else coef
    coef[coef < tol * top] = 0.0
    return coef


def _relevant(coef: np.ndarray) -> list[np.ndarray]:
    """Per class, the indices of its non-zero weights, largest first."""
    return [np.flatnonzero(c)[np.argsort(-c[c > 0], kind="stable")] for c in coef]


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
        output: the head of a model that returns several (an index or a key).
        tol: weights below ``tol`` × the class's largest weight are set to 0 and are not
            relevant features (LARS leaves weights like 2e-17 that are zero in all but
            name; without the tolerance they counted as relevant and, through the rank
            rule, could enter the top-3 heatmap).

    Attributes:
        layers_: the layers used. ``features_``: (layer, channel) of each column.
        coef_: C×m non-negative weights (those below the tolerance set to 0).
        ``relevant_``: per class, the indices of its non-zero weights, largest first. ``train_features_``: the N×m fit features.

    Example:
        >>> from squeezex.datasets import An8Flower
        >>> from squeezex.models import SmallCNN
        >>> train_set = An8Flower("single-6c", "train", n_per_class=4, size=32, seed=0)
        >>> model = SmallCNN(num_classes=6).eval()  # a trained model in practice
        >>> rf = RelevantFeatures(mu=5, progress=False).fit(model, train_set)
        >>> rf.coef_.shape == (6, len(rf.features_))  # one weight per class and feature
        True
        >>> layer, channel, weight = rf.relevant(0)[0]  # class 0's largest weight
        >>> layer in rf.layers_, weight > 0
        (True, True)
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
        output: int | str | None = None,
        tol: float = WEIGHT_TOL,
    ) -> None:
        self.tol = tol
        self.mu = mu
        self.output = output
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
            output=self.output,
        )
        y = fs.targets if self.labels == "true" else fs.predictions
        if y.dim() == 2 and self.labels == "predicted":
            raise ValueError("labels='predicted' needs single-label data; these targets are N×K")
        n_classes = _num_outputs(fs, y)
        X = fs.X.numpy()
        gram = X.T @ X if X.shape[1] <= _GRAM_MAX else None
        coef = np.zeros((n_classes, X.shape[1]))
        for j in progress_bar(range(n_classes), desc="μ-lasso", disable=not self.progress):
            # one-vs-rest: the class's images, or (multi-label) the images with attribute j
            target = (y[:, j].numpy() == 1 if y.dim() == 2 else y.numpy() == j).astype(np.float64)
            if target.any():
                coef[j] = mu_lasso(X, target, self.mu, gram=gram)
        self.layers_ = fs.layers
        self.features_ = fs.features
        self.coef_ = _prune(coef, self.tol)
        self.relevant_ = _relevant(self.coef_)
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
            "params": {
                "mu": float(self.mu),
                "layers": self.layers,
                "labels": self.labels,
                "output": self.output,
                "tol": float(self.tol),
            },
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
        self = cls(
            mu=p["mu"], layers=p["layers"], labels=p["labels"], output=p.get("output"),
            tol=p.get("tol", WEIGHT_TOL),
        )  # fmt: skip
        self.layers_ = state["layers_"]
        self.features_ = [(layer, int(c)) for layer, c in state["features_"]]
        self.coef_ = _prune(state["coef_"].numpy(), self.tol)
        self.relevant_ = _relevant(self.coef_)
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


def _num_outputs(fs: FeatureSet, y) -> int:
    """The number of classes: the width of the model's output in the feature pass."""
    n = fs.n_outputs
    if y.dim() == 2:  # multi-label 0/1 targets, one column per output
        if y.shape[1] != n or not bool(((y == 0) | (y == 1)).all()):
            raise ValueError(
                f"multi-label targets must be N×{n} (one 0/1 column per output of the "
                f"model), got {tuple(y.shape)}"
            )
        return n
    if int(y.max()) >= n or int(y.min()) < 0:
        raise ValueError(
            f"labels must be in [0, {n}) (the model outputs {n} scores), "
            f"got {int(y.min())}..{int(y.max())}"
        )
    return n
