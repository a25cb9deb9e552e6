"""The manifest: what a briefing is made of.

A YAML file naming the article (title, outlet, url, language, date as known) and each source it
cites (id, outlet, English and original-language title, language, approximate date, the passages
the article quotes from it, and optionally a path or URL to its full text). Paths are relative to
the manifest's folder.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from briefing_core.errors import ManifestError
from briefing_core.store import ID_PATTERN



class ArticleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    path: str
    title: str
    subtitle: str | None = None
    outlet: str | None = None
    url: str | None = None
    language: str = "en"
    date: str | None = None
    """As precise as is known, e.g. "2017-04" or "spring 2017"."""
    author: str | None = None
    caption: str | None = None
    """The photo caption line, exactly as in the text: lets "where was the photo taken" find it."""
    notes: str | None = None


class SourceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    outlet: str
    outlet_original: str | None = None
    title: str | None = None
    """English title (as the article gives it or a description when it gives none)."""
    original_title: str | None = None
    """Title in the source's own language, as the article gives it in [...]."""
    type: str | None = None
    """editorial, magazine article, news broadcast, headline, journal article ..."""
    language: str
    date: str | None = None
    quotes: list[str] = Field(default_factory=list)
    """Exact passages of the article that quote or report this source."""
    path: str | None = None
    """Optional full text of the source (txt, md, html, pdf), relative to the manifest."""
    url: str | None = None
    label: str | None = None
    """How an answer names the source, e.g. "the Global Times editorial"; derived when absent."""

    @field_validator("quotes")
    @classmethod
    def _non_empty(cls, quotes: list[str]) -> list[str]:
        if any(not q.strip() for q in quotes):
            raise ValueError("a quote is empty")
        return quotes

    def display_label(self) -> str:
        """How an answer names this source: outlet and, where known, the title."""
        if self.label:
            return self.label
        if self.type == "headline" and self.title:
            return f"the {self.outlet} headline “{self.title}”"
        if self.title and self.type not in {"editorial", "news broadcast"}:
            return f"“{self.title}” ({self.outlet})"
        if self.type:
            return f"the {self.outlet} {self.type}"
        return self.outlet


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    briefing: str = Field(pattern=ID_PATTERN)
    article: ArticleEntry
    sources: list[SourceEntry] = Field(default_factory=list)
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("sources")
    @classmethod
    def _unique_ids(cls, sources: list[SourceEntry]) -> list[SourceEntry]:
        seen: set[str] = set()
        for source in sources:
            if source.id in seen:
                raise ValueError(f"source id {source.id!r} appears twice")
            seen.add(source.id)
        return sources

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else (self.base_dir / path)

    def source(self, source_id: str) -> SourceEntry | None:
        return next((s for s in self.sources if s.id == source_id), None)


class _TextLoader(yaml.SafeLoader):
    """YAML as written: every field of a manifest is text, so a scalar YAML would read as a number or
    a date (`date: 2024`, `date: 2017-4-1`, `id: 1984`) is kept exactly as it stands in the file."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest; every problem is a ManifestError naming the file."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_TextLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        raise ManifestError(f"{path}: manifest not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read manifest: {exc}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: expected a mapping with 'briefing', 'article' and 'sources'")
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ManifestError(f"{path}: {problems}") from None
    manifest.base_dir = path.resolve().parent
    return manifest


def dump_sources_yaml(sources: list[SourceEntry]) -> str:
    """Manifest entries as YAML, ready to paste under `sources:`."""
    data = [s.model_dump(exclude_none=True, exclude_defaults=False) for s in sources]
    return yaml.safe_dump({"sources": data}, allow_unicode=True, sort_keys=False, width=100)

