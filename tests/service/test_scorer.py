"""The learned answer step: the committed scorer loads and matches the features this code computes,
its probabilities rank the sentence that answers above those that do not, the hand rules switch by
name, and a factoid answer begins with its short answer."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from briefing_core.errors import UserError
from service.engine.direct import candidates, normalise_answer, span_features
from service.engine.plan import DEFAULT_RULES, RULES, rules_from
from service.engine.scorer import CARD, MODEL_DIR, AnswerScorer, ScorerMissing
from service.engine.signals import FEATURES, PART_FEATURES, QuestionView, column, unit_features, wh_class


def _unit(text: str, paragraph: int = 0, lang: str = "en", **extra: Any) -> Any:
    from briefing_core.text import tokenize

    return SimpleNamespace(
        text=text,
        tokens=frozenset(tokenize(text)),
        paragraph=paragraph,
        lang=lang,
        attributed_to=extra.get("attributed_to"),
        heading=extra.get("heading", False),
        doc_id="d",
        index=0,
        start=0,
        end=len(text),
    )


def test_the_packaged_scorer_was_trained_on_the_features_this_code_computes() -> None:
    card = json.loads((MODEL_DIR / CARD).read_text())
    assert card["features"] == FEATURES
    assert card["part_features"] == PART_FEATURES
    scorer = AnswerScorer.load()
    policy = scorer.policy
    assert 0.0 < policy.refuse_under < 1.0 and 0.0 < policy.refuse_under_across < 1.0
    assert 0.0 < policy.cite_share <= 1.0
    # Every training corpus is named with what it held; nothing of the dev articles was trained on.
    assert not any("dev" in name for name in card["data"])
    assert {"squad2-train", "cmrc-train", "selqa"} <= set(card["data"])


def test_a_folder_without_a_scorer_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ScorerMissing, match="make train"):
        AnswerScorer(tmp_path)


def test_a_scorer_trained_on_other_features_is_refused(tmp_path: Path) -> None:
    for name in ("answer-units.txt", "answer-parts.txt"):
        (tmp_path / name).write_bytes((MODEL_DIR / name).read_bytes())
    card = json.loads((MODEL_DIR / CARD).read_text())
    card["features"] = [*card["features"], "something_new"]
    (tmp_path / CARD).write_text(json.dumps(card))
    with pytest.raises(ScorerMissing, match="other features"):
        AnswerScorer(tmp_path)


def test_the_sentence_holding_the_answer_scores_highest() -> None:
    question = "When was the FSO Car Factory established?"
    view = QuestionView.of(question, "en", "factoid", "year")
    units = [
        _unit("The FSO Car Factory was established in 1951."),
        _unit("A number of vehicles have been assembled there over the decades, including the Syrena."),
        _unit("Warsaw lies on the Vistula River, about 260 kilometres from the Baltic Sea."),
    ]
    para = [frozenset().union(*(u.tokens for u in units))] * 3
    X = unit_features(view, units, np.array([0.55, 0.35, 0.1]), [0, 0, 1], para, [0, 1, 0])
    assert X.shape == (3, len(FEATURES))
    assert X[0, column("type_held")] == 1.0 and X[2, column("type_held")] == 0.0
    p = AnswerScorer.load().units(X)
    assert np.all((p >= 0) & (p <= 1))
    assert int(np.argmax(p)) == 0
    assert AnswerScorer.load().answerable(p, X) > AnswerScorer.load().answerable(p[1:], X[1:])


def test_question_views_read_the_kind_of_question_in_three_languages() -> None:
    assert wh_class("How many warships sailed?") == "how_many"
    assert wh_class("Сколько кораблей вышло в море?") == "how_many"
    assert wh_class("什么时候发表的？") == "when"
    assert wh_class("Кто написал статью?") == "who"
    assert wh_class("Why is the shift overdue?") == "why"
    view = QuestionView.of("What did Izvestiya say in 2017 about Japan’s missile defence?", "en")
    assert view.numbers == {"2017"}
    assert "izvestiya" in view.names
    assert view.about  # the topic after "about"


@pytest.mark.parametrize(
    ("spec", "on", "off"),
    [
        ("", set(DEFAULT_RULES), set()),
        ("none,+named", {"named"}, set(RULES) - {"named"}),
        ("all,-pivot", set(RULES) - {"pivot"}, {"pivot"}),
        ("-check_across", set(DEFAULT_RULES) - {"check_across"}, {"check_across"}),
    ],
)
def test_hand_rules_switch_by_name(spec: str, on: set[str], off: set[str]) -> None:
    rules = rules_from(spec)
    assert on <= rules and not (off & rules)


def test_an_unknown_rule_is_named_in_the_error() -> None:
    with pytest.raises(UserError, match="no_such_rule"):
        rules_from("-no_such_rule")


def test_span_candidates_are_names_numbers_dates_and_phrases() -> None:
    text = "Around 1294, a French version of the Scriptures was prepared by the Roman Catholic priest, Guyard de Moulin."
    found = {text[c.start : c.end] for c in candidates(text)}
    assert {"1294", "Guyard de Moulin", "Roman Catholic priest", "French version of the Scriptures"} <= found
    zh = "范廷颂于1963年被任为主教。"
    assert "1963年" in {zh[c.start : c.end] for c in candidates(zh)}
    assert normalise_answer("The  Vistula River.") == normalise_answer("vistula river")


def test_span_rows_put_the_asked_kind_of_answer_first() -> None:
    view = QuestionView.of("When was the FSO Car Factory established?", "en", "factoid", "year")
    unit = _unit("The FSO Car Factory was established in 1951, and the Syrena was made there.")
    found, X = span_features(view, [unit], [0.9])
    scores = AnswerScorer.load().spans(X)
    assert scores is not None and len(scores) == len(found)
    u, best = found[int(np.argmax(scores))]
    assert unit.text[best.start : best.end] == "1951"
