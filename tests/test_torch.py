"""crossentropy.torch as a drop-in for torch.nn's cross-entropy losses."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import crossentropy.torch as cet  # noqa: E402
from crossentropy import _dispatch, _dispatch_dropin, _kernels  # noqa: E402

F = torch.nn.functional

PATHS = ["auto", "cpu", "triton"]
"""``auto``: the dispatcher's choice (PyTorch's own kernel at these sizes); ``cpu``, ``triton``: forced."""


@contextlib.contextmanager
def _path(path):
    if path == "cpu" and not _kernels.available():
        pytest.skip("the C kernels are not built")
    if path == "triton":
        pytest.importorskip("triton")
    with _dispatch.use(path), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Triton's interpreter warns on NaN arithmetic
        yield


def _logits(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=dtype) * 2).requires_grad_()


def _compare(ours_fn, ref_fn, *inputs):
    mine = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
    theirs = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
    a, b = ours_fn(*mine), ref_fn(*theirs)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, equal_nan=True)
    if a.requires_grad:
        a.sum().backward()
        b.sum().backward()
        for m, t in zip(mine, theirs, strict=True):
            if m.requires_grad:
                torch.testing.assert_close(m.grad, t.grad, rtol=1e-6, atol=1e-7)


CE_OPTIONS = [
    {},
    {"weight": torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)},
    {"ignore_index": 2},
    {"label_smoothing": 0.2},
    {"weight": torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64), "label_smoothing": 0.1, "ignore_index": 1},
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("options", CE_OPTIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (4,)])
def test_cross_entropy_module_matches_torch(options, reduction, shape, path):
    x = _logits(*shape)
    g = torch.Generator().manual_seed(1)
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = torch.randint(0, 4, target_shape, generator=g)
    ours = cet.CrossEntropyLoss(reduction=reduction, **options)
    ref = torch.nn.CrossEntropyLoss(reduction=reduction, **options)
    with _path(path):
        _compare(lambda a: ours(a, target), lambda a: ref(a, target), x)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_probability_targets(reduction):
    x = _logits(5, 4, seed=3)
    target = torch.softmax(torch.randn(5, 4, dtype=torch.float64), -1)
    w = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    _compare(
        lambda a: cet.cross_entropy(a, target, weight=w, label_smoothing=0.1, reduction=reduction),
        lambda a: F.cross_entropy(a, target, weight=w, label_smoothing=0.1, reduction=reduction),
        x,
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_module_matches_torch(reduction):
    x = _logits(6, 3, seed=4)
    y = (torch.rand(6, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64) > 0.5).double()
    pw = torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)
    w = torch.rand(6, 1, dtype=torch.float64)
    ours = cet.BCEWithLogitsLoss(weight=w, pos_weight=pw, reduction=reduction)
    ref = torch.nn.BCEWithLogitsLoss(weight=w, pos_weight=pw, reduction=reduction)
    _compare(lambda a: ours(a, y), lambda a: ref(a, y), x)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_module_matches_torch_including_the_clamp(reduction):
    p = torch.tensor([0.0, 1.0, 0.3, 1e-30, 0.999], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    ours = cet.BCELoss(reduction=reduction)
    ref = torch.nn.BCELoss(reduction=reduction)
    a, b = ours(p, y), ref(p.detach(), y)
    torch.testing.assert_close(a.detach(), b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
def test_legacy_size_average_and_reduce(path):
    x = _logits(4, 3, seed=6)
    t = torch.tensor([0, 1, 2, 1])
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        with pytest.warns(UserWarning, match="deprecated"):
            ref = torch.nn.CrossEntropyLoss(size_average=size_average, reduce=reduce)(x, t)
        with pytest.warns(UserWarning, match="deprecated"):
            module = cet.CrossEntropyLoss(size_average=size_average, reduce=reduce)
        with _path(path):
            torch.testing.assert_close(module(x, t), ref)


@pytest.mark.parametrize("path", PATHS)
def test_module_moves_with_its_buffers_and_reports_bad_labels(path):
    loss = cet.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]))
    assert "weight" in dict(loss.named_buffers())
    loss = loss.to(torch.float64)
    x = _logits(2, 3)
    with _path(path), pytest.raises(IndexError, match="Target 5 is out of bounds"):  # PyTorch's error
        loss(x, torch.tensor([0, 5]))


@pytest.mark.parametrize("path", PATHS)
def test_float32_training_step_matches(path):
    model = torch.nn.Linear(5, 3)
    ref_model = torch.nn.Linear(5, 3)
    ref_model.load_state_dict(model.state_dict())
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(7))
    t = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(8))
    with _path(path):
        cet.CrossEntropyLoss()(model(x), t).backward()
    torch.nn.CrossEntropyLoss()(ref_model(x), t).backward()
    for a, b in zip(model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_stay_on_the_device():
    x = _logits(8, 4).detach().cuda().requires_grad_()
    t = torch.randint(0, 4, (8,), device="cuda")
    out = cet.cross_entropy(x, t)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out, F.cross_entropy(x, t))
    np.testing.assert_allclose(float(out), float(F.cross_entropy(x.cpu(), t.cpu())), rtol=1e-6)


# ----------------------------------------------------------------------------------------------------------
# issue 26: the same numbers on every path (PyTorch's own kernel, the C kernel, Triton), for every target dtype,
# at the edges, to every order of derivative and under torch.func


def _outcome(fn, *tensors):
    """``("value", value, gradients of the float leaves)`` or ``("error", exception type)`` of one call."""
    leaves = [t.detach().clone().requires_grad_(t.is_floating_point() and t.requires_grad) for t in tensors]
    try:
        out = fn(*leaves)
        wanted = [t for t in leaves if t.requires_grad]
        grads = torch.autograd.grad(out.sum(), wanted) if wanted and out.requires_grad else ()
    except Exception as exc:  # the comparison is the test
        return ("error", type(exc))
    return ("value", out.detach(), [g.detach() for g in grads])


def _same(got, want):
    assert got[0] == want[0], f"ours {got}, torch {want}"
    if got[0] == "error":
        assert issubclass(got[1], want[1]), f"ours raises {got[1]}, torch {want[1]}"
        return
    torch.testing.assert_close(got[1], want[1], equal_nan=True)
    assert len(got[2]) == len(want[2])
    for a, b in zip(got[2], want[2], strict=True):
        torch.testing.assert_close(a, b, equal_nan=True)


TARGET_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]


def _ignore_indices(dtype):
    """``ignore_index`` values inside the dtype's range and outside it, where a conversion would wrap them onto
    a real class (256 is uint8 0; -100 is uint8 156; 300 is uint8 44)."""
    info = torch.iinfo(dtype)
    inside = [-100, 0] if info.min < 0 else [200, 0]
    return [*inside, int(info.max) + 1, int(info.max) + 45, int(info.min) - 100, -100, 300]


@pytest.mark.parametrize("path", PATHS)
def test_uint8_targets_of_the_issue(path):
    """Issue 26, item 1: class 156 of a uint8 target was the default ignore_index -100 (loss 0, gradient 0), and
    ignore_index=300 hid label 44, in cross_entropy and CrossEntropyLoss."""
    x = _logits(3, 200, seed=26, dtype=torch.float32)
    t = torch.tensor([156, 3, 10], dtype=torch.uint8)
    with _path(path):
        _same(_outcome(lambda a: cet.cross_entropy(a, t), x), _outcome(lambda a: F.cross_entropy(a, t), x))
        _same(_outcome(lambda a: cet.CrossEntropyLoss()(a, t), x), _outcome(lambda a: F.cross_entropy(a, t), x))
        t44 = torch.tensor([156, 44, 10], dtype=torch.uint8)
        _same(
            _outcome(lambda a: cet.cross_entropy(a, t44, ignore_index=300), x),
            _outcome(lambda a: F.cross_entropy(a, t44, ignore_index=300), x),
        )
        loss = cet.cross_entropy(x.detach(), t, reduction="none")
    assert loss[0] > 0  # counted: class 156, not the ignore index


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", TARGET_DTYPES, ids=str)
def test_every_target_dtype_and_ignore_index_as_torch(path, dtype):
    """cross_entropy and linear_cross_entropy with targets of every integer dtype and ignore_index inside and
    outside its range: PyTorch's value and gradients, or PyTorch's exception (it takes int64 and uint8)."""
    x = _logits(4, 6, seed=3, dtype=torch.float32)
    h, w = _logits(4, 5, seed=4, dtype=torch.float32), _logits(6, 5, seed=5, dtype=torch.float32)
    for ignore in _ignore_indices(dtype):
        values = [0, 5, 2, ignore] if torch.iinfo(dtype).min <= ignore <= torch.iinfo(dtype).max else [0, 5, 2, 1]
        t = torch.tensor(values).to(dtype)
        with _path(path):
            for reduction in ("mean", "sum", "none"):
                options = {"ignore_index": ignore, "reduction": reduction}
                _same(
                    _outcome(lambda a, o=options, t=t: cet.cross_entropy(a, t, **o), x),
                    _outcome(lambda a, o=options, t=t: F.cross_entropy(a, t, **o), x),
                )
                _same(
                    _outcome(lambda a, b, o=options, t=t: cet.linear_cross_entropy(a, b, t, **o), h, w),
                    _outcome(lambda a, b, o=options, t=t: F.linear_cross_entropy(a, b, t, **o), h, w),
                )


def test_linear_cross_entropy_counts_uint8_targets_in_the_mean():
    """Issue 26, item 1: uint8 targets got the right per-row losses but left the rows out of the mean's
    denominator (16.054 against torch's 10.703)."""
    h, w = _logits(3, 8, seed=6, dtype=torch.float32), _logits(200, 8, seed=7, dtype=torch.float32)
    t = torch.tensor([156, 3, 10], dtype=torch.uint8)
    for path in ("cpu", "triton"):
        with _path(path):
            _same(
                _outcome(lambda a, b: cet.linear_cross_entropy(a, b, t), h, w),
                _outcome(lambda a, b: F.linear_cross_entropy(a, b, t), h, w),
            )


EDGE_CASES = {
    "label_smoothing nan": lambda f, x, t: f(x, t, label_smoothing=float("nan")),
    "ignore_index 2**63": lambda f, x, t: f(x, t, ignore_index=2**63),
    "ignore_index 2**64": lambda f, x, t: f(x, t, ignore_index=2**64),
    "ignore_index -(2**63) - 1": lambda f, x, t: f(x, t, ignore_index=-(2**63) - 1),
    "a row of -inf": lambda f, x, t: f(torch.where(torch.arange(4)[:, None] == 1, -torch.inf, x), t),
    "a row of -inf, ignored": lambda f, x, t: f(
        torch.where(torch.arange(4)[:, None] == 1, -torch.inf, x), t, ignore_index=1
    ),
    "a NaN logit, ignored": lambda f, x, t: f(torch.where(x == x[3, 0], torch.nan, x), t, ignore_index=0),
    "an inf class weight": lambda f, x, t: f(
        x, t, weight=torch.tensor([1.0, torch.inf, 1.0, 1.0, 2.0]), reduction="sum"
    ),
    "an inf class weight, mean": lambda f, x, t: f(x, t, weight=torch.tensor([1.0, 1.0, torch.inf, 1.0, 2.0])),
    "an inf class weight, ignored": lambda f, x, t: f(
        x, t, weight=torch.tensor([1.0, torch.inf, 1, 1, 2]), ignore_index=1
    ),
    "all ignored, mean": lambda f, x, t: f(x, t, ignore_index=-5),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_edges_as_torch(path, case):
    """Issue 26, item 3: NaN smoothing (none, as torch), ignore_index beyond int64 (torch's ValueError), a row of
    -inf (NaN loss and NaN gradient), an infinite class weight (only its rows' gradients are not finite)."""
    x = _logits(4, 5, seed=8, dtype=torch.float32)
    t = torch.tensor([0, 1, 4, 2]) if "all ignored" not in case else torch.full((4,), -5)
    call = EDGE_CASES[case]
    with _path(path):
        _same(_outcome(lambda a: call(cet.cross_entropy, a, t), x), _outcome(lambda a: call(F.cross_entropy, a, t), x))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(0, 4), (3, 0)], ids=["N=0", "D=0"])
def test_linear_cross_entropy_of_empty_inputs_gives_empty_gradients(path, shape):
    """Issue 26, item 3: with N = 0 or D = 0 the gradients were left None; torch gives empty (or zero) tensors."""
    n, d = shape
    h, w, b = _logits(n, d, dtype=torch.float32), _logits(5, d, dtype=torch.float32), _logits(5, dtype=torch.float32)
    t = torch.zeros(n, dtype=torch.long)
    for reduction in ("mean", "sum", "none"):
        with _path(path):
            _same(
                _outcome(
                    lambda x, y, z, r=reduction: cet.linear_cross_entropy(x, y, t, linear_bias=z, reduction=r), h, w, b
                ),
                _outcome(
                    lambda x, y, z, r=reduction: F.linear_cross_entropy(x, y, t, linear_bias=z, reduction=r), h, w, b
                ),
            )


def _ce(f):
    return lambda x, t: f(x, t, weight=torch.tensor([1.0, 2.0, 0.5, 1.5, 1.0], dtype=x.dtype), label_smoothing=0.1)


def _lce(f, w, b):
    return lambda h, t: f(h, w, t, linear_bias=b, label_smoothing=0.1)


def _second_order(loss_fn, x, t):
    """A gradient penalty's gradient: ``d/dx ||dL/dx||^2``, through ``create_graph=True``."""
    x = x.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(loss_fn(x, t), x, create_graph=True)
    assert g.requires_grad, "the gradient has no graph: its derivatives would be silently dropped"
    (penalty,) = torch.autograd.grad((g**2).sum(), x)
    return g.detach(), penalty


@pytest.mark.parametrize("path", PATHS)
def test_double_backward_as_torch(path):
    """Issue 26, item 2: ``create_graph=True`` gave a gradient without a graph, so every second-order term
    (a gradient penalty, a Hessian-vector product) was silently 0."""
    x, t = _logits(5, 5, seed=9), torch.tensor([0, 4, 2, -100, 1])
    h, w, b = _logits(5, 3, seed=10), _logits(5, 3, seed=11), _logits(5, seed=12)
    with _path(path):
        ours, theirs = _second_order(_ce(cet.cross_entropy), x, t), _second_order(_ce(F.cross_entropy), x, t)
        for mine, expected in zip(ours, theirs, strict=True):
            torch.testing.assert_close(mine, expected)
        for ours, theirs in zip(
            _second_order(_lce(cet.linear_cross_entropy, w, b), h, t),
            _second_order(_lce(F.linear_cross_entropy, w, b), h, t),
            strict=True,
        ):
            torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("path", PATHS)
def test_maml_meta_gradient_as_torch(path, reduction):
    """Issue 26, item 2: a MAML meta-gradient through an inner SGD step (W.grad[0, 0] was -0.0764 against
    torch's -0.0607): the outer loss's gradient reaches W through the inner gradient."""
    g = torch.Generator().manual_seed(26)
    features, targets = torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randint(0, 6, (8,), generator=g)
    query, query_targets = torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randint(0, 6, (8,), generator=g)
    start = torch.randn(6, 4, generator=g, dtype=torch.float64)

    def meta_gradient(ce, lce):
        results = []
        for inner in ("cross_entropy", "linear_cross_entropy"):
            w = start.clone().requires_grad_()
            loss = (
                ce(features @ w.T, targets, reduction=reduction)
                if inner == "cross_entropy"
                else lce(features, w, targets, reduction=reduction)
            )
            (grad,) = torch.autograd.grad(loss.sum(), w, create_graph=True)
            adapted = w - 0.5 * grad
            ce(query @ adapted.T, query_targets).backward()
            results.append(w.grad)
        return results

    with _path(path):
        ours = meta_gradient(cet.cross_entropy, cet.linear_cross_entropy)
    theirs = meta_gradient(F.cross_entropy, F.linear_cross_entropy)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


TRANSFORMS = {
    "grad": lambda f, x: torch.func.grad(f)(x),
    "jacrev": lambda f, x: torch.func.jacrev(f)(x),
    "vmap": lambda f, x: torch.func.vmap(f)(torch.stack([x, 2 * x, x - 1])),
    "vmap(grad)": lambda f, x: torch.func.vmap(torch.func.grad(f))(torch.stack([x, 2 * x, x - 1])),
    "jacrev(grad)": lambda f, x: torch.func.jacrev(torch.func.grad(f))(x),
    "grad(grad(sum))": lambda f, x: torch.func.grad(lambda y: torch.func.grad(f)(y).pow(2).sum())(x),
    "jvp": lambda f, x: torch.func.jvp(f, (x,), (torch.ones_like(x),))[1],
    "forward-mode AD": lambda f, x: _dual(f, x),
}


def _dual(f, x):
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        return fwad.unpack_dual(f(fwad.make_dual(x, torch.ones_like(x)))).tangent


@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("path", PATHS)
def test_torch_func_transforms_as_torch(path, transform):
    """Issue 26, item 2: ``torch.func.grad`` raised "Cannot access data pointer of Tensor that doesn't have
    storage", ``vmap`` "no vmap support". Every transform, and their compositions, gives torch's result (the
    dispatcher runs PyTorch's own kernel under a transform, even with a backend forced)."""
    x, t = _logits(4, 5, seed=13), torch.tensor([0, 4, -100, 1])
    h, w, b = _logits(4, 3, seed=14), _logits(5, 3, seed=15), _logits(5, seed=16)
    run = TRANSFORMS[transform]
    with _path(path):
        torch.testing.assert_close(
            run(lambda y: _ce(cet.cross_entropy)(y, t), x), run(lambda y: _ce(F.cross_entropy)(y, t), x)
        )
        torch.testing.assert_close(
            run(lambda y: _lce(cet.linear_cross_entropy, w, b)(y, t), h),
            run(lambda y: _lce(F.linear_cross_entropy, w, b)(y, t), h),
        )


def _kind_of(loss):
    """Which implementation computed ``loss``: PyTorch's own kernel or the fused op."""
    return "fused" if "Function" in type(loss.grad_fn).__name__ else "torch"


def test_the_dispatcher_runs_torch_below_the_crossover_and_the_kernel_above():
    """Issue 26, item 5: below the measured crossover the drop-in is PyTorch's own kernel (at PyTorch's cost),
    above it the fused kernel; a forced backend runs every call it can take; a transform, torch's kernel."""
    if not _kernels.available():
        pytest.skip("the C kernels are not built")
    small = _logits(8, 5, dtype=torch.float32)
    threshold = next(fewest for most, fewest in _dispatch_dropin.CROSSOVER["sparse", "float32", True] if most >= 1000)
    large = _logits(max(2, -(-threshold // 1000)), 1000, dtype=torch.float32)
    with _dispatch.use("auto"):
        assert _kind_of(cet.cross_entropy(small, torch.zeros(8, dtype=torch.long))) == "torch"
        assert _kind_of(cet.cross_entropy(large, torch.zeros(large.shape[0], dtype=torch.long))) == "fused"
    with _dispatch.use("cpu"):
        assert _kind_of(cet.cross_entropy(small, torch.zeros(8, dtype=torch.long))) == "fused"
        kinds = []
        torch.func.grad(
            lambda y: kinds.append(_dispatch.transformed()) or cet.cross_entropy(y, torch.zeros(8, dtype=torch.long))
        )(small.detach())
        assert kinds == [True]
    with _dispatch.use("reference"):
        assert _kind_of(cet.cross_entropy(large, torch.zeros(large.shape[0], dtype=torch.long))) == "torch"


def test_the_environment_variable_forces_a_backend():
    """``CROSSENTROPY_BACKEND`` feeds :func:`crossentropy._dispatch.use` (and compiled graphs)."""
    import subprocess
    import sys

    code = (
        "import torch, crossentropy.torch as cet; from crossentropy import _dispatch; "
        "loss = cet.cross_entropy(torch.randn(4, 3, requires_grad=True), torch.tensor([0, 1, 2, 0])); "
        "print(_dispatch.forced(), type(loss.grad_fn).__name__)"
    )
    for value, forced in (("reference", "reference"), ("cpu", "cpu"), ("auto", "None")):
        env = {**__import__("os").environ, "CROSSENTROPY_BACKEND": value}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        got_forced, grad_fn = out.stdout.split()
        assert got_forced == forced
        assert ("Function" in grad_fn) == (value == "cpu" and _kernels.available()), (value, grad_fn)


@pytest.mark.parametrize("policy", ["accurate", "compact"])
def test_float16_bias_gradient_is_no_farther_from_float64_than_torchs(policy):
    """Issue 26, item 3: the float16 linear_bias gradient was summed in float16 within each block; it is
    accumulated in float32 across rows and blocks, and ends no farther from the float64 one than torch's."""
    g = torch.Generator().manual_seed(26)
    h = torch.randn(2048, 16, generator=g, dtype=torch.float64)
    w, b = torch.randn(7, 16, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    t = torch.randint(0, 7, (2048,), generator=g)
    options = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=256, acc_policy=policy)

    def bias_grad(f, dtype, **extra):
        bias = b.to(dtype).detach().clone().requires_grad_()
        f(h.to(dtype), w.to(dtype), t, linear_bias=bias, reduction="sum", **extra).backward()
        return bias.grad.double()

    exact = bias_grad(F.linear_cross_entropy, torch.float64)
    theirs = bias_grad(F.linear_cross_entropy, torch.float16, options=options)
    with _path("cpu"):
        ours = bias_grad(cet.linear_cross_entropy, torch.float16, options=options)
    assert (ours - exact).abs().sum() <= (theirs - exact).abs().sum()
