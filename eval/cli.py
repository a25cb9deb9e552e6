"""`briefing eval`'s own half: run the gold set through the asker it is handed, write the run, print
the summary and apply the gates. The command (service/shell/cli.py) builds the store and the asker
(service/shell/evaluation.py): the engine in process, or an HTTP client of a running service."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from eval.runner import Asker, gate, run


def evaluate(
    gold: Path, asker: Asker, corpus: dict[str, str], *, out: Path | None, json_out: Path | None,
    against: Path | None, bounds: dict[str, float | str], meta: dict[str, Any], judge_model: Any = None,
    progress: bool = False, briefing: str | None = None, known_briefings: Collection[str] | None = None,
) -> int:
    """Run, write (`out`, by default var/eval/<time>; `json_out`), print and gate: 1 when a metric
    falls short of its bound, else 0. `briefing` is the scope of the questions that name none;
    `known_briefings`, when given, the briefings a scope may name."""
    if out is None:
        out = Path("var") / "eval" / time.strftime("%Y%m%d-%H%M%S")
    result = run(
        gold, asker, corpus, out_dir=out, on_progress=_bar() if progress else None, against=against,
        meta=meta, judge_model=judge_model, briefing=briefing, known_briefings=known_briefings,
    )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.summary, ensure_ascii=False, indent=2) + "\n")
    _print_summary(result.summary, out)
    failures = gate(result.summary, bounds)
    for failure in failures:
        print(f"gate: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _bar() -> Any:
    def update(done: int, total: int) -> None:
        sys.stderr.write(f"\r{done}/{total} questions")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return update


def _print_summary(summary: dict[str, Any], out: Path | None) -> None:
    from eval.metrics import METRICS, shows_briefings

    for name in METRICS:
        print(f"{name:<24} {summary.get(name)}")
    for name, value in (summary.get("llm_judged") or {}).items():
        print(f"llm_judged.{name:<13} {value}")
    if shows_briefings(summary):
        _print_by_briefing(summary["by_briefing"])
    if out is not None:
        print(f"written to {out}/ (summary.json, records.jsonl, report.html)")


def _print_by_briefing(groups: dict[str, dict[str, Any]]) -> None:
    """The metrics per briefing scope, one column a scope."""
    from eval.metrics import METRICS

    columns = [(name, group, max(len(name), 8)) for name, group in groups.items()]
    print(f"{'by briefing':<24} " + "  ".join(f"{name:<{w}}" for name, _, w in columns))
    for metric in ("questions", *METRICS):
        print(f"  {metric:<22} " + "  ".join(f"{_cell(g.get(metric)):<{w}}" for _, g, w in columns))


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)

