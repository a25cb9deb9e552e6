"""The catalog and the admin routes: GET /v1/briefings, GET /v1/sources, GET /v1/documents,
GET /v1/documents/{id}; POST /v1/ingest, DELETE /v1/documents/{id} and DELETE /v1/briefings/{id}
(these three need the admin key, see deps.py)."""

import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from service.shell.deps import AdminAuth, QADep, StateDep
from service.shell.http_errors import Unprocessable
from service.engine.catalog import BRIEFING_KINDS
from service.shell.models import BriefingId
from service.shell.state import ServiceState, run_blocking

INGEST_PATH = "/v1/ingest"
MAX_UPLOAD_FILES = 50
_FILE_FIELDS = ("files", "file", "files[]")

router = APIRouter()


class IngestJSON(BaseModel):
    model_config = ConfigDict(extra="forbid")
    manifest: str = Field(min_length=1, max_length=4096, description="A manifest path on the server (.yaml).")


_INGEST_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "source_id": {"type": "string", "description": "Link the files to this source."},
                        "manifest": {"type": "string", "description": "A manifest path on the server."},
                    },
                }
            },
            "application/json": {"schema": IngestJSON.model_json_schema()},
        },
    }
}


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str | None, index: int) -> str:
    """A file name made from the client's, never a path: last component only, ASCII letters, digits,
    '.', '_' and '-', no leading dot."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKC", base)
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("-", stem).strip(".-_")[:80] or f"upload-{index}"
    suffix = _UNSAFE.sub("", suffix).lower()[:10]
    return f"{stem}.{suffix}" if suffix else stem


def _unique(name: str, used: set[str]) -> str:
    """File names (and so document ids) distinct within one upload."""
    from ingest.pipeline import slugify

    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    candidate, n = name, 1
    while slugify(Path(candidate).stem) in used:
        n += 1
        candidate = f"{stem}-{n}" + (f".{suffix}" if suffix else "")
    used.add(slugify(Path(candidate).stem))
    return candidate


def _ingest_sync(state: ServiceState, qa: Any, uploads: list[tuple[str, Path]], manifest: str | None,
                 source_id: str | None) -> dict[str, Any]:
    from ingest.pipeline import IngestReport, ingest, slugify

    with state.write_lock:
        errors: list[dict[str, str]] = []
        accepted: list[tuple[str, Path]] = []
        known = qa.store.document_metadata() if uploads and source_id is None else {}
        for name, path in uploads:
            doc_id = source_id or slugify(path.stem)
            kind = known.get(doc_id, {}).get("kind")
            if source_id is None and kind in BRIEFING_KINDS:
                # An upload must not silently replace the briefing's own records.
                problem = f"would replace the {kind} {doc_id!r}; rename the file"
                errors.append({"path": name, "error": problem})
                continue
            accepted.append((doc_id, path))
        if not accepted and not manifest:
            report = IngestReport(errors=errors)
        else:
            report = ingest(
                state.settings, [p for _, p in accepted], Path(manifest).expanduser() if manifest else None,
                source_id=source_id, store=qa.store, embedder=qa.searcher.embedder,
                # Forking a process with live server threads can leave the child on a lock no
                # thread will release.
                overlap=False,
            )
            report.errors[:0] = errors
    qa.searcher.refresh(force=True)
    failed = {e.get("path") for e in report.errors}
    out = report.to_dict()
    out["doc_ids"] = list(dict.fromkeys(d for d, p in accepted if str(p) not in failed))
    return out


def _clean_report(report: dict[str, Any], tmpdir: Path) -> dict[str, Any]:
    """Error paths name the uploaded file, not the server's temporary folder."""
    prefix = str(tmpdir) + "/"
    for err in report.get("errors", []):
        for key in ("path", "error"):
            err[key] = str(err.get(key, "")).replace(prefix, "").replace(str(tmpdir), "")
    return report


def _delete_sync(state: ServiceState, qa: Any, doc_id: str) -> int:
    from briefing_core.store import write_lock

    with state.write_lock, write_lock(state.settings):
        store = qa.store
        store.get_document(doc_id)  # NotFoundError -> 404
        removed = store.delete_document(doc_id)
        store.bump_generation()
    qa.searcher.refresh(force=True)
    return int(removed)


_BRIEFING_QUERY = Query(None, description="Only this briefing's entries (GET /v1/briefings lists them).")


@router.get("/briefings", tags=["catalog"], summary="The briefings the store holds")
async def briefings(qa: QADep, state: StateDep) -> JSONResponse:
    """Each briefing's id, its article (title, outlet, date, author) and how many sources, documents
    and chunks of it are stored."""
    from service.engine.catalog import list_briefings

    return JSONResponse({"briefings": await run_blocking(state, list_briefings, state.settings, store=qa.store)})


@router.get("/sources", tags=["catalog"], summary="The article and the sources it cites")
async def sources(qa: QADep, state: StateDep, briefing: BriefingId | None = _BRIEFING_QUERY) -> JSONResponse:
    """Every entry carries `briefing`, the id of the briefing it belongs to."""
    from service.engine.catalog import list_sources

    return JSONResponse(await run_blocking(state, list_sources, state.settings, store=qa.store, briefing=briefing))


@router.get("/documents", tags=["catalog"], summary="The stored documents")
async def documents(qa: QADep, state: StateDep, with_text: bool = False,
                    briefing: BriefingId | None = _BRIEFING_QUERY) -> JSONResponse:
    """Every entry carries `briefing` (null for a document outside any briefing)."""
    from service.engine.catalog import list_documents

    return JSONResponse(await run_blocking(state, list_documents, state.settings, with_text, store=qa.store,
                                           briefing=briefing))


@router.get("/documents/{doc_id}", tags=["catalog"], summary="One document's stored text and metadata")
async def document(doc_id: str, qa: QADep, state: StateDep) -> JSONResponse:
    """Citations' `start`/`end` are character (code point) offsets into `text`."""
    from service.engine.catalog import show_document

    return JSONResponse(await run_blocking(state, show_document, state.settings, doc_id, store=qa.store))


@router.post(
    "/ingest", tags=["admin"], summary="Ingest uploaded files and/or a manifest on the server",
    dependencies=[AdminAuth], openapi_extra=_INGEST_OPENAPI,
)
async def ingest_route(request: Request, qa: QADep, state: StateDep) -> JSONResponse:
    """`multipart/form-data` with `files` (one or more; .txt .md .html .pdf), optional `source_id`
    (link the files as that cited source's full text) and optional `manifest`; or JSON
    `{"manifest": "path/on/server.yaml"}`. Returns the ingest report; a file that cannot be read
    is an entry in `errors`, the rest is still ingested."""
    content_type = request.headers.get("content-type", "").lower()
    manifest: str | None = None
    source_id: str | None = None
    tmpdir = Path(tempfile.mkdtemp(prefix="briefing-upload-"))
    try:
        uploads: list[tuple[str, Path]] = []
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=20)
            used: set[str] = set()
            for key, value in form.multi_items():
                if isinstance(value, UploadFile) and key in _FILE_FIELDS:
                    name = _unique(safe_filename(value.filename, len(uploads) + 1), used)
                    target = tmpdir / name
                    with target.open("wb") as out:
                        while block := await value.read(1 << 20):
                            out.write(block)
                    await value.close()
                    uploads.append((name, target))
                elif key == "source_id" and isinstance(value, str):
                    source_id = value.strip() or None
                elif key == "manifest" and isinstance(value, str):
                    manifest = value.strip() or None
                else:
                    if isinstance(value, UploadFile):
                        await value.close()
                    raise Unprocessable(
                        f"unknown form field {key[:40]!r}; use files, source_id, manifest"
                    )
        elif content_type.startswith("application/json"):
            try:
                manifest = IngestJSON.model_validate_json(await request.body()).manifest
            except ValidationError as exc:
                raise RequestValidationError(exc.errors(include_input=False)) from None
        else:
            raise Unprocessable("send multipart/form-data with files, or JSON {\"manifest\": path}")
        if not uploads and not manifest:
            raise Unprocessable("nothing to ingest: upload files or name a manifest")
        if manifest and Path(manifest).suffix.lower() not in (".yaml", ".yml"):
            raise Unprocessable("the manifest must be a .yaml or .yml file")
        report = await run_blocking(state, _ingest_sync, state, qa, uploads, manifest, source_id)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return JSONResponse(_clean_report(report, tmpdir))


def _delete_briefing_sync(state: ServiceState, qa: Any, briefing: str) -> dict[str, Any]:
    from briefing_core.store import write_lock
    from service.engine.catalog import delete_briefing

    with state.write_lock, write_lock(state.settings):
        store = qa.store
        removed = delete_briefing(store, briefing)  # NotFoundError -> 404
        store.bump_generation()
    qa.searcher.refresh(force=True)
    return removed


@router.delete(
    "/briefings/{briefing}", tags=["admin"], summary="Remove a briefing: its documents and their chunks",
    dependencies=[AdminAuth],
)
async def delete_briefing_route(qa: QADep, state: StateDep,
                                briefing: BriefingId = PathParam(description="The briefing's id")) -> JSONResponse:
    """Removes exactly the briefing's documents (article, quoted excerpts, sources' full texts) and their
    chunks; other briefings and documents are untouched."""
    removed = await run_blocking(state, _delete_briefing_sync, state, qa, briefing)
    return JSONResponse({**removed, "deleted": True})


@router.delete(
    "/documents/{doc_id}", tags=["admin"], summary="Remove a document and its chunks",
    dependencies=[AdminAuth],
)
async def delete_document(doc_id: str, qa: QADep, state: StateDep) -> JSONResponse:
    removed = await run_blocking(state, _delete_sync, state, qa, doc_id)
    return JSONResponse({"doc_id": doc_id, "deleted": True, "chunks_removed": removed})
