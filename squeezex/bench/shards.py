"""The shard plan: a run's work split into N independent shards.

The work of a run is its **training units** — one per (dataset, training seed): the models
with and without SE, and for an explained seed every cell of the (dataset, seed). Shards
take whole units while there are at least as many units as shards (heaviest first, each to
the least-loaded shard), so no model is trained twice. With more shards than units, the
explained units' cells are split further: part ``p`` of ``k`` takes the unit's cells at
positions ``p, p + k, …``; part 0 trains the models, and the other parts wait for the SE
checkpoint (a claim on it makes sure only one worker trains it).

The plan depends only on the configuration and N, so every worker computes the same plan.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["Part", "Shard", "plan", "most_shards", "parse_shard", "shard_from_env"]


@dataclass(frozen=True)
class Part:
    """Part ``part`` of ``parts`` of the training unit (``dataset``, ``seed``)."""

    dataset: str
    seed: int
    part: int = 0
    parts: int = 1

    def owns(self, position: int) -> bool:
        """Whether the cell at ``position`` of the unit's cell list is this part's."""
        return position % self.parts == self.part

    @property
    def trains(self) -> bool:
        """Part 0 trains (or loads) the unit's models and writes its shared artifacts."""
        return self.part == 0


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``: the parts of training units it does."""

    index: int
    count: int
    parts: tuple[Part, ...] = ()

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def of(self, dataset: str) -> list[Part]:
        return [p for p in self.parts if p.dataset == dataset]


def _weight(cfg, explained: bool) -> int:
    """Work of a unit, in cells: two models, and its cells (methods + ~4 references)."""
    return 2 + (len(cfg.methods) + 4 if explained else 0)


def most_shards(cfg) -> int:
    """The most shards ``cfg``'s run splits into: a shard per training unit, and an
    explained unit split up to one part per cell (methods + 3 references)."""
    return len(cfg.datasets) * (cfg.seeds + cfg.explain_seeds * (len(cfg.methods) + 2))


def plan(cfg, count: int) -> list[Shard]:
    """The ``count`` shards of ``cfg``'s run (see the module docstring).

    Raises:
        ValueError: ``count`` < 1, or more shards than pieces of work.
    """
    units = [(d, s) for d in cfg.datasets for s in cfg.train_seeds]
    explained = set(cfg.explained_seeds)
    weight = {u: _weight(cfg, u[1] in explained) for u in units}
    most = most_shards(cfg)
    if not 1 <= count <= most:
        raise ValueError(
            f"a run with {len(units)} training units and these methods splits into 1 to "
            f"{most} shards, not {count}"
        )
    if count <= len(units):
        load, assigned = [0] * count, [[] for _ in range(count)]
        for u in sorted(units, key=lambda u: -weight[u]):  # heaviest first (stable)
            i = min(range(count), key=lambda i: load[i])
            load[i] += weight[u]
            assigned[i].append(Part(*u))
        order = {u: k for k, u in enumerate(units)}
        return [
            Shard(i, count, tuple(sorted(a, key=lambda p: order[(p.dataset, p.seed)])))
            for i, a in enumerate(assigned)
        ]
    parts = {u: 1 for u in units}
    for _ in range(count - len(units)):  # the extra shards split the heaviest units' cells
        u = max((u for u in units if u[1] in explained), key=lambda u: weight[u] / parts[u])
        parts[u] += 1
    pieces = [Part(d, s, p, parts[(d, s)]) for d, s in units for p in range(parts[(d, s)])]
    return [Shard(i, count, (piece,)) for i, piece in enumerate(pieces)]


_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` → ``(I, N)``: shard I (counted from 0, as Slurm's array task ids) of N.

    Raises:
        ValueError: not of the form I/N with 0 <= I < N.
    """
    m = _SHARD.match(str(text))
    if not m:
        raise ValueError(f"--shard must look like I/N (e.g. 0/4), got {text!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if not 0 <= i < n:
        raise ValueError(f"--shard {text}: I counts from 0 and must be below N ({n})")
    return i, n


def shard_from_env(environ=None) -> tuple[int, int] | None:
    """``(I, N)`` inside a Slurm array task (``SLURM_ARRAY_TASK_ID`` less the array's
    ``SLURM_ARRAY_TASK_MIN``, of ``SLURM_ARRAY_TASK_COUNT``), else ``None``."""
    env = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" not in env or "SLURM_ARRAY_TASK_COUNT" not in env:
        return None
    i = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", 0))
    n = int(env["SLURM_ARRAY_TASK_COUNT"])
    if not 0 <= i < n:
        raise ValueError(
            f"Slurm array task {env['SLURM_ARRAY_TASK_ID']} is not one of {n} shards: "
            "submit the array as --array=0-<N-1> (or pass --shard I/N)"
        )
    return i, n
