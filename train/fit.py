"""Fitting the scorer and choosing its thresholds, by article.

The unit model is LightGBM over `signals.FEATURES` (a unit holds an annotator's answer or not). Its
out-of-fold probabilities, over folds that keep each article's questions together, decide the
answer policy: the probability under which a part is refused, and how close to the best a runner-up
must come to be cited too. Nothing is chosen on a question whose article the model was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.engine.signals import CATEGORICAL, FEATURES
from train.harvest import Rows

PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
}
ROUNDS = 400


@dataclass
class Pool:
    """Every corpus's rows in one table; `group` indexes `questions` across corpora."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    questions: list[dict[str, Any]]
    units: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, parts: list[Rows]) -> Pool:
        X, y, g, qs, us = [], [], [], [], []
        for rows in parts:
            X.append(rows.X)
            y.append(rows.y)
            g.append(rows.group + len(qs))
            qs += rows.questions
            us += rows.units
        return cls(np.concatenate(X), np.concatenate(y), np.concatenate(g), qs, us)

    def rows_of(self, keep: np.ndarray) -> np.ndarray:
        """Row mask for a question mask."""
        return keep[self.group]


def folds_by_article(questions: list[dict[str, Any]], k: int, seed: int) -> np.ndarray:
    import random

    names = sorted({q["article"] for q in questions})
    random.Random(seed).shuffle(names)
    fold = {name: i % k for i, name in enumerate(names)}
    return np.array([fold[q["article"]] for q in questions])


def fit_units(
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
    params: dict[str, Any] | None = None,
    rounds: int = ROUNDS,
    weight: np.ndarray | None = None,
) -> Any:
    import lightgbm as lgb

    params = {**PARAMS, **(params or {}), "seed": seed}
    data = lgb.Dataset(
        X,
        y.astype(np.float32),
        weight=weight,
        feature_name=list(FEATURES),
        categorical_feature=[c for c in CATEGORICAL],
        free_raw_data=False,
    )
    return lgb.train(params, data, num_boost_round=rounds)


def out_of_fold(
    pool: Pool,
    folds: np.ndarray,
    seed: int,
    params: dict[str, Any] | None = None,
    rounds: int = ROUNDS,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    p = np.zeros(len(pool.y), np.float64)
    for f in sorted(set(folds.tolist())):
        test = pool.rows_of(folds == f)
        model = fit_units(
            pool.X[~test], pool.y[~test], seed, params, rounds, None if weight is None else weight[~test]
        )
        p[test] = model.predict(pool.X[test])
    return p


@dataclass
class Ranked:
    """Per question: its rows' probabilities and labels, best first, and how likely the question is
    to be answered by them (`a`: the part model's probability, or the best unit's)."""

    p: list[np.ndarray]
    y: list[np.ndarray]
    rows: list[np.ndarray]
    a: np.ndarray | None = None
    veto: np.ndarray | None = None
    """Questions a hand check refuses whatever their probability."""

    def answerable(self, qi: int) -> float:
        if self.veto is not None and self.veto[qi]:
            return -1.0  # under any threshold
        if self.a is not None:
            return float(self.a[qi])
        return float(self.p[qi][0]) if len(self.p[qi]) else 0.0


def rank(pool: Pool, p: np.ndarray, a: np.ndarray | None = None) -> Ranked:
    order = np.argsort(pool.group, kind="stable")
    bounds = np.searchsorted(pool.group[order], np.arange(len(pool.questions) + 1))
    out = Ranked([], [], [], a)
    for qi in range(len(pool.questions)):
        idx = order[bounds[qi] : bounds[qi + 1]]
        idx = idx[np.argsort(-p[idx], kind="stable")]
        out.p.append(p[idx])
        out.y.append(pool.y[idx])
        out.rows.append(idx)
    return out


# -- the part model: is the question answered by its best units at all ------------------------------

PART_LABEL_TOP = 2
"""A question counts as answered when one of its best two units holds the answer."""


def part_rows(pool: Pool, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per question: its `signals.PART_FEATURES` row and whether it is answered by its best units."""
    from service.engine.signals import PART_FEATURES, part_features

    ranked = rank(pool, p)
    F = np.zeros((len(pool.questions), len(PART_FEATURES)), np.float32)
    y = np.zeros(len(pool.questions), np.float32)
    for qi in range(len(pool.questions)):
        idx = ranked.rows[qi]
        F[qi] = part_features(p[idx], pool.X[idx])
        y[qi] = float(pool.questions[qi]["answerable"] and bool(ranked.y[qi][:PART_LABEL_TOP].any()))
    return F, y


def fit_parts(F: np.ndarray, y: np.ndarray, seed: int) -> Any:
    import lightgbm as lgb

    from service.engine.signals import CATEGORICAL, PART_FEATURES

    params = {**PARAMS, "seed": seed, "num_leaves": 15, "min_data_in_leaf": 30, "learning_rate": 0.03}
    data = lgb.Dataset(
        F, y, feature_name=list(PART_FEATURES), categorical_feature=[f"top_{c}" for c in CATEGORICAL]
    )
    return lgb.train(params, data, num_boost_round=300)


def parts_out_of_fold(F: np.ndarray, y: np.ndarray, folds: np.ndarray, seed: int) -> np.ndarray:
    a = np.zeros(len(y))
    for f in sorted(set(folds.tolist())):
        test = folds == f
        a[test] = fit_parts(F[~test], y[~test], seed).predict(F[test])
    return a


@dataclass
class Policy:
    refuse_under: float
    """A part whose best unit's probability is under this is not covered."""
    cite_share: float
    """A runner-up is cited too when its probability is at least this share of the best one's."""
    cite_floor: float
    """... and at least this probability."""
    max_cited: int = 3

    def cited(self, p: np.ndarray, answerable: float | None = None) -> int:
        """How many of the best-first units are cited (0: refused)."""
        if len(p) == 0 or (p[0] if answerable is None else answerable) < self.refuse_under:
            return 0
        n = 1
        while n < min(self.max_cited, len(p)) and p[n] >= max(self.cite_floor, self.cite_share * p[0]):
            n += 1
        return n


def outcomes(
    ranked: Ranked, questions: list[dict[str, Any]], policy: Policy, keep: np.ndarray | None = None
) -> dict[str, float]:
    """The eval's metrics as the unit labels predict them: answered right when a cited unit holds the
    answer, refused right when nothing is cited for an unanswerable question."""
    ans = una = correct = refused_ans = refused_una = cited = answered = 0
    for qi, q in enumerate(questions):
        if keep is not None and not keep[qi]:
            continue
        n = policy.cited(ranked.p[qi], ranked.answerable(qi))
        if q["answerable"]:
            ans += 1
            correct += bool(n and ranked.y[qi][:n].any())
            refused_ans += n == 0
        else:
            una += 1
            refused_una += n == 0
        cited += n
        answered += n > 0
    total = ans + una
    return {
        "questions": total,
        "answer_accuracy": correct / ans if ans else float("nan"),
        "refusal_accuracy": refused_una / una if una else float("nan"),
        "false_refusal_rate": refused_ans / ans if ans else float("nan"),
        "overall_accuracy": (correct + refused_una) / total if total else float("nan"),
        "unanswerable_share": una / total if total else float("nan"),
        "citations_per_answer": cited / answered if answered else 0.0,
    }
