"""The direct-answer span model: which short span of the cited units is the answer, and how sure.

Rows come from the out-of-fold unit probabilities, so a span is learned from the units the service
would really cite (the best three of each answerable question); a candidate is labelled 1 when it
equals an annotator's answer (SQuAD's normalisation). The threshold over which an answer begins with
its span is the lowest at which, out of fold, at least `PRECISION` of the spans given equal an
annotator's answer.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from train.fit import PARAMS, Pool, rank

TOP_UNITS = 3
PRECISION = 0.65
ROUNDS = 300


def span_rows(pool: Pool, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate rows of every answerable question (asked with its own article), their labels and
    their question indices."""
    from service.engine.analysis import analyse
    from service.engine.direct import SPAN_FEATURES, direct_kind, normalise_answer, span_features
    from service.engine.signals import QuestionView

    ranked = rank(pool, p)
    X, y, g = [], [], []
    for qi, q in enumerate(pool.questions):
        if not q["answerable"] or not len(ranked.rows[qi]):
            continue
        idx = ranked.rows[qi][:TOP_UNITS]
        analysis = analyse(q["question"], q["lang"])
        if not direct_kind(analysis):
            continue
        part = analysis.parts[0]
        view = QuestionView.of(
            q["question"], q["lang"], analysis.kind, part.answer_type if len(analysis.parts) == 1 else ""
        )
        units = [SimpleNamespace(text=pool.units[i]["text"]) for i in idx]
        found, rows = span_features(view, units, [float(x) for x in ranked.p[qi][:TOP_UNITS]])
        if not found:
            continue
        gold = {normalise_answer(t) for t in q["answers"]}
        X.append(rows)
        y += [normalise_answer(units[u].text[c.start : c.end]) in gold for u, c in found]
        g += [qi] * len(found)
    if not X:
        return np.zeros((0, len(SPAN_FEATURES)), np.float32), np.zeros(0), np.zeros(0, int)
    return np.concatenate(X), np.asarray(y, np.float32), np.asarray(g)


def _fit(X: np.ndarray, y: np.ndarray, seed: int) -> Any:
    import lightgbm as lgb

    from service.engine.direct import SPAN_CATEGORICAL, SPAN_FEATURES

    data = lgb.Dataset(X, y, feature_name=list(SPAN_FEATURES), categorical_feature=list(SPAN_CATEGORICAL))
    return lgb.train({**PARAMS, "seed": seed, "min_data_in_leaf": 30}, data, num_boost_round=ROUNDS)


def best_per_question(s: np.ndarray, y: np.ndarray, g: np.ndarray) -> dict[int, tuple[float, bool]]:
    out: dict[int, tuple[float, bool]] = {}
    for i in np.argsort(-s, kind="stable"):
        out.setdefault(int(g[i]), (float(s[i]), bool(y[i])))
    return out


def fit_spans(
    pool: Pool, oof: np.ndarray, folds: np.ndarray, seed: int, log: Any = print
) -> tuple[Any, dict[str, Any]]:
    X, y, g = span_rows(pool, oof)
    log(f"direct answers: {len(y)} candidate spans of {len(set(g.tolist()))} questions")
    s = np.zeros(len(y))
    row_fold = folds[g]
    for f in sorted(set(folds.tolist())):
        test = row_fold == f
        s[test] = _fit(X[~test], y[~test], seed).predict(X[test])
    best = best_per_question(s, y, g)
    threshold = 1.0
    for t in np.arange(0.05, 1.0, 0.05):
        shown = [ok for score, ok in best.values() if score >= t]
        if shown and np.mean(shown) >= PRECISION:
            threshold = round(float(t), 2)
            break
    figures: dict[str, Any] = {"threshold": threshold, "precision_target": PRECISION}
    for name in sorted({q["corpus"] for q in pool.questions}):
        mine = {qi: v for qi, v in best.items() if pool.questions[qi]["corpus"] == name}
        answerable = len({qi for qi in set(g.tolist()) if pool.questions[qi]["corpus"] == name})
        shown = [ok for score, ok in mine.values() if score >= threshold]
        figures[name] = {
            "factoid_questions": answerable,
            "given": round(len(shown) / answerable, 4) if answerable else None,
            "exact_when_given": round(float(np.mean(shown)), 4) if shown else None,
            "exact_best_span": round(float(np.mean([ok for _, ok in mine.values()])), 4) if mine else None,
        }
    return _fit(X, y, seed), figures
