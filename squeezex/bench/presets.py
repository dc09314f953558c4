"""Named benchmark configurations, so a command, a Makefile target and four notebooks ask
for the same run by name instead of copying its settings.

* ``demo`` — what ``make demo`` runs, the quick look (a few minutes on 2 cores): the
  scenes dataset, where methods differ, one training seed, the headline methods and the
  families of the headline table (localisation, faithfulness, cost).
* ``notebooks`` — the run notebooks 05, 06, 07 and 11 share (both ground-truth datasets, the
  methods they discuss, every family); smaller when ``SQUEEZEX_SMOKE=1`` (what CI sets): fewer
  test images, epochs and images for the costly metrics, and without occlusion and integrated
  gradients, the two perturbation methods that cost tens to hundreds of forward passes per map
  (``benchmarks/speed.py`` measures every method's cost; the conformance suite tests them).
* ``full`` — the headline benchmark of the README and the docs (``make bench``): the
  default datasets, three training seeds, every family.

Example:
    >>> from squeezex.bench import list_presets, preset
    >>> sorted(list_presets())
    ['demo', 'full', 'notebooks']
    >>> cfg = preset("demo", out="data/runs/mine")  # what `make demo` runs, written elsewhere
    >>> cfg.dataset, cfg.seeds, cfg.out
    ('scenes-6c', 1, 'data/runs/mine')
    >>> cfg.methods
    ['se', 'se-paper', 'gradcam', 'guided-backprop', 'vebi', 'random']

    ``squeezex.bench.run(cfg)`` then runs it, as ``squeezex bench --preset demo --out
    data/runs/mine`` does.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import BenchConfig

__all__ = ["preset", "list_presets", "project_root", "smoke", "NOTEBOOK_METHODS"]

#: The headline methods: SE (the class-agnostic map and the paper's channel rule) beside
#: Grad-CAM, a gradient method that localises well, VEBI and the random floor.
DEMO_METHODS = ["se", "se-paper", "gradcam", "guided-backprop", "vebi", "random"]

#: The methods notebooks 05, 06, 07 and 11 discuss.
NOTEBOOK_METHODS = [
    "se",
    "se-class",
    "gradcam",
    "gradcam++",
    "guided-gradcam",
    "guided-backprop",
    "saliency",
    "input-x-gradient",
    "integrated-gradients",
    "occlusion",
    "vebi",
    "random",
]

_COSTLY = ("occlusion", "integrated-gradients")


def smoke() -> bool:
    """Whether ``SQUEEZEX_SMOKE=1`` asks for the small versions (CI's notebooks)."""
    return os.environ.get("SQUEEZEX_SMOKE") == "1"


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The checkout that holds ``data/``: the first of ``start`` (default: the working
    folder) and its parents with a ``pyproject.toml`` beside a ``squeezex`` folder; the
    working folder itself when there is none (squeezex installed elsewhere)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "squeezex").is_dir():
            return folder
    return here


def _demo(root: Path) -> dict:
    return dict(
        dataset="scenes-6c",
        methods=list(DEMO_METHODS),
        seeds=1,
        families=["localisation", "faithfulness", "cost"],
        out=str(root / "data/runs/demo"),
    )


def _notebooks(root: Path) -> dict:
    small = smoke()
    return dict(
        dataset="an8flower-single-6c,scenes-6c",
        methods=[m for m in NOTEBOOK_METHODS if not (small and m in _COSTLY)],
        seeds=1,
        n_train_per_class=150 if small else 200,  # Scenes needs >= 150
        n_test_per_class=5 if small else 50,
        epochs=8 if small else 12,
        n_sanity=4 if small else 16,
        n_sensitivity=4 if small else 32,
        n_road=8 if small else 24,  # ROAD's imputation solves a sparse system per image and step
        # each size its own folder (a run folder holds one configuration); the notebooks own
        # it, so a run of changed settings (a new squeezex) replaces what it holds
        out=str(root / ("data/runs/notebooks-smoke" if small else "data/runs/notebooks")),
        replace_other=True,
        progress=False,
    )


def _full(root: Path) -> dict:
    return dict(out=str(root / "data/runs/bench"))


_PRESETS = {
    "demo": ("the quick look: scenes-6c, one seed, headline methods and families", _demo),
    "notebooks": (
        "the run notebooks 05, 06, 07 and 11 share (smaller with SQUEEZEX_SMOKE=1)",
        _notebooks,
    ),
    "full": ("the headline benchmark: default datasets, three seeds, every family", _full),
}


def list_presets() -> dict[str, str]:
    """Preset name → what it runs."""
    return {name: text for name, (text, _) in _PRESETS.items()}


def preset(name: str, *, root: str | os.PathLike | None = None, **overrides) -> BenchConfig:
    """The :class:`BenchConfig` named ``name`` (see the module's doc), its folders under
    ``root`` (default: :func:`project_root`), with ``overrides`` (any BenchConfig field)
    applied.

    Raises:
        ValueError: an unknown preset (the message lists them) or a bad override.
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose from {', '.join(_PRESETS)}")
    base = Path(root) if root is not None else project_root()
    settings = {"checkpoints": str(base / "data/checkpoints"), **_PRESETS[name][1](base)}
    settings.update(overrides)
    try:
        return BenchConfig(**settings)
    except TypeError as exc:  # an override that is not a setting
        raise ValueError(f"preset {name!r}: {exc}") from None
