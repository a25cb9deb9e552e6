"""Gold questions scoped to a briefing: the `briefing` field of a gold line, the scope the runner asks
each question within (its own, else the run's default), records and `by_briefing` in the summary,
the HTTP body, and `briefing eval --briefing / --also-ingest`."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from briefing_core.errors import GoldFileError, UserError
from briefing_core.settings import BUNDLED_GOLD, Settings
from eval.cli import evaluate
from eval.gold import load_gold
from eval.metrics import ALL_BRIEFINGS, METRICS
from eval.runner import Asker, HttpAsker, InProcessAsker, run
from service.engine.chain import BriefingQA

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_BRIEFING = "north-korea-russia-2017"

# ---------------------------------------------------------------------------------------
# A toy store of two briefings and a fake asker that records what it was asked
# ---------------------------------------------------------------------------------------

_CORPUS = {
    "alpha-article": "The alpha harbour froze in January. Its ferries stopped for six weeks.",
    "beta-article": "The beta mine closed in 1998. Its workers moved to the coast.",
    "stray": "A document of no briefing at all.",
}
_OWNER = {"alpha-article": "alpha", "beta-article": "beta", "stray": None}


def _cite(doc: str, needle: str, n: int = 1) -> dict[str, Any]:
    start = _CORPUS[doc].index(needle)
    return {"n": n, "doc_id": doc, "start": start, "end": start + len(needle), "quote": needle,
            "briefing": _OWNER[doc]}


class RecordingAsker(Asker):
    """Answers from a table and records every call: the question, the history and the keyword
    arguments it was given (so a missing `briefing=` and `briefing=None` differ)."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int, dict[str, Any]]] = []

    def __call__(self, question: str, history: list[dict[str, str]], **kwargs: Any) -> dict[str, Any]:
        self.calls.append((question, len(history), dict(kwargs)))
        answer = dict(self.answers[question])
        answer.setdefault("briefing", kwargs.get("briefing"))
        return answer

    def scopes(self) -> dict[str, Any]:
        """Question -> the `briefing` keyword it was asked with ("absent" when none was passed)."""
        return {q: kw.get("briefing", "absent") for q, _, kw in self.calls}


class OldAsker(Asker):
    """An asker written before scopes: no `briefing` parameter at all."""

    def __call__(self, question: str, history: list[dict[str, str]]) -> dict[str, Any]:  # type: ignore[override]
        # Its citations do not say which briefing their document belongs to.
        citation = _cite("alpha-article", "The alpha harbour froze")
        del citation["briefing"]
        return {"answer": "The alpha harbour froze.", "citations": [citation]}


_GOLD = [
    {"id": "a1", "question": "When did the alpha harbour freeze?", "answerable": True, "lang": "en",
     "facts": [["january"]], "evidence": ["The alpha harbour froze in January."], "briefing": "alpha"},
    {"id": "b1", "question": "When did the beta mine close?", "answerable": True, "lang": "en",
     "facts": [["1998"]], "evidence": ["The beta mine closed in 1998."], "briefing": "beta"},
    {"id": "b2", "question": "Who owns the beta mine?", "answerable": False, "lang": "en",
     "briefing": "beta"},
    {"id": "u1", "question": "What stopped for six weeks?", "answerable": True, "lang": "en",
     "facts": [["ferries"]], "evidence": ["Its ferries stopped for six weeks."]},
    {"id": "m1", "question": "And where did they go?", "answerable": True, "lang": "en", "facts": [["coast"]],
     "evidence": ["Its workers moved to the coast."], "briefing": "beta",
     "turns": ["Who worked at the beta mine?", "And where did they go?"]},
]

_ANSWERS = {
    "When did the alpha harbour freeze?": {
        "answer": "In January [1].",
        "citations": [_cite("alpha-article", "The alpha harbour froze in January.")]},
    "When did the beta mine close?": {
        # Right, but one citation comes from another briefing.
        "answer": "In 1998 [1].", "citations": [_cite("beta-article", "The beta mine closed in 1998."),
                                                _cite("alpha-article", "Its ferries stopped", 2)]},
    "Who owns the beta mine?": {"answer": "The sources do not say.", "refused": True, "citations": []},
    "What stopped for six weeks?": {
        "answer": "The ferries [1].",
        "citations": [_cite("alpha-article", "Its ferries stopped for six weeks.")]},
    "Who worked at the beta mine?": {"answer": "Miners.", "citations": []},
    "And where did they go?": {
        "answer": "To the coast [1].",
        "citations": [_cite("beta-article", "Its workers moved to the coast.")]},
}


def _gold_file(tmp_path: Path, lines: list[dict[str, Any]], name: str = "gold.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


# ---------------------------------------------------------------------------------------
# The gold file
# ---------------------------------------------------------------------------------------


def test_a_gold_question_may_name_its_briefing(tmp_path: Path) -> None:
    lines = [*_GOLD, {"id": "n1", "question": "q?", "answerable": False, "lang": "en", "briefing": None}]
    questions = {q.id: q for q in load_gold(_gold_file(tmp_path, lines), _CORPUS)}
    assert questions["a1"].briefing == "alpha"
    assert questions["m1"].briefing == "beta"
    assert questions["u1"].briefing is None
    assert questions["n1"].briefing is None, "null is the same as leaving the field out"
    ok = {"id": "ok", "question": "q?", "answerable": False, "lang": "en", "briefing": "a.b_c-9" + "x" * 121}
    assert load_gold(_gold_file(tmp_path, [ok], "long.jsonl"))[0].briefing == ok["briefing"]


@pytest.mark.parametrize(
    "value",
    ["", "Alpha", "-alpha", ".alpha", "al pha", "alpha/beta", "alpha\n", "x" * 129, 7, True, ["alpha"], {}],
)
def test_a_bad_briefing_is_reported_with_its_line_number(tmp_path: Path, value: Any) -> None:
    good = {"id": "ok", "question": "q?", "answerable": False, "lang": "en", "briefing": "alpha"}
    bad = {"id": "bad", "question": "q?", "answerable": False, "lang": "en", "briefing": value}
    path = _gold_file(tmp_path, [good, bad])
    with pytest.raises(GoldFileError, match=r"gold.jsonl:2: 'briefing' must be a briefing id"):
        load_gold(path)


# ---------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------


def test_each_question_is_asked_within_its_briefing_and_unscoped_ones_without_one(tmp_path: Path) -> None:
    asker = RecordingAsker(_ANSWERS)
    out = run(_gold_file(tmp_path, _GOLD), asker, _CORPUS)

    assert asker.scopes() == {
        "When did the alpha harbour freeze?": "alpha",
        "When did the beta mine close?": "beta",
        "Who owns the beta mine?": "beta",
        # No scope: the keyword is not passed at all, so an asker that predates scopes still works.
        "What stopped for six weeks?": "absent",
        # Every turn of a conversation is asked within the question's briefing.
        "Who worked at the beta mine?": "beta",
        "And where did they go?": "beta",
    }
    assert [h for q, h, _ in asker.calls if q == "And where did they go?"] == [2]
    records = {r["id"]: r for r in out.records}
    assert {i: r["briefing"] for i, r in records.items()} == {
        "a1": "alpha", "b1": "beta", "b2": "beta", "u1": None, "m1": "beta"}
    assert [c["briefing"] for c in records["b1"]["citations"]] == ["beta", "alpha"]
    assert records["b1"]["checks"]["citations_outside_briefing"] == 1
    assert records["a1"]["checks"]["citations_outside_briefing"] == 0
    assert "citations_outside_briefing" not in records["u1"]["checks"]
    assert out.summary["default_briefing"] is None


def test_the_run_wide_briefing_scopes_the_questions_that_name_none(tmp_path: Path) -> None:
    asker = RecordingAsker(_ANSWERS)
    out = run(_gold_file(tmp_path, _GOLD), asker, _CORPUS, briefing="alpha")
    scopes = asker.scopes()
    assert scopes["What stopped for six weeks?"] == "alpha"
    assert scopes["When did the beta mine close?"] == "beta", "a question's own briefing wins"
    assert {r["id"]: r["briefing"] for r in out.records}["u1"] == "alpha"
    assert out.summary["default_briefing"] == "alpha"
    assert set(out.summary["by_briefing"]) == {"alpha", "beta"}


def test_an_asker_from_before_scopes_still_runs_unscoped_questions(tmp_path: Path) -> None:
    gold = [{"id": "u", "question": "What froze?", "answerable": True, "lang": "en", "facts": [["alpha"]],
             "evidence": ["The alpha harbour froze in January."]}]
    out = run(_gold_file(tmp_path, gold), OldAsker(), _CORPUS)
    assert out.records[0]["briefing"] is None
    assert out.records[0]["checks"]["passed"]
    assert out.records[0]["citations"][0]["briefing"] is None, "a citation without one keeps the key, as null"


def test_an_answer_that_does_not_report_its_scope_gets_a_note(tmp_path: Path) -> None:
    answers = {q: {**a, "briefing": None} for q, a in _ANSWERS.items()}
    out = run(_gold_file(tmp_path, _GOLD), RecordingAsker(answers), _CORPUS)
    notes = {r["id"]: r["notes"] for r in out.records}
    assert any("asked within briefing 'alpha'" in n for n in notes["a1"])
    assert notes["u1"] == []


def test_an_unknown_briefing_stops_the_run_before_any_question_is_asked(tmp_path: Path) -> None:
    gold = _gold_file(tmp_path, _GOLD)
    asker = RecordingAsker(_ANSWERS)
    absent = "is not in the store; briefings there:"
    with pytest.raises(UserError, match=rf"gold.jsonl:2: briefing 'beta' {absent} alpha$"):
        run(gold, asker, _CORPUS, known_briefings={"alpha"})
    with pytest.raises(UserError, match=rf"^briefing 'gamma' {absent} alpha, beta$"):
        run(gold, asker, _CORPUS, briefing="gamma", known_briefings={"alpha", "beta"})
    with pytest.raises(UserError, match=r"'Gamma' is not a briefing id"):
        run(gold, asker, _CORPUS, briefing="Gamma")
    assert asker.calls == []
    assert run(gold, asker, _CORPUS, known_briefings={"alpha", "beta"}).summary["questions"] == 5


def test_an_error_for_a_scoped_question_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    class Refuser(RecordingAsker):
        def __call__(self, question: str, history: list[dict[str, str]], **kwargs: Any) -> dict[str, Any]:
            if kwargs.get("briefing") == "beta":
                raise UserError("unknown briefing 'beta'; known briefings: alpha")
            return super().__call__(question, history, **kwargs)

    out = run(_gold_file(tmp_path, _GOLD), Refuser(_ANSWERS), _CORPUS)
    records = {r["id"]: r for r in out.records}
    assert records["b1"]["notes"] == ["error: unknown briefing 'beta'; known briefings: alpha"]
    assert records["b1"]["briefing"] == "beta"
    assert records["a1"]["checks"]["passed"]


# ---------------------------------------------------------------------------------------
# summary.json, report.html and the printed summary
# ---------------------------------------------------------------------------------------


def test_summary_groups_the_metrics_by_briefing(tmp_path: Path) -> None:
    out_dir = tmp_path / "run"
    run(_gold_file(tmp_path, _GOLD), RecordingAsker(_ANSWERS), _CORPUS, out_dir=out_dir)
    summary = json.loads((out_dir / "summary.json").read_text())
    groups = summary["by_briefing"]
    assert list(groups) == [ALL_BRIEFINGS, "alpha", "beta"]
    counts = {k: (g["questions"], g["answerable"], g["unanswerable"]) for k, g in groups.items()}
    assert counts == {ALL_BRIEFINGS: (1, 1, 0), "alpha": (1, 1, 0), "beta": (3, 2, 1)}
    for group in groups.values():
        assert set(METRICS) <= set(group)
    beta = groups["beta"]
    assert beta["answer_accuracy"] == 1.0 and beta["refusal_accuracy"] == 1.0
    assert beta["citation_precision"] == round(2 / 3, 4), "the citation from another briefing is off evidence"
    assert groups["alpha"]["refusal_accuracy"] is None
    # The overall figures and the other breakdowns are as before.
    assert summary["questions"] == 5 and summary["answer_accuracy"] == 1.0
    assert {"by_language", "by_kind"} <= set(summary)
    records = [json.loads(line) for line in (out_dir / "records.jsonl").read_text().splitlines()]
    assert sum(r["briefing"] == "beta" for r in records) == groups["beta"]["questions"]

    html = (out_dir / "report.html").read_text()
    table = html.split("By briefing", 1)[1].split("</table>", 1)[0]
    assert all(f"<th>{name}</th>" in table for name in (ALL_BRIEFINGS, "alpha", "beta"))
    assert "<th>answer_accuracy</th>" in table
    assert "briefing: beta" in html and "1 cited outside the briefing" in html


def test_an_unscoped_run_keeps_the_old_report(tmp_path: Path) -> None:
    unscoped = [{k: v for k, v in g.items() if k != "briefing"} for g in _GOLD]
    out_dir = tmp_path / "run"
    out = run(_gold_file(tmp_path, unscoped), RecordingAsker(_ANSWERS), _CORPUS, out_dir=out_dir)
    assert list(out.summary["by_briefing"]) == [ALL_BRIEFINGS]
    assert out.summary["by_briefing"][ALL_BRIEFINGS]["questions"] == 5
    html = (out_dir / "report.html").read_text()
    assert "By briefing" not in html and "briefing: " not in html
    assert "By kind of question" in html


def test_the_printed_summary_shows_briefings_only_when_scoped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unscoped = [{k: v for k, v in g.items() if k != "briefing"} for g in _GOLD]
    unscoped = _gold_file(tmp_path, unscoped, "u.jsonl")
    kwargs: dict[str, Any] = {"json_out": None, "against": None, "bounds": {}, "meta": {}}
    assert evaluate(unscoped, RecordingAsker(_ANSWERS), _CORPUS, out=tmp_path / "u", **kwargs) == 0
    assert "by briefing" not in capsys.readouterr().out

    json_out = tmp_path / "s.json"
    code = evaluate(_gold_file(tmp_path, _GOLD), RecordingAsker(_ANSWERS), _CORPUS, out=tmp_path / "s",
                    **{**kwargs, "json_out": json_out}, briefing="alpha", known_briefings={"alpha", "beta"})
    assert code == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("by briefing"))
    assert header.split()[2:] == ["alpha", "beta"]
    questions = next(line for line in printed.splitlines() if line.split()[:1] == ["questions"])
    assert questions.split()[1:] == ["2", "3"]
    assert json.loads(json_out.read_text())["by_briefing"]["alpha"]["questions"] == 2


# ---------------------------------------------------------------------------------------
# The askers: over HTTP (a real server on loopback) and in process
# ---------------------------------------------------------------------------------------


class _Service(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        payload = json.dumps({"answer": "In January [1].", "refused": False, "briefing": body.get("briefing"),
                              "citations": [_cite("alpha-article", "The alpha harbour froze in January.")],
                              "retrieved": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Service.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Service.bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_http_asker_sends_the_briefing_only_when_set(service: tuple[str, list[dict[str, Any]]]) -> None:
    url, bodies = service
    asker = HttpAsker(url, "k3y")
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "answer"}]
    assert asker("When?", history, briefing="alpha")["briefing"] == "alpha"
    asker("When?", [])
    asker("When?", [], briefing=None)
    assert [b["body"] for b in bodies] == [
        {"question": "When?", "history": history, "briefing": "alpha"},
        {"question": "When?", "history": []},
        {"question": "When?", "history": []},
    ]
    assert {b["path"] for b in bodies} == {"/v1/ask"} and {b["auth"] for b in bodies} == {"Bearer k3y"}


def test_a_run_over_http_scopes_each_question(
    tmp_path: Path, service: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = service
    evidence = ["The alpha harbour froze in January."]
    gold = [{"id": "a", "question": "When did it freeze?", "answerable": True, "lang": "en",
             "facts": [["january"]], "evidence": evidence, "briefing": "alpha"},
            {"id": "b", "question": "And the beta mine?", "answerable": True, "lang": "en",
             "facts": [["january"]], "evidence": evidence}]
    out = run(_gold_file(tmp_path, gold), HttpAsker(url), _CORPUS, briefing="beta")
    assert [b["body"].get("briefing") for b in bodies] == ["alpha", "beta"]
    assert [r["briefing"] for r in out.records] == ["alpha", "beta"]
    assert out.records[0]["citations"][0]["briefing"] == "alpha"


class _Result:
    def __init__(self, briefing: str | None) -> None:
        self.briefing = briefing

    def to_dict(self) -> dict[str, Any]:
        return {"answer": "ok", "citations": [], "briefing": self.briefing}


class _OldQA:
    """An engine whose ask() predates scopes."""

    def ask(self, question: str, history: list[dict[str, str]] | None = None) -> _Result:
        return _Result(None)


class _ScopedQA:
    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def ask(self, question: str, history: list[dict[str, str]] | None = None,
            briefing: str | None = None) -> _Result:
        self.asked.append(briefing)
        return _Result(briefing)


def test_the_in_process_asker_passes_the_briefing_only_when_set() -> None:
    assert InProcessAsker(_OldQA())("q?", [])["answer"] == "ok"
    qa = _ScopedQA()
    asker = InProcessAsker(qa)
    assert asker("q?", [], briefing="alpha")["briefing"] == "alpha"
    asker("q?", [])
    assert qa.asked == ["alpha", None]


# ---------------------------------------------------------------------------------------
# briefing eval --briefing / --also-ingest
# ---------------------------------------------------------------------------------------

_LIGHTHOUSE = (
    "The lighthouse keeper of Quillport painted the tower ochre in the winter of 1911. "
    "Ships rounding the northern cape used its beam to find the harbour mouth at night.\n"
)


def _manifest(folder: Path, briefing: str = "quillport-1911", article_id: str = "quillport-lighthouse",
              text: str | None = _LIGHTHOUSE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if text is not None:
        (folder / "article.txt").write_text(text)
    path = folder / "manifest.yaml"
    path.write_text(
        f"briefing: {briefing}\n"
        f"article:\n  id: {article_id}\n  path: article.txt\n  title: The Quillport Light\n"
        "  outlet: Harbour Notes\n  language: en\nsources: []\n"
    )
    return path


_LIGHTHOUSE_Q = {
    "id": "q1", "question": "What colour did the keeper of Quillport paint the lighthouse tower?",
    "answerable": True, "lang": "en", "facts": [["ochre"]], "evidence": ["painted the tower ochre"],
}


def _run_eval(tmp_path: Path, gold: Path, **kwargs: Any) -> int:
    from service.shell.evaluation import run_eval

    options: dict[str, Any] = {
        "out": tmp_path / "run", "json_out": None, "against": None, "minimums": [], "fresh_store": True,
        "url": None, "answerer": None, "progress": False, **kwargs,
    }
    return run_eval(Settings(store_dir=tmp_path / "user-store"), gold=gold, **options)


def test_also_ingest_adds_a_briefing_to_the_fresh_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path / "quillport")
    # The evidence lies only in the extra briefing: the gold file loads only if it was stored.
    gold = _gold_file(tmp_path, [_LIGHTHOUSE_Q, json.loads(BUNDLED_GOLD.read_text().splitlines()[0])])

    assert _run_eval(tmp_path, gold, also_ingest=[manifest]) == 0

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    [also] = summary["also_ingested"]
    assert (also["manifest"], also["briefing"], also["documents"]) == (str(manifest), "quillport-1911", 1)
    assert also["chunks"] >= 1
    assert summary["default_briefing"] is None and list(summary["by_briefing"]) == [ALL_BRIEFINGS]
    assert "also ingested: briefing 'quillport-1911'" in capsys.readouterr().out
    assert not (tmp_path / "user-store").exists(), "the user's store is never touched"


def test_briefing_names_one_of_the_stored_briefings(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "quillport")
    gold = _gold_file(tmp_path, [_LIGHTHOUSE_Q])
    known = f"{BUNDLED_BRIEFING}, quillport-1911"
    with pytest.raises(UserError, match=rf"'nowhere' is not in the store; briefings there: {known}$"):
        _run_eval(tmp_path, gold, also_ingest=[manifest], briefing="nowhere")
    with pytest.raises(UserError, match=r"--briefing 'No Where' is not a briefing id"):
        _run_eval(tmp_path, gold, briefing="No Where")


@pytest.mark.skipif(
    "briefing" not in inspect.signature(BriefingQA.ask).parameters,
    reason="BriefingQA.ask takes no briefing yet",
)
def test_scoped_questions_are_answered_within_their_briefing_end_to_end(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "quillport")
    scoped = {**_LIGHTHOUSE_Q, "briefing": "quillport-1911"}
    elsewhere = {**_LIGHTHOUSE_Q, "id": "q2", "answerable": False, "facts": [], "evidence": [],
                 "briefing": BUNDLED_BRIEFING}
    gold = _gold_file(tmp_path, [scoped, elsewhere, json.loads(BUNDLED_GOLD.read_text().splitlines()[0])])

    assert _run_eval(tmp_path, gold, also_ingest=[manifest], briefing=BUNDLED_BRIEFING) == 0

    lines = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    records = {r["id"]: r for r in map(json.loads, lines)}
    assert records["q1"]["briefing"] == "quillport-1911"
    assert records["q1"]["checks"]["correct"], records["q1"]
    assert {c["briefing"] for c in records["q1"]["citations"]} == {"quillport-1911"}
    assert records["q1"]["checks"]["citations_outside_briefing"] == 0
    # Asked within the bundled briefing, the lighthouse is not there to be found.
    assert all(c["briefing"] == BUNDLED_BRIEFING for c in records["q2"]["citations"])
    first = json.loads(BUNDLED_GOLD.read_text().splitlines()[0])["id"]
    assert records[first]["briefing"] == BUNDLED_BRIEFING
    groups = json.loads((tmp_path / "run" / "summary.json").read_text())["by_briefing"]
    assert {k: g["questions"] for k, g in groups.items()} == {BUNDLED_BRIEFING: 2, "quillport-1911": 1}


def test_an_extra_manifest_that_cannot_be_ingested_is_named(tmp_path: Path) -> None:
    gold = _gold_file(tmp_path, [json.loads(BUNDLED_GOLD.read_text().splitlines()[0])])
    missing_text = _manifest(tmp_path / "no-text", text=None)
    failed = "ingesting briefing 'quillport-1911' failed"
    with pytest.raises(UserError, match=rf"--also-ingest {missing_text}: {failed}"):
        _run_eval(tmp_path, gold, also_ingest=[missing_text])
    broken = tmp_path / "broken.yaml"
    broken.write_text("briefing: [unclosed\n")
    with pytest.raises(UserError, match=rf"--also-ingest {broken}: .*not valid YAML"):
        _run_eval(tmp_path, gold, also_ingest=[broken])
    with pytest.raises(UserError, match=r"--also-ingest .*nothing.yaml: no such manifest file"):
        _run_eval(tmp_path, gold, also_ingest=[tmp_path / "nothing.yaml"])
    # A briefing whose article has the bundled article's id would replace it.
    bundled_article = "how-russia-could-help-solve-the-north-korea-crisis"
    clash = _manifest(tmp_path / "clash", article_id=bundled_article)
    with pytest.raises(UserError, match=rf"--also-ingest {clash}: .*{bundled_article}"):
        _run_eval(tmp_path, gold, also_ingest=[clash])
    assert not (tmp_path / "user-store").exists()


def test_also_ingest_needs_a_fresh_store(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "quillport")
    with pytest.raises(UserError, match="--also-ingest adds briefings to the store: it needs --fresh-store"):
        _run_eval(tmp_path, BUNDLED_GOLD, also_ingest=[manifest], fresh_store=False)
    # On the command line: exit 2, and the user's store is left alone.
    store = tmp_path / "user-store"
    env = {**os.environ, "BRIEFING_STORE_DIR": str(store)}
    done = subprocess.run(
        [sys.executable, "-m", "service.shell.cli", "eval", "--also-ingest", str(manifest), "--also-ingest",
         str(manifest), "--briefing", "quillport-1911"],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 2, done.stderr
    assert "--also-ingest" in done.stderr and "--fresh-store" in done.stderr
    assert not store.exists()
