"""The next-token calibration of a run, in the form ``crossentropy score`` gives a classifier's: bins, ECE, verdict.

A language model predicts each next token with some confidence, its top-1
probability ``p``; it is calibrated when, among the tokens it predicts with
confidence about ``p``, a share ``p`` is right (the target is its top-1
token). The record keeps, per bin of ``p`` (:data:`~crossentropy._perplexity.fields.CALIBRATION_BINS`
equal-width bins), the tokens, how many were right and their summed ``p``
(:mod:`~crossentropy._perplexity.fields`); :func:`reliability` turns those
sums into the reliability bins, the expected calibration error and the
verdict of :func:`crossentropy.scoring.verdict.calibration_verdict`, so that
the perplexity report draws them with the score report's reliability diagram
and reads them with the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .._formatting import number_or_none
from ..scoring.verdict import calibration_verdict
from .fields import CALIBRATION_BINS, RECORD

__all__ = ["KIND", "reliability"]

KIND = "top-1 token"
"""What the bins' confidence is the probability of (a score's calibration says ``top label``)."""


def reliability(sums: Mapping[str, Any]) -> dict[str, Any]:
    """The reliability bins of a document's or a corpus's sums, with the expected calibration error and the verdict.

    Parameters
    ----------
    sums : mapping
        A record's sums (``tokens``, ``calibration_tokens``,
        ``calibration_correct``, ``calibration_confidence``, ...).

    Returns
    -------
    dict
        The fields of a ``crossentropy score`` result's ``calibration``:
        ``kind`` (:data:`KIND`), ``ece`` (the record's ``ece`` measure),
        ``mce`` (the largest gap of a bin with tokens), ``verdict`` and
        ``verdict_reason`` (``None`` and a reason without tokens), and
        ``bins``: per bin ``lower``, ``upper``, ``count`` (tokens),
        ``confidence`` (their mean top-1 probability), ``observed`` (the
        share of them that were right), ``tolerance`` and ``reading``
        (``None`` for an empty bin).

    Examples
    --------
    >>> from crossentropy._perplexity import DocumentScore
    >>> tokens = [0] * 13 + [40, 60]  # 100 tokens, predicted with a top-1 probability above 0.8
    >>> doc = DocumentScore("d", sums={"tokens": 100, "calibration_tokens": tuple(tokens),
    ...     "calibration_correct": (0,) * 13 + (20, 57), "calibration_confidence": (0.0,) * 13 + (35.0, 57.6)})
    >>> c = reliability(doc.sums)
    >>> print(f"{c['ece']:.3f} {c['verdict']}: {c['verdict_reason']}")
    0.156 overconfident: observed frequency below confidence in 1 of 2 populated bins (40 % of the tokens)
    >>> c["bins"][13]["confidence"], c["bins"][13]["observed"]
    (0.875, 0.5)
    """
    count, right, confidence = (
        sums[k] for k in ("calibration_tokens", "calibration_correct", "calibration_confidence")
    )
    bins: list[dict[str, Any]] = []
    gaps = []
    for k in range(CALIBRATION_BINS):
        n = int(count[k])
        mean, observed = (float(confidence[k]) / n, int(right[k]) / n) if n else (None, None)
        if mean is not None and observed is not None:
            gaps.append(abs(observed - mean))
        bins.append(
            {
                "lower": k / CALIBRATION_BINS,
                "upper": (k + 1) / CALIBRATION_BINS,
                "count": n,
                "confidence": mean,
                "observed": observed,
            }
        )
    verdict = calibration_verdict(bins, binary=False, items="tokens")
    for entry, reading in zip(bins, verdict["bins"], strict=True):
        entry.update(reading)
    ece = RECORD.measure_named("ece").of(sums) if sums["tokens"] else math.nan
    return {
        "kind": KIND,
        "ece": number_or_none(ece),
        "mce": max(gaps) if gaps else None,
        "verdict": verdict["verdict"],
        "verdict_reason": verdict["reason"],
        "bins": bins,
    }
