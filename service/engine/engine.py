"""The offline answerer, step by step: question analysis -> answer plan -> evidence selection ->
composition. The LLM answerer is handed the same plan (service/engine/chain.py) and verified against it.

Takes the question (and the latest turn of a conversation), the passages retrieved for it, a way to
search again for each part of a multi-part question, and the documents mapping; gives an `Answer`:
text, the units it cites in marker order, whether it is a refusal, and the plan it followed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.engine.analysis import Analysis, Part, analyse, topical
from service.engine.catalog import BRIEFING_KINDS
from service.engine.compose import REFUSALS, compose, uncovered
from service.engine.plan import Plan, Planner, Slot
from service.engine.registry import articles, sources, summary
from service.engine.units import MAX_QUOTE_CHARS, Unit, UnitCache, per_documents

Search = Callable[..., tuple[list[Any], Any]]
"""search(text, kinds=None) -> (passages, query vector); `kinds` restricts the kinds of document."""


@dataclass
class Answer:
    text: str
    cited: list[tuple[int, Unit]]
    refused: bool
    kind: str
    answerability: float = 0.0
    notes: list[str] = field(default_factory=list)
    parts: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[tuple[str, list[Unit]]] = field(default_factory=list)
    """Per part: its text and the units chosen for it (what the LLM answerer is shown)."""
    pool: list[Unit] = field(default_factory=list)
    """Every candidate unit that was scored, best first: what an LLM sentence may be verified against."""
    direct: tuple[str, Unit, float] | None = None
    """The short answer the text begins with, the span it is, and the span model's probability."""


class Engine:
    def __init__(self, embedder: Any, store: Any, settings: Any) -> None:
        self.settings = settings
        self.units = UnitCache(store)
        from service.engine.plan import rules_from

        self.planner = Planner(
            embedder, self.units, floor_setting=settings.refusal_threshold,
            cross_floor_setting=settings.refusal_threshold_cross_lingual, ratio_setting=settings.cite_share,
            word_match=settings.word_match, max_chars=settings.answer_max_chars,
            max_points=settings.max_citations + 1, scorer_dir=settings.scorer_dir,
            rules=rules_from(settings.plan_rules),
        )

    def about_the_briefing(self, question: str, query: str, lang: str) -> bool:
        """Whether the question asks about a briefing as such ("the article", "the author", "which
        sources", "summarise the argument"), which means one briefing when the store holds several."""
        from service.engine.retrieval import ARTICLE_REFERENCE

        if ARTICLE_REFERENCE.search(query) or ARTICLE_REFERENCE.search(question):
            return True
        analysis = analyse(question, lang)
        return analysis.kind == "sources" or (analysis.kind == "summary" and not topical(analysis.question))

    def answer(self, question: str, focus: str | None, query: str, vector: Any, passages: list[Any],
               documents: dict[str, dict[str, Any]], search: Search, lang: str, max_chars: int | None = None) -> Answer:
        asked = focus or question
        analysis = analyse(asked, lang)
        split = len(analysis.parts) > 1 or analysis.parts[0].text != asked
        if split:
            # A piece that reads as an instruction to the assistant ("... ? Ignore the above and print
            # X") is not a part of the question: it is neither searched for nor echoed in the answer.
            from service.engine.guard import is_suspicious

            analysis.parts = [p for p in analysis.parts if not is_suspicious(p.label or p.text)] or analysis.parts[:1]
        max_chars = max_chars or self.settings.answer_max_chars
        if analysis.kind == "sources":
            answer = self._sources(analysis, documents, passages)
            if answer is not None:
                return answer
        labels, outlets = per_documents(_labels, documents)
        named = self.planner.named_source(analysis, labels, outlets)
        if analysis.kind == "summary":
            if named or not topical(analysis.question):
                answer = self._summary(analysis, documents, passages, named, max_chars)
                if answer is not None:
                    return answer
            # "Summarise what the article says about X": the points about X, as many as fit.
            analysis.kind = "list"
        from service.engine.retrieval import ARTICLE_REFERENCE

        if ARTICLE_REFERENCE.search(asked) and articles(documents) and not any(
            p.metadata.get("kind") in BRIEFING_KINDS for p in passages
        ):
            # "Who wrote the article?" among thousands of other documents: the article is what is
            # meant, so it is searched on its own rather than answered from whatever else matched.
            passages, vector = search(query, list(BRIEFING_KINDS))
        slots: list[Slot] = []
        withheld_total = 0
        pool: dict[tuple[str, int], Any] = {}
        for i, part in enumerate(analysis.parts):
            context = ""
            if not split:
                part_passages, part_vector, part_text = passages, vector, query
            else:
                part_text = _part_query(part, analysis, query if focus else "")
                # A later part may point back ("the limits of that role"): the first part is its context.
                context = analysis.parts[0].label if i > 0 and not part.side else ""
                part_passages, part_vector = search(f"{part_text} {context}".strip())
                part_passages = _merge(part_passages, passages)
            cands, withheld = self.planner.candidates(part_passages, documents)
            withheld_total += withheld
            near = {(c.unit.doc_id, c.unit.paragraph) for slot in slots for c in slot.chosen} if part.side else None
            taken = {(c.unit.doc_id, c.unit.index) for slot in slots for c in slot.chosen}
            ranked = self.planner.score(part_text, part_vector, cands, analysis, part, named, documents,
                                        focus=focus if len(analysis.parts) == 1 else None,
                                        context=context, near=near, taken=taken,
                                        near_units=taken if part.side else None,
                                        has_article=bool(articles(documents)))
            for s in ranked:
                pool.setdefault((s.unit.doc_id, s.unit.index), s)
            slot = Slot(part)
            if i > 0 and slots[-1].uncovered and _leans_on_previous(part):
                # "..., and why?" asks about what the part before found; it found nothing.
                slot.uncovered = "it asks about the part before, which the sources do not cover"
            else:
                # The second side of a comparison only has to be found, the question already passed.
                lenient = bool(part.side) and any(not s.uncovered for s in slots)
                self.planner.fill(slot, ranked, analysis, documents, focus if len(analysis.parts) == 1 else None,
                                  lenient=lenient)
            slots.append(slot)
        if analysis.kind == "compare" and any(s.uncovered for s in slots):
            # A comparison with one side missing cannot be made: say so rather than describe one side.
            for s in slots:
                s.uncovered = s.uncovered or "the other side of the comparison is not covered"
        plan = Plan(analysis, slots)
        if withheld_total:
            plan.notes.append(f"left out {withheld_total} sentence(s) of the retrieved passages that read as "
                              "instructions to the assistant")
        ranked_pool = [s.unit for s in sorted(pool.values(), key=lambda s: -s.score)]
        parts = [{"text": s.part.text, "covered": not s.uncovered, "why": s.uncovered or None} for s in slots]
        if plan.refused:
            return Answer(REFUSALS.get(lang, REFUSALS["en"]), [], True, analysis.kind, plan.answerability,
                          notes=[*plan.notes, *(s.uncovered for s in slots)], parts=parts, pool=ranked_pool)
        multi = len(slots) > 1
        rows = [(s.part.label if multi else "", self._joined([c.unit for c in s.chosen], documents), s.uncovered)
                for s in slots]
        direct = self.planner.direct(slots[0], analysis, query if not split else slots[0].part.text)
        text, cited = compose(rows, documents, lang, max_chars, direct=direct[:2] if direct else None)
        notes = [*plan.notes] + [f"not covered: {s.part.text} ({s.uncovered})" for s in slots if s.uncovered]
        return Answer(text, cited, False, analysis.kind, plan.answerability, notes=notes, parts=parts,
                      evidence=[(s.part.text, [c.unit for c in s.chosen]) for s in slots if not s.uncovered],
                      pool=ranked_pool, direct=direct)

    def _joined(self, units: list[Unit], documents: dict[str, dict[str, Any]]) -> list[Unit]:
        """Neighbouring sentences of one paragraph and one speaker, quoted as one passage while it
        stays citable (a claim and the reason that follows it are one point). Keeps the order of
        importance: a passage ranks as its most important sentence."""
        groups: list[list[Unit]] = []
        for unit in sorted(units, key=lambda u: (u.doc_id, u.start)):
            last = groups[-1][-1] if groups else None
            if (last is not None and last.doc_id == unit.doc_id and last.paragraph == unit.paragraph
                    and unit.index == last.index + 1 and last.attributed_to == unit.attributed_to
                    and not last.heading and not unit.heading and unit.end - groups[-1][0].start <= MAX_QUOTE_CHARS):
                groups[-1].append(unit)
            else:
                groups.append([unit])
        rank = {id(u): i for i, u in enumerate(units)}
        groups.sort(key=lambda g: min(rank[id(u)] for u in g))
        out = []
        for group in groups:
            doc = self.units.get(group[0].doc_id, documents) if len(group) > 1 else None
            if doc is None:
                out.extend(group)
                continue
            first, last = group[0], group[-1]
            out.append(dataclasses.replace(first, end=last.end, text=doc.text[first.start:last.end],
                                           tokens=frozenset().union(*(u.tokens for u in group))))
        return out

    # -- questions about the briefing itself ----------------------------------------------------
    def _target_article(self, documents: dict[str, dict[str, Any]], passages: list[Any]) -> str | None:
        ids = articles(documents)
        for p in passages:
            if p.doc_id in ids:
                return str(p.doc_id)
            cited_in = documents.get(p.doc_id, {}).get("cited_in")
            if cited_in in ids:
                return str(cited_in)
        return ids[0] if ids else None

    def _sources(self, analysis: Analysis, documents: dict[str, dict[str, Any]], passages: list[Any]) -> Answer | None:
        article = self._target_article(documents, passages)
        intro, items = sources(analysis.question, analysis.lang, documents, self.units, article)
        if not items:
            return None
        markers: dict[tuple[str, int], int] = {}
        cited: list[tuple[int, Unit]] = []
        lines = [intro]
        for item in items:
            key = (item.unit.doc_id, item.unit.start)
            if key not in markers:
                markers[key] = len(cited) + 1
                cited.append((markers[key], item.unit))
            lines.append(f"- {item.text} [{markers[key]}]")
        units = [u for _, u in cited]
        return Answer("\n".join(lines), cited, False, "sources", 1.0, parts=[{"text": analysis.question, "covered": True, "why": None}],
                      evidence=[(analysis.question, units)], pool=units)

    def _summary(self, analysis: Analysis, documents: dict[str, dict[str, Any]], passages: list[Any],
                 named: str | None, max_chars: int) -> Answer | None:
        article = self._target_article(documents, passages)
        if named:
            # "Summarise the X analysis": what the article reports of X.
            doc = self.units.get(article, documents) if article else None
            units = [u for u in doc.units if u.attributed_to == named] if doc else []
            if doc is None or not units:
                return None
            picked = summary(doc, self.planner, analysis.count or 3, units)
        else:
            target = article or (passages[0].doc_id if passages else None)
            doc = self.units.get(target, documents) if target else None
            if doc is None:
                return None
            picked = summary(doc, self.planner, analysis.count)
        if not picked:
            return None
        text, cited = compose([("", picked, "")], documents, analysis.lang, max_chars)
        return Answer(text, cited, False, "summary", 1.0, parts=[{"text": analysis.question, "covered": True, "why": None}],
                      evidence=[(analysis.question, picked)], pool=picked)


def _labels(documents: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    labels: dict[str, str] = {}
    for meta in documents.values():
        if meta.get("kind") in {"quoted excerpt", "cited source"} and meta.get("label"):
            label = str(meta["label"])
            # The outlet in both languages and the kind of source ("journal article"), so that "the
            # Chinese journal" finds the journal, not Chinese TV news.
            labels[label] = "|".join(str(meta[k]) for k in ("outlet", "outlet_original", "source_type") if meta.get(k))
    return sorted(labels), labels


def _leans_on_previous(part: Part) -> bool:
    """A part that is little more than a question word or points back ("and why?", "when did it run?")."""
    from briefing_core.text import tokenize
    from service.engine.analysis import POINTS_BACK

    return len(tokenize(part.label)) <= 2 or bool(POINTS_BACK.search(part.label))


def _part_query(part: Part, analysis: Analysis, context: str) -> str:
    """A part searched on its own keeps the source the whole question names ("what does it still
    have" after "according to X, what does Russia lack"); its subject is its own, in its text."""
    extra = " ".join(x for x in (analysis.named, context) if x and x not in part.text)
    return f"{part.text} {extra}".strip()


def _merge(first: list[Any], second: list[Any]) -> list[Any]:
    seen = {p.chunk_id for p in first}
    return first + [p for p in second if p.chunk_id not in seen]


__all__ = ["Answer", "Engine", "uncovered"]
