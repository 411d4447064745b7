"""Joint and conditional entropy, mutual information, and estimates from samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossentropy as ce
from optional import given, hnp, st

tables = (
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))
    .flatmap(lambda shape: hnp.arrays(np.float64, shape, elements=st.floats(0, 1)).filter(lambda a: a.sum() > 1e-3))
    .map(lambda a: a / a.sum())
)


@given(tables)
def test_property_chain_rule_and_mutual_information(pxyz):
    h_xy = ce.joint_entropy(pxyz, axes=(0, 1))
    h_x = ce.joint_entropy(pxyz, axes=0)
    h_y = ce.joint_entropy(pxyz, axes=1)
    assert float(h_xy) == pytest.approx(float(h_x + ce.conditional_entropy(pxyz, target=1, given=0)), abs=1e-12)
    mi = ce.mutual_information(pxyz, x=0, y=1)
    assert float(mi) == pytest.approx(max(0.0, float(h_x + h_y - h_xy)), abs=1e-12)
    assert float(mi) >= 0
    assert float(ce.joint_entropy(pxyz)) == pytest.approx(
        float(ce.joint_entropy(pxyz, axes=(0, 1)) + ce.conditional_entropy(pxyz, target=2, given=(0, 1))), abs=1e-12
    )
    assert float(ce.conditional_entropy(pxyz, target=1, given=0)) <= float(h_y) + 1e-12


def test_mutual_information_is_kl_of_joint_from_product():
    pxy = np.array([[0.3, 0.1, 0.05], [0.05, 0.2, 0.3]])
    product = pxy.sum(1, keepdims=True) * pxy.sum(0, keepdims=True)
    assert float(ce.mutual_information(pxy)) == pytest.approx(
        float(ce.kl_divergence(pxy.ravel(), product.ravel())), rel=1e-13
    )


def test_joint_on_every_backend(xp):
    pxy = np.array([[0.4, 0.1], [0.1, 0.4]])
    got = ce.mutual_information(xp.asarray(pxy), base=2)
    assert float(xp.to_numpy(got)) == pytest.approx(1 - float(ce.entropy([0.8, 0.2], base=2)), rel=1e-13)


def test_samples_match_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 500)
    y = (x + rng.integers(0, 2, 500)) % 5
    assert ce.mutual_information_from_samples(x, y) == pytest.approx(sklearn_metrics.mutual_info_score(x, y), rel=1e-12)
    labels = np.array(["cat", "dog", "cat", "bird"])
    assert ce.mutual_information_from_samples(labels, labels) == pytest.approx(
        ce.entropy_from_samples(labels), rel=1e-14
    )


def test_miller_madow_correction():
    x = [0, 0, 1, 1, 2, 2, 2, 0]
    y = [0, 1, 1, 1, 2, 0, 2, 0]
    n = len(x)
    plug_in = ce.entropy_from_samples(x)
    assert ce.entropy_from_samples(x, correction="miller-madow") == pytest.approx(plug_in + (3 - 1) / (2 * n))
    mi = ce.mutual_information_from_samples(x, y)
    cells = len(set(zip(x, y, strict=True)))
    corrected = ce.mutual_information_from_samples(x, y, correction="miller-madow")
    assert corrected == pytest.approx(mi + (3 + 3 - cells - 1) / (2 * n))
    assert ce.mutual_information_from_samples(x, y, base=2) == pytest.approx(mi / math.log(2))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ce.joint_entropy([[0.5, 0.6], [0.0, 0.0]]), r"pxy sums to 1.1"),
        (lambda: ce.joint_entropy([[0.5, -0.1], [0.6, 0.0]]), r"pxy\[0, 1\] = -0.1 is negative"),
        (lambda: ce.joint_entropy([[0.5, 0.5]], axes=2), r"axes must name axes"),
        (lambda: ce.conditional_entropy([[0.5, 0.5]], target=0, given=0), r"share an axis"),
        (lambda: ce.mutual_information([[0.5, 0.5]], x=1, y=1), r"share an axis"),
        (lambda: ce.joint_entropy(0.5), r"0-dimensional"),
        (lambda: ce.mutual_information_from_samples([0, 1], [0, 1, 1]), r"different lengths"),
        (lambda: ce.mutual_information_from_samples([], []), r"empty"),
        (lambda: ce.entropy_from_samples([[0, 1]]), r"must be 1-D"),
        (lambda: ce.entropy_from_samples([0, 1], correction="jackknife"), r"correction must be one of"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ce.InputError, match=message):
        call()
