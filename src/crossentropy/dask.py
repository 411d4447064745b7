"""Out-of-core scoring on Dask: the outputs of ``crossentropy score``, as a map-reduce.

Each partition of a Dask DataFrame (for example a directory of Parquet
files) is scored by its own :class:`~crossentropy._scoring.Scorer` on a
worker; the partial scores are sums, so they are merged in a tree with
compensated addition and the result equals the single-process score (to
rounding, about 1e-16 relative). Dask retries a partition whose worker dies.
The array-API functions of :mod:`crossentropy` also accept Dask arrays.

Importing this module imports dask.

Examples
--------
>>> import numpy as np, pandas as pd, dask.dataframe as dd
>>> from crossentropy.dask import score
>>> frame = pd.DataFrame({"label": [1, 0, 1, 0], "p": [0.8, 0.1, 0.9, 0.4]})
>>> result = score(dd.from_pandas(frame, npartitions=2), probs=["p"], scheduler="synchronous")
>>> print(f"{result['mean_loss']:.6f} over {result['rows_scored']} rows")
0.236173 over 4 rows
"""

from __future__ import annotations

from typing import Any

import dask
import numpy as np

from ._scoring import ScoreOptions, Scorer, resolve_columns
from ._validation import InputError, check_choice

__all__ = ["read", "score"]


def _score_partition(
    frame: Any, start: int, options: ScoreOptions, label: str, columns: list[str], weight: str | None, on_bad_row: str
) -> tuple[Scorer, int, list[dict[str, Any]], int]:
    """Score one pandas partition: the scorer, rows read, first rejected rows, rejected count."""
    scorer = Scorer(options)
    y = frame[label].to_numpy(dtype=np.float64, na_value=np.nan)
    if len(columns) == 1 and not options.binary:
        preds = np.stack([np.asarray(v, dtype=np.float64) for v in frame[columns[0]]])
    elif len(columns) == 1:
        preds = frame[columns[0]].to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        preds = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    w = None if weight is None else frame[weight].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = scorer.update(y, preds, w, start=start)
    if bad.rows and on_bad_row == "error":
        i = int(np.argmin(bad.rows))
        raise InputError(f"row {bad.rows[i] + 1}: {bad.reasons[i]}")
    listed = [{"row": r + 1, "reason": why} for r, why in sorted(zip(bad.rows, bad.reasons, strict=True))[:20]]
    return scorer, len(frame), listed, len(bad.rows)


def _merge(*parts: tuple[Scorer, int, list[dict[str, Any]], int]) -> tuple[Scorer, int, list[dict[str, Any]], int]:
    scorer, rows, listed, rejected = parts[0]
    merged = Scorer(scorer.options)
    merged.merge(scorer)
    for other, n, other_listed, other_rejected in parts[1:]:
        merged.merge(other)
        rows += n
        listed = listed + other_listed
        rejected += other_rejected
    return merged, rows, sorted(listed, key=lambda r: r["row"])[:20], rejected


def read(path: str, *, delimiter: str | None = None) -> Any:
    """A Dask DataFrame over a Parquet file or directory, or CSV files (glob patterns allowed)."""
    import glob
    import os

    import dask.dataframe as dd

    if not glob.glob(path):
        raise InputError(f"{path}: no such file or directory")
    try:
        if os.path.isdir(path) or path.lower().endswith((".parquet", ".pq")):
            return dd.read_parquet(path)
        if path.lower().endswith((".csv", ".tsv", ".txt")) or "*" in path:
            return dd.read_csv(path, sep=delimiter or ("\t" if ".tsv" in path else ","), blocksize="64MB")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read with Dask: {exc}") from None
    raise InputError(f"{path}: the Dask engine reads Parquet (files or directories) and CSV")


def score(
    data: Any,
    *,
    labels: str | None = None,
    probs: list[str] | None = None,
    logits: list[str] | None = None,
    sample_weight: str | None = None,
    convention: str = "exact",
    base: float | None = None,
    bins: int = 10,
    on_bad_row: str = "error",
    scheduler: Any = None,
    split_every: int = 8,
) -> dict[str, Any]:
    """Score a Dask DataFrame of predictions (or a path Dask can read as Parquet).

    Arguments as :func:`crossentropy._scoring.score_file` (``crossentropy
    score``); ``scheduler`` is passed to ``dask.compute`` (``None`` uses the
    current client or Dask's default); ``split_every`` is the fan-in of the
    merge tree.

    Returns
    -------
    dict
        The same fields as ``crossentropy score --format json``.
    """
    import dask.dataframe as dd

    check_choice("on_bad_row", on_bad_row, ("error", "skip"))
    if isinstance(data, str):
        data = read(data)
    if not isinstance(data, dd.DataFrame):
        raise InputError(f"data must be a Dask DataFrame or a Parquet path, got {type(data).__name__}")
    label, columns, from_logits = resolve_columns(
        [str(c) for c in data.columns], "<dask>", labels, probs, logits, sample_weight
    )
    first = data.get_partition(0).head(1, compute=True) if data.npartitions else None
    if first is None or len(first) == 0:
        raise InputError("no data rows")
    sample = first[columns[0]].iloc[0]
    list_column = len(columns) == 1 and not np.isscalar(sample)
    binary = len(columns) == 1 and not list_column
    classes = 2 if binary else (len(np.asarray(sample)) if list_column else len(columns))
    options = ScoreOptions(
        num_classes=classes, binary=binary, from_logits=from_logits, convention=convention, base=base, bins=bins
    )
    lengths = data.map_partitions(len).compute(scheduler=scheduler)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    parts = [
        dask.delayed(_score_partition)(part, int(start), options, label, columns, sample_weight, on_bad_row)
        for part, start in zip(data.to_delayed(), starts, strict=True)
    ]
    while len(parts) > 1:
        parts = [dask.delayed(_merge)(*parts[i : i + split_every]) for i in range(0, len(parts), split_every)]
    ((scorer, rows_read, rejected, rejected_count),) = dask.compute(parts[0], scheduler=scheduler)
    result = scorer.result()
    return {
        "file": "<dask>",
        "rows_read": rows_read,
        "rows_scored": scorer.rows_scored,
        "rows_rejected": rejected_count,
        "rejected": rejected,
        "classes": classes,
        "prediction_columns": columns,
        "from_logits": from_logits,
        **result,
    }
