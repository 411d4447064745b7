"""One contract on every path: the same cases through every implementation that can run here.

Implementations: the array-API reference path (on NumPy arrays, and on
torch tensors), the C kernel on NumPy arrays, the C kernel on CPU torch
tensors (through the torch custom op), and the Triton kernel on CPU torch
tensors under ``TRITON_INTERPRET=1``. For each case and option set, every
implementation must give the reference's values (to a dtype tolerance) or
raise the same exception with the same message; on torch tensors also the
same second-order gradients (double backward) and the same results under
``torch.func`` transforms. Labels of every integer dtype meet an
``ignore_index`` inside and outside that dtype's range (compared as
unbounded integers: ``ignore_index=256`` is no uint8 label, not label 0).
The vocabulary-parallel path runs the same kind of matrix in
tests/test_distributed.py (it needs separate processes); the PyTorch drop-in
(``crossentropy.torch``) runs its paths in tests/test_torch.py and against
PyTorch's own samples in tests/test_torch_dropin.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import crossentropy as ce
from crossentropy import _dispatch, _kernels

IMPLEMENTATIONS = ["reference", "cpu-numpy", "reference-torch", "cpu-torch", "triton"]
TORCH_IMPLEMENTATIONS = ("reference-torch", "cpu-torch", "triton")
FUSED_IMPLEMENTATIONS = ("cpu-numpy", "cpu-torch", "triton")


def _torch() -> Any:
    return pytest.importorskip("torch")


def _to_impl(impl: str, value: Any) -> Any:
    """NumPy arrays become CPU tensors for the torch implementations; everything else passes."""
    if impl in TORCH_IMPLEMENTATIONS and isinstance(value, np.ma.MaskedArray):
        pytest.skip("masked arrays are NumPy's")
    if impl in TORCH_IMPLEMENTATIONS and isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        torch = _torch()
        if value.dtype == np.uint64:
            pytest.skip("torch has no uint64 arithmetic")
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def _backend(impl: str) -> str:
    return {
        "reference": "reference",
        "cpu-numpy": "cpu",
        "reference-torch": "reference",
        "cpu-torch": "cpu",
        "triton": "triton",
    }[impl]


def _available(impl: str) -> None:
    if impl.startswith("cpu") and not _kernels.available():
        pytest.skip("the C kernels are not built")
    if impl in TORCH_IMPLEMENTATIONS:
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


def label_dtype_cases() -> list[Case]:
    """Labels of every integer dtype with ``ignore_index`` inside their range and outside it (where it would
    wrap onto a real class if converted: 256 is uint8 0, -100 is uint8 156, 2**64 fits no dtype)."""
    x = _logits()
    wide = np.random.default_rng(26).standard_normal((3, 200))
    cases = []
    for dtype in (np.uint8, np.int8, np.int16, np.int32, np.int64):
        name = np.dtype(dtype).name
        info = np.iinfo(dtype)
        inside = 200 if info.min == 0 else -100
        cases.append(
            Case(f"{name} labels, ignore_index inside", (np.array([0, inside, 3], dtype), x), {"ignore_index": inside})
        )
        outside = int(info.max) + 1  # wraps to info.min (0 for uint8), a real class for unsigned dtypes
        labels = np.array([0, 1, 3], dtype)
        cases.append(Case(f"{name} labels, ignore_index {outside}", (labels, x), {"ignore_index": outside}))
        cases.append(Case(f"{name} labels, ignore_index {outside + 2}", (labels, x), {"ignore_index": outside + 2}))
        cases.append(Case(f"{name} labels, ignore_index 2**64", (labels, x), {"ignore_index": 2**64}))
        if info.min == 0:
            cases.append(Case(f"{name} labels, ignore_index -256", (labels, x), {"ignore_index": -256}))
        else:
            low = int(info.min) - 1
            cases.append(
                Case(f"{name} labels -1, ignore_index {low}", (np.array([0, -1, 3], dtype), x), {"ignore_index": low})
            )
    cases.append(
        Case("uint8 label 156, ignore_index -100", (np.array([156, 3, 10], np.uint8), wide), {"ignore_index": -100})
    )
    cases.append(
        Case("uint8 label 44, ignore_index 300", (np.array([156, 44, 10], np.uint8), wide), {"ignore_index": 300})
    )
    return cases


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS[1:])
@pytest.mark.parametrize("case", sparse_cases() + label_dtype_cases(), ids=lambda c: c.name)
def test_sparse_loss_same_on_every_implementation(case, impl, reduction):
    _available(impl)
    kwargs = {**case.kwargs, "from_logits": True, "reduction": reduction}
    call = ce.sparse_categorical_cross_entropy
    want = _outcome("reference", call, case.args, kwargs)
    _assert_same(impl, _outcome(impl, call, case.args, kwargs), want, case.dtype)


def _torch_gradient(impl: str, case: Case, kwargs: dict[str, Any]) -> tuple[str, Any]:
    """``_outcome`` of the loss's gradient by autograd on a torch implementation (the loss, then its backward)."""
    torch = _torch()
    labels, logits = (_to_impl(impl, a) for a in case.args)
    logits = logits.requires_grad_()
    extra = {k: _to_impl(impl, v) for k, v in kwargs.items()}
    try:
        with _dispatch.use(_backend(impl)), np.errstate(all="ignore"):
            loss = ce.sparse_categorical_cross_entropy(labels, logits, **extra)
            (got,) = torch.autograd.grad(loss, logits)
    except Exception as exc:  # the comparison is the test
        return "error", (type(exc).__name__, str(exc).replace("torch.", ""))
    return "value", got.detach().double().numpy()


def _pair(impl: str, case: Case, kwargs: dict[str, Any]) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """The two ``_outcome``s of value_and_grad (the loss and the gradient; the same error twice)."""
    call = ce.grad.sparse_categorical_cross_entropy_value_and_grad
    args = tuple(_to_impl(impl, a) for a in case.args)
    try:
        with _dispatch.use(_backend(impl)), np.errstate(all="ignore"):
            loss, grad = call(*args, **kwargs)
    except Exception as exc:  # the comparison is the test
        error = ("error", (type(exc).__name__, str(exc)))
        return error, error
    return ("value", np.asarray(loss, dtype=np.float64)), ("value", np.asarray(grad, dtype=np.float64))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS[1:])
@pytest.mark.parametrize("case", sparse_cases() + label_dtype_cases(), ids=lambda c: c.name)
def test_sparse_gradient_same_on_every_implementation(case, impl):
    """The gradient: in closed form on NumPy arrays (and by value_and_grad), by autograd on torch tensors.

    Where the reference raises, autograd's forward pass raises the same error; an empty or fully ignored
    batch (NaN loss) has the reference's gradient too (empty, or zeros)."""
    _available(impl)
    kwargs = {**case.kwargs, "from_logits": True}
    want = _outcome("reference", ce.grad.sparse_categorical_cross_entropy, case.args, kwargs)
    if impl in TORCH_IMPLEMENTATIONS:
        _assert_same(impl, _torch_gradient(impl, case, kwargs), want, case.dtype)
    else:
        _assert_same(
            impl, _outcome(impl, ce.grad.sparse_categorical_cross_entropy, case.args, kwargs), want, case.dtype
        )
        for got, expected in zip(_pair(impl, case, kwargs), _pair("reference", case, kwargs), strict=True):
            _assert_same(f"{impl} value_and_grad", got, expected, case.dtype)


HIGHER_ORDER_CASES = [
    "plain",
    "float32",
    "class weights and smoothing",
    "z-loss",
    "ignored label",
    "-inf logit (masked class)",
]


def _higher_order_cases() -> list[Case]:
    chosen = [c for c in sparse_cases() if c.name in HIGHER_ORDER_CASES]
    return chosen + [c for c in label_dtype_cases() if "inside" in c.name or "2**64" in c.name]


def _torch_inputs(case: Case) -> tuple[Any, Any, dict[str, Any]]:
    torch = _torch()
    labels, logits = (torch.from_numpy(np.ascontiguousarray(a)) for a in case.args)
    extra = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in case.kwargs.items()}
    return labels, logits, {**extra, "from_logits": True}


@pytest.mark.parametrize("impl", TORCH_IMPLEMENTATIONS)
@pytest.mark.parametrize("case", _higher_order_cases(), ids=lambda c: c.name)
def test_sparse_second_order_same_on_every_implementation(case, impl):
    """Double backward (``create_graph=True``): a gradient penalty's gradient equals the reference path's.

    The NumPy implementations have no autograd; the closed-form gradient is first order by definition."""
    _available(impl)
    torch = _torch()
    labels, logits, kwargs = _torch_inputs(case)
    direction = torch.linspace(-1.0, 1.0, logits.numel(), dtype=logits.dtype).reshape(logits.shape)

    def second_order(backend: str) -> tuple[Any, Any]:
        x = logits.clone().requires_grad_()
        with _dispatch.use(backend), np.errstate(all="ignore"):
            loss = ce.sparse_categorical_cross_entropy(labels, x, reduction="sum", **kwargs)
            (g,) = torch.autograd.grad(loss, x, create_graph=True)
            assert g.requires_grad, f"{impl}: the gradient has no graph, its derivatives would be silently dropped"
            (hvp,) = torch.autograd.grad((g * direction).sum(), x)
        return g.detach(), hvp

    want, got = second_order("reference"), second_order(_backend(impl))
    for a, b in zip(got, want, strict=True):
        _assert_same(impl, ("value", a.double().numpy()), ("value", b.double().numpy()), case.dtype)


@pytest.mark.parametrize("transform", ["grad", "vmap", "jacrev", "vmap(grad)", "jacrev(grad)"])
@pytest.mark.parametrize("impl", TORCH_IMPLEMENTATIONS)
@pytest.mark.parametrize("case", _higher_order_cases(), ids=lambda c: c.name)
def test_sparse_torch_func_transforms_same_on_every_implementation(case, impl, transform):
    """``torch.func`` transforms see through every torch implementation (the dispatcher takes the reference
    path under a transform: the fused kernels read storage a transformed tensor has not), with the results of
    autograd on the reference path. ``validate=False``: a transform cannot branch on values."""
    _available(impl)
    torch = _torch()
    labels, logits, kwargs = _torch_inputs(case)
    kwargs = {**kwargs, "validate": False}

    def loss(x: Any) -> Any:
        return ce.sparse_categorical_cross_entropy(labels, x, reduction="sum", **kwargs)

    f = torch.func
    batch = torch.stack([logits, logits * 0.5, logits + 1.0])
    runs = {
        "grad": lambda: f.grad(loss)(logits),
        "vmap": lambda: f.vmap(loss)(batch),
        "jacrev": lambda: f.jacrev(loss)(logits),
        "vmap(grad)": lambda: f.vmap(f.grad(loss))(batch),
        "jacrev(grad)": lambda: f.jacrev(f.grad(loss))(logits),
    }

    def autograd_reference() -> Any:
        with _dispatch.use("reference"), np.errstate(all="ignore"):
            if transform == "vmap":
                return torch.stack([loss(b) for b in batch])
            if transform == "vmap(grad)":
                return torch.stack([torch.autograd.grad(loss(b.requires_grad_()), b)[0] for b in batch.clone()])
            x = logits.clone().requires_grad_()
            (g,) = torch.autograd.grad(loss(x), x, create_graph=True)
            if transform in ("grad", "jacrev"):
                return g
            rows = [torch.autograd.grad(gi, x, retain_graph=True)[0] for gi in g.reshape(-1)]
            return torch.stack(rows).reshape(*logits.shape, *logits.shape)

    with _dispatch.use(_backend(impl)), np.errstate(all="ignore"):
        got = runs[transform]()
    want = autograd_reference()
    _assert_same(impl, ("value", got.detach().double().numpy()), ("value", want.detach().double().numpy()), case.dtype)


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
    """Outside the dispatcher (_dispatch.py and its half for the drop-in, _dispatch_dropin.py) and the kernels
    themselves, no module picks a kernel or decides who may take one: no layout, dtype, availability or
    override checks standing in for the dispatcher's (issue 26, item 7)."""
    from pathlib import Path

    src = Path(ce.__file__).parent
    offenders = []
    for path in src.rglob("*.py"):
        rel = path.relative_to(src).as_posix()
        if rel in ("_dispatch.py", "_dispatch_dropin.py") or rel.startswith("_kernels/"):
            continue
        text = path.read_text()
        for needle in (
            "triton_ce",
            "torch_cpu",
            "_kernels.sparse",
            "_kernels.soft",
            "_kernels.binary",
            "_kernels.info",
            "_kernels.available",
            "_kernels.usable",
            "c_contiguous",
            "has_torch_function",
            "_FUSED_DTYPES",
        ):
            if needle in text:
                offenders.append(f"{rel}: {needle}")
    assert not offenders, offenders


@pytest.mark.parametrize("impl", FUSED_IMPLEMENTATIONS)
@pytest.mark.parametrize("case", sparse_cases() + label_dtype_cases(), ids=lambda c: c.name)
def test_valid_cases_really_take_the_fused_path(case, impl):
    """Where the reference path gives a value, the fused kernel computes it (it does not decline); sample
    weights are applied to the kernel's per-sample losses afterwards, so they take no part here."""
    _available(impl)
    kwargs = {**case.kwargs, "from_logits": True, "reduction": "none"}
    want = _outcome("reference", ce.sparse_categorical_cross_entropy, case.args, kwargs)
    if want[0] == "error":
        pytest.skip("the reference path raises here: there is no value for a kernel to compute")
    labels, logits = (_to_impl(impl, a) for a in case.args)
    with _dispatch.use(_backend(impl)), np.errstate(all="ignore"):
        rows = _dispatch.sparse(
            labels,
            logits,
            convention=ce.conventions.EXACT,
            axis=-1,
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


@pytest.mark.parametrize("impl", FUSED_IMPLEMENTATIONS)
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
