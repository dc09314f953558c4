"""Tables of a results dictionary: text (the terminal), CSV and LaTeX (booktabs).

All three are views of the same rows (every cell of the run folder), grouped by
(dataset, seed) and metric family, with directions from the metric vocabulary
(:mod:`squeezex.metrics.vocabulary`): a LaTeX table bolds the best method per metric only
where the metric has a better direction.
"""

from __future__ import annotations

import csv
import io
import math

from ..metrics.vocabulary import FAMILIES, METRICS, direction_text
from .stats import ROW_FIELDS

__all__ = ["format_table", "latex_table", "csv_text", "family_tables", "direction"]


def direction(metric: str, results: dict | None = None) -> bool | None:
    """True (higher is better), False (lower), None (descriptive or unknown): the
    vocabulary's, else what ``results`` recorded (a metric of an older version).
    :func:`squeezex.metrics.vocabulary.direction_text` writes it out."""
    if metric in METRICS:
        return METRICS[metric].higher_is_better
    return (results or {}).get("higher_is_better", {}).get(metric)


def _blocks(results: dict) -> dict[tuple, list[dict]]:
    """Rows grouped by (dataset, seed), in order."""
    blocks: dict[tuple, list[dict]] = {}
    for r in results["rows"]:
        blocks.setdefault((r["dataset"], r["seed"]), []).append(r)
    return blocks


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"


def _families(rows: list[dict]) -> list[str]:
    present = list(dict.fromkeys(r["family"] for r in rows))
    return [f for f in FAMILIES if f in present] + [f for f in present if f not in FAMILIES]


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV (the row fields first, any others after)."""
    buf = io.StringIO()
    fields = list(ROW_FIELDS) + [
        k for k in dict.fromkeys(k for r in rows for k in r) if k not in ROW_FIELDS
    ]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def format_table(results: dict, families: list[str] | None = None, intervals: bool = True) -> str:
    """Methods × metrics per (dataset, seed), one block per metric family: mean
    [95 % interval]; references marked (they take no part in model-only families)."""
    lines = []
    for (dname, seed), rows in _blocks(results).items():
        arch = results.get("models", {}).get(dname, {}).get("arch_name")
        lines.append(f"== {dname}, seed {seed}" + (f", {arch}" if arch else "") + " ==")
        for fam in _families(rows):
            if families is None or fam in families:
                lines += _family_table([r for r in rows if r["family"] == fam], fam, intervals)
                lines += busy_lines(results, dname, seed) if fam == "cost" else []
        lines += attribute_table(results, dname, seed)
        lines += kind_table(results, dname, seed)
        lines += _model_lines(results, dname, seed)
        lines += _report_lines(results, f"{dname}/{seed}")
        lines.append("")
    names = {r["metric"] for r in results["rows"]}
    lower = sorted(k for k in names if direction(k, results) is False)
    if lower:
        lines.append(f"{direction_text(False)}: {', '.join(lower)}; intervals: 95 % bootstrap")
    lines += _fit_lines(results)
    lines += [
        f"pointing_game on {d}: the maximum within {t} px of the mask (the dataset's slack)"
        for d, t in results.get("pointing_tolerance", {}).items()
    ]
    lines += _footing_lines(results)
    best = results.get("most_discriminating")
    if best and len(results.get("discrimination", {})) > 1:
        lines.append(f"methods differ most on {best} (share of method pairs told apart)")
    return "\n".join(lines).rstrip()


def busy_lines(results: dict, dname: str, seed: int) -> list[str]:
    """A warning under the cost rows when some of them were timed on a busy machine
    (other work kept more than half the cores busy: :func:`~squeezex.bench.cells.
    machine_load`)."""
    prefix = f"{dname}/{seed}/"
    busy = {
        cid[len(prefix) :]: v for cid, v in results.get("load", {}).items()
        if cid.startswith(prefix) and v.get("busy")
    }  # fmt: skip
    if not busy:
        return []
    worst = max(v["load_1min"] for v in busy.values())
    cores = max(v["cores"] for v in busy.values())
    return [
        f"WARNING: {', '.join(busy)} timed while the machine was busy (1-minute load up to "
        f"{worst:.1f} on {cores} cores, this run's own threads included): their ms and cost "
        "ratios are inflated and may rank "
        "methods wrongly; time them again on a quiet machine (the same command with --fresh)"
    ]


def _ci(s: dict) -> str:
    return f"{_fmt(s['value'])} [{_fmt(s['ci_low'])},{_fmt(s['ci_high'])}]"


def _report_lines(results: dict, block: str) -> list[str]:
    """Reliance on a cue, which metrics separate methods, and SE vs the activation mean."""
    out = []
    dname, seed = block.rsplit("/", 1)
    rel = results.get("models", {}).get(dname, {}).get("reliance", {}).get(seed)
    if rel:
        out.append(
            f"model reliance on the cue {rel['reliance']:.3f}, on the object {rel['object']:.3f} "
            f"({rel['n']} test images whose cue and object disagree)"
        )
    sep = results.get("discrimination", {}).get(block, {})
    told = [f"{m} {s['separated']}/{s['pairs']}" for m, s in sep.items() if s["pairs"]]
    if told:
        out.append("method pairs with non-overlapping 95 % intervals: " + ", ".join(told))
    cmp = results.get("se_vs_activation_mean", {}).get(block)
    if cmp:
        diffs = ", ".join(
            f"{m} {_ci(d['difference'])}"
            for m, d in cmp["metrics"].items()
            if METRICS[m].family == "localisation"
        )
        out.append(f"se vs activation-mean: map correlation {_ci(cmp['correlation'])}")
        out.append(f"  se − activation-mean: {diffs}")
    diag = results.get("se_diagnostics", {}).get(block)
    if diag and "error" in diag:
        out.append(f"SE vector: {diag['error']}")
    elif diag:
        a, p = diag["all"], diag["paper"]
        out.append(
            f"SE vector: s in [{a['s_min']:.2f}, {a['s_max']:.2f}], per-image std "
            f"{a['image_std_mean']:.3f}; paper rule: overlap of selections across images "
            f"{p['jaccard_images']:.2f}, across classes {p['jaccard_classes']:.2f}"
        )
    return out


def _footing_lines(results: dict) -> list[str]:
    footing = results.get("footing", {})
    if not footing:
        return []
    width = max(len(m) for m in footing) + 2
    return ["", "footing of each map:"] + [f"  {m:<{width}}{f}" for m, f in footing.items()]


def _model_lines(results: dict, dname: str, seed: int) -> list[str]:
    out = []
    mo = results.get("models", {}).get(dname)
    if mo:
        plain = (
            f"without SE {mo['accuracy_without_se_mean']:.3f} ± {mo['accuracy_without_se_sd']:.3f}"
            if mo.get("accuracy_without_se_mean") is not None
            else "no model without SE (a given checkpoint)"
        )
        out.append(
            f"{mo.get('score', 'test accuracy')} with SE {mo['accuracy_mean']:.3f} ± "
            f"{mo['accuracy_sd']:.3f}, {plain} (mean ± sd over seeds {mo['seeds']})"
            + ("; mean attribute accuracy" if mo.get("attribute_accuracy") else "")
        )
        for fam, why in (mo.get("skipped_families") or {}).items():
            out.append(f"not scored: {fam} ({why})")
        if mo.get("arch"):
            out.append(f"model: {mo['arch']}; input normalisation: "
                       f"{mo.get('normalisation', 'none (pixels in [0, 1])')}")  # fmt: skip
        out += _attribute_accuracy_lines(mo)
        if mo.get("bias"):
            b = mo["bias"]
            out.append(
                f"bias: a corner mark tied to {b['attribute']} in training, ρ = {b['rho']:g}"
            )
    fwd = results.get("timing", {}).get(f"{dname}/{seed}/forward_ms_per_image")
    if fwd is not None:
        unit = "clip" if mo and mo.get("kinds") else "img"
        out.append(f"plain forward {fwd:.2f} ms/{unit}")
    return out


def attribute_table(results: dict, dname: str, seed: int, metric: str = "pointing_game") -> list:
    """Multi-label datasets: ``metric`` per method × attribute (over the (image,
    attribute) pairs where the attribute is present), and the mean over attributes."""
    rows = [
        r for r in results.get("attribute_rows", [])
        if r["dataset"] == dname and r["seed"] == seed and r["metric"] == metric
    ]  # fmt: skip
    if not rows:
        return []
    attrs = list(dict.fromkeys(r["attribute"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    value = {(r["method"], r["attribute"]): r["value"] for r in rows}
    width = max(len(m) for m in methods) + 7
    col = max(len(a) for a in attrs) + 2
    head = f"{metric + ' per attribute':<{width}}" + "".join(f"{a:>{col}}" for a in attrs)
    out = [head + f"{'mean':>{col}}", "-" * (len(head) + col)]
    for m in methods:
        vals = [value.get((m, a), math.nan) for a in attrs]
        finite = [v for v in vals if math.isfinite(v)]
        mean = sum(finite) / len(finite) if finite else math.nan
        out.append(f"{m:<{width}}" + "".join(f"{_fmt(v):>{col}}" for v in [*vals, mean]))
    n = {a: max(r["n"] for r in rows if r["attribute"] == a) for a in attrs}
    out.append("pairs per attribute: " + ", ".join(f"{a} {k}" for a, k in n.items()))
    return out + [""]


#: The per-kind table of an audio-visual dataset: (method, metric) rows.
KIND_ROWS = (
    ("se", "frame_pointing_game"), ("gradcam", "frame_pointing_game"),
    ("random", "frame_pointing_game"), ("se", "speech_mass"), ("gradcam", "speech_mass"),
    ("random", "speech_mass"), ("se", "fusion_visual"), ("se", "fusion_audio"),
    ("se", "ablation_visual_drop"), ("se", "ablation_audio_drop"),
    ("feature-ablation", "fa_visual"), ("feature-ablation", "fa_audio"),
)  # fmt: skip


def kind_table(results: dict, dname: str, seed: int) -> list[str]:
    """Audio-visual datasets: the per-clip metrics by clip kind (speaking and the hard
    negatives), read from the per-group rows (whose ``attribute`` field is the kind)."""
    kinds = (results.get("models", {}).get(dname) or {}).get("kinds")
    if not kinds:
        return []
    value = {
        (r["method"], r["metric"], r["attribute"]): r["value"]
        for r in results.get("attribute_rows", [])
        if r["dataset"] == dname and r["seed"] == seed
    }
    rows = [(m, k) for m, k in KIND_ROWS if any((m, k, c) in value for c in kinds)]
    if not rows:
        return []
    width = max(len(f"{m} {k}") for m, k in rows) + 2
    col = max(len(c) for c in kinds) + 3
    head = f"{'by clip kind':<{width}}" + "".join(f"{c:>{col}}" for c in kinds)
    out = [head, "-" * len(head)]
    for m, k in rows:
        vals = [value.get((m, k, c), math.nan) for c in kinds]
        out.append(f"{m + ' ' + k:<{width}}" + "".join(f"{_fmt(v):>{col}}" for v in vals))
    out.append("clips per kind: " + ", ".join(f"{c} {n}" for c, n in kinds.items()))
    return out + [""]


def _attribute_accuracy_lines(mo: dict) -> list[str]:
    """Per-attribute test accuracy with and without SE, mean over the training seeds."""
    acc = mo.get("attribute_accuracy")
    if not acc or not acc.get("se"):
        return []

    def mean(per_seed):
        return [sum(v) / len(v) for v in zip(*per_seed, strict=True)]

    se, plain = mean(acc["se"]), mean(acc["plain"])
    return ["per-attribute accuracy with SE / without: " + ", ".join(
        f"{a} {x:.3f}/{y:.3f}" for a, x, y in zip(mo["attributes"], se, plain, strict=True)
    )]  # fmt: skip


def _fit_lines(results: dict) -> list[str]:
    shared: dict[str, list[str]] = {}  # methods sharing one fit get one line
    for name, info in results.get("fits", {}).items():
        if info and "relevant_per_class" in info:
            line = (
                f"μ = {info['mu']:g}, relevant features per class "
                f"{info['relevant_per_class']} of {info['n_features']}"
            )
            shared.setdefault(line, []).append(name)
    return [f"{', '.join(names)}: {line}" for line, names in shared.items()]


def _cell_text(r: dict | None, intervals: bool) -> str:
    if r is None:
        return ""
    if intervals and r["ci_low"] != r["ci_high"]:
        return f"{_fmt(r['value'])} [{_fmt(r['ci_low'])},{_fmt(r['ci_high'])}]"
    return _fmt(r["value"])


def _family_table(rows: list[dict], family: str, intervals: bool) -> list[str]:
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    kind = {r["method"]: r.get("kind", "method") for r in rows}
    cell = {(r["method"], r["metric"]): r for r in rows}
    text = {(m, k): _cell_text(cell.get((m, k)), intervals) for m in methods for k in metrics}
    width = max(len(m) for m in methods) + 7
    col = max(max(len(t) for t in text.values()), max(len(k) for k in metrics)) + 3
    head = f"{family:<{width}}" + "".join(f"{m:>{col}}" for m in metrics)
    out = [head, "-" * len(head)]
    for m in methods:
        label = m + (" (ref)" if kind[m] == "reference" else "")
        out.append(f"{label:<{width}}" + "".join(text[(m, k)].rjust(col) for k in metrics))
    out.append("")
    return out


def _esc(s: str) -> str:
    return s.replace("_", r"\_").replace("%", r"\%")


def _best(rows: list[dict], metrics: list[str], results: dict) -> dict[str, float]:
    """The best method value per metric with a direction (references are not ranked)."""
    best = {}
    for k in metrics:
        better = direction(k, results)
        cands = [
            r["value"]
            for r in rows
            if r["metric"] == k
            and r.get("kind", "method") == "method"
            and math.isfinite(r["value"])
        ]
        if better is not None and cands:
            best[k] = max(cands) if better else min(cands)
    return best


def latex_table(results: dict) -> str:
    """A LaTeX (booktabs) table per (dataset, seed): methods × metrics, the best method
    value per metric in bold (by the metric's direction; references are not ranked)."""
    parts = []
    for (dname, seed), rows in _blocks(results).items():
        metrics = list(dict.fromkeys(r["metric"] for r in rows))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        kind = {r["method"]: r.get("kind", "method") for r in rows}
        cell = {(r["method"], r["metric"]): r for r in rows}
        best = _best(rows, metrics, results)
        lines = [
            r"\begin{table}[t]",
            r"\centering\small",
            rf"\caption{{{_esc(dname)}, seed {seed}{_esc(_arch_words(results, dname))}: mean over "
            r"test images (95\,\% bootstrap interval in the CSV). Best method per metric in "
            r"bold.}",
            r"\begin{tabular}{l" + "r" * len(metrics) + "}",
            r"\toprule",
            "method & " + " & ".join(_esc(k) for k in metrics) + r" \\",
            r"\midrule",
        ]
        for m in methods:
            cells = []
            for k in metrics:
                r = cell.get((m, k))
                s = "" if r is None else _fmt(r["value"])
                if r is not None and kind[m] == "method" and best.get(k) == r["value"]:
                    s = rf"\textbf{{{s}}}"
                cells.append(s)
            label = _esc(m) + (" (ref)" if kind[m] == "reference" else "")
            lines.append(label + " & " + " & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


def _arch_words(results: dict, dname: str) -> str:
    """``", <architecture>, <normalisation>"`` of ``dname``'s models, for a caption."""
    mo = results.get("models", {}).get(dname) or {}
    if not mo.get("arch"):
        return ""
    norm = mo.get("normalisation")
    return f", {mo['arch']}" + (f", input normalisation {norm}" if norm else "")


def family_tables(results: dict) -> dict[str, str]:
    """One LaTeX table per metric family (narrow enough for a column)."""
    return {
        f: latex_table({**results, "rows": [r for r in results["rows"] if r["family"] == f]})
        for f in _families(results["rows"])
    }
