"""crossentropy.torch as a drop-in for torch.nn's cross-entropy losses."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import crossentropy.torch as cet  # noqa: E402

F = torch.nn.functional


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


@pytest.mark.parametrize("options", CE_OPTIONS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (4,)])
def test_cross_entropy_module_matches_torch(options, reduction, shape):
    x = _logits(*shape)
    g = torch.Generator().manual_seed(1)
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = torch.randint(0, 4, target_shape, generator=g)
    ours = cet.CrossEntropyLoss(reduction=reduction, **options)
    ref = torch.nn.CrossEntropyLoss(reduction=reduction, **options)
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


def test_legacy_size_average_and_reduce():
    x = _logits(4, 3, seed=6)
    t = torch.tensor([0, 1, 2, 1])
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        with pytest.warns(UserWarning, match="deprecated"):
            ref = torch.nn.CrossEntropyLoss(size_average=size_average, reduce=reduce)(x, t)
        ours = cet.CrossEntropyLoss(size_average=size_average, reduce=reduce)(x, t)
        torch.testing.assert_close(ours, ref)


def test_module_moves_with_its_buffers_and_reports_bad_labels():
    loss = cet.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]))
    assert "weight" in dict(loss.named_buffers())
    loss = loss.to(torch.float64)
    x = _logits(2, 3)
    with pytest.raises(IndexError, match="Target 5 is out of bounds"):  # PyTorch's error, as PyTorch raises it
        loss(x, torch.tensor([0, 5]))


def test_float32_training_step_matches():
    model = torch.nn.Linear(5, 3)
    ref_model = torch.nn.Linear(5, 3)
    ref_model.load_state_dict(model.state_dict())
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(7))
    t = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(8))
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
