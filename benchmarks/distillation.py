"""The distillation losses against the composites people write, on the CPU, in one run (issue 28 acceptance).

* ``distillation_loss`` forward + backward (the gradient of the student's
  logits) at N × V = 4096 × 32000, float32, for each divergence, against:
  ``"forward_kl"``: ``log_softmax`` of both logits and
  ``F.kl_div(log_target=True, reduction="batchmean")``; ``"reverse_kl"``: the
  same with the arguments swapped; ``"jsd"``: TRL's
  ``GKDTrainer.generalized_jsd_loss`` (beta 0.5; the same composite written out
  where TRL is not installed). Targets: ours / composite <= 0.4, and ours
  within 2.5 times the read + write floor of both inputs (copying the student's
  and the teacher's logits once with all threads,
  ``crossentropy._kernels.copy_floor``), measured in the same run.
* The same calls on one thread (the kernels' and torch's), timed in process CPU time
  against the floor on one thread: robust to the load of other processes.
* ``linear_distillation_loss`` forward + backward (the gradients of the
  student's hidden states and LM head) at N × D × V = 4096 × 1024 × 128256
  against the naive path (both models' logits materialised, then the
  composite forward KL), each in a fresh process: one timed call after a
  warm-up at a tiny shape, and the peak memory it adds (growth of the peak
  resident set, ``VmHWM`` after ``/proc/self/clear_refs``, over the resident set
  before the call; the inputs already exist). Targets: peak <= 0.3x the naive
  path's, time <= 1.0x. The naive path needs about 13 GB: check the free memory
  first (``--linear-shape`` runs a smaller case).
* On a CUDA GPU (when one is present): ``linear_distillation_loss`` (the JSD,
  beta 0.5, bfloat16) against Liger-Kernel's ``LigerFusedLinearJSDLoss`` (its
  soft loss: ``weight_hard_loss=0``) at N × D × V = 8192 × 2048 × 128256, forward
  + backward, CUDA events, best of N, and the peak memory each adds. Without a
  GPU the results say so.

Times are best of N after a warm-up call (one call for the linear case), with
2 threads (torch's intra-op pool and crossentropy's kernels). Each row also
reports ``|Δ loss|`` against the composite, so a fast wrong answer shows.
Writes ``benchmarks/results/distillation.md`` (``distillation_quick.md`` with
``--quick``).

    python benchmarks/distillation.py             # best of 5
    python benchmarks/distillation.py --quick     # small shapes, a smoke test
    python benchmarks/distillation.py --linear-shape 1024 1024 32000
"""

from __future__ import annotations

import os

THREADS = "2"
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CROSSENTROPY_NUM_THREADS"):
    os.environ[_variable] = THREADS  # before numpy, torch or the kernels start their thread pools
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch_dropin import _cpu_model, _reset_peak, _status_bytes  # noqa: E402  (this directory's script)

from crossentropy import _kernels  # noqa: E402
from crossentropy.torch import distillation_loss, linear_distillation_loss  # noqa: E402

torch.set_num_threads(int(THREADS))
F = torch.nn.functional
HERE = Path(__file__).resolve().parent
SHAPE, QUICK_SHAPE = (4096, 32000), (512, 8000)
LINEAR_SHAPE, QUICK_LINEAR_SHAPE = (4096, 1024, 128256), (512, 256, 16000)
DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")
TARGET_RATIO, TARGET_FLOOR = 0.4, 2.5
TARGET_PEAK, TARGET_LINEAR_TIME = 0.3, 1.0


def _trl() -> Callable[..., torch.Tensor] | None:
    # this script's directory comes first on sys.path, and its transformers.py (a benchmark) would hide the package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from trl.experimental.gkd.gkd_trainer import GKDTrainer
    except ImportError:
        return None
    return GKDTrainer.generalized_jsd_loss  # type: ignore[no-any-return]


def composite(divergence: str, trl: Callable[..., torch.Tensor] | None) -> tuple[str, Callable[..., torch.Tensor]]:
    """The usual torch code for the divergence (mean over the rows), and its name."""

    def kl(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        log_s, log_t = student.log_softmax(-1), teacher.log_softmax(-1)
        if divergence == "forward_kl":
            return F.kl_div(log_s, log_t, reduction="batchmean", log_target=True)
        return F.kl_div(log_t, log_s, reduction="batchmean", log_target=True)

    def jsd(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        log_s, log_t = student.log_softmax(-1), teacher.log_softmax(-1)
        log_m = torch.logsumexp(torch.stack([log_s, log_t]), 0) - math.log(2.0)
        return 0.5 * (
            F.kl_div(log_m, log_t, reduction="batchmean", log_target=True)
            + F.kl_div(log_m, log_s, reduction="batchmean", log_target=True)
        )

    if divergence != "jsd":
        return "log_softmax × 2 + kl_div", kl
    if trl is not None:
        return "TRL generalized_jsd_loss", lambda s, t: trl(s, t, beta=0.5)
    return "log_softmax × 2 + logsumexp + kl_div × 2 (TRL not installed)", jsd


def best_of(fn: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Least time by ``clock`` (wall time; ``time.process_time``: CPU time of all threads) of ``repeat`` calls in
    ms, after one warm-up call."""
    fn()
    best = math.inf
    for _ in range(repeat):
        gc.collect()
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best * 1e3


def forward_backward(loss_fn: Callable[..., torch.Tensor], student: torch.Tensor, *rest: Any) -> Callable[[], float]:
    leaf = student.clone().requires_grad_()

    def call() -> float:
        leaf.grad = None
        loss = loss_fn(leaf, *rest)
        loss.backward()
        return float(loss.detach())

    return call


def logits(n: int, v: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, v, generator=g) * 2, torch.randn(n, v, generator=g) * 2


def run_logits(shape: tuple[int, int], repeat: int) -> list[str]:
    n, v = shape
    student, teacher = logits(n, v)
    copy = np.empty(n * v, np.float32)
    floor = best_of(
        lambda: (_kernels.copy_floor(student.numpy(), copy), _kernels.copy_floor(teacher.numpy(), copy)), repeat
    )
    trl = _trl()
    out = [
        f"Read + write floor of both inputs ({n} × {v} float32 each, copied once with {THREADS} threads): "
        f"{floor:.1f} ms.",
        "",
        "| divergence | composite | composite ms | ours ms | ours / composite | target | ours / floor | target | met "
        "| \\|Δ loss\\| |",
        "|---|---|---:|---:|---:|---:|---:|---:|:---:|---:|",
    ]
    for divergence in DIVERGENCES:
        name, reference = composite(divergence, trl)
        ours_call = forward_backward(
            lambda s, t, divergence=divergence: distillation_loss(s, t, divergence=divergence), student, teacher
        )
        theirs_call = forward_backward(reference, student, teacher)
        ours_value, theirs_value = ours_call(), theirs_call()
        ours_ms = best_of(ours_call, repeat)
        theirs_ms = best_of(theirs_call, max(1, repeat // 2))
        ratio, to_floor = ours_ms / theirs_ms, ours_ms / floor
        met = "yes" if ratio <= TARGET_RATIO and to_floor <= TARGET_FLOOR else "no"
        out.append(
            f"| {divergence} | {name} | {theirs_ms:.0f} | {ours_ms:.0f} | {ratio:.2f} | ≤ {TARGET_RATIO} "
            f"| {to_floor:.2f} | ≤ {TARGET_FLOOR} | {met} | {abs(ours_value - theirs_value):.1e} |"
        )
        gc.collect()
    return out


def run_one_thread(shape: tuple[int, int], repeat: int) -> list[str]:
    """The same calls on one thread (the kernels' and torch's), timed in CPU time: what the work costs, whatever
    other processes do to the wall clock (their load still shares the caches and the memory bus)."""
    n, v = shape
    student, teacher = logits(n, v)
    copy = np.empty(n * v, np.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    os.environ["CROSSENTROPY_NUM_THREADS"] = "1"  # read by the kernels at each call
    try:
        floor = best_of(
            lambda: (_kernels.copy_floor(student.numpy(), copy), _kernels.copy_floor(teacher.numpy(), copy)),
            repeat,
            time.process_time,
        )
        times = {}
        for divergence in DIVERGENCES:
            call = forward_backward(
                lambda s, t, divergence=divergence: distillation_loss(s, t, divergence=divergence), student, teacher
            )
            times[divergence] = best_of(call, repeat, time.process_time)
            gc.collect()
    finally:
        torch.set_num_threads(threads)
        os.environ["CROSSENTROPY_NUM_THREADS"] = THREADS
    out = [
        f"The same forward + backward on one thread, process CPU time (best of {repeat}; robust to the load of "
        f"other processes, unlike the wall times above): the floor (both inputs copied once) {floor:.1f} ms.",
        "",
        "| divergence | ours CPU ms, 1 thread | ours / floor |",
        "|---|---:|---:|",
    ]
    out += [f"| {d} | {ms:.0f} | {ms / floor:.2f} |" for d, ms in times.items()]
    return out


# --- linear + distillation, each implementation in a fresh process -------------------------------------------


def linear_inputs(n: int, d: int, v: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    scale = d**-0.25
    return tuple(torch.randn(*shape, generator=g) * scale for shape in ((n, d), (v, d), (n, d), (v, d)))


def naive_linear(h_s: torch.Tensor, w_s: torch.Tensor, h_t: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
    """Both models' logits, then the composite forward KL (what a training script writes)."""
    student = h_s @ w_s.T
    with torch.no_grad():
        teacher = h_t @ w_t.T
    return F.kl_div(student.log_softmax(-1), teacher.log_softmax(-1), reduction="batchmean", log_target=True)


LINEAR = {"ours": linear_distillation_loss, "naive": naive_linear}


def linear_probe(which: str, n: int, d: int, v: int) -> dict[str, Any]:
    """In this (fresh) process: one forward + backward, its time and the peak memory it adds."""
    fn = LINEAR[which]

    def step(inputs: tuple[torch.Tensor, ...]) -> float:
        h_s, w_s = (x.requires_grad_() for x in inputs[:2])
        loss = fn(h_s, w_s, *inputs[2:])
        loss.backward()
        return float(loss.detach())

    step(linear_inputs(64, 16, 128))  # loads the libraries and starts the thread pools
    inputs = linear_inputs(n, d, v)
    gc.collect()
    reset = _reset_peak()
    before = _status_bytes("VmRSS")
    start = time.perf_counter()
    value = step(inputs)
    elapsed = time.perf_counter() - start
    peak = _status_bytes("VmHWM") if reset else 0
    return {
        "ms": elapsed * 1e3,
        "loss": value,
        "peak_growth_mb": max(0, peak - before) / 2**20 if reset else None,
        "inputs_mb": sum(x.nbytes for x in inputs) / 2**20,
    }


def linear_in_subprocess(which: str, shape: tuple[int, int, int]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--linear-probe", which, *map(str, shape)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_linear(shape: tuple[int, int, int]) -> list[str]:
    results = {which: linear_in_subprocess(which, shape) for which in LINEAR}
    ours, naive = results["ours"], results["naive"]
    shown = " × ".join(map(str, shape))
    out = [
        f"linear_distillation_loss against the naive path at N × D × V = {shown} (forward KL, float32, forward + "
        f"backward; one call each in a fresh process; the inputs, {ours.get('inputs_mb', 0):.0f} MB, already exist):",
        "",
        "| implementation | ms | peak growth MB | loss |",
        "|---|---:|---:|---:|",
    ]
    for which, result in results.items():
        if "error" in result:
            out.append(f"| {which} | error ({result['error'][:90]}) | — | — |")
        else:
            peak = result["peak_growth_mb"]
            out.append(
                f"| {which} | {result['ms']:.0f} | {'—' if peak is None else f'{peak:.0f}'} | {result['loss']:.6f} |"
            )
    if "error" not in ours and "error" not in naive and ours["peak_growth_mb"] and naive["peak_growth_mb"]:
        peak_ratio, time_ratio = ours["peak_growth_mb"] / naive["peak_growth_mb"], ours["ms"] / naive["ms"]
        out += [
            "",
            f"Ours / naive: peak memory {peak_ratio:.2f} (target ≤ {TARGET_PEAK}: "
            f"{'met' if peak_ratio <= TARGET_PEAK else 'not met'}), time {time_ratio:.2f} (target ≤ "
            f"{TARGET_LINEAR_TIME}: {'met' if time_ratio <= TARGET_LINEAR_TIME else 'not met'}); "
            f"|Δ loss| {abs(ours['loss'] - naive['loss']):.1e}.",
        ]
    return out


def run_gpu(repeat: int, quick: bool) -> list[str]:
    """linear_distillation_loss against Liger's LigerFusedLinearJSDLoss on the GPU (bfloat16), or why not."""
    if not torch.cuda.is_available():
        return [
            "GPU: no CUDA GPU on this machine, so `linear_distillation_loss` was not compared with Liger-Kernel's "
            "`LigerFusedLinearJSD` (Triton, CUDA only); the Triton kernels are tested in Triton's interpreter."
        ]
    try:
        from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss
    except ImportError:
        return ["GPU: Liger-Kernel is not installed: no comparison."]
    n, d, v = (1024, 512, 32000) if quick else (8192, 2048, 128256)
    g = torch.Generator(device="cuda").manual_seed(0)
    scale = d**-0.25
    h_s, w_s, h_t, w_t = (
        (torch.randn(*shape, generator=g, device="cuda") * scale).to(torch.bfloat16)
        for shape in ((n, d), (v, d), (n, d), (v, d))
    )
    liger = LigerFusedLinearJSDLoss(weight_hard_loss=0.0, weight_soft_loss=1.0, beta=0.5)
    labels = torch.zeros(n, dtype=torch.long, device="cuda")
    calls = {
        "ours": lambda a, b: linear_distillation_loss(a, b, h_t, w_t, divergence="jsd", beta=0.5),
        "Liger LigerFusedLinearJSDLoss": lambda a, b: liger(a, b, h_t, w_t, labels),
    }
    out = [
        f"GPU ({torch.cuda.get_device_name()}), N × D × V = {n} × {d} × {v}, bfloat16, JSD (beta 0.5), forward + "
        f"backward, best of {repeat}:",
        "",
        "| implementation | ms | peak GiB | loss |",
        "|---|---:|---:|---:|",
    ]
    for name, fn in calls.items():
        a, b = h_s.clone().requires_grad_(), w_s.clone().requires_grad_()

        def step(fn: Callable[..., torch.Tensor] = fn, a: torch.Tensor = a, b: torch.Tensor = b) -> float:
            a.grad = b.grad = None
            loss = fn(a, b)
            loss.backward()
            return float(loss.detach())

        value = step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        best = math.inf
        for _ in range(repeat):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            best = min(best, start.elapsed_time(end))
        peak = (torch.cuda.max_memory_allocated() - base) / 2**30
        out.append(f"| {name} | {best:.1f} | {peak:.2f} | {value:.6f} |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes (a smoke test), best of 3")
    parser.add_argument("--repeat", type=int, default=None, help="best of N (default 5, 3 with --quick)")
    parser.add_argument("--linear-shape", nargs=3, type=int, metavar=("N", "D", "V"), help="the linear case's shape")
    parser.add_argument("--linear-probe", nargs=4, metavar=("IMPL", "N", "D", "V"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.linear_probe:
        which, *dims = args.linear_probe
        print(json.dumps(linear_probe(which, *map(int, dims))))
        return 0
    repeat = args.repeat or (3 if args.quick else 5)
    shape = QUICK_SHAPE if args.quick else SHAPE
    linear_shape = (
        tuple(args.linear_shape) if args.linear_shape else (QUICK_LINEAR_SHAPE if args.quick else LINEAR_SHAPE)
    )
    load_before = os.getloadavg()[0]
    lines = [
        "# Distillation losses against the composites (CPU)",
        "",
        f"Best of {repeat} after a warm-up call, float32, {platform.machine()} ({os.cpu_count()} cores, "
        f"{_cpu_model()}), {THREADS} threads, torch {torch.__version__}, load average (1 min) {load_before:.1f} at the "
        "start. Generated by `benchmarks/distillation.py`"
        + (" --quick (small shapes: not the acceptance sizes)." if args.quick else "."),
        "",
        f"`distillation_loss` forward + backward, N × V = {shape[0]} × {shape[1]}, mean over the rows:",
        "",
    ]
    lines += run_logits(shape, repeat)
    lines += ["", *run_one_thread(shape, repeat)]
    lines += ["", *run_linear(linear_shape)]  # type: ignore[arg-type]
    lines += ["", *run_gpu(repeat, args.quick)]
    lines += [
        "",
        f"Load average (1 min) of the machine: {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end "
        f"(on {os.cpu_count()} cores; above that, other processes shared the cores and every time is inflated).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    target = HERE / "results" / ("distillation_quick.md" if args.quick else "distillation.md")
    target.parent.mkdir(exist_ok=True)
    target.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
