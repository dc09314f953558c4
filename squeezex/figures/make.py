"""Every figure of a run, its LaTeX tables and its captions, into one folder.

:func:`make_figures` asks each (dataset, seed) block's task for its figures
(:attr:`squeezex.bench.tasks.Task.figures`), draws the run-level ones (the bias sweep,
``examples.png``), skips a figure whose inputs the run lacks with the reason, and writes
every file atomically and deterministically. ``squeezex figures --results DIR`` is its
command line.

Example:
    >>> make_figures("data/runs/demo", formats=("pdf", "png"))  # doctest: +SKIP
    >>> summary([Path("out/results.tex"), Path("out/bars-iou.png"), Path("out/bars-iou.pdf")],
    ...         "out")
    'wrote 1 figures (2 files: PDF, PNG) and 1 LaTeX tables to out'
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..bench import CorruptRunError, Run
from ..bench.tables import family_tables, latex_table
from ..bench.tasks import resolve, task_of
from ..io import atomic_write_bytes, atomic_write_text
from ..viz import save_figure
from .bias import bias_curve
from .captions import CAPTIONS_FILE, captions_text

__all__ = ["FORMATS", "make_figures", "task_jobs", "report_skips", "summary"]

log = logging.getLogger(__name__)


#: File formats :func:`make_figures` can write.
FORMATS = ("pdf", "png", "svg")
#: What a figure function raises when the run lacks its inputs (make_figures skips it);
#: a damaged file (CorruptRunError) is never skipped.
_MISSING = (FileNotFoundError, KeyError, ValueError)


def task_jobs(run: Run, dataset: str, seed: int) -> list[tuple]:
    """``(name, draw)`` — or ``(name, draw, format)`` for a figure drawn as the bytes of one
    fixed format (an animated GIF) — for every figure of one (dataset, seed) of the run: the
    figures of the dataset's task (:attr:`squeezex.bench.tasks.Task.figures`; a dataset
    no longer registered is read as a single-label one)."""
    return resolve(task_of(dataset, missing_ok=True).figures)(run, dataset, seed)


def _block_figures(run: Run, dataset: str, seed: int, out: Path, formats, dpi: int,
                   skips: list) -> list[tuple]:  # fmt: skip
    """Every figure of one (dataset, seed) block: ``(name, dataset, seed, files)`` each."""
    suffix = (f"_{dataset}" if len(run.datasets) > 1 else "") + (
        f"_seed{seed}" if len(run.seeds) > 1 else ""
    )
    entries = []
    for name, make, *fixed in task_jobs(run, dataset, seed):
        if fixed:  # bytes of one format, whatever ``formats`` says (an animated GIF)
            data = _draw(f"{name}.{fixed[0]}", suffix, make, skips)
            path = out / f"{name}{suffix}.{fixed[0]}"
            entries.append(
                (name, dataset, seed, [] if data is None else [atomic_write_bytes(path, data)])
            )
            continue
        fig, files = _draw(name, suffix, make, skips), []
        for k, fmt in enumerate(formats if fig is not None else []):
            # a fresh figure per format: saving one format moves the layout a
            # little, and each file must not depend on which were written before
            fig = fig if k == 0 else make()
            files.append(save_figure(fig, out / f"{name}{suffix}.{fmt}", dpi=dpi))
        entries.append((name, dataset, seed, files))
    return entries


def make_figures(
    results_dir: str | Path | Run,
    out_dir: str | Path | None = None,
    formats=("pdf", "png"),
    *,
    dpi: int = 300,
    verbose: bool = True,
) -> list[Path]:
    """Write every figure of a run, and its LaTeX tables, into ``out_dir``.

    Figures (per dataset and seed of the run; file names get ``_<dataset>`` and
    ``_seed<k>`` suffixes only when the run has several): ``qualitative``,
    ``bars-<metric>`` for every metric, ``faithfulness``, ``se-distribution``,
    ``vebi-features``, ``cost-vs-pointing_game``; for a multi-label dataset also
    ``attributes`` (:func:`~squeezex.figures.grids.attribute_grid`), and for a run with
    faces-bias datasets ``bias`` (:func:`~squeezex.figures.bias.bias_curve`, one for the run). An audio-visual dataset (``speakers``)
    gets :func:`squeezex.figures.speakers.speaker_jobs` instead, and ``speaker.gif`` whatever
    ``formats`` says. Tables: ``results.tex`` (every metric) and ``results-<family>.tex``
    (one per metric family, narrow enough for a column). Captions: :data:`~squeezex.figures.captions.CAPTIONS_FILE`,
    one entry per figure written (its files, what it shows with units and directions,
    its dataset and seed) after a header naming the run and its configuration.
    A figure whose inputs the run did not compute is skipped with a logged (and, if
    ``verbose``, printed) reason; a damaged file is an error, never a skip. Every file
    is written atomically and deterministically: the same run gives byte-identical files.

    Args:
        results_dir: the run folder (holding ``results.json``), or its :class:`Run`.
        out_dir: where to write (default ``<results_dir>/figures``).
        formats: any of :data:`FORMATS`.
        dpi: resolution of raster formats.
        verbose: print what is skipped and why.

    Returns:
        The paths written: the tables, the figures in order, the captions file last.

    Raises:
        FileNotFoundError: no run folder or no results in it.
        CorruptRunError: a file of the run is damaged (named).
    """
    formats = _check_formats(formats)
    if isinstance(results_dir, Run):
        run = results_dir
    else:
        root = Path(results_dir)
        if not root.exists():
            raise FileNotFoundError(f"no such folder: {root}")
        run = Run(root)
    out = Path(out_dir) if out_dir is not None else run.root / "figures"
    tables = [atomic_write_text(out / "results.tex", latex_table(run.results))]
    for fam, text in family_tables(run.results).items():
        tables.append(atomic_write_text(out / f"results-{fam}.tex", text))
    entries, skips = [], []  # (name, dataset, seed, files) of every figure; what is skipped
    for dataset, seed in run.blocks():
        entries += _block_figures(run, dataset, seed, out, formats, dpi, skips)
    entries.append(("bias", None, None, _run_figures(run, out, formats, dpi)))
    entries.append(_examples(run, out, skips))
    report_skips(skips, verbose)
    figures = [f for *_, files in entries for f in files]
    captions = atomic_write_text(out / CAPTIONS_FILE, captions_text(run, entries, tables))
    return tables + figures + [captions]


def _check_formats(formats) -> list[str]:
    formats = [formats] if isinstance(formats, str) else list(formats)
    bad = [f for f in formats if f not in FORMATS]
    if not formats or bad:
        raise ValueError(f"unknown format {', '.join(bad) or '(none)'}; choose from {FORMATS}")
    return formats


def _run_figures(run: Run, out: Path, formats, dpi: int) -> list[Path]:
    """The figures that span the run's datasets: the bias sweep (faces-bias datasets)."""
    if not any(m.get("bias") for m in run.results.get("models", {}).values()):
        return []
    return [save_figure(bias_curve(run), out / f"bias.{fmt}", dpi=dpi) for fmt in formats]


def _examples(run: Run, out: Path, skips: list) -> tuple:
    """``examples.png`` (PNG whatever ``formats`` says, at the default resolution), drawn
    for the first block of the run's configuration by its task
    (:attr:`squeezex.bench.tasks.Task.examples`), or nothing (the task has none)."""
    config = run.results.get("config", {})
    dataset = next(
        (d.strip() for d in str(config.get("dataset", "")).split(",") if d.strip()), None
    )
    if dataset is None or not (ref := task_of(dataset, missing_ok=True).examples):
        return ("examples", dataset, None, [])
    seed, n = config.get("seed", 0), config.get("n_examples", 6)
    fig = _draw("examples", "", lambda: resolve(ref)(run, dataset, seed, n), skips)
    return (
        "examples",
        dataset,
        seed,
        [] if fig is None else [save_figure(fig, out / "examples.png")],
    )


def _draw(name: str, suffix: str, make, skips: list):
    """The figure, or ``None`` (the reason added to ``skips``) when the run lacks its
    inputs; a damaged file propagates."""
    try:
        fig = make()
    except CorruptRunError:
        raise
    except _MISSING as exc:
        reason = f"{type(exc).__name__}: {exc.args[0] if exc.args else exc}"
        fig = None
    else:
        reason = "the run has no VEBI interpretation"
    if fig is None:
        skips.append((name, suffix, reason))
    return fig


def report_skips(skips: list[tuple[str, str, str]], verbose: bool) -> None:
    """Print (or log) the skipped figures, one line per figure and reason: a figure
    skipped for the same reason on several datasets or seeds names them in brackets,
    ``skipped road (_faces-bias-0, _faces-bias-90): ValueError: …``."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, suffix, reason in skips:
        groups.setdefault((name, reason), []).append(suffix)
    for (name, reason), suffixes in groups.items():
        where = suffixes[0] if len(suffixes) == 1 else f" ({', '.join(suffixes)})"
        if len(suffixes) == 1 and name.endswith(".gif"):
            name, where = name.replace(".gif", f"{where}.gif"), ""
        if verbose:
            print(f"skipped {name}{where}: {reason}")
        else:
            log.warning("skipped %s%s: %s", name, where, reason)


def summary(written: list[Path], out: str | Path) -> str:
    """What :func:`make_figures` wrote, in two lines: how many figures (and files, by
    format) and tables, the folder, and the captions file."""
    figs = [p for p in written if p.suffix not in (".tex", ".md")]
    tables = sum(p.suffix == ".tex" for p in written)
    formats = ", ".join(sorted({p.suffix.lstrip(".").upper() for p in figs}))
    head = (
        f"wrote {len(dict.fromkeys(p.stem for p in figs))} figures ({len(figs)} files"
        f"{': ' + formats if formats else ''}) and {tables} LaTeX tables to {out}"
    )
    captions = [p for p in written if p.name == CAPTIONS_FILE]
    return head + (f"\ncaptions: {captions[0]}" if captions else "")
