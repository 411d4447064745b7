"""The adversarial input matrix: the right number or a clear error, never a crash or a silent NaN."""

from __future__ import annotations

import pytest

pytest.importorskip("scipy")  # the oracles of the cases

from adversarial_cases import cases, run

CASES = cases()


@pytest.mark.parametrize("backend", ["dispatched", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c.function}-{c.input}" for c in CASES])
def test_adversarial_input(case, backend):
    """Each case on the path the dispatcher picks (a fused kernel where one applies) and on the reference path."""
    from crossentropy import _dispatch

    if backend == "reference":
        with _dispatch.use("reference"):
            outcome, detail = run(case)
    else:
        outcome, detail = run(case)
    assert outcome == "ok", detail


def test_the_matrix_covers_every_public_function():
    import crossentropy as ce

    covered = {c.function for c in CASES}
    public = {name for name in ce.__all__ if callable(getattr(ce, name)) and not isinstance(getattr(ce, name), type)}
    public -= {"conditional_entropy", "entropy_from_samples"}  # share their validation with joint_entropy
    missing = public - covered
    assert not missing, f"no adversarial cases for {sorted(missing)}"
