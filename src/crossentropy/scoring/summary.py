"""The score of a data set as both engines return it: the scorer's result, the file and the columns read.

:func:`summarize` is the one place that writes this document, so
``crossentropy score --format json``, :func:`crossentropy.scoring.score_file`
and :func:`crossentropy.dask.score` give the same fields. Numbers stay Python
floats (NaN and infinities included); the command line writes them to JSON
with :func:`crossentropy._formatting.jsonable`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .options import Columns
from .scorer import Scorer

__all__ = ["TOP_CLASSES", "summarize", "top_classes"]

TOP_CLASSES = 20
"""How many classes the per-class table and the report show by default (the others are summed in one row)."""


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


def top_classes(per_class: Sequence[Mapping[str, Any]], k: int = TOP_CLASSES) -> dict[str, Any]:
    """The ``k`` classes that add most to the total loss, and the others summed up: a per-class view of bounded size.

    Classes are ranked by the size of their weighted loss sum (``|loss_sum|``;
    an infinite one first), then by their rows, then by their index; the
    other classes are summed into one entry (rows, weight, loss, predicted
    and correct rows; its mean loss, precision and recall from the sums).
    With ``k`` 0, or no more than ``k`` classes, every class is shown in
    class order.

    Parameters
    ----------
    per_class : sequence of mappings
        The ``per_class`` entries of a score result (``class``, ``count``,
        ``weight``, ``loss_sum``, ``predicted``, ``correct``, ...).
    k : int
        The most classes shown.

    Returns
    -------
    dict
        ``{"shown": [...], "rest": entry or None, "rule": str}``: the entries
        shown, in rank order, the summed entry of the others (``class`` reads
        ``"19,980 other classes"``), and a sentence saying what was shown.

    Examples
    --------
    >>> from crossentropy.scoring import Layout, Scorer, top_classes
    >>> import numpy as np
    >>> scorer = Scorer(Layout(num_classes=4))
    >>> scorer.update(np.array([0, 1, 1, 2, 3.0]), np.full((5, 4), 0.25))
    >>> view = top_classes(scorer.result()["per_class"], 2)
    >>> [c["class"] for c in view["shown"]], view["rest"]["class"], view["rest"]["count"]
    ([1, 0], '2 other classes', 2)
    >>> view["rule"]
    'the 2 of 4 classes with the largest share of the total loss; the other 2 summed in one row'
    """
    n = len(per_class)
    if k <= 0 or n <= k:
        return {"shown": list(per_class), "rest": None, "rule": f"all {n:,} classes"}

    def key(i: int) -> tuple[float, int, int]:
        loss = per_class[i].get("loss_sum")
        size = abs(float(loss)) if isinstance(loss, (int, float)) and not math.isnan(loss) else 0.0
        return (-size, -int(per_class[i]["count"]), i)

    order = sorted(range(n), key=key)
    others = [per_class[i] for i in order[k:]]
    count = sum(int(c["count"]) for c in others)
    predicted = sum(int(c["predicted"]) for c in others)
    correct = sum(int(c["correct"]) for c in others)
    weight = math.fsum(float(c["weight"]) for c in others)
    loss = math.fsum(float(c["loss_sum"]) for c in others)
    rest = {
        "class": f"{len(others):,} other classes",
        "count": count,
        "mean_loss": loss / weight if weight > 0 and not math.isnan(loss) else None,
        "precision": correct / predicted if predicted else None,
        "recall": correct / count if count else None,
        "predicted": predicted,
        "weight": weight,
        "loss_sum": loss,
        "correct": correct,
    }
    rule = f"the {k:,} of {n:,} classes with the largest share of the total loss; the other {n - k:,} summed in one row"
    return {"shown": [per_class[i] for i in order[:k]], "rest": rest, "rule": rule}
