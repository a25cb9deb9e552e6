"""`make train`: rebuild the answer scorer from ../shared/qa, seeded, and write it beside the engine.

    .venv/bin/python -m train [--qa-dir ../shared/qa] [--out service/engine/models] [--seed 0]
                              [--cache var/train/rows] [--folds 5] [--curve]

1. Harvest: each training corpus (SQuAD 2.0 and XQuAD `train` articles, CMRC 2018, SelQA) is ingested
   into a throwaway store and every question searched as the service searches it (`harvest.py`);
   rows are cached by the code that made them.
2. Cross-validate by article: out-of-fold probabilities for every row; the answer policy (refusal
   thresholds, which runners-up are cited) is chosen on them.
3. Fit the unit model and the direct-answer span model on every training row; write
   `answer-units.txt`, `direct-answer.txt` and `answer-scorer.json` (features, policy, the data and the
   cross-validated figures), which docs/model-card.md reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qa-dir", type=Path, default=ROOT.parent / "shared" / "qa")
    parser.add_argument("--out", type=Path, default=ROOT / "service" / "engine" / "models")
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "train" / "rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--curve", action="store_true", help="Also measure dev figures against the amount of training data."
    )
    args = parser.parse_args(argv)
    raw = args.qa_dir / "raw"
    if not raw.is_dir():
        parser.error(f"{raw}: not a folder (the human-written question sets: --qa-dir)")

    from train.corpora import corpora
    from train.fit import (
        Pool,
        fit_parts,
        fit_units,
        folds_by_article,
        out_of_fold,
        part_rows,
        parts_out_of_fold,
    )
    from train.policy import choose_policy
    from train.rows import cached_rows
    from train.spans import fit_spans

    started = time.perf_counter()
    np.random.seed(args.seed)

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    parts = {}
    for name, build in corpora(raw, "train", seed=args.seed).items():
        parts[name] = cached_rows(name, build, args.cache, ROOT, args.seed, log=log)
        log(f"{name}: {len(parts[name].questions)} questions, {len(parts[name].y)} candidate units")
    pool = Pool.of(list(parts.values()))
    folds = folds_by_article(pool.questions, args.folds, args.seed)
    log(
        f"{len(pool.questions)} questions, {len(pool.y)} rows, {len(set(q['article'] for q in pool.questions))} articles, "
        f"{args.folds} folds by article"
    )
    oof = out_of_fold(pool, folds, args.seed)
    log("out-of-fold unit probabilities done")
    F, answered = part_rows(pool, oof)
    a_oof = parts_out_of_fold(F, answered, folds, args.seed)
    log("out-of-fold part probabilities done")
    policy, figures = choose_policy(pool, oof, a_oof)
    log(f"policy: {policy}")
    model = fit_units(pool.X, pool.y, args.seed)
    part_model = fit_parts(F, answered, args.seed)
    span_model, span_figures = fit_spans(pool, oof, folds, args.seed, log=log)
    policy["direct_over"] = span_figures["threshold"]
    curve = None
    if args.curve:
        from train.curve import dev_rows, learning_curve

        curve = learning_curve(
            pool, dev_rows(raw, args.cache, ROOT, args.seed, log=log), policy, args.seed, log=log
        )
    log("final models fitted")

    from service.engine.direct import SPAN_FEATURES
    from service.engine.scorer import CARD, PART_MODEL, SPAN_MODEL, UNIT_MODEL
    from service.engine.signals import FEATURES, PART_FEATURES

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_model(str(args.out / UNIT_MODEL))
    part_model.save_model(str(args.out / PART_MODEL))
    span_model.save_model(str(args.out / SPAN_MODEL))
    card: dict[str, Any] = {
        "features": FEATURES,
        "part_features": PART_FEATURES,
        "span_features": SPAN_FEATURES,
        "policy": policy,
        "seed": args.seed,
        "folds": args.folds,
        "data": {
            name: {
                "questions": len(r.questions),
                "rows": int(len(r.y)),
                "positives": int(r.y.sum()),
                "answerable": sum(q["answerable"] for q in r.questions),
            }
            for name, r in parts.items()
        },
        "cross_validated": figures,
        "direct_answer": span_figures,
        "importance": _importance(model, FEATURES),
        "part_importance": _importance(part_model, PART_FEATURES),
        "seconds": round(time.perf_counter() - started),
    }
    if curve is not None:
        card["learning_curve"] = curve
    (args.out / CARD).write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"wrote {args.out}/{UNIT_MODEL}, {SPAN_MODEL}, {CARD}")
    return 0


def _importance(model: Any, names: list[str]) -> dict[str, float]:
    gain = model.feature_importance("gain")
    total = float(gain.sum()) or 1.0
    return {n: round(float(g) / total, 4) for g, n in sorted(zip(gain, names, strict=True), reverse=True)}


if __name__ == "__main__":
    sys.exit(main())
