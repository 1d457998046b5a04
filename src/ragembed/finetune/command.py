"""`ragembed finetune dense|colbert|reranker`: train on a BEIR train split, then score the base and
the trained model on the test split (written beside the model: ragembed-eval.md/.json/.png; for a
reranker, the first stage alone and reranked by it)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragembed.embedders.models import DEFAULT_MODEL
from ragembed.errors import InvalidInputError

if TYPE_CHECKING:  # the trainers import torch: loaded only when a finetune command runs
    from ragembed.finetune.dense import MatryoshkaTraining
    from ragembed.finetune.trainer import TrainingOptions


def add_finetune_parser(commands: Any) -> None:  # argparse's private _SubParsersAction
    finetune = commands.add_parser(
        "finetune", help="train a Matryoshka, ColBERT or reranker (cross-encoder) model on a BEIR train split"
    )
    kinds = finetune.add_subparsers(dest="kind", required=True)

    def common(p: argparse.ArgumentParser, defaults: TrainingOptions) -> None:
        p.add_argument("dataset", help="a BEIR folder with qrels/<train split>.tsv (and a test split to evaluate)")
        p.add_argument("--output", required=True, help="new folder for the trained model")
        p.add_argument(
            "--base-model",
            default=DEFAULT_MODEL,
            help="model to start from: hub name or local path (default: bundled all-MiniLM-L6-v2)",
        )
        p.add_argument("--train-split", default="train")
        p.add_argument("--eval-split", default="test", help="split scored before/after (default: test)")
        p.add_argument("--no-eval", action="store_true", help="train only")
        p.add_argument("--epochs", type=int, default=defaults.epochs)
        p.add_argument("--batch-size", type=int, default=defaults.batch_size)
        p.add_argument("--lr", type=float, default=defaults.learning_rate, help="learning rate")
        p.add_argument(
            "--hard-negatives",
            type=int,
            default=defaults.hard_negatives,
            help="mined negatives per pair (default: %(default)s)",
        )
        p.add_argument("--seed", type=int, default=defaults.seed)

    from ragembed.finetune.colbert import ColBERTTraining
    from ragembed.finetune.dense import MatryoshkaTraining

    dense = kinds.add_parser("dense", help="Matryoshka training (sentence-transformers MatryoshkaLoss)")
    common(dense, MatryoshkaTraining())
    dense.add_argument(
        "--dims",
        default=",".join(map(str, MatryoshkaTraining().dims)),
        help="Matryoshka dimensions, comma-separated (default: %(default)s)",
    )
    dense.add_argument(
        "--dim-weights",
        default=",".join(f"{d}={w:g}" for d, w in MatryoshkaTraining().dim_weights),
        help="loss weights DIM=W,... (dimensions not listed weigh 1; default: %(default)s)",
    )
    dense.add_argument(
        "--max-seq-length",
        type=int,
        default=MatryoshkaTraining().max_seq_length,
        help="tokens per text while training (default: %(default)s); the saved model "
        "embeds with the base model's length",
    )
    dense.set_defaults(run=run_finetune_dense)
    colbert = kinds.add_parser("colbert", help="ColBERT training (PyLate, contrastive with mined negatives)")
    common(colbert, ColBERTTraining())
    colbert.add_argument(
        "--dim",
        type=int,
        default=ColBERTTraining().dim,
        help="dimensions of each token vector (the projection head's output; default: %(default)s)",
    )
    colbert.set_defaults(run=run_finetune_colbert)
    from ragembed.finetune.reranker import RerankerTraining

    reranker = kinds.add_parser(
        "reranker", help="cross-encoder training (binary cross-entropy over mined hard negatives)"
    )
    common(reranker, RerankerTraining())
    reranker.add_argument(
        "--random-negatives",
        type=int,
        default=RerankerTraining().random_negatives,
        help="other positives of the batch scored as negatives of each pair (default: %(default)s)",
    )
    reranker.add_argument(
        "--max-length",
        type=int,
        default=RerankerTraining().max_length,
        help="word pieces of a (query, document) pair (default: %(default)s)",
    )
    reranker.add_argument(
        "--first-stage", default="hybrid", help="strategy whose candidates the evaluation reranks (default: hybrid)"
    )
    reranker.add_argument(
        "--candidates", type=int, default=10, help="candidates the evaluation reranks (default: %(default)s)"
    )
    reranker.set_defaults(run=run_finetune_reranker)


def parse_list(text: str, option: str, kind: type[int] | type[float] = int) -> tuple[Any, ...]:
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InvalidInputError(
            f"{option} {text!r}: give {kind.__name__}s separated by commas, e.g. 384,256,128,64"
        ) from None
    if not values:
        raise InvalidInputError(f"{option} is empty; give at least one value")
    return values


def parse_weights(text: str | None) -> tuple[tuple[int, float], ...]:
    try:
        return tuple((int(d), float(w)) for d, w in (item.split("=") for item in (text or "").split(",") if item))
    except ValueError:
        raise InvalidInputError(f"--dim-weights {text!r}: give DIM=WEIGHT pairs, e.g. 64=2,32=1.5") from None


def shared_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainingOptions every trainer takes, from the options `common` adds."""
    return {
        "base_model": args.base_model,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "hard_negatives": args.hard_negatives,
        "seed": args.seed,
    }


def write_table_report(output: Path, title: str, header: str, rows: list[str], data: dict[str, Any]) -> None:
    """ragembed-eval.json (`data`) and ragembed-eval.md (a markdown table), printed as well."""
    from ragembed.finetune.compare import write_json

    write_json(output / "ragembed-eval.json", data)
    columns = header.count("|") - 1
    lines = [header, "|" + "---|" * columns, *rows]
    (output / "ragembed-eval.md").write_text(f"# {title}\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    print("\n" + "\n".join(lines))


def run_finetune_dense(args: argparse.Namespace) -> int:
    from ragembed.finetune.data import training_pairs
    from ragembed.finetune.dense import MatryoshkaTraining, train_matryoshka

    weights = parse_weights(args.dim_weights)
    config = MatryoshkaTraining(
        **shared_options(args),
        dims=parse_list(args.dims, "--dims"),
        dim_weights=weights,
        max_seq_length=args.max_seq_length,
    )
    started = time.perf_counter()
    output = train_matryoshka(training_pairs(args.dataset, args.train_split), args.output, config)
    print(f"trained in {time.perf_counter() - started:.0f} s; model saved to {output}")
    if not args.no_eval:
        evaluate_dense(args.dataset, args.eval_split, config, output)
    return 0


def evaluate_dense(dataset_dir: str, split: str, config: MatryoshkaTraining, output: Path) -> None:
    from ragembed.evaluation import load_beir
    from ragembed.finetune.compare import dense_scores_by_dim, dims_table, plot_dims, write_json

    dataset = load_beir(dataset_dir, split)
    scores = dense_scores_by_dim(
        dataset, {"base": config.base_model, "fine-tuned": str(output)}, sorted(set(config.dims), reverse=True)
    )
    table = dims_table(scores, "base", "fine-tuned")
    write_json(output / "ragembed-eval.json", {"dataset": dataset.name, "split": split, "scores": scores})
    plot_dims(scores, output / "ragembed-eval.png", f"{dataset.name} {split}: nDCG@10 by dimension")
    (output / "ragembed-eval.md").write_text(
        f"# Fine-tuning: {dataset.name} ({split} split, {len(dataset.queries)} queries, "
        f"{len(dataset.corpus)} documents)\n\n{table}\n\n![nDCG@10 by dimension](ragembed-eval.png)\n",
        encoding="utf-8",
    )
    print(f"\n{table}\n\nreport: {output / 'ragembed-eval.md'}")


def run_finetune_colbert(args: argparse.Namespace) -> int:
    from ragembed.finetune.colbert import ColBERTTraining, train_colbert
    from ragembed.finetune.data import training_pairs

    config = ColBERTTraining(**shared_options(args), dim=args.dim)
    started = time.perf_counter()
    output = train_colbert(training_pairs(args.dataset, args.train_split), args.output, config)
    print(f"trained in {time.perf_counter() - started:.0f} s; model saved to {output}")
    if not args.no_eval:
        from ragembed.evaluation import load_beir
        from ragembed.finetune.compare import colbert_scores

        dataset = load_beir(args.dataset, args.eval_split)
        base = None if args.base_model == DEFAULT_MODEL else args.base_model
        scores = colbert_scores(dataset, {"base (untrained head)": base, "fine-tuned": str(output)})
        write_table_report(
            output,
            f"ColBERT fine-tuning: {dataset.name} ({args.eval_split})",
            "| model | nDCG@10 | R@100 |",
            [f"| {label} | {s['ndcg@10']:.4f} | {s['recall@100']:.4f} |" for label, s in scores.items()],
            {"dataset": dataset.name, "split": args.eval_split, "scores": scores},
        )
    return 0


def run_finetune_reranker(args: argparse.Namespace) -> int:
    from ragembed.finetune.data import training_pairs
    from ragembed.finetune.reranker import RerankerTraining, train_reranker
    from ragembed.strategies import parse_strategy

    reranked = parse_strategy(f"{args.first_stage}>rerank:{args.candidates}")  # a bad name fails before training
    config = RerankerTraining(
        **shared_options(args), random_negatives=args.random_negatives, max_length=args.max_length
    )
    started = time.perf_counter()
    output = train_reranker(training_pairs(args.dataset, args.train_split), args.output, config)
    print(f"trained in {time.perf_counter() - started:.0f} s; model saved to {output}")
    if not args.no_eval:
        from ragembed.evaluation import load_beir
        from ragembed.finetune.compare import reranker_scores

        dataset = load_beir(args.dataset, args.eval_split)
        scores = reranker_scores(dataset, str(output), args.first_stage, args.candidates)
        write_table_report(
            output,
            f"Reranker fine-tuning: {dataset.name} ({args.eval_split}), {reranked.name}",
            "| strategy | nDCG@10 | p50 ms |",
            [f"| {name} | {s['ndcg@10']:.4f} | {s['p50_ms']:.1f} |" for name, s in scores.items()],
            {"dataset": dataset.name, "split": args.eval_split, "scores": scores},
        )
    return 0
