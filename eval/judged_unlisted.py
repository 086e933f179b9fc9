"""A hand-judged set for events WITHOUT a curated list, the events an editor most needs suggestions for.

The curated lists cannot measure them: an event in no list was never judged. So a sample of such events (all
years, half before 2014) has the top 10 of each ranker judged by hand, one line per (query, candidate) pair in
eval/judged/judgments.jsonl: `same_story`, `related` or `unrelated`, with a short reason. Judgments are kept
across ranker changes; when a ranker changes, only its new items need judging (`pool` lists them).

    python eval/judged_unlisted.py sample --archive ../shared/archive --index models/full   # eval/judged/queries.json
    python eval/judged_unlisted.py pool --index models/full --systems dense,bm25,fused --out /tmp/to-judge.jsonl
    python eval/judged_unlisted.py score --index models/full --systems dense,bm25,fused [--rankers DIR]

`score` reports, per system, same-story P@10 and related-or-better P@10 over the judged items, and how many of
its top-10 items are unjudged (left out of the figures, never counted as wrong).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from _common import command, subcommands

HERE = Path(__file__).resolve().parent / "judged"
QUERIES = HERE / "queries.json"
JUDGMENTS = HERE / "judgments.jsonl"
LABELS = ("same_story", "related", "unrelated")


def sample(archive: Path, index_path: Path, events: int, seed: int) -> None:
    from recommender.archive import read_archive
    from recommender.index import load_index
    from recommender.truth import truth_from_archive

    index = load_index(index_path)
    truth = truth_from_archive(read_archive(archive), set(index.ids))
    unlisted = [i for i in index.ids if i not in truth.relevant and i != "SEED-EXAMPLE.md"]
    early = sorted(i for i in unlisted if index.date(index.position[i]).year < 2014)
    late = sorted(i for i in unlisted if index.date(index.position[i]).year >= 2014)
    rng = random.Random(seed)
    chosen = sorted(rng.sample(early, events // 2) + rng.sample(late, events - events // 2))
    HERE.mkdir(exist_ok=True)
    QUERIES.write_text(json.dumps({"seed": seed, "queries": chosen}, indent=1) + "\n")
    print(f"{len(chosen)} of the events with no curated list ({len(early):,} before 2014, {len(late):,} after)")


def judgments() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for path in sorted(HERE.glob("judgments*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                if row["label"] not in LABELS:
                    raise SystemExit(f"{path}:{number}: label {row['label']!r} is not one of {', '.join(LABELS)}")
                found[(row["query"], row["candidate"])] = row["label"]
    return found


def rankings(
    index_path: Path, systems: list[str], k: int = 10, rankers: Path | None = None
) -> dict[str, dict[str, list[str]]]:
    from recommender import Recommender, load_index
    from recommender.rank import load_rankers

    recommender = Recommender(load_index(index_path), rankers=load_rankers(rankers) if rankers else None)
    queries = json.loads(QUERIES.read_text())["queries"]
    return {s: {q: [x.id for x in recommender.related(q, k=k, system=s)] for q in queries} for s in systems}


def pool(index_path: Path, systems: list[str], out: Path) -> None:
    """Every (query, candidate) pair in some system's top 10 that has no judgment yet, with the texts to judge."""
    from recommender.index import load_index

    index = load_index(index_path)
    known = judgments()
    ranked = rankings(index_path, systems)
    todo: dict[tuple[str, str], list[str]] = {}
    for system, runs in ranked.items():
        for query, ids in runs.items():
            for candidate in ids:
                if (query, candidate) not in known:
                    todo.setdefault((query, candidate), []).append(system)
    with out.open("w", encoding="utf-8") as handle:
        for (query, candidate), by in sorted(todo.items()):
            q, c = index.position[query], index.position[candidate]
            row = {
                "query": query,
                "query_date": str(index.date(q)),
                "query_text": index.text(q),
                "candidate": candidate,
                "candidate_date": str(index.date(c)),
                "candidate_text": index.text(c),
                "systems": by,
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(todo)} unjudged pairs of {sum(len(r) for runs in ranked.values() for r in runs.values())} -> {out}")


def score(index_path: Path, systems: list[str], rankers: Path | None = None) -> None:
    known = judgments()
    ranked = rankings(index_path, systems, rankers=rankers)
    print(f"{len(known):,} judgments; {len(next(iter(ranked.values())))} queries")
    print("| system | same-story P@10 | related-or-better P@10 | judged items | unjudged items |")
    print("|---|---|---|---|---|")
    for system, runs in ranked.items():
        same = related = judged = unjudged = 0
        for query, ids in runs.items():
            labels = [known.get((query, c)) for c in ids]
            judged_here = [label for label in labels if label]
            unjudged += len(labels) - len(judged_here)
            judged += len(judged_here)
            same += sum(label == "same_story" for label in judged_here)
            related += sum(label in ("same_story", "related") for label in judged_here)
        print(f"| {system} | {same / max(judged, 1):.3f} | {related / max(judged, 1):.3f} | {judged} | {unjudged} |")


def main() -> int:
    parser, sub = subcommands(__doc__)
    s = command(sub, "sample", archive=True)
    s.add_argument("--events", type=int, default=60)
    s.add_argument("--seed", type=int, default=15)
    for name in ("pool", "score"):
        p = command(sub, name)
        p.add_argument("--systems", default="dense,bm25,fused")
        if name == "pool":
            p.add_argument("--out", type=Path, required=True)
        else:
            p.add_argument("--rankers", type=Path, help="a folder of trained rankers (default: the packaged ones)")
    args = parser.parse_args()
    if args.command == "sample":
        sample(args.archive, args.index, args.events, args.seed)
    elif args.command == "pool":
        pool(args.index, args.systems.split(","), args.out)
    else:
        score(args.index, args.systems.split(","), args.rankers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
