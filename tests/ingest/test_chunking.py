"""Chunks: exact spans of the document, bounded size, sentence overlap, stable ids."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import SHORT_PARAGRAPH, Chunk, chunk_text
from briefing_core.text import split_paragraphs, split_sentences

ARTICLE = (
    Path(__file__).resolve().parents[2]
    / "corpus/briefing/how-russia-could-help-solve-the-north-korea-crisis.txt"
)
ZH = "朝鲜是完全独立自主国家。中国希望……各方保持克制！你同意吗？我同意。"
RU = (
    "Генштаб считает, что система ПРО угрожает России. В 2017 г. Президент заявил об этом, "
    "т.е. подтвердил позицию. Это важно! Почему? Потому что в 1990-х гг. Россия изменилась."
)
# Arbitrary text, salted with the pieces the sentence rules react to.
FRAGMENTS = [". ", ". . . ", "U.S. ", "“", "”", "[", "]", "\n", "\n\n", "\u00a0", "。", "? ", "e\u0301"]
TEXT = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12),
        st.sampled_from(FRAGMENTS),
    ),
    max_size=60,
).map("".join)


@pytest.fixture(scope="module")
def article() -> str:
    return ARTICLE.read_text(encoding="utf-8")


def assert_exact_spans(text: str, chunks: list[Chunk], max_chars: int) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert 0 < chunk.end - chunk.start <= max_chars
        assert chunk.text == chunk.text.strip()
    assert len({c.id for c in chunks}) == len(chunks)


def assert_covers_text(text: str, chunks: list[Chunk]) -> None:
    covered = [False] * len(text)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    missed = "".join(ch for ch, hit in zip(text, covered, strict=True) if not hit)
    assert missed.strip() == ""


def test_article_chunks_are_exact_spans(article: str) -> None:
    chunks = chunk_text("article", article)
    assert len(chunks) > 5
    assert_exact_spans(article, chunks, 700)
    assert_covers_text(article, chunks)
    assert all(c.doc_id == "article" for c in chunks)


def test_chunks_hold_whole_sentences(article: str) -> None:
    chunks = chunk_text("article", article)
    for s, e in split_sentences(article):
        assert any(c.start <= s and e <= c.end for c in chunks), article[s:e]
    starts = {s for s, _ in split_sentences(article)}
    ends = {e for _, e in split_sentences(article)}
    assert all(c.start in starts and c.end in ends for c in chunks)


def test_only_short_paragraphs_share_a_chunk(article: str) -> None:
    chunks = chunk_text("article", article)
    first = chunks[0].text
    assert first.startswith("How Russia Could Help Solve the North Korea Crisis\n\nEvening in Wonsan")
    assert first.endswith("more than it trusts Beijing.")
    for chunk in chunks:
        paragraphs = split_paragraphs(article, chunk.start, chunk.end)
        if len(paragraphs) > 1:
            assert all(e - s <= SHORT_PARAGRAPH for s, e in paragraphs), chunk.text


def test_consecutive_chunks_share_one_sentence(article: str) -> None:
    chunks = chunk_text("article", article, overlap_sentences=1)
    shared = 0
    for a, b in zip(chunks, chunks[1:], strict=False):
        if b.start < a.end:
            shared += 1
            overlap = split_sentences(article, b.start, a.end)
            assert len(overlap) == 1
            assert overlap[0] == split_sentences(article, a.start, a.end)[-1]
        assert b.end > a.end  # every chunk brings something new
    assert shared >= 3


def test_no_overlap_when_asked(article: str) -> None:
    chunks = chunk_text("article", article, overlap_sentences=0)
    assert all(b.start >= a.end for a, b in zip(chunks, chunks[1:], strict=False))
    assert_covers_text(article, chunks)


def test_overlap_is_skipped_for_single_sentence_chunks() -> None:
    text = " ".join(f"Sentence number {i} is quite long and has words." for i in range(6))
    # Each chunk fits exactly one sentence: sharing it would repeat the chunk forever.
    chunks = chunk_text("d", text, max_chars=60, overlap_sentences=1)
    assert len(chunks) == 6
    assert all(b.start > a.start for a, b in zip(chunks, chunks[1:], strict=False))


def test_long_sentence_is_cut_into_clauses() -> None:
    text = "Intro. " + ", ".join(f"clause {i} of a very long sentence" for i in range(40)) + "."
    chunks = chunk_text("d", text, max_chars=200)
    assert_exact_spans(text, chunks, 200)
    assert_covers_text(text, chunks)
    assert len(chunks) >= 7


@pytest.mark.parametrize("text", [ZH, RU, ZH + "\n\n" + RU])
def test_chinese_and_russian_chunks_are_exact_spans(text: str) -> None:
    chunks = chunk_text("d", text, max_chars=20)
    assert_exact_spans(text, chunks, 20)
    assert_covers_text(text, chunks)
    assert len(chunks) > 1


def test_ids_hash_document_text_and_occurrence() -> None:
    text = "Same paragraph here.\n\n" + "x" * 300 + "\n\nSame paragraph here."
    chunks = chunk_text("doc", text)
    repeated = [c for c in chunks if c.text == "Same paragraph here."]
    assert len(repeated) == 2
    for n, chunk in enumerate(repeated):
        expected = hashlib.sha256(f"doc\x00{chunk.text}\x00{n}".encode()).hexdigest()[:32]
        assert chunk.id == expected
    assert repeated[0].id != repeated[1].id
    assert chunk_text("other", text)[0].id != chunks[0].id


def test_ids_survive_an_edit_elsewhere(article: str) -> None:
    before = chunk_text("article", article)
    edited = article.replace(
        "This apparent shift in strategic priorities is actually long overdue.",
        "This apparent shift in strategic priorities, many would say, is actually long overdue.",
    )
    assert edited != article
    after = chunk_text("article", edited)
    edit_at = article.index("This apparent shift")
    untouched = [c for c in before if c.end < edit_at or c.start > article.index("Moscow’s role")]
    after_by_text = {c.text: c for c in after}
    for chunk in untouched:
        assert after_by_text[chunk.text].id == chunk.id
    moved = [c for c in untouched if c.start > edit_at]
    assert moved and all(after_by_text[c.text].start != c.start for c in moved)
    assert {c.id for c in after} != {c.id for c in before}


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \u00a0\n"])
def test_empty_text_has_no_chunks(text: str) -> None:
    assert chunk_text("d", text) == []


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        chunk_text("d", "text", max_chars=0)
    with pytest.raises(ValueError):
        chunk_text("d", "text", overlap_sentences=-1)


@settings(max_examples=200, deadline=None)
@given(TEXT, st.integers(1, 120), st.integers(0, 2))
def test_chunks_of_any_text_are_exact_bounded_spans(text: str, max_chars: int, overlap: int) -> None:
    chunks = chunk_text("doc", text, max_chars=max_chars, overlap_sentences=overlap)
    assert_exact_spans(text, chunks, max_chars)
    assert_covers_text(text, chunks)
    assert all(b.start > a.start for a, b in zip(chunks, chunks[1:], strict=False))
