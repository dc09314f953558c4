"""The figure at the top of the README and the docs: ``docs/_static/example.png``.

    python benchmarks/readme_figure.py

Four test images of the scenes benchmark (a class shape among distractors, outlined) with
the maps of the SE model of ``make bench`` (``preset("full")``, seed 0: trained and cached
on first use) from ``se``, ``gradcam``, ``guided-backprop`` and ``vebi``, each map's maximum
marked (:func:`squeezex.figures.example_grid`), at 72 dpi so the committed PNG stays small.
"""

from __future__ import annotations

from pathlib import Path

from squeezex.bench import preset
from squeezex.figures import example_grid
from squeezex.viz import save_figure

OUT = Path(__file__).resolve().parents[1] / "docs/_static/example.png"
METHODS = ["se", "gradcam", "guided-backprop", "vebi"]


def main() -> None:
    fig = example_grid(preset("full"), "scenes-6c", METHODS, n=4)
    save_figure(fig, OUT, dpi=72)
    print(OUT, f"{OUT.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
