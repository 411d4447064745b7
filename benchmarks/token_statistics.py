"""Token statistics on the CPU: the fused pass against the memory-read floor and the torch composites, in one run.

Everything below is measured in the same run (best of N wall-clock times,
the calls of one table timed in turn, round after round, as in
``benchmarks/cpu.py``, whose floor and timing it reuses), and written to
``benchmarks/results/token_statistics.md`` (``--quick``:
``token_statistics_quick.md``) with the machine's load average:

1. ``crossentropy.torch.token_statistics`` of float32 logits (4096 x 32000
   and, without ``--quick``, 8192 x 32000 and 2048 x 128256) as CPU tensors
   and as NumPy arrays, at temperature 1 and 0.7, and of bfloat16 logits,
   against the memory-read floor (all threads reading the logits once: the
   least any pass over them can cost) and against two torch composites of the
   same five statistics: ``log_softmax`` + ``gather`` + the entropy +
   ``logsumexp`` + ``max``, with the rank from ``argsort(descending=True,
   stable=True)`` (the definition) or from comparisons with the target's
   logit (the cheap way; both up to 150M logits, as their temporaries take
   several GB); torch's ``cross_entropy(reduction="none")`` and the
   fused ``crossentropy.torch.cross_entropy`` give the price of the loss
   alone. The ratio to the floor is also given as the median over pairs of
   calls timed back to back (the floor, then the pass), which a load that
   changes during the run disturbs less than a ratio of two best times;
2. ``linear_token_statistics`` from 4096 x 256 hidden states and a 32000 x
   256 output layer, with blocks of 64, 256 and 1024 rows and the default,
   against the full logits followed by ``token_statistics``: time and the
   growth of the process's peak resident memory (``VmHWM``, reset before
   each call) as a multiple of one block of logits.

    python benchmarks/token_statistics.py            # best of 5
    python benchmarks/token_statistics.py --quick    # 4096 x 32000 only, best of 3
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

# the CPU benchmark's interleaved timing and load report (a script's own folder is on sys.path)
from cpu import _load, round_robin

from crossentropy import _kernels
from crossentropy.torch import cross_entropy, linear_token_statistics, token_statistics

HERE = Path(__file__).resolve().parent
SHAPES = [(4096, 32000), (8192, 32000), (2048, 128256)]
COMPOSITE_LIMIT = 150_000_000
"""Logits beyond this many elements skip the torch composites: their N x V temporaries (several GB) would crowd
the shared machine."""


def composite(x: torch.Tensor, t: torch.Tensor, rank_by_sort: bool) -> tuple[torch.Tensor, ...]:
    """The five statistics from torch operations (float32), the rank by argsort or by comparisons."""
    lse = torch.logsumexp(x, -1)
    log_q = torch.log_softmax(x, -1)
    q = log_q.exp()
    entropy = -(q * log_q).nan_to_num().sum(-1)
    logprob = log_q.gather(-1, t.unsqueeze(-1)).squeeze(-1)
    top1 = q.amax(-1)
    if rank_by_sort:
        order = torch.argsort(x, dim=-1, descending=True, stable=True)
        rank = (order == t.unsqueeze(-1)).int().argmax(-1) + 1
    else:
        x_t = x.gather(-1, t.unsqueeze(-1))
        before = torch.arange(x.shape[-1]) < t.unsqueeze(-1)
        rank = 1 + (x > x_t).sum(-1) + ((x == x_t) & before).sum(-1)
    return logprob, entropy, rank, top1, lse


def paired_ratios(fn: Callable[[], Any], floor: Callable[[], Any], rounds: int) -> list[float]:
    """``fn``'s time over the floor's, each pair timed back to back: robust to a load that changes during the run."""
    fn()
    floor()
    ratios = []
    for _ in range(rounds):
        times = []
        for call in (floor, fn):
            gc.collect()
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        ratios.append(times[1] / times[0])
    return sorted(ratios)


def pass_table(n: int, v: int, repeat: int) -> tuple[list[str], list[str]]:
    """The table of one shape and its summary row."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, v), dtype=np.float32)
    t_np = rng.integers(0, v, n)
    x, t = torch.from_numpy(x_np), torch.from_numpy(t_np)
    calls: dict[str, Callable[[], Any]] = {
        "read floor": lambda: _kernels.read_floor(x_np),
        "token_statistics (tensor)": lambda: token_statistics(x, t),
        "token_statistics (NumPy)": lambda: token_statistics(x_np, t_np),
        "token_statistics, temperature 0.7": lambda: token_statistics(x, t, temperature=0.7),
        "crossentropy.torch.cross_entropy, loss only": lambda: cross_entropy(x, t, reduction="none"),
        "torch cross_entropy, loss only": lambda: torch.nn.functional.cross_entropy(x, t, reduction="none"),
    }
    if n * v <= COMPOSITE_LIMIT:
        calls["torch composite, rank by comparisons"] = lambda: composite(x, t, rank_by_sort=False)
        calls["torch composite, rank by argsort"] = lambda: composite(x, t, rank_by_sort=True)
    bf16 = x.to(torch.bfloat16)
    calls["token_statistics (bfloat16 tensor)"] = lambda: token_statistics(bf16, t)
    ms = round_robin(calls, repeat)
    floor = ms.pop("read floor")
    ours = ms["token_statistics (tensor)"]
    ratios = paired_ratios(calls["token_statistics (tensor)"], calls["read floor"], 3 * repeat)
    median = ratios[len(ratios) // 2]
    lines = [
        f"### token statistics, N × V = {n:,} × {v:,} float32",
        "",
        f"memory-read floor: {floor:.1f} ms ({x_np.nbytes / floor / 1e6:.1f} GB/s). token_statistics over the floor, "
        f"each pair timed back to back, {len(ratios)} pairs: median {median:.2f}, lowest {ratios[0]:.2f}, highest "
        f"{ratios[-1]:.2f}.",
        "",
        "| implementation | ms | × read floor | × token_statistics |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {value:.1f} | {value / floor:.2f} | {value / ours:.2f} |" for name, value in ms.items()),
        "",
        "(bfloat16 logits are first converted to a float32 copy, which the C kernel then reads: the C kernels "
        "take float32 and float64.)",
        "",
    ]
    compare, sort = ms.get("torch composite, rank by comparisons"), ms.get("torch composite, rank by argsort")
    summary = (
        f"| {n:,} × {v:,} | {ours / floor:.2f} | {median:.2f} | {f'{compare / ours:.1f}' if compare else '—'} | "
        f"{f'{sort / ours:.0f}' if sort else '—'} | {ms['torch cross_entropy, loss only'] / ours:.1f} |"
    )
    print("\n".join(lines), flush=True)
    return lines, [summary]


def _peak_growth(fn: Callable[[], Any]) -> float:
    """MB by which ``fn()`` raises the peak resident memory (VmHWM reset first; Linux only)."""
    status = Path("/proc/self/status")

    def field(name: str) -> int:
        return next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith(name))

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    before = field("VmRSS:")
    fn()
    return (field("VmHWM:") - before) / 1024


def linear_table(n: int, d: int, v: int, repeat: int) -> list[str]:
    g = torch.Generator().manual_seed(1)
    hidden, weight = torch.randn(n, d, generator=g), torch.randn(v, d, generator=g) / d**0.5
    t = torch.randint(0, v, (n,), generator=g)
    calls: dict[str, Callable[[], Any]] = {
        "full logits, then token_statistics": lambda: token_statistics(hidden @ weight.T, t),
    }
    chunks: dict[str, int | None] = {"64": 64, "256": 256, "1024": 1024, "default": None}
    for label, chunk in chunks.items():
        calls[f"linear_token_statistics, blocks of {label} rows"] = lambda chunk=chunk: linear_token_statistics(
            hidden, weight, t, chunk_size=chunk
        )
    ms = round_robin(calls, repeat)
    full = ms["full logits, then token_statistics"]
    peaks = {name: _peak_growth(fn) for name, fn in calls.items()}
    default_rows = max(1, (256 << 20) // (v * 4))
    lines = [
        f"### linear_token_statistics, {n:,} × {d} hidden states, {v:,} × {d} output layer, float32",
        "",
        f"The full logits are {n * v * 4 / 1e6:.0f} MB; the default block is {min(default_rows, n):,} rows.",
        "",
        "| implementation | ms | × full logits | peak memory growth MB | × one block |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, value in ms.items():
        label = name.rsplit("blocks of ", 1)[-1].split(" ")[0] if "blocks of" in name else None
        rows = n if label is None else (default_rows if label == "default" else int(label))
        block = min(rows, n) * v * 4 / 1e6
        lines.append(f"| {name} | {value:.1f} | {value / full:.2f} | {peaks[name]:.1f} | {peaks[name] / block:.2f} |")
    lines.append("")
    print("\n".join(lines), flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4096 x 32000 only, best of 3")
    parser.add_argument("--repeat", type=int, default=None, help="best of N (default 5, 3 with --quick)")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 5)
    if not _kernels.available():
        print("warning: the CPU kernels are not built; the plain torch path runs", file=sys.stderr)
    load_before = _load()
    print(f"load average before: {load_before}", flush=True)
    blocks: list[str] = []
    summary: list[str] = []
    for n, v in SHAPES[:1] if args.quick else SHAPES:
        lines, rows = pass_table(n, v, repeat)
        blocks += lines
        summary += rows
        gc.collect()
    blocks += linear_table(4096, 256, 32000, repeat)
    load_after = _load()
    described = _kernels.describe()
    header = [
        "# Token statistics benchmark",
        "",
        f"Best of {repeat} wall-clock times, one run, {platform.machine()} ({os.cpu_count()} cores), kernel variant "
        f"{described['isa']}, {described['threads']} kernel threads, torch threads = {torch.get_num_threads()}. "
        f"Load average (1, 5, 15 min) before the run: {load_before}; after: {load_after} (a shared machine: every "
        "ratio compares timings of the same run). Generated by `benchmarks/token_statistics.py`"
        + (" --quick" if args.quick else "")
        + ".",
        "",
        "## Summary",
        "",
        "| shape (float32) | token_statistics / read floor (best of each) | the same, median of back-to-back pairs "
        "| composite (comparisons) / ours | composite (argsort) / ours | torch cross_entropy alone / ours |",
        "|---|---:|---:|---:|---:|---:|",
        *summary,
        "",
        "## Details",
        "",
    ]
    target = HERE / "results" / ("token_statistics_quick.md" if args.quick else "token_statistics.md")
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join([*header, *blocks]) + "\n")
    print("\n".join(header[:-3]))
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
