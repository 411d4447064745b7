"""CPU cross-entropy: crossentropy's fused kernels against the references, in one run.

Everything below is measured in the same run, best of N wall-clock times, the
calls of one table timed in turn, round after round, so that they share the
machine's background load; the tables go to benchmarks/results/cpu.md
(``--quick``: cpu_quick.md) with the machine's load average before and after
the run in their header:

1. sparse cross-entropy from float32 logits at 8192 x 32000, 4096 x 128256,
   65536 x 1000 and 1M x 10, forward and forward + gradient, for crossentropy,
   torch (``F.cross_entropy``), JAX ``jit``, naive NumPy, scipy's logsumexp
   and scikit-learn (where the size allows); ratios to the memory-read floor
   (all threads reading the logits once), to the read + write floor (reading
   the logits and writing an array of their size), to torch and to JAX;
2. float32 entropy, cross-entropy of probabilities, KL divergence and binary
   cross-entropy of 10M elements: the kernels against the NumPy reference path
   (``crossentropy._dispatch.use("reference")``), and float32 against float64;
3. an 8 x 5 sparse call with the kernels against the reference path (best of 300).

    python benchmarks/cpu.py            # all shapes, best of 5
    python benchmarks/cpu.py --quick    # small shapes, best of 3
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import crossentropy as ce
from crossentropy import _dispatch, _kernels

HERE = Path(__file__).resolve().parent
SHAPES = [(8192, 32000), (4096, 128256), (65536, 1000), (1_000_000, 10)]
QUICK_SHAPES = [(1024, 32000), (8192, 1000), (100_000, 10)]


def round_robin(calls: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best wall time (ms) of each call over ``repeat`` rounds that time every call once in turn.

    Interleaving keeps the calls compared under the same background load on a
    shared machine, where timing each call's repeats back to back would not.
    """
    for fn in calls.values():
        fn()
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, fn in calls.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds * 1e3 for name, seconds in best.items()}


def _optional(name: str) -> Any | None:
    try:
        return __import__(name)
    except ImportError:
        return None


def sparse_cases(x: np.ndarray, t: np.ndarray, buffer: np.ndarray) -> dict[str, Callable[[], Any]]:
    """Name -> a call computing the mean sparse cross-entropy (or with its gradient into ``buffer``)."""
    n, v = x.shape
    rows = np.arange(n)
    cases: dict[str, Callable[[], Any]] = {
        "crossentropy forward": lambda: ce.sparse_categorical_cross_entropy(t, x, from_logits=True),
        "crossentropy forward+grad": lambda: ce.grad.sparse_categorical_cross_entropy_value_and_grad(t, x, out=buffer),
    }

    def naive() -> Any:
        m = x.max(axis=1, keepdims=True)
        lse = np.log(np.exp(x - m).sum(axis=1)) + m[:, 0]
        return (lse - x[rows, t]).mean()

    cases["naive NumPy forward"] = naive
    special = _optional("scipy.special")
    if special is not None:
        from scipy import special as sp

        cases["scipy logsumexp forward"] = lambda: (sp.logsumexp(x, axis=1) - x[rows, t]).mean()
    torch = _optional("torch")
    if torch is not None:
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)

        def torch_fb() -> Any:
            leaf = xt.detach().requires_grad_()
            torch.nn.functional.cross_entropy(leaf, tt).backward()
            return leaf.grad

        cases["torch forward"] = lambda: torch.nn.functional.cross_entropy(xt, tt)
        cases["torch forward+backward"] = torch_fb
    jax = _optional("jax")
    if jax is not None:
        import jax.numpy as jnp

        xj, tj = jnp.asarray(x), jnp.asarray(t)
        fwd = jax.jit(lambda a, b: jnp.mean(jax.nn.logsumexp(a, axis=1) - jnp.take_along_axis(a, b[:, None], 1)[:, 0]))
        fb = jax.jit(
            jax.value_and_grad(
                lambda a, b: jnp.mean(jax.nn.logsumexp(a, axis=1) - jnp.take_along_axis(a, b[:, None], 1)[:, 0])
            )
        )
        cases["JAX jit forward"] = lambda: fwd(xj, tj).block_until_ready()
        cases["JAX jit forward+grad"] = lambda: fb(xj, tj)[1].block_until_ready()
    metrics = _optional("sklearn.metrics")
    if metrics is not None and n * v <= 70_000_000:
        from sklearn.metrics import log_loss

        e = np.exp(x - x.max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        labels = list(range(v))
        cases["scikit-learn log_loss (probabilities)"] = lambda: log_loss(t, probs, labels=labels)
    return cases


def table(title: str, nbytes: int, floors: dict[str, float], results: dict[str, float]) -> list[str]:
    """A Markdown table of one shape: ms, GB/s, the ratio to its floor, to torch and to JAX."""
    read, read_write = floors["read"], floors["read+write"]
    lines = [
        f"### {title}",
        "",
        f"memory-read floor: {read:.1f} ms ({nbytes / read / 1e6:.1f} GB/s); read + write floor: {read_write:.1f} ms",
        "",
        "| implementation | ms | GB/s of input read | × its floor | × torch | × JAX jit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, ms in results.items():
        backward = "grad" in name or "backward" in name
        torch_ms = results.get("torch forward+backward" if backward else "torch forward")
        jax_ms = results.get("JAX jit forward+grad" if backward else "JAX jit forward")
        floor = read_write if backward else read
        lines.append(
            f"| {name} | {ms:.1f} | {nbytes / ms / 1e6:.1f} | {ms / floor:.2f} | "
            f"{f'{ms / torch_ms:.2f}' if torch_ms else '—'} | {f'{ms / jax_ms:.2f}' if jax_ms else '—'} |"
        )
    return [*lines, ""]


def measure_sparse(shapes: list[tuple[int, int]], repeat: int) -> tuple[list[str], list[list[str]]]:
    """The per-shape tables and the summary rows (shape, forward / read floor, ...)."""
    rng = np.random.default_rng(0)
    blocks: list[str] = []
    summary: list[list[str]] = []
    for n, v in shapes:
        x = rng.standard_normal((n, v), dtype=np.float32)
        t = rng.integers(0, v, n)
        buffer = np.empty_like(x)  # the gradient's, and the read + write floor's destination
        floor_calls: dict[str, Callable[[], Any]] = {
            "read": lambda x=x: _kernels.read_floor(x),
            "read+write": lambda x=x, buffer=buffer: _kernels.copy_floor(x, buffer),
        }
        results = round_robin({**floor_calls, **sparse_cases(x, t, buffer)}, repeat)
        floors = {name: results.pop(name) for name in floor_calls}
        del buffer
        block = table(f"sparse cross-entropy, N × V = {n:,} × {v:,}", x.nbytes, floors, results)
        print("\n".join(block), flush=True)
        blocks += block
        fwd, fb = results["crossentropy forward"], results["crossentropy forward+grad"]
        jax_f, jax_fb = results.get("JAX jit forward"), results.get("JAX jit forward+grad")
        summary.append(
            [
                f"{n:,} × {v:,}",
                f"{fwd / floors['read']:.2f}",
                f"{fb / floors['read+write']:.2f}",
                f"{jax_f / fwd:.2f}" if jax_f else "—",
                f"{jax_fb / fb:.2f}" if jax_fb else "—",
                f"{results['torch forward'] / fwd:.1f}" if "torch forward" in results else "—",
            ]
        )
        del x
        gc.collect()
    return blocks, summary


def measurement_cases(
    n: int,
) -> dict[str, tuple[Callable[[Any, Any], Any], Callable[[np.dtype[Any]], tuple[Any, Any]]]]:
    """Name -> (the call, a maker of its float inputs of ``n`` elements in a dtype)."""
    rng = np.random.default_rng(1)
    c = 1000
    logits = rng.normal(0, 3, (n // c, c))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    q = np.roll(p, 1, axis=1)
    y = (rng.uniform(size=n) > 0.5).astype(np.float64)
    probs = rng.uniform(0.001, 0.999, n)

    def rows(dtype: np.dtype[Any]) -> tuple[Any, Any]:
        return p.astype(dtype), q.astype(dtype)

    def binary(dtype: np.dtype[Any]) -> tuple[Any, Any]:
        return y.astype(dtype), probs.astype(dtype)

    return {
        "entropy": (lambda a, b: ce.entropy(a), rows),
        "cross_entropy (probabilities)": (lambda a, b: ce.cross_entropy(a, b), rows),
        "kl_divergence": (lambda a, b: ce.kl_divergence(a, b), rows),
        "binary_cross_entropy": (lambda a, b: ce.binary_cross_entropy(a, b), binary),
    }


def measure_elementwise(n: int, repeat: int) -> tuple[list[str], list[list[str]]]:
    """Information measures and binary CE of ``n`` elements: kernels vs reference, float32 vs float64."""
    lines = [
        f"### information measures and binary cross-entropy, {n:,} elements (rows of 1,000 classes)",
        "",
        "| function | float32 kernels ms | float32 reference ms | reference / kernels | "
        "float64 kernels ms | float64 / float32 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    summary = []
    for name, (call, make) in measurement_cases(n).items():
        a32, b32 = make(np.dtype(np.float32))
        a64, b64 = make(np.dtype(np.float64))

        def reference(a: Any = a32, b: Any = b32, call: Callable[[Any, Any], Any] = call) -> Any:
            with _dispatch.use("reference"):
                return call(a, b)

        ms = round_robin(
            {
                "float32 kernels": lambda a=a32, b=b32, call=call: call(a, b),
                "float32 reference": reference,
                "float64 kernels": lambda a=a64, b=b64, call=call: call(a, b),
            },
            repeat,
        )
        k32, ref, k64 = ms["float32 kernels"], ms["float32 reference"], ms["float64 kernels"]
        lines.append(f"| {name} | {k32:.1f} | {ref:.1f} | {ref / k32:.2f} | {k64:.1f} | {k64 / k32:.2f} |")
        summary.append([name, f"{ref / k32:.2f}", f"{k64 / k32:.2f}"])
    lines.append("")
    print("\n".join(lines), flush=True)
    return lines, summary


def measure_tiny(repeat: int = 300) -> tuple[list[str], float, float]:
    """An 8 x 5 sparse call, best of ``repeat``, with the kernels and on the reference path (µs)."""
    rng = np.random.default_rng(2)
    x, t = rng.normal(size=(8, 5)), rng.integers(0, 5, 8)

    def call() -> Any:
        return ce.sparse_categorical_cross_entropy(t, x, from_logits=True)

    def reference() -> Any:
        with _dispatch.use("reference"):
            return call()

    call()
    reference()
    best = {"kernels": float("inf"), "reference": float("inf")}
    for _ in range(repeat):  # alternated, under the same load
        for name, fn in (("kernels", call), ("reference", reference)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    kernels, reference_us = best["kernels"] * 1e6, best["reference"] * 1e6
    lines = [
        f"### an 8 × 5 sparse call (float64, best of {repeat})",
        "",
        "| path | µs |",
        "|---|---:|",
        f"| kernels | {kernels:.1f} |",
        f"| reference | {reference_us:.1f} |",
        "",
    ]
    print("\n".join(lines), flush=True)
    return lines, kernels, reference_us


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes, best of 3")
    parser.add_argument("--repeat", type=int, default=None, help="best of N (default 5, 3 with --quick)")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 5)
    if not _kernels.available():
        print("warning: the CPU kernels are not built; crossentropy runs its reference path", file=sys.stderr)
    load_before = _load()
    print(f"load average before: {load_before}", flush=True)
    blocks, sparse_summary = measure_sparse(QUICK_SHAPES if args.quick else SHAPES, repeat)
    elementwise, measures_summary = measure_elementwise(1_000_000 if args.quick else 10_000_000, repeat)
    tiny, tiny_kernels, tiny_reference = measure_tiny()
    load_after = _load()
    described = _kernels.describe()
    header = [
        "# CPU benchmark",
        "",
        f"Best of {repeat} wall-clock times, one run, {platform.machine()} ({os.cpu_count()} cores), "
        f"kernel variant {described['isa']}, {described['threads']} kernel threads, torch threads = "
        f"{_torch_threads()}. Load average (1, 5, 15 min) before the run: {load_before}; after: {load_after} "
        "(a shared machine: every ratio compares timings of the same run). Generated by `benchmarks/cpu.py`"
        + (" --quick" if args.quick else "")
        + ".",
        "",
        "## Summary",
        "",
        "| shape (float32) | forward / read floor | forward+grad / read+write floor | JAX jit / ours, forward "
        "| JAX jit / ours, forward+grad | torch / ours, forward |",
        "|---|---:|---:|---:|---:|---:|",
        *("| " + " | ".join(row) + " |" for row in sparse_summary),
        "",
        "| float32, 10M elements | reference / kernels | float64 / float32 |"
        if not args.quick
        else "| float32, 1M elements | reference / kernels | float64 / float32 |",
        "|---|---:|---:|",
        *("| " + " | ".join(row) + " |" for row in measures_summary),
        "",
        f"8 × 5 sparse call: {tiny_kernels:.1f} µs with the kernels, {tiny_reference:.1f} µs on the reference "
        f"path ({tiny_reference / tiny_kernels:.2f}×).",
        "",
        "## Details",
        "",
    ]
    target = HERE / "results" / ("cpu_quick.md" if args.quick else "cpu.md")
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join([*header, *blocks, *elementwise, *tiny]) + "\n")
    print("\n".join(header[:-3]))
    print(f"wrote {target}", file=sys.stderr)
    return 0


def _torch_threads() -> str:
    torch = _optional("torch")
    return str(torch.get_num_threads()) if torch is not None else "—"


if __name__ == "__main__":
    raise SystemExit(main())
