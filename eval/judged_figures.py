"""The blind-judgment figures of each system, per part (held out / development) and group (with / without a list).

    python eval/judged_figures.py --archive ../shared/archive --index models/full --systems bm25,dense,fused
    python eval/judged_figures.py ... --window month          # each event ranked within its calendar month
    python eval/judged_figures.py ... --before-30             # also today's fused: the trees without the judged stage

Same-story P@10 and related-or-better P@10 over the judged items of each system's top 10 (unjudged items left
out and counted), and the confidence's expected calibration error against "judged related or same story".
`recommender eval --judged eval/judged` prints the same table beside the curated-list figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "judged"


def listed_events(archive: Path) -> set[str]:
    """The ids with a curated list, from the archive's gold.jsonl(.gz)."""
    for name in ("gold.jsonl.gz", "gold.jsonl"):
        path = archive / name
        if path.exists():
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as lines:
                return {json.loads(line)["id"] for line in lines if line.strip()}
    raise SystemExit(f"--archive: no gold.jsonl(.gz) in {archive}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=Path("../shared/archive"))
    parser.add_argument("--index", type=Path, default=Path("models/full"))
    parser.add_argument("--judged", type=Path, default=HERE)
    parser.add_argument("--systems", default="bm25,dense,fused")
    parser.add_argument("--window", choices=["month"], default=None)
    parser.add_argument("--before-30", action="store_true", help="also `fused-before-30`: the trees alone")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from recommender import Recommender, load_index
    from recommender.evaluate.judged import judged_figures, judged_table
    from recommender.judgments import load_judged

    recommender = Recommender(load_index(args.index))
    systems = tuple(args.systems.split(","))
    if args.before_30:
        fused = recommender.rankers["fused"]
        recommender.rankers["fused-before-30"] = replace_stage(fused)
        systems += ("fused-before-30",)
    figures = judged_figures(recommender, load_judged(args.judged), listed_events(args.archive), systems, args.window)
    print("\n".join(judged_table(figures)))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def replace_stage(ranker, stage=None):  # type: ignore[no-untyped-def]
    """The same trees with another judged stage (default: none, the fused ranker as it was before issue 30)."""
    from recommender.rank.ranker import Ranker

    variant = Ranker(ranker.name, ranker.model_file, [], ranker.cascade, stage)
    variant.columns = ranker.columns
    return variant


if __name__ == "__main__":
    sys.exit(main())
