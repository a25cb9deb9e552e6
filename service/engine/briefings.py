"""Answers across several briefings: the words that head each briefing's section, the line that says a
briefing does not cover the question, and the reply that asks which briefing is meant.

A store holds many briefings; a question that names none but asks about "the article" is answered
per briefing (service/engine/chain.py), each section headed by its article's title and id, so no
reader takes one briefing's passage for another's.
"""

from __future__ import annotations

import re
from typing import Any

from service.engine.catalog import briefings_from_metadata
from service.engine.units import per_documents

_HEAD = {"en": "In “{title}” ({id}):", "zh": "《{title}》（{id}）：", "ru": "В «{title}» ({id}):"}
_SILENT = {
    "en": "“{title}” ({id}) does not say.",
    "zh": "《{title}》（{id}）没有提到这一点。",
    "ru": "В «{title}» ({id}) об этом не говорится.",
}
_LOOSER = {
    "en": "“{title}” ({id}) has nothing as close to the question.",
    "zh": "《{title}》（{id}）中没有同样贴近这个问题的内容。",
    "ru": "В «{title}» ({id}) нет ничего столь же близкого к вопросу.",
}
_WHICH = {
    "en": "The store holds {n} briefings and the question does not say which one it asks about. "
          "Ask again with one of them as the briefing:",
    "zh": "资料库中有{n}份简报，问题没有说明问的是哪一份。请指定其中一份简报再问：",
    "ru": "В хранилище {n} брифингов, и из вопроса не ясно, о каком идёт речь. Задайте вопрос снова, указав брифинг:",
}
_MARKER = re.compile(r"\[(\d{1,3})\]")


def _by_id(documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in briefings_from_metadata(documents)}


def describe(briefing: str, documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The briefing's listing entry (title, date ...), from the documents mapping."""
    return per_documents(_by_id, documents).get(briefing, {"id": briefing, "title": briefing})


def heading(briefing: str, documents: dict[str, dict[str, Any]], lang: str) -> str:
    entry = describe(briefing, documents)
    return _HEAD.get(lang, _HEAD["en"]).format(title=entry.get("title") or briefing, id=briefing)


def silent(briefing: str, documents: dict[str, dict[str, Any]], lang: str) -> str:
    entry = describe(briefing, documents)
    return _SILENT.get(lang, _SILENT["en"]).format(title=entry.get("title") or briefing, id=briefing)


def looser(briefing: str, documents: dict[str, dict[str, Any]], lang: str) -> str:
    entry = describe(briefing, documents)
    return _LOOSER.get(lang, _LOOSER["en"]).format(title=entry.get("title") or briefing, id=briefing)


def renumber(text: str, offset: int, count: int) -> str:
    """A section's markers [1]..[count] moved up by `offset`, so that the merged answer numbers its
    citations once; a bracketed number beyond the section's own markers is quoted text, left alone."""
    def shift(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[{n + offset}]" if 1 <= n <= count else match.group(0)

    return _MARKER.sub(shift, text)


def clarify(briefings: list[str], passages: list[Any], documents: dict[str, dict[str, Any]], lang: str,
            shown: int = 20) -> str:
    """The reply that asks which briefing is meant: the briefings whose passages matched the question
    best first, then the rest."""
    order = list(dict.fromkeys(
        str(p.metadata.get("briefing")) for p in passages if p.metadata.get("briefing") in set(briefings)
    ))
    order += [b for b in briefings if b not in order]
    lines = [_WHICH.get(lang, _WHICH["en"]).format(n=len(briefings))]
    for briefing in order[:shown]:
        entry = describe(briefing, documents)
        details = ", ".join(str(entry[k]) for k in ("outlet", "date") if entry.get(k))
        lines.append(f"- {briefing}: {entry.get('title') or briefing}" + (f" ({details})" if details else ""))
    if len(order) > shown:
        lines.append(f"- … {len(order) - shown} more")
    return "\n".join(lines)
