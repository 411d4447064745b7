"""The score of a data set as both engines return it: the scorer's result, the file and the columns read.

:func:`summarize` is the one place that writes this document, so
``crossentropy score --format json``, :func:`crossentropy.scoring.score_file`
and :func:`crossentropy.dask.score` give the same fields. Numbers stay Python
floats (NaN and infinities included); the command line writes them to JSON
with :func:`crossentropy._formatting.jsonable`.
"""

from __future__ import annotations

from typing import Any

from .options import Columns
from .scorer import Scorer

__all__ = ["summarize"]


def summarize(name: str, total: Scorer, columns: Columns) -> dict[str, Any]:
    """``{"file": name, **total.result(), "classes", "prediction_columns", "from_logits"}``.

    ``rows_read`` is always ``rows_scored + rows_rejected``.
    """
    result = total.result()
    assert result["rows_read"] == result["rows_scored"] + result["rows_rejected"]
    return {
        "file": name,
        **result,
        "classes": total.layout.num_classes,
        "prediction_columns": list(columns.predictions),
        "from_logits": columns.from_logits,
    }
