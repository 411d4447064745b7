"""The adversarial input matrix: the right number or a clear error, never a crash or a silent NaN."""

from __future__ import annotations

import pytest

from adversarial_cases import cases, run

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.function}-{c.input}" for c in CASES])
def test_adversarial_input(case):
    outcome, detail = run(case)
    assert outcome == "ok", detail


def test_the_matrix_covers_every_public_function():
    import crossentropy as ce

    covered = {c.function for c in CASES}
    public = {name for name in ce.__all__ if callable(getattr(ce, name)) and not isinstance(getattr(ce, name), type)}
    public -= {"conditional_entropy", "entropy_from_samples"}  # share their validation with joint_entropy
    missing = public - covered
    assert not missing, f"no adversarial cases for {sorted(missing)}"
