"""Ingest end to end: real Chroma (a local directory, or a `chroma run` server), the real default
embedder, and the `briefing` CLI run as a subprocess wherever its exit code or JSON is the contract.

A store written by a CLI subprocess is only opened in this process after that subprocess ended and
before any other process writes it, so an in-process Chroma client never reads a stale cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.chunking import chunk_text
from ingest.loaders import load_path
from ingest.manifest import load_manifest
from ingest.pipeline import ingest
from briefing_core.embeddings import make_embedder
from briefing_core.errors import EmbedderMismatch
from briefing_core.settings import BUNDLED_MANIFEST
from briefing_core.store import open_store

BRIEFING = str(Path(sys.executable).parent / "briefing")
CLI_TIMEOUT = 120
EMBEDDER = "use-multilingual"

# --------------------------------------------------------------------------------------------
# Sample documents
# --------------------------------------------------------------------------------------------

DOC_A = [
    "Harbour Notes\n\nA short record of the old harbour and the people who kept it working.",
    "The harbour was built in the last years of the eighteenth century, when the town's merchants "
    "pooled their savings to replace the wooden jetty that storms had broken twice in ten years. "
    "The new walls were of granite, cut from the quarry on the hill and carried down on sledges. "
    "It took six summers to finish them, and the masons who did the work were paid partly in grain.",
    "For most of the next century the harbour served fishing boats and small coastal traders. "
    "Herring came in by the ton in good years, and the quay was lined with barrels and salting "
    "tables from July to October. In bad years the boats went further out, and some did not come "
    "back; the chapel by the slipway still keeps a list of their names.",
    "The railway reached the town in 1871 and changed the harbour's trade within a decade. Fish "
    "could now be sent inland while it was fresh, so the salting yards closed one by one. The "
    "harbour master of the time wrote that the quay had become quiet in the mornings and loud at "
    "night, when the fish trains were loaded under gas lamps.",
    "Today the harbour is used by a few lobster boats and by visitors in summer. The granite walls "
    "have been repaired many times, but the line of the original quay can still be traced at low "
    "tide. A small museum in the former customs house shows the masons' tools, a salting table and "
    "a ledger of the grain paid for the work.",
]
DOC_A_EDITED_PARAGRAPH = (
    "The railway reached the town in 1871 and changed the harbour's trade within a decade, though "
    "not in the way its promoters had promised. Fish could now be sent inland while it was fresh, so "
    "the salting yards closed one by one and their workers moved to the canning sheds. The harbour "
    "master of the time wrote that the quay had become quiet in the mornings and loud at night."
)
DOC_B = [
    "Orchard Diary\n\nNotes kept through one year in a small apple orchard.",
    "In March the trees were pruned before the buds opened. Old wood was cut back to let light into "
    "the centre of each tree, and the cuttings were stacked at the edge of the field for the birds. "
    "The grass between the rows was left long, because the bees nest in its roots.",
    "Blossom came late in April after a cold spell. For a week the orchard was white, and the hives "
    "that a neighbour keeps along the hedge were busy from dawn. A frost on the last night of the "
    "month browned some of the lower flowers, but the upper branches were spared.",
    "The harvest began in September with the early varieties, which do not keep and were sold at "
    "the gate. The late apples were picked in October, wrapped in paper and stored in the cellar, "
    "where they lasted until the following spring.",
]

ZH_DOC = "\n\n".join(
    [
        "朝鲜半岛局势简报",
        "二零一七年春天，朝鲜半岛局势再度紧张。各方都在观察北京和莫斯科的态度。"
        "有评论认为，俄罗斯与朝鲜之间的经济联系可能减轻中国的负担。也有人担心，局势失控会影响整个东北亚。",
        # A paragraph longer than a chunk: sentences are packed into several chunks.
        "".join(
            f"第{i}条意见指出，地区合作需要耐心和信任，也需要各国在经济上找到共同利益。" for i in range(1, 25)
        ),
        # One sentence longer than a chunk: it is cut into clause pieces.
        "，".join(f"第{i}个方面需要认真考虑" for i in range(1, 90)) + "。",
        "你同意这种看法吗？我同意！但是问题仍然很复杂……各方保持克制。",
    ]
)
RU_DOC = "\r\n\r\n".join(  # Windows line endings and a BOM: the stored text is normalised
    [
        "\ufeffОбзор прессы",
        "Генштаб считает, что система ПРО США угрожает ядерным силам России и Китая. В 2017\u00a0г. "
        "эту позицию повторили несколько раз, т.е. она стала официальной. Почему это важно? "
        "Потому что в 1990-х гг. отношения были совсем другими.",
        " ".join(
            f"Пункт {i}: эксперты обсуждают экономическое развитие Дальнего Востока и влияние "
            "напряжённости на Корейском полуострове." for i in range(1, 20)
        ),
        ", ".join(f"аспект номер {i} требует отдельного внимания" for i in range(1, 40)) + ".",
        "«Ударил по Сирии, ударит и по Северной Корее?» — спрашивала военная пресса в апреле.",
    ]
)
CITED_SOURCE_TEXT = "\n\n".join(
    [
        "社评：朝鲜问题不能只靠中国",
        "华盛顿明明知道北京控制不了平壤。朝鲜是完全独立自主国家，它的决定由它自己做出。"
        "把解决问题的责任全部推给中国，既不公平，也不现实。",
        "半岛问题的根源在于各方之间缺乏信任。只有通过对话和谈判，才能找到长期稳定的办法。"
        "中国愿意继续发挥建设性作用，但各方都必须承担自己的责任。",
    ]
)


def write_doc(path: Path, paragraphs: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def run_cli(
    env: dict[str, str], *args: str, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BRIEFING, *args], env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, cwd=env.get("BRIEFING_STORE_DIR") or None,
    )


def cli_json(env: dict[str, str], *args: str, expect_code: int = 0) -> Any:
    """Run a `--json` command; stdout must be exactly one JSON value."""
    proc = run_cli(env, *args)
    assert proc.returncode == expect_code, (
        f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    return json.loads(proc.stdout)


def cli_report(env: dict[str, str], *args: str, expect_code: int = 0) -> dict[str, Any]:
    report = cli_json(env, "ingest", *args, "--json", expect_code=expect_code)
    assert isinstance(report, dict)
    assert set(report) == {
        "documents", "chunks_added", "chunks_updated", "chunks_unchanged", "chunks_removed",
        "texts_embedded", "errors", "seconds",
    }
    return report


def store_env(subprocess_env: dict[str, str], store_dir: Path, **extra: str) -> dict[str, str]:
    store_dir.mkdir(parents=True, exist_ok=True)
    return {**subprocess_env, "BRIEFING_STORE_DIR": str(store_dir), "BRIEFING_EMBEDDER": EMBEDDER, **extra}


def expected_chunks(doc_id: str, path: Path, settings: Any) -> list[Any]:
    return chunk_text(
        doc_id, load_path(path).text, max_chars=settings.chunk_chars,
        overlap_sentences=settings.chunk_overlap_sentences,
    )


def bundled_doc_ids() -> set[str]:
    manifest = load_manifest(BUNDLED_MANIFEST)
    return {manifest.article.id} | {f"{s.id}.quoted" for s in manifest.sources if s.quotes}


def stored_chunks(store: Any, doc_id: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, text, metadata) of every chunk, or of one document's."""
    if doc_id is not None:
        got = store.chunks.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        return list(zip(got["ids"], got["documents"], got["metadatas"], strict=True))
    return [
        row for ids, metas, texts in store.all_chunks() for row in zip(ids, texts, metas, strict=True)
    ]


def assert_exact_spans(store: Any) -> int:
    """Every chunk is `text[start:end]` of its document's stored text; returns the chunk count."""
    texts = {record.doc_id: record.text for record in store.documents()}
    rows = stored_chunks(store)
    for cid, chunk, meta in rows:
        doc = texts[meta["doc_id"]]
        assert doc[meta["start"] : meta["end"]] == chunk, (cid, meta)
    assert len(rows) == store.count_chunks()
    return len(rows)


class RecordingEmbedder:
    """The real embedder, remembering every text it was asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.texts: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture(scope="module")
def embedder() -> Any:
    return make_embedder(EMBEDDER)


# --------------------------------------------------------------------------------------------
# The bundled briefing, ingested once by the CLI into an empty store; tests work on copies.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory, subprocess_env: dict[str, str]) -> tuple[Path, dict]:
    store_dir = tmp_path_factory.mktemp("bundled-store")
    assert not any(store_dir.iterdir())
    report = cli_report(store_env(subprocess_env, store_dir))
    return store_dir, report


@pytest.fixture
def bundled_copy(bundled: tuple[Path, dict], tmp_path: Path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(bundled[0], target)
    return target


def test_first_ingest_adds_the_bundled_briefing(bundled: tuple[Path, dict]) -> None:
    _, first = bundled
    assert first["errors"] == []
    assert first["documents"] == len(bundled_doc_ids())
    assert first["chunks_added"] > 0
    assert first["texts_embedded"] == first["chunks_added"]
    assert first["chunks_updated"] == first["chunks_removed"] == first["chunks_unchanged"] == 0


def test_reingest_of_unchanged_briefing_writes_and_embeds_nothing(
    bundled: tuple[Path, dict], bundled_copy: Path, subprocess_env: dict[str, str]
) -> None:
    first = bundled[1]
    second = cli_report(store_env(subprocess_env, bundled_copy))
    assert second["errors"] == []
    assert second["documents"] == first["documents"]
    assert second["chunks_added"] == second["chunks_updated"] == 0
    assert second["chunks_removed"] == second["texts_embedded"] == 0
    assert second["chunks_unchanged"] == first["chunks_added"]


# --------------------------------------------------------------------------------------------
# Changed, pruned and exact-span documents (local store)
# --------------------------------------------------------------------------------------------


def check_changed_document_replacement(settings: Any, folder: Path, embedder: Any) -> None:
    """Ingest a.txt and b.txt, edit one paragraph of a.txt, re-ingest: only a's changed chunks are
    embedded, its stale chunks are gone, its unchanged chunks keep their ids, b is untouched."""
    a = write_doc(folder / "a.txt", DOC_A)
    write_doc(folder / "b.txt", DOC_B)
    recorder = RecordingEmbedder(embedder)
    first = ingest(settings, [folder], embedder=recorder)
    assert first.errors == [] and first.documents == 2
    store = open_store(settings, embedder)
    before_a = {cid: meta for cid, _, meta in stored_chunks(store, "a")}
    before_b = {cid: (text, meta) for cid, text, meta in stored_chunks(store, "b")}
    record_b = store.get_document("b")
    assert len(before_a) >= 4 and before_b
    assert first.texts_embedded == first.chunks_added == len(before_a) + len(before_b)

    edited = [*DOC_A[:3], DOC_A_EDITED_PARAGRAPH, *DOC_A[4:]]
    write_doc(a, edited)
    recorder.texts.clear()
    second = ingest(settings, [folder], embedder=recorder)

    new_text = load_path(a).text
    wanted = expected_chunks("a", a, settings)
    wanted_ids = {c.id for c in wanted}
    added = wanted_ids - set(before_a)
    removed = set(before_a) - wanted_ids
    kept = wanted_ids & set(before_a)
    assert added and removed and kept

    # Only the new chunks of the changed document were embedded.
    assert sorted(recorder.texts) == sorted(c.text for c in wanted if c.id in added)
    assert second.texts_embedded == second.chunks_added == len(added)
    assert second.chunks_removed == len(removed)
    assert second.chunks_unchanged + second.chunks_updated == len(kept) + len(before_b)
    assert second.errors == [] and second.documents == 2

    # The store holds exactly the new chunks of a; none of its old text survives.
    after_a = stored_chunks(store, "a")
    assert {cid for cid, _, _ in after_a} == wanted_ids
    for cid, chunk, meta in after_a:
        assert chunk in new_text
        assert new_text[meta["start"] : meta["end"]] == chunk, cid
    old_only = "the quay had become quiet in the mornings and loud at night, when the fish trains"
    assert old_only not in new_text
    assert not any(old_only in chunk for _, chunk, _ in after_a)
    assert store.get_document("a").text == new_text
    assert store.get_document("a").metadata["chunk_count"] == len(wanted)

    # b: same chunks, same metadata, same record.
    assert {cid: (text, meta) for cid, text, meta in stored_chunks(store, "b")} == before_b
    assert store.get_document("b").metadata == record_b.metadata
    assert store.count_chunks() == len(wanted) + len(before_b)


def test_changed_document_replaces_only_its_changed_chunks(
    tmp_settings: Any, tmp_path: Path, embedder: Any
) -> None:
    check_changed_document_replacement(tmp_settings, tmp_path / "docs", embedder)


def test_prune_removes_documents_no_longer_listed(
    tmp_settings: Any, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    a = write_doc(tmp_path / "docs" / "a.txt", DOC_A)
    b = write_doc(tmp_path / "docs" / "b.txt", DOC_B)
    env = store_env(subprocess_env, tmp_settings.store_dir)
    a_chunks = expected_chunks("a", a, tmp_settings)
    b_chunks = expected_chunks("b", b, tmp_settings)

    first = cli_report(env, str(a), str(b))
    assert first["chunks_added"] == len(a_chunks) + len(b_chunks)
    pruned = cli_report(env, str(a), "--prune")
    assert pruned["errors"] == []
    assert pruned["documents"] == 1
    assert pruned["chunks_removed"] == len(b_chunks)
    assert pruned["chunks_unchanged"] == len(a_chunks)
    assert pruned["texts_embedded"] == pruned["chunks_added"] == 0

    store = open_store(tmp_settings)  # first open in this process, after the CLI is done
    assert set(store.document_metadata()) == {"a"}
    assert store.chunk_ids_for("b") == []
    assert {cid for cid, _, _ in stored_chunks(store)} == {c.id for c in a_chunks}


def test_every_stored_chunk_is_the_exact_span_of_its_document_text(
    tmp_settings: Any, tmp_path: Path, embedder: Any
) -> None:
    zh = tmp_path / "docs" / "zh-sample.txt"
    ru = tmp_path / "docs" / "ru-sample.txt"
    zh.parent.mkdir(parents=True)
    zh.write_text(ZH_DOC, encoding="utf-8")
    ru.write_bytes(RU_DOC.encode("utf-8"))
    assert ingest(tmp_settings, embedder=embedder).errors == []
    report = ingest(tmp_settings, [zh, ru], embedder=embedder)
    assert report.errors == [] and report.documents == 2

    store = open_store(tmp_settings, embedder)
    docs = store.document_metadata()
    assert set(docs) == bundled_doc_ids() | {"zh-sample", "ru-sample"}
    count = assert_exact_spans(store)
    assert count == sum(int(meta["chunk_count"]) for meta in docs.values())
    # The stored text is the normalised text (no BOM, no CR) and the samples were really split.
    ru_text = store.get_document("ru-sample").text
    assert "\r" not in ru_text and not ru_text.startswith("\ufeff") and "\u00a0" in ru_text
    for doc_id, language in (("zh-sample", "zh"), ("ru-sample", "ru")):
        rows = stored_chunks(store, doc_id)
        assert len(rows) >= 3
        assert docs[doc_id]["language"] == language
        assert all(len(chunk) <= tmp_settings.chunk_chars for _, chunk, _ in rows)


# --------------------------------------------------------------------------------------------
# Embedder mismatch
# --------------------------------------------------------------------------------------------


def test_embedder_mismatch_names_both_embedders(
    bundled_copy: Path, settings_factory: Callable[..., Any], subprocess_env: dict[str, str]
) -> None:
    with pytest.raises(EmbedderMismatch) as caught:
        open_store(settings_factory(store_dir=bundled_copy, embedder="minilm"))
    assert "use-multilingual" in str(caught.value) and "minilm" in str(caught.value)
    # Refusing changed nothing: the store still opens with its own embedder.
    store = open_store(settings_factory(store_dir=bundled_copy, embedder=EMBEDDER))
    assert set(store.document_metadata()) == bundled_doc_ids()

    proc = run_cli(store_env(subprocess_env, bundled_copy, BRIEFING_EMBEDDER="minilm"), "docs", "--json")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    assert "use-multilingual" in proc.stderr and "minilm" in proc.stderr


@pytest.mark.slow  # loads torch and MiniLM (about 15 s) before the store refuses it
def test_ingest_with_another_embedder_is_refused(bundled_copy: Path, subprocess_env: dict[str, str]) -> None:
    proc = run_cli(store_env(subprocess_env, bundled_copy, BRIEFING_EMBEDDER="minilm"), "ingest", "--json")
    assert proc.returncode == 3, proc.stderr
    assert "use-multilingual" in proc.stderr and "minilm" in proc.stderr


# --------------------------------------------------------------------------------------------
# Bad input files
# --------------------------------------------------------------------------------------------

GOOD_TEXT = (
    "Field Report\n\nThe survey team walked the northern boundary in two days. They found the "
    "old markers in place and replaced three that had fallen. The weather was dry and clear.\n"
)


def make_bad_inputs(folder: Path) -> dict[Path, str]:
    """Bad files (and the words their error must contain), each under 1 KB but one."""
    folder.mkdir(parents=True, exist_ok=True)
    bad: dict[Path, str] = {}
    bad[folder / "missing.txt"] = "not found"
    (folder / "empty.txt").write_bytes(b"")
    bad[folder / "empty.txt"] = "empty"
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    bad[folder / "binary.txt"] = "binary"
    (folder / "undecodable.txt").write_bytes(bytes((i * 73 + 41) % 128 + 128 for i in range(300)))
    bad[folder / "undecodable.txt"] = "cannot decode"
    (folder / "truncated.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pa"
    )
    bad[folder / "truncated.pdf"] = "truncated"
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf body\n%%EOF\n")
    bad[folder / "corrupt.pdf"] = "not a readable PDF"
    (folder / "report.docx").write_bytes(b"PK\x03\x04 a zip container, not text")
    bad[folder / "report.docx"] = "unsupported file type '.docx'"
    (folder / "large.txt").write_text("A sentence about nothing in particular. " * 125)  # 5 KB
    bad[folder / "large.txt"] = "BRIEFING_MAX_FILE_MB"
    unreadable = folder / "unreadable.txt"
    if os.geteuid() != 0:
        unreadable.write_text(GOOD_TEXT)
        unreadable.chmod(0)
        bad[unreadable] = "permission denied"
    else:  # root reads any file regardless of mode: a FIFO is the unreadable path here
        os.mkfifo(unreadable)
        bad[unreadable] = "not a regular file"
    return bad


def assert_errors_name_each_file(errors: list[dict[str, str]], bad: dict[Path, str]) -> None:
    by_path = {e["path"]: e["error"] for e in errors}
    assert len(by_path) == len(errors) == len(bad), errors
    for path, words in bad.items():
        assert str(path) in by_path, f"no error for {path}: {errors}"
        assert words.lower() in by_path[str(path)].lower(), (path, by_path[str(path)])


def test_bad_inputs_are_reported_per_file_and_the_good_file_is_ingested(
    tmp_settings: Any, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    bad = make_bad_inputs(tmp_path / "in")
    good = tmp_path / "in" / "good.txt"
    good.write_text(GOOD_TEXT, encoding="utf-8")
    env = store_env(subprocess_env, tmp_settings.store_dir, BRIEFING_MAX_FILE_MB="0.001")

    report = cli_report(env, *map(str, bad), str(good), expect_code=0)
    assert report["documents"] == 1
    assert report["chunks_added"] == report["texts_embedded"] > 0
    assert_errors_name_each_file(report["errors"], bad)
    try:
        store = open_store(tmp_settings)
        assert set(store.document_metadata()) == {"good"}
    finally:
        (tmp_path / "in" / "unreadable.txt").chmod(0o644)


def test_only_bad_inputs_exit_non_zero(
    tmp_settings: Any, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    bad = make_bad_inputs(tmp_path / "in")
    env = store_env(subprocess_env, tmp_settings.store_dir, BRIEFING_MAX_FILE_MB="0.001")
    proc = run_cli(env, "ingest", *map(str, bad), "--json")
    (tmp_path / "in" / "unreadable.txt").chmod(0o644)
    assert proc.returncode != 0, proc.stdout
    report = json.loads(proc.stdout)
    assert report["documents"] == report["chunks_added"] == report["texts_embedded"] == 0
    assert_errors_name_each_file(report["errors"], bad)


# --------------------------------------------------------------------------------------------
# Two writers on one local store
# --------------------------------------------------------------------------------------------

_HOLD_LOCK = """
import sys
from briefing_core.settings import Settings
from briefing_core.store import write_lock
with write_lock(Settings()):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_second_writer_is_refused_quickly_then_succeeds(
    tmp_settings: Any, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    good = tmp_path / "good.txt"
    good.write_text(GOOD_TEXT, encoding="utf-8")
    env = store_env(subprocess_env, tmp_settings.store_dir)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read() if holder.stderr else ""
        started = time.monotonic()
        proc = run_cli(env, "ingest", str(good), "--json", timeout=30)
        refused_after = time.monotonic() - started
        assert proc.returncode == 3, (proc.stdout, proc.stderr)
        assert "being written by" in proc.stderr
        assert f"process {holder.pid}" in proc.stderr
        assert proc.stdout == ""
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    print(f"second writer refused after {refused_after:.1f} s")
    report = cli_report(env, str(good))
    assert report["documents"] == 1 and report["chunks_added"] > 0 and report["errors"] == []


# --------------------------------------------------------------------------------------------
# A cited source's full text, added later
# --------------------------------------------------------------------------------------------


def test_cited_source_full_text_joins_its_source_id(
    bundled_copy: Path, tmp_path: Path, subprocess_env: dict[str, str], settings_factory: Callable[..., Any]
) -> None:
    source_file = tmp_path / "global-times-editorial.txt"
    source_file.write_text(CITED_SOURCE_TEXT, encoding="utf-8")
    env = store_env(subprocess_env, bundled_copy)
    before = {s["source_id"]: s for s in cli_json(env, "sources", "--json")}
    assert before["global-times-editorial"]["full_text"] is False

    wanted = expected_chunks("global-times-editorial", source_file, settings_factory())
    report = cli_report(env, str(source_file), "--source-id", "global-times-editorial")
    assert report["errors"] == [] and report["documents"] == 1
    assert report["texts_embedded"] == report["chunks_added"] == len(wanted) > 0

    after = {s["source_id"]: s for s in cli_json(env, "sources", "--json")}
    entry = after["global-times-editorial"]
    assert entry["full_text"] is True
    assert set(entry["documents"]) == {"global-times-editorial", "global-times-editorial.quoted"}
    assert entry["kind"] == "cited"
    assert entry["outlet"] == "Global Times"
    for sid, other in after.items():  # nothing else changed
        if sid != "global-times-editorial":
            assert other == before[sid]

    docs = {d["doc_id"]: d for d in cli_json(env, "docs", "--json")}
    doc = docs["global-times-editorial"]
    assert doc["kind"] == "cited source"
    assert doc["source_id"] == "global-times-editorial"
    assert doc["chars"] == len(load_path(source_file).text)


def test_unknown_source_id_is_a_clear_error(
    bundled_copy: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    source_file = tmp_path / "mystery.txt"
    source_file.write_text(CITED_SOURCE_TEXT, encoding="utf-8")
    proc = run_cli(
        store_env(subprocess_env, bundled_copy), "ingest", str(source_file), "--source-id", "no-such-source",
        "--json",
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert "unknown source id 'no-such-source'" in proc.stderr
    assert "global-times-editorial" in proc.stderr  # it lists the known ones


# --------------------------------------------------------------------------------------------
# docs --json --text and show --json
# --------------------------------------------------------------------------------------------


def test_docs_text_and_show_return_the_stored_text(
    bundled: tuple[Path, dict], bundled_copy: Path, subprocess_env: dict[str, str],
    settings_factory: Callable[..., Any],
) -> None:
    env = store_env(subprocess_env, bundled[0])  # read-only commands on the shared store
    listing = cli_json(env, "docs", "--json", "--text")
    assert isinstance(listing, list)
    assert {d["doc_id"] for d in listing} == bundled_doc_ids()
    assert listing[0]["kind"] == "article"
    for entry in listing:
        assert set(entry) == {"doc_id", "title", "kind", "language", "chars", "source_id", "complete", "briefing",
                              "text"}
        assert entry["briefing"] == "north-korea-russia-2017"
        assert entry["complete"] is True
        assert len(entry["text"]) == entry["chars"]
    plain = cli_json(env, "docs", "--json")
    assert plain == [{k: v for k, v in d.items() if k != "text"} for d in listing]

    # Exactly the text the store holds (read here from a copy of the same store).
    stored = {r.doc_id: r for r in open_store(settings_factory(store_dir=bundled_copy)).documents()}
    assert {d["doc_id"]: d["text"] for d in listing} == {k: r.text for k, r in stored.items()}
    article = listing[0]
    manifest = load_manifest(BUNDLED_MANIFEST)
    assert article["text"] == load_path(manifest.resolve(manifest.article.path)).text

    shown = cli_json(env, "show", article["doc_id"], "--json")
    assert set(shown) == {"doc_id", "text", "metadata"}
    assert shown["doc_id"] == article["doc_id"]
    assert shown["text"] == article["text"]
    assert shown["metadata"] == stored[article["doc_id"]].metadata
    assert shown["metadata"]["kind"] == "article"

    missing = run_cli(env, "show", "no-such-doc", "--json")
    assert missing.returncode == 2 and "no-such-doc" in missing.stderr and missing.stdout == ""


# --------------------------------------------------------------------------------------------
# The same behaviour against a real Chroma server
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_bundled(
    chroma_server: str, tmp_path_factory: pytest.TempPathFactory, subprocess_env: dict[str, str]
) -> tuple[dict[str, str], dict]:
    """The bundled briefing ingested by the CLI into a fresh collection of the shared server."""
    env = store_env(
        subprocess_env, tmp_path_factory.mktemp("server-client"),
        BRIEFING_CHROMA_URL=chroma_server, BRIEFING_COLLECTION=f"t-{uuid.uuid4().hex[:12]}",
    )
    return env, cli_report(env)


@pytest.mark.chroma_server
def test_server_reingest_is_idempotent(server_bundled: tuple[dict[str, str], dict]) -> None:
    env, first = server_bundled
    assert first["errors"] == [] and first["chunks_added"] > 0
    assert first["texts_embedded"] == first["chunks_added"]
    second = cli_report(env)
    assert second["chunks_added"] == second["chunks_updated"] == second["chunks_removed"] == 0
    assert second["texts_embedded"] == 0
    assert second["chunks_unchanged"] == first["chunks_added"]
    assert not (Path(env["BRIEFING_STORE_DIR"]) / "chroma").exists()  # nothing went to a local store


@pytest.mark.chroma_server
def test_server_docs_listing(server_bundled: tuple[dict[str, str], dict]) -> None:
    env, first = server_bundled
    listing = cli_json(env, "docs", "--json", "--text")
    assert {d["doc_id"] for d in listing} == bundled_doc_ids()
    article = listing[0]
    assert article["kind"] == "article"
    manifest = load_manifest(BUNDLED_MANIFEST)
    assert article["text"] == load_path(manifest.resolve(manifest.article.path)).text
    assert all(len(d["text"]) == d["chars"] and d["complete"] is True for d in listing)


@pytest.mark.chroma_server
def test_server_changed_document_replaces_only_its_changed_chunks(
    chroma_server: str, settings_factory: Callable[..., Any], tmp_path: Path, embedder: Any
) -> None:
    settings = settings_factory(chroma_url=chroma_server, collection=f"t-{uuid.uuid4().hex[:12]}")
    check_changed_document_replacement(settings, tmp_path / "docs", embedder)
    store = open_store(settings, embedder)
    assert assert_exact_spans(store) == store.count_chunks()


# --------------------------------------------------------------------------------------------
# The test harness itself: no test can reach the network
# --------------------------------------------------------------------------------------------


def test_network_guard_blocks_outbound_connections(subprocess_env: dict[str, str]) -> None:
    import socket

    with pytest.raises(RuntimeError, match="must not use the network"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    with pytest.raises(RuntimeError, match="must not use the network"):
        socket.getaddrinfo("huggingface.co", 443)
    probe = "import socket; socket.create_connection(('203.0.113.7', 443), timeout=1)"
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=subprocess_env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode != 0 and "NetworkBlocked" in proc.stderr
