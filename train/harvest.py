"""Training rows from the service's own retrieval: each corpus is ingested into a throwaway store by
the real pipeline, each question is searched as the service searches it, and every candidate unit of
the retrieved passages becomes a row of `signals.FEATURES`, labelled 1 when it holds an annotator's
answer.

Besides the questions as written, a share of the answerable ones is asked again with their own article
left out of the results: what the service sees when the sources do not cover a question at all
(every candidate a negative), in every pairing of languages, which SQuAD 2.0's near misses (English,
same paragraph) do not show.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from train.data import Corpus, Question


@dataclass
class Rows:
    """Feature rows with their labels, grouped by question (`group`: an index into `questions`)."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    questions: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    """For each row: the unit's document, range and text (what span training needs)."""

    def save(self, path: Path) -> None:
        import json

        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, X=self.X, y=self.y, group=self.group)
        path.with_suffix(".json").write_text(
            json.dumps({"questions": self.questions, "units": self.units}, ensure_ascii=False),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, path: Path) -> Rows:
        import json

        arrays = np.load(path)
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        return cls(arrays["X"], arrays["y"], arrays["group"], meta["questions"], meta["units"])


def _settings(store_dir: Path) -> Any:
    from briefing_core.settings import Settings

    return Settings(store_dir=store_dir, chroma_url=None, ingest_overlap=False)


class Harvester:
    """Ingests one corpus and reads candidates for its questions exactly as the engine does."""

    def __init__(self, corpus: Corpus, workdir: Path) -> None:
        from briefing_core.embeddings import make_embedder
        from briefing_core.store import open_store
        from ingest.pipeline import ingest
        from service.engine.plan import Planner
        from service.engine.retrieval import HybridSearcher
        from service.engine.units import UnitCache

        self.corpus = corpus
        settings = _settings(workdir / "store")
        report = ingest(settings, corpus.write(workdir / "docs"))
        if report.errors:
            raise RuntimeError(f"{corpus.name}: ingest failed: {report.errors[:3]}")
        # The service's own components, without the answerer: finding candidates needs no scorer.
        self.settings = settings
        self.embedder = make_embedder(settings.embedder, settings.embed_batch_size, settings.embed_threads)
        self.store = open_store(settings, self.embedder)
        self.searcher = HybridSearcher(self.store, self.embedder, settings)
        self.searcher.refresh(force=True)
        self.planner = Planner(self.embedder, UnitCache(self.store), word_match=settings.word_match)
        self.documents = self.searcher.documents_in(None)
        stored = {doc_id: self.store.get_document(doc_id).text for doc_id in corpus.documents}
        for doc_id, text in corpus.documents.items():
            if stored[doc_id] != text:
                raise RuntimeError(
                    f"{corpus.name}: {doc_id} was stored with other text; answer offsets would be wrong"
                )

    def rows(
        self, question: Question, *, leave_out_own: bool = False
    ) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        from service.engine.signals import candidate_features

        k = self.settings.k
        vector = self.embedder.embed_query(question.text)
        if leave_out_own:
            found = self.searcher.search(question.text, 4 * k, None, query_vector=vector)
            passages = [p for p in found if p.doc_id != question.doc_id][:k]
        else:
            passages = self.searcher.search(question.text, k, None, query_vector=vector)
        units, X = candidate_features(
            self.planner, question.text, question.lang, vector, passages, self.documents
        )
        y = np.zeros(len(units), np.int8)
        if not leave_out_own:
            for r, unit in enumerate(units):
                if unit.doc_id == question.doc_id and any(
                    unit.start < e and s < unit.end for s, e in question.answers
                ):
                    y[r] = 1
        return X, y, units


def harvest(corpus: Corpus, *, leave_out_share: float = 0.25, seed: int = 0, log: Any = print) -> Rows:
    rng = random.Random(seed)
    started = time.perf_counter()
    X_parts, y_parts, g_parts = [], [], []
    questions: list[dict[str, Any]] = []
    units_out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"harvest-{corpus.name}-") as tmp:
        harvester = Harvester(corpus, Path(tmp))
        log(
            f"{corpus.name}: {len(corpus.documents)} documents ingested in {time.perf_counter() - started:.0f} s"
        )
        asks = [(q, False) for q in corpus.questions]
        asks += [(q, True) for q in corpus.questions if q.answerable and rng.random() < leave_out_share]
        for n, (q, leave_out) in enumerate(asks):
            X, y, units = harvester.rows(q, leave_out_own=leave_out)
            g = len(questions)
            questions.append(
                {
                    "qid": q.qid,
                    "question": q.text,
                    "lang": q.lang,
                    "doc_lang": corpus.lang,
                    "article": q.article,
                    "corpus": corpus.name,
                    "answerable": q.answerable and not leave_out,
                    "left_out": leave_out,
                    "answers": q.answer_texts,
                }
            )
            X_parts.append(X)
            y_parts.append(y)
            g_parts.append(np.full(len(y), g, np.int32))
            units_out += [{"doc": u.doc_id, "start": u.start, "end": u.end, "text": u.text} for u in units]
            if (n + 1) % 500 == 0:
                log(f"{corpus.name}: {n + 1}/{len(asks)} questions, {time.perf_counter() - started:.0f} s")
    X = np.concatenate(X_parts) if X_parts else np.zeros((0, 0), np.float32)
    return Rows(X, np.concatenate(y_parts), np.concatenate(g_parts), questions, units_out)
