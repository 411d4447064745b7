"""Hypothesis properties on every backend (NumPy, array-api-strict, torch, JAX) and dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossentropy as ce
from optional import HealthCheck, given, hnp, settings, st

pytestmark = pytest.mark.slow  # Hypothesis on four backends

backend_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)

distributions = (
    st.tuples(st.integers(1, 4), st.integers(1, 9))
    .flatmap(
        lambda shape: st.tuples(
            hnp.arrays(np.float64, shape, elements=st.floats(0.001, 1)),
            hnp.arrays(np.float64, shape, elements=st.floats(0.001, 1)),
        )
    )
    .map(lambda pq: (pq[0] / pq[0].sum(-1, keepdims=True), pq[1] / pq[1].sum(-1, keepdims=True)))
)

DTYPE_RTOL = {"float64": 1e-12, "float32": 2e-5}


@backend_settings
@given(distributions, st.sampled_from(["float64", "float32"]))
def test_identities_on_every_backend(xp, pq, dtype):
    p, q = (xp.asarray(a, dtype=dtype) for a in pq)
    h = xp.to_numpy(ce.entropy(p, validate=False)).astype(float)
    hpq = xp.to_numpy(ce.cross_entropy(p, q, validate=False)).astype(float)
    kl = xp.to_numpy(ce.kl_divergence(p, q, validate=False)).astype(float)
    js = xp.to_numpy(ce.js_divergence(p, q, validate=False)).astype(float)
    rtol = DTYPE_RTOL[dtype]
    np.testing.assert_allclose(hpq, h + kl, rtol=rtol * 10, atol=rtol * 10)
    assert np.all(kl >= -rtol)
    assert np.all(js <= math.log(2) + rtol)
    assert np.all(h <= np.log(pq[0].shape[-1]) + rtol * 10)
    bits = xp.to_numpy(ce.cross_entropy(p, q, base=2, validate=False)).astype(float)
    np.testing.assert_allclose(bits, hpq / math.log(2), rtol=rtol, atol=rtol)


logit_batches = st.integers(1, 8).flatmap(
    lambda c: st.tuples(
        hnp.arrays(np.float64, (6, c), elements=st.floats(-20, 20)),
        hnp.arrays(np.int64, 6, elements=st.integers(0, c - 1)),
        hnp.arrays(np.float64, 6, elements=st.floats(0.1, 3)),
    )
)


@backend_settings
@given(logit_batches, st.floats(-50, 50), st.integers(1, 5))
def test_loss_invariances_on_every_backend(xp, case, shift, cut):
    x, t, w = case
    xa, ta, wa = xp.asarray(x), xp.asarray(t, dtype="int64"), xp.asarray(w)
    loss = float(
        xp.to_numpy(ce.sparse_categorical_cross_entropy(ta, xa, from_logits=True, sample_weight=wa, validate=False))
    )
    shifted = float(
        xp.to_numpy(
            ce.sparse_categorical_cross_entropy(
                ta, xp.asarray(x + shift), from_logits=True, sample_weight=wa, validate=False
            )
        )
    )
    assert shifted == pytest.approx(loss, rel=1e-9, abs=1e-9)
    parts = []
    for sl in (slice(0, cut), slice(cut, 6)):
        part = ce.sparse_categorical_cross_entropy(
            xp.asarray(t[sl], dtype="int64"),
            xp.asarray(x[sl]),
            from_logits=True,
            sample_weight=xp.asarray(w[sl]),
            validate=False,
        )
        parts.append(float(xp.to_numpy(part)) * w[sl].sum())
    assert sum(parts) / w.sum() == pytest.approx(loss, rel=1e-9, abs=1e-12)
    grad = xp.to_numpy(ce.grad.sparse_categorical_cross_entropy(ta, xa, from_logits=True, validate=False))
    np.testing.assert_allclose(grad.sum(-1), 0.0, atol=1e-12)  # softmax - onehot sums to 0 per row
