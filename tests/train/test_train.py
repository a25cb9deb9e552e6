"""`make train` end to end on a miniature of ../shared/qa: the real harvest (ingest into a throwaway
Chroma store, the service's retrieval), cross-validation by article, the models written where the
service reads them; the same seed gives the same files, and the engine answers with what it wrote."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TOPICS = [
    (
        "Warsaw",
        "Warsaw is the capital of Poland. The FSO Car Factory was established in 1951. "
        "The Vistula River flows through the city.",
        [
            ("When was the FSO Car Factory established?", "1951"),
            ("Which river flows through Warsaw?", "Vistula River"),
        ],
        ["When was the FSO Tico Factory founded?"],
    ),
    (
        "Huguenot",
        "Huguenot numbers peaked near two million by 1562. Many Huguenots fled to Prussia. "
        "The Edict of Nantes granted them rights in 1598.",
        [
            ("When did Huguenot numbers peak?", "1562"),
            ("Which edict granted Huguenots rights?", "Edict of Nantes"),
        ],
        ["Which edict took the rights of Huguenots in Poland?"],
    ),
    (
        "Packet switching",
        "Packet switching groups data into packets. Paul Baran developed the concept at RAND. "
        "Donald Davies built a network at the National Physical Laboratory.",
        [
            ("Who developed the concept of packet switching at RAND?", "Paul Baran"),
            ("What does packet switching group data into?", "packets"),
        ],
        ["Who developed circuit switching at Bell Labs?"],
    ),
    (
        "Geology",
        "Geology is the study of the Earth. Rocks are made of minerals. "
        "Plate tectonics explains how continents move over millions of years.",
        [("What are rocks made of?", "minerals"), ("What explains how continents move?", "Plate tectonics")],
        ["What explains how oceans freeze?"],
    ),
    (
        "Pharmacy",
        "Pharmacy is the science of preparing drugs. Pharmacists work in hospitals. "
        "The first pharmacy opened in Baghdad in 754.",
        [("Where did the first pharmacy open?", "Baghdad"), ("When did the first pharmacy open?", "754")],
        ["When did the last pharmacy close in Rome?"],
    ),
]


def _squad(articles: list[tuple[str, str, list[tuple[str, str]], list[str]]], prefix: str) -> dict:
    data = []
    for title, context, answerable, unanswerable in articles:
        qas = [
            {
                "id": f"{prefix}-{title}-{i}",
                "question": q,
                "is_impossible": False,
                "answers": [{"text": a, "answer_start": context.index(a)}],
            }
            for i, (q, a) in enumerate(answerable)
        ]
        qas += [
            {"id": f"{prefix}-{title}-u{i}", "question": q, "is_impossible": True, "answers": []}
            for i, q in enumerate(unanswerable)
        ]
        data.append({"title": title.replace(" ", "_"), "paragraphs": [{"context": context, "qas": qas}]})
    return {"version": "v2.0", "data": data}


@pytest.fixture(scope="module")
def mini_qa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("qa") / "raw"
    raw.mkdir()
    squad = _squad(TOPICS, "sq")
    (raw / "squad2-train.json").write_text(json.dumps(squad))
    answerable_only = _squad([(t, c, a, []) for t, c, a, _ in TOPICS], "xq")
    for lang in ("en", "zh", "ru"):
        # The same paragraphs and ids in each language, as XQuAD lists them (English text stands in).
        (raw / f"xquad.{lang}-train.json").write_text(json.dumps(answerable_only))
    (raw / "cmrc2018_train.json").write_text(
        json.dumps(_squad([(t, c, a, []) for t, c, a, _ in TOPICS[:3]], "cm"))
    )
    selqa = [
        {
            "question": q,
            "article": t,
            "section": "Intro",
            "candidates": c.split(". "),
            "answers": [next(i for i, s in enumerate(c.split(". ")) if a in s)],
        }
        for t, c, qs, _ in TOPICS
        for q, a in qs
    ]
    (raw / "selqa-ass-dev.json").write_text(json.dumps(selqa[:5]))
    (raw / "selqa-ass-test.json").write_text(json.dumps(selqa[5:]))
    return raw.parent


def _train(qa_dir: Path, out: Path, cache: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "train",
            "--qa-dir",
            str(qa_dir),
            "--out",
            str(out),
            "--cache",
            str(cache),
            "--folds",
            "3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.txt"))}


@pytest.mark.slow
def test_train_writes_a_scorer_the_engine_loads_and_the_same_seed_gives_the_same_files(
    mini_qa: Path,
    tmp_path: Path,
    subprocess_env: dict[str, str],
) -> None:
    first = _train(mini_qa, tmp_path / "first", tmp_path / "cache", subprocess_env)
    assert first.returncode == 0, first.stderr[-3000:]
    card = json.loads((tmp_path / "first" / "answer-scorer.json").read_text())
    assert card["data"]["squad2-train"]["questions"] > len(TOPICS) * 2  # asked as written, and left out
    assert card["data"]["squad2-train"]["positives"] > 0
    assert set(card["policy"]) >= {
        "refuse_under",
        "refuse_under_across",
        "cite_share",
        "cite_floor",
        "direct_over",
    }
    # Cross-validated figures for the learned step alone and with the kept hand checks, by data set.
    assert set(card["cross_validated"]) == {"learned", "with_checks"}
    assert "squad2-train" in card["cross_validated"]["learned"]
    assert 0.0 <= card["cross_validated"]["learned"]["squad2-train"]["answer_accuracy"] <= 1.0

    # Harvested again from nothing (no cache), with the same seed: the same models.
    second = _train(mini_qa, tmp_path / "second", tmp_path / "cache-2", subprocess_env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert _digest(tmp_path / "first") == _digest(tmp_path / "second")

    from service.engine.scorer import AnswerScorer
    from service.engine.signals import FEATURES

    scorer = AnswerScorer(tmp_path / "first")
    assert scorer.card["features"] == FEATURES
    assert scorer.policy.refuse_under == card["policy"]["refuse_under"]


def test_train_names_a_missing_data_folder(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    result = _train(tmp_path / "nowhere", tmp_path / "out", tmp_path / "cache", subprocess_env)
    assert result.returncode != 0
    assert "nowhere" in result.stderr and "--qa-dir" in result.stderr
    assert not (tmp_path / "out").exists()
