"""crossentropy.torch against torch.nn.functional on the CPU, in one run (issue 16 speed acceptance).

Times, best of N after one warm-up call, on the CPU with 2 threads (torch's
intra-op pool, OpenMP and crossentropy's kernels; ``--threads`` changes it):

* ``cross_entropy`` forward (logits without grad) and forward + backward
  (``loss.backward()`` into the logits' ``.grad``) at N × V = 4096 × 32000 and
  8192 × 32000, class-index targets, mean reduction: ``crossentropy.torch``
  against ``torch.nn.functional.cross_entropy``. Targets: ours / torch <= 0.5
  forward, <= 0.3 forward + backward in float32; in bfloat16 (issue 26) never
  slower than 1.1 × torch.
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
so a fast wrong answer shows.

Small shapes (issue 26): the drop-in as a user calls it (the dispatcher
decides between PyTorch's own kernel and the fused one) against
``torch.nn.functional`` at 8 × 5, 64 × 10, 32 × 1000, 256 × 1000 and
32 × 32000 (and ``linear_cross_entropy`` at comparable sizes), float32 and
bfloat16, forward and forward + backward. Each time is the median over many
rounds of a batch of calls, ours and torch's batches interleaved, so that a
burst of load hits both; the table gives the ratio and which kernel ran.
Target: no shape slower than 1.1 × torch.

``--crossover`` measures what the dispatcher's ``CROSSOVER`` table
(``src/crossentropy/_dispatch_dropin.py``) holds: the fused kernel (forced)
against PyTorch's own over a grid of N × V, per operation, dtype and with or
without a gradient, the best of the interleaved rounds per cell, and for each
vocabulary the fewest logits from which the fused kernel is faster at that
size and every larger one; it writes
``benchmarks/results/torch_dropin_crossover.md``.

Prints Markdown tables with the load average at the start and the end, and
writes ``benchmarks/results/torch_dropin.md``.

    python benchmarks/torch_dropin.py             # best of 5 (3 for linear_cross_entropy)
    python benchmarks/torch_dropin.py --repeat 3
    python benchmarks/torch_dropin.py --quick     # small shapes, a smoke test; writes torch_dropin_quick.md
    python benchmarks/torch_dropin.py --crossover # the dispatcher's crossover sweep
"""

from __future__ import annotations

import os
import sys

# --threads N (default 2) must reach the environment before numpy, torch or the kernels start their pools
THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv[:-1] else "2"
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CROSSENTROPY_NUM_THREADS"):
    os.environ[_variable] = THREADS  # before numpy, torch or the kernels start their thread pools

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

import crossentropy.torch as cet  # noqa: E402
from crossentropy import _dispatch  # noqa: E402

torch.set_num_threads(int(THREADS))
F = torch.nn.functional
HERE = Path(__file__).resolve().parent
CE_SHAPES = [(4096, 32000), (8192, 32000)]
LCE_SHAPE = (4096, 1024, 32000)
QUICK_CE_SHAPES = [(512, 8000)]
QUICK_LCE_SHAPE = (512, 256, 8000)
TARGETS = {"forward": 0.5, "forward+backward": 0.3, "linear forward+backward": 0.6, "never slower": 1.1}
SMALL_CE_SHAPES = [(8, 5), (64, 10), (32, 1000), (256, 1000), (32, 32000)]
SMALL_LCE_SHAPES = [(8, 16, 5), (64, 32, 10), (256, 64, 1000), (32, 256, 32000)]
SMALL_TARGET = 1.1
SMALL_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
CROSSOVER_VOCABULARIES = (10, 32, 100, 1000, 8000, 32000)
CROSSOVER_SIZES = {
    "cross_entropy": tuple(2**k for k in range(10, 26, 2)),
    "linear_cross_entropy": tuple(2**k for k in range(10, 24, 2)),
}
CROSSOVER_FEATURES = 64


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


def _batch_seconds(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def interleaved(
    fns: dict[str, Callable[[], Any]],
    rounds: int,
    budget: float = 0.001,
    statistic: Callable[..., float] = statistics.median,
) -> dict[str, float]:
    """Seconds per call of each function over ``rounds`` rounds (their median; ``statistic=min``: the best),
    each function's batch within a round sized to take about ``budget`` seconds (at least one call).

    Short batches of equal length, alternating, see the same machine: on a shared one, a batch shorter than
    the scheduler's time slice usually runs whole, and a burst of load hits both functions alike.
    """
    calls = {}
    for name, fn in fns.items():
        fn()
        calls[name] = max(1, int(budget / max(_batch_seconds(fn, 3), 1e-7)))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(_batch_seconds(fn, calls[name]))
    return {name: statistic(values) for name, values in times.items()}


def _small_call(api: str, fn: Callable[..., torch.Tensor], shape: tuple[int, ...], dtype: Any, grad: bool) -> Any:
    """A call of ``fn`` at ``shape`` (logits N x V, or N x D x V for linear_cross_entropy), with a backward."""
    g = torch.Generator().manual_seed(0)
    if api == "cross_entropy":
        n, v = shape
        x = torch.randn(n, v, generator=g).to(dtype).requires_grad_(grad)
        leaves, rest = (x,), (torch.randint(0, v, (n,), generator=g),)
    else:
        n, d, v = shape
        h, w = torch.randn(n, d, generator=g).to(dtype), torch.randn(v, d, generator=g).to(dtype)
        leaves, rest = (h.requires_grad_(grad), w.requires_grad_(grad)), (torch.randint(0, v, (n,), generator=g),)
    if grad:
        return forward_backward(fn, *leaves, rest=rest)
    return lambda: fn(*leaves, *rest)


def _which(api: str, shape: tuple[int, ...], dtype: Any, grad: bool) -> str:
    """The kernel the dispatcher runs for this call: PyTorch's own or the fused one."""
    from crossentropy import _dispatch_dropin

    x = torch.empty(shape[0], shape[1]).to(dtype).requires_grad_(grad)
    t = torch.zeros(shape[0], dtype=torch.long)
    if api == "cross_entropy":
        backend = _dispatch_dropin.cross_entropy_backend(x, t, None, -100, "mean", 0.0)
    else:
        w = torch.empty(shape[2], shape[1]).to(dtype)
        backend = _dispatch_dropin.linear_cross_entropy_backend(x, w, t, None, None, "mean", None, 0.0)
    return "PyTorch's" if backend == _dispatch.REFERENCE else "fused"


def small_table(rounds: int, threads: str) -> list[str]:
    """The drop-in (as users call it) against torch at small shapes: medians of interleaved batches, on
    ``threads`` threads (torch's pool and the kernels'; put back afterwards)."""
    before = torch.get_num_threads(), os.environ["CROSSENTROPY_NUM_THREADS"]
    torch.set_num_threads(int(threads))
    os.environ["CROSSENTROPY_NUM_THREADS"] = threads  # read by the kernels at each call
    try:
        return _small_rows(rounds)
    finally:
        torch.set_num_threads(before[0])
        os.environ["CROSSENTROPY_NUM_THREADS"] = before[1]


def _small_rows(rounds: int) -> list[str]:
    out = [
        "| case | shape | dtype | torch µs | ours µs | ours / torch | kernel run | ≤ 1.1 |",
        "|---|---|---|---:|---:|---:|---|:---:|",
    ]
    for api, shapes in (("cross_entropy", SMALL_CE_SHAPES), ("linear_cross_entropy", SMALL_LCE_SHAPES)):
        ours_fn, torch_fn = implementations()[api]["ours"], implementations()[api]["torch"]
        for shape in shapes:
            for dtype_name, dtype in SMALL_DTYPES.items():
                for grad in (False, True):
                    calls = {
                        "torch": _small_call(api, torch_fn, shape, dtype, grad),
                        "ours": _small_call(api, ours_fn, shape, dtype, grad),
                    }
                    med = interleaved(calls, rounds)
                    ratio = med["ours"] / med["torch"]
                    mode = "forward+backward" if grad else "forward"
                    out.append(
                        f"| {api} {mode} | {' × '.join(map(str, shape))} | {dtype_name} | {med['torch'] * 1e6:.1f} "
                        f"| {med['ours'] * 1e6:.1f} | {ratio:.2f} | {_which(api, shape, dtype, grad)} "
                        f"| {'yes' if ratio <= SMALL_TARGET else 'no'} |"
                    )
                    print(out[-1], flush=True)
                    gc.collect()
    return out


def crossover_table(rounds: int) -> list[str]:
    """The fused kernel (forced) against PyTorch's own over a grid of shapes: ratios and the crossover."""
    out = []
    found: dict[tuple[str, str, bool, int], int | None] = {}
    for api in ("cross_entropy", "linear_cross_entropy"):
        ours_fn, torch_fn = implementations()[api]["ours"], implementations()[api]["torch"]
        for dtype_name, dtype in SMALL_DTYPES.items():
            for grad in (False, True):
                mode = "forward+backward" if grad else "forward"
                out += ["", f"{api} {mode}, {dtype_name}: fused / torch (best of interleaved batches)", ""]
                sizes = CROSSOVER_SIZES[api]
                out += ["| V \\ N × V | " + " | ".join(f"2^{size.bit_length() - 1}" for size in sizes) + " |"]
                out += ["|---|" + "---:|" * len(sizes)]
                wins: dict[tuple[int, int], bool] = {}
                for v in CROSSOVER_VOCABULARIES:
                    cells = []
                    for size in sizes:
                        n = max(1, size // v)
                        shape = (n, v) if api == "cross_entropy" else (n, CROSSOVER_FEATURES, v)
                        theirs = _small_call(api, torch_fn, shape, dtype, grad)
                        mine = _small_call(api, ours_fn, shape, dtype, grad)

                        def forced(mine: Any = mine) -> Any:
                            with _dispatch.use(_dispatch.CPU):
                                return mine()

                        best = interleaved({"torch": theirs, "ours": forced}, rounds, statistic=min)
                        ratio = best["ours"] / best["torch"]
                        wins[v, size] = ratio <= 1.0
                        cells.append(f"{ratio:.2f}")
                        gc.collect()
                    out.append(f"| {v} | " + " | ".join(cells) + " |")
                    print(out[-1], flush=True)
                op = "sparse" if api == "cross_entropy" else "linear"
                for v in CROSSOVER_VOCABULARIES:
                    beaten = [size for size in sizes if all(wins[v, s] for s in sizes if s >= size)]
                    found[op, dtype_name, grad, v] = min(beaten) if beaten else None
                crossovers = ", ".join(
                    f"V = {v}: {_power(found[op, dtype_name, grad, v])}" for v in CROSSOVER_VOCABULARIES
                )
                out += ["", f"the fused kernel is faster from (logits): {crossovers}"]
    summary = [
        "The smallest number of logits (N × V) from which the fused kernel is faster at that size and every "
        "larger one of the grid ('—': at none):",
        "",
        "| operation | dtype | gradient | " + " | ".join(f"V = {v}" for v in CROSSOVER_VOCABULARIES) + " |",
        "|---|---|---|" + "---:|" * len(CROSSOVER_VOCABULARIES),
    ]
    for op in ("sparse", "linear"):
        for dtype_name in SMALL_DTYPES:
            for grad in (False, True):
                cells = " | ".join(_power(found[op, dtype_name, grad, v]) for v in CROSSOVER_VOCABULARIES)
                summary.append(f"| {op} | {dtype_name} | {'yes' if grad else 'no'} | {cells} |")
    return summary + out


def _power(value: int | None) -> str:
    return "—" if value is None else f"2^{value.bit_length() - 1}"


def run(quick: bool, repeat: int, lce_repeat: int) -> list[str]:
    impls = implementations()
    rows = []
    for dtype_name, dtype in SMALL_DTYPES.items():
        for n, v in QUICK_CE_SHAPES if quick else CE_SHAPES:
            logits, target = ce_inputs(n, v)
            logits = logits.to(dtype)
            for mode in ("forward", "forward+backward"):
                results = {}
                for name, fn in impls["cross_entropy"].items():
                    results[name] = time_case(ce_call(fn, logits, target, mode), repeat)
                    gc.collect()
                kind = mode if dtype == torch.float32 else "never slower"
                rows.append((f"cross_entropy {mode}, {dtype_name}", f"{n} × {v}", kind, results))
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
    parser.add_argument("--rounds", type=int, default=31, help="rounds of interleaved batches for small shapes")
    parser.add_argument("--crossover", action="store_true", help="measure the dispatcher's crossover (a grid sweep)")
    parser.add_argument("--threads", default="2", help="threads for torch and the kernels (default 2)")
    parser.add_argument(
        "--small-threads",
        default=None,
        help="threads for the small-shape table (default: --threads); 1 keeps the pools' waiting on a loaded "
        "machine out of times that measure the dispatcher's overhead",
    )
    args = parser.parse_args()
    if args.memory_probe:
        which, *dims = args.memory_probe
        print(json.dumps(measure_memory(which, *map(int, dims))))
        return 0
    repeat = args.repeat or (3 if args.quick else 5)
    lce_repeat = min(repeat, 3)
    load_before = os.getloadavg()
    if args.crossover:
        return write_crossover(args.rounds, load_before)
    header = [
        "# crossentropy.torch against torch.nn.functional (CPU)",
        "",
        f"Best of {repeat} ({lce_repeat} for linear_cross_entropy) after a warm-up call, float32, "
        f"{platform.machine()} ({os.cpu_count()} cores, {_cpu_model()}), {THREADS} threads, torch {torch.__version__}. "
        "Generated by `benchmarks/torch_dropin.py`"
        + (" --quick (small shapes: not the acceptance sizes)." if args.quick else "."),
        f"Load average (1, 5, 15 min) at the start: {_load(load_before)} (on {os.cpu_count()} cores; above 2, other "
        "processes shared the cores and every time is inflated).",
        "",
    ]
    small_threads = args.small_threads or THREADS
    small = [
        "",
        f"Small shapes: the drop-in as called (the dispatcher picks PyTorch's kernel or the fused one) against "
        f"torch.nn.functional, median time per call over {args.rounds} rounds of interleaved batches of about "
        f"1 ms, {small_threads} thread(s); target ≤ {SMALL_TARGET} × torch. Load average at the start of this "
        f"table: {_load(os.getloadavg())}.",
        "",
        *small_table(args.rounds, small_threads),
    ]
    lines = header + run(args.quick, repeat, lce_repeat) + small
    lines += ["", f"Load average (1, 5, 15 min) at the end: {_load(os.getloadavg())}."]
    text = "\n".join(lines) + "\n"
    print(text)
    target = HERE / "results" / ("torch_dropin_quick.md" if args.quick else "torch_dropin.md")
    target.parent.mkdir(exist_ok=True)
    target.write_text(text)
    return 0


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def write_crossover(rounds: int, load_before: tuple[float, float, float]) -> int:
    lines = [
        "# Where the fused kernel overtakes PyTorch's own (the dispatcher's CROSSOVER)",
        "",
        f"{platform.machine()} ({os.cpu_count()} cores, {_cpu_model()}), {THREADS} threads, torch {torch.__version__}. "
        f"Generated by `benchmarks/torch_dropin.py --crossover`: ours forced onto the C kernel against "
        f"torch.nn.functional, the best of {rounds} rounds of interleaved batches per cell (the best, not the "
        "median: on a shared machine it is the estimate of each side's own cost that load disturbs least); "
        "linear_cross_entropy "
        f"with D = {CROSSOVER_FEATURES}. The crossover is the fewest logits from which the fused kernel is faster "
        "at that size and every larger one of the grid, for every vocabulary.",
        "",
        f"Load average (1, 5, 15 min) at the start: {_load(load_before)}.",
        "",
        *crossover_table(rounds),
        "",
        f"Load average at the end: {_load(os.getloadavg())}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results" / "torch_dropin_crossover.md").write_text(text)
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    raise SystemExit(main())
