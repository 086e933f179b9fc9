"""Judge the contexts shown with suggestions, blind: are they true of both events?

Samples random events of an index (seeded) and random suggestions among each one's top 10 (issue 30: 100 events,
3 each, 300 items), and writes a packet a judge reads (the event's text, the suggestion's text, the context shown;
no ids, ranks, scores or systems, items in random order) and a keys file the judge never sees. Contexts are those
the index's Recommender shows: read from its ready lists where it has them, else made live (the same rule).

    python eval/judge_contexts.py packet --index models/full --packet /tmp/c/packet.md --keys /tmp/c-keys.json
    python eval/judge_contexts.py score --index models/full --keys /tmp/c-keys.json --answers answers.jsonl
    python eval/judge_contexts.py compare --index models/full --before before-keys.json --after /tmp/c-keys.json
    python eval/judge_contexts.py recontext --index models/full --keys before-keys.json --out /tmp/c-now.json

A judge answers one JSON line per item: {"item": "P001", "label": "T"} with T (true: every part of the context
names something both texts are about, the same thing in both), U (untrue: any part is a common word, a fragment
of a longer name, absent from the event's text, or a different thing of the same name) or B (blank: no context
shown). `score` prints the share of non-blank contexts judged true, how many are blank, and the common words
shown: a context part that is one word the archive writes in lower case in most of its uses (the lower-case
shares `names.lower_case_shares` keeps in the index), or a part written all in lower case. `compare` prints the
share blank in two keys files made on the same sample (before and after a change) and examples side by side.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

from _common import command, subcommands

LABELS = {"T": "true", "U": "untrue", "B": "blank"}
GUIDE = """# Contexts to judge (blind)

Each item shows an EVENT, a SUGGESTION (an event proposed as related to it) and the CONTEXT shown with the
suggestion, in the style of the archive's `_Context:_` (names or story titles, separated by `;`).

Answer one JSON line per item: {"item": "P001", "label": "T", "why": "a few words"}

- T (true): every part of the context names something BOTH texts are about, and the same thing in both (a person,
  place, organisation, or a story both events belong to). A story title is true when both events are plainly
  part of that story.
- U (untrue): any part is a common word ("confirms", "passengers"), a fragment of a longer name ("Airlines
  Flight"), a name or story the EVENT's text does not concern ("Kabul" for an event in Ferguson), or a different
  thing of the same name (two different supreme courts).
- B (blank): the context is `(none)`.

Judge from the texts only, with your general knowledge; not whether the suggestion is a good one.
"""


def packet(index_path: Path, events: int, per_event: int, seed: int, packet_path: Path, keys_path: Path) -> None:
    from recommender import Recommender, load_index

    recommender = Recommender(load_index(index_path))
    index = recommender.index
    rng = random.Random(seed)
    rows = [row for row in range(len(index)) if index.ids[row] != "SEED-EXAMPLE.md"]
    items: list[dict[str, object]] = []
    for row in sorted(rng.sample(rows, events)):
        found = recommender.related(index.ids[row], k=10)
        for s in rng.sample(found, min(per_event, len(found))):
            items.append({"event": index.ids[row], "suggestion": s.id, "rank": s.rank, "context": list(s.context)})
    rng.shuffle(items)
    keys: dict[str, object] = {"index": str(index_path), "seed": seed, "items": {}}
    lines = [GUIDE]
    for number, item in enumerate(items, 1):
        code = f"P{number:03d}"
        keys["items"][code] = item  # type: ignore[index]
        event, suggestion = index.position[str(item["event"])], index.position[str(item["suggestion"])]
        context = "; ".join(item["context"]) or "(none)"  # type: ignore[arg-type]
        lines += [
            f"## {code}",
            f"EVENT ({index.date(event)}): {index.text(event)}",
            f"SUGGESTION ({index.date(suggestion)}): {index.text(suggestion)}",
            f"CONTEXT: {context}",
            "",
        ]
    packet_path.parent.mkdir(parents=True, exist_ok=True)
    keys_path.parent.mkdir(parents=True, exist_ok=True)
    packet_path.write_text("\n".join(lines), encoding="utf-8")
    keys_path.write_text(json.dumps(keys, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    blank = sum(not item["context"] for item in items)
    print(f"{len(items)} items ({blank} blank) -> {packet_path}, keys -> {keys_path}")


def recontext(index_path: Path, keys_path: Path, out_path: Path) -> None:
    """The same items as `keys_path` (event and suggestion pairs, whatever ranked them), with the contexts this
    code shows for them now: a `compare` on every judged item, where a new `packet` would sample other
    suggestions once the ranking has moved."""
    from recommender import load_index
    from recommender.rank.explain import Contexts
    from recommender.rank.query import query_for_row

    index = load_index(index_path)
    keys = json.loads(keys_path.read_text(encoding="utf-8"))
    for item in keys["items"].values():
        event, suggestion = index.position[item["event"]], index.position[item["suggestion"]]
        item["context"] = list(Contexts(index, query_for_row(index, event))(suggestion))
    keys["index"] = str(index_path)
    out_path.write_text(json.dumps(keys, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    blank = sum(not item["context"] for item in keys["items"].values())
    print(f"{len(keys['items'])} items ({blank} blank) -> {out_path}")


def common_words(parts: list[str], shares: dict[str, float]) -> list[str]:
    """The context parts that are common words: one word the archive writes in lower case in most of its uses,
    or written in lower case here."""
    from recommender.names import WORD, _clean

    found = []
    for part in parts:
        words = [m.group() for m in WORD.finditer(part)]
        lower_case_here = not any(w[0].isupper() or w[0].isdigit() for w in words)
        if lower_case_here or (len(words) == 1 and shares.get(_clean(words[0]), 0.0) > 0.5):
            found.append(part)
    return found


def lower_case_shares(index_path: Path) -> dict[str, float]:
    from recommender import load_index

    return load_index(index_path).generic_words


def score(index_path: Path, keys_path: Path, answers: list[Path]) -> None:
    keys = json.loads(keys_path.read_text(encoding="utf-8"))["items"]
    labels: dict[str, Counter[str]] = {}
    for path in answers:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            answer = json.loads(line)
            item, label = answer.get("item"), str(answer.get("label", "")).upper()[:1]
            if item not in keys or label not in LABELS:
                print(f"{path}:{number}: skipped ({item!r}, {label!r})", file=sys.stderr)
                continue
            labels.setdefault(item, Counter())[LABELS[label]] += 1
    shown = {code for code, item in keys.items() if item["context"]}
    blank = len(keys) - len(shown)
    judged = [code for code in shown if code in labels]
    true = sum(labels[code]["true"] for code in judged)
    votes = sum(labels[code]["true"] + labels[code]["untrue"] for code in judged)
    print(f"items: {len(keys)}; blank contexts: {blank} ({blank / len(keys):.1%}); non-blank: {len(shown)}")
    if answers:
        print(f"non-blank contexts judged: {len(judged)} of {len(shown)}; judged true: {true} of {votes} votes", end="")
        print(f" = {true / votes:.1%}" if votes else "")
    majority = sum(labels[c]["true"] > labels[c]["untrue"] for c in judged)
    share = f" = {majority / len(judged):.1%}" if judged else ""
    if answers:
        print(f"by item (majority true): {majority} of {len(judged)}{share}")
    said_blank = sum(labels[c]["blank"] for c in judged)
    if said_blank:
        print(f"answers 'blank' for a shown context: {said_blank} (not counted)")
    for code in sorted(judged):
        if labels[code]["untrue"]:
            item = keys[code]
            print(f"  untrue {code}: {'; '.join(item['context'])}  ({item['event']} -> {item['suggestion']})")
    shares = lower_case_shares(index_path)
    common = Counter(w for item in keys.values() for w in common_words(item["context"], shares))
    print(f"common words shown: {sum(common.values())}" + (f" {dict(common)}" if common else ""))


def compare(index_path: Path, before_path: Path, after_path: Path, examples: int, seed: int) -> None:
    before = json.loads(before_path.read_text(encoding="utf-8"))["items"]
    after = json.loads(after_path.read_text(encoding="utf-8"))["items"]
    pairs = {(i["event"], i["suggestion"]): i["context"] for i in before.values()}
    keyed = [((i["event"], i["suggestion"]), i["context"]) for i in after.values()]
    common = [(key, pairs[key], context) for key, context in keyed if key in pairs]
    print(f"the same {len(common)} items of {len(after)}")
    for name, which in (("before", 1), ("after", 2)):
        blank = sum(not row[which] for row in common)
        print(f"blank {name}: {blank} ({blank / len(common):.1%})")
    changed = [row for row in common if row[1] != row[2]]
    print(f"changed: {len(changed)}")
    shares = lower_case_shares(index_path)
    for name, which in (("before", 1), ("after", 2)):
        words = Counter(w for row in common for w in common_words(row[which], shares))
        print(f"common words {name}: {sum(words.values())} {dict(words.most_common(20))}")
    if examples:
        from recommender import load_index

        index = load_index(index_path)
        for key, old, new in random.Random(seed).sample(changed, min(examples, len(changed))):
            print(f"\nEVENT: {index.text(index.position[key[0]])[:200]}")
            print(f"SUGGESTION: {index.text(index.position[key[1]])[:200]}")
            print(f"  before: {'; '.join(old) or '(none)'}\n  after:  {'; '.join(new) or '(none)'}")


def main() -> int:
    parser, sub = subcommands(__doc__)
    p = command(sub, "packet")
    p.add_argument("--events", type=int, default=100)
    p.add_argument("--per-event", type=int, default=3)
    p.add_argument("--seed", type=int, default=30)
    p.add_argument("--packet", type=Path, required=True)
    p.add_argument("--keys", type=Path, required=True)
    s = command(sub, "score")
    s.add_argument("--keys", type=Path, required=True)
    s.add_argument("--answers", type=Path, nargs="*", default=[], help="none: the blank and common-word counts")
    c = command(sub, "compare")
    c.add_argument("--before", type=Path, required=True)
    c.add_argument("--after", type=Path, required=True)
    c.add_argument("--examples", type=int, default=10)
    c.add_argument("--seed", type=int, default=30)
    r = command(sub, "recontext")
    r.add_argument("--keys", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "packet":
        packet(args.index, args.events, args.per_event, args.seed, args.packet, args.keys)
    elif args.command == "recontext":
        recontext(args.index, args.keys, args.out)
    elif args.command == "score":
        score(args.index, args.keys, args.answers)
    else:
        compare(args.index, args.before, args.after, args.examples, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
