"""JupyterLab explorers built from stock ipywidgets (no custom JavaScript).

* :class:`Explorer` — one model, one dataset, several methods side by side: pick a sample,
  the methods, the target class, the SE channel-selection rule; change the overlay's
  opacity and the ground-truth outline; read the SE vector and the sample's scores.
* :class:`Compare` — a benchmark run folder: pick dataset, seed and metric, see the
  methods ranked with their 95 % intervals, pick a method to see its best and worst
  samples.
* :class:`SpeakerExplorer` — an active speaker model, clip by clip (:mod:`.speaker_explorer`).

Everything they compute lives in :mod:`squeezex.explore` (plain functions, tested without
a kernel). A control redraws only what depends on it: opacity and the mask outline
re-blend cached maps; the SE rule recomputes only the SE map and the SE-vector chart;
heatmaps are cached per (sample, method, target, settings). Both widgets carry a static
PNG in ``_repr_mimebundle_``, so nbval, nbconvert and GitHub show the picture too.

Example (in JupyterLab)::

    from squeezex.widgets import Explorer
    Explorer(model, test_set, methods=["se", "gradcam", "gradcam++"])
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

import ipywidgets as W
import torch
from matplotlib.figure import Figure

from . import explore as X
from .bench import Run
from .explainers.se import SELECTIONS, SEAttribution
from .speaker_explorer import SpeakerExplorer
from .viz import STYLE, overlay

__all__ = ["Explorer", "Compare", "SpeakerExplorer"]

_PREDICTED = -1


def _tile(title: str, png: bytes) -> W.VBox:
    label = W.HTML(f"<b>{escape(title)}</b>", layout=W.Layout(margin="0 0 2px 0"))
    img = W.Image(value=png, format="png")
    box = W.VBox([label, img], layout=W.Layout(margin="0 6px 0 0", align_items="center"))
    box.add_class("squeezex-tile")
    return box


class Explorer(W.VBox):
    """Explore one model's explanations, several methods side by side.

    Args:
        model: a classifier (with an SE block for the SE methods and the SE-vector chart).
        dataset: a squeezex dataset (items ``(image, target, mask)``), any map-style
            dataset of ``(image, target)``, or a tuple ``(images, targets[, masks])``. A
            multi-label dataset (faces: ``task == "multi-label"``) turns the target
            picker into an attribute picker: the map explains the chosen attribute
            and is scored against that attribute's region (none when it is absent).
        methods: registry names offered in the method picker.
        selected: the methods shown at first (default: the first two of ``methods``).
        options: per-method factory keyword arguments (e.g. VEBI's ``relevant``).
        classes: class names (default: the dataset's ``classes``).
        scale: display enlargement of the images (nearest neighbour).
        device: where the model runs.

    Attributes:
        cache: the heatmap cache; ``stats`` counts maps computed and tiles drawn, so a
            test (or a curious user) can see what a control change really redid.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        dataset,
        methods: Sequence[str] = ("se", "gradcam"),
        *,
        selected: Sequence[str] | None = None,
        options: dict | None = None,
        classes: Sequence[str] | None = None,
        scale: int = 3,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        self.add_class("squeezex-explorer")
        methods = list(methods)
        if not methods:
            raise ValueError("methods is empty: pass at least one registry name")
        selected = list(selected) if selected is not None else methods[:2]
        if not set(selected) <= set(methods):
            raise ValueError(f"selected {selected} must be among methods {methods}")
        self.model = model.to(device)  # its training flags are the user's: never changed
        self.device = torch.device(device)
        self.multi_label = getattr(dataset, "task", None) == "multi-label"
        self._get, self.n, ds_classes = X.as_samples(dataset)
        self.classes = list(classes) if classes is not None else ds_classes
        self.methods = methods
        self.explainers = X.make_explainers(self.model, methods, **(options or {}))
        self._se = next((e for e in self.explainers.values() if isinstance(e, SEAttribution)), None)
        if self._se is None:
            try:
                self._se = SEAttribution(self.model)
            except ValueError:
                self._se = None  # no SE block: no SE-vector chart
        self.scale = scale
        self.cache = X.HeatmapCache()
        self.stats = {"computed": 0, "drawn": 0}
        self._maps: dict[str, torch.Tensor] = {}
        self._tiles: dict[str, W.VBox] = {}
        self._build_controls(methods, selected)
        self._observe()
        self._sync_rule_controls()
        self._load_sample()
        self._compute(list(self.method_picker.value))
        self._draw_all()
        self._draw_se()
        self._draw_scores()

    def _build_controls(self, methods: list[str], selected: list[str]) -> None:
        self.sample = W.IntSlider(0, 0, self.n - 1, description="sample", continuous_update=False)
        self.method_picker = W.SelectMultiple(
            options=methods, value=tuple(selected), description="methods", rows=min(6, len(methods))
        )
        n_classes = len(self.classes) if self.classes else self._num_classes()
        names = self.classes or [str(c) for c in range(n_classes)]
        first = "most confident" if self.multi_label else "predicted"
        self.target = W.Dropdown(
            options=[(first, _PREDICTED)] + [(f"{c}: {nm}", c) for c, nm in enumerate(names)],
            value=_PREDICTED,
            description="attribute" if self.multi_label else "target",
        )
        self.rule = W.Dropdown(options=list(SELECTIONS), value="weighted", description="SE rule")
        self.z = W.FloatSlider(1.282, min=0.0, max=3.0, step=0.05, description="z")
        self.k = W.FloatSlider(0.1, min=0.01, max=1.0, step=0.01, description="top-k")
        self.opacity = W.FloatSlider(0.55, min=0.0, max=1.0, step=0.05, description="opacity")
        self.show_mask = W.Checkbox(True, description="mask", indent=False)
        self.info = W.HTML()
        self.grid = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.se_chart = W.Image(format="png", width="600")  # its natural size, not stretched
        self.scores = W.HTML()
        se_controls = [self.rule, self.z, self.k] if self._se is not None else []
        left = W.VBox([self.sample, self.target, self.opacity, self.show_mask])
        right = W.VBox([self.method_picker, *se_controls])
        below = [self.se_chart] if self._se is not None else []
        self.children = [W.HBox([left, right]), self.info, self.grid, *below, self.scores]

    def _observe(self) -> None:
        self.sample.observe(self._on_sample, "value")
        self.target.observe(self._on_sample, "value")
        self.method_picker.observe(self._on_methods, "value")
        for c in (self.rule, self.z, self.k):
            c.observe(self._on_rule, "value")
        self.opacity.observe(self._on_look, "value")
        self.show_mask.observe(self._on_look, "value")

    # -- state ------------------------------------------------------------------------------
    def _num_classes(self) -> int:
        _, probs = X.predict(self.model, self._get(0)[0].to(self.device))
        return int(probs.shape[0])

    @property
    def settings(self) -> X.SESettings:
        return X.SESettings(self.rule.value, float(self.z.value), float(self.k.value))

    def _load_sample(self) -> None:
        image, label, mask = self._get(int(self.sample.value))
        self._x = image.to(self.device)
        self._label = label
        self._pred, self._probs = X.predict(self.model, self._x, self.multi_label)
        t = self.target.value
        self._target = self._pred if t == _PREDICTED else int(t)
        name = self._name
        if self.multi_label:  # the chosen attribute's region; none when it is absent
            k = self._target
            self._mask = mask[k : k + 1] if mask is not None and label[k] else None
            self.info.value = self._attribute_info(label)
            return
        self._mask = mask
        self.info.value = (
            f"sample {self.sample.value}: label <b>{escape(name(label))}</b>, predicted "
            f"<b>{escape(name(self._pred))}</b> (p = {float(self._probs[self._pred]):.2f}); "
            f"explaining <b>{escape(name(self._target))}</b>"
        )

    def _attribute_info(self, attributes: torch.Tensor) -> str:
        """The info line of a multi-label sample: what it has, what the model says."""
        has = [self._name(k) for k in torch.nonzero(attributes).flatten().tolist()]
        said = [self._name(k) for k in torch.nonzero(self._probs > 0.5).flatten().tolist()]
        k = self._target
        state = "present" if attributes[k] else "absent: no region to score"
        return (
            f"sample {self.sample.value}: attributes <b>{escape(', '.join(has) or 'none')}</b>; "
            f"the model says <b>{escape(', '.join(said) or 'none')}</b>; explaining "
            f"<b>{escape(self._name(k))}</b> (p = {float(self._probs[k]):.2f}, {state})"
        )

    def _name(self, c: int) -> str:
        return self.classes[c] if self.classes and 0 <= c < len(self.classes) else str(c)

    def _compute(self, names: list[str]) -> None:
        before = self.cache.misses
        maps = X.explain_sample(
            {m: self.explainers[m] for m in names},
            self._x,
            self._target,
            sample=int(self.sample.value),
            settings=self.settings,
            cache=self.cache,
        )
        self.stats["computed"] += self.cache.misses - before
        self._maps.update(maps)

    # -- drawing ----------------------------------------------------------------------------
    def _png(self, heatmap) -> bytes:
        mask = self._mask if self.show_mask.value else None
        return X.render_overlay(self._x.cpu(), heatmap, mask, float(self.opacity.value), self.scale)

    def _draw(self, name: str) -> None:
        heat = None if name == "image" else self._maps[name]
        png = self._png(heat)
        if name in self._tiles:
            self._tiles[name].children[1].value = png
        else:
            self._tiles[name] = _tile(name, png)
        self.stats["drawn"] += 1

    def _layout_tiles(self) -> None:
        order = ["image", *[m for m in self.methods if m in self.method_picker.value]]
        self.grid.children = [self._tiles[m] for m in order]

    def _draw_all(self) -> None:
        for name in ["image", *self.method_picker.value]:
            self._draw(name)
        self._layout_tiles()

    def _draw_se(self) -> None:
        if self._se is None:
            return
        v = X.se_vector(self._se, self._x, self.settings)
        self.se_chart.value = X.render_se_vector(v)

    def _draw_scores(self) -> None:
        shown = {m: self._maps[m] for m in self.method_picker.value}
        scores = X.sample_scores(shown, self._mask)
        if not scores:
            self.scores.value = "<i>no ground-truth mask for this sample: no scores</i>"
            return
        metrics = list(next(iter(scores.values())))
        head = "".join(f"<th style='padding:0 8px'>{escape(k)}</th>" for k in metrics)
        body = "".join(
            f"<tr><td><b>{escape(m)}</b></td>"
            + "".join(f"<td style='padding:0 8px'>{v[k]:.3f}</td>" for k in metrics)
            + "</tr>"
            for m, v in scores.items()
        )
        self.scores.value = f"<table><tr><th></th>{head}</tr>{body}</table>"

    # -- events -----------------------------------------------------------------------------
    def _on_sample(self, _change=None) -> None:
        self._load_sample()
        self._compute(list(self.method_picker.value))
        self._draw_all()
        self._draw_se()
        self._draw_scores()

    def _on_methods(self, change) -> None:
        new = [m for m in change["new"] if m not in change["old"]]
        self._compute(new)
        for m in new:
            self._draw(m)
        self._layout_tiles()
        self._draw_scores()

    def _tunable_shown(self) -> list[str]:
        return [m for m in self.method_picker.value if m in X.TUNABLE]

    def _sync_rule_controls(self) -> None:
        self.z.layout.display = None if self.rule.value in ("paper", "logit") else "none"
        self.k.layout.display = None if self.rule.value == "topk" else "none"

    def _on_rule(self, _change) -> None:
        self._sync_rule_controls()
        names = self._tunable_shown()
        self._compute(names)
        for m in names:
            self._draw(m)
        self._draw_se()
        self._draw_scores()

    def _on_look(self, _change) -> None:
        for name in ["image", *self.method_picker.value]:
            self._draw(name)

    # -- static fallback --------------------------------------------------------------------
    def figure(self) -> Figure:
        """The current view as a matplotlib figure (image and each shown method)."""
        import matplotlib

        names = list(self.method_picker.value)
        mask = self._mask if self.show_mask.value else None
        with matplotlib.rc_context(STYLE):
            fig = Figure(figsize=(1.6 * (len(names) + 1), 1.9), layout="constrained")
            axes = fig.subplots(1, len(names) + 1, squeeze=False)[0]
            overlay(axes[0], self._x.cpu(), None, mask)
            # multi-label: the attribute explained (the label is the whole attribute vector)
            title = self._name(self._target if self.multi_label else self._label)
            axes[0].set_title(title)
            for ax, m in zip(axes[1:], names, strict=True):
                overlay(ax, self._x.cpu(), self._maps[m], mask, alpha=float(self.opacity.value))
                ax.set_title(m)
        return fig

    def to_png(self) -> bytes:
        return X.figure_png(self.figure())

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["image/png"] = self.to_png()
        return bundle


class Compare(W.VBox):
    """Browse a benchmark's results: method ranking per metric, best and worst samples.

    Args:
        results: a run folder (``squeezex bench --out``), its ``results.json``, or a
            :class:`~squeezex.bench.Run`.
        k: how many best and worst samples to show.
        scale: display enlargement of the sample images.
    """

    def __init__(self, results, *, k: int = 3, scale: int = 2) -> None:
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
        self.chart = W.Image(format="png")
        self.method = W.ToggleButtons(
            options=[], description="method", style={"button_width": "auto"}
        )
        self.samples = W.VBox()
        self.children = [
            W.HBox([self.dataset, self.seed, self.metric]),
            self.chart,
            self.method,
            self.samples,
        ]
        for c in (self.dataset, self.seed, self.metric):
            c.observe(self._on_metric, "value")
        self.method.observe(self._on_method, "value")
        self._on_metric()

    def ranking(self):
        return self.run.ranking(self.metric.value, self.dataset.value, self.seed.value)

    def _on_metric(self, _change=None) -> None:
        rows = self.ranking()
        hib = self.run.higher_is_better(self.metric.value)
        self.chart.value = X.render_ranking(rows, self.metric.value, hib)
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
                png = X.render_overlay(
                    data["images"][i], maps[i], data["masks"][i], 0.55, self.scale
                )
                tiles.append(_tile(f"#{i}: {values[i]:.3f}", png))
            return W.VBox([W.HTML(f"<b>{escape(title)}</b>"), W.HBox(tiles)])

        self.samples.children = [row(f"best {m}", best), row(f"worst {m}", worst)]

    def to_png(self) -> bytes:
        return self.chart.value

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["image/png"] = self.to_png()
        return bundle
