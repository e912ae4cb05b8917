"""Print the README's results table from `benchmarks/results/*.json` (the last run of each script).

    .venv/bin/python benchmarks/summary.py [--results DIR]

One line per measurement: the median, its unit, the load average when it was taken, and the
date and command of the run it came from; the photo API rows also give p50/p99 and the ratio to
the in-process pipeline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS_DIR  # noqa: E402

SCRIPTS = ("photo_inprocess", "photo_http", "risk_http", "risk_inprocess", "training_and_sizes", "load_mixed")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of results JSON files")
    parser.add_argument("--names", nargs="+", default=list(SCRIPTS), help="results files to include, in order")
    return parser


def detail(row: dict) -> str:
    parts = []
    if "p50_ms" in row:
        parts.append(f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms")
    if row.get("ratio_to_inprocess") is not None:
        parts.append(f"{row['ratio_to_inprocess']}x in-process")
    if row.get("failed"):
        parts.append(f"{row['failed']} failed {row.get('failed_status')}")
    if "enterprises_per_s" in row:
        parts.append(f"{row['enterprises_per_s']} enterprises/s")
    return "; ".join(parts)


def table(results: Path, names: list[str]) -> str:
    lines = ["| script | measurement | median | unit | detail | load 1 min |", "|:--|:--|--:|:--|:--|--:|"]
    sources = []
    for name in names:
        path = results / f"{name}.json"
        if not path.is_file():
            continue
        payload = json.loads(path.read_text())
        sources.append(f"- `{name}`: {payload.get('date')}, `{payload.get('command')}`, commit {payload.get('commit')}")
        for row in payload.get("measurements", []):
            load = row.get("load", ["?"])[0]
            lines.append(f"| {name} | {row['name']} | {row['median']:.4g} | {row['unit']} | {detail(row)} | {load} |")
    return "\n".join(lines + ["", *sources])


def main(args: argparse.Namespace) -> int:
    print(table(args.results, args.names))
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
