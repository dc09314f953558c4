"""The image task kinds: single-label classification, and multi-label (faces).

A model is the benchmark's small CNN with and without an SE head (:func:`squeezex.models.
build_model`), trained with :func:`squeezex.training.fit`; a cell is one registered image
explainer (or a reference map) on the test images, scored by every metric family
(:func:`squeezex.bench.cells.compute_cell`). A multi-label dataset is explained per
(image, present attribute) pair (its ``explanation_view()``), its faithfulness curves read
each attribute's sigmoid, and its rows are also broken down per attribute.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import torch

from ...datasets import get_dataset
from ...datasets.cues import cue_reliance
from ...explainers import SEAttribution, explainer_info, list_explainers
from ...explainers.references import (
    REFERENCE_FOOTING,
    centre_map,
    constant_map,
    oracle_map,
    silhouette_map,
)
from ...explainers.vebi import interpret
from ...geometry import feature_geometry
from ...metrics import stride_periods
from ...models import build_model
from ...models.archs import build_arch
from ...models.records import arch_record
from ...models.se import find_se_block, layer_output_shape
from ...training import attribute_accuracy, evaluate, predict
from .. import cells
from ..cells import CellKey, Unit
from ..store import RunStore, check_interpretation, check_se
from .base import Task, model_summary, register_task

__all__ = [
    "SingleLabel",
    "MultiLabel",
    "split_record",
    "attribute_groups",
    "forward_ms",
    "se_vectors",
    "example_indices",
    "model_reliance",
]


class SingleLabel(Task):
    """Single-label image classification (an8Flower, scenes, cue datasets)."""

    name = "single-label"
    output = "softmax"
    class_folders = True
    figures = "squeezex.figures.images:block_jobs"
    examples = "squeezex.figures.grids:examples"
    explorer = "squeezex.widgets.explorer:Explorer"

    # -- data -----------------------------------------------------------------------------
    def split_record(self, test) -> dict:
        return split_record(test)

    # -- models ---------------------------------------------------------------------------
    def build_model(self, cfg, spec, train, *, se: bool, seed: int):
        if cfg.arch == "small":  # the modules (and so the checkpoints) of runs before --arch
            return build_model("small", len(train.classes), se=se, seed=seed, pool=cfg.pool)
        return build_arch(cfg.arch, len(train.classes), se=se, seed=seed, pool=cfg.pool,
                          size=cfg.size)  # fmt: skip

    def arch(self, cfg, spec, train, *, se: bool) -> dict:
        if cfg.arch == "small":
            return {"builder": "small", "num_classes": len(train.classes), "se": se,
                    "pool": cfg.pool, "size": cfg.size, "classes": list(train.classes),
                    "dataset": spec.name}  # fmt: skip
        model = self.build_model(cfg, spec, train, se=se, seed=0)
        return arch_record(f"squeezex:{cfg.arch}", model, classes=list(train.classes),
                           size=cfg.size, pool=cfg.pool, dataset=spec.name)  # fmt: skip

    def evaluate(self, cfg, model, test, *, se: bool, seed: int) -> dict:
        out = {"se": se, "seed": seed, "score": evaluate(model, test, device=cfg.device)}
        if self.multi_label:
            out["attribute_accuracy"] = attribute_accuracy(model, test, device=cfg.device)
        if se and hasattr(test, "cue_targets"):
            out["reliance"] = model_reliance(model, test, cfg.device)
        return out

    def summarise(self, cfg, spec, train, test, scores: list[dict], seconds: list) -> dict:
        summary = model_summary(
            cfg, [s["score"] for s in scores if s["se"]],
            [s["score"] for s in scores if not s["se"]], seconds,
        )  # fmt: skip
        summary.update(n_train=len(train), n_test=len(test))
        if skipped := skipped_families(spec.name):
            summary["skipped_families"] = skipped
        if self.multi_label:
            per = {"se": [], "plain": []}
            for s in scores:
                per["se" if s["se"] else "plain"].append(s["attribute_accuracy"])
            summary.update(attributes=list(test.classes), attribute_accuracy=per)
        reliance = {str(s["seed"]): s["reliance"] for s in scores if "reliance" in s}
        if reliance:
            summary["reliance"] = reliance
        if getattr(test, "bias_rho", None) is not None:
            summary["bias"] = {"rho": test.bias_rho, "attribute": test.classes[test.cue_attribute]}
        return summary

    # -- cells ----------------------------------------------------------------------------
    def make_unit(self, cfg, store: RunStore, dataset: str, seed: int, model, checkpoint,
                  train, test) -> Unit:  # fmt: skip
        """Everything the cells of (dataset, seed) share; stores the SE vectors of the
        test set."""
        x = test.images.float() / 255
        xd = x[:1].to(cfg.device)
        se_block = find_se_block(model)
        geometry = feature_geometry(model, se_block, xd)
        # a token block's channels-first view (N×D×h×w) is its feature map
        feature_size = layer_output_shape(model, getattr(se_block, "view", se_block), xd)[2:]
        skipped = skipped_families(dataset)
        refs = {
            "centre": centre_map(len(x), tuple(x.shape[-2:])),
            "oracle": oracle_map(test.masks, feature_size, geometry),
            "constant": constant_map(len(x), tuple(x.shape[2:])),
        }
        if "localisation" in skipped:  # no masks: no oracle to draw from them
            del refs["oracle"]
        if hasattr(test, "object_masks"):
            refs["silhouette"] = silhouette_map(test.object_masks)
        store.artifact(
            store.se_path(dataset, seed),
            lambda: se_vectors(model, x.to(cfg.device), cfg.batch_size),
            lambda d: check_se(d, len(x)),
        )
        spec_key, tolerance = _spec(dataset)
        return Unit(
            cfg, dataset, seed, model, train, x, test.targets, test.masks,
            stride_periods(model, xd), forward_ms(model, x.to(cfg.device), cfg.batch_size),
            refs, checkpoint, regions=dict(getattr(test, "regions", None) or {}),
            output=self.output,
            groups=attribute_groups(test) if self.multi_label else None,
            pointing_tolerance=tolerance, spec_key=spec_key, skipped_families=skipped,
        )  # fmt: skip

    def cell_keys(self, unit: Unit) -> list[CellKey]:
        return unit.keys(unit.cfg.methods)

    def not_applicable(self, unit: Unit, method: str) -> str | None:
        return cells.not_applicable(unit, method)

    def compute_cell(self, unit: Unit, key: CellKey):
        return cells.compute_cell(unit, key)

    def finish_unit(self, store: RunStore, unit: Unit) -> None:
        """VEBI's class × feature average visualisations, when a VEBI method ran."""
        names = [m for m in unit.cfg.methods if explainer_info(m).base == "vebi"]
        if not names:
            return
        cfg = unit.cfg

        def make():
            relevant = unit.fit_kwargs(names[0])[0]["relevant"]
            classes = list(unit.train.classes)
            i = interpret(
                unit.model, relevant, unit.train, class_names=classes, device=cfg.device,
                progress=cfg.progress,
            )  # fmt: skip
            return asdict(i)

        store.artifact(store.vebi_path(unit.dataset, unit.seed), make, check_interpretation)

    def footing(self, dataset: str, method: str, kind: str) -> tuple[str, str] | None:
        if kind == "reference":
            return method, REFERENCE_FOOTING.get(method, "reference map (not the model's)")
        if method in list_explainers():
            return method, explainer_info(method).footing
        return None


class MultiLabel(SingleLabel):
    """Multi-label image classification (faces): N×K 0/1 targets, explained per (image,
    present attribute) pair."""

    name = "multi-label"
    multi_label = True
    output = "sigmoid"
    class_folders = False

    def explanation_view(self, test):
        """The (image, present attribute) pairs of the split (``test.explanation_view()``)."""
        return test.explanation_view() if hasattr(test, "explanation_view") else test


register_task(SingleLabel())
register_task(MultiLabel())


# -- the pieces -------------------------------------------------------------------------------
def _spec(dataset: str) -> tuple[str | None, int]:
    spec = get_dataset(dataset)
    return spec.key(), spec.pointing_tolerance


def skipped_families(dataset: str) -> dict[str, str]:
    """The metric families a dataset cannot be scored on → why: without ground-truth
    masks (a user's folder with no ``_MASK`` tree), localisation."""
    spec = get_dataset(dataset)
    if spec.masks:
        return {}
    why = getattr(spec, "why_no_masks", None) or "the dataset has no ground-truth masks"
    return {"localisation": why}


def split_record(test) -> dict:
    """The test split a run explains (uint8 images, masks, labels, class names)."""
    data = {
        "images": test.images.clone(),
        "masks": test.masks.clone(),
        "targets": test.targets.clone(),
        "classes": list(test.classes),
    }
    if hasattr(test, "object_masks"):
        data["object_masks"] = test.object_masks.clone()
    for name in ("regions", "cue_targets", "object_targets", "face_index"):
        if getattr(test, name, None) is not None:
            v = getattr(test, name)
            data[name] = {k: t.clone() for k, t in v.items()} if name == "regions" else v.clone()
    return data


def attribute_groups(pairs) -> dict[str, list[int]]:
    """Attribute name → the indices of its (image, attribute) pairs."""
    t = pairs.targets.tolist()
    return {
        name: idx
        for k, name in enumerate(pairs.classes)
        if (idx := [i for i, v in enumerate(t) if v == k])
    }


@torch.no_grad()
def forward_ms(model, x: torch.Tensor, batch_size: int) -> float:
    """Milliseconds per image of a plain forward pass over ``x`` (after a warm-up)."""
    model(x[:batch_size])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(x), batch_size):
        model(x[i : i + batch_size])
    return (time.perf_counter() - start) * 1000 / len(x)


@torch.no_grad()
def se_vectors(model, x: torch.Tensor, batch_size: int) -> dict:
    """The SE vector ``s`` and pre-sigmoid excitation ``logits`` of every test image."""
    se = SEAttribution(model)
    s, logits = [], []
    for i in range(0, len(x), batch_size):
        v = se.se_vector(x[i : i + batch_size], selection="paper")
        s.append(v.s.cpu())
        logits.append(v.logits.cpu())
    return {"s": torch.cat(s), "logits": torch.cat(logits)}


def example_indices(targets, n: int) -> list[int]:
    """One test image per class, for as many classes as ``n`` allows."""
    seen, idx = set(), []
    for i, t in enumerate(targets.tolist()):
        if t not in seen:
            seen.add(t)
            idx.append(i)
        if len(idx) == n:
            break
    return idx


def model_reliance(model, test, device: str = "cpu") -> dict:
    """What a model of a cue dataset follows on its test split: the share of the images
    whose cue and object disagree on which the model predicts the cue's class
    (``reliance``) or the object's (``object``). On a biased faces split the classes are
    the biased attribute's yes/no: the mark says yes, the attribute's label says no (or
    the reverse), and ``reliance`` is the share of those faces the model answers as the
    mark does."""
    preds, _ = predict(model, test, device=device)
    if preds.dim() == 2:  # multi-label: the decision on the attribute the cue is tied to
        preds = preds[:, test.cue_attribute]
    return cue_reliance(preds, test.cue_targets, test.object_targets)
