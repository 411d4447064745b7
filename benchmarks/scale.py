"""Beyond one process: scoring on Dask with 1 and 2 workers against the single-process scorer.

1. Generates a partitioned Parquet data set (default 12M rows x 10 classes,
   float64, 24 files of 4 row groups) and times, best of ``--repeat``:
   the single-process streaming scorer (``crossentropy score`` of the
   directory) in a fresh process with one thread (``OMP_NUM_THREADS=1``, which
   pyarrow and the kernels follow), and ``crossentropy.dask.score`` on
   LocalClusters of 1 and 2 single-threaded worker processes (cluster start
   not timed). It records each worker's peak resident memory (``VmHWM``) and
   checks that every engine gives the same mean loss.

(Vocabulary-parallel cross-entropy is measured by ``benchmarks/vocab_parallel.py``.)

Writes benchmarks/results/scale.md (``--quick``: 1.2M rows, scale_quick.md).
Acceptance (issue 19): Dask with 1 worker within 1.3x of one process; 2
workers at least 1.6x faster than 1; peak RSS per worker under 500 MB. The
machine has 2 cores shared with other work: the table says how loaded it was.

    python benchmarks/scale.py [--rows N] [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# this folder holds a script named distributed.py, which would shadow the Dask package of that name
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "CROSSENTROPY_NUM_THREADS": "1"}


def make_dataset(directory: Path, rows: int, parts: int) -> int:
    """Write ``parts`` Parquet files of 4 row groups each; return their total size in bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    per = rows // parts
    for i in range(parts):
        logits = rng.normal(0, 2, (per, 10))
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        table = pa.table({"label": rng.integers(0, 10, per), **{f"p_{j}": p[:, j] for j in range(10)}})
        pq.write_table(table, directory / f"part-{i:03d}.parquet", row_group_size=-(-per // 4))
    return sum(f.stat().st_size for f in directory.iterdir())


SINGLE = """
import json, sys, time
from crossentropy.scoring import score_file
score_file(sys.argv[3], probs=["p_*"])  # warm-up: imports and first-call costs, one file
best, cpu, loss = float("inf"), float("inf"), None
for _ in range(int(sys.argv[2])):
    start, start_cpu = time.perf_counter(), time.process_time()
    loss = score_file(sys.argv[1], probs=["p_*"])["mean_loss"]
    best = min(best, time.perf_counter() - start)
    cpu = min(cpu, time.process_time() - start_cpu)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": best, "cpu": cpu, "loss": loss, "rss_mb": hwm / 1024}))
"""


def time_single(directory: Path, repeat: int) -> dict[str, float]:
    """The single-process streaming scorer, one thread, in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", SINGLE, str(directory), str(repeat), str(sorted(directory.iterdir())[0])],
        env={**os.environ, **ONE_THREAD},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def _peak_rss_mb() -> float:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024


def measure(directory: Path, repeat: int) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    """Best-of-``repeat`` times, the engines interleaved in each round so that load bursts hit all alike."""
    from distributed import Client, LocalCluster

    from crossentropy.dask import score

    single: dict[str, float] = {"seconds": float("inf")}
    dask: dict[int, dict[str, float]] = {w: {"seconds": float("inf")} for w in (1, 2)}
    with contextlib.ExitStack() as stack:
        clients = {}
        for w in (1, 2):
            cluster = stack.enter_context(
                LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None, env=ONE_THREAD)
            )
            clients[w] = stack.enter_context(Client(cluster, set_as_default=False))
        for round_ in range(repeat):
            once = time_single(directory, 1)
            single = {
                **once,
                "seconds": min(single["seconds"], once["seconds"]),
                "cpu": min(single.get("cpu", float("inf")), once["cpu"]),
            }
            for w, client in clients.items():
                before = sum(client.run(time.process_time).values())
                start = time.perf_counter()
                loss = score(str(directory), probs=["p_*"], scheduler=client)["mean_loss"]
                seconds = time.perf_counter() - start
                cpu = sum(client.run(time.process_time).values()) - before
                dask[w] = {
                    "seconds": min(dask[w]["seconds"], seconds),
                    "cpu": min(dask[w].get("cpu", float("inf")), cpu),
                    "loss": loss,
                }
            print(f"round {round_ + 1}: single {once['seconds']:.2f} s, dask {[dask[w]['seconds'] for w in dask]}")
        for w, client in clients.items():
            dask[w]["rss_mb"] = max(client.run(_peak_rss_mb).values())
    return single, dask


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=12_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="best of N timings (default 5)")
    parser.add_argument("--quick", action="store_true", help="1.2M rows")
    args = parser.parse_args()
    rows = 1_200_000 if args.quick else args.rows
    load = os.getloadavg()
    lines = [
        "# Scaling",
        "",
        f"Generated by `benchmarks/scale.py`{' --quick' if args.quick else ''} on {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) when it started: "
        "the machine is shared, so ratios come from one run, the engines take turns in each round and each "
        f"time is the best of {args.repeat} rounds.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        size = make_dataset(directory, rows, 24)
        single, dask = measure(directory, args.repeat)
    lines += [
        f"## Dask scoring: {rows:,} rows x 10 classes, 24 Parquet files of 4 row groups ({size / 1e6:.0f} MB on disk, "
        f"{rows * 11 * 8 / 1e6:.0f} MB as float64)",
        "",
        "One thread everywhere: the single process runs with `OMP_NUM_THREADS=1`, each Dask worker is a process "
        "with one thread. Cluster start-up is not timed; the merge of the partial scores is. CPU seconds are the "
        "scoring process's (the workers' together): the work done, which the machine's load hardly changes.",
        "",
        "| engine | seconds | rows/s | time / single process | speed-up over 1 worker | CPU seconds (workers) "
        "| peak RSS per process (MB) | mean loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| single process, streaming | {single['seconds']:.2f} | {rows / single['seconds']:,.0f} | 1.00 | — | "
        f"{single['cpu']:.2f} | {single['rss_mb']:.0f} | {single['loss']:.12f} |",
    ]
    for w, r in dask.items():
        lines.append(
            f"| Dask, {w} worker{'s' if w > 1 else ''} | {r['seconds']:.2f} | {rows / r['seconds']:,.0f} | "
            f"{r['seconds'] / single['seconds']:.2f} | {dask[1]['seconds'] / r['seconds']:.2f} | {r['cpu']:.2f} | "
            f"{r['rss_mb']:.0f} | {r['loss']:.12f} |"
        )
    one, two = dask[1]["seconds"] / single["seconds"], dask[1]["seconds"] / dask[2]["seconds"]
    worst = max(r["rss_mb"] for r in dask.values())
    same = all(abs(r["loss"] - single["loss"]) <= 1e-12 * abs(single["loss"]) for r in dask.values())
    lines += [
        "",
        f"Acceptance: 1 worker within 1.3x of one process: {'met' if one <= 1.3 else 'NOT met'} ({one:.2f}x); "
        f"2 workers at least 1.6x faster than 1: {'met' if two >= 1.6 else 'NOT met'} ({two:.2f}x); "
        f"peak RSS per worker under 500 MB: {'met' if worst < 500 else 'NOT met'} ({worst:.0f} MB); "
        f"same mean loss to 1e-12: {'yes' if same else 'NO'}.",
    ]
    text = "\n".join(lines) + "\n"
    out = HERE / "results" / ("scale_quick.md" if args.quick else "scale.md")
    out.write_text(text)
    print(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
