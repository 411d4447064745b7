"""``crossentropy perplexity MODEL_DIR TEXT_FILE``: a local language model's perplexity on a text of any size."""

from __future__ import annotations

import argparse

from .. import InputError
from .arguments import Commands, add_format, add_precision, add_progress, positive_int
from .output import Table, print_tables, progress_bar

__all__ = ["register", "run"]


def register(commands: Commands) -> None:
    """Add the ``perplexity`` command."""
    ppl = commands.add_parser(
        "perplexity",
        help="perplexity, cross-entropy and bits per byte of a local language model on a text or JSONL file",
        description="Stream a text file of any size (or a JSONL file of documents) through a local Hugging Face\n"
        "causal LM with rolling windows, fused linear + cross-entropy per window. The metrics are those of\n"
        "EleutherAI's lm-evaluation-harness: token perplexity exp(L/T), bits per byte L/(B ln 2), word\n"
        "perplexity exp(L/W), for L nats over T tokens, B bytes and W words.",
        epilog="examples:\n  crossentropy perplexity ./my-model corpus.txt --context 1024 --stride 512\n"
        "  crossentropy perplexity ./my-model docs.jsonl --field text --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ppl.add_argument("model_dir", metavar="MODEL_DIR", help="a local directory with the model and its tokenizer")
    ppl.add_argument("text_file", metavar="TEXT_FILE", help="a UTF-8 text file, or a .jsonl/.ndjson file of documents")
    ppl.add_argument(
        "--context",
        type=positive_int,
        default=None,
        metavar="N",
        help="tokens per window (default: the model's maximum positions, else 2048)",
    )
    ppl.add_argument(
        "--stride",
        type=positive_int,
        default=None,
        metavar="N",
        help="new tokens scored per window, at most --context (default: --context, disjoint windows)",
    )
    ppl.add_argument("--batch-size", type=positive_int, default=1, metavar="N", help="windows per forward pass")
    ppl.add_argument(
        "--jsonl",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read TEXT_FILE as JSONL, one document per line (default: by its .jsonl/.ndjson suffix)",
    )
    ppl.add_argument("--field", default="text", help="the JSONL field holding a document's text (default text)")
    ppl.add_argument(
        "--prefix-token",
        type=positive_int,
        default=None,
        metavar="ID",
        help="token id preceding each document (default: the tokenizer's BOS, else EOS)",
    )
    ppl.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16", "float16"],
        default="auto",
        help="weights' dtype (default: as saved)",
    )
    ppl.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default cpu)")
    add_progress(ppl)
    add_format(ppl)
    add_precision(ppl)
    ppl.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Stream the text through the model; print the harness's metrics (and each document's, for JSONL)."""
    try:
        from .._perplexity.model import perplexity
    except ImportError:
        raise InputError("perplexity needs torch and transformers: pip install 'crossentropy[transformers]'") from None
    with progress_bar(args.progress, "perplexity", args.text_file, "tokens", "bytes") as update:
        progress = None
        if update is not None:

            def progress(done: int, total: int, tokens: int) -> None:
                update(total=total, completed=done, count=tokens)

        report = perplexity(
            args.model_dir,
            args.text_file,
            context=args.context,
            stride=args.stride,
            batch_size=args.batch_size,
            jsonl=args.jsonl,
            field=args.field,
            prefix_token=args.prefix_token,
            dtype=args.dtype,
            device=args.device,
            progress=progress,
        )
    result = report.as_dict()
    rows = [
        ["model", result["model"]],
        ["file", result["file"]],
        ["context / stride (tokens)", f"{result['context']} / {result['stride']}"],
        ["tokens", result["tokens"]],
        ["bytes", result["bytes"]],
        ["words", result["words"]],
        ["cross-entropy (nats/token)", result["cross_entropy_nats"]],
        ["cross-entropy (bits/token)", result["cross_entropy_bits"]],
        ["token perplexity", result["token_perplexity"]],
        ["bits per byte", result["bits_per_byte"]],
        ["byte perplexity", result["byte_perplexity"]],
        ["word perplexity", result["word_perplexity"]],
    ]
    tables: list[Table] = [("perplexity", ["quantity", "value"], rows)]
    if "documents" in result:
        tables.append(
            (
                "per document",
                ["document", "tokens", "nats/token", "token perplexity", "bits per byte", "word perplexity"],
                [
                    [
                        d["name"],
                        d["tokens"],
                        d["cross_entropy_nats"],
                        d["token_perplexity"],
                        d["bits_per_byte"],
                        d["word_perplexity"],
                    ]
                    for d in result["documents"]
                ],
            )
        )
    print_tables(tables, args.format, result, args.precision)
    return 0
