"""Sentence, clause and token splitting on the real article and on Chinese and Russian text."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from briefing_core.spans import fold_whitespace
from briefing_core.text import (
    MAX_PROTECTED,
    detect_language,
    script_counts,
    split_clauses,
    split_paragraphs,
    split_sentences,
    tokenize,
)

ARTICLE = (
    Path(__file__).resolve().parents[2]
    / "corpus/briefing/how-russia-could-help-solve-the-north-korea-crisis.txt"
)

ZH = "朝鲜是完全独立自主国家。中国希望……各方保持克制！你同意吗？我同意。"
RU = (
    "Генштаб считает, что система ПРО угрожает России. В 2017 г. Президент заявил об этом, "
    "т.е. подтвердил позицию. Это важно! А. В. Суворов был генералом. Почему? Потому что в "
    "1990-х гг. Россия изменилась."
)


@pytest.fixture(scope="module")
def article() -> str:
    return ARTICLE.read_text(encoding="utf-8")


def sentences(text: str, start: int = 0, end: int | None = None) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, start, end)]


def sentence_with(text: str, needle: str) -> str:
    found = [s for s in sentences(text) if needle in s]
    assert len(found) == 1, f"{needle!r} is in {len(found)} sentences"
    return found[0]


# ---------------------------------------------------------------------------------------------
# The article


def test_article_title_and_caption_are_their_own_sentences(article: str) -> None:
    got = sentences(article)
    assert got[0] == "How Russia Could Help Solve the North Korea Crisis"
    assert got[1] == "Evening in Wonsan, North Korea."
    assert got[-1] == "Pages"


def test_global_times_quote_with_bracketed_chinese_is_one_sentence(article: str) -> None:
    sentence = sentence_with(article, "Beijing cannot ‘control’ Pyongyang")
    assert "朝鲜是完全独立自主国家" in sentence
    assert sentence.startswith("As an unsigned editorial from Global Times [环球时报]")
    assert sentence.endswith("朝鲜是完全独立自主国家].")
    # The spaced ellipses (with no-break spaces) stayed inside the sentence.
    assert "Pyongyang. . . . North Korea" in fold_whitespace(sentence)


def test_us_abbreviation_does_not_end_a_sentence(article: str) -> None:
    assert not any(s.endswith("U.S.") for s in sentences(article))
    sentence = sentence_with(article, "U.S. Missile Defense")
    assert sentence.startswith("At the same time, Russia’s defense leaders")
    assert sentence.endswith("[Генштаб: система ПРО США угрожает ядерным силам РФ и КНР].")
    assert "China-U.S. trade negotiations" in sentence_with(article, "China-U.S.")


def test_question_in_quotes_keeps_its_bracketed_russian_original(article: str) -> None:
    sentence = sentence_with(article, "Will Be Hit Next?”")
    assert sentence.endswith("[Ударил по Сирии, ударит и по Северной Корее?]")


def test_closing_quote_belongs_to_the_sentence_before_it(article: str) -> None:
    assert sentence_with(article, "direct attack against").endswith("national interests.”")
    assert sentence_with(article, "Such instances").startswith("Such instances of nuclear")


def test_article_sentences_are_sentences(article: str) -> None:
    got = sentences(article)
    assert 25 <= len(got) <= 32
    for sentence in got[3:-1]:  # after the title and caption, before "Pages"
        assert sentence[0].isupper(), sentence
        assert sentence.rstrip("”]")[-1] in ".?!", sentence


# ---------------------------------------------------------------------------------------------
# Chinese and Russian


def test_chinese_sentences_split_after_full_width_stops() -> None:
    assert sentences(ZH) == ["朝鲜是完全独立自主国家。", "中国希望……各方保持克制！", "你同意吗？", "我同意。"]


def test_chinese_quotation_closing_after_stop_stays_with_sentence() -> None:
    text = "他说：“我们会来。”然后他走了。"
    assert sentences(text) == ["他说：“我们会来。”", "然后他走了。"]


def test_russian_sentences_with_abbreviations_and_initials() -> None:
    assert sentences(RU) == [
        "Генштаб считает, что система ПРО угрожает России.",
        "В 2017 г. Президент заявил об этом, т.е. подтвердил позицию.",
        "Это важно!",
        "А. В. Суворов был генералом.",
        "Почему?",
        "Потому что в 1990-х гг. Россия изменилась.",
    ]


def test_russian_guillemets_protect_inner_sentences() -> None:
    text = "Он сказал: «Это конец. Больше не будет». Потом ушёл."
    assert sentences(text) == ["Он сказал: «Это конец. Больше не будет».", "Потом ушёл."]


# ---------------------------------------------------------------------------------------------
# English rules


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. Smith met Dr. Jones in the U.S. The talks were on Jan. 5 in Washington.",
            ["Mr. Smith met Dr. Jones in the U.S.", "The talks were on Jan. 5 in Washington."],
        ),
        (
            "It cost 3.5 million, e.g. for travel. J. Smith agreed.",
            ["It cost 3.5 million, e.g. for travel.", "J. Smith agreed."],
        ),
        ("The U.N. Security Council met. It adjourned.", ["The U.N. Security Council met.", "It adjourned."]),
        ("See p. 12 and No. 5 for more. Then stop.", ["See p. 12 and No. 5 for more.", "Then stop."]),
        ("He asked “why?” she said. Nobody answered.", ["He asked “why?” she said.", "Nobody answered."]),
        ("It ended... Then we left! Did we? Yes.", ["It ended...", "Then we left!", "Did we?", "Yes."]),
        ("Apples, pears, etc. are fruit. So are plums.", ["Apples, pears, etc. are fruit.", "So are plums."]),
        ("(See the note.) Then read on.", ["(See the note.)", "Then read on."]),
    ],
)
def test_english_sentence_rules(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@pytest.mark.parametrize("space", [" ", "\u00a0"])
def test_spaced_ellipsis_does_not_end_a_sentence(space: str) -> None:
    ellipsis = space.join("....")
    text = f"He paused{ellipsis} Then he left. Done."
    assert sentences(text) == [f"He paused{ellipsis} Then he left.", "Done."]


def test_short_quotation_is_not_split_but_a_long_one_is() -> None:
    inner = "This is one. This is two."
    assert len(sentences(f"She wrote: “{inner}” Later she left.")) == 2
    long_inner = "Words go here. " * (MAX_PROTECTED // 15 + 2)
    assert len(long_inner) > MAX_PROTECTED
    assert len(sentences(f"She wrote: “{long_inner.strip()}” Later she left.")) > 10


def test_square_brackets_protect_their_content() -> None:
    text = "He cited the source [Part one. Part two.] in full. Next sentence."
    assert sentences(text) == ["He cited the source [Part one. Part two.] in full.", "Next sentence."]


def test_line_breaks() -> None:
    text = "Title line\nBody starts here. And ends.\n- item one\n- item two\n\nNew paragraph"
    assert sentences(text) == [
        "Title line",
        "Body starts here.",
        "And ends.",
        "- item one",
        "- item two",
        "New paragraph",
    ]
    wrapped = (
        "This is a long line of hard-wrapped text that goes on without a stop\n"
        "Therefore it continues on the next line. Done."
    )
    assert sentences(wrapped)[0].endswith("continues on the next line.")
    assert sentences("It was\nlowercase next. Done.") == ["It was\nlowercase next.", "Done."]
    assert sentences("1. First item here\n2. Second item here") == [
        "1. First item here",
        "2. Second item here",
    ]


def test_offsets_into_the_full_text_for_a_range(article: str) -> None:
    start = article.index("This apparent shift")
    end = article.index("Moscow’s role")
    spans = split_sentences(article, start, end)
    assert spans[0][0] == start
    assert article[spans[-1][0] : spans[-1][1]].endswith("the unfolding crisis.")
    assert all(start <= s < e <= end for s, e in spans)


def test_bad_range_is_rejected() -> None:
    with pytest.raises(ValueError):
        split_sentences("abc", 2, 1)
    with pytest.raises(ValueError):
        split_sentences("abc", 0, 4)


def test_paragraphs() -> None:
    text = "  One\n\n \t\nTwo a\nTwo b\r\n\r\nThree  "
    assert [text[s:e] for s, e in split_paragraphs(text)] == ["One", "Two a\nTwo b", "Three"]
    crlf = "Line one is here\r\nLine two\r\n\r\nNext"
    assert [crlf[s:e] for s, e in split_paragraphs(crlf)] == ["Line one is here\r\nLine two", "Next"]


# ---------------------------------------------------------------------------------------------
# Clauses


def test_short_span_comes_back_whole() -> None:
    text = "  short clause, here  "
    assert split_clauses(text, 0, len(text), 100) == [(2, 20)]


def test_long_sentence_splits_at_commas_greedily() -> None:
    text = ", ".join(f"clause number {i} here" for i in range(40)) + "."
    pieces = split_clauses(text, 0, len(text), 120)
    assert len(pieces) > 1
    for s, e in pieces[:-1]:
        assert e - s <= 120
        assert text[e - 1] == ","  # cut after a comma
        assert e - s > 120 - len("clause number 39 here, ") - 1  # greedy: filled up
    assert_covers(text, 0, len(text), pieces)


def test_chinese_clauses_split_at_full_width_commas() -> None:
    text = "，".join(["中国希望各方保持克制"] * 30) + "。"
    pieces = split_clauses(text, 0, len(text), 50)
    assert all(e - s <= 50 for s, e in pieces)
    assert all(text[e - 1] in "，。" for s, e in pieces)
    assert_covers(text, 0, len(text), pieces)


def test_hard_split_without_punctuation() -> None:
    words = "word " * 100
    pieces = split_clauses(words, 0, len(words), 42)
    assert all(e - s <= 42 and words[s:e].endswith("word") for s, e in pieces)
    solid = "x" * 100
    assert split_clauses(solid, 0, 100, 30) == [(0, 30), (30, 60), (60, 90), (90, 100)]


def test_hard_split_keeps_combining_marks_with_their_letter() -> None:
    text = "e\u0301" * 50  # é written as e + combining acute accent
    pieces = split_clauses(text, 0, len(text), 9)
    assert all(text[s] != "\u0301" for s, _ in pieces)
    assert all(e - s <= 9 for s, e in pieces)
    assert_covers(text, 0, len(text), pieces)


# ---------------------------------------------------------------------------------------------
# Tokens


def test_english_tokens_are_stemmed_without_stop_words() -> None:
    assert tokenize("What is the crisis in North Korea?") == ["crisi", "north", "korea"]
    assert tokenize("negotiations") == tokenize("negotiation") == ["negoti"]
    assert tokenize("Pyongyang’s nuclear ambitions") == ["pyongyang", "nuclear", "ambit"]


def test_initialisms_hyphens_and_acronyms() -> None:
    assert tokenize("China-U.S. trade") == ["china", "us", "trade"]
    assert tokenize("the US and the U.S.") == ["us", "us"]
    assert tokenize("give us the U.N.") == ["give", "un"]
    assert tokenize("de-escalation") == ["de", "escal"]
    assert tokenize("It cost 3.5 million in 2016") == ["cost", "3.5", "million", "2016"]


def test_russian_tokens_are_stemmed_without_stop_words() -> None:
    assert tokenize("Какую роль играет Россия?") == ["рол", "игра", "росс"]
    assert tokenize("России") == tokenize("Россия")
    assert tokenize("ещё") == tokenize("еще") == []
    assert "сша" in tokenize("система ПРО США")


def test_chinese_runs_give_unigrams_and_bigrams() -> None:
    # The particle 是 is dropped and splits the run: no "鲜是" or "是国".
    tokens = tokenize("朝鲜是国家。Beijing")
    assert tokens == ["朝", "鲜", "朝鲜", "国", "家", "国家", "beij"]
    # Question words go, as English and Russian ones do; 和平 (peace) keeps its 和.
    assert tokenize("这篇文章的副标题是什么？") == ["文", "章", "文章", "副", "标", "题", "副标", "标题"]
    assert "和平" in tokenize("和平进程")


def test_tokens_are_case_and_width_folded() -> None:
    assert tokenize("ＲＵＳＳＩＡ Russia russia") == ["russia"] * 3


def test_tokenize_speed() -> None:
    # A regression guard, far looser than the measured speed (about 0.2 ms per chunk).
    chunk = (
        "Noting that Russia lacks for economic leverage, the analysis does still emphasize "
        "“the continuing significance . . . [of Russia’s] enormous military power” "
        "[强大的军事力量…仍然具有重要意义]. Генштаб: система ПРО США угрожает ядерным силам. "
    )
    chunks = [f"{chunk} {i} {chunk[i % 50 :]}" for i in range(2000)]
    began = time.perf_counter()
    for text in chunks:
        tokenize(text)
    assert time.perf_counter() - began < 10


# ---------------------------------------------------------------------------------------------
# Language


def test_detect_language(article: str) -> None:
    assert detect_language(article) == "en"
    assert detect_language(ZH) == "zh"
    assert detect_language(RU) == "ru"
    assert detect_language("中国和美国的WTO谈判在Washington举行。") == "zh"
    assert detect_language("") == "en"
    assert detect_language("12345 !!!") == "en"


def test_script_counts() -> None:
    assert script_counts("ab вг 中国 ά") == {"han": 2, "cyrillic": 2, "latin": 2, "other": 1}


# ---------------------------------------------------------------------------------------------
# Properties on arbitrary text

FRAGMENTS = [
    ". ",
    ". . . ",
    ".\u00a0.\u00a0.",
    "U.S. ",
    "Mr. ",
    "“",
    "”",
    "[",
    "]",
    "(",
    ")",
    "«",
    "»",
    '"',
    "\n",
    "\n\n",
    "\r\n",
    " \u00a0 ",
    "。",
    "！",
    "？",
    "……",
    "? ",
    "! ",
    "The ",
    "в ",
    "г. ",
    "e\u0301",
    "\u3000",
    "朝鲜",
    "Россия",
    "3.5",
]
TEXT = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12),
        st.sampled_from(FRAGMENTS),
    ),
    max_size=60,
).map("".join)


def assert_covers(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    """In-bounds, ordered, non-overlapping, stripped spans that leave out only white space."""
    pos = start
    for s, e in spans:
        assert pos <= s < e <= end
        assert not text[s].isspace() and not text[e - 1].isspace()
        assert text[pos:s].strip() == ""
        pos = e
    assert text[pos:end].strip() == ""


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_sentence_spans_cover_any_text(text: str) -> None:
    assert_covers(text, 0, len(text), split_sentences(text))


@settings(max_examples=200, deadline=None)
@given(TEXT, st.data())
def test_sentence_spans_cover_any_range(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    assert_covers(text, start, end, split_sentences(text, start, end))


@settings(max_examples=200, deadline=None)
@given(TEXT, st.integers(1, 80))
def test_clause_pieces_cover_any_text(text: str, max_chars: int) -> None:
    pieces = split_clauses(text, 0, len(text), max_chars)
    assert all(e - s <= max_chars for s, e in pieces)
    assert_covers(text, 0, len(text), pieces)


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_tokens_of_any_text_are_clean(text: str) -> None:
    for token in tokenize(text):
        assert token
        assert not any(ch.isspace() for ch in token)
