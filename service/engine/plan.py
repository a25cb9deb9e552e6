"""The answer plan: one slot per part of the question, each filled from the best evidence for it, or
marked uncovered with the reason.

Takes an `Analysis`, the passages retrieved for each part and the documents mapping; gives a
`Plan`. Evidence is chosen in units (sentences or clauses of whole documents, see `units.py`):

1. every unit of the retrieved passages is scored against the part: the fixed-weight share of the
   part's terms it holds (`salience.py`), its embedding similarity, its passage's rank; a unit of
   the source the question names gains, a unit of another source does not join;
2. the best unit must hold what the part asks for: its answer type (a number for "how many", a
   name for "who"), its rarer terms (in the unit, its paragraph or its source's name), the actor
   when the question asks what someone said or did, and a score over a fixed floor;
3. the best unit brings what it needs to be read: the sentences an announcement introduces
   ("several reasons why ..."), the sentence a continuation reads on from ("Such instances ...");
4. runners-up join while they score nearly as well and add something new, within the length an
   analyst reads at a glance; everything is cited in document order.

Nothing here depends on what else the store holds: weights are fixed, floors are absolute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from service.engine.analysis import Analysis, Part, holds_type, named_phrase
from service.engine.catalog import BRIEFING_KINDS
from service.engine.salience import coverage, matches, term_weights
from service.engine.retrieval import ARTICLE_REFERENCE
from service.engine.units import ADDS_ON, ANNOUNCES, REFERS_BACK, DocUnits, Unit, UnitCache

_CAUSAL = re.compile(
    r"\b(?:because|since|so that|so if|therefore|thus|hence|as a result|due to|owing to|in order to|which is why)\b|"
    r"因为|所以|由于|因此|以便|потому что|так как|поэтому|из-за|вследствие|чтобы",
    re.IGNORECASE,
)
# A noun this rare (Zipf 4 or less) names a specific concept ("sanctions", "warships"), which an
# answer mentions; commoner ones ("countries", "reasons", "steps") are categories answered by instances.
SPECIFIC_WEIGHT = 3.0
_ASKED = re.compile(
    r"^\W*(?:what|which|how many|how much)\s+(?P<phrase>(?:[\w’'-]+\s+){0,3}?)(?=(?:does|do|did|is|are|was|were|has|"
    r"have|had|can|could|will|would|should|took|take|were)\b)",
    re.IGNORECASE,
)


_ABOUT = re.compile(r"\b(?:about|regarding|concerning|on the (?:subject|question) of)\s+(?P<phrase>[^?,.;]+)",
                    re.IGNORECASE)


def about_terms(question: str) -> dict[str, float]:
    """The topic a question names after "about" / "regarding", its less common words with weights."""
    m = _ABOUT.search(question)
    if not m:
        return {}
    return {t: w for t, w in term_weights(m.group("phrase")).items() if w >= 2.6 and not t.isdigit()}


def asked_terms(question: str) -> list[str]:
    m = _ASKED.search(question)
    return sorted(_tokens(m.group("phrase"))) if m else []


# A capitalised word inside an English question (not its first word): a name.
_NAMES = re.compile(r"(?<=[\w,;:’'\"”)]\s)[A-Z][\w’'.-]*")
# Cues that a sentence reports what its subject said, thought or did.
_STANCE = re.compile(
    r"\b(?:said|says|say|argu\w+|wrote|writes|conclud\w+|intoned|explain\w*|suggest\w*|emphasi[sz]\w*|"
    r"not(?:ed|es|ing)|prais\w*|call\w*|warn\w*|claim\w*|insist\w*|stated|statements?|declar\w+|announc\w+|"
    r"indicat\w+|react\w*|"
    r"respond\w*|propos\w*|offer\w*|recommend\w*|view\w*|consider\w*|believ\w*|gave|give|giving|headlines?|"
    r"interpretations?|appraisal|assessments?|opted|decid\w+|favou?r\w*|threaten\w*|did not miss)\b|[:,]\s*[“«\"„]",
    re.IGNORECASE,
)


@dataclass
class Scored:
    unit: Unit
    passage: int
    lexical: float = 0.0
    dense: float = 0.0
    score: float = 0.0
    named: bool = False
    relevance: float = 0.0
    """The score before preferences (the named source, the article, a role, the pivot word): what
    the floor is compared with, so a preference can reorder evidence but not make it relevant."""


@dataclass
class Slot:
    part: Part
    chosen: list[Scored] = field(default_factory=list)
    best: float = 0.0
    uncovered: str = ""
    """Why the sources do not answer this part; empty when they do."""


@dataclass
class Plan:
    analysis: Analysis
    slots: list[Slot]
    notes: list[str] = field(default_factory=list)

    @property
    def covered(self) -> list[Slot]:
        return [s for s in self.slots if not s.uncovered]

    @property
    def refused(self) -> bool:
        return not self.covered

    @property
    def answerability(self) -> float:
        return max((s.best for s in self.slots), default=0.0)


@dataclass
class Planner:
    """Chooses evidence; its numbers are settings (docs/configuration.md), calibrated in docs/quality.md."""

    embedder: Any
    units: UnitCache
    floor: float = 0.32
    lexical_weight: float = 0.6
    dense_weight: float = 0.4
    cross_lexical_weight: float = 0.25
    rank_weight: float = 0.04
    source_bonus: float = 0.12
    max_points: int = 4
    max_chars: int = 700
    ratio: float = 0.9
    source_match: float = 0.45
    source_margin: float = 0.15
    cross_floor: float = 0.25
    word_match: float = 0.55
    _vectors: dict[str, np.ndarray] = field(default_factory=dict)

    # -- vectors ------------------------------------------------------------------------------
    def vectors(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            if len(self._vectors) > 50_000:
                self._vectors.clear()
            for text, vec in zip(missing, self.embedder.embed_documents(missing), strict=True):
                self._vectors[text] = np.asarray(vec, dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    # -- candidates ---------------------------------------------------------------------------
    def candidates(self, passages: list[Any], documents: dict[str, dict[str, Any]]) -> tuple[list[tuple[Unit, int]], int]:
        """The units of the retrieved passages with their passage's rank, and how many sentences
        were withheld because they read as instructions to the assistant (service/engine/guard.py): such a
        sentence is never an answer span; the clean sentences of a unit that holds one stay usable."""
        import dataclasses

        from service.engine.guard import is_suspicious, usable_parts

        out: list[tuple[Unit, int]] = []
        withheld = 0
        seen: set[tuple[str, int]] = set()
        for rank, passage in enumerate(passages):
            doc = self.units.get(passage.doc_id, documents)
            if doc is None:
                continue
            for unit in doc.at(passage.start, passage.end):
                key = (unit.doc_id, unit.index)
                if key in seen or not unit.usable:
                    continue
                seen.add(key)
                if not is_suspicious(unit.text):
                    out.append((unit, rank))
                    continue
                parts = usable_parts(unit.text)
                withheld += 1
                for s, e in parts:
                    out.append((dataclasses.replace(unit, start=unit.start + s, end=unit.start + e,
                                                    text=unit.text[s:e]), rank))
        return out, withheld

    def score(self, part_text: str, vector: Any, cands: list[tuple[Unit, int]], analysis: Analysis,
              part: Part, named: str | None, focus: str | None = None, context: str = "",
              near: set[tuple[str, int]] | None = None, taken: set[tuple[str, int]] | None = None,
              near_units: set[tuple[str, int]] | None = None, has_article: bool = True) -> list[Scored]:
        """Best first. `has_article`: the store holds a briefing article, which "the article" then means.
        `context`: words of the question outside this part (an earlier part that
        "that role" points back to), weighed at half. `near`: paragraphs holding the other side of
        a comparison, where writers set the contrasting view (`near_units`: its sentences). `taken`: units an earlier part already
        quotes; one still wins only if it clearly answers this part too."""
        weights = term_weights(part_text)
        for t, w in term_weights(context).items():
            weights.setdefault(t, 0.5 * w)
        if focus:
            # The latest turn of a conversation says what is asked now; earlier turns give context.
            for t, w in term_weights(focus).items():
                weights[t] = max(weights.get(t, 0.0), w * 1.5)
        if analysis.kind == "reasons":
            # A "why" question ends on what it asks the reason for ("... long overdue?"): English puts
            # the new information last.
            content = [t for t, w in weights.items() if w >= 1.0 and not t.isdigit()]
            for t in content[-2:]:
                weights[t] *= 2.5
        for t in asked_terms(part.label or part.text):
            # "What path ...": the thing asked for is what the answer is about.
            if t in weights:
                weights[t] *= 2.0
        if analysis.named:
            # "According to X" names where to look, not what is asked.
            for t in term_weights(analysis.named):
                if t in weights:
                    weights[t] *= 0.3
        if ARTICLE_REFERENCE.search(analysis.question):
            # "The article", "this piece", "the author": the briefing and what it quotes, not other
            # documents that happen to share the words.
            own = [(u, r) for u, r in cands if u.kind in BRIEFING_KINDS]
            cands = own if own or has_article else cands
        if not cands:
            return []
        sims = self.vectors([u.text for u, _ in cands]) @ np.asarray(vector, dtype=np.float32)
        side = term_weights(part.side) if part.side else {}
        # Who is asked about: the subject of "what did X say", or one side of a comparison of views.
        subject = part.side or part.subject
        # The question's rarest word is what it turns on ("why ... long overdue"): a sentence holding
        # it is closer to the answer than one that only shares the topic.
        pivot = _pivot(weights)
        # "The article", "the author": among other documents, the briefing article is what is meant.
        about_article = bool(ARTICLE_REFERENCE.search(analysis.question))
        q_tokens = set(_tokens(part_text))
        numbers = {t for t in term_weights(part.text) if t.isdigit()}
        own = set(term_weights(part.label)) - set(term_weights(context)) if context else set()
        out = []
        for (unit, rank), sim in zip(cands, sims, strict=True):
            label_tokens = _label_tokens(unit)
            lexical = coverage(weights, set(unit.tokens) | label_tokens)
            same = unit.lang == analysis.lang
            s = Scored(unit, rank, lexical, float(sim))
            mixed = self.lexical_weight * lexical + (1 - self.lexical_weight) * float(sim)
            if not same:
                # Across languages the words rarely meet; the meaning carries the score, unless words
                # do meet (a name, a role word such as 副标题).
                mixed = max(mixed, self.cross_lexical_weight * lexical + (1 - self.cross_lexical_weight) * float(sim))
            s.score = s.relevance = mixed + self.rank_weight / (1 + rank)
            if about_article and unit.kind in {"article", "quoted excerpt"}:
                s.score += 0.1
            if unit.role and not named and q_tokens & _tokens(unit.role):
                # The question names a part of the article (its photo, its subtitle): that part
                # answers, unless the question is about a source's headline.
                s.score += 0.2
            if pivot and matches(pivot, set(unit.tokens)):
                s.score += 0.08
            if numbers and not numbers <= unit.tokens:
                s.score *= 0.6
            if part.answer_type and not holds_type(part.answer_type, unit.text, part.text):
                s.score *= 0.5
            if side and same and coverage(side, set(unit.tokens) | label_tokens) < 0.5:
                s.score *= 0.6
            if unit.heading and analysis.kind not in {"summary", "factoid", "describe"}:
                s.score *= 0.8
            if subject and not _acts(subject, unit):
                # Asked what X said or did: a sentence where X does not speak or act is background.
                s.score *= 0.75
            if taken and (unit.doc_id, unit.index) in taken and not (own and own <= unit.tokens):
                # Quoted already for an earlier part: it answers this one too only if it holds
                # what this part adds ("... and what does it STILL have").
                s.score *= 0.65
            if near and (unit.doc_id, unit.paragraph) in near:
                # Writers set contrasting views side by side: the sentence right next to the other
                # side's evidence most of all.
                s.score += 0.15 if (unit.doc_id, unit.index - 1) in near_units or (unit.doc_id, unit.index + 1) in near_units else 0.05
            if named and unit.attributed_to == named:
                s.named = True
                s.score += self.source_bonus
            out.append(s)
        out.sort(key=lambda s: -s.score)
        if analysis.lang != "en":
            self._rescore_across(part_text, analysis.lang, out)
        return out

    def _rescore_across(self, text: str, lang: str, ranked: list[Scored], top: int = 12) -> None:
        """A Chinese or Russian question over English sentences: the words cannot meet as written,
        so each rare question word is looked for by meaning among the sentence's words (солидарности
        ~ solidarity), and that share stands in for the lexical part of the best few sentences."""
        from service.engine.salience import key_words

        key = key_words(text, lang, min_weight=1.5, top=5, skip=named_phrase(text))
        if not key:
            return
        head = [s for s in ranked[:top] if s.unit.lang != lang]
        vocab = sorted({w.lower() for s in head for w in _ENGLISH_WORD.findall(f"{s.unit.text} {s.unit.attributed_to or ''}")}
                       - _EN_STOP())
        if not head or not vocab:
            return
        index = {w: i for i, w in enumerate(vocab)}
        sims = self.vectors(list(key)) @ self.vectors(vocab).T
        total = sum(key.values())
        for s in head:
            cols = [index[w.lower()] for w in _ENGLISH_WORD.findall(f"{s.unit.text} {s.unit.attributed_to or ''}")
                    if w.lower() in index]
            if not cols:
                continue
            best = sims[:, cols].max(axis=1)
            share = sum(w for w, b in zip(key.values(), best, strict=True) if b >= self.word_match) / total
            across = 0.5 * share + 0.5 * s.dense + self.rank_weight / (1 + s.passage)
            if across > s.relevance:
                s.score += across - s.relevance
                s.relevance = across
        ranked.sort(key=lambda s: -s.score)

    # -- the named source -----------------------------------------------------------------------
    def named_source(self, analysis: Analysis, labels: list[str], outlets: dict[str, str]) -> str | None:
        """The label of the source the question names, by its words ("the Northeast Asia Forum
        analysis"), or after "according to X" by meaning and spelling, so a Chinese or Russian name
        finds the English label; None when no label is clearly the one."""
        from service.engine.spelling import spelled_alike

        if not labels:
            return None
        q_tokens = set(_tokens(analysis.question))
        best_lex, best_label = 0.0, None
        for label in labels:
            # The label or the outlet's name, in English or in its own language, named in full.
            for name in (label, *outlets.get(label, "").split("|")):
                words = _tokens(name) - _GENERIC_LABEL
                if words:
                    share = sum(1 for w in words if w in q_tokens) / len(words)
                    if share > best_lex:
                        best_lex, best_label = share, label
        if best_lex >= 0.6:
            return best_label
        phrase = analysis.named
        if not phrase:
            return None
        named = np.asarray(self.embedder.embed_query(phrase), dtype=np.float32)
        texts = [f"{label} {outlets.get(label, '').replace('|', ' ')}".strip() for label in labels]
        sims = self.vectors(texts) @ named
        sims = sims + 0.5 * np.asarray([spelled_alike(phrase, t) for t in texts])
        order = np.argsort(-sims)
        best = float(sims[order[0]])
        runner_up = float(sims[order[1]]) if len(labels) > 1 else -1.0
        if best >= self.source_match and best - runner_up >= self.source_margin:
            return labels[int(order[0])]
        return None

    def check_across(self, part: Part, analysis: Analysis, unit: Unit, doc: DocUnits | None, named: bool = False) -> str:
        """A Chinese or Russian question over English evidence: its rarest words must have a
        counterpart in meaning among the words of the span, its paragraph or its source's name
        (制裁 ~ sanctions, солидарности ~ solidarity); the words cannot be compared as they are."""
        from service.engine.salience import key_words

        key = key_words(part.text, analysis.lang, skip=analysis.named)
        if not key:
            return ""
        # The span and its neighbours: enough to hold a paraphrase, few enough words to embed at once.
        near = [doc.neighbour(unit, -1), unit, doc.neighbour(unit, 1)] if doc is not None else [unit]
        texts = [u.text for u in near if u is not None]
        texts += [unit.attributed_to or "", str(doc.meta.get("title", "")) if doc else "", unit.role]
        joined = " ".join(texts)
        # The article quotes its sources in their own words ([环球时报]): a word found as written is held.
        held = {k for k in key if k.lower() in joined.lower()}
        words = sorted({w.lower() for w in _ENGLISH_WORD.findall(joined)} - _EN_STOP())
        rest = [k for k in key if k not in held]
        if rest and words:
            sims = self.vectors(rest) @ self.vectors(words).T
            held |= {k for k, row in zip(rest, sims, strict=True) if float(row.max()) >= self.word_match}
        rest = [k for k in key if k not in held]
        if rest:
            # One Chinese or Russian word may be several English ones (南海 ~ South China Sea).
            seq = [w.lower() for w in _ENGLISH_WORD.findall(joined)]
            grams = sorted({" ".join(seq[i:i + n]) for n in (2, 3) for i in range(len(seq) - n + 1)})
            if grams:
                sims = self.vectors(rest) @ self.vectors(grams).T
                held |= {k for k, row in zip(rest, sims, strict=True) if float(row.max()) >= self.word_match}
        share = sum(w for k, w in key.items() if k in held) / sum(key.values())
        if analysis.kind == "yesno" and not named:
            # "Does the author support sanctions?": each rare word is the point of the question
            # (unless the question names a source, whose passages speak of it in their own words).
            unheld = [k for k, w in key.items() if k not in held and w >= SPECIFIC_WEIGHT]
            if unheld:
                return f"the best passage does not mention {', '.join(unheld)}"
        # The passages of a source the question names are about what it asks, in other words.
        if share < (0.3 if named else 0.5):
            return f"the best passage does not mention {', '.join(k for k in key if k not in held)}"
        return ""

    # -- filling a slot ---------------------------------------------------------------------------
    def fill(self, slot: Slot, ranked: list[Scored], analysis: Analysis, documents: dict[str, dict[str, Any]],
             focus: str | None = None, lenient: bool = False) -> None:
        part = slot.part
        if not ranked:
            slot.uncovered = "nothing relevant was retrieved"
            return
        best = ranked[0]
        slot.best = best.relevance
        problem = self.check(best, ranked, part, analysis, documents, focus, lenient)
        if problem:
            slot.uncovered = problem
            return
        doc = self.units.get(best.unit.doc_id, documents)
        chosen = [best]
        by_unit = {(s.unit.doc_id, s.unit.index): s for s in ranked}

        def scored(unit: Unit) -> Scored:
            return by_unit.get((unit.doc_id, unit.index)) or Scored(unit, best.passage)

        if doc is not None:
            # A sentence that points back is read with the one it points to.
            prev = doc.neighbour(best.unit, -1)
            if REFERS_BACK.search(best.unit.text) and prev is not None and prev.usable and not prev.heading:
                chosen.append(scored(prev))
            # An announcement brings what it announces; a reason or a piece of evidence follows the
            # claim it supports, so a "why" or "what evidence" answer reads on while the text does.
            announces = bool(ANNOUNCES.search(best.unit.text))
            # A sentence that gives its own reason ("so if ... this will lighten the burden") needs
            # no next one to answer "why".
            reasoned = analysis.kind == "reasons" and bool(_CAUSAL.search(best.unit.text))
            if announces or analysis.kind in {"reasons", "list"}:
                nxt = doc.neighbour(best.unit, 1)
                taken = 0
                while (nxt is not None and taken < 3 and nxt.usable and not nxt.heading
                       and nxt.attributed_to == best.unit.attributed_to):
                    first = taken == 0 and (announces or (analysis.kind == "reasons" and not reasoned))
                    if not (first or ADDS_ON.search(nxt.text)):
                        break
                    chosen.append(scored(nxt))
                    taken += 1
                    nxt = doc.neighbour(nxt, 1)
        limit = self.max_points if not analysis.multi else 2
        named = any(s.named for s in ranked)
        # Asked what someone said or did, every statement of theirs that is nearly as close belongs.
        ratio = self.ratio - 0.2 if part.subject and not part.side else self.ratio
        for cand in ranked[1:]:
            if len(chosen) >= limit or cand.score < ratio * best.score:
                break
            if named and cand.unit.attributed_to and not cand.named:
                continue  # asked what X says, another source's words are not the answer
            actor = part.side or part.subject
            if actor and not _acts(actor, cand.unit):
                continue
            if any(_same_point(cand.unit, c.unit) for c in chosen):
                continue
            chosen.append(cand)
        # In order of importance (best first); composition quotes them in document order.
        slot.chosen = chosen

    def check(self, best: Scored, ranked: list[Scored], part: Part, analysis: Analysis,
              documents: dict[str, dict[str, Any]], focus: str | None, lenient: bool = False) -> str:
        """Why the best evidence does not answer the part, or "" when it does. `lenient` lowers the
        floor by a third (the other side of a comparison the question already showed relevant)."""
        unit = best.unit
        best_named = next((s.unit.attributed_to for s in ranked if s.named), None)
        if part.answer_type == "number" and not any(holds_type("number", s.unit.text) for s in ranked[:10]):
            return "the question asks for a number and no retrieved passage gives one"
        if part.answer_type == "day" and not any(holds_type("day", s.unit.text) for s in ranked[:10]):
            return "the question asks for a calendar date and no retrieved passage gives one"
        if part.answer_type and not holds_type(part.answer_type, unit.text, part.text):
            wanted = {"person": "a name", "date": "a time", "year": "a year", "number": "a number",
                      "day": "a calendar date"}[part.answer_type]
            return f"the question asks for {wanted} and the best passage gives none"
        crossing = analysis.lang != unit.lang
        floor = (self.cross_floor if crossing else self.floor) * (0.67 if lenient else 1.0)
        asks_role = bool(unit.role) and bool(set(_tokens(part.text)) & set(_tokens(unit.role)))
        if best.relevance < floor and not asks_role:
            # A question about the title, subtitle or photo is answered by that span, however
            # little else it shares with it.
            return f"the best passage scores {best.relevance:.2f}, under the floor {floor:.2f}"
        numbers = [t for t in term_weights(part.text) if t.isdigit() and t not in unit.tokens]
        if numbers:
            # A number or year the question asks about constrains the span itself ("cargo in 2023" is
            # not answered by the sentence about the 2018 target beside it).
            return f"the best passage does not mention {', '.join(numbers)}"
        doc = self.units.get(unit.doc_id, documents)
        if crossing:
            return self.check_across(part, analysis, unit, doc, named=best.named) or self._named_problem(best, best_named)
        if analysis.lang != "en":
            return ""
        context = set(unit.tokens) | _label_tokens(unit)
        # A year, a number or a date belongs to what its sentence speaks of, named there or before it
        # ("the route carried 36 million tonnes" after a sentence naming the route): asked the year of
        # X, a sentence whose paragraph names X only after it gives X no year.
        typed = part.answer_type in {"year", "number", "date", "day"}
        if doc is not None:
            for u in doc.paragraph(unit):
                if not typed or u.index <= unit.index:
                    context |= u.tokens
            context |= _tokens(f"{doc.meta.get('title', '')} {doc.meta.get('outlet', '')}")
        # Names and numbers are never paraphrased: an answer about them mentions them, in the span,
        # its paragraph or its source's name. Other words may be said otherwise; the floor weighs them.
        asked = focus or part.text
        weights = term_weights(asked)
        names = {t for name in _NAMES.findall(asked) for t in _tokens(name)} - set(term_weights(analysis.named))
        if part.side:
            # A side of a comparison shares the question's topic; only its own words single it out.
            names = {t for name in _NAMES.findall(f" {part.side}") for t in _tokens(name)}
        missing = [t for t in weights if t in names and not matches(t, context)]
        # The thing asked for ("What sanctions ...", "How many warships ..."), when it is a specific
        # concept rather than a category its instances answer ("which countries", "what reasons").
        missing += [t for t in asked_terms(part.label or asked) if weights.get(t, 0.0) >= SPECIFIC_WEIGHT
                    and t not in missing and not matches(t, context)]
        if analysis.kind == "yesno":
            # "Does the author support sanctions?": every rare word of a yes/no question is the point.
            missing += [t for t, w in weights.items() if w >= SPECIFIC_WEIGHT and not t.isdigit()
                        and t not in missing and not matches(t, context)]
        topic = about_terms(asked)
        if topic:
            # "... about Japan's defence budget": most of the topic must be there.
            held = sum(w for t, w in topic.items() if matches(t, context))
            if held < 0.5 * sum(topic.values()):
                missing += [t for t in topic if not matches(t, context) and t not in missing]
        if missing:
            return f"the best passage does not mention {', '.join(missing)}"
        if part.subject and not _acts(part.subject, unit):
            return f"the best passage does not say what {part.subject} said or did"
        if part.side and crossing is False and coverage(term_weights(part.side), set(unit.tokens) | _label_tokens(unit)) < 0.5:
            return f"the best passage does not speak of {part.side}"
        return self._named_problem(best, best_named)

    @staticmethod
    def _named_problem(best: Scored, best_named: str | None) -> str:
        if best_named is not None and not best.named:
            # Asked what X says: an answer from anyone else is not an answer.
            return f"no passage of {best_named} answers this"
        return ""


# Words a source's label shares with many labels ("the X analysis", "the Y headline"): they do not
# single a source out.
_GENERIC_LABEL = frozenset({"analysi", "editori", "headlin", "apprais", "articl"})


_ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z’'-]{2,}")


@lru_cache(maxsize=1)
def _EN_STOP() -> frozenset[str]:  # noqa: N802 - a constant built on first use
    from briefing_core.text import EN_STOPWORDS

    return frozenset(EN_STOPWORDS)


def _pivot(weights: dict[str, float]) -> str | None:
    content = {t: w for t, w in weights.items() if not t.isdigit() and w >= SPECIFIC_WEIGHT}
    return max(content, key=content.__getitem__) if content else None


@lru_cache(maxsize=1)
def _ROLE_TOKENS() -> frozenset[str]:  # noqa: N802 - a constant built on first use
    from service.engine.units import ROLE_WORDS

    return frozenset(_tokens(" ".join(ROLE_WORDS.values())))


def _tokens(text: str) -> set[str]:
    from briefing_core.text import tokenize

    return set(tokenize(text))


def _label_tokens(unit: Unit) -> set[str]:
    return _tokens(unit.attributed_to) if unit.attributed_to else set()


def _same_point(a: Unit, b: Unit) -> bool:
    if a.doc_id == b.doc_id and a.start < b.end and b.start < a.end:
        return True
    small, large = (a, b) if len(a.tokens) <= len(b.tokens) else (b, a)
    return bool(small.tokens) and len(small.tokens & large.tokens) >= 0.8 * len(small.tokens)


def _acts(subject: str, unit: Unit) -> bool:
    """Whether the unit reports its subject saying, thinking or doing something: most of the
    subject's words (by weight) stand before a cue of speech or stance, or name the source the
    unit is attributed to."""
    from briefing_core.text import tokenize

    weights = {t: w for t, w in term_weights(subject).items() if w >= 1.0 and t not in _ROLE_TOKENS()}
    if not weights:
        return True  # "the author", "the article", "the subtitle": the article itself speaks
    total = sum(weights.values())

    def share(tokens: set[str]) -> float:
        return sum(w * matches(t, tokens) for t, w in weights.items()) / total

    if unit.attributed_to and share(set(tokenize(unit.attributed_to))) >= 0.5:
        return True
    text = unit.text
    return any(share(set(tokenize(text[: cue.start()]))) >= 0.5 for cue in _STANCE.finditer(text))


def doc_units(planner: Planner, doc_id: str, documents: dict[str, dict[str, Any]]) -> DocUnits | None:
    return planner.units.get(doc_id, documents)
