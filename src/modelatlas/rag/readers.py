"""Find documents under paths and read their text: .txt, .md, .html and .pdf.

Folders are walked recursively (hidden files and folders are left out); files of other kinds
are skipped and counted. HTML loses its tags, scripts and styles; PDF text comes from pypdf.
A .txt, .md or .html file whose bytes are not text (an image renamed, a database) is skipped
too, and named: its "text" would be replacement characters that match every query badly.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from modelatlas.errors import RagError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Share of characters that may be undecodable or control characters in a text file: a Latin-1
# file read as UTF-8 loses only its accents (a few percent), random bytes lose over half.
MAX_BAD_SHARE = 0.1


@dataclass(frozen=True)
class Found:
    files: list[Path]  # resolved, sorted, without duplicates
    skipped: int  # files of a kind we do not read


def find_documents(paths: Iterable[str | Path]) -> Found:
    """The readable documents under ``paths``. Raises RagError when there are none."""
    files: set[Path] = set()
    skipped = 0
    given = [Path(p).expanduser() for p in paths]
    if not given:
        raise RagError("No paths to index.", hint="Give one or more files or folders.")
    for path in given:
        if not path.exists():
            raise RagError(f"{path} does not exist.", hint="Give an existing file or folder.")
        for file in _walk(path):
            if file.suffix.lower() in SUPPORTED:
                files.add(file.resolve())
            else:
                skipped += 1
    if not files:
        what = ", ".join(str(p) for p in given)
        raise RagError(
            f"No documents to index in {what} ({skipped} file(s) of other kinds skipped).",
            hint="modelatlas reads .txt, .md, .html and .pdf files.",
        )
    return Found(sorted(files), skipped)


def _walk(path: Path) -> Iterable[Path]:
    if path.is_file():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _walk(child)
        elif child.is_file():
            yield child


def read_text(path: Path, data: bytes) -> str:
    """The text of a document whose bytes are ``data`` (read once by the caller, who hashes them)."""
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return pdf_text(path, data)
    if data.startswith(UTF16_BOMS):  # Windows tools write UTF-16 with a byte order mark
        text = data.decode("utf-16", errors="replace")
    else:
        text = data.decode("utf-8-sig", errors="replace")
    if suffix in HTML_SUFFIXES:
        return html_text(text)
    return text


def binary_reason(path: Path, data: bytes) -> str | None:
    """Why the bytes of a text or HTML document are not text (None when they are; a PDF is
    binary by nature and is read by pypdf)."""
    if path.suffix.lower() in PDF_SUFFIXES:
        return None
    if data.startswith(UTF16_BOMS):
        try:
            data.decode("utf-16")
        except UnicodeDecodeError:
            return "it starts like UTF-16 text but is not valid UTF-16"
        return None
    if b"\x00" in data:
        return "it contains NUL bytes (binary data)"
    text = data.decode("utf-8", errors="replace")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r\f\v\x1b"))
    if text and bad / len(text) > MAX_BAD_SHARE:
        return f"{bad} of its {len(text)} characters are not text (not UTF-8, or control characters)"
    return None


def pdf_text(path: Path, data: bytes) -> str:
    """The text of every page of a PDF; an encrypted or corrupt file raises RagError naming it."""
    from modelatlas.backends.base import require

    pypdf = require("pypdf", extra="rag")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise RagError(
                f"{path} is an encrypted PDF.", hint="Decrypt it (or export it without a password) first."
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except RagError:
        raise
    except Exception as exc:  # pypdf raises many kinds of errors on broken files
        raise RagError(
            f"Cannot read the PDF {path}: {type(exc).__name__}: {str(exc)[:200]}",
            hint="Check that the file is a valid PDF, or move it out of the indexed folder.",
        ) from exc
    return "\n\n".join(p.strip() for p in pages if p.strip())


class _TextOnly(HTMLParser):
    """Collects the text of an HTML page, without scripts and styles, one block per line."""

    HIDDEN = frozenset({"script", "style", "noscript", "template"})
    BLOCKS = frozenset(
        ["p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre"]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\s*\n\s*", "\n", text).strip()
