"""Run gold questions through the asker it is handed, and write what happened. The asker is the
service's own engine in process (`InProcessAsker`), or a running service over HTTP (`HttpAsker`);
eval imports neither the engine nor the service: `briefing eval` builds the asker and hands it over.

A gold question may name the `briefing` it is asked within; a run may give a default scope for the
questions that name none (`briefing=`); with neither, a question is asked across every briefing.

Outputs in the run folder:
    summary.json    every metric, overall, per language, per kind of question and per briefing scope
    records.jsonl   one record per question (the documented shape, plus lang/kind/checks)
    report.html     metrics, every question with its answer and highlighted citations, failures first
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from briefing_core.errors import BriefingError, UserError
from eval.gold import BRIEFING_ID_RULE, GoldQuestion, load_gold, valid_briefing_id
from eval.metrics import LOWER_IS_BETTER, METRICS, breakdown, judge


class Asker:
    """Answers one question given the earlier turns, within one briefing when `briefing` names one;
    in process or over HTTP. The runner passes `briefing` only when it is not None, so an asker
    written before scopes existed (`__call__(question, history)`) still runs unscoped questions."""

    def __call__(
        self, question: str, history: list[dict[str, str]], briefing: str | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError


class InProcessAsker(Asker):
    """Anything with `ask(question, history=..., briefing=...)` returning a result with `to_dict()`:
    the engine's `BriefingQA`, loaded. `briefing=` is passed only when set, so an engine without
    scopes still answers unscoped questions."""

    def __init__(self, qa: Any) -> None:
        self.qa = qa

    def __call__(
        self, question: str, history: list[dict[str, str]], briefing: str | None = None
    ) -> dict[str, Any]:
        if briefing is None:
            return self.qa.ask(question, history=history).to_dict()
        return self.qa.ask(question, history=history, briefing=briefing).to_dict()


class HttpAsker(Asker):
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def __call__(
        self, question: str, history: list[dict[str, str]], briefing: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"question": question, "history": history}
        if briefing is not None:
            body["briefing"] = briefing
        response = self.client.post("/v1/ask", json=body)
        if response.status_code != 200:
            raise BriefingError(f"service answered {response.status_code}: {response.text[:300]}")
        return response.json()


def ask_conversation(
    asker: Asker, question: GoldQuestion, briefing: str | None = None
) -> tuple[dict[str, Any], float]:
    """Every turn in one conversation, all within `briefing` when it names one; the last turn is the
    one scored. Latency is the scored turn's."""
    history: list[dict[str, str]] = []
    turns = question.turns or [question.question]
    result: dict[str, Any] = {}
    elapsed = 0.0
    for turn in turns:
        started = time.perf_counter()
        result = asker(turn, history) if briefing is None else asker(turn, history, briefing=briefing)
        elapsed = (time.perf_counter() - started) * 1000
        history = [*history, {"role": "user", "content": turn}, {"role": "assistant", "content": result.get("answer", "")}]
    return result, elapsed


_CITATION_KEYS = ("n", "doc_id", "start", "end", "quote", "title", "attributed_to", "briefing")


def to_record(
    question: GoldQuestion, result: dict[str, Any], latency_ms: float, briefing: str | None = None
) -> dict[str, Any]:
    """The documented record; `briefing` is the scope the question was asked within (None: every
    briefing), and each citation keeps the `briefing` its document belongs to, as the result gave it."""
    return {
        "id": question.id,
        "question": question.question,
        "briefing": briefing,
        "answer": result.get("answer", ""),
        "refused": bool(result.get("refused")),
        "citations": [{k: c.get(k) for k in _CITATION_KEYS} for c in result.get("citations") or []],
        "retrieved": [
            {k: p.get(k) for k in ("doc_id", "start", "end", "score")} for p in result.get("retrieved") or []
        ],
        "latency_ms": round(float(result.get("latency_ms") or latency_ms), 2),
        "lang": question.lang,
        "kind": question.kind,
        "answerable": question.answerable,
        "answerer": result.get("answerer"),
        "notes": result.get("notes") or [],
        "direct_answer": result.get("direct_answer"),
    }


def _scope_notes(result: dict[str, Any], briefing: str | None) -> list[str]:
    """A scoped question whose answer does not report that scope was probably answered unscoped
    (an engine or service that ignores `briefing`): say so beside the answer."""
    if briefing is None or result.get("briefing") == briefing:
        return []
    return [f"asked within briefing {briefing!r}; the answer reports scope {result.get('briefing')!r}"]


def scope_of(question: GoldQuestion, default: str | None) -> str | None:
    """The briefing a question is asked within: its own, else the run's default, else None (all)."""
    return question.briefing if question.briefing is not None else default


def _check_scopes(
    gold_path: Path, questions: list[GoldQuestion], default: str | None, known: Collection[str] | None
) -> None:
    if default is not None and not valid_briefing_id(default):
        raise UserError(f"briefing {default!r} is not a briefing id ({BRIEFING_ID_RULE})")
    if known is None:
        return
    there = ", ".join(sorted(known)) or "none"
    if default is not None and default not in known:
        raise UserError(f"briefing {default!r} is not in the store; briefings there: {there}")
    for q in questions:
        if q.briefing is not None and q.briefing not in known:
            raise UserError(
                f"{gold_path}:{q.line}: briefing {q.briefing!r} is not in the store; briefings there: {there}"
            )


@dataclass
class RunOutput:
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    out_dir: Path | None


def run(
    gold_path: Path,
    asker: Asker,
    corpus: dict[str, str],
    out_dir: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    against: Path | None = None,
    meta: dict[str, Any] | None = None,
    judge_model: Any = None,
    briefing: str | None = None,
    known_briefings: Collection[str] | None = None,
) -> RunOutput:
    """Ask every question, score it, and (with `out_dir`) write the run. A `judge_model` adds the
    LLM-judged metrics under `llm_judged`, apart from the contract metrics.

    `briefing` is the scope of every question that names none (None: across every briefing). With
    `known_briefings` (the briefings in the store), a scope that names none of them is refused before
    any question is asked."""
    questions = load_gold(gold_path, corpus)
    _check_scopes(gold_path, questions, briefing, known_briefings)
    triples = []
    records = []
    for i, question in enumerate(questions, start=1):
        scope = scope_of(question, briefing)
        try:
            result, latency = ask_conversation(asker, question, scope)
            notes = _scope_notes(result, scope)
        except UserError as exc:
            result, latency, notes = {"answer": "", "refused": False, "notes": [f"error: {exc}"]}, 0.0, []
        record = to_record(question, result, latency, scope)
        record["notes"] = [*record["notes"], *notes]
        checks = judge(question, record, corpus)
        if scope is not None:
            # Citations of documents the answer reports as belonging to another briefing (or to none).
            checks["citations_outside_briefing"] = sum(
                1 for c in result.get("citations") or [] if "briefing" in c and c["briefing"] != scope
            )
        record["checks"] = checks
        records.append(record)
        triples.append((question, record, checks))
        if on_progress:
            on_progress(i, len(questions))
    summary = breakdown(triples)
    if judge_model is not None:
        from eval.judge import judge_record, summarise_judged

        judged = []
        for question, record, _ in triples:
            verdict = judge_record(judge_model, question, record)
            if verdict:
                record["llm_judged"] = verdict
            judged.append(verdict)
        summary["llm_judged"] = summarise_judged(judged)
    summary["gold"] = str(gold_path)
    summary["default_briefing"] = briefing
    summary.update(meta or {})
    if against is not None:
        summary["comparison"] = compare(summary, records, against)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
        with (out_dir / "records.jsonl").open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        from eval.report import render_report

        (out_dir / "report.html").write_text(render_report(summary, records, corpus), encoding="utf-8")
    return RunOutput(summary, records, out_dir)


def compare(summary: dict[str, Any], records: list[dict[str, Any]], previous_dir: Path) -> dict[str, Any]:
    """Metric deltas and the questions that went from pass to fail, or back, since a previous run."""
    try:
        before = json.loads((previous_dir / "summary.json").read_text())
        old_records = [
            json.loads(line) for line in (previous_dir / "records.jsonl").read_text().splitlines() if line.strip()
        ]
    except (OSError, ValueError) as exc:
        raise UserError(f"--against {previous_dir}: cannot read a previous run there ({exc})") from None
    deltas = {}
    for name in METRICS:
        now, then = summary.get(name), before.get(name)
        if isinstance(now, int | float) and isinstance(then, int | float):
            deltas[name] = {"before": then, "after": now, "delta": round(now - then, 4)}
    old = {r["id"]: bool((r.get("checks") or {}).get("passed")) for r in old_records}
    new = {r["id"]: bool(r["checks"]["passed"]) for r in records}
    return {
        "against": str(previous_dir),
        "metrics": deltas,
        "newly_failing": sorted(q for q in new if old.get(q) is True and not new[q]),
        "newly_passing": sorted(q for q in new if old.get(q) is False and new[q]),
    }


def parse_minimums(items: list[str]) -> dict[str, float | str]:
    """METRIC=VALUE pairs. VALUE is a number, or another metric's name: `overall_accuracy=unanswerable_share`
    asks that answering beat refusing every question."""
    out: dict[str, float | str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in METRICS:
            raise UserError(f"--min takes METRIC=VALUE with METRIC one of {', '.join(METRICS)}; got {item!r}")
        if value in METRICS:
            out[name] = value
            continue
        try:
            out[name] = float(value)
        except ValueError:
            raise UserError(f"--min {item!r}: {value!r} is neither a number nor a metric") from None
    return out


def gate(summary: dict[str, Any], minimums: dict[str, float | str]) -> list[str]:
    """Metrics that fall short; for lower-is-better metrics the value is a ceiling. A bound that names
    another metric must be beaten strictly (below it for lower-is-better metrics)."""
    failures = []
    for name, bound in minimums.items():
        value = summary.get(name)
        if value is None:
            failures.append(f"{name} has no value (no questions of that kind)")
            continue
        if isinstance(bound, str):
            other = summary.get(bound)
            if other is None:
                failures.append(f"{bound} has no value to compare {name} with")
            elif name in LOWER_IS_BETTER and value >= other:
                failures.append(f"{name} = {value} is not below {bound} = {other}")
            elif name not in LOWER_IS_BETTER and value <= other:
                failures.append(f"{name} = {value} is not above {bound} = {other}")
        elif name in LOWER_IS_BETTER and value > bound:
            failures.append(f"{name} = {value} is above the allowed {bound}")
        elif name not in LOWER_IS_BETTER and value < bound:
            failures.append(f"{name} = {value} is below the required {bound}")
    return failures
