"""The distillation losses under autograd's higher orders and ``torch.func``, on every path.

A backward pass that records its own graph (``create_graph=True``: gradient
penalties, meta-gradients) and the ``torch.func`` transforms must give what
the float64 composite of torch operations gives (tests/test_distillation.py's
``composite_rows``), never a gradient silently cut from its graph.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from crossentropy.torch import distillation_loss, linear_distillation_loss  # noqa: E402
from test_distillation import DIVERGENCES, PATHS, _on, _randn, composite_rows, reduce_rows  # noqa: E402

T = 1.5
BETA = 0.3


def _labels(n: int) -> Any:
    labels = torch.arange(n) % 5
    labels[1] = -100  # one position that does not count
    return labels


def _composite(student: Any, teacher: Any, divergence: str, labels: Any, reduction: str = "mean") -> Any:
    rows = composite_rows(student, teacher, divergence, beta=BETA, temperature=T)
    return reduce_rows(rows, labels != -100, reduction)


def _ours(student: Any, teacher: Any, divergence: str, labels: Any, reduction: str = "mean") -> Any:
    return distillation_loss(
        student, teacher, divergence=divergence, beta=BETA, temperature=T, labels=labels, reduction=reduction
    )


def _close(got: Any, want: Any) -> None:
    torch.testing.assert_close(got.double(), want.double(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_a_gradient_penalty_differentiates_the_gradient(path, divergence, reduction):
    teacher, labels = _randn(6, 9, seed=1), _labels(6)
    cotangent = _randn(6, seed=3) if reduction == "none" else torch.ones((), dtype=torch.float64)
    found = []
    for loss_of in (_composite, _ours):
        student = _randn(6, 9, seed=2).requires_grad_()
        with _on(path):
            loss = loss_of(student, teacher, divergence, labels, reduction)
            (grad,) = torch.autograd.grad(loss, student, cotangent, create_graph=True)
            assert grad.requires_grad
            penalty = (grad**2).sum()
            (hessian_term,) = torch.autograd.grad(penalty, student)
        found.append((loss.detach(), grad.detach(), hessian_term))
    for got, want in zip(found[1], found[0], strict=True):
        _close(got, want)
    assert found[0][2].abs().max() > 1e-6  # the second-order term is not zero, so dropping it would fail


@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("path", PATHS)
def test_torch_func_grad_jacrev_and_vmap_see_through(path, divergence):
    teacher, labels = _randn(4, 7, seed=4), _labels(4)
    student = _randn(4, 7, seed=5)
    with _on(path):
        got = torch.func.grad(lambda s: _ours(s, teacher, divergence, labels))(student)
        hessian = torch.func.jacrev(torch.func.grad(lambda s: _ours(s, teacher, divergence, labels)))(student)
        per_example = torch.func.vmap(lambda s, t: _ours(s[None], t[None], divergence, None))(student, teacher)
    want = torch.func.grad(lambda s: _composite(s, teacher, divergence, labels))(student)
    want_hessian = torch.func.jacrev(torch.func.grad(lambda s: _composite(s, teacher, divergence, labels)))(student)
    _close(got, want)
    _close(hessian, want_hessian)
    _close(per_example, composite_rows(student, teacher, divergence, beta=BETA, temperature=T))


@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_linear_distillation_to_second_order(path, divergence, reduction):
    h_t, w_t, labels = _randn(6, 5, seed=6), _randn(9, 5, seed=7), _labels(6)
    b_s = _randn(9, seed=8).requires_grad_()
    cotangent = _randn(6, seed=9) if reduction == "none" else torch.ones((), dtype=torch.float64)
    found = []
    for fused in (False, True):
        h_s, w_s = _randn(6, 4, seed=10).requires_grad_(), _randn(9, 4, seed=11).requires_grad_()
        with _on(path):
            if fused:
                loss = linear_distillation_loss(
                    h_s,
                    w_s,
                    h_t,
                    w_t,
                    student_bias=b_s,
                    divergence=divergence,
                    beta=BETA,
                    temperature=T,
                    labels=labels,
                    reduction=reduction,
                )
            else:
                loss = _composite(h_s @ w_s.T + b_s, h_t @ w_t.T, divergence, labels, reduction)
            grads = torch.autograd.grad(loss, (h_s, w_s, b_s), cotangent, create_graph=True)
            assert all(g.requires_grad for g in grads)
            second = torch.autograd.grad(sum((g**2).sum() for g in grads), (h_s, w_s, b_s))
        found.append((loss.detach(), *(g.detach() for g in grads), *second))
    for got, want in zip(found[1], found[0], strict=True):
        _close(got, want)


@pytest.mark.parametrize("path", PATHS)
def test_linear_distillation_under_torch_func_grad(path):
    h_s, w_s = _randn(5, 4, seed=12), _randn(8, 4, seed=13)
    h_t, w_t = _randn(5, 3, seed=14), _randn(8, 3, seed=15)
    with _on(path):
        got = torch.func.grad(lambda w: linear_distillation_loss(h_s, w, h_t, w_t, divergence="jsd", beta=BETA))(w_s)
    want = torch.func.grad(lambda w: composite_rows(h_s @ w.T, h_t @ w_t.T, "jsd", beta=BETA, temperature=1.0).mean())(
        w_s
    )
    _close(got, want)
