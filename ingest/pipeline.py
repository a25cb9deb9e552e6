"""Ingest: documents -> text with offsets -> chunks with stable ids -> Chroma.

Idempotent by construction: chunk ids come from the document id and the chunk's content, and a
document record carries a hash of everything its chunks depend on. Re-ingesting an unchanged
document reads one record and writes nothing; a changed document is diffed against the chunks the
store really holds, so only new texts are embedded and stale chunks removed.

Crash safety: a document's record is marked incomplete before its chunks change and written complete
only after they all are, so a run killed at any point is repaired by the next run's diff.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ingest.manifest import Manifest, SourceEntry, load_manifest
from briefing_core.spans import find_folded
from briefing_core.errors import InputFileError, ManifestError, UserError
from briefing_core.settings import Settings

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")


@dataclass
class DocSpec:
    doc_id: str
    text: str
    metadata: dict[str, Any]


@dataclass
class IngestReport:
    documents: int = 0
    chunks_added: int = 0
    chunks_updated: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0
    texts_embedded: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def wrote_anything(self) -> bool:
        return bool(self.chunks_added or self.chunks_updated or self.chunks_removed)


# ---------------------------------------------------------------------------------------
# What to ingest
# ---------------------------------------------------------------------------------------


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:100] or "document"


def _source_metadata(source: SourceEntry, article_id: str, briefing: str | None = None) -> dict[str, Any]:
    return {
        "briefing": briefing,
        "source_id": source.id,
        "outlet": source.outlet,
        "outlet_original": source.outlet_original,
        "title": source.title or source.outlet,
        "original_title": source.original_title,
        "source_type": source.type,
        "language": source.language,
        "date": source.date,
        "url": source.url,
        "cited_in": article_id,
        "label": source.display_label(),
    }


def _excerpt_document(manifest: Manifest, article_text: str, source: SourceEntry) -> DocSpec:
    """A cited source known only through the article: the passages the article quotes from it.

    Each quote is copied from the article exactly (white space included), so a citation into the
    excerpt and a citation into the article name the same words.
    """
    article = manifest.article
    spans: list[tuple[int, int]] = []
    for quote in source.quotes:
        found = find_folded(article_text, quote)
        if not found:
            raise ManifestError(
                f"source {source.id!r}: quote not found in the article {article.path!r}: {quote[:80]!r}"
            )
        spans.append(found[0])
    name = source.outlet + (f" [{source.outlet_original}]" if source.outlet_original else "")
    title = source.title or ""
    if source.original_title:
        title += f" [{source.original_title}]"
    header = f"{name}: {title}" if title else name
    details = ", ".join(x for x in (source.type, source.date) if x)
    lines = [header + (f" ({details})" if details else "")]
    lines.append(f"Passages quoted in “{article.title}” ({article.outlet or 'the article'}):")
    body = "\n\n".join(article_text[s:e] for s, e in spans)
    head = "\n".join(lines) + "\n\n"
    text = head + body + "\n"
    meta = _source_metadata(source, article.id, manifest.briefing)
    meta.update(
        kind="quoted excerpt",
        quote_spans=json.dumps(spans),
        quotes=json.dumps(source.quotes, ensure_ascii=False),
        full_text=False,
        body_start=len(head),
    )
    return DocSpec(f"{source.id}.quoted", text, meta)


def _role_spans(text: str, article: Any) -> list[tuple[int, int, str]]:
    """Where the title, subtitle and photo caption stand in the text. Answers match a question's
    words against these roles too ("the photo" finds the caption, which never says "photo")."""
    roles = []
    for role, value in (("title", article.title), ("subtitle", article.subtitle), ("photo caption", article.caption),
                        ("author", article.author)):
        if value:
            found = find_folded(text, value)
            if found:
                roles.append((found[0][0], found[0][1], role))
    return roles


def manifest_documents(
    manifest: Manifest, settings: Settings, errors: list[dict[str, str]]
) -> list[DocSpec]:
    from ingest.loaders import load_path

    article = manifest.article
    article_path = manifest.resolve(article.path)
    loaded = load_path(article_path, max_bytes=int(settings.max_file_mb * 1e6))
    roles = _role_spans(loaded.text, article)
    specs = [
        DocSpec(
            article.id,
            loaded.text,
            {
                "kind": "article",
                "source_id": article.id,
                "title": article.title,
                "subtitle": article.subtitle,
                "outlet": article.outlet,
                "url": article.url,
                "language": article.language,
                "date": article.date,
                "author": article.author,
                "path": str(article_path),
                "format": loaded.format,
                "briefing": manifest.briefing,
                "role_spans": json.dumps(roles, ensure_ascii=False),
            },
        )
    ]
    for source in manifest.sources:
        if source.quotes:
            specs.append(_excerpt_document(manifest, loaded.text, source))
        if source.path:
            try:
                specs.append(source_document(manifest.resolve(source.path), source, article.id, settings,
                                             briefing=manifest.briefing))
            except InputFileError as exc:
                errors.append({"path": exc.path, "error": exc.problem})
    return specs


def source_document(path: Path, source: SourceEntry | dict[str, Any], article_id: str | None,
                    settings: Settings, briefing: str | None = None) -> DocSpec:
    """A cited source's full text, linked to its source id (and so to its briefing)."""
    from ingest.loaders import load_path

    loaded = load_path(path, max_bytes=int(settings.max_file_mb * 1e6))
    if isinstance(source, SourceEntry):
        meta = _source_metadata(source, article_id or "", briefing)
    else:
        meta = {k: v for k, v in source.items() if k in _LINKED_KEYS}
    meta.update(kind="cited source", path=str(path), format=loaded.format, full_text=True)
    meta.setdefault("language", loaded.language)
    return DocSpec(meta["source_id"], loaded.text, meta)


_LINKED_KEYS = {
    "briefing", "source_id", "outlet", "outlet_original", "title", "original_title", "source_type", "language",
    "date", "url", "cited_in", "label",
}


def expand_paths(paths: Iterable[Path], errors: list[dict[str, str]]) -> list[Path]:
    """Files named directly, plus the supported files inside named folders."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                errors.append({"path": str(path), "error": "folder holds no supported files"})
            out.extend(found)
        else:
            out.append(path)
    return out


def file_documents(
    paths: list[Path], settings: Settings, errors: list[dict[str, str]],
    link_to: dict[str, Any] | None = None,
) -> list[DocSpec]:
    """One document a file; a file that cannot be read becomes an error entry, never an exception."""
    from ingest.loaders import load_path

    specs: list[DocSpec] = []
    used: set[str] = set()
    for path in paths:
        try:
            if link_to is not None:
                specs.append(source_document(path, link_to, link_to.get("cited_in"), settings))
                continue
            loaded = load_path(path, max_bytes=int(settings.max_file_mb * 1e6))
        except InputFileError as exc:
            errors.append({"path": exc.path, "error": exc.problem})
            continue
        doc_id = slugify(path.stem)
        if doc_id in used:
            doc_id = f"{doc_id}-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
        used.add(doc_id)
        specs.append(
            DocSpec(
                doc_id,
                loaded.text,
                {
                    "kind": "document",
                    "source_id": doc_id,
                    "title": loaded.title or path.name,
                    "language": loaded.language,
                    "path": str(path),
                    "format": loaded.format,
                },
            )
        )
    return specs


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------


def _chunk_metadata(spec: DocSpec, chunk: Any) -> dict[str, Any]:
    from briefing_core.text import detect_language

    meta = spec.metadata
    return {
        "doc_id": spec.doc_id,
        "title": meta.get("title") or spec.doc_id,
        "outlet": meta.get("outlet") or "",
        "language": meta.get("language") or "",
        "chunk_language": detect_language(chunk.text),
        "date": meta.get("date") or "",
        "kind": meta.get("kind") or "document",
        "cited_in": meta.get("cited_in") or "",
        "source_id": meta.get("source_id") or spec.doc_id,
        # Every chunk says which briefing it belongs to ("" for a document outside any), so a
        # question scoped to a briefing is filtered inside the vector query itself.
        "briefing": meta.get("briefing") or "",
        "start": chunk.start,
        "end": chunk.end,
        "index": chunk.index,
    }


def _content_hash(spec: DocSpec, settings: Settings) -> str:
    payload = json.dumps(
        {
            "text": spec.text,
            "meta": {k: v for k, v in sorted(spec.metadata.items()) if v is not None},
            "chunking": [settings.chunk_chars, settings.chunk_overlap_sentences, _CHUNKER_VERSION],
        },
        ensure_ascii=False,
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# Bump when chunking rules change, so stores re-chunk on the next ingest.
_CHUNKER_VERSION = 3


def _same(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(stored.get(k) == v for k, v in wanted.items())


class _Plan:
    """One document's pending change."""

    def __init__(self, spec: DocSpec, digest: str, chunks: list[Any], had_record: bool):
        self.spec = spec
        self.digest = digest
        self.chunks = chunks
        self.had_record = had_record
        self.add: list[tuple[Any, dict[str, Any]]] = []
        self.update: list[tuple[str, dict[str, Any]]] = []
        self.remove: list[str] = []


def write_documents(
    store: Any,
    embedder: Any,
    specs: list[DocSpec],
    settings: Settings,
    report: IngestReport,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    window: int | None = None,
    overlap: bool | None = None,
) -> None:
    """Bring the store in line with `specs`, touching only what changed.

    Work goes in windows of about `window` new chunks (default: the `ingest_window` setting). With
    `overlap` (default: the `ingest_overlap` setting) and more than one window, a forked child encodes
    window n+1 while this process writes window n and plans the next (ingest/encoding.py)."""
    from ingest.chunking import chunk_text
    from ingest.encoding import ForkedEncoder, InlineEncoder, can_fork

    overlap = settings.ingest_overlap if overlap is None else overlap
    window = window or settings.ingest_window
    known = store.document_metadata()
    pending: list[_Plan] = []
    pending_texts = 0
    done = 0
    total = len(specs)
    encoder: Any = None
    # The window whose texts the encoder holds: at most one, so neither side ever blocks sending to
    # the other while both are busy.
    in_flight: tuple[list[_Plan], bool] | None = None

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if on_progress:
            on_progress(done, total)

    def flush(final: bool) -> None:
        nonlocal pending, pending_texts, encoder, in_flight
        previous = in_flight
        # Collect the window in flight before handing over the next one (see `in_flight`).
        previous_vectors = encoder.result() if previous is not None and previous[1] else None
        in_flight = None
        if pending:
            texts = [chunk.text for plan in pending for chunk, _ in plan.add]
            if texts:
                if encoder is None:
                    fork = overlap and not final and can_fork(embedder)
                    encoder = (ForkedEncoder if fork else InlineEncoder)(embedder, settings.embed_batch_size)
                encoder.submit(texts)
            in_flight = (pending, bool(texts))
            pending, pending_texts = [], 0
        if previous is not None:
            _apply(store, previous[0], previous_vectors, report)
            progress(len(previous[0]))
        if final and in_flight is not None:
            plans, submitted = in_flight
            in_flight = None
            _apply(store, plans, encoder.result() if submitted else None, report)
            progress(len(plans))

    try:
        for spec in specs:
            digest = _content_hash(spec, settings)
            record = known.get(spec.doc_id)
            report.documents += 1
            if record and record.get("content_hash") == digest and record.get("complete") is True:
                report.chunks_unchanged += int(record.get("chunk_count", 0))
                progress(1)
                continue
            chunks = chunk_text(
                spec.doc_id, spec.text, max_chars=settings.chunk_chars,
                overlap_sentences=settings.chunk_overlap_sentences,
            )
            # An excerpt document's header is our description of the source, not its words: it is
            # stored for reading but not indexed, so it never crowds out real passages.
            body_start = int(spec.metadata.get("body_start", 0))
            chunks = [c for c in chunks if c.end > body_start]
            plan = _Plan(spec, digest, chunks, had_record=record is not None)
            stored = store.chunk_metadata_for(spec.doc_id)
            wanted_ids = set()
            for chunk in chunks:
                meta = _chunk_metadata(spec, chunk)
                wanted_ids.add(chunk.id)
                if chunk.id not in stored:
                    plan.add.append((chunk, meta))
                elif not _same(stored[chunk.id], meta):
                    plan.update.append((chunk.id, meta))
                else:
                    report.chunks_unchanged += 1
            plan.remove = [cid for cid in stored if cid not in wanted_ids]
            pending.append(plan)
            pending_texts += len(plan.add)
            if pending_texts >= window:
                flush(final=False)
        flush(final=True)
    finally:
        if encoder is not None:
            encoder.close()


def _apply(store: Any, plans: list[_Plan], vectors: Any, report: IngestReport) -> None:
    """Write a window of plans with one store call per kind of change (each Chroma call has a fixed
    cost of several ms; one a document made writes the dominant cost of ingest after encoding).

    Order keeps crash safety: stale marks, then chunk changes, then complete records."""
    from briefing_core.store import DocumentRecord

    if not plans:
        return
    report.texts_embedded += sum(len(plan.add) for plan in plans)
    # Mark the records stale first: if we die below, the next run will not trust them.
    stale = [plan.spec.doc_id for plan in plans if plan.had_record]
    if stale:
        store.docs.update(ids=stale, metadatas=[{"complete": False} for _ in stale])
    remove = [cid for plan in plans for cid in plan.remove]
    if remove:
        store.delete_chunks(remove)
        report.chunks_removed += len(remove)
    add = [(chunk, meta) for plan in plans for chunk, meta in plan.add]
    if add:
        store.add_chunks([c.id for c, _ in add], [c.text for c, _ in add], [m for _, m in add], vectors)
        report.chunks_added += len(add)
    update = [(cid, meta) for plan in plans for cid, meta in plan.update]
    if update:
        store.update_chunk_metadata([cid for cid, _ in update], [m for _, m in update])
        report.chunks_updated += len(update)
    records = []
    for plan in plans:
        meta = dict(plan.spec.metadata)
        meta.update(
            content_hash=plan.digest,
            complete=True,
            chunk_count=len(plan.chunks),
            chars=len(plan.spec.text),
            ingested_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        records.append(DocumentRecord(plan.spec.doc_id, plan.spec.text, meta))
    # Last, after every chunk change of the window: a record marked complete vouches for its chunks.
    store.put_documents(records)


def prune(store: Any, keep: set[str], report: IngestReport, others: set[str] = frozenset()) -> None:
    """Remove documents not in `keep`, except those of the briefings in `others` (a run that ingests
    one briefing never prunes another), and chunks whose document has no record."""
    documents = store.document_metadata()
    for doc_id, meta in documents.items():
        if doc_id not in keep and meta.get("briefing") not in others:
            report.chunks_removed += store.delete_document(doc_id)
    keep = keep | {d for d, m in documents.items() if m.get("briefing") in others}
    orphans = [cid for cid, meta in store.all_chunk_metadata().items() if meta.get("doc_id") not in keep]
    if orphans:
        store.delete_chunks(orphans)
        report.chunks_removed += len(orphans)


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def ingest(
    settings: Settings,
    paths: list[Path] | None = None,
    manifest_path: Path | None = None,
    *,
    prune_missing: bool = False,
    source_id: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    store: Any = None,
    embedder: Any = None,
    overlap: bool | None = None,
) -> IngestReport:
    """Ingest files and/or a manifest (the bundled briefing when neither is given).

    Per-file problems land in `report.errors`; the rest of the batch is still ingested. `overlap`
    overrides the `ingest_overlap` setting (a multi-threaded caller such as the server must not fork).
    """
    from briefing_core.embeddings import make_embedder
    from briefing_core.store import KNOWN_DIMENSIONS, open_store, write_lock

    started = time.perf_counter()
    report = IngestReport()
    paths = list(paths or [])
    if not paths and manifest_path is None:
        manifest_path = settings.manifest

    specs: list[DocSpec] = []
    if manifest_path is not None:
        try:
            manifest = load_manifest(manifest_path)
            specs.extend(manifest_documents(manifest, settings, report.errors))
        except InputFileError as exc:
            report.errors.append({"path": exc.path, "error": exc.problem})
        except ManifestError as exc:
            report.errors.append({"path": str(manifest_path), "error": str(exc)})

    with write_lock(settings):
        if store is None and embedder is None and settings.embedder in KNOWN_DIMENSIONS:
            # A packaged embedder's name and dimension are known without loading it: a store built
            # with another embedder is refused now, not after seconds of loading a model.
            store = open_store(settings)
        embedder = embedder or make_embedder(settings.embedder, settings.embed_batch_size, settings.embed_threads)
        store = store or open_store(settings, embedder)
        link_to = None
        if source_id is not None:
            link_to = _linked_source(store, source_id)
        files = expand_paths(paths, report.errors)
        specs.extend(file_documents(files, settings, report.errors, link_to=link_to))
        _check_unique(specs)
        known = store.document_metadata()
        specs = _outside_other_briefings(specs, known, report.errors)
        write_documents(store, embedder, specs, settings, report, on_progress, overlap=overlap)
        if prune_missing:
            ours = {s.metadata.get("briefing") or None for s in specs}
            others = {str(m["briefing"]) for m in known.values() if m.get("briefing")} - ours
            prune(store, {s.doc_id for s in specs}, report, others)
        if report.wrote_anything:
            store.bump_generation()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _linked_source(store: Any, source_id: str) -> dict[str, Any]:
    """Metadata of a known cited source, so that its full text joins the same source id."""
    for meta in store.document_metadata().values():
        if meta.get("source_id") == source_id and meta.get("kind") in {"quoted excerpt", "cited source"}:
            return {k: v for k, v in meta.items() if k in _LINKED_KEYS}
    known = sorted(
        {m.get("source_id", "") for m in store.document_metadata().values() if m.get("kind") != "document"}
    )
    raise UserError(f"unknown source id {source_id!r}; known sources: {', '.join(known) or 'none'}")


def _outside_other_briefings(specs: list[DocSpec], known: dict[str, dict[str, Any]],
                             errors: list[dict[str, str]]) -> list[DocSpec]:
    """Document ids are the store's: a document whose id another briefing already holds is refused
    (an error entry; the rest of the batch goes on), never written over the other briefing's."""
    kept = []
    for spec in specs:
        held = known.get(spec.doc_id, {}).get("briefing")
        mine = spec.metadata.get("briefing")
        if held and held != mine:
            errors.append({
                "path": str(spec.metadata.get("path") or spec.doc_id),
                "error": f"document id {spec.doc_id!r} belongs to briefing {held!r} in the store; give it "
                         f"another id{' in briefing ' + repr(mine) if mine else ''}, or delete briefing {held!r} first",
            })
            continue
        kept.append(spec)
    return kept


def _check_unique(specs: list[DocSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.doc_id in seen:
            raise UserError(f"two documents in this run have the id {spec.doc_id!r}")
        seen.add(spec.doc_id)


__all__ = ["IngestReport", "DocSpec", "ingest"]
