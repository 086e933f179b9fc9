"""Suggestions on the full archive, judged by hand: same-story follow-ups found, free text finds its story,
contexts shown as the text writes them. Needs ../shared/archive (CI has it); builds the full index once."""

from __future__ import annotations

import csv
import random
import re
import statistics
from pathlib import Path

import pytest
from conftest import PUTIN

pytestmark = pytest.mark.slow

PAIRS = Path(__file__).with_name("data") / "full_archive_pairs.tsv"
ARMENIA = (
    "news/2015/09/26/at-least-four-armenian-soldiers-are-killed-following-an-azeri-attack-near-the-disputed-"
    "nagorno-karabakh-region-yesterday-azerbaijan-shelle.md"
)
WITHDRAWAL_2017 = (
    "news/2017/12/11/during-a-visit-to-syria-his-first-president-vladimir-putin-announces-that-a-significant-part-of-"
    "russian-forces-will-withdraw-from-syria-no.md"
)
DEPTH = 50  # a pair whose partner is not in the top 50 counts as rank 51


def pairs() -> list[dict[str, str]]:
    with PAIRS.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def rank_of(recommender, query_id: str, expected_id: str) -> int:
    ids = [s.id for s in recommender.related(query_id, k=DEPTH)]
    return ids.index(expected_id) + 1 if expected_id in ids else DEPTH + 1


def test_the_pairs_file_is_hand_checked_and_varied():
    rows = pairs()
    assert len(rows) >= 21 and rows[0]["query_id"] == ARMENIA
    assert all(row["why"].strip() and int(row["days_apart"]) <= 1 for row in rows)
    assert all("0" in (row["query_has_list"], row["expected_has_list"]) for row in rows)  # one side has no list
    assert sum(row["query_id"] < "news/2014" for row in rows) >= 8  # half a dozen years before 2014 at least


def test_the_armenia_follow_up_is_in_the_top_3(full_recommender):
    expected = next(row["expected_id"] for row in pairs() if row["query_id"] == ARMENIA)
    assert rank_of(full_recommender, ARMENIA, expected) <= 3


def test_same_story_follow_ups_rank_near_the_top(full_recommender):
    ranks = [rank_of(full_recommender, row["query_id"], row["expected_id"]) for row in pairs()]
    assert statistics.median(ranks) <= 3, ranks
    assert sum(r <= 10 for r in ranks) >= 0.8 * len(ranks), ranks


def test_free_text_finds_the_withdrawal_events(full_recommender):
    import datetime as dt

    found = full_recommender.similar("Russia pulls its troops out of Syria", k=3, since=dt.date(2016, 1, 1))
    assert {PUTIN, WITHDRAWAL_2017} <= {s.id for s in found}, [s.id for s in found]


def bare(text: str) -> str:
    """`text` lower-cased without its commas and dots, as names are compared."""
    return re.sub(r"[.,]", "", text.lower())


def test_contexts_are_whole_names_as_written(full_recommender):
    """3,000 suggestions for 300 random events: every context item is a name written in both texts, as the
    suggestion writes it and in its order (never split, reordered or lower-cased), or a story label of the
    suggestion's (issue 30: only what is true; a blank rather than a common word or a name the event lacks).
    Measured on the full index of a0c77fb (models-full): 1,237 of 3,000 blank (41%), 119 story labels shown;
    with CONTEXTS_VERSION 3 (no adjectives, labels the event writes): 1,298 blank (43%), 28 story labels."""
    index = full_recommender.index
    events = random.Random(15).sample(range(len(index)), 300)
    shown = blank = 0
    for row in events:
        event = bare(index.text(row))
        for suggestion in full_recommender.related(index.ids[row], k=10):
            shown += 1
            at_row = index.position[suggestion.id]
            text, labels = index.text(at_row), set(index.story_labels(at_row))
            blank += not suggestion.context
            at = 0
            for item in suggestion.context:
                if item in labels:
                    continue
                found = text.find(item, at)
                assert found >= 0, (item, suggestion.context, text)
                assert bare(item) in event, (item, event)  # `Washington, D.C.` is `Washington D.C.`
                at = found + len(item)
    assert shown == 3000
    assert blank < 0.7 * shown, blank
