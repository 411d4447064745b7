"""``crossentropy perplexity MODEL_DIR TEXT...``: a local language model's perplexity, document by document.

With ``--bootstrap N`` the three measures get 95% intervals from resampled
documents; ``--compare MODEL_DIR_B`` scores the same documents with a second
model and reports the paired differences; ``--documents OUT.jsonl`` writes one
record per document, and ``--merge A.jsonl B.jsonl ...`` turns the records of
separately scored shards into the numbers of one run.
"""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

from .. import InputError
from .arguments import Commands, add_format, add_precision, add_progress, at_least_one, positive_int
from .output import Table, print_tables, progress_bar

__all__ = ["register", "run"]

USAGE = """\
crossentropy perplexity MODEL_DIR TEXT [TEXT ...] [--compare MODEL_DIR_B] [options]
       crossentropy perplexity --merge RECORDS [RECORDS ...] [options]"""


def register(commands: Commands) -> None:
    """Add the ``perplexity`` command."""
    ppl = commands.add_parser(
        "perplexity",
        usage=USAGE,
        help="perplexity, cross-entropy and bits per byte of a local language model on text or JSONL files",
        description="Stream text files of any size (each one document) and JSONL files (one document per record)\n"
        "through a local Hugging Face causal LM with rolling windows, fused linear + cross-entropy per window.\n"
        "The metrics are those of EleutherAI's lm-evaluation-harness: token perplexity exp(L/T), bits per\n"
        "byte L/(B ln 2), word perplexity exp(L/W), for L nats over T tokens, B bytes and W words, summed over\n"
        "the documents. Documents are the unit of the bootstrap intervals, of the paired comparison of two\n"
        "models and of the records that --documents writes and --merge combines.",
        epilog="examples:\n  crossentropy perplexity ./my-model corpus.txt --context 1024 --stride 512\n"
        "  crossentropy perplexity ./my-model docs.jsonl --text-field text --bootstrap 1000 --format json\n"
        "  crossentropy perplexity ./base docs.jsonl --compare ./quantised\n"
        "  crossentropy perplexity ./my-model shard1.jsonl --documents part1.jsonl\n"
        "  crossentropy perplexity --merge part1.jsonl part2.jsonl --bootstrap 1000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ppl.add_argument(
        "model_dir", nargs="?", metavar="MODEL_DIR", help="a local directory with the model and its tokenizer"
    )
    ppl.add_argument(
        "texts",
        nargs="*",
        metavar="TEXT",
        help="UTF-8 text files (each one document) and .jsonl/.ndjson files (one document per record), in order",
    )
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
        help="read every TEXT as JSONL, one document per line (default: by its .jsonl/.ndjson suffix)",
    )
    ppl.add_argument(
        "--text-field",
        "--field",
        dest="field",
        default="text",
        metavar="FIELD",
        help="the JSONL field holding a document's text (default text); an id field names the document",
    )
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
    ppl.add_argument(
        "--bootstrap",
        type=at_least_one,
        default=None,
        metavar="N",
        help="95%% intervals of token perplexity, bits per byte and word perplexity from N bootstrap replicates "
        "that resample documents (default: none; 1000 for --compare)",
    )
    ppl.add_argument("--seed", type=positive_int, default=0, help="bootstrap seed (default 0)")
    ppl.add_argument(
        "--compare",
        metavar="MODEL_DIR_B",
        help="score the same documents with a second model: B - A per measure, its 95%% paired-bootstrap "
        "interval and the share of documents where B is better",
    )
    ppl.add_argument(
        "--documents",
        metavar="OUT.jsonl",
        help="write one JSON record per document (id, file, settings, tokens, bytes, words, nll_sum, measures)",
    )
    ppl.add_argument(
        "--merge",
        nargs="+",
        metavar="RECORDS",
        help="instead of scoring, combine --documents files of separately scored shards into one run's numbers "
        "(records of two models: their comparison)",
    )
    add_progress(ppl)
    add_format(ppl)
    add_precision(ppl)
    ppl.set_defaults(run=run)


_SCORING = {
    "--context": ("context", None),
    "--stride": ("stride", None),
    "--batch-size": ("batch_size", 1),
    "--jsonl": ("jsonl", None),
    "--text-field": ("field", "text"),
    "--prefix-token": ("prefix_token", None),
    "--dtype": ("dtype", "auto"),
    "--device": ("device", None),
    "--compare": ("compare", None),
}
"""The options that only scoring reads: not for ``--merge``, whose records are already scored."""


def _merged(args: argparse.Namespace) -> list[Any]:
    """The runs the ``--merge`` files hold (one, or two to compare)."""
    from .._perplexity import read_records

    if args.model_dir is not None:
        raise InputError("--merge combines record files: give no MODEL_DIR or TEXT")
    for option, (name, default) in _SCORING.items():
        if getattr(args, name) != default:
            raise InputError(f"--merge reads records that are already scored: {option} does not apply")
    return read_records(args.merge)


def _text_label(texts: list[str]) -> str:
    return texts[0] if len(texts) == 1 else f"{len(texts)} files"


def _scored(args: argparse.Namespace) -> list[Any]:
    """Score the texts with the model (and with ``--compare``'s): one report per model."""
    if args.model_dir is None or not args.texts:
        raise InputError("give MODEL_DIR and at least one TEXT file to score (or --merge RECORDS ...)")
    from .._perplexity import tokens_compared
    from .._perplexity.engine import is_jsonl
    from .._perplexity.intervals import check_documents

    try:
        importlib.import_module("transformers")  # which the model side imports only when it loads a model
        from .._perplexity.model import perplexity, settings_of
    except ImportError:
        raise InputError("perplexity needs torch and transformers: pip install 'crossentropy[transformers]'") from None
    text_only = args.jsonl is False or (args.jsonl is None and not any(is_jsonl(t) for t in args.texts))
    if text_only and (args.bootstrap is not None or args.compare is not None):
        check_documents(len(args.texts))  # known before scoring: each text file is one document
    models = [args.model_dir]
    if args.compare is not None:
        tokens_compared(settings_of(args.model_dir), settings_of(args.compare))  # refused before scoring
        models.append(args.compare)
    reports = []
    for which, model_dir in zip("AB", models, strict=False):
        label = "perplexity" if len(models) == 1 else f"perplexity {which}"
        with progress_bar(args.progress, label, _text_label(args.texts), "tokens", "bytes") as update:
            progress = None
            if update is not None:

                def progress(done: int, total: int, tokens: int, update: Any = update) -> None:
                    update(total=total, completed=done, count=tokens)

            reports.append(
                perplexity(
                    model_dir,
                    args.texts,
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
            )
    return reports


def _write_documents(path: str, reports: list[Any]) -> None:
    """One JSON record per line and document, every run's in turn (written whole or not at all)."""
    from ..io import atomic_write

    try:
        with atomic_write(path, "w") as handle:
            for report in reports:
                for record in report.records():
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write the documents file {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    """Score (or merge), write the records, and print the measures, their intervals or the comparison."""
    reports = _merged(args) if args.merge else _scored(args)
    if args.documents is not None:
        _write_documents(args.documents, reports)
    if len(reports) == 2:
        kwargs = {} if args.bootstrap is None else {"replicates": args.bootstrap}
        comparison = reports[0].compare(reports[1], seed=args.seed, **kwargs)
        _print_comparison(args, reports, comparison)
    else:
        intervals = None if args.bootstrap is None else reports[0].intervals(args.bootstrap, seed=args.seed)
        _print_report(args, reports[0], intervals)
    return 0


def _listed(names: list[str], most: int = 10) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _facts(result: dict[str, Any], *, empty_row: bool) -> list[list[Any]]:
    """What was scored: model, files, windows, documents (and which are empty, with ``empty_row``) and counts."""
    empty = result["empty_documents"]
    rows = [
        ["model", result["model"]],
        ["files", ", ".join(result["files"])],
        ["context / stride (tokens)", f"{result['context']} / {result['stride']}"],
        ["documents", f"{len(result['documents'])}" + (f" ({len(empty)} empty)" if empty else "")],
    ]
    if empty_row:
        rows.append(["empty documents (no tokens)", _listed(empty) if empty else "none"])
    return [*rows, ["tokens", result["tokens"]], ["bytes", result["bytes"]], ["words", result["words"]]]


def _print_report(args: argparse.Namespace, report: Any, intervals: Any) -> None:
    from .._perplexity.fields import RECORD

    result = report.as_dict()
    facts = _facts(result, empty_row=bool(result["empty_documents"]))
    if intervals is None:
        title, headers = "perplexity", ["quantity", "value"]
        rows = [*facts, *([m.label, result[m.name]] for m in RECORD.measures)]
    else:
        result["ci"] = ci = intervals.as_dict()
        title = f"perplexity (95% intervals: {ci['replicates']} bootstrap replicates over documents, seed {ci['seed']})"
        headers = ["quantity", "value", "95% low", "95% high"]
        rows = [[*row, "", ""] for row in facts]
        for m in RECORD.measures:
            bounds = ci.get(m.name, {"low": None, "high": None})
            rows.append([m.label, result[m.name], bounds["low"], bounds["high"]])
    tables: list[Table] = [(title, headers, rows)]
    if len(result["documents"]) > 1:
        several = len(result["files"]) > 1
        shown = [m for m in RECORD.measures if m.headline]
        columns = [m.name for m in shown]
        tables.append(
            (
                "per document",
                ["document", *(["file"] if several else []), "tokens", *(m.label for m in shown)],
                [
                    [d["id"], *([d["file"]] if several else []), d["tokens"], *(d[c] for c in columns)]
                    for d in result["documents"]
                ],
            )
        )
    print_tables(tables, args.format, result, args.precision)


def _print_comparison(args: argparse.Namespace, reports: list[Any], comparison: Any) -> None:
    from .._perplexity.fields import RECORD

    a, b = (r.as_dict() for r in reports)
    a["ci"], b["ci"] = comparison.a.as_dict(), comparison.b.as_dict()
    payload = {"a": a, "b": b, "comparison": comparison.as_dict()}
    empty_row = bool(a["empty_documents"] or b["empty_documents"])
    facts = [
        [label, va, vb]
        for (label, va), (_, vb) in zip(_facts(a, empty_row=empty_row), _facts(b, empty_row=empty_row), strict=True)
    ]
    title = (
        f"B - A with its 95% paired-bootstrap interval ({comparison.a.replicates} replicates over "
        f"{comparison.a.documents} documents, seed {comparison.a.seed})"
    )
    if comparison.note:
        title += f"; {comparison.note}"
    rows = []
    for m in RECORD.measures:
        d = comparison.differences.get(m.name)
        if d is not None:
            share = "—" if d.share_better is None else f"{d.better}/{d.compared} ({100 * d.share_better:.3g}%)"
            rows.append([m.label, d.a, d.b, d.difference, d.low, d.high, share])
    tables: list[Table] = [
        ("A and B", ["quantity", "A", "B"], facts),
        (title, ["measure", "A", "B", "B - A", "95% low", "95% high", "B better on"], rows),
    ]
    print_tables(tables, args.format, payload, args.precision)
