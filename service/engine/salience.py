"""How much a question's word says about what is asked, from a fixed, language-wide frequency.

Takes question text; gives keyword tokens (the same tokens `briefing_core.text.tokenize` gives documents)
with a weight each. The weight comes from how common the surface word is in its language
(`wordfreq`'s Zipf scale, data shipped inside the package), so it does not move when documents are
ingested: a store of thousands of unrelated chunks weighs "superpower" exactly as the briefing
alone does. A word wordfreq does not know (a rare name, a transliteration) gets the highest weight.

Words that describe the asking rather than the topic ("article", "say", "according", 文章, статья)
weigh little: "what does the article say about X" is about X.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Zipf 7 is "the"; 1 is a word seen once in a billion. Weight = CEILING - zipf, bounded.
CEILING = 7.0
MIN_WEIGHT = 0.5
MAX_WEIGHT = 6.0
META_FACTOR = 0.25

_META_WORDS = """
article articles piece op-ed author authors text document documents briefing say says said saying
tell tells told mention mentions mentioned describe describes described according give gives given
main key point points question answer explain explains explained suggest suggests view views
source sources cite cites cited quote quotes quoted write writes wrote written state states stated
argue argues argued think thinks consider considers see sees regard regards note notes noted
claim claims claimed discuss discusses discussed list name names way ways kind beginning opening paragraph
paragraphs section part passage
文章 本文 作者 说 说了 提到 提及 描述 根据 认为 指出 写 写道 观点 看法 内容 资料 来源 引用 介绍 谈到 讲
статья статье статьи статью автор автора авторы говорит говорится сказано сказал пишет написано
упоминает упоминается описывает считает отмечает утверждает приводит источник источники согласно
"""


@lru_cache(maxsize=1)
def _meta_tokens() -> frozenset[str]:
    from briefing_core.text import tokenize

    return frozenset(tokenize(_META_WORDS))


@lru_cache(maxsize=1 << 16)
def zipf(word: str, lang: str) -> float:
    """wordfreq's Zipf frequency; 0.0 for a word it does not know or a language it lacks."""
    try:
        from wordfreq import zipf_frequency

        return float(zipf_frequency(word, lang))
    except (ImportError, LookupError, ValueError):
        return 0.0


def weight_of(word: str, lang: str) -> float:
    return min(MAX_WEIGHT, max(MIN_WEIGHT, CEILING - zipf(word, lang)))


_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CYR = re.compile("[\u0400-\u04ff]")


def term_weights(text: str) -> dict[str, float]:
    """Keyword tokens of `text` with their fixed weights (the highest where a token repeats)."""
    from briefing_core.text import TOKEN, ZH_STOP, word_tokens

    meta = _meta_tokens()
    out: dict[str, float] = {}

    def put(token: str, weight: float) -> None:
        if token in meta:
            weight *= META_FACTOR
        if weight > out.get(token, 0.0):
            out[token] = weight

    for raw in TOKEN.findall(text):
        if _CJK.match(raw):
            for run in ZH_STOP.split(raw):
                grams = list(run) + [run[i : i + 2] for i in range(len(run) - 1)]
                for gram in grams:
                    # A single character is a weaker clue than the word it belongs to.
                    put(gram, weight_of(gram, "zh") * (0.5 if len(gram) == 1 else 1.0))
            continue
        lang = "ru" if _CYR.search(raw) else "en"
        surface = raw.casefold().replace("’", "'")
        if surface.endswith("'s"):
            surface = surface[:-2]
        for token in word_tokens(raw):
            if token.isdigit():
                put(token, MAX_WEIGHT)  # a number or year singles out its answer
            else:
                put(token, weight_of(surface, lang))
    return out


# A country and its adjective are one concept to a reader ("China" asked, "Chinese" written);
# the stemmer does not join them. Stemmed forms, both directions.
_DEMONYMS = {
    "china": "chines", "russia": "russian", "japan": "japanes", "korea": "korean", "america": "american",
    "ukrain": "ukrainian", "syria": "syrian", "franc": "french", "britain": "british", "germani": "german",
    "india": "indian", "iran": "iranian", "europ": "european", "taiwan": "taiwanes", "vietnam": "vietnames",
    "mongolia": "mongolian", "pakistan": "pakistani", "israel": "isra", "turkey": "turkish",
}
# A capital stands for its government ("Moscow's role", "what Beijing wants").
_CAPITALS = {
    "moscow": "russia", "beijing": "china", "pyongyang": "korea", "seoul": "korea", "tokyo": "japan",
    "washington": "us", "kremlin": "russia", "kiev": "ukrain", "kyiv": "ukrain", "damascus": "syria",
    "taipei": "taiwan", "tehran": "iran",
}
_RELATED: dict[str, set[str]] = {}
for _a, _b in [*_DEMONYMS.items(), *_CAPITALS.items()]:
    _RELATED.setdefault(_a, set()).add(_b)
    _RELATED.setdefault(_b, set()).add(_a)
for _capital, _country in _CAPITALS.items():
    if _country in _DEMONYMS:
        _RELATED[_capital].add(_DEMONYMS[_country])


def matches(token: str, tokens: set[str]) -> float:
    """1.0 when the token is among `tokens`; 0.8 for the same word in another form (a country and
    its adjective, or a longer form of the same stem: russia/russian); else 0."""
    if token in tokens:
        return 1.0
    related = _RELATED.get(token)
    if related and not related.isdisjoint(tokens):
        return 0.8
    if len(token) >= 5 and token.isalpha():
        stem = token[:5]
        for other in tokens:
            if other.startswith(stem) and abs(len(other) - len(token)) <= 3 and other.isalpha():
                return 0.8
    return 0.0


def coverage(weights: dict[str, float], tokens: set[str]) -> float:
    """Weighted share of the question's terms a text holds (0 to 1)."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w * matches(t, tokens) for t, w in weights.items()) / total


_RU_WORD = re.compile(r"[А-Яа-яЁё-]{4,}")
_ZH_WORD = re.compile("^[\u4e00-\u9fff]{2,}$")
_QUESTION_WORDS = frozenset("""
有何 何种 如何 开头 结尾 开篇 部分 段落 内容 什么 哪些 哪个 哪里 为什么 如何 怎样 怎么 是否 有没有 多少 几个 一下 请问 请 列出 列举 说明 概括 总结 认为 提到 提及 文章 作者 这篇
какие какой какая каких почему зачем когда сколько где который которые статья статье статьи автор автора
говорится сказано пишет приводит упоминает считает называет начале конце части абзаце
говориться сказать писать приводить упоминать считать называть начало конец часть абзац мнение который
""".split())


@lru_cache(maxsize=1)
def _morph() -> object:
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=1 << 14)
def _lemma(word: str) -> str:
    parses = _morph().parse(word)  # type: ignore[attr-defined]
    return str(parses[0].normal_form) if parses else word


def key_words(question: str, lang: str, min_weight: float = 2.3, top: int = 3, skip: str = "") -> dict[str, float]:
    """The rarest content words of a Chinese or Russian question (whole words, not index tokens),
    for checking them against an English passage by meaning; words of `skip` (the phrase naming a
    source: it says where to look, not what is asked) left out."""
    if lang == "zh":
        # wordfreq's own segmenter (jieba with wordfreq's dictionary, loaded once for the weights too).
        from wordfreq import tokenize as segment

        words = [w for w in segment(question, "zh") if _ZH_WORD.match(w)]
    elif lang == "ru":
        # The dictionary form: a case ending blurs the meaning an embedder finds (кореи ~ Korean 0.44,
        # корея ~ Korea much closer).
        words = [_lemma(w.lower()) for w in _RU_WORD.findall(question)]
    else:
        return {}
    skipped = " ".join(_lemma(w.lower()) for w in _RU_WORD.findall(skip)) if lang == "ru" else skip
    weights = {w: weight_of(w, lang) for w in dict.fromkeys(words)
               if w not in _QUESTION_WORDS and w not in skip.lower() and w not in skipped}
    meta = _meta_tokens()
    from briefing_core.text import tokenize

    weights = {w: v for w, v in weights.items() if v >= min_weight and not set(tokenize(w)) <= meta}
    return dict(sorted(weights.items(), key=lambda kv: -kv[1])[:top])
