"""Several briefings in one store, through the `briefing` CLI: the briefing id on every document and
chunk, listing and filtering by briefing, deleting one briefing and nothing else, ids that clash
across briefings, and manifest dates as YAML writes them.

The store with the bundled briefing comes from test_pipeline's module fixture (ingested by the CLI);
each test here works on its own copy with the second briefing of tests/fixtures/arctic/ added.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from briefing_core.settings import BUNDLED_MANIFEST
from briefing_core.store import open_store
from ingest.manifest import load_manifest

from .test_pipeline import bundled, cli_json, cli_report, run_cli, store_env, stored_chunks  # noqa: F401

ARCTIC = Path(__file__).resolve().parents[1] / "fixtures" / "arctic" / "manifest.yaml"
NK = "north-korea-russia-2017"
AR = "arctic-shipping-2024"


def manifest_doc_ids(path: Path) -> set[str]:
    manifest = load_manifest(path)
    ids = {manifest.article.id} | {f"{s.id}.quoted" for s in manifest.sources if s.quotes}
    return ids | {s.id for s in manifest.sources if s.path}


@pytest.fixture(scope="module")
def two(bundled: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory,
        subprocess_env: dict[str, str]) -> tuple[Path, dict]:
    """The bundled briefing and the arctic one, both ingested by the CLI (never written afterwards)."""
    store_dir = tmp_path_factory.mktemp("two-briefings")
    shutil.copytree(bundled[0], store_dir, dirs_exist_ok=True)
    report = cli_report(store_env(subprocess_env, store_dir), "--manifest", str(ARCTIC))
    return store_dir, report


@pytest.fixture
def two_copy(two: tuple[Path, dict], tmp_path: Path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(two[0], target)
    return target


def test_the_second_briefing_goes_in_beside_the_first(two: tuple[Path, dict], subprocess_env: dict[str, str],
                                                      settings_factory: Callable[..., Any]) -> None:
    store_dir, report = two
    assert report["errors"] == []
    assert report["documents"] == len(manifest_doc_ids(ARCTIC))
    listing = cli_json(store_env(subprocess_env, store_dir), "briefings", "--json")
    assert [b["id"] for b in listing] == [AR, NK]
    arctic, nk = listing
    assert arctic["title"] == load_manifest(ARCTIC).article.title
    assert arctic["date"] == "2024"  # `date: 2024` in the YAML, kept as written
    assert arctic["sources"] == len(load_manifest(ARCTIC).sources)
    assert nk["sources"] == len(load_manifest(BUNDLED_MANIFEST).sources)
    assert arctic["documents"] == len(manifest_doc_ids(ARCTIC))
    assert nk["documents"] == len(manifest_doc_ids(BUNDLED_MANIFEST))

    # Every document and every chunk carries its briefing, and the counts add up.
    store = open_store(settings_factory(store_dir=store_dir))
    owner = {doc_id: meta.get("briefing") for doc_id, meta in store.document_metadata().items()}
    assert {d for d, b in owner.items() if b == AR} == manifest_doc_ids(ARCTIC)
    assert {d for d, b in owner.items() if b == NK} == manifest_doc_ids(BUNDLED_MANIFEST)
    chunks = stored_chunks(store)
    assert all(meta["briefing"] == owner[meta["doc_id"]] for _, _, meta in chunks)
    assert arctic["chunks"] + nk["chunks"] == len(chunks)


def test_sources_and_docs_say_their_briefing_and_filter_by_it(two: tuple[Path, dict],
                                                              subprocess_env: dict[str, str]) -> None:
    env = store_env(subprocess_env, two[0])
    everything = cli_json(env, "sources", "--json")
    assert {e["briefing"] for e in everything} == {AR, NK}
    arctic = cli_json(env, "sources", "--json", "--briefing", AR)
    assert arctic and all(e["briefing"] == AR for e in arctic)
    assert [e for e in everything if e["briefing"] == AR] == arctic
    assert arctic[0]["kind"] == "article"
    assert {e["source_id"] for e in arctic if e["kind"] == "cited"} == {s.id for s in load_manifest(ARCTIC).sources}

    docs = cli_json(env, "docs", "--json", "--briefing", NK)
    assert {d["doc_id"] for d in docs} == manifest_doc_ids(BUNDLED_MANIFEST)
    assert all(d["briefing"] == NK for d in docs)

    unknown = run_cli(env, "sources", "--briefing", "no-such-briefing")
    assert unknown.returncode == 2
    assert "no-such-briefing" in unknown.stderr and AR in unknown.stderr and NK in unknown.stderr


def test_delete_removes_exactly_one_briefing(two_copy: Path, subprocess_env: dict[str, str],
                                             settings_factory: Callable[..., Any]) -> None:
    env = store_env(subprocess_env, two_copy)
    before = {cid: (text, meta) for cid, text, meta in stored_chunks(open_store(settings_factory(store_dir=two_copy)))}
    done = run_cli(env, "delete", "--briefing", AR)
    assert done.returncode == 0, done.stderr
    store = open_store(settings_factory(store_dir=two_copy))
    after = {cid: (text, meta) for cid, text, meta in stored_chunks(store)}
    kept = {cid: row for cid, row in before.items() if row[1]["briefing"] != AR}
    assert after == kept  # the other briefing's chunks, ids, texts and metadata untouched
    assert set(store.document_metadata()) == manifest_doc_ids(BUNDLED_MANIFEST)
    removed = len(before) - len(kept)
    assert f"{len(manifest_doc_ids(ARCTIC))} documents, {removed} chunks" in done.stdout
    assert [b["id"] for b in cli_json(env, "briefings", "--json")] == [NK]

    again = run_cli(env, "delete", "--briefing", AR)
    assert again.returncode == 2 and AR in again.stderr


def test_prune_with_one_briefing_leaves_the_others(two_copy: Path, tmp_path: Path, subprocess_env: dict[str, str],
                                                   settings_factory: Callable[..., Any]) -> None:
    """`--prune` removes what this run no longer names, of its own briefing only: a manifest that drops
    a source loses that source, and the other briefing keeps every document."""
    source = yaml.safe_load(ARCTIC.read_text(encoding="utf-8"))
    dropped = source["sources"].pop()["id"]
    source["article"]["path"] = str(ARCTIC.parent / source["article"]["path"])
    for entry in source["sources"]:
        if entry.get("path"):
            entry["path"] = str(ARCTIC.parent / entry["path"])
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(yaml.safe_dump(source, allow_unicode=True), encoding="utf-8")
    report = cli_report(store_env(subprocess_env, two_copy), "--manifest", str(smaller), "--prune")
    assert report["errors"] == [] and report["chunks_removed"] > 0
    left = open_store(settings_factory(store_dir=two_copy)).document_metadata()
    assert {d for d, m in left.items() if m["briefing"] == NK} == manifest_doc_ids(BUNDLED_MANIFEST)
    assert not any(d.startswith(dropped) for d in left)
    assert {d for d, m in left.items() if m["briefing"] == AR} == manifest_doc_ids(ARCTIC) - {
        dropped, f"{dropped}.quoted"}


def test_a_document_id_held_by_another_briefing_is_refused(two_copy: Path, tmp_path: Path,
                                                          subprocess_env: dict[str, str],
                                                          settings_factory: Callable[..., Any]) -> None:
    """A third briefing reusing the bundled article's id: that document is refused with an error
    naming both briefings; its other documents go in, and the bundled briefing is untouched."""
    source = yaml.safe_load(ARCTIC.read_text(encoding="utf-8"))
    nk_article = load_manifest(BUNDLED_MANIFEST).article.id
    source["briefing"] = "third-briefing"
    source["article"]["id"] = nk_article
    source["article"]["path"] = str(ARCTIC.parent / source["article"]["path"])
    for entry in source["sources"]:
        entry["id"] = "third-" + entry["id"]
        if entry.get("path"):
            entry["path"] = str(ARCTIC.parent / entry["path"])
    third = tmp_path / "third.yaml"
    third.write_text(yaml.safe_dump(source, allow_unicode=True), encoding="utf-8")
    env = store_env(subprocess_env, two_copy)
    before = open_store(settings_factory(store_dir=two_copy)).get_document(nk_article)
    report = cli_report(env, "--manifest", str(third))  # the rest of the batch went in: exit 0
    assert len(report["errors"]) == 1
    message = report["errors"][0]["error"]
    assert nk_article in message and NK in message and "third-briefing" in message
    store = open_store(settings_factory(store_dir=two_copy))
    assert store.get_document(nk_article) == before
    assert {b["id"] for b in cli_json(env, "briefings", "--json")} == {AR, NK, "third-briefing"}


def test_manifest_dates_are_kept_as_written(tmp_path: Path) -> None:
    """YAML reads `2024` as a number and `2023-11-15` as a date; the manifest keeps the text."""
    assert "\n  date: 2024\n" in ARCTIC.read_text(encoding="utf-8")  # the fixture gives a bare year
    manifest = load_manifest(ARCTIC)
    assert manifest.article.date == "2024"
    assert [s.date for s in manifest.sources if s.date] == ["2023-11-15"]
    article = ARCTIC.parent / "article.txt"
    (tmp_path / "m.yaml").write_text(
        f"briefing: dates\narticle:\n  id: a\n  path: {article}\n  title: 1984\n  date: 2017-4-1\n"
        "sources:\n  - id: s\n    outlet: O\n    language: ru\n    date: 2017.5\n", encoding="utf-8")
    loaded = load_manifest(tmp_path / "m.yaml")
    assert (loaded.article.title, loaded.article.date, loaded.sources[0].date) == ("1984", "2017-4-1", "2017.5")
