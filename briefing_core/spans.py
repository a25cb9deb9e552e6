"""Locating passages in stored text with white space folded.

The article uses non-breaking spaces inside its `. . .` ellipses and line breaks between
paragraphs; a quote or gold evidence string written with ordinary spaces must still be found,
and found at offsets into the text exactly as stored.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WS = re.compile(r"\s+")


def fold_whitespace(text: str) -> str:
    return _WS.sub(" ", text).strip()


@lru_cache(maxsize=4096)
def _pattern(needle: str) -> re.Pattern[str] | None:
    parts = [re.escape(p) for p in _WS.split(needle.strip()) if p]
    if not parts:
        return None
    return re.compile(r"\s+".join(parts))


def find_folded(text: str, needle: str) -> list[tuple[int, int]]:
    """Every [start, end) in `text` where `needle` occurs, runs of white space on either side
    matching any run of white space on the other."""
    pattern = _pattern(needle)
    if pattern is None:
        return []
    spans = []
    pos = 0
    while True:
        match = pattern.search(text, pos)
        if match is None:
            return spans
        spans.append((match.start(), match.end()))
        pos = match.start() + 1


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Half-open ranges intersect."""
    return a[0] < b[1] and b[0] < a[1]



def normalise_answer(text: str) -> str:
    """Lower case, punctuation and articles dropped, white space folded: how a span is compared with
    an annotator's answer (SQuAD's own normalisation, with Chinese and Russian left as they are)."""
    text = text.casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\b(?:a|an|the)\b", " ", text)
    return " ".join(text.split())
