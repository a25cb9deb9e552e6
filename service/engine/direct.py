"""The direct answer: the short span (a name, a date, a number, a title) that a factoid part asks for,
found inside the evidence it cites, so the answer can begin with it ("Izvestiya.", "1973.").

Takes a question part (as `signals.QuestionView`) and the units cited for it; gives candidate spans,
each with a row of `SPAN_FEATURES`. The learned span model (`scorer.py`) picks one and says how sure
it is; below its threshold there is no direct answer and the cited sentence speaks alone.

Candidates are the pieces an answer to a factoid question is made of, found by the shape of the text,
in English, Russian and Chinese alike: numbers with what they count, dates, runs of capitalised words
(names, titles), quoted titles, and short noun-like runs between function words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from briefing_core.spans import normalise_answer
from service.engine.signals import ANSWER_TYPES, LANGS, WH_CLASSES, QuestionView

__all__ = ["Candidate", "candidates", "direct_kind", "normalise_answer", "span_features"]

MAX_WORDS = 7
_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:['’.\-][^\W_]+)*", re.UNICODE)
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_MONTHS = (
    r"January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|"
    r"января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября|ноября|декабря|"
    r"январь|февраль|март|апрель|май|июнь|июль|август|сентябрь|октябрь|ноябрь|декабрь"
)
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}\s+)?(?:{_MONTHS})\.?(?:\s+\d{{1,2}}(?:st|nd|rd|th)?)?(?:,?\s+\d{{3,4}}(?:\s*(?:года?|г\.))?)?\b|"
    r"\b(?:the\s+)?(?:early|mid|late)?-?\s?\d{3,4}s\b|\b\d{1,2}(?:st|nd|rd|th)\s+century\b|"
    r"\b[IVXLC]+\s+век[аеу]?\b|\b\d{1,2}-?(?:м|го)?\s+век[аеу]?\b|"
    r"\d{1,4}\s*年(?:\s*\d{1,2}\s*月)?(?:\s*\d{1,2}\s*[日号])?|\d{1,2}\s*月\s*\d{1,2}\s*[日号]|\d{1,2}\s*世纪",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"(?:[$£€¥]\s?)?\d[\d,.\s]*\d(?:\s?%)?|(?:[$£€¥]\s?)?\d(?:\s?%)?|"
    r"[一二三四五六七八九十百千万亿两]+(?:[个名位次年]|多)?",
)
_CAPS = re.compile(
    r"(?:[A-ZА-ЯЁ][\w’'.\-]*)(?:\s+(?:(?:of|the|de|du|des|la|le|von|van|der|and|for|on|in|и|де|фон)\s+)?"
    r"[A-ZА-ЯЁ0-9][\w’'.\-]*)*"
)
_QUOTED = re.compile(r"[“\"«《「『]([^”\"»》」』]{2,80})[”\"»》」』]")
_STOP_EN = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "that",
        "which",
        "who",
        "whom",
        "whose",
        "this",
        "these",
        "those",
        "it",
        "its",
        "they",
        "their",
        "them",
        "he",
        "she",
        "his",
        "her",
        "we",
        "our",
        "you",
        "your",
        "i",
        "not",
        "no",
        "than",
        "then",
        "so",
        "such",
        "also",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "after",
        "before",
        "during",
        "between",
        "through",
        "while",
        "when",
        "where",
        "why",
        "how",
        "what",
        "there",
        "here",
        "can",
        "could",
        "will",
        "would",
        "should",
        "may",
        "might",
        "must",
        "shall",
        "very",
        "more",
        "most",
        "many",
        "much",
    ]
)
_STOP_RU = frozenset(
    [
        "и",
        "в",
        "во",
        "не",
        "что",
        "он",
        "на",
        "я",
        "с",
        "со",
        "как",
        "а",
        "то",
        "все",
        "она",
        "так",
        "его",
        "но",
        "да",
        "ты",
        "к",
        "у",
        "же",
        "вы",
        "за",
        "бы",
        "по",
        "только",
        "ее",
        "мне",
        "было",
        "вот",
        "от",
        "меня",
        "еще",
        "нет",
        "о",
        "об",
        "из",
        "ему",
        "когда",
        "даже",
        "ну",
        "ли",
        "если",
        "уже",
        "или",
        "ни",
        "быть",
        "был",
        "него",
        "до",
        "вас",
        "там",
        "потом",
        "себя",
        "ей",
        "может",
        "они",
        "тут",
        "где",
        "есть",
        "для",
        "мы",
        "их",
        "чем",
        "была",
        "сам",
        "без",
        "под",
        "будет",
        "тогда",
        "кто",
        "этот",
        "того",
        "потому",
        "этого",
        "какой",
        "при",
        "этом",
        "который",
        "которая",
        "которое",
        "которые",
        "это",
        "эта",
        "эти",
        "также",
        "более",
        "после",
        "между",
        "через",
    ]
)
_ZH_BREAK = re.compile(
    "[，。；：、！？（）()“”‘’《》「」『』,.;:!?\\s的了是在和与及或并而也都就被把将由从对于为之其这那]+"
)

KINDS = ["chunk", "number", "date", "capitalised", "quoted"]
# The word just before a candidate says much about what it is ("in 1951", "by Baran", "called X").
BEFORE_WORDS = [
    "",
    "in",
    "on",
    "at",
    "by",
    "of",
    "from",
    "to",
    "for",
    "with",
    "as",
    "the",
    "a",
    "is",
    "was",
    "are",
    "were",
    "called",
    "named",
    "known",
    "than",
    "about",
    "and",
    "or",
    "в",
    "на",
    "с",
    "по",
    "из",
    "от",
    "для",
    "около",
    "是",
    "在",
    "于",
    "为",
    "由",
    "到",
    "和",
]
SPAN_FEATURES = [
    "kind",
    "words",
    "chars",
    "in_question",
    "near_matched",
    "after_matched",
    "before_matched",
    "position",
    "type_fit",
    "capitalised_share",
    "has_digit",
    "unit_probability",
    "unit_rank",
    "wh",
    "answer_type",
    "question_lang",
    "is_cjk",
    "candidates",
    "same_text_elsewhere",
    "word_before",
    "before_is_asked",
    "after_is_asked",
    "in_brackets",
    "unit_matched",
]
SPAN_CATEGORICAL = ["kind", "wh", "answer_type", "question_lang", "word_before"]
_SI = {name: i for i, name in enumerate(SPAN_FEATURES)}


@dataclass(frozen=True)
class Candidate:
    start: int
    end: int
    kind: str

    def text(self, unit_text: str) -> str:
        return unit_text[self.start : self.end]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum() and text[end - 1] not in "%)":
        end -= 1
    return start, end


def candidates(text: str) -> list[Candidate]:
    """Every candidate span of a unit's text, once each (the first kind that found it)."""
    found: dict[tuple[int, int], str] = {}

    def add(start: int, end: int, kind: str) -> None:
        start, end = _trim(text, start, end)
        if end - start < 1 or end - start > 120:
            return
        found.setdefault((start, end), kind)

    for m in _QUOTED.finditer(text):
        add(m.start(1), m.end(1), "quoted")
    for m in _DATE.finditer(text):
        add(m.start(), m.end(), "date")
    for m in _NUMBER.finditer(text):
        add(m.start(), m.end(), "number")
        # A number with what it counts ("390 settlers", "2 million people").
        tail = re.match(r"(?:\s+[^\W\d_][\w-]*){1,2}", text[m.end() :])
        if tail:
            words = tail.group(0).split()
            for n in range(1, len(words) + 1):
                piece = re.match(rf"(?:\s+[^\W\d_][\w-]*){{{n}}}", text[m.end() :])
                if piece:
                    add(m.start(), m.end() + piece.end(), "number")
    for m in _CAPS.finditer(text):
        add(m.start(), m.end(), "capitalised")
    if _CJK.search(text):
        for piece in _pieces_zh(text):
            add(*piece, "chunk")
    else:
        for piece in _pieces(text):
            add(*piece, "chunk")
    return [Candidate(s, e, k) for (s, e), k in sorted(found.items())]


def _pieces(text: str) -> list[tuple[int, int]]:
    """Phrases of up to MAX_WORDS words within a clause (no punctuation inside but a hyphen or an
    apostrophe) that begin and end on a content word: "dedicated network bandwidth", "the southern
    and central parts of France" (an answer's leading article is dropped when compared)."""
    out = []
    clause: list[re.Match[str]] = []

    def flush() -> None:
        content = [
            w.group(0).casefold() not in _STOP_EN and w.group(0).casefold() not in _STOP_RU for w in clause
        ]
        for i in range(len(clause)):
            if not content[i]:
                continue
            for j in range(i, min(len(clause), i + MAX_WORDS)):
                if content[j]:
                    out.append((clause[i].start(), clause[j].end()))
        clause.clear()

    last = 0
    for m in _WORD.finditer(text):
        gap = text[last : m.start()].strip()
        if gap and gap not in {"-", "'", "’", "–"}:
            flush()
        clause.append(m)
        last = m.end()
    flush()
    return out


def _pieces_zh(text: str) -> list[tuple[int, int]]:
    """Chinese: the stretches between punctuation and function characters, and the words of each
    (wordfreq's segmenter) with runs of up to four of them."""
    from wordfreq import tokenize as segment

    out = []
    last = 0
    for m in [*_ZH_BREAK.finditer(text), None]:
        start, end = last, (m.start() if m else len(text))
        if end - start >= 1:
            out.append((start, end))
            words, at = [], start
            for w in segment(text[start:end], "zh"):
                found = text.find(w, at, end)
                if found < 0:
                    continue
                words.append((found, found + len(w)))
                at = found + len(w)
            for i in range(len(words)):
                for j in range(i, min(len(words), i + 4)):
                    out.append((words[i][0], words[j][1]))
        if m:
            last = m.end()
    return out


def _fits(kind: str, text: str, view: QuestionView) -> float:
    """How well a candidate's shape fits what the question asks for (1 fits, 0 neutral, -1 does not)."""
    wh, atype = view.wh, view.answer_type
    has_digit = any(ch.isdigit() for ch in text)
    if wh == "how_many" or atype == "number":
        return 1.0 if kind == "number" else -1.0
    if wh == "when" or atype in {"date", "year", "day"}:
        return 1.0 if kind == "date" or (kind == "number" and has_digit and len(text) == 4) else -1.0
    if wh in {"who", "where"} or atype == "person":
        return 1.0 if kind in {"capitalised", "quoted"} else (-1.0 if kind in {"number", "date"} else 0.0)
    return 0.0


@lru_cache(maxsize=1 << 14)
def _span_tokens(text: str) -> frozenset[str]:
    from briefing_core.text import tokenize

    return frozenset(tokenize(text))


def span_features(
    view: QuestionView, units: list[Any], probabilities: list[float]
) -> tuple[list[tuple[int, Candidate]], np.ndarray]:
    """The candidates of each unit (best first, as cited), with their rows."""
    from briefing_core.text import tokenize

    rows: list[list[float]] = []
    found: list[tuple[int, Candidate]] = []
    q_tokens = set(view.weights)
    for u, unit in enumerate(units):
        text = unit.text
        cands = candidates(text)
        if not cands:
            continue
        # Where the question's words stand in the unit (character ranges of matched words).
        words = list(_WORD.finditer(text))
        spans = [(m.start(), m.end()) for m in words if set(tokenize(m.group(0))) & q_tokens]
        if _CJK.search(text):
            spans += [(i, i + 1) for i, ch in enumerate(text) if ch in q_tokens]
        matched = [a for a, _ in spans]
        ends = {b for _, b in spans}
        starts = set(matched)
        texts = [c.text(text) for c in cands]
        for cand, piece in zip(cands, texts, strict=True):
            tokens = _span_tokens(piece)
            n_words = len(_WORD.findall(piece)) or len(piece)
            before = [cand.start - p for p in matched if p < cand.start]
            after = [p - cand.end for p in matched if p >= cand.end]
            row = [np.nan] * len(SPAN_FEATURES)
            row[_SI["kind"]] = KINDS.index(cand.kind)
            row[_SI["words"]] = n_words
            row[_SI["chars"]] = len(piece)
            row[_SI["in_question"]] = len(tokens & q_tokens) / len(tokens) if tokens else 0.0
            row[_SI["near_matched"]] = min([*before, *after], default=500)
            row[_SI["after_matched"]] = min(before, default=500)
            row[_SI["before_matched"]] = min(after, default=500)
            row[_SI["position"]] = cand.start / max(1, len(text))
            row[_SI["type_fit"]] = _fits(cand.kind, piece, view)
            caps = _WORD.findall(piece)
            row[_SI["capitalised_share"]] = sum(w[:1].isupper() for w in caps) / len(caps) if caps else 0.0
            row[_SI["has_digit"]] = float(any(ch.isdigit() for ch in piece))
            row[_SI["unit_probability"]] = probabilities[u]
            row[_SI["unit_rank"]] = u
            row[_SI["wh"]] = WH_CLASSES.index(view.wh)
            row[_SI["answer_type"]] = (
                ANSWER_TYPES.index(view.answer_type) if view.answer_type in ANSWER_TYPES else 0
            )
            row[_SI["question_lang"]] = LANGS.index(view.lang) if view.lang in LANGS else 0
            row[_SI["is_cjk"]] = float(bool(_CJK.search(piece)))
            row[_SI["candidates"]] = len(cands)
            row[_SI["same_text_elsewhere"]] = float(sum(t == piece for t in texts) > 1)
            previous = next((m for m in reversed(words) if m.end() <= cand.start), None)
            word = previous.group(0).casefold() if previous is not None else ""
            if _CJK.search(text) and cand.start > 0:
                word = text[cand.start - 1]
            row[_SI["word_before"]] = BEFORE_WORDS.index(word) if word in BEFORE_WORDS else len(BEFORE_WORDS)
            gap_before = text[: cand.start].rstrip()
            row[_SI["before_is_asked"]] = float(
                any(len(gap_before) - 1 < e <= len(gap_before) for e in ends) or len(gap_before) in ends
            )
            rest = len(text) - len(text[cand.end :].lstrip())
            row[_SI["after_is_asked"]] = float(rest in starts)
            row[_SI["in_brackets"]] = float(text[: cand.start].count("(") > text[: cand.start].count(")"))
            row[_SI["unit_matched"]] = len(spans)
            rows.append(row)
            found.append((u, cand))
    return found, np.asarray(rows, dtype=np.float32).reshape(len(rows), len(SPAN_FEATURES))


def direct_kind(analysis: Any) -> bool:
    """Whether a question may be answered with a short span: one part, asking what, who, when, where,
    which or how many (not why, not yes or no, not a list or a summary)."""
    if analysis.multi or analysis.kind not in {"factoid", "describe"}:
        return False
    from service.engine.signals import wh_class

    return wh_class(analysis.question) not in {"why", "yesno", "other"}
