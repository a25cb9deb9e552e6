"""Bad files in one batch, at the sizes the reliability notes name: a clear per-file error each, and every
other file of the batch ingested. tests/ingest/test_pipeline.py covers the kinds of bad file with a tiny
size limit; this adds the 50 MB file at the default limit (through the CLI), a legacy-encoded file that
must be decoded rather than refused, and a 50 MB upload to the service.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from briefing_core.store import open_store

from .conftest import record_figures, run_cli, service_settings, store_env

pytestmark = pytest.mark.timeout(600)

GOOD = (
    "Field report\n\nThe survey team walked the northern boundary in two days. They replaced three markers.\n"
)
RUSSIAN = "Обзор прессы\n\nГенштаб считает, что система ПРО США угрожает ядерным силам России и Китая.\n"


def make_batch(folder: Path) -> tuple[dict[Path, str], list[Path]]:
    """Bad files (with words their error must contain) and good files."""
    folder.mkdir(parents=True)
    bad: dict[Path, str] = {}
    (folder / "empty.txt").write_bytes(b"")
    bad[folder / "empty.txt"] = "empty"
    (folder / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    bad[folder / "binary.txt"] = "binary"
    (folder / "truncated.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<<"
    )
    bad[folder / "truncated.pdf"] = "truncated"
    (folder / "undecodable.txt").write_bytes(bytes((i * 73 + 41) % 128 + 128 for i in range(600)))
    bad[folder / "undecodable.txt"] = "cannot decode"
    huge = folder / "huge.txt"
    with huge.open("wb") as handle:  # 50 MB, sparse: nothing is written
        handle.truncate(50_000_000)
    bad[huge] = "file is 50 MB, over the 20 MB limit (BRIEFING_MAX_FILE_MB)"
    unreadable = folder / "unreadable.txt"
    if os.geteuid() != 0:
        unreadable.write_text(GOOD)
        unreadable.chmod(0)
        bad[unreadable] = "permission denied"
    else:  # root reads any file regardless of mode: a FIFO is the unreadable path here
        os.mkfifo(unreadable)
        bad[unreadable] = "not a regular file"
    bad[folder / "missing.txt"] = "not found"
    good = [folder / "field-report.txt", folder / "press-review-cp1251.txt"]
    good[0].write_text(GOOD, encoding="utf-8")
    good[1].write_bytes(RUSSIAN.encode("cp1251"))  # a legacy encoding: decoded, not refused
    return bad, good


def test_bad_files_in_a_batch_are_per_file_errors_and_the_rest_is_ingested(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    bad, good = make_batch(tmp_path / "batch")
    store_dir = tmp_path / "store"
    started = time.monotonic()
    env = store_env(subprocess_env, store_dir)
    proc = run_cli(env, "ingest", *map(str, [*bad, *good]), "--json", timeout=300)
    elapsed = time.monotonic() - started
    if os.geteuid() != 0:
        (tmp_path / "batch" / "unreadable.txt").chmod(0o644)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    by_path = {e["path"]: e["error"] for e in report["errors"]}
    assert len(by_path) == len(report["errors"]) == len(bad), report["errors"]
    for path, words in bad.items():
        assert words.lower() in by_path[str(path)].lower(), (path, by_path.get(str(path)))
    assert report["documents"] == len(good) and report["chunks_added"] > 0
    store = open_store(service_settings(store_dir))
    assert set(store.document_metadata()) == {"field-report", "press-review-cp1251"}
    assert store.get_document("press-review-cp1251").text == RUSSIAN
    record_figures("bad-files", {"errors": report["errors"], "documents": report["documents"],
                                 "cli_seconds": round(elapsed, 2)})


def test_fifty_megabyte_upload_is_refused_with_413(tmp_path: Path) -> None:
    """The upload limit (25 MB by default) holds while the body streams in; nothing is ingested."""
    import threading

    import uvicorn

    from ingest.pipeline import ingest
    from service.shell.app import create_app
    from tests.helpers import free_port

    from .conftest import wait_status

    settings = service_settings(tmp_path / "store")
    assert ingest(settings).errors == []
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
            deadline = time.monotonic() + 30
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.05)
            wait_status(http, "/readyz", 200, 180)
            boundary = "b0undary"
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="huge.txt"\r\n'
                    "Content-Type: text/plain\r\n\r\n").encode()

            def body() -> Any:
                yield head
                for _ in range(50 * 16):
                    yield b"word " * 13_107 + b"\n"  # 64 KB
                yield f"\r\n--{boundary}--\r\n".encode()

            started = time.monotonic()
            r = http.post("/v1/ingest", content=body(),
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            elapsed = time.monotonic() - started
            assert r.status_code == 413, r.text
            assert "too large" in r.json()["error"]
            docs = http.get("/v1/documents").json()
            assert all(d["doc_id"] != "huge" for d in docs)
            record_figures("upload-50mb", {"status": r.status_code, "seconds": round(elapsed, 2)})
    finally:
        server.should_exit = True
        thread.join(timeout=15)
