"""Reading documents to predict on: a .txt file, a folder of .txt files, JSONL of {"id","text"}, or stdin.

Nothing is dropped: an input that cannot be read becomes an item with an error, which the
batch writes as an error record in its place.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes
from lxml import html as lxml_html

_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
                         "section", "article", "header", "footer", "nav", "title", "blockquote", "pre", "dd", "dt"})


@dataclass
class InputDoc:
    """One document to predict on; `error` is set when it could not be read."""

    id: str
    text: str
    encoding: str | None = None
    error: tuple[str, str] | None = None  # (type, message)
    input_format: str | None = None       # "html" when the text was extracted from markup


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Text and the encoding used: UTF-8 (with or without BOM) first, else charset-normalizer's guess."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is None:
        return data.decode("utf-8", errors="replace"), "utf-8 (invalid bytes replaced)"
    return str(best), best.encoding


def read_text_file(path: Path, doc_id: str | None = None) -> InputDoc:
    """A .txt file as one document (id: its stem unless given)."""
    doc_id = doc_id or path.stem
    try:
        data = path.read_bytes()
    except OSError as exc:
        return InputDoc(doc_id, "", error=(type(exc).__name__, f"{path}: {exc.strerror or exc}"))
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        decoded = _decode_with_nul(data)
        if decoded is None:
            return InputDoc(doc_id, "", error=("BinaryFile", f"{path}: looks like a binary file (NUL bytes)"))
        return InputDoc(doc_id, *decoded)
    text, encoding = decode_bytes(data)
    if path.suffix.lower() in (".html", ".htm"):
        return InputDoc(doc_id, html_to_text(text), encoding, input_format="html")
    return InputDoc(doc_id, text, encoding)


def _decode_with_nul(data: bytes, max_nul_share: float = 0.05) -> tuple[str, str] | None:
    """Text holding NUL bytes: UTF-8 with a few stray NULs, or UTF-16/32 without BOM; else None (binary)."""
    try:
        if data.count(b"\x00") / len(data) <= max_nul_share:
            return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    guess = from_bytes(data[:65536]).best()
    if guess is not None and guess.encoding.startswith(("utf_16", "utf_32")):
        return data.decode(guess.encoding, errors="replace"), guess.encoding
    return None


def html_to_text(markup: str) -> str:
    """The visible text of an HTML page (lxml), one line per block element; scripts and styles dropped.
    Offsets of predictions on such a page are relative to this extracted text."""
    if not markup.strip():
        return ""
    tree = lxml_html.document_fromstring(markup)
    for node in tree.xpath("//script|//style|//noscript|//template"):
        node.drop_tree()
    for node in tree.iter():
        if isinstance(node.tag, str) and node.tag.lower() in _BLOCK_TAGS:
            node.tail = "\n" + (node.tail or "")
    return tree.text_content()


def read_jsonl_inputs(lines, source: str) -> Iterator[InputDoc]:
    """Documents from JSONL lines; malformed lines, missing or duplicate ids and non-string text
    become error items named by file and line."""
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fallback = f"{Path(source).stem}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield InputDoc(fallback, "", error=("InvalidJSON", f"{source}:{number}: {exc.msg}"))
            continue
        if not isinstance(obj, dict):
            yield InputDoc(fallback, "", error=("InvalidRecord", f"{source}:{number}: not a JSON object"))
            continue
        doc_id = obj.get("id")
        doc_id = str(doc_id) if doc_id is not None else fallback
        if obj.get("id") is None:
            yield InputDoc(doc_id, "", error=("MissingId", f"{source}:{number}: field 'id' is missing"))
        elif doc_id in seen:
            yield InputDoc(doc_id, "", error=("DuplicateId", f"{source}:{number}: id '{doc_id}' seen before"))
        elif not isinstance(obj.get("text"), str):
            yield InputDoc(doc_id, "", error=("InvalidText", f"{source}:{number}: field 'text' must be a string"))
        else:
            yield InputDoc(doc_id, obj["text"])
        seen.add(doc_id)


def iter_inputs(source: str) -> Iterator[InputDoc]:
    """All documents of an input argument, in a stable order (folders: sorted by path)."""
    if source == "-":
        yield from read_jsonl_inputs(sys.stdin, "<stdin>") if _stdin_is_jsonl() else [
            InputDoc("stdin", sys.stdin.read())]
        return
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"input not found: {source}")
    if path.is_dir():
        for child in _walk_txt(path):
            yield read_text_file(child, str(child.relative_to(path).with_suffix("")))
    elif path.suffix in (".jsonl", ".json"):
        with open(path, encoding="utf-8", errors="replace") as handle:
            yield from read_jsonl_inputs(handle, str(path))
    else:
        yield read_text_file(path)



def _stdin_is_jsonl() -> bool:
    """Whether stdin holds JSONL (its first non-blank character is '{'); the peeked text is kept."""
    data = sys.stdin.read()
    sys.stdin = _Replay(data)
    return data.lstrip().startswith("{")


class _Replay:
    """A stdin stand-in that replays text already read."""

    def __init__(self, data: str) -> None:
        self.data = data

    def read(self) -> str:
        return self.data

    def __iter__(self):
        return iter(self.data.splitlines(keepends=True))


def _walk_txt(folder: Path) -> list[Path]:
    """`.txt` files under a folder, sorted, following no symlink twice (loops are skipped)."""
    found, seen = [], set()
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            real = current.resolve()
            if real in seen:
                continue
            seen.add(real)
            entries = sorted(current.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir():
                stack.append(entry)
            elif entry.suffix.lower() in (".txt", ".html", ".htm"):
                found.append(entry)
    return sorted(found)
