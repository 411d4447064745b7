"""CPU cross-entropy: crossentropy's fused kernels against the references, in one run.

Times (best of N) sparse cross-entropy from float32 logits, forward and
forward + gradient, for crossentropy, torch (F.cross_entropy), naive NumPy,
scipy.special.logsumexp, JAX jit and scikit-learn's log_loss (on
probabilities, where the size allows), and binary cross-entropy of 10M rows.
Prints a Markdown table with ms, GB/s of logits read, the ratio to the
memory-read floor (all threads reading the logits once, measured in the same
run) and the ratio to torch; writes benchmarks/results/cpu.md.

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
from crossentropy import _kernels

HERE = Path(__file__).resolve().parent
SHAPES = [(8192, 32000), (4096, 128256), (65536, 1000), (1_000_000, 10)]
QUICK_SHAPES = [(1024, 32000), (8192, 1000), (100_000, 10)]


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time of ``repeat`` calls, in ms (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _optional(name: str) -> Any | None:
    try:
        return __import__(name)
    except ImportError:
        return None


def sparse_cases(x: np.ndarray, t: np.ndarray, quick: bool) -> dict[str, Callable[[], Any]]:
    """Name -> a call computing the mean sparse cross-entropy (or with its gradient)."""
    n, v = x.shape
    rows = np.arange(n)
    buffer = np.empty_like(x)
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


def binary_cases(y: np.ndarray, p: np.ndarray) -> dict[str, Callable[[], Any]]:
    cases: dict[str, Callable[[], Any]] = {
        "crossentropy binary_cross_entropy": lambda: ce.binary_cross_entropy(y, p),
        "naive NumPy": lambda: -(y * np.log(p) + (1 - y) * np.log1p(-p)).mean(),
    }
    torch = _optional("torch")
    if torch is not None:
        pt, yt = torch.from_numpy(p), torch.from_numpy(y)
        cases["torch binary_cross_entropy"] = lambda: torch.nn.functional.binary_cross_entropy(pt, yt)
    if _optional("sklearn.metrics") is not None:
        from sklearn.metrics import log_loss

        cases["scikit-learn log_loss"] = lambda: log_loss(y, p, labels=[0, 1])
    return cases


def table(
    title: str, nbytes: int, floor_ms: float, results: dict[str, float], torch_keys: tuple[str, str]
) -> list[str]:
    lines = [
        f"### {title}",
        "",
        f"memory-read floor: {floor_ms:.1f} ms ({nbytes / floor_ms / 1e6:.1f} GB/s)",
        "",
        "| implementation | ms | GB/s of input read | × floor | × torch |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, ms in results.items():
        ref = results.get(torch_keys[1] if ("grad" in name or "backward" in name) else torch_keys[0])
        ratio = f"{ms / ref:.2f}" if ref else "—"
        lines.append(f"| {name} | {ms:.1f} | {nbytes / ms / 1e6:.1f} | {ms / floor_ms:.2f} | {ratio} |")
    return [*lines, ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes, best of 3")
    parser.add_argument("--repeat", type=int, default=None, help="best of N (default 5, 3 with --quick)")
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 5)
    if not _kernels.available():
        print("warning: the CPU kernels are not built; crossentropy runs its reference path", file=sys.stderr)
    rng = np.random.default_rng(0)
    out = [
        "# CPU benchmark",
        "",
        f"Best of {repeat}, float32, {platform.machine()} ({os.cpu_count()} cores), "
        f"{_kernels.num_threads()} kernel threads, torch threads = {_torch_threads()}. "
        "Generated by `benchmarks/cpu.py`" + (" --quick" if args.quick else "") + ".",
        "",
    ]
    for n, v in QUICK_SHAPES if args.quick else SHAPES:
        x = rng.standard_normal((n, v), dtype=np.float32)
        t = rng.integers(0, v, n)
        floor = best_of(lambda x=x: _kernels.read_floor(x), repeat)
        results = {name: best_of(fn, repeat) for name, fn in sparse_cases(x, t, args.quick).items()}
        block = table(
            f"sparse cross-entropy, N × V = {n:,} × {v:,}",
            x.nbytes,
            floor,
            results,
            ("torch forward", "torch forward+backward"),
        )
        print("\n".join(block), flush=True)
        out += block
        del x
        gc.collect()
    n = 1_000_000 if args.quick else 10_000_000
    y = (rng.uniform(size=n) > 0.5).astype(np.float64)
    p = rng.uniform(0.001, 0.999, n)
    floor = best_of(lambda: _kernels.read_floor(p.astype(np.float32)), repeat)
    results = {name: best_of(fn, repeat) for name, fn in binary_cases(y, p).items()}
    block = table(
        f"binary cross-entropy of {n:,} float64 probabilities (floor: float32 copy read)",
        p.nbytes * 2,
        floor * 2,
        results,
        ("torch binary_cross_entropy", "torch binary_cross_entropy"),
    )
    print("\n".join(block), flush=True)
    out += block
    sk = results.get("scikit-learn log_loss")
    if sk:
        out.append(
            f"binary: crossentropy is {sk / results['crossentropy binary_cross_entropy']:.1f}× faster than "
            "scikit-learn's log_loss."
        )
    target = HERE / "results" / ("cpu_quick.md" if args.quick else "cpu.md")
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join(out) + "\n")
    print(f"wrote {target}", file=sys.stderr)
    return 0


def _torch_threads() -> str:
    torch = _optional("torch")
    return str(torch.get_num_threads()) if torch is not None else "—"


if __name__ == "__main__":
    raise SystemExit(main())
