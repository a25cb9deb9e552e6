"""`briefing eval`: set up the store and the asker, run, write, gate."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.runner import HttpAsker, InProcessAsker, gate, parse_minimums, run
from briefing_core.errors import UserError
from briefing_core.settings import Settings


def _corpus(settings: Settings) -> dict[str, str]:
    from briefing_core.store import open_store

    return {record.doc_id: record.text for record in open_store(settings).documents()}


def run_eval(
    settings: Settings, *, gold: Path, out: Path | None, json_out: Path | None, against: Path | None,
    minimums: list[str], fresh_store: bool, url: str | None, answerer: str | None, progress: bool,
    judge: bool = False, distractors: Path | None = None,
) -> int:
    bounds = parse_minimums(minimums)
    if distractors is not None:
        # Distractors go only into a store this run builds and throws away, never the user's.
        if not fresh_store:
            raise UserError("--distractors adds documents to the store: it needs --fresh-store")
        if not distractors.is_dir():
            raise UserError(f"--distractors {distractors}: not a folder")
    if answerer is not None:
        if answerer not in {"extractive", "llm"}:
            raise UserError(f"--answerer must be 'extractive' or 'llm', not {answerer!r}")
        settings = settings.model_copy(update={"answerer": answerer})
    with tempfile.TemporaryDirectory(prefix="briefing-eval-") as tmp:
        if fresh_store:
            if url:
                raise UserError("--fresh-store builds a store in this process; it cannot be combined with --url")
            from ingest.pipeline import ingest

            settings = settings.model_copy(update={"store_dir": Path(tmp) / "store", "chroma_url": None})
            report = ingest(settings)
            if report.errors:
                raise UserError(f"ingesting the bundled briefing failed: {report.errors}")
        distracted = _add_distractors(settings, distractors) if distractors is not None else None
        corpus = _corpus(settings)
        if not corpus:
            raise UserError("the store is empty: run `briefing ingest` first, or pass --fresh-store")
        asker: Any
        if url:
            key = settings.api_key.get_secret_value() if settings.api_key else None
            asker = HttpAsker(url, key)
        else:
            from service.engine.chain import BriefingQA

            asker = InProcessAsker(BriefingQA(settings).load())
        if out is None:
            out = Path("var") / "eval" / time.strftime("%Y%m%d-%H%M%S")
        judge_model = _judge_model(settings) if judge else None
        on_progress = _bar() if progress else None
        result = run(
            gold, asker, corpus, out_dir=out, on_progress=on_progress, against=against,
            meta={"answerer": settings.answerer if not url else f"service at {url}", "embedder": settings.embedder,
                  "retrieval_mode": settings.retrieval_mode,
                  **({"distractors": distracted} if distracted is not None else {})},
            judge_model=judge_model,
        )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.summary, ensure_ascii=False, indent=2) + "\n")
    _print_summary(result.summary, out)
    failures = gate(result.summary, bounds)
    for failure in failures:
        print(f"gate: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _add_distractors(settings: Settings, folder: Path) -> dict[str, Any]:
    """Ingest every file under `folder` as an ordinary document; a file that cannot be is reported
    and skipped. Returns what the summary records about it."""
    from ingest.pipeline import ingest, slugify
    from briefing_core.store import open_store

    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise UserError(f"--distractors {folder}: no files in it")
    briefing_ids = set(open_store(settings).document_metadata())
    errors: list[dict[str, str]] = []
    keep = []
    for path in files:
        # A file named like a briefing document would replace it, and the run would score another text.
        if slugify(path.stem) in briefing_ids:
            errors.append({"path": str(path), "error": f"its id {slugify(path.stem)!r} is a briefing document's"})
        else:
            keep.append(path)
    if not keep:
        raise UserError(f"--distractors {folder}: none of its {len(files)} files could be ingested: {errors}")
    report = ingest(settings, keep)
    errors.extend(report.errors)
    print(
        f"distractors: {report.documents} of {len(files)} files ingested from {folder}, "
        f"{report.chunks_added} chunks added in {report.seconds:.1f} s"
    )
    for err in errors:
        print(f"  distractors: {err['path']}: {err['error']}", file=sys.stderr)
    if not report.documents:
        raise UserError(f"--distractors {folder}: none of its {len(files)} files could be ingested")
    return {
        "folder": str(folder), "files": len(files), "documents": report.documents,
        "chunks": report.chunks_added, "seconds": report.seconds, "errors": errors,
    }


def _judge_model(settings: Settings) -> Any:
    """The configured LLM, as a judge. Judging needs one: say how to configure it."""
    if settings.llm_base_url is None and settings.llm_gguf_path is None:
        try:
            from service.engine.llm import smollm2_path

            if not smollm2_path().is_file():
                raise UserError("no model file")
        except UserError:
            raise UserError(
                "--judge needs an LLM: set BRIEFING_LLM_BASE_URL or BRIEFING_LLM_GGUF_PATH "
                "(or install the local model with `bash .ci/setup --all`)"
            ) from None
    from service.engine.llm import make_chat_model

    return make_chat_model(settings)


def _bar() -> Any:
    def update(done: int, total: int) -> None:
        sys.stderr.write(f"\r{done}/{total} questions")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return update


def _print_summary(summary: dict[str, Any], out: Path | None) -> None:
    from eval.metrics import METRICS

    for name in METRICS:
        print(f"{name:<24} {summary.get(name)}")
    for name, value in (summary.get("llm_judged") or {}).items():
        print(f"llm_judged.{name:<13} {value}")
    if out is not None:
        print(f"written to {out}/ (summary.json, records.jsonl, report.html)")
