"""The `ragembed` command: index, search, evaluate, fine-tune, run the demo.

    ragembed demo
    ragembed index data/scifact --strategy hybrid --strategy binary
    ragembed search "what causes scurvy?" --strategy hybrid -k 5 --json
    ragembed eval data/scifact --strategy dense --strategy bm25 --output report
    ragembed finetune dense data/scifact --output models/scifact-matryoshka

Parsing is argparse's (standard library); progress bars are tqdm's, on stderr, so --json output
on stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragembed.embedders.backends import BACKENDS
from ragembed.errors import (
    EncoderMismatchError,
    InvalidInputError,
    RagembedError,
    SchemaMismatchError,
    TruncationWarning,
)
from ragembed.search.filters import Condition, Filter, Range, Scalar, combine
from ragembed.search.schema import DEFAULT_EMBEDDER, describe_passages
from ragembed.stores.uri import SCHEMES, open_store
from ragembed.strategies import STRATEGY_NAMES, parse_strategy
from ragembed.types import Datatype, EmbeddingKind, Hit, check_positive

if TYPE_CHECKING:  # the retriever and the evaluation load models: imported when a command runs
    from ragembed.embedders.base import Embedder
    from ragembed.evaluation.beir import BeirDataset
    from ragembed.retriever import Retriever
    from ragembed.stores.base import VectorStore

DEFAULT_STORE = "qdrant-edge:./ragembed-index"
DEMO_DATA = Path(__file__).resolve().parents[2] / "data" / "scifact"
DEMO_STRATEGIES = [
    "dense",
    "int8",
    "binary",
    "matryoshka:64",
    "matryoshka:128",
    "matryoshka:256",
    "funnel:64",
    "bm25",
    "hybrid",
]
# ColBERT's row: the dense first stage reranked by MaxSim over 4-bit TurboQuant tokens where the
# store keeps them (Qdrant Edge: the nDCG@10 of float32 tokens at 13% of their bytes and 30x the
# speed of MaxSim over every document, docs/benchmarks.md section 4), else over float32 tokens.
DEMO_COLBERT = {True: "colbert+dense:turbo4", False: "colbert+dense"}


def demo_strategies(store: VectorStore) -> list[str]:
    return [*DEMO_STRATEGIES, DEMO_COLBERT[Datatype.TURBO4 in store.capabilities.datatypes]]


def chunk_size(value: str) -> int | str:
    """--chunk-size: a whole number of word pieces, or "window"."""
    if value == "window":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give a whole number of word pieces, or 'window'") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _note
            return int(args.run(args))
    except RagembedError as exc:
        # Messages may quote input that is not valid Unicode (undecodable bytes from argv or a file).
        message = f"ragembed: error: {exc}".encode("utf-8", "backslashreplace").decode("utf-8")
        print(message, file=sys.stderr)
        return 2


def _note(message: Warning | str, category: type[Warning], *where: Any, **_: Any) -> None:
    """ragembed's own warnings (a model's window cutting documents) as one line on stderr; others
    as Python prints them."""
    if issubclass(category, TruncationWarning):
        print(f"ragembed: note: {message}", file=sys.stderr)
    else:
        filename, lineno = where[0], where[1]
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragembed", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def store_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--store",
            default=DEFAULT_STORE,
            help=f"store URI ({', '.join(SCHEMES)}); default: {DEFAULT_STORE} (the embedded Qdrant engine)",
        )
        p.add_argument("--collection", default="default", help="collection name (default: default)")
        p.add_argument(
            "--strategy",
            action="append",
            metavar="S",
            help=f"search strategy, repeatable ({', '.join(STRATEGY_NAMES)}); default: dense",
        )
        p.add_argument("--model", help="dense model: hub name or local path (default: bundled all-MiniLM-L6-v2)")
        p.add_argument("--colbert-model", help="PyLate ColBERT model path (default: built from the bundled MiniLM)")
        p.add_argument(
            "--reranker",
            metavar="PATH",
            help="cross-encoder folder that strategies ending in '>rerank' score candidates with "
            "(ragembed finetune reranker trains one)",
        )
        backend_options(p)
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    def passage_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--passages",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="split documents into passages that fit each model's window, so every word is embedded and "
            "each hit shows its best passage (--no-passages: embed whole documents, cut at the window; "
            "default: as the collection was indexed; a new one in passages, unless a strategy cannot search "
            "them on this store, which the command then says)",
        )
        p.add_argument(
            "--chunk-size",
            type=chunk_size,
            metavar="N",
            help="word pieces a passage holds at most (default: 128; 'window': each model's whole window); "
            "implies --passages",
        )
        p.add_argument(
            "--chunk-overlap",
            type=int,
            metavar="N",
            help="word pieces a passage repeats from the one before (default: 0); implies --passages",
        )

    def backend_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--backend",
            choices=BACKENDS,
            help="what runs the models: torch, onnx (ONNX Runtime) or openvino; the last two need "
            "ragembed[fast] (default: what the collection was indexed with, else torch)",
        )
        p.add_argument(
            "--quantize",
            choices=["int8"],
            help="int8: ONNX Runtime's dynamic int8 model (with --backend onnx; default: fp32)",
        )

    index = commands.add_parser("index", help="embed and store documents")
    index.add_argument("source", help="a BEIR folder (corpus.jsonl), a .jsonl file, or a folder of .txt/.md files")
    index.add_argument("--limit", type=int, help="index only the first N documents")
    index.add_argument(
        "--recreate",
        action="store_true",
        help="drop the collection first and index into a new one (to change its strategies)",
    )
    store_options(index)
    passage_options(index)
    index.set_defaults(run=run_index)

    search = commands.add_parser("search", help="search an indexed collection")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=10, help="number of results (default: 10)")
    search.add_argument(
        "--filter",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="metadata filter, repeatable: key=value, key=a,b (any of), key>=2019, key<2021",
    )
    search.add_argument(
        "--passages",
        dest="passage_hits",  # not the indexing commands' passage setting: search follows the collection's
        action="store_true",
        help="return the top passages instead of documents, several from one document where they score so "
        "(a collection indexed with --passages)",
    )
    store_options(search)
    search.set_defaults(run=run_search)

    evaluate = commands.add_parser("eval", help="evaluate strategies on a BEIR dataset; write a report")
    evaluate.add_argument("dataset", help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    evaluate.add_argument("--split", default="test", help="qrels split (default: test)")
    evaluate.add_argument("--output", default="ragembed-report", help="report folder (default: ragembed-report)")
    evaluate.add_argument("--sample", type=int, metavar="N", help="only the first N queries (and a corpus sample)")
    evaluate.add_argument("-k", type=int, default=100, help="results per query (default: 100)")
    store_options(evaluate)
    passage_options(evaluate)
    evaluate.set_defaults(run=run_eval)

    demo = commands.add_parser("demo", help="index the shipped SciFact, evaluate every strategy, print the table")
    demo.add_argument("--data", default=str(DEMO_DATA), help=f"a BEIR folder (default: {DEMO_DATA})")
    demo.add_argument("--sample", type=int, metavar="N", help="a quick look: N queries and a corpus sample")
    demo.add_argument(
        "--store",
        default="qdrant-edge:./ragembed-demo",
        help="store URI (default: qdrant-edge:./ragembed-demo, the embedded Qdrant engine)",
    )
    demo.add_argument(
        "--strategy",
        action="append",
        metavar="S",
        help=f"strategies to compare (default: {' '.join(DEMO_STRATEGIES)} and {DEMO_COLBERT[True]}, or "
        f"{DEMO_COLBERT[False]} on a store without TurboQuant)",
    )
    demo.add_argument("--output", default="ragembed-demo-report", help="report folder (default: ragembed-demo-report)")
    backend_options(demo)
    passage_options(demo)
    demo.set_defaults(run=run_demo, model=None, colbert_model=None, json=False, k=100)

    from ragembed.finetune.command import add_finetune_parser

    add_finetune_parser(commands)
    return parser


def open_retriever(args: argparse.Namespace, *, recreate: bool = False, indexing: bool = False) -> Retriever:
    """The Retriever over the collection `args` name; `indexing`: with every embedder the
    collection records (indexing fills all its fields), else those the strategies need."""
    store = open_store(args.store, args.collection)
    try:
        if recreate and store.schema is not None:
            store.drop()  # before the retriever reads the old collection's models and settings
        return _retriever_on(store, args, indexing)
    except BaseException:
        store.close()  # a refused strategy or model must not leave the store open (or locked)
        raise


def open_evaluation_retriever(args: argparse.Namespace) -> Retriever:
    """Evaluation owns its collection: one encoded by other embedders than the ones asked for
    (another --model, --backend, --quantize) or split otherwise than asked (the default when no
    passage option is given) is rebuilt, not refused."""
    try:
        retriever = open_retriever(args, indexing=True)
    except (EncoderMismatchError, SchemaMismatchError) as exc:  # other embedders or passage settings
        print(f"rebuilding collection {args.collection!r} for the embedders asked for ({exc})", file=sys.stderr)
        return open_retriever(args, recreate=True, indexing=True)
    given = any(getattr(args, name, None) is not None for name in ("passages", "chunk_size", "chunk_overlap"))
    if given or retriever.chunking == retriever.default_chunking:
        return retriever
    print(
        f"rebuilding collection {args.collection!r}: it was indexed "
        f"{describe_passages(retriever.store.schema.passages if retriever.store.schema else None)}, "
        "and the default is "
        f"{describe_passages(d.record() if (d := retriever.default_chunking) else None)}",
        file=sys.stderr,
    )
    retriever.close()
    return open_retriever(args, recreate=True, indexing=True)


def _retriever_on(store: VectorStore, args: argparse.Namespace, indexing: bool) -> Retriever:
    from ragembed.retriever import Retriever

    # A collection's embedders are rebuilt from its record (class, model, prompts, pooling,
    # backend...), each by its name, with what the user names on the command line in place of the
    # default dense and ColBERT ones'; the Retriever then checks them.
    states = store.schema.encoders if store.schema else {}
    strategies = args.strategy or ["dense"]
    needs = set().union(*(parse_strategy(s).needs for s in strategies))
    chosen_models = {
        DEFAULT_EMBEDDER[EmbeddingKind.DENSE]: args.model,
        DEFAULT_EMBEDDER[EmbeddingKind.MULTIVECTOR]: args.colbert_model,
    }
    embedders: dict[str, Embedder] = {}
    for name in sorted(needs | set(states) if indexing else needs):
        record = states.get(name, {})
        cls = _embedder_class(name, record)
        if cls is None:
            raise InvalidInputError(
                f"the strategies name the embedder {name!r}, which the command line cannot make: index with "
                f"it from Python (Retriever(..., embedders={{{name!r}: <an Embedder>}})); once the collection "
                "records it, ragembed search and index rebuild it from that record"
            )
        options: dict[str, Any] = {"show_progress": True}
        if cls.takes_model:  # dense and ColBERT: the model and backend the user names
            options |= _backend_choice(args) | ({"model": chosen_models[name]} if chosen_models.get(name) else {})
        embedders[name] = cls.from_state(record, **options)
    return Retriever(
        store,
        strategies,
        show_progress=True,
        embedders=embedders,
        # search follows the collection's passage settings; indexing commands may name them
        passages=getattr(args, "passages", None),
        chunk_size=getattr(args, "chunk_size", None),
        chunk_overlap=getattr(args, "chunk_overlap", None),
        reranker=getattr(args, "reranker", None),
    )


def _embedder_class(name: str, record: Mapping[str, Any]) -> type[Embedder] | None:
    """The class a collection recorded for an embedder, else the default one of that name's kind."""
    from ragembed.embedders.colbert import ColBERTEmbedder
    from ragembed.embedders.dense import DenseEmbedder
    from ragembed.embedders.sparse import BM25Embedder

    classes: dict[str, type[Embedder]] = {c.__name__: c for c in (DenseEmbedder, BM25Embedder, ColBERTEmbedder)}
    if "class" in record:
        if record["class"] not in classes:
            raise InvalidInputError(
                f"the collection's embedder {name!r} is a {record['class']}, which the command line cannot "
                f"make ({', '.join(classes)} only); search this collection from Python with that embedder"
            )
        return classes[record["class"]]
    defaults: dict[str, type[Embedder]] = {
        DEFAULT_EMBEDDER[EmbeddingKind.DENSE]: DenseEmbedder,
        DEFAULT_EMBEDDER[EmbeddingKind.SPARSE]: BM25Embedder,
        DEFAULT_EMBEDDER[EmbeddingKind.MULTIVECTOR]: ColBERTEmbedder,
    }
    return defaults.get(name)


def _backend_choice(args: argparse.Namespace) -> dict[str, Any]:
    """--backend/--quantize as given (else the collection's record decides, else torch fp32)."""
    if args.backend is not None or args.quantize is not None:
        return {"backend": args.backend or "torch", "quantize": args.quantize}
    return {}


def run_index(args: argparse.Namespace) -> int:
    from ragembed.sources import load_documents

    documents = load_documents(args.source)
    if args.limit is not None:
        check_positive("--limit", args.limit, integer=True)
        documents = documents[: args.limit]
    started = time.perf_counter()
    with open_retriever(args, recreate=args.recreate, indexing=True) as retriever:
        written = retriever.index(documents)
        total = retriever.count()
        strategies = list(retriever.strategies)
        chunking = retriever.chunking
    summary = {
        "indexed": written,
        "total": total,
        "store": args.store,
        "collection": args.collection,
        "strategies": strategies,
        "passages": chunking.record() if chunking is not None else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"indexed {written} documents into {args.store} ({args.collection}): {total} in all, "
            f"strategies {', '.join(strategies)}, {chunking.describe() if chunking else 'whole documents'}, "
            f"{summary['seconds']} s"
        )
    return 0


def run_search(args: argparse.Namespace) -> int:
    with open_retriever(args) as retriever:
        search = retriever.search_passages if args.passage_hits else retriever.search
        hits = search(args.query, k=args.k, filter=parse_filters(args.filter) or None)
    if args.json:
        print(json.dumps([_hit_json(h) for h in hits], ensure_ascii=False))
    else:
        for rank, h in enumerate(hits, start=1):
            if h.passage is None:
                print(f"{rank:>3}. {h.score:8.4f}  {h.id}  {' '.join(h.text.split())[:100]}")
                continue
            where = f"{h.id}:{_line_of(h.text, h.passage.start)}"
            section = f"  [{' > '.join(h.passage.headings)}]" if h.passage.headings else ""
            print(f"{rank:>3}. {h.score:8.4f}  {where}{section}")
            print(f"       {' '.join(h.passage.text.split())[:300]}")
    return 0


def _line_of(text: str, offset: int) -> int:
    """The line (from 1) a character offset of `text` is on."""
    return text.count("\n", 0, offset) + 1


def _hit_json(hit: Hit) -> dict[str, Any]:
    out: dict[str, Any] = {"id": hit.id, "score": hit.score, "text": hit.text, "metadata": dict(hit.metadata)}
    if hit.passage is not None:
        p = hit.passage
        line = _line_of(hit.text, p.start)
        out["passage"] = {"text": p.text, "start": p.start, "end": p.end, "headings": list(p.headings), "line": line}
    return out


FILTER_SYNTAX = re.compile(r"^([^=<>]+)(>=|<=|>|<|=)(.*)$")


def run_eval(args: argparse.Namespace) -> int:
    from ragembed.evaluation import load_beir, sample

    dataset = load_beir(args.dataset, args.split)
    if args.sample is not None:
        dataset = sample(dataset, args.sample)
    if args.collection == "default":  # one collection per dataset (and sample), apart from indexed documents
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(args.dataset).resolve().name) or "dataset"
        args.collection = f"eval-{name}" + (f"-sample-{args.sample}" if args.sample else "")
    return evaluate_and_report(args, dataset, args.strategy or ["dense"])


def run_demo(args: argparse.Namespace) -> int:
    from ragembed.evaluation import load_beir, sample

    if not Path(args.data, "corpus.jsonl").is_file():
        raise InvalidInputError(
            f"no BEIR data at {args.data}; run the demo from a ragembed checkout (it ships data/scifact) "
            "or pass --data FOLDER"
        )
    dataset = load_beir(args.data, "test")
    if args.sample is not None:
        dataset = sample(dataset, args.sample)
    args.collection = "scifact" if args.sample is None else f"scifact-sample-{args.sample}"
    strategies = args.strategy
    if not strategies:
        with open_store(args.store, args.collection) as store:
            strategies = demo_strategies(store)
    return evaluate_and_report(args, dataset, strategies)


def evaluate_and_report(args: argparse.Namespace, dataset: BeirDataset, strategies: list[str]) -> int:
    from ragembed.evaluation import evaluate
    from ragembed.evaluation.report import choice_table, write_report

    args.strategy = strategies
    started = time.perf_counter()
    with open_evaluation_retriever(args) as retriever:
        schema = retriever.store.schema
        wanted = {f for s in strategies for f in parse_strategy(s).field_names}
        if schema is not None and not wanted <= set(schema.names):
            print(f"rebuilding collection {args.collection!r} for the strategies' new fields", file=sys.stderr)
            retriever.store.drop()
        if retriever.holds(dataset.corpus):
            print(f"{args.store} already holds the {len(dataset.corpus)} documents of {dataset.name}", file=sys.stderr)
        else:
            print(f"indexing {len(dataset.corpus)} documents of {dataset.name} into {args.store} ...", file=sys.stderr)
            retriever.index(dataset.corpus)
        indexed = time.perf_counter() - started
        runs = evaluate(retriever, dataset, strategies, k=args.k, store_name=args.store, show_progress=True)
    folder = write_report(
        args.output,
        dataset,
        runs,
        index_seconds=round(indexed, 1),
        total_seconds=round(time.perf_counter() - started, 1),
    )
    if args.json:
        print((folder / "report.json").read_text())
    else:
        print(
            f"\n{dataset.name} ({dataset.split}): {len(dataset.queries)} queries, {len(dataset.corpus)} documents, "
            f"store {args.store}\n"
        )
        print(choice_table(runs))
        print(f"\nreport: {folder / 'report.md'} (plots beside it); {time.perf_counter() - started:.0f} s in all")
    return 0


def parse_filters(specs: Sequence[str]) -> Filter:
    """key=value, key=a,b, key>=n, key>n, key<=n, key<n -> a ragembed filter; repeated keys
    combine (AND): two bounds on one key make one range."""
    conditions: dict[str, Condition] = {}
    bounds = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}
    for spec in specs:
        match = FILTER_SYNTAX.match(spec)
        if not match:
            raise InvalidInputError(f"--filter {spec!r}: write key=value, key=a,b or key>=number")
        key, op, value = match.groups()
        if value[:1] in ("=", "<", ">"):  # year=>2020, year==2020: not an equality with "=>2020"
            raise InvalidInputError(
                f"--filter {spec!r}: {op + value[0]!r} is not an operator; write {key}>=N, {key}<=N, {key}>N, "
                f"{key}<N or {key}=VALUE"
            )
        if op in bounds:
            try:
                number = float(value)
            except ValueError:
                raise InvalidInputError(f"--filter {spec!r}: {value!r} is not a number") from None
            condition: Condition = Range(**{bounds[op]: number})
        else:
            values = [parse_scalar(v) for v in value.split(",")]
            condition = values if len(values) > 1 else values[0]
        try:
            combine(conditions, key, condition)
        except InvalidInputError as exc:
            raise InvalidInputError(f"--filter {spec!r}: {exc}") from None
    return conditions


def parse_scalar(text: str) -> Scalar:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


if __name__ == "__main__":
    sys.exit(main())
