"""Reading documents from disk: a BEIR folder, a JSONL file, or a folder of text files.

Malformed input fails with a ragembed error that names the file and line, before anything is
indexed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragembed.errors import InvalidInputError, RagembedError
from ragembed.types import Document

TEXT_SUFFIXES = (".txt", ".md", ".rst")


def load_documents(source: str | Path) -> list[Document]:
    """Documents from a BEIR folder (corpus.jsonl), a .jsonl file or a folder of text files."""
    path = Path(source).expanduser()
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        return _not_empty(list(read_jsonl_documents(path / "corpus.jsonl")), path / "corpus.jsonl")
    if path.is_file() and path.suffix == ".jsonl":
        return _not_empty(list(read_jsonl_documents(path)), path)
    if path.is_dir():
        return read_text_folder(path)
    raise InvalidInputError(
        f"{source}: not a BEIR folder (with corpus.jsonl), a .jsonl file or a folder of "
        f"{'/'.join(TEXT_SUFFIXES)} files" + ("" if path.exists() else " (it does not exist)")
    )


def _not_empty(docs: list[Document], path: Path) -> list[Document]:
    if not docs:
        raise InvalidInputError(f"{path}: no documents (every line is blank)")
    return docs


def read_jsonl_documents(path: Path) -> Iterator[Document]:
    """One document per line: {"_id" or "id", "text", optional "title", optional "metadata"}.

    As in BEIR and MTEB, a title is prepended to the text it belongs to ("title text"). An id
    given twice is an error naming both lines.
    """
    first_line: dict[str, int] = {}
    for number, record in read_jsonl(path):
        doc_id: Any = record.get("_id", record.get("id"))  # Document checks it
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        title = record.get("title") or ""
        text = record.get("text")
        if not isinstance(text, str) or not isinstance(title, str):
            raise InvalidInputError(f"{path}:{number}: 'text' (and 'title', if given) must be strings")
        given = record.get("metadata") or {}
        if not isinstance(given, dict):
            raise InvalidInputError(f"{path}:{number}: 'metadata' must be a JSON object, got {type(given).__name__}")
        metadata: dict[str, Any] = dict(given)
        if title:
            metadata.setdefault("title", title)
        try:
            document = Document(doc_id, f"{title} {text}".strip(), metadata)
        except RagembedError as exc:
            raise InvalidInputError(f"{path}:{number}: {exc}") from None
        if document.id in first_line:
            raise InvalidInputError(
                f"{path}:{number}: id {document.id!r} is given again (first on line "
                f"{first_line[document.id]}); give every document its own id"
            )
        first_line[document.id] = number
        yield document


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; errors name the file and line."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 (opened apart so the error names the file; closed by the with below)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        number = 0
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(
                        f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})"
                    ) from None
                if not isinstance(record, dict):
                    raise InvalidInputError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
                yield number, record
        except UnicodeDecodeError:
            raise InvalidInputError(f"{path}:{number + 1}: not UTF-8 text") from None


def read_text_folder(folder: Path) -> list[Document]:
    """One document per text file; the id is the path relative to `folder`.

    Symbolic links are not followed, so nothing outside the folder is read.
    """
    root = folder.resolve()
    docs = []
    for file in sorted(root.rglob("*")):
        if (
            file.suffix not in TEXT_SUFFIXES
            or file.is_symlink()
            or not file.is_file()
            or not file.resolve().is_relative_to(root)
        ):
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"{file}: not UTF-8 text; convert it or remove it from the folder") from None
        if text.strip():
            docs.append(Document(file.relative_to(root).as_posix(), text, {"path": file.relative_to(root).as_posix()}))
    if not docs:
        raise InvalidInputError(f"{folder}: no non-empty {'/'.join(TEXT_SUFFIXES)} files found")
    return docs
