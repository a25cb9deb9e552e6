"""What the answer scorer sees: the question read once, and for each candidate unit a row of numbers
saying how it meets the question.

Takes a question part (its text, language, kind and answer type) and the candidate units of its
retrieved passages with their embedding similarity and passage rank; gives a feature matrix whose
columns are `FEATURES`, the same for training (`train/`) and for answering. Nothing here decides:
the learned model (`scorer.py`) turns a row into the probability that the unit answers.

The question is tokenised and weighed once, in `QuestionView`, and carried to every unit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from service.engine.cues import CAUSAL, acts
from service.engine.salience import coverage, matches, term_weights

# The question's class, from its wording in any of the three languages. Order matters: the first
# that matches wins ("how many" before "how", "in which year" before "which").
_WH = [
    ("how_many", r"\bhow (?:many|much)\b|多少|几[个位次种年名]|сколько"),
    (
        "when",
        r"\bwhen\b|\bwhat (?:year|date|time|day|month|century|decade|period)\b|\bin which (?:year|century)\b|"
        r"什么时候|何时|哪一?年|哪一天|几月|когда|в каком году|какого числа",
    ),
    ("who", r"\bwho(?:m|se)?\b|谁|哪位|哪个人|кто|кого|кем|чей|чья|чьи"),
    ("where", r"\bwhere\b|\bwhat (?:country|city|place|region|state)\b|哪里|哪儿|何处|在哪|где|куда|откуда"),
    ("why", r"\bwhy\b|为什么|为何|почему|зачем"),
    ("how", r"\bhow\b|如何|怎样|怎么|как(?!ой|ая|ое|ие|ого|ую|им|их)"),
    (
        "which",
        r"\bwhich\b|哪个|哪些|哪种|哪|какой|какая|какое|какие|какого|какую|каким|каких|который|которая",
    ),
    ("what", r"\bwhat\b|什么|何|что|чем|чего"),
    (
        "yesno",
        r"^\W*(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would|should)\b|吗[？?]?$|\bли\b",
    ),
]
WH_CLASSES = ["other", *[name for name, _ in _WH]]
_WH_RE = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _WH]

ANSWER_TYPES = ["", "person", "date", "year", "number", "day"]
KINDS = ["factoid", "describe", "list", "reasons", "compare", "yesno", "summary", "sources"]
LANGS = ["en", "zh", "ru"]

_NEGATION = re.compile(
    r"\b(?:not|never|no|none|neither|nor|without|n't|cannot)\b|不|没|未|非|无|не|нет|никогда|ни",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<![\w’'])[A-Z][\w’'-]*")
_NUMBERISH = re.compile(r"\d[\d,.]*")


def wh_class(text: str) -> str:
    for name, pattern in _WH_RE:
        if pattern.search(text):
            return name
    return "other"


@dataclass
class QuestionView:
    """A question part as the scorer reads it: tokenised and weighed once."""

    text: str
    lang: str
    kind: str = "factoid"
    answer_type: str = ""
    weights: dict[str, float] = field(default_factory=dict)
    sequence: list[str] = field(default_factory=list)
    """Its keyword tokens in order (for word pairs)."""
    numbers: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    """Tokens of the capitalised words inside an English question (names, not its first word)."""
    capitalised: frozenset[str] = frozenset()
    wh: str = "other"
    negated: bool = False
    asked: frozenset[str] = frozenset()
    """The thing a "what X ..." / "how many X ..." question asks for (its words)."""
    about: dict[str, float] = field(default_factory=dict)
    """The topic named after "about", with weights."""
    subject: str = ""
    """Who the question asks about when it asks what someone said or did."""
    side: str = ""
    """A side of a comparison, whose own words its evidence must hold."""
    named: str | None = None
    """The label of the source the question names, when one is clearly named."""

    @classmethod
    def of(
        cls,
        text: str,
        lang: str,
        kind: str = "factoid",
        answer_type: str = "",
        *,
        subject: str = "",
        side: str = "",
        named: str | None = None,
    ) -> QuestionView:
        from briefing_core.text import tokenize
        from service.engine.cues import about_terms, asked_terms

        weights = term_weights(text)
        sequence = [t for t in tokenize(text) if t in weights]
        caps = [m.group(0) for m in _CAPITALISED.finditer(text)]
        names = {t for word in caps[1:] if not text.startswith(word) for t in tokenize(word)}
        return cls(
            text=text,
            lang=lang,
            kind=kind,
            answer_type=answer_type,
            weights=weights,
            sequence=sequence,
            numbers=frozenset(t for t in weights if t.isdigit()),
            names=frozenset(names),
            capitalised=frozenset(w.casefold() for w in caps),
            wh=wh_class(text),
            negated=bool(_NEGATION.search(text)),
            asked=frozenset(t for t in asked_terms(text) if t in weights),
            about=about_terms(text),
            subject=subject,
            side=side,
            named=named,
        )

    @property
    def total_weight(self) -> float:
        return sum(self.weights.values())

    @property
    def pairs(self) -> set[tuple[str, str]]:
        seq = self.sequence
        return {(seq[i], seq[i + 1]) for i in range(len(seq) - 1) if seq[i] != seq[i + 1]}


FEATURES = [
    # how the unit meets the question's words (fixed weights, `salience.py`)
    "lexical",
    "lexical_paragraph",
    "lexical_gap",
    "lexical_rank",
    "missing_max",
    "missing_share",
    "matched_terms",
    "pairs",
    "window",
    "missing_paragraph_max",
    "missing_paragraph_share",
    # how it meets the question's meaning
    "dense",
    "dense_gap",
    "dense_rank",
    "across_words",
    # where it stands
    "passage_rank",
    "position",
    "first_paragraph",
    "heading",
    "length",
    "tokens",
    # what it could answer with
    "type_held",
    "new_capitalised",
    "new_numbers",
    "numbers_held",
    "names_held",
    "negation_differs",
    # what the question singles out, held or not
    "asked_held",
    "asked_weight",
    "about_held",
    "subject_acts",
    "side_held",
    "named_source",
    "type_nearby",
    "causal",
    # the question itself
    "wh",
    "answer_type",
    "kind",
    "question_lang",
    "same_lang",
    "question_terms",
    "question_weight",
    "question_negated",
    "candidates",
]
CATEGORICAL = ["wh", "answer_type", "kind", "question_lang"]
_INDEX = {name: i for i, name in enumerate(FEATURES)}


def column(name: str) -> int:
    return _INDEX[name]


@lru_cache(maxsize=1 << 14)
def _sequence(text: str) -> tuple[str, ...]:
    from briefing_core.text import tokenize

    return tuple(tokenize(text))


def _window(positions: list[list[int]]) -> float:
    """The shortest stretch of the unit holding one occurrence of each matched term, as the share of
    those terms per token of the stretch (1.0: the terms stand together)."""
    found = [p for p in positions if p]
    if len(found) < 2:
        return 1.0 if found else 0.0
    events = sorted((pos, i) for i, plist in enumerate(found) for pos in plist)
    need, have, best, left = len(found), {}, math.inf, 0
    for pos, i in events:
        have[i] = have.get(i, 0) + 1
        while len(have) == need:
            lpos, li = events[left]
            best = min(best, pos - lpos + 1)
            have[li] -= 1
            if not have[li]:
                del have[li]
            left += 1
    return need / best if best < math.inf else 0.0


def unit_features(
    view: QuestionView,
    units: list[Any],
    dense: np.ndarray,
    ranks: list[int],
    paragraph_tokens: list[frozenset[str]],
    positions: list[int],
    across: dict[int, float] | None = None,
) -> np.ndarray:
    """One row of `FEATURES` per unit. `dense`: cosine similarity of each unit to the part;
    `ranks`: the rank of each unit's passage; `paragraph_tokens`: the tokens of each unit's
    paragraph; `positions`: each unit's place in its paragraph; `across`: for units in another
    language than the question, the share of the question's rare words found among their words by
    meaning (`plan.py`), where it was worked out."""
    from service.engine.analysis import holds_type

    n = len(units)
    out = np.full((n, len(FEATURES)), np.nan, dtype=np.float32)
    if n == 0:
        return out
    weights = view.weights
    total = view.total_weight or 1.0
    pairs = view.pairs
    lexical = np.zeros(n, np.float32)
    for r, unit in enumerate(units):
        tokens = set(unit.tokens)
        if unit.attributed_to:
            tokens |= set(_sequence(unit.attributed_to))
        row = out[r]
        found = {t: matches(t, tokens) for t in weights}
        lexical[r] = sum(w * found[t] for t, w in weights.items()) / total
        row[_INDEX["lexical"]] = lexical[r]
        row[_INDEX["lexical_paragraph"]] = coverage(weights, tokens | paragraph_tokens[r])
        missing = [w for t, w in weights.items() if not found[t]]
        row[_INDEX["missing_max"]] = max(missing, default=0.0)
        row[_INDEX["missing_share"]] = sum(missing) / total
        row[_INDEX["matched_terms"]] = sum(1 for t in weights if found[t])
        context = tokens | paragraph_tokens[r]
        absent = [w for t, w in weights.items() if not found[t] and not matches(t, context)]
        row[_INDEX["missing_paragraph_max"]] = max(absent, default=0.0)
        row[_INDEX["missing_paragraph_share"]] = sum(absent) / total
        seq = _sequence(unit.text)
        if pairs:
            adjacent = {(seq[i], seq[i + 1]) for i in range(len(seq) - 1)}
            row[_INDEX["pairs"]] = len(pairs & adjacent) / len(pairs)
        else:
            row[_INDEX["pairs"]] = np.nan
        places: dict[str, list[int]] = {}
        for i, t in enumerate(seq):
            if t in weights:
                places.setdefault(t, []).append(i)
        row[_INDEX["window"]] = _window(list(places.values()))
        row[_INDEX["passage_rank"]] = ranks[r]
        row[_INDEX["position"]] = positions[r]
        row[_INDEX["first_paragraph"]] = float(unit.paragraph == 0)
        row[_INDEX["heading"]] = float(bool(unit.heading))
        row[_INDEX["length"]] = len(unit.text)
        row[_INDEX["tokens"]] = len(seq)
        row[_INDEX["type_held"]] = (
            float(holds_type(view.answer_type, unit.text, view.text)) if view.answer_type else np.nan
        )
        caps = {m.group(0).casefold() for m in _CAPITALISED.finditer(unit.text)}
        row[_INDEX["new_capitalised"]] = min(10, len(caps - view.capitalised))
        nums = {m.group(0).strip(",.") for m in _NUMBERISH.finditer(unit.text)}
        row[_INDEX["new_numbers"]] = min(10, len(nums - view.numbers))
        row[_INDEX["numbers_held"]] = float(view.numbers <= tokens) if view.numbers else np.nan
        if view.names:
            row[_INDEX["names_held"]] = sum(matches(t, context) > 0 for t in view.names) / len(view.names)
        row[_INDEX["negation_differs"]] = float(view.negated != bool(_NEGATION.search(unit.text)))
        if view.asked:
            row[_INDEX["asked_held"]] = sum(weights[t] * (matches(t, tokens) > 0) for t in view.asked) / sum(
                weights[t] for t in view.asked
            )
            row[_INDEX["asked_weight"]] = max(weights[t] for t in view.asked)
        row[_INDEX["causal"]] = float(bool(CAUSAL.search(unit.text)))
        if view.about:
            held = sum(w for t, w in view.about.items() if matches(t, context))
            row[_INDEX["about_held"]] = held / sum(view.about.values())
        if view.subject:
            row[_INDEX["subject_acts"]] = float(acts(view.subject, unit))
        if view.side:
            row[_INDEX["side_held"]] = coverage(term_weights(view.side), tokens)
        if view.named is not None:
            row[_INDEX["named_source"]] = float(unit.attributed_to == view.named)
        row[_INDEX["same_lang"]] = float(unit.lang == view.lang)
        if across and r in across:
            row[_INDEX["across_words"]] = across[r]
    dense = np.asarray(dense, dtype=np.float32)
    out[:, _INDEX["dense"]] = dense
    out[:, _INDEX["dense_gap"]] = dense.max() - dense
    out[:, _INDEX["lexical_gap"]] = lexical.max() - lexical
    out[:, _INDEX["dense_rank"]] = _ranks(dense)
    out[:, _INDEX["lexical_rank"]] = _ranks(lexical)
    out[:, _INDEX["wh"]] = WH_CLASSES.index(view.wh)
    out[:, _INDEX["answer_type"]] = (
        ANSWER_TYPES.index(view.answer_type) if view.answer_type in ANSWER_TYPES else 0
    )
    out[:, _INDEX["kind"]] = KINDS.index(view.kind) if view.kind in KINDS else 0
    out[:, _INDEX["question_lang"]] = LANGS.index(view.lang) if view.lang in LANGS else 0
    out[:, _INDEX["question_terms"]] = len(weights)
    out[:, _INDEX["question_weight"]] = total
    out[:, _INDEX["candidates"]] = n
    out[:, _INDEX["question_negated"]] = float(view.negated)
    if view.answer_type:
        # Whether any of the best few units (by meaning) holds the kind of answer asked for at all.
        held = out[:, _INDEX["type_held"]]
        top = np.argsort(-dense, kind="stable")[:10]
        out[:, _INDEX["type_nearby"]] = float(np.nanmax(held[top]) > 0) if len(top) else 0.0
    return out


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), np.float32)
    ranks[order] = np.arange(len(values), dtype=np.float32)
    return ranks


# -- rows for a part's candidates ----------------------------------------------------------------

_ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z’'-]{2,}")
ACROSS_TOP = 12


@lru_cache(maxsize=1)
def _en_stop() -> frozenset[str]:
    from briefing_core.text import EN_STOPWORDS

    return frozenset(EN_STOPWORDS)


def across_shares(
    planner: Any,
    text: str,
    lang: str,
    units: list[Any],
    order: list[int],
    word_match: float,
    top: int = ACROSS_TOP,
) -> dict[int, float]:
    """For a Chinese or Russian question, each of the first `top` units (in `order`) written in
    English: the weighted share of the question's rare words that have a counterpart in meaning
    among the unit's words (солидарности ~ solidarity). The words cannot be compared as written."""
    from service.engine.analysis import named_phrase
    from service.engine.salience import key_words

    if lang == "en":
        return {}
    key = key_words(text, lang, min_weight=1.5, top=5, skip=named_phrase(text))
    head = [r for r in order[:top] if units[r].lang != lang]
    if not key or not head:
        return {}
    words_of = {
        r: [w.lower() for w in _ENGLISH_WORD.findall(f"{units[r].text} {units[r].attributed_to or ''}")]
        for r in head
    }
    vocab = sorted({w for words in words_of.values() for w in words} - _en_stop())
    if not vocab:
        return {}
    index = {w: i for i, w in enumerate(vocab)}
    sims = planner.vectors(list(key)) @ planner.vectors(vocab).T
    weights = np.asarray(list(key.values()), dtype=np.float32)
    total = float(weights.sum())
    out: dict[int, float] = {}
    for r in head:
        cols = [index[w] for w in words_of[r] if w in index]
        if not cols:
            out[r] = 0.0
            continue
        best = sims[:, cols].max(axis=1)
        out[r] = float(weights[best >= word_match].sum() / total)
    return out


def unit_context(
    planner: Any, units: list[Any], documents: dict[str, dict[str, Any]]
) -> tuple[list[frozenset[str]], list[int]]:
    """Each unit's paragraph tokens and its place in its paragraph."""
    tokens: list[frozenset[str]] = []
    positions: list[int] = []
    cache: dict[tuple[str, int], tuple[frozenset[str], int]] = {}
    for unit in units:
        key = (unit.doc_id, unit.paragraph)
        if key not in cache:
            doc = planner.units.get(unit.doc_id, documents)
            members = doc.paragraph(unit) if doc is not None else [unit]
            cache[key] = (frozenset().union(*(u.tokens for u in members)), min(u.index for u in members))
        para, first = cache[key]
        tokens.append(para)
        positions.append(unit.index - first)
    return tokens, positions


def features_for(
    planner: Any,
    view: QuestionView,
    vector: Any,
    cands: list[tuple[Any, int]],
    documents: dict[str, dict[str, Any]],
) -> np.ndarray:
    """The feature rows of candidate (unit, passage rank) pairs for one question part."""
    units = [u for u, _ in cands]
    if not units:
        return unit_features(view, [], np.zeros(0), [], [], [])
    dense = planner.vectors([u.text for u in units]) @ np.asarray(vector, dtype=np.float32)
    paragraph_tokens, positions = unit_context(planner, units, documents)
    order = list(np.argsort(-dense, kind="stable"))
    across = across_shares(planner, view.text, view.lang, units, order, planner.word_match)
    return unit_features(view, units, dense, [r for _, r in cands], paragraph_tokens, positions, across)


def candidate_features(
    planner: Any, text: str, lang: str, vector: Any, passages: list[Any], documents: dict[str, dict[str, Any]]
) -> tuple[list[Any], np.ndarray]:
    """A whole question searched once (as a one-part question is): its candidate units and their rows."""
    from service.engine.analysis import analyse

    analysis = analyse(text, lang)
    part = analysis.parts[0] if len(analysis.parts) == 1 else None
    view = QuestionView.of(
        text,
        lang,
        analysis.kind,
        part.answer_type if part else "",
        subject=part.subject if part else "",
        side=part.side if part else "",
    )
    cands, _ = planner.candidates(passages, documents)
    return [u for u, _ in cands], features_for(planner, view, vector, cands, documents)


# -- a part as a whole -------------------------------------------------------------------------------

PART_FEATURES = ["p1", "p2", "p3", "p1_minus_p2", "p_sum5", "units", *[f"top_{name}" for name in FEATURES]]


def part_features(probabilities: np.ndarray, X: np.ndarray) -> np.ndarray:
    """One row of `PART_FEATURES` for a part: its units' probabilities, best first, and the best
    unit's own row. What the answerability model reads."""
    out = np.full(len(PART_FEATURES), np.nan, dtype=np.float32)
    if len(probabilities) == 0:
        out[:6] = [0, 0, 0, 0, 0, 0]
        return out
    order = np.argsort(-probabilities, kind="stable")
    p = probabilities[order]
    top = [float(p[i]) if i < len(p) else 0.0 for i in range(3)]
    out[:6] = [*top, top[0] - top[1], float(p[:5].sum()), len(p)]
    out[6:] = X[order[0]]
    return out
