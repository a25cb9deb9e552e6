"""The project's exceptions.

    BriefingError
    ├── UserError              the caller can fix it (bad input, bad settings, bad request)
    │   ├── InputFileError     one file could not be read as a document
    │   ├── ManifestError      the manifest is malformed or does not match the article
    │   ├── NotFoundError      an unknown document or source id
    │   └── GoldFileError      a malformed gold-questions file
    └── SystemFailure          the system could not do its job; retrying later may work
        ├── StoreLockedError   another process is writing to the local store
        ├── StoreUnavailable   the Chroma server (or local store) does not answer
        ├── EmbedderMismatch   the store was built with another embedder
        └── LLMUnavailable     the LLM failed or timed out

The HTTP layer maps these to status codes in one handler.
"""

from __future__ import annotations


class BriefingError(Exception):
    """Base class: the message is written for the person who has to act on it."""


class UserError(BriefingError):
    pass


class InputFileError(UserError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class ManifestError(UserError):
    pass


class NotFoundError(UserError):
    pass


class GoldFileError(UserError):
    pass


class SystemFailure(BriefingError):
    pass


class StoreLockedError(SystemFailure):
    pass


class StoreUnavailable(SystemFailure):
    pass


class EmbedderMismatch(SystemFailure):
    pass


class LLMUnavailable(SystemFailure):
    pass


class ScorerMissing(BriefingError):
    """The answer scorer's files are missing, or were trained on other features than the code computes:
    the operator must run `make train` (or point BRIEFING_SCORER_DIR at a folder that has them)."""
