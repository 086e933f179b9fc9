"""Extract the proper names of an event's text: people, places, organisations, as news stories share them.

A simple method rather than an NLP model (tests/test_names.py, on real headlines): runs of capitalised words
(with the short connectors that live inside names, `Bank of England`, `Osama bin Laden`), each run kept whole,
lower-cased. A name of several words also gives its last word, which news reuses alone (`Vladimir Putin`, then
`Putin`), but never its first (`Sergey` would link Shoygu to Lavrov, `Billy` any Billy). Sentence-initial
function words (`The`, `After`) are dropped, and so are generic words: those the archive mostly writes in lower
case (`Voters`, `State`), and as the last word of a name, those it often does (`Reserve` would link Liberty Reserve
to the Federal Reserve). Rarity (IDF over the archive) later decides how much a shared name counts, so common
names (a country alone) weigh little.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

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


VERSION = 2  # of the rules below: an index whose names were extracted by other rules extracts them anew

# Share of an archive's uses of a word written in lower case (not counting sentence starts) above which the word
# is generic: as a name on its own, and as the last word of a longer name.
GENERIC_ALONE = 0.5
GENERIC_LAST_WORD = 0.1
MIN_USES = 3  # a word the archive uses fewer times keeps no statistics


def lower_case_shares(texts: Iterable[str]) -> dict[str, float]:
    """For each word used in lower case somewhere in `texts`: the share of the events using it that write it in
    lower case (sentence starts left out), for the words at least GENERIC_LAST_WORD generic."""
    lower: Counter[str] = Counter()
    capital: Counter[str] = Counter()
    for text in texts:
        lowered: set[str] = set()
        capitalised: set[str] = set()
        sentence_start = True
        for match in WORD.finditer(text):
            word = match.group()
            if word[0].islower():
                lowered.add(_clean(word))
            elif word[0].isupper() and not sentence_start:
                capitalised.add(_clean(word))
            sentence_start = _ends_clause(text, match)
        lower.update(lowered)
        capital.update(capitalised)
    shares = {}
    for word, count in lower.items():
        uses = count + capital[word]
        if uses >= MIN_USES and count / uses >= GENERIC_LAST_WORD:
            shares[word] = round(count / uses, 3)
    return shares


def _ends_clause(text: str, match: re.Match[str]) -> bool:
    """A sentence or clause ends after this word; an abbreviation like U.S. does not end one."""
    return text[match.end() : match.end() + 1] in (".", ";", ":", "!", "?") and "." not in match.group()


@dataclass(frozen=True)
class Span:
    """One name as written: its characters in the text, its words lower-cased."""

    start: int
    end: int
    words: tuple[str, ...]
    starts: tuple[int, ...]  # where each word begins in the text

    def ending(self, words: int) -> tuple[int, int]:
        """Where the span's last `words` words are in the text."""
        return self.starts[len(self.words) - words], self.end

    @property
    def whole(self) -> str:
        return " ".join(self.words)


@lru_cache(maxsize=8192)
def name_spans(text: str) -> tuple[Span, ...]:
    """Every run of capitalised words in `text` (with the connectors inside it), leading function words dropped.
    Kept for the texts last asked about: a suggestion's context reads the spans of its text, and the same events
    are suggested again and again across a batch."""
    spans: list[Span] = []
    run: list[re.Match[str]] = []
    pending: list[re.Match[str]] = []  # connectors seen inside a run, kept only if another capitalised word follows

    def close() -> None:
        kept = [(m, w) for m in run if (w := _clean(m.group()))]
        while kept and kept[0][1] in COMMON:
            kept.pop(0)
        if kept:
            words = tuple(w for _, w in kept)
            last = kept[-1][0]
            end = last.end() - 2 if last.group().endswith(("'s", "’s")) else last.end()  # "Syria's": Syria
            spans.append(Span(kept[0][0].start(), end, words, tuple(m.start() for m, _ in kept)))
        run.clear()
        pending.clear()

    previous_end = 0
    for match in WORD.finditer(text):
        word = match.group()
        if text[previous_end : match.start()].strip(" &.'’\"“”"):
            close()  # a comma, a dash or a bracket ends a name: "United States, United Kingdom" are two
        previous_end = match.end()
        if word[0].isupper():
            run.extend(pending)
            pending.clear()
            run.append(match)
        elif run and word.lower() in CONNECTORS and len(pending) < 2:
            pending.append(match)
        else:
            close()
        if _ends_clause(text, match) or word.endswith(("'s", "’s")):
            close()  # a possessive ends a name: "Justin Trudeau's Liberal Party" names two
    close()
    return tuple(spans)


def span_names(span: Span, generic: Mapping[str, float] | None = None) -> tuple[list[str], list[str]]:
    """The names a span gives: its whole (none when it is one generic word or a connector), and for a span of
    several words its shorter endings, down to its last word unless that is generic (`U.S. Federal Reserve`:
    `federal reserve`; `Russian President Vladimir Putin`: `vladimir putin`, `putin`; never a first name)."""
    generic = generic or {}
    words = span.words
    if len(words) == 1:
        word = words[0]
        if word in CONNECTORS or len(word) < 2 or generic.get(word, 0.0) >= GENERIC_ALONE:
            return [], []
        return [word], []
    endings = [" ".join(words[i:]) for i in range(1, len(words) - 1) if words[i] not in CONNECTORS | COMMON]
    last = words[-1]
    if last not in COMMON and len(last) > 1 and generic.get(last, 0.0) < GENERIC_LAST_WORD:
        endings.append(last)
    return [span.whole], endings


TITLE_WORD = 0.2  # a word written in lower case this often (`president` 0.22, `minister` 0.22) can be a title
PLACE_STARTS = {"new", "st"}  # left out of a span as function words, yet they begin names: New Orleans, St Louis


def whole_names(
    text: str, generic: Mapping[str, float] | None = None, known: Container[str] = ()
) -> list[tuple[str, int, int]]:
    """The names `text` writes whole, lower-cased, with where they are written (start, end), in its order: each
    span's whole name (one word only when the archive nearly always capitalises it: not `International`), and
    around a title before a person's name, the place and the person (`Michigan Governor Gretchen Whitmer`:
    `michigan` when `known` holds it as a name, and `gretchen whitmer`; the person two words or more, not
    beginning with a title). Never another part of a longer name: not `airlines flight` of `Malaysia Airlines
    Flight`, not `korea` of `North Korea`, not `putin` of `Vladimir Putin`, not `orleans` of `New Orleans`, not
    `abu musab` of `Abu Musab al-Barnawi` or `Jeanine` of `Jeanine Áñez` (words the spans cannot hold)."""
    generic = generic or {}

    def title(word: str) -> bool:
        return word in COMMON or generic.get(word, 0.0) >= TITLE_WORD

    def proper(word: str) -> bool:
        return word not in COMMON and word not in CONNECTORS and generic.get(word, 0.0) < GENERIC_LAST_WORD

    found = []
    spans = list(name_spans(text))
    joined: set[int] = set()  # the spans read as a name's end already
    for number, span in enumerate(spans):
        words, end = span.words, span.end
        if number in joined or _cut(text, span.start, end):
            continue
        if len(words[-1]) == 1 and text[end : end + 2] == ". " and number + 1 < len(spans):
            after = spans[number + 1]  # an initial: `George W. Bush` is one name
            if after.start == end + 2 and not _cut(text, after.start, after.end):
                found.append((f"{span.whole}. {after.whole}", span.start, after.end))
                joined.add(number + 1)
            continue
        if end < len(text) and text[end] == "." and "." in text[span.starts[-1] : end]:
            end += 1  # an abbreviation's last dot: `D.C.`
        whole, _ = span_names(span, generic)
        if whole and (len(words) > 1 or proper(words[0])):
            found.append((whole[0], span.start, end))
        for cut in range(len(words) - 2):  # place (or none), title(s), person
            titles = cut
            while titles < len(words) and title(words[titles]):
                titles += 1
            person = words[titles:]
            if titles == cut or len(person) < 2 or not proper(person[0]):
                continue
            found.append((" ".join(person), span.starts[titles], end))
            place = words[:cut]
            if all(proper(w) for w in place) and " ".join(place) in known:
                found.append((" ".join(place), span.start, _word_end(text, span.starts[cut - 1])))
            break
    return found


def _word_end(text: str, start: int) -> int:
    match = WORD.match(text, start)
    return match.end() if match else start


def _cut(text: str, start: int, end: int) -> bool:
    """The span at `start`..`end` is part of a longer name its rules could not read: after `New` or `St`, or next
    to a word that begins with a capital outside A-Z (`Áñez`) or a particle (`al-Barnawi`)."""
    before = text[:start].rstrip(" ").rsplit(" ", 1)[-1] if text[:start].endswith(" ") else ""
    if before.rstrip(".").lower() in PLACE_STARTS and before[:1].isupper():
        return True
    if before[:1].isupper() and not before[:1].isascii():
        return True
    after = text[end:]
    if after.startswith(" ") and len(after) > 1:
        word = after[1:].split(" ", 1)[0]
        if word[:1].isupper() and not word[:1].isascii():
            return True
        if PARTICLE.match(word):
            return True
    return False


PARTICLE = re.compile(r"(?:al|el|ul|ad|as|ash|an|ar|at|az|bin|ibn)-[A-Z]")


def extract_names(text: str, generic: Mapping[str, float] | None = None) -> list[str]:
    """Distinct names in `text`, lower-cased: whole names first, then the endings of the longer ones.
    `generic`: `lower_case_shares` of the archive (no word is generic without it)."""
    wholes: list[str] = []
    endings: list[str] = []
    for span in name_spans(text):
        whole, ends = span_names(span, generic)
        wholes += whole
        endings += ends
    return list(dict.fromkeys(wholes + endings))
