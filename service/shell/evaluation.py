"""`briefing eval`: set up the store (a fresh one with the bundled briefing, and extra briefings and
distractors, when asked), the asker (the engine in process, or a running service with --url) and the
judge, then hand them to eval, which runs, writes and gates. eval itself stands on briefing_core alone."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from briefing_core.errors import UserError
from briefing_core.settings import Settings
from eval.cli import evaluate
from eval.gold import BRIEFING_ID_RULE, valid_briefing_id
from eval.runner import HttpAsker, InProcessAsker, parse_minimums


def _corpus(settings: Settings) -> dict[str, str]:
    from briefing_core.store import open_store

    return {record.doc_id: record.text for record in open_store(settings).documents()}


def run_eval(
    settings: Settings, *, gold: Path, out: Path | None, json_out: Path | None, against: Path | None,
    minimums: list[str], fresh_store: bool, url: str | None, answerer: str | None, progress: bool,
    judge: bool = False, distractors: Path | None = None, briefing: str | None = None,
    also_ingest: list[Path] | None = None,
) -> int:
    """`briefing` is the scope of the gold questions that name none (None: every briefing);
    `also_ingest`, briefing manifests ingested into the fresh store after the bundled one."""
    bounds = parse_minimums(minimums)
    also_ingest = list(also_ingest or [])
    if briefing is not None and not valid_briefing_id(briefing):
        raise UserError(f"--briefing {briefing!r} is not a briefing id ({BRIEFING_ID_RULE})")
    if also_ingest:
        # Extra briefings, like distractors, go only into a store this run builds and throws away.
        if not fresh_store:
            raise UserError("--also-ingest adds briefings to the store: it needs --fresh-store")
        for manifest in also_ingest:
            if not manifest.is_file():
                raise UserError(f"--also-ingest {manifest}: no such manifest file")
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
        also = [_add_briefing(settings, manifest) for manifest in also_ingest]
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
        judge_model = _judge_model(settings) if judge else None
        meta = {
            "answerer": settings.answerer if not url else f"service at {url}", "embedder": settings.embedder,
            "retrieval_mode": settings.retrieval_mode,
            **({"also_ingested": also} if also else {}),
            **({"distractors": distracted} if distracted is not None else {}),
        }
        # In process, a scope must name a briefing in the store; a service checks its own.
        known = None if url else _briefings(settings)
        return evaluate(
            gold, asker, corpus, out=out, json_out=json_out, against=against, bounds=bounds, meta=meta,
            judge_model=judge_model, progress=progress, briefing=briefing, known_briefings=known,
        )


def _briefings(settings: Settings) -> set[str]:
    from briefing_core.store import open_store

    metadata = open_store(settings).document_metadata().values()
    return {str(m["briefing"]) for m in metadata if m.get("briefing")}


def _add_briefing(settings: Settings, manifest: Path) -> dict[str, Any]:
    """Ingest one more briefing's manifest into the fresh store. Any problem, or a document that
    would replace one of a briefing already there, is a UserError naming the manifest. Returns what
    the summary records about it."""
    from briefing_core.store import open_store
    from ingest.manifest import load_manifest
    from ingest.pipeline import ingest

    try:
        briefing = load_manifest(manifest).briefing
    except UserError as exc:
        raise UserError(f"--also-ingest {manifest}: {exc}") from None
    before = {doc_id: m.get("briefing") for doc_id, m in open_store(settings).document_metadata().items()}
    try:
        report = ingest(settings, manifest_path=manifest)
    except UserError as exc:
        raise UserError(f"--also-ingest {manifest}: ingesting briefing {briefing!r} failed: {exc}") from None
    if report.errors:
        problems = "; ".join(f"{e['path']}: {e['error']}" for e in report.errors)
        raise UserError(f"--also-ingest {manifest}: ingesting briefing {briefing!r} failed: {problems}")
    after = open_store(settings).document_metadata()
    replaced = sorted(
        doc_id for doc_id, owner in before.items()
        if owner and (after.get(doc_id) or {}).get("briefing") != owner
    )
    if replaced:
        raise UserError(
            f"--also-ingest {manifest}: briefing {briefing!r} has documents with the ids of documents "
            f"already in the store, which it replaced: {', '.join(replaced)}"
        )
    print(f"also ingested: briefing {briefing!r} from {manifest}, {report.documents} documents, "
          f"{report.chunks_added} chunks added in {report.seconds:.1f} s")
    return {
        "manifest": str(manifest), "briefing": briefing, "documents": report.documents,
        "chunks": report.chunks_added, "seconds": report.seconds,
    }


def _add_distractors(settings: Settings, folder: Path) -> dict[str, Any]:
    """Ingest every file under `folder` as an ordinary document; a file that cannot be is reported
    and skipped. Returns what the summary records about it."""
    from briefing_core.store import open_store
    from ingest.pipeline import ingest, slugify

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


# -- human-written question sets (../shared/qa) --------------------------------------------------

QA_SETS: dict[str, tuple[str, str]] = {
    # name: (gold file, documents folder), under <qa dir>/<family>/<split>/
    "squad2": ("squad2/{split}/gold.jsonl", "squad2/{split}/docs"),
    "xquad-en-en": ("xquad/{split}/gold-en-en.jsonl", "xquad/{split}/en"),
    "xquad-zh-en": ("xquad/{split}/gold-zh-en.jsonl", "xquad/{split}/en"),
    "xquad-ru-en": ("xquad/{split}/gold-ru-en.jsonl", "xquad/{split}/en"),
    "xquad-zh-zh": ("xquad/{split}/gold-zh-zh.jsonl", "xquad/{split}/zh"),
    "xquad-ru-ru": ("xquad/{split}/gold-ru-ru.jsonl", "xquad/{split}/ru"),
}
QA_COLUMNS = ("questions", "answer_accuracy", "overall_accuracy", "unanswerable_share", "refusal_accuracy",
              "false_refusal_rate", "retrieval_recall_at_5", "citation_recall", "citation_precision",
              "direct_answers", "direct_exact", "latency_ms_p50")


def parse_qa_minimums(items: list[str], names: list[str]) -> dict[str, list[str]]:
    """SET:METRIC=VALUE items, grouped by set."""
    out: dict[str, list[str]] = {}
    for item in items:
        name, sep, rest = item.partition(":")
        if not sep or name not in QA_SETS:
            raise UserError(f"--min takes SET:METRIC=VALUE with SET one of {', '.join(QA_SETS)}; got {item!r}")
        if name not in names:
            raise UserError(f"--min {item!r}: set {name!r} is not among those run ({', '.join(names)})")
        out.setdefault(name, []).append(rest)
    for bounds in out.values():
        parse_minimums(bounds)  # a malformed bound fails before anything is built
    return out


def run_eval_qa(settings: Settings, *, qa_dir: Path, split: str, names: list[str], out: Path,
                minimums: list[str]) -> int:
    """Each set's documents ingested into a fresh store beside the bundled briefing, its questions
    asked in process and scored; a table of every set is printed and written to `out/summary.md`
    (and `summary.json`). Sets that share documents share a store. 1 when a gate fails."""
    import json

    unknown = [n for n in names if n not in QA_SETS]
    if unknown:
        raise UserError(f"unknown set(s) {', '.join(unknown)}; known: {', '.join(QA_SETS)}")
    if not qa_dir.is_dir():
        raise UserError(f"--qa-dir {qa_dir}: not a folder (the human-written question sets, ../shared/qa)")
    bounds = parse_qa_minimums(minimums, names)
    paths = {n: (qa_dir / QA_SETS[n][0].format(split=split), qa_dir / QA_SETS[n][1].format(split=split)) for n in names}
    for name, (gold, docs) in paths.items():
        if not gold.is_file() or not docs.is_dir():
            raise UserError(f"set {name}: {gold} or {docs} is missing under --qa-dir {qa_dir}")
    by_docs: dict[Path, list[str]] = {}
    for name in names:
        by_docs.setdefault(paths[name][1], []).append(name)
    summaries: dict[str, dict[str, Any]] = {}
    failed = False
    for docs, members in by_docs.items():
        with tempfile.TemporaryDirectory(prefix="briefing-eval-qa-") as tmp:
            from ingest.pipeline import ingest
            from service.engine.chain import BriefingQA

            store = settings.model_copy(update={"store_dir": Path(tmp) / "store", "chroma_url": None})
            report = ingest(store)
            if report.errors:
                raise UserError(f"ingesting the bundled briefing failed: {report.errors}")
            added = _add_distractors(store, docs)
            asker = InProcessAsker(BriefingQA(store).load())
            corpus = _corpus(store)
            for name in members:
                print(f"eval-qa: {name} ({paths[name][0]})")
                code = evaluate(
                    paths[name][0], asker, corpus, out=out / name, json_out=None, against=None,
                    bounds=parse_minimums(bounds.get(name, [])), meta={"set": name, "documents": added},
                    progress=False,
                )
                failed |= code != 0
                summaries[name] = json.loads((out / name / "summary.json").read_text())
    table = qa_table(summaries)
    print(table)
    (out / "summary.md").write_text(table + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(
        {n: {c: s.get(c) for c in QA_COLUMNS} for n, s in summaries.items()}, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


def qa_table(summaries: dict[str, dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))

    lines = ["| set | " + " | ".join(QA_COLUMNS) + " |", "| --- |" + " --- |" * len(QA_COLUMNS)]
    lines += [f"| {n} | " + " | ".join(cell(s.get(c)) for c in QA_COLUMNS) + " |" for n, s in summaries.items()]
    return "\n".join(lines)
