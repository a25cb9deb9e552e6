"""Matching a source named in another script to its English label by spelling: Russian words are
romanised, and a long word that begins like a word of the label counts as the same name."""

from __future__ import annotations

import re

_CYRILLIC_TO_LATIN = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y",
    "ь": "", "э": "e", "ю": "yu", "я": "ya",
})
_NAME_WORD = re.compile(r"[^\W\d_]{4,}")


def spelled_alike(name: str, label: str) -> float:
    """Share of the long words of `name` (Russian ones romanised) that begin like a word of `label`:
    "«Известий»" -> "izvestiy", which begins like "Izvestiya". Five letters must agree, so a case
    ending does not matter and a common word rarely matches by chance."""
    words = _NAME_WORD.findall(name.lower().translate(_CYRILLIC_TO_LATIN))
    targets = {w[:5] for w in _NAME_WORD.findall(label.lower())}
    if not words:
        return 0.0
    return sum(1 for w in words if w[:5] in targets) / len(words)
