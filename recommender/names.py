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
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

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


# of the rules below: an index whose names were extracted by other rules extracts them anew (3: the archive's
# modifiers and lower-case acronyms kept beside its lower-case shares, for `whole_names`; 4: and the names joined
# by `and`)
VERSION = 4

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


# A capitalised word the archive writes alone (not inside a longer run of capitalised words) at least
# MIN_MODIFIER_USES times, and at the end of a phrase (before a comma, a full stop, a bracket or the end; or as a
# possessive) in under MODIFIER of those uses, is not a name but a word that modifies the next: an adjective
# (`Libyan` civil war, `Japanese` island, `Confederate` monuments: ends 0-3%) or the first word of a term
# (`Richter` scale: 0 of 43). A name ends a phrase often (`Libya` 52%, `Rome` 60%, a surname before a verb:
# `Putin` 13%, `Trump` 6%).
MODIFIER = 0.05
MIN_MODIFIER_USES = 10
RUNS_ON = CONNECTORS | {"and", "or"}  # lower-case words inside names (`Jammu and Kashmir`): not counted


def modifier_shares(texts: Iterable[str]) -> dict[str, float]:
    """For each capitalised word written alone (sentence starts left out) at least MIN_MODIFIER_USES times in
    `texts` before a lower-case word or the end of a phrase: the share of those uses that end a phrase, for the
    words under MODIFIER (the archive's modifiers)."""
    ends: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    for text in texts:
        matches = list(WORD.finditer(text))
        sentence_start = True
        for i, match in enumerate(matches):
            word = match.group()
            after = matches[i + 1] if i + 1 < len(matches) else None
            if word[0].isupper() and not sentence_start and not _after_capital(text, matches, i):
                gap = text[match.end() : after.start()] if after else "."
                if gap.strip(" ") or word.endswith(("'s", "’s")):
                    ends[_clean(word)] += 1
                elif after is not None and after.group()[0].islower() and after.group() not in RUNS_ON:
                    runs[_clean(word)] += 1
            sentence_start = _ends_clause(text, match)
    shares = {}
    for word, count in runs.items():
        uses = count + ends[word]
        if uses >= MIN_MODIFIER_USES and ends[word] / uses < MODIFIER:
            shares[word] = round(ends[word] / uses, 3)
        elif uses >= MIN_USES and not ends[word] and _people_of_a_place(word, ends, runs):
            shares[word] = 0.0
    return shares


def _people_of_a_place(word: str, ends: Counter[str], runs: Counter[str]) -> bool:
    """`word` is a people's form of a word that often ends a phrase, a place (`Ukrainian` of `Ukraine`, ends 45%):
    where an archive is too small to show a modifier by its count alone, the form tells (never `Iran`, of the
    `IRA`: Iran ends phrases itself, and a word read this way ends none)."""
    for ending in PEOPLE_ENDINGS:
        stem = word.removesuffix(ending)
        if stem == word or len(stem) < 3:
            continue
        for place in (stem + tail for tail in PLACE_TAILS):
            uses = ends[place] + runs[place]
            if uses >= MIN_USES and ends[place] / uses >= PLACE_ENDS:
                return True
    return False


PEOPLE_ENDINGS = ("n", "an", "ian", "ese", "i", "ish")  # Korea/Korean, Lanka/Lankan, Palestine/Palestinian
PLACE_TAILS = ("", "a", "e", "o", "y", "ium")  # Ukraine/Ukrainian, Mexico/Mexican, Italy/Italian, Belgium/Belgian
PLACE_ENDS = 0.2  # a word ending a phrase this often is a name itself (countries 30-66%)


def _after_capital(text: str, matches: list[re.Match[str]], i: int) -> bool:
    """The word `matches[i]` follows a capitalised word with only spaces between: it is inside a longer run."""
    if i == 0:
        return False
    before = matches[i - 1]
    return before.group()[0].isupper() and not text[before.end() : matches[i].start()].strip(" ")


ACRONYM = re.compile(r"((?:[a-z][\w'-]* ){1,6})\(([A-Z]{2,6})\)")


def lower_case_acronyms(texts: Iterable[str]) -> set[str]:
    """The acronyms `texts` introduce after the lower-case words they stand for, a common noun's short form, not
    a name: `artificial intelligence (AI)`, `gross domestic product (GDP)`; lower-cased."""
    found = set()
    for text in texts:
        for match in ACRONYM.finditer(text):
            acronym = match.group(2)
            words = match.group(1).split()[-len(acronym) :]
            if len(words) == len(acronym) and "".join(w[0] for w in words) == acronym.lower():
                found.add(acronym.lower())
    return found


# Two names joined by `and` are one name when the archive writes them joined more often than the first ends a name
# (or the second begins one) otherwise: `Jammu and Kashmir` (Jammu ends a name otherwise in few of its uses),
# `Food and Agriculture Organization`, `Trinidad and Tobago`; never `France and Germany`.
MIN_JOINED = 5
JOINED = 0.5


def joined_pairs(texts: Iterable[str]) -> dict[str, float]:
    """For each pair of words `x and y` that `texts` write between two runs of capitalised words (`Jammu and
    Kashmir`; `and the` too) at least MIN_JOINED times: the larger share of those uses among the uses of `x`
    ending a run (sentence starts left out) and of `y` beginning one, for the pairs at least JOINED joined,
    keyed `x and y` (the runs' last and first words)."""
    joined: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    starts: Counter[str] = Counter()
    for text in texts:
        spans = name_spans(text)
        openers = _sentence_starts(text)
        linked = [
            i + 1 < len(spans) and (m := AND.match(text, spans[i].end)) is not None and m.end() == spans[i + 1].start
            for i in range(len(spans))
        ]
        for i, span in enumerate(spans):
            initial = span.start in openers
            if linked[i]:
                joined[f"{span.words[-1]} and {spans[i + 1].words[0]}"] += 1
            elif not (initial and len(span.words) == 1):
                ends[span.words[-1]] += 1
            if not (i and linked[i - 1]) and not initial:
                starts[span.words[0]] += 1
    shares = {}
    for pair, count in joined.items():
        if count < MIN_JOINED:
            continue
        first, last = pair.split(" and ")
        share = max(count / (count + ends[first]), count / (count + starts[last]))
        if share >= JOINED:
            shares[pair] = round(share, 3)
    return shares


def _sentence_starts(text: str) -> set[int]:
    """Where the sentences and clauses of `text` begin (the offsets of their first words)."""
    found = set()
    sentence_start = True
    for match in WORD.finditer(text):
        if sentence_start:
            found.add(match.start())
        sentence_start = _ends_clause(text, match)
    return found


def word_roles(texts: Iterable[str]) -> dict[str, Any]:
    """What an index keeps of its archive's words for names (`names.generic.json`): the lower-case shares, the
    modifiers, the lower-case acronyms and the names joined by `and`. `not_names_of` reads the modifiers and
    acronyms back, `joined_of` the joined names."""
    texts = list(texts)
    return {
        "shares": lower_case_shares(texts),
        "modifiers": modifier_shares(texts),
        "acronyms": sorted(lower_case_acronyms(texts)),
        "joined": joined_pairs(texts),
    }


def joined_of(saved: Mapping[str, object]) -> frozenset[str]:
    """The pairs `x and y` that `word_roles` found the archive writes as one name (`joined_pairs`)."""
    joined = saved.get("joined", {})
    return frozenset(joined if isinstance(joined, dict) else ())


def not_names_of(saved: Mapping[str, object]) -> frozenset[str]:
    """The words `word_roles` found are never a name alone: the modifiers and the lower-case acronyms."""
    modifiers = saved.get("modifiers", {})
    acronyms = saved.get("acronyms", [])
    return frozenset(modifiers if isinstance(modifiers, dict) else ()) | frozenset(
        acronyms if isinstance(acronyms, list) else ()
    )


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
    text: str,
    generic: Mapping[str, float] | None = None,
    known: Container[str] = (),
    not_names: Container[str] = (),
    joined: Container[str] = (),
) -> list[tuple[str, int, int]]:
    """The names `text` writes whole, lower-cased, with where they are written (start, end), in its order: each
    span's whole name (one word only when the archive nearly always capitalises it: not `International`), and
    around a title before a person's name, the place and the person (`Michigan Governor Gretchen Whitmer`:
    `michigan` when `known` holds it as a name, and `gretchen whitmer`; the person two words or more, not
    beginning with a title). Never another part of a longer name: not `airlines flight` of `Malaysia Airlines
    Flight`, not `korea` of `North Korea`, not `putin` of `Vladimir Putin`, not `orleans` of `New Orleans`, not
    `abu musab` of `Abu Musab al-Barnawi` or `Jeanine` of `Jeanine Áñez` (words the spans cannot hold); one name
    across a comma before a dotted abbreviation (`Washington, D.C.`) and across a dash inside a longer name
    (`Kampala–Gulu Highway`) or an `and` after a name of something (`Department of Health and Social Care`,
    not `Social Care`) or between names the archive writes joined (`joined`, `names.joined_pairs`: `Jammu and
    Kashmir`, never `Jammu` or `Kashmir` of it: `_joint`); across a name's lower-case particles (`Hamad ibn Isa
    Al Khalifa`, `Ursula von der Leyen`: `_with_particles`); with a word before it that belongs to it (`al
    Qaeda`, `in The Hague`, `_lead`). Never what only looks like a name (`_not_a_name`): a word of `not_names` alone
    (the archive's modifiers and lower-case acronyms, `names.not_names_of`: `Libyan`, `Richter`, `AI`), a
    people's name made of a `known` place's (`North Korean`), a currency's prefix (`US$`), a name written only
    as a measure of size (`the size of Neptune`)."""
    generic = generic or {}

    def title(word: str) -> bool:
        return word in COMMON or generic.get(word, 0.0) >= TITLE_WORD

    def proper(word: str) -> bool:
        return word not in COMMON and word not in CONNECTORS and generic.get(word, 0.0) < GENERIC_LAST_WORD

    found = []
    spans = _with_particles(text, name_spans(text))
    read: set[int] = set()  # the spans read as a name's end already
    for number, span in enumerate(spans):
        words, end = span.words, span.end
        if number in read or _cut(text, span.start, end):
            continue
        if len(words[-1]) == 1 and text[end : end + 2] == ". " and number + 1 < len(spans):
            after = spans[number + 1]  # an initial: `George W. Bush` is one name
            if after.start == end + 2 and not _cut(text, after.start, after.end):
                found.append((f"{span.whole}. {after.whole}", span.start, after.end))
                read.add(number + 1)
            continue
        if end < len(text) and text[end] == "." and "." in text[span.starts[-1] : end]:
            end += 1  # an abbreviation's last dot: `D.C.`
        joint = _joint(text, spans, number, end, generic, joined)
        if joint is not None:
            name, end, last = joint
            found.append((name, span.start, end))
            read.update(range(number + 1, last + 1))
            continue
        after_title = _place_and_person(text, span, known, title, proper)
        if after_title:  # `Prime Minister of | Papua New Guinea Michael Somare`: the place and the person, not both
            found.extend(after_title)
            continue
        whole, _ = span_names(span, generic)
        if whole and (len(words) > 1 or proper(words[0])) and not _not_a_name(text, span, end, known, not_names):
            particle, start = _lead(text, span.start)
            found.append((particle + whole[0], start, end))
        found.extend(_around_title(text, span, end, known, not_names, title, proper))
    return found


def _around_title(
    text: str,
    span: Span,
    end: int,
    known: Container[str],
    not_names: Container[str],
    title: Callable[[str], bool],
    proper: Callable[[str], bool],
) -> list[tuple[str, int, int]]:
    """Around a title inside `span` (ending at `end`), the person after it and the known place before it
    (`Michigan Governor Gretchen Whitmer`; `King of Bahrain Hamad ibn Isa`), else nothing."""
    words = span.words
    found: list[tuple[str, int, int]] = []
    for cut in range(len(words) - 2):  # place (or none), title(s), person
        titles = cut
        while titles < len(words) and title(words[titles]):
            titles += 1
        person = words[titles:]
        if titles == cut or len(person) < 2 or not proper(person[0]):
            continue
        first, last = 0, cut  # the place's words
        if words[titles - 1] in CONNECTORS:  # `King of Bahrain Hamad ibn Isa`: the title's place, then the person
            first = last = titles
            while last < len(words) - 2 and " ".join(words[first:last]) not in known:
                last += 1
            titles = last
            if " ".join(words[first:last]) not in known or not proper(words[titles]):
                break  # where the place ends and the person begins, the names known do not say
        found.append((" ".join(words[titles:]), span.starts[titles], end))
        place = " ".join(words[first:last])
        named = all(proper(w) for w in words[first:last]) and place in known
        if named and not _not_people(place, known, not_names):
            place_end = _word_end(text, span.starts[last - 1])
            if text[place_end : place_end + 1] == "." and "." in text[span.starts[last - 1] : place_end]:
                place_end += 1  # `U.S.` of `U.S. President Donald Trump`
            found.append((place, span.starts[first], place_end))
        break
    return found


TITLE_OF = re.compile(r"\b([A-Za-z]+) of (?:the )?$")


def _place_and_person(
    text: str, span: Span, known: Container[str], title: Callable[[str], bool], proper: Callable[[str], bool]
) -> list[tuple[str, int, int]]:
    """For a span written right after a title and `of` (`Prime Minister of Papua New Guinea Michael Somare`, the
    span beginning at `Papua`): the longest `known` place it begins with and the person after it (two proper words
    or more), else nothing."""
    before = TITLE_OF.search(text[max(0, span.start - 40) : span.start])
    words = span.words
    # a title before a name is written capitalised (`Prime Minister of`, `Mayor of`; not `the territory of`)
    if before is None or not before.group(1)[0].isupper() or not title(before.group(1).lower()) or len(words) < 3:
        return []
    for cut in range(len(words) - 2, 0, -1):
        place = " ".join(words[:cut])
        if place in known and all(proper(w) for w in words[cut:]):
            place_end = _word_end(text, span.starts[cut - 1])
            return [(place, span.start, place_end), (" ".join(words[cut:]), span.starts[cut], span.end)]
    return []


DOTTED = re.compile(r"(?:[A-Z]\.)+[A-Z]")  # `D.C`, `N.Y` (its last dot outside the word)
DASHES = ("\u2013", "\u2014")
MEASURE = re.compile(r"\b(?:size|mass|diameter|width|length|height|weight)s? of (?:the )?$", re.IGNORECASE)


AND = re.compile(r" and (?:the )?")
KIND_WORD = 0.2  # a word written in lower case this often names a kind of thing: `highway` 0.69, `treaty` 0.44


def _joint(
    text: str, spans: list[Span], number: int, end: int, generic: Mapping[str, float], joined: Container[str] = ()
) -> tuple[str, int, int] | None:
    """The span `number` (ending at `end`) and those after it read as one name, (the name, where it ends, the
    last span's number); None when it stands alone. `Washington, D.C.`: a comma before a dotted abbreviation
    of a state or district (named as `Washington D.C.` is). `Kampala–Gulu Highway`, `China–Pakistan Economic
    Corridor`: names joined by dashes with no space around them and ending in a word that names a kind of
    thing (`generic` at least KIND_WORD; where `generic` does not know the word, a small archive's, when a side
    has several words); names either side of a dash otherwise stay apart, each a name (`Israel–Hamas war`,
    `Cuba–United States relations`: `states` 0.14)."""
    span = spans[number]  # (`Islamic State of Iraq and the Levant`: a name `of` something joins one after `and`;
    # so do two the archive writes joined, `joined`: `Jammu and Kashmir`, `Food and Agriculture Organization`)
    if number + 1 >= len(spans):
        return None
    after = spans[number + 1]
    if text[end : end + 2] == ", " and after.start == end + 2 and DOTTED.fullmatch(text[after.start : after.end]):
        dot = 1 if text[after.end : after.end + 1] == "." else 0
        return f"{span.whole} {after.whole}", after.end + dot, number + 1
    joiner = AND.match(text, end)
    pair = f"{span.words[-1]} and {after.words[0]}"
    if joiner and after.start == joiner.end() and ("of" in span.words or pair in joined):
        return f"{span.whole} {joiner.group().strip().lower()} {after.whole}", after.end, number + 1
    if text[end : end + 1] in DASHES and after.start == end + 1 and end == span.end:
        last, name = number, span.whole
        while last + 1 < len(spans):
            following = spans[last + 1]
            if not (text[spans[last].end : spans[last].end + 1] in DASHES and following.start == spans[last].end + 1):
                break
            last += 1
            name += "\u2013" + following.whole
        kind = generic.get(spans[last].words[-1])
        several = any(len(spans[i].words) > 1 for i in range(number, last + 1))
        if (kind is None and several) or (kind or 0.0) >= KIND_WORD:
            return name, spans[last].end, last
    return None


# lower-case particles inside a person's name that `name_spans` does not keep (it keeps `bin`, `al`, `de`, `van`...)
PARTICLES = re.compile(r" (?:(?:ibn|bint|bin|al|der|den|dos|das|di|de|da|del|van|von|la|le|y) ){1,2}")


def _with_particles(text: str, spans: Iterable[Span]) -> list[Span]:
    """`spans` with those that lower-case particles alone part read as one (`Hamad ibn Isa Al Khalifa`, `Ursula von
    der Leyen`): a particle inside a name does not end it."""
    merged: list[Span] = []
    for span in spans:
        if merged and (gap := PARTICLES.match(text, merged[-1].end)) and gap.end() == span.start:
            before = merged.pop()
            inside = list(re.finditer(r"\S+", gap.group()))
            words = before.words + tuple(m.group() for m in inside) + span.words
            starts = before.starts + tuple(gap.start() + m.start() for m in inside) + span.starts
            span = Span(before.start, span.end, words, starts)
        merged.append(span)
    return merged


LEADS = re.compile(r"(?:(?<=[a-z,] )The|\b(al|el)) $")


def _lead(text: str, start: int) -> tuple[str, int]:
    """A word before a span that is part of its name, (the name's first word and a space, where it begins): a
    particle written apart (`al Qaeda`), or `The` capitalised within a sentence (`in The Hague`)."""
    match = LEADS.search(text, max(0, start - 6), start)
    if match is None:
        return "", start
    return f"{(match.group(1) or 'the')} ", match.start()


def _not_a_name(text: str, span: Span, end: int, known: Container[str], not_names: Container[str]) -> bool:
    """The span only looks like a name: a currency's prefix (`US$24 million`), a word the archive shows is none
    (`not_names`) or a people's name of a `known` place (`_not_people`), or a name written only as a measure
    (`the size of Neptune`, of a planet found; the event is not about Neptune)."""
    if text[end : end + 1] == "$":
        return True
    if _not_people(span.whole, known, not_names):
        return True
    return bool(MEASURE.search(text, 0, span.start))


LOCATOR = re.compile(
    r"\b(?:near|outside|close to|(?:north|south|east|west)(?:east|west)?(?:ern)? of|(?:km|kilometres|kilometers|miles) "
    r"(?:from|of))(?: the)? $",
    re.IGNORECASE,
)


def locator(text: str, start: int) -> bool:
    """The name at `start` is written as a locator of another place (`Glendale, Arizona, near Phoenix`, `a Russian
    city close to Chechnya`): where something happened is near it, not in it."""
    return bool(LOCATOR.search(text, max(0, start - 40), start))


def _not_people(name: str, known: Container[str], not_names: Container[str]) -> bool:
    """`name` says a people or their adjective rather than a name: one word the archive shows is no name alone
    or its plural (`Libyan`, `Palestinians`), or several that are a `known` place's name with a people's ending
    (`North Korean`; one word is not read that way: `Iran` is not the people of the `IRA`)."""
    if " " not in name:  # `Palestinians`: the plural of a people's modifier (not `Philippines`)
        plural = name.endswith("s") and name[:-1] in not_names and name[:-1].endswith(PEOPLE_ENDINGS)
        return name in not_names or plural
    return any(name.endswith(e) and name[: -len(e)] in known for e in PEOPLE_ENDINGS)


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
