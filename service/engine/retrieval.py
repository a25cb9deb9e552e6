"""Hybrid retrieval: dense (Chroma) + keyword (BM25), fused by reciprocal rank.

The keyword index is built in memory from the chunks the store holds and rebuilt when the store's
generation changes, so a document ingested by another process (or through the API) is found
without a restart. Tokenisation works for English, Chinese and Russian (see `briefing_core.text.tokenize`);
the dense side carries questions across languages.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from briefing_core.settings import Settings
from service.engine.catalog import briefing_ids

FILTER_KEYS = ("doc_id", "source_id", "language", "kind", "briefing")


@dataclass
class Passage:
    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str
    metadata: dict[str, Any]
    score: float = 0.0
    dense: float | None = None
    keyword: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 6),
            "text": self.text,
            "title": self.metadata.get("title"),
            "kind": self.metadata.get("kind"),
            "briefing": self.metadata.get("briefing") or None,
        }


class Scope(dict):
    """The documents mapping of some briefings: a view of the whole store's mapping (`whole`), made
    once per store generation, so what is worked out per mapping is worked out once per briefing."""

    def __init__(self, whole: dict[str, dict[str, Any]], briefings: frozenset[str]) -> None:
        super().__init__((d, m) for d, m in whole.items() if m.get("briefing") in briefings)
        self.whole = whole
        self.briefings = briefings


@dataclass
class KeywordIndex:
    """BM25 over every chunk, with the document frequencies the answerer uses as term weights."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metas: list[dict[str, Any]] = field(default_factory=list)
    df: Counter[str] = field(default_factory=Counter)
    bm25: Any = None
    position: dict[str, int] = field(default_factory=dict)
    masks: dict[Any, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, store: Any, documents: dict[str, dict[str, Any]] | None = None) -> KeywordIndex:
        """`documents` (metadata by id) adds a chunk's roles to its words: a chunk holding the
        article's subtitle is found by "subtitle", "副标题" or "подзаголовок", which it never says."""
        import bm25s

        from briefing_core.text import tokenize
        from service.engine.units import role_words

        roles = role_words(documents or {})
        index = cls()
        token_lists: list[list[str]] = []
        for ids, metas, texts in store.all_chunks():
            for cid, meta, text in zip(ids, metas, texts, strict=True):
                tokens = tokenize(text or "")
                extra = roles.get(str((meta or {}).get("doc_id")))
                if extra:
                    start, end = int(meta.get("start", 0)), int(meta.get("end", 0))
                    tokens += [t for s, e, words in extra if s < end and start < e for t in tokenize(words)]
                index.ids.append(cid)
                index.texts.append(text or "")
                index.metas.append(dict(meta or {}))
                index.df.update(set(tokens))
                token_lists.append(tokens)
        index.position = {cid: i for i, cid in enumerate(index.ids)}
        if token_lists:
            index.bm25 = bm25s.BM25()
            index.bm25.index(token_lists, show_progress=False)
        return index

    @property
    def size(self) -> int:
        return len(self.ids)

    def idf(self, token: str) -> float:
        n = max(self.size, 1)
        return math.log(1 + (n - self.df.get(token, 0) + 0.5) / (self.df.get(token, 0) + 0.5))

    def search_with_coverage(
        self, tokens: list[str], n: int, mask: np.ndarray | None, *more_masks: np.ndarray | None
    ) -> tuple[list[tuple[int, float]], Any]:
        """BM25 top-n, and a function giving any chunk's coverage of the query: the IDF-weighted
        share of the query's terms it contains (0 to 1, comparable across queries). With more masks,
        the top-n under each of them follow the first list, from the same scores."""
        if self.bm25 is None:
            return [], lambda i: 0.0
        vocab = self.bm25.vocab_dict
        unique = list(dict.fromkeys(tokens))
        total_weight = sum(self.idf(t) for t in unique) or 1.0
        known = [t for t in unique if t in vocab]
        if not known:
            return [], lambda i: 0.0
        per_token = np.stack([self.bm25.get_scores([t]) for t in known])
        weights = np.array([self.idf(t) for t in known], dtype=np.float32)
        total = per_token.sum(axis=0)
        ranked: list[tuple[int, float]] = []
        for restrict in (mask, *more_masks):
            scores = total if restrict is None else total * restrict
            top = np.argpartition(-scores, min(n, len(scores)) - 1)[:n]
            ranked += sorted(((int(i), float(scores[i])) for i in top if scores[i] > 0), key=lambda x: -x[1])

        def coverage(i: int) -> float:
            return float(weights @ (per_token[:, i] > 0)) / total_weight

        return ranked, coverage


ARTICLE_REFERENCE = re.compile(
    r"\b(?:the|this) (?:article|piece|op-ed|author|briefing)\b|\bauthor'?s\b|文章|本文|作者|стать(?:я|е|и|ю|ей)\b|автор",
    re.IGNORECASE,
)


# The article named as such (not its author, whom a source's authors may be confused with).
ARTICLE_NOUN = re.compile(
    r"\b(?:the|this) (?:article|piece|op-ed|briefing)\b|文章|本文|стать(?:я|е|и|ю|ей)\b", re.IGNORECASE,
)


def _where(filters: dict[str, list[str]] | None) -> dict[str, Any] | None:
    if not filters:
        return None
    clauses = [{key: {"$in": list(values)}} for key, values in filters.items() if values]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def normalise_filters(filters: dict[str, Any] | None) -> dict[str, list[str]]:
    """Accept {"doc_id": "x"} or {"doc_id": ["x", "y"]}; unknown keys are a user error."""
    from briefing_core.errors import UserError

    out: dict[str, list[str]] = {}
    for key, value in (filters or {}).items():
        if key not in FILTER_KEYS:
            raise UserError(f"unknown filter {key!r}; filters are: {', '.join(FILTER_KEYS)}")
        values = [value] if isinstance(value, str) else list(value or [])
        if not all(isinstance(v, str) for v in values):
            raise UserError(f"filter {key!r} takes a string or a list of strings")
        if values:
            out[key] = values
    return out


class HybridSearcher:
    """Dense + keyword search over one store, fused by reciprocal rank."""

    def __init__(self, store: Any, embedder: Any, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._index: KeywordIndex | None = None
        self._docs: dict[str, dict[str, Any]] = {}
        self._scopes: dict[frozenset[str], Scope] = {}
        self._briefings: list[str] = []
        self._vectors: tuple[list[str], np.ndarray] = ([], np.zeros((0, 1), dtype=np.float32))
        """The vectors of every chunk of a briefing (a few hundred a briefing), held since the last
        refresh: a question scoped to a briefing, and the article pass, search them exactly in memory."""
        self._generation: int | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    # -- index freshness ------------------------------------------------------------------
    def refresh(self, force: bool = False) -> KeywordIndex:
        """Rebuild the keyword index when the store changed (checked at most once a second)."""
        now = time.monotonic()
        if not force and self._index is not None and now - self._checked_at < 1.0:
            return self._index
        with self._lock:
            generation = self.store.generation()
            self._checked_at = now
            if force or self._index is None or generation != self._generation:
                # After another process's write, Chroma's local client goes on reading its own, older
                # copy of the vectors until it is opened again.
                self.store.follow(generation)
                self._docs = self.store.document_metadata()
                self._scopes = {}
                self._briefings = briefing_ids(self._docs)
                self._index = KeywordIndex.build(self.store, self._docs)
                self._vectors = self._load_briefing_vectors()
                self._generation = generation
            return self._index

    @property
    def index(self) -> KeywordIndex:
        return self.refresh()

    @property
    def documents(self) -> dict[str, dict[str, Any]]:
        self.refresh()
        return self._docs

    def briefings(self) -> list[str]:
        """The ids of the briefings the store holds."""
        self.refresh()
        return self._briefings

    def documents_in(self, briefings: list[str] | None) -> dict[str, dict[str, Any]]:
        """The documents of these briefings (all documents when None)."""
        docs = self.documents
        if not briefings:
            return docs
        key = frozenset(briefings)
        scope = self._scopes.get(key)
        if scope is None or scope.whole is not docs:
            if len(self._scopes) >= 64:
                self._scopes = {}
            scope = self._scopes[key] = Scope(docs, key)
        return scope

    # -- search ---------------------------------------------------------------------------
    def search(
        self, query: str, k: int | None = None, filters: dict[str, list[str]] | None = None,
        mode: str | None = None, query_vector: list[float] | None = None,
    ) -> list[Passage]:
        from briefing_core.text import tokenize

        k = k or self.settings.k
        mode = mode or self.settings.retrieval_mode
        n = max(self.settings.candidates, k)
        index = self.refresh()
        found: dict[str, Passage] = {}
        dense_rank: dict[str, int] = {}
        keyword_rank: dict[str, int] = {}
        coverage: Any = None

        # "The article" / "the author" means the briefing article: among many other documents its
        # passages are also searched on their own, and gain in the fusion.
        boost = self.settings.article_bonus if ARTICLE_REFERENCE.search(query) else 0.0
        # The bonus is on the scale of weighted fusion (similarity and coverage, 0 to 1); rank fusion
        # and single-sided modes have other scales and do without it.
        if (filters and "kind" in filters) or mode != "hybrid" or self.settings.fusion != "weighted":
            boost = 0.0
        if mode in {"hybrid", "dense"}:
            vector = query_vector or self.embedder.embed_query(query)
            # Scoped to briefings, the dense side is exact and in memory: a filtered Chroma query scans
            # the store's metadata (several ms at 10,000 chunks, tens at 100,000).
            scoped = bool(filters and filters.get("briefing"))
            nearest = self.nearest(index, vector, n, filters) if scoped else self.store.query(vector, n, _where(filters))
            for rank, (cid, sim, text, meta) in enumerate(nearest):
                passage = found.setdefault(cid, self._passage(cid, text, meta))
                passage.dense = sim
                dense_rank[cid] = rank
            if boost:
                self._article_pass(index, vector, n, filters, found, dense_rank)
        if mode in {"hybrid", "keyword"}:
            masks = [self._mask(index, filters)]
            if boost:
                masks.append(self._mask(index, {**(filters or {}), "kind": ["article"]}))
            ranked, coverage = index.search_with_coverage(tokenize(query), n, *masks)
            for rank, (i, score) in enumerate(ranked):
                cid = index.ids[i]
                passage = found.setdefault(cid, self._passage(cid, index.texts[i], index.metas[i]))
                passage.keyword = score
                keyword_rank.setdefault(cid, rank)

        # A passage outside the dense top-n is at most as similar as the n-th best one.
        floor = min((p.dense for p in found.values() if p.dense is not None), default=0.0)
        for cid, passage in found.items():
            passage.score = self._fuse(cid, passage, dense_rank, keyword_rank, coverage, index, mode, floor)
            if boost and passage.metadata.get("kind") == "article":
                passage.score += boost
        docs = self._docs
        out = []
        for passage in sorted(found.values(), key=lambda p: -p.score):
            record = docs.get(passage.doc_id)
            # A chunk whose document record is missing or incomplete belongs to an interrupted
            # ingest; it is not served until the next ingest repairs it.
            if record is None or record.get("complete") is not True:
                continue
            out.append(passage)
        return _drop_contained(out)[:k]

    def nearest(self, index: KeywordIndex, vector: list[float], n: int,
                 filters: dict[str, list[str]] | None) -> list[tuple[str, float, str, dict[str, Any]]]:
        """The n chunks most similar to `vector` among the held briefing chunks that pass `filters`:
        (id, cosine similarity, text, metadata), as `Store.query` gives them."""
        ids, matrix = self._vectors
        if not ids:
            return []
        sims = matrix @ np.asarray(vector, dtype=np.float32)
        allowed = {key: set(values) for key, values in (filters or {}).items()}
        out: list[tuple[str, float, str, dict[str, Any]]] = []
        for j in np.argsort(-sims):
            i = index.position.get(ids[int(j)])
            if i is None:
                continue
            meta = index.metas[i]
            if not all(meta.get(key) in values for key, values in allowed.items()):
                continue
            out.append((ids[int(j)], float(sims[int(j)]), index.texts[i], meta))
            if len(out) >= n:
                break
        return out

    def _article_pass(
        self, index: KeywordIndex, vector: list[float], n: int, filters: dict[str, list[str]] | None,
        found: dict[str, Passage], dense_rank: dict[str, int],
    ) -> None:
        """Dense similarity of the articles' own chunks, from the vectors held since the last refresh."""
        for rank, (cid, sim, text, meta) in enumerate(self.nearest(index, vector, n, {**(filters or {}), "kind": ["article"]})):
            passage = found.setdefault(cid, self._passage(cid, text, meta))
            if passage.dense is None:
                passage.dense = sim
            dense_rank.setdefault(cid, rank)

    def _load_briefing_vectors(self) -> tuple[list[str], np.ndarray]:
        # Every chunk of a briefing, and any article (a store ingested before chunks said their briefing).
        got = self.store.chunks.get(where={"$or": [{"briefing": {"$ne": ""}}, {"kind": "article"}]},
                                    include=["embeddings"])
        ids = list(got["ids"])
        if not ids:
            return [], np.zeros((0, 1), dtype=np.float32)
        return ids, np.asarray(got["embeddings"], dtype=np.float32)

    def _fuse(
        self, cid: str, passage: Passage, dense_rank: dict[str, int], keyword_rank: dict[str, int],
        coverage: Any, index: KeywordIndex, mode: str, floor: float,
    ) -> float:
        """Reciprocal rank fusion, or a weighted sum of dense similarity and keyword coverage.

        Coverage, unlike a raw BM25 score, is comparable across languages: a passage in the
        question's language that shares one word with it covers little of it, and does not outrank
        the passage in another language that the embedding says means the same thing.
        """
        if self.settings.fusion == "rrf" or mode != "hybrid":
            score = 0.0
            if cid in dense_rank:
                score += 1.0 / (self.settings.rrf_k + dense_rank[cid] + 1)
            if cid in keyword_rank:
                score += 1.0 / (self.settings.rrf_k + keyword_rank[cid] + 1)
            return score
        dense = passage.dense if passage.dense is not None else floor
        cover = coverage(index.position[cid]) if coverage is not None and cid in index.position else 0.0
        w = self.settings.keyword_weight
        return (1 - w) * float(dense) + w * cover

    def _passage(self, cid: str, text: str, meta: dict[str, Any]) -> Passage:
        return Passage(cid, str(meta.get("doc_id", "")), int(meta.get("start", 0)),
                       int(meta.get("end", 0)), text, dict(meta))

    def _mask(self, index: KeywordIndex, filters: dict[str, list[str]] | None) -> np.ndarray | None:
        if not filters:
            return None
        # Built once per index and filter: at 100,000 chunks a mask takes tens of milliseconds.
        key = tuple(sorted((k, tuple(sorted(v))) for k, v in filters.items()))
        mask = index.masks.get(key)
        if mask is None:
            mask = np.ones(index.size, dtype=np.float32)
            for name, values in filters.items():
                allowed = set(values)
                mask *= np.fromiter(
                    (m.get(name) in allowed for m in index.metas), dtype=np.float32, count=index.size
                )
            if len(index.masks) < 256:
                index.masks[key] = mask
        return mask


def _drop_contained(passages: list[Passage]) -> list[Passage]:
    """A quoted excerpt repeats words the article holds; when the article's passage is also found,
    keep only the article's, which has the attribution around the quote."""
    from briefing_core.spans import fold_whitespace

    article_texts = [fold_whitespace(p.text) for p in passages if p.metadata.get("kind") == "article"]
    kept: list[Passage] = []
    for passage in passages:
        if passage.metadata.get("kind") == "quoted excerpt" and article_texts:
            paragraphs = [fold_whitespace(x) for x in passage.text.split("\n\n")]
            if any(len(q) >= 15 and any(q in a for a in article_texts) for q in paragraphs):
                continue
        kept.append(passage)
    return kept


class BriefingRetriever(BaseRetriever):
    """LangChain face of the hybrid searcher: `invoke(query)` -> Documents with offsets."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    searcher: Any
    k: int | None = None
    filters: dict[str, list[str]] | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                page_content=p.text,
                metadata={**p.metadata, "chunk_id": p.chunk_id, "score": p.score},
            )
            for p in self.searcher.search(query, self.k, self.filters)
        ]
