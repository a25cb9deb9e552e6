"""Files -> document text, with a clear `InputFileError` for every way a file can be unusable.

The text is kept exactly as decoded (only line endings become "\\n" and a byte-order mark is
dropped): answers cite character offsets into it, so quotes and no-break spaces stay as they are.
Parsers (trafilatura, pypdf, charset_normalizer) are imported only when a file needs them.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from briefing_core.text import detect_language, script_counts
from briefing_core.errors import InputFileError

FORMATS = {
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
MAX_TITLE_CHARS = 200
BINARY_SNIFF_BYTES = 8192
# Guessed decodings are judged on their first characters: enough to tell, fast on big files.
SAMPLE_CHARS = 200_000
# Text has next to no control, private-use or unassigned characters; more than this share is not text.
MAX_UNPRINTABLE = 0.02
# Below this many non-space bytes, a file that is not UTF-8 is refused rather than guessed at.
MIN_GUESS_BYTES = 16
# charset_normalizer's guesses above this mess ratio are too garbled to index.
MAX_CHAOS = 0.1

_NEWLINES = re.compile(r"\r\n?")
_BLANK_LINES = re.compile(r"\n[ \t]*\n")


@dataclass
class LoadedDocument:
    text: str
    title: str | None
    language: str
    format: str  # 'txt' | 'md' | 'html' | 'pdf'
    source_path: str


def load_path(path: Path, max_bytes: int = 20_000_000) -> LoadedDocument:
    """Read one document file, or raise InputFileError saying what is wrong with it."""
    path = Path(path)
    name = str(path)
    fmt = _check_file(path, max_bytes)
    data = _read_bytes(path, max_bytes)
    if not data:
        raise InputFileError(name, "file is empty")
    if fmt == "pdf":
        text, title = _pdf_text(name, data)
        if not text.strip():
            raise InputFileError(name, "PDF has no extractable text (scanned?)")
        title = title or _first_line_title(text, markdown=False)
    else:
        raw = _normalise(_decode(name, data))
        if not raw.strip():
            raise InputFileError(name, "file is empty (only white space)")
        if fmt == "html":
            text, title = _html_text(raw)
            if not text.strip():
                raise InputFileError(name, "HTML page has no main text to index")
        else:
            text, title = raw, _first_line_title(raw, markdown=fmt == "md")
    return LoadedDocument(text, title, detect_language(text), fmt, name)


# ---------------------------------------------------------------------------------------------
# File checks


def _check_file(path: Path, max_bytes: int) -> str:
    """The document format, after checking the path names a readable-looking regular file."""
    name = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise InputFileError(name, "file not found (broken symbolic link)") from None
        raise InputFileError(name, "file not found") from None
    except NotADirectoryError:
        raise InputFileError(name, "file not found (a parent is not a directory)") from None
    except PermissionError:
        raise InputFileError(name, "permission denied (cannot reach the file)") from None
    except OSError as exc:
        raise InputFileError(name, f"cannot read file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputFileError(name, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        # Reading a FIFO or a device could block forever or never end.
        raise InputFileError(name, "not a regular file (a FIFO, socket or device)")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        shown = suffix or "(no extension)"
        supported = ", ".join(FORMATS)
        raise InputFileError(name, f"unsupported file type '{shown}' (supported: {supported})")
    if info.st_size > max_bytes:
        raise InputFileError(name, _too_large(info.st_size, max_bytes))
    return FORMATS[suffix]


def _too_large(size: int, max_bytes: int) -> str:
    return f"file is {_size(size)}, over the {_size(max_bytes)} limit (BRIEFING_MAX_FILE_MB)"


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB".replace(".0 MB", " MB")
    if n >= 1_000:
        return f"{n / 1_000:.1f} KB".replace(".0 KB", " KB")
    return f"{n} bytes"


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    name = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except PermissionError:
        raise InputFileError(name, "permission denied (cannot read the file)") from None
    except OSError as exc:
        raise InputFileError(name, f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:  # the file grew after the size check
        raise InputFileError(name, _too_large(len(data), max_bytes))
    return data


# ---------------------------------------------------------------------------------------------
# Decoding


_UTF16_32_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(name: str, data: bytes) -> str:
    for bom, encoding in _UTF16_32_BOMS:  # UTF-32 first: its LE BOM starts with UTF-16's
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                raise InputFileError(name, f"cannot decode text: invalid {encoding}") from None
            if not _wide_text_plausible(text):
                raise InputFileError(
                    name, f"cannot decode text: starts with a {encoding} byte-order mark, but what follows "
                    f"is not {encoding} text"
                )
            return text
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise InputFileError(name, "binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    else:
        if _unprintable_share(text) > MAX_UNPRINTABLE:
            raise InputFileError(name, "binary file, not text (control or unassigned characters)")
        return text
    visible = sum(1 for b in data if b > 0x20)
    if visible < MIN_GUESS_BYTES:
        # A few bytes fit some legacy table whatever they are; there is nothing to tell text from junk.
        raise InputFileError(
            name, f"cannot decode text: not UTF-8, and too short ({visible} characters) to tell its "
            "encoding; save it as UTF-8"
        )
    guess = _guess_encoding(data)
    if guess is None:
        raise InputFileError(name, "cannot decode text: not UTF-8 and no other encoding fits")
    return guess


def _guess_encoding(data: bytes) -> str | None:
    """The best trusted decoding among charset_normalizer's guesses and cp1252.

    A guess is trusted when charset_normalizer recognised a language in it, or when it is clean
    text in an encoding used for English, Chinese or Russian: short or random bytes otherwise
    "decode" into plausible-looking garbage. Among trusted guesses, the one with the fewest rare
    letters wins (charset_normalizer's order breaks ties): it often reads cp1252 English or
    French as cp1250 ("crème" -> "crčme").
    """
    from charset_normalizer import from_bytes

    candidates = [
        (str(match), match.coherence > 0, _codec_name(match.encoding))
        for match in from_bytes(data)
        if match.chaos <= MAX_CHAOS
    ]
    with contextlib.suppress(UnicodeDecodeError):  # 5 byte values are undefined in cp1252
        candidates.append((data.decode("cp1252"), False, "cp1252"))
    trusted = [
        text
        for text, coherent, encoding in candidates
        if coherent or (encoding in _LEGACY_ENCODINGS and _plausible(text))
    ]
    return min(trusted, key=lambda text: _rare_characters(text[:SAMPLE_CHARS])) if trusted else None


def _codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return encoding


# Single-byte and CJK legacy encodings of our three languages, as `codecs.lookup` names them.
_LEGACY_ENCODINGS = frozenset(
    _codec_name(e)
    for e in (
        ("cp1251", "koi8_r", "koi8_u", "cp866", "mac_cyrillic", "iso8859_5")
        + ("cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "mac_roman")
        + ("gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp950", "hz")
    )
)


def _plausible(text: str) -> bool:
    """Hardly any odd characters, letters mostly from one script, and in that script mostly
    the everyday letters: a wrong single-byte table turns Russian into accented Latin
    ("òÏÓÓÉÑ"), a wrong CJK table turns anything into rare characters."""
    text = text[:SAMPLE_CHARS]
    visible = sum(1 for ch in text if not ch.isspace())
    if not visible or _rare_characters(text, letters=False) > 0.02 * visible:
        return False
    counts = script_counts(text)
    letters = sum(counts.values())
    if letters and counts["latin"] >= 0.9 * letters:
        accented = sum(1 for ch in text if ch.isalpha() and not ch.isascii())
        return accented <= 0.25 * counts["latin"]
    if letters and counts["han"] >= 0.9 * letters:
        common = sum(1 for ch in text if _is_common_han(ch))
        return common >= 0.8 * counts["han"]
    return letters > 0 and counts["cyrillic"] >= 0.9 * letters


_UNPRINTABLE = regex.compile(r"[^\s\P{Cc}]|[\p{Co}\p{Cn}\p{Cs}]")
_SPACE = regex.compile(r"\s")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _unprintable_share(text: str) -> float:
    """Share of the visible characters (of a sample) that are controls, private use, unassigned or
    surrogates: next to none in text, many in bytes that decoded by accident."""
    sample = text[:SAMPLE_CHARS]
    if sample.isascii() and not _ASCII_CONTROL.search(sample):  # the usual case, cheaply
        return 0.0
    if not _UNPRINTABLE.search(sample):
        return 0.0
    visible = len(sample) - len(_SPACE.findall(sample))
    return len(_UNPRINTABLE.findall(sample)) / visible if visible else 0.0


def _wide_text_plausible(text: str) -> bool:
    """Text decoded under a UTF-16/32 byte-order mark. Random bytes decode too (often, when short),
    into private-use, unassigned and control characters and letters scattered over many scripts;
    text in any language has next to none of the first and mostly one script."""
    visible = [ch for ch in text[:SAMPLE_CHARS] if not ch.isspace()]
    if not visible:
        return True
    if _unprintable_share(text) > MAX_UNPRINTABLE:
        return False
    scripts: dict[str, int] = {}
    for ch in visible:
        if ch.isalpha():
            script = unicodedata.name(ch, "?").split(" ")[0]
            script = "CJK" if script in ("HIRAGANA", "KATAKANA") else script  # Japanese mixes them
            scripts[script] = scripts.get(script, 0) + 1
    letters = sum(scripts.values())
    if not letters:
        return True
    # Real text mixes its own script with Latin (names, acronyms), not scripts at random.
    latin = scripts.pop("LATIN", 0)
    top = max(scripts, key=scripts.__getitem__) if scripts else "LATIN"
    if latin + scripts.get(top, 0) < 0.9 * letters:
        return False
    if top == "CJK":
        han = [ch for ch in visible if unicodedata.name(ch, "").startswith("CJK")]
        return sum(map(_is_common_han, han)) >= 0.5 * len(han)
    return True


def _is_common_han(ch: str) -> bool:
    """In GB2312's first level or Big5's frequent block: the few thousand characters that
    make up nearly all simplified or traditional Chinese text."""
    try:
        if 0xB0 <= ch.encode("gb2312")[0] <= 0xD7:
            return True
    except UnicodeEncodeError:
        pass
    try:
        return 0xA440 <= int.from_bytes(ch.encode("big5"), "big") <= 0xC67E
    except UnicodeEncodeError:
        return False


# Characters that are rare in real text but common in bytes decoded with the wrong table:
# controls, private use, unassigned, symbols, and Latin-1's odd signs.
_ODD_CATEGORIES = frozenset({"Cc", "Co", "Cn", "So", "Sk", "No"})
_ODD_CHARACTERS = frozenset("¤¦§¨ª¬¯±´µ¶·¸º¿×÷ƒ‡‰ˆ˜")
_COMMON_LETTERS = regex.compile(r"[A-Za-z\u00c0-\u00ff\u0400-\u045f\p{Han}\p{Hiragana}\p{Katakana}]")


def _rare_characters(text: str, letters: bool = True) -> int:
    """Odd characters, plus (if `letters`) letters outside ASCII, Latin-1, Russian and CJK."""
    count = 0
    for ch in text:
        if ch in "\t\n\r\f":
            continue
        odd = ch in _ODD_CHARACTERS or unicodedata.category(ch) in _ODD_CATEGORIES
        if odd or (letters and ch.isalpha() and not _COMMON_LETTERS.match(ch)):
            count += 1
    return count


def _normalise(text: str) -> str:
    return _NEWLINES.sub("\n", text.removeprefix("\ufeff"))


def _first_line_title(text: str, markdown: bool) -> str | None:
    for line in text.split("\n"):
        title = line.strip()
        if markdown:
            title = title.lstrip("#").strip()
        if title:
            return title[:MAX_TITLE_CHARS]
    return None


# ---------------------------------------------------------------------------------------------
# HTML


_DROPPED_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside")
_BLOCK_TAGS = frozenset(
    ("p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul")
    + ("ol", "dl", "dt", "dd", "table", "tr", "blockquote", "pre", "figure", "figcaption", "br")
    + ("hr",)
)


def _html_text(html: str) -> tuple[str, str | None]:
    """Main text (paragraphs separated by blank lines) and title of an HTML page."""
    import trafilatura

    root = _parse_html(html)
    if root is None:
        return "", None
    # The page's declared title; trafilatura's guess (often the first <h1>) only without one.
    title = _declared_title(root)
    if title is None:
        metadata = trafilatura.extract_metadata(html)
        title = metadata.title if metadata is not None else None
    # On short pages favor_recall falls back to all page text, navigation included: hence the
    # boilerplate is dropped before trafilatura sees the page.
    _drop_boilerplate(root)
    extracted = trafilatura.extract(root, include_comments=False, include_tables=True, favor_recall=True)
    text = _paragraphs(extracted.split("\n")) if extracted else ""
    if not text.strip():
        text = _fallback_html_text(html)
    return text, _clean_title(title)


def _drop_boilerplate(root: Any) -> None:
    """Remove comments, scripts, styles and navigation; a <header> or <footer> inside the
    article (its headline, its byline) stays."""
    for node in root.xpath("//comment() | //processing-instruction()"):
        _drop_keep_tail(node)
    for node in root.xpath("|".join(f"//{tag}" for tag in _DROPPED_TAGS)):
        if node.tag in ("header", "footer") and node.xpath("ancestor::article | ancestor::main"):
            continue
        _drop_keep_tail(node)


def _paragraphs(lines: list[str]) -> str:
    return "\n\n".join(line.strip() for line in lines if line.strip())


def _fallback_html_text(html: str) -> str:
    """<body> text without boilerplate, one block per paragraph: for pages where trafilatura
    finds no main text."""
    root = _parse_html(html)
    if root is None:
        return ""
    _drop_boilerplate(root)
    body = root.find("body")
    scope = body if body is not None else root
    for element in scope.iter():
        if isinstance(element.tag, str) and element.tag in _BLOCK_TAGS:
            element.tail = "\n\n" + (element.tail or "")
            element.text = "\n\n" + (element.text or "")
    blocks = _BLANK_LINES.split(scope.text_content())
    return _paragraphs([" ".join(block.split()) for block in blocks])


def _drop_keep_tail(node: Any) -> None:
    parent = node.getparent()
    if parent is None:
        return
    tail = node.tail or ""
    previous = node.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(node)


def _parse_html(html: str) -> Any:  # an lxml element, or None
    import lxml.html
    from lxml.etree import ParserError

    try:
        return lxml.html.document_fromstring(html)
    except (ParserError, ValueError):
        return None


def _declared_title(root: Any) -> str | None:
    found = root.xpath("//meta[@property='og:title']/@content | //title/text()")
    titles = [" ".join(str(t).split()) for t in found]
    return next((t for t in titles if t), None)


def _clean_title(title: str | None) -> str | None:
    if not title:
        return None
    return " ".join(title.split())[:MAX_TITLE_CHARS] or None


# ---------------------------------------------------------------------------------------------
# PDF


def _pdf_text(name: str, data: bytes) -> tuple[str, str | None]:
    """Page texts joined by blank lines, and the title from the PDF's metadata; any parser
    failure is an InputFileError."""
    from pypdf import PdfReader

    if b"%PDF-" not in data[:1024]:
        raise InputFileError(name, "not a readable PDF: no %PDF header")
    if b"%%EOF" not in data[-4096:]:
        raise InputFileError(name, "not a readable PDF: the file is truncated (no %%EOF marker)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputFileError(name, "not a readable PDF: it is encrypted (password needed)")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata is not None else None
    except InputFileError:
        raise
    except Exception as exc:  # pypdf raises many exception types on broken files
        raise InputFileError(name, f"not a readable PDF: {exc}") from None
    text = "\n\n".join(_normalise(page).strip() for page in pages if page.strip())
    return text, _clean_title(title)
