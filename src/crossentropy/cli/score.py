"""``crossentropy score FILE``: score a file of predictions of any size, in this process or on Dask."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

from .. import InputError
from ..conventions import NAMES
from ..scoring import TOP_CLASSES, ScoreOptions, describe_rejection, score_file, top_classes
from .arguments import Commands, add_format, add_progress, base, number, positive_int
from .output import Fixed, Table, error_line, print_note, print_tables, progress_bar, write_report

__all__ = ["DECIMALS", "WORST_ROWS_IN_REPORT", "options", "register", "run"]

DECIMALS = 4
"""Decimals of the losses and fractions in the tables (JSON keeps every digit)."""
WORST_ROWS_IN_REPORT = 10
"""Rows with the largest loss listed by ``--report`` unless ``--worst-rows`` says otherwise."""


def register(commands: Commands) -> None:
    """Add the ``score`` command."""
    score = commands.add_parser(
        "score",
        help="score a file of predictions (CSV, Parquet, NPY/NPZ) of any size",
        epilog="examples:\n  crossentropy score preds.parquet --probs 'p_*' --per-class --calibration\n"
        "  cat preds.csv | crossentropy score - --logits logit --format json\n"
        "  crossentropy score preds.csv --calibrate temperature --report report.html\n"
        "  crossentropy score test.csv --calibrate-on validation.csv --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument(
        "file",
        metavar="FILE",
        help="a .csv/.tsv, .parquet, .npy or .npz file, a directory or glob of Parquet/CSV files, an fsspec URL "
        "(file://, memory://, s3://...); -, /dev/stdin or a FIFO read CSV as a stream",
    )
    score.add_argument("--labels", metavar="COL", help="label column (default: label, labels, y, y_true or target)")
    group = score.add_mutually_exclusive_group()
    group.add_argument("--probs", metavar="COLS", help="probability columns, comma-separated glob patterns")
    group.add_argument("--logits", metavar="COLS", help="logit columns, comma-separated glob patterns")
    score.add_argument("--sample-weight", metavar="COL", help="per-row weight column")
    score.add_argument("--convention", choices=list(NAMES), default="exact", help="named convention (default exact)")
    score.add_argument("--base", type=base, default=None, help="logarithm base (2 for bits; default nats)")
    score.add_argument(
        "--per-class", action="store_true", help="print each class's loss, precision, recall and predicted rows"
    )
    score.add_argument(
        "--top-classes",
        type=positive_int,
        default=TOP_CLASSES,
        metavar="K",
        help=f"in the per-class table and the report, the K classes with the largest share of the total loss, the "
        f"others summed in one row (default {TOP_CLASSES}; 0: every class); JSON lists every class",
    )
    score.add_argument("--calibration", action="store_true", help="print the reliability bins")
    score.add_argument("--bins", type=positive_int, default=10, help="calibration bins (default 10)")
    score.add_argument(
        "--bootstrap",
        type=positive_int,
        default=0,
        metavar="N",
        help="N Poisson-bootstrap replicates for a 95%% interval of the mean loss",
    )
    score.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    score.add_argument(
        "--on-bad-row",
        choices=["error", "skip"],
        default="error",
        help="stop at the first row that cannot be scored (default), or skip and count it",
    )
    score.add_argument("--delimiter", help="CSV delimiter, one character or \\t (default , or tab for .tsv)")
    score.add_argument(
        "--atol",
        type=float,
        metavar="X",
        help="allowed deviation of a probability row's sum from 1 (default: from the stored precision: "
        "sqrt(eps) of the dtype, or C/2 * 10^-k for values written with k decimals)",
    )
    score.add_argument(
        "--renormalize",
        action="store_true",
        help="divide each probability row by its sum instead of checking that it sums to 1",
    )
    score.add_argument("--report", metavar="FILE", help="write a self-contained HTML report")
    score.add_argument(
        "--worst-rows",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"list the N rows with the largest loss (default: {WORST_ROWS_IN_REPORT} with --report, else none)",
    )
    score.add_argument(
        "--calibrate",
        choices=["temperature"],
        help="fit a temperature to the predictions; report the loss and calibration error before and after it "
        "(fitted by cross-fitting on the scored rows, or on --calibrate-on FILE)",
    )
    score.add_argument(
        "--folds",
        type=positive_int,
        default=5,
        metavar="K",
        help="with --calibrate: folds of the cross-fitting, so that the 'after' is measured on rows the fit did "
        "not see (default 5)",
    )
    score.add_argument(
        "--calibrate-on",
        metavar="FILE",
        help="fit the temperature on this held-out file (same columns and classes) instead; implies --calibrate "
        "temperature",
    )
    score.add_argument(
        "--engine",
        choices=["local", "dask"],
        default="local",
        help="local: stream in this process (default); dask: map-reduce on a Dask cluster",
    )
    score.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: an existing scheduler, e.g. tcp://host:8786 (default: a LocalCluster)",
    )
    score.add_argument(
        "--workers",
        type=positive_int,
        default=0,
        metavar="N",
        help="with --engine dask and no --scheduler: worker processes of the LocalCluster (default: one per core)",
    )
    score.add_argument(
        "--fail-above", type=number, metavar="X", help="exit 1 when the mean loss is above X (a number, not NaN)"
    )
    add_progress(score)
    add_format(score)
    score.set_defaults(run=run)


def _patterns(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def options(args: argparse.Namespace) -> ScoreOptions:
    """The options both scoring engines take, from the command line."""
    delimiter = args.delimiter
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    return ScoreOptions(
        labels=args.labels,
        probs=_patterns(args.probs),
        logits=_patterns(args.logits),
        sample_weight=args.sample_weight,
        convention=args.convention,
        base=args.base,
        bins=args.bins,
        bootstrap=args.bootstrap,
        seed=args.seed,
        atol=args.atol,
        renormalize=args.renormalize,
        on_bad_row=args.on_bad_row,
        delimiter=delimiter,
        worst_rows=args.worst_rows if args.worst_rows is not None else WORST_ROWS_IN_REPORT if args.report else 0,
        calibrate="temperature" if args.calibrate_on else args.calibrate,
        folds=args.folds,
        calibrate_on=args.calibrate_on,
    )


def run(args: argparse.Namespace) -> int:
    """Score the file, warn about skipped rows, write the report, print the tables; 1 above ``--fail-above``."""
    chosen = options(args)
    with progress_bar(args.progress, "scoring", args.file, "rows", "percent") as update:
        progress = None
        if update is not None:

            def progress(rows: int, fraction: float | None) -> None:
                if fraction is None:
                    update(count=rows)
                else:
                    update(total=1.0, completed=fraction, count=rows)

        if args.engine == "dask":
            result = _score_with_dask(args, chosen, progress)
        else:
            result = score_file(args.file, chosen, progress=progress)
    rejected, read = result["rows_rejected"], result["rows_read"]
    if rejected > 0.01 * read:
        reasons = ", ".join(f"{n:,} {why}" for why, n in list(result["rejected_reasons"].items())[:3])
        first = "; ".join(describe_rejection(e, hint=False) for e in result["rejected"][:2])
        hint = "; see --atol or --renormalize" if "probabilities do not sum to 1" in result["rejected_reasons"] else ""
        warning = f"skipped {rejected:,} of {read:,} rows ({rejected / read:.1%}): {reasons}; first: {first}{hint}"
        print(f"crossentropy: warning: {error_line(warning)}", file=sys.stderr)
    if args.report:
        _write_report(args.report, result, args.top_classes)
    _print_score(result, args)
    if args.fail_above is not None and not result["mean_loss"] <= args.fail_above:
        print(
            f"crossentropy: mean loss {result['mean_loss']:.6g} is above --fail-above {args.fail_above:g}",
            file=sys.stderr,
        )
        return 1
    return 0


def _write_report(path: str, result: dict[str, Any], top: int) -> None:
    from .._report import render

    summary = {k: result[k] for k in ("file", "rows_read", "rows_scored", "rows_rejected")}
    write_report(path, render(summary, result, top_classes=top))


def _score_with_dask(args: argparse.Namespace, chosen: ScoreOptions, progress: Any) -> dict[str, Any]:
    """``score --engine dask``: the cluster at ``--scheduler``, or a LocalCluster of ``--workers`` processes."""
    try:
        from distributed import Client, LocalCluster

        from .. import dask as ce_dask
    except ImportError:
        raise InputError("--engine dask needs dask and distributed: pip install 'crossentropy[dask]'") from None
    cluster = None
    try:
        if args.scheduler:
            client = Client(args.scheduler, timeout="20s")
        else:
            cluster = LocalCluster(
                n_workers=args.workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0" if progress is not None else None,
            )
            client = Client(cluster)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler {args.scheduler}: {exc}") from None
    try:
        with client:
            if progress is not None:
                print(f"crossentropy: Dask dashboard at {client.dashboard_link}", file=sys.stderr)
            return ce_dask.score(args.file, chosen, scheduler=client, progress=progress)
    finally:
        if cluster is not None:
            cluster.close()


def _print_score(result: dict[str, Any], args: argparse.Namespace) -> None:
    unit = result["unit"]
    calibration = result["calibration"]
    summary_rows = [
        ["file", result["file"]],
        ["rows read", result["rows_read"]],
        ["rows scored", result["rows_scored"]],
        ["rows rejected", result["rows_rejected"]],
        ["classes", result["classes"]],
        ["convention", result["convention"]],
        [f"mean loss ({unit})", Fixed(result["mean_loss"], DECIMALS)],
        [f"baseline: class frequencies ({unit})", Fixed(result["baseline_loss"], DECIMALS)],
        ["accuracy", Fixed(result["accuracy"], DECIMALS)],
    ]
    if "bootstrap" in result:
        lo, hi = (str(Fixed(v, DECIMALS)) for v in result["bootstrap"]["ci95"])
        summary_rows.append(
            [f"95% CI of the mean ({result['bootstrap']['replicates']} bootstrap replicates, {unit})", f"[{lo}, {hi}]"]
        )
    summary_rows.append([f"expected calibration error ({calibration['kind']})", Fixed(calibration["ece"], DECIMALS)])
    summary_rows.append(["calibration", calibration["verdict"]])
    tables: list[Table] = [("score", ["quantity", "value"], summary_rows)]
    if result["rejected"]:
        tables.append(
            (
                f"rejected rows (first {len(result['rejected'])} of {result['rows_rejected']})",
                ["row", "line", "column", "reason"],
                [
                    [r["row"], r["line"], r["column"], f"{r['reason']} ({r['detail']})" if r["detail"] else r["reason"]]
                    for r in result["rejected"]
                ],
            )
        )
    if args.per_class:
        view = top_classes(result["per_class"], args.top_classes)
        shown = view["shown"] + ([view["rest"]] if view["rest"] else [])
        tables.append(
            (
                "per class" if view["rest"] is None else f"per class: {view['rule']} (see --top-classes)",
                ["class", "rows", f"mean loss ({unit})", "precision", "recall", "predicted"],
                [
                    [
                        c["class"],
                        c["count"],
                        Fixed(c["mean_loss"], DECIMALS),
                        Fixed(c["precision"], DECIMALS),
                        Fixed(c["recall"], DECIMALS),
                        c["predicted"],
                    ]
                    for c in shown
                ],
            )
        )
    if args.calibration:
        tables.append(
            (
                f"calibration ({calibration['kind']})",
                ["bin", "rows", "mean confidence", "observed", "reading"],
                [
                    [
                        f"{b['lower']:.2f}-{b['upper']:.2f}",
                        b["count"],
                        Fixed(b["confidence"], DECIMALS),
                        Fixed(b["observed"], DECIMALS),
                        _READINGS.get(b.get("reading"), "—"),
                    ]
                    for b in calibration["bins"]
                ],
            )
        )
    if "temperature" in calibration:
        tables.append(_temperature_table(calibration, unit))
    if result.get("worst_rows"):
        tables.append(_worst_rows_table(result, unit))
    payload = dict(result)
    if not args.per_class:
        payload.pop("per_class")
    if not args.calibration:
        payload["calibration"] = {k: v for k, v in calibration.items() if k != "bins"}
    histogram = payload.pop("loss_histogram")
    payload["rows_infinite_loss"] = histogram["infinite"]
    print_tables(tables, args.format, payload)
    for note in _notes(result, histogram["infinite"]):
        print_note(note, args.format)


_READINGS = {"within": "within", "over": "overconfident", "under": "underconfident"}


def _temperature_table(calibration: dict[str, Any], unit: str) -> Table:
    """Before and after the temperature: the mean loss, the calibration error and the verdict."""
    return (
        f"temperature scaling: T = {calibration['temperature']:.4g} ({calibration['fitted_on']})",
        ["quantity", "before", "after"],
        [
            [
                f"mean loss ({unit})",
                Fixed(calibration["mean_loss_before"], DECIMALS),
                Fixed(calibration["mean_loss_after"], DECIMALS),
            ],
            [
                "expected calibration error",
                Fixed(calibration["ece_before"], DECIMALS),
                Fixed(calibration["ece_after"], DECIMALS),
            ],
            ["calibration", calibration["verdict"], calibration["verdict_after"]],
        ],
    )


def _worst_rows_table(result: dict[str, Any], unit: str) -> Table:
    rows = result["worst_rows"]
    return (
        f"the {len(rows)} rows with the largest loss",
        ["row", "label", f"loss ({unit})", "P(label)", "predicted", "P(predicted)"],
        [
            [
                w["row"],
                w["label"],
                Fixed(w["loss"], DECIMALS),
                Fixed(w["label_probability"], DECIMALS),
                w["predicted"],
                Fixed(w["predicted_probability"], DECIMALS),
            ]
            for w in rows
        ],
    )


def _notes(result: dict[str, Any], infinite: int) -> list[str]:
    """Sentences under the tables: why a mean loss is infinite, the calibration verdict's reason, the fix."""
    notes = []
    if math.isinf(result["mean_loss"]):
        some = "1 row gives its label" if infinite == 1 else f"{infinite:,} rows give their label"
        notes.append(
            f"The mean loss is infinite: {some} probability 0 (a loss of -log 0 = inf) out of "
            f"{result['rows_scored']:,} scored. A convention that clips probabilities, as the libraries do, keeps "
            f"it finite: see --convention (keras, tf-keras2, sklearn)."
        )
    calibration = result["calibration"]
    if calibration["verdict"] is not None:
        notes.append(f"Calibration: {calibration['verdict']}: {calibration['verdict_reason']}.")
    if "temperature" in calibration:
        notes.append(_temperature_sentence(calibration, result["unit"]))
    return notes


def _temperature_sentence(calibration: dict[str, Any], unit: str) -> str:
    """``A temperature of T would lower the loss from A to B``, or say that it would not."""
    t, before, after = calibration["temperature"], calibration["mean_loss_before"], calibration["mean_loss_after"]
    decimals = DECIMALS
    while decimals < 12 and str(Fixed(before, decimals)) == str(Fixed(after, decimals)):
        decimals += 1  # a small improvement still shows: 0.68462 to 0.68458, not 0.6846 to 0.6846
    a, b = Fixed(before, decimals), Fixed(after, decimals)
    if after < before:
        return (
            f"A temperature of {t:.4g} would lower the loss from {a} to {b} {unit} "
            f"(measured by {calibration['fitted_on']})."
        )
    return f"No temperature lowers the loss: {a} {unit} before, {b} after (measured by {calibration['fitted_on']})."
