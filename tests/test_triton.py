"""The Triton kernels under TRITON_INTERPRET=1 on the CPU (small shapes); on CUDA when present.

tests/conftest.py sets TRITON_INTERPRET=1 on machines without a GPU, before
any kernel is defined. The same cases run through every implementation in
tests/test_implementations.py; here are the Triton-specific ones (dtypes,
block boundaries, the two-phase kernels, the custom ops' fake tensors).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from crossentropy import _dispatch, _dispatch_dropin  # noqa: E402
from crossentropy._kernels import torch_ops, triton_ce  # noqa: E402

pytestmark = pytest.mark.slow  # Triton's interpreter on the CPU

F = torch.nn.functional
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {
    torch.float64: (1e-12, 1e-12),
    torch.float32: (2e-6, 2e-6),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float16: (2e-3, 2e-3),
}


def _case(n, v, dtype, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, v, generator=g) * scale).to(dtype).to(DEVICE)
    t = torch.randint(0, v, (n,), generator=g).to(DEVICE)
    return x, t


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("v", [1, 7, 130])  # not multiples of the block (64 under the interpreter)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_matches_torch(dtype, v, reduction):
    x, t = _case(6, v, dtype)
    t[2] = -100
    w = (torch.rand(v, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5).to(DEVICE)
    for kwargs in ({}, {"label_smoothing": 0.1}, {"weight": w}, {"weight": w, "label_smoothing": 0.3}):
        a_in = x.detach().clone().requires_grad_()
        b_in = x.detach().to(torch.float64).clone().requires_grad_()
        with _dispatch.use("triton"):
            a = _dispatch_dropin.torch_cross_entropy(
                a_in,
                t,
                class_weight=kwargs.get("weight"),
                ignore_index=-100,
                label_smoothing=kwargs.get("label_smoothing", 0.0),
                reduction=reduction,
                check_labels=True,
            )
        b = F.cross_entropy(b_in, t, reduction=reduction, **kwargs)
        (ga,) = torch.autograd.grad(a.float().sum(), a_in)
        (gb,) = torch.autograd.grad(b.sum(), b_in)
        rtol, atol = TOL[dtype]
        torch.testing.assert_close(a.double(), b, rtol=rtol, atol=atol)
        torch.testing.assert_close(ga.double(), gb, rtol=rtol, atol=atol)
        assert a.dtype == dtype


def test_all_ignored_extreme_logits_and_masks():
    x, t = _case(4, 9, torch.float32)
    t[:] = -100
    with _dispatch.use("triton"):
        assert torch.isnan(
            _dispatch_dropin.torch_cross_entropy(x, t, ignore_index=-100, reduction="mean", check_labels=True)
        )
        total = _dispatch_dropin.torch_cross_entropy(x, t, ignore_index=-100, reduction="sum", check_labels=True)
        assert float(total) == 0.0
        x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [0.0, float("-inf"), 1.0]], device=DEVICE)
        t = torch.tensor([1, 1, 0], device=DEVICE)
        got = _dispatch_dropin.torch_cross_entropy(x, t, ignore_index=-100, reduction="none", check_labels=True)
    torch.testing.assert_close(got, F.cross_entropy(x, t, reduction="none"))


def test_z_loss_and_softcap_against_the_formula():
    x, t = _case(5, 12, torch.float32, seed=3)
    leaf = x.clone().requires_grad_()
    with _dispatch.use("triton"):
        got = _dispatch_dropin.torch_cross_entropy(
            leaf, t, ignore_index=None, z_loss=1e-3, softcap=5.0, reduction="mean", check_labels=False
        )
    ref_leaf = x.clone().requires_grad_()
    capped = 5.0 * torch.tanh(ref_leaf / 5.0)
    expected = (F.cross_entropy(capped, t, reduction="none") + 1e-3 * torch.logsumexp(capped, -1) ** 2).mean()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    got.backward()
    expected.backward()
    torch.testing.assert_close(leaf.grad, ref_leaf.grad, rtol=1e-5, atol=1e-6)


def test_in_place_gradient_into_the_logits_buffer():
    x, t = _case(6, 20, torch.float32, seed=5)
    leaf = x.clone().requires_grad_()
    F.cross_entropy(leaf, t, reduction="sum").backward()
    buffer = x.clone()
    losses = triton_ce.value_and_grad_(
        buffer,
        t,
        class_weight=None,
        ignore_index=-100,
        smoothing=0.0,
        z_loss=0.0,
        softcap=0.0,
        grad=buffer,
        scale=torch.ones((), device=DEVICE),
        check_labels=False,
    )
    torch.testing.assert_close(losses.sum(), F.cross_entropy(x, t, reduction="sum"))
    torch.testing.assert_close(buffer, leaf.grad)


def test_bad_labels_never_address_memory():
    """An out-of-range label gives a NaN row (or PyTorch's error), not a read past the row."""
    x, _ = _case(3, 5, torch.float32)
    t = torch.tensor([9, -7, 1], device=DEVICE)
    common = {"class_weight": None, "ignore_index": -100, "smoothing": 0.0, "z_loss": 0.0, "softcap": 0.0}
    grad = torch.empty_like(x)
    losses = triton_ce.value_and_grad_(x, t, **common, grad=grad, scale=torch.ones(()), check_labels=False)
    assert torch.isnan(losses[:2]).all()
    assert torch.isfinite(losses[2])
    assert torch.isnan(grad[:2]).all()
    assert torch.isfinite(grad[2]).all()
    if DEVICE == "cpu":
        with pytest.raises(IndexError, match="Target 9 is out of bounds"):
            triton_ce.value_and_grad_(x, t, **common, grad=None, scale=torch.ones(()), check_labels=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_two_phase_kernels_match_the_plain_torch_ones(dtype):
    x, _t = _case(5, 70, dtype, seed=9)
    x[1, 3] = float("-inf")
    x[2] = float("-inf")
    w = torch.rand(70, dtype=dtype, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    for cw in (None, w):
        got = triton_ce.row_stats(x, class_weight=cw, need_dsum=True)
        want = torch_ops.row_stats(x, class_weight=cw, need_dsum=True)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=TOL[dtype][0], atol=TOL[dtype][1])
    m, s, _ = torch_ops.row_stats(x, class_weight=w, need_dsum=False)
    rows = (torch.arange(5) != 2).to(dtype)
    args = (m, torch.log(s), rows * 1.3, torch.tensor([4, 0, -1, 69, 7]), rows * 0.9)
    a, b = torch.empty_like(x), torch.empty_like(x)
    triton_ce.softmax_grad(x, *args, off=rows * 0.01, class_weight=w, grad=a)
    torch_ops.softmax_grad(x, *args, off=rows * 0.01, class_weight=w, grad=b)
    torch.testing.assert_close(a, b, rtol=TOL[dtype][0], atol=TOL[dtype][1])
    assert (a[2] == 0).all()


def test_linear_cross_entropy_matches_the_full_logits():
    from crossentropy.torch import linear_cross_entropy

    g = torch.Generator().manual_seed(6)
    h = torch.randn(11, 8, generator=g).to(DEVICE).requires_grad_()
    w = torch.randn(70, 8, generator=g).to(DEVICE).requires_grad_()
    t = torch.randint(0, 70, (11,), generator=g).to(DEVICE)
    t[0] = -100
    options = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=4, chunking_method=None)
    with _dispatch.use("triton"):
        loss = linear_cross_entropy(h, w, t, label_smoothing=0.1, options=options)
    h2, w2 = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = F.cross_entropy(h2 @ w2.t(), t, label_smoothing=0.1)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    loss.backward()
    ref.backward()
    torch.testing.assert_close(h.grad, h2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w.grad, w2.grad, rtol=1e-5, atol=1e-6)


def test_custom_ops_have_fake_implementations():
    from torch._subclasses.fake_tensor import FakeTensorMode

    import crossentropy._kernels.autograd  # noqa: F401  (registers the ops)

    with FakeTensorMode():
        x = torch.empty(4, 10)
        t = torch.empty(4, dtype=torch.long)
        out, m, log_s = torch.ops.crossentropy.sparse_cross_entropy(
            x, t, None, "triton_ce", -100, 0.0, 0.0, 0.0, "mean", False
        )
        assert out.shape == ()
        assert m.shape == log_s.shape == (4,)
        h, w = torch.empty(4, 3), torch.empty(10, 3)
        out, gh, gw, gb = torch.ops.crossentropy.linear_cross_entropy(
            h, w, None, t, None, None, "triton_ce", -100, 0.0, 0.0, "none", 2, True, True, False, False
        )
        assert out.shape == (4,)
        assert gh.shape == (4, 3)
        assert gw.shape == (10, 3)
        assert gb.shape == (0,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_dispatch_and_compile():
    from crossentropy.torch import cross_entropy

    x, t = _case(64, 1000, torch.bfloat16)
    torch.testing.assert_close(cross_entropy(x, t).float(), F.cross_entropy(x.float(), t), rtol=2e-2, atol=2e-2)
    compiled = torch.compile(lambda a, b: cross_entropy(a, b), fullgraph=True)
    torch.testing.assert_close(compiled(x, t).float(), F.cross_entropy(x.float(), t), rtol=2e-2, atol=2e-2)
