"""The Triton kernels under TRITON_INTERPRET=1 on the CPU (small shapes); on CUDA when present."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are defined
pytest.importorskip("triton")

from crossentropy._kernels import triton_ce  # noqa: E402

F = torch.nn.functional
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: (2e-6, 2e-6), torch.bfloat16: (2e-2, 2e-2), torch.float16: (2e-3, 2e-3)}


def _case(n, v, dtype, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, v, generator=g) * scale).to(dtype).to(DEVICE)
    t = torch.randint(0, v, (n,), generator=g).to(DEVICE)
    return x, t


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("v", [1, 7, 65, 130])  # not multiples of the block (64 under the interpreter)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_matches_torch(dtype, v, reduction):
    x, t = _case(6, v, dtype)
    t[2] = -100
    w = (torch.rand(v, generator=torch.Generator().manual_seed(1)) + 0.5).to(DEVICE)
    for kwargs in ({}, {"label_smoothing": 0.1}, {"weight": w}):
        a_in = x.detach().clone().requires_grad_()
        b_in = x.detach().float().clone().requires_grad_()
        a = triton_ce.fused_cross_entropy(a_in, t, reduction=reduction, **kwargs)
        b = F.cross_entropy(b_in, t, reduction=reduction, **kwargs)
        (ga,) = torch.autograd.grad(a.float().sum(), a_in)
        (gb,) = torch.autograd.grad(b.sum(), b_in)
        rtol, atol = TOL[dtype]
        torch.testing.assert_close(a.float(), b, rtol=rtol, atol=atol)
        torch.testing.assert_close(ga.float(), gb, rtol=rtol, atol=atol)
        assert a.dtype == dtype


def test_all_ignored_extreme_logits_and_masks():
    x, t = _case(4, 9, torch.float32)
    t[:] = -100
    assert torch.isnan(triton_ce.fused_cross_entropy(x, t))
    assert float(triton_ce.fused_cross_entropy(x, t, reduction="sum")) == 0.0
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [0.0, float("-inf"), 1.0]], device=DEVICE)
    t = torch.tensor([1, 1, 0], device=DEVICE)
    torch.testing.assert_close(
        triton_ce.fused_cross_entropy(x, t, reduction="none"), F.cross_entropy(x, t, reduction="none")
    )


def test_token_weights_z_loss_and_softcap_against_the_formula():
    x, t = _case(5, 12, torch.float32, seed=3)
    tw = torch.rand(5, generator=torch.Generator().manual_seed(4)).to(DEVICE)
    leaf = x.clone().requires_grad_()
    got = triton_ce.fused_cross_entropy(leaf, t, token_weight=tw, z_loss=1e-3, softcap=5.0)
    ref_leaf = x.clone().requires_grad_()
    capped = 5.0 * torch.tanh(ref_leaf / 5.0)
    per = F.cross_entropy(capped, t, reduction="none") + 1e-3 * torch.logsumexp(capped, -1) ** 2
    expected = (per * tw).sum() / tw.sum()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    got.backward()
    expected.backward()
    torch.testing.assert_close(leaf.grad, ref_leaf.grad, rtol=1e-5, atol=1e-6)


def test_in_place_gradient_into_the_logits_buffer():
    x, t = _case(6, 20, torch.float32, seed=5)
    leaf = x.clone().requires_grad_()
    F.cross_entropy(leaf, t).backward()
    buffer = x.clone()
    loss = triton_ce.fused_value_and_grad_(buffer, t)
    torch.testing.assert_close(loss, F.cross_entropy(x, t))
    torch.testing.assert_close(buffer, leaf.grad)


def test_linear_cross_entropy_matches_the_full_logits():
    g = torch.Generator().manual_seed(6)
    h = torch.randn(11, 8, generator=g).to(DEVICE).requires_grad_()
    w = torch.randn(70, 8, generator=g).to(DEVICE).requires_grad_()
    t = torch.randint(0, 70, (11,), generator=g).to(DEVICE)
    t[0] = -100
    loss = triton_ce.linear_cross_entropy(h, w, t, chunk_size=4, label_smoothing=0.1)
    h2, w2 = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = F.cross_entropy(h2 @ w2.t(), t, label_smoothing=0.1)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    loss.backward()
    ref.backward()
    torch.testing.assert_close(h.grad, h2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w.grad, w2.grad, rtol=1e-5, atol=1e-6)


def test_custom_op_has_a_fake_implementation():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(4, 10)
        t = torch.empty(4, dtype=torch.long)
        out, grad = torch.ops.crossentropy.fused_cross_entropy(x, t, None, None, -100, 0.0, 0.0, 0.0, "mean", True)
        assert out.shape == ()
        assert grad.shape == (4, 10)


def test_cpu_linear_cross_entropy_uses_the_c_kernel():
    from crossentropy.torch import linear_cross_entropy

    g = torch.Generator().manual_seed(7)
    h = torch.randn(9, 5, generator=g, requires_grad=True)
    w = torch.randn(13, 5, generator=g, requires_grad=True)
    t = torch.randint(0, 13, (9,), generator=g)
    loss = linear_cross_entropy(h, w, t, chunk_size=4, label_smoothing=0.1)
    h2, w2 = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    ref = F.cross_entropy(h2 @ w2.t(), t, label_smoothing=0.1)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    loss.backward()
    ref.backward()
    torch.testing.assert_close(h.grad, h2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w.grad, w2.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_dispatch_and_compile():
    from crossentropy.torch import cross_entropy

    x, t = _case(64, 1000, torch.bfloat16)
    torch.testing.assert_close(cross_entropy(x, t).float(), F.cross_entropy(x.float(), t), rtol=2e-2, atol=2e-2)
    compiled = torch.compile(lambda a, b: triton_ce.fused_cross_entropy(a, b), fullgraph=True)
    torch.testing.assert_close(compiled(x, t).float(), F.cross_entropy(x.float(), t), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"label_smoothing": 0.1, "class_weight": [1.0, 2.0, 0.5, 1.5, 1.0]},
        {"ignore_index": -1, "z_loss": 1e-3, "sample_weight": [1.0, 2.0, 0.5, 1.0]},
    ],
)
def test_array_api_sparse_loss_takes_the_triton_kernel_for_torch_tensors(kwargs):
    import crossentropy as ce
    from crossentropy import _losses, conventions

    x, t = _case(4, 5, torch.float32, seed=8)
    if "ignore_index" in kwargs:
        t[1] = -1
    args = {k: torch.tensor(v, device=DEVICE) if isinstance(v, list) else v for k, v in kwargs.items()}
    ignore = args.get("ignore_index")
    losses = _losses._triton_sparse(
        t,
        x,
        -1,
        True,
        ignore,
        args.get("class_weight"),
        args.get("label_smoothing", 0.0),
        args.get("z_loss", 0.0),
        conventions.EXACT,
        True,
        device_check=False,
    )
    assert losses is not None
    reference = ce.sparse_categorical_cross_entropy(
        t.cpu(),
        x.cpu(),
        from_logits=True,
        reduction="none",
        **{k: v for k, v in kwargs.items() if k != "sample_weight"},
    )
    torch.testing.assert_close(losses.values.cpu(), reference, rtol=1e-5, atol=1e-6)
    with pytest.raises(ce.InputError, match=r"labels\[0\] = 9"):
        _losses._triton_sparse(
            torch.tensor([9, 0, 0, 0]), x, -1, True, None, None, 0.0, 0.0, conventions.EXACT, True, device_check=False
        )
