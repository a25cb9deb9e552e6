"""The answer policy, chosen on out-of-fold probabilities: when to refuse and what else to cite.

Refusing is decided per part by the part model's probability; the threshold is the learned step's
own, chosen here without the hand checks, which the answerer may add on top where they beat it on
held-out sets (docs/quality.md; their effect on these folds, simulated from the best unit's features,
is reported beside). The threshold maximises balanced accuracy (the mean of the share of answerable questions answered with a
unit that holds the answer and the share of the others refused, so it does not move with how many
unanswerable questions a set happens to hold), averaged over the data sets so that each counts the
same, while refusing at most
`MAX_FALSE_REFUSALS` of the answerable questions (also averaged): an analyst refused a question the
sources answer has been failed as surely as one given a wrong answer. The questions the sources do not
answer are SQuAD 2.0's own and, in every data set and pairing of languages, the answerable questions
asked again with their article left out (`harvest.py`). Questions and evidence in different languages
get their own threshold (their probabilities run lower).

A runner-up is cited when it scores at least `cite_share` of the best unit: the share is the largest
accuracy gain for at most `MAX_CITATIONS` cited units per answer on average.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.fit import Policy, Pool, outcomes, rank

MAX_CITATIONS = 1.35
MAX_FALSE_REFUSALS = 0.05
"""The most answerable questions refused, on average over the data sets, that the learned threshold may
cost: the kept hand checks refuse more on top (about as many again on these folds), and the gate on
false refusals is 0.15."""
THRESHOLDS = [round(x, 3) for x in np.arange(0.0, 0.6, 0.01)]
SHARES = [1.01, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2]
FLOORS = [0.02, 0.05, 0.1]


def vetoed(pool: Pool, ranked: Any, rules: frozenset[str]) -> np.ndarray:
    """For each question, whether a kept hand check (`plan.DEFAULT_RULES`) would mark it uncovered,
    read off its best unit's features as the planner's checks read the unit: so the thresholds are
    chosen for the answerer as it runs, checks and all."""
    from service.engine.cues import SPECIFIC_WEIGHT
    from service.engine.signals import KINDS, column

    out = np.zeros(len(pool.questions), dtype=bool)
    for qi, q in enumerate(pool.questions):
        if not len(ranked.rows[qi]):
            continue
        row = pool.X[ranked.rows[qi][0]]

        def held(name: str, row: np.ndarray = row) -> float:
            return float(row[column(name)])

        same = q["lang"] == q["doc_lang"]
        veto = False
        if "check_type" in rules and held("answer_type") > 0:
            veto |= held("type_held") == 0 or held("type_nearby") == 0
        if "check_numbers" in rules:
            veto |= held("numbers_held") == 0
        if same and q["lang"] == "en":
            if "check_names" in rules:
                veto |= held("names_held") < 1
            if "check_asked" in rules:
                veto |= held("asked_held") == 0
            if "check_yesno" in rules and KINDS[int(held("kind"))] == "yesno":
                veto |= held("missing_paragraph_max") >= SPECIFIC_WEIGHT
            if "check_subject" in rules:
                veto |= held("subject_acts") == 0
        out[qi] = bool(veto)
    return out


def _groups(pool: Pool) -> dict[str, np.ndarray]:
    same = np.array([q["lang"] == q["doc_lang"] for q in pool.questions])
    return {"same": same, "across": ~same}


def _balanced(o: dict[str, float]) -> float:
    """Answered right (over answerable questions) and refused right (over the others), weighed alike:
    unlike overall accuracy it does not move with how many unanswerable questions a set happens to hold."""
    return 0.5 * (
        o["answer_accuracy"] + (o["refusal_accuracy"] if not np.isnan(o["refusal_accuracy"]) else 0.0)
    )


def family(question: dict[str, Any]) -> str:
    """The data set a question comes from (squad2, xquad, cmrc, selqa), whatever its split or pairing."""
    return str(question["corpus"]).split("-")[0]


def choose_policy(
    pool: Pool, p: np.ndarray, a: np.ndarray | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`p`: out-of-fold unit probabilities; `a`: out-of-fold part probabilities (None: a part is as
    answerable as its best unit)."""
    from service.engine.plan import DEFAULT_RULES

    ranked = rank(pool, p, a)
    groups = _groups(pool)
    families = np.array([family(q) for q in pool.questions])
    thresholds: dict[str, float] = {}
    for name, keep in groups.items():
        present = sorted(set(families[keep].tolist()))
        best, best_t = -1.0, 0.0
        for t in THRESHOLDS:
            # Every data set counts the same, however many questions it has.
            per = [
                outcomes(ranked, pool.questions, Policy(t, 1.01, 1.0, 1), keep & (families == f))
                for f in present
            ]
            score = float(np.mean([_balanced(o) for o in per]))
            refused = float(np.mean([o["false_refusal_rate"] for o in per]))
            if refused <= MAX_FALSE_REFUSALS and score > best + 1e-9:
                best, best_t = score, t
        thresholds[name] = best_t
    choice = (1.01, 0.05)
    best_acc = -1.0
    for share in SHARES:
        for floor in FLOORS:
            accs, cites = [], []
            for name, keep in groups.items():
                o = outcomes(ranked, pool.questions, Policy(thresholds[name], share, floor), keep)
                accs.append(o["answer_accuracy"] * keep.sum())
                cites.append(o["citations_per_answer"] * keep.sum())
            acc, cite = sum(accs) / len(pool.questions), sum(cites) / len(pool.questions)
            if cite <= MAX_CITATIONS and acc > best_acc + 1e-9:
                best_acc, choice = acc, (share, floor)
    policy = {
        "refuse_under": float(thresholds["same"]),
        "refuse_under_across": float(thresholds["across"]),
        "cite_share": float(min(1.0, choice[0])),
        "cite_floor": float(choice[1]),
    }
    out = {"learned": figures(pool, ranked, policy)}
    # The same with the kept hand checks on top (as simulated from the best unit's features).
    ranked.veto = vetoed(pool, ranked, DEFAULT_RULES)
    out["with_checks"] = figures(pool, ranked, policy)
    return policy, out


def as_policy(policy: dict[str, Any], across: bool) -> Policy:
    return Policy(
        policy["refuse_under_across" if across else "refuse_under"],
        policy["cite_share"],
        policy["cite_floor"],
    )


def figures(pool: Pool, ranked: Any, policy: dict[str, Any]) -> dict[str, Any]:
    """Per corpus, the out-of-fold figures at the chosen policy; questions asked with their own
    article left out count among the unanswerable ones ("left out")."""
    from sklearn.metrics import roc_auc_score

    out: dict[str, Any] = {}
    names = sorted({q["corpus"] for q in pool.questions})
    for name in names:
        keep = np.array([q["corpus"] == name for q in pool.questions])
        across = (
            pool.questions[int(np.argmax(keep))]["lang"] != pool.questions[int(np.argmax(keep))]["doc_lang"]
        )
        real = keep & np.array([not q["left_out"] for q in pool.questions])
        entry = {
            k: round(v, 4)
            for k, v in outcomes(ranked, pool.questions, as_policy(policy, across), real).items()
        }
        left = keep & ~real
        if left.any():
            entry["left_out_refused"] = round(
                outcomes(ranked, pool.questions, as_policy(policy, across), left)["refusal_accuracy"], 4
            )
        for key, mask in (("answerable_auc", real), ("answerable_auc_with_left_out", keep)):
            labels = [pool.questions[i]["answerable"] for i in np.flatnonzero(mask)]
            if 0 < sum(labels) < len(labels):
                scores = [ranked.answerable(i) for i in np.flatnonzero(mask)]
                entry[key] = round(float(roc_auc_score(labels, scores)), 4)
        out[name] = entry
    return out
