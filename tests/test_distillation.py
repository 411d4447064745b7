"""The distillation losses of issue 28 on every path, against float64 and against the peers themselves.

Paths: the plain-torch reference (``_dispatch.use("reference")``), the C
kernel on CPU tensors (``"cpu"``) and the Triton kernels on CPU tensors under
``TRITON_INTERPRET=1`` (``"triton"``). Oracles: a float64 NumPy computation of
each divergence written for clarity (values), torch autograd of the float64
composite (gradients), TRL's ``GKDTrainer.generalized_jsd_loss`` and
Liger-Kernel's ``LigerFusedLinearJSDLoss`` (both run on the CPU; skipped when
not installed), and torchtune's ``ForwardKLLoss``/``ReverseKLLoss`` written
from their documented formulas (torchtune 0.6 no longer imports with current
torchao). The NumPy side (``ce.kl_divergence``/``ce.js_divergence`` of
logits) is in tests/test_implementations.py.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

import crossentropy as ce  # noqa: E402
from crossentropy import _dispatch, _kernels  # noqa: E402
from crossentropy.torch import distillation_loss, linear_distillation_loss  # noqa: E402

F = torch.nn.functional
PATHS = ["reference", "cpu", "triton"]
DIVERGENCES = ["forward_kl", "reverse_kl", "jsd"]
REDUCTIONS = ["mean", "sum", "none"]


def _available(path: str) -> None:
    if path == "cpu" and not _kernels.available():
        pytest.skip("the C kernels are not built")
    if path == "triton":
        pytest.importorskip("triton")


@contextlib.contextmanager
def _on(path: str) -> Iterator[None]:
    _available(path)
    with _dispatch.use(path):
        yield


def _randn(*shape: int, scale: float = 3.0, seed: int = 0, dtype: Any = torch.float64) -> Any:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)


# ----------------------------------------------------------------------------------------------------------
# the float64 oracles


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return x - m - np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def oracle_rows(student: Any, teacher: Any, divergence: str, beta: float = 0.5, temperature: float = 1.0) -> Any:
    """Per-row divergences in float64 NumPy: the definitions, terms with probability 0 counting 0."""
    s = np.asarray(student.detach().double().numpy()) / temperature
    t = np.asarray(teacher.detach().double().numpy()) / temperature
    ls, lt = _log_softmax(s), _log_softmax(t)
    ps, pt = np.exp(ls), np.exp(lt)
    with np.errstate(all="ignore"):
        if divergence == "forward_kl":
            return np.where(pt == 0, 0.0, pt * (lt - ls)).sum(-1)
        if divergence == "reverse_kl":
            return np.where(ps == 0, 0.0, ps * (ls - lt)).sum(-1)
        if beta in (0.0, 1.0):
            return np.zeros(ls.shape[:-1])
        lm = np.log(beta * pt + (1 - beta) * ps)
        from_t = np.where(pt == 0, 0.0, pt * (lt - lm))
        from_s = np.where(ps == 0, 0.0, ps * (ls - lm))
        return (beta * from_t + (1 - beta) * from_s).sum(-1)


def composite_rows(student: Any, teacher: Any, divergence: str, beta: float = 0.5, temperature: float = 1.0) -> Any:
    """The same per-row divergences as differentiable float64 torch operations (for autograd's gradients)."""
    ls = (student.double() / temperature).log_softmax(-1)
    lt = (teacher.detach().double() / temperature).log_softmax(-1)
    ps, pt = ls.exp(), lt.exp()
    # where a probability is 0 its log is replaced by 0 before any product, so that no NaN (0 * inf) reaches
    # the gradient through the branch torch.where leaves out
    ls0, lt0 = torch.where(ps == 0, 0.0, ls), torch.where(pt == 0, 0.0, lt)
    if divergence == "forward_kl":
        return (pt * (lt0 - torch.where(pt == 0, 0.0, ls))).sum(-1)
    if divergence == "reverse_kl":
        return (ps * (ls0 - torch.where(ps == 0, 0.0, lt))).sum(-1)
    if beta in (0.0, 1.0):
        return (ls0 * 0.0).sum(-1)
    mix = beta * pt + (1 - beta) * ps
    lm = torch.log(torch.where(mix == 0, 1.0, mix))
    return (beta * pt * (lt0 - lm) + (1 - beta) * ps * (ls0 - lm)).sum(-1)


def reduce_rows(rows: Any, keep: Any, reduction: str) -> Any:
    rows = torch.where(keep, rows, 0.0) if keep is not None else rows
    if reduction == "none":
        return rows
    total = rows.sum()
    if reduction == "sum":
        return total
    return total / (keep.sum() if keep is not None else rows.numel())


TOL = {torch.float64: (1e-12, 1e-13), torch.float32: (2e-6, 2e-6)}


def _close(got: Any, want: Any, dtype: Any, what: str) -> None:
    rtol, atol = TOL[dtype]
    got, want = np.asarray(torch.as_tensor(got).detach().double()), np.asarray(torch.as_tensor(want).detach().double())
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


# ----------------------------------------------------------------------------------------------------------
# values and gradients


SHAPE = (2, 3, 100)  # the vocabulary spans several Triton blocks (64 in the interpreter) and a C vector tail


@pytest.mark.parametrize(
    ("labels", "reduction"),
    [(False, "mean"), (True, "mean"), (True, "sum"), (True, "none")],
    ids=["all-rows-mean", "labels-mean", "labels-sum", "labels-none"],
)
@pytest.mark.parametrize("temperature", [1.0, 2.5])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("path", PATHS)
def test_value_and_gradient_against_float64(path, divergence, dtype, temperature, labels, reduction):
    """Every path against the float64 definitions: the value (its own dtype) and the student's gradient."""
    student, teacher = _randn(*SHAPE, seed=1, dtype=dtype), _randn(*SHAPE, seed=2, dtype=dtype)
    y = torch.tensor([[3, -100, 7], [-100, 1, 2]]) if labels else None
    keep = None if y is None else y != -100
    leaf = student.clone().requires_grad_()
    with _on(path):
        loss = distillation_loss(
            leaf, teacher, divergence=divergence, beta=0.3, temperature=temperature, labels=y, reduction=reduction
        )
    assert loss.dtype == dtype
    assert loss.shape == (SHAPE[:-1] if reduction == "none" else ())
    rows = torch.from_numpy(oracle_rows(student, teacher, divergence, 0.3, temperature))
    _close(loss, reduce_rows(rows, keep, reduction), dtype, "value")
    cotangent = _randn(*loss.shape, scale=1.0, seed=3, dtype=dtype)
    (grad,) = torch.autograd.grad(loss, leaf, cotangent)
    exact_leaf = student.double().requires_grad_()
    exact = reduce_rows(composite_rows(exact_leaf, teacher, divergence, 0.3, temperature), keep, reduction)
    (want,) = torch.autograd.grad(exact, exact_leaf, cotangent.double())
    assert grad.dtype == dtype
    _close(grad, want, dtype, "gradient")


@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_long_rows_and_every_instruction_set(dtype, divergence):
    """Rows longer than the C kernel's blocks, on each compiled instruction-set variant."""
    _available("cpu")
    student, teacher = _randn(5, 5000, seed=4, dtype=dtype), _randn(5, 5000, seed=5, dtype=dtype)
    want = torch.from_numpy(oracle_rows(student, teacher, divergence, 0.7, 1.5))
    leaf = student.double().requires_grad_()
    (want_grad,) = torch.autograd.grad(composite_rows(leaf, teacher, divergence, 0.7, 1.5).sum(), leaf)
    for isa in _kernels.describe()["variants_supported"]:
        with _kernels.use_isa(isa), _dispatch.use("cpu"):
            s = student.clone().requires_grad_()
            rows = distillation_loss(s, teacher, divergence=divergence, beta=0.7, temperature=1.5, reduction="none")
            (grad,) = torch.autograd.grad(rows.sum(), s)
        _close(rows, want, dtype, f"value ({isa})")
        _close(grad, want_grad, dtype, f"gradient ({isa})")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
def test_low_precision_accumulates_in_float32(path, dtype):
    """bfloat16/float16 logits: computed in float32 (the float64 value of the same inputs, rounded once)."""
    student, teacher = _randn(4, 100, seed=6, dtype=dtype), _randn(4, 100, seed=7, dtype=dtype)
    leaf = student.clone().requires_grad_()
    with _on(path):
        loss = distillation_loss(leaf, teacher, divergence="jsd", temperature=2.0, reduction="none")
    assert loss.dtype == dtype
    want = torch.from_numpy(oracle_rows(student, teacher, "jsd", 0.5, 2.0))
    assert torch.equal(loss, want.to(torch.float32).to(dtype)) or torch.allclose(loss.double(), want, rtol=1e-2)
    (grad,) = torch.autograd.grad(loss.sum(), leaf)
    exact_leaf = student.double().requires_grad_()
    (want_grad,) = torch.autograd.grad(composite_rows(exact_leaf, teacher, "jsd", 0.5, 2.0).sum(), exact_leaf)
    assert grad.dtype == dtype
    np.testing.assert_allclose(grad.double().numpy(), want_grad.numpy(), rtol=2e-2, atol=1e-5)


@pytest.mark.parametrize("path", PATHS)
def test_teacher_of_another_dtype_gets_no_gradient(path):
    """A bfloat16 or float64 teacher with a float32 student: float64 work when either is float64; no teacher grad."""
    student = _randn(3, 70, seed=8, dtype=torch.float32)
    for teacher_dtype, work in ((torch.bfloat16, torch.float32), (torch.float64, torch.float64)):
        teacher = _randn(3, 70, seed=9, dtype=teacher_dtype).requires_grad_()
        leaf = student.clone().requires_grad_()
        with _on(path):
            loss = distillation_loss(leaf, teacher, divergence="reverse_kl", reduction="sum")
        loss.backward()
        assert teacher.grad is None
        assert leaf.grad is not None
        assert leaf.grad.dtype == torch.float32
        want = oracle_rows(student, teacher, "reverse_kl").sum()
        tol = 1e-12 if work == torch.float64 else 2e-6
        assert math.isclose(loss.item(), want, rel_tol=max(tol, 1e-7), abs_tol=tol)


# ----------------------------------------------------------------------------------------------------------
# edge cases, the same on every path


def _edge_rows() -> tuple[Any, Any]:
    """Row pairs with masked classes: both -inf, the student's only, the teacher's only, and plain rows."""
    inf = math.inf
    student = torch.tensor(
        [
            [0.5, -inf, 1.0, 2.0],
            [0.5, -inf, 1.0, 2.0],
            [0.5, 0.2, 1.0, 2.0],
            [3.0, 1.0, -1.0, 0.0],
        ],
        dtype=torch.float64,
    )
    teacher = torch.tensor(
        [
            [1.0, -inf, 0.0, 1.5],
            [1.0, 0.3, 0.0, 1.5],
            [1.0, -inf, 0.0, 1.5],
            [3.0, 1.0, -1.0, 0.0],
        ],
        dtype=torch.float64,
    )
    return student, teacher


@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("path", PATHS)
def test_masked_classes_keep_their_exact_meaning(path, divergence):
    """-inf logits: 0 log 0 = 0, +inf where one side has mass the other lacks, 0 for identical rows; the
    gradient is finite where the value is, and NaN for an infinite reverse KL."""
    student, teacher = _edge_rows()
    leaf = student.clone().requires_grad_()
    with _on(path):
        rows = distillation_loss(leaf, teacher, divergence=divergence, beta=0.25, reduction="none")
    want = oracle_rows(student, teacher, divergence, 0.25)
    np.testing.assert_allclose(rows.detach().numpy(), want, rtol=1e-12, atol=1e-14)
    assert rows[3].item() == 0.0 or abs(rows[3].item()) < 1e-15  # identical rows
    expected_inf = {"forward_kl": [False, True, False, False], "reverse_kl": [False, False, True, False]}
    assert torch.isinf(rows).tolist() == expected_inf.get(divergence, [False] * 4)
    (grad,) = torch.autograd.grad(rows.sum(), leaf)
    finite_rows = ~torch.isinf(rows.detach())
    assert torch.isfinite(grad[finite_rows]).all()
    if divergence == "reverse_kl":
        assert torch.isnan(grad[2]).all()
    if divergence != "reverse_kl":
        exact_leaf = student.clone().requires_grad_()
        (want_grad,) = torch.autograd.grad(composite_rows(exact_leaf, teacher, divergence, 0.25).sum(), exact_leaf)
        np.testing.assert_allclose(grad.numpy(), want_grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("path", PATHS)
def test_invalid_rows_give_nan_and_leave_the_others(path):
    """A NaN or +inf logit, or a row of -inf only, gives that row NaN (value and gradient) on every path."""
    student, teacher = _randn(5, 20, seed=10), _randn(5, 20, seed=11)
    student[0, 3] = math.nan
    teacher[1, 4] = math.inf
    student[2] = -math.inf
    leaf = student.clone().requires_grad_()
    with _on(path):
        rows = distillation_loss(leaf, teacher, divergence="jsd", reduction="none")
    assert torch.isnan(rows[:3]).all()
    np.testing.assert_allclose(rows[3:].detach().numpy(), oracle_rows(student[3:], teacher[3:], "jsd"), rtol=1e-12)
    (grad,) = torch.autograd.grad(rows[3:].sum(), leaf)
    assert torch.isfinite(grad).all()
    assert (grad[:3] == 0).all()


@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("path", PATHS)
def test_jsd_endpoints_are_exactly_zero(path, beta):
    """beta = 0 or 1: the mixture is one of the two, the JSD 0 exactly, its gradient 0, no NaN (masked classes
    and logits of 1e4 included); TRL and Liger compute the forward or the reverse KL there instead."""
    student, teacher = _edge_rows()
    student, teacher = torch.cat([student, student * 1e4]), torch.cat([teacher, teacher * 1e4])
    leaf = student.clone().requires_grad_()
    with _on(path):
        rows = distillation_loss(leaf, teacher, divergence="jsd", beta=beta, reduction="none")
        (grad,) = torch.autograd.grad(rows.sum(), leaf)
        trl = distillation_loss(student, teacher, divergence="jsd", beta=beta, convention="trl", reduction="none")
        kl = distillation_loss(
            student, teacher, divergence="forward_kl" if beta == 0 else "reverse_kl", reduction="none"
        )
    assert (rows == 0).all()
    assert not torch.signbit(rows).any()
    assert (grad == 0).all()
    assert torch.equal(trl, kl)


def test_jsd_keeps_its_accuracy_where_the_distributions_nearly_agree():
    """The log-ratios against the mixture come from the difference of log-probabilities: a JSD of 1e-8 between
    float32 rows keeps 1e-3 of relative accuracy on every path, where two float32 log-softmaxes keep none."""
    teacher = _randn(8, 1000, scale=2.0, seed=12, dtype=torch.float32)
    student = (teacher.double() + _randn(8, 1000, scale=4e-4, seed=13)).to(torch.float32)
    want = oracle_rows(student, teacher, "jsd")
    assert want.max() < 1e-7
    for path in PATHS:
        with _on(path):
            got = distillation_loss(student, teacher, divergence="jsd", reduction="none").double().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-3, err_msg=path)
    ls, lt = student.log_softmax(-1), teacher.log_softmax(-1)
    lm = torch.logsumexp(torch.stack([ls, lt]), 0) - math.log(2.0)
    naive = F.kl_div(lm, lt, reduction="none", log_target=True) + F.kl_div(lm, ls, reduction="none", log_target=True)
    assert np.max(np.abs(naive.sum(-1).double().numpy() / 2 - want) / want) > 1e-2


@pytest.mark.parametrize("beta", [1e-3, 0.999])
@pytest.mark.parametrize("path", PATHS)
def test_jsd_with_beta_near_0_or_1_keeps_float32_accuracy(path, beta):
    """Beta near 0 or 1 on every path: float32 rows keep float32's accuracy in the value and the gradient (where
    1 + c expm1(-|d|) is small the mixture's log comes from (1 - c) + c exp(-|d|); tests/test_vector_math.py
    checks that element by element against mpmath, which these row sums are too coarse to see)."""
    student, teacher = _randn(4, 3000, scale=4.0, seed=14, dtype=torch.float32), _randn(4, 3000, scale=4.0, seed=15)
    teacher = teacher.to(torch.float32)
    want = torch.from_numpy(oracle_rows(student, teacher, "jsd", beta))
    leaf = student.clone().requires_grad_()
    with _on(path):
        rows = distillation_loss(leaf, teacher, divergence="jsd", beta=beta, reduction="none")
    (grad,) = torch.autograd.grad(rows.sum(), leaf)
    exact_leaf = student.double().requires_grad_()
    (want_grad,) = torch.autograd.grad(composite_rows(exact_leaf, teacher, "jsd", beta).sum(), exact_leaf)
    _close(rows, want, torch.float32, f"value ({path})")
    _close(grad, want_grad, torch.float32, f"gradient ({path})")


@pytest.mark.parametrize("path", PATHS)
def test_all_rows_ignored(path):
    """Every label ignored: the exact mean is NaN (0/0, as PyTorch's losses), the sum 0, the gradient 0; TRL,
    Liger and torchtune give 0."""
    student, teacher = _randn(2, 3, 20, seed=14), _randn(2, 3, 20, seed=15)
    y = torch.full((2, 3), -100)
    leaf = student.clone().requires_grad_()
    with _on(path):
        mean = distillation_loss(leaf, teacher, labels=y)
        total = distillation_loss(leaf, teacher, labels=y, reduction="sum")
        (grad,) = torch.autograd.grad(total, leaf)
        others = [distillation_loss(student, teacher, labels=y, convention=c) for c in ("trl", "liger", "torchtune")]
    assert torch.isnan(mean)
    assert total.item() == 0.0
    assert (grad == 0).all()
    assert all(o.item() == 0.0 for o in others)


def test_empty_batch():
    """No rows: the mean is NaN, the sum 0, "none" an empty tensor (on every path)."""
    for path in PATHS:
        with _on(path):
            s, t = torch.empty(0, 5, dtype=torch.float64), torch.empty(0, 5, dtype=torch.float64)
            assert torch.isnan(distillation_loss(s, t))
            assert distillation_loss(s, t, reduction="sum").item() == 0.0
            assert distillation_loss(s, t, reduction="none").shape == (0,)


# ----------------------------------------------------------------------------------------------------------
# the conventions, against the peers


def _trl() -> Any:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gkd = pytest.importorskip("trl.experimental.gkd.gkd_trainer")
    return gkd.GKDTrainer.generalized_jsd_loss


TRL_CALLS = [
    ("jsd", 0.5),
    ("jsd", 0.2),
    ("jsd", 0.0),
    ("jsd", 1.0),
    ("forward_kl", 0.5),
    ("reverse_kl", 0.5),
]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("labels", [False, True], ids=["no-labels", "labels"])
@pytest.mark.parametrize("shape", [(6, 33), (2, 4, 33)], ids=["2d", "3d"])
@pytest.mark.parametrize(("divergence", "beta"), TRL_CALLS)
@pytest.mark.parametrize("path", PATHS)
def test_trl_convention_is_trls_number_and_gradient(path, divergence, beta, shape, labels, reduction):
    """``convention="trl"`` against TRL's own ``generalized_jsd_loss`` (``"mean"`` is its ``"batchmean"``: by the
    kept rows, or without labels by the first dimension; the forward/reverse KL are its ``beta`` 0 and 1)."""
    generalized_jsd_loss = _trl()
    student, teacher = _randn(*shape, seed=16, dtype=torch.float32), _randn(*shape, seed=17, dtype=torch.float32)
    y = torch.arange(math.prod(shape[:-1])).reshape(shape[:-1]) % 5 - 1 if labels else None
    if y is not None:
        y[y == -1] = -100
    ours_leaf, theirs_leaf = student.clone().requires_grad_(), student.clone().requires_grad_()
    with _on(path):
        ours = distillation_loss(
            ours_leaf,
            teacher,
            divergence=divergence,
            beta=beta,
            temperature=2.0,
            labels=y,
            reduction=reduction,
            convention="trl",
        )
    trl_beta = {"forward_kl": 0.0, "reverse_kl": 1.0}.get(divergence, beta)
    theirs = generalized_jsd_loss(
        theirs_leaf,
        teacher,
        labels=y,
        beta=trl_beta,
        temperature=2.0,
        reduction="batchmean" if reduction == "mean" else reduction,
    )
    torch.testing.assert_close(ours, theirs, rtol=2e-6, atol=2e-7)
    cotangent = torch.tensor(1.7)
    (g_ours,) = torch.autograd.grad(ours, ours_leaf, cotangent)
    (g_theirs,) = torch.autograd.grad(theirs, theirs_leaf, cotangent)
    torch.testing.assert_close(g_ours, g_theirs, rtol=2e-5, atol=2e-7)


def _liger() -> Any:
    chunked = pytest.importorskip("liger_kernel.chunked_loss")
    return chunked.LigerFusedLinearJSDLoss


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0])
@pytest.mark.parametrize("path", PATHS)
def test_liger_convention_is_ligers_number_and_gradient(path, beta, bias):
    """``convention="liger"`` against Liger-Kernel's ``LigerFusedLinearJSDLoss`` (its soft loss:
    ``weight_hard_loss=0``), from hidden states and weights, fused and from materialised logits."""
    loss_class = _liger()
    h_s, w_s = _randn(12, 6, scale=1.0, seed=18), _randn(17, 6, scale=1.0, seed=19)
    h_t, w_t = _randn(12, 7, scale=1.0, seed=20), _randn(17, 7, scale=1.0, seed=21)
    b_s, b_t = (_randn(17, scale=1.0, seed=22), _randn(17, scale=1.0, seed=23)) if bias else (None, None)
    y = torch.tensor([0, -100, 3, 4, -100, 6, 7, 8, 9, 10, 11, 12])
    peer = loss_class(
        weight_hard_loss=0.0, weight_soft_loss=1.0, beta=beta, temperature=1.5, compiled=False, chunk_size=4
    )
    leaves = [x.clone().requires_grad_() for x in (h_s, w_s)] + ([b_s.clone().requires_grad_()] if bias else [])
    theirs = peer(*leaves[:2], h_t, w_t, y, *([*leaves[2:], b_t] if bias else []))
    want = torch.autograd.grad(theirs, leaves)
    for fused in (True, False):
        mine = [x.clone().requires_grad_() for x in (h_s, w_s)] + ([b_s.clone().requires_grad_()] if bias else [])
        b_mine = mine[2] if bias else None
        options = {"divergence": "jsd", "beta": beta, "temperature": 1.5, "labels": y, "convention": "liger"}
        with _on(path):
            if fused:
                ours = linear_distillation_loss(
                    mine[0], mine[1], h_t, w_t, student_bias=b_mine, teacher_bias=b_t, **options
                )
            else:
                logits_s = mine[0] @ mine[1].T + (b_mine if bias else 0.0)
                logits_t = h_t @ w_t.T + (b_t if bias else 0.0)
                ours = distillation_loss(logits_s, logits_t, **options)
        # Liger adds the chunks' losses into a float32 accumulator: its number for float64 inputs is float32
        assert theirs.dtype == torch.float32
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7, check_dtype=False)
        for g_ours, g_theirs in zip(torch.autograd.grad(ours, mine), want, strict=True):
            torch.testing.assert_close(g_ours, g_theirs, rtol=1e-10, atol=1e-12)


def torchtune_forward_kl(student: Any, teacher: Any, labels: Any, ignore_index: int = -100) -> Any:
    """torchtune's ``ForwardKLLoss.forward`` as documented (modules/loss/kd_losses.py)."""
    teacher_prob = F.softmax(teacher, dim=-1, dtype=torch.float32)
    inf_mask = torch.isinf(student)
    student_logprob = F.log_softmax(student, dim=-1, dtype=torch.float32)
    prod_probs = torch.masked_fill(teacher_prob * student_logprob, inf_mask, 0)
    x = torch.sum(prod_probs, dim=-1).view(-1)
    mask = (labels != ignore_index).int()
    if torch.sum(mask.view(-1), dim=0) == 0:
        return torch.tensor(0.0)
    return -torch.sum(x * mask.view(-1), dim=0) / torch.sum(mask.view(-1), dim=0)


def torchtune_reverse_kl(student: Any, teacher: Any, labels: Any, ignore_index: int = -100) -> Any:
    """torchtune's ``ReverseKLLoss.forward`` as documented."""
    student_prob = F.softmax(student, dim=-1, dtype=torch.float32)
    student_logprob = F.log_softmax(student, dim=-1, dtype=torch.float32)
    teacher_logprob = F.log_softmax(teacher, dim=-1, dtype=torch.float32)
    inf_mask = torch.isinf(student) | torch.isinf(teacher)
    prod_probs = torch.masked_fill(student_prob * teacher_logprob, inf_mask, 0)
    prod_probs -= torch.masked_fill(student_prob * student_logprob, inf_mask, 0)
    x = torch.sum(prod_probs, dim=-1).view(-1)
    mask = (labels != ignore_index).int()
    if torch.sum(mask.view(-1), dim=0) == 0:
        return torch.tensor(0.0)
    return -torch.sum(x * mask.view(-1), dim=0) / torch.sum(mask.view(-1), dim=0)


@pytest.mark.parametrize(
    ("divergence", "formula"), [("forward_kl", torchtune_forward_kl), ("reverse_kl", torchtune_reverse_kl)]
)
@pytest.mark.parametrize("path", PATHS)
def test_torchtune_convention_follows_its_formulas(path, divergence, formula):
    """``convention="torchtune"``: ``ForwardKLLoss`` is the cross-entropy ``H(P_t, P_s)`` (KL plus the
    teacher's entropy: same gradient), ``ReverseKLLoss`` the reverse KL; mean over the kept rows; no
    temperature (the logits are divided by it here, as a torchtune user would); ``SymmetricKLLoss`` is their
    weighted sum; no JSD."""
    student, teacher = _randn(8, 40, seed=24, dtype=torch.float32), _randn(8, 40, seed=25, dtype=torch.float32)
    y = torch.tensor([1, -100, 3, 4, 5, -100, 7, 8])
    ours_leaf, theirs_leaf = student.clone().requires_grad_(), student.clone().requires_grad_()
    with _on(path):
        ours = distillation_loss(
            ours_leaf, teacher, divergence=divergence, temperature=2.0, labels=y, convention="torchtune"
        )
    theirs = formula(theirs_leaf / 2.0, teacher / 2.0, y)
    torch.testing.assert_close(ours, theirs, rtol=2e-6, atol=2e-7)
    torch.testing.assert_close(
        torch.autograd.grad(ours, ours_leaf)[0], torch.autograd.grad(theirs, theirs_leaf)[0], rtol=1e-5, atol=1e-8
    )
    with pytest.raises(ce.InputError, match="convention 'torchtune' has no Jensen-Shannon"):
        distillation_loss(student, teacher, divergence="jsd", convention="torchtune")


def test_conventions_differ_as_documented():
    """The same call under each convention: exact and Liger agree with labels; TRL divides a 3-D batch without
    labels by its first dimension; torchtune's forward KL adds the teacher's entropy; exact's mean of no rows is
    NaN where the others give 0."""
    student, teacher = _randn(2, 3, 9, seed=26), _randn(2, 3, 9, seed=27)
    rows = torch.from_numpy(oracle_rows(student, teacher, "forward_kl"))
    loss = {c: distillation_loss(student, teacher, convention=c) for c in ("exact", "trl", "liger", "torchtune")}
    assert math.isclose(loss["exact"].item(), rows.mean().item(), rel_tol=1e-12)
    assert math.isclose(loss["liger"].item(), rows.mean().item(), rel_tol=1e-12)
    assert math.isclose(loss["trl"].item(), rows.sum().item() / 2, rel_tol=1e-12)
    entropy = ce.entropy(teacher.numpy(), from_logits=True)
    assert math.isclose(loss["torchtune"].item(), (rows.numpy() + entropy).mean(), rel_tol=1e-12)


# ----------------------------------------------------------------------------------------------------------
# bad input


def _bad_calls() -> list[tuple[str, Callable[[], Any], str]]:
    s, t = _randn(2, 5), _randn(2, 5)
    h, w = _randn(2, 3), _randn(5, 3)
    return [
        ("integer student", lambda: distillation_loss(torch.ones(2, 5, dtype=torch.long), t), "student_logits"),
        ("integer teacher", lambda: distillation_loss(s, torch.ones(2, 5, dtype=torch.long)), "teacher_logits"),
        ("numpy student", lambda: distillation_loss(s.numpy(), t), "student_logits"),
        ("vocabularies", lambda: distillation_loss(s, _randn(2, 6)), "vocabularies differ"),
        ("shapes", lambda: distillation_loss(s, _randn(3, 5)), "teacher_logits has shape"),
        ("0-d", lambda: distillation_loss(s[0, 0], t[0, 0]), "vocabulary axis"),
        ("empty vocabulary", lambda: distillation_loss(s[:, :0], t[:, :0]), "empty vocabulary"),
        ("temperature 0", lambda: distillation_loss(s, t, temperature=0.0), "temperature"),
        ("temperature < 0", lambda: distillation_loss(s, t, temperature=-1.0), "temperature"),
        ("temperature inf", lambda: distillation_loss(s, t, temperature=math.inf), "temperature"),
        ("temperature nan", lambda: distillation_loss(s, t, temperature=math.nan), "temperature"),
        ("temperature bool", lambda: distillation_loss(s, t, temperature=True), "temperature"),
        ("temperature str", lambda: distillation_loss(s, t, temperature="2"), "temperature"),
        ("beta < 0", lambda: distillation_loss(s, t, divergence="jsd", beta=-0.1), "beta"),
        ("beta > 1", lambda: distillation_loss(s, t, divergence="jsd", beta=1.5), "beta"),
        ("beta nan", lambda: distillation_loss(s, t, divergence="jsd", beta=math.nan), "beta"),
        ("divergence", lambda: distillation_loss(s, t, divergence="kl"), "divergence"),
        ("convention", lambda: distillation_loss(s, t, convention="huggingface"), "convention"),
        ("reduction", lambda: distillation_loss(s, t, reduction="batchmean"), "reduction"),
        ("labels shape", lambda: distillation_loss(s, t, labels=torch.zeros(3, dtype=torch.long)), "labels"),
        ("labels float", lambda: distillation_loss(s, t, labels=torch.zeros(2)), "labels"),
        (
            "ignore_index float",
            lambda: distillation_loss(s, t, labels=torch.zeros(2, dtype=torch.long), ignore_index=0.5),
            "ignore_index",
        ),
        ("weight 1-d", lambda: linear_distillation_loss(h, w[0], h, w), "student_weight"),
        ("hidden size", lambda: linear_distillation_loss(h, w, _randn(2, 4), w), "teacher_input"),
        ("linear vocabularies", lambda: linear_distillation_loss(h, w, h, _randn(6, 3)), "vocabularies differ"),
        ("leading shapes", lambda: linear_distillation_loss(h, w, _randn(3, 3), w), "leading shape"),
        ("bias shape", lambda: linear_distillation_loss(h, w, h, w, student_bias=_randn(4)), "student_bias"),
        (
            "integer weight",
            lambda: linear_distillation_loss(h, torch.ones(5, 3, dtype=torch.long), h, w),
            "student_weight",
        ),
        ("linear temperature", lambda: linear_distillation_loss(h, w, h, w, temperature=0), "temperature"),
        (
            "linear jsd torchtune",
            lambda: linear_distillation_loss(h, w, h, w, divergence="jsd", convention="torchtune"),
            "convention",
        ),
    ]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", _bad_calls(), ids=lambda c: c[0])
def test_bad_input_is_one_clear_error_on_every_path(case, path):
    """One InputError (a ValueError) naming the argument, whichever path would have run."""
    _, call, needle = case
    with _on(path), pytest.raises(ce.InputError, match=needle):
        call()


# ----------------------------------------------------------------------------------------------------------
# linear + distillation


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("path", PATHS)
def test_linear_matches_the_materialised_logits(path, divergence, dtype, reduction, monkeypatch):
    """From hidden states (3-D, with biases and labels) over several row blocks: the loss of the materialised
    logits, and the gradients of the student's input, weight and bias; the teacher's get none. The reference is
    the materialised computation in float64 (float32 results: within 3e-5 of the largest value, as two float32
    matrix products of a gradient with cancellation differ by that much)."""
    monkeypatch.setattr(_dispatch, "DISTILL_BLOCK_BYTES", 3 * 70 * 16)  # three rows per block
    h_s, w_s, b_s = (
        _randn(2, 5, 6, scale=1.0, seed=28, dtype=dtype),
        _randn(70, 6, seed=29, dtype=dtype),
        _randn(70, seed=30, dtype=dtype),
    )
    h_t, w_t = _randn(2, 5, 9, scale=1.0, seed=31, dtype=dtype), _randn(70, 9, seed=32, dtype=dtype).requires_grad_()
    y = torch.tensor([[1, 2, -100, 4, 5], [-100, 7, 8, 9, 10]])
    options = {"divergence": divergence, "beta": 0.6, "temperature": 1.3, "labels": y, "reduction": reduction}
    fused_leaves = [x.clone().requires_grad_() for x in (h_s, w_s, b_s)]
    naive_leaves = [x.double().requires_grad_() for x in (h_s, w_s, b_s)]
    with _on(path):
        fused = linear_distillation_loss(*fused_leaves[:2], h_t, w_t, student_bias=fused_leaves[2], **options)
    with _on("reference"):
        naive = distillation_loss(
            naive_leaves[0] @ naive_leaves[1].T + naive_leaves[2], h_t.double() @ w_t.detach().double().T, **options
        )
    assert fused.dtype == dtype
    assert fused.shape == naive.shape
    cotangent = _randn(*fused.shape, scale=1.0, seed=33, dtype=dtype)
    got = [fused, *torch.autograd.grad(fused, fused_leaves, cotangent)]
    want = [naive, *torch.autograd.grad(naive, naive_leaves, cotangent.double())]
    rtol = 1e-12 if dtype == torch.float64 else 3e-5
    for name, a, b in zip(("value", "student_input", "student_weight", "student_bias"), got, want, strict=True):
        scale = float(b.detach().abs().max())
        np.testing.assert_allclose(a.detach().double(), b.detach(), rtol=rtol, atol=rtol * scale, err_msg=name)
    assert w_t.grad is None


@pytest.mark.parametrize("path", PATHS)
def test_linear_without_gradients_and_in_bfloat16(path):
    """Under no_grad nothing is differentiated; bfloat16 inputs on the CPU are multiplied in float32."""
    h_s, w_s = _randn(6, 8, scale=1.0, seed=34, dtype=torch.bfloat16), _randn(50, 8, seed=35, dtype=torch.bfloat16)
    h_t, w_t = _randn(6, 4, scale=1.0, seed=36, dtype=torch.bfloat16), _randn(50, 4, seed=37, dtype=torch.bfloat16)
    with _on(path):
        with torch.no_grad():
            quiet = linear_distillation_loss(h_s.requires_grad_(), w_s, h_t, w_t, divergence="reverse_kl")
        assert not quiet.requires_grad
        loss = linear_distillation_loss(h_s, w_s, h_t, w_t, divergence="reverse_kl")
        (grad,) = torch.autograd.grad(loss, h_s)
    assert loss.dtype == grad.dtype == torch.bfloat16
    logits_s, logits_t = h_s.double() @ w_s.double().T, h_t.double() @ w_t.double().T
    want = oracle_rows(logits_s, logits_t, "reverse_kl").mean()
    assert math.isclose(loss.item(), want, rel_tol=1e-2)
    assert loss.item() == quiet.item()


# ----------------------------------------------------------------------------------------------------------
# torch.compile and host synchronisation


def _distill_call(student: Any, teacher: Any, y: Any) -> Any:
    return distillation_loss(student, teacher, divergence="jsd", beta=0.3, temperature=2.0, labels=y)


def _linear_call(h_s: Any, w_s: Any, h_t: Any, w_t: Any, y: Any) -> Any:
    return linear_distillation_loss(h_s, w_s, h_t, w_t, divergence="reverse_kl", labels=y, convention="liger")


def _compile_cases() -> list[tuple[str, Callable[..., Any], Callable[[], list[Any]]]]:
    def distill_args() -> list[Any]:
        return [
            _randn(4, 33, seed=38, dtype=torch.float32).requires_grad_(),
            _randn(4, 33, seed=39, dtype=torch.float32),
            torch.tensor([1, -100, 2, 3]),
        ]

    def linear_args() -> list[Any]:
        return [
            _randn(4, 6, scale=1.0, seed=40, dtype=torch.float32).requires_grad_(),
            _randn(33, 6, seed=41, dtype=torch.float32).requires_grad_(),
            _randn(4, 5, scale=1.0, seed=42, dtype=torch.float32),
            _randn(33, 5, seed=43, dtype=torch.float32),
            torch.tensor([1, -100, 2, 3]),
        ]

    return [("distillation_loss", _distill_call, distill_args), ("linear_distillation_loss", _linear_call, linear_args)]


def _value_and_grads(fn: Callable[..., Any], args: list[Any]) -> list[Any]:
    out = fn(*args)
    wanted = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    return [out, *torch.autograd.grad(out, wanted)]


@pytest.mark.parametrize("path", ["reference", "cpu"])
@pytest.mark.parametrize("case", _compile_cases(), ids=lambda c: c[0])
def test_compile_fullgraph_without_graph_breaks(case, path):
    """``torch._dynamo.explain`` finds one graph and no break; ``torch.compile(fullgraph=True)`` (aot_eager, which
    traces the backward pass with the fake implementations too) matches eager."""
    _, fn, make = case
    _available(path)
    torch._dynamo.reset()
    try:
        with _dispatch.use(path):
            explanation = torch._dynamo.explain(fn)(*make())
            assert explanation.graph_count == 1, explanation.break_reasons
            assert explanation.graph_break_count == 0, explanation.break_reasons
            torch._dynamo.reset()
            eager = _value_and_grads(fn, make())
            compiled = _value_and_grads(torch.compile(fn, fullgraph=True, backend="aot_eager"), make())
    finally:
        torch._dynamo.reset()
    for c, e in zip(compiled, eager, strict=True):
        torch.testing.assert_close(c, e)


def test_compiled_training_step_with_inductor():
    """A training step (a linear student head distilled from a teacher) compiled by Inductor matches eager."""
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 40)
    x, teacher = torch.randn(16, 8), torch.randn(16, 40)

    def step(x: Any, teacher: Any) -> Any:
        return distillation_loss(head(x), teacher, divergence="forward_kl", temperature=2.0)

    loss = step(x, teacher)
    expected = [loss, *torch.autograd.grad(loss, list(head.parameters()))]
    torch._dynamo.reset()
    try:
        compiled = torch.compile(step, fullgraph=True)
        loss = compiled(x, teacher)
        got = [loss, *torch.autograd.grad(loss, list(head.parameters()))]
    finally:
        torch._dynamo.reset()
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


class _Syncs(TorchDispatchMode):
    """Records operations that read a device value back to the host (see tests/test_torch_dropin.py)."""

    READS = ("_local_scalar_dense", "nonzero", "equal", "is_nonzero", "masked_select", "allclose")

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.overloadpacket.__name__ in self.READS:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("case", _compile_cases(), ids=lambda c: c[0])
def test_no_host_synchronisation(case):
    """Forward and backward on meta tensors (no values at all): nothing is read back to the host."""
    _, fn, make = case
    args = [a.detach().to("meta").requires_grad_(a.requires_grad) for a in make()]
    recorder = _Syncs()
    with recorder:
        _value_and_grads(fn, args)
    assert recorder.seen == []
    witness = _Syncs()
    with witness:
        torch.ones(2).sum().item()
    assert witness.seen  # the recorder does see a read


@pytest.mark.parametrize("path", PATHS)
def test_linear_empty_batch(path):
    """No rows: the mean is NaN, the sum 0 and the gradients zeros, as distillation_loss gives."""
    h_s, w_s = torch.empty(0, 4, dtype=torch.float64, requires_grad=True), _randn(7, 4).requires_grad_()
    h_t, w_t = torch.empty(0, 3, dtype=torch.float64), _randn(7, 3)
    with _on(path):
        assert torch.isnan(linear_distillation_loss(h_s, w_s, h_t, w_t))
        total = linear_distillation_loss(h_s, w_s, h_t, w_t, reduction="sum")
        (grad,) = torch.autograd.grad(total, w_s)
    assert total.item() == 0.0
    assert (grad == 0).all()
