"""Accuracy tables: the largest error, in ulp of the output dtype, against an mpmath oracle.

For each function, dtype (float64, float32, float16, and bfloat16 through
torch) and path (the fused CPU kernel in every instruction-set variant this
CPU runs -- baseline, avx2, avx512 --, and the array-API reference path),
random inputs including logits up to +-1e4 and vocabularies up to 256000 are
evaluated and compared with the same quantity computed by mpmath from the
rounded inputs; binary cross-entropy is also sampled where ``log1p`` matters
(probabilities and their complements down to 1e-30, logits from 1e-30 to
1e4 in magnitude). Writes docs/accuracy.md.

    python benchmarks/accuracy.py            # full tables (a few minutes)
    python benchmarks/accuracy.py --quick    # fewer rows, vocabularies up to 32000
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mpmath
import numpy as np

import crossentropy as ce
from crossentropy import _dispatch, _kernels

ROOT = Path(__file__).resolve().parents[1]
mpmath.mp.prec = 96


def _mp_nll(row: np.ndarray, target: int) -> Any:
    """``logsumexp(row) - row[target]`` as ``(max - x_t) + log1p(rest)``: exact even when the loss is 1e-300."""
    values = [mpmath.mpf(float(v)) for v in row]
    top = max(values)
    first = values.index(top)
    rest = mpmath.fsum(mpmath.exp(v - top) for j, v in enumerate(values) if j != first and v != -mpmath.inf)
    return (top - values[target]) + mpmath.log1p(rest)


def exact_sparse(x: np.ndarray, t: np.ndarray) -> list[Any]:
    return [_mp_nll(x[i], int(t[i])) for i in range(len(t))]


def exact_entropy(p: np.ndarray) -> list[Any]:
    return [-mpmath.fsum(mpmath.mpf(float(v)) * mpmath.log(mpmath.mpf(float(v))) for v in row if v > 0) for row in p]


def exact_cross_entropy(p: np.ndarray, q: np.ndarray) -> list[Any]:
    return [
        -mpmath.fsum(
            mpmath.mpf(float(a)) * mpmath.log(mpmath.mpf(float(b))) for a, b in zip(pr, qr, strict=True) if a > 0
        )
        for pr, qr in zip(p, q, strict=True)
    ]


def exact_kl(p: np.ndarray, q: np.ndarray) -> list[Any]:
    """``inf`` for a row where q rounds to 0 and p does not (float16, bfloat16)."""
    return [
        mpmath.fsum(
            mpmath.mpf(float(a)) * mpmath.log(mpmath.mpf(float(a)) / mpmath.mpf(float(b))) if b > 0 else mpmath.inf
            for a, b in zip(pr, qr, strict=True)
            if a > 0
        )
        for pr, qr in zip(p, q, strict=True)
    ]


def exact_binary(y: np.ndarray, x: np.ndarray, logits: bool) -> list[Any]:
    """With log1p: at 96 bits ``1 - p`` is 1 for p below 2**-96, and ``1 + exp(-x)`` for x above 67."""
    out = []
    for a, b in zip(y, x, strict=True):
        a, b = mpmath.mpf(float(a)), mpmath.mpf(float(b))
        if logits:
            out.append(a * mpmath.log1p(mpmath.exp(-b)) + (1 - a) * mpmath.log1p(mpmath.exp(b)))
        else:
            out.append(-(a * mpmath.log(b) if a else 0) - ((1 - a) * mpmath.log1p(-b) if a != 1 else 0))
    return out


def binary_inputs(rng: np.random.Generator, tails: np.random.Generator) -> list[tuple[str, bool, Any, Any]]:
    """(inputs, from_logits, targets, values) of the binary rows: the bulk from ``rng``, then from ``tails``
    the ranges where log1p matters (``1 - p`` and ``1 + exp(-|x|)`` round to 1)."""
    y = (rng.uniform(size=500) > 0.5).astype(float)
    bulk = [("500 values", True, y, rng.normal(0, 10, 500)), ("500 values", False, y, rng.uniform(0, 1, 500))]
    tiny = 10 ** tails.uniform(-30, 0, 250)
    sign = np.where(tails.uniform(size=500) > 0.5, 1.0, -1.0)
    labels = (tails.uniform(size=500) > 0.5).astype(float)
    return [
        bulk[0],
        ("logits of magnitude 1e-30 to 1e4", True, labels, sign * 10 ** tails.uniform(-30, 4, 500)),
        bulk[1],
        ("p and 1 - p from 1e-30 to 1", False, labels, np.concatenate([tiny, 1 - tiny])),
    ]


def ulp(dtype: str, value: float) -> float:
    if dtype == "bfloat16":  # 8 significant bits, float32's exponent range (subnormal spacing 2**-133)
        v = abs(value) if value else 2.0**-133
        return max(2.0 ** (np.floor(np.log2(v)) - 7), 2.0**-133)
    return float(np.spacing(np.asarray(abs(value), dtype=dtype)))


def max_ulp(got: Any, exact: list[Any], dtype: str) -> float:
    values = np.asarray(got, dtype=np.float64).reshape(-1)
    worst = 0.0
    for g, e in zip(values, exact, strict=True):
        e_float = float(e)
        if not np.isfinite(e_float):
            worst = max(worst, 0.0 if g == e_float else np.inf)
            continue
        worst = max(worst, float(abs(mpmath.mpf(float(g)) - e)) / ulp(dtype, e_float))
    return worst


def _as(dtype: str, a: np.ndarray) -> Any:
    if dtype == "bfloat16":
        import torch

        return torch.tensor(a, dtype=torch.float32).to(torch.bfloat16)
    return a.astype(dtype)


def _host(dtype: str, a: Any) -> np.ndarray:
    if dtype == "bfloat16":
        return a.float().numpy().astype(np.float64)
    return np.asarray(a, dtype=np.float64)


def measure(quick: bool) -> list[tuple[str, str, str, str, float]]:
    rng = np.random.default_rng(0)
    tails = np.random.default_rng(27)  # the tail rows draw apart, so the other rows keep their inputs
    rows: list[tuple[str, str, str, str, float]] = []
    vocabularies = [(64, 10), (16, 1000), (4, 32000)] + ([] if quick else [(2, 256000)])
    scales = [
        ("N(0, 1)", lambda s: rng.normal(0, 1, s)),
        ("N(0, 10)", lambda s: rng.normal(0, 10, s)),
        ("U(-1e4, 1e4)", lambda s: rng.uniform(-1e4, 1e4, s)),
    ]
    dtypes = ["float64", "float32", "float16", "bfloat16"]
    variants = _kernels.describe()["variants_supported"] if _kernels.available() else []
    paths: list[tuple[str, Callable[[], Any]]] = [
        *((f"kernel ({isa})", functools.partial(_kernels.use_isa, isa)) for isa in variants),
        ("reference", functools.partial(_dispatch.use, "reference")),
    ]
    for n, v in vocabularies:
        for scale_name, draw in scales:
            for dtype in dtypes:
                x = _as(dtype, draw((n, v)))
                xh = _host(dtype, x)
                if not np.isfinite(xh).all():
                    continue  # float16 cannot hold +-1e4 exactly enough to be meaningful past 65504
                t = rng.integers(0, v, n)
                exact = exact_sparse(xh, t)
                for path, context in paths:
                    if path.startswith("kernel") and dtype not in ("float32", "float64"):
                        continue
                    labels = t if dtype != "bfloat16" else __import__("torch").tensor(t)
                    with context():
                        got = ce.sparse_categorical_cross_entropy(labels, x, from_logits=True, reduction="none")
                    rows.append(
                        (
                            "sparse CE from logits",
                            f"V={v:,}, {scale_name}",
                            dtype,
                            path,
                            max_ulp(_host(dtype, got) if dtype == "bfloat16" else got, exact, dtype),
                        )
                    )
    for dtype in dtypes:
        logits = rng.normal(0, 3, (32, 50))
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        q = np.roll(p, 1, axis=1)
        pa, qa = _as(dtype, p), _as(dtype, q)
        ph, qh = _host(dtype, pa), _host(dtype, qa)
        for name, func, exact in (
            ("entropy", lambda a, b: ce.entropy(a, validate=False), exact_entropy(ph)),
            ("cross_entropy", lambda a, b: ce.cross_entropy(a, b, validate=False), exact_cross_entropy(ph, qh)),
            ("kl_divergence", lambda a, b: ce.kl_divergence(a, b, validate=False), exact_kl(ph, qh)),
        ):
            for path, context in paths:
                if path.startswith("kernel") and dtype not in ("float32", "float64"):
                    continue
                with context():
                    got = func(pa, qa)
                rows.append(
                    (
                        name,
                        "50 classes",
                        dtype,
                        path,
                        max_ulp(_host(dtype, got) if dtype == "bfloat16" else got, exact, dtype),
                    )
                )
        for inputs, logits_flag, y, raw in binary_inputs(rng, tails):
            xa, ya = _as(dtype, raw), _as(dtype, y)
            exact = exact_binary(_host(dtype, ya), _host(dtype, xa), logits_flag)
            for path, context in paths:
                if path.startswith("kernel") and dtype not in ("float32", "float64"):
                    continue
                with context():
                    got = ce.binary_cross_entropy(ya, xa, from_logits=logits_flag, reduction="none")
                rows.append(
                    (
                        "binary CE " + ("from logits" if logits_flag else "from probabilities"),
                        inputs,
                        dtype,
                        path,
                        max_ulp(_host(dtype, got) if dtype == "bfloat16" else got, exact, dtype),
                    )
                )
    return rows


def render(rows: list[tuple[str, str, str, str, float]], quick: bool) -> str:
    lines = [
        "# Accuracy",
        "",
        "<!-- generated by benchmarks/accuracy.py; do not edit by hand -->",
        "",
        "Largest error in **ulp of the output dtype** against an mpmath oracle (96-bit) evaluated on the "
        "rounded inputs. `kernel (isa)` is the fused CPU kernel (NumPy float32/float64) in each instruction-set "
        "variant this machine runs (forced as `CROSSENTROPY_ISA` does), `reference` the array-API path; "
        "float16 inputs are computed in float32 and rounded once, bfloat16 inputs go through torch. "
        "An error of 0.5 ulp is a correctly rounded result." + (" (quick run)" if quick else ""),
        "",
        "| function | inputs | dtype | path | max error (ulp) |",
        "|---|---|---|---|---:|",
    ]
    lines += [f"| {f} | {i} | {d} | {p} | {e:.2f} |" for f, i, d, p, e in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default=str(ROOT / "docs" / "accuracy.md"))
    args = parser.parse_args()
    text = render(measure(args.quick), args.quick)
    Path(args.output).write_text(text)
    print(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
