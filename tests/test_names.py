"""Proper names of real headlines, as the index stores them, the features share them and suggestions show them."""

from __future__ import annotations

from conftest import PUTIN

from recommender.names import extract_names, lower_case_shares, name_spans

# real headlines of the full archive, the cases issue 15 found matched by a fragment of a name
LIBERTY = (
    "Digital currency Liberty Reserve is shut down and its founder arrested on money laundering charges in Costa Rica."
)
FED = "The U.S. Federal Reserve raises its benchmark interest rate by a quarter point."
CAPILL = (
    "In New Zealand, Graham Capill, former leader of the Christian Heritage Party, is sentenced to nine years for "
    "sexual abuse of three young girls."
)
BILLY = (
    "Billy Graham began his last crusade in New York. He led the first of three services at Flushing Meadows Corona "
    "Park"
)
LAVROV = (
    "Russian foreign minister Sergey Lavrov calls for the immediate unconditional release of kidnapped soldier Gilad "
    "Shalit."
)
VOTERS = "Voters in Lithuania vote to join the European Union."
INVASION = (
    "2003 Iraq war: The 2003 invasion of Iraq begins as land troops from United States, United Kingdom, Australia "
    "and Poland attack."
)


def test_the_putin_event_names_its_people_whole_and_by_surname(sample_archive):
    names = extract_names(sample_archive.events[PUTIN].headline)
    # whole runs first, then their endings; a title stays part of the run it opens
    assert names[:2] == ["russian president vladimir putin", "defence minister sergey shoygu"]
    assert {"vladimir putin", "putin", "sergey shoygu", "shoygu", "syria", "syrian arab republic"} <= set(names)
    assert not {"sergey", "vladimir", "russian president"} & set(names)  # never a first name or a title alone
    assert len(names) == len(set(names))


def test_a_fragment_of_a_name_is_not_shared():
    generic = lower_case_shares([LIBERTY, FED, "Oil reserve grows.", "A reserve fund.", "Army reserve called."])
    assert set(extract_names(LIBERTY, generic)) & set(extract_names(FED, generic)) == set()  # no "reserve"
    assert "federal reserve" in extract_names(FED, generic)  # the whole name, without "U.S."
    assert set(extract_names(CAPILL)) & set(extract_names(BILLY)) == set()  # no "graham"
    shoygu = extract_names("Defence Minister Sergey Shoygu inspects troops.")
    assert set(shoygu) & set(extract_names(LAVROV)) == set()  # no "sergey"
    assert "putin" in set(extract_names("Putin says so.")) & set(extract_names("Vladimir Putin visits Syria."))


def test_generic_capitalised_words_are_not_names():
    texts = [
        VOTERS,
        *(f"The {w} voters turn out in {p}." for w, p in [("young", "Ohio"), ("many", "Kent"), ("first", "Iowa")]),
    ]
    assert "voters" not in extract_names(VOTERS, lower_case_shares(texts))
    assert "lithuania" in extract_names(VOTERS, lower_case_shares(texts))


def test_a_comma_ends_a_name():
    names = extract_names(INVASION)
    assert {"united states", "united kingdom", "australia", "poland"} <= set(names)
    assert not any("states united" in n or "united states united" in n for n in names)
    spans = [INVASION[s.start : s.end] for s in name_spans(INVASION)]
    assert "United States" in spans and "United Kingdom" in spans


def test_connectors_live_inside_names_and_sentence_openers_do_not():
    # "the" opens the sentence; "of" and "the" join words of one name only when a capitalised word follows
    names = extract_names("The Islamic State of Iraq and the Levant captures Palmyra.")
    assert names[0] == "islamic state of iraq" and "the" not in names and "palmyra" in names
    assert "american state of kansas" not in extract_names(
        "An Amtrak passenger train derails west of Dodge City in the American state of Kansas."
    )
    assert extract_names("Three Palestinians are shot and killed by Israeli Defence Forces.") == [
        "palestinians",
        "israeli defence forces",
        "defence forces",
        "forces",
    ]


def test_possessives_hyphens_and_abbreviations():
    names = extract_names("North Korea's supreme leader Kim Jong-un says his country will soon test a warhead.")
    assert names == ["north korea", "kim jong-un", "korea", "jong-un"]
    # U.S. does not end the sentence, so the name runs on; a full stop after a word does
    assert extract_names("The U.S. Federal Reserve raises rates.")[0] == "u.s federal reserve"
    assert extract_names("Rain falls in Queensland. Roads close in Brisbane.") == [
        "rain",
        "queensland",
        "roads",
        "brisbane",
    ]


def test_days_months_and_counts_are_not_names():
    names = extract_names("On Monday in March, Three people are killed in Mosul after Sunday's storm.")
    assert names == ["mosul"]


def test_every_sample_event_names_something_and_names_are_clean(sample_archive):
    texts = [event.text for event in sample_archive.events.values()]
    generic = lower_case_shares(texts)
    empty = 0
    for text in texts:
        names = extract_names(text, generic)
        empty += not names
        assert all(name == name.lower() and name.strip() == name and name for name in names)
    assert empty < 0.03 * len(texts)
