"""The Explorer: one model, one dataset, several explanation methods side by side.

Pick a sample, the methods, the target class, the SE channel-selection rule; change the
overlay's opacity and the ground-truth outline; read the SE vector and the sample's scores.
Built from stock ipywidgets (no custom JavaScript).

Everything it computes lives beside it in plain functions, tested without a kernel:
:mod:`.logic` (samples, explainers, the heatmap cache, scores, threads) and :mod:`.render`
(the PNGs). A control recomputes only what depends on it: opacity and the mask outline
re-blend cached maps; the SE rule recomputes only the SE map and the SE-vector chart;
heatmaps are cached per (sample, method, target, settings). The Explorer computes
everything a change needs first ("computing…" shown, controls disabled), then replaces
its tiles, colour bar, SE chart and score table in one step: they never show two samples,
targets or rules at once. It carries a static PNG in ``_repr_mimebundle_``, so nbval,
nbconvert and GitHub show the picture too.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape

import ipywidgets as W
import torch
from matplotlib.figure import Figure

from ..explainers.se import PAPER_Z, SELECTIONS, SEAttribution
from ..options import Int, check_options
from ..viz import HEATMAP_CMAP, STYLE, overlay
from . import logic as X
from . import render as R

__all__ = ["Explorer"]

_PREDICTED = -1


@dataclass(frozen=True)
class _Sample:
    """One sample as the Explorer explains it."""

    index: int
    x: torch.Tensor
    label: object  # the class (or, multi-label, the attribute vector)
    mask: torch.Tensor | None  # what the scores are taken against
    pred: int
    probs: torch.Tensor
    target: int  # the class (attribute) the maps explain
    predicted: bool  # the target is the model's own choice


def _caption(tag: str) -> str:
    return f"<div class='sqx-caption' style='color:#666;font-size:11px'>{escape(tag)}</div>"


def _img(png: bytes, alt: str, scale: float = 1.0) -> str:
    w, h = R.png_size(png)
    return (
        f"<img src='{R.data_uri(png)}' alt='{escape(alt, quote=True)}' "
        f"width='{round(w * scale)}' height='{round(h * scale)}' style='display:block'>"
    )


class Explorer(W.VBox):
    """Explore one model's explanations, several methods side by side.

    The SE explanation (Roxo et al., arXiv 2412.05134) beside any registered method, with
    the SE vector behind it and its channel-selection rule as a control.

    Args:
        model: a classifier (with an SE block for the SE methods and the SE-vector chart).
        dataset: a squeezex dataset (items ``(image, target, mask)``), any map-style
            dataset of ``(image, target)``, or a tuple ``(images, targets[, masks])``. A
            multi-label dataset (faces, :func:`.logic.is_multi_label`) turns the target
            picker into an attribute picker: the map explains the chosen attribute
            and is scored against that attribute's region (none when it is absent).
        methods: registry names offered in the method picker.
        selected: the methods shown at first (default: the first two of ``methods``).
        options: per-method factory keyword arguments (e.g. VEBI's ``relevant``).
        classes: class names (default: the dataset's ``classes``).
        scale: display enlargement of the images (nearest neighbour).
        device: where the model runs.
        threads: torch intra-op threads while the widget computes (restored after; one
            image gains nothing from more, see :func:`.logic.torch_threads`);
            ``None`` leaves torch's setting alone.

    The tiles, the SE-vector chart and the score table are one HTML view, replaced in
    one assignment once everything a change needs is computed: they always show the same
    sample, target and rule. Each part carries that state (``data-state``, the small grey
    caption; :attr:`shown`). While it computes, the controls are disabled and
    :attr:`busy` reads "computing…".

    Attributes:
        cache: the heatmap cache; ``stats`` counts maps computed and tiles drawn, so a
            test (or a curious user) can see what a control change really redid.

    Example:
        >>> import torch
        >>> from squeezex.models import build_model
        >>> model = build_model("small", 6, se=True, seed=0).eval()
        >>> images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        >>> targets = torch.tensor([0, 1])
        >>> e = Explorer(model, (images, targets), methods=["se", "gradcam"])
        >>> e.stats  # two maps computed, three tiles drawn (the image and each map)
        {'computed': 2, 'drawn': 3}
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
        threads: int | None = 1,
    ) -> None:
        scale, threads = check_options(
            {"scale": Int(1), "threads": Int(1, none=True)}, scale=scale, threads=threads
        ).values()
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"options must be a dict of factory arguments, got {options!r}")
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
        self.threads = threads
        self.multi_label = X.is_multi_label(dataset)
        self._get, self.n, ds_classes = X.as_samples(dataset)
        self.classes = list(classes) if classes is not None else ds_classes
        if self.classes is not None and len(self.classes) != (width := self._num_classes()):
            given = "classes" if classes is not None else "the dataset's classes"
            raise ValueError(
                f"{given} has {len(self.classes)} names but the model outputs {width} "
                f"scores: pass one name per output ({self.classes[:4]}...)"
            )
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
        self._se_charts = X.HeatmapCache(maxsize=64)  # SE-vector PNGs by (sample, settings)
        self.stats = {"computed": 0, "drawn": 0}
        self._maps: dict[str, torch.Tensor] = {}
        self._pngs: dict[str, bytes] = {}  # each tile's PNG
        self._parts: dict[str, tuple[str, str]] = {}  # part → (the state it shows, its HTML)
        self._scored: set[str] = set()  # the methods the score table has
        self._build_controls(methods, selected)
        self._observe()
        self._sync_rule_controls()
        self._refresh(load=True, busy=False)

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
        # the paper's z = 1.282 exactly: a step it lies on, and a readout that shows it
        self.z = W.FloatSlider(
            PAPER_Z, min=0.0, max=3.0, step=0.001, readout_format=".3f", description="z"
        )
        self.k = W.FloatSlider(0.1, min=0.01, max=1.0, step=0.01, description="top-k")
        self.opacity = W.FloatSlider(0.55, min=0.0, max=1.0, step=0.05, description="opacity")
        self.show_mask = W.Checkbox(True, description="mask", indent=False)
        self.busy = W.HTML(layout=W.Layout(min_height="1.6em"))
        self.busy.add_class("squeezex-busy")
        self.view = W.HTML()  # tiles, colour bar, SE chart and scores: swapped as one
        self.view.add_class("squeezex-view")
        se_controls = [self.rule, self.z, self.k] if self._se is not None else []
        left = W.VBox([self.sample, self.target, self.opacity, self.show_mask])
        right = W.VBox([self.method_picker, *se_controls])
        self.children = [W.HBox([left, right]), self.busy, self.view]

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

    @property
    def shown(self) -> dict[str, str]:
        """The state each part of the view shows (``"sample 3 · target … · rule …"``)."""
        return {part: tag for part, (tag, _) in self._parts.items()}

    def _read_sample(self) -> _Sample:
        """The sample the controls name, predicted, with the mask its scores use."""
        i = int(self.sample.value)
        image, label, mask = self._get(i)
        x = image.to(self.device)
        pred, probs = X.predict(self.model, x, self.multi_label)
        t = self.target.value
        target = pred if t == _PREDICTED else int(t)
        if self.multi_label:  # the chosen attribute's region; none when it is absent
            mask = mask[target : target + 1] if mask is not None and label[target] else None
        return _Sample(i, x, label, mask, pred, probs, target, t == _PREDICTED)

    # the current sample's fields, under the names the static figure and tests read
    _x = property(lambda self: self._s.x)
    _mask = property(lambda self: self._s.mask)
    _target = property(lambda self: self._s.target)
    _label = property(lambda self: self._s.label)

    def _name(self, c: int) -> str:
        return self.classes[c] if self.classes and 0 <= c < len(self.classes) else str(c)

    def _tag(self, s: _Sample, settings: X.SESettings) -> str:
        """The state a part shows, e.g. ``sample 3 · target red leaf · rule paper z=1.282``."""
        rule = settings.selection
        if rule in ("paper", "logit"):
            rule += f" z={settings.z:.3f}"
        elif rule == "topk":
            rule += f" k={settings.k:g}"
        chosen = " (predicted)" if s.predicted else ""
        return f"sample {s.index} · target {self._name(s.target)}{chosen} · rule {rule}"

    def _explain(self, s: _Sample, names: list[str], settings: X.SESettings) -> dict:
        before = self.cache.misses
        maps = X.explain_sample(
            {m: self.explainers[m] for m in names},
            s.x,
            s.target,
            sample=s.index,
            settings=settings,
            cache=self.cache,
        )
        self.stats["computed"] += self.cache.misses - before
        return maps

    # -- one update -------------------------------------------------------------------------
    @contextmanager
    def _busy(self, on: bool):
        """Say "computing…" and disable the controls for the block (cleared whatever happens)."""
        controls = [self.sample, self.target, self.method_picker, self.rule, self.z, self.k]
        if not on:
            yield
            return
        self.busy.value = "<span style='color:#b35900'>⏳ computing…</span>"
        for c in controls:
            c.disabled = True
        try:
            yield
        finally:
            for c in controls:
                c.disabled = False
            self.busy.value = ""

    def _refresh(
        self, *, load: bool = False, compute=(), draw=(), se: bool = False, busy: bool = True
    ) -> None:
        """Compute what a change needs (a new sample: everything), then show the tiles, the
        SE chart and the scores in one assignment of :attr:`view`."""
        with self._busy(busy), X.torch_threads(self.threads):
            s = self._read_sample() if load else self._s
            settings = self.settings
            shown = list(self.method_picker.value)
            if load:
                compute, draw, se = shown, ["image", *shown], True
            maps = self._explain(s, list(compute), settings)
            maps = maps if load else {**self._maps, **maps}
            pngs = {} if load else dict(self._pngs)
            for name in draw:
                pngs[name] = self._tile_png(s, None if name == "image" else maps[name])
            tag = self._tag(s, settings)
            parts = dict(self._parts)
            parts["tiles"] = (tag, self._tiles_html(s, pngs, shown, tag))
            if se and self._se is not None:
                parts["se"] = (tag, self._se_html(s, settings, tag))
            if load or compute or se or set(shown) != self._scored:
                parts["scores"] = (tag, self._scores_html(s, maps, shown, tag))
            # commit: the state, then the view in one step
            self._s, self._maps, self._pngs, self._parts = s, maps, pngs, parts
            self._scored = set(shown)
            self.view.value = self._compose()

    # -- drawing ----------------------------------------------------------------------------
    def _tile_png(self, s: _Sample, heatmap) -> bytes:
        mask = s.mask if self.show_mask.value else None
        self.stats["drawn"] += 1
        return R.render_overlay(s.x.cpu(), heatmap, mask, float(self.opacity.value), self.scale)

    def _tiles_html(self, s: _Sample, pngs: dict, shown: list[str], tag: str) -> str:
        order = ["image", *[m for m in self.methods if m in shown]]
        tiles = "".join(
            f"<div class='sqx-tile' data-method='{escape(m, quote=True)}' "
            f"style='display:flex;flex-direction:column;align-items:center'>"
            f"<b>{escape(m)}</b>{_img(pngs[m], m)}</div>"
            for m in order
        )
        bar = f"<div class='sqx-colorbar'>{_img(R.render_colorbar(), R.COLORBAR_LABEL)}</div>"
        return (
            f"<div class='sqx-info'>{self._info(s)}</div>{_caption(tag)}"
            f"<div style='display:flex;flex-wrap:wrap;gap:6px'>{tiles}</div>{bar}"
        )

    def _info(self, s: _Sample) -> str:
        name = self._name
        if self.multi_label:
            return self._attribute_info(s)
        return (
            f"sample {s.index}: label <b>{escape(name(s.label))}</b>, predicted "
            f"<b>{escape(name(s.pred))}</b> (p = {float(s.probs[s.pred]):.2f}); "
            f"explaining <b>{escape(name(s.target))}</b>"
        )

    def _attribute_info(self, s: _Sample) -> str:
        """The info line of a multi-label sample: what it has, what the model says."""
        has = [self._name(k) for k in torch.nonzero(s.label).flatten().tolist()]
        said = [self._name(k) for k in torch.nonzero(s.probs > 0.5).flatten().tolist()]
        k = s.target
        state = "present" if s.label[k] else "absent: no region to score"
        return (
            f"sample {s.index}: attributes <b>{escape(', '.join(has) or 'none')}</b>; "
            f"the model says <b>{escape(', '.join(said) or 'none')}</b>; explaining "
            f"<b>{escape(self._name(k))}</b> (p = {float(s.probs[k]):.2f}, {state})"
        )

    def _se_html(self, s: _Sample, settings: X.SESettings, tag: str) -> str:
        key = (s.index, settings)
        png = self._se_charts.get(key)
        if png is None:
            png = R.render_se_vector(X.se_vector(self._se, s.x, settings))
            self._se_charts.put(key, png)
        return _caption(tag) + _img(png, "SE vector")

    def _mask_note(self, s: _Sample) -> str:
        """Which mask the scores are taken against (not always the explained class's)."""
        if self.multi_label:
            return f"scored against the region of: <b>{escape(self._name(s.target))}</b>"
        note = f"scored against the mask of: <b>{escape(self._name(s.label))}</b> (true label)"
        if s.target != s.label:
            note += (
                f"; the maps explain <b>{escape(self._name(s.target))}</b>, another class"
                " than the mask's"
            )
        return note

    def _scores_html(self, s: _Sample, maps: dict, shown: list[str], tag: str) -> str:
        from ..metrics import METRICS

        scores = X.sample_scores({m: maps[m] for m in shown}, s.mask)
        if not scores:
            return _caption(tag) + "<i>no ground-truth mask for this sample: no scores</i>"
        keys = list(next(iter(scores.values())))
        pad = "style='padding:0 8px'"
        head = "".join(
            f"<th {pad} title='{escape(METRICS[k].description, quote=True)}'>"
            f"{escape(X.score_label(k))}</th>"
            for k in keys
        )
        body = "".join(
            f"<tr><td><b>{escape(m)}</b></td>"
            + "".join(f"<td {pad}>{v[k]:.3f}</td>" for k in keys)
            + "</tr>"
            for m, v in scores.items()
        )
        return (
            f"{_caption(tag)}<div class='sqx-mask-note'>{self._mask_note(s)}</div>"
            f"<table><tr><th></th>{head}</tr>{body}</table>"
        )

    def _compose(self) -> str:
        return "".join(
            f"<div class='sqx-{part}' data-state='{escape(tag, quote=True)}' "
            f"style='margin:4px 0'>{html}</div>"
            for part, (tag, html) in self._parts.items()
        )

    # -- events -----------------------------------------------------------------------------
    def _on_sample(self, _change=None) -> None:
        self._refresh(load=True)

    def _on_methods(self, change) -> None:
        new = [m for m in change["new"] if m not in change["old"]]
        self._refresh(compute=new, draw=new)

    def _tunable_shown(self) -> list[str]:
        return [m for m in self.method_picker.value if m in X.TUNABLE]

    def _sync_rule_controls(self) -> None:
        self.z.layout.display = None if self.rule.value in ("paper", "logit") else "none"
        self.k.layout.display = None if self.rule.value == "topk" else "none"

    def _on_rule(self, _change) -> None:
        self._sync_rule_controls()
        names = self._tunable_shown()
        self._refresh(compute=names, draw=names, se=True)

    def _on_look(self, _change) -> None:
        self._refresh(draw=["image", *self.method_picker.value], busy=False)

    # -- static fallback --------------------------------------------------------------------
    def figure(self) -> Figure:
        """The current view as a matplotlib figure (image and each shown method) with the
        maps' colour bar."""
        import matplotlib
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        names = list(self.method_picker.value)
        mask = self._mask if self.show_mask.value else None
        with matplotlib.rc_context(STYLE):
            fig = Figure(figsize=(1.6 * (len(names) + 1) + 0.6, 1.9), layout="constrained")
            axes = fig.subplots(1, len(names) + 1, squeeze=False)[0]
            overlay(axes[0], self._x.cpu(), None, mask)
            # multi-label: the attribute explained (the label is the whole attribute vector)
            title = self._name(self._target if self.multi_label else self._label)
            axes[0].set_title(title)
            for ax, m in zip(axes[1:], names, strict=True):
                overlay(ax, self._x.cpu(), self._maps[m], mask, alpha=float(self.opacity.value))
                ax.set_title(m)
            sm = ScalarMappable(Normalize(0, 1), matplotlib.colormaps[HEATMAP_CMAP])
            fig.colorbar(sm, ax=list(axes), shrink=0.8, label=R.COLORBAR_LABEL)
        return fig

    def to_png(self) -> bytes:
        return R.figure_png(self.figure())

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["image/png"] = self.to_png()
        return bundle
