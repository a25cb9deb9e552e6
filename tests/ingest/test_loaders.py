"""Loading files: good documents in each format, and a clear error for each bad file."""

from __future__ import annotations

import codecs
import io
import os
import random
import stat
from pathlib import Path

import pytest
from pypdf import PdfWriter

from ingest.loaders import LoadedDocument, load_path
from briefing_core.errors import InputFileError, UserError

ARTICLE = (
    Path(__file__).resolve().parents[2]
    / "corpus/briefing/how-russia-could-help-solve-the-north-korea-crisis.txt"
)
RUSSIAN = (
    "Генштаб: система ПРО США угрожает ядерным силам РФ и КНР.\n"
    "Россия и Китай обсудили ситуацию на Корейском полуострове.\n"
)


def problem(path: Path, **kwargs: int) -> str:
    with pytest.raises(InputFileError) as caught:
        load_path(path, **kwargs)
    assert caught.value.path == str(path)
    assert isinstance(caught.value, UserError)
    return caught.value.problem


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica, with a correct cross-reference table."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Good files


def test_article_loads_exactly(tmp_path: Path) -> None:
    doc = load_path(ARTICLE)
    assert isinstance(doc, LoadedDocument)
    assert doc.text == ARTICLE.read_text(encoding="utf-8")  # NBSPs, curly quotes kept
    assert "\u00a0" in doc.text and "“" in doc.text
    assert doc.title == "How Russia Could Help Solve the North Korea Crisis"
    assert (doc.language, doc.format, doc.source_path) == ("en", "txt", str(ARTICLE))


def test_newlines_and_bom_are_normalised(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "\ufeffTitle\r\n\r\nOne\rTwo\u00a0. . .\n".encode())
    doc = load_path(path)
    assert doc.text == "Title\n\nOne\nTwo\u00a0. . .\n"
    assert doc.title == "Title"


def test_markdown_title_drops_hashes(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.MD", "\n\n##  Россия и Корея\n\nТекст заметки.".encode())
    doc = load_path(path)
    assert (doc.title, doc.format, doc.language) == ("Россия и Корея", "md", "ru")


def test_title_is_trimmed(tmp_path: Path) -> None:
    path = write(tmp_path / "long.txt", ("word " * 100).encode())
    assert len(load_path(path).title or "") == 200


def test_cp1251_russian_decodes(tmp_path: Path) -> None:
    path = write(tmp_path / "ru.txt", RUSSIAN.encode("cp1251"))
    doc = load_path(path)
    assert doc.text == RUSSIAN
    assert doc.language == "ru"


def test_utf16_with_bom_decodes(tmp_path: Path) -> None:
    text = "朝鲜是完全独立自主国家。中国希望各方保持克制。"
    path = write(tmp_path / "zh.txt", text.encode("utf-16"))
    doc = load_path(path)
    assert (doc.text, doc.language) == (text, "zh")


def test_pdf_with_text(tmp_path: Path) -> None:
    path = write(tmp_path / "doc.pdf", make_pdf("Hello briefing world"))
    doc = load_path(path)
    assert doc.text == "Hello briefing world"
    assert (doc.format, doc.language, doc.title) == ("pdf", "en", "Hello briefing world")


HTML = """<!doctype html>
<html><head>
<title>Russia and the Korean Peninsula</title>
<style>.secret { color: red } /* STYLETEXT */</style>
<script>var tracking = "SCRIPTTEXT";</script>
</head><body>
<header><a href="/">HEADERTEXT Home</a></header>
<nav><ul><li><a href="/world">NAVTEXT World</a></li><li><a href="/asia">Asia</a></li></ul></nav>
<!-- COMMENTTEXT: do not publish -->
<article>
<h1>How Russia Could Help</h1>
<p>Moscow’s role on the Korean Peninsula has been generally derided in Western media as
alternatively inattentive, ineffectual or even deleterious.</p>
<p>Chinese interpretations have been decidedly more welcoming to increasing Russian attention
to the North Korea issue, an apparent trend since the 2014 Ukraine crisis.</p>
<p>At the end of March 2017, Chinese TV news gave effusive praise to the sortie of Russia’s
Pacific Fleet into the Sea of Japan.<!-- INLINECOMMENT --></p>
</article>
<footer>FOOTERTEXT Copyright</footer>
</body></html>
"""


def test_html_main_text_without_boilerplate(tmp_path: Path) -> None:
    doc = load_path(write(tmp_path / "page.html", HTML.encode()))
    assert doc.format == "html"
    assert doc.title == "Russia and the Korean Peninsula"
    assert "Moscow’s role on the Korean Peninsula" in doc.text
    assert "Sea of Japan." in doc.text
    for hidden in (
        "STYLETEXT",
        "SCRIPTTEXT",
        "HEADERTEXT",
        "NAVTEXT",
        "COMMENTTEXT",
        "INLINECOMMENT",
        "FOOTERTEXT",
        "<",
        "color: red",
    ):
        assert hidden not in doc.text
    paragraphs = doc.text.split("\n\n")
    assert any(p.startswith("Chinese interpretations") for p in paragraphs)
    assert all(p.strip() == p and p for p in paragraphs)


def test_tiny_html_page_keeps_its_text_and_drops_comments(tmp_path: Path) -> None:
    page = "<html><body><nav>NAVTEXT</nav><div>Hi <b>there</b><!-- SECRET --></div></body></html>"
    doc = load_path(write(tmp_path / "tiny.htm", page.encode()))
    assert "there" in doc.text
    assert "SECRET" not in doc.text and "NAVTEXT" not in doc.text


def test_html_with_only_navigation_has_no_text(tmp_path: Path) -> None:
    page = "<html><head><title>T</title></head><body><nav>Home</nav><!-- c --></body></html>"
    assert "no main text" in problem(write(tmp_path / "nav.html", page.encode()))


# ---------------------------------------------------------------------------------------------
# Bad files


def test_missing_file(tmp_path: Path) -> None:
    assert problem(tmp_path / "nope.txt") == "file not found"


def test_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "gone.txt")
    assert problem(link) == "file not found (broken symbolic link)"


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    assert problem(folder) == "is a directory, not a file"


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    assert problem(fifo) == "not a regular file (a FIFO, socket or device)"


def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.txt", b"hidden text")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: mode 000 does not stop reading; see the next test")
        assert problem(path) == "permission denied (cannot read the file)"
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_permission_error_when_opening_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "secret.txt", b"hidden text")

    def refuse(self: Path, *args: object, **kwargs: object) -> io.BufferedReader:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    assert problem(path) == "permission denied (cannot read the file)"


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.html", "empty.pdf"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    assert problem(write(tmp_path / name, b"")) == "file is empty"


@pytest.mark.parametrize("data", [b"  \n\t\r\n ", "\u00a0\u3000\n".encode(), "\ufeff \n".encode()])
def test_whitespace_only_file(tmp_path: Path, data: bytes) -> None:
    assert problem(write(tmp_path / "blank.txt", data)).startswith("file is empty")


def test_file_over_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", b"word " * 50)
    assert problem(path, max_bytes=100) == (
        "file is 250 bytes, over the 100 bytes limit (BRIEFING_MAX_FILE_MB)"
    )
    assert load_path(path, max_bytes=250).text == "word " * 50


def test_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(52_400_000)  # sparse: nothing is written
    assert problem(path) == "file is 52.4 MB, over the 20 MB limit (BRIEFING_MAX_FILE_MB)"


def test_binary_file(tmp_path: Path) -> None:
    data = b"text at first\x00\x01\x02\x03 then binary" * 10
    assert problem(write(tmp_path / "blob.txt", data)) == "binary file, not text"


def test_undecodable_bytes(tmp_path: Path) -> None:
    data = bytes(range(0x80, 0x100)) * 4
    assert problem(write(tmp_path / "junk.txt", data)) == (
        "cannot decode text: not UTF-8 and no other encoding fits"
    )


def test_short_invalid_utf8_is_refused_or_decoded_sanely(tmp_path: Path) -> None:
    # A few stray high bytes: charset_normalizer may find some legacy encoding that "fits".
    path = write(tmp_path / "odd.txt", b"Caf\xe9 au lait, cr\xe8me br\xfbl\xe9e, na\xefve r\xe9sum\xe9.")
    try:
        doc = load_path(path)
    except InputFileError as exc:
        assert exc.problem.startswith("cannot decode text")
    else:
        assert doc.text.startswith("Caf") and doc.text.endswith("sum\u00e9.")
        assert "crème brûlée" in doc.text
        assert doc.language == "en"


@pytest.mark.parametrize("size", [24, 60, 400])
def test_random_bytes_after_a_utf16_bom_are_refused(tmp_path: Path, size: int) -> None:
    # Random 16-bit units decode as UTF-16 (when no lone surrogate turns up) into private-use,
    # unassigned and scattered-script characters.
    rng = random.Random(size)
    for trial in range(40):
        data = codecs.BOM_UTF16_LE + bytes(rng.randrange(256) for _ in range(size))
        try:
            load_path(write(tmp_path / f"wide-{trial}.txt", data))
        except InputFileError as exc:
            assert exc.problem.startswith("cannot decode text"), exc.problem
        else:
            pytest.fail(f"accepted junk: {data!r}")


@pytest.mark.parametrize(
    "text",
    [
        "联合国安理会 UN Security Council 通过了决议，要求朝鲜停止核试验。",
        "日本語のテキストです。東京で会議が開かれた。",
        "Россия и Северная Корея: переговоры в Москве (Moscow talks).",
        "مرحبا بالعالم، هذا نص عربي قصير.",
    ],
)
def test_utf16_text_mixing_a_script_with_latin_decodes(tmp_path: Path, text: str) -> None:
    for encoding in ("utf-16", "utf-32"):
        assert load_path(write(tmp_path / f"{encoding}.txt", text.encode(encoding))).text == text


def test_control_characters_in_utf8_mean_binary(tmp_path: Path) -> None:
    rng = random.Random(7)
    data = bytes(rng.choice(range(1, 32)) for _ in range(200)) + b" some words"
    assert problem(write(tmp_path / "ctl.txt", data)).startswith("binary file, not text")
    # Tabs, form feeds and line breaks are text.
    assert load_path(write(tmp_path / "ff.txt", b"Page one\fPage two\tcolumn\r\n")).text == (
        "Page one\fPage two\tcolumn\n"
    )


def test_too_short_to_guess_an_encoding(tmp_path: Path) -> None:
    assert problem(write(tmp_path / "short.txt", b"\xcf\xf0\xe8\xe2\xe5\xf2")) == (
        "cannot decode text: not UTF-8, and too short (6 characters) to tell its encoding; save it as UTF-8"
    )


def test_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "report.docx", b"PK\x03\x04")
    assert problem(path) == (
        "unsupported file type '.docx' (supported: .txt, .md, .markdown, .html, .htm, .pdf)"
    )
    assert problem(write(tmp_path / "README", b"text")).startswith("unsupported file type '(no extension)'")


def test_truncated_pdf(tmp_path: Path) -> None:
    data = make_pdf("Hello briefing world")
    for cut in (len(data) - 20, len(data) // 2):
        assert problem(write(tmp_path / "cut.pdf", data[:cut])).startswith("not a readable PDF: ")


def test_corrupt_pdf(tmp_path: Path) -> None:
    data = make_pdf("Hello briefing world").replace(b"/Type /Catalog", b"/Tpye /Catalog")
    data = data.replace(b"xref\n0 6", b"xref\n0 X")  # a broken cross-reference table too
    assert problem(write(tmp_path / "bad.pdf", data)).startswith("not a readable PDF: ")
    assert problem(write(tmp_path / "fake.pdf", b"just text, no PDF")) == "not a readable PDF: no %PDF header"


def test_pdf_without_text(tmp_path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    assert (
        problem(write(tmp_path / "scan.pdf", buffer.getvalue())) == "PDF has no extractable text (scanned?)"
    )
