"""The ``crossentropy`` command line: parse, call the library, print.

Exit status: 0 on success, 1 when the numbers were computed but a requested
check failed (a tutorial number that does not reproduce, ``score
--fail-above``), 2 for bad usage or bad input (one line on stderr, never a
traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import io
import json
import math
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ._validation import InputError

EXAMPLES = """\
examples:
  crossentropy compare 0.1,0.4,0.5 0.8,0.15,0.05 --base 2 --names red,green,blue
  crossentropy score predictions.parquet --labels label --probs 'p_*' --per-class --calibration
  crossentropy score preds.csv --logits logit --convention torch --format json
  crossentropy tutorial --plots figures/ --lang ko
  crossentropy train --dataset digits --plot curves.png
  crossentropy perplexity ./my-model corpus.txt --context 1024 --format json
  crossentropy explore
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if math.isnan(v):
            return None
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


DEFAULT_PRECISION = 6


def _number(value: Any, precision: int = DEFAULT_PRECISION) -> str:
    """A table cell: floats to ``precision`` significant digits, ``—`` for a missing value."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return "nan" if math.isnan(v) else f"{v:.{precision}g}"
    return str(value)


def _print_tables(
    tables: list[tuple[str, list[str], list[list[Any]]]],
    fmt: str,
    payload: Any,
    precision: int = DEFAULT_PRECISION,
) -> None:
    """Print titled tables as rich tables, CSV sections, or ``payload`` as JSON.

    Tables take the terminal's width (80 columns when stdout is not a
    terminal and ``COLUMNS`` is unset); floats show ``precision``
    significant digits, while JSON keeps every digit.
    """
    if fmt == "json":
        json.dump(_jsonable(payload), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        for title, headers, rows in tables:
            writer.writerow(["section", *headers])
            for row in rows:
                writer.writerow([title, *(_number(v, precision) for v in row)])
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, soft_wrap=False)
    for title, headers, rows in tables:
        table = Table(title=title or None, title_justify="left")
        for i, h in enumerate(headers):
            table.add_column(h, justify="left" if i == 0 else "right", overflow="fold")
        for row in rows:
            table.add_row(*(_number(v, precision) for v in row))
        console.print(table)


# --- compare ----------------------------------------------------------------------------------------


MAX_DISTRIBUTION_EVENTS = 1 << 24
"""The most events ``compare`` reads from a file (a larger array is refused, not allocated)."""


def _read_distribution(text: str, name: str) -> np.ndarray[Any, Any]:
    """A distribution from a comma list, or from a .npy or text file of numbers (at most 2**24 events)."""
    if os.path.exists(text):
        if text.endswith(".npy"):
            return _read_npy_distribution(text, name)
        try:
            size = os.path.getsize(text)
            if size > 32 * MAX_DISTRIBUTION_EVENTS:
                raise InputError(f"{name}: {text} has {size:,} bytes; a distribution file may have at most "
                                 f"{32 * MAX_DISTRIBUTION_EVENTS:,}")  # fmt: skip
            text = Path(text).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{name}: cannot read {text}: {exc}") from None
    items = [t for t in text.replace(",", " ").split() if t]
    if not items:
        raise InputError(f"{name} is empty; give numbers like 0.1,0.4,0.5 or a file")
    values = []
    for i, item in enumerate(items):
        try:
            values.append(float(item))
        except ValueError:
            raise InputError(f"{name}[{i}] = {item!r} is not a number") from None
    return np.asarray(values)


def _read_npy_distribution(path: str, name: str) -> np.ndarray[Any, Any]:
    """The numbers of a .npy file, checking its declared shape before reading any data."""
    from .io import read_npy_header

    try:
        with open(path, "rb") as handle:
            header = read_npy_header(handle, f"{name}: {path}")
            count = header.nbytes // max(header.dtype.itemsize, 1)
            if count > MAX_DISTRIBUTION_EVENTS:
                raise InputError(
                    f"{name}: {path} declares shape {header.shape} ({count:,} events); "
                    f"a distribution may have at most {MAX_DISTRIBUTION_EVENTS:,}"
                )
            data = handle.read(header.nbytes)
        if len(data) < header.nbytes:
            raise InputError(f"{name}: {path} is truncated: shape {header.shape} needs {header.nbytes:,} bytes of data")
        array = np.frombuffer(data, dtype=header.dtype).reshape(header.shape, order="F" if header.fortran else "C")
        return np.asarray(array, dtype=float).reshape(-1)
    except (ValueError, TypeError, OSError) as exc:
        raise InputError(f"{name}: cannot read {path}: {exc}") from None


def _compare_continuous(args: argparse.Namespace) -> int:
    from . import continuous as cc

    p = cc.parse_distribution(args.p)
    q = cc.parse_distribution(args.q)
    b = args.base
    unit = "nats" if b is None else ("bits" if b == 2 else f"log base {b:g}")
    estimates = {
        "H(P)": cc.entropy(p, base=b),
        "H(Q)": cc.entropy(q, base=b),
        "H(P,Q)": cc.cross_entropy(p, q, base=b),
        "H(Q,P)": cc.cross_entropy(q, p, base=b),
        "KL(P||Q)": cc.kl_divergence(p, q, base=b),
        "KL(Q||P)": cc.kl_divergence(q, p, base=b),
    }
    if args.plot:
        _save_figure(
            args.plot,
            lambda ax: _plot().densities(p, q, labels=(f"P = {args.p}", f"Q = {args.q}"), ax=ax),
        )
    payload = {
        "unit": unit,
        "P": args.p,
        "Q": args.q,
        **{k: {"value": e.value, "error": e.error, "method": e.method} for k, e in estimates.items()},
    }
    rows = [[k, e.value, e.error, e.method] for k, e in estimates.items()]
    _print_tables(
        [(f"P = {args.p}, Q = {args.q}", ["quantity", unit, "error", "method"], rows)],
        args.format,
        payload,
        args.precision,
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    from ._information import cross_entropy, entropy, js_divergence, kl_divergence

    if args.continuous:
        return _compare_continuous(args)
    p = _read_distribution(args.p, "P")
    q = _read_distribution(args.q, "Q")
    if p.size != q.size:
        raise InputError(f"P has {p.size} events but Q has {q.size}")
    names = args.names.split(",") if args.names else None
    if names is not None and len(names) != p.size:
        raise InputError(f"--names has {len(names)} names for {p.size} events")
    b = args.base
    unit = "nats" if b is None else ("bits" if b == 2 else f"log base {b:g}")
    values = {
        "H(P)": entropy(p, base=b),
        "H(Q)": entropy(q, base=b),
        "H(P,Q)": cross_entropy(p, q, base=b),
        "H(Q,P)": cross_entropy(q, p, base=b),
        "KL(P||Q)": kl_divergence(p, q, base=b),
        "KL(Q||P)": kl_divergence(q, p, base=b),
        "JS(P,Q)": js_divergence(p, q, base=b),
    }
    values = {k: float(v) for k, v in values.items()}
    if args.plot:
        _save_figure(args.plot, lambda ax: _plot().distributions(p, q, names=names, ax=ax))
    payload = {"unit": unit, "P": p.tolist(), "Q": q.tolist(), "names": names, **values}
    _print_tables(
        [("P versus Q", ["quantity", unit], [[k, v] for k, v in values.items()])],
        args.format,
        payload,
        args.precision,
    )
    return 0


def _plot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from . import plot

    return plot


def _save_figure(path: str, draw: Any) -> None:
    _plot()
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    draw(fig.add_subplot())
    _write_figure(fig, path)


def _write_figure(fig: Any, path: str) -> None:
    """Write ``fig`` atomically (a full disk never leaves a truncated file); one line on stderr."""
    from .io import save_figure

    try:
        save_figure(fig, path, dpi=100)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot write the figure {path}: {exc}") from None
    print(f"wrote {path}", file=sys.stderr)


# --- score ------------------------------------------------------------------------------------------


def _patterns(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _score_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options both scoring engines take, from the command line."""
    delimiter = args.delimiter
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    return {
        "labels": args.labels,
        "probs": _patterns(args.probs),
        "logits": _patterns(args.logits),
        "sample_weight": args.sample_weight,
        "convention": args.convention,
        "base": args.base,
        "bins": args.bins,
        "bootstrap": args.bootstrap,
        "seed": args.seed,
        "atol": args.atol,
        "renormalize": args.renormalize,
        "on_bad_row": args.on_bad_row,
        "delimiter": delimiter,
    }


def _score(args: argparse.Namespace) -> int:
    from ._scoring import describe_rejection, score_file

    with _progress_bar(args.progress, "scoring", args.file, "rows", "percent") as update:
        progress = None
        if update is not None:

            def progress(rows: int, fraction: float | None) -> None:
                if fraction is None:
                    update(count=rows)
                else:
                    update(total=1.0, completed=fraction, count=rows)

        if args.engine == "dask":
            result = _score_with_dask(args, progress)
        else:
            result = score_file(args.file, **_score_options(args), progress=progress)
    rejected, read = result["rows_rejected"], result["rows_read"]
    if rejected > 0.01 * read:
        reasons = ", ".join(f"{n:,} {why}" for why, n in list(result["rejected_reasons"].items())[:3])
        first = "; ".join(describe_rejection(e, hint=False) for e in result["rejected"][:2])
        hint = "; see --atol or --renormalize" if "probabilities do not sum to 1" in result["rejected_reasons"] else ""
        print(
            f"crossentropy: warning: skipped {rejected:,} of {read:,} rows ({rejected / read:.1%}): {reasons}; "
            f"first: {first}{hint}",
            file=sys.stderr,
        )
    if args.report:
        from ._report import render
        from .io import atomic_write

        summary = {k: result[k] for k in ("file", "rows_read", "rows_scored", "rows_rejected")}
        page = render(summary, result)
        try:
            with atomic_write(args.report, "w") as handle:
                handle.write(page)
        except OSError as exc:
            raise InputError(f"cannot write the report {args.report}: {exc.strerror or exc}") from None
        print(f"wrote {args.report}", file=sys.stderr)
    _print_score(result, args)
    if args.fail_above is not None and not result["mean_loss"] <= args.fail_above:
        print(
            f"crossentropy: mean loss {result['mean_loss']:.6g} is above --fail-above {args.fail_above:g}",
            file=sys.stderr,
        )
        return 1
    return 0


def _score_with_dask(args: argparse.Namespace, progress: Any) -> dict[str, Any]:
    """``score --engine dask``: the cluster at ``--scheduler``, or a LocalCluster of ``--workers`` processes."""
    try:
        from distributed import Client, LocalCluster

        from . import dask as ce_dask
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
            return ce_dask.score(args.file, **_score_options(args), scheduler=client, progress=progress)
    finally:
        if cluster is not None:
            cluster.close()


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(file=sys.stderr)


@contextlib.contextmanager
def _progress_bar(show: bool | None, label: str, file: str, unit: str, amount: str) -> Iterator[Any]:
    """A transient progress bar on stderr while the block runs, or none (``show`` None: when stderr is a terminal).

    It reads ``<label> <file>``, the bar, the amount done (``amount``:
    ``"percent"`` or ``"bytes"``), a count of ``unit``, the elapsed time and
    the ETA. Yields ``update(**fields)`` (rich's ``Progress.update`` of the
    task: ``total``, ``completed``, ``count``), or None without a bar.
    """
    if not (show if show is not None else sys.stderr.isatty()):
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn(f"{label} {{task.fields[file]}}"),
        BarColumn(),
        DownloadColumn() if amount == "bytes" else TaskProgressColumn(),
        TextColumn(f"{{task.fields[count]:,}} {unit}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=True,
        console=_stderr_console(),
    )
    task = bar.add_task(label, total=None, file=file, count=0)
    with bar:
        yield functools.partial(bar.update, task)


def _print_score(result: dict[str, Any], args: argparse.Namespace) -> None:
    summary_rows = [
        ["file", result["file"]],
        ["rows read", result["rows_read"]],
        ["rows scored", result["rows_scored"]],
        ["rows rejected", result["rows_rejected"]],
        ["classes", result["classes"]],
        ["convention", result["convention"]],
        [f"mean loss ({result['unit']})", result["mean_loss"]],
        [f"baseline: class frequencies ({result['unit']})", result["baseline_loss"]],
        ["accuracy", result["accuracy"]],
    ]
    if "bootstrap" in result:
        lo, hi = result["bootstrap"]["ci95"]
        summary_rows.append(
            [f"95% CI of the mean ({result['bootstrap']['replicates']} bootstrap replicates)", f"[{lo:.6g}, {hi:.6g}]"]
        )
    summary_rows.append([f"expected calibration error ({result['calibration']['kind']})", result["calibration"]["ece"]])
    tables: list[tuple[str, list[str], list[list[Any]]]] = [("score", ["quantity", "value"], summary_rows)]
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
        tables.append(
            (
                "per class",
                ["class", "rows", "mean loss", "precision", "recall", "predicted"],
                [
                    [c["class"], c["count"], c["mean_loss"], c["precision"], c["recall"], c["predicted"]]
                    for c in result["per_class"]
                ],
            )
        )
    if args.calibration:
        tables.append(
            (
                "calibration",
                ["bin", "rows", "mean confidence", "observed"],
                [
                    [f"{b['lower']:.2f}-{b['upper']:.2f}", b["count"], b["confidence"], b["observed"]]
                    for b in result["calibration"]["bins"]
                ],
            )
        )
    payload = dict(result)
    if not args.per_class:
        payload.pop("per_class")
    if not args.calibration:
        payload["calibration"] = {k: v for k, v in result["calibration"].items() if k != "bins"}
    payload.pop("loss_histogram")
    _print_tables(tables, args.format, payload)


# --- tutorial -----------------------------------------------------------------------------------------


def _tutorial(args: argparse.Namespace) -> int:
    from ._tutorial import sections, write_plots

    lang = args.lang
    all_sections = sections()
    if args.plots:
        try:
            for path in write_plots(args.plots):
                print(f"wrote {path}", file=sys.stderr)
        except OSError as exc:
            raise InputError(f"cannot write the plots to {args.plots}: {exc}") from None
    failed = [c for s in all_sections for c in s.checks if c.ok is False]
    if args.format == "json":
        payload = {
            "sections": [
                {
                    "key": s.key,
                    "title": s.title[lang],
                    "text": s.text[lang],
                    "checks": [
                        {"quantity": c.label[lang], "computed": c.computed, "reported": c.reported, "ok": c.ok}
                        for c in s.checks
                    ],
                }
                for s in all_sections
            ],
            "all_reproduced": not failed,
        }
        _print_tables([], "json", payload)
    else:
        headers = ["quantity", "computed", "text", "ok"] if lang == "en" else ["값", "계산", "원문", "일치"]
        verdict = {True: "yes", False: "NO", None: "—"} if lang == "en" else {True: "예", False: "아니오", None: "—"}
        tables = [
            (
                f"[{s.key}] {s.title[lang]}",
                headers,
                [[c.label[lang], c.computed, c.reported or "", verdict[c.ok]] for c in s.checks],
            )
            for s in all_sections
        ]
        if args.format == "table":
            from rich.console import Console
            from rich.markup import escape

            console = Console(file=sys.stdout)
            for s, table in zip(all_sections, tables, strict=True):
                console.print(f"\n[bold]{escape(table[0])}[/bold]\n{escape(s.text[lang])}", highlight=False)
                _print_tables([("", table[1], table[2])], "table", None, args.precision)
        else:
            _print_tables(tables, "csv", None, args.precision)
        total = sum(1 for s in all_sections for c in s.checks if c.ok is not None)
        message = (
            f"{total - len(failed)} of {total} reported numbers reproduced"
            if lang == "en"
            else f"원문의 수치 {total}개 중 {total - len(failed)}개 재현"
        )
        print(message, file=sys.stderr)
    return 1 if failed else 0


# --- train ------------------------------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    from .learn import load_dataset, train

    X_train, X_test, y_train, y_test = load_dataset(args.dataset, seed=args.seed)
    histories = {
        loss: train(
            X_train,
            y_train,
            X_test,
            y_test,
            model=args.model,
            loss=loss,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            hidden=args.hidden,
            init=args.init,
            seed=args.seed,
        )
        for loss in ("ce", "mse")
    }
    ce_h, mse_h = histories["ce"], histories["mse"]
    every = args.every or max(1, args.epochs // 20)
    epochs = sorted(set(range(0, args.epochs + 1, every)) | {args.epochs})
    rows = [
        [
            e,
            ce_h.train_loss[e],
            ce_h.test_cross_entropy[e],
            ce_h.test_accuracy[e],
            mse_h.train_loss[e],
            mse_h.test_cross_entropy[e],
            mse_h.test_accuracy[e],
        ]
        for e in epochs
    ]
    ratio = ce_h.gradient_norm[0] / mse_h.gradient_norm[0] if mse_h.gradient_norm[0] else math.inf

    def reached(h: Any) -> Any:
        epoch = h.epochs_to(args.target)
        return f"not in {args.epochs}" if epoch is None else epoch

    summary: list[list[Any]] = [
        [f"epochs to {args.target:.0%} test accuracy", reached(ce_h), reached(mse_h)],
        ["final test accuracy", ce_h.test_accuracy[-1], mse_h.test_accuracy[-1]],
        ["final test cross-entropy", ce_h.test_cross_entropy[-1], mse_h.test_cross_entropy[-1]],
        ["gradient norm at the start", ce_h.gradient_norm[0], mse_h.gradient_norm[0]],
    ]
    title = f"{args.model} on {args.dataset} ({args.init} start, lr {args.lr:g})"
    if args.plot:
        _save_training_plot(args.plot, histories, title)
    payload = {
        "dataset": args.dataset,
        "model": args.model,
        "init": args.init,
        "lr": args.lr,
        "epochs": args.epochs,
        "target_accuracy": args.target,
        "epochs_to_target": {"ce": ce_h.epochs_to(args.target), "mse": mse_h.epochs_to(args.target)},
        "initial_gradient_norm_ratio": ratio,
        "history": {k: h.as_dict() for k, h in histories.items()},
    }
    _print_tables(
        [
            (
                title,
                [
                    "epoch",
                    "CE\ntrain\nloss",
                    "CE\ntest CE\n(nats)",
                    "CE\ntest\naccuracy",
                    "MSE\ntrain\nloss",
                    "MSE\ntest CE\n(nats)",
                    "MSE\ntest\naccuracy",
                ],
                rows,
            ),
            ("summary (CE: trained with cross-entropy; MSE: with squared error)", ["", "CE", "MSE"], summary),
        ],
        args.format,
        payload,
        args.precision,
    )
    if args.format == "table":
        print(
            f"at the start, the squared-error gradient is {ratio:.3g} times smaller than cross-entropy's",
            file=sys.stderr,
        )
    return 0


def _save_training_plot(path: str, histories: dict[str, Any], title: str) -> None:
    """The two runs side by side: test accuracy, test cross-entropy and the gradient norm, per epoch."""
    plot = _plot()
    from matplotlib.figure import Figure

    named = {
        "trained with cross-entropy": histories["ce"].as_dict(),
        "trained with squared error": histories["mse"].as_dict(),
    }
    fig = Figure(figsize=(15, 4.4), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    plot.learning_curves(named, metric="test_accuracy", title="Test accuracy", ax=a)
    plot.learning_curves(named, metric="test_cross_entropy", title="Test cross-entropy", ax=b)
    plot.learning_curves(named, metric="gradient_norm", title="Size of the gradient (log scale)", log=True, ax=c)
    fig.suptitle(f"Cross-entropy versus squared error: {title}")
    _write_figure(fig, path)


# --- explore --------------------------------------------------------------------------------------------


def _explore(args: argparse.Namespace) -> int:
    from ._explore import make_server

    try:
        server = make_server(args.port)
    except OSError as exc:
        raise InputError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    host, port = server.server_address[:2]
    address = f"http://{host!s}:{port}/"
    print(f"crossentropy explore: serving {address} (Ctrl-C stops)", flush=True)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        if not args.no_browser:
            import webbrowser

            webbrowser.open(address)
        server.serve_forever()
    except KeyboardInterrupt:
        print("crossentropy explore: stopped", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return 0


# --- perplexity ---------------------------------------------------------------------------------------


def _run_perplexity(args: argparse.Namespace) -> int:
    try:
        from .transformers import perplexity
    except ImportError:
        raise InputError("perplexity needs torch and transformers: pip install 'crossentropy[transformers]'") from None
    with _progress_bar(args.progress, "perplexity", args.text_file, "tokens", "bytes") as update:
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
    tables: list[tuple[str, list[str], list[list[Any]]]] = [("perplexity", ["quantity", "value"], rows)]
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
    _print_tables(tables, args.format, result, args.precision)
    return 0


# --- the parser ---------------------------------------------------------------------------------------


def _base(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid base {text!r}: a number > 0 and != 1") from None
    if not (value > 0 and value != 1 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"invalid base {text!r}: a number > 0 and != 1")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _precision(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of digits") from None
    if not 1 <= value <= 17:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 to 17 significant digits")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``crossentropy`` command."""
    from .conventions import NAMES

    parser = _Parser(
        prog="crossentropy",
        description="Cross-entropy and the information measures around it, exactly.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version, kernels, threads and backends")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add_format(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--format", choices=["table", "json", "csv"], default="table", help="output format (default: table)"
        )

    def add_progress(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="progress bar on stderr (default: when stderr is a terminal)",
        )

    def add_precision(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--precision",
            type=_precision,
            default=DEFAULT_PRECISION,
            metavar="DIGITS",
            help=f"significant digits in tables (default {DEFAULT_PRECISION}; JSON keeps every digit)",
        )

    compare = commands.add_parser(
        "compare",
        help="H(P), H(Q), H(P,Q), H(Q,P), KL both ways and JS of two distributions",
        epilog="examples:\n  crossentropy compare 0.1,0.4,0.5 0.8,0.15,0.05 --base 2 --plot pq.png\n"
        "  crossentropy compare --continuous 'norm(0, 1)' 'norm(1, 2)'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument(
        "p",
        metavar="P",
        help="comma-separated probabilities, a .npy / text file, or with --continuous a distribution like 'norm(0, 1)'",
    )
    compare.add_argument("q", metavar="Q", help="as P")
    compare.add_argument(
        "--continuous",
        action="store_true",
        help="P and Q are continuous distributions of scipy.stats, e.g. 'norm(0,1)' 'norm(1,2)'",
    )
    compare.add_argument("--base", type=_base, default=None, help="logarithm base (2 for bits; default nats)")
    compare.add_argument("--names", help="comma-separated event names, e.g. red,green,blue")
    compare.add_argument("--plot", metavar="FILE", help="draw both distributions side by side into FILE")
    add_format(compare)
    add_precision(compare)
    compare.set_defaults(run=_compare)

    score = commands.add_parser(
        "score",
        help="score a file of predictions (CSV, Parquet, NPY/NPZ) of any size",
        epilog="examples:\n  crossentropy score preds.parquet --probs 'p_*' --per-class --calibration\n"
        "  cat preds.csv | crossentropy score - --logits logit --format json",
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
    score.add_argument("--base", type=_base, default=None, help="logarithm base (2 for bits; default nats)")
    score.add_argument(
        "--per-class", action="store_true", help="print each class's loss, precision, recall and predicted rows"
    )
    score.add_argument("--calibration", action="store_true", help="print the reliability bins")
    score.add_argument("--bins", type=_positive_int, default=10, help="calibration bins (default 10)")
    score.add_argument(
        "--bootstrap",
        type=_positive_int,
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
        type=_positive_int,
        default=0,
        metavar="N",
        help="with --engine dask and no --scheduler: worker processes of the LocalCluster (default: one per core)",
    )
    score.add_argument("--fail-above", type=float, metavar="X", help="exit 1 when the mean loss is above X")
    add_progress(score)
    add_format(score)
    score.set_defaults(run=_score)

    tutorial = commands.add_parser(
        "tutorial",
        help="reproduce every worked example of the five teaching texts",
        epilog="example:\n  crossentropy tutorial --plots figures/ --lang ko",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tutorial.add_argument("--plots", metavar="DIR", help="write the teaching texts' figures as PNG files into DIR")
    tutorial.add_argument("--lang", choices=["en", "ko"], default="en", help="language of the text (default en)")
    add_format(tutorial)
    add_precision(tutorial)
    tutorial.set_defaults(run=_tutorial)

    trainer = commands.add_parser(
        "train",
        help="train a classifier with cross-entropy and with squared error, side by side",
        epilog="examples:\n  crossentropy train --dataset digits --plot curves.png\n"
        "  crossentropy train --model softmax --init saturated --epochs 100 --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    trainer.add_argument(
        "--dataset",
        choices=["breast_cancer", "digits", "iris", "wine"],
        default="digits",
        help="a data set shipped with scikit-learn (default digits)",
    )
    trainer.add_argument(
        "--model",
        choices=["logistic", "softmax", "mlp"],
        default="softmax",
        help="logistic (binary data only), softmax regression, or a one-hidden-layer MLP",
    )
    trainer.add_argument("--epochs", type=_positive_int, default=60, help="epochs (default 60)")
    trainer.add_argument("--lr", type=float, default=0.5, help="learning rate (default 0.5)")
    trainer.add_argument("--batch-size", type=int, default=None, help="mini-batch size (default: full batch)")
    trainer.add_argument("--hidden", type=int, default=32, help="hidden units of the MLP (default 32)")
    trainer.add_argument(
        "--init",
        choices=["random", "saturated"],
        default="random",
        help="saturated: start from confidently wrong weights",
    )
    trainer.add_argument("--target", type=float, default=0.9, help="test accuracy to reach (default 0.9)")
    trainer.add_argument("--seed", type=int, default=0, help="seed of the split and the weights (default 0)")
    trainer.add_argument("--every", type=int, default=None, help="print every N-th epoch (default: about 20 rows)")
    trainer.add_argument(
        "--plot", metavar="FILE", help="test accuracy, test cross-entropy and gradient size per epoch into FILE"
    )
    add_format(trainer)
    add_precision(trainer)
    trainer.set_defaults(run=_train)

    explore = commands.add_parser(
        "explore",
        help="a local page to edit P and Q and watch entropy, cross-entropy and KL change",
        epilog="example:\n  crossentropy explore --port 8765 --no-browser",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    explore.add_argument("--port", type=_positive_int, default=0, help="port on 127.0.0.1 (default: a free one)")
    explore.add_argument("--no-browser", action="store_true", help="print the address without opening a browser")
    explore.set_defaults(run=_explore)

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
        type=_positive_int,
        default=None,
        metavar="N",
        help="tokens per window (default: the model's maximum positions, else 2048)",
    )
    ppl.add_argument(
        "--stride",
        type=_positive_int,
        default=None,
        metavar="N",
        help="new tokens scored per window, at most --context (default: --context, disjoint windows)",
    )
    ppl.add_argument("--batch-size", type=_positive_int, default=1, metavar="N", help="windows per forward pass")
    ppl.add_argument(
        "--jsonl",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read TEXT_FILE as JSONL, one document per line (default: by its .jsonl/.ndjson suffix)",
    )
    ppl.add_argument("--field", default="text", help="the JSONL field holding a document's text (default text)")
    ppl.add_argument(
        "--prefix-token",
        type=_positive_int,
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
    ppl.set_defaults(run=_run_perplexity)

    info = commands.add_parser(
        "info",
        help="the version, whether the fast CPU kernels are built, their instruction set, threads and backends",
        epilog="examples:\n  crossentropy info\n  CROSSENTROPY_NUM_THREADS=1 crossentropy info --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("--format", choices=["table", "json"], default="table", help="output format (default: table)")
    info.set_defaults(run=_info)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: the same facts as ``crossentropy info``."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> NoReturn:
        from . import _about

        try:
            print(_about.render(_about.facts()), flush=True)
        except BrokenPipeError:
            _discard_stdout()
        parser.exit()


def _info(args: argparse.Namespace) -> int:
    from . import _about

    found = _about.facts()
    print(json.dumps(found, indent=2) if args.format == "json" else _about.render(found))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    A closed pipe on standard output (``crossentropy ... | head -1``) ends
    the command quietly with status 0, as ``cat`` does; a closed or full
    standard output is one line on stderr and status 2.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # no command: the help with the list of commands, as a usage error
        parser.print_help(sys.stderr)
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if sys.stdout is None:
        if sys.stderr is not None:
            print("crossentropy: error: standard output is closed", file=sys.stderr)
        return 2
    try:
        code = int(args.run(args))
        sys.stdout.flush()
        return code
    except InputError as exc:
        print(f"crossentropy: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("crossentropy: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return 0
    except SystemExit as exc:
        if exc.code == 1 and _stdout_is_devnull():
            return 0  # rich met a closed pipe, pointed stdout at /dev/null and exited 1
        raise
    except MemoryError:
        print("crossentropy: error: out of memory", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # writing standard output failed (a full disk, /dev/full)
            _discard_stdout()
        what = "cannot write the output" if exc.filename is None else f"{exc.filename}"
        print(f"crossentropy: error: {what}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def _stdout_is_devnull() -> bool:
    try:
        out, null = os.fstat(sys.stdout.fileno()), os.stat(os.devnull)
    except (OSError, ValueError, io.UnsupportedOperation, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (null.st_dev, null.st_ino)


def _discard_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
