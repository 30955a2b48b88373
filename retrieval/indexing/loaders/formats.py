"""Readers that turn one file's bytes into (title, text) pairs; each raises `Unreadable`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass


class Unreadable(Exception):
    """The file cannot become a document; the message is the reason shown to the user."""


@dataclass(frozen=True, slots=True)
class JsonlFields:
    """Which keys of each JSON line hold the document id, title and text."""

    id: str = "id"
    title: str = "title"
    text: str = "text"


@dataclass(frozen=True, slots=True)
class JsonlRecord:
    line: int
    record_id: str = ""
    title: str = ""
    text: str = ""
    error: str = ""


_BINARY_SNIFF = 8192
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BOMS = ((b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM dropped) or UTF-16 with a BOM; else Windows-1252/Latin-1 when the text
    reads as a Western European language; else another encoding only if charset_normalizer
    is installed and confident. Binary data (NUL bytes, control characters) is refused."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return _normalise_newlines(data.decode(codec))
            except UnicodeDecodeError as exc:
                raise Unreadable(f"invalid {codec} text ({exc.reason})") from exc
    if b"\x00" in data:
        raise Unreadable("binary content (NUL bytes); not a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = _detect(data)
    head = text[:_BINARY_SNIFF]
    if len(_CONTROL.findall(head)) > 0.02 * len(head):
        raise Unreadable("binary content (control characters); not a text file")
    return _normalise_newlines(text)


_WORD = re.compile(r"[^\W\d_]+")
_ODD_INSIDE_WORD = re.compile(r"(?<=[^\W\d_])[^\x00-\x7f\w](?=[^\W\d_])")


def _western(text: str) -> bool:
    """Does cp1252-decoded text look like a Western European language? There, accented
    letters sit inside mostly-ASCII words ("café", "Straße"); misread Cyrillic or Greek
    gives whole words of accented letters, misread Central European gives symbols inside
    words ("Za¿ó³æ")."""
    words = [w for w in _WORD.findall(text) if not w.isascii()]
    if not words:
        return True
    foreign = sum(1 for w in words if len(w) >= 3 and not any(c.isascii() for c in w))
    odd = len(_ODD_INSIDE_WORD.findall(text))
    return foreign <= 0.2 * len(words) and odd <= 0.02 * len(words)


def _detect(data: bytes) -> str:
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if western is not None and _western(western):
        return western
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        pass
    else:
        best = from_bytes(data[:65536]).best()
        if best is not None and best.encoding and best.chaos < 0.2:
            try:
                return data.decode(best.encoding)
            except (UnicodeDecodeError, LookupError):
                pass
    raise Unreadable(
        "not valid UTF-8 text and the encoding could not be detected; save it as UTF-8 "
        "(e.g. `iconv -f <encoding> -t utf-8`)"
    )


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_plain(data: bytes, stem: str) -> tuple[str, str]:
    return stem, decode_text(data)


_MD_TITLE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def read_markdown(data: bytes, stem: str) -> tuple[str, str]:
    text = decode_text(data)
    match = _MD_TITLE.search(text)
    return (match.group(1).strip() if match else stem) or stem, text


def read_pdf(data: bytes, stem: str) -> tuple[str, str]:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("encrypted PDF; decrypt it (e.g. `qpdf --decrypt`) and index the copy")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except Unreadable:
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        raise Unreadable(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    text = _normalise_newlines("\n\n".join(p for p in pages if p))
    return str(meta_title).strip() or stem, text


def read_jsonl(data: bytes, fields: JsonlFields) -> Iterator[JsonlRecord]:
    text = decode_text(data)
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield JsonlRecord(number, error=f"line {number}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            yield JsonlRecord(number, error=f"line {number}: expected a JSON object")
            continue
        body = obj.get(fields.text)
        if not isinstance(body, str) or not body.strip():
            yield JsonlRecord(
                number,
                error=f"line {number}: no text in field {fields.text!r}; "
                "set the text field name (jsonl_fields) to the key holding the text",
            )
            continue
        raw_id = obj.get(fields.id)
        record_id = str(raw_id) if raw_id not in (None, "") else f"line{number}"
        raw_title = obj.get(fields.title)
        title = str(raw_title).strip() if raw_title not in (None, "") else record_id
        yield JsonlRecord(number, record_id, title, _normalise_newlines(body))
