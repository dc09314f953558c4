"""Command line: ``squeezex bench …``, ``squeezex figures …`` (or ``python -m squeezex …``).

Bad arguments exit with status 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {n}")
    return n


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


def _parser() -> argparse.ArgumentParser:
    from .benchmark import DATASETS, DEFAULT_METHODS, FAMILIES
    from .figures import FORMATS as FIGURE_FORMATS

    p = _Parser(prog="squeezex", description="squeezex: SE explanations and their benchmark")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    b = sub.add_parser("bench", help="train, explain, score; print the table and write results")
    b.add_argument(
        "--dataset",
        default="an8flower-single-6c",
        type=_choices(sorted(DATASETS), "dataset"),
        help=f"one or more (comma-separated) of {', '.join(sorted(DATASETS))}",
    )
    b.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated registry names, or 'all' (default: %(default)s)",
    )
    b.add_argument("--seed", type=int, default=0, help="data seed and first training seed")
    b.add_argument(
        "--seeds", type=_positive, default=3, help="training seeds for the accuracy claim"
    )
    b.add_argument("--size", type=_positive, default=64, help="image side in pixels")
    b.add_argument("--n-train", type=_positive, default=None, help="training images per class")
    b.add_argument("--n-test", type=_positive, default=None, help="test images per class")
    b.add_argument("--epochs", type=_positive, default=12)
    b.add_argument(
        "--pool", choices=["max", "avg"], default="max", help="global pooling of the CNN head"
    )
    b.add_argument("--device", default="cpu")
    b.add_argument("--out", default="data/runs/bench", help="output folder")
    b.add_argument(
        "--checkpoints",
        default="data/checkpoints",
        help="checkpoint cache folder ('' to always retrain)",
    )
    b.add_argument(
        "--vebi-mu",
        type=float,
        default=None,
        help="VEBI's L1 budget μ (default: the paper's value for the dataset, 5 on an8Flower)",
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
        help="explain and score this many training seeds' models (seed becomes a table dimension)",
    )
    b.add_argument(
        "--fresh", action="store_true", help="recompute every cell (default: reuse finished ones)"
    )
    b.add_argument("--quiet", action="store_true", help="no progress bars")

    f = sub.add_parser(
        "figures", help="write a benchmark run's paper figures (PDF, PNG) and LaTeX tables"
    )
    f.add_argument("--results", required=True, help="run folder holding results.json")
    f.add_argument("--out", default=None, help="output folder (default: <results>/figures)")
    f.add_argument(
        "--formats",
        default="pdf,png",
        type=_choices(FIGURE_FORMATS, "format"),
        help=f"comma-separated, of {', '.join(FIGURE_FORMATS)} (default: %(default)s)",
    )
    f.add_argument("--dpi", type=_positive, default=300, help="resolution of PNG figures")

    g = sub.add_parser("generate", help="write an an8Flower-style split as PNG folders")
    g.add_argument("--variant", default="single-6c", choices=["single-6c", "double-12c"])
    g.add_argument("--split", default="train", choices=["train", "val", "test"])
    g.add_argument("--n-per-class", type=_positive, default=20)
    g.add_argument("--size", type=_positive, default=112)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True, help="folder; masks go to <out>_MASK")
    return p


def _bench(args) -> int:
    from .benchmark import BenchConfig, format_table, run

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods is empty")
    cfg = BenchConfig(
        dataset=args.dataset,
        methods=methods,
        seed=args.seed,
        seeds=args.seeds,
        size=args.size,
        n_train_per_class=args.n_train,
        n_test_per_class=args.n_test,
        epochs=args.epochs,
        pool=args.pool,
        device=args.device,
        out=args.out,
        checkpoints=args.checkpoints or None,
        vebi_mu=args.vebi_mu,
        families=args.families.split(","),
        explain_seeds=args.explain_seeds,
        resume=not args.fresh,
        progress=not args.quiet,
    )
    results = run(cfg)
    print(format_table(results))
    reused = sum(c["reused"] for c in results["cells"])
    print(
        f"\nwrote {cfg.out}/results.json, results.csv, results.tex, examples.png "
        f"({reused} of {len(results['cells'])} cells reused from an earlier run)"
    )
    return 0


def _figures(args) -> int:
    from pathlib import Path

    from .figures import make_figures

    results = Path(args.results)
    if not results.is_dir():
        raise FileNotFoundError(f"no such folder: {results}")
    out = Path(args.out) if args.out else results / "figures"
    written = make_figures(results, out, formats=args.formats.split(","), dpi=args.dpi)
    for p in written:
        print(p)
    print(f"wrote {len(written)} files to {out}")
    return 0


def _generate(args) -> int:
    from pathlib import Path

    from PIL import Image

    from .datasets import An8Flower

    ds = An8Flower(
        args.variant, args.split, n_per_class=args.n_per_class, size=args.size, seed=args.seed
    )
    out = Path(args.out)
    mask_out = Path(str(out) + "_MASK")
    for i in range(len(ds)):
        cls = ds.classes[int(ds.targets[i])].replace(" ", "_").replace("+", "and")
        for root, arr in (
            (out, ds.images[i].permute(1, 2, 0).numpy()),
            (mask_out, ds.masks[i, 0].numpy().astype("uint8") * 255),
        ):
            (root / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / cls / f"{args.split}_{i:05d}.png")
    print(f"wrote {len(ds)} images to {out} and masks to {mask_out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return {"bench": _bench, "figures": _figures, "generate": _generate}[args.command](args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"squeezex: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
