"""Question analysis: what is asked, in how many parts, about what, and what kind of answer it needs.

Takes the analyst's question (English, Chinese or Russian); gives an `Analysis`:

    kind         summary | sources | compare | reasons | list | yesno | factoid | describe
    parts        the sub-questions an answer must cover, each searched and answered on its own
                 ("what does Russia lack, and what does it still have" -> two parts; "how do Western
                 and Chinese views differ" -> one part per side)
    subject      who or what the question asks about when it asks what someone said, thought or
                 did ("What did South Korea's government say" -> "South Korea's government")
    answer_type  per part: person | date | day | year | number | "" (any)
    count        a number of sentences or items the analyst asked for ("in two sentences")

The rules are about the shape of questions (their wh-words, conjunctions and verbs), never about
particular questions; the same shapes are written for the three languages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------
# Kinds of question
# ---------------------------------------------------------------------------------------

_SOURCE_NOUN = (
    r"\b(?:sources?|outlets?|publications?|media|newspapers?|journals?|magazines?|headlines?|"
    r"periodicals?|press|papers?|reports?|broadcasts?)\b|媒体|来源|出处|期刊|杂志|报纸|报刊|刊物|新闻|标题|消息|媒介|"
    r"источник\w*|издани\w*|СМИ|газет\w*|журнал\w*|медиа|заголов\w*|пресс\w*"
)
_CITE_VERB = (
    r"\b(?:cit(?:e|es|ed|ing)|quot(?:e|es|ed|ing)|mention(?:s|ed)?|draws? on|drew on|rel(?:y|ies|ied) on|"
    r"refer(?:s|red)? to|referenc\w+|us(?:e|es|ed)|lists?|names?|invok\w+|reproduc\w+|reprint\w*|featur\w+|"
    r"draw(?:s|ing)? upon|bring(?:s)? in)\b|"
    r"引用|援引|引述|提到|提及|参考|使用|列举|列出|"
    r"цитир\w*|ссыла\w*|привод\w*|упомина\w*|использ\w*|опира\w*|перечисл\w*|назов\w*|называ\w*"
)
_WHO_QUOTED = re.compile(
    r"\bwho (?:is|are|was|were) (?:quoted|cited)\b|谁被引用|引用了谁|кого цитиру\w*", re.IGNORECASE
)
_SUMMARY = re.compile(
    r"\bsummar\w+|\bmain (?:argument|point|idea|claim|thesis|message|conclusion)s?\b|\bkey (?:points?|arguments?|"
    r"takeaways?|claims?|ideas?)\b|\bgist\b|\boverview\b|\bcentral (?:argument|claim|thesis|point)\b|"
    r"\bwhat is (?:the|this) (?:article|piece|briefing) about\b|\bin a nutshell\b|\bthesis\b|\btl;?dr\b|"
    r"总结|概括|概述|归纳|主要(?:观点|论点|内容|论证|论述|结论)|核心(?:观点|论点)|要点|中心思想|大意|主旨|讲了什么|"
    r"кратк\w*|резюм\w*|суммир\w*|(?:основн|главн|ключев)\w* (?:мысл|иде|тезис|аргумент|вывод|положени)\w*|"
    r"о ч[её]м (?:эта |данная )?стать|\bсуть\b|тезис\w*",
    re.IGNORECASE,
)
_COMPARE = re.compile(
    r"\bdiffer\w*|\bcompar\w+|\bcontrast\w*|\bversus\b|\bvs\.?\s|\bunlike\b|\bsimilar\w*|\bdisagree\w*|"
    r"区别|不同|差异|相比|比较|对比|异同|有何不同|"
    r"отлича\w*|различ\w*|сравн\w*|разниц\w*|в отличие",
    re.IGNORECASE,
)
_REASONS = re.compile(
    r"\bwhy\b|\breasons?\b|\bwhat (?:makes|made|explains|drives|drove|caused|causes|motivates)\b|\bmotiv\w+|"
    r"\bevidence\b|\bsigns?\b|\bindications?\b|\bexamples?\b|\bproof\b|\bgrounds\b|"
    r"证据|迹象|例子|依据|признак\w*|доказательств\w*|пример\w*|свидетельств\w*|"
    r"为什么|为何|原因|理由|缘故|动机|"
    r"почему|зачем|причин\w*|по как\w+ причин\w*|мотив\w*",
    re.IGNORECASE,
)
_LIST = re.compile(
    r"^\W*(?:which|what)\s+(?:\w+\s+)?(?!(?:does|is|was|has)\b)\w+s\b(?!\s+(?:is|was)\b)|\blist\b|\bname (?:the|all|every)\b|\benumerat\w+|"
    r"\bwhat (?:are|were) the\b|\bwhat signs\b|"
    r"哪些|有哪|列出|列举|哪几|"
    r"\bкакие\b|\bкаких\b|перечисл\w*|назовите",
    re.IGNORECASE,
)
_YESNO = re.compile(
    r"^\W*(?:does|do|did|is|are|was|were|has|have|had|can|could|will|would|should)\b|是否|有没有|"
    r"吗\s*[？?]?\s*$|\bли\b",
    re.IGNORECASE,
)

# ---------------------------------------------------------------------------------------
# Answer types
# ---------------------------------------------------------------------------------------

_WHO = re.compile(
    r"^\W*who\b|\bwho (?:wrote|signed|said|is|was|are|were|led|leads|authored|published)\b|\bby whom\b|"
    r"\bname of the (?:author|writer|journalist|editor)s?\b|谁|哪位|什么人|\bкто\b|\bкем\b|\bчей\b|\bчья\b",
    re.IGNORECASE,
)
_HOW_MANY = re.compile(
    r"^\W*(?:\w+\W+){0,3}?how (?:many|much)\b|\bthe number of\b|\bwhat (?:number|amount|percentage|share)\b|"
    r"сколько|多少|(?<!哪)几个|几艘|几次|幾個|数量",
    re.IGNORECASE,
)
_WHEN = re.compile(r"^\W*when\b|\bwhen (?:was|were|did|is)\b|什么时候|何时|\bкогда\b", re.IGNORECASE)
_EXACT_DATE = re.compile(
    r"\b(?:exact|precise|specific)\s+(?:date|day)\b(?!-)|\b(?:what|which)\s+(?:date|day)\b(?!-)|"
    r"какого числа|(?:точн\w*|как\w*) (?:дат\w*|день|число)|哪一天|哪天|几月几[日号]|什么日期|具体日期",
    re.IGNORECASE,
)
_WHICH_YEAR = re.compile(
    r"\b(?:what|which)\s+year\b|\bin what year\b|в как\w* году|какого года|哪一?年|什么年份|何年", re.IGNORECASE
)

# What someone said, thought or did: the question is about that actor's words or acts. The actor is
# a phrase without a comma: past one, a later noun ("sail ..., drawing praise") is no speech verb.
_SPEECH_VERB = (
    r"say|said|says|suggest\w*|propos\w*|recommend\w*|think|thought|respond\w*|react\w*|claim\w*|argu\w*|"
    r"view|see|saw|describ\w*|call\w*|warn\w*|announc\w*|conclud\w*|prais\w*|criticiz\w*|criticis\w*|"
    r"offer\w*|demand\w*|promis\w*|repl\w*|stated?|states that|report\w*|plan\w*|want\w*|decid\w*|sign\w*"
)
_SUBJECT = re.compile(
    rf"\b(?:how|what|why|which\s+\w+|where|when)\s+(?:did|does|do|has|have|had|would|will)\s+(?P<subject>[^,;:?]+?)\s+"
    rf"(?:{_SPEECH_VERB})\b",
    re.IGNORECASE,
)
# "What does the article say X offered", "report South Korea's government saying": the actor is X.
_EMBEDDED_SUBJECT = re.compile(
    r"\b(?:say|says|said|report|reports|reported|describe|describes|suggest|suggests|claim|claims)\s+(?:that\s+)?"
    r"(?P<subject>(?:the\s+)?[A-Z][\w’'.-]*(?:\s+[A-Z][\w’'.-]*)*(?:’s|'s)?(?:\s+(?:government|officials?|"
    r"leaders?|ministry|military|media|press))?)\s+(?:still\s+|also\s+|now\s+|directly\s+|really\s+)?(?:saying|said|says|offered|offers|did|does|demanded|demands|"
    r"proposed|proposes|wanted|wants|thinks?|thought|argued|argues|responded|reacted|signed|agreed|promised|"
    r"asked|lacks?|lacked|has|had|gave|gives|sent)\b"
)
_ACCORDING = re.compile(
    r"according to ([^,?.;]+)|по (?:мнению|данным|словам|версии) ([^,?.;]+)|(?:根据|据)([^，,？?。]+)",
    re.IGNORECASE,
)

# ---------------------------------------------------------------------------------------
# Parts
# ---------------------------------------------------------------------------------------

# A second question joined to the first: ", and what ...", "; how ...", "，还有什么", ", а что ...".
_PART_SPLIT = re.compile(
    r"(?<=[?？])\s*(?=\S)|"
    r"\s*(?:,\s*(?:and|but)\s+(?:also\s+|then\s+|roughly\s+|exactly\s+)?|\s+and\s+|;\s*(?:and\s+)?)"
    r"(?=(?:what|how|why|who|which|when|where|does|did|is|are)\b)|"
    r"\s*[，,；;]\s*(?:还有|以及|并且|而且|又|那么)?(?=什么|哪些|为什么|如何|怎样|怎么|谁|何时)|以及(?=什么|哪些|为什么|如何)|"
    r"\s*(?:,\s*(?:и|а|но)\s+|;\s*)(?=(?:что|как|почему|какие|какая|какой|кто|когда|где)\b)",
    re.IGNORECASE,
)
# Two sides of a comparison: "Western and Chinese views", "between X and Y", "X compared with Y".
_SIDES_EN = re.compile(
    r"\b(?:between\s+)?(?P<a>[\w’'.-]+)\s+and\s+(?P<b>(?:[\w’'.-]+\s)?[\w’'.-]+?)(?:’s|'s)?\s+"
    r"(?P<noun>views?|interpretations?|positions?|perspectives?|assessments?|media|attitudes?|approach\w*|"
    r"polic(?:y|ies)|stances?|reactions?|roles?|opinions?|coverage|accounts?|readings?|priorities)\b",
    re.IGNORECASE,
)
_BETWEEN_EN = re.compile(
    r"\bbetween\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)(?:[?.,]|\s+(?:on|about|regarding|over|in)\b|$)|"
    r"\b(?P<c>[\w’' -]+?)\s+(?:compared? (?:with|to)|versus|vs\.?|as opposed to)\s+(?P<d>[\w’' -]+?)(?:[?.,]|$)",
    re.IGNORECASE,
)
_SIDES_ZH = re.compile(r"(?P<a>[\u4e00-\u9fff]{1,6}?)(?:和|与|跟|同)(?P<b>[\u4e00-\u9fff]{1,6}?)(?:对|在|的|之间|关于|媒体)")
_SIDES_RU = re.compile(
    r"(?:между\s+)?(?P<a>[А-Яа-яЁё-]+)\s+и\s+(?P<b>[А-Яа-яЁё-]+)\s+"
    r"(?P<noun>взгляд\w*|оценк\w*|СМИ|позици\w*|мнени\w*|подход\w*|интерпретаци\w*|трактовк\w*|реакци\w*)",
    re.IGNORECASE,
)

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "a few": 3, "several": 3,
    "одн": 1, "дв": 2, "тр": 3, "четыр": 4, "пят": 5,
    "一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5,
}
_COUNT = re.compile(
    r"\bin (?P<en>one|two|three|four|five|a few|\d) (?:sentences?|points?|lines?|bullets?)\b|"
    r"(?P<ru>одн|дв|тр|четыр|пят)\w* (?:предложени|пункт|тезис)\w*|"
    r"(?P<zh>[一两二三四五])(?:句|点|个要点)",
    re.IGNORECASE,
)


@dataclass
class Part:
    text: str
    """The part as a question of its own, for search and scoring."""
    label: str = ""
    """A few words naming the part in the answer (a comparison's side, a conjunct)."""
    answer_type: str = ""
    side: str = ""
    """For a comparison, the side's own words ("Western"), which its evidence must hold."""
    subject: str = ""
    """Who the part asks about, when it asks what someone said or did."""


@dataclass
class Analysis:
    question: str
    lang: str
    kind: str
    parts: list[Part]
    subject: str = ""
    count: int | None = None
    named: str = ""
    """The phrase naming a source after "according to X" / "по мнению X" / "据X"."""
    notes: list[str] = field(default_factory=list)

    @property
    def multi(self) -> bool:
        return len(self.parts) > 1


def answer_type(text: str) -> str:
    if _EXACT_DATE.search(text):
        return "day"
    if _WHICH_YEAR.search(text):
        return "year"
    if _HOW_MANY.search(text):
        return "number"
    if _WHO.search(text) and not _WHO_QUOTED.search(text):
        return "person"
    if _WHEN.search(text):
        return "date"
    return ""


def _kind(question: str) -> str:
    if _WHO_QUOTED.search(question) or (
        re.search(_SOURCE_NOUN, question, re.IGNORECASE) and re.search(_CITE_VERB, question, re.IGNORECASE)
        and not _SUBJECT.search(question)
    ):
        return "sources"
    if _SUMMARY.search(question):
        return "summary"
    if _COMPARE.search(question):
        return "compare"
    if _REASONS.search(question):
        return "reasons"
    if _YESNO.search(question):
        return "yesno"
    if answer_type(question):
        return "factoid"
    if _LIST.search(question):
        return "list"
    return "describe"


# "How do X and Y differ ...", "How does X differ from Y"
_DIFFER_EN = re.compile(
    r"^\W*(?:how|in what ways?|where)\s+(?:do|does|did)\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)\s+"
    r"(?:differ|compare|contrast|disagree|diverge)\b|"
    r"\b(?:how|in what ways?)\s+(?:do|does|did|is|are)\s+(?P<c>.+?)\s+"
    r"(?P<verb>(?:differ|different|diverge)\w*)\s+from\s+(?P<d>.+?)\s*(?:\?|$)",
    re.IGNORECASE,
)
# What a side says something about, when one side carries it: "Western coverage [of Moscow's role]",
# "the Izvestiya headline [on Beijing]". Each side's part asks about it.
_TOPIC_TAIL = re.compile(r"\s+(?:of|on|about|regarding|toward|towards|concerning)\s+\S.*$", re.IGNORECASE)


def _sides(question: str) -> tuple[str, str, str] | None:
    """The two sides of a comparison and the question with a placeholder where they stood."""
    for pattern in (_SIDES_EN, _SIDES_RU, _BETWEEN_EN, _DIFFER_EN, _SIDES_ZH):
        m = pattern.search(question)
        if not m:
            continue
        groups = m.groupdict()
        a = groups.get("a") or groups.get("c")
        b = groups.get("b") or groups.get("d")
        if not a or not b:
            continue
        a, b = a.strip(), b.strip()
        start = m.start("a") if groups.get("a") else m.start("c")
        end = m.end("b") if groups.get("b") else m.end("d")
        if groups.get("verb"):
            # "How does X differ from Y?": the part for each side keeps the topic, which only one side's
            # words hold ("How does Y of Moscow's role?"). Not the verb: "differ" is the comparison's
            # frame, and as a word to find it pulls the part's probability under the refusal threshold.
            tails = [t.group(0) for t in map(_TOPIC_TAIL.search, (a, b)) if t]
            topic = tails[0] if tails else ""
            a, b = (_TOPIC_TAIL.sub("", side) for side in (a, b))
            return a, b, question[:start] + "{side}" + topic + question[end:]
        if " " in b and " " not in a and groups.get("noun"):
            # "Western media and Chinese commentators view ...": the sides are built alike, so a
            # capitalised word before the first side's noun belongs to it as "Chinese" does to the second.
            before = re.search(r"(?:^|(?<=\s))([A-Z][\w’'.-]*)\s+$", question[:start])
            if before:
                a, start = f"{before.group(1)} {a}", before.start(1)
        # "西方媒体和中国媒体对…": the noun both sides share is written once, after the second.
        for k in range(len(a) - 1, 0, -1):
            if question[end:].startswith(a[-k:]) and not b.endswith(a[-k:]):
                a = a[:-k]
                break
        return a, b, question[:start] + "{side}" + question[end:]
    return None


_ASKS = re.compile(
    r"\b(?:what|how|why|who|which|when|where|does|did|do|is|are|was|were)\b|什么|哪|为什么|如何|怎样|怎么|谁|何|吗|"
    r"(?<![\w])(?:что|как|почему|какие|какая|какой|кто|когда|где|ли)(?![\w])",
    re.IGNORECASE,
)


# Words that point back to something said before: an earlier turn ("What did it conclude?",
# "Что в нём сказано?", "它说了什么？") or an earlier part of the same question.
POINTS_BACK = re.compile(
    r"\b(?:it|its|they|them|their|that|this|those|these|he|she|his|her|there|then)\b"
    r"|(?<![\w])(?:он|она|оно|они|его|её|ее|их|этот|эта|это|эти|тот|та|те|там|тогда|нём|ней)(?![\w])"
    r"|[它他她其该那这]",
    re.IGNORECASE,
)


def topical(question: str) -> bool:
    """Whether a summary request names a topic of its own ("summarise what the article says about
    the South China Sea") rather than asking for the whole argument."""
    from service.engine.salience import term_weights

    rest = _SUMMARY.sub(" ", _COUNT.sub(" ", question))
    rest = re.sub(r"\b(?:give|me|please|briefly|short|brief|few|sentences?|points?|whole|overall|its|argument|"
                  r"article|piece|briefing|author|text|what|does|say|says)\b|请|简要|简单|几句话|文章|作者|"
                  r"кратко|коротко|стать\w*|автор\w*|перескаж\w*|изложи\w*|опиши\w*", " ", rest, flags=re.IGNORECASE)
    return sum(w for w in term_weights(rest).values() if w >= 1.0) >= 4.0


def split_parts(question: str) -> list[tuple[str, str]]:
    """The conjuncts of a question that asks two things at once, each as (text to search, label).
    A piece before the first question that asks nothing ("According to X, ...", "Tell me about X.")
    is context for every part; a piece after the questions that asks nothing ("... ? Answer briefly.")
    is not part of what is asked."""
    pieces = [p.strip(" ,;，；") for p in _PART_SPLIT.split(question)]
    pieces = [p for p in pieces if len(p) >= 4]
    asking = [i for i, p in enumerate(pieces) if _ASKS.search(p)]
    if not asking:
        return [(question, question)]
    context = " ".join(pieces[i] for i in range(asking[0]))
    parts = [pieces[i] for i in asking]
    # "According to X, what does Russia lack": the lead-in before the first question word is context
    # for every part, not a part of the first alone.
    first = parts[0]
    m = _ASKS.search(first)
    if len(parts) > 1 and m and m.start() > 0 and re.search(r"[,，]\s*$", first[: m.start()]):
        context = f"{context} {first[: m.start()].strip(' ,，')}".strip()
        parts[0] = first[m.start():]
    if len(parts) == 1:
        text = f"{context} {parts[0]}".strip()
        return [(text, text)]
    parts = [re.sub(r"^(?:and|but|also|then|и|а|но|также|还有|以及|并且)\s*", "", p, flags=re.IGNORECASE) or p for p in parts]
    return [(f"{context} {p}".strip(), p[:1].upper() + p[1:]) for p in parts]


def count_asked(question: str) -> int | None:
    m = _COUNT.search(question)
    if not m:
        return None
    word = (m.group("en") or m.group("ru") or m.group("zh") or "").lower()
    if word.isdigit():
        return int(word)
    return _NUMBER_WORDS.get(word)


def subject_of(question: str) -> str:
    m = _EMBEDDED_SUBJECT.search(question) or _SUBJECT.search(question)
    if not m:
        return ""
    subject = re.sub(r"^(?:the|a|an)\s+", "", m.group("subject").strip(), flags=re.IGNORECASE)
    # "What does the author describe": the article itself speaks; no outside actor to find.
    return subject


def named_phrase(question: str) -> str:
    for groups in _ACCORDING.findall(question):
        phrase = " ".join(g for g in groups if g).strip()
        if phrase:
            return phrase
    return ""


def analyse(question: str, lang: str) -> Analysis:
    kind = _kind(question)
    analysis = Analysis(question, lang, kind, [], subject=subject_of(question) if kind != "compare" else "",
                        count=count_asked(question), named=named_phrase(question))
    if kind == "compare":
        sides = _sides(question)
        if sides:
            a, b, template = sides
            analysis.parts = [Part(template.replace("{side}", side), label=side, side=side) for side in (a, b)]
            return analysis
    if kind not in {"summary", "sources"}:
        pieces = split_parts(question)
        if len(pieces) == 1 and pieces[0][0] != question:
            # What is asked, without what trailed it.
            analysis.parts = [Part(pieces[0][0], answer_type=answer_type(pieces[0][0]), subject=analysis.subject)]
            return analysis
        if len(pieces) > 1:
            analysis.parts = [Part(text, label=label, answer_type=answer_type(label), subject=subject_of(label))
                              for text, label in pieces]
            return analysis
    analysis.parts = [Part(question, answer_type=answer_type(question), subject=analysis.subject)]
    return analysis


# ---------------------------------------------------------------------------------------
# What an answer of each type must hold
# ---------------------------------------------------------------------------------------

_NUMBER = re.compile(
    r"(?<![\d.])\d[\d,.]*(?![\d])|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"dozen|dozens|hundred|hundreds|thousand|thousands|million|millions|billion|percent|once|twice|thrice)\b|"
    r"(?<![\w])(?:один|одна|одно|одного|два|две|двух|три|трёх|трех|четыре|четырёх|пять|пяти|шесть|семь|восемь|"
    r"девять|десять|дважды|трижды|десятк\w*|сот\w*|тысяч\w*|миллион\w*|миллиард\w*|процент\w*)(?![\w])|"
    r"[一二三四五六七八九十百千万亿两]+",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(1[89]|20)\d\d$")
_MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_RU_MONTHS = r"январ|феврал|март|апрел|ма[яй]|июн|июл|август|сентябр|октябр|ноябр|декабр"
_DAY_DATE = re.compile(
    rf"\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b|"
    rf"\b\d{{1,2}}\s+(?:{_RU_MONTHS})\w*|\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}[./]\d{{1,2}}[./]\d{{2,4}}\b|"
    r"[\d一二三四五六七八九十]+月[\d一二三四五六七八九十]+[日号]|"
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.IGNORECASE,
)
# A year (from 1000 on; history's earlier years come with a word that says so, "AD 754", "754年",
# "в 754 году"), a century, or a year named by reference.
_YEARISH = (
    r"(?<!\d)(?<!\d[.,])(?:1\d|20)\d\d(?!\d|[.,]\d)|\b(?:AD|BC|CE|BCE)\s*\d{1,4}\b|\b\d{1,4}\s*(?:AD|BC|CE|BCE)\b|"
    r"\d{1,4}\s*年|\b\d{1,4}\s+г(?:од\w*|\.)|\b\d{1,2}(?:st|nd|rd|th)[\s-]+centur\w*|\b[IVXLC]+\s+век\w*|"
    r"\b\d{1,2}(?:-?(?:м|го|й))?\s+век\w*|\d{1,2}\s*世纪|\b\d{3,4}s\b"
)
_A_YEAR = re.compile(
    rf"{_YEARISH}|\b(?:last|next|this|that) year\b|(?:去|今|明|前)年|прошл\w* год",
    re.IGNORECASE,
)
_A_DATE = re.compile(
    rf"{_YEARISH}|\b(?:{_MONTHS})\b|\b(?:spring|summer|autumn|fall|winter)\b|"
    r"\b(?:last|next|this|that|a few|several) (?:week|month|year|days|weeks|months)s?\b|\bweeks? (?:back|ago)\b|"
    r"\b(?:yesterday|today|recently|afterward|afterwards)\b|\bat the (?:end|start|beginning|conclusion) of\b|"
    rf"(?:{_RU_MONTHS})\w*|\d+\s*年|\d+\s*月|(?:去|今|明|前)年|上周|上个月",
    re.IGNORECASE,
)
# A person's or organisation's name: two capitalised words in a row, or one after a title.
_NAME = re.compile(r"\b[A-Z][a-z’'-]+(?:\s+[A-Z][a-z’'-]+)+|\b(?:Mr|Mrs|Ms|Dr|President|"
                   r"Minister|General|Professor)\.?\s+[A-Z][a-z]+|"
                   # Russian: a capitalised word inside the sentence (not its first), or two in a row.
                   r"(?<=[\w,;:»)]\s)[А-ЯЁ][а-яё’'-]+|\b[А-ЯЁ][а-яё’'-]+(?:\s+[А-ЯЁ][а-яё’'-]+)+")
_CJK_TEXT = re.compile("[\u4e00-\u9fff]")
# Words that make a capitalised name an institution or a sentence opener, not a person who writes.
_NOT_PERSON = frozenset(["the", "a", "an", "in", "at", "on", "as", "and", "but", "of", "for", "to", "council", "committee", "ministry", "assembly", "forum", "journal", "times", "news", "press", "university", "institute", "agency", "staff", "department", "office", "government", "administration", "house", "pentagon", "fleet"])
_AUTHORSHIP = re.compile(r"\bwho\s+(?:wrote|writes|authored|edits|edited|signed|penned|founded)\b|谁写|作者是谁|"
                         r"кто\s+(?:написал|автор|редактир)", re.IGNORECASE)


# Places and directions: "North Korean", "South China Sea" are capitalised but name no one.
_GEO = frozenset(["north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest", "northern", "southern", "eastern", "western", "far", "korea", "korean", "koreas", "china", "chinese", "russia", "russian", "japan", "japanese", "united", "states", "america", "american", "asia", "asian", "pacific", "sea", "ocean", "peninsula", "europe", "european", "union", "nations", "federation", "republic", "people's", "democratic"])


_NO_AUTHOR = re.compile(r"\b(?:unsigned|anonymous(?:ly)?|unnamed|unattributed|uncredited)\b", re.IGNORECASE)


def has_quantity(text: str) -> bool:
    """A count or amount other than a bare year."""
    return any(not _YEAR.match(m.group(0).strip(",.")) for m in _NUMBER.finditer(text))


def has_day_date(text: str) -> bool:
    """A calendar day: "April 14", "14 April", "14 апреля", "2017-04-14", "4月14日", a weekday."""
    return bool(_DAY_DATE.search(text))


def has_year(text: str) -> bool:
    return bool(_A_YEAR.search(text))


def asks_exact_date(question: str) -> bool:
    return bool(_EXACT_DATE.search(question))


def asks_year(question: str) -> bool:
    return bool(_WHICH_YEAR.search(question))


def holds_type(answer_type: str, text: str, question: str = "") -> bool:
    """Whether `text` can answer a question asking for `answer_type`."""
    if answer_type == "number":
        return has_quantity(text)
    if answer_type == "day":
        return has_day_date(text)
    if answer_type == "year":
        return has_year(text)
    if answer_type == "date":
        return bool(_A_DATE.search(text))
    if answer_type == "person":
        if _NO_AUTHOR.search(text):
            return True  # "an unsigned editorial" says who wrote it: no one who signed it
        if _CJK_TEXT.search(text) and not re.search(r"[A-Za-z]{2}", text):
            return True  # Chinese writes names without capitals: nothing in their shape to check
        asked = {w.lower() for w in re.findall(r"[A-Z][a-z]+", question)}
        writer = bool(_AUTHORSHIP.search(question))
        for m in _NAME.finditer(text):
            words = {w.lower().strip("’'") for w in m.group(0).split()}
            if writer and words & _NOT_PERSON:
                continue  # a council or a journal edits nothing: the question wants a person
            if words - asked - _GEO - {"the", "a", "an", "in", "at", "on", "as"}:
                return True
        return False
    return True
