"""The adversarial input matrix: the right number or a clear error, never a crash or a silent NaN."""

from __future__ import annotations

import re

import numpy as np
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


def _public_functions():
    """Every public function that takes arrays: the top level, ``ce.grad`` and the Monte-Carlo estimators."""
    import inspect

    import crossentropy as ce

    found = {n: getattr(ce, n) for n in ce.__all__ if inspect.isfunction(getattr(ce, n))}
    found |= {f"grad.{n}": getattr(ce.grad, n) for n in ce.grad.__all__}
    cc = pytest.importorskip("crossentropy.continuous")
    found |= {f"continuous.{n}": getattr(cc, n) for n in ("monte_carlo_cross_entropy", "monte_carlo_kl_divergence")}
    return found


def _masked_calls():
    import inspect

    masked = np.ma.masked_array([0.5, 0.5], mask=[0, 1])
    for name, func in _public_functions().items():
        params = list(inspect.signature(func).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p for p in positional if p.default is p.empty]
        for i, p in enumerate(params):
            plain = [np.zeros(2)] * len(required)
            if p.kind is p.VAR_POSITIONAL:
                yield name, f"{p.name}[0]", func, (*plain, masked), {}
            elif p in positional:
                yield name, p.name, func, (*[np.zeros(2)] * i, masked), {}
            elif p.kind is p.KEYWORD_ONLY:
                yield name, p.name, func, tuple(plain), {p.name: masked}


MASKED_CALLS = list(_masked_calls())


@pytest.mark.parametrize("backend", ["dispatched", "reference"])
@pytest.mark.parametrize(
    ("function", "argument", "func", "args", "kwargs"), MASKED_CALLS, ids=[f"{c[0]}-{c[1]}" for c in MASKED_CALLS]
)
def test_masked_arrays_are_refused_in_every_argument_of_every_function(function, argument, func, args, kwargs, backend):
    """Issue 27: a masked label or class weight reached the C kernel, which read the data under the mask.
    One check before dispatch, on every argument, names the argument."""
    import crossentropy as ce
    from crossentropy import _dispatch

    refused = pytest.raises(ce.InputError, match=rf"^{re.escape(argument)} is a masked array")
    with _dispatch.use("reference" if backend == "reference" else "cpu"), refused:
        func(*args, **kwargs)
