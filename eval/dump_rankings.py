"""Dump the rankings of seeded random queries, or compare two dumps: a refactor must leave them identical.

    python eval/dump_rankings.py dump --index models/full --queries 1000 --out before.jsonl
    (change the code, or run another checkout with PYTHONPATH=that/checkout)
    python eval/dump_rankings.py dump --index models/full --queries 1000 --out after.jsonl
    python eval/dump_rankings.py compare before.jsonl after.jsonl

Only the public facade is used (`load_index`, `Recommender.related`, `Recommender.similar`), so the same script
runs against any version of the package. Each line: query, system, and every suggestion's id, score and the
signals shown to an editor.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict
from pathlib import Path

from _common import command, subcommands

TEXTS = (
    "Russia pulls its troops out of Syria",
    "Earthquake in Nepal kills thousands",
    "Federal Reserve raises interest rates",
    "Ebola outbreak in West Africa",
    "Brexit referendum result",
)


def dump(index_path: Path, queries: int, seed: int, systems: list[str], out: Path) -> None:
    from recommender import Recommender, load_index

    recommender = Recommender(load_index(index_path))
    ids = sorted(random.Random(seed).sample(list(recommender.index.ids), queries))
    with out.open("w", encoding="utf-8") as handle:
        for system in systems:
            for event_id in ids:
                rows = recommender.related(event_id, k=10, system=system)
                handle.write(
                    json.dumps({"query": event_id, "system": system, "rows": [asdict(s) for s in rows]}, default=str)
                    + "\n"
                )
            for text in TEXTS:
                rows = recommender.similar(text, k=10, system=system)
                handle.write(
                    json.dumps({"query": text, "system": system, "rows": [asdict(s) for s in rows]}, default=str) + "\n"
                )
    print(f"{len(ids)} ids and {len(TEXTS)} texts x {len(systems)} systems -> {out}")


def compare(a: Path, b: Path) -> int:
    left = [json.loads(line) for line in a.read_text().splitlines()]
    right = [json.loads(line) for line in b.read_text().splitlines()]
    if len(left) != len(right):
        print(f"different number of queries: {len(left)} vs {len(right)}")
        return 1
    ranking_differs: dict[str, int] = {}
    signals_differ: dict[str, int] = {}
    counts: dict[str, int] = {}
    for x, y in zip(left, right, strict=True):
        system = x["system"]
        counts[system] = counts.get(system, 0) + 1
        if [(r["id"], r["score"]) for r in x["rows"]] != [(r["id"], r["score"]) for r in y["rows"]]:
            ranking_differs[system] = ranking_differs.get(system, 0) + 1
            if ranking_differs[system] <= 3:
                print(f"ranking differs ({system}): {x['query'][:90]}")
        elif x != y:
            signals_differ[system] = signals_differ.get(system, 0) + 1
    for system, n in counts.items():
        print(
            f"{system}: {n - ranking_differs.get(system, 0)} of {n} rankings identical (ids and scores); "
            f"signals shown differ in {signals_differ.get(system, 0)}"
        )
    return 1 if ranking_differs else 0


def main() -> int:
    parser, sub = subcommands(__doc__)
    d = command(sub, "dump")
    d.add_argument("--queries", type=int, default=1000)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--systems", default="fused,dense,bm25")
    d.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.index, args.queries, args.seed, args.systems.split(","), args.out)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
