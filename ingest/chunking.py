"""Documents -> chunks of whole sentences with stable ids.

A chunk is a span of the document: `chunk.text == document_text[chunk.start:chunk.end]`, so a
citation inside a chunk maps back to document offsets by adding `chunk.start`.

Grouping rules:

* A chunk holds consecutive whole sentences, at most `max_chars` from the first sentence's
  start to the last one's end; a sentence longer than that is cut with `split_clauses`.
* A chunk stays inside one paragraph (blank-line separated block), except that a run of short
  paragraphs (each at most `SHORT_PARAGRAPH` characters: a title, a photo caption, a byline, a
  one-line lede, list items) is packed together up to `max_chars`, so a title is retrieved
  with its caption instead of as a three-word chunk.
* Consecutive chunks of one group share `overlap_sentences` sentences, when the earlier chunk
  has more sentences than that (so every chunk adds a new sentence) and the shared sentences
  still fit in `max_chars`.
* Ids hash the document id, the chunk text and how many earlier chunks of the document have the
  same text: an edit elsewhere in the document leaves an unchanged chunk's id alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from briefing_core.text import split_clauses, split_paragraphs, split_sentences

SHORT_PARAGRAPH = 200


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    index: int
    start: int
    end: int
    text: str


def chunk_text(doc_id: str, text: str, max_chars: int = 700, overlap_sentences: int = 1) -> list[Chunk]:
    """Chunks of `text` in document order; [] for empty or white-space-only text."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    if overlap_sentences < 0:
        raise ValueError("overlap_sentences cannot be negative")
    spans = [
        span
        for group in _groups(text, max_chars)
        for span in _pack(_units(text, group, max_chars), max_chars, overlap_sentences)
    ]
    return _with_ids(doc_id, text, spans)


def _groups(text: str, max_chars: int) -> list[list[tuple[int, int]]]:
    """Paragraphs, with runs of short paragraphs joined into one group."""
    groups: list[list[tuple[int, int]]] = []
    previous_short = False
    for start, end in split_paragraphs(text):
        short = end - start <= min(SHORT_PARAGRAPH, max_chars)
        if short and previous_short and end - groups[-1][0][0] <= max_chars:
            groups[-1].append((start, end))
        else:
            groups.append([(start, end)])
        previous_short = short
    return groups


def _units(text: str, group: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """The group's sentences, over-long ones cut into clause pieces of at most max_chars."""
    units: list[tuple[int, int]] = []
    for para_start, para_end in group:
        for start, end in split_sentences(text, para_start, para_end):
            if end - start <= max_chars:
                units.append((start, end))
            else:
                units.extend(split_clauses(text, start, end, max_chars))
    return units


def _pack(units: list[tuple[int, int]], max_chars: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy runs of consecutive units, each spanning at most max_chars."""
    spans: list[tuple[int, int]] = []
    first = 0
    while first < len(units):
        start = units[first][0]
        last = first + 1
        while last < len(units) and units[last][1] - start <= max_chars:
            last += 1
        spans.append((start, units[last - 1][1]))
        if last >= len(units):
            break
        # Share the chunk's last sentences with the next chunk, as long as they fit with it.
        nxt = last - overlap if last - first > overlap else last
        while nxt < last and units[last][1] - units[nxt][0] > max_chars:
            nxt += 1
        first = nxt
    return spans


def chunk_id(doc_id: str, text: str, occurrence: int) -> str:
    """Stable id: the document, the chunk's text and which repeat of that text it is."""
    digest = hashlib.sha256(f"{doc_id}\x00{text}\x00{occurrence}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def _with_ids(doc_id: str, text: str, spans: list[tuple[int, int]]) -> list[Chunk]:
    seen: dict[str, int] = {}
    chunks: list[Chunk] = []
    for index, (start, end) in enumerate(spans):
        body = text[start:end]
        occurrence = seen.get(body, 0)
        seen[body] = occurrence + 1
        chunks.append(Chunk(chunk_id(doc_id, body, occurrence), doc_id, index, start, end, body))
    return chunks
