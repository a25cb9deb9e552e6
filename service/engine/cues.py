"""Cues in a question and in a unit that answering and its features both read: the thing a question
asks for, the topic it names after "about", whether a unit shows its subject speaking or acting.

Takes text (and units); gives tokens, weights and yes/no answers. Nothing here decides an answer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from service.engine.salience import matches, term_weights

# A noun this rare (Zipf 4 or less) names a specific concept ("sanctions", "warships"), which an
# answer mentions; commoner ones ("countries", "reasons", "steps") are categories answered by instances.
SPECIFIC_WEIGHT = 3.0
_ASKED = re.compile(
    r"^\W*(?:what|which|how many|how much)\s+(?P<phrase>(?:[\w’'-]+\s+){0,3}?)(?=(?:does|do|did|is|are|was|were|has|"
    r"have|had|can|could|will|would|should|took|take|were)\b)",
    re.IGNORECASE,
)


_ABOUT = re.compile(
    r"\b(?:about|regarding|concerning|on the (?:subject|question) of)\s+(?P<phrase>[^?,.;]+)", re.IGNORECASE
)


def about_terms(question: str) -> dict[str, float]:
    """The topic a question names after "about" / "regarding", its less common words with weights."""
    m = _ABOUT.search(question)
    if not m:
        return {}
    return {t: w for t, w in term_weights(m.group("phrase")).items() if w >= 2.6 and not t.isdigit()}


def asked_terms(question: str) -> list[str]:
    m = _ASKED.search(question)
    return sorted(tokens_of(m.group("phrase"))) if m else []


# A sentence that gives a reason ("because ...", "so if ...").
CAUSAL = re.compile(
    r"\b(?:because|since|so that|so if|therefore|thus|hence|as a result|due to|owing to|in order to|which is why)\b|"
    r"因为|所以|由于|因此|以便|потому что|так как|поэтому|из-за|вследствие|чтобы",
    re.IGNORECASE,
)


# Cues that a sentence reports what its subject said, thought or did.
STANCE = re.compile(
    r"\b(?:said|says|say|argu\w+|wrote|writes|conclud\w+|intoned|explain\w*|suggest\w*|emphasi[sz]\w*|"
    r"not(?:ed|es|ing)|prais\w*|call\w*|warn\w*|claim\w*|insist\w*|stated|statements?|declar\w+|announc\w+|"
    r"indicat\w+|react\w*|"
    r"respond\w*|propos\w*|offer\w*|recommend\w*|view\w*|consider\w*|believ\w*|gave|give|giving|headlines?|"
    r"interpretations?|appraisal|assessments?|opted|decid\w+|favou?r\w*|threaten\w*|did not miss)\b|[:,]\s*[“«\"„]",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def role_tokens() -> frozenset[str]:
    from service.engine.units import ROLE_WORDS

    return frozenset(tokens_of(" ".join(ROLE_WORDS.values())))


def tokens_of(text: str) -> set[str]:
    from briefing_core.text import tokenize

    return set(tokenize(text))


def label_tokens(unit: Any) -> set[str]:
    return tokens_of(unit.attributed_to) if unit.attributed_to else set()


def acts(subject: str, unit: Any) -> bool:
    """Whether the unit reports its subject saying, thinking or doing something: most of the
    subject's words (by weight) stand before a cue of speech or stance, or name the source the
    unit is attributed to."""
    from briefing_core.text import tokenize

    weights = {t: w for t, w in term_weights(subject).items() if w >= 1.0 and t not in role_tokens()}
    if not weights:
        return True  # "the author", "the article", "the subtitle": the article itself speaks
    total = sum(weights.values())

    def share(tokens: set[str]) -> float:
        return sum(w * matches(t, tokens) for t, w in weights.items()) / total

    if unit.attributed_to and share(set(tokenize(unit.attributed_to))) >= 0.5:
        return True
    text = unit.text
    return any(share(set(tokenize(text[: cue.start()]))) >= 0.5 for cue in STANCE.finditer(text))
