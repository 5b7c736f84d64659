#!/usr/bin/env python
"""Reproduce every experiment of the learning-rate chapter in MXNet,
PyTorch and TensorFlow, and write the figures.

    python examples/run_chapter.py            # as the chapter: Fashion-MNIST,
                                              # 30 epochs, every framework
    python examples/run_chapter.py --data digits --epochs 5 \\
        --frameworks pytorch,keras --out out/quick

The experiments are the chapter's own code cells
(``examples/lr_scheduling.md``), run cell by cell in each framework by
:func:`unisched.app.chapter.run_chapter`; nothing is re-implemented here.
Written into ``--out``:

* ``figures/<framework>-cellNN-J.png``: every figure the chapter draws
  (schedule curves, each run's train loss / train acc / test acc, the
  one-cycle rate and momentum, the finder's curve);
* ``figures/schedules.png``: the rate of every update of every policy;
* ``figures/policy-<name>.png``: per policy, the rate per update and the
  train loss, train accuracy and test accuracy per epoch, one line per
  framework;
* ``results.json`` (every recorder), ``summary.md`` (final metrics);
* ``report.md`` with ``--report``: the chapter rendered with all of it
  (what ``unisched chapter`` writes).

Fashion-MNIST is downloaded on first use; without network access use
``--data digits`` (bundled with scikit-learn).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from unisched.app.chapter import FRAMEWORKS, ChapterError
from unisched.app.cli import positive_int
from unisched.app.data import DATASET_NAMES, DatasetUnavailableError
from unisched.app.report import (
    comparison_figures,
    run_chapter,
    summary_table,
    write_report,
    write_results,
    write_summary,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run the learning-rate chapter's experiments in every "
                    "framework and write the figures.")
    parser.add_argument("--data", default="fashion-mnist",
                        choices=DATASET_NAMES,
                        help="data set (default: the chapter's "
                             "fashion-mnist)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs per run (default: the chapter's 30)")
    parser.add_argument("--frameworks", default=None,
                        help=f"comma list of {', '.join(FRAMEWORKS)} "
                             f"(torch, keras also work; default: every "
                             f"installed one)")
    parser.add_argument("--out", default="out/chapter",
                        help="output directory (default: out/chapter)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="keep the first N train and N test images")
    parser.add_argument("--num-it", type=positive_int, default=None,
                        help="updates of the learning-rate finder "
                             "(default: the chapter's 100; at least 6)")
    parser.add_argument("--report", action="store_true",
                        help="also write report.md (the rendered chapter)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = None if args.quiet else print
    try:
        run = run_chapter(args.out, args.data, args.epochs, args.frameworks,
                          limit=args.limit, num_it=args.num_it, log=log)
    except ChapterError as err:
        print(f"run_chapter: {err}", file=sys.stderr)
        if isinstance(err.__cause__, DatasetUnavailableError):
            print("run_chapter: no copy of the data set could be had; "
                  "try --data digits", file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"run_chapter: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    figures = comparison_figures(run, out)
    written = [path for _, path in figures]
    written.append(write_results(run, out))
    written.append(write_summary(run, out))
    if args.report:
        written.append(write_report(run, figures, out))
    cell_figures = sum(len(o.figures) for r in run.runs.values()
                       for o in r.outputs)
    print(summary_table(run))
    print(f"wrote {cell_figures} cell figures under {out / 'figures'}, and")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
