"""The learning curve: the scorer fitted on a growing share of the training articles, measured on the
`dev` articles of SQuAD 2.0 and XQuAD (never trained on), as the learned step alone answers them
(the unit labels say whether a cited unit holds the answer; the hand rules are not applied).

Each share takes whole articles, in one seeded order, so a smaller share is a subset of a larger.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from train.fit import Pool, fit_parts, fit_units, outcomes, part_rows, rank
from train.harvest import Rows
from train.policy import as_policy

SHARES = (0.1, 0.25, 0.5, 1.0)


def learning_curve(
    pool: Pool, dev: dict[str, Rows], policy: dict[str, Any], seed: int, log: Any = print
) -> list[dict[str, Any]]:
    names = sorted({q["article"] for q in pool.questions})
    random.Random(seed).shuffle(names)
    out = []
    for share in SHARES:
        keep_articles = set(names[: max(1, round(share * len(names)))])
        keep = np.array([q["article"] in keep_articles for q in pool.questions])
        rows = pool.rows_of(keep)
        sub = Pool(
            pool.X[rows],
            pool.y[rows],
            _regroup(pool.group[rows]),
            [q for q, k in zip(pool.questions, keep, strict=True) if k],
        )
        units = fit_units(sub.X, sub.y, seed)
        F, answered = part_rows(sub, units.predict(sub.X))
        parts = fit_parts(F, answered, seed)
        entry: dict[str, Any] = {
            "share": share,
            "questions": len(sub.questions),
            "articles": len(keep_articles),
        }
        for name, rows_dev in dev.items():
            dp = Pool.of([rows_dev])
            p = units.predict(dp.X)
            Fd, _ = part_rows(dp, p)
            ranked = rank(dp, p, parts.predict(Fd))
            real = np.array([not q["left_out"] for q in dp.questions])
            across = dp.questions[0]["lang"] != dp.questions[0]["doc_lang"]
            o = outcomes(ranked, dp.questions, as_policy(policy, across), real)
            entry[name] = {
                k: round(o[k], 4)
                for k in ("answer_accuracy", "refusal_accuracy", "false_refusal_rate", "overall_accuracy")
                if not np.isnan(o[k])
            }
            # Threshold-free: how often the best unit of an answerable question holds its answer.
            answerable = [qi for qi in np.flatnonzero(real) if dp.questions[qi]["answerable"]]
            entry[name]["best_unit_holds_answer"] = (
                round(float(np.mean([bool(len(ranked.y[qi]) and ranked.y[qi][0]) for qi in answerable])), 4)
                if answerable
                else None
            )
        log(
            f"learning curve: {share:.0%} of the articles ({entry['questions']} questions) -> "
            + ", ".join(
                f"{n}: {v.get('answer_accuracy')} (best unit {v.get('best_unit_holds_answer')})"
                for n, v in entry.items()
                if isinstance(v, dict)
            )
        )
        out.append(entry)
    return out


def _regroup(group: np.ndarray) -> np.ndarray:
    """Question indices renumbered 0..n-1 in order of first appearance."""
    _, inverse = np.unique(group, return_inverse=True)
    return inverse.astype(np.int32)


def dev_rows(raw: Path, cache: Path, root: Path, seed: int, log: Any = print) -> dict[str, Rows]:
    from train.corpora import corpora
    from train.rows import cached_rows

    return {
        name: cached_rows(name, build, cache, root, seed, log=log)
        for name, build in corpora(raw, "dev", seed=seed).items()
        if name
        in {
            "squad2-dev",
            "xquad-dev-en-en",
            "xquad-dev-zh-en",
            "xquad-dev-ru-en",
            "xquad-dev-zh-zh",
            "xquad-dev-ru-ru",
        }
    }
