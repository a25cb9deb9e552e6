"""Question analysis (service.engine.analysis) on its own: no models, no store.

What kind of answer a question asks for, how many parts it has, the two sides of a comparison, the
type of answer each part needs, who the question asks about, and whether a sentence can hold an
answer of a given type. The questions are written for these tests, in English, Chinese and Russian.
"""

from __future__ import annotations

import pytest

from service.engine.analysis import analyse, answer_type, holds_type, split_parts, subject_of


def lang_of(question: str) -> str:
    if any("\u4e00" <= ch <= "\u9fff" for ch in question):
        return "zh"
    if any("\u0400" <= ch <= "\u04ff" for ch in question):
        return "ru"
    return "en"


# ---------------------------------------------------------------------------------------
# Kinds
# ---------------------------------------------------------------------------------------

KINDS = [
    # summary
    ("Give me a summary of the piece.", "summary"),
    ("What are the key takeaways of this briefing?", "summary"),
    ("In two sentences, what is the article's thesis?", "summary"),
    ("用三句话概括这篇文章。", "summary"),
    ("这篇文章的主旨是什么？", "summary"),
    ("Кратко изложите главную мысль статьи.", "summary"),
    ("В чём суть этой статьи?", "summary"),
    # sources
    ("Which publications does the briefing quote?", "sources"),
    ("What newspapers are cited in the piece?", "sources"),
    ("Who is quoted in the article?", "sources"),
    ("Which media outlets does the author quote?", "sources"),
    ("文章引用了哪些报纸？", "sources"),
    ("文章援引了哪些俄罗斯媒体的标题？", "sources"),
    ("На какие издания ссылается автор?", "sources"),
    ("Какие источники цитирует статья?", "sources"),
    ("What Chinese and Russian sources does the article cite?", "sources"),
    ("How many sources does the article cite?", "sources"),
    # compare
    ("How do Western and Chinese views of Russia's involvement in Korea differ?", "compare"),
    ("How does the Global Times editorial differ from the Izvestiya headline?", "compare"),
    ("Compare Chinese and Russian coverage of the Pacific Fleet.", "compare"),
    ("西方和中国对俄罗斯角色的看法有何不同？", "compare"),
    ("美国与中国在南海问题上的区别是什么？", "compare"),
    ("Чем западные и китайские оценки роли Москвы отличаются?", "compare"),
    # reasons
    ("Why does the writer call the policy change overdue?", "reasons"),
    ("What reasons does the journal give for Moscow's concern?", "reasons"),
    ("What evidence is there that Moscow and Beijing see Korea alike?", "reasons"),
    ("为什么俄罗斯担心朝鲜的核武器？", "reasons"),
    ("Почему Россия обеспокоена ядерной программой КНДР?", "reasons"),
    # list
    ("Which states are expected to follow Beijing's lead?", "list"),
    ("哪些国家需要追随中国？", "list"),
    ("文章提到了哪几个国家？", "list"),
    ("Какие страны должны следовать за Китаем?", "list"),
    # yes / no
    ("Does the article mention economic sanctions?", "yesno"),
    ("Is Beijing able to rein in Pyongyang on its own?", "yesno"),
    ("Did Russia send its Pacific Fleet to the Sea of Japan?", "yesno"),
    ("文章提到制裁了吗？", "yesno"),
    ("俄罗斯是否支持朝鲜？", "yesno"),
    ("Упоминает ли автор санкции?", "yesno"),
    # factoid: a typed answer
    ("Who took the photo of Wonsan?", "factoid"),
    ("How many warships sailed into the Sea of Japan?", "factoid"),
    ("In which year did the dispute break out?", "factoid"),
    ("When did the magazine publish its appraisal?", "factoid"),
    ("谁拍摄了这张照片？", "factoid"),
    ("俄罗斯派出了多少艘军舰？", "factoid"),
    ("Кто написал эту статью?", "factoid"),
    ("Сколько кораблей отправил Тихоокеанский флот?", "factoid"),
    ("В каком году вышел номер журнала?", "factoid"),
    # describe: anything else
    ("Tell me about the Finance and Economics appraisal.", "describe"),
    ("What is the position of Russia in the crisis?", "describe"),
    ("What did South Korea's government say about the fleet?", "describe"),
]


@pytest.mark.parametrize(("question", "kind"), KINDS)
def test_kind(question: str, kind: str) -> None:
    assert analyse(question, lang_of(question)).kind == kind


def test_the_kind_table_covers_every_kind_in_every_language() -> None:
    seen = {(kind, lang_of(q)) for q, kind in KINDS}
    for kind in ("summary", "sources", "compare", "reasons", "list", "yesno", "factoid"):
        assert {(kind, "en"), (kind, "zh"), (kind, "ru")} <= seen, kind


# ---------------------------------------------------------------------------------------
# Parts
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "first", "second"),
    [
        ("What does Moscow lack and what does it retain?", "lack", "retain"),
        ("What does Russia lack? What does it still have?", "lack", "still have"),
        ("What role does Japan play, and why does it matter?", "role", "matter"),
        ("What path does the author set out for Japan, and what budget does he give for it?",
         "path", "budget"),
        ("What did the White House argue, and how did the Pentagon respond?", "White House", "Pentagon"),
        ("По мнению журнала, что России не хватает, и что у неё ещё есть?", "не хватает", "ещё есть"),
    ],
)
def test_a_question_asking_two_things_has_two_parts(question: str, first: str, second: str) -> None:
    analysis = analyse(question, lang_of(question))
    assert analysis.multi
    assert len(analysis.parts) == 2
    a, b = analysis.parts
    assert first in a.text and second not in a.text
    assert second in b.text and first not in b.text
    # The label names each part in the answer; it is the part's own words.
    assert second in b.label


def test_a_pair_of_subjects_gives_each_part_its_own_actor() -> None:
    a, b = analyse("What did the White House argue, and how did the Pentagon respond?", "en").parts
    assert "White House" in a.subject and "Pentagon" not in a.subject
    assert "Pentagon" in b.subject


@pytest.mark.parametrize(
    "question",
    [
        "What did Chinese TV news praise at the end of March?",
        "Which states are expected to follow Beijing's lead?",
        "How did the Trump administration settle the argument between cooperation and confrontation?",
        "Why do tensions on the peninsula hold back the Russian Far East?",
        "为什么俄罗斯担心朝鲜的核武器？",
    ],
)
def test_a_question_asking_one_thing_has_one_part(question: str) -> None:
    # "between cooperation and confrontation", a list of countries: an "and" inside a part does
    # not split it.
    analysis = analyse(question, lang_of(question))
    assert not analysis.multi
    assert [p.text for p in analysis.parts] == [question]


def test_summary_and_sources_questions_are_never_split() -> None:
    for question in ("Summarise the article, and what are its key points?",
                     "Which newspapers does the article cite, and which journals?"):
        analysis = analyse(question, "en")
        assert analysis.kind in {"summary", "sources"}
        assert len(analysis.parts) == 1


@pytest.mark.parametrize(
    ("question", "context"),
    [
        ("According to the journal, what does Moscow lack, and what does it still possess?",
         "According to the journal"),
        ("According to the Northeast Asia Forum analysis, what does Russia lack, and what does it "
         "still have?", "According to the Northeast Asia Forum analysis"),
    ],
)
def test_according_to_is_context_for_every_part(question: str, context: str) -> None:
    analysis = analyse(question, "en")
    assert len(analysis.parts) == 2
    for part in analysis.parts:
        assert part.text.startswith(context), part.text
    first, second = analysis.parts
    assert "lack" in first.text and "still" not in first.text
    assert "still" in second.text and "lack" not in second.text
    # The label is the part's own question, without the shared context.
    assert not second.label.startswith("According")


def test_according_to_names_the_source_whatever_the_parts() -> None:
    question = "According to the journal, what does Moscow lack, and what does it still possess?"
    analysis = analyse(question, "en")
    assert analysis.named == "the journal"
    assert analyse("По мнению газеты «Известия», что угрожает России?", "ru").named == "газеты «Известия»"
    assert analyse("据环球时报，北京能控制平壤吗？", "zh").named == "环球时报"
    assert analyse("What threatens Russia?", "en").named == ""


# ---------------------------------------------------------------------------------------
# Sides of a comparison
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "sides"),
    [
        ("How do Western and Chinese views of Russia's involvement in Korea differ?", ("Western", "Chinese")),
        ("How do Western and Chinese assessments of Moscow's role compare?", ("Western", "Chinese")),
        ("Compare Chinese and Russian coverage of the Pacific Fleet.", ("Chinese", "Russian")),
        ("How does the Global Times editorial differ from the Izvestiya headline?",
         ("the Global Times editorial", "the Izvestiya headline")),
        ("How does Western coverage differ from Chinese coverage?", ("Western coverage", "Chinese coverage")),
        ("What is the difference between the Global Times editorial and the Izvestiya headline?",
         ("the Global Times editorial", "the Izvestiya headline")),
        ("西方和中国对俄罗斯角色的看法有何不同？", ("西方", "中国")),
        ("中国和俄罗斯对朝鲜问题的立场有何不同？", ("中国", "俄罗斯")),
        ("Чем западные и китайские оценки роли Москвы отличаются?", ("западные", "китайские")),
    ],
)
def test_comparison_sides(question: str, sides: tuple[str, str]) -> None:
    analysis = analyse(question, lang_of(question))
    assert analysis.kind == "compare"
    assert tuple(p.side for p in analysis.parts) == sides
    assert tuple(p.label for p in analysis.parts) == sides
    a, b = analysis.parts
    # Each part asks about its own side only.
    assert sides[0] in a.text and sides[1] not in a.text
    assert sides[1] in b.text and sides[0] not in b.text


def test_comparison_parts_keep_the_topic_of_the_question() -> None:
    a, b = analyse("How do Western and Chinese views of Russia's involvement in Korea differ?", "en").parts
    for part in (a, b):
        assert "Russia's involvement in Korea" in part.text and "differ" in part.text
    a, b = analyse("西方和中国对俄罗斯角色的看法有何不同？", "zh").parts
    assert a.text == "西方对俄罗斯角色的看法有何不同？"
    assert b.text == "中国对俄罗斯角色的看法有何不同？"


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("How does Western coverage of Moscow's role differ from Chinese coverage?", "Moscow's role"),
        ("How does the Global Times editorial differ from the Izvestiya headline on Beijing?", "Beijing"),
    ],
)
def test_differ_from_parts_keep_the_topic(question: str, topic: str) -> None:
    """Each side's part asks about the topic only one side's words held; not about the verb, which
    frames the comparison and is no word for its evidence to hold."""
    parts = analyse(question, "en").parts
    assert len(parts) == 2
    for part in parts:
        assert topic in part.text, part.text
        assert "differ" not in part.text and "from" not in part.text.split(), part.text


@pytest.mark.parametrize(
    ("question", "sides"),
    [
        ("Compare how Western media and Chinese commentators view Russia's involvement.",
         ("Western media", "Chinese commentators")),
        ("Western media and Chinese commentators view Russia differently: how?",
         ("Western media", "Chinese commentators")),
        ("How do Western and Chinese views of Russia differ?", ("Western", "Chinese")),
    ],
)
def test_sides_built_alike_keep_their_own_words(question: str, sides: tuple[str, str]) -> None:
    a, b = analyse(question, "en").parts
    assert (a.side, b.side) == sides
    assert sides[0] in a.text and sides[1] in b.text
    assert sides[0] not in b.text and sides[1] not in a.text


def test_chinese_sides_with_a_shared_noun() -> None:
    a, b = analyse("西方媒体和中国媒体对俄罗斯的作用看法有何不同？", "zh").parts
    assert "媒体媒体" not in a.text
    assert (a.side, b.side) in {("西方媒体", "中国媒体"), ("西方", "中国")}


# ---------------------------------------------------------------------------------------
# Answer types
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Who took the photo of Wonsan?", "person"),
        ("Who signed the editorial?", "person"),
        ("Whose role has been neglected, by the author's account?", ""),  # "whose": a possessor, a country as well as a person
        ("谁拍摄了这张照片？", "person"),
        ("Кто автор анализа?", "person"),
        ("How many warships sailed into the Sea of Japan?", "number"),
        ("How much cargo moved in 2023?", "number"),
        ("What percentage of trade goes through the port?", "number"),
        ("How many years has Russia sought leverage?", "number"),
        ("俄罗斯派出了多少艘军舰？", "number"),
        ("Сколько кораблей отправил флот?", "number"),
        ("Which year did the White House and the Pentagon dispute?", "year"),
        ("In what year was the appraisal published?", "year"),
        ("哪一年爆发了争论？", "year"),
        ("В каком году произошёл спор?", "year"),
        ("On what exact date did Izvestiya run the headline?", "day"),
        ("What was the specific date of the strike?", "day"),
        ("文章是哪天发表的？", "day"),
        ("Какого числа вышла статья?", "day"),
        ("When did the magazine publish its appraisal?", "date"),
        ("这篇社论是什么时候发表的？", "date"),
        ("Когда журнал опубликовал анализ?", "date"),
        # 哪几个 asks which ones, not how many.
        ("文章提到了哪几个国家？", ""),
        ("哪几个机构发生了争论？", ""),
        # Quoted people are sources, not a name to find in a sentence.
        ("Who is quoted in the article?", ""),
        ("What did Chinese TV news praise?", ""),
        ("Why does the writer call the policy change overdue?", ""),
    ],
)
def test_answer_type(question: str, expected: str) -> None:
    assert answer_type(question) == expected
    analysis = analyse(question, lang_of(question))
    if analysis.kind not in {"sources", "summary", "compare"} and not analysis.multi:
        assert analysis.parts[0].answer_type == expected


def test_each_part_has_its_own_answer_type() -> None:
    a, b = analyse("Who wrote the editorial, and when did it run?", "en").parts
    assert (a.answer_type, b.answer_type) == ("person", "date")
    a, b = analyse("How many ships sailed, and which year did they sail?", "en").parts
    assert (a.answer_type, b.answer_type) == ("number", "year")


@pytest.mark.parametrize(
    ("question", "count"),
    [
        ("Summarise the article in two sentences.", 2),
        ("In 3 points, what is the argument?", 3),
        ("用两句话概括这篇文章。", 2),
        ("Изложите суть статьи в трёх предложениях.", 3),
        ("Summarise it.", None),
    ],
)
def test_count_asked(question: str, count: int | None) -> None:
    assert analyse(question, lang_of(question)).count == count


# ---------------------------------------------------------------------------------------
# Who a question asks about
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "contains", "absent"),
    [
        ("What did South Korea's government say about the fleet?", "South Korea", ""),
        ("What does the article say Washington offered Pyongyang?", "Washington", "article"),
        ("What does the report say the Pentagon wanted?", "Pentagon", "report"),
        ("What did the Kremlin announce after the strike?", "Kremlin", ""),
        ("How did Chinese TV news react to the sortie?", "Chinese TV news", ""),
        ("What did the authors of the analysis conclude?", "authors", ""),
    ],
)
def test_subject_of(question: str, contains: str, absent: str) -> None:
    subject = subject_of(question)
    assert contains in subject
    if absent:
        assert absent not in subject
    assert not subject.lower().startswith("the "), "a leading article is dropped"
    assert analyse(question, "en").subject == subject


@pytest.mark.parametrize(
    "question",
    ["What happened in 2016?", "What is the capital of Australia?", "Which path does Japan follow?",
     "Why did Tokyo protest?",
     # The actor is a phrase without a comma: "praise" past one is a noun, not what the fleet said.
     "Into which sea did the Pacific Fleet sail in March, drawing praise on television?",
     "When did the fleet sail, to the applause of state media, and what did it carry?"],
)
def test_no_subject_when_nobody_is_asked_about(question: str) -> None:
    assert subject_of(question) == ""


@pytest.mark.parametrize(
    "question",
    ["What does China need from the other Northeast Asian states?",
     "What do the United States want from Beijing?"],
)
def test_a_plural_noun_is_not_a_speech_verb(question: str) -> None:
    subject = subject_of(question)
    assert subject in {"", "China", "United States"}, subject


def test_a_comparison_has_sides_not_a_subject() -> None:
    analysis = analyse("How did Chinese TV news and Western media differ in their views?", "en")
    assert analysis.kind == "compare"
    assert analysis.subject == ""


# ---------------------------------------------------------------------------------------
# What a sentence can answer
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "question", "holds"),
    [
        ("The photo was taken by Clay Gilliland in Wonsan.", "Who took the photo?", True),
        ("It was said by Vladimir Putin after the talks.", "Who spoke?", True),
        ("According to Mr. Lavrov, the talks failed.", "Who spoke?", True),
        ("Today President Trump said it.", "Who said it?", True),
        ("Disputes broke out between the White House and the Pentagon.", "Who disputed?", True),
        # Places, peoples and directions are capitalised but name no one.
        ("Such instances dilute the North Korean nuclear threat.", "Who is threatened?", False),
        ("The dispute concerned the South China Sea and North Korea.", "Who disputed?", False),
        ("They met in the Korean Peninsula with South Korean officials.", "Who met?", False),
        ("The talks went on with the Russian Federation.", "Who talked?", False),
        # The names the question itself gives are not the answer.
        ("Disputes broke out between the White House and the Pentagon.",
         "Who did the White House dispute with, the Pentagon?", False),
        ("the talks with Kim Jong Un went on.", "Who met Kim Jong Un?", False),
    ],
)
def test_holds_a_person(text: str, question: str, holds: bool) -> None:
    assert holds_type("person", text, question) is holds


@pytest.mark.parametrize(
    "text",
    ["Vladimir Putin spoke to reporters after the talks.",
     "Alexei Likhachev told reporters in Murmansk that escorts would be free."],
)
def test_holds_a_person_named_first_in_the_sentence(text: str) -> None:
    assert holds_type("person", text, "Who told reporters?")


@pytest.mark.parametrize(
    ("kind", "text", "holds"),
    [
        ("number", "about 34 million tonnes", True),
        ("number", "three warships", True),
        ("number", "发射了三枚导弹", True),
        ("number", "In 2018 the goal was set.", False),  # a bare year is not a quantity
        ("year", "in 2018", True),
        ("year", "last year", True),
        ("year", "back in mid-March", False),
        ("day", "on 14 April", True),
        ("day", "4月14日", True),
        ("day", "14 апреля", True),
        ("day", "in April", False),
        ("date", "at the end of March", True),
        ("date", "in spring", True),
        ("date", "a few weeks back", True),
        ("date", "the Pentagon disagreed", False),
        ("", "anything at all", True),
    ],
)
def test_holds_other_types(kind: str, text: str, holds: bool) -> None:
    assert holds_type(kind, text) is holds


def test_split_parts_keeps_a_single_question_whole() -> None:
    question = "Which states are expected to follow Beijing's lead?"
    assert split_parts(question) == [(question, question)]
