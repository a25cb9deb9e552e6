"""Reading the human-written data sets: answers land on their text in the documents the store will
hold, splits keep an article whole, and the parallel XQuAD files pair questions with documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.data import article_key, folds, sample_articles, selqa, squad_format


def _squad(path: Path, articles: list[dict]) -> Path:
    path.write_text(json.dumps({"version": "v2.0", "data": articles}, ensure_ascii=False), encoding="utf-8")
    return path


def _article(title: str, paragraphs: list[tuple[str, list[tuple[str, str, str, int | None]]]]) -> dict:
    """paragraphs: (context, [(id, question, answer, answer_start or None for unanswerable)])."""
    out = []
    for context, qas in paragraphs:
        items = []
        for qid, question, answer, start in qas:
            if start is None:
                items.append({"id": qid, "question": question, "answers": [], "is_impossible": True})
            else:
                items.append(
                    {
                        "id": qid,
                        "question": question,
                        "answers": [{"text": answer, "answer_start": start}],
                        "is_impossible": False,
                    }
                )
        out.append({"context": context, "qas": items})
    return {"title": title, "paragraphs": out}


def test_answers_point_at_their_text_in_the_joined_document(tmp_path: Path) -> None:
    first = "The FSO Car Factory was established in 1951."
    second = "Warsaw lies on the Vistula River."
    path = _squad(
        tmp_path / "s.json",
        [
            _article(
                "Warsaw",
                [
                    (first, [("q1", "When was the factory established?", "1951", first.index("1951"))]),
                    (
                        second,
                        [
                            ("q2", "Which river?", "Vistula River", second.index("Vistula")),
                            ("q3", "When was the Tico Factory founded?", "", None),
                        ],
                    ),
                ],
            )
        ],
    )
    corpus = squad_format(path, "t", "en", "doc")
    text = corpus.documents["doc-0000"]
    assert text == f"{first}\n\n{second}"
    by_id = {q.qid: q for q in corpus.questions}
    ((s, e),) = by_id["t:q1"].answers
    assert text[s:e] == "1951"
    ((s, e),) = by_id["t:q2"].answers
    assert text[s:e] == "Vistula River"
    assert not by_id["t:q3"].answerable and by_id["t:q3"].answers == []
    assert {q.article for q in corpus.questions} == {"warsaw"}


def test_a_byte_order_mark_before_a_paragraph_moves_its_answers_back(tmp_path: Path) -> None:
    # Ingest drops a leading byte-order mark, so the stored text is one character shorter there.
    context = "\ufeffРелигиозные войны начались в 1562 году."
    path = _squad(
        tmp_path / "s.json",
        [
            _article(
                "Huguenot",
                [
                    ("Первый абзац.", []),
                    (context, [("q1", "Когда?", "1562", context.index("1562"))]),
                ],
            )
        ],
    )
    corpus = squad_format(path, "t", "ru", "doc")
    text = corpus.documents["doc-0000"]
    assert "\ufeff" not in text
    ((s, e),) = corpus.questions[0].answers
    assert text[s:e] == "1562"


def test_an_offset_that_misses_its_text_is_looked_up_and_an_absent_answer_dropped(tmp_path: Path) -> None:
    context = "范廷颂于1963年被任为主教。"
    path = _squad(
        tmp_path / "s.json",
        [
            _article(
                "范廷颂",
                [
                    (
                        context,
                        [
                            (
                                "q1",
                                "范廷颂是什么时候被任为主教的？",
                                "1963年",
                                0,
                            ),  # wrong offset, text present
                            ("q2", "他在哪里出生？", "河内", 3),
                        ],
                    ),  # text absent: dropped
                ],
            )
        ],
    )
    corpus = squad_format(path, "t", "zh", "doc")
    assert [q.qid for q in corpus.questions] == ["t:q1"]
    ((s, e),) = corpus.questions[0].answers
    assert corpus.documents["doc-0000"][s:e] == "1963年"


def test_parallel_files_ask_one_languages_questions_of_anothers_documents(tmp_path: Path) -> None:
    en = "Packet switching groups data into packets."
    zh = "分组交换将数据分成数据包。"
    _squad(
        tmp_path / "en.json",
        [
            _article(
                "Packet_switching",
                [(en, [("q1", "What does it group data into?", "packets", en.index("packets"))])],
            )
        ],
    )
    _squad(
        tmp_path / "zh.json",
        [_article("Packet_switching", [(zh, [("q1", "它把数据分成什么？", "数据包", zh.index("数据包"))])])],
    )
    corpus = squad_format(
        tmp_path / "en.json", "x", "en", "xq", questions_from=tmp_path / "zh.json", question_lang="zh"
    )
    (q,) = corpus.questions
    assert q.text == "它把数据分成什么？" and q.lang == "zh"
    s, e = q.answers[0]
    assert corpus.documents[q.doc_id][s:e] == "packets"
    assert q.article == article_key("Packet switching")


def test_parallel_files_that_disagree_on_question_ids_are_refused(tmp_path: Path) -> None:
    _squad(tmp_path / "en.json", [_article("A", [("One. Two.", [("q1", "One?", "One", 0)])])])
    _squad(tmp_path / "zh.json", [_article("A", [("一。", [("other", "一？", "一", 0)])])])
    with pytest.raises(ValueError, match="other"):
        squad_format(
            tmp_path / "en.json", "x", "en", "xq", questions_from=tmp_path / "zh.json", question_lang="zh"
        )


def test_folds_and_samples_keep_each_article_whole(tmp_path: Path) -> None:
    articles = [
        _article(
            f"Article {i}",
            [
                (
                    f"Sentence {i} has the answer {i}.",
                    [
                        (
                            f"q{i}-{j}",
                            f"Question {j}?",
                            str(i),
                            f"Sentence {i} has the answer {i}.".rindex(str(i)),
                        )
                        for j in range(3)
                    ],
                )
            ],
        )
        for i in range(12)
    ]
    corpus = squad_format(_squad(tmp_path / "s.json", articles), "t", "en", "doc")
    assigned = folds(corpus.questions, 4, seed=1)
    by_article: dict[str, set[int]] = {}
    for q, f in zip(corpus.questions, assigned, strict=True):
        by_article.setdefault(q.article, set()).add(f)
    assert all(len(fs) == 1 for fs in by_article.values())
    assert set(assigned) == {0, 1, 2, 3}
    assert folds(corpus.questions, 4, seed=1) == assigned  # seeded
    small = sample_articles(corpus, 7, seed=0)
    per_article = {}
    for q in small.questions:
        per_article[q.article] = per_article.get(q.article, 0) + 1
    assert set(per_article.values()) == {3} and len(small.questions) == 9
    assert small.documents == corpus.documents  # the unasked articles stay in the store


def test_selqa_sentences_become_one_document_with_whole_sentence_answers(tmp_path: Path) -> None:
    rows = [
        {
            "question": "Where is the museum?",
            "article": "Israel",
            "section": "Museums",
            "candidates": ["The museum is in Jerusalem.", "It opened in 1965."],
            "answers": [0],
        },
        {
            "question": "When did it open?",
            "article": "Israel",
            "section": "Museums",
            "candidates": ["The museum is in Jerusalem.", "It opened in 1965."],
            "answers": [1],
        },
    ]
    path = tmp_path / "selqa.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    corpus = selqa(path, "sel", "sel")
    assert len(corpus.documents) == 1
    text = next(iter(corpus.documents.values()))
    spans = [text[s:e] for q in corpus.questions for s, e in q.answers]
    assert spans == ["The museum is in Jerusalem.", "It opened in 1965."]
