"""Sentence, clause and keyword-token splitting for English, Chinese and Russian text.

Every span is a half-open [start, end) offset pair into the caller's text: answers cite spans of
the stored document, so nothing here rewrites the text (no quote or white space normalisation).
Spans never begin or end with white space (`str.isspace`).

Sentence rules, in order of precedence:

* A blank line always ends a sentence (and a paragraph).
* A single line break ends a sentence unless it looks like a soft wrap: the next line starts with
  a lowercase letter, or the line before is long (a wrapped PDF or plain-text line) and does not
  end in sentence punctuation, or the break is inside a short quotation or bracket.
* Inside a quotation (“…”, «…», „…“, "…") or a bracket ([…], (…), 【…】, …) no sentence ends,
  unless that quotation is longer than `MAX_PROTECTED` characters (then it is prose, not a quote).
* `. ! ? …` end a sentence when followed by white space and a word that does not start in
  lowercase; `。！？` end one with or without white space. Closing quotes and brackets right
  after the terminator belong to the sentence; a `[` right after it (a bracketed original or
  translation) continues the sentence.
* A full stop does not end a sentence after an abbreviation (Mr., e.g., U.S., т.е., г., a single
  initial such as "J."), unless the next word is a common sentence opener ("The", "В", ...);
  never inside a number (3.5) or a spaced ellipsis (". . .", also with NBSPs).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import regex

# A quotation or bracket longer than this is treated as ordinary prose for sentence splitting.
MAX_PROTECTED = 400

# ---------------------------------------------------------------------------------------------
# Character classes. Line breaks are the ones `str.splitlines` knows, so callers that split on
# lines and this module agree.
_LB_CHARS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LB = "(?:\r\n|\r(?!\n)|[\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029])"  # CRLF is one break
_HWS = rf"[^\S{_LB_CHARS}]"  # white space that is not a line break
_BLANK_LINES = re.compile(rf"{_LB}(?:{_HWS}*{_LB})+")
_LINE_BREAK = re.compile(rf"{_HWS}*{_LB}{_HWS}*")

_CJK_STOPS = "。！？｡"
_TERMINATORS = ".!?…‼⁇⁈⁉" + _CJK_STOPS
_CLOSERS = "\"'”’»」』)]）］】》〉›"
_TERM_RUN = re.compile("(?:[" + re.escape(_TERMINATORS) + "]+[" + re.escape(_CLOSERS) + "]*)+")
# ". . ." with ordinary, no-break or thin spaces between the dots (3 or more dots).
_SPACED_ELLIPSIS = re.compile(r"\.(?:[ \u00a0\u202f\u2009]\.){2,}")
# Opening punctuation that may precede the first word of a sentence.
_NEXT_WORD = re.compile(r"[\"'“‘«„(¿¡*_\-–—]*(\w+)")

# Opener -> the closers that end it. “ closes „ (Russian/German) but otherwise opens.
_PAIRS: dict[str, str] = {
    "“": "”",
    "„": "“”",
    "«": "»",
    '"': '"',
    "(": ")",
    "[": "]",
    "（": "）",
    "［": "］",
    "【": "】",
    "「": "」",
    "『": "』",
    "《": "》",
    "〈": "〉",
}
_ENCLOSURE_CHARS = re.compile("[" + re.escape("".join(_PAIRS) + "".join(_PAIRS.values())) + "]")
_STACK_SEARCH = 16  # how deep a closer looks for its opener (bounds adversarial input)

# Han ideographs (with 々 and 〇), Hiragana and Katakana: scripts written without spaces.
_CJK_CLASS = (
    "\u3005\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
)
_CJK_CHAR = re.compile(f"[{_CJK_CLASS}]")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Lower-cased, without the final dot. Dotted initialisms (u.s, e.g, т.е) and single letters
# are recognised by shape, so they are not listed.
_ABBREVIATIONS = _words(
    """
    mr mrs ms messrs dr prof rev hon sen rep gov gen col capt cpt lt sgt adm cmdr maj pres fr
    sr jr st mt ft vs etc al cf approx ca est dept univ assn bros inc ltd co corp plc
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat
    гг вв др пр им ул кв стр см рис табл илл млн млрд тыс руб коп долл проф акад доц ген рук
    зам тов гос обл чел ок напр
    """
)
# Abbreviations that are also ordinary words: an abbreviation only before a number ("No. 5").
_NUMBER_ABBREVIATIONS = _words("no nos nr vol vols p pp fig figs ch sec art para op ed")
# Words that, capitalised after an abbreviation's full stop, show a new sentence has begun.
_SENTENCE_OPENERS = _words(
    """
    the this that these those it its in on at but and however we they he she i a an there as
    for if when while still also yet so such after before then thus now our their his her
    what why how who where many some most all no not one to with by from since although
    though because meanwhile moreover indeed nevertheless instead first finally
    в во на но и а однако это этот эта эти он она оно они мы я вы так как по при после для
    с со к из у если когда тогда также кроме поэтому впрочем что кто где почему все всё не
    нет да уже еще ещё сейчас теперь затем
    """
)


# ---------------------------------------------------------------------------------------------
# Small helpers


def _bounds(text: str, start: int, end: int | None) -> tuple[int, int]:
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"bad range [{start}, {end}) for a text of {len(text)} characters")
    return start, end


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _append_stripped(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    start, end = _strip(text, start, end)
    if start < end:
        spans.append((start, end))


def _is_cjk(ch: str) -> bool:
    return _CJK_CHAR.match(ch) is not None


def split_paragraphs(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Blocks of `text[start:end]` separated by blank lines, stripped."""
    start, end = _bounds(text, start, end)
    spans: list[tuple[int, int]] = []
    pos = start
    for match in _BLANK_LINES.finditer(text, start, end):
        _append_stripped(spans, text, pos, match.start())
        pos = match.end()
    _append_stripped(spans, text, pos, end)
    return spans


# ---------------------------------------------------------------------------------------------
# Sentences


class _Block:
    """One paragraph with the positions where a sentence may not end precomputed."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text = text
        self.start = start
        self.end = end
        self._lo, self._hi = _protected_ranges(text, start, end)
        ellipses = [m.span() for m in _SPACED_ELLIPSIS.finditer(text, start, end)]
        self._ell_starts = [s for s, _ in ellipses]
        self._ell_ends = [e for _, e in ellipses]

    def protected(self, pos: int) -> bool:
        """True if a sentence ending at `pos` would cut a short quotation or bracket."""
        i = bisect_right(self._lo, pos) - 1
        return i >= 0 and pos <= self._hi[i]

    def in_ellipsis(self, start: int, end: int) -> bool:
        i = bisect_right(self._ell_starts, end - 1) - 1
        return i >= 0 and self._ell_ends[i] > start


def _protected_ranges(text: str, start: int, end: int) -> tuple[list[int], list[int]]:
    """Merged, sorted [lo, hi] ranges of forbidden sentence ends: for a quotation or bracket
    opened at o and closed at c (or running to the end of the paragraph), the ends o < p <= c.
    """
    stack: list[tuple[str, int]] = []
    ranges: list[tuple[int, int]] = []
    for match in _ENCLOSURE_CHARS.finditer(text, start, end):
        ch, pos = match.group(), match.start()
        depth = next(
            (
                d
                for d in range(len(stack) - 1, max(-1, len(stack) - 1 - _STACK_SEARCH), -1)
                if ch in _PAIRS[stack[d][0]]
            ),
            None,
        )
        if depth is not None:
            opened = stack[depth][1]
            del stack[depth:]
            if pos - opened - 1 <= MAX_PROTECTED:
                ranges.append((opened + 1, pos))
        elif ch in _PAIRS:
            stack.append((ch, pos))
    for _, opened in stack:  # unclosed: protects to the end of the paragraph
        if end - opened - 1 <= MAX_PROTECTED:
            ranges.append((opened + 1, end - 1))
    ranges.sort()
    lo: list[int] = []
    hi: list[int] = []
    for a, b in ranges:
        if lo and a <= hi[-1] + 1:
            hi[-1] = max(hi[-1], b)
        else:
            lo.append(a)
            hi.append(b)
    return lo, hi


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of `text[start:end]` as offsets into `text`, stripped, in order,
    non-overlapping, together covering every non-white-space character of the range."""
    start, end = _bounds(text, start, end)
    spans: list[tuple[int, int]] = []
    for block_start, block_end in split_paragraphs(text, start, end):
        block = _Block(text, block_start, block_end)
        for seg_start, seg_end in _segments(block):
            pos = seg_start
            for cut in _sentence_ends(block, seg_start, seg_end):
                _append_stripped(spans, text, pos, cut)
                pos = cut
            _append_stripped(spans, text, pos, seg_end)
    return spans


def _segments(block: _Block) -> Iterable[tuple[int, int]]:
    """The block cut at its hard line breaks."""
    text = block.text
    seg_start = line_start = block.start
    for match in _LINE_BREAK.finditer(text, block.start, block.end):
        if _is_hard_break(block, line_start, match.start(), match.end()):
            yield seg_start, match.start()
            seg_start = match.end()
        line_start = match.end()
    yield seg_start, block.end


def _is_hard_break(block: _Block, line_start: int, line_end: int, next_start: int) -> bool:
    text = block.text
    nxt = text[next_start]
    if nxt.islower() or block.protected(line_end):
        return False
    last = text[line_end - 1]
    if last in _TERMINATORS or last in _CLOSERS or last == ":" or not nxt.isalpha():
        return True
    # A long line that stops mid-sentence was wrapped (PDF, hard-wrapped plain text); a short
    # one is a title, a heading or a list item. CJK lines hold about twice the text per char.
    wrap_width = 30 if _is_cjk(last) else 60
    return line_end - line_start < wrap_width


def _sentence_ends(block: _Block, seg_start: int, seg_end: int) -> Iterable[int]:
    for match in _TERM_RUN.finditer(block.text, seg_start, seg_end):
        if _ends_sentence(block, match, seg_start, seg_end):
            yield match.end()


def _ends_sentence(block: _Block, match: re.Match[str], seg_start: int, seg_end: int) -> bool:
    text = block.text
    end = match.end()
    if end >= seg_end or block.in_ellipsis(match.start(), end) or block.protected(end):
        return False
    run = match.group()
    cjk_stop = any(ch in _CJK_STOPS for ch in run)
    if not text[end].isspace():
        if cjk_stop:
            return True
        # A Latin full stop typed between two Han characters (平壤.朝鲜) is a full stop.
        return run == "." and _is_cjk(text[match.start() - 1]) and _is_cjk(text[end])
    nxt = end
    while nxt < seg_end and text[nxt].isspace():
        nxt += 1
    if nxt >= seg_end:
        return False
    if cjk_stop:
        return True
    if text[nxt] == "[":
        return False
    word_match = _NEXT_WORD.match(text, nxt, min(seg_end, nxt + 64))
    next_word = word_match.group(1) if word_match else ""
    if next_word[:1].islower():
        return False
    if run.rstrip(_CLOSERS) != ".":  # ! ? … ... end a sentence before a capital
        return True
    return not _is_abbreviation_stop(block, match.start(), seg_start, next_word, word_match)


def _is_abbreviation_stop(
    block: _Block, dot: int, seg_start: int, next_word: str, word_match: re.Match[str] | None
) -> bool:
    """True if the full stop at `dot` belongs to an abbreviation, initial or list number."""
    text = block.text
    tok_start = dot
    while tok_start > max(seg_start, dot - 32) and (
        text[tok_start - 1].isalnum() or text[tok_start - 1] == "."
    ):
        tok_start -= 1
    token = text[tok_start:dot].strip(".")
    if not token:
        return False
    if _at_line_start(text, seg_start, tok_start) and (
        (token.isdigit() and len(token) <= 3) or (len(token) == 1 and token.isalpha())
    ):
        return True  # "1. Item", "a) b." list markers
    folded = token.casefold()
    next_is_number = next_word[:1].isdigit()
    is_abbreviation = (
        (len(token) == 1 and token.isalpha())
        or folded in _ABBREVIATIONS
        or _is_initialism(token)
        or (folded in _NUMBER_ABBREVIATIONS and next_is_number)
    )
    if not is_abbreviation:
        return False
    if next_is_number:
        return True
    return not _is_sentence_opener(text, next_word, word_match)


def _at_line_start(text: str, seg_start: int, pos: int) -> bool:
    while pos > seg_start and text[pos - 1].isspace():
        if text[pos - 1] in _LB_CHARS:
            return True
        pos -= 1
    return pos == seg_start


def _is_initialism(token: str) -> bool:
    parts = token.split(".")
    return len(parts) > 1 and all(p.isalpha() and len(p) <= 3 for p in parts)


def _is_sentence_opener(text: str, word: str, word_match: re.Match[str] | None) -> bool:
    if word.casefold() not in _SENTENCE_OPENERS:
        return False
    # "А. В. Суворов": a one-letter word followed by a full stop is another initial.
    after = word_match.end(1) if word_match else 0
    return not (len(word) == 1 and text[after : after + 1] == ".")


# ---------------------------------------------------------------------------------------------
# Clauses

_CLAUSE_END = re.compile(r"(?:[;:,.!?…](?=\s)|[；：，、。！？]|[—–]+)[" + re.escape(_CLOSERS) + "]*")


def split_clauses(text: str, start: int, end: int, max_chars: int = 400) -> list[tuple[int, int]]:
    """Split an over-long span into pieces of at most `max_chars`, preferring clause
    punctuation (; : , — – ；：，、), merging adjacent clauses greedily, and cutting at white
    space or, failing that, at any character as a last resort. Spans are stripped; a span
    already short enough comes back whole (stripped)."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    start, end = _bounds(text, start, end)
    start, end = _strip(text, start, end)
    if start >= end:
        return []
    if end - start <= max_chars:
        return [(start, end)]
    cuts = [m.end() for m in _CLAUSE_END.finditer(text, start, end)]
    pieces: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        pos, _ = _strip(text, pos, end)
        if end - pos <= max_chars:
            pieces.append((pos, end))
            break
        limit = pos + max_chars
        i = bisect_right(cuts, limit) - 1
        cut = cuts[i] if i >= 0 and cuts[i] > pos else _hard_cut(text, pos, limit)
        _append_stripped(pieces, text, pos, cut)
        pos = cut
    return pieces


def _hard_cut(text: str, pos: int, limit: int) -> int:
    """The last white space in (pos, limit], else `limit` moved off a combining mark."""
    for i in range(limit, pos, -1):
        if text[i].isspace():
            return i
    cut = limit
    while cut > pos + 1 and unicodedata.combining(text[cut]):
        cut -= 1
    return cut


# ---------------------------------------------------------------------------------------------
# Keyword tokens

# Stdlib `re` on purpose: about twice as fast as `regex` here, and tokenize is the hot path.
_WORD = rf"[^\W_{_CJK_CLASS}]+(?:['’.][^\W_{_CJK_CLASS}]+)*"
TOKEN = re.compile(rf"[{_CJK_CLASS}]+|{_WORD}")
# Combining diacritics left after NFKC (Russian stress marks: приве́т) would split words.
_COMBINING = re.compile("[\u0300-\u036f]")
_CYRILLIC = regex.compile(r"\p{Cyrillic}")
_LATIN = regex.compile(r"\p{Latin}")

EN_STOPWORDS = _words(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can cannot could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in into
    is it its itself just me more most my myself no nor not now of off on once only or other
    our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom whose why will with would you your yours yourself
    yourselves may might must shall us s t d ll m re ve
    dont doesnt didnt isnt arent wasnt werent cant couldnt wont wouldnt shouldnt hasnt havent
    hadnt im ive id youre youve youd hes shes weve theyre theyve lets thats whats theres heres
    whos according tell please
    """
)
_RU_STOPWORDS = _words(
    """
    и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее
    мне было вот от меня еще нет о об из ему теперь когда даже ну ли если уже или ни быть был
    него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо
    ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда кто
    этот того потому этого какой какая какое какие каких каким какую совсем ним здесь этом
    почти мой тем чтобы нее сейчас были куда зачем всех никогда можно при наконец об другой
    хоть после над больше тот через эти нас про всего них много разве эту моя впрочем свою
    этой перед иногда чуть том нельзя такой им более всегда конечно всю между это эта
    который которая которое которые которого которой которых почему сколько ли также
    """
)


@lru_cache(maxsize=8)
def _stemmer(language: str) -> Any:  # snowballstemmer is untyped
    import snowballstemmer

    return snowballstemmer.stemmer(language)


@lru_cache(maxsize=1 << 18)
def _stem(word: str, language: str) -> str:
    return _stemmer(language).stemWord(word)


@lru_cache(maxsize=1 << 18)
def word_tokens(raw: str) -> tuple[str, ...]:
    """Index tokens for one matched word (cached: vocabularies are small, words repeat)."""
    if "." in raw:
        parts = raw.split(".")
        if all(p.isalpha() and len(p) <= 2 for p in parts):  # U.S., e.g., т.е.
            return (raw.replace(".", "").casefold().replace("ё", "е"),)
        if all(p.isdigit() for p in parts):  # 3.5, 1.2.3
            return (raw,)
        return tuple(t for p in parts if p for t in word_tokens(p))
    word = raw.casefold().replace("ё", "е").replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    word = word.replace("'", "")
    if not word:
        return ()
    # An acronym (US, IT, WHO) is a keyword even when its lowercase form is a stop word.
    is_acronym = len(raw) > 1 and raw.isupper()
    if _CYRILLIC.search(word):
        if word in _RU_STOPWORDS and not is_acronym:
            return ()
        return (_stem(word, "russian"),)
    if word in EN_STOPWORDS and not is_acronym:
        return ()
    if word.isascii() and not word.isalpha():
        return (word,)  # numbers and codes such as 2016, f35
    if _LATIN.search(word):
        return (_stem(word, "english"),)
    return (word,)


# Chinese function characters (particles, question words, demonstratives) that carry no topic, as
# the English and Russian stop words do not: in a Chinese question over English text they would
# otherwise be its rarest, heaviest terms. Characters that also begin content words (和平, 地区, 个人)
# are not here.
ZH_STOP = re.compile("[的了吗呢吧啊呀这那哪么什谁是也篇些怎]+")


def tokenize(text: str) -> list[str]:
    """Keyword tokens for BM25, the same rules for documents and queries.

    * NFKC, then case-folded; `ё` -> `е`.
    * Hyphens and other punctuation separate words: "China-U.S." -> china, us. Dotted
      initialisms join up (U.S. -> us, e.g. -> eg); numbers keep their dots (3.5).
    * Apostrophes: a possessive 's is dropped (Russia’s -> russia), others are removed
      (don't -> dont, then a stop word).
    * English and Russian stop words (question words included) are dropped, except an
      all-capitals acronym (US, WHO); remaining Latin words get the English Snowball stemmer,
      Cyrillic words the Russian one.
    * Han, Hiragana and Katakana runs give character unigrams and bigrams, after Chinese function
      characters (的, 是, 什么, 哪, 谁 ...) are dropped and split the run.
    * Words are runs of letters and digits (`str.isalnum`); combining diacritics are dropped
      after NFKC, so scripts whose vowel signs are combining marks split oddly (not our three).
    """
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKC", text))
    tokens: list[str] = []
    extend = tokens.extend
    is_cjk = _CJK_CHAR.match
    for raw in TOKEN.findall(text):
        if raw[0] >= "\u3005" and is_cjk(raw):
            for run in ZH_STOP.split(raw):
                extend(run)  # unigrams
                extend([run[i : i + 2] for i in range(len(run) - 1)])  # bigrams
        else:
            extend(word_tokens(raw))
    return tokens


# ---------------------------------------------------------------------------------------------
# Language


_SCRIPT_PATTERNS = {
    "han": regex.compile(r"\p{Han}+"),
    "cyrillic": regex.compile(r"\p{Cyrillic}+"),
    "latin": regex.compile(r"\p{Latin}+"),
}
_LETTER = regex.compile(r"\p{L}+")


def script_counts(text: str) -> dict[str, int]:
    """Letters per script: han, cyrillic, latin, and other letters."""
    counts = {name: len(text) - len(p.sub("", text)) for name, p in _SCRIPT_PATTERNS.items()}
    letters = len(text) - len(_LETTER.sub("", text))
    counts["other"] = letters - sum(counts.values())
    return counts


def detect_language(text: str) -> str:
    """'zh' if Han characters dominate the letters, 'ru' if Cyrillic does, else 'en'.

    A Han character carries about a word's worth of meaning, so it counts as two letters
    against Latin and Cyrillic ones; a Chinese text quoting English names stays Chinese.
    """
    counts = script_counts(text)
    han, cyrillic, latin = 2 * counts["han"], counts["cyrillic"], counts["latin"]
    if han > cyrillic and han > latin:
        return "zh"
    if cyrillic > latin and cyrillic >= han:
        return "ru"
    return "en"
