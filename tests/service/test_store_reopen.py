"""A local store written by another process: reads reopen Chroma's client instead of failing.

Chroma's local client keeps its own copy of the vector index; another process's writes reach the
SQLite file but not that copy, so a filtered query or an embeddings read meets ids the copy lacks
("Error finding id"), and an unfiltered query still returns deleted chunks and misses new ones.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from briefing_core.errors import StoreUnavailable
from briefing_core.settings import Settings
from briefing_core.store import DocumentRecord, Store, open_store

DIM = 512  # the default embedder's, so open_store needs no model

_OTHER_PROCESS = """
import sys
import numpy as np
from briefing_core.settings import Settings
from briefing_core.store import DocumentRecord, open_store, write_lock

settings = Settings(store_dir=sys.argv[1])
with write_lock(settings):
    store = open_store(settings)
    vectors = np.random.default_rng(1).random((2, 512)).tolist()
    store.add_chunks(["new-0", "new-1"], ["new text 0", "new text 1"],
                     [{"doc_id": "new", "start": 0, "end": 10}, {"doc_id": "new", "start": 11, "end": 21}],
                     vectors)
    store.put_document(DocumentRecord("new", "new text 0 new text 1", {"complete": True}))
    store.delete_chunks(["old-0"])
    store.bump_generation()
"""


def _fill(store: Store) -> None:
    vectors = np.random.default_rng(0).random((3, DIM)).tolist()
    store.add_chunks([f"old-{i}" for i in range(3)], [f"old text {i}" for i in range(3)],
                     [{"doc_id": "old", "start": 9 * i, "end": 9 * i + 8} for i in range(3)], vectors)
    store.put_document(DocumentRecord("old", "old text 0old text 1old text 2", {"complete": True}))
    store.bump_generation()


def _other_process_writes(store_dir: Path, env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-c", _OTHER_PROCESS, str(store_dir)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture
def store(tmp_path: Path, settings_factory: Any) -> Any:
    s = open_store(settings_factory())
    _fill(s)
    s.query([0.5] * DIM, 5)  # the vector index is now loaded in this process
    yield s
    s._client.close()


def test_a_filtered_read_after_another_process_wrote_reopens_and_succeeds(
    store: Store, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    _other_process_writes(store.settings.store_dir, subprocess_env)
    found = store.query([0.5] * DIM, 10, where={"doc_id": "new"})
    assert sorted(cid for cid, *_ in found) == ["new-0", "new-1"]
    assert store.view == 1, "one reopen"
    got = store.chunks.get(where={"doc_id": "new"}, include=["embeddings"])
    assert sorted(got["ids"]) == ["new-0", "new-1"] and len(got["embeddings"]) == 2


def test_a_new_generation_from_elsewhere_reopens_so_dense_search_sees_it(
    store: Store, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    _other_process_writes(store.settings.store_dir, subprocess_env)
    store.follow(store.generation())
    assert store.view == 1
    ids = {cid for cid, *_ in store.query([0.5] * DIM, 10)}
    assert ids == {"old-1", "old-2", "new-0", "new-1"}, "the deleted chunk is gone, the new ones found"
    store.follow(store.generation())
    assert store.view == 1, "the same generation again: no reopen"


def test_own_writes_need_no_reopen(store: Store) -> None:
    store.delete_chunks(["old-2"])
    store.follow(store.bump_generation())
    assert store.view == 0
    assert {cid for cid, *_ in store.query([0.5] * DIM, 10)} == {"old-0", "old-1"}


def test_a_read_that_stays_stale_is_a_store_unavailable(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from chromadb.errors import InternalError

    calls = []

    def stale(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise InternalError("Error executing plan: Internal error: Error finding id")

    monkeypatch.setattr(Store, "reopen", lambda self, seen=None: None)
    monkeypatch.setattr(store.chunks._collection, "query", stale)
    with pytest.raises(StoreUnavailable, match="being changed by another process"):
        store.query([0.5] * DIM, 5, where={"doc_id": "old"})
    assert len(calls) == 3, "the read and two retries"


def test_a_chroma_server_store_is_never_reopened(tmp_path: Path) -> None:
    s = Store(Settings(store_dir=tmp_path, chroma_url="http://127.0.0.1:9"), "use-multilingual", DIM)
    assert not s.reopenable
