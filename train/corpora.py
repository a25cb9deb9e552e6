"""Which corpora the scorer is trained on, built from `../shared/qa/raw` (see its README for the data
sets and their licences). Only the `train` articles of SQuAD 2.0 and XQuAD are used; their `dev`
articles are what `briefing eval-qa` measures, never trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from train.data import Corpus, sample_articles, selqa, squad_format

# XQuAD's pairings, question language - document language. The five that eval-qa measures, and the
# English questions over Chinese and Russian documents that a briefing's cited sources in their own
# language meet.
XQUAD_PAIRS = ("en-en", "zh-zh", "ru-ru", "zh-en", "ru-en", "en-zh", "en-ru")


def corpora(
    raw: Path, split: str = "train", cmrc_questions: int = 3000, seed: int = 0
) -> dict[str, Callable[[], Corpus]]:
    """Name -> a function building the corpus (built only when its rows are not cached)."""
    out: dict[str, Callable[[], Corpus]] = {
        f"squad2-{split}": lambda: squad_format(
            raw / f"squad2-{split}.json", f"squad2-{split}", "en", f"sq{split[0]}"
        ),
    }
    for pair in XQUAD_PAIRS:
        q, d = pair.split("-")

        def build(q: str = q, d: str = d, pair: str = pair) -> Corpus:
            return squad_format(
                raw / f"xquad.{d}-{split}.json",
                f"xquad-{split}-{pair}",
                d,
                f"xq{split[0]}{d}",
                questions_from=raw / f"xquad.{q}-{split}.json" if q != d else None,
                question_lang=q,
            )

        out[f"xquad-{split}-{pair}"] = build
    if split == "train":
        out["cmrc-train"] = lambda: sample_articles(
            squad_format(raw / "cmrc2018_train.json", "cmrc-train", "zh", "cmrc"), cmrc_questions, seed
        )
        out["selqa"] = lambda: _selqa(raw)
    return out


def _selqa(raw: Path) -> Corpus:
    dev = selqa(raw / "selqa-ass-dev.json", "selqa", "seld")
    test = selqa(raw / "selqa-ass-test.json", "selqa", "selt")
    return Corpus("selqa", "en", {**dev.documents, **test.documents}, dev.questions + test.questions)
