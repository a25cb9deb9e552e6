"""The answer scorer: the probability that a candidate unit answers a question part, learned from
human-written questions (`train/`, `docs/model-card.md`), over the features of `signals.py`.

Takes feature rows; gives, for each, a probability. The artifacts are LightGBM models in text form
committed in `models/` beside this module, with the answer policy chosen when they were trained; they
are read from disk on first use and never trained or downloaded by the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from briefing_core.errors import ScorerMissing

MODEL_DIR = Path(__file__).resolve().parent / "models"
UNIT_MODEL = "answer-units.txt"
PART_MODEL = "answer-parts.txt"
SPAN_MODEL = "direct-answer.txt"
CARD = "answer-scorer.json"


@dataclass(frozen=True)
class Policy:
    """How probabilities become an answer, chosen by cross-validation over training articles."""

    refuse_under: float = 0.1
    """A part whose best unit is less likely than this to hold the answer is not covered."""
    refuse_under_across: float = 0.1
    """The same when the question and the unit are in different languages."""
    cite_share: float = 0.5
    """A runner-up is cited when its score is at least this share of the best unit's."""
    cite_floor: float = 0.05
    """... and its probability at least this."""
    direct_over: float = 0.5
    """A direct answer span is given when the span model is at least this sure."""


class AnswerScorer:
    """The committed models, read from disk once. `units(X)` gives, for each row of
    `signals.FEATURES`, the probability that the unit answers; `spans(X)` the same for
    `direct.SPAN_FEATURES` rows and a direct answer."""

    def __init__(self, folder: Path) -> None:
        import json

        import lightgbm as lgb

        from service.engine.direct import SPAN_FEATURES
        from service.engine.signals import FEATURES

        card_path = folder / CARD
        unit_path = folder / UNIT_MODEL
        if not card_path.is_file() or not unit_path.is_file():
            raise ScorerMissing(
                f"no answer scorer in {folder}: run `make train` (it writes {UNIT_MODEL} and {CARD})"
            )
        self.folder = folder
        self.card = json.loads(card_path.read_text(encoding="utf-8"))
        from service.engine.signals import PART_FEATURES

        if (
            self.card.get("features") != FEATURES
            or self.card.get("part_features", PART_FEATURES) != PART_FEATURES
        ):
            raise ScorerMissing(
                f"the answer scorer in {folder} was trained on other features than this code "
                "computes: run `make train`"
            )
        self.policy = Policy(**self.card.get("policy", {}))
        self._units = lgb.Booster(model_file=str(unit_path))
        part_path = folder / PART_MODEL
        self._parts = lgb.Booster(model_file=str(part_path)) if part_path.is_file() else None
        span_path = folder / SPAN_MODEL
        self._spans = None
        if span_path.is_file() and self.card.get("span_features") == SPAN_FEATURES:
            self._spans = lgb.Booster(model_file=str(span_path))

    @classmethod
    def load(cls, folder: Path | None = None) -> AnswerScorer:
        """The scorer in `folder` (default: the packaged one), read once a process."""
        return _load(Path(folder or MODEL_DIR).resolve())

    def units(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0)
        return np.asarray(self._units.predict(X, num_threads=1), dtype=np.float64)

    def answerable(self, probabilities: np.ndarray, X: np.ndarray) -> float:
        """The probability that the part is answered by its best units: the part model over its units'
        probabilities and its best unit's row (`signals.part_features`); without a part model, the
        best unit's probability."""
        from service.engine.signals import part_features

        if len(probabilities) == 0:
            return 0.0
        if self._parts is None:
            return float(np.max(probabilities))
        row = part_features(np.asarray(probabilities), X)[None, :]
        return float(self._parts.predict(row, num_threads=1)[0])

    def spans(self, X: np.ndarray) -> np.ndarray | None:
        if self._spans is None:
            return None
        if len(X) == 0:
            return np.zeros(0)
        return np.asarray(self._spans.predict(X, num_threads=1), dtype=np.float64)


@lru_cache(maxsize=4)
def _load(folder: Path) -> AnswerScorer:
    return AnswerScorer(folder)
