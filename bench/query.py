"""Query latency and retrieval recall as the store grows: 1k, 10k and 100k chunks.

One store is grown in steps (the bundled briefing, ingested with `ingest(settings)`, then real English
prose distractors added until the store holds the next size), and at each size, in one process:

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
                                    [--profile] [--keep DIR]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import cProfile
import gzip
import html
import io
import os
import pstats
import re
import resource
import shutil
import statistics
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


def machine() -> dict[str, str]:
    from bench.ingest import machine as ingest_machine

    return ingest_machine()


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    import importlib.metadata

    from bench.ingest import versions as ingest_versions

    out = ingest_versions()
    for dist in ("bm25s", *extra):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    if "commit" in out:  # keep the commit last
        out["commit"] = out.pop("commit")
    return out


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


def write_section(path: Path, section: str, heading: str = SECTION) -> None:
    """Replace (or append) the `heading` section of `path`, leaving the other sections alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    body = section.rstrip("\n") + "\n\n"
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def clean_environment() -> None:
    for key in [k for k in os.environ if k.startswith("BRIEFING_")]:
        del os.environ[key]  # a local store with default settings, whatever the shell says
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def rss_mb() -> tuple[float, float]:
    """(peak RSS of this process so far, current RSS), in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    current = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return peak, current


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
    from service.chain import condense

    items = []
    for name in ("dev", "extra"):
        for q in load_gold(ROOT / "eval" / "gold" / f"{name}.jsonl", corpus):
            history = [{"role": "user", "content": t} for t in (q.turns or [])[:-1]]
            query, _ = condense(q.question, history)
            items.append(GoldItem(q.id, name, q.lang, q.answerable, q.question, query,
                                  evidence_spans(q, corpus) if q.answerable else []))
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
    return {rec.doc_id: rec.text for rec in store.documents()}


# ---------------------------------------------------------------------------------------
# Distractor prose
# ---------------------------------------------------------------------------------------
# Beyond bench/corpus.py: English prose that this kind of machine ships, read the same way
# (bench.corpus.prose_paragraphs keeps only paragraphs that read as prose).


_JAVADOC = re.compile(r"/\*\*(.*?)\*/", re.S)
_BLOCK_TAGS = re.compile(r"</?(p|ul|ol|li|h\d|table|tr|td|th|dl|dt|dd|blockquote|div|hr|br)\b[^>]*>", re.I)


def javadoc_texts() -> Iterator[str]:
    """Javadoc comments of the JDK's own sources (lib/src.zip of each installed JDK): the prose of the
    Java API reference. Tags (@param ...), <pre> examples and HTML markup are dropped."""
    seen: set[Path] = set()
    for path in sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip")) + sorted(Path("/usr/lib/jvm").glob("*/src.zip")):
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
                        body = "\n".join(re.sub(r"^\s*\*?\s?", "", line) for line in match.group(1).split("\n"))
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


def man_texts() -> Iterator[str]:
    """English manual pages (/usr/share/man/man*/), roff requests removed, paragraphs kept."""
    specials = {"\\-": "-", "\\(em": "—", "\\(en": "–", "\\(aq": "'", "\\(dq": '"', "\\(lq": "“",
                "\\(rq": "”", "\\(oq": "‘", "\\(cq": "’", "\\ ": " ", "\\e": "\\", "\\(bu": ""}
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
        return (f"{len(self.files):,} files, {self.paragraphs:,} paragraphs, {self.chars / 1e6:.1f} M characters, "
                f"{self.chunks:,} chunks ({parts})")


# ---------------------------------------------------------------------------------------
# Measuring one size
# ---------------------------------------------------------------------------------------


class IndexClock:
    """Times `KeywordIndex.build` wherever it is called (BriefingQA.load builds it), without changing it."""

    def __init__(self) -> None:
        from service import retrieval

        self.builds: list[float] = []
        inner = retrieval.KeywordIndex.build.__func__  # type: ignore[attr-defined]
        clock = self

        def build(cls: Any, store: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(cls, store)
            finally:
                clock.builds.append(time.perf_counter() - started)

        retrieval.KeywordIndex.build = classmethod(build)  # type: ignore[method-assign,assignment]


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


def timed_queries(items: list[GoldItem], repeats: int) -> list[str]:
    return [item.question for _ in range(repeats) for item in items]


def measure_size(qa: Any, lc: Any, embedder: Any, items: list[GoldItem], repeats: int,
                 profile: bool) -> tuple[dict[str, list[float]], int, str]:
    """Latencies in ms of every system, interleaved question by question in rotating order."""
    from ingest.text import tokenize
    from service.retrieval import _where

    searcher, settings = qa.searcher, qa.settings
    k = settings.k
    for query in WARMUP_QUERIES:  # untimed: caches, HNSW pages, BM25 arrays
        searcher.search(query, k)
        lc.similarity_search(query, k=k)
        qa.ask(query)
    t: dict[str, list[float]] = {name: [] for name in (
        "retrieval", "embed", "search", "langchain", "answer_new", "answer_again", "chroma", "bm25", "steps")}
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
        qa.scorer._cache.clear()  # a question never asked before: no sentence vectors cached
        result = qa.ask(q)
        t["answer_new"].append(result.latency_ms)
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
        qa.scorer._cache.clear()
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
        ("the chain's steps called directly (ask's runnables run them in worker threads, which cProfile "
         "does not see), new question", lambda q: (qa.scorer._cache.clear(), chain_steps(qa, q))),
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
    the steps (service/chain.py `_build_chain`)."""
    state: dict[str, Any] = {"question": question, "history": [], "filters": {}, "answerer": qa.settings.answerer}
    state["condensed"] = qa._condense(state)
    state["passages"] = qa._retrieve(state)
    state["draft"] = qa._answer(state)
    return qa._finish(state)


def recall(retrieve: Callable[[str], list[dict[str, Any]]], items: list[GoldItem]) -> tuple[dict[str, float], list[str]]:
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

    return Chroma(client=store._client, collection_name=f"{settings.collection}-chunks", embedding_function=embedder)


def langchain_hits(lc: Any, k: int) -> Callable[[str], list[dict[str, Any]]]:
    def retrieve(query: str) -> list[dict[str, Any]]:
        return [dict(doc.metadata) for doc in lc.similarity_search(query, k=k)]

    return retrieve


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def render(results: list[SizeResult], info: dict[str, Any]) -> str:
    m, v = info["machine"], info["versions"]
    largest, smallest = results[-1], results[0]
    lines = [
        SECTION,
        "",
        f"Query latency and retrieval recall as one local Chroma store grows from {smallest.chunks:,} to "
        f"{largest.chunks:,} chunks: the bundled briefing ({info['briefing_chunks']} chunks, `ingest(settings)`) "
        f"plus real English prose distractors. Default settings: embedder `{info['embedder']}`, "
        f"`{info['mode']}` retrieval with `{info['fusion']}` fusion (keyword weight {info['keyword_weight']}), "
        f"k={info['k']}, extractive answerer. Every latency is over **{info['timed']} timed queries a size and "
        f"system**: the {info['questions']} distinct questions of `eval/gold/dev.jsonl` + `extra.jsonl` "
        f"(answerable or not), the list repeated {info['repeats']}×, systems interleaved question by question "
        f"in rotating order, after {len(WARMUP_QUERIES)} untimed warm-up queries. Milliseconds, nearest-rank "
        "percentiles.",
        "",
        "| Chunks | Retrieval p50 | p95 | LangChain `similarity_search` p50 | p95 | Answer p50 (new question) | p95 "
        "| Answer p50 (asked again) | p95 | Recall@5 dev: ours | LangChain | Recall@5 dev+extra: ours | LangChain |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t = r.timings
        lines.append(
            f"| {r.chunks:,} | **{pct(t['retrieval'], 50):.1f}** | {pct(t['retrieval'], 95):.1f} | "
            f"{pct(t['langchain'], 50):.1f} | {pct(t['langchain'], 95):.1f} | "
            f"**{pct(t['answer_new'], 50):.1f}** | {pct(t['answer_new'], 95):.1f} | "
            f"{pct(t['answer_again'], 50):.1f} | {pct(t['answer_again'], 95):.1f} | "
            f"**{r.recall['ours']['dev']:.3f}** | {r.recall['langchain']['dev']:.3f} | "
            f"{r.recall['ours']['all']:.3f} | {r.recall['langchain']['all']:.3f} |"
        )
    lines += [
        "",
        "Where retrieval time goes (p50, ms; the Chroma query and BM25 timed alone, once per distinct question), "
        "and what each size costs:",
        "",
        "| Chunks | Query embedding | Search given the vector | of which Chroma query (top-"
        f"{info['candidates']}) | of which BM25 | Answer, chain steps without runnables (new question) "
        "| Keyword index build s | `BriefingQA.load()` s | Peak RSS MB | RSS after MB | Ingest s (texts embedded) "
        "| Load avg during |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        t = r.timings
        lines.append(
            f"| {r.chunks:,} | {pct(t['embed'], 50):.1f} | {pct(t['search'], 50):.1f} | {pct(t['chroma'], 50):.1f} | "
            f"{pct(t['bm25'], 50):.1f} | {pct(t['steps'], 50):.1f} | {r.index_s:.2f} | {r.load_s:.2f} | {r.peak_rss_mb:,.0f} | {r.rss_mb:,.0f} | "
            f"{r.ingest_s:.1f} ({r.ingest_embedded:,}) | {r.load_during} |"
        )
    ok = lambda good: "met" if good else "**MISSED**"  # noqa: E731
    retrieval_p50 = pct(largest.timings["retrieval"], 50)
    answer_p50 = max(pct(r.timings["answer_new"], 50) for r in results)
    recall_ok = largest.recall["ours"]["dev"] >= smallest.recall["ours"]["dev"]
    lines += [
        "",
        f"* Retrieval p50 at {largest.chunks:,} chunks: **{retrieval_p50:.1f} ms** (target ≤ "
        f"{RETRIEVAL_P50_TARGET_MS:.0f} ms): {ok(retrieval_p50 <= RETRIEVAL_P50_TARGET_MS)}.",
        f"* Extractive answer p50, new questions, worst size: **{answer_p50:.1f} ms** (target ≤ "
        f"{ANSWER_P50_TARGET_MS:.0f} ms): {ok(answer_p50 <= ANSWER_P50_TARGET_MS)}.",
        f"* Recall@5 on dev at {largest.chunks:,} chunks {largest.recall['ours']['dev']:.3f} vs "
        f"{smallest.recall['ours']['dev']:.3f} at {smallest.chunks:,} (target: no worse): {ok(recall_ok)}. "
        f"Answerable questions: {largest.recall['ours']['dev_n']:.0f} in dev, {largest.recall['ours']['all_n']:.0f} "
        "in dev+extra; a follow-up question is searched as the chain searches it (joined to the turn before).",
    ]
    for r in results:
        missed = ", ".join(r.misses["ours"]) or "none"
        lc_missed = ", ".join(r.misses["langchain"]) or "none"
        lines.append(f"* Missed at {r.chunks:,} (dev+extra): ours {missed}; LangChain {lc_missed}.")
    lines += [
        "* \"New question\": the answerer's sentence-vector cache is emptied before each `ask`, so the "
        "candidate sentences are embedded as for a question never asked; \"asked again\" keeps the cache.",
        f"* Distractors: {info['corpus']}. bench/corpus.py's sources (licenses, info, nodejs, python, "
        "debian-docs) give about 12k chunks here, so the 1k and 10k stores hold only its output; the rest of "
        "the largest store is other real English prose on this machine (`EXTRA_SOURCES` in bench/query.py: "
        "JDK Javadoc, man pages, Rust docs, Perl POD, Python docstrings), prose paragraphs only, no paragraph "
        "twice.",
        "* The store is grown in place (1k, then ingest more to 10k, then to 100k); each size gets a fresh "
        "`BriefingQA` (keyword index rebuilt, caches empty). LangChain's `Chroma` wraps the same client and "
        "chunks collection with the same embedder object; it does no keyword search, fusion or filtering of "
        "incomplete documents.",
    ]
    if info.get("notes"):
        lines += [f"* {note}" for note in info["notes"]]
    lines += [
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['os']}; load average {info['load_before']} "
        f"before, {info['load_after']} after (other work shares the machine; the load during each size's "
        "timing is in the table).",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="store sizes in chunks, ascending")
    parser.add_argument("--repeats", type=int, default=3, help="times the question list is timed (default 3)")
    parser.add_argument("--write", type=Path, help="write/replace the '## Query' section of this file")
    parser.add_argument("--profile", action="store_true", help="cProfile searches and answers at the largest size")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (default: a temp dir)")
    parser.add_argument("--quiet-load", type=float, default=1.5,
                        help="before timing a size, wait up to --quiet-wait s for the load average to drop under this")
    parser.add_argument("--quiet-wait", type=float, default=0.0)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))

    clean_environment()
    from ingest.pipeline import ingest
    from service.chain import BriefingQA
    from service.embeddings import make_embedder
    from service.settings import Settings
    from service.store import open_store

    began = time.perf_counter()
    info: dict[str, Any] = {
        "machine": machine(), "versions": versions(("langchain-text-splitters",)), "load_before": load(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "sizes": sizes, "repeats": args.repeats,
    }
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-query-"))
    clock = IndexClock()
    results: list[SizeResult] = []
    try:
        settings = Settings(store_dir=base / "store")
        info.update(embedder=settings.embedder, mode=settings.retrieval_mode, fusion=settings.fusion,
                    keyword_weight=settings.keyword_weight, k=settings.k, candidates=settings.candidates)
        embedder = make_embedder(settings.embedder, settings.embed_batch_size)
        store = open_store(settings, embedder)
        report = ingest(settings, embedder=embedder, store=store)  # the bundled briefing
        if report.errors:
            raise SystemExit(f"ingest of the briefing failed: {report.errors}")
        info["briefing_chunks"] = store.count_chunks()
        items = gold_items(briefing_corpus(store))
        info["questions"] = len(items)
        info["timed"] = len(items) * args.repeats
        distractors = Distractors(base / "corpus", settings.chunk_chars, settings.chunk_overlap_sentences)
        for size in sizes:
            print(f"== {size:,} chunks", file=sys.stderr, flush=True)
            distractors.grow(size - info["briefing_chunks"])
            started = time.perf_counter()
            report = ingest(settings, [distractors.folder], embedder=embedder, store=store)
            ingest_s = time.perf_counter() - started
            if report.errors:
                raise SystemExit(f"ingest of the distractors failed: {report.errors[:3]}")
            chunks = store.count_chunks()
            print(f"   ingested in {ingest_s:.1f} s; store holds {chunks:,} chunks ({distractors.describe()})",
                  file=sys.stderr, flush=True)
            quiet = wait_for_quiet(args.quiet_load, args.quiet_wait)
            qa = BriefingQA(settings, embedder=embedder, store=store)
            started = time.perf_counter()
            n_builds = len(clock.builds)
            qa.load()
            load_s = time.perf_counter() - started
            index_s = sum(clock.builds[n_builds:])
            lc = langchain_store(store, settings, embedder)
            ours, ours_missed = recall(
                lambda q: [p.to_dict() for p in qa.searcher.search(q, settings.k)], items)
            theirs, theirs_missed = recall(langchain_hits(lc, settings.k), items)
            profile = args.profile and size == sizes[-1]
            timings, refusals, profile_text = measure_size(qa, lc, embedder, items, args.repeats, profile)
            peak, current = rss_mb()
            result = SizeResult(
                chunks, chunks - info["briefing_chunks"], ingest_s, report.texts_embedded, load_s, index_s,
                timings, {"ours": ours, "langchain": theirs}, {"ours": ours_missed, "langchain": theirs_missed},
                peak, current, f"{quiet} → {load()}", refusals, profile_text,
            )
            results.append(result)
            print(
                f"   retrieval p50 {pct(timings['retrieval'], 50):.1f} p95 {pct(timings['retrieval'], 95):.1f} ms; "
                f"langchain p50 {pct(timings['langchain'], 50):.1f}; answer(new) p50 "
                f"{pct(timings['answer_new'], 50):.1f} p95 {pct(timings['answer_new'], 95):.1f}; "
                f"recall dev {ours['dev']:.3f} / lc {theirs['dev']:.3f}; all {ours['all']:.3f} / lc {theirs['all']:.3f}; "
                f"index {index_s:.2f} s; peak RSS {peak:,.0f} MB",
                file=sys.stderr, flush=True,
            )
            del qa, lc
        info["corpus"] = distractors.describe()
        info["load_after"] = load()
        info["total_min"] = (time.perf_counter() - began) / 60
        section = render(results, info)
        print(section)
        if args.write:
            write_section(args.write, section)
            print(f"wrote the {SECTION!r} section of {args.write}", file=sys.stderr)
        for r in results:
            if r.profile:
                print(r.profile)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
