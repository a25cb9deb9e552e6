"""A document as the answerer reads it: its sentences (units) in order, each with its paragraph,
its keyword tokens, the source it quotes and the role it plays (title, subtitle, photo caption).

Takes a document id; gives `DocUnits`, cached for as long as the store's documents mapping is the
same object (the searcher hands out one per store generation). Answers need a sentence's
neighbours ("several reasons" is followed by the reasons; "Such instances..." continues the
sentence before), which a retrieved chunk may cut off, so units cover whole documents.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from briefing_core.spans import overlaps

MAX_QUOTE_CHARS = 400
# A fragment shorter than this (a photo credit, a dangling clause) is cited with its neighbour.
MIN_QUOTE_CHARS = 60

# What a span is in its document, in words a question in any of the three languages may use for it
# ("the photo" finds the caption, "副标题" the subtitle).
ROLE_WORDS = {
    "title": "title headline 标题 题目 заголовок заголовке название называется",
    "subtitle": "subtitle 副标题 подзаголовок подзаголовке",
    "photo caption": "photo picture image caption 照片 图片 配图 说明 фото фотография снимок подпись",
    "author": "author wrote written byline 作者 撰写 автор написал",
}


@dataclass
class Unit:
    doc_id: str
    index: int
    start: int
    end: int
    text: str
    paragraph: int
    tokens: frozenset[str]
    lang: str
    attributed_to: str | None = None
    source_id: str = ""
    role: str = ""
    """Words naming what the span is in its document (title, subtitle, photo caption)."""
    heading: bool = False
    """A title, subtitle or caption: a line of its own, not a sentence of the argument."""
    usable: bool = True
    """False for a document's header or a stray word: never an answer span."""
    kind: str = ""
    """The document's kind: article, quoted excerpt, cited source, document."""


@dataclass
class DocUnits:
    doc_id: str
    text: str
    meta: dict[str, Any]
    units: list[Unit] = field(default_factory=list)

    def at(self, start: int, end: int) -> list[Unit]:
        return [u for u in self.units if u.start < end and start < u.end]

    def neighbour(self, unit: Unit, step: int) -> Unit | None:
        j = unit.index + step
        if 0 <= j < len(self.units) and self.units[j].paragraph == unit.paragraph:
            return self.units[j]
        return None

    def before(self, unit: Unit) -> Unit | None:
        """The unit just before this one, in the paragraph before when it opens its own."""
        j = unit.index - 1
        return self.units[j] if 0 <= j < len(self.units) else None

    def paragraph(self, unit: Unit) -> list[Unit]:
        return [u for u in self.units if u.paragraph == unit.paragraph]


def json_spans(value: Any) -> list[Any]:
    try:
        return list(json.loads(value or "[]"))
    except (TypeError, ValueError):
        return []


def split_units(text: str, speaker: Any = None) -> list[tuple[int, int, int]]:
    """(start, end, paragraph): sentences, long ones cut into clauses, short fragments joined to a
    neighbour within their paragraph while the quote stays citable and, when `speaker(start, end)`
    is given, only to a neighbour of the same speaker (a source's quote never absorbs the author's
    next sentence)."""
    from briefing_core.text import split_clauses, split_paragraphs, split_sentences

    out: list[tuple[int, int, int]] = []
    for p, (ps, pe) in enumerate(split_paragraphs(text)):
        spans: list[tuple[int, int]] = []
        for s, e in split_sentences(text, ps, pe):
            spans.extend(split_clauses(text, s, e, MAX_QUOTE_CHARS))
        merged: list[tuple[int, int]] = []
        for s, e in spans:
            if merged and (e - s < MIN_QUOTE_CHARS or merged[-1][1] - merged[-1][0] < MIN_QUOTE_CHARS) \
                    and e - merged[-1][0] <= MAX_QUOTE_CHARS \
                    and (speaker is None or speaker(*merged[-1]) == speaker(s, e)):
                merged[-1] = (merged[-1][0], e)
                continue
            merged.append((s, e))
        out.extend((s, e, p) for s, e in merged)
    return out


_DERIVED: dict[Any, list[tuple[Any, Any]]] = {}


def per_documents(build: Any, documents: dict[str, dict[str, Any]]) -> Any:
    """`build(documents)`, worked out once per documents mapping: the searcher hands out one mapping
    per store generation, so every question until the next ingest reuses it (read-only both sides)."""
    recent = _DERIVED.setdefault(build, [])
    for seen, value in recent:
        if seen is documents:
            return value
    value = build(documents)
    # A few mappings at a time: the whole store's and those of the briefings questions are scoped to.
    recent.insert(0, (documents, value))
    del recent[8:]
    return value


def quote_spans(documents: dict[str, dict[str, Any]]) -> dict[str, list[tuple[int, int, str, str]]]:
    """For each article, the spans that quote or report a cited source: (start, end, label, source_id)."""
    out: dict[str, list[tuple[int, int, str, str]]] = {}
    for meta in documents.values():
        if meta.get("kind") != "quoted excerpt" or not meta.get("cited_in"):
            continue
        label = str(meta.get("label") or meta.get("title") or meta.get("source_id"))
        for start, end in json_spans(meta.get("quote_spans")):
            out.setdefault(str(meta["cited_in"]), []).append((int(start), int(end), label, str(meta.get("source_id"))))
    return out


def role_words(documents: dict[str, dict[str, Any]]) -> dict[str, list[tuple[int, int, str]]]:
    """For each document with roles: (start, end, words naming the role in en/zh/ru)."""
    out: dict[str, list[tuple[int, int, str]]] = {}
    for doc_id, meta in documents.items():
        for start, end, role in json_spans(meta.get("role_spans")):
            out.setdefault(doc_id, []).append((int(start), int(end), ROLE_WORDS.get(str(role), str(role))))
    return out


class UnitCache:
    """Documents split into units, rebuilt for a document when the documents mapping changes."""

    def __init__(self, store: Any, max_docs: int = 256) -> None:
        self.store = store
        self.max_docs = max_docs
        self._documents: Any = None
        self._quotes: dict[str, list[tuple[int, int, str, str]]] = {}
        self._docs: OrderedDict[str, DocUnits] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, doc_id: str, documents: dict[str, dict[str, Any]]) -> DocUnits | None:
        with self._lock:
            # A briefing's mapping is a view of the whole store's (`whole`): units do not depend on
            # which view asked, so moving between briefings keeps what was built.
            documents = getattr(documents, "whole", documents)
            if documents is not self._documents:
                self._documents = documents
                self._quotes = quote_spans(documents)
                self._docs.clear()
            cached = self._docs.get(doc_id)
            if cached is not None:
                self._docs.move_to_end(doc_id)
                return cached
        meta = documents.get(doc_id)
        if meta is None:
            return None
        try:
            record = self.store.get_document(doc_id)
        except Exception:  # a document deleted since the mapping was read: nothing to read
            return None
        built = self._build(doc_id, record.text, dict(record.metadata or meta))
        with self._lock:
            if documents is self._documents:
                self._docs[doc_id] = built
                while len(self._docs) > self.max_docs:
                    self._docs.popitem(last=False)
        return built

    def quotes_for(self, doc_id: str) -> list[tuple[int, int, str, str]]:
        return self._quotes.get(doc_id, [])

    def _build(self, doc_id: str, text: str, meta: dict[str, Any]) -> DocUnits:
        from briefing_core.text import detect_language, tokenize

        body_start = int(meta.get("body_start", 0))
        roles = [(int(s), int(e), ROLE_WORDS.get(str(r), str(r))) for s, e, r in json_spans(meta.get("role_spans"))]
        quotes = self._quotes.get(doc_id, [])
        kind = meta.get("kind")
        own_label = str(meta.get("label") or meta.get("title") or "") if kind in {"quoted excerpt", "cited source"} else None
        doc = DocUnits(doc_id, text, meta)

        def speaker(start: int, end: int) -> str | None:
            return next((sid for qs, qe, _, sid in quotes if overlaps((start, end), (qs, qe))), None)

        for i, (s, e, p) in enumerate(split_units(text, speaker)):
            piece = text[s:e]
            tokens = tokenize(piece)
            role = " ".join(words for rs, re_, words in roles if overlaps((s, e), (rs, re_)))
            unit = Unit(doc_id, i, s, e, piece, p, frozenset(tokens + tokenize(role)), detect_language(piece),
                        role=role, heading=bool(role), source_id=str(meta.get("source_id") or ""),
                        kind=str(kind or ""))
            # A line the manifest names (a byline, a short title) answers "who wrote it" however short.
            unit.usable = s >= body_start and (len(tokens) >= 3 or bool(role))
            if own_label is not None:
                unit.attributed_to = own_label
            else:
                for qs, qe, label, sid in quotes:
                    if overlaps((s, e), (qs, qe)):
                        unit.attributed_to, unit.source_id = label, sid
                        break
            doc.units.append(unit)
        return doc


# A sentence that adds to the one before rather than turning from it ("Also, ...", "Such instances ...").
ADDS_ON = re.compile(
    r"^\W*(?:also|such|moreover|furthermore|in addition|additionally|likewise|similarly|second(?:ly)?|third(?:ly)?|"
    r"finally|and|in fact|for example|for instance|this|these|it|they)\b|"
    r"^\W*(?:此外|另外|而且|同时|其次|最后|并且|例如|事实上|这|这些)|"
    r"^\W*(?:также|кроме того|более того|во-вторых|в-третьих|наконец|и|например|это|эти|такие)(?![\w])",
    re.IGNORECASE,
)
# A sentence that cannot be read alone: it points back ("Such instances ...", "This shift ...").
REFERS_BACK = re.compile(
    r"^\W*(?:such|this|these|that|those|it|its|they|their|he|she|his|her)\b|^\W*(?:这|这些|这种|其|它|他们|她们)|"
    r"^\W*(?:это|эти|этот|эта|такие|такой|такое|он|она|они|их|его|её)(?![\w])",
    re.IGNORECASE,
)
# A sentence that sets itself beside the one before ("At the same time, ..."), which may end the
# paragraph before: read with it, across the break.
SAME_TIME = re.compile(
    r"^\W*(?:at the same time|meanwhile)\b|^\W*(?:同时|与此同时)|^\W*(?:в то же время|одновременно)(?![\w])",
    re.IGNORECASE,
)
# A sentence that announces what the next ones list: "several reasons why ...", "три причины", "以下几点".
ANNOUNCES = re.compile(
    r"\b(?:several|many|a number of|a few|two|three|four|five|some|various|multiple|following|numerous)\s+"
    r"(?:\w+\s+)?(?:reasons?|ways|factors|steps|causes|points|arguments|grounds|motives|problems|concerns|"
    r"explanations|measures|options|conditions|lessons|implications|risks|benefits|interests)\b|:\s*$|"
    r"几个|几点|以下|如下|[一二三四五两](?:个|点|条)(?:原因|方面|理由|因素)|"
    r"(?:несколько|ряд|две|три|четыре|следующ\w*)\s+(?:\w+\s+)?(?:причин\w*|фактор\w*|шаг\w*|аргумент\w*|довод\w*)",
    re.IGNORECASE,
)
