"""Extract the proper names of an event's text: people, places, organisations, as news stories share them.

A simple method rather than an NLP model (tests/test_names.py, on real headlines): runs of capitalised words
(with the short connectors that live inside names, `Bank of England`, `Osama bin Laden`), each run kept whole
and also as its single words, lower-cased. Sentence-initial function words (`The`, `After`) are dropped.
Rarity (IDF over the archive) later decides how much a shared name counts, so generic capitalised words weigh
little.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[A-Za-z][\w'’\-.]*[\w]|[A-Za-z]|\d[\d,.]*")
CONNECTORS = {"of", "the", "de", "del", "da", "al", "bin", "van", "von", "la", "le", "for", "du"}
# Capitalised words that begin sentences or titles without naming anything.
COMMON = {
    "a",
    "an",
    "the",
    "in",
    "on",
    "at",
    "after",
    "as",
    "by",
    "for",
    "from",
    "with",
    "during",
    "following",
    "according",
    "amid",
    "about",
    "more",
    "most",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "dozens",
    "hundreds",
    "thousands",
    "several",
    "many",
    "some",
    "it",
    "its",
    "he",
    "she",
    "they",
    "this",
    "that",
    "these",
    "those",
    "there",
    "officials",
    "police",
    "authorities",
    "new",
    "former",
    "president",
    "prime",
    "minister",
    "government",
    "people",
    "one",
    "is",
    "are",
    "was",
    "and",
    "or",
    "but",
    "if",
    "while",
    "when",
    "over",
    "under",
    "into",
    "to",
    "of",
    "up",
    "least",
    "also",
    "his",
    "her",
    "their",
    "all",
    "no",
    "not",
    "u",
    "s",
    "mr",
    "mrs",
    "dr",
    "st",
    "i",
    "we",
    "you",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
}


def _clean(word: str) -> str:
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    return word.strip(".'-").lower()


def extract_names(text: str) -> list[str]:
    """Distinct names in `text`, lower-cased: whole multi-word names first, then their single words."""
    phrases: list[str] = []
    singles: list[str] = []
    run: list[str] = []
    pending: list[str] = []  # connectors seen inside a run, kept only if another capitalised word follows

    def close() -> None:
        words = [w for w in (_clean(x) for x in run) if w]
        while words and words[0] in COMMON:
            words.pop(0)
        if words:
            if len(words) > 1:
                phrases.append(" ".join(words))
            singles.extend(w for w in words if w not in COMMON and w not in CONNECTORS and len(w) > 1)
        run.clear()
        pending.clear()

    for match in WORD.finditer(text):
        word = match.group()
        if word[0].isupper():
            run.extend(pending)
            pending.clear()
            run.append(word)
        elif run and word.lower() in CONNECTORS and len(pending) < 2:
            pending.append(word)
        else:
            close()
        if text[match.end() : match.end() + 1] in (".", ";", ":", "!", "?") and "." not in word:
            close()  # a sentence or clause ends; an abbreviation like U.S. does not
    close()
    seen: dict[str, None] = {}
    for name in phrases + singles:
        seen.setdefault(name, None)
    return list(seen)
