"""Command line: ``squeezex bench …``, ``squeezex explain …``, ``squeezex squeeze …``,
``squeezex figures …``, ``squeezex generate …`` (or ``python -m squeezex …``).

Every user error — a bad argument, an output folder that is a file or not writable, an
unknown device, a run folder that is empty or damaged — exits with status 2 and one line
that says what is wrong (``SQUEEZEX_DEBUG=1`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

__all__ = ["main"]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help lines wrapped between words only (never inside ``activation-mean``)."""

    def _split_lines(self, text, width):
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _at_least(least: int):
    """An argparse type: a whole number >= ``least``."""

    def parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from None
        if n < least:
            raise argparse.ArgumentTypeError(f"expected a number >= {least}, got {n}")
        return n

    return parse


_positive, _natural = _at_least(1), _at_least(0)


def _choices(allowed, what: str):
    def parse(v: str) -> str:
        items = [x.strip() for x in v.split(",") if x.strip()]
        bad = [x for x in items if x not in allowed]
        if not items or bad:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {', '.join(bad) or repr(v)} (choose from {', '.join(allowed)})"
            )
        return ",".join(items)

    return parse


def _bench_parser(b) -> argparse.ArgumentParser:
    from .bench import DEFAULT_DATASETS, DEFAULT_METHODS
    from .bench.presets import list_presets
    from .datasets import list_datasets
    from .explainers import list_explainers

    presets = list_presets()
    b.add_argument(
        "--preset", choices=list(presets), default=None,
        help="start from a named configuration, then apply the options given: "
        + "; ".join(f"{k}: {v}" for k, v in presets.items())
        + " (default: none; the options below)",
    )  # fmt: skip
    datasets = list_datasets()
    b.add_argument(
        "--dataset",
        default=DEFAULT_DATASETS,
        type=_choices(datasets, "dataset"),
        help=f"one or more (comma-separated) of {', '.join(datasets)} "
        f"(default: {DEFAULT_DATASETS.replace(',', ', ')})",
    )
    b.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated, or 'all'; registered: {', '.join(list_explainers())} "
        f"(default: {', '.join(DEFAULT_METHODS)})",
    )
    b.add_argument(
        "--seed", type=_natural, default=0,
        help="the data seed (which images are generated) and the first training seed: the "
        "models are trained with seeds SEED, SEED+1, ... (default: %(default)s)",
    )  # fmt: skip
    b.add_argument(
        "--seeds", type=_positive, default=3,
        help="how many training seeds: models with and without SE trained per seed, for the "
        "accuracy claim (default: %(default)s)",
    )  # fmt: skip
    b.add_argument("--size", type=_positive, default=64, help="image side in pixels (default: 64)")
    per = " images per class (faces, speakers: in all; default: the dataset's)"
    b.add_argument("--n-train", type=_positive, default=None, help="training" + per)
    b.add_argument("--n-test", type=_positive, default=None, help="test" + per)
    b.add_argument(
        "--epochs", type=_positive, default=12,
        help="training epochs, where the dataset sets none (default: %(default)s)",
    )  # fmt: skip
    b.add_argument(
        "--pool", choices=["max", "avg"], default="max",
        help="global pooling of the CNN head (default: %(default)s)",
    )  # fmt: skip
    b.add_argument("--device", default="cpu", help="cpu, cuda, cuda:<i> or mps (default: cpu)")
    _bench_model_options(b)
    return _bench_run_options(b)


def _bench_model_options(b) -> None:
    """Which architecture a run trains, or which checkpoint and folder it scores."""
    from .models.archs import get_arch, list_archs

    archs = "; ".join(f"{k}: {get_arch(k).description}" for k in list_archs())
    m = b.add_argument_group("your model, your data")
    m.add_argument(
        "--arch", default="small", type=_choices(list_archs(), "architecture"),
        help=f"the architecture trained with and without SE ({archs}) (default: %(default)s)",
    )  # fmt: skip
    m.add_argument(
        "--model", default=None,
        help="score this checkpoint (squeezex squeeze's or the benchmark's) instead of "
        "training: one seed, no model without SE (default: train --arch)",
    )  # fmt: skip
    m.add_argument(
        "--data", default=None,
        help="your image folder (<class>/<image>) instead of --dataset: a fifth of each class "
        "is test; masks in <data>_MASK/<class>/<image>.png turn on localisation (default: "
        "--dataset)",
    )  # fmt: skip


def _bench_run_options(b) -> argparse.ArgumentParser:
    """Where a run writes, what it scores, what it reuses."""
    from .bench import FAMILIES

    b.add_argument("--out", default="data/runs/bench", help="output folder (default: %(default)s)")
    b.add_argument(
        "--checkpoints",
        default="data/checkpoints",
        help="checkpoint cache folder, '' to always retrain (default: %(default)s)",
    )
    b.add_argument(
        "--vebi-mu",
        type=_greater_than(0),
        default=None,
        help="VEBI's L1 budget μ (default: the dataset's, 5 on an8Flower)",
    )
    b.add_argument(
        "--families",
        default=",".join(FAMILIES),
        type=_choices(FAMILIES, "metric family"),
        help="comma-separated metric families (default: all)",
    )
    b.add_argument(
        "--explain-seeds",
        type=_positive,
        default=1,
        help="how many of the trained SE models (the first seeds) to explain and score; above "
        "1 the seed is a dimension of the tables (default: %(default)s)",
    )
    b.add_argument(
        "--fresh", action="store_true", help="recompute everything this configuration wrote"
    )
    b.add_argument(
        "--replace", action="store_true",
        help="delete the cells another configuration (other settings) wrote in --out and run "
        "this one there (without it such a folder is refused: a folder holds one "
        "configuration; give another --out to keep both)",
    )  # fmt: skip
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    return b


def _shard_options(b, command: str) -> None:
    """Sharding and submission (``bench`` and ``explain``)."""
    g = b.add_argument_group(
        "sharding and clusters",
        "split the work into N shards: run one here (--shard), or submit them all as one job "
        "array (--submit) and wait; inside a Slurm array task I/N come from "
        "SLURM_ARRAY_TASK_ID/COUNT",
    )
    g.add_argument(
        "--shard", default=None, metavar="I/N",
        help="run only shard I (from 0) of N; the tables come from --reduce afterwards "
        "(default: everything, or the Slurm array task's shard)",
    )  # fmt: skip
    if command == "bench":
        g.add_argument(
            "--reduce", action="store_true",
            help="assemble the tables of a sharded run from its cells (names what is missing)",
        )  # fmt: skip
    g.add_argument(
        "--submit", choices=["slurm", "local"], default=None,
        help="submit every shard as one job array through submitit (local: processes here), "
        "report each as it ends, then reduce (default: run here)",
    )  # fmt: skip
    g.add_argument(
        "--shards", type=_positive, default=None,
        help="N for --submit (default: bench, one per (dataset, training seed); explain, 2)",
    )  # fmt: skip
    g.add_argument("--partition", default=None, help="Slurm partition (default: the cluster's)")
    g.add_argument(
        "--time", default="60", help="each job's time limit: minutes or [D-]HH:MM:SS (default: 60)"
    )
    g.add_argument("--gpus", type=_natural, default=0, help="GPUs per job (default: 0)")
    g.add_argument("--cpus-per-task", type=_positive, default=1, help="CPUs per job (default: 1)")
    g.add_argument(
        "--array-parallelism", type=_positive, default=None, metavar="K",
        help="run at most K jobs at once (default: all)",
    )  # fmt: skip


def _explain_parser(e) -> argparse.ArgumentParser:
    e.add_argument("--model", required=True, help="a checkpoint the benchmark wrote (.pt)")
    e.add_argument(
        "--data", required=True,
        help="an image folder or a single-label dataset name; a folder with class "
        "sub-folders is read by class (<class>/.../<image>, as torchvision's ImageFolder; "
        "images at its top level are left out, with a warning), a folder with none is "
        "read flat",
    )  # fmt: skip
    e.add_argument(
        "--flat", action="store_true",
        help="read every image under --data, recursively, without classes (unlabelled)",
    )  # fmt: skip
    e.add_argument("--methods", default="se,gradcam", help="comma-separated (default: %(default)s)")
    e.add_argument("--out", required=True, help="output folder (maps, index.json)")
    e.add_argument("--batch-size", type=_positive, default=64, help="default: %(default)s")
    e.add_argument(
        "--workers", type=_natural, default=0, help="data-loading processes (default: 0)"
    )
    e.add_argument("--device", default="cpu", help="default: %(default)s")
    e.add_argument("--size", type=_positive, default=None, help="image side (default: the model's)")
    e.add_argument(
        "--target", choices=["predicted", "label"], default="predicted",
        help="the class each map explains (default: %(default)s)",
    )  # fmt: skip
    g = e.add_argument_group("a dataset name as --data (generated, like squeezex generate)")
    g.add_argument("--split", default="test", choices=["train", "test"], help="default: test")
    g.add_argument("--n-per-class", type=_positive, default=None, help="default: the dataset's")
    g.add_argument("--seed", type=_natural, default=0, help="the data seed (default: 0)")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    return e


def _floats(v: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in v.split(","))
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(x) for x in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {v!r}")
    return values


def _greater_than(least: float):
    """An argparse type: a finite number > ``least`` (never nan or inf)."""

    def parse(v: str) -> float:
        try:
            f = float(v)
        except ValueError:
            f = math.nan
        if not math.isfinite(f) or not f > least:
            raise argparse.ArgumentTypeError(f"expected a finite number > {least:g}, got {v!r}")
        return f

    return parse


def _fraction(v: str) -> float:
    try:
        f = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {v!r}") from None
    if not 0 < f < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {f}")
    return f


def _nonnegative(v: str) -> float:
    try:
        f = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v!r}") from None
    if not (f >= 0 and math.isfinite(f)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {f}")
    return f


def _squeeze_parser(q) -> None:
    from .models import IMAGENET_MEAN, IMAGENET_STD
    from .models.se import GATES
    from .squeezing import DEFAULT_LR, TRAIN

    q.add_argument(
        "--arch", required=True,
        help="a torchvision builder (resnet50, convnext_tiny, vit_b_16 …) or timm:<name> "
             "(pip install 'squeezex[timm]')",
    )  # fmt: skip
    q.add_argument("--weights", default=None, help="the model's state dict (.pt); default: random")
    q.add_argument(
        "--data", required=True, help="training images: an ImageFolder (<class>/<image>)"
    )
    q.add_argument(
        "--val", default=None,
        help="validation images (ImageFolder, the same classes; default: --val-split of --data)",
    )  # fmt: skip
    q.add_argument(
        "--val-split", type=_fraction, default=0.2,
        help="without --val: this share of --data, drawn with --seed (default: %(default)s)",
    )  # fmt: skip
    q.add_argument("--out", required=True, help="the checkpoint to write (.pt)")
    q.add_argument("--size", type=_positive, default=224, help="image side (default: %(default)s)")
    q.add_argument(
        "--mean", type=_floats, default=IMAGENET_MEAN,
        help="the model's input normalisation, per channel (default: ImageNet's)",
    )  # fmt: skip
    q.add_argument("--std", type=_floats, default=IMAGENET_STD, help="(default: ImageNet's)")
    q.add_argument(
        "--no-normalize", action="store_true", help="the model takes pixels in [0, 1] as they are"
    )
    q.add_argument(
        "--train", choices=TRAIN, default="se",
        help="what is trained; the rest stays frozen (default: %(default)s)",
    )  # fmt: skip
    q.add_argument(
        "--gate", choices=GATES[1:], default="normalised",
        help="how the SE vector scales the features: s/mean(s) or 2s (default: %(default)s)",
    )  # fmt: skip
    q.add_argument("--epochs", type=_positive, default=5, help="default: %(default)s")
    lrs = ", ".join(f"{v:g} ({k})" for k, v in DEFAULT_LR.items())
    q.add_argument("--lr", type=_greater_than(0), default=None, help=f"default: {lrs}")
    q.add_argument("--layer", default=None, help="the SE block's layer (default: found)")
    q.add_argument("--batch-size", type=_positive, default=32, help="default: %(default)s")
    q.add_argument("--seed", type=_natural, default=0, help="default: %(default)s")
    q.add_argument(
        "--select", type=_nonnegative, default=0.0,
        help="beyond the paper: weight of a penalty on the entropy of s / sum(s), asking the "
        "SE vector to select channels (default: 0, the plain block)",
    )  # fmt: skip
    q.add_argument("--device", default="cpu", help="default: %(default)s")
    q.add_argument("--quiet", action="store_true", help="no progress bars")


def _figures_parser(f) -> None:
    from .figures import FORMATS

    f.add_argument("--results", required=True, help="run folder holding results.json")
    f.add_argument("--out", default=None, help="output folder (default: <results>/figures)")
    f.add_argument(
        "--formats",
        default="pdf,png",
        type=_choices(FORMATS, "format"),
        help=f"comma-separated, of {', '.join(FORMATS)} (default: %(default)s)",
    )
    f.add_argument(
        "--dpi", type=_positive, default=300, help="resolution of PNG figures (default: 300)"
    )


def _generate_parser(g) -> None:
    from .bench.tasks import task_datasets

    datasets = task_datasets(class_folders=True)  # multi-label, audio-visual: no class folders
    g.add_argument(
        "--dataset",
        default=datasets[0],
        choices=datasets,
        help="a registered single-label dataset (default: %(default)s)",
    )
    g.add_argument(
        "--split",
        default="train",
        choices=["train", "test"],
        help="which split (default: %(default)s)",
    )
    g.add_argument(
        "--n-per-class", type=_positive, default=20, help="images per class (default: %(default)s)"
    )
    g.add_argument(
        "--size", type=_positive, default=112, help="image side in pixels (default: %(default)s)"
    )
    g.add_argument("--seed", type=_natural, default=0, help="the data seed (default: %(default)s)")
    g.add_argument("--out", required=True, help="folder; masks go to <out>_MASK")


#: command → (its one-line help, what adds its options). Only the command being run gets
#: its options (they import the registries, and so torch): ``squeezex --help`` stays fast.
_COMMANDS = {
    "bench": (
        "train, explain, score; print the table and write results",
        lambda b: _shard_options(_bench_parser(b), "bench"),
    ),
    "explain": (
        "explain every image of a folder or dataset with a checkpoint's model; maps as uint8",
        lambda e: _shard_options(_explain_parser(e), "explain"),
    ),
    "squeeze": (
        "attach an SE block to a trained model as the identity, train it, write a checkpoint",
        lambda q: _squeeze_parser(q),
    ),
    "figures": (
        "write a benchmark run's paper figures (PDF, PNG) and LaTeX tables",
        lambda f: _figures_parser(f),
    ),
    "generate": (
        "write a generated dataset split as PNG folders",
        lambda g: _generate_parser(g),
    ),
}

EXAMPLES = """examples:
  squeezex bench --dataset an8flower-single-6c --methods se,gradcam,random --out data/runs/mine
  squeezex figures --results data/runs/mine
  squeezex explain --model data/checkpoints/<model>.pt --data <image folder> --out data/maps/mine
  squeezex squeeze --arch resnet50 --weights my.pt --data <image folder> --out squeezed.pt
  squeezex generate --dataset an8flower-single-6c --split test --out data/an8flower/test
  squeezex bench --help   (every option of one command, with its default)
"""


def _parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(
        prog="squeezex", description="squeezex: SE explanations and their benchmark",
        epilog=EXAMPLES, formatter_class=_Formatter,
    )  # fmt: skip
    p.add_argument("--version", action="version", version=f"squeezex {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    argv = sys.argv[1:] if argv is None else argv
    wanted = next((a for a in argv if not a.startswith("-")), None)
    p.commands = {}
    for name, (text, add_options) in _COMMANDS.items():
        command = sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)
        if name == wanted:
            add_options(command)
        p.commands[name] = command
    return p


def _given(argv: list[str], command: str) -> set[str]:
    """The options of ``command`` that ``argv`` sets (argparse's own matching, so an
    abbreviation counts): parsed again with every default suppressed."""
    p = _parser(argv)
    for action in p.commands[command]._actions:
        action.default = argparse.SUPPRESS
    return set(vars(p.parse_args(argv))) - {"command"}


#: bench options whose BenchConfig field has another name
_FIELDS = {"n_train": "n_train_per_class", "n_test": "n_test_per_class"}


def _cluster_options(args) -> dict:
    return {
        "partition": args.partition,
        "time": args.time,
        "gpus": args.gpus,
        "cpus_per_task": args.cpus_per_task,
        "array_parallelism": args.array_parallelism,
    }


def _bench_config(args):
    """The run's BenchConfig: the options, or the preset with the options given on top."""
    from .bench import BenchConfig, preset

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods is empty")
    fields = dict(
        dataset=args.dataset, methods=methods, seed=args.seed, seeds=args.seeds,
        size=args.size, n_train=args.n_train, n_test=args.n_test, epochs=args.epochs,
        pool=args.pool, device=args.device, out=args.out,
        checkpoints=args.checkpoints or None, vebi_mu=args.vebi_mu,
        families=args.families.split(","), explain_seeds=args.explain_seeds,
        arch=args.arch, model=args.model, data=args.data,
    )  # fmt: skip
    if args.data is not None and "dataset" in getattr(args, "given", ()):
        raise ValueError("give --data (your folder) or --dataset (a registered one), not both")
    if args.preset:
        fields = {k: v for k, v in fields.items() if k in args.given}
    fields = {_FIELDS.get(k, k): v for k, v in fields.items()}
    fields.update(resume=not args.fresh, replace_other=args.replace, progress=not args.quiet)
    return preset(args.preset, **fields) if args.preset else BenchConfig(**fields)


def _bench(args) -> int:
    from .bench import (
        format_table,
        parse_shard,
        reduce,
        run,
        run_shard,
        shard_from_env,
        submit,
    )
    from .bench.submit import describe

    cfg = _bench_config(args)
    if args.submit and (args.shard or args.reduce):
        raise ValueError("--submit runs every shard and reduces: drop --shard/--reduce")
    if args.reduce:
        results = reduce(cfg)
    elif args.submit:
        results = submit(cfg, args.shards, cluster=args.submit, **_cluster_options(args))
    elif shard := (parse_shard(args.shard) if args.shard else shard_from_env()):
        marker = run_shard(cfg, *shard)
        print(
            f"shard {marker['shard']} of {cfg.out}: {describe(marker['cells'])}. "
            "When every shard has finished: squeezex bench <same options> --reduce"
        )
        return 0
    else:
        results = run(cfg)
    print(format_table(results))
    reused = sum(c.get("reused", False) for c in results["cells"])
    written = ["results.json", "results.csv", "results.tex"]
    root = Path(cfg.out)
    written += [f for f in ("results-attributes.csv",) if (root / f).is_file()]
    print(
        f"\nwrote {cfg.out}/{', '.join(written)} "
        f"({reused} of {len(results['cells'])} cells reused from an earlier run)"
    )
    return 0


def _explain_job(args):
    from .bench.bulk import ExplainJob

    return ExplainJob(
        model=args.model, data=args.data, out=args.out, batch_size=args.batch_size,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        workers=args.workers, device=args.device, size=args.size, split=args.split,
        n_per_class=args.n_per_class, seed=args.seed, target=args.target, progress=not args.quiet,
        flat=args.flat,
    )  # fmt: skip


def _explain(args) -> int:
    from .bench import parse_shard, shard_from_env
    from .bench.bulk import explain_shard, rank_from_env, submit_explain

    job = _explain_job(args)
    if args.submit:
        if args.shard:
            raise ValueError("--submit runs every shard: drop --shard")
        rates = submit_explain(job, args.shards or 2, cluster=args.submit, **_cluster_options(args))
        for m, r in rates.items():
            print(f"{m}: {r:.0f} images/s (over every shard's explaining time)")
    else:
        shard = parse_shard(args.shard) if args.shard else shard_from_env() or rank_from_env()
        i, n = shard or (0, 1)
        result = explain_shard(job, i, n)
        a, b = result["range"]
        for m, r in result["methods"].items():
            how = "reused (intact)" if r["reused"] else (
                f"{r['images']} images in {r['seconds']:.1f} s = {r['images_per_second']:.0f} images/s"
            )  # fmt: skip
            print(f"{m} [{a}:{b}) of shard {i}/{n}: {how}")
    print(
        f"wrote {args.out}/index.json; read the maps with squeezex.bench.bulk.ExplainedMaps({args.out!r})"
    )
    return 0


def _squeeze_job(args):
    from .bench.config import check_device
    from .bench.squeeze_job import SqueezeJob

    check_device(args.device)
    return SqueezeJob(
        arch=args.arch, data=args.data, out=args.out, weights=args.weights, val=args.val,
        val_split=args.val_split, size=args.size,
        mean=None if args.no_normalize else args.mean, std=None if args.no_normalize else args.std,
        train=args.train, gate=args.gate, epochs=args.epochs, lr=args.lr, layer=args.layer,
        batch_size=args.batch_size, seed=args.seed, device=args.device, progress=not args.quiet,
        select=args.select,
    )  # fmt: skip


def _squeeze(args) -> int:
    from .bench.squeeze_job import run_squeeze

    path, report = run_squeeze(_squeeze_job(args))
    print(report)
    print(
        f"wrote {path}; explain with: squeezex explain --model {path} --data <folder> --out <maps>"
    )
    return 0


def _figures(args) -> int:
    from pathlib import Path

    from .bench import Run
    from .figures import make_figures, summary
    from .io import ensure_folder

    results = Path(args.results)
    if not results.is_dir():
        raise FileNotFoundError(f"no such folder: {results}")
    out = Path(args.out) if args.out else results / "figures"
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} is a file, not a folder")
    run = Run(results)  # checked before anything is written
    out = ensure_folder(out)
    written = make_figures(run, out, formats=args.formats.split(","), dpi=args.dpi)
    print(summary(written, out))
    return 0


def _generate(args) -> int:
    from .datasets import get_dataset, write_folders
    from .io import ensure_folder

    ensure_folder(args.out)
    spec = get_dataset(args.dataset)
    ds = spec.build(args.split, n_per_class=args.n_per_class, size=args.size, seed=args.seed)
    out, masks = write_folders(ds, args.out, prefix=f"{args.split}_")
    print(f"wrote {len(ds)} images to {out} and masks to {masks}")
    return 0


def _one_line(message, category, filename, lineno, line=None, _default=None) -> str:
    """squeezex's own warnings (damaged run files, non-finite maps) as one line each."""
    if category.__module__.startswith("squeezex"):
        return f"squeezex: {category.__name__}: {message}\n"
    return _default(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    import functools
    import warnings

    parser = _parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "preset", None) or (args.command == "bench" and args.data):
        args.given = _given(sys.argv[1:] if argv is None else argv, args.command)
    commands = {"bench": _bench, "explain": _explain, "squeeze": _squeeze, "figures": _figures,
                "generate": _generate}  # fmt: skip
    command = commands[args.command]
    default = warnings.formatwarning
    warnings.formatwarning = functools.partial(_one_line, _default=default)
    try:
        return command(args)
    except Exception as exc:  # what a user can get wrong, in one line; never a bare KeyError
        from .bench.submit import ShardsFailedError

        if not isinstance(exc, (ValueError, OSError, ShardsFailedError)):
            raise
        if os.environ.get("SQUEEZEX_DEBUG"):
            raise
        print(f"squeezex: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = default


if __name__ == "__main__":
    sys.exit(main())
