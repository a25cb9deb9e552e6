"""A store of two briefings (the bundled one and tests/fixtures/arctic/), asked over HTTP: scoped
questions cite only their briefing; "the article" with no briefing is answered per briefing, each
section naming its briefing; listings say and filter by briefing; the admin route deletes exactly one
briefing; a store of one briefing reads as it always did."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from briefing_core.settings import Settings
from ingest.manifest import load_manifest
from service.engine.chain import BriefingQA

from .conftest import ADMIN_KEY, app_client, make_settings, with_briefings
from .conftest import ARCTIC_MANIFEST as ARCTIC

NK = "north-korea-russia-2017"
AR = "arctic-shipping-2024"

# Questions of every kind, about one briefing, the other, or both; asked under each scope.
QUESTIONS = [
    "What does the article's subtitle say?",
    "Who wrote the article?",
    "What sources does the article cite?",
    "Summarize the article's main argument.",
    "What did Chinese TV news praise?",
    "How many voyages crossed the Northern Sea Route in 2023?",
    "Why might Pyongyang trust Moscow more than Beijing?",
    "What does the Chinese journal conclude about the Northern Sea Route?",
    "What role does Russia play, according to the article?",
    "文章引用了哪些中国媒体或期刊？",
    "Какую роль играет Россия?",
]


def build(store_dir: Path, embedder: Any) -> Settings:
    return with_briefings(make_settings(store_dir, admin_key=ADMIN_KEY), embedder, ARCTIC)


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, loaded_qa: Any) -> Iterator[TestClient]:
    settings = build(tmp_path_factory.mktemp("two-briefings"), loaded_qa._embedder)
    with app_client(settings, BriefingQA(settings, embedder=loaded_qa._embedder)) as client:
        yield client


def ask(client: TestClient, question: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/ask", json={"question": question, **body})
    assert response.status_code == 200, response.text
    return response.json()


def owners(client: TestClient) -> dict[str, str | None]:
    return {d["doc_id"]: d["briefing"] for d in client.get("/v1/documents").json()}


def test_briefings_are_listed_with_their_article(two: TestClient) -> None:
    listing = two.get("/v1/briefings").json()["briefings"]
    assert [b["id"] for b in listing] == [AR, NK]
    arctic = listing[0]
    manifest = load_manifest(ARCTIC)
    assert (arctic["title"], arctic["author"], arctic["date"]) == (
        manifest.article.title, manifest.article.author, "2024")
    assert arctic["sources"] == len(manifest.sources) and arctic["chunks"] > 0


@pytest.mark.parametrize("briefing", [NK, AR])
def test_a_scoped_question_never_cites_the_other_briefing(two: TestClient, briefing: str) -> None:
    owner = owners(two)
    answered = 0
    for question in QUESTIONS:
        result = ask(two, question, briefing=briefing)
        assert result["briefing"] == briefing
        assert all(owner[p["doc_id"]] == briefing for p in result["retrieved"]), question
        assert all(c["briefing"] == briefing and owner[c["doc_id"]] == briefing for c in result["citations"]), question
        answered += not result["refused"]
    assert answered >= 5  # the scope narrows what is searched; it does not make the answerer refuse


def test_the_article_without_a_briefing_is_answered_per_briefing(two: TestClient) -> None:
    result = ask(two, "What does the article's subtitle say?")
    assert result["briefing"] is None
    sections = {entry["briefing"]: entry for entry in result["briefings"]}
    assert set(sections) == {AR, NK}
    owner = owners(two)
    for name, entry in sections.items():
        assert entry["covered"], entry
        # Each section is headed by its briefing and cites only its own documents.
        assert f"({name})" in result["answer"]
        cited = [c for c in result["citations"] if c["n"] in entry["citations"]]
        assert cited and all(c["briefing"] == name == owner[c["doc_id"]] for c in cited)
    subtitles = {m.briefing: m.article.subtitle for m in map(load_manifest, (ARCTIC, _bundled()))}
    for name, subtitle in subtitles.items():
        n = sections[name]["citations"][0]
        assert next(c for c in result["citations"] if c["n"] == n)["quote"].strip() == subtitle
    # Markers run once across the sections: 1..n, each naming its own citation.
    markers = [int(m) for m in re.findall(r"\[(\d+)\]", result["answer"])]
    assert sorted(set(markers)) == [c["n"] for c in result["citations"]] == list(range(1, len(result["citations"]) + 1))


@pytest.mark.parametrize("briefing", [NK, AR])
def test_scoped_dense_search_finds_what_the_filtered_store_query_finds(two: TestClient, briefing: str) -> None:
    """A scoped question's dense side is searched in memory, exactly; Chroma's filtered query over the
    same chunks must agree (on a store this small its index is exact too)."""
    qa = two.app.state.briefing.qa
    for question in QUESTIONS:
        vector = qa.searcher.embedder.embed_query(question)
        held = qa.searcher.nearest(qa.searcher.index, vector, 8, {"briefing": [briefing]})
        stored = qa.store.query(vector, 8, {"briefing": briefing})
        assert [cid for cid, *_ in held] == [cid for cid, *_ in stored], question
        assert [round(sim, 4) for _, sim, *_ in held] == [round(sim, 4) for _, sim, *_ in stored]
        assert [meta for *_, meta in held] == [meta for *_, meta in stored]
        # And a scoped search returns only what the scope holds.
        found = qa.searcher.search(question, 5, {"briefing": [briefing]}, query_vector=vector)
        assert found and {p.metadata["briefing"] for p in found} == {briefing}


def test_a_briefing_that_does_not_cover_the_article_question_says_so(two: TestClient) -> None:
    result = ask(two, "What evidence does the article give that Washington favors cooperation with China on North Korea?")
    sections = {entry["briefing"]: entry for entry in result["briefings"]}
    assert sections[NK]["covered"] and not sections[AR]["covered"]
    assert all(c["briefing"] == NK for c in result["citations"])
    title = load_manifest(ARCTIC).article.title
    assert f"“{title}” ({AR}) does not say." in result["answer"]


def test_a_briefing_that_matches_only_loosely_gets_no_section(two: TestClient) -> None:
    """Asked of both, a question on one briefing's topic is not padded with the other briefing's
    nearest sentence: that briefing gets a line, not a section."""
    result = ask(two, "What does the author say about Beijing's influence over Pyongyang?")
    sections = {entry["briefing"]: entry for entry in result["briefings"]}
    assert sections[NK]["covered"] and not sections[AR]["covered"]
    assert result["citations"] and all(c["briefing"] == NK for c in result["citations"])
    assert f"({AR})" in result["answer"] and f"In “{load_manifest(ARCTIC).article.title}”" not in result["answer"]


def test_a_follow_up_naming_the_article_is_answered_within_its_briefing(two: TestClient) -> None:
    history = [{"role": "user", "content": "Which Project 22220 icebreakers entered service?"},
               {"role": "assistant", "content": "Arktika, Sibir and Ural."}]
    result = ask(two, "Who wrote the article?", briefing=AR, history=history)
    assert result["standalone_query"] == "Who wrote the article?"
    author = load_manifest(ARCTIC).article.author
    assert author in result["answer"] and all(c["briefing"] == AR for c in result["citations"])


def test_a_year_asked_of_a_name_comes_from_a_sentence_naming_it(two: TestClient) -> None:
    """The article gives years for three icebreakers and, in the next sentence, names a fourth without
    one: asked the fourth's year, the sources do not say."""
    assert ask(two, "In which year will the nuclear icebreaker Rossiya be completed?", briefing=AR)["refused"]
    answered = ask(two, "In what year did Arktika, Sibir and Ural enter service?", briefing=AR)
    assert not answered["refused"] and "2020 and 2022" in answered["answer"]


def test_an_unscoped_topical_question_says_each_citation_s_briefing(two: TestClient) -> None:
    owner = owners(two)
    result = ask(two, "What did Chinese TV news praise?")
    assert not result["refused"] and result["briefings"] == []
    assert result["citations"] and all(c["briefing"] == owner[c["doc_id"]] == NK for c in result["citations"])
    # With two articles in the store, "the article" names neither: the article is named by its title.
    assert "as quoted in the article" not in result["answer"]
    nk_title = next(b["title"] for b in two.get("/v1/briefings").json()["briefings"] if b["id"] == NK)
    assert f"“{nk_title}”" in result["answer"]


def test_more_briefings_than_answered_one_by_one_asks_which(two: TestClient, loaded_qa: Any) -> None:
    settings = two.app.state.briefing.settings.model_copy(update={"briefings_per_answer": 1})
    with app_client(settings, BriefingQA(settings, embedder=loaded_qa._embedder)) as client:
        result = ask(client, "Who wrote the article?")
        assert result["question_kind"] == "which briefing" and result["citations"] == []
        assert AR in result["answer"] and NK in result["answer"]
        scoped = ask(client, "Who wrote the article?", briefing=AR)
        assert scoped["question_kind"] != "which briefing"


def test_catalog_routes_say_and_filter_by_briefing(two: TestClient) -> None:
    sources = two.get("/v1/sources").json()
    assert {s["briefing"] for s in sources} == {AR, NK}
    arctic = two.get("/v1/sources", params={"briefing": AR}).json()
    assert arctic == [s for s in sources if s["briefing"] == AR] and arctic[0]["kind"] == "article"
    documents = two.get("/v1/documents", params={"briefing": NK}).json()
    assert documents and all(d["briefing"] == NK for d in documents)
    assert len(documents) + len(two.get("/v1/documents", params={"briefing": AR}).json()) == len(owners(two))
    for path in ("/v1/sources", "/v1/documents"):
        missing = two.get(path, params={"briefing": "no-such-briefing"})
        assert missing.status_code == 404 and "no-such-briefing" in missing.text and NK in missing.text
        malformed = two.get(path, params={"briefing": "Not An Id!"})
        assert malformed.status_code == 422
    unknown = two.post("/v1/ask", json={"question": "Who wrote the article?", "briefing": "no-such-briefing"})
    assert unknown.status_code == 404 and "no-such-briefing" in unknown.text


def test_chat_completions_take_a_briefing(two: TestClient) -> None:
    body = {"model": "briefing-qa", "messages": [{"role": "user", "content": "What does the article's subtitle say?"}]}
    scoped = two.post("/v1/chat/completions", json={**body, "briefing": AR})
    assert scoped.status_code == 200, scoped.text
    data = scoped.json()
    assert data["citations"] and all(c["briefing"] == AR for c in data["citations"])
    assert data["briefing"]["briefing"] == AR  # the whole result rides in `briefing`, as before
    unscoped = two.post("/v1/chat/completions", json=body).json()
    assert {c["briefing"] for c in unscoped["citations"]} == {AR, NK}


def test_the_admin_route_deletes_exactly_one_briefing(tmp_path: Path, loaded_qa: Any) -> None:
    settings = build(tmp_path / "store", loaded_qa._embedder)
    with app_client(settings, BriefingQA(settings, embedder=loaded_qa._embedder)) as client:
        qa = client.app.state.briefing.qa

        def chunks() -> dict[str, Any]:
            return {cid: meta for ids, metas, _ in qa.store.all_chunks() for cid, meta in zip(ids, metas, strict=True)}

        before = chunks()
        refused = client.delete(f"/v1/briefings/{AR}")
        assert refused.status_code in (401, 403)
        done = client.delete(f"/v1/briefings/{AR}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert done.status_code == 200, done.text
        kept = {cid: meta for cid, meta in before.items() if meta["briefing"] != AR}
        assert chunks() == kept
        assert done.json() == {"briefing": AR, "documents_removed": 4, "chunks_removed": len(before) - len(kept),
                               "deleted": True}
        assert [b["id"] for b in client.get("/v1/briefings").json()["briefings"]] == [NK]
        assert client.post("/v1/ask", json={"question": "Who wrote it?", "briefing": AR}).status_code == 404
        again = client.delete(f"/v1/briefings/{AR}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert again.status_code == 404
        # One briefing left: "the article" is that briefing's, answered as a one-briefing store answers.
        result = ask(client, "What does the article's subtitle say?")
        assert result["briefings"] == [] and result["answer"].startswith("The article says:")


def test_a_store_of_one_briefing_reads_as_before(client: TestClient) -> None:
    """The shared app's store holds the bundled briefing alone: nothing changes meaning."""
    assert [b["id"] for b in client.get("/v1/briefings").json()["briefings"]] == [NK]
    result = ask(client, "What did Chinese TV news praise?")
    assert result["briefings"] == [] and result["briefing"] is None
    assert "as quoted in the article" in result["answer"]
    assert all(c["briefing"] == NK for c in result["citations"])
    assert all(s["briefing"] == NK for s in client.get("/v1/sources").json())


def _bundled() -> Path:
    from briefing_core.settings import BUNDLED_MANIFEST

    return BUNDLED_MANIFEST


class _DiesAfterRemovingChunks:
    """The store as `delete_briefing` uses it, dying (as a killed process would) once the chunks are
    gone and before the document records are."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def delete_chunks(self, ids: list[str]) -> None:
        self._store.delete_chunks(ids)
        raise KeyboardInterrupt("killed between the chunks and the records")


def test_a_briefing_deletion_cut_short_serves_nothing_of_it_and_finishes_when_run_again(
    tmp_path: Path, loaded_qa: Any,
) -> None:
    from briefing_core.store import Store

    settings = build(tmp_path / "store", loaded_qa._embedder)
    qa = BriefingQA(settings, embedder=loaded_qa._embedder).load()
    with pytest.raises(KeyboardInterrupt):
        Store.delete_briefing(_DiesAfterRemovingChunks(qa.store), AR)  # type: ignore[arg-type]
    qa.store.bump_generation()
    qa.searcher.refresh(force=True)
    # Its records are still there, marked incomplete: nothing of it is served, the other is whole.
    left = qa.store.document_metadata()
    assert {m["complete"] for m in left.values() if m["briefing"] == AR} == {False}
    assert qa.searcher.search("Who wrote the article?", 5, {"briefing": [AR]}) == []
    assert not any(c.briefing == AR for c in qa.ask("Who wrote the article?").citations)
    assert qa.ask("What did Chinese TV news praise?", briefing=NK).citations
    # Run again, it finishes: the briefing is gone, the other untouched.
    from service.engine.catalog import delete_briefing

    assert delete_briefing(qa.store, AR)["documents_removed"] == 4
    assert {m["briefing"] for m in qa.store.document_metadata().values()} == {NK}
