"""The special functions every part builds on; here ``softmax``, which the scorer's probabilities come from."""

from __future__ import annotations

import warnings

import numpy as np

from crossentropy._special import log_softmax, softmax
from optional import optional

sp = optional("scipy.special")


def test_softmax_against_scipy_on_every_backend(xp):
    x = np.random.default_rng(0).normal(0, 30, (50, 7))
    got = xp.to_numpy(softmax(xp.xp, xp.asarray(x), 1))
    np.testing.assert_allclose(got, sp.softmax(x, axis=1), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(got, np.exp(xp.to_numpy(log_softmax(xp.xp, xp.asarray(x), 1))), rtol=1e-13)


def test_masked_classes_get_exactly_zero_and_an_empty_row_nan_without_a_warning(xp):
    x = xp.asarray([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [1e308, 1e308, -np.inf]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = xp.to_numpy(softmax(xp.xp, x, 1))
    assert got[0, 1] == 0.0
    np.testing.assert_allclose(got[0], [1 / (1 + np.e), 0.0, np.e / (1 + np.e)], rtol=1e-15)
    assert np.isnan(got[1]).all()
    assert got[2].tolist() == [0.5, 0.5, 0.0]
