"""Proposing manifest entries for the sources an article cites, from the article's own text.

A rule-based extractor, meant to give a human a draft of the `sources:` section of a manifest.
It knows no outlet names; it reads the conventions articles use when they cite foreign-language
sources. The rules, in the order they are applied:

Sentences and paragraphs
  S1  Paragraphs are separated by blank lines; sentences end at . ? ! (after any closing quote or
      bracket) followed by a capital or an opening quote, never inside “...” or [...], never after
      an initial ("U.S.") or a common abbreviation.

Cues (mentions that may introduce a source), all ignored inside quotations and brackets
  C1  Bracketed name: a capitalised name (capitalised words joined by "and", "of", "the", ...)
      followed by [original-language text] (Han, Cyrillic, Hangul, Kana, Arabic ...):
      `Global Times [环球时报]` -> outlet + outlet_original. A Latin bracket ("[of Russia’s]") is an
      editorial insertion, not an original. Because capitalised glosses are also used for terms
      ("Belt and Road Initiative [一带一路]"), the cue needs support: a media noun just before it
      or in the name, "from"/"by"/"according to" before it, a reporting verb after it, or a
      quotation attributed to it.
  C2  Media noun + name: "a headline from Izvestiya", "an editorial by X", "the newspaper X".
  C3  Nationality + media noun: "Chinese TV news", "the Russian military press" (not
      "Western media": no nationality, and no attribution either).
  C4  A name found by C1/C2 anywhere in the article is a cue wherever else it is mentioned.
  C5  Anaphora: "the authors", "the analysis", "the newspaper" ..., or a passive "it is explained",
      refer to the source last introduced in the same paragraph.

Attribution (within one sentence)
  A1  A quotation “...” immediately followed by [original] is a quote pair.
  A2  A quotation (or pair) shortly after "headline(s)", "titled", "entitled" is a title. A title
      followed by "in [the ...] NAME" belongs to that next cue; otherwise, like every quotation,
      it goes to the nearest preceding cue, or failing that the first following one. A quotation
      with no cue in its sentence is not attributed ("safe landing").
  A3  A cue with no quotation but a reporting verb right after it ("X reported/said/argued ...",
      "gave effusive praise") reports unquoted: the passage from the cue to the end of the
      sentence becomes the quote (the whole sentence for a passive "it is explained" or for
      "according to X", where the cue is not the subject).
  A4  A cue becomes (or adds to) a source only if it has a quotation, an unquoted report, or is a
      supported bracketed name (C1). People ("President X said") are not sources: only outlets.
  A5  Cues with the same outlet merge into one source unless both carry different titles.

Fields
  F1  language: script of an original the article gives (Hangul ko, Kana ja, Han zh, Cyrillic
      ru, Arabic ar, ...), else a nationality adjective in the cue ("Chinese" zh), else "en".
  F2  type: from the media nouns around the cue, quotations and brackets masked: a source known
      only by a quoted headline is a "headline"; else editorial; else medium + genre ("magazine
      appraisal"); TV/radio -> "news broadcast"; medium alone -> "journal article" etc.
  F3  date: the time expression in the cue's sentence nearest the cue, as written.
  F4  quotes: exact substrings of the text. A quoted fragment (lower-case start) loses the
      article's own trailing full stop; a headline-only source quotes its title and original.
  F5  title: the quoted title, else a description from the cue ("an unsigned editorial from"
      -> "Unsigned editorial", "an analysis of X was published in" -> "Analysis of X").
  F6  id: slug of the outlet, plus a slug of the title when one outlet has several sources.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate

import regex as re

from ingest.manifest import SourceEntry, dump_sources_yaml
from briefing_core.spans import find_folded

# ---------------------------------------------------------------------------------------------
# Vocabulary. Kept small and generic: these are words of English journalism, not outlet names.

_NATIONALITY = {
    "chinese": "zh", "taiwanese": "zh", "russian": "ru", "soviet": "ru", "north korean": "ko",
    "south korean": "ko", "korean": "ko", "japanese": "ja", "arab": "ar", "arabic": "ar",
    "egyptian": "ar", "saudi": "ar", "syrian": "ar", "iranian": "fa", "persian": "fa",
    "turkish": "tr", "ukrainian": "uk", "german": "de", "french": "fr", "spanish": "es",
    "italian": "it", "portuguese": "pt", "brazilian": "pt", "vietnamese": "vi", "polish": "pl",
    "mongolian": "mn", "israeli": "he", "hebrew": "he", "greek": "el", "indian": "hi",
    "american": "en", "british": "en", "australian": "en", "canadian": "en",
}
_NAT = r"(?:(?:North|South)\s+Korean|" + "|".join(
    n.capitalize() for n in sorted(_NATIONALITY, key=len, reverse=True) if " " not in n
) + ")"

# Heads of a noun phrase naming the media of a country ("Chinese TV news").
_MEDIA_HEAD = (
    r"(?:press|media|news|TV|television|radio|newspapers?|dailies|daily|weeklies|weekly|"
    r"magazines?|journals?|outlets?|broadcasters?|broadcasts?|tabloids?|websites?|agency|"
    r"agencies|state\s+media)"
)
# A kind of publication, used in apposition before its name ("the journal Northeast Asia Forum").
_MEDIUM = (
    r"(?:newspaper|magazine|journal|daily|weekly|monthly|quarterly|tabloid|agency|broadcaster|"
    r"channel|website|outlet|network|station|programme|program|press)"
)
# A kind of text, followed by from/by/in and the outlet ("a headline from Izvestiya").
_GENRE = (
    r"(?:editorial|headline|article|report|commentary|op-ed|column|piece|appraisal|analysis|"
    r"interview|review|story|broadcast|dispatch|essay|feature)"
)
# Words inside a name that mark it as a publication ("People’s Daily", "Global Times").
_NAME_MEDIA = re.compile(
    r"\b(?:Times|Daily|News|Post|Journal|Review|Forum|Gazette|Herald|Tribune|Press|Agency|TV|"
    r"Radio|Magazine|Weekly|Monthly|Quarterly|Observer|Courier|Telegraph|Chronicle|Globe|Mirror|"
    r"Express|Standard|Bulletin|Affairs|Monitor|Gazeta|Zeitung|Shimbun|Ilbo|Ribao)\b"
)
_VERB = (
    r"(?:said|says|say|wrote|writes|write|reported|reports|report|argued|argues|argue|intoned|"
    r"intones|intone|concluded|concludes|conclude|explained|explains|explain|suggested|suggests|"
    r"suggest|noted|notes|note|emphasi[sz]ed|emphasi[sz]es|emphasi[sz]e|stressed|stresses|stress|"
    r"claimed|claims|claim|warned|warns|warn|observed|observes|observe|asserted|asserts|assert|"
    r"declared|declares|declare|insisted|insists|insist|praised|praises|praise|critici[sz]ed|"
    r"critici[sz]es|critici[sz]e|described|describes|describe|called|calls|added|adds|stated|"
    r"states|commented|comments|announced|announces|opined|opines|urged|urges|urge|proclaimed|"
    r"proclaims|lamented|laments|welcomed|welcomes|cautioned|cautions|quoted|quotes|ran|runs|"
    r"published|publishes|carried|carries|headlined|editoriali[sz]ed|maintained|maintains|"
    r"contended|contends|predicted|predicts|accused|accuses|hailed|hails)"
)
_HEADLINE_WORD = re.compile(r"\b(?:headlines?|headlined|titled|entitled|title|under the heading)\b",
                            re.I)
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
)
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_DATE = re.compile(
    "|".join([
        # "At the end of March 2017", "at the conclusion of 2014"
        rf"\b(?i:at|by|towards?|in|around|since|until)\s+the\s+(?:very\s+)?(?:end|conclusion|"
        rf"beginning|start|close|middle|turn|first\s+half|second\s+half|spring|summer|autumn|fall|"
        rf"winter)\s+of\s+(?:(?:early|mid|late)-?\s?)?(?:{_MONTH}(?:,?\s+\d{{4}})?|\d{{4}}|"
        rf"(?:the|last|this)\s+year)",
        # "in mid-March", "late April 2017"
        rf"\b(?:(?i:in|on|by|during|since|until|from)\s+)?(?:early|mid|late)[- ]?{_MONTH}"
        rf"(?:,?\s+\d{{4}})?",
        # "on 12 May", "in March 2017", "on May 3, 2017"
        rf"\b(?i:in|on|by|since|until|from|during)\s+(?:\d{{1,2}}\s+)?{_MONTH}"
        rf"(?:\s+\d{{1,2}}(?:st|nd|rd|th)?)?(?:,?\s+\d{{4}})?",
        # "a few weeks back", "two days ago"
        r"\b(?i:a|an|one|two|three|four|five|several|a\s+few|a\s+couple\s+of|\d+)\s+"
        r"(?:days?|weeks?|months?|years?)\s+(?:back|ago|earlier|before)\b",
        # "last week", "earlier this month"
        rf"\b(?i:last|this|earlier\s+this|later\s+this|late\s+last|early\s+last)\s+"
        rf"(?:week|month|year|spring|summer|autumn|fall|winter|{_MONTH}|{_WEEKDAY})\b",
        # "in 2016", "in late 2014"
        r"\b(?i:in|since|during|by)\s+(?:(?:early|mid|late)-?\s?)?\d{4}\b",
        rf"\b(?i:yesterday|on\s+{_WEEKDAY})\b",
    ])
)

# Capitalised words that start sentences or clauses, never outlet names' first word.
_NOT_NAME_START = {
    "A", "An", "As", "And", "But", "In", "On", "At", "By", "For", "From", "With", "Indeed",
    "However", "Meanwhile", "Also", "Then", "Now", "Still", "Yet", "When", "While", "After",
    "Before", "Since", "Last", "This", "That", "These", "Those", "Even", "Both", "According",
    "Moreover", "Furthermore", "Thus", "So", "Yesterday", "Today", "Tomorrow", "Earlier", "Later",
    "Recently", "Instead", "Similarly", "Likewise", "Here", "There", "Although", "Though", "If",
    "Because", "Such", "Some", "Many", "Most", "Several", "Its", "Their", "His", "Her", "Our",
    "Another", "Other", "Each", "Every", "Only", "Not", "Nor", "Or", "It", "They", "We", "I",
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January",
    "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
}
# Lower-case (or article) words allowed inside a name: "Finance and Economics", "Voice of America".
_CONNECTORS = {"and", "of", "the", "The", "for", "&", "on", "de", "du", "des", "la", "le", "el",
               "der", "die", "y", "da", "di"}

_NAME_WORD = r"[A-Z][\w’'.&-]*"
_NAME = rf"{_NAME_WORD}(?:\s+(?:(?:and|of|the|for|&|on|de|du|des|la|le)\s+)*{_NAME_WORD})*"
_MEDIA_CUE = re.compile(
    rf"\b(?:{_MEDIUM}\s+|{_GENRE}\s+(?:from|by|in)\s+(?:the\s+)?)(?P<name>{_NAME})"
)
_NATIONAL_CUE = re.compile(
    rf"\b(?:[Tt]he\s+)?(?P<np>{_NAT}(?:\s+[\w-]+){{0,2}}\s+{_MEDIA_HEAD})\b(?!’s|'s)"
)
_ANAPHOR = re.compile(
    r"\b[Tt]he\s+(?:authors?|analysis|article|editorial|paper|report|piece|study|magazine|"
    r"journal|newspaper|daily|broadcast|appraisal|commentary|column|essay|op-ed|publication)\b"
    r"(?!\s+(?:[A-Z]|by\b|from\b|of\b|on\b|in\b))"
)
_PASSIVE = re.compile(
    r"\bit\s+(?:is|was|has\s+been)\s+(?:explained|argued|noted|suggested|claimed|stressed|"
    r"emphasi[sz]ed|asserted|observed|pointed\s+out|concluded|added|warned|maintained)\b"
)
_REPORTING_AFTER = re.compile(
    rf"\s*(?:,[^,.;“”\[\]]{{0,60}},\s*)?(?:(?:{_DATE.pattern})\s+)?(?:[a-z]+\s+){{0,2}}?{_VERB}\b"
)
_QUOTATION = re.compile(r"“(?P<c>[^“”]*)”|\"(?P<s>[^\"\n]*)\"")
_BRACKET = re.compile(r"\[(?P<b>[^\[\]\n]+)\]")
_NON_LATIN_LETTER = re.compile(r"(?!\p{Latin})\p{L}")
_SCRIPTS = [
    ("Hangul", "ko"), ("Hiragana", "ja"), ("Katakana", "ja"), ("Han", "zh"), ("Cyrillic", "ru"),
    ("Arabic", "ar"), ("Hebrew", "he"), ("Greek", "el"), ("Devanagari", "hi"), ("Thai", "th"),
    ("Georgian", "ka"), ("Armenian", "hy"),
]
_ABBREVIATION = re.compile(
    r"(?:\b\p{Lu}\.|\b(?:Mr|Mrs|Ms|Dr|Prof|St|Gen|Col|Lt|Sen|Rep|Gov|No|vs|etc|e\.g|i\.e|Jan|Feb|"
    r"Aug|Sept?|Oct|Nov|Dec|Inc|Corp|Co)\.)$"
)
_ANAPHORIC = {"anaphor", "passive"}
_MAX_NAME_WORDS = 8
_LOOKBACK = 200
"""Characters looked at before a bracket: enough for a name and its media noun, and it keeps a
text with many brackets in one sentence linear."""


# ---------------------------------------------------------------------------------------------
# Data passed between the steps.


@dataclass(frozen=True)
class _Sentence:
    start: int
    end: int
    paragraph: int


@dataclass
class _Cue:
    start: int
    end: int
    """Span of the whole cue, bracket included; quotations are attributed relative to it."""
    kind: str
    """bracketed | media | national | known | anaphor | passive"""
    outlet: str | None = None
    outlet_original: str | None = None
    supported: bool = False
    """For a bracketed name: something besides the bracket says it is a publication."""


@dataclass
class _Quotation:
    open: int
    """Index of the opening quotation mark."""
    end: int
    """End of the quotation, or of the [original] that follows it."""
    content: tuple[int, int]
    original: tuple[int, int] | None
    is_title: bool


@dataclass
class _Draft:
    outlet: str
    first: int
    outlet_original: str | None = None
    title: str | None = None
    original_title: str | None = None
    description: str | None = None
    nationality: str | None = None
    date: str | None = None
    context: str = ""
    quotes: list[str] = field(default_factory=list)
    extra_titles: list[str] = field(default_factory=list)
    originals: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Public API.


def extract_sources(text: str) -> list[SourceEntry]:
    """Manifest entries proposed for the sources `text` cites, in order of first mention."""
    sentences = _sentences(text)
    cues = [_explicit_cues(text, s) for s in sentences]
    names = {c.outlet for found in cues for c in found
             if c.kind == "media" or (c.kind == "bracketed" and c.supported)}
    drafts: list[_Draft] = []
    current: _Draft | None = None
    for index, sentence in enumerate(sentences):
        if index == 0 or sentence.paragraph != sentences[index - 1].paragraph:
            current = None  # anaphora do not cross paragraphs
        found = cues[index] + _later_cues(text, sentence, cues[index], names)
        found.sort(key=lambda c: c.start)
        current = _attribute(text, sentence, found, drafts, current)
    return _finalise(text, drafts)


def extract_sources_yaml(text: str) -> str:
    """The proposed entries as YAML, ready to review and paste under `sources:`."""
    return dump_sources_yaml(extract_sources(text))


# ---------------------------------------------------------------------------------------------
# S1: paragraphs and sentences.


def _paragraphs(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in re.finditer(r"(?:[^\n]|\n(?![ \t\xa0]*\n))+", text):
        start, end = match.span()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans


def _sentences(text: str) -> list[_Sentence]:
    sentences = []
    for number, (p_start, p_end) in enumerate(_paragraphs(text)):
        start = p_start
        for boundary in _boundaries(text, p_start, p_end):
            sentences.append(_Sentence(start, boundary, number))
            start = boundary
            while start < p_end and text[start].isspace():
                start += 1
        if start < p_end:
            sentences.append(_Sentence(start, p_end, number))
    return sentences


def _boundaries(text: str, start: int, end: int) -> list[int]:
    """Ends of sentences in text[start:end], skipping what is inside quotations and brackets
    (so that ". . . North Korea" inside a quotation does not end the sentence)."""
    curly = square = 0
    straight = False
    found = []
    for i in range(start, end):
        ch = text[i]
        if ch == "“":
            curly += 1
        elif ch == "”":
            curly = max(0, curly - 1)
        elif ch == "[":
            square += 1
        elif ch == "]":
            square = max(0, square - 1)
        elif ch == '"':
            straight = not straight
        elif (ch.isspace() and not (curly or square or straight) and i > start
              and _ends_sentence(text[max(start, i - 16):i]) and _starts_sentence(text, i, end)):
            found.append(i)  # only the tail is looked at: long paragraphs stay linear
    return found


def _ends_sentence(before: str) -> bool:
    trimmed = before.rstrip().rstrip("”’\")]")
    if not trimmed or trimmed[-1] not in ".?!":
        return False
    return _ABBREVIATION.search(trimmed) is None or trimmed.endswith(". . .")


def _starts_sentence(text: str, i: int, end: int) -> bool:
    while i < end and text[i].isspace():
        i += 1
    return i < end and (text[i].isupper() or text[i].isdigit() or text[i] in "“\"‘(")


# ---------------------------------------------------------------------------------------------
# Quotations and brackets.


def _is_original(fragment: str) -> bool:
    """An original-language text: more non-Latin letters than Latin ones ("[of Russia’s]" is an
    editorial insertion, "[朝俄拥抱]" an original)."""
    letters = [c for c in fragment if c.isalpha()]
    foreign = len(_NON_LATIN_LETTER.findall(fragment))
    return foreign > 0 and foreign * 2 >= len(letters)


def _language_of_script(fragment: str) -> str | None:
    for script, language in _SCRIPTS:
        if re.search(rf"\p{{Script={script}}}", fragment):
            return language
    return None


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _quotations(text: str, sentence: _Sentence) -> list[_Quotation]:
    found = []
    previous_end = sentence.start
    for match in _QUOTATION.finditer(text, sentence.start, sentence.end):
        group = "c" if match.group("c") is not None else "s"
        content = _stripped(text, *match.span(group))
        if content[0] == content[1]:
            continue
        end = match.end()
        original = None
        bracket = _BRACKET.match(text, end + _leading_space(text, end, sentence.end), sentence.end)
        if bracket and _is_original(bracket.group("b")):
            original = _stripped(text, *bracket.span("b"))
            end = bracket.end()
        window = text[max(previous_end, match.start() - 80):match.start()]
        is_title = _HEADLINE_WORD.search(window) is not None
        found.append(_Quotation(match.start(), end, content, original, is_title))
        previous_end = end
    return found


def _leading_space(text: str, i: int, end: int) -> int:
    n = 0
    while i + n < end and text[i + n].isspace():
        n += 1
    return n


def _before(text: str, sentence: _Sentence, i: int) -> str:
    """The part of the sentence just before position i, at most _LOOKBACK characters."""
    return text[max(sentence.start, i - _LOOKBACK):i]


class _Spans:
    """A fixed set of [start, end) ranges, asked whether a range overlaps any of them. Sorted,
    with running maximum ends, so that a sentence with thousands of brackets stays fast."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        ordered = sorted(spans)
        self._starts = [a for a, _ in ordered]
        self._max_ends = list(accumulate((b for _, b in ordered), max))

    def overlaps(self, span: tuple[int, int]) -> bool:
        k = bisect_left(self._starts, span[1])  # ranges starting before `span` ends
        return k > 0 and self._max_ends[k - 1] > span[0]


def _masked_spans(text: str, sentence: _Sentence) -> list[tuple[int, int]]:
    """Quotations and brackets: cues are never looked for inside them."""
    spans = [m.span() for m in _QUOTATION.finditer(text, sentence.start, sentence.end)]
    spans += [m.span() for m in _BRACKET.finditer(text, sentence.start, sentence.end)]
    return spans


def _mask(fragment: str) -> str:
    return re.sub(r"“[^“”]*”|\[[^\[\]]*\]|\"[^\"]*\"", " ", fragment)


# ---------------------------------------------------------------------------------------------
# C1-C5: cues.


def _explicit_cues(text: str, sentence: _Sentence) -> list[_Cue]:
    masked = _masked_spans(text, sentence)
    cues = _bracketed_cues(text, sentence)
    taken = _Spans(masked + [(c.start, c.end) for c in cues])
    for match in _MEDIA_CUE.finditer(text, sentence.start, sentence.end):
        span = _trim_name(text, *match.span("name"))
        if span is None or taken.overlaps(span):
            continue
        cues.append(_Cue(span[0], span[1], "media", outlet=text[span[0]:span[1]]))
    taken = _Spans(masked + [(c.start, c.end) for c in cues])
    for match in _NATIONAL_CUE.finditer(text, sentence.start, sentence.end):
        span = match.span()
        after = text[span[1]:span[1] + 2]
        if taken.overlaps(span) or re.match(r"\s\p{Lu}", after):
            continue  # "the Chinese academic journal Northeast Asia Forum": the name is the cue
        cues.append(_Cue(span[0], span[1], "national", outlet=match.group("np")))
    return cues


def _bracketed_cues(text: str, sentence: _Sentence) -> list[_Cue]:
    cues = []
    for bracket in _BRACKET.finditer(text, sentence.start, sentence.end):
        if not _is_original(bracket.group("b")):
            continue
        before = text[max(sentence.start, bracket.start() - _LOOKBACK):bracket.start()].rstrip()
        if before.endswith(("”", '"')):
            continue  # a quotation's original (A1), not a name's
        span = _name_before(text, sentence.start, bracket.start())
        if span is None:
            continue  # a lower-case term gloss, not a publication
        cue = _Cue(span[0], bracket.end(), "bracketed", outlet=text[span[0]:span[1]],
                   outlet_original=_clean(bracket.group("b")))
        cue.supported = _supported(text, sentence, span, bracket.end())
        cues.append(cue)
    return cues


def _name_before(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The capitalised name ending just before `end` ("the leading magazine Finance and
    Economics" -> "Finance and Economics"), or None."""
    tokens = list(re.finditer(r"\S+", text, pos=max(start, end - _LOOKBACK), endpos=end))
    picked: list[re.Match[str]] = []
    for token in reversed(tokens):
        word = token.group()
        if word[-1] in ",;:()“”\"—–":
            break
        if word in _CONNECTORS or (word[0].isupper() and re.match(r"\p{Latin}", word[0])
                                   and word not in _NOT_NAME_START):
            picked.append(token)
        else:
            break
    picked.reverse()
    while picked and picked[0].group() in _CONNECTORS:
        picked.pop(0)
    while picked and picked[-1].group() in _CONNECTORS:
        picked.pop()
    if not picked or len(picked) > _MAX_NAME_WORDS:
        return None  # a long run of capitals is a title-case heading, not a name
    return picked[0].start(), picked[-1].end()


def _trim_name(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Drop a leading "The" and a trailing possessive or full stop; refuse a month or a
    sentence word ("an editorial in March")."""
    name = text[start:end]
    if name.startswith("The "):
        start += 4
    name = text[start:end]
    trailing = re.search(r"(?:’s|'s|\.)$", name)
    if trailing and not re.search(r"\b\p{Lu}\.$", name):
        end -= len(trailing.group())
    words = text[start:end].split()
    if not words or words[0] in _NOT_NAME_START or len(words) > _MAX_NAME_WORDS:
        return None
    return start, end


def _supported(text: str, sentence: _Sentence, name: tuple[int, int], end: int) -> bool:
    """Is a bracketed name a publication rather than a glossed term?"""
    words = text[max(sentence.start, name[0] - _LOOKBACK):name[0]].split()[-4:]
    preceding = " ".join(words)
    if re.search(rf"\b(?:{_MEDIUM}|{_GENRE}|{_MEDIA_HEAD})$|\b(?:from|by|according\s+to)\b",
                 preceding, re.I):
        return True
    if _NAME_MEDIA.search(text[name[0]:name[1]]):
        return True
    return _REPORTING_AFTER.match(text, end, sentence.end) is not None


def _later_cues(text: str, sentence: _Sentence, cues: list[_Cue],
                names: set[str | None]) -> list[_Cue]:
    """C4 (other mentions of names found as outlets) and C5 (anaphora)."""
    taken = _Spans(_masked_spans(text, sentence) + [(c.start, c.end) for c in cues])
    found: list[_Cue] = []
    for name in sorted(n for n in names if n):
        for span in _mentions(text, name, sentence.start, sentence.end):
            if not taken.overlaps(span):
                found.append(_Cue(span[0], span[1], "known", outlet=name))
    for pattern, kind in ((_ANAPHOR, "anaphor"), (_PASSIVE, "passive")):
        for match in pattern.finditer(text, sentence.start, sentence.end):
            if not taken.overlaps(match.span()):
                found.append(_Cue(match.start(), match.end(), kind))
    return found


def _mentions(text: str, name: str, start: int, end: int) -> list[tuple[int, int]]:
    """Whole-word occurrences of `name` in text[start:end] (plain search: names come from the
    text, and compiling each as a pattern would cost more than the search)."""
    spans = []
    at = text.find(name, start, end)
    while at >= 0:
        after = at + len(name)
        if not (at > 0 and text[at - 1].isalnum()) and not (after < len(text)
                                                           and text[after].isalnum()):
            spans.append((at, after))
        at = text.find(name, at + 1, end)
    return spans


# ---------------------------------------------------------------------------------------------
# A1-A5: attribution.


def _attribute(text: str, sentence: _Sentence, cues: list[_Cue], drafts: list[_Draft],
               current: _Draft | None) -> _Draft | None:
    """Give each quotation of the sentence to a cue and each cue with evidence to a source;
    returns the source anaphora in the next sentence refer to."""
    live = [c for c in cues if c.kind not in _ANAPHORIC or current is not None]
    assigned: dict[int, list[_Quotation]] = {}
    for quotation in _quotations(text, sentence):
        target = _target(text, quotation, live)
        if target is not None:
            assigned.setdefault(target, []).append(quotation)
    previous_end = sentence.start
    for index, cue in enumerate(live):
        quotations = assigned.get(index, [])
        report = None if quotations else _report(text, sentence, cue)
        if quotations or report or (cue.kind == "bracketed" and cue.supported):
            last = max([cue.end] + [q.open for q in quotations])
            context = _mask(text[previous_end:last])
            draft = current if cue.kind in _ANAPHORIC else _draft_for(
                text, sentence, cue, quotations, drafts)
            if draft is None:  # an anaphor after a new source failed to form; nothing to add to
                continue
            draft.context += " " + context
            _add_evidence(text, draft, quotations, report)
            current = draft
        previous_end = cue.end
    return current


def _target(text: str, quotation: _Quotation, cues: list[_Cue]) -> int | None:
    """Index of the cue a quotation belongs to (A2)."""
    if quotation.is_title:
        for index, cue in enumerate(cues):
            between = text[quotation.end:cue.start]
            if cue.start >= quotation.end and cue.kind not in _ANAPHORIC and re.fullmatch(
                    r"\s*,?\s*(?:in|from|of|by|at)\s+[^“”\"\[\].;:!?]{0,60}", between):
                return index
    preceding = [i for i, c in enumerate(cues) if c.end <= quotation.open]
    if preceding:
        return preceding[-1]
    following = [i for i, c in enumerate(cues) if c.start >= quotation.end]
    return following[0] if following else None


def _report(text: str, sentence: _Sentence, cue: _Cue) -> str | None:
    """A3: the unquoted passage a cue reports, if a reporting verb follows it."""
    before = _before(text, sentence, cue.start)
    if cue.kind == "passive" or re.search(r"\b[Aa]ccording\s+to\s+(?:the\s+)?$", before):
        return text[sentence.start:sentence.end].strip()  # the cue is not the subject
    if _REPORTING_AFTER.match(text, cue.end, sentence.end) is None:
        return None
    return text[cue.start:sentence.end].strip()


def _draft_for(text: str, sentence: _Sentence, cue: _Cue, quotations: list[_Quotation],
               drafts: list[_Draft]) -> _Draft:
    """A5: the existing source this cue refers to, or a new one."""
    assert cue.outlet is not None
    outlet = re.sub(r"^(?:[Tt]he)\s+", "", _clean(cue.outlet))
    title = next((_content(text, q) for q in quotations if q.is_title), None)
    for draft in drafts:
        if draft.outlet.casefold() == outlet.casefold() and (
                draft.title is None or title is None or draft.title == title):
            draft.outlet_original = draft.outlet_original or cue.outlet_original
            return draft
    draft = _Draft(outlet=outlet, first=cue.start, outlet_original=cue.outlet_original,
                   nationality=_nationality(text, sentence, cue), date=_date(text, sentence, cue),
                   description=_description(text, sentence, cue))
    drafts.append(draft)
    return draft


def _add_evidence(text: str, draft: _Draft, quotations: list[_Quotation],
                  report: str | None) -> None:
    for quotation in quotations:
        english = _content(text, quotation)
        original = _clean(text[slice(*quotation.original)]) if quotation.original else None
        if original:
            draft.originals.append(original)
        if quotation.is_title and draft.title in (None, english):
            draft.title, draft.original_title = english, original
        elif quotation.is_title:
            draft.extra_titles += [english] + ([original] if original else [])
        else:
            draft.quotes += [english] + ([original] if original else [])
    if report:
        draft.quotes.append(report)


def _content(text: str, quotation: _Quotation) -> str:
    """F4: the quoted words; a fragment (lower-case start) loses the article's full stop."""
    words = text[slice(*quotation.content)].rstrip(",;: ")
    if words[:1].islower() and words.endswith(".") and not words.endswith(". . ."):
        words = words[:-1]
    return words.strip()


def _clean(fragment: str) -> str:
    return fragment.strip()


# ---------------------------------------------------------------------------------------------
# F1-F6: fields.


def _nationality(text: str, sentence: _Sentence, cue: _Cue) -> str | None:
    """F1 fallback: a nationality adjective in the cue or the few words before it."""
    words = " ".join(_before(text, sentence, cue.start).split()[-4:] + [text[cue.start:cue.end]])
    match = re.search(rf"\b{_NAT}\b", words)
    return _NATIONALITY[" ".join(match.group().lower().split())] if match else None


def _date(text: str, sentence: _Sentence, cue: _Cue) -> str | None:
    """F3: the time expression of the sentence nearest the cue, outside quotations."""
    masked = _Spans(_masked_spans(text, sentence))
    best: tuple[int, str] | None = None
    for match in _DATE.finditer(text, sentence.start, sentence.end):
        if masked.overlaps(match.span()):
            continue
        distance = max(0, cue.start - match.end(), match.start() - cue.end)
        if best is None or distance < best[0]:
            best = (distance, match.group())
    return " ".join(best[1].split()) if best else None


def _description(text: str, sentence: _Sentence, cue: _Cue) -> str | None:
    """F5: "an unsigned editorial from X" -> "Unsigned editorial"; "an analysis of Y was
    published in X" -> "Analysis of Y"."""
    before = _before(text, sentence, cue.start)
    match = re.search(
        rf"\b[Aa]n?\s+(?P<d>(?:[\w-]+\s+){{0,3}}?{_GENRE})\s+(?:from|by|in)\s+(?:the\s+)?$", before)
    if match is None:
        match = re.search(
            rf"\b[Aa]n?\s+(?:[\w-]+\s+(?:and\s+)?){{0,3}}?(?P<d>{_GENRE}\s+(?:of|on|about)\s+"
            rf"[^,;:“”\[\]]+?)\s+(?:was|were|has\s+been|had\s+been|is|appeared)\s+(?:published|"
            rf"printed|released|aired|broadcast|run)\b", before)
    if match is None:
        return None
    words = " ".join(match.group("d").split())
    return words[0].upper() + words[1:]


def _type(draft: _Draft) -> str | None:
    """F2: the kind of source, from the media nouns around its cues."""
    words = draft.context + " " + draft.outlet
    if draft.title and not draft.quotes and _HEADLINE_WORD.search(words):
        return "headline"
    if re.search(r"\beditorials?\b", words, re.I):
        return "editorial"
    medium = _medium(words)
    if medium == "news broadcast":
        return medium
    genre = re.search(r"\b(appraisal|commentary|interview|review|op-ed|column|essay)\b", words,
                      re.I)
    if genre:
        return f"{medium} {genre.group(1).lower()}" if medium else genre.group(1).lower()
    if medium == "news agency":
        return "news agency report"
    if medium:
        return f"{medium} article"
    return "headline" if _HEADLINE_WORD.search(words) else None


def _medium(words: str) -> str | None:
    for pattern, medium in (
        (r"\b(?:TV|television|radio|broadcasts?|broadcasters?|channel)\b", "news broadcast"),
        (r"\bmagazines?\b", "magazine"),
        (r"\bjournals?\b", "journal"),
        (r"\b(?:newspapers?|dailies|daily|weekly|tabloids?)\b", "newspaper"),
        (r"\bpress\b", "press"),
        (r"\bagency\b", "news agency"),
        (r"\b(?:websites?|blogs?)\b", "online"),
    ):
        if re.search(pattern, words, re.I):
            return medium
    return None


def _language(draft: _Draft) -> str:
    """F1: script of an original, else the nationality of the cue, else English."""
    # All originals together: Japanese writes outlet names in Han only, its sentences with Kana.
    originals = " ".join(f for f in [draft.outlet_original, draft.original_title, *draft.originals]
                         if f)
    return _language_of_script(originals) or draft.nationality or "en"


def _verified(text: str, quotes: list[str]) -> list[str]:
    """F4: keep only passages found in the text (they are cut from it, so this is a guard), each
    once."""
    kept: list[str] = []
    for quote in quotes:
        if quote and quote not in kept and (text.find(quote) >= 0 or find_folded(text, quote)):
            kept.append(quote)
    return kept


def _slug(words: str) -> str:
    ascii_words = unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode()
    ascii_words = re.sub(r"['’]", "", ascii_words.lower())
    return re.sub(r"[^a-z0-9]+", "-", ascii_words).strip("-")[:60].strip("-")


def _ids(drafts: list[_Draft]) -> list[str]:
    """F6: outlet slug, plus a title slug when one outlet has several sources; unique."""
    base = [_slug(d.outlet) or "source" for d in drafts]
    ids: list[str] = []
    for draft, slug in zip(drafts, base, strict=True):
        if base.count(slug) > 1:
            detail = _slug(" ".join((draft.title or draft.description or "").split()[:3]))
            slug = f"{slug}-{detail}" if detail else slug
        candidate, n = slug, 2
        while candidate in ids:
            candidate, n = f"{slug}-{n}", n + 1
        ids.append(candidate)
    return ids


def _finalise(text: str, drafts: list[_Draft]) -> list[SourceEntry]:
    drafts = sorted(drafts, key=lambda d: d.first)
    entries = []
    for draft, source_id in zip(drafts, _ids(drafts), strict=True):
        quotes = draft.quotes + draft.extra_titles
        if not quotes and draft.title:  # known only by its headline: the headline is the quote
            quotes = [draft.title] + ([draft.original_title] if draft.original_title else [])
        entries.append(SourceEntry(
            id=source_id, outlet=draft.outlet, outlet_original=draft.outlet_original,
            title=draft.title or draft.description, original_title=draft.original_title,
            type=_type(draft), language=_language(draft), date=draft.date,
            quotes=_verified(text, quotes),
        ))
    return entries
