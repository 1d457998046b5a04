"""Reading documents and BEIR data from disk: real files, and clear errors naming file and line."""

from __future__ import annotations

import json

import pytest

from ragembed import Document
from ragembed.errors import InvalidInputError
from ragembed.evaluation import load_beir
from ragembed.sources import load_documents

pytestmark = pytest.mark.unit  # real files, no model: part of the fast layer


def write_lines(path, *lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_beir_scifact_loads_with_every_judged_query(scifact_dir):
    data = load_beir(scifact_dir, "test")
    assert (len(data.corpus), len(data.queries), sum(map(len, data.qrels.values()))) == (5183, 300, 339)
    assert data.corpus[0].text.startswith(data.corpus[0].metadata["title"])


def test_jsonl_documents_with_ids_titles_and_metadata(tmp_path):
    source = write_lines(
        tmp_path / "docs.jsonl",
        json.dumps({"_id": 7, "title": "T", "text": "body", "metadata": {"a": 1}}),
        "",
        json.dumps({"id": "x", "text": "other"}),
    )
    docs = load_documents(source)
    assert docs == [Document("7", "T body", {"a": 1, "title": "T"}), Document("x", "other", {})]


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "a", "text": ', "bad.jsonl:2: not valid JSON"),
        ('["a list"]', "bad.jsonl:2: expected a JSON object"),
        ('{"id": "a", "text": 5}', "bad.jsonl:2: 'text'"),
        ('{"text": "no id"}', "bad.jsonl:2: Document id must be a non-empty string"),
        ('{"id": "b", "text": "   "}', "bad.jsonl:2: .*empty or whitespace"),
        ('{"id": "b", "text": "t", "metadata": {"k": {"nested": 1}}}', "bad.jsonl:2: .*metadata is flat"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, line, message):
    source = write_lines(tmp_path / "bad.jsonl", '{"id": "ok", "text": "fine"}', line)
    with pytest.raises(InvalidInputError, match=message):
        load_documents(source)


def test_non_utf8_is_named(tmp_path):
    (tmp_path / "bin.jsonl").write_bytes(b'{"id": "a", "text": "ok"}\n\xff\xfe\n')
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        load_documents(tmp_path / "bin.jsonl")


def test_text_folder_ignores_links_that_leave_it(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the folder")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("inside")
    (folder / "link.txt").symlink_to(outside)
    (folder / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    assert [d.id for d in load_documents(folder)] == ["a.txt"]


def test_beir_errors_name_the_file(tmp_path, scifact_dir):
    with pytest.raises(InvalidInputError, match="corpus.jsonl: missing; a BEIR folder needs"):
        load_beir(tmp_path)
    folder = tmp_path / "b"
    (folder / "qrels").mkdir(parents=True)
    write_lines(folder / "corpus.jsonl", json.dumps({"_id": "d1", "text": "a doc"}))
    write_lines(folder / "queries.jsonl", json.dumps({"_id": "q1", "text": "a query"}))
    write_lines(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore", "q1\td1\t1", "q9\td1\t1")
    with pytest.raises(InvalidInputError, match="1 query ids are not in .*queries.jsonl"):
        load_beir(folder)
    write_lines(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore", "q1\td1")
    with pytest.raises(InvalidInputError, match="test.tsv:2: expected"):
        load_beir(folder)
    write_lines(folder / "corpus.jsonl", "")
    write_lines(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore", "q1\td1\t1")
    with pytest.raises(InvalidInputError, match="corpus is empty"):
        load_beir(folder)
