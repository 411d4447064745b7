"""``crossentropy.torch.token_statistics`` and ``linear_token_statistics`` on every implementation (issue 30, item 5).

The oracle is a float64 torch computation written for clarity, from the same
logits: ``log_softmax`` + ``gather`` (log-probability), ``torch.special.entr``
summed (entropy), the target's place in ``torch.argsort(descending=True,
stable=True)`` (rank), the largest probability (top-1) and
``torch.logsumexp``, with the documented conventions applied (ignored
positions: 0 and rank 0; logits holding NaN or +inf, or all -inf: NaN).

Implementations: the plain-torch path (``reference``), the C kernel on CPU
tensors (``cpu``) and on NumPy arrays (``numpy``), and the Triton kernel on CPU
tensors under ``TRITON_INTERPRET=1`` (``triton``, small shapes). Every case
runs through each: the ranks must equal the oracle's, the float statistics be
within a dtype tolerance of it, and bad input raise the same exception with
the same message as on the plain-torch path.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import crossentropy as ce  # noqa: E402
from crossentropy import _dispatch, _kernels  # noqa: E402
from crossentropy.torch import TokenStatistics, linear_token_statistics, token_statistics  # noqa: E402

IMPLEMENTATIONS = ["reference", "cpu", "numpy", "triton"]
BACKEND = {"reference": "reference", "cpu": "cpu", "numpy": "cpu", "triton": "triton"}
FIELDS = TokenStatistics._fields
FLOATS = ("logprob", "entropy", "top1_prob", "lse")
TOL = {torch.float64: 1e-13, torch.float32: 2e-6}
"""``|got - oracle| <= TOL (|oracle| + 1)``: float64 within a few ulp; float32, bfloat16 and float16 logits (the
oracle takes the same rounded values) accumulated in float32, within about 16 float32 ulp."""


def _available(impl: str) -> None:
    if impl in ("cpu", "numpy") and not _kernels.available():
        pytest.skip("the C kernels are not built")
    if impl == "triton":
        pytest.importorskip("triton")


def oracle(x: Any, t: Any, *, temperature: float = 1.0, ignore_index: int | None = -100) -> dict[str, Any]:
    """The statistics in float64 from torch's own functions; rows ``(n, V)``, targets ``(n,)``."""
    x = x.double()
    z = x / temperature
    log_q = torch.log_softmax(z, -1)
    q = log_q.exp()
    valid = torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index
    safe = torch.where(valid, t, 0)
    order = torch.argsort(x, dim=-1, descending=True, stable=True)
    rank = (order == safe.unsqueeze(-1)).to(torch.int64).argmax(-1) + 1
    values = {
        "logprob": log_q.gather(-1, safe.unsqueeze(-1)).squeeze(-1),
        "entropy": torch.special.entr(q).sum(-1),
        "top1_prob": q.amax(-1),
        "lse": torch.logsumexp(z, -1),
    }
    undefined = x.isnan().any(-1) | (x == math.inf).any(-1) | (x == -math.inf).all(-1)
    out = {k: torch.where(valid, torch.where(undefined, math.nan, v), 0.0) for k, v in values.items()}
    out["rank"] = torch.where(valid, rank, 0)
    return out


def run(impl: str, fn: Callable[..., TokenStatistics], *args: Any, **kwargs: Any) -> TokenStatistics:
    """``fn`` on one implementation; for ``numpy`` the tensors become arrays and the results tensors again."""
    _available(impl)
    if impl == "numpy":
        if any(isinstance(a, torch.Tensor) and a.dtype == torch.bfloat16 for a in args):
            pytest.skip("NumPy has no bfloat16")
        args = tuple(a.numpy() if isinstance(a, torch.Tensor) else a for a in args)
    with _dispatch.use(BACKEND[impl]):
        out = fn(*args, **kwargs)
    if impl == "numpy":
        assert all(isinstance(v, np.ndarray) for v in out)
        return TokenStatistics(*(torch.from_numpy(v) for v in out))
    return out


def assert_matches(got: TokenStatistics, want: dict[str, Any], dtype: Any, where: str = "") -> None:
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    assert isinstance(got, TokenStatistics)
    assert got.rank.dtype == torch.int64, where
    assert torch.equal(got.rank, want["rank"]), f"{where}: rank {got.rank} != {want['rank']}"
    for name in FLOATS:
        a, b = getattr(got, name), want[name]
        assert a.dtype == acc, f"{where}: {name} is {a.dtype}"
        assert a.shape == b.shape, where
        a = a.double()
        assert torch.equal(a.isnan(), b.isnan()), f"{where}: {name} NaN at {a} vs {b}"
        finite = b.isfinite()
        assert torch.equal(a[~finite & ~b.isnan()], b[~finite & ~b.isnan()]), f"{where}: {name} {a} vs {b}"
        err = (a[finite] - b[finite]).abs() / (b[finite].abs() + 1.0)
        assert err.numel() == 0 or err.max() <= TOL[acc], f"{where}: {name} off by {err.max():.3g}: {a} vs {b}"


# --- the cases ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    logits: Any
    targets: Any
    kwargs: dict[str, Any] = field(default_factory=dict)


def _random(n: int, v: int, dtype: Any, seed: int, scale: float = 4.0) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, v, generator=g, dtype=torch.float64) * scale
    return x.to(dtype), torch.randint(0, v, (n,), generator=g)


def _edges(dtype: Any) -> tuple[Any, Any]:
    """Rows that test the conventions: ties, masks, NaN, +inf, all -inf, ignored, extreme magnitudes."""
    x, t = _random(13, 70, dtype, seed=1)
    x[0] = 1.5  # every class tied: rank = target + 1
    x[1, : t[1]] = x[1, t[1]]  # tied with every class before it
    x[2, :35] = -math.inf  # masked classes
    t[2] = 10  # a masked target: log-probability -inf
    x[3, 5] = math.nan
    x[4, 60] = math.inf
    x[5] = -math.inf
    x[6, t[6]] = math.nan  # a NaN target ranks behind the NaNs before it
    x[6, 3] = math.nan
    x[7, 20] = 40.0  # one class holds nearly all the mass
    t[7] = 20
    x[8] = (x[8] / 4).round()  # many ties
    t[9] = -100
    x[10] *= 1e3  # far apart
    x[11] = x[11] * 1e-6 + 2e4  # large and close together
    return x, t


def cases() -> list[Case]:
    out = []
    for dtype in (torch.float64, torch.float32, torch.bfloat16, torch.float16):
        label = str(dtype).removeprefix("torch.")
        x, t = _random(9, 130, dtype, seed=0)
        out.append(Case(f"random-{label}", x, t))
        edges, targets = _edges(dtype)
        if dtype == torch.float16:
            edges = edges.clamp(-6e4, 6e4)  # within float16's range, masks and infinities kept
        out.append(Case(f"edges-{label}", edges, targets))
    x, t = _random(8, 37, torch.float32, seed=2)
    for temperature in (0.35, 2.5, 1e-30, 1e30):
        out.append(Case(f"temperature-{temperature}", x, t, {"temperature": temperature}))
    t2 = t.clone()
    t2[::2] = 5
    out.append(Case("ignore-index-in-range", x, t2, {"ignore_index": 5}))
    out.append(Case("ignore-index-none", x, t, {"ignore_index": None}))
    x3, t3 = _random(2 * 3, 50, torch.float64, seed=3)
    t3[4] = -100
    out.append(Case("three-dimensional", x3.reshape(2, 3, 50), t3.reshape(2, 3)))
    x1, t1 = _random(1, 9, torch.float32, seed=4)
    out.append(Case("one-dimensional", x1[0], t1[0]))
    out.append(Case("one-class", torch.tensor([[0.3], [-2.0], [math.inf]]), torch.tensor([0, -100, 0])))
    out.append(Case("no-positions", torch.zeros(0, 7), torch.zeros(0, dtype=torch.int64)))
    out.append(Case("no-classes", torch.zeros(3, 0), torch.full((3,), -100)))
    out.append(Case("int32-targets", x, t.to(torch.int32)))
    out.append(Case("uint8-targets", x, t.to(torch.uint8)))
    return out


CASES = cases()


def _oracle_of(case: Case) -> dict[str, Any]:
    v = case.logits.shape[-1]
    n = case.targets.numel()
    flat_x, flat_t = case.logits.reshape(n, v), case.targets.reshape(n).to(torch.int64)
    if v == 0:
        zeros = torch.zeros(flat_t.shape, dtype=torch.float64)
        want = {name: zeros for name in FLOATS}
        want["rank"] = torch.zeros(flat_t.shape, dtype=torch.int64)
    else:
        want = oracle(flat_x, flat_t, **case.kwargs)
    return {k: w.reshape(case.targets.shape) for k, w in want.items()}


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matches_the_float64_composite(impl: str, case: Case) -> None:
    with np.errstate(all="ignore"):
        got = run(impl, token_statistics, case.logits, case.targets, **case.kwargs)
    assert_matches(got, _oracle_of(case), case.logits.dtype, f"{impl} {case.name}")


def test_the_documented_conventions() -> None:
    inf, nan = math.inf, math.nan
    x = torch.tensor([[3.0, 5.0, 5.0, 1.0], [3.0, 5.0, 5.0, 1.0], [0.0, -inf, 0.0, 0.0], [1.0, nan, 2.0, 0.0]])
    stats = token_statistics(x, torch.tensor([2, -100, 1, 0]))
    assert stats.rank.tolist() == [2, 0, 4, 3]  # a tie ranks behind the earlier class; -inf last; NaN first
    assert [float(v[1]) for v in stats] == [0.0, 0.0, 0, 0.0, 0.0]  # ignored: every field 0
    assert stats.logprob[2] == -math.inf
    assert math.isclose(float(stats.entropy[2]), math.log(3), rel_tol=1e-6)  # the masked class counts 0
    assert all(math.isnan(float(getattr(stats, name)[3])) for name in FLOATS)
    assert math.isclose(float(stats.top1_prob[0]), 1 / (2 + math.exp(-2) + math.exp(-4)), rel_tol=1e-6)


def test_result_kinds_and_dtypes() -> None:
    x, t = _random(4, 6, torch.float32, seed=5)
    for dtype, acc in ((torch.float64, torch.float64), (torch.float32, torch.float32), (torch.bfloat16, torch.float32)):
        stats = token_statistics(x.to(dtype), t)
        assert [getattr(stats, name).dtype for name in FLOATS] == [acc] * 4
    arrays = token_statistics(x.numpy().astype(np.float16), t.numpy())
    assert [a.dtype for a in arrays] == [np.float32, np.float32, np.int64, np.float32, np.float32]
    leaf = x.clone().requires_grad_()
    assert not any(s.requires_grad for s in token_statistics(leaf, t))  # no gradient, with or without no_grad
    with torch.inference_mode():
        assert torch.equal(token_statistics(x, t).rank, token_statistics(leaf, t).rank)


def test_relative_accuracy_against_mpmath() -> None:
    """Against a 50-digit mpmath oracle, relative errors: float64 within a few ulp, float32 within a few float32
    ulp, also where one class holds nearly all the mass and log q_t and the entropy are tiny (the sums keep the
    largest term apart, log1p), and at a temperature."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 50
    g = torch.Generator().manual_seed(12)
    x = torch.cat(
        [
            torch.tensor([[0.0, -21.0, -23.5, -30.0, -25.0], [12.0, -14.5, -9.0, 0.0, 1.0]], dtype=torch.float64),
            torch.randn(2, 5, generator=g, dtype=torch.float64) * 3,
        ]
    )
    t = torch.tensor([0, 0, 3, 1])
    for impl in ("reference", "cpu", "triton"):
        for dtype in (torch.float64, torch.float32):
            for temperature in (1.0, 0.7):
                got = run(impl, token_statistics, x.to(dtype), t, temperature=temperature)
                for i, row in enumerate(x.to(dtype).tolist()):
                    z = [mp.mpf(v) / mp.mpf(temperature) for v in row]
                    terms = [mp.exp(v) for v in z]
                    s = mp.fsum(terms)
                    lse = mp.log(s)
                    want = {
                        "logprob": z[int(t[i])] - lse,
                        "entropy": lse - mp.fsum(q * v for q, v in zip(terms, z, strict=True)) / s,
                        "top1_prob": mp.exp(max(z)) / s,
                        "lse": lse,
                    }
                    tol = 1e-14 if dtype == torch.float64 else 5e-7
                    for name, value in want.items():
                        rel = abs((float(getattr(got, name)[i]) - value) / value)
                        assert rel <= tol, f"{impl} {dtype} T={temperature} row {i} {name}: {float(rel):.3g}"


# --- bad input: the same error on every path ----------------------------------------------------------------------

_X, _T = torch.zeros(2, 4), torch.tensor([0, 1])


def _bad(args: tuple[Any, ...], kwargs: dict[str, Any], kind: type, message: str, name: str) -> Any:
    return pytest.param(args, kwargs, kind, message, id=name)


BAD = [
    _bad(
        (torch.zeros(2, 3, 4), torch.tensor([[0, 1, 4], [0, 0, 0]])),
        {},
        IndexError,
        r"targets\[0, 2\] = 4 is out of range: targets must be in \[0, 4\) or equal ignore_index=-100",
        "target-too-large",
    ),
    _bad(
        (torch.zeros(3, 4), torch.tensor([0, -1, 2])),
        {"ignore_index": None},
        IndexError,
        r"targets\[1\] = -1 is out of range: targets must be in \[0, 4\)$",
        "target-negative",
    ),
    _bad((torch.zeros(2, 0), torch.tensor([-100, 0])), {}, IndexError, r"targets\[1\] = 0 is out of", "no-classes"),
    _bad((_X, torch.tensor([0.0, 1.0])), {}, ce.InputError, r"targets must hold integer class", "float-targets"),
    _bad((_X.long(), _T), {}, ce.InputError, r"logits must be a floating-point", "integer-logits"),
    _bad(
        (_X, torch.tensor([0, 1, 2])),
        {},
        ce.InputError,
        r"targets must have the shape of logits without its last axis: logits \(2, 4\) takes targets \(2,\); "
        r"got \(3,\)",
        "shape-mismatch",
    ),
    _bad((torch.tensor(1.0), torch.tensor(0)), {}, ce.InputError, r"logits must have a last axis", "0-d-logits"),
    _bad((_X, _T), {"temperature": 0.0}, ce.InputError, r"a finite number > 0; got 0.0", "temperature-zero"),
    _bad((_X, _T), {"temperature": -1}, ce.InputError, r"a finite number > 0; got -1", "temperature-negative"),
    _bad((_X, _T), {"temperature": math.inf}, ce.InputError, r"a finite number > 0; got inf", "temperature-inf"),
    _bad((_X, _T), {"temperature": math.nan}, ce.InputError, r"a finite number > 0; got nan", "temperature-nan"),
    _bad((_X, _T), {"temperature": "1"}, ce.InputError, r"temperature must be a number > 0; got '1'", "temp-text"),
    _bad((_X, _T), {"ignore_index": 1.5}, ce.InputError, r"ignore_index must be an integer or None", "ignore-float"),
]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(("args", "kwargs", "kind", "message"), BAD)
def test_bad_input_is_refused_alike_on_every_path(
    impl: str, args: tuple[Any, ...], kwargs: dict[str, Any], kind: type, message: str
) -> None:
    with pytest.raises(kind, match=message) as caught:
        run(impl, token_statistics, *args, **kwargs)
    if kind is IndexError:
        assert isinstance(caught.value, ce.InputError)  # the command line reports it in one line
    with _dispatch.use("reference"), pytest.raises(Exception) as reference:  # noqa: PT011  (compared below)
        token_statistics(*args, **kwargs)
    if impl != "numpy":  # NumPy arrays are converted first, so the message may say so
        assert type(caught.value) is type(reference.value)
        assert str(caught.value) == str(reference.value)


def test_bad_input_specific_to_each_kind() -> None:
    with pytest.raises(ce.InputError, match="logits must be a torch tensor; got list"):
        token_statistics([[1.0, 2.0]], torch.tensor([0]))
    with pytest.raises(ce.InputError, match="targets must be a torch tensor of class indices; got list"):
        token_statistics(torch.zeros(1, 2), [0])
    with pytest.raises(ce.InputError, match=r"targets must be on the device of logits \(cpu\); got meta"):
        token_statistics(torch.zeros(1, 2), torch.zeros(1, dtype=torch.int64, device="meta"))
    with pytest.raises(ce.InputError, match="logits must be a floating-point array"):
        token_statistics(np.zeros((2, 3), dtype=np.int32), np.zeros(2, dtype=np.int64))
    huge = np.array([0, 2**63 + 5], dtype=np.uint64)
    with pytest.raises(IndexError, match=r"targets\[1\] = 9223372036854775813 is out of range"):
        token_statistics(np.zeros((2, 3), dtype=np.float32), huge)


# --- linear + statistics, block by block ----------------------------------------------------------------------------


def _linear_case(dtype: Any, seed: int = 7) -> tuple[Any, Any, Any, Any]:
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(2, 7, 16, generator=g, dtype=torch.float64).to(dtype)
    weight = (torch.randn(90, 16, generator=g, dtype=torch.float64) / 2).to(dtype)
    bias = torch.randn(90, generator=g, dtype=torch.float64).to(dtype)
    targets = torch.randint(0, 90, (2, 7), generator=g)
    targets[1, 3] = -100
    return hidden, weight, bias, targets


@pytest.mark.parametrize("impl", ["reference", "cpu", "triton"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_linear_equals_the_statistics_of_the_whole_logits(impl: str, dtype: Any) -> None:
    hidden, weight, bias, targets = _linear_case(dtype)
    options = [
        {"chunk_size": 1},
        {"chunk_size": 5, "bias": bias, "temperature": 0.7},
        {"chunk_size": 100, "softcap": 3.0, "ignore_index": None},
        {},
    ]
    for kwargs in options:
        if "ignore_index" in kwargs:
            targets = targets.clamp(min=0)
        got = run(impl, linear_token_statistics, hidden, weight, targets, **kwargs)
        logits = torch.nn.functional.linear(hidden, weight, kwargs.get("bias"))
        if kwargs.get("softcap"):
            logits = kwargs["softcap"] * torch.tanh(logits / kwargs["softcap"])
        rest = {k: kwargs[k] for k in ("temperature", "ignore_index") if k in kwargs}
        want = oracle(logits.reshape(-1, 90), targets.reshape(-1), **rest)
        assert_matches(got, {k: w.reshape(2, 7) for k, w in want.items()}, dtype, f"{impl} {dtype} {kwargs}")


def test_linear_refuses_bad_input() -> None:
    hidden, weight, bias, targets = _linear_case(torch.float32)
    bad = [
        ({"weight": weight[:, :5]}, r"weight must be a \(V, 16\) tensor for input \(2, 7, 16\); got \(90, 5\)"),
        ({"weight": weight.double()}, r"weight must have the dtype and device of input"),
        ({"bias": bias[:4]}, r"bias must be None or a \(90,\) tensor; got \(4,\)"),
        ({"bias": bias.double()}, r"bias must have the dtype and device of input"),
        ({"softcap": -1.0}, r"softcap must be a finite number >= 0 \(0 for no cap\); got -1.0"),
        ({"chunk_size": 0}, r"chunk_size must be a positive integer or None; got 0"),
        ({"targets": targets[:, :3]}, r"targets must have the shape of input without its last axis"),
        ({"input": hidden.to(torch.int32)}, r"input must be a floating-point tensor"),
    ]
    for change, message in bad:
        args = {"input": hidden, "weight": weight, "targets": targets, **change}
        rest = {k: v for k, v in change.items() if k not in ("input", "weight", "targets")}
        with pytest.raises(ce.InputError, match=message):
            linear_token_statistics(args["input"], args["weight"], args["targets"], **rest)
    targets[0, 0] = 90
    with pytest.raises(IndexError, match=r"targets\[0, 0\] = 90 is out of range"):
        linear_token_statistics(hidden, weight, targets)


def _peak_bytes_of(fn: Callable[[], Any]) -> int:
    """The growth of the process's peak resident memory during ``fn()`` (Linux: VmHWM after clear_refs)."""
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("needs Linux's /proc to measure the peak memory")

    def field(name: str) -> int:
        line = next(line for line in status.read_text().splitlines() if line.startswith(name))
        return int(line.split()[1]) * 1024

    with contextlib.suppress(OSError, AttributeError):  # memory freed earlier, kept by malloc, would hide a new block
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
    except OSError as exc:
        pytest.skip(f"cannot reset the peak resident memory: {exc}")
    before = field("VmRSS:")
    fn()
    return field("VmHWM:") - before


def test_linear_peak_memory_is_one_block() -> None:
    """Without a block size, the N x V logits would be 2048 x 32000 float32 = 262 MB; with blocks of 16 rows the
    pass adds about one block (2 MB) to the peak. The direct computation is measured too: it shows the probe sees
    an allocation of that size."""
    if not _kernels.available():
        pytest.skip("the C kernels are not built")
    g = torch.Generator().manual_seed(8)
    hidden, weight = torch.randn(2048, 8, generator=g), torch.randn(32000, 8, generator=g)
    targets = torch.randint(0, 32000, (2048,), generator=g)
    full_bytes = 2048 * 32000 * 4
    linear_token_statistics(hidden[:2], weight, targets[:2], chunk_size=16)  # load everything first
    blocked = _peak_bytes_of(lambda: linear_token_statistics(hidden, weight, targets, chunk_size=16))
    direct = _peak_bytes_of(lambda: token_statistics(hidden @ weight.T, targets))
    assert direct > 0.9 * full_bytes, f"the probe missed the logits: {direct / 1e6:.0f} MB"
    assert blocked < 16 * 32000 * 4 + 24 * 2**20, f"blocked pass grew the peak by {blocked / 1e6:.1f} MB"


# --- torch.compile, no host synchronisation, the dispatcher --------------------------------------------------------


def test_compiles_with_fullgraph_and_matches_eager() -> None:
    """No graph break (the passes are custom ops); the options may change between calls (a second temperature
    or ignore index makes them symbolic: they are still checked) and the shapes may be dynamic."""
    x, t = _random(6, 40, torch.float32, seed=9)
    hidden, weight, bias, targets = _linear_case(torch.float32)

    def both(x: Any, t: Any, hidden: Any, targets: Any, temperature: float, ignore: int) -> tuple[Any, ...]:
        a = token_statistics(x, t, temperature=temperature, ignore_index=ignore)
        b = linear_token_statistics(hidden, weight, targets, bias=bias, chunk_size=4, softcap=2.0)
        return (*a, *b)

    args = (x, t, hidden, targets)
    explanation = torch._dynamo.explain(both)(*args, 0.8, -100)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(both, fullgraph=True, backend="aot_eager")
    for temperature, ignore, rows in ((0.8, -100, 6), (1.7, 3, 6), (0.5, 3, 4)):
        call = (x[:rows], t[:rows], hidden, targets, temperature, ignore)
        # to a float32 tolerance: a traced graph keeps the kernel that the dispatcher chose (see _dispatch._compiling),
        # where eager calls may take another (CROSSENTROPY_DISABLE_KERNELS=1)
        for c, e in zip(compiled(*call), both(*call), strict=True):
            torch.testing.assert_close(c, e, rtol=TOL[torch.float32], atol=TOL[torch.float32], equal_nan=True)
    bad = t.clone()
    bad[1] = 40
    with pytest.raises(IndexError, match=r"targets\[1\] = 40 is out of range"):  # checked inside the op, as eager
        compiled(x, bad, hidden, targets, 0.8, -100)
    # a bad option: fullgraph=True refuses to trace the raise; without it, the error is the eager one
    with pytest.raises(torch._dynamo.exc.Unsupported):
        compiled(*args, -1.0, 3)
    with pytest.raises(ce.InputError, match=r"temperature must be a finite number > 0; got -1\.0"):
        torch.compile(both, backend="aot_eager")(*args, -1.0, 3)


_SYNC_OPS = ("_local_scalar_dense", "nonzero", "equal", "is_nonzero", "allclose", "masked_select")


@pytest.mark.parametrize("fn", ["token_statistics", "linear_token_statistics"])
def test_no_host_synchronisation_on_meta_tensors(fn: str) -> None:
    """On a device other than the CPU nothing is read back: the meta device runs the plain-torch path, and no
    operation that reads a value (``.item()``, ``bool()``, ``nonzero``, ...) is dispatched."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recorder(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if func.overloadpacket.__name__ in _SYNC_OPS:
                self.seen.append(str(func))
            return func(*args, **(kwargs or {}))

    with Recorder() as recorder:
        if fn == "token_statistics":
            logits, targets = torch.empty(3, 5, 11, device="meta"), torch.empty(3, 5, dtype=torch.long, device="meta")
            stats = token_statistics(logits, targets)
        else:
            stats = linear_token_statistics(
                torch.empty(4, 6, device="meta"),
                torch.empty(11, 6, device="meta"),
                torch.empty(4, dtype=torch.long, device="meta"),
                chunk_size=3,
            )
    assert recorder.seen == []
    assert all(s.device.type == "meta" for s in stats)
    assert stats.rank.dtype == torch.int64


@pytest.mark.parametrize("impl", IMPLEMENTATIONS[:2] + IMPLEMENTATIONS[3:])
def test_the_dispatcher_picks_each_kernel(impl: str) -> None:
    _available(impl)
    x = torch.zeros(2, 3)
    with _dispatch.use(BACKEND[impl]):
        assert _dispatch.choose("token_stats", x) == BACKEND[impl]
        assert (
            _dispatch.stats_kernel(x)
            == {"reference": "stats_torch", "cpu": "stats_cpu", "triton": "triton_stats"}[impl]
        )
    assert _dispatch.choose("token_stats", x.to("meta")) == "reference"
    with _kernels.disabled():
        assert _dispatch.stats_kernel(x) == "stats_torch"


# --- the C kernel itself: every instruction-set variant, block and vector boundaries, threads ------------------------


def _kernel_rows(dtype: Any, v: int, seed: int) -> tuple[Any, Any]:
    """Rows that put the target, ties, masks and NaN at block (2048) and vector (16) boundaries."""
    rng = np.random.default_rng(seed)
    n = 16
    x = rng.normal(0, 3, (n, v)).astype(dtype)
    t = rng.integers(0, v, n)
    last = v - 1
    t[:6] = [0, min(2047, last), min(2048, last), last, min(15, last), min(16, last)]
    x[3, 0] = x[3, -1] = 50.0  # the maximum in the first and the last block: tied with an earlier one
    x[6, t[6]] = x[6].max() + 1  # the argmax target
    x[7, :] = 0.25
    t[7] = last  # every class tied, the target last: rank v
    x[8, : min(2050, v)] = -np.inf  # the first block (and more) masked
    x[9, : min(2048, v)] = -np.inf
    x[9, min(5, last)] = np.nan  # a NaN where nothing above -inf was seen yet
    x[10, max(0, t[10] - 17) : t[10] + 18] = x[10, t[10]]  # ties straddling the target's vector
    x[11, v // 2] = 80.0  # the running maximum jumps in a later block
    x[12, -1] = np.inf
    x[13] = np.round(x[13])
    x[14, :] = -np.inf
    t[15] = -100
    return x, t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("v", [1, 15, 16, 17, 33, 2047, 2048, 2049, 4100])
def test_c_kernel_on_every_variant(dtype: Any, v: int) -> None:
    if not _kernels.available():
        pytest.skip("the C kernels are not built")
    x, t = _kernel_rows(dtype, v, seed=v)
    want = oracle(torch.from_numpy(x), torch.from_numpy(t), temperature=0.9)
    for isa in _kernels.describe()["variants_supported"]:
        with _kernels.use_isa(isa), np.errstate(all="ignore"):
            found = _kernels.token_statistics(x, t, ignore_index=-100, temperature=0.9)
        assert found is not None
        acc = torch.float64 if dtype == np.float64 else torch.float32
        got = TokenStatistics(*(torch.from_numpy(a) for a in found))
        got = got._replace(**{name: getattr(got, name).to(acc) for name in FLOATS})
        assert_matches(got, want, acc, f"{isa} v={v}")


def test_c_kernel_results_do_not_depend_on_the_thread_count() -> None:
    if not _kernels.available():
        pytest.skip("the C kernels are not built")
    x, t = _random(64, 3000, torch.float32, seed=10)
    lib = _kernels.library()
    results = []
    for limit in (1, 0):  # one thread, then the policy's count (threadpoolctl's limit, as a user would set it)
        lib.ce_set_thread_limit(limit)
        try:
            results.append(_kernels.token_statistics(x.numpy(), t.numpy(), ignore_index=-100, temperature=1.0))
        finally:
            lib.ce_set_thread_limit(0)
    for a, b in zip(*results, strict=True):
        assert np.array_equal(a, b)


def test_c_kernel_refuses_a_label_out_of_range() -> None:
    if not _kernels.available():
        pytest.skip("the C kernels are not built")
    x = np.zeros((3, 4), dtype=np.float32)
    assert _kernels.token_statistics(x, np.array([0, 4, 1]), ignore_index=-100, temperature=1.0) is None
    assert _kernels.token_statistics(x, np.array([0, -100, 1]), ignore_index=-100, temperature=1.0) is not None
    assert _kernels.token_statistics(x, np.array([0, -100, 1]), ignore_index=None, temperature=1.0) is None


def _iter_statistics(stats: TokenStatistics) -> Iterator[tuple[str, Any]]:
    return zip(FIELDS, stats, strict=True)


def test_numpy_and_tensor_results_are_equal() -> None:
    x, t = _random(5, 300, torch.float32, seed=11)
    tensors = token_statistics(x, t)
    arrays = token_statistics(x.numpy(), t.numpy())
    for (name, a), b in zip(_iter_statistics(tensors), arrays, strict=True):
        assert np.array_equal(a.numpy(), b), name
    assert re.fullmatch(r"TokenStatistics\(logprob=.*\)", repr(tensors).replace("\n", ""))


def test_only_the_dispatcher_names_the_statistics_kernels() -> None:
    """Outside _dispatch.py (and the kernels themselves), no module picks a token-statistics kernel."""
    src = Path(ce.__file__).parent
    offenders = [
        f"{path.relative_to(src).as_posix()}: {needle}"
        for path in src.rglob("*.py")
        if path.name != "_dispatch.py" and "_kernels" not in path.relative_to(src).parts
        for needle in ("stats_cpu", "triton_stats", "stats_torch", "stats_ops")
        if needle in path.read_text()
    ]
    assert not offenders, offenders
