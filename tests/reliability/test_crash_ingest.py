"""kill -9 in the middle of an ingest, then ingest again.

The `briefing ingest DIR --json` CLI runs as a subprocess on a corpus of 300 small real-prose documents
(two chunks each) and is sent SIGKILL at a random point (seeded), chosen two ways:

* by time: one delay in each of N equal slices of the run's duration (measured on a clean run and
  re-measured by later full runs, since other jobs share the machine): start-up, encoding or writes;
* by progress: when Chroma's SQLite file reaches a random share of its growth from an empty store to a
  full one — always during the writes (the chunk upsert or the document records), whatever the speed.

Then the ingest is run again, and:

* the re-run opens the store without an error and finishes (exit 0);
* the store holds no duplicate chunk ids; every chunk id is fetchable with its vector; the vector index
  holds exactly the chunks the metadata holds; every chunk is `text[start:end]` of its document; every
  document record is complete, with its chunk count;
* the chunk ids are exactly those of a clean ingest of the same corpus into a separate store (so the
  count is equal too);
* one more ingest changes nothing (chunks added, updated, removed and texts embedded all 0).

A fresh run is two windows of new chunks (BRIEFING_INGEST_WINDOW, default 512; RELIABILITY_CRASH_WINDOW
sets another), the first encoded by a forked child while the ingest plans the second
(ingest/encoding.py).

Fresh trials kill the first ingest into an empty store; update trials kill an ingest of an edited
corpus over a complete store (the path that marks records stale and deletes chunks). Per-trial
outcomes go to artifacts/reliability/crash-ingest.json; docs/reliability.md quotes them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import BRIEFING, ingest_report, prose_corpus, record_figures, run_cli
from .conftest import store_env as _store_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

N_DOCS = int(os.environ.get("RELIABILITY_CRASH_DOCS", "300"))
FRESH_TRIALS = int(os.environ.get("RELIABILITY_CRASH_TRIALS", "20"))
UPDATE_TRIALS = int(os.environ.get("RELIABILITY_CRASH_UPDATE_TRIALS", "4"))
SEED = 20250117
EDITED = set(range(0, N_DOCS, 3))  # a third of the documents change in the second version

# The default window (512 new chunks): a fresh run is two windows, the first encoded by the forked
# child while the second is planned. Windows of 64 were tried too; see docs/reliability.md.
WINDOW = os.environ.get("RELIABILITY_CRASH_WINDOW", "512")


def store_env(subprocess_env: dict[str, str], store_dir: Path) -> dict[str, str]:
    return _store_env(subprocess_env, store_dir, BRIEFING_INGEST_WINDOW=WINDOW)


# Runs in a fresh interpreter after each re-ingest: opening the store there is the "reopen" check,
# and a crash of the process (a Rust panic, a segfault on a torn HNSW file) is a failed trial, not
# a failed pytest.
VERIFY = r"""
import json, sys
from pathlib import Path
from briefing_core.settings import Settings
from briefing_core.store import open_store

store = open_store(Settings(store_dir=Path(sys.argv[1])))
docs = store.documents()
texts = {d.doc_id: d.text for d in docs}
incomplete = sorted(d.doc_id for d in docs if d.metadata.get("complete") is not True)
wrong_count = sorted(
    d.doc_id for d in docs if d.metadata.get("complete") is True
    and int(d.metadata.get("chunk_count", -1)) != len(store.chunk_ids_for(d.doc_id))
)
ids, bad_spans, orphans = [], [], []
for page_ids, metas, chunk_texts in store.all_chunks():
    for cid, meta, text in zip(page_ids, metas, chunk_texts):
        ids.append(cid)
        doc = texts.get(meta.get("doc_id"))
        if doc is None:
            orphans.append(cid)
        elif doc[int(meta["start"]):int(meta["end"])] != text:
            bad_spans.append(cid)
missing, no_vector, self_miss = [], [], []
for i in range(0, len(ids), 200):
    batch = ids[i:i + 200]
    got = store.chunks.get(ids=batch, include=["embeddings"])
    vectors = dict(zip(got["ids"], got["embeddings"]))
    missing += [cid for cid in batch if cid not in vectors]
    present = [cid for cid in batch if cid in vectors]
    no_vector += [cid for cid in present if vectors[cid] is None or len(vectors[cid]) != store.dimension]
    found = store.chunks.query(query_embeddings=[vectors[c] for c in present], n_results=10,
                               include=["distances"]) if present else {"ids": [], "distances": []}
    for cid, hit_ids, dists in zip(present, found["ids"], found["distances"]):
        # A chunk finds itself, or a chunk with the very same text (distance 0). HNSW is approximate:
        # this is reported, not a failure.
        if cid not in hit_ids and not (dists and dists[0] < 1e-5):
            self_miss.append(cid)
# The vector index holds exactly the chunks the metadata holds: a query for all of them returns each.
in_index = set()
if ids:
    probe = store.chunks.get(ids=ids[:1], include=["embeddings"])["embeddings"][0]
    in_index = set(store.chunks.query(query_embeddings=[probe], n_results=len(ids), include=[])["ids"][0])
print(json.dumps({
    "count": store.count_chunks(), "ids": ids, "duplicates": len(ids) - len(set(ids)),
    "documents": len(docs), "incomplete": incomplete, "wrong_chunk_count": wrong_count,
    "orphans": orphans, "bad_spans": bad_spans, "not_fetchable": missing, "no_vector": no_vector,
    "not_in_vector_index": sorted(set(ids) - in_index), "not_found_by_own_vector": self_miss,
}))
"""


def verify(env: dict[str, str], store_dir: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", VERIFY, str(store_dir)], env=env, capture_output=True, text=True,
        timeout=300, stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        return {"reopen_failed": f"exit {proc.returncode}: {proc.stderr[-2000:]}"}
    return json.loads(proc.stdout)


def problems_of(state: dict[str, Any], expected_ids: set[str], n_docs: int) -> list[str]:
    if "reopen_failed" in state:
        return [f"store did not reopen: {state['reopen_failed']}"]
    out = []
    for key in ("incomplete", "wrong_chunk_count", "orphans", "bad_spans", "not_fetchable", "no_vector",
                "not_in_vector_index"):
        if state[key]:
            out.append(f"{key}: {len(state[key])} (e.g. {state[key][:3]})")
    if state["duplicates"]:
        out.append(f"{state['duplicates']} duplicate ids")
    if state["documents"] != n_docs:
        out.append(f"{state['documents']} documents, expected {n_docs}")
    ids = set(state["ids"])
    if ids != expected_ids or state["count"] != len(expected_ids):
        out.append(
            f"count {state['count']} vs clean {len(expected_ids)}; {len(ids - expected_ids)} unexpected, "
            f"{len(expected_ids - ids)} missing"
        )
    return out


def snapshot(store_dir: Path, scratch: Path) -> dict[str, int]:
    """What the killed process had written, read from a copy of Chroma's SQLite file (with its
    journal, which SQLite rolls back), so the store itself is untouched until the re-run: chunk ids in
    Chroma's write log, chunk rows applied to its metadata segment, document records, complete records.
    (Chroma logs a write first and applies it after; a log entry not yet applied is replayed on open.)"""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    files = list((store_dir / "chroma").glob("chroma.sqlite3*"))
    if not files:
        return {"logged": 0, "chunks": 0, "records": 0, "complete": 0}
    for f in files:
        shutil.copy2(f, scratch / f.name)
    db = sqlite3.connect(str(scratch / "chroma.sqlite3"))
    try:
        def ids(name: str) -> tuple[str | None, str | None]:
            row = db.execute(
                "SELECT c.id, s.id FROM segments s JOIN collections c ON s.collection = c.id "
                "WHERE c.name = ? AND s.scope = 'METADATA'", (name,)).fetchone()
            return (row[0], row[1]) if row else (None, None)

        (chunks_coll, chunks_seg), (_, docs_seg) = ids("briefing-chunks"), ids("briefing-docs")
        count = "SELECT COUNT(*) FROM embeddings WHERE segment_id = ?"
        logged = db.execute(
            "SELECT COUNT(DISTINCT id) FROM embeddings_queue WHERE topic LIKE ?", (f"%{chunks_coll}",)
        ).fetchone()[0] if chunks_coll else 0
        chunks = db.execute(count, (chunks_seg,)).fetchone()[0] if chunks_seg else 0
        records = db.execute(count, (docs_seg,)).fetchone()[0] if docs_seg else 0
        complete = db.execute(
            "SELECT COUNT(*) FROM embedding_metadata m JOIN embeddings e ON m.id = e.id "
            "WHERE e.segment_id = ? AND m.key = 'complete' AND m.bool_value = 1", (docs_seg,)
        ).fetchone()[0] if docs_seg else 0
    except sqlite3.DatabaseError as exc:
        return {"logged": -1, "chunks": -1, "records": -1, "complete": -1, "error": str(exc)}  # type: ignore[dict-item]
    finally:
        db.close()
    return {"logged": int(logged), "chunks": int(chunks), "records": int(records), "complete": int(complete)}


def fractions(rng: random.Random, n: int) -> list[float]:
    """One random point in each of n equal slices of (0, 0.95), in random order: kill points cover
    the start-up, the encoding and the writes."""
    points = [(i + rng.random()) / n * 0.95 for i in range(n)]
    rng.shuffle(points)
    return points


def kill_after(env: dict[str, str], corpus: Path, delay: float) -> tuple[bool, str, float]:
    """Start an ingest and SIGKILL it after `delay` seconds. (killed, how it ended, seconds)."""
    proc = subprocess.Popen(
        [BRIEFING, "ingest", str(corpus), "--json"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=delay)
        return False, f"finished before the kill (exit {proc.returncode})", delay
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return True, "killed", delay


def kill_at_size(env: dict[str, str], corpus: Path, store_dir: Path, target: int) -> tuple[bool, str, float]:
    """Start an ingest and SIGKILL it as soon as Chroma's SQLite file reaches `target` bytes: a random
    point of the writes, whatever the machine's speed (the file grows only while the store is written)."""
    db = store_dir / "chroma" / "chroma.sqlite3"
    proc = subprocess.Popen(
        [BRIEFING, "ingest", str(corpus), "--json"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    started = time.monotonic()
    try:
        while proc.poll() is None:
            if time.monotonic() - started > 600:
                raise AssertionError("the ingest ran for 10 minutes")
            try:
                size = db.stat().st_size
            except FileNotFoundError:
                size = 0
            if size >= target:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                return True, "killed", time.monotonic() - started
            time.sleep(0.005)
        return False, f"finished before the kill (exit {proc.returncode})", time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def phase(snap: dict[str, int], n_docs: int, update: bool) -> str:
    if snap.get("chunks", 0) < 0:
        return "unreadable"
    if update:
        stale = n_docs - snap["complete"]
        return f"{stale} records not complete" if stale else "all records complete"
    if snap["chunks"] == 0 and snap.get("logged", 0) == 0:
        return "nothing written"
    if snap["chunks"] == 0:
        return "chunks logged, not yet applied"
    if snap["complete"] == 0:
        return "chunks written, no record"
    if snap["complete"] < n_docs:
        return f"{snap['complete']}/{n_docs} records written"
    return "all written"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, subprocess_env: dict[str, str]) -> dict[str, Any]:
    """Both corpus versions, their clean chunk ids (each from its own store), and the clean run times."""
    base = tmp_path_factory.mktemp("crash")
    corpus_a, corpus_b = base / "corpus-a", base / "corpus-b"
    prose_corpus(corpus_a, N_DOCS)
    prose_corpus(corpus_b, N_DOCS, edited=EDITED)

    store_a = base / "clean-a"
    env_a = store_env(subprocess_env, store_a)
    started = time.monotonic()
    first = ingest_report(env_a, str(corpus_a))
    duration_a = time.monotonic() - started
    assert first["documents"] == N_DOCS and not first["errors"]
    again = ingest_report(env_a, str(corpus_a))
    assert again["chunks_added"] == again["texts_embedded"] == again["chunks_removed"] == 0
    state_a = verify(env_a, store_a)
    ids_a = set(state_a["ids"])
    assert problems_of(state_a, ids_a, N_DOCS) == []
    assert first["chunks_added"] == len(ids_a)

    empty = base / "empty"  # the SQLite file of a store that holds only its two empty collections
    assert run_cli(store_env(subprocess_env, empty), "docs", "--json").returncode == 0
    size_empty = (empty / "chroma" / "chroma.sqlite3").stat().st_size
    size_full = (store_a / "chroma" / "chroma.sqlite3").stat().st_size
    assert size_full > size_empty

    store_b = base / "clean-b"  # the update, clean: a copy of the complete A store, ingesting B
    shutil.copytree(store_a, store_b)
    env_b = store_env(subprocess_env, store_b)
    started = time.monotonic()
    update = ingest_report(env_b, str(corpus_b))
    duration_b = time.monotonic() - started
    assert update["chunks_removed"] > 0 and update["chunks_added"] > 0
    state_b = verify(env_b, store_b)
    ids_b = set(state_b["ids"])
    assert problems_of(state_b, ids_b, N_DOCS) == []
    assert ids_b != ids_a
    return {
        "base": base, "corpus_a": corpus_a, "corpus_b": corpus_b, "store_a": store_a,
        "ids_a": ids_a, "ids_b": ids_b, "duration_a": duration_a, "duration_b": duration_b,
        "clean_report_a": first, "clean_report_b": update, "size_empty": size_empty, "size_full": size_full,
    }


def run_trials(clean: dict[str, Any], subprocess_env: dict[str, str], update: bool, n: int,
               rng: random.Random, trigger: str = "time") -> list[dict[str, Any]]:
    """`trigger` "time": kill after a random share of the run's duration (start-up, encoding or
    writes); "size": kill when the SQLite file reaches a random share of its growth (during writes)."""
    base: Path = clean["base"]
    corpus = clean["corpus_b" if update else "corpus_a"]
    expected = clean["ids_b" if update else "ids_a"]
    duration = clean["duration_b" if update else "duration_a"]
    full = len(expected) if not update else clean["clean_report_b"]["texts_embedded"]
    results = []
    for i, fraction in enumerate(fractions(rng, n)):
        # The run's duration is re-measured whenever a re-run did the whole ingest again, so delays
        # follow the machine's current speed (other jobs share its two cores).
        delay = fraction * duration
        kind = "update" if update else "fresh"
        store = base / f"{kind}-{trigger}-{i:02d}"
        if update:
            shutil.copytree(clean["store_a"], store)
        env = store_env(subprocess_env, store)
        if trigger == "size":
            growth = clean["size_full"] - clean["size_empty"]
            target = int(clean["size_empty"] + fraction / 0.95 * 0.97 * growth)
            killed, how, at = kill_at_size(env, corpus, store, target)
        else:
            target = None
            killed, how, at = kill_after(env, corpus, delay)
        snap = snapshot(store, base / "scratch")
        started = time.monotonic()
        rerun = run_cli(env, "ingest", str(corpus), "--json")
        recover_s = time.monotonic() - started
        trial: dict[str, Any] = {
            "trial": i + 1, "kind": kind, "trigger": trigger, "fraction": round(fraction, 3),
            "target_bytes": target, "kill_after_s": round(at, 2), "killed": killed, "ended": how,
            "at_kill": snap, "phase": phase(snap, N_DOCS, update), "recover_s": round(recover_s, 2),
        }
        problems: list[str] = []
        if rerun.returncode != 0:
            problems.append(f"re-ingest exit {rerun.returncode}: {rerun.stderr[-1500:]}")
        else:
            report = json.loads(rerun.stdout)
            if report["texts_embedded"] == full:
                duration = recover_s
            trial["rerun"] = {k: report[k] for k in ("chunks_added", "chunks_updated", "chunks_removed",
                                                     "texts_embedded")}
            state = verify(env, store)
            problems += problems_of(state, expected, N_DOCS)
            trial["hnsw_self_query_misses"] = len(state.get("not_found_by_own_vector", []))
            further = run_cli(env, "ingest", str(corpus), "--json")
            if further.returncode != 0:
                problems.append(f"further ingest exit {further.returncode}: {further.stderr[-1500:]}")
            else:
                again = json.loads(further.stdout)
                changed = {k: again[k] for k in ("chunks_added", "chunks_updated", "chunks_removed",
                                                 "texts_embedded") if again[k]}
                if changed:
                    problems.append(f"a further ingest changed something: {changed}")
        trial["outcome"] = "pass" if not problems else "FAIL"
        trial["problems"] = problems
        results.append(trial)
        print(json.dumps({k: v for k, v in trial.items() if k != "problems"}), problems or "", flush=True)
        if not problems:
            shutil.rmtree(store, ignore_errors=True)  # keep failed stores for inspection
    return results


def test_sigkill_mid_ingest_then_reingest(clean: dict[str, Any], subprocess_env: dict[str, str]) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    by_time = run_trials(clean, subprocess_env, update=False, n=FRESH_TRIALS - FRESH_TRIALS // 2, rng=rng)
    by_size = run_trials(clean, subprocess_env, update=False, n=FRESH_TRIALS // 2, rng=rng, trigger="size")
    updates = run_trials(clean, subprocess_env, update=True, n=UPDATE_TRIALS, rng=rng)
    trials = by_time + by_size + updates
    figures = {
        "documents": N_DOCS,
        "clean_chunks": {"fresh": len(clean["ids_a"]), "update": len(clean["ids_b"])},
        "clean_ingest_s": {"fresh": round(clean["duration_a"], 2), "update": round(clean["duration_b"], 2)},
        "seed": SEED,
        "sqlite_bytes": {"empty": clean["size_empty"], "full": clean["size_full"]},
        "trials": trials,
        "passed": sum(t["outcome"] == "pass" for t in trials),
        "killed": sum(t["killed"] for t in trials),
        "trial_loop_s": round(time.monotonic() - started, 1),
    }
    path = record_figures("crash-ingest", figures)
    failed = [t for t in trials if t["outcome"] != "pass"]
    assert not failed, (
        f"{len(failed)} of {len(trials)} trials failed (see {path}): " + json.dumps(failed)[:6000]
    )
    assert figures["killed"] >= (len(trials) * 3) // 4, "most trials must really be killed mid-run"
