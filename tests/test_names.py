"""Proper names of real headlines from the sample archive, as the index stores them and the features share them."""

from __future__ import annotations

from conftest import PUTIN

from recommender.names import extract_names


def test_the_putin_event_names_its_people_and_places(sample_archive):
    names = extract_names(sample_archive.events[PUTIN].headline)
    # whole runs first, then their words; lower-cased; a title stays part of the run it opens
    assert names[:2] == ["russian president vladimir putin", "defence minister sergey shoygu"]
    assert {"putin", "shoygu", "syria", "russian", "syrian arab republic"} <= set(names)
    assert len(names) == len(set(names))


def test_connectors_live_inside_names_and_sentence_openers_do_not():
    # "the" opens the sentence; "of" and "the" join words of one name only when a capitalised word follows
    names = extract_names("The Islamic State of Iraq and the Levant captures Palmyra.")
    assert names[0] == "islamic state of iraq" and "the" not in names and "palmyra" in names
    assert "american state of kansas" not in extract_names(
        "An Amtrak passenger train derails west of Dodge City in the American state of Kansas."
    )
    assert extract_names("Three Palestinians are shot and killed by Israeli Defence Forces.")[0] == (
        "israeli defence forces"
    )


def test_possessives_hyphens_and_abbreviations():
    names = extract_names("North Korea's supreme leader Kim Jong-un says his country will soon test a warhead.")
    assert names == ["north korea", "kim jong-un", "north", "korea", "kim", "jong-un"]
    # U.S. does not end the sentence, so the name runs on; a full stop after a word does
    assert extract_names("The U.S. Federal Reserve raises rates.")[0] == "u.s federal reserve"
    # a full stop ends the run; a capitalised sentence opener outside COMMON still counts (IDF weighs it down)
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
    empty = 0
    for event in sample_archive.events.values():
        names = extract_names(event.text)
        empty += not names
        assert all(name == name.lower() and name.strip() == name and name for name in names)
    assert empty < 0.02 * len(sample_archive.events)  # measured: 2 of 1,155 name nothing
