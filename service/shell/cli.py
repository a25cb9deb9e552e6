"""The `briefing` command.

Each command is a thin shell over a function elsewhere; `--json` output shapes are contracts other
tools rely on. Errors the user can act on print one line to stderr and exit 2; failures of the
system (store locked or unreachable, embedder mismatch) exit 3.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from briefing_core.errors import BriefingError, UserError

T = TypeVar("T")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Question answering over a briefing article and its cited sources, with span-level citations.",
)
sources_app = typer.Typer(help="The briefing's sources: list them, or extract them from an article.")
app.add_typer(sources_app, name="sources")


def _settings() -> Any:
    from pydantic import ValidationError

    from briefing_core.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"BRIEFING_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise UserError(f"invalid settings: {problems}") from None


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _fail(exc: BriefingError) -> NoReturn:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2 if isinstance(exc, UserError) else 3)


def _attempt(fn: Callable[[], T]) -> T:
    """Run a command's work; a BriefingError becomes one line on stderr and the exit code."""
    try:
        return fn()
    except BriefingError as exc:
        _fail(exc)


@app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (.txt .md .html .pdf).")] = None,
    manifest: Annotated[Path | None, typer.Option(help="A briefing manifest (YAML).")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove documents not named in this run.")] = False,
    source_id: Annotated[
        str | None, typer.Option("--source-id", help="Link the files as the full text of this cited source.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary object.")] = False,
) -> None:
    """Ingest files and/or a manifest; with neither, the bundled briefing."""
    from ingest.pipeline import ingest as run_ingest

    try:
        settings = _settings()
        with _progress(enabled=sys.stderr.isatty()) as on_progress:
            report = run_ingest(
                settings, paths or [], manifest, prune_missing=prune, source_id=source_id,
                on_progress=on_progress,
            )
    except BriefingError as exc:
        _fail(exc)
        return
    if as_json:
        _print_json(report.to_dict())
    else:
        typer.echo(
            f"{report.documents} documents: {report.chunks_added} chunks added, "
            f"{report.chunks_updated} updated, {report.chunks_unchanged} unchanged, "
            f"{report.chunks_removed} removed; {report.texts_embedded} texts embedded "
            f"in {report.seconds:.1f} s"
        )
        for err in report.errors:
            typer.echo(f"  error: {err['path']}: {err['error']}", err=True)
    if report.documents == 0 and report.errors:
        raise typer.Exit(1)


class _progress:
    """A progress bar on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("ingesting documents", total=None)

        def update(done: int, total: int) -> None:
            self._progress.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


@sources_app.callback(invoke_without_command=True)
def sources(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    briefing: Annotated[str | None, typer.Option("--briefing", help="Only this briefing (see `briefing briefings`).")] = None,
) -> None:
    """List the article and the sources it cites, with whether their full text is present."""
    if ctx.invoked_subcommand is not None:
        return
    from service.engine.catalog import list_sources

    items = _attempt(lambda: list_sources(_settings(), briefing=briefing))
    if as_json:
        _print_json(items)
        return
    several = len({item["briefing"] for item in items}) > 1
    for item in items:
        if several and item["kind"] == "article":
            typer.echo(f"# briefing {item['briefing']}")
        original = f" [{item['original_title']}]" if item.get("original_title") else ""
        full = "full text" if item["full_text"] else "quoted only"
        typer.echo(
            f"{item['source_id']:<38} {item['kind']:<8} {item['language']:<3} {full:<11} "
            f"{item['outlet'] or ''}: {item['title'] or ''}{original}"
        )


@sources_app.command("extract")
def sources_extract(
    file: Annotated[Path, typer.Argument(help="An article (.txt .md .html .pdf).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of manifest YAML.")] = False,
) -> None:
    """Propose manifest entries for the sources an article cites."""
    from ingest.citations import extract_sources
    from ingest.loaders import load_path
    from ingest.manifest import dump_sources_yaml

    found = _attempt(lambda: extract_sources(load_path(file).text))
    if as_json:
        _print_json([s.model_dump(exclude_none=True) for s in found])
    else:
        sys.stdout.write(dump_sources_yaml(found))


@app.command()
def docs(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    text: Annotated[bool, typer.Option("--text", help="Include each document's stored text.")] = False,
    briefing: Annotated[str | None, typer.Option("--briefing", help="Only this briefing (see `briefing briefings`).")] = None,
) -> None:
    """List the stored documents."""
    from service.engine.catalog import list_documents

    items = _attempt(lambda: list_documents(_settings(), with_text=text, briefing=briefing))
    if as_json:
        _print_json(items)
        return
    for item in items:
        typer.echo(f"{item['doc_id']:<50} {item['kind']:<15} {item['language']:<3} {item['chars']:>7}  {item['title']}")
        if text:
            typer.echo(item["text"])


@app.command()
def briefings(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the briefings the store holds: id, article, outlet, date, and how much of each is stored."""
    from service.engine.catalog import list_briefings

    items = _attempt(lambda: list_briefings(_settings()))
    if as_json:
        _print_json(items)
        return
    if not items:
        typer.echo("The store holds no briefing: run `briefing ingest` (the bundled one) or `briefing ingest --manifest`.")
    for item in items:
        details = ", ".join(str(item[k]) for k in ("outlet", "date") if item.get(k))
        typer.echo(f"{item['id']:<32} {item['title'] or ''}" + (f" ({details})" if details else ""))
        typer.echo(f"{'':<32} {item['sources']} sources, {item['documents']} documents, {item['chunks']} chunks")


@app.command()
def delete(
    briefing: Annotated[str, typer.Option("--briefing", help="The briefing to remove (see `briefing briefings`).")],
) -> None:
    """Remove one briefing: its article, its sources' documents and every chunk of them, nothing else."""
    from briefing_core.store import open_store, write_lock
    from service.engine.catalog import delete_briefing

    def run() -> dict[str, Any]:
        settings = _settings()
        with write_lock(settings):
            store = open_store(settings)
            removed = delete_briefing(store, briefing)
            store.bump_generation()
        return removed

    removed = _attempt(run)
    typer.echo(f"Removed briefing {removed['briefing']}: {removed['documents_removed']} documents, "
               f"{removed['chunks_removed']} chunks.")


@app.command()
def show(
    doc_id: Annotated[str, typer.Argument(help="A document id (see `briefing docs`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print one document's stored text and metadata."""
    from service.engine.catalog import show_document

    item = _attempt(lambda: show_document(_settings(), doc_id))
    if as_json:
        _print_json(item)
    else:
        for key, value in sorted(item["metadata"].items()):
            typer.echo(f"{key}: {value}")
        typer.echo("")
        typer.echo(item["text"])


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in English, Chinese or Russian.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result object as JSON.")] = False,
    answerer: Annotated[
        str | None, typer.Option(help="extractive or llm (default: BRIEFING_ANSWERER).")
    ] = None,
    doc: Annotated[list[str] | None, typer.Option("--doc", help="Only search this document (repeatable).")] = None,
    language: Annotated[
        list[str] | None, typer.Option("--language", help="Only documents in this language (repeatable).")
    ] = None,
    briefing: Annotated[
        str | None, typer.Option("--briefing", help="Ask this briefing only: its article, author and sources.")
    ] = None,
) -> None:
    """Answer one question from the ingested briefing, with citations."""
    from service.engine.chain import BriefingQA

    filters = {k: v for k, v in {"doc_id": doc, "language": language}.items() if v}
    try:
        if answerer not in (None, "extractive", "llm"):
            raise UserError(f"--answerer must be 'extractive' or 'llm', not {answerer!r}")
        qa = BriefingQA(_settings()).load()
        if answerer == "llm":
            qa.warm_llm()
        result = qa.ask(question, filters=filters, answerer=answerer, briefing=briefing)
    except BriefingError as exc:
        _fail(exc)
        return
    if as_json:
        _print_json(result.to_dict())
        return
    typer.echo(result.answer)
    several = len({c.briefing for c in result.citations}) > 1
    for c in result.citations:
        where = f"{c.briefing}: {c.doc_id}" if several else c.doc_id
        typer.echo(f"  [{c.n}] {c.title} ({where} {c.start}-{c.end}): {c.quote}")
    for note in result.notes:
        typer.echo(f"  note: {note}", err=True)


@app.command("eval")
def eval_command(
    gold: Annotated[Path, typer.Option(help="Gold questions (JSON lines).")] = Path("eval/gold/dev.jsonl"),
    out: Annotated[Path | None, typer.Option(help="Folder for summary.json, records.jsonl, report.html.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json-out", help="Also write the summary here.")] = None,
    against: Annotated[Path | None, typer.Option(help="A previous run folder to compare with.")] = None,
    minimum: Annotated[
        list[str] | None, typer.Option("--min", help="METRIC=VALUE; exit 1 when a metric falls short.")
    ] = None,
    fresh_store: Annotated[
        bool, typer.Option("--fresh-store", help="Ingest the bundled briefing into a new temporary store first.")
    ] = False,
    url: Annotated[str | None, typer.Option(help="Ask a running service instead of answering in process.")] = None,
    answerer: Annotated[str | None, typer.Option(help="extractive or llm (default: BRIEFING_ANSWERER).")] = None,
    judge: Annotated[
        bool, typer.Option("--judge", help="Add LLM-judged faithfulness and correctness (needs an LLM).")
    ] = False,
    distractors: Annotated[
        Path | None,
        typer.Option(help="With --fresh-store: also ingest every file under this folder as unrelated documents."),
    ] = None,
    briefing: Annotated[
        str | None,
        typer.Option(
            "--briefing", metavar="ID",
            help="Ask the questions that name no briefing within this one (default: across every briefing).",
        ),
    ] = None,
    also_ingest: Annotated[
        list[Path] | None,
        typer.Option(
            "--also-ingest", metavar="MANIFEST",
            help="With --fresh-store: also ingest this briefing manifest after the bundled one (repeatable).",
        ),
    ] = None,
) -> None:
    """Run gold questions through the answering chain and score the answers."""
    from service.shell.evaluation import run_eval

    try:
        code = run_eval(
            _settings(), gold=gold, out=out, json_out=json_out, against=against, minimums=minimum or [],
            fresh_store=fresh_store, url=url, answerer=answerer, progress=sys.stderr.isatty(), judge=judge,
            distractors=distractors, briefing=briefing, also_ingest=also_ingest or [],
        )
    except BriefingError as exc:
        _fail(exc)
        return
    raise typer.Exit(code)


@app.command("eval-qa")
def eval_qa_command(
    qa_dir: Annotated[Path, typer.Option(
        "--qa-dir", help="The human-written question sets: their dev split is bundled (eval/qa); ../shared/qa "
                         "has the train split too.")] = Path("eval/qa"),
    split: Annotated[str, typer.Option(help="dev or train.")] = "dev",
    sets: Annotated[list[str] | None, typer.Option("--set", help="A set to run (repeatable; default: all).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for each set's results and summary.md.")] = Path("var/eval-qa"),
    minimum: Annotated[
        list[str] | None, typer.Option("--min", help="SET:METRIC=VALUE; exit 1 when a metric falls short.")
    ] = None,
) -> None:
    """Score the answers on human-written question sets (SQuAD 2.0, XQuAD), each in a fresh store beside
    the bundled briefing."""
    from service.shell.evaluation import QA_SETS, run_eval_qa

    try:
        code = run_eval_qa(_settings(), qa_dir=qa_dir, split=split, names=sets or list(QA_SETS), out=out,
                           minimums=minimum or [])
    except BriefingError as exc:
        _fail(exc)
        return
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: BRIEFING_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port (default: BRIEFING_PORT).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Worker processes (default: BRIEFING_WORKERS); >1 needs BRIEFING_CHROMA_URL."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API and the analyst chat page (uvicorn, app factory service.shell.app:create_app)."""
    import uvicorn

    try:
        settings = _settings()
        n_workers = workers or settings.workers
        if n_workers > 1 and not settings.chroma_url:
            raise UserError(
                f"{n_workers} workers need a Chroma server (BRIEFING_CHROMA_URL): the local store at "
                f"{settings.store_dir} allows one writer process. Run one worker, or start `chroma run` "
                "and set BRIEFING_CHROMA_URL."
            )
    except BriefingError as exc:
        _fail(exc)
        return
    import os

    from service.shell.deps import SHARED_WITHOUT_ADMIN_KEY, writes_refused

    bind = host or settings.host
    # The app factory reads its settings from the environment, in every worker process: it must see
    # the address really listened on to decide whether writing is allowed.
    os.environ["BRIEFING_HOST"] = bind
    if writes_refused(settings.model_copy(update={"host": bind})):
        typer.echo(f"warning: listening on {bind}: {SHARED_WITHOUT_ADMIN_KEY}.", err=True)
        if settings.api_key is None:
            typer.echo("warning: questions and documents are open to anyone who can reach it "
                       "(BRIEFING_API_KEY is not set).", err=True)
    uvicorn.run(
        "service.shell.app:create_app",
        factory=True,
        host=bind,
        port=port or settings.port,
        workers=n_workers,
        log_level=log_level,
        timeout_graceful_shutdown=10,
        # h11 rather than the default httptools parser: httptools takes a head of any size, h11 can
        # bound one that is still arriving (the app refuses a complete one over the limit: 431).
        http="h11",
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )


@app.command("mcp")
def mcp_command() -> None:
    """Serve the briefing store to an MCP client over stdin and stdout: the client launches this command.
    (`briefing serve` serves the same tools over HTTP at /mcp.) Nothing but the protocol is written to
    stdout; logs go to stderr."""
    try:
        settings = _settings()
    except BriefingError as exc:
        _fail(exc)
        return
    from service.shell.mcp_server import serve_stdio
    from service.shell.state import ServiceState

    serve_stdio(ServiceState(settings))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
