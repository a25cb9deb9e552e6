"""Gold questions: reading and validating a gold file.

Every problem names the file and line, so a broken gold file is fixed in one pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from briefing_core.errors import GoldFileError
from briefing_core.store import ID_PATTERN

LANGS = ("en", "zh", "ru")
# A briefing id, as a manifest's `briefing` is written.
BRIEFING_ID = re.compile(ID_PATTERN)
BRIEFING_ID_RULE = "lower-case letters, digits, '.', '_', '-'; first a letter or digit; at most 128 long"


def valid_briefing_id(value: Any) -> bool:
    """A non-empty string of the manifest's id pattern (briefing_core.store.ID_PATTERN)."""
    return isinstance(value, str) and BRIEFING_ID.fullmatch(value) is not None


@dataclass
class GoldQuestion:
    id: str
    question: str
    answerable: bool
    lang: str
    facts: list[list[str]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    turns: list[str] | None = None
    max_chars: int | None = None
    briefing: str | None = None
    line: int = 0

    @property
    def kind(self) -> str:
        if self.turns and len(self.turns) > 1:
            return "multi-turn"
        return "answerable" if self.answerable else "unanswerable"

    @property
    def kinds(self) -> list[str]:
        """Every group the question counts in (a multi-turn question is also (un)answerable)."""
        groups = ["answerable" if self.answerable else "unanswerable"]
        if self.turns and len(self.turns) > 1:
            groups.append("multi-turn")
        return groups


def _problem(path: Path, line: int, message: str) -> GoldFileError:
    return GoldFileError(f"{path}:{line}: {message}")


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def parse_line(path: Path, line_no: int, raw: str) -> GoldQuestion:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _problem(path, line_no, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise _problem(path, line_no, "expected a JSON object")
    for name in ("id", "question", "answerable", "lang"):
        if name not in obj:
            raise _problem(path, line_no, f"missing field {name!r}")
    if not isinstance(obj["id"], str) or not obj["id"].strip():
        raise _problem(path, line_no, "'id' must be a non-empty string")
    if not isinstance(obj["question"], str) or not obj["question"].strip():
        raise _problem(path, line_no, "'question' must be a non-empty string")
    if not isinstance(obj["answerable"], bool):
        raise _problem(path, line_no, "'answerable' must be true or false")
    if obj["lang"] not in LANGS:
        raise _problem(path, line_no, f"'lang' must be one of {', '.join(LANGS)}, not {obj['lang']!r}")
    facts = obj.get("facts", [])
    if not isinstance(facts, list) or not all(_string_list(group) and group for group in facts):
        raise _problem(path, line_no, "'facts' must be a list of non-empty lists of strings")
    evidence = obj.get("evidence", [])
    if not _string_list(evidence):
        raise _problem(path, line_no, "'evidence' must be a list of non-empty strings")
    if obj["answerable"] and not evidence:
        raise _problem(path, line_no, "an answerable question needs at least one 'evidence' string")
    turns = obj.get("turns")
    if turns is not None:
        if not _string_list(turns) or not turns:
            raise _problem(path, line_no, "'turns' must be a non-empty list of strings")
        if turns[-1] != obj["question"]:
            raise _problem(path, line_no, "the last of 'turns' must equal 'question'")
    max_chars = obj.get("max_chars")
    # `type() is int`, not isinstance: JSON `true` loads as a bool, which is an int in Python.
    if max_chars is not None and (type(max_chars) is not int or max_chars < 1):
        raise _problem(path, line_no, f"'max_chars' must be a positive whole number, not {max_chars!r}")
    briefing = obj.get("briefing")
    if briefing is not None and not valid_briefing_id(briefing):
        raise _problem(
            path, line_no, f"'briefing' must be a briefing id ({BRIEFING_ID_RULE}), not {briefing!r}"
        )
    return GoldQuestion(
        id=obj["id"], question=obj["question"], answerable=obj["answerable"], lang=obj["lang"],
        facts=facts, evidence=evidence, turns=turns, max_chars=max_chars, briefing=briefing, line=line_no,
    )


def load_gold(path: Path, corpus: dict[str, str] | None = None) -> list[GoldQuestion]:
    """Read a gold file. With `corpus` (doc_id -> stored text), every evidence string must be found."""
    from briefing_core.spans import find_folded

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise GoldFileError(f"{path}: gold file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldFileError(f"{path}: cannot read: {exc}") from None
    questions: list[GoldQuestion] = []
    seen: dict[str, int] = {}
    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        q = parse_line(path, line_no, raw)
        if q.id in seen:
            raise _problem(path, line_no, f"duplicate id {q.id!r} (first on line {seen[q.id]})")
        seen[q.id] = line_no
        if corpus is not None:
            for ev in q.evidence:
                if not any(find_folded(text, ev) for text in corpus.values()):
                    raise _problem(path, line_no, f"evidence not found in the ingested documents: {ev[:80]!r}")
        questions.append(q)
    if not questions:
        raise GoldFileError(f"{path}: no questions")
    return questions
