"""Questions about the briefing itself, answered from the source registry and the article's structure.

    sources()   "Which sources / outlets / journals / headlines does the article cite?" -> each cited
                source of the manifest (narrowed by language or type when the question says so), cited
                at the span of the article that introduces it
    summary()   "Summarise the argument" -> the thesis sentences: the subtitle, then the sentences
                closest to the title and to the document as a whole, in the order written

Both take the documents mapping and the unit cache; both give units to cite. Nothing is answered that
the cited span does not name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.engine.units import DocUnits, Unit, UnitCache

# A language named next to the kind of source asked for: "Chinese media", "俄罗斯的媒体", "российские СМИ".
_SOURCE_WORDS = (
    r"(?:sources?|outlets?|publications?|media|newspapers?|journals?|magazines?|headlines?|periodicals?|press|"
    r"papers?|TV|television)"
)
_LANG_OF_SOURCES = [
    ("zh", re.compile(rf"\b(?:chinese|china’s|china's)[\s-]+(?:[\w-]+\s+){{0,2}}?{_SOURCE_WORDS}\b|中国|中文|汉语|中方|"
                      r"китайск\w*", re.IGNORECASE)),
    ("ru", re.compile(rf"\b(?:russian|russia’s|russia's)[\s-]+(?:[\w-]+\s+){{0,2}}?{_SOURCE_WORDS}\b|俄罗斯|俄国|俄方|俄文|"
                      r"российск\w*|русск\w*|русскоязычн\w*", re.IGNORECASE)),
]
# Kinds of source, matched against the manifest's `type` (editorial, journal article, headline ...).
_TYPES = [
    ("journal", re.compile(r"\bjournals?\b|\bacademic\b|期刊|学术|научн\w*", re.IGNORECASE)),
    ("magazine", re.compile(r"\bmagazines?\b|杂志|журнал\w*", re.IGNORECASE)),
    ("editorial", re.compile(r"\bnewspapers?\b|\beditorials?\b|报纸|社论|газет\w*|редакцион\w*", re.IGNORECASE)),
    ("headline", re.compile(r"\bheadlines?\b|标题|заголов\w*", re.IGNORECASE)),
    ("broadcast", re.compile(r"\bTV\b|\btelevision\b|\bbroadcasts?\b|电视|телевид\w*|\bТВ\b", re.IGNORECASE)),
]
_GENERIC = re.compile(
    r"\b(?:sources?|outlets?|publications?|media|press)\b|媒体|来源|出处|资料|источник\w*|СМИ|издани\w*|медиа",
    re.IGNORECASE,
)
_INTRO = {
    "en": ("The article cites {n} sources:", "The article cites {n} {which} sources:"),
    "zh": ("文章引用了{n}个来源：", "文章引用了{n}个{which}来源："),
    "ru": ("Статья ссылается на источники ({n}):", "Статья ссылается на {which} источники ({n}):"),
}
_LANG_NAMES = {
    "en": {"zh": "Chinese", "ru": "Russian"},
    "zh": {"zh": "中国", "ru": "俄罗斯"},
    "ru": {"zh": "китайские", "ru": "российские"},
}


_PIVOTS = re.compile(r"^\W*(?:but|however|still|yet|instead|rather)\b|^\W*(?:但是|但|然而|不过)|^\W*(?:но|однако)(?![\w])",
                     re.IGNORECASE)


_STANCE_MARKERS = re.compile(
    r"\b(?:perhaps|arguably|likely|unlikely|probably|possibly|might|may|should|must|need(?:s|ed)?|actually|"
    r"genuinely|certainly|clearly|obviously|surely|indeed|dubious|doubtful|apparent(?:ly)?|seemingly|most|"
    r"overdue|crucial|essential|neglected|overlooked|underestimated|mistaken|wrong)\b|"
    r"也许|可能|应该|必须|显然|确实|恐怕|"
    r"(?<![\w])(?:возможно|вероятно|должен|должна|должны|следует|очевидно|действительно|явно|видимо)(?![\w])",
    re.IGNORECASE,
)


@dataclass
class Item:
    text: str
    unit: Unit


def articles(documents: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(doc_id for doc_id, meta in documents.items() if meta.get("kind") == "article")


def sources(question: str, lang: str, documents: dict[str, dict[str, Any]], cache: UnitCache,
            article_id: str | None) -> tuple[str, list[Item]]:
    """The intro line and one item per cited source the question asks about."""
    from service.engine.catalog import sources_from_metadata

    entries = [e for e in sources_from_metadata(documents) if e["kind"] == "cited"]
    if article_id:
        entries = [e for e in entries if not e.get("cited_in") or e["cited_in"] == article_id]
    wanted_langs = {code for code, pattern in _LANG_OF_SOURCES if pattern.search(question)}
    if wanted_langs:
        entries = [e for e in entries if e.get("language") in wanted_langs]
    wanted_types = {name for name, pattern in _TYPES if pattern.search(question)}
    if wanted_types and not _GENERIC.search(question):
        entries = [e for e in entries if _is_type(e, wanted_types)]
    items: list[Item] = []
    for entry in entries:
        article = cache.get(str(entry.get("cited_in") or article_id or ""), documents)
        unit = _introducing(article, entry) if article else None
        if unit is None:
            continue
        items.append(Item(_name(entry, lang), unit))
    items.sort(key=lambda i: i.unit.start)
    intro_plain, intro_which = _INTRO.get(lang, _INTRO["en"])
    if len(wanted_langs) == 1:
        which = _LANG_NAMES.get(lang, _LANG_NAMES["en"])[next(iter(wanted_langs))]
        intro = intro_which.format(n=len(items), which=which)
    else:
        intro = intro_plain.format(n=len(items))
    return intro, items


def _is_type(entry: dict[str, Any], types: set[str]) -> bool:
    kind = str(entry.get("type") or "")
    # A source quoted under its own title in its own language ran under a headline.
    return any(t in kind for t in types) or ("headline" in types and bool(entry.get("original_title")))


def _introducing(article: DocUnits, entry: dict[str, Any]) -> Unit | None:
    """The first unit of the article that names the source (outlet, original name or title)."""
    names = [str(entry[k]) for k in ("outlet", "outlet_original", "title", "original_title") if entry.get(k)]
    first: Unit | None = None
    for name in names:
        pos = article.text.find(name)
        if pos < 0:
            continue
        for unit in article.at(pos, pos + len(name)):
            if unit.usable and (first is None or unit.start < first.start):
                first = unit
    return first


def _name(entry: dict[str, Any], lang: str) -> str:
    outlet = str(entry.get("outlet") or entry.get("label") or entry["source_id"])
    original = entry.get("outlet_original")
    name = f"{outlet} [{original}]" if original else outlet
    title = entry.get("title")
    if title and entry.get("type") in {"headline", "magazine appraisal"}:
        name += f" — “{title}”"
    details = ", ".join(str(entry[k]) for k in ("type", "date") if entry.get(k))
    return f"{name} ({details})" if details else name


def summary(doc: DocUnits, planner: Any, count: int | None, units: list[Unit] | None = None) -> list[Unit]:
    """The thesis of a document: its subtitle, then the body sentences most central to it."""
    pool = [u for u in (units if units is not None else doc.units) if u.usable]
    subtitle = [u for u in pool if u.role.startswith("subtitle")]
    # The thesis is the author's own: a quoted source's sentence reports someone else's view.
    body = [u for u in pool if not u.heading and (units is not None or not u.attributed_to)
            and u.lang == (doc.units[0].lang if doc.units else u.lang)]
    if not body:
        return subtitle[:1]
    n = count or 3
    vecs = planner.vectors([u.text for u in body])
    centroid = vecs.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    titles = [u for u in doc.units if u.role.startswith("title")]
    scores = 0.3 * (vecs @ centroid)
    if titles:
        # The title names the topic: a thesis sentence is close to it in meaning and in words.
        from service.engine.salience import coverage, term_weights

        anchor = planner.vectors([" ".join(u.text for u in titles)])[0]
        title_terms = term_weights(" ".join(u.text for u in titles))
        scores = scores + 0.3 * (vecs @ anchor) + 0.25 * np.asarray([coverage(title_terms, set(u.tokens)) for u in body])
    if units is None:
        # An argument is stated early and turns on a contrast ("But the position of Russia has been
        # neglected"): the lead paragraphs and the sentences that pivot weigh more.
        last = max(u.paragraph for u in body)
        first = min(u.paragraph for u in body)
        # Hedges and boosters ("perhaps", "actually", "dubious") mark the author's own claims, which
        # a summary of the argument is made of, as against reported facts.
        scores = scores + np.asarray([
            0.1 * (1 - (u.paragraph - first) / max(last - first, 1)) + (0.1 if _PIVOTS.search(u.text) else 0.0)
            + 0.05 * min(len(_STANCE_MARKERS.findall(u.text)), 3)
            for u in body
        ])
    picked = list(subtitle[:1])
    for i in np.argsort(-scores):
        if len(picked) >= n:
            break
        picked.append(body[int(i)])
    return sorted(picked, key=lambda u: u.start)
