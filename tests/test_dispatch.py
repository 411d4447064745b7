"""One contract on every path: the same cases through every implementation that can run here.

Implementations: the array-API reference path, the C kernel on NumPy
arrays, the C kernel on CPU torch tensors (through the torch custom op), and
the Triton kernel on CPU torch tensors under ``TRITON_INTERPRET=1``. For each
case and option set, every implementation must give the reference's values
(to a dtype tolerance) or raise the same exception with the same message.
The vocabulary-parallel path runs the same kind of matrix in
tests/test_distributed.py (it needs separate processes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import _dispatch, _kernels

IMPLEMENTATIONS = ["reference", "cpu-numpy", "cpu-torch", "triton"]


def _torch() -> Any:
    return pytest.importorskip("torch")


def _to_impl(impl: str, value: Any) -> Any:
    """NumPy arrays become CPU tensors for the torch implementations; everything else passes."""
    if impl in ("cpu-torch", "triton") and isinstance(value, np.ma.MaskedArray):
        pytest.skip("masked arrays are NumPy's")
    if impl in ("cpu-torch", "triton") and isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        torch = _torch()
        if value.dtype == np.uint64:
            pytest.skip("torch has no uint64 arithmetic")
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def _backend(impl: str) -> str:
    return {"reference": "reference", "cpu-numpy": "cpu", "cpu-torch": "cpu", "triton": "triton"}[impl]


def _available(impl: str) -> None:
    if impl.startswith("cpu") and not _kernels.available():
        pytest.skip("the C kernels are not built")
    if impl in ("cpu-torch", "triton"):
        _torch()
    if impl == "triton":
        pytest.importorskip("triton")


def _outcome(impl: str, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    """``("value", float64 array)`` or ``("error", (type name, message))`` of one call on one implementation."""
    args = tuple(_to_impl(impl, a) for a in args)
    kwargs = {k: _to_impl(impl, v) for k, v in kwargs.items()}
    try:
        with _dispatch.use(_backend(impl)), np.errstate(all="ignore"):
            value = call(*args, **kwargs)
    except Exception as exc:  # the comparison is the test
        return "error", (type(exc).__name__, str(exc).replace("torch.", ""))
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return "value", np.asarray(value, dtype=np.float64)


def _assert_same(impl: str, got: tuple[str, Any], want: tuple[str, Any], dtype: Any) -> None:
    assert got[0] == want[0], f"{impl}: {got} but the reference path gives {want}"
    if got[0] == "error":
        assert got[1] == want[1], f"{impl} raises {got[1]}, the reference path {want[1]}"
        return
    a, b = got[1], want[1]
    assert a.shape == b.shape, f"{impl}: shape {a.shape}, reference {b.shape}"
    rtol = 1e-12 if np.dtype(dtype) == np.float64 else 2e-6
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, err_msg=impl)


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    dtype: Any = np.float64


def _logits(dtype: Any = np.float64) -> np.ndarray:
    return np.array([[2.0, 1.0, 0.1, -1.0], [0.5, 2.5, 0.3, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=dtype)


def sparse_cases() -> list[Case]:
    x = _logits()
    t = np.array([0, 1, 3])
    masked = x.copy()
    masked[0, 2] = -np.inf
    return [
        Case("plain", (t, x), {}),
        Case("float32", (t, x.astype(np.float32)), {}, np.float32),
        Case("int32 labels", (t.astype(np.int32), x), {}),
        Case("uint8 labels", (t.astype(np.uint8), x), {}),
        Case("label out of range", (np.array([0, 4, 1]), x), {}),
        Case("negative label", (np.array([0, -1, 1]), x), {}),
        Case("NaN logit", (t, np.where(x == 2.5, np.nan, x)), {}),
        Case("+inf logit", (t, np.where(x == 2.5, np.inf, x)), {}),
        Case("-inf logit (masked class)", (t, masked), {}),
        Case("-inf logit at the target", (np.array([2, 1, 3]), masked), {}),
        Case("all -inf row", (t, np.where(np.arange(3)[:, None] == 1, -np.inf, x)), {}),
        Case("logits +-1e4", (np.array([1, 0, 2]), x * 1e4), {}),
        Case("empty batch", (np.empty(0, np.int64), np.empty((0, 4))), {}),
        Case("all ignored", (np.array([-100, -100, -100]), x), {"ignore_index": -100}),
        Case("ignored label", (np.array([0, -100, 3]), x), {"ignore_index": -100}),
        Case("ignore_index beyond int64", (np.array([2, 0, 1]), x), {"ignore_index": 2**64}),
        Case("uint64 label 2**64 - 1", (np.array([2**64 - 1, 0, 1], np.uint64), x), {"ignore_index": -1}),
        Case("smoothing, logits 1e30", (np.array([0]), np.full((1, 64), 1e30)), {"label_smoothing": 0.1}),
        Case(
            "smoothing, float32 equal logits",
            (np.array([0]), np.zeros((1, 3), np.float32)),
            {"label_smoothing": 0.1},
            np.float32,
        ),
        Case("smoothing, offset 1e3", (t, x + 1e3), {"label_smoothing": 0.3}),
        Case("smoothing, -inf logit", (t, masked), {"label_smoothing": 0.1}),
        Case("class weights", (t, x), {"class_weight": np.array([1.0, 2.0, 0.5, 3.0])}),
        Case("class weights, label out of range", (np.array([0, 7, 1]), x), {"class_weight": np.ones(4)}),
        Case("negative class weight", (t, x), {"class_weight": np.array([1.0, -2.0, 0.5, 3.0])}),
        Case(
            "class weights and smoothing",
            (t, x),
            {"class_weight": np.array([1.0, 2.0, 0.5, 3.0]), "label_smoothing": 0.2},
        ),
        Case("z-loss", (t, x), {"z_loss": 1e-2}),
        Case("sample weights", (t, x), {"sample_weight": np.array([1.0, 0.0, 2.0])}),
        Case("masked array", (t, np.ma.masked_array(x, mask=x > 2)), {}),
        Case("masked labels", (np.ma.masked_array(t, mask=[0, 1, 0]), x), {}),
        Case("masked class weights", (t, x), {"class_weight": np.ma.masked_array(np.ones(4), mask=[0, 1, 0, 0])}),
        Case("masked sample weights", (t, x), {"sample_weight": np.ma.masked_array(np.ones(3), mask=[0, 1, 0])}),
        Case("non-contiguous", (t, np.asfortranarray(x)), {}),
    ]


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS[1:])
@pytest.mark.parametrize("case", sparse_cases(), ids=lambda c: c.name)
def test_sparse_loss_same_on_every_implementation(case, impl, reduction):
    _available(impl)
    kwargs = {**case.kwargs, "from_logits": True, "reduction": reduction}
    call = ce.sparse_categorical_cross_entropy
    want = _outcome("reference", call, case.args, kwargs)
    _assert_same(impl, _outcome(impl, call, case.args, kwargs), want, case.dtype)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS[1:])
@pytest.mark.parametrize("case", sparse_cases(), ids=lambda c: c.name)
def test_sparse_gradient_same_on_every_implementation(case, impl):
    _available(impl)
    if impl in ("cpu-torch", "triton"):
        # the torch implementations are differentiated by autograd, the NumPy one in closed form
        torch = _torch()
        kwargs = {**case.kwargs, "from_logits": True}
        want = _outcome("reference", ce.grad.sparse_categorical_cross_entropy, case.args, kwargs)
        if want[0] == "error":
            return  # the loss test above holds the errors
        if case.args[0].dtype == np.uint64:
            pytest.skip("torch has no uint64 arithmetic")
        labels = torch.from_numpy(np.ascontiguousarray(case.args[0]))
        logits = torch.from_numpy(np.ascontiguousarray(case.args[1])).requires_grad_()
        extra = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        with _dispatch.use(_backend(impl)), np.errstate(all="ignore"):
            loss = ce.sparse_categorical_cross_entropy(labels, logits, **extra)
        if not torch.isfinite(loss):
            return  # no gradient to compare (empty or fully ignored batch)
        (got,) = torch.autograd.grad(loss, logits)
        _assert_same(impl, ("value", got.double().numpy()), want, case.dtype)
        return
    kwargs = {**case.kwargs, "from_logits": True}
    for call in (ce.grad.sparse_categorical_cross_entropy, ce.grad.sparse_categorical_cross_entropy_value_and_grad):
        want = _outcome("reference", call, case.args, kwargs)
        got = _outcome(impl, call, case.args, kwargs)
        if call is ce.grad.sparse_categorical_cross_entropy_value_and_grad and got[0] == "value":
            continue  # a (loss, grad) pair: both parts are compared by the other tests
        _assert_same(impl, got, want, case.dtype)


def categorical_cases() -> list[Case]:
    x = _logits()
    y = np.array([[0.7, 0.2, 0.1, 0.0], [0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    masked = x.copy()
    masked[0, 3] = -np.inf
    return [
        Case("plain", (y, x), {}),
        Case("float32", (y.astype(np.float32), x.astype(np.float32)), {}, np.float32),
        Case("-inf logit with target 0", (y, masked), {}),
        Case("NaN logit", (y, np.where(x == 2.5, np.nan, x)), {}),
        Case("target row sums to 1.1", (y * 1.1, x), {}),
        Case("negative target", (y - 0.1, x), {}),
        Case("smoothing and class weights", (y, x), {"label_smoothing": 0.1, "class_weight": np.array([1, 2, 3, 4.0])}),
        Case("logits 1e30", (y, x * 1e30), {}),
        Case("masked class weights", (y, x), {"class_weight": np.ma.masked_array(np.ones(4), mask=[0, 1, 0, 0])}),
        Case("masked targets", (np.ma.masked_array(y, mask=y == 0), x), {}),
    ]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", categorical_cases(), ids=lambda c: c.name)
def test_categorical_loss_same_on_every_implementation(case, reduction):
    _available("cpu-numpy")
    kwargs = {**case.kwargs, "from_logits": True, "reduction": reduction}
    want = _outcome("reference", ce.categorical_cross_entropy, case.args, kwargs)
    _assert_same("cpu-numpy", _outcome("cpu-numpy", ce.categorical_cross_entropy, case.args, kwargs), want, case.dtype)


def binary_cases() -> list[Case]:
    y = np.array([1.0, 0.0, 1.0, 0.3])
    p = np.array([0.9, 0.2, 1e-300, 0.5])
    logits = np.array([3.0, -40.0, np.inf, -np.inf])
    return [
        Case("probabilities", (y, p), {}),
        Case("float32", (y.astype(np.float32), p.astype(np.float32)), {}, np.float32),
        Case("p = 0 for y = 1", (y, np.array([0.9, 0.2, 0.0, 0.5])), {}),
        Case("NaN probability", (y, np.array([0.9, np.nan, 0.1, 0.5])), {}),
        Case("probability 1 + 1e-12", (y, np.array([0.9, 1 + 1e-12, 0.1, 0.5])), {}),
        Case("target 1.5", (np.array([1.5, 0.0, 1.0, 0.3]), p), {}),
        Case("logits, +-inf", (np.array([1.0, 0.0, 1.0, 0.0]), logits), {"from_logits": True}),
        Case("logits, NaN", (y, np.array([1.0, np.nan, 0.0, 2.0])), {"from_logits": True}),
        Case("pos_weight and smoothing", (y, p), {"pos_weight": 3.0, "label_smoothing": 0.1}),
        Case("negative pos_weight", (y, p), {"pos_weight": -1.0}),
        Case("empty", (np.empty(0), np.empty(0)), {}),
        Case("float32, label 0, p down to 1e-45", (np.zeros(5, np.float32), TINY), {}, np.float32),
        Case("masked targets", (np.ma.masked_array(y, mask=[0, 1, 0, 0]), p), {}),
    ]


TINY = np.array([1e-20, 1e-14, 1e-16, 1e-30, 1e-45], np.float32)


def test_binary_tiny_probabilities_to_relative_accuracy_on_every_implementation():
    """Issue 27: the float32 kernel gave -0.0 for label 0 and p = 1e-20 (the comparisons above are absolute)."""
    _available("cpu-numpy")
    exact = -np.log1p(-TINY.astype(np.float64))
    for impl in ("reference", "cpu-numpy"):
        kind, got = _outcome(impl, ce.binary_cross_entropy, (np.zeros(5, np.float32), TINY), {"reduction": "none"})
        assert kind == "value", got
        np.testing.assert_allclose(got, exact, rtol=2**-23, atol=0, err_msg=impl)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    ("out", "message"),
    [
        (np.empty((3, 4), np.int64), "floating dtype"),
        (np.empty((3, 4), bool), "floating dtype"),
        (np.empty((3, 4), np.float32), "dtype float64"),
        (np.empty((4, 3)), "shape"),
        (np.empty((2, 3, 4)), "shape"),
    ],
    ids=["int64", "bool", "float32", "transposed", "broadcastable"],
)
def test_value_and_grad_refuses_an_out_that_cannot_hold_the_gradient(impl, out, message):
    """Issue 27: an int64 out= was silently filled with zeros. Refused, with the same message, everywhere."""
    _available(impl)
    args = (np.array([0, 1, 3]), _logits())
    call = ce.grad.sparse_categorical_cross_entropy_value_and_grad
    got = _outcome(impl, call, args, {"out": out})
    assert got[0] == "error", got
    assert got[1][0] == "InputError"
    assert "out must" in got[1][1]
    assert message in got[1][1]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", binary_cases(), ids=lambda c: c.name)
def test_binary_loss_same_on_every_implementation(case, reduction):
    _available("cpu-numpy")
    kwargs = {**case.kwargs, "reduction": reduction}
    want = _outcome("reference", ce.binary_cross_entropy, case.args, kwargs)
    _assert_same("cpu-numpy", _outcome("cpu-numpy", ce.binary_cross_entropy, case.args, kwargs), want, case.dtype)


def information_cases() -> list[Case]:
    p = np.array([[0.1, 0.4, 0.5], [0.0, 0.5, 0.5]])
    q = np.array([[0.8, 0.15, 0.05], [0.5, 0.5, 0.0]])
    return [
        Case("plain", (p, q), {}),
        Case("float32", (p.astype(np.float32), q.astype(np.float32)), {}, np.float32),
        Case("NaN", (p, np.where(q == 0.15, np.nan, q)), {}),
        Case("row sums to 1.001", ([*p, [0.001, 0, 0], [0, 0, 0]], q), {}),
        Case("negative", (p, q - 0.01), {}),
        Case("bits", (p, q), {"base": 2}),
        Case("keepdims", (p, q), {"keepdims": True}),
        Case("denormal", (np.array([[5e-324, 0.5, 0.5]]), np.array([[0.5, 0.5, 5e-324]])), {}),
    ]


@pytest.mark.parametrize("measure", ["entropy", "cross_entropy", "kl_divergence"])
@pytest.mark.parametrize("case", information_cases(), ids=lambda c: c.name)
def test_information_measures_same_on_every_implementation(case, measure):
    _available("cpu-numpy")
    call = getattr(ce, measure)
    args = case.args[:1] if measure == "entropy" else case.args
    want = _outcome("reference", call, args, case.kwargs)
    _assert_same("cpu-numpy", _outcome("cpu-numpy", call, args, case.kwargs), want, case.dtype)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_the_dispatcher_really_picks_each_implementation(impl):
    _available(impl)
    x = _to_impl(impl, _logits())
    with _dispatch.use(_backend(impl)):
        assert _dispatch.choose("sparse", x, ce.conventions.EXACT) == _backend(impl)
    assert _dispatch.choose("sparse", x, ce.conventions.SKLEARN) == "reference"  # sklearn clips: never fused


def test_only_the_dispatcher_names_the_backends():
    """Outside _dispatch.py (and the kernels themselves), no module picks a kernel."""
    from pathlib import Path

    src = Path(ce.__file__).parent
    offenders = []
    for path in src.rglob("*.py"):
        rel = path.relative_to(src).as_posix()
        if rel == "_dispatch.py" or rel.startswith("_kernels/"):
            continue
        text = path.read_text()
        for needle in (
            "triton_ce",
            "torch_cpu",
            "_kernels.sparse",
            "_kernels.soft",
            "_kernels.binary",
            "_kernels.info",
        ):
            if needle in text:
                offenders.append(f"{rel}: {needle}")
    assert not offenders, offenders


@pytest.mark.parametrize("impl", IMPLEMENTATIONS[1:])
@pytest.mark.parametrize("case", sparse_cases(), ids=lambda c: c.name)
def test_valid_cases_really_take_the_fused_path(case, impl):
    """Where the reference path gives a value, the fused kernel computes it (it does not decline)."""
    _available(impl)
    kwargs = {**case.kwargs, "from_logits": True, "reduction": "none"}
    want = _outcome("reference", ce.sparse_categorical_cross_entropy, case.args, kwargs)
    if want[0] == "error" or "sample_weight" in case.kwargs:
        return
    labels, logits = (_to_impl(impl, a) for a in case.args)
    with _dispatch.use(_backend(impl)), np.errstate(all="ignore"):
        rows = _dispatch.sparse(
            labels,
            logits,
            convention=ce.conventions.EXACT,
            last_axis=True,
            ignore_index=case.kwargs.get("ignore_index"),
            class_weight=_to_impl(impl, case.kwargs.get("class_weight")),
            label_smoothing=case.kwargs.get("label_smoothing", 0.0),
            z_loss=case.kwargs.get("z_loss", 0.0),
            validate=True,
        )
    assert rows is not None, f"{impl} declined a valid input"


def divergence_cases() -> list[Case]:
    """``kl_divergence(p, q, from_logits=True)`` (``p`` probabilities, ``q`` logits) and
    ``js_divergence(..., from_logits=True)`` (both logits) of issue 28: one fused pass per row pair."""
    p = np.array([[0.1, 0.4, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]])
    q = _logits()
    masked = q.copy()
    masked[0, 3] = -np.inf
    return [
        Case("plain", (p, q), {}),
        Case("float32", (p.astype(np.float32), q.astype(np.float32)), {}, np.float32),
        Case("-inf logit where p = 0", (p, masked), {}),
        Case("-inf logit where p > 0", (p[::-1].copy(), masked), {}),
        Case("NaN logit", (p, np.where(q == 2.5, np.nan, q)), {}),
        Case("+inf logit", (p, np.where(q == 2.5, np.inf, q)), {}),
        Case("all -inf row", (p, np.where(np.arange(3)[:, None] == 1, -np.inf, q)), {}),
        Case("p row sums to 1.1", (p * 1.1, q), {}),
        Case("negative p", (p - 0.05, q), {}),
        Case("logits +-1e4", (p, q * 1e4), {}),
        Case("bits and keepdims", (p, q), {"base": 2, "keepdims": True}),
        Case("events on axis 0", (p.T.copy(), q.T.copy()), {"axis": 0}),
        Case("non-contiguous", (np.asfortranarray(p), np.asfortranarray(q)), {}),
        Case("not validated", (p, np.where(q == 2.5, np.nan, q)), {"validate": False}),
        Case("one row", (p[0], q[0]), {}),
    ]


def _divergence_call(measure: str) -> tuple[Callable[..., Any], Callable[[tuple[Any, ...]], tuple[Any, ...]]]:
    """The function and how a case's ``(p, q)`` become its arguments (the JSD takes logits on both sides)."""
    if measure == "kl_divergence":
        return ce.kl_divergence, lambda args: args
    return ce.js_divergence, lambda args: (np.log(args[0]) if args[0].dtype.kind == "f" else args[0], args[1])


@pytest.mark.parametrize("impl", IMPLEMENTATIONS[1:])
@pytest.mark.parametrize("measure", ["kl_divergence", "js_divergence"])
@pytest.mark.parametrize("case", divergence_cases(), ids=lambda c: c.name)
def test_divergences_of_logits_same_on_every_implementation(case, measure, impl):
    _available(impl)
    call, arguments = _divergence_call(measure)
    kwargs = {**case.kwargs, "from_logits": True}
    with np.errstate(all="ignore"):
        args = arguments(case.args)
    want = _outcome("reference", call, args, kwargs)
    _assert_same(impl, _outcome(impl, call, args, kwargs), want, case.dtype)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS[1:])
@pytest.mark.parametrize("measure", ["kl_divergence", "js_divergence"])
@pytest.mark.parametrize("case", divergence_cases(), ids=lambda c: c.name)
def test_valid_divergences_really_take_the_fused_path(case, measure, impl):
    """Where the reference path gives a value for last-axis events, the fused kernel computes it."""
    _available(impl)
    call, arguments = _divergence_call(measure)
    kwargs = {**case.kwargs, "from_logits": True}
    with np.errstate(all="ignore"):
        args = arguments(case.args)
    want = _outcome("reference", call, args, kwargs)
    if want[0] == "error" or "axis" in case.kwargs or not case.kwargs.get("validate", True):
        pytest.skip("the reference path refuses this case, or it is not a last-axis validated call")
    p, q = (_to_impl(impl, a) for a in args)
    with _dispatch.use(_backend(impl)), np.errstate(all="ignore"):
        rows = _dispatch.divergence(
            "forward_kl" if measure == "kl_divergence" else "jsd",
            p,
            q,
            teacher_probs=measure == "kl_divergence",
            last_axis=True,
            check_sums=True,
        )
    assert rows is not None, f"{impl} declined a valid input"


@pytest.mark.parametrize("impl", ["cpu-torch", "triton"])
@pytest.mark.parametrize("measure", ["kl_divergence", "js_divergence"])
def test_divergences_of_logits_differentiate_like_the_reference(measure, impl):
    """With torch, the fused path is differentiable with respect to ``q`` as the reference path is."""
    _available(impl)
    torch = _torch()
    call, arguments = _divergence_call(measure)
    p, q = arguments(divergence_cases()[0].args)
    grads = {}
    for backend in ("reference", _backend(impl)):
        logits = torch.from_numpy(q).requires_grad_()
        with _dispatch.use(backend):
            value = call(torch.from_numpy(p), logits, from_logits=True).sum()
        (grads[backend],) = torch.autograd.grad(value, logits)
    np.testing.assert_allclose(grads[_backend(impl)].numpy(), grads["reference"].numpy(), rtol=1e-12, atol=1e-14)
