"""Reading a multi-label run: what one map per face shows, and the bias sweep.

A multi-label dataset (faces) is explained per (face, present attribute) pair (see
:class:`~squeezex.datasets.AttributePairs`). A *class-agnostic* map — the SE paper's
literal rule (``se-paper``) or the SE default (``se``) — does not take the target into
account: a face gets one map whatever attribute is asked, so on a face with several
attributes it can point at one of them at most. :func:`agnostic_report` measures where
that one map goes; :func:`bias_table` collects the faces-bias sweep (ρ → how much the
model leans on the mark, and each method's relevance mass on mark and attribute).
"""

from __future__ import annotations

import statistics
from collections import defaultdict

import torch

from ..metrics import pointing_game
from .reader import Run

__all__ = ["agnostic_report", "bias_table"]


def agnostic_report(run: Run, method: str, dataset: str | None = None, seed=None) -> dict:
    """Where ``method``'s map of each face with two or more attributes points.

    Returns:
        ``faces`` (how many faces have ≥ 2 present attributes), ``attributes_per_face``
        (their mean count), ``same_map`` (the share of those faces whose pairs all got
        the same map: 1.0 for a class-agnostic method), ``hits_any`` (share of faces
        whose *first* pair's map peaks inside the region of one of the face's
        attributes; "inside" with the dataset's pointing tolerance, as in the run's
        pointing game), ``hits_per_pair`` (share of the pairs whose own map peaks inside
        their own attribute's region: what the per-attribute pointing game averages),
        ``landed_on`` (attribute → share of the faces whose first map peaks in its
        region, among faces where it is present).

    Raises:
        ValueError: the dataset is not multi-label (its test split has no face index).
    """
    data = run.data(dataset)
    if "face_index" not in data:
        raise ValueError("agnostic_report needs a multi-label run (no face_index in its data)")
    dataset = dataset or run.datasets[0]
    maps = run.maps(method, dataset, seed)
    faces = defaultdict(list)
    for p, f in enumerate(data["face_index"].tolist()):
        faces[f].append(p)
    multi = [ps for ps in faces.values() if len(ps) >= 2]
    if not multi:
        return {"faces": 0}
    # "inside" as the run's pointing game has it (the dataset's slack, if any)
    tol = run.results.get("pointing_tolerance", {}).get(dataset, 0)
    masks, classes = data["masks"], data["classes"]
    hit = pointing_game(maps, masks, tolerance=tol).bool()  # each pair's own map
    landed, present = defaultdict(int), defaultdict(int)
    same = any_hit = 0
    for ps in multi:
        same += all(torch.equal(maps[ps[0]], maps[q]) for q in ps[1:])
        first = maps[ps[0] : ps[0] + 1].expand(len(ps), -1, -1, -1)
        on = pointing_game(first, masks[ps], tolerance=tol).bool()  # the face's first map
        where = [classes[int(data["targets"][q])] for q, o in zip(ps, on, strict=True) if o]
        any_hit += bool(where)
        for q in ps:
            name = classes[int(data["targets"][q])]
            present[name] += 1
            landed[name] += name in where
    pairs = [q for ps in multi for q in ps]
    return {
        "faces": len(multi),
        "attributes_per_face": statistics.fmean(len(ps) for ps in multi),
        "same_map": same / len(multi),
        "hits_any": any_hit / len(multi),
        "hits_per_pair": hit[pairs].float().mean().item(),
        "landed_on": {a: landed[a] / present[a] for a in present},
    }


def bias_table(run: Run, methods: list[str] | None = None) -> list[dict]:
    """One row per biased dataset of the run, by ρ: the mark's tie ``rho``, the
    ``attribute`` it is tied to, the model's test accuracy on that attribute on the
    decorrelated test split (mean over seeds, with and without SE), its ``reliance`` on
    the mark (share of the faces where mark and attribute disagree that the model
    answers as the mark does; mean over seeds), and per method the mean relevance mass
    on the mark (``cue_mass``) and on the attribute (``object_mass``), with their
    intervals, over the biased attribute's pairs (the first seed)."""
    out = []
    models = run.results.get("models", {})
    for dname, mo in models.items():
        bias = mo.get("bias")
        if not bias:
            continue
        k = mo["attributes"].index(bias["attribute"])
        acc = mo["attribute_accuracy"]
        reliance = [r["reliance"] for r in mo.get("reliance", {}).values()]
        row = {
            "dataset": dname,
            "rho": bias["rho"],
            "attribute": bias["attribute"],
            "accuracy": statistics.fmean(a[k] for a in acc["se"]),
            "accuracy_without_se": statistics.fmean(a[k] for a in acc["plain"]),
            "reliance": statistics.fmean(reliance) if reliance else float("nan"),
            "methods": {},
        }
        seed = run.seeds[0]
        for r in run.rows:
            if r["dataset"] != dname or r["seed"] != seed or r["metric"] not in (
                "cue_mass", "object_mass"
            ):  # fmt: skip
                continue
            if methods is not None and r["method"] not in methods:
                continue
            row["methods"].setdefault(r["method"], {})[r["metric"]] = r
        out.append(row)
    return sorted(out, key=lambda r: r["rho"])
