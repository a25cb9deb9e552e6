"""The answerer beside other documents: a short memo next to the briefing, then the same store with
~1,500 chunks of unrelated prose (bench.corpus). Each scenario has a temp store of its own.

a) A second document is answered from, named by its own title (never "The article says"), and a
   question about another year than the one it gives is refused.
b) (slow) Among ~1,500 distractor chunks, questions about the briefing get the same first citation
   span as on the briefing alone, the memo question the same as beside the briefing only, and
   near-miss questions stay refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import ingest
from service.engine.chain import BriefingQA

from .conftest import make_settings

ARTICLE = "how-russia-could-help-solve-the-north-korea-crisis"
MEMO_ID = "arctic-shipping-memo"
MEMO = (
    "Arctic shipping memo\n\n"
    "In 2018, the Kremlin set a goal of 80 million tonnes of cargo on the Northern Sea Route by 2024. "
    "Actual traffic reached about 34 million tonnes in 2023, well short of the target.\n"
)
NOTE_ID = "harbour-note"
NOTE = (
    "Harbour note\n\n"
    "Alexei Likhachev told reporters in Murmansk that icebreaker escorts would be free of charge for the "
    "first winter.\n"
)
DISTRACTOR_CHUNKS = 1500


def bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"engine bug: {reason}")


MEMO_2023 = ("refused ('the best passage does not mention 2023'): the learned scorer ranks the memo's 2018 "
             "target sentence over the one with the 2023 figure, and the numbers check refuses it")


def build_store(folder: Path, extra: list[Path]) -> Any:
    """The bundled briefing, then `extra` files and folders as ordinary documents; no forked encoder."""
    settings = make_settings(folder)
    report = ingest(settings, overlap=False)
    assert not report.errors and report.documents >= 7, report.to_dict()
    if extra:
        report = ingest(settings, paths=extra, overlap=False)
        assert not report.errors, report.errors
    return settings


def check_citations(qa: Any, result: Any) -> None:
    for c in result.citations:
        assert c.quote == qa.store.get_document(c.doc_id).text[c.start:c.end]
        assert 0 < len(c.quote) <= 400
        assert f"[{c.n}]" in result.answer


def first_span(result: Any) -> tuple[str, int, int] | None:
    c = result.citations[0] if result.citations else None
    return (c.doc_id, c.start, c.end) if c else None


@pytest.fixture(scope="module")
def extra_docs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("memos")
    memo = folder / f"{MEMO_ID}.txt"
    note = folder / f"{NOTE_ID}.txt"
    memo.write_text(MEMO, encoding="utf-8")
    note.write_text(NOTE, encoding="utf-8")
    return [memo, note]


@pytest.fixture(scope="module")
def memo_qa(tmp_path_factory: pytest.TempPathFactory, extra_docs: list[Path]) -> BriefingQA:
    settings = build_store(tmp_path_factory.mktemp("memo-store"), extra_docs)
    qa = BriefingQA(settings).load()
    ids = {r.doc_id for r in qa.store.documents()}
    assert {ARTICLE, MEMO_ID, NOTE_ID} <= ids
    return qa


# ---------------------------------------------------------------------------------------
# a) A memo beside the briefing
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        pytest.param("How much cargo moved on the Northern Sea Route in 2023?", marks=bug(MEMO_2023)),
        pytest.param("How many tonnes of cargo did the Northern Sea Route actually handle in 2023?",
                     marks=bug(MEMO_2023)),
    ],
)
def test_memo_fact_is_cited_from_the_memo_under_its_own_title(memo_qa: BriefingQA, question: str) -> None:
    result = memo_qa.ask(question)
    assert not result.refused, result.notes
    first = result.citations[0]
    assert first.doc_id == MEMO_ID
    assert "2023" in first.quote and "34" in first.quote
    assert "80 million" not in first.quote, "the 2018 target is not the 2023 traffic"
    # The memo is not the briefing article: it is named by its own title.
    assert "The article says" not in result.answer
    assert "Arctic shipping memo" in result.answer
    assert all(c.doc_id == MEMO_ID for c in result.citations)
    check_citations(memo_qa, result)


def test_memo_target_is_the_2018_sentence(memo_qa: BriefingQA) -> None:
    result = memo_qa.ask("What cargo goal did the Kremlin set for the Northern Sea Route?")
    assert not result.refused, result.notes
    assert result.citations[0].doc_id == MEMO_ID
    assert "80 million" in result.citations[0].quote
    assert "The article says" not in result.answer
    check_citations(memo_qa, result)


@pytest.mark.parametrize(
    "question",
    [
        "How much cargo moved on the Northern Sea Route in 2021?",
        "How many icebreakers escorted ships on the Northern Sea Route in 2023?",
    ],
)
def test_memo_near_misses_are_refused(memo_qa: BriefingQA, question: str) -> None:
    result = memo_qa.ask(question)
    assert result.refused, result.answer
    assert result.citations == []


@pytest.mark.parametrize(
    "question",
    [
        pytest.param("2023年北方海航道的货运量是多少？", marks=bug(
            "the Chinese question about 2023 traffic is answered with the 2018 target sentence (80 million "
            "tonnes by 2024): the year asked about only constrains the span for English questions")),
        pytest.param("Сколько грузов перевезли по Северному морскому пути в 2023 году?", marks=bug(
            "the Russian question about 2023 traffic is answered with the 2018 target sentence (80 million "
            "tonnes by 2024): the year asked about only constrains the span for English questions")),
    ],
)
def test_memo_fact_asked_in_chinese_and_russian(memo_qa: BriefingQA, question: str) -> None:
    result = memo_qa.ask(question)
    assert not result.refused, result.notes
    first = result.citations[0]
    assert first.doc_id == MEMO_ID and "34 million" in first.quote, result.answer
    check_citations(memo_qa, result)


def test_briefing_answers_still_come_from_the_article(memo_qa: BriefingQA) -> None:
    result = memo_qa.ask("Which two bodies of the U.S. government clashed in 2016 over China policy?")
    assert not result.refused
    assert result.citations[0].doc_id == ARTICLE
    assert "White House and the Pentagon" in result.citations[0].quote
    assert result.answer.startswith("The article says")
    check_citations(memo_qa, result)


def test_who_question_answered_by_a_sentence_opening_with_the_name(memo_qa: BriefingQA) -> None:
    result = memo_qa.ask("Who told reporters that icebreaker escorts would be free?")
    assert not result.refused, result.notes
    assert result.citations[0].doc_id == NOTE_ID
    assert "Likhachev" in result.citations[0].quote


# ---------------------------------------------------------------------------------------
# b) The same store among ~1,500 chunks of unrelated prose
# ---------------------------------------------------------------------------------------

FACTOIDS = [
    pytest.param("Which two bodies of the U.S. government clashed in 2016 over China policy?",
                 "White House and the Pentagon", marks=bug(
                     "among the distractors the part's probability falls to 0.14, under the threshold (0.23)")),
    ("What development in Russia's east do tensions on the peninsula hold back?", "Far East"),
    ("Which city appears in the article's photo caption?", "Wonsan"),
    ("What does the author call more dangerous for U.S. security than quarrels over reefs and rocks?",
     "Korean Peninsula"),
    ("What did Chinese television applaud in late March 2017?", "Pacific Fleet"),
    ("Since which crisis have Chinese interpretations welcomed Russian attention?", "2014 Ukraine crisis"),
    ("What does the Global Times editorial say Washington understands about Beijing?", "control"),
]
NEAR_MISSES = [
    "How many submarines does Russia's Pacific Fleet operate?",
    "What did Japan's foreign ministry say about the Pacific Fleet's sortie?",
    "What sanctions did the Global Times editorial demand?",
    "How many nuclear warheads does Pyongyang hold according to the journal?",
    "What did Sergei Lavrov say about the Izvestiya headline?",
    "How much did Russia invest in the Russian Far East in 2016?",
    "On what exact date did the Syria strike take place?",
]


@pytest.fixture(scope="module")
def alone_qa(tmp_path_factory: pytest.TempPathFactory) -> BriefingQA:
    return BriefingQA(build_store(tmp_path_factory.mktemp("alone-store"), [])).load()


@pytest.fixture(scope="module")
def crowded_qa(tmp_path_factory: pytest.TempPathFactory, extra_docs: list[Path]) -> BriefingQA:
    from bench.corpus import build_corpus

    folder = tmp_path_factory.mktemp("distractors")
    try:
        corpus = build_corpus(folder, DISTRACTOR_CHUNKS)
    except SystemExit as exc:  # too little prose installed on this machine
        pytest.skip(f"bench.corpus cannot build {DISTRACTOR_CHUNKS} chunks here: {exc}")
    assert corpus.chunks >= DISTRACTOR_CHUNKS
    settings = build_store(tmp_path_factory.mktemp("crowded-store"), [*extra_docs, folder])
    qa = BriefingQA(settings).load()
    assert qa.searcher.documents and len(qa.searcher.documents) >= 7 + 2 + len(corpus.files)
    return qa


@pytest.mark.slow
@pytest.mark.parametrize(("question", "phrase"), FACTOIDS)
def test_briefing_factoids_are_answered_alike_among_distractors(
    alone_qa: BriefingQA, crowded_qa: BriefingQA, question: str, phrase: str
) -> None:
    alone, crowded = alone_qa.ask(question), crowded_qa.ask(question)
    assert not alone.refused, alone.notes
    assert alone.citations[0].doc_id == ARTICLE and phrase in alone.citations[0].quote, alone.answer
    assert not crowded.refused, crowded.notes
    assert first_span(crowded) == first_span(alone), crowded.answer
    assert all(c.doc_id == ARTICLE for c in crowded.citations), "no distractor is cited"
    check_citations(crowded_qa, crowded)


@pytest.mark.slow
@bug(MEMO_2023)
def test_memo_fact_is_answered_alike_among_distractors(memo_qa: BriefingQA, crowded_qa: BriefingQA) -> None:
    question = "How much cargo moved on the Northern Sea Route in 2023?"
    beside, crowded = memo_qa.ask(question), crowded_qa.ask(question)
    assert not crowded.refused, crowded.notes
    assert first_span(crowded) == first_span(beside)
    assert crowded.citations[0].doc_id == MEMO_ID and "34" in crowded.citations[0].quote
    assert "The article says" not in crowded.answer
    check_citations(crowded_qa, crowded)


@pytest.mark.slow
@pytest.mark.parametrize("question", NEAR_MISSES)
def test_near_misses_are_refused_with_and_without_distractors(
    alone_qa: BriefingQA, crowded_qa: BriefingQA, question: str
) -> None:
    for qa in (alone_qa, crowded_qa):
        result = qa.ask(question)
        assert result.refused, (qa.settings.store_dir, result.answer)
        assert result.citations == []
