"""`python -m tunefleet.experiments.benchmarks search [--trials N] [--seeds N] [--json FILE]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tunefleet.experiments.benchmarks import search_quality


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tunefleet.experiments.benchmarks")
    sub = parser.add_subparsers(dest="case", required=True)
    search = sub.add_parser("search", help="search quality: median regret on known functions")
    search.add_argument("--trials", type=int, default=100)
    search.add_argument("--seeds", type=int, default=5)
    search.add_argument("--searchers", default=",".join(search_quality.SEARCHERS))
    search.add_argument("--functions", default="branin,hartmann6")
    search.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    rows = search_quality.run(
        args.searchers.split(","), args.functions.split(","), args.trials, args.seeds
    )
    print(search_quality.markdown(rows, args.seeds))
    if args.json:
        args.json.write_text(json.dumps({"search_quality": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
