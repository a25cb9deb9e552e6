"""What a briefing scope costs: questions asked of one briefing against the same questions asked of the
whole store, in a store of two briefings among unrelated prose.

One store: the bundled briefing, the second briefing of the tests (tests/fixtures/arctic/), and
bench/corpus.py's distractors up to `--chunks` chunks, ingested as `briefing ingest` does. Then, in
this process, `BriefingQA(settings).load()` as the service opens it, and for each question:

    retrieval, all         `HybridSearcher.search(question, k=5)` over the whole store (the baseline:
                           what every question cost before briefings were scopes)
    retrieval, scoped      the same with the briefing filter (`{"briefing": [ID]}`): the dense side
                           searched exactly among the briefing chunks' vectors held in memory, the
                           keyword side masked
    dense side, scoped     that dense side alone, both ways: Chroma's query with `where={"briefing": ID}`
                           (how a scope would be searched without the held vectors) and the held vectors
    answer, all            `BriefingQA.ask(question)`; a question about "the article" is then answered
                           once per briefing (two retrievals and two plans)
    answer, scoped         `BriefingQA.ask(question, briefing=ID)`

The questions are bench/questions.py's distinct analyst questions about the bundled briefing (never
one asked twice in a mode); the modes are interleaved question by question in rotating order, after
untimed warm-up questions, so caches and machine noise fall on all of them alike.

    .venv/bin/python -m bench.briefings [--chunks 10000] [--questions 120] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bench.common import ROOT, machine, versions, write_section  # noqa: E402

SECTION = "## Briefing scope"
ARCTIC = ROOT / "tests" / "fixtures" / "arctic" / "manifest.yaml"
BUNDLED = "north-korea-russia-2017"
MODES = ("retrieval, all", "retrieval, scoped", "answer, all", "answer, scoped",
         "dense side, scoped: Chroma filtered query", "dense side, scoped: held vectors")


def build(store: Path, chunks: int) -> tuple[object, dict[str, float]]:
    from bench.corpus import build_corpus
    from briefing_core.settings import Settings
    from ingest.pipeline import ingest

    settings = Settings(store_dir=store, chroma_url=None)
    timings = {}
    started = time.perf_counter()
    ingest(settings)
    report = ingest(settings, manifest_path=ARCTIC)
    assert not report.errors, report.errors
    timings["briefings"] = time.perf_counter() - started
    distractors = store.parent / "distractors"
    build_corpus(distractors, chunks)
    started = time.perf_counter()
    report = ingest(settings, paths=[distractors])
    timings["distractors"] = time.perf_counter() - started
    return settings, timings


def measure(settings: object, n: int) -> tuple[dict[str, list[float]], dict[str, list[float]], int]:
    from bench.questions import questions
    from service.engine.chain import BriefingQA
    from service.engine.answering import reply_language

    qa = BriefingQA(settings).load()  # type: ignore[arg-type]
    asked = questions(n + 10, seed=11)
    warm, timed = asked[:10], asked[10:]

    def run(mode: str, question: str) -> float:
        started = time.perf_counter()
        if mode == "retrieval, all":
            qa.searcher.search(question, 5)
        elif mode == "retrieval, scoped":
            qa.searcher.search(question, 5, {"briefing": [BUNDLED]})
        elif mode == "answer, all":
            qa.ask(question)
        elif mode == "dense side, scoped: Chroma filtered query":
            qa.store.query(qa.searcher.embedder.embed_query(question), 24, {"briefing": BUNDLED})
        elif mode == "dense side, scoped: held vectors":
            qa.searcher.nearest(qa.searcher.index, qa.searcher.embedder.embed_query(question), 24,
                                {"briefing": [BUNDLED]})
        else:
            qa.ask(question, briefing=BUNDLED)
        return (time.perf_counter() - started) * 1000

    for question in warm:
        for mode in MODES:
            run(mode, question)
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    article: dict[str, list[float]] = {"answer, all": [], "answer, scoped": []}
    other: dict[str, list[float]] = {"answer, all": [], "answer, scoped": []}
    for i, question in enumerate(timed):
        # Asked of the whole store, a question about a briefing as such is answered per briefing.
        per_briefing = qa.engine.about_the_briefing(question, question, reply_language(question))
        order = MODES[i % len(MODES):] + MODES[:i % len(MODES)]
        for mode in order:
            ms = run(mode, question)
            times[mode].append(ms)
            if mode in article:
                (article if per_briefing else other)[mode].append(ms)
    return times, article, other, qa.searcher.index.size


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def render(times: dict[str, list[float]], article: dict[str, list[float]], other: dict[str, list[float]],
           size: int, chunks: int, built: dict[str, float], n: int) -> str:
    info = machine()
    lines = [
        SECTION, "",
        "`.venv/bin/python -m bench.briefings --chunks "
        f"{chunks} --questions {n} --write docs/benchmarks.md`", "",
        f"A store of {size:,} chunks: the bundled briefing, the Arctic briefing of the tests and unrelated "
        "prose. Each question asked of the whole store (the baseline: what a question cost before briefings "
        "were scopes) and of the bundled briefing alone, modes interleaved, milliseconds:", "",
        "| mode | questions | p50 | p95 | mean |", "| --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        values = times[mode]
        lines.append(f"| {mode} | {len(values)} | {_p(values, 0.5):.1f} | {_p(values, 0.95):.1f} | "
                     f"{statistics.fmean(values):.1f} |")
    for label, group in (("about a briefing as such", article), ("other questions", other)):
        for mode, values in group.items():
            if values:
                lines.append(f"| {mode}, {label} | {len(values)} | {_p(values, 0.5):.1f} | "
                             f"{_p(values, 0.95):.1f} | {statistics.fmean(values):.1f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += [
        "",
        "Asked of the whole store of two briefings, a question about a briefing as such (\"the article\", its "
        "author, its sources, its argument) is answered once per briefing, so it costs about two scoped answers. "
        "The dense-side rows include the query embedding (about 2 ms); the held vectors are every briefing "
        "chunk's, a few hundred a briefing.",
        "",
        f"Built in {built['briefings']:.1f} s (two briefings) + {built['distractors']:.1f} s (distractors); "
        f"peak RSS {peak:.0f} MB. Machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']}, {info['os']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=10000, help="distractor chunks (default 10000)")
    parser.add_argument("--questions", type=int, default=120, help="timed questions per mode (default 120)")
    parser.add_argument("--write", type=Path, help=f"write/replace the '{SECTION}' section of this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-briefings-") as tmp:
        settings, built = build(Path(tmp) / "store", args.chunks)
        times, article, other, size = measure(settings, args.questions)
    section = render(times, article, other, size, args.chunks, built, args.questions)
    print(section)
    if args.write:
        write_section(args.write, section, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
