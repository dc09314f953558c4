"""Compare: browse a benchmark run — the methods ranked per metric, best and worst samples.

Pick the dataset, the seed and the metric to see the methods ranked with their 95 %
intervals; pick a method to see its best and worst test images with their maps. Built
from stock ipywidgets; it reads the run folder only through :class:`squeezex.bench.Run`
and draws with :mod:`.render`. Its static PNG (``_repr_mimebundle_``) is the ranking chart.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import ipywidgets as W

from ..bench import Run
from ..options import Int, check_options
from .render import png_size, render_overlay, render_ranking

__all__ = ["Compare"]


def _tile(title: str, png: bytes) -> W.VBox:
    label = W.HTML(f"<b>{escape(title)}</b>", layout=W.Layout(margin="0 0 2px 0"))
    img = W.Image(value=png, format="png")
    box = W.VBox([label, img], layout=W.Layout(margin="0 6px 0 0", align_items="center"))
    box.add_class("squeezex-tile")
    return box


class Compare(W.VBox):
    """Browse a benchmark's results: method ranking per metric, best and worst samples.

    Args:
        results: a run folder (``squeezex bench --out``), its ``results.json``, or a
            :class:`~squeezex.bench.Run`.
        k: how many best and worst samples to show.
        scale: display enlargement of the sample images.

    Example::

        from squeezex.widgets import Compare
        Compare("data/runs/demo")  # a run folder written by `squeezex bench --out`
    """

    #: The ranking chart is rendered at this multiple of its displayed size (sharp on
    #: high-density screens) and shown at its displayed size, aspect ratio kept.
    PIXEL_RATIO = 2

    def __init__(self, results, *, k: int = 3, scale: int = 2) -> None:
        k, scale = check_options({"k": Int(1), "scale": Int(1)}, k=k, scale=scale).values()
        super().__init__()
        self.add_class("squeezex-compare")
        self.run = results if isinstance(results, Run) else Run(Path(results))
        self.k = k
        self.scale = scale
        run = self.run
        self.dataset = W.Dropdown(options=run.datasets, description="dataset")
        self.seed = W.Dropdown(options=run.seeds, description="seed")
        metrics = run.metrics()
        default = "pointing_game" if "pointing_game" in metrics else metrics[0]
        self.metric = W.Dropdown(options=metrics, value=default, description="metric")
        # only the width is set (height follows the aspect ratio); never stretched by the box
        self.chart = W.Image(
            format="png", layout=W.Layout(align_self="flex-start", height="auto", max_width="100%")
        )
        self.chart.add_class("squeezex-ranking")
        self.method = W.ToggleButtons(
            options=[], description="method", style={"button_width": "auto"}
        )
        self.samples = W.VBox(layout=W.Layout(margin="0 0 0 12px"))
        plots = W.HBox(
            [self.chart, self.samples],
            layout=W.Layout(flex_flow="row wrap", align_items="flex-start"),
        )
        # every control above the plots, so none sits below a long ranking
        self.children = [W.HBox([self.dataset, self.seed, self.metric]), self.method, plots]
        for c in (self.dataset, self.seed, self.metric):
            c.observe(self._on_metric, "value")
        self.method.observe(self._on_method, "value")
        self._on_metric()

    def ranking(self):
        return self.run.ranking(self.metric.value, self.dataset.value, self.seed.value)

    def _on_metric(self, _change=None) -> None:
        rows = self.ranking()
        hib = self.run.higher_is_better(self.metric.value)
        png = render_ranking(rows, self.metric.value, hib, dpi=100 * self.PIXEL_RATIO)
        self.chart.value = png
        self.chart.width = str(png_size(png)[0] // self.PIXEL_RATIO)
        current = self.method.value
        names = [r.method for r in rows]
        self.method.options = names
        self.method.value = current if current in names else names[0]
        self._on_method()

    def _on_method(self, _change=None) -> None:
        m = self.method.value
        if m is None:
            return
        try:
            best, worst = self.run.best_worst(
                m, self.metric.value, self.k, self.dataset.value, self.seed.value
            )
            values = self.run.samples(m, self.metric.value, self.dataset.value, self.seed.value)
            maps = self.run.maps(m, self.dataset.value, self.seed.value)
            data = self.run.data(self.dataset.value)
        except (KeyError, FileNotFoundError) as e:
            self.samples.children = [W.HTML(f"<i>{escape(str(e.args[0]))}</i>")]
            return

        def row(title, idx):
            tiles = []
            for i in idx:
                png = render_overlay(data["images"][i], maps[i], data["masks"][i], 0.55, self.scale)
                tiles.append(_tile(f"#{i}: {values[i]:.3f}", png))
            return W.VBox([W.HTML(f"<b>{escape(title)}</b>"), W.HBox(tiles)])

        self.samples.children = [row(f"best {m}", best), row(f"worst {m}", worst)]

    def to_png(self) -> bytes:
        # bytes, not the widget's memoryview: a kernel sends bytes as base64, a memoryview
        # as a list of numbers that no notebook reader takes for a PNG
        return bytes(self.chart.value)

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["image/png"] = self.to_png()
        return bundle
