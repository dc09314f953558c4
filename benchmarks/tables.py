"""Every number table of the README and the docs, rendered from a committed result.

A table lives in a Markdown file between two markers::

    <!-- table: speed -->
    (what this script writes)
    <!-- /table -->

and :data:`TABLES` says, for each name, which committed JSON it is drawn from, the exact
command that wrote that JSON, and how it is drawn. ``python benchmarks/tables.py`` rewrites
every block in README.md, docs/ and notebooks/README.md; ``--check`` rewrites nothing and
exits 1 naming each block that differs from what its JSON renders, and each number table
typed outside a block (``tests/test_docs.py`` runs it). Each rendered table ends with a
line naming its source, its command and, where it has one, its method list.

Benchmark runs whose folders are git-ignored (``make bench``, the notebooks' full-size runs)
are committed as snapshots under ``benchmarks/results/``: ``--snapshot NAME RUN_FOLDER``
copies what the tables read (rows, models, diagnostics, the configuration) from a run's
``results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
#: the files whose tables are rendered here
DOCUMENTS = ["README.md", "docs/**/*.md", "notebooks/README.md"]
#: a table cell that is a measurement: a number, maybe signed, with a unit or an interval
NUMBER = re.compile(r"^[-+−±]?\d[\d.,]*\s*(%|×|ms|s|min|h|MB|kB|GB)?\s*([\[(±].*)?$")
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


@dataclass(frozen=True)
class Table:
    source: str  # the committed JSON, relative to the repository
    command: str  # the command that writes it
    render: Callable[[dict], list[str]]  # the table's lines (without the source line)
    methods: Callable[[dict], list[str]] | None = None  # the method list, when it has one


def _load(source: str) -> dict:
    return json.loads((ROOT / source).read_text())


# -- the benchmark runs (snapshots of results.json) ----------------------------------------

#: the headline columns: one or two metrics per family
HEADLINE = [
    ("pointing_game", "pointing ↑"),
    ("relevance_mass", "rel. mass ↑"),
    ("deletion_auc", "deletion ↓"),
    ("road", "ROAD ↑"),
    ("sanity_top", "sanity ↓"),
]  # cost: its own page, measured by benchmarks/speed.py on a quiet machine


def _value(row: dict | None, digits: int = 3) -> str:
    if row is None or row.get("value") is None or not math.isfinite(row["value"]):
        return "–"
    text = f"{row['value']:.{digits}f}"
    lo, hi = row.get("ci_low"), row.get("ci_high")
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi) and lo != hi:
        text += f" [{lo:.2f}, {hi:.2f}]"
    return text


def _run_rows(run: dict, dataset: str, seed: int | None = None) -> dict:
    rows: dict = {}
    for r in run["rows"]:
        if r["dataset"] == dataset and (seed is None or r.get("seed") == seed):
            rows.setdefault(r["method"], {})[r["metric"]] = r
    return rows


def headline(dataset: str) -> Callable[[dict], list[str]]:
    def render(run: dict) -> list[str]:
        rows = _run_rows(run, dataset, run["config"]["seed"])
        model = run.get("models", {}).get(dataset, {})
        lines = ["| method | " + " | ".join(label for _, label in HEADLINE) + " |",
                 "|---|" + "---:|" * len(HEADLINE)]  # fmt: skip
        order = [m for m in run["config"]["methods"] if m in rows]
        order += [m for m in rows if m not in order]  # the reference maps
        for method in order:
            cells = [_value(rows[method].get(k)) for k, _ in HEADLINE]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        acc = model.get("accuracy")
        n_test = run["n_test"].get(dataset) if isinstance(run["n_test"], dict) else run["n_test"]
        lines += ["", f"{dataset}, seed {run['config']['seed']}, {n_test} test images, "
                  f"{run['config']['size']} px; mean [95 % bootstrap interval]"
                  + (f"; the SE model's test accuracy {acc:.3f}" if isinstance(acc, float) else "")
                  + ". ↑ higher is better, ↓ lower; `sanity` is the Spearman of a map with "
                  "itself after the top layers are randomised (an explanation of the model "
                  "should change: low is good); rows after `random` are reference maps, not "
                  "methods."]  # fmt: skip
        return lines

    return render


def se_vs_mean(run: dict) -> list[str]:
    lines = ["| dataset | r (SE map, activation-mean map) | Δ pointing | Δ rel. mass | "
             "s range | per-image sd of s | Jaccard of the selections across images |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for key, v in run["se_vs_activation_mean"].items():
        diag = run["se_diagnostics"].get(key, {})
        diag = diag.get("paper", diag.get("all", {}))
        met = v["metrics"]
        lines.append(
            f"| {key} | {v['correlation']['value']:.4f} "
            f"| {_signed(met['pointing_game']['difference'])} "
            f"| {_signed(met['relevance_mass']['difference'])} "
            f"| [{diag.get('s_min', math.nan):.2f}, {diag.get('s_max', math.nan):.2f}] "
            f"| {diag.get('image_std_mean', math.nan):.3f} "
            f"| {diag.get('jaccard_images', math.nan):.2f} |"
        )
    lines += ["", "Per `dataset/seed`: the per-image correlation of the `se` map with "
              "`activation-mean` (the same map with s replaced by ones), and SE − "
              "activation-mean with its 95 % interval."]  # fmt: skip
    return lines


def _signed(d: dict) -> str:
    text = f"{d['value']:+.3f}"
    if d.get("ci_low") is not None:
        text += f" [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
    return text


def _methods(run: dict) -> list[str]:
    return list(run["config"]["methods"])


#: the per-attribute and per-kind metrics a snapshot keeps
ATTRIBUTE_METRICS = {"pointing_game", "frame_pointing_game", "speech_mass", "ablation_visual_drop",
                     "ablation_audio_drop", "fa_visual", "fa_audio"}  # fmt: skip


def snapshot(folder: Path) -> dict:
    """What the tables read of a run's ``results.json``: small enough to commit."""
    run = json.loads((folder / "results.json").read_text())
    keep = ["schema", "datasets", "seed", "n_train", "n_test", "models", "metrics",
            "higher_is_better", "discrimination", "se_vs_activation_mean",
            "se_diagnostics", "skipped", "footing", "pointing_tolerance"]  # fmt: skip
    out = {k: run[k] for k in keep if k in run}
    config = dict(run["config"])
    for k in ("out", "checkpoints", "cells_dir"):
        config.pop(k, None)
    out["config"] = config
    drop = {"per_sample", "samples"}
    out["rows"] = [{k: v for k, v in r.items() if k not in drop} for r in run["rows"]]
    # per attribute (faces) or clip kind (speakers): what the tables show, first seed only
    out["attribute_rows"] = [r for r in run.get("attribute_rows", [])
                             if r["seed"] == config["seed"] and r["metric"] in ATTRIBUTE_METRICS]  # fmt: skip
    return _rounded(out)


def _rounded(x):
    if isinstance(x, float):
        return round(x, 6) if math.isfinite(x) else None
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    return x


def _seeds_text(run: dict, dataset: str) -> str:
    m = run["models"][dataset]
    return (f"test accuracy with SE {m['accuracy_mean']:.3f} ± {m['accuracy_sd']:.3f}, without "
            f"{m['accuracy_without_se_mean']:.3f} ± {m['accuracy_without_se_sd']:.3f} over "
            f"{len(m['seeds'])} seeds")  # fmt: skip


def faces_attributes(run: dict) -> list[str]:
    seed = run["config"]["seed"]
    rows = [r for r in run.get("attribute_rows", [])
            if r["dataset"] == "faces" and r["seed"] == seed and r["metric"] == "pointing_game"]  # fmt: skip
    attrs = list(dict.fromkeys(r["attribute"] for r in rows))
    methods = [m for m in run["config"]["methods"] if any(r["method"] == m for r in rows)]
    value = {(r["method"], r["attribute"]): r for r in rows}
    lines = ["| method | " + " | ".join(a.replace("_", " ") for a in attrs) + " | mean |",
             "|---|" + "---:|" * (len(attrs) + 1)]  # fmt: skip
    for m in methods:
        vals = [value.get((m, a), {}).get("value") for a in attrs]
        finite = [v for v in vals if v is not None and math.isfinite(v)]
        cells = [f"{v:.2f}" if v is not None else "–" for v in vals]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {statistics.fmean(finite):.2f} |")
    pairs = {a: max(r["n"] for r in rows if r["attribute"] == a) for a in attrs}
    lines += ["", f"Pointing game per attribute (seed {seed}; over the test faces that have "
              "the attribute, the attribute as the target; within "
              f"{run.get('pointing_tolerance', {}).get('faces', 0)} px): pairs per attribute "
              + ", ".join(f"{a.replace('_', ' ')} {n}" for a, n in pairs.items())
              + f"; {_seeds_text(run, 'faces')}; 95 % intervals in the run."]  # fmt: skip
    return lines


def faces_bias(run: dict) -> list[str]:
    seed = run["config"]["seed"]
    out = []
    for dname, mo in run["models"].items():
        bias = mo.get("bias")
        if not bias:
            continue
        k = mo["attributes"].index(bias["attribute"])
        reliance = [r["reliance"] for r in mo.get("reliance", {}).values()]
        masses = {r["method"]: r["value"] for r in run["rows"]
                  if r["dataset"] == dname and r["seed"] == seed and r["metric"] == "cue_mass"}  # fmt: skip
        out.append((bias["rho"], bias["attribute"],
                    statistics.fmean(a[k] for a in mo["attribute_accuracy"]["se"]),
                    statistics.fmean(reliance) if reliance else math.nan, masses))  # fmt: skip
    out.sort(key=lambda r: r[0])
    methods = list(dict.fromkeys(m for *_, masses in out for m in masses))
    attribute = out[0][1] if out else "?"
    lines = [f"| ρ | {attribute.replace('_', ' ')} accuracy (decorrelated test) | reliance on "
             "the mark | " + " | ".join(f"mark mass: {m}" for m in methods) + " |",
             "|---:|---:|---:|" + "---:|" * len(methods)]  # fmt: skip
    for rho, _, acc, rel, masses in out:
        cells = [f"{masses[m]:.3f}" if m in masses else "–" for m in methods]
        lines.append(f"| {rho:g} | {acc:.3f} | {rel:.2f} | " + " | ".join(cells) + " |")
    lines += ["", f"A corner mark tied to {attribute.replace('_', ' ')} in training with "
              "strength ρ, independent in the test split; reliance: the share of the faces "
              "where mark and attribute disagree that the model answers as the mark does; "
              f"mark mass: relevance mass on the mark (seed {seed})."]  # fmt: skip
    return lines


SPEAKER_ROWS = [
    ("frame_pointing_game", "per-frame pointing game on the mouth", ("se", "gradcam", "random")),
    ("speech_mass", "speech mass (spectrogram map in the speech segments)",
     ("se", "gradcam", "random")),
    ("cost_ratio", "cost per clip, × a forward pass", ("se", "gradcam")),
]  # fmt: skip


def speakers(run: dict) -> list[str]:
    m = run["models"]["speakers"]
    seeds = sorted({r["seed"] for r in run["rows"] if r["dataset"] == "speakers"})
    value = {(r["seed"], r["method"], r["metric"]): r for r in run["rows"]}
    lines = ["| | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|" + "---:|" * len(seeds)]  # fmt: skip
    maps = dict(zip(m["seeds"], zip(m["map_per_seed"], m["map_without_se_per_seed"],
                                    strict=True), strict=True))  # fmt: skip
    lines.append("| frame mAP with SE / without | "
                 + " | ".join(f"{maps[s][0]:.3f} / {maps[s][1]:.3f}" if s in maps else "–"
                              for s in seeds) + " |")  # fmt: skip
    for metric, label, methods in SPEAKER_ROWS:
        for i, method in enumerate(methods):
            name = f"{label}: {method}" if i == 0 else method
            cells = [_value(value.get((s, method, metric)), 2) for s in seeds]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"{m['n_test']} test clips ({', '.join(f'{v} {k}' for k, v in m['kinds'].items())}); "
              f"frame mAP over {len(m['seeds'])} seeds: {m['map_mean']:.3f} ± {m['map_sd']:.3f} "
              f"with SE, {m['map_without_se_mean']:.3f} ± {m['map_without_se_sd']:.3f} without; "
              "mean [95 % bootstrap interval] per seed."]  # fmt: skip
    return lines


def speaker_kinds(run: dict) -> list[str]:
    seed = run["config"]["seed"]
    kinds = run["models"]["speakers"]["kinds"]
    value = {(r["method"], r["metric"], r["attribute"]): r["value"]
             for r in run.get("attribute_rows", [])
             if r["dataset"] == "speakers" and r["seed"] == seed}  # fmt: skip
    lines = ["| clip kind (clips) | modality ablation: visual / audio | FeatureAblation: visual / "
             "audio | the stream that matters more: ablation / FeatureAblation |",
             "|---|---:|---:|---|"]  # fmt: skip
    for kind, n in kinds.items():
        ab = [value.get(("se", f"ablation_{s}_drop", kind), math.nan) for s in ("visual", "audio")]
        fa = [
            value.get(("feature-ablation", f"fa_{s}", kind), math.nan) for s in ("visual", "audio")
        ]

        def more(pair):
            if not all(math.isfinite(v) for v in pair):
                return "–"
            return "visual" if abs(pair[0]) >= abs(pair[1]) else "audio"

        lines.append(f"| {kind} ({n}) | {ab[0]:+.1f} / {ab[1]:+.1f} | {fa[0]:+.1f} / {fa[1]:+.1f} "
                     f"| {more(ab)} / {more(fa)} |")  # fmt: skip
    lines += ["", f"Seed {seed}: the drop of a clip's mean logit when a stream is removed, by "
              "zeroing its fusion-SE entries below the SE rule's threshold (modality ablation) "
              "or by Captum's `FeatureAblation` with black frames / silent audio; the larger "
              "magnitude is the stream that matters more."]  # fmt: skip
    return lines


# -- the benchmark scripts' JSON ------------------------------------------------------------


def speed(data: dict) -> list[str]:
    configs = list(data)
    short = {c: c.replace("an8flower-cnn", "cnn").replace("resnet18", "r18").replace("batch ", "b")
             for c in configs}  # fmt: skip
    last = configs[-1]
    lines = ["| method | " + " | ".join(f"{short[c]} ×fwd" for c in configs)
             + f" | {short[last]} ms/img | {short[last]} peak MB | memory ÷ Grad-CAM's |",
             "|---|" + "---:|" * (len(configs) + 3)]  # fmt: skip
    for method, m in data[last].items():
        ratios = [f"{data[c][method]['over_forward']:.2f}" if method in data[c] else "–"
                  for c in configs]  # fmt: skip
        lines.append(f"| {method} | " + " | ".join(ratios) + f" | {m['ms_per_image']:.1f} "
                     f"| {m['peak_mb']:.0f} | {m['memory_over_gradcam']:.2f} |")  # fmt: skip
    lines += ["", "Time per image ÷ a plain `no_grad` forward of the same batch (medians of "
              "alternating calls); cnn: the an8Flower SmallCNN at 64 px, r18: torchvision's "
              "resnet18 at 224 px, random weights; b1/b32: batch size."]  # fmt: skip
    return lines


def se_cost(data: dict) -> list[str]:
    lines = ["| model | forward ms | SE ms | SE ÷ forward | SE peak MB | Grad-CAM peak MB | "
             "SE ÷ Grad-CAM memory |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, m in data.items():
        gc = m.get("gradcam_peak_mb")
        ratio = m["se_peak_mb"] / gc if gc else math.nan
        lines.append(f"| {name} | {m['forward_ms']:.1f} | {m['se_ms']:.1f} "
                     f"| {m['time_ratio']:.3f} | {m['se_peak_mb']:.1f} | {gc or math.nan:.1f} "
                     f"| {ratio:.3f} |")  # fmt: skip
    first = next(iter(data.values()))
    lines += ["", f"Time at batch {first['batch']} (median of alternating rounds), the SE map "
              f"with its logits from one forward pass; memory at batch {first['memory_batch']}: "
              "peak of live tensors during one call, against Captum's `LayerGradCam` on the "
              "same layer."]  # fmt: skip
    return lines


def vebi_cost(data: dict) -> list[str]:
    lines = ["| model | forward | guided backprop | VEBI | VEBI without the fix | "
             "VEBI ÷ forward | VEBI ÷ guided backprop |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, m in data.items():
        gbp = m["guided_backprop_ms_per_image"]
        lines.append(f"| {name} | {m['forward_ms_per_image']:.2f} | {gbp:.2f} "
                     f"| {m['vebi_ms_per_image']:.2f} | {m['vebi_nofix_ms_per_image']:.2f} "
                     f"| {m['vebi_over_forward']:.1f} | {m['vebi_ms_per_image'] / gbp:.2f} |")  # fmt: skip
    first = next(iter(data.values()))
    lines += ["", f"ms per image at batch {first['batch']}, random weights; guided backprop: "
              "Captum's `GuidedBackprop`."]  # fmt: skip
    return lines


def bulk(data: dict) -> list[str]:
    t = data["throughput"]
    ips, ratio = t["images_per_second"], t["ratio_to_forward"]
    lines = ["| | images/s | time ÷ a forward pass's |", "|---|---:|---:|",
             f"| plain inference (`no_grad` forward) | {ips['forward']:.0f} | 1 |"]  # fmt: skip
    for m in ("se", "gradcam"):
        lines.append(f"| `{m}` | {ips[m]:.0f} | {ratio[m]:.2f} |")
    ident = data["identity"]
    same = all(ident["identical"].values())
    lines += ["", f"{ident['n']:,} generated an8Flower images at 64 px, batches of 64, "
              f"{data['threads']} threads, median of the runs. Two shards' maps "
              f"{'equal' if same else 'DIFFER from'} the unsharded run's "
              f"({ident['two_shards_seconds']:.0f} s for 2 shards at once against "
              f"{ident['unsharded_seconds']:.0f} s for one process on this machine)."]  # fmt: skip
    return lines


def scale(data: dict) -> list[str]:
    wall = data["wall_hours"]
    lines = [f"| full-size run | CPU hours here | shards that fit {wall:g} h | speed-up with 4 / "
             "16 workers |", "|---|---:|---:|---:|"]  # fmt: skip
    for p in data["plans"]:
        shards = p["shards_for_wall"]
        fit = str(shards) if shards is not None else "none: one unit's training is longer"
        s = p["speedup"]
        lines.append(f"| {p['name']} | {p['cpu_hours']:.1f} | {fit} "
                     f"| {s['4']:.1f}× / {s['16']:.1f}× |")  # fmt: skip
    lines += ["", "Planned from costs measured on this machine (per image and method, per "
              "training image-epoch, per job start); the sizes are the script's assumptions."]  # fmt: skip
    return lines


def vit(data: dict) -> list[str]:
    runs = data["runs"]

    def cell(se: bool, method: str, k: int) -> str:
        v = [r["scores"][method][k] for r in runs if r["se"] is se and method in r["scores"]]
        if not v:
            return "–"
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        return f"{statistics.fmean(v):.3f} ± {sd:.3f}"

    methods = list(dict.fromkeys(m for r in runs for m in r["scores"]))
    lines = ["| | SE ViT: pointing | SE ViT: energy | plain ViT: pointing | plain ViT: energy |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for se in (True, False):
        acc = [r["accuracy"] for r in runs if r["se"] is se]
        if se:
            acc_se = acc
        else:
            a, b = statistics.fmean(acc_se), statistics.fmean(acc)
            lines.append(f"| test accuracy | {a:.3f} | | {b:.3f} | |")
    for m in methods:
        lines.append(f"| `{m}` | {cell(True, m, 0)} | {cell(True, m, 1)} "
                     f"| {cell(False, m, 0)} | {cell(False, m, 1)} |")  # fmt: skip
    seeds = len({r["seed"] for r in runs})
    lines += ["", f"an8Flower single-6c, `squeezex.models.small_vit` (64 px, 8-px patches, 4 "
              f"blocks of width 64), {data['epochs']} epochs, {seeds} seeds: mean ± sd of the "
              "pointing game and the energy pointing game on the leaf masks."]  # fmt: skip
    return lines


def _script(name: str):
    """A benchmark script beside this one, imported by name (its table function)."""
    import importlib

    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(name)


def archs(data: dict) -> list[str]:
    study = _script("archs")  # imports squeezex: only when this table is drawn

    return study.table(data).splitlines()


def se_select(data: dict) -> list[str]:
    sel = _script("se_select")

    return sel.table(data["summary"]) + [
        "", "Mean ± sd over the seeds measured; λ: the weight of the selection penalty "
        "(0: the plain block)."]  # fmt: skip


def commands(data: dict) -> list[str]:
    lines = ["| command | what it does | wall time | measured |", "|---|---|---:|---|"]
    for c in data["runs"]:
        minutes, seconds = divmod(round(c["seconds"]), 60)
        failed = f" (failed: exit {c['status']})" if c["status"] else ""
        lines.append(f"| `{c['command']}` | {c['what']} | {minutes} min {seconds:02d} s{failed} "
                     f"| {c['where']}, commit {c['commit']}, {c['date']} |")  # fmt: skip
    lines += ["", "Wall time on this project's 2-core machine without a GPU, each from a fresh "
              "clone with the environment already built (the first `make` builds it once: "
              "torch and its CUDA libraries are a 3 GB download)."]  # fmt: skip
    return lines


def notebook_times(data: dict) -> list[str]:
    lines = ["| notebook | short (`make test`) | full size (`make test-notebooks`) |",
             "|---|---:|---:|"]  # fmt: skip

    def fmt(s):
        if s is None:
            return "not measured"
        return f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"

    for name, t in data["notebooks"].items():
        lines.append(f"| `{name}` | {fmt(t.get('smoke'))} | {fmt(t.get('full'))} |")
    lines += ["", data["note"]]
    return lines


#: the paper's settings come from the notebooks' full-size runs, snapshotted
NOTEBOOK_RUN = ("pytest --nbval-lax notebooks/{0}.ipynb; python benchmarks/tables.py "
                "--snapshot {1} data/runs/{2}")  # fmt: skip

TABLES: dict[str, Table] = {
    "headline-scenes": Table(
        "benchmarks/results/bench.json",
        "make bench  # squeezex bench --preset full",
        headline("scenes-6c"),
        _methods,
    ),  # fmt: skip
    "headline-an8flower": Table(
        "benchmarks/results/bench.json",
        "make bench  # squeezex bench --preset full",
        headline("an8flower-hard"),
        _methods,
    ),  # fmt: skip
    "se-vs-mean": Table("benchmarks/results/bench.json", "make bench", se_vs_mean),
    "faces-attributes": Table(
        "benchmarks/results/faces.json",
        NOTEBOOK_RUN.format("09_faces", "faces", "faces-notebook"),
        faces_attributes,
        _methods,
    ),  # fmt: skip
    "faces-bias": Table(
        "benchmarks/results/faces-bias.json",
        NOTEBOOK_RUN.format("09_faces", "faces-bias", "faces-bias-notebook"),
        faces_bias,
        _methods,
    ),  # fmt: skip
    "speakers": Table(
        "benchmarks/results/speakers.json",
        NOTEBOOK_RUN.format("10_active_speaker", "speakers", "speakers-notebook"),
        speakers,
        _methods,
    ),  # fmt: skip
    "speaker-kinds": Table(
        "benchmarks/results/speakers.json",
        NOTEBOOK_RUN.format("10_active_speaker", "speakers", "speakers-notebook"),
        speaker_kinds,
    ),  # fmt: skip
    "archs": Table(
        "benchmarks/archs.json",
        "make bench-archs  # python benchmarks/archs.py",
        archs,
        lambda d: list(d["methods"]),
    ),  # fmt: skip
    "se-select": Table("benchmarks/se_select.json", "python benchmarks/se_select.py", se_select),
    "speed": Table(
        "benchmarks/speed.json",
        "python benchmarks/speed.py",
        speed,
        lambda d: [m for m in next(iter(d.values())) if m != "forward"],
    ),  # fmt: skip
    "se-cost": Table("benchmarks/se_cost.json", "python benchmarks/se_cost.py", se_cost),
    "vebi-cost": Table("benchmarks/vebi_cost.json", "python benchmarks/vebi_cost.py", vebi_cost),
    "bulk": Table("benchmarks/bulk_explain.json", "python benchmarks/bulk_explain.py", bulk),
    "scale": Table("benchmarks/scale.json", "python benchmarks/scale.py", scale),
    "vit": Table(
        "benchmarks/vit_an8flower.json",
        "python benchmarks/vit_an8flower.py",
        vit,
        lambda d: list(dict.fromkeys(m for r in d["runs"] for m in r["scores"])),
    ),  # fmt: skip
    "commands": Table("benchmarks/commands.json", "python benchmarks/commands.py", commands),
    "notebook-times": Table(
        "benchmarks/notebook_times.json", "python benchmarks/notebook_times.py", notebook_times
    ),  # fmt: skip
}


def render(name: str) -> str:
    """The block ``name``'s text: its table and the line naming source, command, methods."""
    table = TABLES[name]
    data = _load(table.source)
    lines = table.render(data)
    tail = f"Source: `{table.source}`, written by `{table.command.split('  #')[0]}`"
    if table.methods is not None:
        tail += "; methods: " + ", ".join(f"`{m}`" for m in table.methods(data))
    return "\n".join([*lines, "", tail + ".", ""]) + "\n"


def documents() -> list[Path]:
    found: list[Path] = []
    for pattern in DOCUMENTS:
        found += sorted(p for p in ROOT.glob(pattern) if "notebooks/index.md" not in str(p))
    return found


def typed_tables(text: str) -> list[str]:
    """Markdown table rows with a number, outside every rendered block."""
    outside = BLOCK.sub("", text)
    outside = re.sub(r"```.*?```", "", outside, flags=re.S)
    return [line for line in outside.splitlines()
            if line.lstrip().startswith("|") and any(NUMBER.match(c.strip()) for c in line.split("|"))]  # fmt: skip


def update(check: bool = False, paths: list[Path] | None = None) -> list[str]:
    """Rewrite (or with ``check``, compare) every block of ``paths`` (default: the README,
    the docs and the notebooks' README); returns the problems found."""
    problems = []
    for path in documents() if paths is None else paths:
        text = path.read_text()
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path

        def replace(match: re.Match, where=where) -> str:
            name = match["name"]
            if name not in TABLES:
                problems.append(f"{where}: unknown table {name!r}")
                return match[0]
            if not (ROOT / TABLES[name].source).is_file():
                problems.append(f"{where}: table {name!r}: no {TABLES[name].source} "
                                f"(run `{TABLES[name].command}`)")  # fmt: skip
                return match[0]
            body = render(name)
            if body != match["body"]:
                problems.append(f"{where}: table {name!r} differs from {TABLES[name].source}")
            return match[1] + body + match[4]

        new = BLOCK.sub(replace, text)
        for row in typed_tables(text):
            problems.append(f"{where}: a typed number table: {row[:80]}")
        if not check and new != text:
            path.write_text(new)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    ap.add_argument("--snapshot", nargs=2, metavar=("NAME", "RUN"),
                    help="commit RUN/results.json's tables' part as benchmarks/results/NAME.json")  # fmt: skip
    args = ap.parse_args(argv)
    if args.snapshot:
        name, folder = args.snapshot
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"{name}.json"
        out.write_text(json.dumps(snapshot(Path(folder)), separators=(",", ":")) + "\n")
        print(f"{out.relative_to(ROOT)}: {out.stat().st_size / 1e3:.0f} kB")
        return 0
    problems = update(check=args.check)
    for p in problems:
        print(p)
    if args.check:
        return 1 if problems else 0
    return 1 if any("typed" in p or "unknown" in p for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
