"""Grow the judged sets blind: sample events, give judges packets of texts in random order, collect their labels.

A judge sees one event and the union of every system's top 10 for it, shuffled, as plain texts with dates: no
system names, no ranks, no scores, no ids. Each label is `same_story` (the same episode, its direct causes and
consequences, at any distance in time), `related` (the same subject: the same actors, place or topic, a later or
earlier chapter) or `unrelated` (else; a shared country or a shared kind of event alone is unrelated).

    python eval/judge_blind.py sample --archive ../shared/archive --index models/full --out eval/judged/set-e.json
    python eval/judge_blind.py packets --index models/full --set eval/judged/set-e.json --out /tmp/packets
    python eval/judge_blind.py collect --keys /tmp/packets/keys.json --answers /tmp/answers
    python eval/judge_blind.py agreement eval/judged/judgments-e.jsonl eval/judged/agreement-e.jsonl

`sample` takes half its events with a curated list (from the test split, so no trained ranker learned from them
as queries) and half without, spread over every year, and marks half of them `heldout` by a hash of the id: no
choice, feature or setting may look at the held-out half; figures are reported on it.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from _common import command, subcommands

HERE = Path(__file__).resolve().parent / "judged"
LABELS = {"S": "same_story", "R": "related", "U": "unrelated"}


def heldout(event_id: str) -> bool:
    """Half the judged events, fixed by their id alone: never used for a choice, only reported on."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).digest()[0] % 2 == 1


def known_judgments() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for path in sorted(HERE.glob("judgments*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                found[(row["query"], row["candidate"])] = row["label"]
    return found


def spread_over_years(ids: list[str], year_of: dict[str, int], count: int, rng: random.Random) -> list[str]:
    """`count` ids taken round-robin over the years present, so that every year is represented."""
    by_year: dict[int, list[str]] = defaultdict(list)
    for event_id in sorted(ids):
        by_year[year_of[event_id]].append(event_id)
    for bucket in by_year.values():
        rng.shuffle(bucket)
    chosen: list[str] = []
    years = sorted(by_year)
    while len(chosen) < count and any(by_year.values()):
        for year in years:
            if by_year[year] and len(chosen) < count:
                chosen.append(by_year[year].pop())
    return chosen


def sample(
    archive: Path,
    index_path: Path,
    events: int,
    seed: int,
    out: Path,
    listed_share: float = 0.5,
    split: str = "test",
    development: bool = False,
) -> None:
    from recommender.archive import read_archive
    from recommender.index import load_index
    from recommender.truth import split_of, truth_from_archive

    index = load_index(index_path)
    truth = truth_from_archive(read_archive(archive), set(index.ids))
    judged_queries = {query for query, _ in known_judgments()}
    year_of = {event_id: index.date(row).year for row, event_id in enumerate(index.ids)}
    usable = [i for i in index.ids if i not in judged_queries and i != "SEED-EXAMPLE.md"]
    listed = [i for i in usable if i in truth.relevant and split_of(i) == split]
    unlisted = [i for i in usable if i not in truth.relevant]
    rng = random.Random(seed)
    with_list = round(events * listed_share)
    chosen = spread_over_years(listed, year_of, with_list, rng) + spread_over_years(
        unlisted, year_of, events - with_list, rng
    )
    rows = [{"id": i, "listed": i in truth.relevant, "heldout": not development and heldout(i)} for i in sorted(chosen)]
    out.write_text(json.dumps({"seed": seed, "events": rows}, indent=1) + "\n")
    held = sum(r["heldout"] for r in rows)
    print(f"{len(rows)} events ({sum(r['listed'] for r in rows)} with a list), {held} held out -> {out}")


def packets(index_path: Path, set_path: Path, systems: list[str], per_file: int, seed: int, out: Path) -> None:
    from recommender import Recommender, load_index

    recommender = Recommender(load_index(index_path))
    add_variants(recommender)
    index = recommender.index
    known = known_judgments()
    events = [row["id"] for row in json.loads(set_path.read_text())["events"]]
    rng = random.Random(seed)
    rng.shuffle(events)  # a judge's packets mix years and groups
    todo: dict[str, list[str]] = {}
    for query in events:
        candidates = {s.id for system in systems for s in recommender.related(query, k=10, system=system)}
        todo[query] = sorted(c for c in candidates if (query, c) not in known)
    write_packets(index, todo, per_file, rng, out)


def write_packets(index, todo: dict[str, list[str]], per_file: int, rng: random.Random, out: Path) -> None:  # type: ignore[no-untyped-def]
    """Packets of `per_file` events a file, each event's candidates (`todo`, in the events' order) shuffled and
    coded, and keys.json (the codes' ids), which the judges never see."""
    out.mkdir(parents=True, exist_ok=True)
    keys: dict[str, dict[str, object]] = {}
    pages: list[str] = []
    for number, (query, candidates) in enumerate(todo.items(), 1):
        candidates = list(candidates)
        rng.shuffle(candidates)
        code = f"E{number:03d}"
        keys[code] = {"query": query, "candidates": {f"C{n:02d}": c for n, c in enumerate(candidates, 1)}}
        row = index.position[query]
        lines = [f"## {code}", f"EVENT ({index.date(row)}): {index.text(row)}", ""]
        for n, candidate in enumerate(candidates, 1):
            c = index.position[candidate]
            lines.append(f"C{n:02d} ({index.date(c)}): {index.text(c)}")
        pages.append("\n".join(lines) + "\n")
    for start in range(0, len(pages), per_file):
        (out / f"packet-{start // per_file + 1:02d}.md").write_text("\n".join(pages[start : start + per_file]))
    (out / "keys.json").write_text(json.dumps(keys, indent=1) + "\n")
    print(f"{len(pages)} events, {sum(len(k['candidates']) for k in keys.values())} items to judge -> {out}")  # type: ignore[arg-type]


def add_variants(recommender) -> None:  # type: ignore[no-untyped-def]
    """Candidate orders of the fused ranker a stage refit may choose between, so that their top 10s are judged
    too: `fused-trees` (the trees alone, no judged stage) and `fused-gain` (the stage's gain without the tier)."""
    from dataclasses import replace

    from judged_figures import replace_stage

    fused = recommender.rankers["fused"]
    recommender.rankers["fused-trees"] = replace_stage(fused)
    recommender.rankers["fused-gain"] = replace_stage(fused, fused.stage and replace(fused.stage, story_trees=None))


def collect(keys_path: Path, answers: Path, judge_prefix: str, out: Path) -> None:
    """Answers are jsonl lines {"event": "E001", "item": "C03", "label": "S|R|U", "why": "..."}."""
    keys = json.loads(keys_path.read_text())
    rows: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    problems = 0
    for path in sorted(answers.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            answer = json.loads(line)
            event, item, label = answer.get("event"), answer.get("item"), str(answer.get("label", "")).upper()
            if event not in keys or item not in keys[event]["candidates"] or label not in LABELS:
                print(f"{path}:{number}: skipped ({event!r}, {item!r}, {label!r})", file=sys.stderr)
                problems += 1
                continue
            pair = (keys[event]["query"], keys[event]["candidates"][item])
            if pair in seen:
                continue
            seen.add(pair)
            why = str(answer.get("why", ""))
            rows.append({"query": pair[0], "candidate": pair[1], "label": LABELS[label], "why": why})
            rows[-1]["judge"] = f"{judge_prefix}{path.stem}"
    wanted = sum(len(k["candidates"]) for k in keys.values())
    with out.open("w", encoding="utf-8") as handle:
        for row in sorted(rows, key=lambda r: (r["query"], r["candidate"])):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} of {wanted} items judged ({problems} answers skipped) -> {out}")


def agreement(first: Path, second: Path) -> None:
    """How often two judges agree on the items both judged: three-way, related-or-better against unrelated, and
    same story against the rest, each with Cohen's kappa."""

    def labels(path: Path) -> dict[tuple[str, str], str]:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {(r["query"], r["candidate"]): r["label"] for r in rows}

    a, b = labels(first), labels(second)
    both = sorted(set(a) & set(b))
    views = {
        "three labels": lambda label: label,
        "related-or-better vs unrelated": lambda label: label != "unrelated",
        "same story vs the rest": lambda label: label == "same_story",
    }
    print(f"{len(both)} items judged by both")
    for name, view in views.items():
        x, y = [view(a[k]) for k in both], [view(b[k]) for k in both]
        observed = sum(p == q for p, q in zip(x, y, strict=True)) / len(both)
        chance = sum((x.count(v) / len(x)) * (y.count(v) / len(y)) for v in set(x) | set(y))
        print(f"{name}: agreement {observed:.3f}, Cohen's kappa {(observed - chance) / (1 - chance):.3f}")


def main() -> int:
    parser, sub = subcommands(__doc__)
    s = command(sub, "sample", archive=True)
    s.add_argument("--events", type=int, default=100)
    s.add_argument("--seed", type=int, default=30)
    s.add_argument("--out", type=Path, default=HERE / "set-e.json")
    s.add_argument("--listed-share", type=float, default=0.5, help="the share of events with a curated list")
    s.add_argument("--split", choices=["test", "train"], default="test", help="the split events with a list come from")
    s.add_argument("--development", action="store_true", help="no held-out half: every event may be fitted on")
    p = sub.add_parser("packets")
    p.add_argument("--index", type=Path, default=Path("models/full"))
    p.add_argument("--set", type=Path, default=HERE / "set-e.json")
    p.add_argument("--systems", default="bm25,dense,fused")
    p.add_argument("--per-file", type=int, default=10)
    p.add_argument("--seed", type=int, default=30)
    p.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("collect")
    c.add_argument("--keys", type=Path, required=True)
    c.add_argument("--answers", type=Path, required=True)
    c.add_argument("--judge-prefix", default="")
    c.add_argument("--out", type=Path, default=HERE / "judgments-e.jsonl")
    g = sub.add_parser("agreement")
    g.add_argument("first", type=Path)
    g.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "agreement":
        agreement(args.first, args.second)
    elif args.command == "sample":
        sample(
            args.archive, args.index, args.events, args.seed, args.out, args.listed_share, args.split, args.development
        )
    elif args.command == "packets":
        packets(args.index, args.set, args.systems.split(","), args.per_file, args.seed, args.out)
    else:
        collect(args.keys, args.answers, args.judge_prefix, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
