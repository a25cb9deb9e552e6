"""The scoring contract of eval/gold/README.md, computed from per-question records alone.

Nothing here trusts the runner: a record says what the system answered, cited and retrieved; the
gold question says what is right; the stored documents say where evidence lies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from briefing_core.spans import find_folded, normalise_answer, overlaps
from eval.gold import GoldQuestion

MAX_CITATION_CHARS = 400
MAX_PASSAGE_CHARS = 1500
RETRIEVAL_K = 5

METRICS = (
    "answer_accuracy",
    "overall_accuracy",
    "unanswerable_share",
    "refusal_accuracy",
    "false_refusal_rate",
    "retrieval_recall_at_5",
    "citation_recall",
    "evidence_coverage",
    "citation_precision",
    "citation_validity",
    "latency_ms_p50",
    "latency_ms_p95",
)
# Higher is better for all but these.
LOWER_IS_BETTER = {"false_refusal_rate", "latency_ms_p50", "latency_ms_p95"}

Span = tuple[str, int, int]

# The `by_briefing` group of the questions asked across every briefing (no scope).
ALL_BRIEFINGS = "(all briefings)"


def evidence_places(question: GoldQuestion, corpus: dict[str, str]) -> list[list[Span]]:
    """For each evidence string, every place it occurs, white space folded."""
    return [
        [(doc_id, s, e) for doc_id, text in corpus.items() for s, e in find_folded(text, ev)]
        for ev in question.evidence
    ]


def evidence_spans(question: GoldQuestion, corpus: dict[str, str]) -> list[Span]:
    """Every place any evidence string occurs, white space folded."""
    return [span for places in evidence_places(question, corpus) for span in places]


def _hits(span: Span, evidence: list[Span]) -> bool:
    return any(span[0] == ev[0] and overlaps(span[1:], ev[1:]) for ev in evidence)


def facts_matched(question: GoldQuestion, answer: str) -> bool:
    lowered = answer.lower()
    return all(any(alt.lower() in lowered for alt in group) for group in question.facts)


def over_max_chars(question: GoldQuestion, answer: str) -> bool:
    return question.max_chars is not None and len(answer) > question.max_chars


def citation_valid(citation: dict[str, Any], corpus: dict[str, str]) -> bool:
    text = corpus.get(citation.get("doc_id", ""))
    try:
        start, end = int(citation["start"]), int(citation["end"])
    except (KeyError, TypeError, ValueError):
        return False
    if text is None or not (0 <= start <= end <= len(text)):
        return False
    return text[start:end] == citation.get("quote")


def citation_on_evidence(citation: dict[str, Any], evidence: list[Span]) -> bool:
    start, end = int(citation.get("start", 0)), int(citation.get("end", 0))
    if end - start > MAX_CITATION_CHARS:
        return False
    return _hits((citation.get("doc_id", ""), start, end), evidence)


def retrieval_hit(retrieved: list[dict[str, Any]], evidence: list[Span]) -> bool:
    for passage in retrieved[:RETRIEVAL_K]:
        start, end = int(passage.get("start", 0)), int(passage.get("end", 0))
        if end - start > MAX_PASSAGE_CHARS:
            continue
        if _hits((passage.get("doc_id", ""), start, end), evidence):
            return True
    return False


def judge(question: GoldQuestion, record: dict[str, Any], corpus: dict[str, str]) -> dict[str, Any]:
    """The per-question checks every metric is built from."""
    places = evidence_places(question, corpus)
    evidence = [span for spans in places for span in spans]
    citations = record.get("citations") or []
    on_evidence = [citation_on_evidence(c, evidence) for c in citations]
    refused = bool(record.get("refused"))
    answer = record.get("answer", "")
    checks: dict[str, Any] = {
        "refused": refused,
        "citations": len(citations),
        "citations_valid": sum(citation_valid(c, corpus) for c in citations),
        "citations_on_evidence": sum(on_evidence),
        "answer_chars": len(answer),
        "max_chars": question.max_chars,
        "over_max_chars": over_max_chars(question, answer),
    }
    direct = record.get("direct_answer") or None
    if question.answerable and direct and not refused:
        # A short answer given first: does it equal one of the annotators' answers? (For sets whose facts
        # are whole answers, as the human-written sets' are.)
        said = normalise_answer(str(direct.get("text", "")))
        checks["direct"] = True
        checks["direct_exact"] = any(said == normalise_answer(alt) for group in question.facts for alt in group)
    if question.answerable:
        checks["correct"] = (
            not refused and facts_matched(question, answer) and not checks["over_max_chars"]
        )
        checks["retrieval_hit"] = retrieval_hit(record.get("retrieved") or [], evidence)
        checks["citation_hit"] = any(on_evidence)
        covered = 0 if refused else sum(
            any(citation_on_evidence(c, spans) for c in citations) for spans in places
        )
        checks["evidence_covered"] = covered
        checks["evidence_strings"] = len(places)
        checks["evidence_coverage"] = covered / len(places) if places else 0.0
        checks["passed"] = checks["correct"] and checks["citation_hit"]
    else:
        checks["passed"] = refused
    return checks


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 2)


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 4) if den else None


def summarise(pairs: Iterable[tuple[GoldQuestion, dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Metrics over (question, record, checks) triples."""
    pairs = list(pairs)
    answerable = [(q, r, c) for q, r, c in pairs if q.answerable]
    unanswerable = [(q, r, c) for q, r, c in pairs if not q.answerable]
    cites_answerable = sum(c["citations"] for _, _, c in answerable)
    cites_all = sum(c["citations"] for _, _, c in pairs)
    latencies = [float(r.get("latency_ms", 0.0)) for _, r, _ in pairs]
    return {
        "answer_accuracy": _ratio(sum(c["correct"] for _, _, c in answerable), len(answerable)),
        # Over every question: answered right, or refused when the sources do not say. Beside it, what
        # refusing everything would score.
        "overall_accuracy": _ratio(
            sum(c["correct"] for _, _, c in answerable) + sum(c["refused"] for _, _, c in unanswerable), len(pairs)
        ),
        "unanswerable_share": _ratio(len(unanswerable), len(pairs)),
        # Of the answerable questions answered, how many began with a short direct answer, and how many
        # of those equal an annotator's answer.
        "direct_answers": _ratio(sum(bool(c.get("direct")) for _, _, c in answerable),
                                 sum(not c["refused"] for _, _, c in answerable)),
        "direct_exact": _ratio(sum(bool(c.get("direct_exact")) for _, _, c in answerable),
                               sum(bool(c.get("direct")) for _, _, c in answerable)),
        "refusal_accuracy": _ratio(sum(c["refused"] for _, _, c in unanswerable), len(unanswerable)),
        "false_refusal_rate": _ratio(sum(c["refused"] for _, _, c in answerable), len(answerable)),
        "retrieval_recall_at_5": _ratio(sum(c["retrieval_hit"] for _, _, c in answerable), len(answerable)),
        "citation_recall": _ratio(sum(c["citation_hit"] for _, _, c in answerable), len(answerable)),
        "evidence_coverage": _ratio(sum(c["evidence_coverage"] for _, _, c in answerable), len(answerable)),
        "citation_precision": _ratio(sum(c["citations_on_evidence"] for _, _, c in answerable), cites_answerable),
        "citation_validity": _ratio(sum(c["citations_valid"] for _, _, c in pairs), cites_all),
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
        "questions": len(pairs),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "citations": cites_all,
    }


def briefing_group(record: dict[str, Any]) -> str:
    """The `by_briefing` key of a record: the briefing it was asked within, or ALL_BRIEFINGS."""
    return record.get("briefing") or ALL_BRIEFINGS


def breakdown(pairs: list[tuple[GoldQuestion, dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """The overall metrics, then the same per language, per kind of question and per briefing scope."""
    by_lang = {
        lang: summarise(p for p in pairs if p[0].lang == lang)
        for lang in sorted({q.lang for q, _, _ in pairs})
    }
    kinds = sorted({k for q, _, _ in pairs for k in q.kinds})
    by_kind = {kind: summarise(p for p in pairs if kind in p[0].kinds) for kind in kinds}
    # "(all briefings)" sorts before every briefing id (ids begin with a letter or digit).
    scopes = sorted({briefing_group(r) for _, r, _ in pairs})
    by_briefing = {scope: summarise(p for p in pairs if briefing_group(p[1]) == scope) for scope in scopes}
    return {**summarise(pairs), "by_language": by_lang, "by_kind": by_kind, "by_briefing": by_briefing}


def shows_briefings(summary: dict[str, Any]) -> bool:
    """Whether the report shows `by_briefing`: more than one group, or any scoped question."""
    groups = summary.get("by_briefing") or {}
    return len(groups) > 1 or any(key != ALL_BRIEFINGS for key in groups)
