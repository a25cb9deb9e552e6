"""Every gold set in one table, for one or more configurations of the answerer, in one run.

The briefing's sets (the published dev and analyst sets, the held-out sets of our own, the second
briefing's) and the human-written sets of eval/qa (SQuAD 2.0 and XQuAD dev, each beside the
briefing) are asked in process and scored by eval's own metrics. Stores are built once a run and kept
under --stores, so comparing configurations costs only the answering.

A configuration is a set of settings (`--config NAME:FIELD=VALUE,FIELD=VALUE`, repeatable; the
default configuration is the settings as they are). This is how docs/quality.md decides which hand
rules stay beside the learned scorer: each rule switched off in turn, on the held-out sets.

    .venv/bin/python -m bench.answer_quality [--qa-dir eval/qa] [--sets dev,analyst,squad2,...]
        [--config off-names:plan_rules=-names] [--out var/quality] [--stores var/stores]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.shell.evaluation import QA_SETS as _EVAL_QA_SETS  # noqa: E402 - after the path set-up

ROOT = Path(__file__).resolve().parent.parent
ARCTIC = ROOT / "tests" / "fixtures" / "arctic"

# name: (gold file, store, scope). A store is the bundled briefing plus: nothing ("briefing"), the
# Arctic briefing ("arctic"), or a folder of the QA sets' documents ("qa:<folder>", eval/qa).
BRIEFING_SETS = {
    "dev": ("eval/gold/dev.jsonl", "briefing", None),
    "analyst": ("eval/gold/analyst.jsonl", "briefing", None),
    "heldout_r3": ("eval/gold/heldout_r3.jsonl", "briefing", None),
    "heldout_r4": ("eval/gold/heldout_r4.jsonl", "briefing", None),
    "heldout_r5": ("eval/gold/heldout_r5.jsonl", "briefing", None),
    "analyst_holdout": ("eval/gold/analyst_holdout.jsonl", "briefing", None),
    "extra": ("eval/gold/extra.jsonl", "briefing", None),
    "holdout": ("eval/gold/holdout.jsonl", "briefing", None),
    "arctic": (str(ARCTIC / "gold.jsonl"), "arctic", None),
}
# The sets `briefing eval-qa` scores, their dev split; each store named after its documents' folder.
QA_SETS = {
    name: (gold.format(split="dev"), "qa:" + docs.format(split="dev"))
    for name, (gold, docs) in _EVAL_QA_SETS.items()
}
COLUMNS = (
    "answer_accuracy",
    "refusal_accuracy",
    "false_refusal_rate",
    "overall_accuracy",
    "evidence_coverage",
    "citation_precision",
)
SHORT = {
    "answer_accuracy": "acc",
    "refusal_accuracy": "ref",
    "false_refusal_rate": "frr",
    "overall_accuracy": "all",
    "evidence_coverage": "cov",
    "citation_precision": "prec",
}


def build_store(name: str, folder: Path, qa_dir: Path) -> Path:
    """The store's folder, built when it is not there yet (a finished build leaves a marker)."""
    from briefing_core.settings import Settings
    from ingest.pipeline import ingest

    done = folder / "built"
    if done.is_file():
        return folder
    settings = Settings(store_dir=folder / "store", chroma_url=None, ingest_overlap=False)
    ingest(settings)
    if name == "arctic":
        ingest(settings, manifest_path=ARCTIC / "manifest.yaml")
    elif name.startswith("qa:"):
        docs = sorted((qa_dir / name[3:]).glob("*.txt"))
        report = ingest(settings, docs)
        if report.errors:
            raise SystemExit(f"{name}: {report.errors[:3]}")
    done.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    return folder


def parse_config(text: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = text.partition(":")
    updates: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        field, _, value = item.partition("=")
        updates[field] = value
    return name, updates


def run(
    sets: list[str], configs: list[tuple[str, dict[str, Any]]], qa_dir: Path, stores: Path, out: Path
) -> dict[str, dict[str, dict[str, Any]]]:
    from briefing_core.settings import Settings
    from briefing_core.store import open_store
    from eval.runner import InProcessAsker
    from eval.runner import run as run_gold
    from service.engine.chain import BriefingQA

    table: dict[str, dict[str, dict[str, Any]]] = {}
    plan = []
    for name in sets:
        if name in BRIEFING_SETS:
            gold, store, scope = BRIEFING_SETS[name]
            plan.append((name, ROOT / gold, store, scope))
        else:
            gold, store = QA_SETS[name]
            plan.append((name, qa_dir / gold, store, None))
    for config, updates in configs:
        table[config] = {}
        by_store: dict[str, list[tuple[str, Path, str | None]]] = {}
        for name, gold, store, scope in plan:
            by_store.setdefault(store, []).append((name, gold, scope))
        for store, members in by_store.items():
            folder = build_store(store, stores / store.replace(":", "-").replace("/", "-"), qa_dir)
            base = Settings(store_dir=folder / "store", chroma_url=None, ingest_overlap=False)
            settings = Settings(**{**base.model_dump(), **updates})
            qa = BriefingQA(settings).load()
            corpus = {r.doc_id: r.text for r in open_store(settings).documents()}
            for name, gold, scope in members:
                started = time.perf_counter()
                result = run_gold(
                    gold,
                    InProcessAsker(qa),
                    corpus,
                    out_dir=out / config / name,
                    meta={"config": updates},
                    briefing=scope,
                )
                summary = result.summary
                summary["seconds"] = round(time.perf_counter() - started, 1)
                table[config][name] = summary
                print(
                    f"{config:>14} {name:<16} "
                    + " ".join(f"{SHORT[c]} {_cell(summary.get(c))}" for c in COLUMNS)
                    + f"  ({summary['seconds']} s)",
                    flush=True,
                )
    return table


def _cell(value: Any) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def markdown(table: dict[str, dict[str, dict[str, Any]]]) -> str:
    configs = list(table)
    sets = list(next(iter(table.values())))
    lines = ["| set | metric | " + " | ".join(configs) + " |", "| --- | --- |" + " --- |" * len(configs)]
    for name in sets:
        for c in COLUMNS:
            values = [table[k][name].get(c) for k in configs]
            if all(v is None for v in values):
                continue
            lines.append(f"| {name} | {c} | " + " | ".join(_cell(v).strip() for v in values) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qa-dir", type=Path, default=ROOT / "eval" / "qa")
    parser.add_argument("--sets", default=",".join([*BRIEFING_SETS, *QA_SETS]))
    parser.add_argument("--config", action="append", default=[], help="NAME:FIELD=VALUE,... (repeatable)")
    parser.add_argument("--stores", type=Path, default=ROOT / "var" / "stores")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "quality")
    args = parser.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    unknown = [s for s in sets if s not in BRIEFING_SETS and s not in QA_SETS]
    if unknown:
        parser.error(f"unknown sets {unknown}; known: {[*BRIEFING_SETS, *QA_SETS]}")
    configs = [parse_config(c) for c in args.config] or [("default", {})]
    table = run(sets, configs, args.qa_dir, args.stores, args.out)
    text = markdown(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text + "\n")
    (args.out / "table.json").write_text(json.dumps(table, indent=2, default=str) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
