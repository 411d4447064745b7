"""Vocabulary-parallel cross-entropy with gloo on loopback: 1, 2 and 4 processes, uneven shards.

Each process computes every case on its shard and returns losses and
gradients; the parent compares them with ``F.cross_entropy`` on the gathered
logits (float64 to 1e-12 relative) and checks that errors are raised on every
rank, with the same message as the single-process loss where it has one.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

pytestmark = pytest.mark.slow  # each case starts gloo process groups

N, V = 7, 11  # V does not divide evenly by 2 or 4

CASES: dict[str, dict[str, Any]] = {
    "plain": {},
    "smoothing": {"label_smoothing": 0.1},
    "class weights": {"weight": True},
    "weights and smoothing": {"weight": True, "label_smoothing": 0.3},
    "z-loss": {"z_loss": 1e-2},
}
IMPLEMENTATIONS = ["cpu", "reference"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _widths(world: int, zero_width: bool) -> list[int]:
    if zero_width:  # the last rank holds no column at all
        base, extra = divmod(V, world - 1)
        return [base + (1 if r < extra else 0) for r in range(world - 1)] + [0]
    base, extra = divmod(V, world)
    return [base + (1 if r < extra else 0) for r in range(world)]


def _data(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(N, V, generator=g, dtype=torch.float64) * 3).to(dtype)
    logits[4, 5] = -torch.inf  # a masked class
    labels = torch.randint(0, V, (N,), generator=g)
    labels[2] = -100
    weight = torch.rand(V, generator=g, dtype=torch.float64) + 0.5
    return logits, labels, weight


def _worker(rank: int, world: int, port: int, zero_width: bool, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from crossentropy import InputError, _dispatch
        from crossentropy.distributed import vocab_parallel_cross_entropy

        widths = _widths(world, zero_width)
        start = sum(widths[:rank])
        out: dict[Any, Any] = {}
        for impl in IMPLEMENTATIONS:
            for dtype in (torch.float64, torch.float32):
                logits, labels, weight = _data(dtype)
                for name, options in CASES.items():
                    kwargs = {k: v for k, v in options.items() if k != "weight"}
                    if options.get("weight"):
                        kwargs["weight"] = weight.to(dtype)
                    for reduction in ("mean", "sum", "none"):
                        shard = logits[:, start : start + widths[rank]].clone().requires_grad_()
                        with _dispatch.use(impl):
                            loss = vocab_parallel_cross_entropy(shard, labels, reduction=reduction, **kwargs)
                            loss.sum().backward()
                        out[(impl, dtype, name, reduction)] = (loss.detach(), shard.grad)
            # the gradient written into the logits themselves
            logits, labels, _ = _data(torch.float64)
            shard = logits[:, start : start + widths[rank]].clone().requires_grad_()
            buffer = shard.detach()
            with _dispatch.use(impl):
                vocab_parallel_cross_entropy(shard, labels, inplace_backward=True).backward()
            out[(impl, "inplace")] = (
                buffer.clone(),
                shard.grad is not None and shard.grad.data_ptr() == buffer.data_ptr(),
            )
            # errors: every rank raises, nobody is left waiting in a collective
            for name, change in (("label out of range", "label"), ("NaN logit", "nan"), ("all -inf row", "ninf")):
                logits, labels, _ = _data(torch.float64)
                if change == "label":
                    labels[3] = V
                elif change == "nan":
                    logits[1, 0] = torch.nan
                else:
                    logits[5] = -torch.inf
                shard = logits[:, start : start + widths[rank]]
                try:
                    with _dispatch.use(impl):
                        vocab_parallel_cross_entropy(shard, labels)
                    out[(impl, "error", name)] = None
                except InputError as exc:
                    out[(impl, "error", name)] = str(exc)
        results[rank] = out
    finally:
        dist.destroy_process_group()


def _run(world: int, zero_width: bool = False) -> dict:
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(world, _free_port(), zero_width, results), nprocs=world, join=True)
    out = dict(results)
    manager.shutdown()
    return out


@pytest.mark.parametrize(("world", "zero_width"), [(1, False), (2, False), (4, False), (3, True)])
def test_vocab_parallel_equals_single_process(world, zero_width):
    results = _run(world, zero_width)
    widths = _widths(world, zero_width)
    tol = {torch.float64: 1e-12, torch.float32: 2e-6}
    for impl in IMPLEMENTATIONS:
        for dtype in (torch.float64, torch.float32):
            logits, labels, weight = _data(dtype)
            for name, options in CASES.items():
                kwargs = {k: v for k, v in options.items() if k not in ("weight", "z_loss")}
                if options.get("weight"):
                    kwargs["weight"] = weight.to(dtype)
                for reduction in ("mean", "sum", "none"):
                    full = logits.clone().requires_grad_()
                    per_row = torch.nn.functional.cross_entropy(full, labels, reduction="none", **kwargs)
                    if "z_loss" in options:
                        per_row = per_row + options["z_loss"] * torch.logsumexp(full, -1) ** 2 * (labels != -100)
                    expected = {"none": per_row, "sum": per_row.sum()}.get(reduction)
                    if expected is None:
                        w = (labels != -100).to(dtype)
                        if "weight" in kwargs:
                            w = w * kwargs["weight"][labels.clamp(min=0)]
                        expected = per_row.sum() / w.sum()
                    expected.sum().backward()
                    start = 0
                    for rank in range(world):
                        loss, grad = results[rank][(impl, dtype, name, reduction)]
                        where = f"{impl} {dtype} {name} {reduction} rank {rank}"
                        assert loss.dtype == dtype, where
                        torch.testing.assert_close(loss, expected.detach(), rtol=tol[dtype], atol=tol[dtype], msg=where)
                        part = full.grad[:, start : start + widths[rank]]
                        torch.testing.assert_close(grad, part, rtol=tol[dtype], atol=tol[dtype], msg=where)
                        start += widths[rank]
        logits, labels, _ = _data(torch.float64)
        full = logits.clone().requires_grad_()
        torch.nn.functional.cross_entropy(full, labels).backward()
        start = 0
        for rank in range(world):
            buffer, same = results[rank][(impl, "inplace")]
            assert same, "the gradient was not written into the logits"
            torch.testing.assert_close(buffer, full.grad[:, start : start + widths[rank]], rtol=1e-12, atol=1e-12)
            start += widths[rank]
        for name in ("label out of range", "NaN logit", "all -inf row"):
            messages = [results[rank][(impl, "error", name)] for rank in range(world)]
            assert all(messages), f"{impl}, {name}: not every rank raised: {messages}"
    message = results[0][("cpu", "error", "label out of range")]
    assert message.startswith(f"labels[3] = {V} is out of range")


def test_errors_without_a_process_group():
    from crossentropy import InputError
    from crossentropy.distributed import vocab_parallel_cross_entropy

    with pytest.raises(InputError, match=r"initialised torch\.distributed"):
        vocab_parallel_cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))


LABEL_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _ignore_cases(dtype: torch.dtype) -> list[int]:
    """``ignore_index`` inside the dtype's range and outside it (where a conversion would wrap it onto a class)."""
    info = torch.iinfo(dtype)
    return [200 if info.min == 0 else -100, int(info.max) + 1, int(info.max) + 3, -256, 2**64]


def _dtype_worker(rank: int, world: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from crossentropy.distributed import vocab_parallel_cross_entropy

        widths = _widths(world, False)
        start = sum(widths[:rank])
        logits, _, _ = _data(torch.float64)
        out: dict[Any, Any] = {}
        for dtype in LABEL_DTYPES:
            for ignore in _ignore_cases(dtype):
                info = torch.iinfo(dtype)
                third = ignore if info.min <= ignore <= info.max else 2
                labels = torch.tensor([0, 3, third, 10, 1, 5, 7]).to(dtype)
                shard = logits[:, start : start + widths[rank]].clone().requires_grad_()
                loss = vocab_parallel_cross_entropy(shard, labels, ignore_index=ignore)
                loss.backward()
                out[(dtype, ignore)] = (loss.detach(), shard.grad)
        # a second derivative raises rather than being silently dropped
        shard = logits[:, start : start + widths[rank]].clone().requires_grad_()
        (grad,) = torch.autograd.grad(vocab_parallel_cross_entropy(shard, torch.arange(7)), shard, create_graph=True)
        try:
            grad.sum().backward()
            out["second order"] = None
        except RuntimeError as exc:
            out["second order"] = str(exc)
        results[rank] = out
    finally:
        dist.destroy_process_group()


def test_label_dtypes_compare_ignore_index_as_integers():
    """Issue 26: labels of every integer dtype meet ignore_index as integers of unbounded range on every rank
    (256 is no uint8 label, not class 0), as the single-process loss does; and a second derivative raises."""
    world = 2
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_dtype_worker, args=(world, _free_port(), results), nprocs=world, join=True)
    out = dict(results)
    manager.shutdown()
    widths = _widths(world, False)
    logits, _, _ = _data(torch.float64)
    for dtype in LABEL_DTYPES:
        for ignore in _ignore_cases(dtype):
            info = torch.iinfo(dtype)
            inside = info.min <= ignore <= info.max
            third = ignore if inside else 2
            labels = torch.tensor([0, 3, third, 10, 1, 5, 7])
            full = logits.clone().requires_grad_()
            expected = torch.nn.functional.cross_entropy(full, labels, ignore_index=ignore if inside else -100)
            expected.backward()
            start = 0
            for rank in range(world):
                loss, grad = out[rank][(dtype, ignore)]
                where = f"{dtype} ignore_index={ignore} rank {rank}"
                torch.testing.assert_close(loss, expected.detach(), rtol=1e-12, atol=1e-12, msg=where)
                part = full.grad[:, start : start + widths[rank]]
                torch.testing.assert_close(grad, part, rtol=1e-12, atol=1e-12, msg=where)
                start += widths[rank]
    for rank in range(world):
        assert out[rank]["second order"], "a second derivative of the vocabulary-parallel loss did not raise"
