"""``sphinx-demo``: run the recipe (stage 1 real / synthetic, mix, stage 2, eval, apps) and
write OUT/report.md, OUT/report.html, OUT/results.json and OUT/pictures/."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version

from .._house import run_cli

PROG = "sphinx-demo"

EPILOG = """examples:
  sphinx-demo                                 # the full run (about 10 minutes on 2 cores)
  sphinx-demo --quick --out /tmp/demo-quick   # about 2 minutes: the same stages, fewer steps
  sphinx-demo --seed 3 --threads 4 --out demo-seed3 --overwrite

Open OUT/report.html (or OUT/report.md). OUT/results.json holds every figure; for one
--seed (and --threads) the figures are the same on every run, the seconds are not.
Needs sphinx-train: pip install 'sphinx-apps[sphinx]'."""


def _count(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= {low}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The SPHINX recipe on synthetic scenes with the nano model: no weights, no "
        "data, CPU only. Trains stage 1 on real-style then synthetic-style captions (with "
        "text-only rows), mixes the two models, trains stage 2 on REC / REG / detection / VQA / "
        "grounded captions, evaluates held-out scenes against baselines, removes a referred "
        "object (ground -> GrabCut -> Telea), and writes a report.",
    )
    parser.add_argument("--out", default="sphinx-demo-report", metavar="DIR",
                        help="folder to write (default: %(default)s); refused if it exists "
                        "unless --overwrite; nothing is left there if the run is stopped")
    parser.add_argument("--quick", action="store_true",
                        help="a ~2-minute run with few steps (for CI): mechanics, not accuracy")
    parser.add_argument("--seed", type=lambda t: _count(t, 0), default=0,
                        help="seed of training and held-out scenes (default: %(default)s)")
    parser.add_argument("--threads", type=lambda t: _count(t, 1), default=2,
                        help="torch CPU threads (default: %(default)s, the 2 cores the bar "
                        "is stated for)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out written by sphinx-demo")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('sphinx-apps')}")
    return parser


def _run(args: argparse.Namespace) -> int:
    from .._extras import require

    require("sphinx_train", "sphinx", PROG)
    from .report import summary
    from .run import run_demo

    results = run_demo(args.out, quick=args.quick, seed=args.seed, threads=args.threads,
                       overwrite=args.overwrite)
    print(summary(results))
    print(f"report: {args.out}/report.html (and report.md, results.json, pictures/)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The console script: exit 0 done, 1 one-line error, 2 bad usage, 130 interrupted."""
    from .._extras import MissingExtraError

    args = build_parser().parse_args(argv)
    expected = (ValueError, OSError, MissingExtraError)
    return run_cli(PROG, lambda: _run(args), expected)


if __name__ == "__main__":
    sys.exit(main())
