"""Batch evaluation: metrics recomputed independently from records.jsonl, metrics that fall for a wrong
answerer, gold-file validation, the comparison with a previous run and the CI gate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eval.gold import load_gold
from eval.runner import Asker, InProcessAsker, gate, run
from ingest.pipeline import ingest
from service.engine.chain import BriefingQA
from briefing_core.errors import GoldFileError
from briefing_core.settings import BUNDLED_GOLD, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = Settings(store_dir=tmp_path_factory.mktemp("store"))
    assert ingest(s).errors == []
    return s


@pytest.fixture(scope="module")
def qa(settings: Settings) -> BriefingQA:
    return BriefingQA(settings).load()


@pytest.fixture(scope="module")
def corpus(qa: BriefingQA) -> dict[str, str]:
    return {r.doc_id: r.text for r in qa.store.documents()}


@pytest.fixture(scope="module")
def good_run(qa: BriefingQA, corpus: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    run(BUNDLED_GOLD, InProcessAsker(qa), corpus, out_dir=out)
    return out


ANALYST_GOLD = ROOT / "eval" / "gold" / "analyst.jsonl"


@pytest.fixture(scope="module")
def analyst_run(qa: BriefingQA, corpus: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("analyst")
    run(ANALYST_GOLD, InProcessAsker(qa), corpus, out_dir=out)
    return out


# ---------------------------------------------------------------------------------------
# An independent scorer, written from eval/gold/README.md without the runner's code
# ---------------------------------------------------------------------------------------


def _locate(corpus: dict[str, str], needle: str) -> list[tuple[str, int, int]]:
    import re

    words = needle.split()
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    found = []
    for doc, text in corpus.items():
        i = 0
        while (m := pattern.search(text, i)) is not None:
            found.append((doc, m.start(), m.end()))
            i = m.start() + 1
    return found


def _touches(doc: str, start: int, end: int, spans: list[tuple[str, int, int]]) -> bool:
    return any(d == doc and start < e and s < end for d, s, e in spans)


def independent_metrics(records: list[dict[str, Any]], gold: dict[str, dict[str, Any]],
                        corpus: dict[str, str]) -> dict[str, float | None]:
    ans = [r for r in records if gold[r["id"]]["answerable"]]
    una = [r for r in records if not gold[r["id"]]["answerable"]]

    def ev(r: dict[str, Any]) -> list[tuple[str, int, int]]:
        return [s for e in gold[r["id"]]["evidence"] for s in _locate(corpus, e)]

    def correct(r: dict[str, Any]) -> bool:
        text = r["answer"].lower()
        limit = gold[r["id"]].get("max_chars")
        if limit is not None and len(r["answer"]) > limit:
            return False
        facts = gold[r["id"]].get("facts", [])
        return not r["refused"] and all(any(a.lower() in text for a in g) for g in facts)

    def cite_ok(c: dict[str, Any], spans: list[tuple[str, int, int]]) -> bool:
        return c["end"] - c["start"] <= 400 and _touches(c["doc_id"], c["start"], c["end"], spans)

    def coverage(r: dict[str, Any]) -> float:
        if r["refused"]:
            return 0.0
        strings = gold[r["id"]]["evidence"]
        cited = [any(cite_ok(c, _locate(corpus, e)) for c in r["citations"]) for e in strings]
        return sum(cited) / len(strings)

    def retrieved_ok(r: dict[str, Any]) -> bool:
        spans = ev(r)
        return any(p["end"] - p["start"] <= 1500 and _touches(p["doc_id"], p["start"], p["end"], spans)
                   for p in r["retrieved"][:5])

    cites_ans = [(c, ev(r)) for r in ans for c in r["citations"]]
    cites_all = [c for r in records for c in r["citations"]]
    lat = sorted(r["latency_ms"] for r in records)

    def ratio(a: float, b: int) -> float | None:
        return round(a / b, 4) if b else None

    import math

    return {
        "answer_accuracy": ratio(sum(correct(r) for r in ans), len(ans)),
        "refusal_accuracy": ratio(sum(r["refused"] for r in una), len(una)),
        "false_refusal_rate": ratio(sum(r["refused"] for r in ans), len(ans)),
        "retrieval_recall_at_5": ratio(sum(retrieved_ok(r) for r in ans), len(ans)),
        "citation_recall": ratio(sum(any(cite_ok(c, ev(r)) for c in r["citations"]) for r in ans), len(ans)),
        "evidence_coverage": ratio(sum(coverage(r) for r in ans), len(ans)),
        "citation_precision": ratio(sum(cite_ok(c, s) for c, s in cites_ans), len(cites_ans)),
        "citation_validity": ratio(
            sum(corpus.get(c["doc_id"], "")[c["start"]:c["end"]] == c["quote"] for c in cites_all), len(cites_all)
        ),
        "latency_ms_p50": round(lat[math.ceil(0.5 * len(lat)) - 1], 2),
        "latency_ms_p95": round(lat[math.ceil(0.95 * len(lat)) - 1], 2),
    }


def _gold_by_id(path: Path) -> dict[str, dict[str, Any]]:
    return {(o := json.loads(line))["id"]: o for line in path.read_text().splitlines() if line.strip()}


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("run_name", "gold_path"), [("good_run", BUNDLED_GOLD), ("analyst_run", ANALYST_GOLD)])
def test_summary_agrees_exactly_with_metrics_recomputed_from_records(
    request: pytest.FixtureRequest, corpus: dict[str, str], run_name: str, gold_path: Path
) -> None:
    folder = request.getfixturevalue(run_name)
    summary = json.loads((folder / "summary.json").read_text())
    again = independent_metrics(_records(folder), _gold_by_id(gold_path), corpus)
    assert set(again) >= {"evidence_coverage", "answer_accuracy"}
    for name, value in again.items():
        assert summary[name] == value, name


def test_bundled_analyst_set_is_the_shared_one_and_its_evidence_is_in_the_briefing(corpus: dict[str, str]) -> None:
    questions = load_gold(ANALYST_GOLD, corpus)
    assert all(q.max_chars for q in questions if q.answerable)
    shared = Path("/work/shared/eval/analyst.jsonl")
    if shared.is_file():
        assert ANALYST_GOLD.read_bytes() == shared.read_bytes()


def test_records_have_the_documented_shape(good_run: Path, analyst_run: Path) -> None:
    for record in _records(good_run) + _records(analyst_run):
        assert {"id", "question", "answer", "refused", "citations", "retrieved", "latency_ms"} <= set(record)
        for c in record["citations"]:
            assert {"n", "doc_id", "start", "end", "quote"} <= set(c)
        for p in record["retrieved"]:
            assert {"doc_id", "start", "end", "score"} <= set(p)
        assert record["checks"]["answer_chars"] == len(record["answer"])
        limit = record["checks"]["max_chars"]
        assert record["checks"]["over_max_chars"] == (limit is not None and len(record["answer"]) > limit)
    assert all(r["checks"]["max_chars"] for r in _records(analyst_run) if r["answerable"])


def test_summary_breaks_down_by_language_and_kind(good_run: Path) -> None:
    summary = json.loads((good_run / "summary.json").read_text())
    assert set(summary["by_language"]) == {"en", "zh", "ru"}
    assert {"answerable", "unanswerable", "multi-turn"} <= set(summary["by_kind"])
    assert summary["by_kind"]["unanswerable"]["refusal_accuracy"] is not None
    for group in [*summary["by_language"].values(), *summary["by_kind"].values()]:
        assert "evidence_coverage" in group
    assert summary["by_kind"]["answerable"]["evidence_coverage"] is not None


def test_report_shows_coverage_and_a_table_by_kind(good_run: Path) -> None:
    html = (good_run / "report.html").read_text()
    assert 'id="m-evidence_coverage"' in html
    by_kind = html.split("By kind of question", 1)[1].split("</table>", 1)[0]
    assert all(f"<th>{kind}</th>" in by_kind for kind in ("answerable", "unanswerable", "multi-turn"))
    assert "<th>evidence_coverage</th>" in by_kind


# ---------------------------------------------------------------------------------------
# evidence_coverage and max_chars on records made to measure
# ---------------------------------------------------------------------------------------

_TOY_CORPUS = {
    "paper": "Alpha rose sharply in spring. Beta fell after the vote. Gamma stayed flat all year. "
             "Alpha rose sharply in spring.",
    "other": "Nothing here is evidence for anything.",
}


class CannedAsker(Asker):
    """Gives the answer written for each question."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers

    def __call__(self, question: str, history: list[dict[str, str]]) -> dict[str, Any]:
        return self.answers[question]


def _cite(doc: str, needle: str, n: int = 1, nth: int = 0) -> dict[str, Any]:
    text = _TOY_CORPUS[doc]
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    return {"n": n, "doc_id": doc, "start": start, "end": start + len(needle), "quote": needle}


def _toy_run(tmp_path: Path, gold: list[dict[str, Any]], answers: dict[str, dict[str, Any]]) -> Any:
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in gold))
    return run(path, CannedAsker(answers), _TOY_CORPUS)


_THREE = ["Alpha rose sharply", "Beta fell", "Gamma stayed flat"]


def test_coverage_is_the_share_of_evidence_strings_cited(tmp_path: Path) -> None:
    gold = [{"id": "q", "question": "What moved?", "answerable": True, "lang": "en", "facts": [["alpha"]],
             "evidence": _THREE}]
    answer = {"answer": "Alpha rose [1]; beta fell [2].", "refused": False,
              "citations": [_cite("paper", "Alpha rose sharply in spring.", 1), _cite("paper", "Beta fell", 2)]}
    out = _toy_run(tmp_path, gold, {"What moved?": answer})
    assert out.summary["evidence_coverage"] == round(2 / 3, 4)
    assert out.records[0]["checks"]["evidence_covered"] == 2
    assert out.records[0]["checks"]["evidence_strings"] == 3
    again = independent_metrics(out.records, {"q": gold[0]}, _TOY_CORPUS)
    assert again["evidence_coverage"] == out.summary["evidence_coverage"]


def test_an_evidence_string_in_two_places_is_covered_by_either(tmp_path: Path) -> None:
    gold = [{"id": "q", "question": "What rose?", "answerable": True, "lang": "en", "facts": [["alpha"]],
             "evidence": ["Alpha rose sharply in spring."]}]
    second_place = _cite("paper", "Alpha rose sharply in spring.", nth=1)
    assert second_place["start"] > 60
    out = _toy_run(tmp_path, gold, {"What rose?": {"answer": "Alpha rose.", "citations": [second_place]}})
    assert out.summary["evidence_coverage"] == 1.0


def test_a_refused_question_or_an_overlong_citation_covers_nothing(tmp_path: Path) -> None:
    gold = [
        {"id": "refused", "question": "Q1?", "answerable": True, "lang": "en", "evidence": _THREE},
        {"id": "long", "question": "Q2?", "answerable": True, "lang": "en", "evidence": _THREE},
    ]
    long_text = _TOY_CORPUS["paper"] * 5
    corpus_doc = {"n": 1, "doc_id": "long", "start": 0, "end": len(long_text), "quote": long_text}
    answers = {
        # Cites all three, but says the sources do not answer: a refusal earns no coverage.
        "Q1?": {"answer": "The sources do not say.", "refused": True,
                "citations": [_cite("paper", e, i) for i, e in enumerate(_THREE, 1)]},
        "Q2?": {"answer": "Everything.", "refused": False, "citations": [corpus_doc]},
    }
    corpus = {**_TOY_CORPUS, "long": long_text}
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(g) + "\n" for g in gold))
    out = run(path, CannedAsker(answers), corpus)
    by_id = {r["id"]: r["checks"] for r in out.records}
    assert by_id["refused"]["evidence_covered"] == 0 and by_id["refused"]["citations_on_evidence"] == 3
    assert by_id["long"]["evidence_covered"] == 0
    assert out.summary["evidence_coverage"] == 0.0
    assert independent_metrics(out.records, {g["id"]: g for g in gold}, corpus)["evidence_coverage"] == 0.0


def test_an_answer_longer_than_max_chars_is_not_accurate(tmp_path: Path) -> None:
    gold = [
        {"id": "short", "question": "Q1?", "answerable": True, "lang": "en", "facts": [["beta"]],
         "evidence": ["Beta fell"], "max_chars": 40},
        {"id": "long", "question": "Q2?", "answerable": True, "lang": "en", "facts": [["beta"]],
         "evidence": ["Beta fell"], "max_chars": 40},
    ]
    cite = [_cite("paper", "Beta fell after the vote.")]
    # With its quote the short answer would run to 54 characters: citations do not count.
    answers = {
        "Q1?": {"answer": "Beta fell after the vote [1].", "citations": cite},
        "Q2?": {"answer": "Beta fell after the vote [1], " + "and so on " * 5, "citations": cite},
    }
    out = _toy_run(tmp_path, gold, answers)
    by_id = {r["id"]: r["checks"] for r in out.records}
    assert by_id["short"]["correct"] and not by_id["short"]["over_max_chars"]
    assert by_id["long"]["over_max_chars"] and not by_id["long"]["correct"]
    assert by_id["long"]["answer_chars"] > 40
    assert out.summary["answer_accuracy"] == 0.5
    assert independent_metrics(out.records, {g["id"]: g for g in gold}, _TOY_CORPUS)["answer_accuracy"] == 0.5


class WrongAsker(Asker):
    """Answers everything, cites a shifted span with an invented quote, and never refuses."""

    def __init__(self, qa: BriefingQA) -> None:
        self.qa = qa

    def __call__(self, question: str, history: list[dict[str, str]]) -> dict[str, Any]:
        result = self.qa.ask(question, history=history, filters=None).to_dict()
        first = result["retrieved"][0] if result["retrieved"] else {"doc_id": "nowhere", "start": 0, "end": 10}
        result["refused"] = False
        result["answer"] = "The sources say something confident."
        result["citations"] = [
            {"n": 1, "doc_id": first["doc_id"], "start": first["start"] + 3, "end": first["start"] + 40,
             "quote": "an invented quotation"},
            {"n": 2, "doc_id": first["doc_id"], "start": 0, "end": 1000, "quote": "whole chunk"},
        ]
        return result


def test_metrics_fall_for_a_wrong_answerer(qa: BriefingQA, corpus: dict[str, str], good_run: Path) -> None:
    good = json.loads((good_run / "summary.json").read_text())
    bad = run(BUNDLED_GOLD, WrongAsker(qa), corpus).summary
    assert bad["citation_validity"] == 0.0 < good["citation_validity"]
    assert bad["refusal_accuracy"] == 0.0 < good["refusal_accuracy"]
    assert bad["answer_accuracy"] < good["answer_accuracy"]
    assert bad["citation_precision"] < good["citation_precision"]
    assert gate(bad, {"citation_validity": 1.0, "refusal_accuracy": 0.8})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "a", "question": "q?", "answerable": true, "lang": "en"', "not valid JSON"),
        ('{"id": "a", "answerable": true, "lang": "en"}', "missing field 'question'"),
        ('{"id": "a", "question": "q?", "answerable": "yes", "lang": "en"}', "'answerable' must be"),
        ('{"id": "a", "question": "q?", "answerable": true, "lang": "fr", "evidence": ["x"]}', "'lang' must be"),
        ('{"id": "a", "question": "q?", "answerable": true, "lang": "en", "evidence": ["no such words here"]}',
         "evidence not found"),
        ('{"id": "a", "question": "q?", "answerable": false, "lang": "en", "max_chars": 0}', "'max_chars' must be"),
        ('{"id": "a", "question": "q?", "answerable": false, "lang": "en", "max_chars": "800"}', "'max_chars' must"),
        ('{"id": "a", "question": "q?", "answerable": false, "lang": "en", "max_chars": 80.5}', "'max_chars' must"),
        ('{"id": "a", "question": "q?", "answerable": false, "lang": "en", "max_chars": true}', "'max_chars' must"),
    ],
)
def test_malformed_gold_lines_are_reported_with_their_line_number(
    tmp_path: Path, corpus: dict[str, str], line: str, message: str
) -> None:
    good = '{"id": "ok", "question": "q?", "answerable": false, "lang": "en"}'
    path = tmp_path / "gold.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(GoldFileError, match=rf"gold.jsonl:2: .*{message}"):
        load_gold(path, corpus)


def test_duplicate_ids_are_reported(tmp_path: Path) -> None:
    line = '{"id": "same", "question": "q?", "answerable": false, "lang": "en"}'
    path = tmp_path / "gold.jsonl"
    path.write_text(f"{line}\n{line}\n")
    with pytest.raises(GoldFileError, match="gold.jsonl:2: duplicate id 'same' \\(first on line 1\\)"):
        load_gold(path)


def _cli(args: list[str], settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRIEFING_STORE_DIR": str(settings.store_dir)}
    return subprocess.run([sys.executable, "-m", "service.shell.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)


def test_cli_writes_outputs_compares_and_gates(settings: Settings, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    done = _cli(["eval", "--gold", str(BUNDLED_GOLD), "--out", str(first), "--json-out", str(tmp_path / "s.json")],
                settings)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in first.iterdir()} == {"summary.json", "records.jsonl", "report.html"}
    assert json.loads((tmp_path / "s.json").read_text())["answer_accuracy"] is not None

    # A higher bar than any run can meet fails the gate; the comparison names the deltas.
    done = _cli(["eval", "--gold", str(BUNDLED_GOLD), "--out", str(second), "--against", str(first),
                 "--min", "latency_ms_p50=0.0001"], settings)
    assert done.returncode == 1
    assert "latency_ms_p50" in done.stderr
    comparison = json.loads((second / "summary.json").read_text())["comparison"]
    assert comparison["metrics"]["answer_accuracy"]["delta"] == 0
    assert comparison["newly_failing"] == []

    done = _cli(["eval", "--gold", str(BUNDLED_GOLD), "--min", "no_such_metric=1"], settings)
    assert done.returncode == 2 and "--min takes METRIC=VALUE" in done.stderr


# ---------------------------------------------------------------------------------------
# --distractors
# ---------------------------------------------------------------------------------------

_LIGHTHOUSE = (
    "The lighthouse keeper of Quillport painted the tower ochre in the winter of 1911. "
    "Ships rounding the northern cape used its beam to find the harbour mouth at night."
)


def test_distractors_join_the_fresh_store_and_a_bad_file_does_not_stop_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.shell.evaluation import run_eval
    from ingest.chunking import chunk_text

    folder = tmp_path / "distractors"
    (folder / "deeper").mkdir(parents=True)
    (folder / "lighthouse.txt").write_text(_LIGHTHOUSE + "\n")
    (folder / "deeper" / "orchard.md").write_text(
        "# Orchards\n\nThe orchard cooperative pressed its apples in October and sold the cider in May.\n"
    )
    (folder / "deeper" / "blob.txt").write_bytes(b"\x00\x01\x02 not text \xff\xfe" * 50)
    # Evidence that only a distractor holds: the gold file loads only if the distractors were stored.
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({
        "id": "d1", "question": "What colour did the keeper of Quillport paint the lighthouse tower?",
        "answerable": True, "lang": "en", "facts": [["ochre"]], "evidence": ["painted the tower ochre"],
    }) + "\n" + BUNDLED_GOLD.read_text().splitlines()[0] + "\n")
    user_store = tmp_path / "user-store"
    out = tmp_path / "run"

    code = run_eval(
        Settings(store_dir=user_store), gold=gold, out=out, json_out=None, against=None, minimums=[],
        fresh_store=True, url=None, answerer=None, progress=False, distractors=folder,
    )

    assert code == 0
    meta = json.loads((out / "summary.json").read_text())["distractors"]
    assert meta["folder"] == str(folder)
    assert (meta["files"], meta["documents"]) == (3, 2)
    expected = len(chunk_text("x", _LIGHTHOUSE + "\n", Settings().chunk_chars, Settings().chunk_overlap_sentences))
    assert meta["chunks"] >= expected + 1
    assert [e["path"] for e in meta["errors"]] == [str(folder / "deeper" / "blob.txt")]
    assert "binary" in meta["errors"][0]["error"]
    printed = capsys.readouterr()
    assert f"{meta['chunks']} chunks added" in printed.out
    assert "blob.txt" in printed.err
    records = {r["id"]: r for r in _records(out)}
    assert "lighthouse" in {p["doc_id"] for p in records["d1"]["retrieved"]}
    assert records["d1"]["checks"]["retrieval_hit"]
    assert not user_store.exists(), "the user's store is never touched"


def test_distractors_never_go_into_the_users_store(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text(_LIGHTHOUSE)
    before = sorted(p.name for p in settings.store_dir.rglob("*"))
    done = _cli(["eval", "--distractors", str(tmp_path)], settings)
    assert done.returncode == 2
    assert "--distractors" in done.stderr and "--fresh-store" in done.stderr
    assert sorted(p.name for p in settings.store_dir.rglob("*")) == before


@pytest.mark.browser
def test_report_renders_in_a_real_browser(good_run: Path) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    shots = ROOT / "artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page()
        page.goto((good_run / "report.html").as_uri())
        assert "Briefing QA eval" in page.title()
        assert page.locator("#m-answer_accuracy").count() == 1
        assert page.locator(".q").count() == len(_records(good_run))
        first_mark = page.locator(".q mark").first
        assert first_mark.inner_text().strip() != ""
        page.screenshot(path=str(shots / "eval-report.png"), full_page=True)
        browser.close()


def test_llm_judged_metrics_are_reported_apart(qa: BriefingQA, corpus: dict[str, str]) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from eval.metrics import METRICS

    # A judge that finds every answer faithful but only every other one correct.
    verdicts = iter([AIMessage(v) for _ in range(40) for v in ("YES, supported.", "YES.", "YES", "NO, differs.")])
    summary = run(BUNDLED_GOLD, InProcessAsker(qa), corpus, judge_model=GenericFakeChatModel(messages=verdicts)).summary
    judged = summary["llm_judged"]
    assert judged["faithfulness"] == 1.0
    assert judged["correctness"] == 0.5
    assert judged["judged"] == 16, "refusals and unanswerable questions are not judged"
    assert "faithfulness" not in METRICS and "faithfulness" not in summary
