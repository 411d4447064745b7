"""``crossentropy.torch`` against PyTorch 2.13, sample by sample, on PyTorch's own test inputs (issue 16).

The inputs are the ones PyTorch tests its own losses with (see
``torch_samples.py``): every OpInfo sample of ``cross_entropy``, ``nll_loss``,
``binary_cross_entropy``, ``binary_cross_entropy_with_logits``,
``linear_cross_entropy`` (with its ``chunked`` and ``chunked_none`` variants)
and ``kl_div``, every ModuleInfo input of ``CrossEntropyLoss``, ``NLLLoss``,
``BCELoss``, ``BCEWithLogitsLoss``, ``LinearCrossEntropyLoss`` and
``KLDivLoss``, for every dtype those infos list for the CPU, plus their error
inputs and a list of extra edge cases.
Expected values, gradients and exceptions are always computed by torch in the
same test; nothing torch returns is written down here.

How a sample is judged:

* **float32 / float64**: the drop-in's value and the gradient of every
  differentiable argument equal torch's within the default tolerances of
  ``torch.testing.assert_close`` for the dtype (NaN equals NaN), with the same
  dtype and shape. The differentiable arguments are the floating tensors torch
  itself can differentiate in that call (input; a probability target;
  ``weight`` where torch allows it; ``linear_weight``, ``linear_bias``; a
  module's parameters); the backward pass uses the same random cotangent for
  both.
* **bfloat16 / float16**: judged as PyTorch judges its own low-precision
  kernels (``_ref_test_helper`` in PyTorch's test_ops.py). A result passes if
  it is close to torch's (assert_close's defaults for the dtype); otherwise
  it is compared with torch's function evaluated on the same sample upcast to
  float64 (``exact``): its summed distance from ``exact`` may exceed torch's
  by at most one ulp of the dtype per element,
  ``Σ|ours - exact| <= Σ|torch - exact| + Σ ulp(exact)`` over the elements
  where ``exact`` is finite; where ``exact`` is not finite, ours must equal
  it or torch's result (NaN equals NaN). Gradients are judged the same way
  against float64 gradients. (A per-element bound fails on gradients that
  are sums with cancellation, where two equally accurate half-precision
  computations differ by many ulps of the small result in either direction.)
* **errors**: where torch raises, the drop-in raises an instance of the same
  exception type (at the same stage: construction, forward or backward) with a
  non-empty message; the text is not compared.
* **warnings**: the drop-in emits the warnings torch emits for the call
  (category and message, in order, through construction, forward and
  backward): every sample of ``kl_div`` and ``KLDivLoss`` (whose ``"mean"``
  reduction warns), the extra cases (the deprecated flags) and one sample of
  each configuration of the other losses.

The other checks: signatures (names, order, kinds, defaults), module
attributes and state_dict keys, ``torch.compile(fullgraph=True)`` and
``torch._dynamo.explain`` on representative calls of each API, a compiled
training step against eager, and the absence of host synchronisation on
``meta`` tensors (and on CUDA tensors where a GPU is present), detected by a
dispatch mode that ``test_sync_detector_*`` prove.

Each failure message starts with a category in brackets ([missing],
[signature], [raised], [value], [grad], [missing-error], [wrong-error],
[warning], [state_dict], [attributes], [graph-break], [compile], [sync], [meta]) and
names the sample: OpInfo or ModuleInfo, index, dtype and the call.

Self-check of the harness: ``CROSSENTROPY_TEST_DROPIN_AGAINST_TORCH=1`` runs
it with torch's own functions and modules as the drop-in. Everything then
passes except ``test_compile_fullgraph`` on the few linear_cross_entropy calls
whose ``options`` torch itself cannot compile without a graph break.

Run time on the 2 shared cores of the development machine (torch 2.13 CPU,
load average about 4): 2 min 20 s for the whole module of issue 16, 8,775 tests
(20 s of it collecting the samples; 3,428 are LinearCrossEntropyLoss module
samples; issue 28's kl_div and KLDivLoss samples and warning checks bring it to
10,965 tests and add about 1 min 30 s under a load of 7), of which the
torch.compile tests take 40 s with a warm Inductor cache and 2 min 45 s with a
cold one; ``-k "not compile"`` leaves them out.
torch runs single-threaded here (see ``_one_thread``).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import torch_samples as ts  # noqa: E402

try:
    ts.load_internals()
except ImportError as exc:
    pytest.skip(
        f"PyTorch's OpInfo/ModuleInfo test inputs are unavailable: {exc}. "
        "They need torch's testing internals and the expecttest package (pip install expecttest).",
        allow_module_level=True,
    )

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

aten = torch.ops.aten
F = torch.nn.functional
LOW_PRECISION = (torch.bfloat16, torch.float16)


# ----------------------------------------------------------------------------------------------------------
# the two implementations


AGAINST_TORCH = os.environ.get("CROSSENTROPY_TEST_DROPIN_AGAINST_TORCH") == "1"


def ours(api: str) -> Any:
    """``crossentropy.torch.<api>``, failing the test if it does not exist (torch's own in the self-check)."""
    if AGAINST_TORCH:
        return theirs(api)
    import crossentropy.torch as cet

    found = getattr(cet, api, None)
    if found is None:
        pytest.fail(f"[missing] crossentropy.torch has no {api}", pytrace=False)
    return found


def theirs(api: str) -> Any:
    """``torch.nn.functional.<api>`` or ``torch.nn.<api>``."""
    return getattr(F, api, None) or getattr(torch.nn, api)


# ----------------------------------------------------------------------------------------------------------
# materialising a sample


def _slot_names(sample: ts.Sample) -> list[str]:
    """The parameter name of each positional argument of the call, from torch's signature."""
    target = theirs(sample.api).forward if sample.is_module else theirs(sample.api)
    params = [p for p in inspect.signature(target).parameters if p != "self"]
    return [params[i] if i < len(params) else f"arg{i}" for i in range(len(sample.args))]


def _named(sample: ts.Sample) -> dict[str, Any]:
    """``name -> value`` of every argument of the call."""
    return dict(zip(_slot_names(sample), sample.args, strict=True)) | sample.kwargs


def _is_float_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def _fresh(value: Any, *, grad: bool, dtype: Any = None, device: Any = None) -> Any:
    """A new leaf copy of a tensor (cast to float64 / moved when asked); other values as they are."""
    if not isinstance(value, torch.Tensor):
        return value
    copy_ = value.detach().clone()
    if dtype is not None and copy_.is_floating_point():
        copy_ = copy_.to(dtype)
    if device is not None:
        copy_ = copy_.to(device)
    return copy_.requires_grad_(grad and copy_.is_floating_point())


@dataclass
class Outcome:
    """What one side did with a sample: a value and gradients, or the exception and the stage it came from."""

    value: Any = None
    grads: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    stage: str = ""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _seeded_module(cls: Any, ctor: tuple[tuple[Any, ...], dict[str, Any]], seed: int) -> Any:
    """``cls(*args, **kwargs)`` with fresh copies of tensor arguments, under a fixed seed."""
    args = tuple(_fresh(a, grad=False) for a in ctor[0])
    kwargs = {k: _fresh(v, grad=False) for k, v in ctor[1].items()}
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # torch.manual_seed also seeds (and inspects) accelerators
        return cls(*args, **kwargs)


def _load_torch_state(module: Any, sample: ts.Sample) -> None:
    """Give the drop-in module the state of torch's module built from the same constructor call and seed."""
    assert sample.ctor is not None
    if not isinstance(module, torch.nn.Module):
        pytest.fail(f"[attributes] {sample.api} is not a torch.nn.Module", pytrace=False)
    try:
        with _quiet():
            reference = _seeded_module(theirs(sample.api), sample.ctor, sample.index)
    except Exception:
        return  # torch refuses this constructor call; the comparison of errors reports it
    try:
        module.load_state_dict(reference.state_dict())
    except Exception as exc:
        pytest.fail(f"[state_dict] torch's state_dict does not load: {exc}", pytrace=False)


def _cotangent(out: Any, seed: int) -> Any:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(out.shape, generator=g, dtype=torch.float64).to(dtype=out.dtype, device=out.device)


def execute(
    sample: ts.Sample,
    side: str,
    requires: set[str],
    *,
    device: Any = None,
    quiet: bool = False,
    loud: bool = False,
) -> Outcome:
    """Run ``sample`` with ``side`` = "ours", "torch" or "exact" (torch in float64).

    Arguments named in ``requires`` (and a module's parameters) get gradients
    through one backward pass with a seeded random cotangent. Warnings of
    torch's side are silenced unless ``loud`` (those of ours unless ``quiet``).
    """
    exact = side == "exact"
    dtype = torch.float64 if exact else None
    named = _named(sample)
    leaves = {n: _fresh(v, grad=n in requires, dtype=dtype, device=device) for n, v in named.items()}
    if exact and "options" in leaves:
        leaves["options"] = None  # chunking options tune speed, not the result; float64 takes the reference path
    names = _slot_names(sample)
    args = [leaves[n] for n in names]
    kwargs = {k: leaves[k] for k in sample.kwargs}
    context = _quiet() if quiet or (side != "ours" and not loud) else contextlib.nullcontext()
    outcome = Outcome()
    params: dict[str, Any] = {}
    with context:
        try:
            if sample.is_module:
                assert sample.ctor is not None
                outcome.stage = "construction"
                cls = ours(sample.api) if side == "ours" else theirs(sample.api)
                fn = _seeded_module(cls, sample.ctor, sample.index)
                if side == "ours":
                    _load_torch_state(fn, sample)
                if exact:
                    fn = fn.double()
                    if hasattr(fn, "options"):
                        fn.options = None
                if device is not None:
                    fn = fn.to(device)
                params = {n: p for n, p in fn.named_parameters() if p.requires_grad}
            else:
                fn = ours(sample.api) if side == "ours" else theirs(sample.api)
            outcome.stage = "forward"
            out = fn(*args, **kwargs)
            outcome.value = out
            wanted = {n: leaves[n] for n in sorted(requires) if n in leaves} | params
            if not wanted or not isinstance(out, torch.Tensor):
                return outcome
            outcome.stage = "backward"
            if not out.requires_grad:
                outcome.grads = dict.fromkeys(wanted)
                return outcome
            cot = _cotangent(out, sample.index)
            grads = torch.autograd.grad(out, list(wanted.values()), cot, allow_unused=True)
            outcome.grads = dict(zip(wanted, grads, strict=True))
            outcome.stage = "done"
        except Exception as exc:
            outcome.error = exc
    return outcome


def torch_reference(sample: ts.Sample) -> tuple[set[str], Outcome]:
    """The floating tensor arguments torch can differentiate in this call, and torch's outcome with them.

    One run with every floating argument requiring a gradient usually
    settles it; where torch refuses (``weight`` of ``nll_loss``,
    ``pos_weight``, ...) or leaves one unused, each argument is tried alone.
    A module's parameters always take part.
    """
    candidates = {n for n, v in _named(sample).items() if _is_float_tensor(v)}
    together = execute(sample, "torch", candidates, quiet=True)
    if together.error is None and all(g is not None for n, g in together.grads.items() if n in candidates):
        return candidates, together
    result = set()
    for name in candidates:
        alone = execute(sample, "torch", {name}, quiet=True)
        if alone.error is None and alone.grads.get(name) is not None:
            result.add(name)
    return result, execute(sample, "torch", result, quiet=True)


_DIFFERENTIABLE: dict[ts.Sample, set[str]] = {}


def differentiable(sample: ts.Sample) -> set[str]:
    """:func:`torch_reference`'s set, remembered from the sample's value test when that ran first."""
    if sample not in _DIFFERENTIABLE:
        _DIFFERENTIABLE[sample] = torch_reference(sample)[0]
    return _DIFFERENTIABLE[sample]


# ----------------------------------------------------------------------------------------------------------
# judging


def _fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


def _ulp(exact: Any, dtype: Any) -> Any:
    info = torch.finfo(dtype)
    magnitude = exact.abs().clamp_min(info.tiny)
    return info.eps * torch.exp2(torch.floor(torch.log2(magnitude)))


def _same(a: Any, b: Any) -> Any:
    return (a == b) | (torch.isnan(a) & torch.isnan(b))


def judge_low_precision(mine: Any, reference: Any, exact: Any) -> str | None:
    """None if ``mine`` passes PyTorch's own rule for low-precision results, else what differs.

    As in PyTorch's reference tests (``_ref_test_helper`` in test_ops.py),
    for a result that is not close to torch's (assert_close's defaults for
    the dtype, checked by the caller): its summed distance from the float64
    result must not exceed torch's, here with a slack of one ulp of the dtype per element:
    ``Σ|mine - exact| <= Σ|torch - exact| + Σ ulp(exact)`` over finite
    ``exact``. Where ``exact`` is not finite, ``mine`` must equal it or torch.
    """
    m, r, e = (t.detach().double() for t in (mine, reference, exact))
    finite = torch.isfinite(e)
    odd = ~finite & ~(_same(m, e) | _same(m, r))
    if bool(odd.any()):
        at = tuple(odd.nonzero()[0].tolist())
        return f"where float64 gives {e[at].item()!r}, ours {m[at].item()!r}, torch {r[at].item()!r} (at {at})"

    def distance(a: Any) -> Any:
        each = torch.where(_same(a, e), 0.0, (a - e).abs())
        return torch.nan_to_num(each, nan=torch.inf)[finite]

    mine_d, torch_d = distance(m), distance(r)
    slack = _ulp(e[finite], reference.dtype).sum()
    if bool(mine_d.sum() <= torch_d.sum() + slack):
        return None
    worst = int((mine_d - torch_d).argmax())
    at = tuple(finite.nonzero()[worst].tolist())
    return (
        f"not close to torch's result, and farther from float64 than torch's: "
        f"Σ|ours - float64| = {mine_d.sum().item():.4g} > Σ|torch - float64| = {torch_d.sum().item():.4g} "
        f"+ Σ ulp = {slack.item():.4g} over {int(finite.sum())} elements; worst at {at}: "
        f"ours={m[at].item()!r}, torch={r[at].item()!r}, float64={e[at].item()!r}"
    )


def compare(what: str, mine: Any, reference: Any, exact: Callable[[], Any] | None = None) -> str | None:
    """None if ``mine`` matches ``reference`` under the rule for its dtype, else a description.

    ``exact`` gives the float64 result; it is called only for a low-precision
    result that is not close to torch's.
    """
    if not isinstance(mine, torch.Tensor):
        return f"{what}: expected a tensor like torch's, got {type(mine).__name__}"
    if mine.shape != reference.shape or mine.dtype != reference.dtype:
        return (
            f"{what}: torch gives {ts.dtype_name(reference.dtype)}{list(reference.shape)}, "
            f"ours {ts.dtype_name(mine.dtype)}{list(mine.shape)}"
        )
    try:
        torch.testing.assert_close(mine.detach(), reference.detach(), equal_nan=True)
    except AssertionError as exc:
        if reference.dtype in LOW_PRECISION and exact is not None:
            problem = judge_low_precision(mine, reference, exact())
            return None if problem is None else f"{what}: {problem}"
        return f"{what}: {exc}"
    return None


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def check_sample(sample: ts.Sample) -> None:
    """The drop-in matches torch on ``sample``: the same exception, or the same value and gradients."""
    requires, expected = torch_reference(sample)
    _DIFFERENTIABLE[sample] = requires
    got = execute(sample, "ours", requires)
    where = sample.describe()
    if expected.error is not None:
        if got.error is None:
            shown = got.value if got.stage != "construction" else "a module"
            _fail(
                f"[missing-error] torch raises {_error_text(expected.error)} at {expected.stage}, "
                f"ours does not ({shown!r})\n{where}"
            )
        assert got.error is not None
        if not isinstance(got.error, type(expected.error)) or got.stage != expected.stage:
            _fail(
                f"[wrong-error] torch raises {type(expected.error).__name__} at {expected.stage}, "
                f"ours {_error_text(got.error)} at {got.stage}\n{where}"
            )
        if not str(got.error).strip():
            _fail(f"[wrong-error] ours raises {type(got.error).__name__} with an empty message\n{where}")
        return
    if got.error is not None:
        category = "[signature]" if isinstance(got.error, TypeError) else "[raised]"
        tb = "".join(traceback.format_exception(got.error)[-3:])
        _fail(f"{category} ours raises {_error_text(got.error)} at {got.stage}; torch computes it\n{where}\n{tb}")
    exact: list[Outcome] = []  # torch in float64, run only when a low-precision result is not close to torch's

    def float64() -> Outcome:
        if not exact:
            exact.append(execute(sample, "exact", requires))
            if exact[0].error is not None:
                _fail(f"[value] the float64 reference raised {_error_text(exact[0].error)}\n{where}")
        return exact[0]

    problem = compare("value", got.value, expected.value, lambda: float64().value)
    if problem is not None:
        _fail(f"[value] {problem}\n{where}")
    problems = []
    for name, grad in expected.grads.items():
        if grad is None:
            continue
        mine = got.grads.get(name)
        if mine is None:
            problems.append(f"grad of {name}: torch computes one, ours gives none")
            continue
        problem = compare(f"grad of {name}", mine, grad, lambda name=name: float64().grads[name])
        if problem is not None:
            problems.append(problem)
    if problems:
        _fail("[grad] " + "\n".join(problems) + f"\n{where}")


# ----------------------------------------------------------------------------------------------------------
# the samples


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """torch single-threaded for this module: the samples are tiny, and on a busy 2-core machine the
    thread pool's barriers cost up to 40 times the computation (both implementations run alike)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _params(samples: Any) -> list[Any]:
    return [pytest.param(s, id=s.id) for s in samples]


FUNCTIONAL_SAMPLES = [s for api in ts.FUNCTIONALS for s in ts.functional_samples(api)]
MODULE_SAMPLES = [s for api in ts.MODULES for s in ts.module_samples(api)]
ERROR_SAMPLES = [s for api in ts.FUNCTIONALS for s in ts.functional_error_samples(api)] + [
    s for api in ts.MODULES for s in ts.module_error_samples(api)
]
EXTRA_SAMPLES = list(ts.extra_samples())


@pytest.mark.parametrize("sample", _params(FUNCTIONAL_SAMPLES))
@pytest.mark.slow
def test_functional_sample(sample: ts.Sample) -> None:
    """Each OpInfo sample, each CPU dtype: value and gradients as torch's (rules in the module docstring)."""
    check_sample(sample)


@pytest.mark.parametrize("sample", _params(MODULE_SAMPLES))
@pytest.mark.slow
def test_module_sample(sample: ts.Sample) -> None:
    """Each ModuleInfo input, each dtype: value and gradients (input, target, parameters) as torch's."""
    check_sample(sample)


@pytest.mark.parametrize("sample", _params(ERROR_SAMPLES))
def test_error_sample(sample: ts.Sample) -> None:
    """PyTorch's error inputs: torch raises (checked), and ours raises the same exception type."""
    expected = execute(sample, "torch", set())
    if expected.error is None:
        _fail(f"[stale] torch no longer raises on its own error input\n{sample.describe()}")
    check_sample(sample)


@pytest.mark.parametrize("sample", _params(EXTRA_SAMPLES))
def test_extra_case(sample: ts.Sample) -> None:
    """Edge cases of issues 16 and 28 outside torch's samples: whatever torch returns or raises, ours does."""
    check_sample(sample)


# ----------------------------------------------------------------------------------------------------------
# signatures and module state


def _signature(fn: Any) -> list[tuple[str, str, Any]]:
    return [
        (p.name, p.kind.name, p.default)
        for p in inspect.signature(fn).parameters.values()
        if p.name != "self"  # torch's forward and __init__ take self
    ]


SIGNATURES = [(api, "") for api in ts.FUNCTIONALS] + [
    (api, method) for api in ts.MODULES for method in ("__init__", "forward")
]


@pytest.mark.parametrize(("api", "method"), SIGNATURES, ids=[f"{a}{'.' + m if m else ''}" for a, m in SIGNATURES])
def test_signature(api: str, method: str) -> None:
    """Parameter names, order, kinds and defaults as torch's (annotations aside)."""
    mine, reference = ours(api), theirs(api)
    if method:
        mine, reference = getattr(mine, method), getattr(reference, method)
    got, expected = _signature(mine), _signature(reference)
    if got != expected:
        _fail(f"[signature] {api}{'.' + method if method else ''}:\n  torch: {expected}\n  ours:  {got}")


def _distinct_constructors(api: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    seen: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for sample in ts.module_samples(api):
        assert sample.ctor is not None
        key = repr((sample.ctor[0], {k: ts.describe(v) for k, v in sample.ctor[1].items()}))
        seen.setdefault(key, sample.ctor)
    return list(seen.values())[:24]


@pytest.mark.parametrize("api", ts.MODULES)
def test_module_attributes(api: str) -> None:
    """Public attributes, parameter and buffer names and shapes as torch's module, for its sample constructors."""
    problems = []
    for ctor in _distinct_constructors(api):
        with _quiet():
            reference = _seeded_module(theirs(api), ctor, 0)
            mine = _seeded_module(ours(api), ctor, 0)
        public = {k: v for k, v in vars(reference).items() if not k.startswith("_")}
        for key, value in public.items():
            if not hasattr(mine, key) or getattr(mine, key) != value:
                problems.append(f"{key}: torch {value!r}, ours {getattr(mine, key, '<missing>')!r}")
        for kind in ("named_parameters", "named_buffers"):
            expected = [(n, tuple(t.shape)) for n, t in getattr(reference, kind)()]
            got = [(n, tuple(t.shape)) for n, t in getattr(mine, kind)()]
            if got != expected:
                problems.append(f"{kind}: torch {expected}, ours {got}")
        if problems:
            _fail(f"[attributes] {api}({ts.describe(ctor)}):\n" + "\n".join(sorted(set(problems))))


# ----------------------------------------------------------------------------------------------------------
# torch.compile


def _configuration(sample: ts.Sample) -> tuple[Any, ...]:
    """What selects a code path: API, dtype, variant, options given, reduction, target kind and ranks."""
    named = _named(sample)
    config = dict(sample.ctor[1]) if sample.ctor else {}
    config |= {k: v for k, v in named.items() if k not in ("input", "target", "linear_weight")}
    return (
        sample.api,
        sample.dtype,
        sample.variant,
        tuple(sorted(k for k, v in config.items() if v is not None)),
        config.get("reduction", "mean"),
        _is_float_tensor(named.get("target")),
        tuple(v.ndim for v in sample.args if isinstance(v, torch.Tensor)),
    )


def distinct(samples: Any, dtype: Any = None, limit: int | None = None) -> list[ts.Sample]:
    """The first sample of each configuration (of ``dtype`` if given), at most ``limit`` spread evenly."""
    seen: dict[Any, ts.Sample] = {}
    for s in samples:
        if dtype is None or s.dtype == dtype:
            seen.setdefault(_configuration(s), s)
    picked = list(seen.values())
    if limit is None:
        return picked
    step = max(1, len(picked) // limit)
    return picked[::step][:limit]


COMPILE_SAMPLES = [s for api in ts.FUNCTIONALS for s in distinct(ts.functional_samples(api), torch.float32, 12)] + [
    s for api in ts.MODULES for s in distinct(ts.module_samples(api), torch.float32, 6)
]
KL_APIS = ("kl_div", "KLDivLoss")
WARNING_SAMPLES = (
    [s for s in FUNCTIONAL_SAMPLES + MODULE_SAMPLES if s.api in KL_APIS]
    + EXTRA_SAMPLES
    + [s for s in distinct(FUNCTIONAL_SAMPLES) + distinct(MODULE_SAMPLES) if s.api not in KL_APIS]
)


def _warnings_of(sample: ts.Sample, side: str) -> list[tuple[str, str]]:
    """``(category, message)`` of every warning one side emits for the sample, in order."""
    requires = differentiable(sample)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        execute(sample, side, requires, loud=True)
    return [(w.category.__name__, str(w.message)) for w in caught]


@pytest.mark.parametrize("sample", _params(WARNING_SAMPLES))
def test_warnings(sample: ts.Sample) -> None:
    """The drop-in warns as torch does: the same categories and messages, in order (``kl_div``'s "mean")."""
    expected, got = _warnings_of(sample, "torch"), _warnings_of(sample, "ours")
    if got != expected:
        _fail(f"[warning] torch warns {expected}, ours {got}\n{sample.describe()}")


def _callable(
    sample: ts.Sample, implementation: Callable[[str], Any] | None = None
) -> tuple[Callable[..., Any], list[Any], dict[str, Any], list[Any]]:
    """The drop-in (or ``implementation``) as a function of leaf tensors, with the leaves that need gradients."""
    implementation = implementation or ours
    requires = differentiable(sample)
    named = _named(sample)
    leaves = {n: _fresh(v, grad=n in requires) for n, v in named.items()}
    args = [leaves[n] for n in _slot_names(sample)]
    kwargs = {k: leaves[k] for k in sample.kwargs}
    if sample.is_module:
        assert sample.ctor is not None
        module = _seeded_module(implementation(sample.api), sample.ctor, sample.index)
        _load_torch_state(module, sample)
        wanted = [leaves[n] for n in sorted(requires)] + [p for p in module.parameters() if p.requires_grad]
        return module, args, kwargs, wanted
    return implementation(sample.api), args, kwargs, [leaves[n] for n in sorted(requires)]


def _torch_graphs(sample: ts.Sample) -> str:
    """How torch's own implementation fares under explain on the same call, for failure messages."""
    fn, args, kwargs, _ = _callable(sample, theirs)
    torch._dynamo.reset()
    try:
        with _quiet():
            explanation = torch._dynamo.explain(fn)(*args, **kwargs)
    except Exception as exc:
        return f"torch's own: explain raised {type(exc).__name__}"
    finally:
        torch._dynamo.reset()
    return f"torch's own: {explanation.graph_count} graphs, {max(explanation.graph_break_count, 0)} breaks"


def _torch_compiles(sample: ts.Sample) -> bool:
    """Whether torch's own implementation of the same call compiles with ``fullgraph=True``."""
    fn, args, kwargs, wanted = _callable(sample, theirs)
    torch._dynamo.reset()
    try:
        with _quiet():
            _value_and_grads(torch.compile(fn, fullgraph=True, backend="aot_eager"), args, kwargs, wanted, sample.index)
    except Exception:
        return False
    finally:
        torch._dynamo.reset()
    return True


def _value_and_grads(fn: Any, args: list[Any], kwargs: dict[str, Any], wanted: list[Any], seed: int) -> list[Any]:
    out = fn(*args, **kwargs)
    if not wanted or not out.requires_grad:
        return [out]
    return [out, *torch.autograd.grad(out, wanted, _cotangent(out, seed), allow_unused=True)]


@pytest.mark.parametrize("sample", _params(COMPILE_SAMPLES))
@pytest.mark.slow
def test_compile_fullgraph(sample: ts.Sample) -> None:
    """``torch._dynamo.explain`` finds no graph break; ``torch.compile(fullgraph=True)`` (aot_eager) matches eager.

    Calls that torch's own implementation cannot compile with ``fullgraph=True``
    either (its chunked fallback warns, which dynamo cannot trace) are skipped:
    the drop-in promises what torch does, not more.

    aot_eager traces forward and backward with fake tensors (custom ops need
    their fake implementations) without Inductor's code generation, which the
    training-step test covers.
    """
    fn, args, kwargs, wanted = _callable(sample)
    torch._dynamo.reset()
    try:
        explanation = torch._dynamo.explain(fn)(*args, **kwargs)
    except Exception as exc:
        _fail(f"[compile] torch._dynamo.explain raised {_error_text(exc)}\n{sample.describe()}")
    if (explanation.graph_count != 1 or explanation.graph_break_count != 0) and not _torch_compiles(sample):
        pytest.skip("torch's own implementation of this call cannot be compiled with fullgraph=True either")
    if explanation.graph_count != 1 or explanation.graph_break_count != 0:
        reasons = "\n".join(f"  {r.reason}" for r in explanation.break_reasons[:6]) or "  (no reason recorded)"
        _fail(
            f"[graph-break] dynamo captured {explanation.graph_count} graphs with "
            f"{max(explanation.graph_break_count, 0)} breaks ({_torch_graphs(sample)}):\n{reasons}\n{sample.describe()}"
        )
    torch._dynamo.reset()
    eager = _value_and_grads(fn, args, kwargs, wanted, sample.index)
    try:
        compiled = _value_and_grads(
            torch.compile(fn, fullgraph=True, backend="aot_eager"), args, kwargs, wanted, sample.index
        )
    except Exception as exc:
        if not _torch_compiles(sample):
            pytest.skip("torch's own implementation of this call cannot be compiled with fullgraph=True either")
        _fail(f"[compile] torch.compile(fullgraph=True) raised {_error_text(exc)}\n{sample.describe()}")
    finally:
        torch._dynamo.reset()
    for i, (c, e) in enumerate(zip(compiled, eager, strict=True)):
        problem = compare("value" if i == 0 else f"grad {i}", c, e)
        if problem is not None:
            _fail(f"[compile] compiled differs from eager: {problem}\n{sample.describe()}")


CLASS_WEIGHT = (0.5, 2.0, 1.0, 0.25, 1.5)
TRAINING_CRITERIA: dict[str, tuple[dict[str, Any], Callable[..., Any]]] = {
    # api -> (constructor or call options, loss of (criterion, features h, head, labels y, soft labels p))
    "cross_entropy": (
        {"weight": CLASS_WEIGHT, "ignore_index": 2, "label_smoothing": 0.1},
        lambda c, h, head, y, p: c(head(h), y),
    ),
    "nll_loss": ({"weight": CLASS_WEIGHT}, lambda c, h, head, y, p: c(head(h).log_softmax(1), y)),
    "binary_cross_entropy": ({}, lambda c, h, head, y, p: c(head(h).sigmoid(), p)),
    "binary_cross_entropy_with_logits": ({"pos_weight": CLASS_WEIGHT}, lambda c, h, head, y, p: c(head(h), p)),
    "linear_cross_entropy": (
        {"ignore_index": 2},
        lambda c, h, head, y, p: c(h, head.weight, y, linear_bias=head.bias),
    ),
    "CrossEntropyLoss": ({"weight": CLASS_WEIGHT, "label_smoothing": 0.1}, lambda c, h, head, y, p: c(head(h), y)),
    "NLLLoss": ({"ignore_index": 1}, lambda c, h, head, y, p: c(head(h).log_softmax(1), y)),
    "BCELoss": ({}, lambda c, h, head, y, p: c(head(h).sigmoid(), p)),
    "BCEWithLogitsLoss": ({"pos_weight": CLASS_WEIGHT}, lambda c, h, head, y, p: c(head(h), p)),
    "LinearCrossEntropyLoss": ({"bias": True}, lambda c, h, head, y, p: c(h, y)),
    "kl_div": ({"reduction": "batchmean"}, lambda c, h, head, y, p: c(head(h).log_softmax(1), p.softmax(1))),
    "KLDivLoss": (
        {"reduction": "batchmean", "log_target": True},
        lambda c, h, head, y, p: c(head(h).log_softmax(1), p.log_softmax(1)),
    ),
}


class _TrainingModel(torch.nn.Module):
    """A two-layer model whose loss is the drop-in (a module criterion is a submodule, so it trains too)."""

    def __init__(self, api: str) -> None:
        super().__init__()
        options, self.loss_of = TRAINING_CRITERIA[api]
        options = {k: torch.tensor(v) if isinstance(v, tuple) else v for k, v in options.items()}
        self.body = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Tanh())
        self.head = torch.nn.Linear(6, 5)
        if api in ts.MODULES:
            args = (6, 5) if api == "LinearCrossEntropyLoss" else ()
            self.criterion = ours(api)(*args, **options)
        else:
            function = ours(api)
            self.criterion = lambda *a, **k: function(*a, **(options | k))

    def forward(self, x: Any, y: Any, p: Any) -> Any:
        return self.loss_of(self.criterion, self.body(x), self.head, y, p)


@pytest.mark.parametrize("api", [*ts.FUNCTIONALS, *ts.MODULES])
@pytest.mark.slow
def test_compiled_training_step(api: str) -> None:
    """A training step under ``torch.compile(fullgraph=True)`` (Inductor) matches eager.

    Forward and backward of a small model whose loss is the drop-in; the loss
    and every parameter's gradient must agree within assert_close's float32
    defaults (rtol 1.3e-6, atol 1e-5).
    """
    g = torch.Generator().manual_seed(0)
    x, y, p = torch.randn(16, 8, generator=g), torch.randint(0, 5, (16,), generator=g), torch.rand(16, 5, generator=g)
    torch.manual_seed(0)
    model = _TrainingModel(api)
    eager = copy.deepcopy(model)
    loss = eager(x, y, p)
    expected = [loss, *torch.autograd.grad(loss, list(eager.parameters()), allow_unused=True)]
    torch._dynamo.reset()
    try:
        step = torch.compile(model, fullgraph=True)
        loss = step(x, y, p)
        got = [loss, *torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)]
    except Exception as exc:
        _fail(f"[compile] compiled training step with {api} raised {_error_text(exc)}")
    finally:
        torch._dynamo.reset()
    names = ["loss", *(n for n, _ in model.named_parameters())]
    for name, c, e in zip(names, got, expected, strict=True):
        if c is None and e is None:
            continue  # a parameter the loss does not use (the head, under LinearCrossEntropyLoss)
        problem = compare(name, c, e)
        if problem is not None:
            _fail(f"[compile] compiled training step with {api} differs from eager: {problem}")


# ----------------------------------------------------------------------------------------------------------
# host synchronisation


_SYNC_OPS = {
    aten._local_scalar_dense,  # .item(), bool(), int(), float(), .tolist() of a scalar
    aten.equal,
    aten.allclose,
    aten.is_nonzero,
    aten.nonzero,  # data-dependent output shapes: the size comes back to the host
    aten.masked_select,
    aten._unique,
    aten._unique2,
    aten.unique_dim,
    aten.unique_consecutive,
    aten.unique_dim_consecutive,
}


def _where_called() -> str:
    """The innermost frame of crossentropy's own code in the current stack, else the innermost non-torch frame."""
    frames = traceback.extract_stack()[:-3]
    mine = [f for f in frames if "crossentropy" in Path(f.filename).parts and "tests" not in Path(f.filename).parts]
    chosen = mine[-1] if mine else next((f for f in reversed(frames) if "torch" not in f.filename), frames[-1])
    return f"{chosen.filename}:{chosen.lineno} in {chosen.name}"


def _on_device(args: Any, kwargs: Any) -> bool:
    """Whether any tensor among the arguments lives off the CPU (reading a CPU tensor costs no sync)."""
    flat = [*args, *kwargs.values()]
    flat += [t for a in flat if isinstance(a, (list, tuple)) for t in a]
    return any(isinstance(t, torch.Tensor) and t.device.type != "cpu" for t in flat)


def _bool_index(indices: Any) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ())


def _why_sync(func: Any, args: Any, kwargs: Any) -> str | None:
    """Why calling ``func`` on these arguments makes the host wait for the device, or None."""
    packet = func.overloadpacket
    value_dependent = packet in _SYNC_OPS or (
        func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is None
    )
    if value_dependent and _on_device(args, kwargs):
        return str(func)
    masked = packet in (aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_)
    if masked and _bool_index(args[1] if len(args) > 1 else kwargs.get("indices")) and _on_device(args, kwargs):
        return f"{func} with a boolean mask"
    if packet is aten._to_copy:
        device = kwargs.get("device")
        if device is not None and torch.device(device).type == "cpu" and args[0].device.type != "cpu":
            return f"{func} to cpu"
    if packet is aten.copy_ and args[0].device.type == "cpu" and args[1].device.type != "cpu":
        return f"{func} to cpu"
    return None


class HostSyncRecorder(TorchDispatchMode):
    """Records every operation that makes the host wait for a non-CPU device.

    At the dispatcher: reading a value (``_local_scalar_dense`` behind
    ``.item()``, ``bool()``, ``int()``, ``float()``; ``equal``, ``allclose``,
    ``is_nonzero``), copying to the CPU (``_to_copy``/``copy_`` from a non-CPU
    tensor: ``.cpu()``, ``.tolist()``, ``.to("cpu")``), and operations whose
    output shape depends on values (``nonzero``, ``masked_select``,
    ``unique``, ``repeat_interleave`` without ``output_size``, boolean-mask
    indexing and index assignment). In Python: ``Tensor.numpy`` (and
    ``np.asarray``), which never reaches the dispatcher. Each record names the
    call site; the original operation then runs (on meta or fake tensors it
    usually raises, which the caller may catch: the record stays).
    """

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def _record(self, what: str) -> None:
        self.events.append(f"{what} at {_where_called()}")

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        why = _why_sync(func, args, kwargs)
        if why is not None:
            self._record(why)
        return func(*args, **kwargs)

    @contextlib.contextmanager
    def recording(self) -> Iterator[HostSyncRecorder]:
        original_numpy = torch.Tensor.numpy
        recorder = self

        def numpy(tensor: Any, *args: Any, **kwargs: Any) -> Any:
            if tensor.device.type != "cpu":
                recorder._record("Tensor.numpy()")
            return original_numpy(tensor, *args, **kwargs)

        own = "numpy" in vars(torch.Tensor)
        torch.Tensor.numpy = numpy  # type: ignore[method-assign]
        try:
            with self:
                yield self
        finally:
            if own:
                torch.Tensor.numpy = original_numpy  # type: ignore[method-assign]
            else:
                del torch.Tensor.numpy


def _syncs_in(fn: Callable[[], Any]) -> tuple[list[str], BaseException | None]:
    recorder = HostSyncRecorder()
    error = None
    with recorder.recording():
        try:
            fn()
        except Exception as exc:
            error = exc
    return recorder.events, error


def _sync_cases() -> dict[str, Callable[[Any], Any]]:
    """Functions that sync the host (detector must flag them) and two that do not (must not)."""
    return {
        "bool_any": lambda t: bool(t.any()),
        "item": lambda t: t.sum().item(),
        "float": lambda t: float(t.sum()),
        "tolist": lambda t: t.tolist(),
        "cpu": lambda t: t.cpu(),
        "numpy": lambda t: t.numpy(),
        "numpy_asarray": lambda t: __import__("numpy").asarray(t),
        "boolean_mask": lambda t: t[t > 0],
        "boolean_mask_assign": lambda t: t.__setitem__(t > 0, 0.0),
        "nonzero": lambda t: torch.nonzero(t),
        "equal": lambda t: torch.equal(t, t),
        "caught_item": lambda t: _swallow(lambda: t.max().item()),
    }


def _swallow(fn: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):
        fn()


@contextlib.contextmanager
def _device_checks(device: str) -> Iterator[None]:
    """On CUDA, torch's own sync detector raises as well (``set_sync_debug_mode("error")``)."""
    if device != "cuda":
        yield
        return
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (on a CPU-only build, fake CUDA tensors abort the process)")
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


@pytest.mark.parametrize("case", list(_sync_cases()))
@pytest.mark.parametrize("device", ["meta", "cuda"])
def test_sync_detector_catches(case: str, device: str) -> None:
    """The detector is real: each way of syncing the host is flagged, even when the caller swallows the error."""
    fn = _sync_cases()[case]
    with _device_checks(device):
        events, error = _syncs_in(lambda: fn(torch.ones(3, 4, device=device)))
    assert events, f"the detector missed {case} on {device} (the call gave {error!r})"


@pytest.mark.parametrize("device", ["meta", "cuda"])
def test_sync_detector_is_quiet_without_syncs(device: str) -> None:
    """No false alarms: device-side asserts, ``where``, torch's own cross_entropy and CPU scalars are not syncs."""

    def clean(t: Any) -> Any:
        torch._assert_async((t >= 0).all(), "negative")
        t = torch.where(t > 0, t, 0.0)
        loss = F.cross_entropy(t, torch.zeros(3, dtype=torch.long, device=t.device), label_smoothing=0.1)
        assert torch.tensor([2.0]).item() == 2.0  # a CPU tensor: no device involved
        return torch.autograd.grad(loss, t)

    with _device_checks(device):
        leaf = torch.ones(3, 4, device=device, requires_grad=True)
        events, error = _syncs_in(lambda: clean(leaf))
    assert error is None, error
    assert events == []


def check_no_sync(sample: ts.Sample, device: str) -> None:
    """Forward and backward of the drop-in on ``device`` tensors record no host sync."""
    requires = differentiable(sample)
    where = sample.describe()

    def run(side: str) -> tuple[list[str], Outcome]:
        recorder = HostSyncRecorder()
        with _device_checks(device), recorder.recording():
            outcome = execute(sample, side, requires, device=device, quiet=True)
        if outcome.error is not None and "synchroniz" in str(outcome.error):
            recorder.events.append(f"CUDA sync debug mode: {_error_text(outcome.error)}")
        return recorder.events, outcome

    events, outcome = run("ours")
    if events or outcome.error is not None:
        torch_events, torch_outcome = run("torch")
        if torch_outcome.error is not None or torch_events:
            pytest.skip(f"torch itself cannot run this sample on {device} without syncing or failing")
    if events:
        shown = "\n  ".join(dict.fromkeys(events))
        _fail(f"[sync] {len(events)} host syncs on {device} tensors:\n  {shown}\n{where}")
    if outcome.error is not None:
        _fail(f"[meta] ours raises {_error_text(outcome.error)} at {outcome.stage} on {device} tensors\n{where}")


SYNC_SAMPLES = FUNCTIONAL_SAMPLES + distinct(MODULE_SAMPLES) + EXTRA_SAMPLES


@pytest.mark.parametrize("sample", _params(SYNC_SAMPLES))
@pytest.mark.slow
def test_no_host_sync_meta(sample: ts.Sample) -> None:
    """No host sync in the drop-in's forward and backward on meta tensors: every functional sample and dtype,
    one module sample per configuration and dtype, the extra cases."""
    check_no_sync(sample, "meta")


@pytest.mark.parametrize("sample", _params(COMPILE_SAMPLES))
def test_no_host_sync_cuda(sample: ts.Sample) -> None:
    """The accelerator branch, where a GPU is present: no host sync on CUDA tensors (recorder and
    ``torch.cuda.set_sync_debug_mode("error")``)."""
    check_no_sync(sample, "cuda")
