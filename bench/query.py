"""Query latency and retrieval recall as the store grows: 1k, 10k and 100k chunks.

One store a size: the bundled briefing, ingested with `ingest(settings)`, then real English prose
distractors ingested until the store holds that many chunks. Each store is then measured in a process of
its own that opens it as the service does (`BriefingQA(settings).load()`):

    retrieval        `HybridSearcher.search(question, k=5)` with the default settings (hybrid,
                     weighted fusion), the query embedding included
    LangChain        plain `langchain_chroma.Chroma(...).similarity_search(question, k=5)` on the very
                     same chunks collection, with the same embedder object
    answer           `BriefingQA.ask(question)` with the default (extractive) answerer; timed once with
                     the answerer's sentence-vector cache emptied before every question (a question
                     never seen before) and once with it kept (the same question asked again)
    recall           retrieval_recall_at_5 of the answerable gold questions (eval/metrics.py's
                     contract), for the hybrid searcher and for LangChain, on eval/gold/dev.jsonl and
                     on dev + extra

The timed questions are the 48 distinct questions of eval/gold/dev.jsonl and extra.jsonl, the list
repeated (`--repeats`, default 3: 144 timed queries per size and system), the systems interleaved
question by question in rotating order, after untimed warm-up queries. Also recorded: the time to
build the in-memory keyword (BM25) index, peak RSS, and where retrieval time goes (query embedding,
Chroma query, BM25).

Distractors: bench/corpus.py's sources first, in its own file order (so the 1k and 10k stores hold
exactly what `python -m bench.corpus` writes); it has about 12k chunks of prose here, so the rest of
the 100k comes from other real English prose on disk, prose paragraphs only, deduplicated against
everything before (see EXTRA_SOURCES). Nothing is downloaded.

    .venv/bin/python -m bench.query [--sizes 1000,10000,100000] [--repeats 3] [--write docs/benchmarks.md]
                                    [--profile] [--keep DIR [--rebuild]] [--quiet-load 1.5 --quiet-wait 180]

With --keep the stores stay in DIR and a second run measures them again without rebuilding (useful
to measure when the machine is quiet).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import cProfile
import gzip
import html
import io
import json
import os
import pstats
import re
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: `bench/` must not shadow the `ingest` package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, versions, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Query"
COMMAND = ".venv/bin/python -m bench.query --sizes {sizes} --repeats {repeats} --write docs/benchmarks.md"
RETRIEVAL_P50_TARGET_MS = 25.0  # at the largest size
ANSWER_P50_TARGET_MS = 100.0
WARMUP_QUERIES = (
    "What does the licence say about redistribution?",
    "How is the socket buffer size chosen?",
    "Which options does the command accept?",
    "Что пишет газета о переговорах?",
    "文章怎么评价这次会谈？",
    "When was the agreement signed and by whom?",
)


# ---------------------------------------------------------------------------------------
# Machine, versions, load, and the benchmarks file (shared with bench/retrieval_quality.py)
# ---------------------------------------------------------------------------------------


def load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "unknown"


def wait_for_quiet(max_load: float, max_wait_s: float) -> str:
    """Wait (up to `max_wait_s`) until the 1-minute load average is under `max_load`; the load seen."""
    deadline = time.monotonic() + max_wait_s
    while max_wait_s > 0 and os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        time.sleep(10)
    return load()


def clean_environment() -> None:
    for key in [k for k in os.environ if k.startswith("BRIEFING_")]:
        del os.environ[key]  # a local store with default settings, whatever the shell says
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def rss_mb() -> tuple[float, float]:
    """(peak RSS of this process so far, current RSS), in MB.

    The peak is /proc/self/status VmHWM where there is one: `getrusage(RUSAGE_SELF).ru_maxrss` is kept
    across fork and exec on Linux, so a child process would report its parent's peak when that is larger.
    """
    status: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                status[line.split(":")[0]] = int(line.split()[1]) / 1024
    peak = status.get("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak, status.get("VmRSS", 0.0)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, as eval/metrics.py computes it."""
    from eval.metrics import percentile

    return float(percentile(values, q) or 0.0)


# ---------------------------------------------------------------------------------------
# Gold questions
# ---------------------------------------------------------------------------------------


@dataclass
class GoldItem:
    id: str
    set: str  # dev | extra
    lang: str
    answerable: bool
    question: str  # the last turn, as asked
    query: str  # what the chain searches with (a follow-up joined to the turn before it)
    evidence: list[tuple[str, int, int]] = field(default_factory=list)


def gold_items(corpus: dict[str, str]) -> list[GoldItem]:
    """The questions of dev.jsonl then extra.jsonl, evidence located in the briefing's documents."""
    from eval.gold import load_gold
    from eval.metrics import evidence_spans
    from service.engine.chain import condense

    items = []
    for name in ("dev", "extra"):
        for q in load_gold(ROOT / "eval" / "gold" / f"{name}.jsonl", corpus):
            history = [{"role": "user", "content": t} for t in (q.turns or [])[:-1]]
            query, _ = condense(q.question, history)
            items.append(
                GoldItem(
                    q.id,
                    name,
                    q.lang,
                    q.answerable,
                    q.question,
                    query,
                    evidence_spans(q, corpus) if q.answerable else [],
                )
            )
    return items


def first_hit(retrieved: list[dict[str, Any]], evidence: list[tuple[str, int, int]]) -> int | None:
    """1-based rank of the first passage in the top 5 that hits the evidence, by the contract of
    eval/metrics.py (`retrieval_hit`), or None."""
    from eval.metrics import RETRIEVAL_K, retrieval_hit

    for rank in range(1, min(RETRIEVAL_K, len(retrieved)) + 1):
        if retrieval_hit(retrieved[rank - 1 : rank], evidence):
            return rank
    return None


def briefing_corpus(store: Any) -> dict[str, str]:
    """doc_id -> stored text of the briefing's documents (everything but plain distractor files)."""
    ids = [doc_id for doc_id, meta in store.document_metadata().items() if meta.get("kind") != "document"]
    return {doc_id: store.get_document(doc_id).text for doc_id in ids}


# ---------------------------------------------------------------------------------------
# Distractor prose
# ---------------------------------------------------------------------------------------
# Beyond bench/corpus.py: English prose that this kind of machine ships, read the same way
# (bench.corpus.prose_paragraphs keeps only paragraphs that read as prose).


_JAVADOC = re.compile(r"/\*\*(.*?)\*/", re.S)
_BLOCK_TAGS = re.compile(
    r"</?(p|ul|ol|li|h\d|table|tr|td|th|dl|dt|dd|blockquote|div|hr|br|note|important)\b[^>]*>", re.I
)


def javadoc_texts() -> Iterator[str]:
    """Javadoc comments of the JDK's own sources (lib/src.zip of each installed JDK): the prose of the
    Java API reference. Tags (@param ...), <pre> examples and HTML markup are dropped."""
    seen: set[Path] = set()
    for path in sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip")) + sorted(
        Path("/usr/lib/jvm").glob("*/src.zip")
    ):
        with contextlib.suppress(OSError):
            real = path.resolve(strict=True)
            if real in seen:
                continue
            seen.add(real)
            with zipfile.ZipFile(real) as archive:
                for name in sorted(archive.namelist()):
                    if not name.endswith(".java"):
                        continue
                    source = archive.read(name).decode("utf-8", errors="replace")
                    parts = []
                    for match in _JAVADOC.finditer(source):
                        body = "\n".join(
                            re.sub(r"^\s*\*?\s?", "", line) for line in match.group(1).split("\n")
                        )
                        body = re.split(r"\n\s*@\w", "\n" + body, maxsplit=1)[0]  # block tags end the prose
                        body = re.sub(r"<pre>.*?</pre>", "\n\n", body, flags=re.S | re.I)
                        body = _BLOCK_TAGS.sub("\n\n", body)
                        body = re.sub(r"\{@(?:code|literal|link|linkplain|value)\s+([^{}]*)\}", r"\1", body)
                        body = re.sub(r"\{@\w+[^{}]*\}", "", body)
                        body = html.unescape(re.sub(r"<[^>]+>", "", body))
                        parts.append(body)
                    yield "\n\n".join(parts)


_ROFF_BREAK = re.compile(r"\.(PP|P|LP|SH|SS|TP|IP|HP|sp|Sh|Ss|Pp|Bl|El|It|Bd|Ed|nf|fi|EX|EE|RS|RE|in|ti)\b")
_ROFF_FONT_LINE = re.compile(r"\.(B|I|BR|RB|IR|RI|BI|IB|SM|SB)\s+(.*)")
_ROFF_ESCAPES = re.compile(r"\\f(\[[^\]]*\]|\(..|.)|\\s[+-]?\d|\\\*(\(..|\[[^\]]*\]|.)|\\[&|^%]")


def aws_api_doc_texts() -> Iterator[str]:
    """The documentation strings of the AWS API models that botocore ships (data/*/*/service-2.json):
    the AWS API reference's descriptions of operations, types and fields, HTML markup removed."""

    def strings(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "documentation" and isinstance(value, str):
                    yield value
                else:
                    yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)

    roots = {Path(sys.base_prefix), Path(sys.prefix), Path("/usr")}
    folders = sorted(
        {p.resolve() for root in roots for p in root.glob("lib/python3*/*-packages/botocore/data")}
    )
    for folder in folders:
        for path in sorted(folder.glob("*/*/service-2.json*")):
            with contextlib.suppress(OSError, ValueError, EOFError, gzip.BadGzipFile):
                model = json.loads(_read_maybe_gz(path))
                parts = [_BLOCK_TAGS.sub("\n\n", doc) for doc in strings(model)]
                yield html.unescape(re.sub(r"<[^>]+>", "", "\n\n".join(parts)))


def man_texts() -> Iterator[str]:
    """English manual pages (/usr/share/man/man*/), roff requests removed, paragraphs kept."""
    specials = {
        "\\-": "-",
        "\\(em": "—",
        "\\(en": "–",
        "\\(aq": "'",
        "\\(dq": '"',
        "\\(lq": "“",
        "\\(rq": "”",
        "\\(oq": "‘",
        "\\(cq": "’",
        "\\ ": " ",
        "\\e": "\\",
        "\\(bu": "",
    }
    for path in sorted(Path("/usr/share/man").glob("man*/*")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            source = _read_maybe_gz(path)
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        lines = []
        for line in source.split("\n"):
            if line.startswith(("'", '.\\"', '\\"')):
                continue
            if line.startswith("."):
                font = _ROFF_FONT_LINE.match(line)
                if font:
                    lines.append(font.group(2).replace('"', ""))
                elif _ROFF_BREAK.match(line):
                    lines.append("")
                continue
            for code, char in specials.items():
                line = line.replace(code, char)
            lines.append(_ROFF_ESCAPES.sub("", line))
        yield "\n".join(lines)


def rust_doc_texts() -> Iterator[str]:
    """The paragraphs (<p>) of the Rust documentation installed with each rustup toolchain: the
    books, the reference and the standard library API docs."""
    from selectolax.lexbor import LexborHTMLParser

    home = Path(os.environ.get("RUSTUP_HOME", Path.home() / ".rustup"))
    for root in sorted(home.glob("toolchains/*/share/doc/rust/html")):
        for path in sorted(root.rglob("*.html")):
            if "src" in path.relative_to(root).parts[:1]:
                continue  # rendered source code
            with contextlib.suppress(OSError):
                tree = LexborHTMLParser(path.read_bytes())
                yield "\n\n".join(" ".join(node.text(separator="").split()) for node in tree.css("p"))


def perl_pod_texts() -> Iterator[str]:
    """Perl's POD documentation (.pod and the POD of .pm files), commands and formatting codes removed."""
    roots = [Path("/usr/share/perl"), Path("/usr/share/perl5"), *sorted(Path("/usr/lib").glob("*/perl*"))]
    for root in roots:
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path.suffix not in {".pod", ".pm"} or not path.is_file():
                continue
            with contextlib.suppress(OSError):
                text = path.read_text(encoding="utf-8", errors="replace")
                if path.suffix == ".pm":  # only the POD blocks
                    text = "\n\n".join(re.findall(r"^=\w+.*?(?:^=cut\b|\Z)", text, flags=re.M | re.S))
                text = re.sub(r"^=\w+.*$", "", text, flags=re.M)
                text = re.sub(r"[A-Z]<<+\s+(.*?)\s+>>+", r"\1", text)
                for _ in range(3):
                    text = re.sub(r"[A-Z]<([^<>]*)>", lambda m: m.group(1).split("|")[0], text)
                yield text


def python_docstring_texts() -> Iterator[str]:
    """Docstrings of the Python standard library, then of the packages installed in this venv."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    purelib = Path(sysconfig.get_paths()["purelib"])
    for root in (stdlib, purelib):
        for path in sorted(root.rglob("*.py")):
            if root == stdlib and "site-packages" in path.parts:
                continue
            try:
                tree = ast.parse(path.read_bytes())
            except (SyntaxError, ValueError, OSError, RecursionError):
                continue
            docs = [
                ast.get_docstring(node) or ""
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            yield "\n\n".join(d for d in docs if d)


def _read_maybe_gz(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", errors="replace")


EXTRA_SOURCES: dict[str, Callable[[], Iterator[str]]] = {
    "javadoc": javadoc_texts,
    "aws-api-docs": aws_api_doc_texts,
    "man": man_texts,
    "rust-docs": rust_doc_texts,
    "perl-pod": perl_pod_texts,
    "python-docstrings": python_docstring_texts,
}


class Distractors:
    """Prose .txt files written into one folder, grown on demand: bench/corpus.py's paragraphs in its
    own order and file names first, then EXTRA_SOURCES; no paragraph twice."""

    def __init__(self, folder: Path, chunk_chars: int, overlap: int) -> None:
        self.folder = folder
        self.chunk_chars, self.overlap = chunk_chars, overlap
        self.files: list[Path] = []
        self.chunks = self.paragraphs = self.chars = 0
        self.by_source: Counter[str] = Counter()  # paragraphs
        self.chunks_by_source: Counter[str] = Counter()
        self._batches = self._iter_batches()
        folder.mkdir(parents=True, exist_ok=True)

    def _iter_batches(self) -> Iterator[tuple[str, str, list[str]]]:
        from bench.corpus import PARAGRAPHS_PER_FILE, _key, collect, prose_paragraphs

        base = collect()
        seen = {_key(p) for paras in base.values() for p in paras}
        batches = {
            name: [paras[i : i + PARAGRAPHS_PER_FILE] for i in range(0, len(paras), PARAGRAPHS_PER_FILE)]
            for name, paras in base.items()
        }
        for round_no in range(max((len(b) for b in batches.values()), default=0)):
            for name, files in batches.items():  # bench.corpus.build_corpus's order
                if round_no < len(files):
                    yield f"{name}-{round_no:03d}", name, files[round_no]
        for name, texts in EXTRA_SOURCES.items():
            pending: list[str] = []
            n = 0
            for text in texts():
                for para in prose_paragraphs(text):
                    key = _key(para)
                    if key in seen:
                        continue
                    seen.add(key)
                    pending.append(para)
                    if len(pending) == PARAGRAPHS_PER_FILE:
                        yield f"x-{name}-{n:04d}", name, pending
                        pending, n = [], n + 1
            if pending:
                yield f"x-{name}-{n:04d}", name, pending

    def grow(self, min_chunks: int) -> None:
        from ingest.chunking import chunk_text
        from ingest.pipeline import slugify

        while self.chunks < min_chunks:
            try:
                stem, name, paras = next(self._batches)
            except StopIteration:
                raise SystemExit(
                    f"only {self.chunks} chunks of unique prose found on this machine (wanted {min_chunks}): "
                    f"{self.describe()}"
                ) from None
            path = self.folder / f"{stem}.txt"
            text = "\n\n".join(paras) + "\n"
            path.write_text(text, encoding="utf-8")
            n = len(chunk_text(slugify(stem), text, self.chunk_chars, self.overlap))
            self.files.append(path)
            self.chunks += n
            self.paragraphs += len(paras)
            self.chars += len(text)
            self.by_source[name] += len(paras)
            self.chunks_by_source[name] += n

    def describe(self) -> str:
        parts = ", ".join(f"{name} {n:,}" for name, n in self.chunks_by_source.items())
        return (
            f"{len(self.files):,} files, {self.paragraphs:,} paragraphs, {self.chars / 1e6:.1f} M "
            "characters, "
            f"{self.chunks:,} chunks ({parts})"
        )


# ---------------------------------------------------------------------------------------
# Measuring one size
# ---------------------------------------------------------------------------------------


class IndexClock:
    """Times `KeywordIndex.build` wherever it is called (BriefingQA.load builds it), without changing it."""

    def __init__(self) -> None:
        from service.engine import retrieval

        self.builds: list[float] = []
        inner = retrieval.KeywordIndex.build.__func__  # type: ignore[attr-defined]
        clock = self

        def build(cls: Any, store: Any, documents: Any = None) -> Any:
            started = time.perf_counter()
            try:
                return inner(cls, store, documents)
            finally:
                clock.builds.append(time.perf_counter() - started)

        retrieval.KeywordIndex.build = classmethod(build)  # type: ignore[method-assign,assignment]


class EmbedClock:
    """Time spent in the embedder's two calls, wrapped on the instance (the service code is unchanged):
    what a new question's answer spends embedding, next to everything else it does."""

    def __init__(self, embedder: Any) -> None:
        self.ms = {"embed_documents": 0.0, "embed_query": 0.0}
        self.texts = 0
        for name in self.ms:
            setattr(embedder, name, self._timed(name, getattr(embedder, name)))

    def _timed(self, name: str, inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def timed(arg: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(arg)
            finally:
                self.ms[name] += (time.perf_counter() - started) * 1000
                if name == "embed_documents":
                    self.texts += len(arg)

        return timed

    def snapshot(self) -> tuple[float, float, int]:
        return self.ms["embed_documents"], self.ms["embed_query"], self.texts


@dataclass
class SizeResult:
    chunks: int
    distractors: int
    ingest_s: float
    ingest_embedded: int
    load_s: float
    index_s: float
    timings: dict[str, list[float]]
    recall: dict[str, dict[str, float]]  # system -> set -> recall
    misses: dict[str, list[str]]  # system -> ids of answerable dev+extra questions missed
    peak_rss_mb: float
    rss_mb: float
    load_during: str
    refusals: int = 0
    profile: str = ""
    dense: dict[str, float] = field(default_factory=dict)
    build_load: str = ""


def timed_queries(items: list[GoldItem], repeats: int) -> list[str]:
    return [item.question for _ in range(repeats) for item in items]


def measure_size(
    qa: Any, lc: Any, embedder: Any, items: list[GoldItem], repeats: int, profile: bool,
    clock: EmbedClock | None = None,
) -> tuple[dict[str, list[float]], int, str]:
    """Latencies in ms of every system, interleaved question by question in rotating order."""
    from briefing_core.text import tokenize
    from service.engine.retrieval import _where

    searcher, settings = qa.searcher, qa.settings
    k = settings.k
    for query in WARMUP_QUERIES:  # untimed: caches, HNSW pages, BM25 arrays
        searcher.search(query, k)
        lc.similarity_search(query, k=k)
        qa.ask(query)
    t: dict[str, list[float]] = {
        name: []
        for name in (
            "retrieval",
            "embed",
            "search",
            "langchain",
            "answer_new",
            "answer_again",
            "chroma",
            "count",
            "bm25",
            "steps",
            "new_embed_documents",
            "new_embed_query",
            "new_texts",
        )
    }
    refusals = 0

    def run_retrieval(q: str) -> None:
        started = time.perf_counter()
        vector = embedder.embed_query(q)
        embedded = time.perf_counter()
        searcher.search(q, k, query_vector=vector)
        done = time.perf_counter()
        t["retrieval"].append((done - started) * 1000)
        t["embed"].append((embedded - started) * 1000)
        t["search"].append((done - embedded) * 1000)

    def run_langchain(q: str) -> None:
        started = time.perf_counter()
        lc.similarity_search(q, k=k)
        t["langchain"].append((time.perf_counter() - started) * 1000)

    def run_answer_new(q: str) -> None:
        nonlocal refusals
        qa.engine.planner._vectors.clear()  # a question never asked before: no sentence vectors cached
        before = clock.snapshot() if clock else (0.0, 0.0, 0)
        result = qa.ask(q)
        t["answer_new"].append(result.latency_ms)
        if clock:
            after = clock.snapshot()
            t["new_embed_documents"].append(after[0] - before[0])
            t["new_embed_query"].append(after[1] - before[1])
            t["new_texts"].append(float(after[2] - before[2]))
        refusals += result.refused

    def run_answer_again(q: str) -> None:
        t["answer_again"].append(qa.ask(q).latency_ms)

    systems = [run_retrieval, run_langchain, run_answer_new, run_answer_again]
    queries = timed_queries(items, repeats)
    for i, q in enumerate(queries):
        shift = i % len(systems)
        for run in systems[shift:] + systems[:shift]:
            run(q)
    # Where search time goes, outside the timed loop: the Chroma query and the BM25 scoring alone.
    index = searcher.index
    n = max(settings.candidates, k)
    for item in items:
        vector = embedder.embed_query(item.question)
        started = time.perf_counter()
        qa.store.query(vector, n, _where(None))
        t["chroma"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        index.search_with_coverage(tokenize(item.question), n, None)
        t["bm25"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        qa.store.count_chunks()
        t["count"].append((time.perf_counter() - started) * 1000)
        qa.engine.planner._vectors.clear()
        started = time.perf_counter()
        chain_steps(qa, item.question)
        t["steps"].append((time.perf_counter() - started) * 1000)
    text = ""
    if profile:
        text = profile_queries(qa, [item.question for item in items])
    return t, refusals, text


def profile_queries(qa: Any, questions: list[str], limit: int = 22) -> str:
    """cProfile of one pass of searches and one of answers (new questions), top by own time."""
    out = io.StringIO()
    for label, fn in (
        ("search (embedding included)", lambda q: qa.searcher.search(q, qa.settings.k)),
        (
            "the chain's steps called directly (ask's runnables run them in worker threads, which cProfile "
            "does not see), new question",
            lambda q: (qa.engine.planner._vectors.clear(), chain_steps(qa, q)),
        ),
    ):
        profiler = cProfile.Profile()
        profiler.enable()
        for q in questions:
            fn(q)
        profiler.disable()
        out.write(f"### profile: {label}, {len(questions)} questions\n")
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(limit)
        stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def chain_steps(qa: Any, question: str) -> Any:
    """What `BriefingQA.ask` runs, step by step in this thread, without the LangChain runnables around
    the steps (service/engine/chain.py `_build_chain`)."""
    state: dict[str, Any] = {
        "question": question,
        "history": [],
        "filters": {},
        "answerer": qa.settings.answerer,
    }
    state["condensed"] = qa._condense(state)
    state["passages"] = qa._retrieve(state)
    state["draft"] = qa._answer(state)
    return qa._finish(state)


def recall(
    retrieve: Callable[[str], list[dict[str, Any]]], items: list[GoldItem]
) -> tuple[dict[str, float], list[str]]:
    answerable = [item for item in items if item.answerable]
    hits = {item.id: first_hit(retrieve(item.query), item.evidence) is not None for item in answerable}
    dev = [item for item in answerable if item.set == "dev"]
    out = {
        "dev": sum(hits[i.id] for i in dev) / len(dev),
        "all": sum(hits.values()) / len(answerable),
        "dev_n": len(dev),
        "all_n": len(answerable),
    }
    return out, [i for i, hit in hits.items() if not hit]


def langchain_store(store: Any, settings: Any, embedder: Any) -> Any:
    from langchain_chroma import Chroma

    return Chroma(
        client=store._client, collection_name=f"{settings.collection}-chunks", embedding_function=embedder
    )


def langchain_hits(lc: Any, k: int) -> Callable[[str], list[dict[str, Any]]]:
    def retrieve(query: str) -> list[dict[str, Any]]:
        return [dict(doc.metadata) for doc in lc.similarity_search(query, k=k)]

    return retrieve


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def _p50(t: dict[str, list[float]], key: str, digits: int = 1) -> str:
    return f"{pct(t[key], 50):.{digits}f}" if t.get(key) else "—"


def render(results: list[SizeResult], info: dict[str, Any]) -> str:
    m, v = info["machine"], info["versions"]
    largest, smallest = results[-1], results[0]
    sizes = ", ".join(f"{r.chunks:,}" for r in results)
    lines = [
        SECTION,
        "",
        f"Query latency and retrieval recall at {sizes} chunks: one local Chroma store a size, holding the "
        f"bundled briefing ({info['briefing_chunks']} chunks, `ingest(settings)`) and real English prose "
        f"distractors. Default settings: embedder `{info['embedder']}`, `{info['mode']}` retrieval, "
        f"`{info['fusion']}` fusion (keyword weight {info['keyword_weight']}), k={info['k']}, extractive "
        f"answerer. Every latency is over **{info['timed']} timed queries a size and system**: the "
        f"{info['questions']} distinct questions of `eval/gold/dev.jsonl` + `extra.jsonl` (answerable or "
        f"not), the list repeated {info['repeats']}×, the systems interleaved question by question in "
        f"rotating order, after {len(WARMUP_QUERIES)} untimed warm-up queries. Milliseconds, nearest-rank "
        "percentiles. Retrieval includes the query embedding, as LangChain's `similarity_search` does.",
        "",
        "| Chunks | Retrieval p50 | p95 | LangChain `similarity_search` p50 | p95 "
        "| Answer p50, new question | p95 | Answer p50, asked again | p95 "
        "| Recall@5 dev: ours | LangChain | Recall@5 dev+extra: ours | LangChain |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t = r.timings
        lines.append(
            f"| {r.chunks:,} | **{pct(t['retrieval'], 50):.1f}** | {pct(t['retrieval'], 95):.1f} "
            f"| {pct(t['langchain'], 50):.1f} | {pct(t['langchain'], 95):.1f} "
            f"| **{pct(t['answer_new'], 50):.1f}** | {pct(t['answer_new'], 95):.1f} "
            f"| {pct(t['answer_again'], 50):.1f} | {pct(t['answer_again'], 95):.1f} "
            f"| **{r.recall['ours']['dev']:.3f}** | {r.recall['langchain']['dev']:.3f} "
            f"| {r.recall['ours']['all']:.3f} | {r.recall['langchain']['all']:.3f} |"
        )
    lines += [
        "",
        "Where the time goes (p50 ms; the parts timed alone, once per distinct question) and what each "
        "size costs:",
        "",
        "| Chunks | Query embedding | Search given the vector | of which `Store.query` "
        f"(top {info['candidates']}) | Chroma `count()` alone | of which BM25 "
        "| Answer: chain steps without the runnables, new question "
        "| Answer, new question: in `embed_documents` | texts embedded | in `embed_query` "
        "| Keyword index build s "
        "| `BriefingQA.load()` s | Peak RSS MB | RSS after MB | Distractor ingest s (chunks embedded) "
        "| Load average during |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        t = r.timings
        lines.append(
            f"| {r.chunks:,} | {pct(t['embed'], 50):.1f} | {pct(t['search'], 50):.1f} "
            f"| {pct(t['chroma'], 50):.1f} | {pct(t['count'], 50):.1f} | {pct(t['bm25'], 50):.1f} "
            f"| {pct(t['steps'], 50):.1f} | {_p50(t, 'new_embed_documents')} | {_p50(t, 'new_texts', 0)} "
            f"| {_p50(t, 'new_embed_query')} "
            f"| {r.index_s:.2f} | {r.load_s:.2f} | {r.peak_rss_mb:,.0f} "
            f"| {r.rss_mb:,.0f} | {r.ingest_s:.1f} ({r.ingest_embedded:,}) | {r.load_during} |"
        )
    ok = lambda good: "met" if good else "**MISSED**"  # noqa: E731
    retrieval_p50 = pct(largest.timings["retrieval"], 50)
    answer_p50 = max(pct(r.timings["answer_new"], 50) for r in results)
    recall_ok = largest.recall["ours"]["dev"] >= smallest.recall["ours"]["dev"]
    ours = largest.recall["ours"]
    lines += [
        "",
        f"* Retrieval p50 at {largest.chunks:,} chunks: **{retrieval_p50:.1f} ms** "
        f"(target ≤ {RETRIEVAL_P50_TARGET_MS:.0f} ms): {ok(retrieval_p50 <= RETRIEVAL_P50_TARGET_MS)}.",
        f"* Extractive answer p50 for a new question, worst size: **{answer_p50:.1f} ms** "
        f"(target ≤ {ANSWER_P50_TARGET_MS:.0f} ms): {ok(answer_p50 <= ANSWER_P50_TARGET_MS)}.",
        f"* Recall@5 on dev: {ours['dev']:.3f} at {largest.chunks:,} chunks, "
        f"{smallest.recall['ours']['dev']:.3f} "
        f"at {smallest.chunks:,} (target: no worse): {ok(recall_ok)}. Answerable questions: "
        f"{ours['dev_n']:.0f} in dev, {ours['all_n']:.0f} in dev+extra; a follow-up question is searched as "
        "the chain searches it (joined to the turn before), by both systems. On dev+extra: "
        f"{ours['all']:.3f} at {largest.chunks:,}, "
        f"{smallest.recall['ours']['all']:.3f} at {smallest.chunks:,}.",
        f"* At {largest.chunks:,} chunks the search given the vector takes "
        f"{pct(largest.timings['search'], 50):.1f} ms (p50); timed on their own, `Store.query` (the HNSW "
        f"query, top {max(info['candidates'], info['k'])}) {pct(largest.timings['chroma'], 50):.1f} ms and "
        f"BM25 {pct(largest.timings['bm25'], 50):.1f} ms. `Store.query` no longer asks Chroma for a "
        "`count()` first (it did before 0f642d5); the "
        f"count alone is timed for scale ({pct(largest.timings['count'], 50):.1f} ms at "
        f"{largest.chunks:,} chunks) and is not part of any query.",
    ]
    if largest.timings.get("new_embed_documents"):
        t = largest.timings
        lines.append(
            f"* A new question's answer at {largest.chunks:,} chunks (p50 of each figure on its own): "
            f"{pct(t['answer_new'], 50):.1f} ms in all, {pct(t['new_embed_documents'], 50):.1f} ms of it in "
            f"the embedder's `embed_documents` ({pct(t['new_texts'], 50):.0f} texts: the candidate "
            "sentences of the retrieved passages, and for a Chinese or Russian question also the English "
            f"words compared by meaning) and {pct(t['new_embed_query'], 50):.1f} ms in `embed_query` (the "
            "question, and each part of a multi-part question searched again). Asked again, the sentence "
            f"vectors are cached: {pct(t['answer_again'], 50):.1f} ms."
        )
    dense = "; ".join(
        f"{r.chunks:,}: exact {r.dense['exact']:.3f}, Chroma {r.dense['hnsw']:.3f}, "
        f"{r.dense['overlap'] * info['k']:.1f} of {info['k']}"
        for r in results
        if r.dense
    )
    if dense:
        lines.append(
            "* Why plain dense search falls apart as distractors grow — recall@5 on dev+extra of exact "
            "cosine "
            "search over every stored vector vs Chroma's HNSW top 5 for the same question vectors, and how "
            f"many of Chroma's top 5 are the exact top 5: {dense}. Chroma's approximate search "
            "(collection defaults: ef_search 100, max_neighbors 16) rarely reaches the briefing's few chunks "
            "from a question's vector once they are surrounded by many thousands of others; our hybrid "
            "search keeps its recall through the keyword side."
        )
    for r in results:
        missed = ", ".join(r.misses["ours"]) or "none"
        lc_missed = ", ".join(r.misses["langchain"]) or "none"
        lines.append(f"* Missed at {r.chunks:,} chunks (dev+extra): ours {missed}; LangChain {lc_missed}.")
    lines += [
        '* "New question": the answerer\'s sentence-vector cache is emptied before each `ask`, so the '
        'candidate sentences are embedded as for a question never asked before; "asked again" keeps it.',
        f"* Distractors: {info['corpus']}. bench/corpus.py's sources (licenses, info, nodejs, python, "
        "debian-docs) give about 12k chunks on this machine, so the 1k and 10k stores hold only its output "
        "(its files, in its order); the rest of the largest store is other real English prose found on "
        "disk (`EXTRA_SOURCES` in bench/query.py, in this order: JDK Javadoc, the AWS API reference that "
        "botocore ships, man pages, Rust docs, Perl POD, Python "
        "docstrings), prose paragraphs only, no paragraph twice.",
        "* The distractor ingest times were taken when the stores were built, "
        + (
            "under the load averages "
            + "; ".join(f"{r.chunks:,}: {r.build_load}" for r in results if r.build_load)
            + "; "
            if any(r.build_load for r in results)
            else "while other engineers' test runs shared the machine; "
        )
        + "they are not an ingest benchmark (the Ingest section is).",
        "* Each size is a store of its own (the briefing ingested with `ingest(settings)`, then the "
        "distractor files with `ingest(settings, files)`), measured in a fresh process that opens it as the "
        "service does, `BriefingQA(settings).load()` (keyword index built, caches empty): peak RSS is that "
        "process's, ingest excluded. LangChain's `Chroma` wraps the same client and chunks collection with "
        "the same embedder object; it does no keyword search, fusion or filtering of incomplete documents.",
    ]
    lines += [f"* {note}" for note in info.get("notes", [])]
    lines += [
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['os']}; load average "
        f"{info['load_before']} before, {info['load_after']} after. Other work shares the machine: the "
        "load average (1, 5, 15 min) when each size's timing began and ended is in the table.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Run on {info['date']}, {info['total_min']:.0f} min in all. Reproduce from the project root with:",
        "",
        "```",
        COMMAND.format(sizes=",".join(str(s) for s in info["sizes"]), repeats=info["repeats"]),
        "```",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# Building the stores (parent process) and measuring one (a child process per size)
# ---------------------------------------------------------------------------------------


def build_stores(base: Path, sizes: list[int], rebuild: bool) -> dict[str, Any]:
    """One store a size, `base/store-SIZE`: the bundled briefing, then distractor files until the store
    holds SIZE chunks. What was built is recorded in base/builds.json, so a kept base is reused."""

    from ingest.pipeline import ingest
    from briefing_core.embeddings import make_embedder
    from briefing_core.settings import Settings
    from briefing_core.store import open_store

    record_path = base / "builds.json"
    builds: dict[str, Any] = (
        json.loads(record_path.read_text()) if record_path.exists() and not rebuild else {}
    )
    missing = [size for size in sizes if str(size) not in builds or not (base / f"store-{size}").is_dir()]
    if not missing:
        return builds
    settings = Settings(store_dir=base / "store-briefing")
    embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    distractors = Distractors(base / "corpus", settings.chunk_chars, settings.chunk_overlap_sentences)
    for size in sizes:
        store_dir = base / f"store-{size}"
        settings = Settings(store_dir=store_dir)
        print(f"== building the {size:,}-chunk store", file=sys.stderr, flush=True)
        briefing_chunks = int(builds.get("briefing_chunks", 0))
        if size not in missing:  # keep the corpus in step: the next size's files start after these
            distractors.grow(size - briefing_chunks)
            continue
        shutil.rmtree(store_dir, ignore_errors=True)
        store = open_store(settings, embedder)
        started = time.perf_counter()
        report = ingest(settings, embedder=embedder, store=store)  # the bundled briefing
        briefing_s = time.perf_counter() - started
        if report.errors:
            raise SystemExit(f"ingest of the briefing failed: {report.errors}")
        briefing_chunks = store.count_chunks()
        distractors.grow(size - briefing_chunks)
        started, load_before = time.perf_counter(), load()
        report = ingest(settings, list(distractors.files), embedder=embedder, store=store)
        ingest_s = time.perf_counter() - started
        if report.errors:
            raise SystemExit(f"ingest of the distractors failed: {report.errors[:3]}")
        chunks = store.count_chunks()
        builds["briefing_chunks"] = briefing_chunks
        builds[str(size)] = {
            "chunks": chunks,
            "briefing_s": briefing_s,
            "ingest_s": ingest_s,
            "embedded": report.texts_embedded,
            "files": len(distractors.files),
            "corpus": distractors.describe(),
            "load": f"{load_before} → {load()}",
        }
        print(
            f"   {chunks:,} chunks; distractors ingested in {ingest_s:.1f} s ({distractors.describe()})",
            file=sys.stderr,
            flush=True,
        )
        record_path.write_text(json.dumps(builds, indent=1))
    return builds


def dense_check(store: Any, embedder: Any, items: list[GoldItem], k: int) -> dict[str, float]:
    """Is the dense side's recall the embedder's or Chroma's approximate (HNSW) search's? Recall@k of
    exact cosine search over every stored vector, next to Chroma's own top k, and how many of Chroma's
    top k are the exact top k."""
    import numpy as np

    ids: list[str] = []
    metas: list[dict[str, Any]] = []
    blocks = []
    offset = 0
    while True:
        got = store.chunks.get(include=["embeddings", "metadatas"], limit=5000, offset=offset)
        if not len(got["ids"]):
            break
        ids += got["ids"]
        metas += [dict(m or {}) for m in got["metadatas"]]
        blocks.append(np.asarray(got["embeddings"], dtype=np.float32))
        offset += len(got["ids"])
    matrix = np.concatenate(blocks)
    answerable = [item for item in items if item.answerable]
    exact = approximate = 0
    overlap = 0.0
    for item in answerable:
        vector = np.asarray(embedder.embed_query(item.query), dtype=np.float32)
        top = np.argsort(-(matrix @ vector))[:k]
        found = store.query(vector.tolist(), k)
        exact += first_hit([metas[i] for i in top], item.evidence) is not None
        approximate += first_hit([meta for _, _, _, meta in found], item.evidence) is not None
        overlap += len({ids[i] for i in top} & {cid for cid, _, _, _ in found}) / k
    n = len(answerable)
    return {"exact": exact / n, "hnsw": approximate / n, "overlap": overlap / n}


def measure_store(store_dir: Path, repeats: int, profile: bool) -> dict[str, Any]:
    """In a process of its own, as the service would run: open the store, load, and measure."""
    from service.engine.chain import BriefingQA
    from briefing_core.embeddings import make_embedder
    from briefing_core.settings import Settings

    settings = Settings(store_dir=store_dir)
    embedder = make_embedder(settings.embedder, settings.embed_batch_size)
    embedder.embed_query("load the model")  # model load is not the store's cost
    embed_clock = EmbedClock(embedder)
    clock = IndexClock()
    qa = BriefingQA(settings, embedder=embedder)
    started = time.perf_counter()
    qa.load()
    load_s = time.perf_counter() - started
    store = qa.store
    items = gold_items(briefing_corpus(store))
    lc = langchain_store(store, settings, embedder)
    ours, ours_missed = recall(lambda q: [p.to_dict() for p in qa.searcher.search(q, settings.k)], items)
    theirs, theirs_missed = recall(langchain_hits(lc, settings.k), items)
    load_before = load()
    timings, refusals, profile_text = measure_size(qa, lc, embedder, items, repeats, profile, embed_clock)
    peak, current = rss_mb()
    dense = dense_check(store, embedder, items, settings.k)  # after RSS: it holds every vector
    return {
        "dense": dense,
        "chunks": store.count_chunks(),
        "load_s": load_s,
        "index_s": sum(clock.builds),
        "timings": timings,
        "recall": {"ours": ours, "langchain": theirs},
        "misses": {"ours": ours_missed, "langchain": theirs_missed},
        "peak_rss_mb": peak,
        "rss_mb": current,
        "load_during": f"{load_before} → {load()}",
        "refusals": refusals,
        "profile": profile_text,
        "questions": len(items),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="store sizes in chunks, ascending")
    parser.add_argument("--repeats", type=int, default=3, help="times the question list is timed (default 3)")
    parser.add_argument("--write", type=Path, help="write/replace the '## Query' section of this file")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile searches and answers at the largest size"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="build the stores in this folder and keep them; a later run with the same folder "
        "measures them again without rebuilding (default: a temp dir, removed)",
    )
    parser.add_argument("--rebuild", action="store_true", help="with --keep: rebuild the stores")
    parser.add_argument(
        "--quiet-load",
        type=float,
        default=1.5,
        help="before measuring a size, wait (up to --quiet-wait s) for the 1-minute load "
        "average to drop under this (default 1.5)",
    )
    parser.add_argument("--quiet-wait", type=float, default=180.0)
    parser.add_argument("--measure-one", type=Path, help=argparse.SUPPRESS)  # child: a store directory
    args = parser.parse_args(argv)
    clean_environment()

    if args.measure_one:
        print(json.dumps(measure_store(args.measure_one, args.repeats, args.profile)))
        return 0

    sizes = sorted(int(s) for s in args.sizes.split(","))
    began = time.perf_counter()
    info: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(),
        "load_before": load(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "sizes": sizes,
        "repeats": args.repeats,
    }
    from briefing_core.settings import Settings

    defaults = Settings()
    info.update(
        embedder=defaults.embedder,
        mode=defaults.retrieval_mode,
        fusion=defaults.fusion,
        keyword_weight=defaults.keyword_weight,
        k=defaults.k,
        candidates=defaults.candidates,
    )
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-query-"))
    results: list[SizeResult] = []
    try:
        base.mkdir(parents=True, exist_ok=True)
        builds = build_stores(base, sizes, args.rebuild)
        info["briefing_chunks"] = builds["briefing_chunks"]
        info["corpus"] = builds[str(sizes[-1])]["corpus"]
        for size in sizes:
            quiet = wait_for_quiet(args.quiet_load, args.quiet_wait)
            print(f"== measuring the {size:,}-chunk store (load {quiet})", file=sys.stderr, flush=True)
            command = [
                sys.executable,
                "-m",
                "bench.query",
                "--measure-one",
                str(base / f"store-{size}"),
                "--repeats",
                str(args.repeats),
            ]
            if args.profile and size == sizes[-1]:
                command.append("--profile")
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"measuring the {size:,}-chunk store failed:\n{done.stderr[-3000:]}")
            got = json.loads(done.stdout.strip().splitlines()[-1])
            build = builds[str(size)]
            result = SizeResult(
                got["chunks"],
                got["chunks"] - info["briefing_chunks"],
                build["ingest_s"],
                build["embedded"],
                got["load_s"],
                got["index_s"],
                got["timings"],
                got["recall"],
                got["misses"],
                got["peak_rss_mb"],
                got["rss_mb"],
                got["load_during"],
                got["refusals"],
                got["profile"],
                got.get("dense", {}),
                build.get("load", ""),
            )
            info["questions"] = got["questions"]
            info["timed"] = got["questions"] * args.repeats
            results.append(result)
            t = result.timings
            print(
                f"   retrieval p50 {pct(t['retrieval'], 50):.1f} p95 {pct(t['retrieval'], 95):.1f} ms; "
                f"langchain p50 {pct(t['langchain'], 50):.1f}; answer(new) p50 "
                f"{pct(t['answer_new'], 50):.1f} "
                f"p95 {pct(t['answer_new'], 95):.1f}; recall dev {result.recall['ours']['dev']:.3f} / "
                f"lc {result.recall['langchain']['dev']:.3f}; index {result.index_s:.2f} s; "
                f"peak RSS {result.peak_rss_mb:,.0f} MB; load {result.load_during}",
                file=sys.stderr,
                flush=True,
            )
        info["load_after"] = load()
        info["total_min"] = (time.perf_counter() - began) / 60
        section = render(results, info)
        print(section)
        if args.write:
            write_section(args.write, section, SECTION)
        for r in results:
            if r.profile:
                print(r.profile)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
