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

from service.engine.analysis import Analysis, Part, holds_type
from service.engine.catalog import BRIEFING_KINDS
from service.engine.cues import (
    CAUSAL,
    SPECIFIC_WEIGHT,
    about_terms,
    acts,
    asked_terms,
    label_tokens,
    tokens_of,
)
from service.engine.retrieval import ARTICLE_REFERENCE
from service.engine.salience import coverage, matches, term_weights
from service.engine.units import ADDS_ON, ANNOUNCES, REFERS_BACK, SAME_TIME, DocUnits, Unit, UnitCache

# A capitalised word inside an English question (not its first word): a name.
_NAMES = re.compile(r"(?<=[\w,;:’'\"”)]\s)[A-Z][\w’'.-]*")



# The hand rules that may stand beside the learned scorer, each switched by name (settings
# `plan_rules`). Preferences reorder evidence; checks mark a part uncovered. docs/quality.md says
# which are kept and what each is worth on the held-out sets.
RULES = {
    # preferences
    "article": "a question about the article prefers the briefing's own passages",
    "role": "a question naming a part of the article (photo, subtitle) prefers that part",
    "pivot": "the question's rarest word, held by the unit",
    "numbers": "a number the question names, missing from the unit",
    "answer_type": "the kind of answer asked for (a name, a date, a number), missing from the unit",
    "side": "a side of a comparison, not spoken of in the unit",
    "heading": "a title or caption, for questions that want argument",
    "subject": "asked what X said or did, a unit where X does not speak or act",
    "taken": "a unit an earlier part already quotes",
    "near": "a comparison's second side, next to the first side's evidence",
    "named": "the source the question names",
    "asked": "the thing asked for ('what path'), held by a close runner-up when the best unit lacks it",
    # checks
    "check_type": "the best unit must hold the kind of answer asked for",
    "check_numbers": "the best unit must hold the numbers the question names",
    "check_names": "the best unit's context must hold the names the question names",
    "check_asked": "the best unit's context must hold the specific thing asked for",
    "check_yesno": "a yes/no question's rare words must all be there",
    "check_about": "most of the topic after 'about' must be there",
    "check_subject": "asked what X said or did, the best unit must show X speaking or acting",
    "check_side": "a comparison's side must be spoken of",
    "check_named": "asked what X says, the best unit must be X's",
    "check_across": "a Chinese or Russian question's rare words must have counterparts in an English unit",
}


# The rules kept when `plan_rules` says nothing. Each was switched off in turn on the held-out sets
# (docs/quality.md, "Hand rules beside the scorer"): the checks and preferences kept are those whose
# removal cost held-out accuracy; the preferences that carry a plan's structure (comparison sides,
# who is asked about, parts that point back, the named source, a named part of the article) stay
# with the plan.
DEFAULT_RULES = frozenset({
    "role", "answer_type", "side", "subject", "taken", "near", "named",
    "check_type", "check_numbers", "check_names", "check_asked", "check_yesno", "check_subject",
})


def rules_from(spec: str) -> frozenset[str]:
    """`plan_rules`: "" for DEFAULT_RULES; "none" or "all" to start from nothing or everything; then
    "+name" / "-name" changes, separated by commas, semicolons or spaces. An unknown name is a settings error naming it."""
    from briefing_core.errors import UserError

    rules = set(DEFAULT_RULES)
    for item in filter(None, re.split(r"[,;\s]+", spec)):
        if item in {"none", "all"}:
            rules = set() if item == "none" else set(RULES)
            continue
        sign, name = (item[0], item[1:]) if item[0] in "+-" else ("+", item)
        if name not in RULES:
            raise UserError(f"BRIEFING_PLAN_RULES: unknown rule {name!r}; the rules are {', '.join(RULES)}")
        (rules.add if sign == "+" else rules.discard)(name)
    return frozenset(rules)


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


class Ranked(list):  # type: ignore[type-arg]
    """Scored units, best first, and the probability that the part is answered by them at all."""

    def __init__(self, items: list[Scored], answerable: float) -> None:
        super().__init__(items)
        self.answerable = answerable


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
    """Chooses evidence. Its thresholds come from the learned scorer's policy unless settings give
    them (docs/configuration.md); the scorer is read from disk on first use, so a planner that only
    finds candidates (training) never needs one."""

    embedder: Any
    units: UnitCache
    floor_setting: float | None = None
    """The refusal threshold (a probability); None: the scorer's."""
    cross_floor_setting: float | None = None
    ratio_setting: float | None = None
    """The share of the best unit's score a runner-up needs to be cited too; None: the scorer's."""
    source_bonus: float = 0.12
    max_points: int = 4
    max_chars: int = 700
    source_match: float = 0.45
    source_margin: float = 0.15
    word_match: float = 0.55
    scorer_dir: Any = None
    """A folder holding another scorer (what `make train` writes); None: the packaged one."""
    rules: frozenset[str] = DEFAULT_RULES
    """The hand rules kept beside the scorer (see RULES and docs/quality.md)."""
    _vectors: dict[str, np.ndarray] = field(default_factory=dict)
    _scorer: Any = None

    @property
    def scorer(self) -> Any:
        if self._scorer is None:
            from service.engine.scorer import AnswerScorer

            self._scorer = AnswerScorer.load(self.scorer_dir)
        return self._scorer

    def load_scorer(self) -> Any:
        """Read the scorer now (start-up), not on the first question."""
        return self.scorer

    @property
    def floor(self) -> float:
        return self.scorer.policy.refuse_under if self.floor_setting is None else self.floor_setting

    @property
    def cross_floor(self) -> float:
        policy = self.scorer.policy
        return policy.refuse_under_across if self.cross_floor_setting is None else self.cross_floor_setting

    @property
    def ratio(self) -> float:
        return self.scorer.policy.cite_share if self.ratio_setting is None else self.ratio_setting

    @property
    def cite_floor(self) -> float:
        return self.scorer.policy.cite_floor

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
              part: Part, named: str | None, documents: dict[str, dict[str, Any]], focus: str | None = None,
              context: str = "", near: set[tuple[str, int]] | None = None, taken: set[tuple[str, int]] | None = None,
              near_units: set[tuple[str, int]] | None = None, has_article: bool = True) -> list[Scored]:
        """Best first. Each unit's `relevance` is the learned probability that it answers the part
        (`scorer.py`); its `score` adds the preferences the question's structure sets, which reorder
        evidence but never make it relevant. `has_article`: the store holds a briefing article, which
        "the article" then means. `context`: words of the question outside this part (an earlier part
        that "that role" points back to), weighed at half. `near`: paragraphs holding the other side of
        a comparison, where writers set the contrasting view (`near_units`: its sentences). `taken`:
        units an earlier part already quotes; one still wins only if it clearly answers this part too."""
        from service.engine.signals import QuestionView, column, features_for

        rules = self.rules
        if ARTICLE_REFERENCE.search(analysis.question):
            # "The article", "this piece", "the author": the briefing and what it quotes, not other
            # documents that happen to share the words.
            own = [(u, r) for u, r in cands if u.kind in BRIEFING_KINDS]
            cands = own if own or has_article else cands
        if not cands:
            return []
        view = QuestionView.of(part_text, analysis.lang, analysis.kind, part.answer_type, subject=part.subject,
                               side=part.side, named=named)
        for t, w in term_weights(context).items():
            view.weights.setdefault(t, 0.5 * w)
        X = features_for(self, view, vector, cands, documents)
        probabilities = self.scorer.units(X)
        side = term_weights(part.side) if part.side else {}
        # Who is asked about: the subject of "what did X say", or one side of a comparison of views.
        subject = part.side or part.subject
        weights = view.weights
        pivot = _pivot(weights) if "pivot" in rules else None
        about_article = bool(ARTICLE_REFERENCE.search(analysis.question))
        q_tokens = set(tokens_of(part_text))
        numbers = {t for t in term_weights(part.text) if t.isdigit()}
        own = set(term_weights(part.label)) - set(term_weights(context)) if context else set()
        lexical, dense = X[:, column("lexical")], X[:, column("dense")]
        out = []
        for r, (unit, rank) in enumerate(cands):
            s = Scored(unit, rank, float(lexical[r]), float(dense[r]))
            s.score = s.relevance = float(probabilities[r])
            if about_article and unit.kind in {"article", "quoted excerpt"} and "article" in rules:
                s.score += 0.1
            if unit.role and not named and q_tokens & tokens_of(unit.role) and "role" in rules:
                # The question names a part of the article (its photo, its subtitle): that part
                # answers, unless the question is about a source's headline.
                s.score += 0.2
            if pivot and matches(pivot, set(unit.tokens)):
                # The question's rarest word is what it turns on ("why ... long overdue").
                s.score += 0.08
            if "numbers" in rules and numbers and not numbers <= unit.tokens:
                s.score *= 0.6
            if "answer_type" in rules and part.answer_type and not holds_type(part.answer_type, unit.text, part.text):
                s.score *= 0.5
            if "side" in rules and side and unit.lang == analysis.lang and not speaks_of(side, unit):
                s.score *= 0.6
            if "heading" in rules and unit.heading and analysis.kind not in {"summary", "factoid", "describe"}:
                s.score *= 0.8
            if "subject" in rules and subject and not acts(subject, unit):
                # Asked what X said or did: a sentence where X does not speak or act is background.
                s.score *= 0.75
            if "taken" in rules and taken and (unit.doc_id, unit.index) in taken and not (own and own <= unit.tokens):
                # Quoted already for an earlier part: it answers this one too only if it holds
                # what this part adds ("... and what does it STILL have"); the other side of a
                # comparison, only if it speaks of this side at all.
                s.score *= 0.65
                if side and not speaks_of(side, unit):
                    s.score *= 0.5
            if "near" in rules and near and (unit.doc_id, unit.paragraph) in near:
                # Writers set contrasting views side by side: the sentence right next to the other
                # side's evidence most of all.
                s.score += 0.15 if (unit.doc_id, unit.index - 1) in near_units or (unit.doc_id, unit.index + 1) in near_units else 0.05
            if named and unit.attributed_to == named:
                s.named = True
                if "named" in rules:
                    s.score += self.source_bonus
            out.append(s)
        out.sort(key=lambda s: -s.score)
        return Ranked(out, self.scorer.answerable(probabilities, X))

    # -- the named source -----------------------------------------------------------------------
    def named_source(self, analysis: Analysis, labels: list[str], outlets: dict[str, str]) -> str | None:
        """The label of the source the question names, by its words ("the Northeast Asia Forum
        analysis"), or after "according to X" by meaning and spelling, so a Chinese or Russian name
        finds the English label; None when no label is clearly the one."""
        from service.engine.spelling import spelled_alike

        if not labels:
            return None
        q_tokens = set(tokens_of(analysis.question))
        best_lex, best_label = 0.0, None
        for label in labels:
            # The label or the outlet's name, in English or in its own language, named in full.
            for name in (label, *outlets.get(label, "").split("|")):
                words = tokens_of(name) - _GENERIC_LABEL
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
        slot.best = getattr(ranked, "answerable", best.relevance)
        wants = self._wants(part)
        unmet = [w for w in wants if not w(best.unit)]
        repicked = False
        if unmet:
            # The best unit lacks what the part plainly asks for (the kind of answer, the thing a
            # "what X" asks for, the side of a comparison): a close runner-up likely
            # enough to be cited that holds all of it answers instead, and any other unit cited with
            # it must hold it too.
            fit = next((s for s in ranked[1:5] if s.relevance >= self.cite_floor and all(w(s.unit) for w in wants)),
                       None)
            if fit is not None:
                repicked = True
                best = fit
                ranked = Ranked([fit, *(s for s in ranked if s is not fit)], slot.best)
        problem = self.check(best, ranked, part, analysis, documents, focus, lenient)
        if problem:
            slot.uncovered = problem
            return
        if best.unit.role and set(tokens_of(part.text)) & set(tokens_of(best.unit.role)):
            # Asked for the title, subtitle or photo, that span answers whatever else it shares with
            # the question: it is as answerable as any briefing's.
            slot.best = 1.0
        doc = self.units.get(best.unit.doc_id, documents)
        chosen = [best]
        by_unit = {(s.unit.doc_id, s.unit.index): s for s in ranked}

        def scored(unit: Unit) -> Scored:
            return by_unit.get((unit.doc_id, unit.index)) or Scored(unit, best.passage)

        if doc is not None:
            # A sentence that points back is read with the one it points to. Asked for a list or for
            # reasons, one that sets itself beside the sentence before ("At the same time, ...") brings
            # that sentence, across a paragraph break too: it is an item of the same list.
            same_time = analysis.kind in {"reasons", "list"} and bool(SAME_TIME.search(best.unit.text))
            prev = doc.before(best.unit) if same_time else doc.neighbour(best.unit, -1)
            if same_time and prev is not None and (prev.doc_id, prev.index) not in by_unit:
                prev = None  # in a paragraph no retrieved passage holds: not citable
            if (same_time or REFERS_BACK.search(best.unit.text)) and prev is not None and prev.usable \
                    and not prev.heading:
                chosen.append(scored(prev))
            # An announcement brings what it announces; a reason or a piece of evidence follows the
            # claim it supports, so a "why" or "what evidence" answer reads on while the text does.
            announces = bool(ANNOUNCES.search(best.unit.text))
            # A sentence that gives its own reason ("so if ... this will lighten the burden") needs
            # no next one to answer "why".
            reasoned = analysis.kind == "reasons" and bool(CAUSAL.search(best.unit.text))
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
        # A runner-up is cited when it is nearly as likely to hold the answer (the share and floor
        # were chosen on held-out articles, docs/model-card.md); asked what someone said or did,
        # every statement of theirs that comes close belongs.
        ratio = self.ratio * (0.8 if part.subject and not part.side else 1.0)
        for cand in ranked[1:]:
            if len(chosen) >= limit or cand.score < ratio * best.score or cand.relevance < self.cite_floor:
                break
            if named and not cand.named:
                continue  # asked what X says, only X's words are the answer, not the article's about X
            actor = part.side or part.subject
            if actor and not acts(actor, cand.unit):
                continue
            if any(_same_point(cand.unit, c.unit) for c in chosen):
                continue
            if repicked and not all(w(cand.unit) for w in wants):
                continue
            chosen.append(cand)
        # In order of importance (best first); composition quotes them in document order.
        slot.chosen = chosen

    def direct(self, slot: Slot, analysis: Analysis, part_text: str) -> tuple[str, Unit, float] | None:
        """The short span that answers a factoid part (a name, a date, a number, a title), from the
        units chosen for it, when the span model is sure enough (`Policy.direct_over`); else None."""
        import dataclasses

        from service.engine.direct import direct_kind, span_features
        from service.engine.signals import QuestionView

        if slot.uncovered or not slot.chosen or not direct_kind(analysis):
            return None
        chosen = slot.chosen[:3]
        view = QuestionView.of(part_text, analysis.lang, analysis.kind, slot.part.answer_type)
        found, X = span_features(view, [c.unit for c in chosen], [c.relevance for c in chosen])
        scores = self.scorer.spans(X) if found else None
        if scores is None or not len(scores):
            return None
        i = int(np.argmax(scores))
        if scores[i] < self.scorer.policy.direct_over:
            return None
        u, cand = found[i]
        unit = chosen[u].unit
        span = dataclasses.replace(unit, start=unit.start + cand.start, end=unit.start + cand.end,
                                   text=unit.text[cand.start:cand.end])
        return span.text, span, float(scores[i])

    def check(self, best: Scored, ranked: list[Scored], part: Part, analysis: Analysis,
              documents: dict[str, dict[str, Any]], focus: str | None, lenient: bool = False) -> str:
        """Why the best evidence does not answer the part, or "" when it does: first the learned
        probability against the threshold, then the hand checks that are kept (`rules`). `lenient`
        lowers the threshold by a third (the other side of a comparison the question already showed
        relevant)."""
        rules = self.rules
        unit = best.unit
        best_named = next((s.unit.attributed_to for s in ranked if s.named), None)
        if "check_type" in rules:
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
        asks_role = bool(unit.role) and bool(set(tokens_of(part.text)) & set(tokens_of(unit.role)))
        answerable = getattr(ranked, "answerable", best.relevance)
        if answerable < floor and not asks_role:
            # A question about the title, subtitle or photo is answered by that span, however
            # little else it shares with it.
            return f"the passages answer it with probability {answerable:.2f}, under {floor:.2f}"
        if "check_numbers" in rules:
            numbers = [t for t in term_weights(part.text) if t.isdigit() and t not in unit.tokens]
            if numbers:
                # A number or year the question asks about constrains the span itself ("cargo in 2023"
                # is not answered by the sentence about the 2018 target beside it).
                return f"the best passage does not mention {', '.join(numbers)}"
        doc = self.units.get(unit.doc_id, documents)
        named_problem = self._named_problem(best, best_named) if "check_named" in rules else ""
        if crossing:
            # A yes/no question's rare words are its point in any language ("does the author support
            # sanctions?"), so they are looked for across languages even when the general check is off.
            wanted = "check_across" in rules or ("check_yesno" in rules and analysis.kind == "yesno")
            across = self.check_across(part, analysis, unit, doc, named=best.named) if wanted else ""
            return across or named_problem
        if analysis.lang != "en":
            return ""
        context = set(unit.tokens) | label_tokens(unit)
        # A year, a number or a date belongs to what its sentence speaks of, named there or before it
        # ("the route carried 36 million tonnes" after a sentence naming the route): asked the year of
        # X, a sentence whose paragraph names X only after it gives X no year.
        typed = part.answer_type in {"year", "number", "date", "day"}
        if doc is not None:
            for u in doc.paragraph(unit):
                if not typed or u.index <= unit.index:
                    context |= u.tokens
            context |= tokens_of(f"{doc.meta.get('title', '')} {doc.meta.get('outlet', '')}")
        # Names and numbers are never paraphrased: an answer about them mentions them, in the span,
        # its paragraph or its source's name. Other words may be said otherwise.
        asked = focus or part.text
        weights = term_weights(asked)
        missing: list[str] = []
        if "check_names" in rules:
            names = {t for name in _NAMES.findall(asked) for t in tokens_of(name)} - set(term_weights(analysis.named))
            if part.side:
                # A side of a comparison shares the question's topic; only its own words single it out.
                names = {t for name in _NAMES.findall(f" {part.side}") for t in tokens_of(name)}
            # A name misspelt in the question ("Carslbad") is still the name the passage gives.
            missing += [t for t in weights if t in names and not matches(t, context) and not _spelled_in(t, context)]
        if "check_asked" in rules:
            # The thing asked for ("What sanctions ...", "How many warships ..."), when it is a specific
            # concept rather than a category its instances answer ("which countries", "what reasons").
            missing += [t for t in asked_terms(part.label or asked) if weights.get(t, 0.0) >= SPECIFIC_WEIGHT
                        and t not in missing and not matches(t, context)]
        if "check_yesno" in rules and analysis.kind == "yesno":
            # "Does the author support sanctions?": every rare word of a yes/no question is the point.
            missing += [t for t, w in weights.items() if w >= SPECIFIC_WEIGHT and not t.isdigit()
                        and t not in missing and not matches(t, context)]
        topic = about_terms(asked) if "check_about" in rules else {}
        if topic:
            # "... about Japan's defence budget": most of the topic must be there.
            held = sum(w for t, w in topic.items() if matches(t, context))
            if held < 0.5 * sum(topic.values()):
                missing += [t for t in topic if not matches(t, context) and t not in missing]
        if missing:
            return f"the best passage does not mention {', '.join(missing)}"
        if "check_subject" in rules and part.subject and not acts(part.subject, unit):
            return f"the best passage does not say what {part.subject} said or did"
        if "check_side" in rules and part.side and not speaks_of(term_weights(part.side), unit):
            return f"the best passage does not speak of {part.side}"
        return named_problem

    def _wants(self, part: Part) -> list[Any]:
        """What the part plainly asks its answer to hold, as tests of a unit, by the rules kept. (A
        number the question names is not one: picking the close unit that holds it answered near
        misses on the held-out sets, "how many COSCO ships in 2023" from another line's 2023 voyages.)"""
        wants: list[Any] = []
        if "check_type" in self.rules and part.answer_type:
            wants.append(lambda u: holds_type(part.answer_type, u.text, part.text))
        terms = self._asked_terms(part) if "asked" in self.rules else []
        if terms:
            wants.append(lambda u: all(matches(t, set(u.tokens) | label_tokens(u)) for t in terms))
        if "side" in self.rules and part.side:
            side = term_weights(part.side)
            wants.append(lambda u: speaks_of(side, u))
        return wants

    @staticmethod
    def _asked_terms(part: Part) -> list[str]:
        """The thing the part asks for ("what path", "which sanctions"), when it is specific: the
        commonest nouns ("country", "city", "year", "role") are categories that instances answer
        ("Japan"); rarer ones ("path", "route", "steps") name what the answer speaks of."""
        text = part.label or part.text
        weights = term_weights(text)
        return [t for t in asked_terms(text) if weights.get(t, 0.0) >= 2.0]

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


def speaks_of(side: dict[str, float], unit: Unit) -> bool:
    """Whether a unit (or its source's name) speaks of one side of a comparison: most of its words."""
    return coverage(side, set(unit.tokens) | label_tokens(unit)) >= 0.5


def _spelled_in(token: str, context: set[str]) -> bool:
    """Whether a word of `context` is the token with a slip of spelling (most of its letters in order)."""
    from difflib import SequenceMatcher

    if len(token) < 5 or not token.isalpha():
        return False
    return any(abs(len(w) - len(token)) <= 2 and w[:1] == token[:1]
               and SequenceMatcher(None, token, w).ratio() >= 0.8 for w in context)


def _pivot(weights: dict[str, float]) -> str | None:
    content = {t: w for t, w in weights.items() if not t.isdigit() and w >= SPECIFIC_WEIGHT}
    return max(content, key=content.__getitem__) if content else None


def _same_point(a: Unit, b: Unit) -> bool:
    if a.doc_id == b.doc_id and a.start < b.end and b.start < a.end:
        return True
    small, large = (a, b) if len(a.tokens) <= len(b.tokens) else (b, a)
    return bool(small.tokens) and len(small.tokens & large.tokens) >= 0.8 * len(small.tokens)


def doc_units(planner: Planner, doc_id: str, documents: dict[str, dict[str, Any]]) -> DocUnits | None:
    return planner.units.get(doc_id, documents)
