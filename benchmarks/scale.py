"""Beyond one process: Dask scoring with 1, 2 and 4 workers, and vocabulary-parallel step time.

1. Generates a partitioned Parquet dataset (default 12M rows x 10 classes,
   float64) larger than the memory limit given to each Dask worker, and times
   ``crossentropy.dask.score`` on LocalClusters of 1, 2 and 4 single-threaded
   workers (each limited to ``--worker-memory``), against the single-process
   streaming ``crossentropy score`` of the same files.
2. Times one forward + backward of ``vocab_parallel_cross_entropy`` with 1, 2
   and 4 gloo processes on loopback against ``F.cross_entropy`` in one process.

Writes benchmarks/results/scale.md. On a 2-core machine more than two
workers cannot scale further; the ratios say so.

    python benchmarks/scale.py [--rows N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_dataset(directory: Path, rows: int, parts: int) -> int:
    import pandas as pd

    rng = np.random.default_rng(0)
    per = rows // parts
    for i in range(parts):
        logits = rng.normal(0, 2, (per, 10))
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        frame = pd.DataFrame({"label": rng.integers(0, 10, per), **{f"p_{j}": p[:, j] for j in range(10)}})
        frame.to_parquet(directory / f"part-{i:03d}.parquet")
    return sum(f.stat().st_size for f in directory.iterdir())


def time_dask(directory: Path, workers: int, memory: str) -> tuple[float, float]:
    from distributed import Client, LocalCluster

    from crossentropy.dask import score

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, memory_limit=memory, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        start = time.perf_counter()
        result = score(str(directory), probs=["p_*"])
        return time.perf_counter() - start, result["mean_loss"]


def time_single(directory: Path) -> tuple[float, float]:
    import pyarrow.parquet as pq

    from crossentropy._scoring import ScoreOptions, Scorer

    start = time.perf_counter()
    scorer = Scorer(ScoreOptions(num_classes=10))
    offset = 0
    for path in sorted(directory.iterdir()):
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=1 << 16):
            frame = batch.to_pandas()
            preds = frame[[f"p_{j}" for j in range(10)]].to_numpy()
            scorer.update(frame["label"].to_numpy(np.float64), preds, None, start=offset)
            offset += len(frame)
    return time.perf_counter() - start, scorer.result()["mean_loss"]


def _vp_worker(rank: int, world: int, port: int, n: int, v: int, repeat: int, out: dict) -> None:
    import torch
    import torch.distributed as dist

    from crossentropy.distributed import vocab_parallel_cross_entropy

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(n, v, generator=g)
    labels = torch.randint(0, v, (n,), generator=g)
    width = -(-v // world)
    shard = logits[:, rank * width : (rank + 1) * width].contiguous()
    best = float("inf")
    for _ in range(repeat + 1):
        leaf = shard.clone().requires_grad_()
        dist.barrier()
        start = time.perf_counter()
        vocab_parallel_cross_entropy(leaf, labels, vocab_start=rank * width, vocab_size=v).backward()
        best = min(best, time.perf_counter() - start)
    out[rank] = best
    dist.destroy_process_group()


def time_vocab_parallel(world: int, n: int, v: int, repeat: int) -> float:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_vp_worker, args=(world, port, n, v, repeat, out), nprocs=world, join=True)
    value = max(out.values())
    manager.shutdown()
    return value


def time_single_loss(n: int, v: int, repeat: int) -> float:
    import torch

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(n, v, generator=g)
    labels = torch.randint(0, v, (n,), generator=g)
    best = float("inf")
    for _ in range(repeat + 1):
        leaf = logits.clone().requires_grad_()
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(leaf, labels).backward()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=12_000_000)
    parser.add_argument("--worker-memory", default="800MB")
    parser.add_argument("--quick", action="store_true", help="1.2M rows, smaller vocab-parallel shapes")
    args = parser.parse_args()
    rows = 1_200_000 if args.quick else args.rows
    lines = [
        "# Scaling",
        "",
        f"Generated by `benchmarks/scale.py`{' --quick' if args.quick else ''} on {os.cpu_count()} cores.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        size = make_dataset(directory, rows, 24)
        in_memory = rows * 11 * 8 / 1e6
        lines += [
            f"## Dask scoring: {rows:,} rows x 10 classes, 24 Parquet files ({size / 1e6:.0f} MB on disk, "
            f"{in_memory:.0f} MB as float64 in memory; each worker limited to {args.worker_memory})",
            "",
            "| engine | seconds | rows/s | speed-up over 1 worker | mean loss |",
            "|---|---:|---:|---:|---:|",
        ]
        seconds, loss = time_single(directory)
        lines.append(f"| single process, streaming | {seconds:.1f} | {rows / seconds:,.0f} | — | {loss:.12f} |")
        base = None
        for workers in (1, 2, 4):
            seconds, loss = time_dask(directory, workers, args.worker_memory)
            base = base or seconds
            lines.append(
                f"| Dask, {workers} worker(s) | {seconds:.1f} | {rows / seconds:,.0f} | "
                f"{base / seconds:.2f} | {loss:.12f} |"
            )
            print("\n".join(lines[-1:]), flush=True)
    n, v = (1024, 8000) if args.quick else (2048, 32000)
    lines += [
        "",
        f"## Vocabulary-parallel forward + backward, N x V = {n:,} x {v:,} float32, gloo on loopback, "
        "one thread per process",
        "",
        "| setup | ms | ratio to one process |",
        "|---|---:|---:|",
    ]
    single = time_single_loss(n, v, 3)
    lines.append(f"| F.cross_entropy, 1 process | {single * 1e3:.1f} | 1.00 |")
    for world in (1, 2, 4):
        t = time_vocab_parallel(world, n, v, 3)
        lines.append(f"| vocab_parallel_cross_entropy, {world} process(es) | {t * 1e3:.1f} | {t / single:.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    out = HERE / "results" / ("scale_quick.md" if args.quick else "scale.md")
    out.write_text(text)
    print(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
