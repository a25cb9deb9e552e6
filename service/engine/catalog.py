"""What the store holds, in the shapes the CLI and the HTTP API share."""

from __future__ import annotations

import json
from typing import Any

from briefing_core.errors import NotFoundError
from briefing_core.settings import Settings
from briefing_core.store import Store, open_store

BRIEFING_KINDS = ("article", "quoted excerpt", "cited source")
"""The kinds of document a briefing is made of (anything else is a plain document)."""


def _json_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value:
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError:
            return [value]
        return loaded if isinstance(loaded, list) else [loaded]
    return []


def document_summary(doc_id: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "title": meta.get("title") or doc_id,
        "kind": meta.get("kind", "document"),
        "language": meta.get("language") or "",
        "chars": int(meta.get("chars", 0)),
        "source_id": meta.get("source_id") or doc_id,
        "complete": meta.get("complete", True) is True,
        "briefing": meta.get("briefing") or None,
    }


def briefings_from_metadata(docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per briefing the store holds: its article and how much of it there is."""
    out: dict[str, dict[str, Any]] = {}
    sources: dict[str, set[str]] = {}
    for doc_id, meta in sorted(docs.items()):
        briefing = meta.get("briefing")
        if not briefing:
            continue
        entry = out.setdefault(str(briefing), {
            "id": str(briefing), "title": None, "subtitle": None, "outlet": None, "date": None, "author": None,
            "url": None, "language": None, "article": None, "sources": 0, "documents": 0, "chunks": 0,
        })
        entry["documents"] += 1
        entry["chunks"] += int(meta.get("chunk_count", 0))
        if meta.get("kind") == "article":
            entry.update({k: meta.get(k) for k in ("title", "subtitle", "outlet", "date", "author", "url", "language")})
            entry["article"] = doc_id
        elif meta.get("kind") in BRIEFING_KINDS:
            sources.setdefault(str(briefing), set()).add(str(meta.get("source_id") or doc_id))
    for briefing, entry in out.items():
        entry["sources"] = len(sources.get(briefing, ()))
    return sorted(out.values(), key=lambda e: e["id"])


def briefing_ids(docs: dict[str, dict[str, Any]]) -> list[str]:
    """The ids of the briefings these documents belong to, sorted."""
    return sorted({str(m["briefing"]) for m in docs.values() if m.get("briefing")})


def check_briefing(known: list[str], briefing: str | None) -> None:
    """An unknown briefing id is the caller's mistake: say which ones there are."""
    if briefing is not None and briefing not in known:
        raise NotFoundError(f"no briefing with id {briefing!r}; the store holds: {', '.join(known) or 'none'}")


def sources_from_metadata(docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry for the article(s) and each cited source, whether known by excerpt or full text."""
    by_source: dict[tuple[str, str], dict[str, Any]] = {}
    full: set[tuple[str, str]] = set()
    documents: dict[tuple[str, str], list[str]] = {}
    for doc_id, meta in sorted(docs.items()):
        kind = meta.get("kind")
        if kind not in BRIEFING_KINDS:
            continue
        sid = meta.get("source_id") or doc_id
        key = (str(meta.get("briefing") or ""), sid)
        documents.setdefault(key, []).append(doc_id)
        if kind == "cited source":
            full.add(key)
        entry = by_source.get(key)
        # The excerpt record carries the article's quotes; prefer it as the description.
        if entry is None or kind in {"quoted excerpt", "article"}:
            by_source[key] = {
                "source_id": sid,
                "briefing": meta.get("briefing") or None,
                "kind": "article" if kind == "article" else "cited",
                "title": meta.get("title"),
                "original_title": meta.get("original_title"),
                "outlet": meta.get("outlet"),
                "outlet_original": meta.get("outlet_original"),
                "type": meta.get("source_type"),
                "language": meta.get("language") or "",
                "date": meta.get("date"),
                "url": meta.get("url"),
                "cited_in": meta.get("cited_in") or None,
                "quotes": _json_list(meta.get("quotes")),
                "label": meta.get("label") or meta.get("title"),
            }
    out = []
    for key, entry in by_source.items():
        entry["full_text"] = entry["kind"] == "article" or key in full
        entry["documents"] = documents.get(key, [])
        out.append(entry)
    # One briefing's entries together, each briefing's article first (a store of one briefing lists
    # as it always did: the article, then the sources by id).
    out.sort(key=lambda e: (e["briefing"] or "", e["kind"] != "article", e["source_id"]))
    return out


def list_briefings(settings: Settings, store: Store | None = None) -> list[dict[str, Any]]:
    store = store or open_store(settings)
    return briefings_from_metadata(store.document_metadata())


def list_sources(settings: Settings, store: Store | None = None, briefing: str | None = None) -> list[dict[str, Any]]:
    store = store or open_store(settings)
    docs = store.document_metadata()
    check_briefing(briefing_ids(docs), briefing)
    entries = sources_from_metadata(docs)
    return [e for e in entries if briefing is None or e["briefing"] == briefing]


def list_documents(settings: Settings, with_text: bool = False, store: Store | None = None,
                   briefing: str | None = None) -> list[dict[str, Any]]:
    store = store or open_store(settings)
    if with_text:
        items = []
        for record in store.documents():
            entry = document_summary(record.doc_id, record.metadata)
            entry["text"] = record.text
            items.append(entry)
    else:
        items = [document_summary(d, m) for d, m in store.document_metadata().items()]
    if briefing is not None:
        check_briefing(sorted({e["briefing"] for e in items if e["briefing"]}), briefing)
        items = [e for e in items if e["briefing"] == briefing]
    items.sort(key=lambda e: (e["kind"] != "article", e["doc_id"]))
    return items


def delete_briefing(store: Store, briefing: str) -> dict[str, Any]:
    """Remove exactly one briefing's documents and chunks."""
    check_briefing(briefing_ids(store.document_metadata()), briefing)
    documents, chunks = store.delete_briefing(briefing)
    return {"briefing": briefing, "documents_removed": documents, "chunks_removed": chunks}


def show_document(settings: Settings, doc_id: str, store: Store | None = None) -> dict[str, Any]:
    store = store or open_store(settings)
    record = store.get_document(doc_id)
    return {"doc_id": record.doc_id, "text": record.text, "metadata": record.metadata}
