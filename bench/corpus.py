"""Real English prose for benchmarks, built offline from text the system already ships.

Sources (whatever of them is installed):

    licenses  /usr/share/common-licenses/*            GPL, LGPL, GFDL, Apache, MPL, Artistic ...
    info      /usr/share/info/*.info*.gz              GNU manuals (coreutils, gettext, find, sed ...)
    nodejs    /usr/share/doc/nodejs/api/*.md          the Node.js API reference, prose paragraphs only
    python    site-packages/*.dist-info/METADATA      the long descriptions of installed packages
    debian-docs  /usr/share/doc/**/README*, FAQ*, copyright, *.txt, *.md   package documentation

Only paragraphs that read as prose are kept: several sentences of mostly letters, ending in
sentence punctuation; code, tables, menus, headings and option lists are dropped. Wrapped lines
are joined, and paragraphs are deduplicated across all sources (the same licence text ships in
many places). The corpus is written as .txt files of ~40 paragraphs, sources interleaved, until
the requested number of chunks is reached; chunks are counted with the pipeline's own chunker.

    python -m bench.corpus OUT_DIR [--chunks 5000]
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PARAGRAPHS_PER_FILE = 40
MIN_CHARS = 120
MIN_WORDS = 18

_BLANK = re.compile(r"\n[ \t]*\n")
_CODEISH = re.compile(r"[{}\[\]();=<>$|\\_#*`@^~]")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]?$")


@dataclass
class Corpus:
    folder: Path
    files: list[Path] = field(default_factory=list)
    paragraphs: int = 0
    chars: int = 0
    chunks: int = 0
    by_source: dict[str, int] = field(default_factory=dict)  # paragraphs per source

    def describe(self) -> str:
        parts = ", ".join(f"{name} {n}" for name, n in self.by_source.items())
        return (
            f"{len(self.files)} files, {self.paragraphs} paragraphs ({parts}), "
            f"{self.chars / 1e6:.2f} M characters, {self.chunks} chunks"
        )


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", errors="replace")


def license_texts() -> Iterator[str]:
    folder = Path("/usr/share/common-licenses")
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            yield _read(path)


def info_texts() -> Iterator[str]:
    folder = Path("/usr/share/info")
    for path in sorted(folder.glob("*.info*.gz")) if folder.is_dir() else []:
        text = _read(path)
        # Drop node separators and headers ("File: x.info,  Node: y,  Next: ...") and menus.
        text = re.sub(r"\x1f\n?File: [^\n]*\n", "\n\n", text)
        text = re.sub(r"\* Menu:.*?(?=\n\n[^*\n])", "\n\n", text, flags=re.S)
        yield text


def nodejs_texts() -> Iterator[str]:
    folder = Path("/usr/share/doc/nodejs/api")
    for path in sorted(folder.glob("*.md")) if folder.is_dir() else []:
        if path.stem == "all":
            continue
        text = _read(path)
        text = re.sub(r"```.*?```", "\n\n", text, flags=re.S)  # code blocks
        text = re.sub(r"<!--.*?-->", "\n\n", text, flags=re.S)  # YAML history, markers
        text = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", text)  # [link][ref] -> link
        text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # [link](url) -> link
        text = text.replace("`", "")
        yield text


def debian_doc_texts() -> Iterator[str]:
    folder = Path("/usr/share/doc")
    names = ("readme", "faq", "copyright", "authors", "thanks")
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        name = path.name.lower().removesuffix(".gz")
        if "nodejs" in path.parts or not path.is_file() or path.is_symlink():
            continue
        if name.startswith(names) or name.endswith((".txt", ".md")):
            try:
                yield _read(path)
            except (OSError, EOFError, gzip.BadGzipFile):
                continue


def python_package_texts() -> Iterator[str]:
    site = Path(sysconfig.get_paths()["purelib"])
    for path in sorted(site.glob("*.dist-info/METADATA")):
        text = _read(path)
        _, _, body = text.partition("\n\n")  # the long description follows the headers
        body = re.sub(r"```.*?```", "\n\n", body, flags=re.S)
        body = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", body)
        yield body.replace("`", "")


SOURCES = {
    "licenses": license_texts,
    "info": info_texts,
    "nodejs": nodejs_texts,
    "python": python_package_texts,
    "debian-docs": debian_doc_texts,
}


# ---------------------------------------------------------------------------------------
# Prose paragraphs
# ---------------------------------------------------------------------------------------


def prose_paragraphs(text: str) -> Iterator[str]:
    for block in _BLANK.split(text.replace("\r\n", "\n")):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        # Deeply indented blocks are examples; list markers and headings are not prose.
        if sum(len(line) - len(line.lstrip()) >= 8 for line in lines) > len(lines) / 2:
            continue
        para = " ".join(" ".join(line.split()) for line in lines)
        if is_prose(para):
            yield para


def is_prose(para: str) -> bool:
    if len(para) < MIN_CHARS or len(para.split()) < MIN_WORDS:
        return False
    if not (para[0].isupper() or para[0] in "\"“‘'("):
        return False
    if not _SENTENCE_END.search(para):
        return False
    if sum(ch.isalpha() or ch == " " for ch in para) < 0.88 * len(para):
        return False
    if len(_CODEISH.findall(para)) > 0.01 * len(para):
        return False
    return not para.startswith(("* ", "- ", "| ", "#", "> "))


def _key(para: str) -> str:
    return " ".join(re.findall(r"\w+", para.lower()))


def collect(sources: Iterable[str] = tuple(SOURCES)) -> dict[str, list[str]]:
    """Deduplicated prose paragraphs by source."""
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for name in sources:
        kept = out.setdefault(name, [])
        for text in SOURCES[name]():
            for para in prose_paragraphs(text):
                key = _key(para)
                if key not in seen:
                    seen.add(key)
                    kept.append(para)
    return {name: paras for name, paras in out.items() if paras}


# ---------------------------------------------------------------------------------------
# Writing the corpus
# ---------------------------------------------------------------------------------------


def build_corpus(folder: Path, min_chunks: int = 5000, chunk_chars: int = 700, overlap: int = 1) -> Corpus:
    """Write prose .txt files into `folder` until they hold at least `min_chunks` chunks."""
    from ingest.chunking import chunk_text
    from ingest.pipeline import slugify

    folder.mkdir(parents=True, exist_ok=True)
    by_source = collect()
    batches = {
        name: [paras[i : i + PARAGRAPHS_PER_FILE] for i in range(0, len(paras), PARAGRAPHS_PER_FILE)]
        for name, paras in by_source.items()
    }
    corpus = Corpus(folder)
    round_no = 0
    while corpus.chunks < min_chunks:
        wrote = False
        for name, files in batches.items():
            if round_no >= len(files) or corpus.chunks >= min_chunks:
                continue
            paras = files[round_no]
            path = folder / f"{name}-{round_no:03d}.txt"
            text = "\n\n".join(paras) + "\n"
            path.write_text(text, encoding="utf-8")
            corpus.files.append(path)
            corpus.paragraphs += len(paras)
            corpus.chars += len(text)
            corpus.chunks += len(chunk_text(slugify(path.stem), text, chunk_chars, overlap))
            corpus.by_source[name] = corpus.by_source.get(name, 0) + len(paras)
            wrote = True
        if not wrote:
            raise SystemExit(
                f"only {corpus.chunks} chunks of prose available here (wanted {min_chunks}): "
                f"{corpus.describe()}"
            )
        round_no += 1
    return corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--chunks", type=int, default=5000)
    args = parser.parse_args(argv)
    corpus = build_corpus(args.out, args.chunks)
    print(corpus.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
