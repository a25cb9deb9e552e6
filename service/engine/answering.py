"""What an answer is made of, shared by the offline answerer (service/engine/) and the LLM path:
the result and citation shapes, the reply language, and how well a sentence is supported by a span.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from service.engine.retrieval import Passage


@dataclass
class Citation:
    n: int
    doc_id: str
    title: str
    outlet: str
    start: int
    end: int
    quote: str
    kind: str = ""
    source_id: str = ""
    attributed_to: str | None = None
    language: str = ""
    date: str = ""
    support: float = 1.0
    briefing: str | None = None
    """The briefing the cited document belongs to (None for a document outside any)."""


@dataclass
class Result:
    question: str
    answer: str
    refused: bool
    citations: list[Citation]
    retrieved: list[Passage]
    answerer: str
    latency_ms: float = 0.0
    standalone_query: str = ""
    language: str = "en"
    answerability: float = 0.0
    notes: list[str] = field(default_factory=list)
    fallback: str | None = None
    unsupported: list[str] = field(default_factory=list)
    question_kind: str = ""
    """What the question asks for (summary, sources, compare, reasons, list, yesno, factoid, describe)."""
    parts: list[dict[str, Any]] = field(default_factory=list)
    """The parts of the question, each with whether the sources cover it (and why not)."""
    briefing: str | None = None
    """The briefing the question was scoped to (None: every briefing the store holds)."""
    briefings: list[dict[str, Any]] = field(default_factory=list)
    """When the answer was given briefing by briefing: each briefing asked, whether it covers the
    question, and the citation numbers of its section."""
    direct_answer: dict[str, Any] | None = None
    """The short answer the text begins with ("1973."), when a factoid part has one: its text, the
    document and range it was found at, the citation that holds it, and the span model's probability."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [asdict(c) for c in self.citations],
            "retrieved": [p.to_dict() for p in self.retrieved],
            "answerer": self.answerer,
            "latency_ms": round(self.latency_ms, 2),
            "standalone_query": self.standalone_query,
            "language": self.language,
            "answerability": round(self.answerability, 4),
            "notes": self.notes,
            "fallback": self.fallback,
            "unsupported": self.unsupported,
            "question_kind": self.question_kind,
            "parts": self.parts,
            "briefing": self.briefing,
            "briefings": self.briefings,
            "direct_answer": self.direct_answer,
        }


# ---------------------------------------------------------------------------------------
# Language of the reply
# ---------------------------------------------------------------------------------------


def reply_language(question: str) -> str:
    from briefing_core.text import detect_language
    from service.engine.compose import REFUSALS

    lang = detect_language(question)
    return lang if lang in REFUSALS else "en"


def make_citation(n: int, cand: Any, meta: dict[str, Any], support: float = 1.0) -> Citation:
    """A citation of a span (anything with doc_id, start, end, text, source_id, attributed_to)."""
    return Citation(
        n=n,
        doc_id=cand.doc_id,
        title=str(meta.get("title") or cand.doc_id),
        outlet=str(meta.get("outlet") or ""),
        start=cand.start,
        end=cand.end,
        quote=cand.text,
        kind=str(meta.get("kind") or ""),
        source_id=cand.source_id or str(meta.get("source_id") or ""),
        attributed_to=cand.attributed_to,
        language=str(meta.get("language") or ""),
        date=str(meta.get("date") or ""),
        support=round(support, 4),
        briefing=str(meta.get("briefing") or "") or None,
    )


# ---------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------

_MARKER = re.compile(r"\s*\[(\d{1,3})\]")


def numbers_in(text: str) -> set[str]:
    return {m.group(0).replace(",", "") for m in re.finditer(r"\d[\d,]*(?:\.\d+)?", text)}


def support(claim: str, quote: str, planner: Any) -> float:
    """How much of the claim the quote bears out: the fixed-weight share of the claim's terms found
    in the quote, blended with their embedding similarity; a number the quote lacks is unsupported."""
    from briefing_core.text import tokenize
    from service.engine.salience import coverage, term_weights

    claim_text = _MARKER.sub("", claim)
    if numbers_in(claim_text) - numbers_in(quote):
        return 0.0
    weights = term_weights(claim_text)
    if not weights:
        return 1.0
    lexical = coverage(weights, set(tokenize(quote)))
    vecs = planner.vectors([claim_text, quote])
    dense = float(vecs[0] @ vecs[1])
    return 0.7 * lexical + 0.3 * max(dense, 0.0)
