"""Human-written question-answering data, read into one shape for training the answer scorer.

Takes the raw files of `../shared/qa/raw` (SQuAD 2.0, XQuAD in en/zh/ru, CMRC 2018, SelQA); gives
`Corpus` objects: documents (one per article, paragraphs separated by a blank line, as the gold-format
folders store them) and questions, each with the character ranges of its annotators' answers in its
document's text. A question written to look answerable but not (SQuAD 2.0) has no ranges.

Which articles a corpus holds is decided here, by article, so that every question of an article and
every paragraph of it fall on the same side of a split.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARAGRAPH_SEPARATOR = "\n\n"


@dataclass
class Question:
    qid: str
    text: str
    lang: str
    doc_id: str
    article: str
    """The article the question was written about: the unit of every split."""
    answers: list[tuple[int, int]] = field(default_factory=list)
    """[start, end) of each annotator's answer in the document's text; empty when unanswerable."""
    answer_texts: list[str] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass
class Corpus:
    name: str
    lang: str
    """The documents' language."""
    documents: dict[str, str] = field(default_factory=dict)
    questions: list[Question] = field(default_factory=list)

    def write(self, folder: Path) -> list[Path]:
        """The documents as .txt files named by their ids (what ingest reads back as the same ids)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for doc_id, text in self.documents.items():
            path = folder / f"{doc_id}.txt"
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        return paths


def article_key(title: str) -> str:
    """An article's name as every data set spells it: SQuAD 2.0 and XQuAD share articles, and an
    article's questions must fall in one fold whichever set and language they come from."""
    return " ".join(title.replace("_", " ").casefold().split())


def _clean(context: str) -> tuple[str, int]:
    """A paragraph as it is stored (a byte-order mark or blank lines around it dropped, as ingest
    drops them), and how many characters were dropped before it (its answers' offsets move back)."""
    context = context.replace("\r\n", "\n").replace("\r", "\n")
    kept = context.lstrip("\ufeff\n")
    return kept.rstrip("\n"), len(context) - len(kept)


def _article_text(paragraphs: list[dict[str, Any]]) -> tuple[str, list[int]]:
    """The document made of an article's paragraphs, and where each paragraph starts in it."""
    starts, pieces, offset = [], [], 0
    for p in paragraphs:
        context, _ = _clean(p["context"])
        starts.append(offset)
        pieces.append(context)
        offset += len(context) + len(PARAGRAPH_SEPARATOR)
    return PARAGRAPH_SEPARATOR.join(pieces), starts


def _answer_ranges(
    qa: dict[str, Any], context: str, start: int, lead: int = 0
) -> tuple[list[tuple[int, int]], list[str]]:
    """Each annotator's answer as a range in the document; an offset that does not point at its text
    (a few in CMRC) is looked up in the paragraph instead, and dropped when not found there."""
    ranges, texts = [], []
    if qa.get("is_impossible"):
        return [], []
    for ans in qa.get("answers") or []:
        text = (ans.get("text") or "").strip()
        if not text:
            continue
        at = int(ans.get("answer_start", -1)) - lead
        if context[at : at + len(text)] != text:
            at = context.find(text)
            if at < 0:
                continue
        ranges.append((start + at, start + at + len(text)))
        texts.append(text)
    return ranges, texts


def squad_format(
    path: Path,
    name: str,
    lang: str,
    prefix: str,
    questions_from: Path | None = None,
    question_lang: str | None = None,
) -> Corpus:
    """A SQuAD-format file as a corpus. `questions_from`: a parallel file (XQuAD lists the same
    paragraphs and question ids in the same order in each language) whose questions are asked of
    this file's documents, so a Chinese question meets the English article."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    asked = json.loads(questions_from.read_text(encoding="utf-8"))["data"] if questions_from else None
    corpus = Corpus(name, lang)
    for a, article in enumerate(data):
        doc_id = f"{prefix}-{a:04d}"
        text, starts = _article_text(article["paragraphs"])
        corpus.documents[doc_id] = text
        title = article_key(str(article.get("title") or doc_id))
        for p, paragraph in enumerate(article["paragraphs"]):
            context, lead = _clean(paragraph["context"])
            for i, qa in enumerate(paragraph["qas"]):
                ranges, texts = _answer_ranges(qa, context, starts[p], lead)
                if not ranges and not qa.get("is_impossible"):
                    continue  # an answer that cannot be located teaches nothing
                question = qa["question"]
                if asked is not None:
                    other = asked[a]["paragraphs"][p]["qas"][i]
                    if other["id"] != qa["id"]:
                        raise ValueError(
                            f"{questions_from}: question {i} of paragraph {p} of article {a} "
                            f"is {other['id']}, not {qa['id']}"
                        )
                    question = other["question"]
                corpus.questions.append(
                    Question(
                        f"{name}:{qa['id']}",
                        question.strip(),
                        question_lang or lang,
                        doc_id,
                        title,
                        ranges,
                        texts,
                    )
                )
    return corpus


def selqa(path: Path, name: str, prefix: str) -> Corpus:
    """SelQA answer-sentence selection: the sentences of a Wikipedia section, which of them answer.
    A section is a document (its sentences joined as one paragraph); an answer is a whole sentence."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    corpus = Corpus(name, "en")
    sections: dict[tuple[str, str, tuple[str, ...]], str] = {}
    for n, row in enumerate(rows):
        sentences = [s.strip() for s in row["candidates"]]
        key = (row["article"], row["section"], tuple(sentences))
        if key not in sections:
            sections[key] = f"{prefix}-{len(sections):04d}"
            corpus.documents[sections[key]] = " ".join(sentences)
        doc_id = sections[key]
        starts, offset = [], 0
        for s in sentences:
            starts.append(offset)
            offset += len(s) + 1
        ranges = [(starts[i], starts[i] + len(sentences[i])) for i in row["answers"] if sentences[i]]
        if not ranges:
            continue
        corpus.questions.append(
            Question(
                f"{name}:{n}",
                row["question"].strip(),
                "en",
                doc_id,
                article_key(row["article"]),
                ranges,
                [sentences[i] for i in row["answers"]],
            )
        )
    return corpus


def articles(questions: Iterable[Question]) -> list[str]:
    return sorted({q.article for q in questions})


def folds(questions: list[Question], k: int, seed: int) -> list[int]:
    """A fold number for each question, by article: an article's questions share a fold."""
    names = articles(questions)
    random.Random(seed).shuffle(names)
    fold_of = {name: i % k for i, name in enumerate(names)}
    return [fold_of[q.article] for q in questions]


def sample_articles(corpus: Corpus, limit: int, seed: int) -> Corpus:
    """At most `limit` questions, taken as whole articles (a random order of articles, seeded)."""
    if len(corpus.questions) <= limit:
        return corpus
    names = articles(corpus.questions)
    random.Random(seed).shuffle(names)
    by_article: dict[str, list[Question]] = {}
    for q in corpus.questions:
        by_article.setdefault(q.article, []).append(q)
    kept: list[Question] = []
    for name in names:
        if len(kept) >= limit:
            break
        kept.extend(by_article[name])
    docs = {q.doc_id for q in kept}
    # Every document stays in the store (the unasked ones are what retrieval must pass over).
    return Corpus(corpus.name, corpus.lang, corpus.documents, [q for q in kept if q.doc_id in docs])
