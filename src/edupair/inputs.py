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


@dataclass
class InputDoc:
    """One document to predict on; `error` is set when it could not be read."""

    id: str
    text: str
    encoding: str | None = None
    error: tuple[str, str] | None = None  # (type, message)


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
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return InputDoc(doc_id, "", error=("BinaryFile", f"{path}: looks like a binary file (NUL bytes)"))
    text, encoding = decode_bytes(data)
    return InputDoc(doc_id, text, encoding)


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
            elif entry.suffix == ".txt":
                found.append(entry)
    return sorted(found)
