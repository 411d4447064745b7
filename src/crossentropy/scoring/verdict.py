"""The direction of a miscalibration in words: overconfident, underconfident or well calibrated.

The reliability bins say, bin by bin, how often the predicted class was
right (the observed frequency ``o``) against how sure the model was (its
mean confidence ``c``). :func:`calibration_verdict` reads them with one rule:

1. A bin is *populated* when it holds at least one row. Empty bins say
   nothing.
2. A populated bin of ``n`` rows is *off* when ``|o - c|`` exceeds its
   tolerance ``max(0.01, 3 * sqrt(c * (1 - c) / n))``: three standard errors
   of the frequency of ``n`` events of probability ``c`` (what chance alone
   moves a perfectly calibrated bin by, and more: the rows of a bin do not all
   have probability ``c``, which only lowers the spread), and never less than
   one percentage point.
3. Its direction is the sign of ``o - c``, read on the side of the predicted
   class: in the top-label diagram as it is; in the positive-class diagram of
   a binary model, a bin whose mean probability of class 1 is below 0.5
   predicts class 0, so there the sign flips. Then ``o - c < 0`` means the
   predicted class is right less often than the model says.
4. **well calibrated** when no populated bin is off; otherwise
   **overconfident** when more rows lie in bins where the model is right less
   often than it says than in bins where it is right more often, and
   **underconfident** for the reverse (equal rows: the sign of the
   row-weighted sum of the gaps of the bins that are off decides, 0 counting as
   overconfident).

So exactly one of the three words is returned for any scored data, with the
reason in a sentence. A model whose probabilities are raised to the power
0.3 (flattened towards uniform) reads "underconfident: observed frequency
above confidence" in every bin with rows enough to tell; raised to the power
3, it reads overconfident. With few rows every tolerance is wide, and "well
calibrated" means no evidence of a miscalibration.

Examples
--------
>>> from crossentropy.scoring.verdict import calibration_verdict
>>> bins = [{"count": 400, "confidence": 0.55, "observed": 0.70}, {"count": 600, "confidence": 0.65, "observed": 0.85}]
>>> calibration_verdict(bins, binary=False)["verdict"]
'underconfident'
>>> calibration_verdict(bins, binary=False)["reason"]
'observed frequency above confidence in every populated bin'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FLOOR", "STANDARD_ERRORS", "VERDICTS", "bin_tolerance", "calibration_verdict"]

VERDICTS = ("overconfident", "underconfident", "well calibrated")
STANDARD_ERRORS = 3.0
"""How many standard errors of a bin's frequency its gap may reach before the bin is off."""
FLOOR = 0.01
"""The smallest tolerance: a gap under one percentage point is never called a miscalibration."""


def bin_tolerance(confidence: float, count: int) -> float:
    """``max(FLOOR, STANDARD_ERRORS * sqrt(c (1 - c) / n))``: how far a bin's frequency may stray by chance."""
    c = min(max(confidence, 0.0), 1.0)
    return max(FLOOR, STANDARD_ERRORS * math.sqrt(c * (1.0 - c) / count))


def _phrases(binary: bool) -> tuple[str, str]:
    """How the two directions read in the diagram of this kind: (right less often, right more often)."""
    if binary:
        return (
            "observed frequency of the predicted class below its probability",
            "observed frequency of the predicted class above its probability",
        )
    return "observed frequency below confidence", "observed frequency above confidence"


def calibration_verdict(bins: Sequence[Mapping[str, Any]], *, binary: bool) -> dict[str, Any]:
    """The verdict on calibration bins, with the reason and each bin's reading.

    Parameters
    ----------
    bins : sequence of mappings
        ``count``, ``confidence`` and ``observed`` of each bin (as in a
        score's ``calibration.bins``; ``None`` for an empty bin).
    binary : bool
        The bins are of the positive class's probability (a binary model),
        not of the top label's confidence.

    Returns
    -------
    dict
        ``verdict``: one of :data:`VERDICTS` (``None`` when no bin is
        populated); ``reason``: the sentence that justifies it; ``bins``: for
        each bin, ``tolerance`` and ``reading`` (``"within"``, ``"over"`` for
        right less often than said, ``"under"`` for more often, ``None`` if
        empty).
    """
    readings: list[dict[str, Any]] = []
    over_rows = under_rows = populated = populated_rows = 0
    signed = 0.0
    for b in bins:
        n, c, o = int(b.get("count") or 0), b.get("confidence"), b.get("observed")
        if n <= 0 or c is None or o is None or math.isnan(c) or math.isnan(o):
            readings.append({"tolerance": None, "reading": None})
            continue
        populated += 1
        populated_rows += n
        tolerance = bin_tolerance(c, n)
        gap = (o - c) if not binary or c >= 0.5 else (c - o)
        if gap < -tolerance:
            reading = "over"
            over_rows += n
            signed += n * gap
        elif gap > tolerance:
            reading = "under"
            under_rows += n
            signed += n * gap
        else:
            reading = "within"
        readings.append({"tolerance": tolerance, "reading": reading})
    if not populated:
        return {"verdict": None, "reason": "no row was scored", "bins": readings}
    below, above = _phrases(binary)
    kinds = [r["reading"] for r in readings]
    if not over_rows and not under_rows:
        where = "the populated bin" if populated == 1 else f"all {populated} populated bins"
        target = "the predicted probabilities" if binary else "confidence"
        return {
            "verdict": "well calibrated",
            "reason": f"observed frequency within tolerance of {target} in {where}",
            "bins": readings,
        }
    if over_rows > under_rows or (over_rows == under_rows and signed <= 0):
        verdict, main, other, main_rows, phrase = "overconfident", "over", "under", over_rows, below
    else:
        verdict, main, other, main_rows, phrase = "underconfident", "under", "over", under_rows, above
    count, other_count = kinds.count(main), kinds.count(other)
    if count == populated:
        reason = f"{phrase} in every populated bin"
    else:
        share = 100.0 * main_rows / populated_rows
        shown = ">99" if share > 99 else "<1" if share < 1 else f"{share:.0f}"
        reason = f"{phrase} in {count} of {populated} populated bins ({shown} % of the rows)"
        if other_count:
            reason += f"; {other_count} {'bin leans' if other_count == 1 else 'bins lean'} the other way"
    return {"verdict": verdict, "reason": reason, "bins": readings}
