"""The citation extractor: the bundled article, a second article with other outlets, edge cases."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.citations import extract_sources, extract_sources_yaml
from ingest.manifest import SourceEntry, load_manifest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "corpus" / "briefing" / "manifest.yaml"


@pytest.fixture(scope="module")
def article() -> str:
    manifest = load_manifest(MANIFEST)
    return manifest.resolve(manifest.article.path).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def gold() -> list[SourceEntry]:
    return load_manifest(MANIFEST).sources


@pytest.fixture(scope="module")
def found(article: str) -> list[SourceEntry]:
    return extract_sources(article)


def _by_outlet(sources: list[SourceEntry]) -> dict[str, SourceEntry]:
    return {s.outlet.casefold(): s for s in sources}


def _bracketed(text: str) -> set[str]:
    """Every [...] the article gives, as written."""
    return {m.strip() for m in re.findall(r"\[([^\[\]]+)\]", text)}


# --- the bundled article ------------------------------------------------------------------------


def test_finds_exactly_the_six_sources_of_the_manifest(found, gold):
    assert len(found) == 6
    assert set(_by_outlet(found)) == set(_by_outlet(gold))


def test_originals_are_the_brackets_the_article_gives(found, gold, article):
    """Where the article gives the outlet or title in [...], the extractor reports exactly that;
    where it does not (the manifest knows Известия from elsewhere), nothing is invented."""
    brackets = _bracketed(article)
    mine = _by_outlet(found)
    for expected in gold:
        source = mine[expected.outlet.casefold()]
        for field in ("outlet_original", "original_title"):
            value = getattr(expected, field)
            wanted = value if value in brackets else None
            assert getattr(source, field) == wanted, (expected.outlet, field)


def test_every_quote_is_an_exact_substring(found, article):
    for source in found:
        assert source.quotes, source.id
        for quote in source.quotes:
            assert quote in article, (source.id, quote)


def test_quotes_cover_the_manifest(found, gold):
    """Each quote of the hand-written manifest is found (up to the article's NBSPs)."""
    mine = _by_outlet(found)

    def fold(s: str) -> str:
        return " ".join(s.split())

    for expected in gold:
        got = {fold(q) for q in mine[expected.outlet.casefold()].quotes}
        for quote in expected.quotes:
            assert fold(quote) in got, (expected.id, quote)


def test_fields_of_the_bundled_sources(found):
    mine = _by_outlet(found)
    expected = {
        "global times": ("editorial", "zh", "in mid-March"),
        "finance and economics": ("magazine appraisal", "zh", "at the conclusion of 2014"),
        "chinese tv news": ("news broadcast", "zh", "At the end of March 2017"),
        "izvestiya": ("headline", "ru", "a few weeks back"),
        "russian military press": ("headline", "ru", None),
        "northeast asia forum": ("journal article", "zh", None),
    }
    for outlet, (kind, language, date) in expected.items():
        source = mine[outlet]
        assert (source.type, source.language, source.date) == (kind, language, date), outlet
    assert mine["finance and economics"].title == "North Korea and Russia Embrace"
    assert mine["izvestiya"].title.startswith("General Staff: U.S. Missile Defense")
    assert mine["global times"].title == "Unsigned editorial"


def test_the_authors_belong_to_the_journal(found):
    """Later sentences ("The authors", "it is explained", "the analysis") merge into the journal."""
    forum = _by_outlet(found)["northeast asia forum"]
    assert "direct attack against Russian national interests" in forum.quotes
    assert "强大的军事力量…仍然具有重要意义" in forum.quotes
    assert any(q.startswith("Such instances of nuclear proliferation, it is explained")
               for q in forum.quotes)


def test_no_generic_mentions(found):
    outlets = " ".join(s.outlet for s in found).casefold()
    for generic in ("western", "analyst", "forum", "interpretation", "trump", "national interest"):
        if generic == "forum":
            assert [s.outlet for s in found if "forum" in s.outlet.casefold()] == [
                "Northeast Asia Forum"]
        else:
            assert generic not in outlets


def test_ids_are_unique_slugs(found):
    ids = [s.id for s in found]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9-]*", i) for i in ids)


def test_yaml_round_trips_into_source_entries(article):
    data = yaml.safe_load(extract_sources_yaml(article))
    entries = [SourceEntry.model_validate(item) for item in data["sources"]]
    assert [e.outlet for e in entries] == [s.outlet for s in extract_sources(article)]


# --- a second article: other outlets, other languages ---------------------------------------------

SECOND = """Seoul’s Lonely Diplomacy

Seoul’s new government has found few friends abroad. Western media have mostly treated its \
overtures as naive, and analysts in Washington remain skeptical.

Moscow sees things differently. On 12 May the Russian daily Kommersant [Коммерсантъ] ran a \
front-page story under the headline “The Peninsula Is Not a Chessboard” [Полуостров — не \
шахматная доска], arguing that sanctions had run their course. The newspaper concluded that \
“only direct talks can stop the spiral” [только прямые переговоры могут остановить спираль].

Beijing has been more guarded. Last week People’s Daily [人民日报] wrote that “dialogue is the \
only way out” [对话是唯一出路]. Japanese television reported that the talks would resume soon. \
The Belt and Road Initiative [一带一路] was not mentioned. As this column has argued before, the \
“grand bargain” everyone talks about remains a mirage.
"""


@pytest.fixture(scope="module")
def second() -> dict[str, SourceEntry]:
    return _by_outlet(extract_sources(SECOND))


def test_second_article_sources(second):
    assert set(second) == {"kommersant", "people’s daily", "japanese television"}


def test_second_article_kommersant(second):
    source = second["kommersant"]
    assert source.outlet_original == "Коммерсантъ"
    assert source.title == "The Peninsula Is Not a Chessboard"
    assert source.original_title == "Полуостров — не шахматная доска"
    assert source.language == "ru"
    assert source.date == "On 12 May"
    # "The newspaper concluded" refers back to Kommersant
    assert source.quotes == ["only direct talks can stop the spiral",
                             "только прямые переговоры могут остановить спираль"]


def test_second_article_peoples_daily_and_television(second):
    daily = second["people’s daily"]
    assert (daily.outlet_original, daily.language, daily.date) == ("人民日报", "zh", "Last week")
    assert daily.quotes == ["dialogue is the only way out", "对话是唯一出路"]
    tv = second["japanese television"]
    assert (tv.language, tv.type) == ("ja", "news broadcast")
    assert tv.quotes == ["Japanese television reported that the talks would resume soon."]


def test_second_article_quotes_are_substrings():
    for source in extract_sources(SECOND):
        assert all(q in SECOND for q in source.quotes), source.id
    assert {s.id for s in extract_sources(SECOND)} == {"kommersant", "peoples-daily",
                                                       "japanese-television"}


def test_script_decides_language_and_quote_before_cue():
    text = ("“We will not be intimidated,” Rodong Sinmun [로동신문] declared on Monday. "
            "The Asahi Shimbun [朝日新聞] wrote that “peace is near” [平和は近い].")
    sources = _by_outlet(extract_sources(text))
    assert sources["rodong sinmun"].language == "ko"
    assert sources["rodong sinmun"].quotes == ["We will not be intimidated"]
    assert sources["asahi shimbun"].language == "ja"  # Kana in the quote, Han-only name


def test_one_outlet_two_headlines_are_two_sources():
    text = ("Izvestiya ran a headline, “Moscow Waits” [Москва ждёт]. Weeks later a headline from "
            "Izvestiya read “Moscow Acts” [Москва действует].")
    sources = extract_sources(text)
    assert [s.title for s in sources] == ["Moscow Waits", "Moscow Acts"]
    assert len({s.id for s in sources}) == 2
    assert all(s.id.startswith("izvestiya-") for s in sources)


def test_people_and_glossed_terms_are_not_sources():
    text = ("President Trump said that “China will help.” The Belt and Road Initiative [一带一路] "
            "is the concept of a community of common destiny [命运共同体].")
    assert extract_sources(text) == []


# --- edge cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n  ", "No sources are cited here. None at all."])
def test_no_citations(text):
    assert extract_sources(text) == []
    assert yaml.safe_load(extract_sources_yaml(text)) == {"sources": []}


@pytest.mark.parametrize("text", [
    "[", "]", "“", "”", "“[中]", "“”[]", '"""', "Global Times [环球时报 said “hello",
    "A [中文]] “b” [[ c", "The magazine Foo [中] wrote “a” [б] . . . and “unclosed [д",
    "Chinese TV news reported ” stray ] marks [",
])
def test_unbalanced_marks_do_not_crash(text):
    for source in extract_sources(text):
        assert all(q in text for q in source.quotes)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list("Aa Bb.,:“”\"[]中б\n’ ") + ["Times", " said ", " the ",
                                                                    " Chinese TV news "]),
                max_size=60).map("".join))
def test_any_text_gives_valid_entries(text):
    for source in extract_sources(text):
        assert all(q in text for q in source.quotes)
