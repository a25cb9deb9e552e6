"""The Chroma store: chunk vectors and the documents' stored text.

Two collections under one prefix:

    {prefix}-chunks   one record a chunk: its embedding, its text, and metadata that ties it back to
                      `[start, end)` of its document's stored text
    {prefix}-docs     one record a document: its full stored text (what citations point into) and
                      its metadata; a 1-dimensional placeholder vector, since Chroma needs one

The chunks collection records the embedder's name and dimension; opening it with another embedder
fails at once naming both. The local store is a `PersistentClient` directory guarded by a write lock
(see `write_lock`); `BRIEFING_CHROMA_URL` switches to a Chroma server with the same behaviour.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from briefing_core.errors import EmbedderMismatch, NotFoundError, StoreLockedError, StoreUnavailable
from briefing_core.settings import Settings

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
"""The ids a manifest gives (briefing, article, sources), as the store keeps them and as questions,
listings and gold files name them."""

_PLACEHOLDER = [1.0]
# Chroma's get() and upsert() accept bounded batches; these stay well inside its limits.
_PAGE = 2000


@dataclass
class DocumentRecord:
    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.metadata.get("kind", "document"))


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata takes str/int/float/bool (and lists of them), never None or dicts."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if value is None:
            continue
        if isinstance(value, dict | list | tuple) and not _is_scalar_list(value):
            out[key] = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, Path):
            out[key] = str(value)
        else:
            out[key] = value
    return out


def _is_scalar_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) for v in value)
    )


# A Chroma server that accepts a connection and then never answers (stopped, overloaded) must not hold a
# request forever; Chroma's HTTP client has no timeout of its own.
CHROMA_HTTP_TIMEOUT_S = 30.0
CHROMA_CONNECT_TIMEOUT_S = 5.0


def make_client(settings: Settings) -> Any:
    """A Chroma client for the settings: HTTP when BRIEFING_CHROMA_URL is set, else a local directory."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            client = chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:
            raise StoreUnavailable(
                f"Chroma server at {settings.chroma_url} does not answer ({exc}); "
                "start it or fix BRIEFING_CHROMA_URL"
            ) from None
        _bound_http_timeout(client)
        return client
    path = settings.store_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def _bound_http_timeout(client: Any) -> None:
    """Give the HTTP session under a Chroma HttpClient a timeout (chromadb 1.5 creates it with none)."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(CHROMA_HTTP_TIMEOUT_S, connect=CHROMA_CONNECT_TIMEOUT_S)


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    import httpx

    return (httpx.TransportError, ConnectionError, TimeoutError)


def _stale_read_errors() -> tuple[type[BaseException], ...]:
    # Chroma's local client keeps its own copy of the vector index, which other processes' writes do
    # not reach: a read that meets a chunk the copy lacks fails with InternalError("... Error finding
    # id") (chromadb 1.5), and stays failing until the client is opened again.
    from chromadb.errors import InternalError

    return (InternalError,)


_READS = frozenset({"get", "query", "count", "peek"})
# Reopens a read may try before it is answered with StoreUnavailable (a 503): another process that
# writes window after window can leave a just-opened view stale again.
_STALE_RETRIES = 2


class _Gate:
    """Many threads using a Chroma client at once, or one replacing it: a client is never closed
    under a call in flight. A waiting replacer holds back new users, so a stream of questions cannot
    keep it out."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._replacing = False
        self._waiting = 0

    @contextlib.contextmanager
    def use(self) -> Iterator[None]:
        with self._cond:
            while self._replacing or self._waiting:
                self._cond.wait()
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                if not self._users:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def replace(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._replacing or self._users:
                self._cond.wait()
            self._waiting -= 1
            self._replacing = True
        try:
            yield
        finally:
            with self._cond:
                self._replacing = False
                self._cond.notify_all()


class _Answering:
    """A Chroma collection whose calls raise StoreUnavailable, instead of a transport error, when the
    store does not answer (a Chroma server stopped, restarting or unreachable).

    With its store, a read that Chroma's local client reports as stale (another process wrote the
    store) reopens the client and is tried again; one still stale after that is a StoreUnavailable."""

    def __init__(self, collection: Any, location: str, store: Store | None = None) -> None:
        self._collection = collection
        self._location = location
        self._store = store
        self._errors = _unreachable_errors()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr
        store = self._store
        retries = _STALE_RETRIES if store is not None and store.reopenable and name in _READS else 0

        def call(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(retries + 1):
                seen = store.view if store is not None else 0
                try:
                    with store.gate.use() if store is not None else contextlib.nullcontext():
                        # Looked up again on each try: a reopen swaps the collection underneath.
                        return getattr(self._collection, name)(*args, **kwargs)
                except self._errors as exc:
                    raise StoreUnavailable(f"the store at {self._location} does not answer: {exc}") from None
                except _stale_read_errors() as exc:
                    if not retries:
                        raise
                    if attempt == retries:
                        raise StoreUnavailable(
                            f"the store at {self._location} is being changed by another process "
                            f"and could not be read consistently ({exc}); retry in a moment"
                        ) from None
                    assert store is not None
                    store.reopen(seen)
            raise AssertionError("unreachable")

        return call


@contextlib.contextmanager
def write_lock(settings: Settings) -> Iterator[None]:
    """Exclusive right to write the local store.

    Chroma's own SQLite locking lets a second process block for minutes; a file lock taken
    before Chroma is opened makes a second writer fail within `lock_timeout_s` instead. A Chroma
    server serialises writes itself, so no lock is taken in server mode.
    """
    if settings.chroma_url:
        yield
        return
    from filelock import FileLock, Timeout

    settings.store_dir.mkdir(parents=True, exist_ok=True)
    lock_path = settings.store_dir / "write.lock"
    owner_path = settings.store_dir / "write.lock.owner"
    lock = FileLock(str(lock_path), timeout=settings.lock_timeout_s)
    try:
        lock.acquire()
    except Timeout:
        owner = owner_path.read_text().strip() if owner_path.exists() else "another process"
        raise StoreLockedError(
            f"the store at {settings.store_dir} is being written by {owner}; "
            "wait for it to finish (or stop the service that holds it) and try again"
        ) from None
    try:
        owner_path.write_text(f"process {os.getpid()}")
        yield
    finally:
        with contextlib.suppress(OSError):
            owner_path.unlink()
        lock.release()


class Store:
    """Both collections, opened for one embedder."""

    def __init__(
        self, settings: Settings, embedder_name: str, dimension: int | None, client: Any = None
    ):
        self.settings = settings
        self.embedder_name = embedder_name
        self.dimension = dimension
        self._client = client
        self._owns_client = client is None
        self._chunks: Any = None
        self._docs: Any = None
        self._open_lock = threading.Lock()
        self.gate = _Gate()
        # How many times the client has been opened again; a thread that saw a stale read asks for
        # a reopen only if no other thread has done one since its read began.
        self.view = 0
        # The generation this object's view of a local store is known to be up to date with.
        self._known_generation: int | None = None

    # -- opening ------------------------------------------------------------------------
    @property
    def location(self) -> str:
        return self.settings.chroma_url or str(self.settings.store_dir)

    def open(self) -> Store:
        with self._open_lock:
            if self._chunks is not None:
                return self
            try:
                client = self._client or make_client(self.settings)
                chunks = client.get_or_create_collection(
                    f"{self.settings.collection}-chunks",
                    embedding_function=None,
                    metadata={"embedder": self.embedder_name, "dimension": self.dimension or 0},
                    configuration={"hnsw": {"space": "cosine"}},
                )
                docs = client.get_or_create_collection(
                    f"{self.settings.collection}-docs",
                    embedding_function=None,
                    metadata={"generation": 0},
                )
            except (EmbedderMismatch, StoreUnavailable):
                raise
            except Exception as exc:
                raise StoreUnavailable(f"cannot open the store at {self.location}: {exc}") from None
            meta = chunks.metadata or {}
            stored_name, stored_dim = meta.get("embedder"), meta.get("dimension")
            dim_differs = self.dimension is not None and stored_dim != self.dimension
            if stored_name != self.embedder_name or dim_differs:
                raise EmbedderMismatch(
                    f"the store at {self.location} was built with embedder {stored_name!r} "
                    f"({stored_dim} dimensions), but this run uses {self.embedder_name!r} "
                    f"({self.dimension} dimensions). Set BRIEFING_EMBEDDER={stored_name} to use it, "
                    "or point BRIEFING_STORE_DIR / BRIEFING_COLLECTION at a new store and ingest again."
                )
            self._client = client
            self._chunks = _Answering(chunks, self.location, self)
            self._docs = _Answering(docs, self.location, self)
            self._known_generation = int((docs.metadata or {}).get("generation", 0))
            return self

    @property
    def reopenable(self) -> bool:
        """A local store whose client this object made: a Chroma server has no stale copy to drop,
        and a client handed in belongs to its caller."""
        return self._owns_client and not self.settings.chroma_url

    def reopen(self, seen: int | None = None) -> None:
        """Open the local Chroma client again, so that reads see what other processes wrote.

        Chroma shares one client state per directory within a process; closing ours gives a fresh one
        only when no other client of this process holds that directory (so under `briefing serve`).
        `seen`: the view a caller's stale read used; if another thread has reopened since, nothing
        is done."""
        if not self.reopenable or self._chunks is None:
            return
        with self.gate.replace():
            if seen is not None and seen != self.view:
                return
            old = self._client
            with contextlib.suppress(Exception):
                old.close()
            try:
                client = make_client(self.settings)
                chunks = client.get_collection(f"{self.settings.collection}-chunks", embedding_function=None)
                docs = client.get_collection(f"{self.settings.collection}-docs", embedding_function=None)
            except Exception as exc:
                raise StoreUnavailable(f"cannot open the store at {self.location} again: {exc}") from None
            # The wrappers stay; callers holding them (a paged read under way) go on with the new view.
            self._client = client
            self._chunks._collection = chunks
            self._docs._collection = docs
            self._known_generation = int((docs.metadata or {}).get("generation", 0))
            self.view += 1

    def follow(self, generation: int) -> None:
        """Called with the store's generation when it changed: unless only this object's own writes
        changed it, another process wrote, and the local client is opened again to see those chunks'
        vectors."""
        if generation != self._known_generation:
            self.reopen()

    @property
    def chunks(self) -> Any:
        return self.open()._chunks

    @property
    def docs(self) -> Any:
        return self.open()._docs

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers now."""
        try:
            self.docs.count()
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise StoreUnavailable(f"the store at {self.location} does not answer: {exc}") from None

    # -- generation: lets readers notice that the store changed -------------------------
    def generation(self) -> int:
        try:
            with self.gate.use():
                fresh = self._client.get_collection(f"{self.settings.collection}-docs", embedding_function=None)
        except Exception as exc:
            raise StoreUnavailable(f"the store at {self.location} does not answer: {exc}") from None
        return int((fresh.metadata or {}).get("generation", 0))

    def bump_generation(self) -> int:
        current = self.generation()
        value = current + 1
        self.docs.modify(metadata={"generation": value})
        if current == self._known_generation:
            # Nobody else wrote since this view was known good, and its own writes keep it so.
            self._known_generation = value
        return value

    # -- documents ----------------------------------------------------------------------
    def put_document(self, record: DocumentRecord) -> None:
        self.put_documents([record])

    def put_documents(self, records: list[DocumentRecord], max_chars: int = 5_000_000) -> None:
        """Document records in as few Chroma calls as fit (each call commits on its own: one call a
        record was half the write time of an ingest), a call holding at most about `max_chars` of text."""
        page: list[DocumentRecord] = []
        size = 0
        for record in [*records, None]:
            if page and (record is None or len(page) >= 100 or size + len(record.text) > max_chars):
                self.docs.upsert(
                    ids=[r.doc_id for r in page],
                    embeddings=[_PLACEHOLDER for _ in page],
                    documents=[r.text for r in page],
                    metadatas=[_clean({**r.metadata, "doc_id": r.doc_id}) for r in page],
                )
                page, size = [], 0
            if record is not None:
                page.append(record)
                size += len(record.text)

    def get_document(self, doc_id: str) -> DocumentRecord:
        got = self.docs.get(ids=[doc_id], include=["documents", "metadatas"])
        if not got["ids"]:
            raise NotFoundError(f"no document with id {doc_id!r}")
        return DocumentRecord(doc_id, got["documents"][0] or "", dict(got["metadatas"][0] or {}))

    def document_metadata(self) -> dict[str, dict[str, Any]]:
        """Every document's metadata, by id (no text)."""
        out: dict[str, dict[str, Any]] = {}
        for ids, metas, _ in self._pages(self.docs, include=["metadatas"]):
            for doc_id, meta in zip(ids, metas, strict=True):
                out[doc_id] = dict(meta or {})
        return out

    def documents(self) -> list[DocumentRecord]:
        out = []
        for ids, metas, texts in self._pages(self.docs, include=["metadatas", "documents"]):
            for doc_id, meta, text in zip(ids, metas, texts, strict=True):
                out.append(DocumentRecord(doc_id, text or "", dict(meta or {})))
        return out

    def delete_document(self, doc_id: str) -> int:
        """Remove a document and its chunks; returns the number of chunks removed."""
        ids = self.chunk_ids_for(doc_id)
        self.delete_chunks(ids)
        self.docs.delete(ids=[doc_id])
        return len(ids)

    def delete_briefing(self, briefing: str) -> tuple[int, int]:
        """Remove every document of a briefing and every chunk of those documents; returns
        (documents, chunks) removed. The records are marked incomplete first, so a run cut short
        leaves nothing that is served, and running it again finishes the job."""
        doc_ids = [d for d, meta in self.document_metadata().items() if meta.get("briefing") == briefing]
        if doc_ids:
            self.docs.update(ids=doc_ids, metadatas=[{"complete": False} for _ in doc_ids])
        # Its chunks by their own briefing field, and by document (chunks written before they had one).
        where: dict[str, Any] = {"briefing": briefing}
        if doc_ids:
            where = {"$or": [where, {"doc_id": {"$in": doc_ids}}]}
        chunk_ids = set(self.chunks.get(where=where, include=[])["ids"])
        self.delete_chunks(sorted(chunk_ids))
        if doc_ids:
            self.docs.delete(ids=doc_ids)
        return len(doc_ids), len(chunk_ids)

    # -- chunks -------------------------------------------------------------------------
    def chunk_metadata_for(self, doc_id: str) -> dict[str, dict[str, Any]]:
        got = self.chunks.get(where={"doc_id": doc_id}, include=["metadatas"])
        return {cid: dict(meta or {}) for cid, meta in zip(got["ids"], got["metadatas"], strict=True)}

    def chunk_ids_for(self, doc_id: str) -> list[str]:
        return list(self.chunks.get(where={"doc_id": doc_id}, include=[])["ids"])

    def all_chunk_metadata(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for ids, metas, _ in self._pages(self.chunks, include=["metadatas"]):
            for cid, meta in zip(ids, metas, strict=True):
                out[cid] = dict(meta or {})
        return out

    def all_chunks(self) -> Iterator[tuple[list[str], list[dict[str, Any]], list[str]]]:
        """Pages of (ids, metadatas, texts) over every chunk."""
        yield from self._pages(self.chunks, include=["metadatas", "documents"])

    def add_chunks(
        self,
        ids: list[str],
        texts: list[str],
        metadatas: list[dict[str, Any]],
        embeddings: list[list[float]],
    ) -> None:
        for i in range(0, len(ids), _PAGE):
            self.chunks.upsert(
                ids=ids[i : i + _PAGE],
                documents=texts[i : i + _PAGE],
                metadatas=[_clean(m) for m in metadatas[i : i + _PAGE]],
                embeddings=embeddings[i : i + _PAGE],
            )

    def update_chunk_metadata(self, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
        for i in range(0, len(ids), _PAGE):
            self.chunks.update(
                ids=ids[i : i + _PAGE], metadatas=[_clean(m) for m in metadatas[i : i + _PAGE]]
            )

    def delete_chunks(self, ids: list[str]) -> None:
        for i in range(0, len(ids), _PAGE):
            self.chunks.delete(ids=ids[i : i + _PAGE])

    def count_chunks(self) -> int:
        return int(self.chunks.count())

    def query(
        self, embedding: list[float], n: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float, str, dict[str, Any]]]:
        """Nearest chunks: (id, cosine similarity, text, metadata).

        Chroma returns fewer than `n` when the collection holds fewer, so no count is asked first
        (at 100k chunks a count costs as much as the query)."""
        got = self.chunks.query(
            query_embeddings=[embedding],
            n_results=n,
            where=where or None,
            include=["documents", "metadatas", "distances"],
        )
        return [
            (cid, 1.0 - float(dist), text or "", dict(meta or {}))
            for cid, dist, text, meta in zip(
                got["ids"][0], got["distances"][0], got["documents"][0], got["metadatas"][0], strict=True
            )
        ]

    def _pages(self, collection: Any, include: list[str]) -> Iterator[tuple[list, list, list]]:
        offset = 0
        while True:
            got = collection.get(include=include, limit=_PAGE, offset=offset)
            ids = got["ids"]
            if not ids:
                return
            metas = got.get("metadatas") or [None] * len(ids)
            texts = got.get("documents") or [None] * len(ids)
            yield ids, metas, texts
            if len(ids) < _PAGE:
                return
            offset += len(ids)


# Dimensions of the packaged embedders, so that listing documents need not load a model.
KNOWN_DIMENSIONS = {"use-multilingual": 512, "minilm": 384, "e5-small": 384}


def open_store(settings: Settings, embedder: Any = None) -> Store:
    """Open the store for the configured embedder, loaded or not (`embedder` given or None)."""
    if embedder is not None:
        return Store(settings, embedder.name, embedder.dimension).open()
    name = settings.embedder
    return Store(settings, name, KNOWN_DIMENSIONS.get(name)).open()
