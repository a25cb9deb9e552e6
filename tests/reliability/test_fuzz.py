"""Fuzzing: arbitrary text through the whole ingest pipeline, and generated requests against the API.

* Property (hypothesis): a .txt file of any Unicode text (any script, control characters, CR/CRLF, BOMs,
  zero-width characters, NUL) is either ingested — its stored text is the file's text with line endings
  normalised and a leading BOM dropped, and every stored chunk is exactly `text[start:end]` of it, with
  ids unique and the record's chunk count equal to the chunks stored — or refused with a per-file error
  entry (empty, white space only, binary), never an exception. tests/ingest/test_chunking.py covers the
  chunker alone on any text; this covers loader + chunker + store together.
* Schemathesis (v4, Python API, in process against the ASGI app): every operation of the service's own
  OpenAPI schema, 30 generated requests each (positive and negative), with a loaded, ready service on a
  real store. No request may get a 5xx. No operation is skipped: the admin routes (ingest uploads and
  delete) are fuzzed too, on this test's own store.
"""

from __future__ import annotations

import itertools
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from ingest.pipeline import ingest
from service.shell.app import create_app
from briefing_core.embeddings import make_embedder
from briefing_core.store import open_store

from .conftest import record_figures, service_settings, wait_status

pytestmark = pytest.mark.timeout(1200)

# ---------------------------------------------------------------------------------------
# Any text through the whole pipeline
# ---------------------------------------------------------------------------------------

WORDS = [
    "The", "ferry", "carried", "apples", "to", "Rason", "in", "May", "2017", "U.S.", "Dr.", "e.g.", "...",
    "俄罗斯", "太平洋舰队", "朝鲜", "北京", "。", "，", "！", "？", "“", "”", "……",
    "Генштаб", "ПРО", "США", "т.е.", "г.", "«", "»", "—", "Почему", "это", "важно",
    ".", "!", "?", ";", ":", ",", " ", " ", " ", "\n", "\n\n", "\r\n", "\r", "\t", "\u00a0", "\u3000",
    "\u200b",
    "\ufeff", "\u202e", "e\u0301", "👍🏽", "𝔘𝔫𝔦", "\x0b", "\x0c", "\u2028",
]
TEXT = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=250).map("".join),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=600),
    st.lists(st.sampled_from(WORDS) | st.text(max_size=5), max_size=400).map(" ".join),
)
_NEWLINES = re.compile(r"\r\n?")


def _unprintable(text: str, unassigned: bool) -> float:
    """Share of the non-space characters that are controls, private use (or unassigned): text with
    more than 2% of them is refused as binary. Unassigned is a bound either way, since this Python's
    Unicode tables may be older than the loader's."""
    odd = ("Cc", "Co", "Cs", "Cn") if unassigned else ("Cc", "Co", "Cs")
    # The information separators \x1c-\x1f are controls, though str.isspace() says otherwise.
    visible = [ch for ch in text if not ch.isspace() or ch in "\x1c\x1d\x1e\x1f"]
    return sum(unicodedata.category(ch) in odd for ch in visible) / len(visible) if visible else 0.0
_counter = itertools.count()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any, Path]:
    settings_ = service_settings(tmp_path_factory.mktemp("fuzz-store"))
    embedder = make_embedder(settings_.embedder)
    store = open_store(settings_, embedder)
    return settings_, embedder, store, tmp_path_factory.mktemp("fuzz-files")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(text=TEXT)
def test_any_text_file_is_ingested_with_exact_offsets_or_refused_cleanly(
    pipeline: tuple[Any, Any, Any, Path], text: str
) -> None:
    settings_, embedder, store, folder = pipeline
    path = folder / f"fuzz-{next(_counter):05d}.txt"
    path.write_bytes(text.encode("utf-8"))
    report = ingest(settings_, [path], store=store, embedder=embedder)
    expected = _NEWLINES.sub("\n", text.removeprefix("\ufeff").removeprefix("\ufeff"))
    doc_id = path.stem
    if report.errors:
        assert report.documents == 0 and len(report.errors) == 1, report.errors
        error = report.errors[0]
        assert error["path"] == str(path)
        assert re.match(r"file is empty|binary file", error["error"]), error
        if error["error"].startswith("binary file"):
            assert "\x00" in text or _unprintable(text, unassigned=True) > 0.02, error
        else:
            assert not expected.strip(), error
        return
    assert _unprintable(text, unassigned=False) <= 0.02
    assert report.documents == 1
    record = store.get_document(doc_id)
    assert record.text == expected
    got = store.chunks.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
    assert len(got["ids"]) == len(set(got["ids"])) == int(record.metadata["chunk_count"])
    for chunk, meta in zip(got["documents"], got["metadatas"], strict=True):
        assert record.text[int(meta["start"]) : int(meta["end"])] == chunk
        assert chunk.strip(), "no chunk is only white space"
    if got["ids"]:
        assert report.chunks_added == len(got["ids"])


# ---------------------------------------------------------------------------------------
# Generated requests against the service's OpenAPI schema
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ready_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    s = service_settings(tmp_path_factory.mktemp("schemathesis-store"), max_body_bytes=200_000,
                         max_upload_bytes=200_000)
    assert ingest(s).errors == []
    app = create_app(s)
    with TestClient(app) as client:
        wait_status(client, "/readyz", 200, 180)
        yield app  # stays ready: readiness, once reached, survives later lifespan cycles


@pytest.fixture(scope="module")
def api_schema(ready_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", ready_app)


def _operations() -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """Every operation of the schema (built from an app that loads nothing), and those that take no
    input at all (no parameter, no body): no schema-violating request exists for them."""
    spec = create_app(service_settings(Path(tempfile.gettempdir()) / "openapi-only")).openapi()
    methods = {"get", "post", "put", "patch", "delete"}
    ops, no_input = [], set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in methods:
                ops.append((method.upper(), path))
                if not op.get("parameters") and not op.get("requestBody"):
                    no_input.add((method.upper(), path))
    return ops, no_input


OPERATIONS, NO_INPUT = _operations()
STATUSES: dict[str, dict[int, int]] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_statuses() -> Iterator[None]:
    yield
    if STATUSES:
        record_figures("schemathesis", STATUSES)


def test_every_route_is_in_the_schema() -> None:
    paths = {p for _, p in OPERATIONS}
    assert {"/v1/ask", "/v1/ask/stream", "/v1/chat/completions", "/v1/ingest", "/v1/documents/{doc_id}",
            "/readyz", "/healthz"} <= paths


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_generated_request_gets_a_server_error(api_schema: Any, method: str, path: str, mode: str) -> None:
    """15 positive (schema-valid) and 15 negative (schema-violating) requests per operation."""
    if mode == "negative" and (method, path) in NO_INPUT:
        pytest.skip("the operation takes no parameter and no body: no schema-violating request exists")
    operation = api_schema[path][method]
    seen = STATUSES.setdefault(f"{method} {path} {mode}", {})

    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        response = case.call()
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}\n"
            f"{case.as_curl_command()}"
        )
        if response.status_code >= 400:
            body = response.json()
            assert {"error", "request_id"} <= set(body), body

    run()
