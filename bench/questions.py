"""Distinct, realistic analyst questions about the bundled briefing, generated from templates.

The load benchmark (bench/load.py) must never ask the same question twice in a run, so it needs
thousands of different questions. They are built from the article's own actors, sources and topics
(corpus/briefing/), put into question templates an analyst would type, with optional lead-ins and
tails ("According to the article, ...", "... Cite the passage."):

    en  ~85%   actor × topic, source × topic, actor × actor (× topic), plain facts about the piece
               (author, date, photo, outlets ...) in several phrasings, and ~5% off-topic questions
               the service should refuse
    zh  ~8%    the same kinds of questions in Chinese
    ru  ~7%    the same kinds of questions in Russian

Deterministic for a seed; every string is distinct (exact match after whitespace normalisation).

    .venv/bin/python -m bench.questions [--n 20] [--seed 7] [--stats]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from collections.abc import Callable

# ---------------------------------------------------------------------------------------
# English
# ---------------------------------------------------------------------------------------

# Actors by country (or body): a question that pairs two actors takes them from different groups.
ACTOR_GROUPS = [
    [
        "Russia",
        "Moscow",
        "Vladimir Putin",
        "Russia's Pacific Fleet",
        "the Russian General Staff",
        "Russia's defense leaders",
    ],
    ["China", "Beijing"],
    ["North Korea", "Pyongyang", "Kim Jong-un"],
    [
        "the United States",
        "Washington",
        "the Trump administration",
        "President Trump",
        "the White House",
        "the Pentagon",
    ],
    ["Japan", "Tokyo"],
    ["South Korea", "Seoul"],
    ["the UN Security Council"],
]
ACTORS = [a for group in ACTOR_GROUPS for a in group]

TOPICS = [
    "North Korea's nuclear program",
    "the North Korean nuclear crisis",
    "nuclear proliferation in Northeast Asia",
    "de-escalation on the Korean Peninsula",
    "a freeze of North Korea's nuclear program",
    "eventual disarmament",
    "U.S. missile defense",
    "the THAAD deployment",
    "the South China Sea disputes",
    "China-U.S. trade negotiations",
    "economic ties with North Korea",
    "sanctions on Pyongyang",
    "the Syria strike",
    "the 2014 Ukraine crisis",
    "the economic development of the Russian Far East",
    "the credibility of the UN Security Council",
    "North Korea's foreign policy isolation",
    "the Pacific Fleet's sortie into the Sea of Japan",
    "military pressure around the Korean Peninsula",
    "economic leverage over Pyongyang",
    "Russia's military power",
    'a "safe landing" for the Korean Peninsula',
    "Russia's status as a nuclear superpower",
    "cooperation with China on North Korea",
    "U.S. and Japanese strategic pressure",
    "Pyongyang's nuclear ambitions",
    "the six-party talks",
    "missile tests",
    "a possible U.S. strike on North Korea",
    "refugee flows across the Tumen River",
]

SOURCES = [
    "the Global Times editorial",
    "Global Times",
    "Finance and Economics",
    'the "North Korea and Russia Embrace" appraisal',
    "Chinese TV news",
    "Izvestiya",
    "the Izvestiya headline",
    "the Russian military press",
    "Northeast Asia Forum",
    "the Northeast Asia Forum analysis",
    "Western media",
    "Chinese analysts",
    "the author",
    "Russian commentators",
    "Chinese state media",
]
DOCUMENT_SOURCES = SOURCES[:10]  # the ones that are a text (a title, a date, a publisher)

ACTOR_TOPIC = [
    "What is the position of {a} on {t}?",
    "How does the article describe the role of {a} in {t}?",
    "What does the briefing say about {a} and {t}?",
    "How could {a} help with {t}?",
    "Does {a} have any leverage when it comes to {t}?",
    "Why does {a} care about {t}?",
    "What is the author's assessment of how {a} approaches {t}?",
    "Is {a} mentioned in connection with {t}?",
    "What evidence does the piece give about {a} and {t}?",
    "How has the stance of {a} on {t} changed since 2016?",
    "What does the article suggest {a} should do about {t}?",
    "How is {a} affected by {t}?",
    "Which sources discuss {a} in the context of {t}?",
    "What risks does {t} pose for {a}?",
]

SOURCE_TOPIC = [
    "What did {s} say about {t}?",
    "How did {s} frame {t}?",
    "Does {s} discuss {t}?",
    "What is the main claim of {s} regarding {t}?",
    "When did {s} comment on {t}?",
    "How does the article use {s} to make its point about {t}?",
    "Is {s} quoted on {t}?",
    "What tone did {s} take on {t}?",
]

SOURCE_ONLY = [
    "Who published {s}?",
    "What exactly did {s} say?",
    "Quote {s} in the original language.",
    "What is the original title used by {s}?",
    "When was {s} published?",
    "Why does the author cite {s}?",
    "Summarize the point made by {s}.",
]

ACTOR_PAIR = [
    "Why might {a} trust {b} more than it trusts {c}?",
    "How do {a} and {b} differ on {t}?",
    "What does the article say about relations between {a} and {b}?",
    "Is {a} cooperating with {b} on {t}?",
    "Could {a} mediate between {b} and {c}?",
    "Does {a} follow the lead of {b} on {t}?",
]

FACTS = {
    "author": [
        "Who wrote the article?",
        "Who is the author of this piece?",
        "Is the author named anywhere?",
        "Which analyst wrote the briefing?",
    ],
    "date": [
        "When was the article published?",
        "What is the publication date of the piece?",
        "Roughly when was this written?",
        "Which year does the article date from?",
    ],
    "outlet": [
        "Which outlet published the article?",
        "Where did this article first appear?",
        "What publication ran this piece?",
    ],
    "title": [
        "What is the title of the article?",
        "What is the headline of this piece?",
        "What does the subtitle say?",
    ],
    "photo": [
        "Where was the photo taken?",
        "Who gets credit for the photo?",
        "What does the photo caption say?",
        "What city is shown in the picture?",
    ],
    "thesis": [
        "What is the main argument of the article?",
        "What is the central thesis of the briefing?",
        "What does the author want U.S. policy makers to do?",
        "Why does the author say the shift is overdue?",
    ],
    "assumption": [
        "What dubious assumption does the author see in U.S. policy?",
        "Which assumption in current U.S. policy does the article question?",
    ],
    "neglected": [
        "Whose role have analysts most neglected?",
        "Which country's potential has been overlooked?",
    ],
    "western": [
        "How has Western media portrayed Moscow's role?",
        "What do Western outlets say about Russia's role?",
    ],
    "trend": [
        "Since when have Chinese views of Russia's role become more welcoming?",
        "What event changed Chinese interpretations of Russia's involvement?",
    ],
    "disputes": [
        "Which institutions clashed in 2016 over China policy?",
        "What was the 2016 dispute between the White House and the Pentagon about?",
    ],
    "trade": [
        "What did Trump promise China in exchange for action on North Korea?",
        "How would China be rewarded for acting on North Korea?",
    ],
    "reefs": [
        "What does the author mean by reefs, rocks and low-tide elevations?",
        "Why does the author call the South China Sea arguments arcane?",
    ],
    "roles": [
        "What roles do Japan, South Korea and the United States have to play?",
        "Along what path should the regional states follow China's lead?",
    ],
    "burden": [
        "What burden on China would closer Russia-North Korea ties lighten?",
        "Why would Beijing welcome better economic ties between Moscow and Pyongyang?",
    ],
    "fleet": [
        "What did Chinese TV news praise at the end of March 2017?",
        "How many ships took part in the Pacific Fleet's sortie?",
    ],
    "izvestiya": [
        "Which two countries' nuclear forces did Izvestiya say were threatened?",
        "What did the General Staff say about U.S. missile defense?",
    ],
    "syria": [
        "What double meaning did the Russian military press see in the Syria strike?",
        "Which country did the Russian press suggest would be hit after Syria?",
    ],
    "forum": [
        "Why are North Korean nuclear weapons a direct attack on Russian interests?",
        "What obstacle do tensions pose for the Russian Far East?",
        "What kind of leverage does Russia lack, and what does it still have?",
    ],
}

OFF_TOPIC = [
    "What is the capital of {x}?",
    "What is the population of {x}?",
    "Who won the last election in {x}?",
    "What is the GDP of {x}?",
    "What currency does {x} use?",
    "What is the weather like in {x} today?",
    "How do I get a visa for {x}?",
    "What are the best restaurants in {x}?",
]
PLACES = [
    "Australia",
    "Brazil",
    "Canada",
    "Kenya",
    "Norway",
    "Peru",
    "Portugal",
    "Vietnam",
    "Chile",
    "Egypt",
    "Finland",
    "Mexico",
    "Morocco",
    "New Zealand",
    "Poland",
    "Thailand",
    "Turkey",
    "Argentina",
]

EN_LEADS = [
    "",
    "",
    "",
    "According to the article, ",
    "Based on the briefing, ",
    "In the briefing, ",
    "Quick question: ",
    "From the sources, ",
    "Per the article, ",
    "For my memo: ",
]
EN_TAILS = [
    "",
    "",
    "",
    " Cite the passage.",
    " Please keep it short.",
    " Quote the source if possible.",
    " One sentence, please.",
    " Include the citation.",
]

# ---------------------------------------------------------------------------------------
# Chinese
# ---------------------------------------------------------------------------------------

ZH_ACTOR_GROUPS = [
    ["俄罗斯", "莫斯科", "俄罗斯太平洋舰队", "俄罗斯总参谋部"],
    ["中国", "北京"],
    ["朝鲜", "平壤"],
    ["美国", "华盛顿", "特朗普政府", "白宫", "五角大楼"],
    ["日本"],
    ["韩国"],
    ["联合国安理会"],
]
ZH_TOPICS = [
    "朝核问题",
    "朝鲜半岛局势",
    "美国导弹防御系统",
    "南海争端",
    "中美贸易谈判",
    "对朝经济合作",
    "对朝制裁",
    "叙利亚空袭",
    "2014年乌克兰危机",
    "俄罗斯远东的经济发展",
    "核扩散",
    "联合国安理会的信誉",
    "朝鲜的外交孤立",
    "半岛无核化",
    "局势降温",
    "俄罗斯的军事力量",
    "经济杠杆",
    "半岛“软着陆”",
]
ZH_SOURCES = [
    "环球时报社论",
    "《环球时报》",
    "《财经》杂志",
    "《朝俄拥抱》一文",
    "中国电视新闻",
    "《消息报》",
    "俄罗斯军事媒体",
    "《东北亚论坛》的分析",
    "西方媒体",
    "作者",
]
ZH_TEMPLATES = [
    "{a}在{t}上的立场是什么？",
    "文章如何评价{a}在{t}中的作用？",
    "{a}能在{t}上发挥什么作用？",
    "关于{t}，文章对{a}说了什么？",
    "{s}怎么看{t}？",
    "{s}对{t}有什么评论？",
    "根据{s}，{t}意味着什么？",
    "{a}和{b}在{t}上有什么分歧？",
    "为什么{a}可能更信任{b}而不是{c}？",
    "{a}对{t}有影响力吗？",
]
ZH_FACTS = [
    "这篇文章的作者是谁？",
    "文章是什么时候发表的？",
    "照片是在哪里拍的？",
    "《财经》杂志的文章标题是什么？",
    "环球时报的社论说北京能控制平壤吗？",
    "2018年新加坡峰会达成了什么协议？",
    "文章的主要观点是什么？",
    "中国电视新闻赞扬了什么？",
    "《东北亚论坛》认为俄罗斯仍有什么优势？",
]
ZH_LEADS = ["", "", "请问，", "根据文章，", "简单说一下：", "按照这篇简报，"]
ZH_TAILS = ["", "", "请注明出处。", "请引用原文。", "简短回答。"]

# ---------------------------------------------------------------------------------------
# Russian (actors: nominative, genitive; topics: prepositional, genitive)
# ---------------------------------------------------------------------------------------

RU_ACTORS = [
    ("Россия", "России"),
    ("Москва", "Москвы"),
    ("Китай", "Китая"),
    ("Пекин", "Пекина"),
    ("Северная Корея", "Северной Кореи"),
    ("КНДР", "КНДР"),
    ("Пхеньян", "Пхеньяна"),
    ("США", "США"),
    ("Вашингтон", "Вашингтона"),
    ("Япония", "Японии"),
    ("Южная Корея", "Южной Кореи"),
    ("администрация Трампа", "администрации Трампа"),
    ("Белый дом", "Белого дома"),
    ("Пентагон", "Пентагона"),
    ("Совет Безопасности ООН", "Совета Безопасности ООН"),
    ("Тихоокеанский флот", "Тихоокеанского флота"),
    ("Генштаб", "Генштаба"),
]
RU_TOPICS = [
    ("ядерной программе КНДР", "ядерной программы КНДР"),
    ("ситуации на Корейском полуострове", "ситуации на Корейском полуострове"),
    ("системе ПРО США", "системы ПРО США"),
    ("споре в Южно-Китайском море", "спора в Южно-Китайском море"),
    ("торговых переговорах Китая и США", "торговых переговоров Китая и США"),
    ("экономических связях с КНДР", "экономических связей с КНДР"),
    ("санкциях против Пхеньяна", "санкций против Пхеньяна"),
    ("ударе по Сирии", "удара по Сирии"),
    ("украинском кризисе 2014 года", "украинского кризиса 2014 года"),
    ("развитии Дальнего Востока", "развития Дальнего Востока"),
    ("ядерном распространении", "ядерного распространения"),
    ("авторитете Совбеза ООН", "авторитета Совбеза ООН"),
    ("денуклеаризации", "денуклеаризации"),
    ("деэскалации", "деэскалации"),
    ("военной мощи России", "военной мощи России"),
    ("международной изоляции КНДР", "международной изоляции КНДР"),
]
RU_SOURCES = [
    "Глобал таймс",
    "Известия",
    "Финансы и экономика",
    "Северо-восточный азиатский форум",
    "Китайское телевидение",
]
RU_TEMPLATES = [
    "Что говорится в статье о {tp}?",
    "Какова позиция {ag} в вопросе {tg}?",
    "Какую роль играет {an} в {tp}?",
    "Что, по данным источника «{s}», известно о {tp}?",
    "Есть ли в статье что-нибудь о {tp}?",
    "Как автор оценивает роль {ag} в {tp}?",
    "Почему для {ag} важен вопрос {tg}?",
]
RU_FACTS = [
    "Кто автор этой статьи?",
    "Когда была опубликована статья?",
    "Где сделана фотография?",
    "Какой заголовок опубликовали «Известия» о системе ПРО США?",
    "Что написали военные СМИ России после удара по Сирии?",
    "Сколько ядерных испытаний провела Северная Корея в 2017 году?",
    "Почему Пхеньян может доверять Москве больше, чем Пекину?",
    "В чём главная мысль статьи?",
]
RU_LEADS = ["", "", "Скажите, ", "Согласно статье, ", "Вопрос: "]
RU_TAILS = ["", "", " Укажите источник.", " Коротко, пожалуйста.", " Процитируйте текст."]


# ---------------------------------------------------------------------------------------


def _join(lead: str, body: str, tail: str) -> str:
    """A lead-in ending in a comma or colon lower-cases the question's first word."""
    if lead.rstrip().endswith((",", ":")) and body[:1].isupper() and not body.startswith(("I ", "U.S.")):
        body = body[0].lower() + body[1:]
    return f"{lead}{body}{tail}"


def _actors(rng: random.Random, groups: list[list[str]]) -> list[str]:
    """Three actors from three different groups."""
    return [rng.choice(group) for group in rng.sample(groups, 3)]


def _en(rng: random.Random) -> tuple[str, str]:
    kind = rng.choices(
        ["actor_topic", "source_topic", "source", "pair", "fact", "off_topic"], [38, 20, 7, 14, 14, 7]
    )[0]
    a, b, c = _actors(rng, ACTOR_GROUPS)
    t, s = rng.choice(TOPICS), rng.choice(SOURCES)
    while a.removeprefix("the ") in t:  # not "... the UN Security Council ... of the UN Security Council"
        t = rng.choice(TOPICS)
    if kind == "actor_topic":
        body = rng.choice(ACTOR_TOPIC).format(a=a, t=t)
    elif kind == "source_topic":
        body = rng.choice(SOURCE_TOPIC).format(s=s, t=t)
    elif kind == "source":
        body = rng.choice(SOURCE_ONLY).format(s=rng.choice(DOCUMENT_SOURCES))
    elif kind == "pair":
        body = rng.choice(ACTOR_PAIR).format(a=a, b=b, c=c, t=t)
    elif kind == "fact":
        body = rng.choice(FACTS[rng.choice(list(FACTS))])
    else:
        body = rng.choice(OFF_TOPIC).format(x=rng.choice(PLACES))
    body = body[0].upper() + body[1:]
    plain = not re.search(r"according|article|briefing|piece|^quote|^summarize", body, re.I)
    lead = rng.choice(EN_LEADS) if plain else ""
    return _join(lead, body, rng.choice(EN_TAILS)), kind


def _zh(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.15:
        return rng.choice(ZH_LEADS) + rng.choice(ZH_FACTS) + rng.choice(ZH_TAILS), "fact"
    a, b, c = _actors(rng, ZH_ACTOR_GROUPS)
    body = rng.choice(ZH_TEMPLATES).format(a=a, b=b, c=c, t=rng.choice(ZH_TOPICS), s=rng.choice(ZH_SOURCES))
    return rng.choice(ZH_LEADS) + body + rng.choice(ZH_TAILS), "topic"


def _ru(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.15:
        return _join(rng.choice(RU_LEADS), rng.choice(RU_FACTS), rng.choice(RU_TAILS)), "fact"
    an, ag = rng.choice(RU_ACTORS)
    tp, tg = rng.choice(RU_TOPICS)
    body = rng.choice(RU_TEMPLATES).format(an=an, ag=ag, tp=tp, tg=tg, s=rng.choice(RU_SOURCES))
    return _join(rng.choice(RU_LEADS), body, rng.choice(RU_TAILS)), "topic"


LANGUAGES: dict[str, tuple[float, Callable[[random.Random], tuple[str, str]]]] = {
    "en": (0.85, _en),
    "zh": (0.08, _zh),
    "ru": (0.07, _ru),
}


def generate(n: int, seed: int = 7, exclude: set[str] | None = None) -> list[tuple[str, str, str]]:
    """`n` distinct (question, language, kind) triples, in a shuffled, seed-determined order.
    Raises ValueError when the templates cannot give that many."""
    rng = random.Random(seed)
    seen = {" ".join(q.split()) for q in exclude or ()}
    out: list[tuple[str, str, str]] = []
    names = list(LANGUAGES)
    weights = [LANGUAGES[name][0] for name in names]
    misses = 0
    while len(out) < n:
        lang = rng.choices(names, weights)[0]
        question, kind = LANGUAGES[lang][1](rng)
        key = " ".join(question.split())
        if key in seen:
            misses += 1
            if misses > 50 * n + 10_000:
                raise ValueError(f"only {len(out)} distinct questions could be generated, {n} were asked for")
            continue
        seen.add(key)
        out.append((key, lang, kind))
    return out


def questions(n: int, seed: int = 7) -> list[str]:
    return [q for q, _, _ in generate(n, seed)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stats", action="store_true", help="print counts by language and kind instead")
    args = parser.parse_args(argv)
    items = generate(args.n, args.seed)
    if args.stats:
        print(f"{len(items)} distinct questions")
        for (lang, kind), count in sorted(Counter((lang, kind) for _, lang, kind in items).items()):
            print(f"  {lang} {kind:<13} {count:6d}")
        return 0
    for question, lang, _ in items:
        print(f"{lang}\t{question}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
