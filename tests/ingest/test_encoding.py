"""Ingest with the encoder in a forked child (ingest/encoding.py) against ingest in one process.

The embedders here are the real packaged embedder behind thin real classes that log which process
ran each call (to a file, since the child's memory is its own), or that misbehave in the child only.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.encoding import EncoderFailed, ForkedEncoder, InlineEncoder, can_fork
from ingest.pipeline import IngestReport, file_documents, write_documents
from briefing_core.embeddings import make_embedder
from briefing_core.store import open_store

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the forked encoder needs fork()")

WINDOW = 16  # new chunks a window: small, so a few dozen documents make several windows


class LoggingEmbedder:
    """The packaged embedder; every call appends the calling process id to `log`."""

    fork_safe = True

    def __init__(self, inner: Any, log: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.log = log
        self.parent = os.getpid()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.misbehave()
        with self.log.open("a") as fh:
            fh.write(f"{os.getpid()} {len(texts)}\n")
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def misbehave(self) -> None:
        pass

    def calls(self) -> dict[str, int]:
        """Texts embedded by this process ("parent") and by any other ("child")."""
        out = {"parent": 0, "child": 0}
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                pid, n = line.split()
                out["parent" if int(pid) == self.parent else "child"] += int(n)
        return out


class DiesInChild(LoggingEmbedder):
    def misbehave(self) -> None:
        if os.getpid() != self.parent:
            os._exit(9)


class FailsInChild(LoggingEmbedder):
    def misbehave(self) -> None:
        if os.getpid() != self.parent:
            raise ValueError("this text cannot be embedded")


@pytest.fixture(scope="module")
def packaged() -> Any:
    return make_embedder("use-multilingual")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("notes")
    for j in range(80):
        (folder / f"note-{j:02d}.txt").write_text(
            f"Note {j} on the talks. Delegation {j} arrived in Vladivostok on day {j}.\n\n"
            f"Сторона {j} предложила заморозку испытаний в обмен на паузу в учениях.\n\n"
            f"第{j}号备忘录：双方同意继续对话，避免局势升级。\n",
            encoding="utf-8",
        )
    return folder


def _ingest(settings: Any, embedder: Any, corpus: Path, *, overlap: bool) -> tuple[Any, IngestReport]:
    store = open_store(settings, embedder)
    report = IngestReport()
    specs = file_documents(sorted(corpus.glob("*.txt")), settings, report.errors)
    write_documents(store, embedder, specs, settings, report, window=WINDOW, overlap=overlap)
    return store, report


def _contents(store: Any) -> dict[str, tuple[str, dict[str, Any], np.ndarray]]:
    got = store.chunks.get(include=["documents", "metadatas", "embeddings"])
    return {
        cid: (text, meta, np.asarray(vec))
        for cid, text, meta, vec in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"],
                                        strict=True)
    }


def _records(store: Any) -> dict[str, dict[str, Any]]:
    return {
        doc_id: {k: v for k, v in meta.items() if k != "ingested_at"}
        for doc_id, meta in store.document_metadata().items()
    }


def test_forked_encoder_writes_the_same_store_as_one_process(
    settings_factory: Any, packaged: Any, corpus: Path, tmp_path: Path
) -> None:
    forked = LoggingEmbedder(packaged, tmp_path / "forked.log")
    serial = LoggingEmbedder(packaged, tmp_path / "serial.log")
    store_a, report_a = _ingest(settings_factory(store_dir=tmp_path / "a"), forked, corpus, overlap=True)
    store_b, report_b = _ingest(settings_factory(store_dir=tmp_path / "b"), serial, corpus, overlap=False)

    assert report_a.to_dict() | {"seconds": 0} == report_b.to_dict() | {"seconds": 0}
    assert report_a.chunks_added > 3 * WINDOW and report_a.errors == []
    # The windows were encoded by the child, none here; with overlap off, all here.
    assert forked.calls() == {"parent": 0, "child": report_a.texts_embedded}
    assert serial.calls() == {"parent": report_b.texts_embedded, "child": 0}

    a, b = _contents(store_a), _contents(store_b)
    assert a.keys() == b.keys()
    for cid in a:
        assert a[cid][0] == b[cid][0] and a[cid][1] == b[cid][1]
        assert np.allclose(a[cid][2], b[cid][2], atol=1e-6), cid
    assert _records(store_a) == _records(store_b)
    assert all(meta["complete"] is True for meta in _records(store_a).values())


def test_one_window_or_overlap_off_never_forks(
    settings_factory: Any, packaged: Any, corpus: Path, tmp_path: Path
) -> None:
    embedder = LoggingEmbedder(packaged, tmp_path / "calls.log")
    settings = settings_factory(store_dir=tmp_path / "s")
    store = open_store(settings, embedder)
    report = IngestReport()
    specs = file_documents(sorted(corpus.glob("*.txt"))[:2], settings, report.errors)
    write_documents(store, embedder, specs, settings, report, window=WINDOW, overlap=True)
    assert 0 < report.texts_embedded < WINDOW
    assert embedder.calls() == {"parent": report.texts_embedded, "child": 0}
    # The setting is the default of `overlap`.
    off = settings_factory(store_dir=tmp_path / "off", ingest_overlap=False)
    logged = LoggingEmbedder(packaged, tmp_path / "off.log")
    _, report = _ingest(off, logged, corpus, overlap=None)  # type: ignore[arg-type]
    assert logged.calls() == {"parent": report.texts_embedded, "child": 0}


def test_a_child_that_dies_is_replaced_by_encoding_here(
    settings_factory: Any, packaged: Any, corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dying = DiesInChild(packaged, tmp_path / "dying.log")
    with caplog.at_level(logging.WARNING, logger="ingest.encoding"):
        store, report = _ingest(settings_factory(store_dir=tmp_path / "a"), dying, corpus, overlap=True)
    reference, _ = _ingest(
        settings_factory(store_dir=tmp_path / "b"), LoggingEmbedder(packaged, tmp_path / "ref.log"), corpus,
        overlap=False,
    )
    assert report.errors == [] and report.chunks_added == reference.count_chunks()
    assert dying.calls() == {"parent": report.texts_embedded, "child": 0}
    assert "encoder process stopped" in caplog.text and "exit code 9" in caplog.text
    assert _contents(store).keys() == _contents(reference).keys()
    assert _records(store) == _records(reference)


def test_an_embedder_error_in_the_child_stops_the_ingest_with_its_message(
    settings_factory: Any, packaged: Any, corpus: Path, tmp_path: Path
) -> None:
    settings = settings_factory(store_dir=tmp_path / "s")
    with pytest.raises(EncoderFailed, match="ValueError: this text cannot be embedded"):
        _ingest(settings, FailsInChild(packaged, tmp_path / "fails.log"), corpus, overlap=True)
    # Nothing was written for the failed windows; the next run (here in one process) completes them.
    store, report = _ingest(settings, LoggingEmbedder(packaged, tmp_path / "ok.log"), corpus, overlap=False)
    assert report.errors == [] and report.chunks_added == store.count_chunks()
    assert all(meta["complete"] is True for meta in _records(store).values())


def test_encoders_return_vectors_in_submission_order(packaged: Any) -> None:
    texts = [["первый абзац", "второй"], ["第三段"], ["the fourth", "the fifth", "the sixth"]]
    expected = [np.asarray(packaged.embed_documents(batch)) for batch in texts]
    for encoder in (InlineEncoder(packaged, 2), ForkedEncoder(packaged, 2)):
        try:
            for batch, want in zip(texts, expected, strict=True):
                encoder.submit(batch)
                got = encoder.result()
                assert got.shape == want.shape and np.allclose(got, want, atol=1e-6)
        finally:
            encoder.close()


def test_can_fork_follows_the_embedder(packaged: Any) -> None:
    class Torchy:
        fork_safe = False

    assert can_fork(Torchy()) is False
    assert can_fork(packaged) is (len(os.sched_getaffinity(0)) >= 2)


_ORPHAN_SCRIPT = r"""
import os, sys, time
from ingest.encoding import ForkedEncoder
from briefing_core.embeddings import make_embedder
encoder = ForkedEncoder(make_embedder("use-multilingual"), 8)
encoder.submit(["a window the parent never collects"] * 4000)
print(encoder.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_child_dies_with_a_killed_parent(subprocess_env: dict[str, str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT], env=subprocess_env, stdout=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        assert _alive(child)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the encoder child outlived its killed parent"
    finally:
        proc.kill()


def test_cli_ingest_large_enough_to_fork_reports_normally(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    """The CLI path end to end: more new chunks than a window, encoded by the child, one JSON report."""
    folder = tmp_path / "big"
    folder.mkdir()
    for j in range(600):  # one chunk each
        (folder / f"n{j:03d}.txt").write_text(
            f"Item {j}: the envoy met officials in Pyongyang on day {j}. "
            f"Пункт {j}: переговоры продолжились в Москве.\n", encoding="utf-8",
        )
    env = {**subprocess_env, "BRIEFING_STORE_DIR": str(tmp_path / "store")}
    briefing = str(Path(sys.executable).parent / "briefing")
    proc = subprocess.run([briefing, "ingest", str(folder), "--json"], env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["chunks_added"] == report["texts_embedded"] > 512 and report["errors"] == []
    again = subprocess.run([briefing, "ingest", str(folder), "--json"], env=env, capture_output=True,
                           text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["chunks_unchanged"] == report["chunks_added"]
