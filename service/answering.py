"""From retrieved passages to an answer whose every sentence cites the exact span it relies on.

The pieces, in the order the chain uses them:

    candidates()    the sentences (and clauses of long sentences) of the retrieved passages, each a
                    `[start, end)` span of its document's stored text, scored against the question
    answerability() whether the best candidates answer the question at all; below the threshold the
                    answer is a refusal, never a guess
    extractive()    the offline answerer: the best one to three spans, quoted, each with its marker
    verify()        measures how well each answer sentence is supported by the span it cites, drops
                    what is not supported and markers that name no retrieved passage

Scores mix a lexical part (IDF-weighted share of the question's terms found in the sentence) and a
dense part (cosine of the question and sentence embeddings): the lexical part is precise within a
language, the dense part carries a Chinese or Russian question to an English sentence.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ingest.spans import overlaps
from service.retrieval import Passage

MAX_QUOTE_CHARS = 400
# A fragment shorter than this (a photo credit, a dangling clause) is cited with its neighbour.
MIN_QUOTE_CHARS = 60


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


@dataclass
class Candidate:
    passage: int
    doc_id: str
    start: int
    end: int
    text: str
    lexical: float = 0.0
    dense: float = 0.0
    score: float = 0.0
    attributed_to: str | None = None
    source_id: str = ""
    role: str = ""
    """What the span is in its document when the manifest says (title, subtitle, photo caption)."""
    named: bool = False
    """The question names this span's source ("according to X")."""


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
        }


# ---------------------------------------------------------------------------------------
# Language of the reply
# ---------------------------------------------------------------------------------------

REFUSALS = {
    "en": "The sources do not say. None of the ingested documents covers this question.",
    "zh": "资料中没有提到这一点。已收录的文件都没有涉及这个问题。",
    "ru": "В источниках об этом не говорится. Ни один из загруженных документов не касается этого вопроса.",
}
_LEADS = {
    "en": ("The article says: ", "According to {label}, as quoted in the article: ", "According to {label}: "),
    "zh": ("文章写道：", "据文章引用的{label}：", "据{label}："),
    "ru": ("В статье говорится: ", "По словам источника «{label}» (цитируется в статье): ", "Согласно источнику «{label}»: "),
}


def reply_language(question: str) -> str:
    from ingest.text import detect_language

    lang = detect_language(question)
    return lang if lang in REFUSALS else "en"


# What was worked out from the last documents mapping seen, by name: the searcher hands out one mapping
# per store generation, so every question until the next ingest reuses the work (read-only both sides).
_derived: dict[str, tuple[Any, Any]] = {}


def _per_documents(name: str, documents: dict[str, dict[str, Any]], build: Any) -> Any:
    last = _derived.get(name)
    if last is None or last[0] is not documents:
        last = _derived[name] = (documents, build(documents))
    return last[1]


def _original_outlets(documents: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        str(meta["source_id"]): str(meta["outlet_original"])
        for meta in documents.values() if meta.get("source_id") and meta.get("outlet_original")
    }


def local_label(cand: Candidate, documents: dict[str, dict[str, Any]], lang: str) -> str | None:
    """How a Chinese or Russian answer names a span's source: by the outlet's own name when it is in
    the answer's language (《环球时报》, «Известия»), else by the English label."""
    if not cand.attributed_to or lang not in ("zh", "ru"):
        return cand.attributed_to
    from ingest.text import detect_language

    original = _per_documents("outlets", documents, _original_outlets).get(cand.source_id)
    if not original or detect_language(original) != lang:
        return cand.attributed_to
    return f"《{original}》" if lang == "zh" else original


def lead_for(lang: str, attributed_to: str | None, quoted: bool) -> str:
    plain, via_article, direct = _LEADS.get(lang, _LEADS["en"])
    if not attributed_to:
        return plain
    return (via_article if quoted else direct).format(label=attributed_to)


# ---------------------------------------------------------------------------------------
# Question analysis
# ---------------------------------------------------------------------------------------

# "How many ..." asks for a count; "over how much to prioritise" inside a sentence does not.
_HOW_MANY = re.compile(r"^\W*(?:\w+\W+){0,3}?how (?:many|much)\b|сколько|多少|几个|幾個", re.IGNORECASE)
_NUMBER = re.compile(
    r"(?<![\d.])\d[\d,.]*(?![\d])|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"dozen|dozens|hundred|hundreds|thousand|thousands|million|millions|billion|percent)\b|"
    r"[一二三四五六七八九十百千万亿两]+[个次枚艘名]",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(1[89]|20)\d\d$")


def has_quantity(text: str) -> bool:
    """A count or amount other than a bare year."""
    for match in _NUMBER.finditer(text):
        token = match.group(0).strip(",.")
        if not _YEAR.match(token):
            return True
    return False


# Questions after a calendar day ("on what exact date", "which day", "какого числа", "哪一天"): an
# answer that gives only a month or a season does not answer them.
_EXACT_DATE = re.compile(
    r"\b(?:exact|precise|specific)\s+(?:date|day)\b(?!-)|\b(?:what|which)\s+(?:date|day)\b(?!-)|"
    r"какого числа|(?:точн\w*|как\w*) (?:дат\w*|день|число)|哪一天|哪天|几月几[日号]|什么日期|具体日期",
    re.IGNORECASE,
)
_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_RU_MONTHS = r"январ|феврал|март|апрел|ма[яй]|июн|июл|август|сентябр|октябр|ноябр|декабр"
_DAY_DATE = re.compile(
    rf"\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b|"
    rf"\b\d{{1,2}}\s+(?:{_RU_MONTHS})\w*|\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}[./]\d{{1,2}}[./]\d{{2,4}}\b|"
    r"[\d一二三四五六七八九十]+月[\d一二三四五六七八九十]+[日号]|"
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.IGNORECASE,
)


def asks_exact_date(question: str) -> bool:
    return bool(_EXACT_DATE.search(question))


def has_day_date(text: str) -> bool:
    """A calendar day: "April 14", "14 April", "14 апреля", "2017-04-14", "4月14日", a weekday."""
    return bool(_DAY_DATE.search(text))


# Questions after a year ("in which year", "в каком году", "哪一年"): a span without one does not answer.
_WHICH_YEAR = re.compile(
    r"\b(?:what|which)\s+year\b|в как\w* году|какого года|哪一?年|什么年份|何年", re.IGNORECASE
)
_A_YEAR = re.compile(
    r"(?<!\d)(?:1[89]|20)\d\d(?!\d)|\b(?:last|next|this|that) year\b|(?:去|今|明|前)年|прошл\w* год",
    re.IGNORECASE,
)


def asks_year(question: str) -> bool:
    return bool(_WHICH_YEAR.search(question))


def has_year(text: str) -> bool:
    return bool(_A_YEAR.search(text))


# What a span is in its document, in words a question in any of the three languages may use for it
# ("the photo" finds the caption, "副标题" the subtitle).
_ROLE_WORDS = {
    "title": "title headline 标题 题目 заголовок заголовке название называется",
    "subtitle": "subtitle 副标题 подзаголовок подзаголовке",
    "photo caption": "photo picture image caption 照片 图片 配图 说明 фото фотография снимок подпись",
}


_ATTRIBUTION = re.compile(
    r"according to ([^,?.;]+)|по (?:мнению|данным|словам|версии) ([^,?.;]+)|(?:根据|据)([^，,？?。]+)",
    re.IGNORECASE,
)
_SALIENT = re.compile(r"(?<![\w'’.-])(?:[A-Z](?:[\w’'-]|\.(?=\w))*|\d{2,}[\w-]*)")


def salient_terms(question: str) -> list[str]:
    """Names and numbers a Latin-script question asks about (not its first word)."""
    words = list(_SALIENT.finditer(question))
    return [m.group(0) for m in words if m.start() > 0 or m.group(0)[0].isdigit()]


def missing_salient(question: str, vocabulary: Any) -> list[str]:
    """Names and numbers of the question that no document mentions: the corpus cannot answer
    about something it never names."""
    from ingest.text import tokenize

    missing = []
    for term in salient_terms(question):
        tokens = tokenize(term)
        if tokens and not any(t in vocabulary for t in tokens):
            missing.append(term)
    return missing


# ---------------------------------------------------------------------------------------
# Candidates
# ---------------------------------------------------------------------------------------


QuoteSpans = dict[str, list[tuple[int, int, str, str]]]


def role_words(documents: dict[str, dict[str, Any]]) -> dict[str, list[tuple[int, int, str]]]:
    """For each document with roles (title, subtitle, photo caption): (start, end, words naming the
    role in English, Chinese and Russian)."""
    out: dict[str, list[tuple[int, int, str]]] = {}
    for doc_id, meta in documents.items():
        for start, end, role in _json_spans(meta.get("role_spans")):
            out.setdefault(doc_id, []).append((int(start), int(end), _ROLE_WORDS.get(str(role), str(role))))
    return out


def quote_spans(documents: dict[str, dict[str, Any]]) -> QuoteSpans:
    """For each article, the spans that quote or report a cited source: (start, end, label, source_id)."""
    return _per_documents("quote_spans", documents, _quote_spans)  # type: ignore[no-any-return]


def _quote_spans(documents: dict[str, dict[str, Any]]) -> QuoteSpans:
    out: QuoteSpans = {}
    for meta in documents.values():
        if meta.get("kind") != "quoted excerpt" or not meta.get("cited_in"):
            continue
        spans = _json_spans(meta.get("quote_spans"))
        label = str(meta.get("label") or meta.get("title") or meta.get("source_id"))
        for start, end in spans:
            out.setdefault(str(meta["cited_in"]), []).append(
                (int(start), int(end), label, str(meta.get("source_id")))
            )
    return out


def _units(text: str) -> list[tuple[int, int]]:
    """Sentences, with long ones cut into clauses and short fragments joined to a neighbour."""
    from ingest.text import split_clauses, split_sentences

    spans: list[tuple[int, int]] = []
    for s, e in split_sentences(text):
        spans.extend(split_clauses(text, s, e, MAX_QUOTE_CHARS))
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and (e - s < MIN_QUOTE_CHARS or merged[-1][1] - merged[-1][0] < MIN_QUOTE_CHARS):
            ps, pe = merged[-1]
            gap = text[pe:s]
            # Join only within a paragraph and only while the quote stays citable.
            if "\n\n" not in gap and e - ps <= MAX_QUOTE_CHARS:
                merged[-1] = (ps, e)
                continue
        merged.append((s, e))
    return merged


def _json_spans(value: Any) -> list[Any]:
    import json

    try:
        return list(json.loads(value or "[]"))
    except (TypeError, ValueError):
        return []


def candidates(
    passages: list[Passage], documents: dict[str, dict[str, Any]]
) -> list[Candidate]:
    from ingest.text import tokenize

    spans_by_article = quote_spans(documents)
    out: list[Candidate] = []
    seen: set[tuple[str, int, int]] = set()
    for i, passage in enumerate(passages):
        meta = documents.get(passage.doc_id, passage.metadata)
        body_start = int(meta.get("body_start", 0))
        roles = _json_spans(meta.get("role_spans"))
        for s, e in _units(passage.text):
            start, end = passage.start + s, passage.start + e
            if start < body_start:
                # The header of a quoted-excerpt document is our description, not the source's words.
                continue
            if len(tokenize(passage.text[s:e])) < 3:
                # A stray word ("Pages", a page number) answers nothing.
                continue
            key = (passage.doc_id, start, end)
            if key in seen:
                continue
            seen.add(key)
            cand = Candidate(i, passage.doc_id, start, end, passage.text[s:e], source_id=str(meta.get("source_id", "")))
            cand.role = " ".join(
                _ROLE_WORDS.get(str(role), str(role))
                for rs, re_, role in roles if overlaps((start, end), (rs, re_))
            )
            kind = meta.get("kind")
            if kind in {"quoted excerpt", "cited source"}:
                cand.attributed_to = str(meta.get("label") or meta.get("title") or "")
            else:
                for qs, qe, label, sid in spans_by_article.get(passage.doc_id, []):
                    if overlaps((start, end), (qs, qe)):
                        cand.attributed_to, cand.source_id = label, sid
                        break
            out.append(cand)
    return out


_CYRILLIC_TO_LATIN = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y",
    "ь": "", "э": "e", "ю": "yu", "я": "ya",
})
_NAME_WORD = re.compile(r"[^\W\d_]{4,}")


def spelled_alike(name: str, label: str) -> float:
    """Share of the long words of `name` (Russian ones romanised) that begin like a word of `label`:
    "«Известий»" -> "izvestiy", which begins like "Izvestiya". Five letters must agree, so a case
    ending does not matter and a common word rarely matches by chance."""
    words = _NAME_WORD.findall(name.lower().translate(_CYRILLIC_TO_LATIN))
    targets = {w[:5] for w in _NAME_WORD.findall(label.lower())}
    if not words:
        return 0.0
    return sum(1 for w in words if w[:5] in targets) / len(words)


@dataclass
class Scorer:
    """Scores candidate spans against a question; weights are settings, calibrated on the gold set."""

    embedder: Any
    index: Any
    lexical_weight: float = 0.6
    dense_weight: float = 0.4
    rank_weight: float = 0.05
    # A span of the source the question names ("according to X", "по мнению X", "据X"): how much it
    # gains, and how close (cosine) and how clearly ahead of the next source X must be to name it.
    source_bonus: float = 0.1
    source_match: float = 0.45
    source_margin: float = 0.15
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def weights(self, tokens: list[str]) -> dict[str, float]:
        return {t: self.index.idf(t) for t in dict.fromkeys(tokens)}

    def coverage(self, q_weights: dict[str, float], tokens: set[str]) -> float:
        total = sum(q_weights.values())
        if total <= 0:
            return 0.0
        return sum(w for t, w in q_weights.items() if t in tokens) / total

    def vectors(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vec in zip(missing, self.embedder.embed_documents(missing), strict=True):
                self._cache[text] = np.asarray(vec, dtype=np.float32)
            if len(self._cache) > 50_000:
                self._cache.clear()
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    def score(self, question: str, query_vector: list[float], cands: list[Candidate],
              focus: str | None = None) -> list[Candidate]:
        """Score in place and return best first. `focus` is the latest question of a conversation,
        whose terms matter more than those carried over from earlier turns."""
        from ingest.text import tokenize

        if not cands:
            return []
        q_weights = self.weights(tokenize(question))
        # "According to the X analysis, ..." names where to look, not what is asked: those words
        # must not let a sentence that merely names X outscore the one that answers.
        for groups in _ATTRIBUTION.findall(focus or question):
            for t in tokenize(" ".join(groups)):
                if t in q_weights:
                    q_weights[t] *= 0.3
        if focus:
            for t, w in self.weights(tokenize(focus)).items():
                q_weights[t] = w * 1.5
        sims = self.vectors([c.text for c in cands]) @ np.asarray(query_vector, dtype=np.float32)
        wants_quantity = bool(_HOW_MANY.search(focus or question))
        wants_year = asks_year(focus or question)
        for cand, sim in zip(cands, sims, strict=True):
            cand.lexical = self.coverage(q_weights, set(tokenize(f"{cand.role} {cand.text}")))
            cand.dense = float(sim)
            cand.score = (
                self.lexical_weight * cand.lexical
                + self.dense_weight * cand.dense
                + self.rank_weight / (1 + cand.passage)
            )
            if wants_quantity and not has_quantity(cand.text):
                cand.score *= 0.5
            if wants_year and not has_year(cand.text):
                cand.score *= 0.5
        named = self.named_source(focus or question, cands)
        if named:
            for cand in cands:
                if cand.attributed_to == named:
                    cand.named = True
                    cand.score += self.source_bonus
        return sorted(cands, key=lambda c: -c.score)

    def named_source(self, question: str, cands: list[Candidate]) -> str | None:
        """The label of the source an "according to X" question names, matched by meaning and by
        spelling, so that a Russian or Chinese name finds the English label ("журнал «Северо-восточный
        азиатский форум»" -> "the Northeast Asia Forum analysis", "«Известий»" -> "the Izvestiya
        headline"); None when no label is clearly the one."""
        phrases = [" ".join(g for g in groups if g).strip() for groups in _ATTRIBUTION.findall(question)]
        labels = sorted({c.attributed_to for c in cands if c.attributed_to})
        if not phrases or not labels:
            return None
        named = np.asarray(self.embedder.embed_query(phrases[0]), dtype=np.float32)
        sims = self.vectors(labels) @ named
        sims = sims + 0.5 * np.asarray([spelled_alike(phrases[0], label) for label in labels])
        order = np.argsort(-sims)
        best = float(sims[order[0]])
        runner_up = float(sims[order[1]]) if len(labels) > 1 else -1.0
        if best >= self.source_match and best - runner_up >= self.source_margin:
            return labels[int(order[0])]
        return None


# ---------------------------------------------------------------------------------------
# The extractive answer
# ---------------------------------------------------------------------------------------


_WHY = re.compile(r"\bwhy\b|\bfor what reasons?\b|почему|зачем|为什么|为何", re.IGNORECASE)


def _restates(cand: Candidate, question: str) -> bool:
    """Whether a span says again what the question asks. Across languages the words cannot tell (the
    question's words are not the span's), so the meaning has to."""
    from ingest.text import detect_language

    if cand.lexical >= 0.6:
        return True
    return reply_language(question) != detect_language(cand.text) and cand.dense >= 0.55


def choose(ranked: list[Candidate], max_citations: int, ratio: float = 0.85, question: str = "") -> list[Candidate]:
    """The best span, plus runners-up that score nearly as well and add words the best lacks.

    A "why" question whose best span merely restates it ("The authors explain several reasons
    why ...") is answered by what follows, so the next sentence of the same paragraph joins it.
    """
    if not ranked:
        return []
    best = ranked[0]
    chosen = [best]
    if _WHY.search(question) and _restates(best, question):
        following = [
            c for c in ranked
            if c.doc_id == best.doc_id and 0 <= c.start - best.end <= 2
        ]
        if following:
            chosen.append(following[0])
    named_source = any(c.named for c in ranked)
    for cand in ranked[1:]:
        if len(chosen) >= max_citations or cand.score < ratio * best.score:
            break
        if named_source and cand.attributed_to and not cand.named:
            continue  # asked what X says, another source's words are not the answer
        if any(c.doc_id == cand.doc_id and overlaps((c.start, c.end), (cand.start, cand.end)) for c in chosen):
            continue
        if any(cand.text.strip() in c.text or c.text.strip() in cand.text for c in chosen):
            continue
        chosen.append(cand)
    # Read in document order, as the author wrote it.
    return sorted(chosen, key=lambda c: (c.doc_id, c.start))


def compose(chosen: list[Candidate], documents: dict[str, dict[str, Any]], lang: str) -> tuple[str, list[Citation]]:
    parts: list[str] = []
    citations: list[Citation] = []
    for n, cand in enumerate(chosen, start=1):
        meta = documents.get(cand.doc_id, {})
        quoted = meta.get("kind") in {"article", "quoted excerpt"}
        lead = lead_for(lang, local_label(cand, documents, lang), quoted)
        parts.append(f"{lead}{cand.text.strip()} [{n}]")
        citations.append(make_citation(n, cand, meta))
    return "\n\n".join(parts), citations


def make_citation(n: int, cand: Candidate, meta: dict[str, Any], support: float = 1.0) -> Citation:
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
    )


# ---------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------

_MARKER = re.compile(r"\s*\[(\d{1,3})\]")


def numbers_in(text: str) -> set[str]:
    return {m.group(0).replace(",", "") for m in re.finditer(r"\d[\d,]*(?:\.\d+)?", text)}


def support(claim: str, quote: str, scorer: Scorer) -> float:
    """How much of the claim the quote bears out: IDF-weighted share of the claim's terms found in
    the quote, blended with their embedding similarity; a number the quote lacks is unsupported."""
    from ingest.text import tokenize

    claim_text = _MARKER.sub("", claim)
    if numbers_in(claim_text) - numbers_in(quote):
        return 0.0
    weights = scorer.weights(tokenize(claim_text))
    if not weights:
        return 1.0
    lexical = scorer.coverage(weights, set(tokenize(quote)))
    vecs = scorer.vectors([claim_text, quote])
    dense = float(vecs[0] @ vecs[1])
    return 0.7 * lexical + 0.3 * max(dense, 0.0)
