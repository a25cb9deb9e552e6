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

from service.answering import (
    _HOW_MANY,
    REFUSALS,
    Candidate,
    Citation,
    Result,
    Scorer,
    asks_exact_date,
    asks_year,
    candidates,
    choose,
    compose,
    has_day_date,
    has_quantity,
    has_year,
    make_citation,
    missing_salient,
    reply_language,
    support,
)
from ingest.text import tokenize
from service.errors import LLMUnavailable, UserError
from service.guard import answer_problem, is_suspicious, usable_parts
from service.retrieval import HybridSearcher, normalise_filters
from service.settings import Settings

# Words that point back to an earlier turn ("What did it conclude?", "Что в нём сказано?", "它说了什么？").
_ANAPHORA = re.compile(
    r"\b(it|its|they|them|their|that|this|those|these|he|she|his|her|there|then)\b"
    r"|(?<![\w])(он|она|оно|они|его|её|ее|их|этот|эта|это|эти|тот|та|те|там|тогда|нём|ней)(?![\w])"
    r"|[它他她其该那这]",
    re.IGNORECASE,
)


def condense(question: str, history: list[dict[str, str]] | None) -> tuple[str, str | None]:
    """A query that stands on its own, and the latest question when it leans on earlier turns.

    A follow-up that points back ("What did it conclude?") is searched together with the last
    question the analyst asked, so "it" finds the magazine that question was about.
    """
    from ingest.text import tokenize

    earlier = [h.get("content", "") for h in history or [] if h.get("role") == "user" and h.get("content")]
    if not earlier:
        return question, None
    if _ANAPHORA.search(question) or len(tokenize(question)) <= 3:
        return f"{earlier[-1]} {question}", question
    return question, None


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


class BriefingQA:
    """Answers questions about the ingested briefing. Heavy parts load on first use."""

    def __init__(self, settings: Settings, *, embedder: Any = None, store: Any = None, llm: Any = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._store = store
        self._llm = llm
        self._searcher: HybridSearcher | None = None
        self._scorer: Scorer | None = None
        self._init_lock = threading.Lock()
        self._chain = self._build_chain()

    # -- components ---------------------------------------------------------------------
    def load(self) -> BriefingQA:
        with self._init_lock:
            if self._searcher is None:
                from service.embeddings import make_embedder
                from service.store import open_store

                self._embedder = self._embedder or make_embedder(
                    self.settings.embedder, self.settings.embed_batch_size, self.settings.embed_threads
                )
                self._store = self._store or open_store(self.settings, self._embedder)
                self._searcher = HybridSearcher(self._store, self._embedder, self.settings)
                self._searcher.refresh(force=True)
                self._scorer = Scorer(self._embedder, self._searcher.index)
                self._warm()
                if self.settings.answerer == "llm":
                    self.warm_llm()
        return self

    def _warm(self) -> None:
        """Pay first-call costs (model kernels, tokeniser tables) at start-up, not on a user's question."""
        from ingest.text import split_sentences, tokenize

        tokenize("warm up 预热 прогрев")
        split_sentences("Warm up. 预热。 Прогрев.")
        self._embedder.embed_documents(["warm up", "预热", "прогрев"])
        # The first vector query loads the HNSW index from disk.
        self._searcher.search("warm up", k=1)

    @property
    def searcher(self) -> HybridSearcher:
        return self.load()._searcher  # type: ignore[return-value]

    @property
    def store(self) -> Any:
        return self.load()._store

    @property
    def scorer(self) -> Scorer:
        self.load()
        assert self._scorer is not None
        # The keyword index may have been rebuilt since; term weights must come from the current one.
        self._scorer.index = self.searcher.index
        return self._scorer

    def llm(self) -> Any:
        if self._llm is None:
            from service.llm import make_chat_model

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
        filters: dict[str, Any] | None = None, answerer: str | None = None,
    ) -> Result:
        question = (question or "").strip()
        if not question:
            raise UserError("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise UserError(
                f"the question is {len(question)} characters; the limit is {self.settings.max_question_chars}"
            )
        started = time.perf_counter()
        result: Result = self._chain.invoke(
            {
                "question": question,
                "history": history or [],
                "filters": normalise_filters(filters),
                "answerer": answerer or self.settings.answerer,
            }
        )
        result.latency_ms = (time.perf_counter() - started) * 1000
        return result

    @property
    def chain(self) -> Any:
        return self._chain

    def _condense(self, state: dict[str, Any]) -> dict[str, Any]:
        query, focus = condense(state["question"], state["history"])
        return {"query": query, "focus": focus}

    def _retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        query = state["condensed"]["query"]
        vector = self.load()._embedder.embed_query(query)
        passages = self.searcher.search(query, self.settings.k, state["filters"] or None, query_vector=vector)
        return {"list": passages, "vector": vector}

    def _answer(self, state: dict[str, Any]) -> Draft:
        question = state["question"]
        lang = reply_language(question)
        passages = state["passages"]["list"]
        docs = self.searcher.documents
        # A source sentence that addresses the assistant is never an answer span (service/guard.py).
        usable, withheld = [], []
        for cand in candidates(passages, docs):
            if not is_suspicious(cand.text):
                usable.append(cand)
                continue
            # A span joins short sentences: keep its sentences that are clean, withhold the rest.
            kept = [dataclasses.replace(cand, start=cand.start + s, end=cand.start + e, text=cand.text[s:e])
                    for s, e in usable_parts(cand.text)]
            usable.extend(kept)
            withheld.extend(_complement(cand, kept))
        ranked = self.scorer.score(
            state["condensed"]["query"], state["passages"]["vector"], usable,
            focus=state["condensed"]["focus"],
        )
        draft = self._draft({**state, "withheld": withheld}, ranked, docs, lang)
        draft.answerability = ranked[0].score if ranked else 0.0
        if withheld:
            draft.notes.append(
                f"left out {len(withheld)} sentence(s) of the retrieved passages that read as instructions "
                "to the assistant"
            )
        return draft

    def _draft(self, state: dict[str, Any], ranked: list[Candidate], docs: dict[str, dict[str, Any]],
               lang: str) -> Draft:
        refuse, why = self._should_refuse(
            state["condensed"]["focus"] or state["question"], ranked, state["passages"]["list"]
        )
        if refuse:
            return Draft(REFUSALS[lang], [], True, state["answerer"], notes=[why])
        extractive = self._extractive(ranked, docs, lang, state["condensed"]["focus"] or state["question"])
        if state["answerer"] != "llm":
            return extractive
        return self._llm_answer(state, ranked, docs, lang, extractive)

    def _should_refuse(self, question: str, ranked: list[Candidate], passages: list[Any]) -> tuple[bool, str]:
        if not ranked:
            return True, "nothing relevant was retrieved"
        if reply_language(question) == "en":
            missing = missing_salient(question, self.searcher.index.df)
            if missing:
                return True, f"no document mentions {', '.join(missing)}"
            # The names a question asks about stand near its answer; the best span's passage (or the
            # source it is attributed to) must mention them, or the span answers another question.
            best = ranked[0]
            context = set(tokenize(f"{passages[best.passage].text} {best.attributed_to or ''} {best.role}"))
            index = self.searcher.index
            # Only rare names count: a name most passages share (the briefing's main actors) is
            # background, not what singles the answer out.
            absent = [
                term for term in missing_salient(question, context)
                if all(index.df.get(t, 0) <= 0.15 * index.size for t in tokenize(term))
            ]
            if absent:
                return True, f"the best passage does not mention {', '.join(absent)}"
        if _HOW_MANY.search(question) and not any(has_quantity(c.text) for c in ranked[:10]):
            return True, "the question asks for a number and no retrieved passage gives one"
        if asks_exact_date(question) and not any(has_day_date(c.text) for c in ranked[:10]):
            return True, "the question asks for a calendar date and no retrieved passage gives one"
        if asks_year(question) and not has_year(ranked[0].text):
            return True, "the question asks for a year and the best passage gives none"
        best = ranked[0].score
        if best < self.settings.refusal_threshold:
            return True, f"best supporting passage scores {best:.2f}, under the threshold {self.settings.refusal_threshold:.2f}"
        return False, ""

    def _extractive(
        self, ranked: list[Candidate], docs: dict[str, dict[str, Any]], lang: str, question: str = ""
    ) -> Draft:
        chosen = choose(ranked, self.settings.max_citations, question=question)
        text, citations = compose(chosen, docs, lang)
        return Draft(text, citations, False, "extractive")

    # -- LLM path ---------------------------------------------------------------------------
    def _llm_answer(
        self, state: dict[str, Any], ranked: list[Candidate], docs: dict[str, dict[str, Any]],
        lang: str, extractive: Draft,
    ) -> Draft:
        from service.llm import build_messages, parse_refusal

        passages = state["passages"]["list"]
        shown = _redacted(passages, state.get("withheld", []))
        messages = build_messages(state["question"], state["history"], shown, docs)
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
        draft = self._verify(text, ranked, docs, len(passages))
        if not draft.citations:
            fallback = _fallback(extractive, "the LLM answer failed verification")
            fallback.unsupported = draft.unsupported
            return fallback
        return draft

    def _verify(self, text: str, ranked: list[Candidate], docs: dict[str, dict[str, Any]], n_passages: int) -> Draft:
        """Keep the sentences the cited passage supports, each tied to its best span."""
        from ingest.text import split_sentences
        from service.llm import SYSTEM_PROMPT

        scorer = self.scorer
        threshold = self.settings.support_threshold
        kept: list[str] = []
        citations: list[Citation] = []
        unsupported: list[str] = []
        notes: list[str] = []
        by_span: dict[tuple[str, int, int], int] = {}
        # What an answer may draw on: the candidate spans, without those the guard withheld.
        trusted = "\n".join(c.text for c in ranked)
        for s, e in split_sentences(text):
            sentence = text[s:e]
            markers = [int(m) for m in re.findall(r"\[(\d{1,3})\]", sentence)]
            valid = [m for m in markers if 1 <= m <= n_passages]
            if len(valid) < len(markers):
                notes.append("removed a citation marker that named no retrieved passage")
            claim = re.sub(r"\s*\[\d{1,3}\]", "", sentence).strip()
            if not claim:
                continue
            problem = answer_problem(claim, trusted, SYSTEM_PROMPT)
            if problem:
                unsupported.append(claim)
                notes.append(f"dropped a sentence that {problem}")
                continue
            pool = [c for c in ranked if c.passage + 1 in valid] or ranked
            best, best_support = None, 0.0
            for cand in pool:
                value = support(claim, cand.text, scorer)
                if value > best_support:
                    best, best_support = cand, value
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
        )


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


def _complement(cand: Candidate, kept: list[Candidate]) -> list[Candidate]:
    """The pieces of `cand` outside the `kept` sub-spans (what is withheld)."""
    out, pos = [], cand.start
    for part in [*sorted(kept, key=lambda c: c.start), None]:
        end = part.start if part is not None else cand.end
        if end > pos:
            text = cand.text[pos - cand.start : end - cand.start]
            out.append(dataclasses.replace(cand, start=pos, end=end, text=text))
        if part is not None:
            pos = part.end
    return [c for c in out if c.text.strip()]


def _redacted(passages: list[Any], withheld: list[Candidate]) -> list[Any]:
    """The passages as the LLM sees them: each withheld span replaced by "[…]"."""
    if not withheld:
        return passages
    out = []
    for i, passage in enumerate(passages):
        text = passage.text
        for cand in sorted((c for c in withheld if c.passage == i), key=lambda c: -c.start):
            s, e = cand.start - passage.start, cand.end - passage.start
            if 0 <= s <= e <= len(text):
                text = text[:s] + "[…]" + text[e:]
        out.append(dataclasses.replace(passage, text=text) if text != passage.text else passage)
    return out


def _fallback(extractive: Draft, why: str) -> Draft:
    return Draft(
        extractive.answer, extractive.citations, extractive.refused, "extractive",
        notes=[*extractive.notes, why], fallback=why, answerability=extractive.answerability,
    )
