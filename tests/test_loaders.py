"""Loaders on small real files: each format, bad inputs become Skipped, globs, ids."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from retrieval.errors import RetrievalError
from retrieval.indexing.loaders import JsonlFields, Skipped, load_paths
from retrieval.types import Document


def _load(*paths: Path | str, **kw: object) -> tuple[list[Document], list[Skipped]]:
    items = list(load_paths(list(paths), **kw))  # type: ignore[arg-type]
    return (
        [i for i in items if isinstance(i, Document)],
        [i for i in items if isinstance(i, Skipped)],
    )


def test_txt_and_markdown_titles_ids_and_hash(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "plain.txt").write_text("Just some text.\r\nSecond line.\n")
    (tmp_path / "guide.md").write_text("intro line\n\n# The Guide  #\n\nBody of the guide.\n")
    (tmp_path / "untitled.md").write_text("## only a subheading\n\ntext\n")
    docs, skipped = _load(tmp_path)
    assert skipped == []
    by_source = {d.source: d for d in docs}
    assert [d.source for d in docs] == ["guide.md", "notes/plain.txt", "untitled.md"]
    assert by_source["guide.md"].title == "The Guide"
    assert by_source["untitled.md"].title == "untitled"
    plain = by_source["notes/plain.txt"]
    assert plain.title == "plain"
    assert plain.doc_id == "notes/plain.txt"
    assert plain.text == "Just some text.\nSecond line.\n"  # CRLF normalised
    expected = hashlib.sha256(f"{plain.title}\0{plain.text}".encode()).hexdigest()
    assert plain.metadata["content_hash"] == expected
    assert plain.metadata["format"] == "txt"
    assert plain.metadata["mtime"].endswith("+00:00")


def test_utf8_bom_and_latin1_fallback(tmp_path: Path) -> None:
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfcaf\xc3\xa9 au lait")
    (tmp_path / "latin.txt").write_bytes(
        "Le café est très chaud et la crème brûlée aussi, à côté de la fenêtre.".encode("cp1252")
    )
    docs, skipped = _load(tmp_path)
    texts = {d.source: d.text for d in docs}
    assert texts["bom.txt"] == "café au lait"
    if "latin.txt" in texts:  # needs charset detection; otherwise a clear skip reason
        assert "café" in texts["latin.txt"]
    else:
        assert "UTF-8" in skipped[0].reason


def test_html_drops_scripts_keeps_paragraphs(tmp_path: Path) -> None:
    page = """<html><head><title>Page Title</title><style>p {color: red}</style>
    <script>var secret = 1;</script></head><body>
    <noscript>enable js</noscript><template><p>hidden template</p></template>
    <!-- a comment --><h1>Heading</h1><p>First   paragraph
    text.</p><p>Second<br>line two.</p><script>alert('x')</script></body></html>"""
    (tmp_path / "page.html").write_text(page)
    (tmp_path / "noheadtitle.htm").write_text("<body><h1>From H1</h1><p>Body.</p></body>")
    docs, skipped = _load(tmp_path)
    assert skipped == []
    page_doc = next(d for d in docs if d.source == "page.html")
    assert page_doc.title == "Page Title"
    for junk in ("secret", "color", "enable js", "hidden template", "alert", "comment"):
        assert junk not in page_doc.text
    assert page_doc.text == "Heading\n\nFirst paragraph text.\n\nSecond\nline two."
    assert next(d for d in docs if d.source == "noheadtitle.htm").title == "From H1"


def test_jsonl_custom_fields_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"key": 7, "name": "Seven", "body": "Seven is a number."}),
        "{not json",
        json.dumps({"key": 8, "name": "Eight"}),
        "",
        json.dumps(["a", "list"]),
        json.dumps({"key": 9, "body": "No name here."}),
        json.dumps({"key": 7, "name": "Dup", "body": "duplicate id"}),
    ]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    fields = JsonlFields(id="key", title="name", text="body")
    docs, skipped = _load(tmp_path / "data.jsonl", jsonl_fields=fields)
    assert [(d.doc_id, d.title, d.text) for d in docs] == [
        ("data.jsonl#7", "Seven", "Seven is a number."),
        ("data.jsonl#9", "9", "No name here."),
    ]
    assert all(d.source == "data.jsonl" and d.metadata["format"] == "jsonl" for d in docs)
    assert [s.source for s in skipped] == [
        "data.jsonl:2",
        "data.jsonl:3",
        "data.jsonl:5",
        "data.jsonl:7",
    ]
    assert "line 2" in skipped[0].reason and "invalid JSON" in skipped[0].reason
    assert "'body'" in skipped[1].reason
    assert "duplicate id" in skipped[3].reason


def test_pdf_text_and_title(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "report.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.setTitle("Quarterly Report")
    pdf.drawString(72, 720, "Revenue grew in the first quarter.")
    pdf.showPage()
    pdf.drawString(72, 720, "Costs fell in the second quarter.")
    pdf.save()
    untitled = tmp_path / "plain.pdf"
    pdf = canvas.Canvas(str(untitled))
    pdf.drawString(72, 720, "No title metadata.")
    pdf.save()
    docs, skipped = _load(tmp_path)
    assert skipped == []
    report = next(d for d in docs if d.source == "report.pdf")
    assert report.title == "Quarterly Report"
    assert "Revenue grew" in report.text and "Costs fell" in report.text
    assert report.text.index("Revenue") < report.text.index("Costs")
    assert next(d for d in docs if d.source == "plain.pdf").title in ("plain", "untitled")


def test_encrypted_and_broken_pdf_are_skipped(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter
    from reportlab.pdfgen import canvas

    clear = tmp_path / "clear.pdf"
    pdf = canvas.Canvas(str(clear))
    pdf.drawString(72, 720, "Secret text.")
    pdf.save()
    writer = PdfWriter()
    writer.append(PdfReader(clear))
    writer.encrypt(user_password="pw", owner_password="owner")
    with (tmp_path / "locked.pdf").open("wb") as fh:
        writer.write(fh)
    clear.unlink()
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 garbage that is not a pdf")
    docs, skipped = _load(tmp_path)
    assert docs == []
    reasons = {s.source: s.reason for s in skipped}
    assert "encrypted" in reasons["locked.pdf"]
    assert set(reasons) == {"broken.pdf", "locked.pdf"}


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "blank.txt").write_text("  \n\t\n")
    (tmp_path / "table.xyz").write_text("a,b")
    (tmp_path / "README").write_text("no extension")
    (tmp_path / "ok.txt").write_text("fine")
    docs, skipped = _load(tmp_path)
    assert [d.source for d in docs] == ["ok.txt"]
    reasons = {s.source: s.reason for s in skipped}
    assert "binary" in reasons["image.txt"]
    assert "no text" in reasons["empty.md"] and "no text" in reasons["blank.txt"]
    assert reasons["table.xyz"].startswith("unsupported file type .xyz; supported:")
    assert ".md" in reasons["table.xyz"] and ".pdf" in reasons["table.xyz"]
    assert "no extension" in reasons["README"]


def test_globs_hidden_and_order(tmp_path: Path) -> None:
    for rel in ("a.md", "sub/b.md", "sub/deep/c.md", "sub/d.txt", ".hidden.md", ".git/e.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"text of {rel}")
    docs, _ = _load(tmp_path)
    assert [d.source for d in docs] == ["a.md", "sub/b.md", "sub/d.txt", "sub/deep/c.md"]
    docs, _ = _load(tmp_path, include=["**/*.md"])
    assert [d.source for d in docs] == ["a.md", "sub/b.md", "sub/deep/c.md"]
    docs, _ = _load(tmp_path, include=["**/*.md"], exclude=["sub/deep/*"])
    assert [d.source for d in docs] == ["a.md", "sub/b.md"]
    docs, _ = _load(tmp_path, exclude=["*.txt"])
    assert "sub/d.txt" not in [d.source for d in docs]


def test_single_file_source_is_its_name(tmp_path: Path) -> None:
    (tmp_path / "x" / "y").mkdir(parents=True)
    file = tmp_path / "x" / "y" / "note.txt"
    file.write_text("hello")
    docs, _ = _load(str(file))
    assert [(d.source, d.doc_id) for d in docs] == [("note.txt", "note.txt")]


def test_missing_path_raises_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(RetrievalError, match="nope"):
        load_paths([tmp_path, missing])
