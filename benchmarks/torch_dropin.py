"""crossentropy.torch against torch.nn.functional on the CPU, in one run (issue 16 speed acceptance).

Times, best of N after one warm-up call, float32 on the CPU with 2 threads
(torch's intra-op pool, OpenMP and crossentropy's kernels):

* ``cross_entropy`` forward (logits without grad) and forward + backward
  (``loss.backward()`` into the logits' ``.grad``) at N × V = 4096 × 32000 and
  8192 × 32000, class-index targets, mean reduction: ``crossentropy.torch``
  against ``torch.nn.functional.cross_entropy``. Targets: ours / torch <= 0.5
  forward, <= 0.3 forward + backward.
* ``linear_cross_entropy`` forward + backward (gradients of the hidden states
  and of the projection) at N × D × V = 4096 × 1024 × 32000: ours against
  ``torch.nn.functional.linear_cross_entropy`` with its default options
  (``options=None``, which materialises the N × V logits); torch's chunked path
  (``options=LinearCrossEntropyOptions()``) is timed too, for information, in
  one call (it is slow).
  Target: ours / torch <= 0.6 with lower peak memory.

Peak memory of one linear_cross_entropy forward + backward is measured for
each implementation in a fresh Python process, after a call at a tiny shape
has loaded the libraries and the inputs exist: the kernel's peak resident set
size mark is reset (``/proc/self/clear_refs``), and the peak growth is
``VmHWM`` after the call minus ``VmRSS`` before it (``/proc/self/status``;
where the mark cannot be reset, ``ru_maxrss`` is used and the table says so).
It counts everything the call holds at its peak (logits, gradients,
workspace, allocator caches), not one allocator's bookkeeping.

Each row also reports how far ours is from torch's loss (``|Δ|``, absolute),
so a fast wrong answer shows. Prints a Markdown table and writes
``benchmarks/results/torch_dropin.md``.

    python benchmarks/torch_dropin.py             # best of 5 (3 for linear_cross_entropy)
    python benchmarks/torch_dropin.py --repeat 3
    python benchmarks/torch_dropin.py --quick     # small shapes, a smoke test; writes torch_dropin_quick.md
"""

from __future__ import annotations

import os

THREADS = "2"
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CROSSENTROPY_NUM_THREADS"):
    os.environ[_variable] = THREADS  # before numpy, torch or the kernels start their thread pools

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

import crossentropy.torch as cet  # noqa: E402

torch.set_num_threads(int(THREADS))
F = torch.nn.functional
HERE = Path(__file__).resolve().parent
CE_SHAPES = [(4096, 32000), (8192, 32000)]
LCE_SHAPE = (4096, 1024, 32000)
QUICK_CE_SHAPES = [(512, 8000)]
QUICK_LCE_SHAPE = (512, 256, 8000)
TARGETS = {"forward": 0.5, "forward+backward": 0.3, "linear forward+backward": 0.6}


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time of ``repeat`` calls in ms, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def ce_inputs(n: int, v: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, v, generator=g), torch.randint(0, v, (n,), generator=g)


def lce_inputs(n: int, d: int, v: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(n, d, generator=g) / d**0.25
    weight = torch.randn(v, d, generator=g) / d**0.25
    return hidden, weight, torch.randint(0, v, (n,), generator=g)


def forward_backward(loss_fn: Callable[..., torch.Tensor], *leaves: torch.Tensor, rest: tuple[Any, ...]) -> Any:
    """A call that runs ``loss_fn(*leaves, *rest)`` and its backward into fresh ``.grad`` buffers."""

    def call() -> float:
        for leaf in leaves:
            leaf.grad = None
        loss = loss_fn(*leaves, *rest)
        loss.backward()
        return float(loss.detach())

    return call


def ce_call(fn: Callable[..., torch.Tensor], logits: torch.Tensor, target: torch.Tensor, mode: str) -> Any:
    """The timed call: the loss of logits without grad, or forward + backward into a copy's ``.grad``."""
    if mode == "forward":
        return lambda: float(fn(logits, target))
    return forward_backward(fn, logits.clone().requires_grad_(), rest=(target,))


def implementations() -> dict[str, dict[str, Callable[..., torch.Tensor]]]:
    lce_chunked = torch.nn.LinearCrossEntropyOptions()
    return {
        "cross_entropy": {"ours": cet.cross_entropy, "torch": F.cross_entropy},
        "linear_cross_entropy": {
            "ours": cet.linear_cross_entropy,
            "torch": F.linear_cross_entropy,
            "torch, chunked options": lambda h, w, t: F.linear_cross_entropy(h, w, t, options=lce_chunked),
        },
    }


def time_case(fn: Callable[[], Any], repeat: int) -> tuple[float | None, Any, str]:
    """(ms, loss value, error text); ms is None where the implementation raised."""
    try:
        value = fn()
        return best_of(fn, repeat), value, ""
    except Exception as exc:
        return None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmHWM``) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux >= 4.0); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_memory(which: str, n: int, d: int, v: int) -> dict[str, Any]:
    """In this (fresh) process: the peak RSS growth of one linear_cross_entropy forward + backward.

    A call at a tiny shape first loads the libraries and starts the thread
    pools, whose memory would otherwise count as the call's. The peak-RSS mark
    is then reset, so what imports and set-up touched does not count either.
    """
    fn = implementations()["linear_cross_entropy"][which]
    try:
        small = lce_inputs(64, 16, 128)
        forward_backward(fn, small[0].requires_grad_(), small[1].requires_grad_(), rest=(small[2],))()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    hidden, weight, target = lce_inputs(n, d, v)
    hidden.requires_grad_()
    weight.requires_grad_()
    gc.collect()
    reset = _reset_peak()
    before = _status_bytes("VmRSS")
    try:
        forward_backward(fn, hidden, weight, rest=(target,))()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    peak = _status_bytes("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "peak_growth_mb": max(0, peak - before) / 2**20,
        "inputs_mb": (hidden.nbytes + weight.nbytes) / 2**20,
        "method": "VmHWM after clear_refs" if reset else "ru_maxrss",
    }


def memory_in_subprocess(which: str, shape: tuple[int, int, int]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--memory-probe", which, *map(str, shape)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}" if ours is not None and theirs else "—"


def _ms(value: float | None, error: str) -> str:
    return f"{value:.1f}" if value is not None else f"error ({error})"


def run(quick: bool, repeat: int, lce_repeat: int) -> list[str]:
    impls = implementations()
    rows = []
    for n, v in QUICK_CE_SHAPES if quick else CE_SHAPES:
        logits, target = ce_inputs(n, v)
        for mode in ("forward", "forward+backward"):
            results = {}
            for name, fn in impls["cross_entropy"].items():
                results[name] = time_case(ce_call(fn, logits, target, mode), repeat)
                gc.collect()
            rows.append((f"cross_entropy {mode}", f"{n} × {v}", mode, results))
        del logits, target
        gc.collect()
    n, d, v = QUICK_LCE_SHAPE if quick else LCE_SHAPE
    hidden, weight, target = lce_inputs(n, d, v)
    results = {}
    for name, fn in impls["linear_cross_entropy"].items():
        leaves = (hidden.clone().requires_grad_(), weight.clone().requires_grad_())
        # torch's chunked path is for information and slow: one timed call after the warm-up
        times = lce_repeat if name in ("ours", "torch") else 1
        results[name] = time_case(forward_backward(fn, *leaves, rest=(target,)), times)
        gc.collect()
    rows.append(("linear_cross_entropy forward+backward", f"{n} × {d} × {v}", "linear forward+backward", results))
    del hidden, weight, target
    gc.collect()

    out = [
        "| case | shape | torch ms | ours ms | ours / torch | target | met | \\|Δ loss\\| |",
        "|---|---|---:|---:|---:|---:|:---:|---:|",
    ]
    extra = []
    for label, shape, kind, results in rows:
        ours_ms, ours_value, ours_error = results["ours"]
        torch_ms, torch_value, torch_error = results["torch"]
        ratio = _ratio(ours_ms, torch_ms)
        target_ratio = TARGETS[kind]
        met = "yes" if ratio != "—" and float(ratio) <= target_ratio else "no"
        delta = f"{abs(ours_value - torch_value):.2e}" if ours_value is not None and torch_value is not None else "—"
        out.append(
            f"| {label} | {shape} | {_ms(torch_ms, torch_error)} | {_ms(ours_ms, ours_error)} | {ratio} "
            f"| ≤ {target_ratio} | {met} | {delta} |"
        )
        for name, (ms, _, error) in results.items():
            if name not in ("ours", "torch"):
                extra.append(f"| {label} ({name}) | {shape} | {_ms(ms, error)} | {_ratio(results['ours'][0], ms)} |")
    if extra:
        out += [
            "",
            "Other references (one timed call):",
            "",
            "| case | shape | ms | ours / it |",
            "|---|---|---:|---:|",
        ]
        out += extra

    shape = QUICK_LCE_SHAPE if quick else LCE_SHAPE
    memory = {name: memory_in_subprocess(name, shape) for name in impls["linear_cross_entropy"]}
    out += [
        "",
        f"Peak memory of one linear_cross_entropy forward + backward, N × D × V = {' × '.join(map(str, shape))} "
        "(fresh process each; growth of the peak RSS over the RSS before the call, "
        f"by {memory['torch'].get('method', '?')}; the inputs, "
        f"{memory['torch'].get('inputs_mb', 0):.0f} MB, already exist):",
        "",
        "| implementation | peak growth MB | ours / it |",
        "|---|---:|---:|",
    ]
    ours_peak = memory["ours"].get("peak_growth_mb")
    for name, result in memory.items():
        if "error" in result:
            out.append(f"| {name} | error ({result['error'][:80]}) | — |")
            continue
        peak = result["peak_growth_mb"]
        out.append(f"| {name} | {peak:.0f} | {_ratio(ours_peak, peak) if name != 'ours' else '—'} |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes (a smoke test), best of 3")
    parser.add_argument("--repeat", type=int, default=None, help="best of N for cross_entropy (default 5, 3 quick)")
    parser.add_argument("--memory-probe", nargs=4, metavar=("IMPL", "N", "D", "V"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        which, *dims = args.memory_probe
        print(json.dumps(measure_memory(which, *map(int, dims))))
        return 0
    repeat = args.repeat or (3 if args.quick else 5)
    lce_repeat = min(repeat, 3)
    header = [
        "# crossentropy.torch against torch.nn.functional (CPU)",
        "",
        f"Best of {repeat} ({lce_repeat} for linear_cross_entropy) after a warm-up call, float32, "
        f"{platform.machine()} ({os.cpu_count()} cores, {_cpu_model()}), {THREADS} threads, torch {torch.__version__}. "
        "Generated by `benchmarks/torch_dropin.py`"
        + (" --quick (small shapes: not the acceptance sizes)." if args.quick else "."),
        "",
    ]
    load_before = os.getloadavg()[0]
    lines = header + run(args.quick, repeat, lce_repeat)
    lines += [
        "",
        f"Load average (1 min) of the machine: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
        f"(on {os.cpu_count()} cores; above that, other processes shared the cores and every time is inflated).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    target = HERE / "results" / ("torch_dropin_quick.md" if args.quick else "torch_dropin.md")
    target.parent.mkdir(exist_ok=True)
    target.write_text(text)
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    raise SystemExit(main())
