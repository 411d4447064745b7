"""The calibration verdict: one of three words, by a rule on the bins that these cases pin down."""

from __future__ import annotations

import math

import pytest

from crossentropy.scoring.verdict import FLOOR, bin_tolerance, calibration_verdict


def _bin(count, confidence, observed):
    return {"count": count, "confidence": confidence, "observed": observed}


def test_the_tolerance_is_three_standard_errors_and_at_least_a_point():
    assert bin_tolerance(0.8, 100) == pytest.approx(3 * math.sqrt(0.8 * 0.2 / 100))
    assert bin_tolerance(0.8, 10**7) == FLOOR == 0.01
    assert bin_tolerance(1.0, 50) == FLOOR  # a bin of certainties may still miss by a point


def test_a_gap_inside_the_tolerance_is_within_and_one_outside_is_off():
    tol = bin_tolerance(0.7, 400)
    inside = calibration_verdict([_bin(400, 0.7, 0.7 - 0.99 * tol)], binary=False)
    outside = calibration_verdict([_bin(400, 0.7, 0.7 - 1.01 * tol)], binary=False)
    assert inside["verdict"] == "well calibrated"
    assert inside["reason"] == "observed frequency within tolerance of confidence in the populated bin"
    assert inside["bins"] == [{"tolerance": pytest.approx(tol), "reading": "within"}]
    assert outside["verdict"] == "overconfident"
    assert outside["reason"] == "observed frequency below confidence in every populated bin"


def test_empty_bins_say_nothing_and_no_bins_no_verdict():
    result = calibration_verdict([_bin(0, None, None), _bin(500, 0.6, 0.9), _bin(0, None, None)], binary=False)
    assert result["verdict"] == "underconfident"
    assert [b["reading"] for b in result["bins"]] == [None, "under", None]
    assert calibration_verdict([_bin(0, None, None)], binary=False)["verdict"] is None


def test_a_binary_bin_below_one_half_is_read_from_class_0():
    # the model gives class 1 a probability of 0.2 (so class 0 one of 0.8) and class 1 happens 5 % of the time:
    # class 0 is right 95 % of the time where the model said 80 %: underconfident
    result = calibration_verdict([_bin(1000, 0.2, 0.05), _bin(1000, 0.8, 0.95)], binary=True)
    assert result["verdict"] == "underconfident"
    assert result["reason"] == "observed frequency of the predicted class above its probability in every populated bin"
    # the same bins of the top label would be mixed: the positive-class bin at 0.2 reads the other way there
    assert (
        calibration_verdict([_bin(1000, 0.2, 0.35), _bin(1000, 0.8, 0.65)], binary=True)["verdict"] == "overconfident"
    )


def test_mixed_bins_go_to_the_side_with_more_rows_and_say_so():
    result = calibration_verdict(
        [_bin(100, 0.35, 0.6), _bin(800, 0.75, 0.6), _bin(900, 0.95, 0.8), _bin(50, 0.55, 0.56)], binary=False
    )
    assert result["verdict"] == "overconfident"
    assert result["reason"] == (
        "observed frequency below confidence in 2 of 4 populated bins (92 % of the rows); 1 bin leans the other way"
    )


def test_equal_rows_on_both_sides_go_by_the_larger_gap():
    over = calibration_verdict([_bin(500, 0.5, 0.8), _bin(500, 0.9, 0.5)], binary=False)
    under = calibration_verdict([_bin(500, 0.5, 0.9), _bin(500, 0.9, 0.7)], binary=False)
    assert over["verdict"] == "overconfident"
    assert under["verdict"] == "underconfident"
