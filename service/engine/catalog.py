"""What the store holds, in the shapes the CLI and the HTTP API share."""

from __future__ import annotations

import json
from typing import Any

from briefing_core.settings import Settings
from briefing_core.store import Store, open_store


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
    }


def sources_from_metadata(docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry for the article(s) and each cited source, whether known by excerpt or full text."""
    by_source: dict[str, dict[str, Any]] = {}
    full: set[str] = set()
    documents: dict[str, list[str]] = {}
    for doc_id, meta in sorted(docs.items()):
        kind = meta.get("kind")
        if kind not in {"article", "quoted excerpt", "cited source"}:
            continue
        sid = meta.get("source_id") or doc_id
        documents.setdefault(sid, []).append(doc_id)
        if kind == "cited source":
            full.add(sid)
        entry = by_source.get(sid)
        # The excerpt record carries the article's quotes; prefer it as the description.
        if entry is None or kind in {"quoted excerpt", "article"}:
            by_source[sid] = {
                "source_id": sid,
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
    for sid, entry in by_source.items():
        entry["full_text"] = entry["kind"] == "article" or sid in full
        entry["documents"] = documents.get(sid, [])
        out.append(entry)
    out.sort(key=lambda e: (e["kind"] != "article", e["source_id"]))
    return out


def list_sources(settings: Settings, store: Store | None = None) -> list[dict[str, Any]]:
    store = store or open_store(settings)
    return sources_from_metadata(store.document_metadata())


def list_documents(settings: Settings, with_text: bool = False, store: Store | None = None) -> list[dict[str, Any]]:
    store = store or open_store(settings)
    if with_text:
        items = []
        for record in store.documents():
            entry = document_summary(record.doc_id, record.metadata)
            entry["text"] = record.text
            items.append(entry)
    else:
        items = [document_summary(d, m) for d, m in store.document_metadata().items()]
    items.sort(key=lambda e: (e["kind"] != "article", e["doc_id"]))
    return items


def show_document(settings: Settings, doc_id: str, store: Store | None = None) -> dict[str, Any]:
    store = store or open_store(settings)
    record = store.get_document(doc_id)
    return {"doc_id": record.doc_id, "text": record.text, "metadata": record.metadata}
