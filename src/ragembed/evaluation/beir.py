"""BEIR-format datasets: corpus.jsonl, queries.jsonl and qrels/<split>.tsv.

Errors name the file and line of malformed input.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ragembed.errors import InvalidInputError
from ragembed.evaluation.metrics import check_qrels
from ragembed.sources import read_jsonl, read_jsonl_documents
from ragembed.types import Document, check_positive, is_plain_name, validate_documents

Qrels = dict[str, dict[str, int]]  # query id -> {document id: relevance}


@dataclass(frozen=True)
class BeirDataset:
    """A corpus, the queries judged in one split and their judgments; checked when built, so
    evaluation never scores queries it cannot see or judgments on documents it cannot retrieve."""

    name: str
    split: str
    corpus: list[Document]
    queries: dict[str, str]  # only the queries judged in this split
    qrels: Qrels

    def __post_init__(self) -> None:
        corpus = validate_documents(self.corpus)
        if not isinstance(self.queries, Mapping) or not all(
            isinstance(q, str) and isinstance(t, str) and t.strip() for q, t in self.queries.items()
        ):
            raise InvalidInputError("queries must map query ids to non-empty query texts")
        qrels = check_qrels(self.qrels)
        absent = sorted(set(qrels) - set(self.queries))
        if absent:
            raise InvalidInputError(
                f"the qrels judge {len(absent)} queries that are not in the query set (first: {absent[:3]}); "
                "add their texts to the queries, or drop their judgments"
            )
        ids = {d.id for d in corpus}
        unknown = sorted({d for judged in qrels.values() for d in judged} - ids)
        if unknown:
            raise InvalidInputError(
                f"the qrels judge {len(unknown)} documents that are not in the corpus (first: {unknown[:3]}); "
                "add them to the corpus, or drop those judgments"
            )
        object.__setattr__(self, "corpus", corpus)
        object.__setattr__(self, "queries", {q: self.queries[q] for q in qrels})
        object.__setattr__(self, "qrels", qrels)


def load_beir(folder: str | Path, split: str = "test") -> BeirDataset:
    root = Path(folder).expanduser()
    if not is_plain_name(split):
        # The split names a file inside qrels/; a path here could read outside the dataset.
        raise InvalidInputError(f"split {split!r} is not a split name such as 'test' or 'train'")
    files = {
        "corpus": root / "corpus.jsonl",
        "queries": root / "queries.jsonl",
        "qrels": root / "qrels" / f"{split}.tsv",
    }
    for path in files.values():
        if not path.is_file():
            raise InvalidInputError(
                f"{path}: missing; a BEIR folder needs corpus.jsonl, queries.jsonl and qrels/<split>.tsv"
            )
    corpus = list(read_jsonl_documents(files["corpus"]))
    if not corpus:
        raise InvalidInputError(f"{files['corpus']}: the corpus is empty")
    qrels = read_qrels(files["qrels"])
    all_queries = read_queries(files["queries"])
    absent = sorted(set(qrels) - set(all_queries))
    if absent:
        raise InvalidInputError(
            f"{files['qrels']}: {len(absent)} query ids are not in {files['queries']} (first: {absent[:3]})"
        )
    ids = {d.id for d in corpus}
    unknown = sorted({d for judged in qrels.values() for d in judged} - ids)
    if unknown:
        raise InvalidInputError(
            f"{files['qrels']}: {len(unknown)} document ids are not in {files['corpus']} (first: {unknown[:3]}); "
            "add the documents, or drop those judgments"
        )
    return BeirDataset(root.name, split, corpus, {q: all_queries[q] for q in qrels}, qrels)


def read_queries(path: Path) -> dict[str, str]:
    queries = {}
    for number, record in read_jsonl(path):
        qid, text = record.get("_id", record.get("id")), record.get("text")
        if not isinstance(qid, (str, int)) or not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"{path}:{number}: a query needs '_id' and non-empty 'text'")
        queries[str(qid)] = text
    return queries


def read_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    number = 0
    with open(path, encoding="utf-8", newline="") as handle:
        try:
            for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
                if not row or (number == 1 and row[0] == "query-id"):
                    continue
                if len(row) != 3 or not row[0] or not row[1]:
                    raise InvalidInputError(
                        f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {row!r}"
                    )
                try:
                    score = int(row[2])
                except ValueError:
                    raise InvalidInputError(f"{path}:{number}: score {row[2]!r} is not an integer") from None
                qrels.setdefault(row[0], {})[row[1]] = score
        except UnicodeDecodeError:
            raise InvalidInputError(f"{path}:{number + 1}: not UTF-8 text") from None
        except csv.Error as exc:
            raise InvalidInputError(f"{path}:{number + 1}: not a tab-separated line ({exc})") from None
    if not qrels:
        raise InvalidInputError(f"{path}: no judgments")
    return qrels


def sample(dataset: BeirDataset, n_queries: int, distractors_per_query: int = 20) -> BeirDataset:
    """A quick-look subset: the first `n_queries` judged queries, every document judged for them,
    and the first `distractors_per_query * n_queries` other documents of the corpus. Scores on a
    sample are higher than on the full corpus (fewer distractors)."""
    check_positive("the sample size (queries)", n_queries, integer=True)
    if (
        isinstance(distractors_per_query, bool)
        or not isinstance(distractors_per_query, int)
        or distractors_per_query < 0
    ):
        raise InvalidInputError(f"distractors_per_query must be a whole number >= 0, got {distractors_per_query!r}")
    qids = list(dataset.queries)[:n_queries]
    judged = {d for q in qids for d in dataset.qrels[q]}
    keep = judged.copy()
    for doc in dataset.corpus:
        if len(keep) >= len(judged) + distractors_per_query * len(qids):
            break
        keep.add(doc.id)
    return BeirDataset(
        f"{dataset.name} (sample of {len(qids)} queries)",
        dataset.split,
        [d for d in dataset.corpus if d.id in keep],
        {q: dataset.queries[q] for q in qids},
        {q: dataset.qrels[q] for q in qids},
    )
