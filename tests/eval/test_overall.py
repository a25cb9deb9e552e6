"""Overall accuracy beside the refuse-everything share, the direct-answer figures, gates that compare one
metric with another, and `briefing eval-qa` on a miniature of the human-written sets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from briefing_core.errors import UserError
from eval.runner import Asker, gate, parse_minimums, run

CORPUS = {"paper": "The factory was established in 1951. The river is the Vistula. The city has a zoo."}


class Canned(Asker):
    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers

    def __call__(self, question: str, history: list[dict[str, str]]) -> dict[str, Any]:
        return self.answers[question]


def _cite(needle: str) -> dict[str, Any]:
    start = CORPUS["paper"].index(needle)
    return {"n": 1, "doc_id": "paper", "start": start, "end": start + len(needle), "quote": needle}


GOLD = [
    {
        "id": "a1",
        "question": "When was the factory established?",
        "answerable": True,
        "lang": "en",
        "facts": [["1951"]],
        "evidence": ["The factory was established in 1951."],
    },
    {
        "id": "a2",
        "question": "Which river?",
        "answerable": True,
        "lang": "en",
        "facts": [["Vistula", "the Vistula"]],
        "evidence": ["The river is the Vistula."],
    },
    {
        "id": "u1",
        "question": "When was the zoo founded?",
        "answerable": False,
        "lang": "en",
        "facts": [],
        "evidence": [],
    },
    {
        "id": "u2",
        "question": "Who runs the zoo?",
        "answerable": False,
        "lang": "en",
        "facts": [],
        "evidence": [],
    },
]
REFUSAL = {"answer": "The sources do not say.", "refused": True, "citations": []}


def _run(tmp_path: Path, answers: dict[str, dict[str, Any]]) -> Any:
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in GOLD))
    return run(path, Canned(answers), CORPUS)


def test_overall_accuracy_counts_right_answers_and_right_refusals_over_every_question(tmp_path: Path) -> None:
    answers = {
        "When was the factory established?": {
            "answer": "1951. [1] The factory was established in 1951. [1]",
            "citations": [_cite("The factory was established in 1951.")],
            "direct_answer": {"text": "1951"},
        },
        "Which river?": REFUSAL,  # a false refusal
        "When was the zoo founded?": REFUSAL,  # right
        "Who runs the zoo?": {
            "answer": "The city has a zoo. [1]",
            "citations": [_cite("The city has a zoo.")],
            "direct_answer": {"text": "The city"},
        },  # wrong: answered
    }
    summary = _run(tmp_path, answers).summary
    assert summary["overall_accuracy"] == 0.5  # a1 right, u1 rightly refused, of four
    assert summary["unanswerable_share"] == 0.5  # what refusing everything would score
    assert summary["answer_accuracy"] == 0.5 and summary["refusal_accuracy"] == 0.5
    # One answerable question answered, and it began with a direct answer equal to the annotators'.
    assert summary["direct_answers"] == 1.0 and summary["direct_exact"] == 1.0


def test_a_direct_answer_that_is_not_the_annotators_is_counted_as_given_but_not_exact(tmp_path: Path) -> None:
    answers = {
        "When was the factory established?": {
            "answer": "In 1951. [1]",
            "citations": [_cite("The factory was established in 1951.")],
            "direct_answer": {"text": "In 1951"},
        },
        "Which river?": {
            "answer": "The Vistula. [1]",
            "citations": [_cite("The river is the Vistula.")],
            "direct_answer": {"text": "the  Vistula."},
        },  # normalised: the annotators' answer
        "When was the zoo founded?": REFUSAL,
        "Who runs the zoo?": REFUSAL,
    }
    summary = _run(tmp_path, answers).summary
    assert summary["overall_accuracy"] == 1.0
    assert summary["direct_answers"] == 1.0
    assert summary["direct_exact"] == 0.5


def test_a_gate_may_name_another_metric_to_beat() -> None:
    bounds = parse_minimums(["overall_accuracy=unanswerable_share", "false_refusal_rate=0.15"])
    assert bounds == {"overall_accuracy": "unanswerable_share", "false_refusal_rate": 0.15}
    assert (
        gate({"overall_accuracy": 0.6, "unanswerable_share": 0.56, "false_refusal_rate": 0.1}, bounds) == []
    )
    failures = gate({"overall_accuracy": 0.56, "unanswerable_share": 0.56, "false_refusal_rate": 0.2}, bounds)
    assert any("not above unanswerable_share" in f for f in failures)
    assert any("above the allowed 0.15" in f for f in failures)
    with pytest.raises(UserError, match="neither a number nor a metric"):
        parse_minimums(["overall_accuracy=refusing"])


# -- briefing eval-qa ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mini_qa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """squad2/dev and xquad/dev with one article each, in the gold format the shared folder uses."""
    root = tmp_path_factory.mktemp("qa")
    text = (
        "The FSO Car Factory was established in 1951. Warsaw lies on the Vistula River.\n\n"
        "The city council has 60 members, elected every four years."
    )
    squad = root / "squad2" / "dev"
    (squad / "docs").mkdir(parents=True)
    (squad / "docs" / "squad-warsaw.txt").write_text(text)
    rows = [
        {
            "id": "s1",
            "question": "When was the FSO Car Factory established?",
            "lang": "en",
            "answerable": True,
            "facts": [["1951"]],
            "evidence": ["The FSO Car Factory was established in 1951."],
            "max_chars": 700,
        },
        {
            "id": "s2",
            "question": "How many members does the city council have?",
            "lang": "en",
            "answerable": True,
            "facts": [["60"]],
            "evidence": ["The city council has 60 members, elected every four years."],
            "max_chars": 700,
        },
        {
            "id": "s3",
            "question": "When was the FSO Tico Factory closed by the council of Krakow?",
            "lang": "en",
            "answerable": False,
            "facts": [],
            "evidence": [],
            "max_chars": 700,
        },
    ]
    (squad / "gold.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for lang in ("en", "zh", "ru"):
        (root / "xquad" / "dev" / lang).mkdir(parents=True)
        (root / "xquad" / "dev" / lang / f"xquad-{lang}-warsaw.txt").write_text(text)
    (root / "xquad" / "dev" / "gold-en-en.jsonl").write_text(json.dumps(rows[0]) + "\n")
    return root


def _eval_qa(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.shell.cli", "eval-qa", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_eval_qa_scores_each_set_beside_the_briefing_and_gates(
    mini_qa: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "BRIEFING_STORE_DIR": str(tmp_path / "unused-store")}
    out = tmp_path / "out"
    ok = _eval_qa(
        [
            "--qa-dir",
            str(mini_qa),
            "--set",
            "squad2",
            "--set",
            "xquad-en-en",
            "--out",
            str(out),
            "--min",
            "squad2:answer_accuracy=0.5",
            "--min",
            "squad2:overall_accuracy=unanswerable_share",
        ],
        env,
    )
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    table = json.loads((out / "summary.json").read_text())
    assert set(table) == {"squad2", "xquad-en-en"}
    assert table["squad2"]["questions"] == 3 and table["squad2"]["unanswerable_share"] == round(1 / 3, 4)
    assert "| squad2 |" in (out / "summary.md").read_text()
    # Each set's own records and report, as `briefing eval` writes them.
    assert (out / "squad2" / "records.jsonl").is_file() and (out / "xquad-en-en" / "report.html").is_file()
    # The user's store was never touched: every set has a store of its own, thrown away.
    assert not (tmp_path / "unused-store").exists()

    failing = _eval_qa(
        [
            "--qa-dir",
            str(mini_qa),
            "--set",
            "squad2",
            "--out",
            str(tmp_path / "out2"),
            "--min",
            "squad2:answer_accuracy=1.01",
        ],
        env,
    )
    assert failing.returncode == 1
    assert "answer_accuracy" in failing.stderr


def test_eval_qa_names_what_is_wrong_with_its_arguments(
    mini_qa: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    cases = [
        (["--qa-dir", str(tmp_path / "nowhere")], "nowhere"),
        (["--qa-dir", str(mini_qa), "--set", "squad3"], "squad3"),
        (
            ["--qa-dir", str(mini_qa), "--set", "squad2", "--min", "xquad-en-en:answer_accuracy=0.5"],
            "not among those run",
        ),
        (["--qa-dir", str(mini_qa), "--set", "squad2", "--min", "squad2:answer_acc=0.5"], "answer_acc"),
    ]
    for args, expected in cases:
        result = _eval_qa([*args, "--out", str(tmp_path / "o")], subprocess_env)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
