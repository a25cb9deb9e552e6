"""Composition: a plan (or a list of registry items) -> the answer text and its numbered citations.

Takes the chosen units, part by part, and the documents mapping; gives text in the question's
language whose every point is a verbatim quote followed by its marker, attributed exactly
("According to the Global Times editorial, as quoted in the article: ..."), a document that is not
the briefing article named by its own title, and each part the sources do not cover said to be
uncovered. The text stays within `max_chars`: points are added in order of importance until the
next would not fit (each covered part keeps its first point).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.engine.units import Unit, per_documents

REFUSALS = {
    "en": "The sources do not say. None of the ingested documents covers this question.",
    "zh": "资料中没有提到这一点。已收录的文件都没有涉及这个问题。",
    "ru": "В источниках об этом не говорится. Ни один из загруженных документов не касается этого вопроса.",
}
_UNCOVERED = {
    "en": "The sources do not say: {part}",
    "zh": "资料中没有提到：{part}",
    "ru": "В источниках не говорится: {part}",
}
_LEADS = {
    # (the briefing article, a source as quoted in it, a source's own text, another document)
    "en": ("The article says: ", "According to {label}, as quoted in the article: ", "According to {label}: ",
           "“{title}” says: "),
    "zh": ("文章写道：", "据文章引用的{label}：", "据{label}：", "《{title}》写道："),
    "ru": ("В статье говорится: ", "По словам источника «{label}» (цитируется в статье): ",
           "Согласно источнику «{label}»: ", "В документе «{title}» говорится: "),
}
# With several briefings' articles in play, "the article" names none of them: the article is named
# by its title, and a source by the article that quotes it.
_LEADS_MANY = {
    "en": "According to {label}, as quoted in “{title}”: ",
    "zh": "据《{title}》引用的{label}：",
    "ru": "По словам источника «{label}» (цитируется в «{title}»): ",
}


@dataclass
class Point:
    unit: Unit
    slot: int
    label: str = ""


def _original_outlet(unit: Unit, documents: dict[str, dict[str, Any]], lang: str) -> str | None:
    """How a Chinese or Russian answer names a span's source: by the outlet's own name when it is
    in the answer's language (《环球时报》, «Известия»), else by the English label."""
    from briefing_core.text import detect_language

    if not unit.attributed_to or lang not in ("zh", "ru"):
        return unit.attributed_to
    original = per_documents(_outlets, documents).get(unit.source_id)
    if original and detect_language(original) == lang:
        return f"《{original}》" if lang == "zh" else original
    return unit.attributed_to


def _outlets(documents: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each source's outlet in its own language, by source id."""
    out: dict[str, str] = {}
    for meta in documents.values():
        if meta.get("source_id") and meta.get("outlet_original"):
            out.setdefault(str(meta["source_id"]), str(meta["outlet_original"]))
    return out


def _article_count(documents: dict[str, dict[str, Any]]) -> int:
    return sum(1 for meta in documents.values() if meta.get("kind") == "article")


def lead(unit: Unit, documents: dict[str, dict[str, Any]], lang: str) -> str:
    article, via_article, direct, other = _LEADS.get(lang, _LEADS["en"])
    meta = documents.get(unit.doc_id, {})
    kind = meta.get("kind")
    label = _original_outlet(unit, documents, lang)
    several = per_documents(_article_count, documents) > 1
    if label:
        if kind in {"article", "quoted excerpt"} and several:
            quoting = meta if kind == "article" else documents.get(str(meta.get("cited_in")), {})
            title = quoting.get("title") or meta.get("cited_in") or unit.doc_id
            return _LEADS_MANY.get(lang, _LEADS_MANY["en"]).format(label=label, title=title)
        return (via_article if kind in {"article", "quoted excerpt"} else direct).format(label=label)
    if kind == "article" and not several:
        return article
    return other.format(title=str(meta.get("title") or unit.doc_id))


_PART_NAMES = {"en": "Part {n}", "zh": "第{n}部分", "ru": "Часть {n}"}


def shown_label(label: str, n: int, lang: str) -> str:
    """The words of the question naming a part, as the answer repeats them; a part the guard finds
    suspicious is named by its number, so no instruction or marker smuggled into a question is echoed."""
    from service.engine.guard import is_suspicious

    label = label.strip()
    if not label or len(label) > 200 or is_suspicious(label):
        return _PART_NAMES.get(lang, _PART_NAMES["en"]).format(n=n)
    return label


def uncovered(part: str, lang: str) -> str:
    return _UNCOVERED.get(lang, _UNCOVERED["en"]).format(part=part.strip())


def compose(slots: list[tuple[str, list[Unit], str]], documents: dict[str, dict[str, Any]], lang: str,
            max_chars: int, direct: tuple[str, Unit] | None = None) -> tuple[str, list[tuple[int, Unit]]]:
    """`slots`: (label, units in order of importance, uncovered reason). Points are kept in that
    order while they fit and quoted in document order. `direct`: a short answer and the cited unit it
    was found in, given first ("1973. [1]"). Gives the text and (n, unit)."""
    markers: dict[tuple[str, int], int] = {}
    cited: list[tuple[int, Unit]] = []

    def marker(unit: Unit) -> int:
        key = (unit.doc_id, unit.start)
        if key not in markers:
            markers[key] = len(cited) + 1
            cited.append((markers[key], unit))
        return markers[key]

    first = ""
    if direct is not None:
        span, unit = direct
        # The marker of the unit the span came from: the span is a claim like any other.
        holder = next((u for _, units, why in slots if not why for u in units
                       if u.doc_id == unit.doc_id and u.start <= unit.start and unit.end <= u.end), None)
        if holder is not None:
            first = f"{span.strip().rstrip('.。')}{'。' if lang == 'zh' else '.'} [{marker(holder)}]"
            max_chars -= len(first) + 1

    # A unit that answers two parts (one sentence saying what Russia lacks and what it has) is
    # quoted once: later parts keep only what earlier ones did not already quote.
    seen: dict[tuple[str, int], int] = {}
    deduped: list[tuple[str, list[Unit], str]] = []
    for label, units, why in slots:
        fresh = [u for u in units if (u.doc_id, u.start) not in seen]
        if units and not why and not fresh:
            # Answered by what an earlier part quotes: that line names this part too.
            j = seen[(units[0].doc_id, units[0].start)]
            earlier, kept, reason = deduped[j]
            deduped[j] = (f"{earlier.rstrip('?？ ')}; {label}" if earlier and label else earlier or label, kept, reason)
            continue
        for u in units:
            seen.setdefault((u.doc_id, u.start), len(deduped))
        deduped.append((label, fresh, why))
    slots = deduped
    # Which points fit: each covered slot's first unit, then the rest slot by slot.
    keep: list[set[int]] = [set() for _ in slots]
    used = 0
    order = [(i, 0) for i, (_, units, why) in enumerate(slots) if units and not why]
    order += [(i, j) for i, (_, units, why) in enumerate(slots) if not why for j in range(1, len(units))]
    for i, j in order:
        label, units, _ = slots[i]
        cost = len(units[j].text) + 8
        if j == 0:
            cost += len(lead(units[j], documents, lang)) + (len(label) + 2 if label else 0)
        else:
            cost += len(lead(units[j], documents, lang)) // 2  # shown unless a neighbour has the same
        if j > 0 and used + cost > max_chars:
            continue
        keep[i].add(j)
        used += cost
    lines: list[str] = []
    multi = len(slots) > 1
    for i, (label, units, why) in enumerate(slots):
        label = shown_label(label, i + 1, lang) if multi or why or not units else label
        if why or not units:
            lines.append(uncovered(label, lang))
            continue
        pieces: list[str] = []
        previous_lead = None
        for j, unit in sorted(enumerate(units), key=lambda ju: (ju[1].doc_id, ju[1].start)):
            if j not in keep[i]:
                continue
            this_lead = lead(unit, documents, lang)
            # One lead for a run of points from the same speaker.
            shown = this_lead if this_lead != previous_lead else ""
            previous_lead = this_lead
            pieces.append(f"{shown}{unit.text.strip()} [{marker(unit)}]")
        head = f"{label.strip().rstrip('?？')}: " if multi and label else ""
        if len(pieces) == 1 or multi:
            lines.append(head + " ".join(pieces))
        else:
            lines.append(pieces[0])
            lines.extend(f"- {p}" for p in pieces[1:])
    if first:
        lines.insert(0, first)
    return "\n".join(lines), cited
