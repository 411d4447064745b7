"""Vocabulary-parallel cross-entropy with gloo on loopback, 2 and 4 processes."""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

N, V = 7, 11  # V does not divide evenly by 2 or 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _widths(world: int) -> list[int]:
    base, extra = divmod(V, world)
    return [base + (1 if r < extra else 0) for r in range(world)]


def _worker(rank: int, world: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from crossentropy.distributed import vocab_parallel_cross_entropy

        g = torch.Generator().manual_seed(0)
        logits = torch.randn(N, V, generator=g) * 3
        labels = torch.randint(0, V, (N,), generator=g)
        labels[2] = -100
        widths = _widths(world)
        start = sum(widths[:rank])
        out = {}
        for reduction in ("mean", "sum", "none"):
            for smoothing in (0.0, 0.1):
                shard = logits[:, start : start + widths[rank]].clone().requires_grad_()
                loss = vocab_parallel_cross_entropy(shard, labels, label_smoothing=smoothing, reduction=reduction)
                loss.sum().backward()
                out[(reduction, smoothing)] = (loss.detach(), shard.grad)
        results[rank] = out
    finally:
        dist.destroy_process_group()


def _run(world: int) -> dict:
    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(_worker, args=(world, _free_port(), results), nprocs=world, join=True)
    out = dict(results)
    manager.shutdown()
    return out


@pytest.mark.parametrize("world", [2, 4])
def test_vocab_parallel_equals_single_process(world):
    results = _run(world)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(N, V, generator=g) * 3
    labels = torch.randint(0, V, (N,), generator=g)
    labels[2] = -100
    widths = _widths(world)
    for (reduction, smoothing), _ in results[0].items():
        full = logits.clone().requires_grad_()
        expected = torch.nn.functional.cross_entropy(full, labels, reduction=reduction, label_smoothing=smoothing)
        expected.sum().backward()
        start = 0
        for rank in range(world):
            loss, grad = results[rank][(reduction, smoothing)]
            torch.testing.assert_close(loss, expected.detach(), rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(grad, full.grad[:, start : start + widths[rank]], rtol=1e-6, atol=1e-6)
            start += widths[rank]


def test_errors_without_a_process_group():
    from crossentropy import InputError
    from crossentropy.distributed import vocab_parallel_cross_entropy

    with pytest.raises(InputError, match=r"initialised torch\.distributed"):
        vocab_parallel_cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
