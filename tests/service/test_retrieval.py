"""Hybrid retrieval across English, Chinese and Russian, on a small fixture written for the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.pipeline import ingest
from briefing_core.embeddings import make_embedder
from service.engine.retrieval import HybridSearcher
from briefing_core.settings import Settings
from briefing_core.store import open_store

# Each topic is written once, in one language only; distractors share the domain but not the topic.
FIXTURE = {
    "harvest-zh.txt": "今年秋天，云南的茶农遭遇了严重的干旱，茶叶产量下降了三成。\n\n"
                      "当地政府决定向受灾农户发放补贴。",
    "flood-ru.txt": "Весной река Лена вышла из берегов, и наводнение затопило несколько деревень в Якутии.\n\n"
                    "Спасатели эвакуировали жителей на лодках.",
    "election-en.txt": "The city council election was postponed because the ballots had been printed with the "
                       "wrong candidate names.\n\nA new date will be announced next month.",
    "distractor-en.txt": "Tea is among the most widely consumed drinks in the world, and its history spans "
                         "thousands of years.\n\nRivers have shaped the settlement of many regions.",
}

CROSS_LINGUAL = [
    ("Why did tea production fall in Yunnan this autumn?", "harvest-zh"),
    ("Which river flooded villages in Yakutia in spring?", "flood-ru"),
    ("为什么市议会选举被推迟了？", "election-en"),
    ("Почему перенесли выборы в городской совет?", "election-en"),
    ("云南茶叶减产的原因是什么？", "harvest-zh"),
]


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory) -> HybridSearcher:
    folder = tmp_path_factory.mktemp("docs")
    for name, text in FIXTURE.items():
        (folder / name).write_text(text, encoding="utf-8")
    settings = Settings(store_dir=tmp_path_factory.mktemp("store"))
    report = ingest(settings, [Path(folder)])
    assert report.errors == []
    embedder = make_embedder(settings.embedder)
    return HybridSearcher(open_store(settings, embedder), embedder, settings)


@pytest.mark.parametrize(("question", "doc_id"), CROSS_LINGUAL)
@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_question_finds_the_passage_in_another_language(
    searcher: HybridSearcher, question: str, doc_id: str, mode: str
) -> None:
    passages = searcher.search(question, k=3, mode=mode)
    assert passages[0].doc_id == doc_id


def test_keyword_side_tokenises_chinese_and_russian(searcher: HybridSearcher) -> None:
    assert searcher.search("干旱 补贴", k=1, mode="keyword")[0].doc_id == "harvest-zh"
    assert searcher.search("наводнения деревни", k=1, mode="keyword")[0].doc_id == "flood-ru"


def test_filters_apply_to_both_retrievers(searcher: HybridSearcher) -> None:
    for mode in ("dense", "keyword", "hybrid"):
        got = searcher.search("tea drought rivers flood", k=5, mode=mode, filters={"doc_id": ["distractor-en"]})
        assert got and {p.doc_id for p in got} == {"distractor-en"}


def test_passages_carry_offsets_into_stored_text(searcher: HybridSearcher) -> None:
    store = searcher.store
    for p in searcher.search("election ballots", k=5):
        assert store.get_document(p.doc_id).text[p.start:p.end] == p.text


def test_index_follows_new_documents_without_restart(searcher: HybridSearcher, tmp_path: Path) -> None:
    extra = tmp_path / "volcano-en.txt"
    extra.write_text("The volcano on the island erupted twice in one week, covering the port in ash.")
    ingest(searcher.settings, [extra], store=searcher.store, embedder=searcher.embedder)
    searcher._checked_at = 0.0  # the freshness check runs at most once a second; do not wait for it
    assert searcher.search("volcano erupted ash", k=1, mode="keyword")[0].doc_id == "volcano-en"


def test_langchain_retriever_face_returns_documents_with_offsets(searcher: HybridSearcher) -> None:
    from service.engine.retrieval import BriefingRetriever

    docs = BriefingRetriever(searcher=searcher, k=2).invoke("Why did tea production fall in Yunnan this autumn?")
    assert len(docs) == 2
    assert docs[0].metadata["doc_id"] == "harvest-zh"
    text = searcher.store.get_document("harvest-zh").text
    assert text[docs[0].metadata["start"]:docs[0].metadata["end"]] == docs[0].page_content


def test_the_article_means_the_briefing_among_other_documents(tmp_path: Path) -> None:
    """A question about "the article" gives the briefing article's passages the article bonus, and
    nothing else changes; other questions are scored as before. (What it does among 10,000 and 100,000
    distractor chunks, where the article's own pass brings back chunks a plain search misses, is in
    docs/benchmarks.md, "Query".)"""
    folder = tmp_path / "others"
    folder.mkdir()
    for j in range(60):
        (folder / f"pharmacy-notice-{j:02d}.txt").write_text(
            f"Counter {j}. Bring a photo ID; the dose is taken with water where the pharmacist says. "
            f"Each article of clothing is taken at the door.\n",
            encoding="utf-8",
        )
    settings = Settings(store_dir=tmp_path / "store")
    assert ingest(settings).errors == []
    assert ingest(settings, [folder]).errors == []
    embedder = make_embedder(settings.embedder)

    def search(question: str, bonus: float) -> dict[str, tuple[str, float]]:
        s = settings.model_copy(update={"article_bonus": bonus})
        searcher = HybridSearcher(open_store(s, embedder), embedder, s)
        return {p.chunk_id: (p.metadata["kind"], p.score) for p in searcher.search(question, 200)}

    question = "Where was the photo that accompanies the article taken?"
    plain, boosted = search(question, 0.0), search(question, 0.1)
    assert any(kind == "article" for kind, _ in boosted.values())
    for cid in plain.keys() & boosted.keys():
        kind = plain[cid][0]
        assert boosted[cid][1] - plain[cid][1] == pytest.approx(0.1 if kind == "article" else 0.0, abs=1e-6)
    # Without "the article" or "the author", nothing changes.
    other = "Where should a photo ID be shown?"
    assert search(other, 0.0) == search(other, 0.1)
