"""The retrieval chain: question + history -> standalone query -> retrieve -> answer -> verify -> result.

Built from LangChain runnables so each step can be traced or swapped; `BriefingQA` is the small
in-process API the CLI, the HTTP service and the eval runner all use.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from briefing_core.errors import LLMUnavailable, UserError
from briefing_core.settings import Settings
from service.engine.analysis import POINTS_BACK
from service.engine.answering import Citation, Result, make_citation, reply_language, support
from service.engine.engine import Engine
from service.engine.guard import answer_problem
from service.engine.retrieval import HybridSearcher, normalise_filters


def condense(question: str, history: list[dict[str, str]] | None) -> tuple[str, str | None]:
    """A query that stands on its own, and the latest question when it leans on earlier turns.

    A follow-up that points back ("What did it conclude?") is searched together with the last
    question the analyst asked, so "it" finds the magazine that question was about.
    """
    from briefing_core.text import tokenize

    earlier = [h.get("content", "") for h in history or [] if h.get("role") == "user" and h.get("content")]
    if not earlier:
        return question, None
    tokens = tokenize(question)
    if POINTS_BACK.search(question) or (len(tokens) <= 3 and not _names_the_briefing(question)):
        return f"{_searchable(earlier[-1])} {question}".strip(), question
    return question, None


def _searchable(turn: str) -> str:
    """An earlier turn as a search carries it: without its sentences that read as instructions to the
    assistant or carry links and markup, which would only dilute what the follow-up is about."""
    from service.engine.guard import is_suspicious, usable_parts

    if not is_suspicious(turn):
        return turn
    return " ".join(turn[s:e] for s, e in usable_parts(turn))


def _names_the_briefing(question: str) -> bool:
    """A short question that names the article itself ("Who wrote the article?", "文章的副标题是什么？")
    says what it is about: it does not lean on the turn before. ("Who are the authors?" may still
    mean the authors of the source just asked about.)"""
    from service.engine.retrieval import ARTICLE_NOUN

    return bool(ARTICLE_NOUN.search(question))


@dataclass
class Draft:
    answer: str
    citations: list[Citation]
    refused: bool
    answerer: str
    notes: list[str] = field(default_factory=list)
    fallback: str | None = None
    unsupported: list[str] = field(default_factory=list)
    answerability: float = 0.0
    kind: str = ""
    parts: list[dict[str, Any]] = field(default_factory=list)
    briefings: list[dict[str, Any]] = field(default_factory=list)
    direct_answer: dict[str, Any] | None = None


class BriefingQA:
    """Answers questions about the ingested briefing. Heavy parts load on first use."""

    def __init__(self, settings: Settings, *, embedder: Any = None, store: Any = None, llm: Any = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._store = store
        self._llm = llm
        self._searcher: HybridSearcher | None = None
        self._engine: Engine | None = None
        self._init_lock = threading.Lock()
        self._chain = self._build_chain()

    # -- components ---------------------------------------------------------------------
    def load(self) -> BriefingQA:
        with self._init_lock:
            if self._searcher is None:
                from briefing_core.embeddings import make_embedder
                from briefing_core.store import open_store

                self._embedder = self._embedder or make_embedder(
                    self.settings.embedder, self.settings.embed_batch_size, self.settings.embed_threads
                )
                self._store = self._store or open_store(self.settings, self._embedder)
                self._searcher = HybridSearcher(self._store, self._embedder, self.settings)
                self._searcher.refresh(force=True)
                self._engine = Engine(self._embedder, self._store, self.settings)
                self._warm()
                if self.settings.answerer == "llm":
                    self.warm_llm()
        return self

    def _warm(self) -> None:
        """Pay first-call costs (model kernels, tokeniser tables) at start-up, not on a user's question."""
        from briefing_core.text import split_sentences, tokenize
        from service.engine.salience import term_weights

        tokenize("warm up 预热 прогрев")
        # wordfreq's tables and jieba's dictionary load on first use.
        term_weights("warm up 预热 прогрев")
        from service.engine.salience import key_words

        key_words("预热一下模型", "zh")
        split_sentences("Warm up. 预热。 Прогрев.")
        self._embedder.embed_documents(["warm up", "预热", "прогрев"])
        # The first vector query loads the HNSW index from disk.
        self._searcher.search("warm up", k=1)
        # The answer scorer is read now: a missing or stale one stops start-up saying what to run.
        self._engine.planner.load_scorer()

    @property
    def searcher(self) -> HybridSearcher:
        return self.load()._searcher  # type: ignore[return-value]

    @property
    def store(self) -> Any:
        return self.load()._store

    @property
    def engine(self) -> Engine:
        self.load()
        assert self._engine is not None
        return self._engine

    def llm(self) -> Any:
        if self._llm is None:
            from service.engine.llm import make_chat_model

            self._llm = make_chat_model(self.settings)
        return self._llm

    def warm_llm(self) -> None:
        """Load a local model before the first question, so its load time is not charged to the
        question's LLM timeout."""
        model = self.llm()
        if hasattr(model, "_model"):
            model._model()

    # -- the chain ------------------------------------------------------------------------
    def _build_chain(self) -> Any:
        return (
            RunnablePassthrough.assign(condensed=RunnableLambda(self._condense))
            | RunnablePassthrough.assign(passages=RunnableLambda(self._retrieve))
            | RunnablePassthrough.assign(draft=RunnableLambda(self._answer))
            | RunnableLambda(self._finish)
        )

    def ask(
        self, question: str, history: list[dict[str, str]] | None = None,
        filters: dict[str, Any] | None = None, answerer: str | None = None, briefing: str | None = None,
    ) -> Result:
        """`briefing` scopes the question to one briefing of the store: "the article", "the author"
        and "the sources" then mean that briefing's, and nothing of another briefing is cited."""
        question = (question or "").strip()
        if not question:
            raise UserError("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise UserError(
                f"the question is {len(question)} characters; the limit is {self.settings.max_question_chars}"
            )
        started = time.perf_counter()
        scoped = self._scope(normalise_filters(filters), briefing)
        result: Result = self._chain.invoke(
            {
                "question": question,
                "history": history or [],
                "filters": scoped,
                "answerer": answerer or self.settings.answerer,
            }
        )
        result.latency_ms = (time.perf_counter() - started) * 1000
        return result

    @property
    def chain(self) -> Any:
        return self._chain

    def _scope(self, filters: dict[str, list[str]], briefing: str | None) -> dict[str, list[str]]:
        """The filters with the briefing folded in; an unknown briefing is the caller's mistake."""
        from service.engine.catalog import check_briefing

        if briefing is not None:
            if filters.get("briefing") and filters["briefing"] != [briefing]:
                raise UserError(f"the question is scoped to briefing {briefing!r} but its filters name "
                                f"{', '.join(filters['briefing'])}")
            filters = {**filters, "briefing": [briefing]}
        for name in filters.get("briefing", []):
            check_briefing(self.searcher.briefings(), name)
        return filters

    def _condense(self, state: dict[str, Any]) -> dict[str, Any]:
        query, focus = condense(state["question"], state["history"])
        return {"query": query, "focus": focus}

    def _retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        query = state["condensed"]["query"]
        vector = self.load()._embedder.embed_query(query)
        passages = self.searcher.search(query, self.settings.k, state["filters"] or None, query_vector=vector)
        return {"list": passages, "vector": vector}

    def _answer(self, state: dict[str, Any]) -> Draft:
        lang = reply_language(state["question"])
        filters = state["filters"] or {}
        scope = filters.get("briefing")
        if not scope:
            briefings = self.searcher.briefings()
            asked = state["condensed"]["focus"] or state["question"]
            if len(briefings) > 1 and self.engine.about_the_briefing(asked, state["condensed"]["query"], lang):
                # "The article" in a store of several briefings means one of them, and which one is
                # not said: answered briefing by briefing (or asked which), never a silent mix.
                return self._per_briefing(state, briefings, lang)
        return self._answer_in(state, self.searcher.documents_in(scope), filters, state["passages"]["list"],
                               state["passages"]["vector"], lang)

    def _answer_in(self, state: dict[str, Any], docs: dict[str, dict[str, Any]], filters: dict[str, list[str]],
                   passages: list[Any], vector: Any, lang: str, max_chars: int | None = None) -> Draft:
        question = state["question"]

        def search(text: str, kinds: list[str] | None = None) -> tuple[list[Any], Any]:
            vector = self.load()._embedder.embed_query(text)
            scoped = {**filters, "kind": kinds} if kinds and not filters.get("kind") else filters
            return self.searcher.search(text, self.settings.k, scoped or None, query_vector=vector), vector

        answer = self.engine.answer(
            question, state["condensed"]["focus"], state["condensed"]["query"], vector, passages, docs, search, lang,
            max_chars=max_chars,
        )
        if answer.refused:
            return Draft(answer.text, [], True, state["answerer"], notes=answer.notes,
                         answerability=answer.answerability, kind=answer.kind, parts=answer.parts)
        citations = [make_citation(n, unit, docs.get(unit.doc_id, {})) for n, unit in answer.cited]
        extractive = Draft(answer.text, citations, False, "extractive", notes=answer.notes,
                           answerability=answer.answerability, kind=answer.kind, parts=answer.parts,
                           direct_answer=_direct(answer, citations))
        if state["answerer"] != "llm":
            return extractive
        return self._llm_answer(state, answer, docs, lang, extractive)

    # -- several briefings -------------------------------------------------------------------
    def _per_briefing(self, state: dict[str, Any], briefings: list[str], lang: str) -> Draft:
        """One section per briefing that covers the question, each headed by its article's title;
        the briefings that do not cover it are named as not saying."""
        from service.engine.briefings import clarify

        if len(briefings) > self.settings.briefings_per_answer:
            return Draft(clarify(briefings, state["passages"]["list"], self.searcher.documents, lang), [], False,
                         "extractive", kind="which briefing",
                         notes=[f"the store holds {len(briefings)} briefings; the question did not say which"])
        query, vector = state["condensed"]["query"], state["passages"]["vector"]
        base = state["filters"] or {}

        # One retrieval a briefing, kept for the rerun within a smaller budget.
        scopes = {name: {**base, "briefing": [name]} for name in briefings}
        found = {name: self.searcher.search(query, self.settings.k, scope, query_vector=vector)
                 for name, scope in scopes.items()}

        def run(name: str, max_chars: int | None = None) -> Draft:
            return self._answer_in(state, self.searcher.documents_in([name]), scopes[name], found[name], vector,
                                   lang, max_chars)

        drafts = {name: run(name) for name in briefings}
        best = max((d.answerability for d in drafts.values() if not d.refused), default=0.0)
        share = self.settings.briefing_answerability_share
        weaker = {name for name, d in drafts.items() if not d.refused and d.answerability < share * best}
        covering = [name for name, draft in drafts.items() if not draft.refused and name not in weaker]
        if len(covering) > 1:
            # Several sections share the one length budget.
            budget = max(200, self.settings.answer_max_chars // len(covering) - 40)
            drafts.update({name: run(name, budget) for name in covering})
        return _merge(drafts, self.searcher.documents, lang, weaker)

    # -- LLM path ---------------------------------------------------------------------------
    def _llm_answer(
        self, state: dict[str, Any], answer: Any, docs: dict[str, dict[str, Any]], lang: str, extractive: Draft,
    ) -> Draft:
        """The LLM is handed the plan: each part of the question with the evidence chosen for it,
        numbered as the extractive answer numbers it; every sentence it writes is then verified."""
        from service.engine.llm import build_messages, parse_refusal

        evidence = [(part, units) for part, units in answer.evidence]
        # Each piece of evidence once, though two parts may rest on the same sentence.
        shown = list({id(unit): unit for _, units in evidence for unit in units}.values())
        messages = build_messages(state["question"], state["history"], shown, docs, parts=evidence)
        try:
            # The model is built inside the timed call: building a client imports its library (seconds,
            # the first time), and that must count against the timeout too.
            reply = _call_with_timeout(lambda m: self.llm().invoke(m), messages, self.settings.llm_timeout_s)
            text = reply.content if isinstance(reply.content, str) else str(reply.content)
        except FutureTimeout:
            return _fallback(extractive, f"the LLM did not answer within {self.settings.llm_timeout_s:g} s")
        except (LLMUnavailable, UserError) as exc:
            return _fallback(extractive, f"the LLM failed: {exc}")
        except Exception as exc:  # any client or model error: the analyst still gets an answer
            return _fallback(extractive, f"the LLM failed: {type(exc).__name__}: {exc}")
        if parse_refusal(text):
            return _fallback(extractive, "the LLM said the sources do not cover it, but they do")
        draft = self._verify(text, shown, answer.pool, docs)
        draft.kind, draft.parts = extractive.kind, extractive.parts
        if not draft.citations:
            fallback = _fallback(extractive, "the LLM answer failed verification")
            fallback.unsupported = draft.unsupported
            return fallback
        return draft

    def _verify(self, text: str, shown: list[Any], pool: list[Any], docs: dict[str, dict[str, Any]]) -> Draft:
        """Keep the sentences the cited evidence supports, each tied to its best span: the span it
        names ([n] is the n-th unit shown), or else any candidate span of the question."""
        from briefing_core.text import split_sentences
        from service.engine.llm import SYSTEM_PROMPT

        threshold = self.settings.support_threshold
        kept: list[str] = []
        citations: list[Citation] = []
        unsupported: list[str] = []
        notes: list[str] = []
        by_span: dict[tuple[str, int, int], int] = {}
        everything = [*shown, *[u for u in pool if u not in shown]]
        # What an answer may draw on: the candidate spans (the guard's withheld sentences are not among them).
        trusted = "\n".join(u.text for u in everything)
        for s, e in split_sentences(text):
            sentence = text[s:e]
            markers = [int(m) for m in re.findall(r"\[(\d{1,3})\]", sentence)]
            valid = [m for m in markers if 1 <= m <= len(shown)]
            if len(valid) < len(markers):
                notes.append("removed a citation marker that named no source shown to the model")
            claim = re.sub(r"\s*\[\d{1,3}\]", "", sentence).strip()
            if not claim:
                continue
            problem = answer_problem(claim, trusted, SYSTEM_PROMPT)
            if problem:
                unsupported.append(claim)
                notes.append(f"dropped a sentence that {problem}")
                continue
            candidates = [shown[m - 1] for m in valid] or everything
            best, best_support = None, 0.0
            for unit in candidates:
                value = support(claim, unit.text, self.engine.planner)
                if value > best_support:
                    best, best_support = unit, value
            if best is None or best_support < threshold:
                unsupported.append(claim)
                continue
            key = (best.doc_id, best.start, best.end)
            if key not in by_span:
                by_span[key] = len(citations) + 1
                citations.append(make_citation(by_span[key], best, docs.get(best.doc_id, {}), best_support))
            kept.append(f"{claim} [{by_span[key]}]")
        if unsupported:
            notes.append(f"dropped {len(unsupported)} sentence(s) the cited passages do not support")
        return Draft(" ".join(kept), citations, False, "llm", notes=notes, unsupported=unsupported)

    def _finish(self, state: dict[str, Any]) -> Result:
        draft: Draft = state["draft"]
        return Result(
            question=state["question"],
            answer=draft.answer,
            refused=draft.refused,
            citations=draft.citations,
            retrieved=state["passages"]["list"],
            answerer=draft.answerer,
            standalone_query=state["condensed"]["query"],
            language=reply_language(state["question"]),
            answerability=draft.answerability,
            notes=draft.notes,
            fallback=draft.fallback,
            unsupported=draft.unsupported,
            question_kind=draft.kind,
            parts=draft.parts,
            briefing=(state["filters"].get("briefing") or [None])[0],
            briefings=draft.briefings,
            direct_answer=draft.direct_answer if draft.answerer == "extractive" else None,
        )


def _direct(answer: Any, citations: list[Citation]) -> dict[str, Any] | None:
    if answer.direct is None:
        return None
    text, span, probability = answer.direct
    holder = next((c.n for c in citations if c.doc_id == span.doc_id and c.start <= span.start and span.end <= c.end), None)
    return {"text": text, "doc_id": span.doc_id, "start": span.start, "end": span.end, "citation": holder,
            "probability": round(probability, 4)}


def _call_with_timeout(fn: Any, arg: Any, timeout: float) -> Any:
    """Run `fn(arg)` on a daemon thread and wait at most `timeout` seconds.

    A model call cannot be cancelled once started; on a daemon thread a call that never returns
    is abandoned rather than holding the process open at exit (a thread pool would join it).
    """
    future: Future[Any] = Future()

    def target() -> None:
        try:
            future.set_result(fn(arg))
        except BaseException as exc:  # handed to the waiting caller, which decides
            future.set_exception(exc)

    threading.Thread(target=target, name="llm-call", daemon=True).start()
    return future.result(timeout=timeout)


def _fallback(extractive: Draft, why: str) -> Draft:
    return Draft(
        extractive.answer, extractive.citations, extractive.refused, "extractive",
        notes=[*extractive.notes, why], fallback=why, answerability=extractive.answerability,
        kind=extractive.kind, parts=extractive.parts, direct_answer=extractive.direct_answer,
    )


def _merge(drafts: dict[str, Draft], documents: dict[str, dict[str, Any]], lang: str, weaker: set[str]) -> Draft:
    """Briefing-by-briefing drafts as one answer: a section per briefing that covers the question,
    citations numbered once across sections, and a line for each briefing that does not (or matches
    it much more loosely than the best one: `weaker`)."""
    from service.engine.briefings import heading, looser, renumber, silent
    from service.engine.compose import REFUSALS

    covering = {name: d for name, d in drafts.items() if not d.refused and name not in weaker}
    listing = [{"briefing": name, "covered": name in covering, "citations": []} for name, d in drafts.items()]
    parts = [{**part, "briefing": name} for name, d in drafts.items() for part in d.parts]
    if not covering:
        return Draft(REFUSALS.get(lang, REFUSALS["en"]), [], True, next(iter(drafts.values())).answerer,
                     notes=[f"asked each of the {len(drafts)} briefings; none covers it"],
                     answerability=max(d.answerability for d in drafts.values()),
                     kind=next(iter(drafts.values())).kind, parts=parts, briefings=listing)
    sections: list[str] = []
    citations: list[Citation] = []
    notes: list[str] = []
    for entry, (name, draft) in zip(listing, drafts.items(), strict=True):
        if name not in covering:
            continue
        offset = len(citations)
        for citation in draft.citations:
            citations.append(dataclasses.replace(citation, n=citation.n + offset))
        entry["citations"] = [c.n + offset for c in draft.citations]
        sections.append(f"{heading(name, documents, lang)}\n{renumber(draft.answer, offset, len(draft.citations))}")
        notes += [f"{name}: {note}" for note in draft.notes]
    sections += [silent(name, documents, lang) for name, d in drafts.items() if d.refused]
    sections += [looser(name, documents, lang) for name in drafts if name in weaker]
    notes += [f"{name}: matches the question much more loosely than {', '.join(covering)}; not shown" for name in weaker]
    first = next(iter(covering.values()))
    fallbacks = [d.fallback for d in covering.values() if d.fallback]
    return Draft("\n\n".join(sections), citations, False, first.answerer, notes=notes,
                 fallback=fallbacks[0] if fallbacks else None,
                 unsupported=[u for d in covering.values() for u in d.unsupported],
                 answerability=max(d.answerability for d in covering.values()), kind=first.kind,
                 parts=parts, briefings=listing)
