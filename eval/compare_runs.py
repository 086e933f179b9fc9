"""Compare two `recommender eval` outputs on the same queries (for example one index per embedding backend).

    .venv/bin/python eval/compare_runs.py --archive ../shared/archive BASELINE_DIR OTHER_DIR

For each system both ran: nDCG@10 and P@10 of each, the change relative to the baseline, and the p-value of a
paired two-sided Student's t-test (ranx `compare`). The truth is the archive's curated Related lists, as in
`recommender eval`; queries must be the same in both (the same --split, --queries and --seed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ranx import Qrels, Run, compare

from recommender.archive import read_archive
from recommender.truth import truth_from_archive

METRICS = ["ndcg@10", "precision@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", default="archive")
    parser.add_argument("baseline", type=Path)
    parser.add_argument("other", type=Path)
    args = parser.parse_args()
    runs = {}
    for folder in (args.baseline, args.other):
        files = sorted(folder.glob("run-*.json"))
        if not files:
            sys.exit(f"error: no run-*.json in {folder} (the --out folder of `recommender eval`)")
        runs[folder] = {f.stem.removeprefix("run-"): json.loads(f.read_text()) for f in files}
    systems = sorted(set(runs[args.baseline]) & set(runs[args.other]))
    archive = read_archive(args.archive)
    truth = truth_from_archive(archive, set(archive.events))
    print(f"| system | {args.baseline.name} nDCG@10 | {args.other.name} nDCG@10 | change | p | P@10 | P@10 | p |")
    print("|---|---|---|---|---|---|---|---|")
    for system in systems:
        base, other = runs[args.baseline][system], runs[args.other][system]
        if set(base) != set(other):
            sys.exit(f"error: {system}: the two folders ran different queries (use the same --split/--queries/--seed)")
        qrels = Qrels({q: {d: 1 for d in truth.relevant[q]} for q in base})
        report = compare(
            qrels, [Run(base, name="baseline"), Run(other, name="other")], METRICS, stat_test="student"
        ).to_dict()
        a, b = report["baseline"]["scores"], report["other"]["scores"]
        p = report["other"]["comparisons"]["baseline"]
        print(
            f"| {system} | {a['ndcg@10']:.4f} | {b['ndcg@10']:.4f} | {100 * (b['ndcg@10'] / a['ndcg@10'] - 1):+.2f}% "
            f"| {p['ndcg@10']:.3g} | {a['precision@10']:.4f} | {b['precision@10']:.4f} | {p['precision@10']:.3g} |"
        )
    print(f"\n{len(base):,} queries")


if __name__ == "__main__":
    main()
