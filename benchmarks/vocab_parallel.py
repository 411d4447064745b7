"""Vocabulary-parallel cross-entropy over gloo on this machine: time and peak memory per rank.

For 1, 2 and 4 processes (each holding a vocabulary shard of float32 logits
N x V/world), measures forward + backward (best of N) and the peak resident
memory each rank adds during one forward + backward, as a multiple of its
shard's size, with the gradient in a new buffer and written into the logits
(``inplace_backward=True``). Single-process ``F.cross_entropy`` on the full
logits is timed in the same run. Prints a Markdown table and writes
benchmarks/results/vocab_parallel.md.

    python benchmarks/vocab_parallel.py            # N=2048, V=32000
    python benchmarks/vocab_parallel.py --quick    # N=512, V=8000
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_mb() -> float:
    """This process's resident memory now (not its high-water mark, which cannot show a call's own rise)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class _PeakSampler:
    """Samples the resident memory every half millisecond while active; ``peak`` is the largest rise."""

    def __init__(self) -> None:
        self.base = _rss_mb()
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb() - self.base)
            time.sleep(0.0005)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb() - self.base)


def _worker(rank: int, world: int, port: int, n: int, v: int, repeat: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from crossentropy.distributed import vocab_parallel_cross_entropy

        width = v // world + (1 if rank < v % world else 0)
        start = sum(v // world + (1 if r < v % world else 0) for r in range(rank))
        g = torch.Generator().manual_seed(rank)
        shard = torch.randn(n, width, generator=g)
        labels = torch.randint(0, v, (n,), generator=torch.Generator().manual_seed(0))
        out: dict[str, Any] = {"shard_mb": shard.numel() * 4 / 2**20}
        for inplace in (False, True):
            best = float("inf")
            peak = 0.0
            for _ in range(repeat):
                leaf = shard.clone().requires_grad_()
                gc.collect()
                dist.barrier()
                with _PeakSampler() as sampler:
                    t0 = time.perf_counter()
                    loss = vocab_parallel_cross_entropy(
                        leaf, labels, vocab_start=start, vocab_size=v, inplace_backward=inplace
                    )
                    loss.backward()
                    dist.barrier()
                    best = min(best, time.perf_counter() - t0)
                peak = max(peak, sampler.peak)
                del leaf, loss
            out["inplace" if inplace else "buffer"] = (best * 1e3, peak)
        results[rank] = out
    finally:
        dist.destroy_process_group()


def _single(n: int, v: int, repeat: int) -> float:
    x = torch.randn(n, v)
    t = torch.randint(0, v, (n,))
    best = float("inf")
    for _ in range(repeat):
        leaf = x.clone().requires_grad_()
        t0 = time.perf_counter()
        torch.nn.functional.cross_entropy(leaf, t).backward()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, v = (512, 8000) if args.quick else (2048, 32000)
    rows = []
    torch_ms = _single(n, v, args.repeat)
    for world in (1, 2, 4):
        manager = mp.Manager()
        results = manager.dict()
        mp.spawn(_worker, args=(world, _free_port(), n, v, args.repeat, results), nprocs=world, join=True)
        res = dict(results)
        manager.shutdown()
        shard = max(r["shard_mb"] for r in res.values())
        ms = max(r["buffer"][0] for r in res.values())
        peak = max(r["buffer"][1] for r in res.values())
        ms_in = max(r["inplace"][0] for r in res.values())
        peak_in = max(r["inplace"][1] for r in res.values())
        rows.append(
            f"| {world} | {shard:.0f} | {ms:.0f} | {peak:.0f} ({peak / shard:.2f}x) | {ms_in:.0f} | "
            f"{peak_in:.0f} ({peak_in / shard:.2f}x) | {ms / torch_ms:.2f} |"
        )
    table = "\n".join(
        [
            f"Vocabulary-parallel cross-entropy, gloo on {os.cpu_count()} cores, float32 logits N x V = {n} x {v}, "
            f"forward + backward, best of {args.repeat}; torch `F.cross_entropy` on the full logits, one process: "
            f"{torch_ms:.0f} ms. Peak = the largest rise of a rank's resident memory during one call (sampled "
            "every 0.5 ms), against its shard's size; the gradient is the one buffer a call must add.",
            "",
            "| ranks | shard MB | ms | peak MB (x shard) | ms, in-place backward | peak MB, in-place (x shard) "
            "| time / torch |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(table)
    out = HERE / "results" / ("vocab_parallel_quick.md" if args.quick else "vocab_parallel.md")
    out.write_text(f"# Vocabulary-parallel cross-entropy\n\n{table}\n")


if __name__ == "__main__":
    main()
