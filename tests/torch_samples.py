"""PyTorch's own test inputs for the losses that ``crossentropy.torch`` replaces.

The samples come from the OpInfo and ModuleInfo databases that ship with the
torch wheel (``torch.testing._internal``): ``sample_inputs_func`` and
``error_inputs_func`` of the OpInfos ``nn.functional.{cross_entropy, nll_loss,
binary_cross_entropy, binary_cross_entropy_with_logits, linear_cross_entropy,
kl_div}`` (``linear_cross_entropy`` with its ``chunked`` and ``chunked_none``
variants), and ``module_inputs_func`` / ``module_error_inputs_func`` of the
ModuleInfos of ``nn.{CrossEntropyLoss, NLLLoss, BCELoss, BCEWithLogitsLoss,
LinearCrossEntropyLoss, KLDivLoss}``, for every floating dtype those infos list
for the CPU. None of these OpInfos has ``reference_inputs_func``; only
``linear_cross_entropy`` has error inputs among the functionals, and the
ModuleInfo of ``KLDivLoss`` has none.

:func:`extra_samples` adds the edge and error cases of the issue that
PyTorch's sample functions do not draw (out-of-range targets, the deprecated
``size_average``/``reduce`` flags, probability ranges of ``binary_cross_entropy``,
``-inf`` logits, ...). They carry no expected value: the test runs torch on the
same sample and takes whatever torch returns or raises as the expectation.

Everything is generated under fixed seeds, so the sample at an index is the
same at collection time and in every worker. Importing this module imports
neither torch nor the internals; :func:`load_internals` does, and puts back the
global state the internals change on import (hypothesis profiles, torch's
backend-flag lock, warning filters).
"""

from __future__ import annotations

import functools
import os
import random
import sys
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

FUNCTIONAL_OPINFOS: dict[str, tuple[tuple[str, str], ...]] = {
    "cross_entropy": (("nn.functional.cross_entropy", ""),),
    "nll_loss": (("nn.functional.nll_loss", ""),),
    "binary_cross_entropy": (("nn.functional.binary_cross_entropy", ""),),
    "binary_cross_entropy_with_logits": (("nn.functional.binary_cross_entropy_with_logits", ""),),
    "linear_cross_entropy": (
        ("nn.functional.linear_cross_entropy", ""),
        ("nn.functional.linear_cross_entropy", "chunked"),
        ("nn.functional.linear_cross_entropy", "chunked_none"),
    ),
    "kl_div": (("nn.functional.kl_div", ""),),
}
MODULES = ("CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "LinearCrossEntropyLoss", "KLDivLoss")
FUNCTIONALS = tuple(FUNCTIONAL_OPINFOS)


@dataclass(frozen=True, eq=False)
class Sample:
    """One call of a functional (``ctor`` is None) or of a module built from ``ctor``.

    ``source`` names where it came from (the OpInfo or ModuleInfo, or
    ``extra``); ``error_on`` is ``"construction"`` or ``"forward"`` for
    PyTorch's error inputs, None otherwise.
    """

    api: str
    source: str
    dtype: Any
    index: int
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    ctor: tuple[tuple[Any, ...], dict[str, Any]] | None = None
    name: str = ""
    error_on: str | None = None
    declared_error: type[BaseException] | None = None
    variant: str = ""

    @property
    def is_module(self) -> bool:
        return self.ctor is not None

    @property
    def id(self) -> str:
        """``<api>[.<variant>]-<dtype>-<index>``, or ``<api>-<case name>`` for extra cases."""
        if self.source == "extra":
            return f"{self.api}-{self.name}"
        stem = f"{self.api}.{self.variant}" if self.variant else self.api
        kind = "error-" if self.error_on else ""
        return f"{stem}-{kind}{dtype_name(self.dtype)}-{self.index:03d}"

    def describe(self) -> str:
        """The call, with tensors as dtype[shape], for failure messages."""
        parts = [describe(a) for a in self.args]
        parts += [f"{k}={describe(v)}" for k, v in self.kwargs.items()]
        call = f"{self.api}({', '.join(parts)})" if not self.is_module else f"forward({', '.join(parts)})"
        if self.ctor is not None:
            cargs = [describe(a) for a in self.ctor[0]] + [f"{k}={describe(v)}" for k, v in self.ctor[1].items()]
            call = f"{self.api}({', '.join(cargs)}).{call}"
        source = f"{self.source} ({self.variant})" if self.variant else self.source
        return f"{source} sample {self.index} ({dtype_name(self.dtype)}{', ' + self.name if self.name else ''}): {call}"


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def describe(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        shape = ",".join(str(s) for s in value.shape)
        flags = "" if not value.requires_grad else ", grad"
        small = f" {value.tolist()}" if value.numel() <= 4 and value.device.type == "cpu" else ""
        return f"{dtype_name(value.dtype)}[{shape}{flags}]{small}"
    return repr(value)


def _restore_after_import(snapshot: dict[str, Any]) -> None:
    import torch

    warnings.filters[:] = snapshot["filters"]
    # the flag lives in the globals of torch/backends/__init__.py, which torch.backends' module object hides
    torch.backends.flags_frozen.__globals__["__allow_nonbracketed_mutation_flag"] = not snapshot["flags_frozen"]
    torch._C.ScriptFunction.__call__ = snapshot["script_call"]
    torch._C.ScriptMethod.__call__ = snapshot["method_call"]
    if snapshot["inductor_cache"] is None:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    hypothesis = sys.modules.get("hypothesis")
    profiles = getattr(getattr(hypothesis, "settings", None), "_profiles", None)
    if hypothesis is not None and isinstance(profiles, dict) and snapshot["profiles"] is not None:
        profiles.clear()
        profiles.update(snapshot["profiles"])
        if snapshot["profile"] in profiles:
            hypothesis.settings.load_profile(snapshot["profile"])


@functools.cache
def load_internals() -> tuple[Any, Any]:
    """``(op_db, module_db)`` from ``torch.testing._internal``; raises ImportError if they cannot load.

    The internals register hypothesis profiles and load one, lock torch's
    backend flags and patch TorchScript calls at import; all of that is put
    back so that the rest of the test session runs as configured.
    """
    import torch

    hypothesis = sys.modules.get("hypothesis")
    settings = getattr(hypothesis, "settings", None)
    profiles = getattr(settings, "_profiles", None)
    snapshot = {
        "filters": list(warnings.filters),
        "flags_frozen": torch.backends.flags_frozen(),
        "script_call": torch._C.ScriptFunction.__call__,
        "method_call": torch._C.ScriptMethod.__call__,
        "inductor_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
        "profiles": dict(profiles) if isinstance(profiles, dict) else None,
        "profile": getattr(settings, "_current_profile", None),
    }
    try:
        from torch.testing._internal.common_methods_invocations import op_db
        from torch.testing._internal.common_modules import module_db
    except Exception as exc:  # expecttest missing, or internals changed shape
        raise ImportError(f"torch.testing._internal cannot be imported ({type(exc).__name__}: {exc})") from exc
    finally:
        _restore_after_import(snapshot)
    return op_db, module_db


def _seeded(key: str) -> Any:
    """A context that seeds torch's and Python's RNGs from ``key`` and restores them afterwards."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def context() -> Any:
        state = random.getstate()
        with torch.random.fork_rng(devices=[]):
            seed = zlib.crc32(key.encode())
            torch.default_generator.manual_seed(seed)
            random.seed(seed)
            try:
                yield
            finally:
                random.setstate(state)

    return context()


def _opinfo(source: str, variant: str) -> Any:
    op_db, _ = load_internals()
    for op in op_db:
        if op.name == source and op.variant_test_name == variant:
            return op
    raise LookupError(f"torch's op_db has no OpInfo {source!r} variant {variant!r}")


def _moduleinfo(api: str) -> Any:
    _, module_db = load_internals()
    for info in module_db:
        if info.module_cls.__name__ == api:
            return info
    raise LookupError(f"torch's module_db has no ModuleInfo for nn.{api}")


def _floating(dtypes: Any) -> list[Any]:
    import torch

    order = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
    return [d for d in order if d in set(dtypes)]


def opinfo_dtypes(api: str) -> dict[str, list[Any]]:
    """``source label -> dtypes`` that torch's OpInfos for ``api`` test on the CPU."""
    result = {}
    for source, variant in FUNCTIONAL_OPINFOS[api]:
        label = f"{source}.{variant}" if variant else source
        result[label] = _floating(_opinfo(source, variant).supported_dtypes("cpu"))
    return result


def module_dtypes(api: str) -> list[Any]:
    """The dtypes torch's ModuleInfo for ``nn.<api>`` tests (on the CPU: ``dtypes``)."""
    return _floating(_moduleinfo(api).dtypes)


@functools.cache
def functional_samples(api: str) -> tuple[Sample, ...]:
    """Every OpInfo sample of ``api`` for every CPU dtype, in OpInfo order."""
    samples: list[Sample] = []
    for source, variant in FUNCTIONAL_OPINFOS[api]:
        op = _opinfo(source, variant)
        label = f"{source}.{variant}" if variant else source
        for dtype in _floating(op.supported_dtypes("cpu")):
            with _seeded(f"{label}:{dtype}"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                drawn = list(op.sample_inputs("cpu", dtype, requires_grad=True))
            samples += [
                Sample(api, source, dtype, i, (s.input, *s.args), dict(s.kwargs), name=s.name or "", variant=variant)
                for i, s in enumerate(drawn)
            ]
    return tuple(samples)


@functools.cache
def functional_error_samples(api: str) -> tuple[Sample, ...]:
    """The OpInfo error inputs of ``api`` (float32: error inputs take no dtype)."""
    import torch

    samples: list[Sample] = []
    for source, variant in FUNCTIONAL_OPINFOS[api]:
        op = _opinfo(source, variant)
        if op.error_inputs_func is None or variant:  # the variants share one error_inputs_func
            continue
        with _seeded(f"{source}:errors"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            drawn = list(op.error_inputs("cpu"))
        for i, e in enumerate(drawn):
            s = e.sample_input
            samples.append(
                Sample(
                    api,
                    source,
                    torch.float32,
                    i,
                    (s.input, *s.args),
                    dict(s.kwargs),
                    error_on="forward",
                    declared_error=e.error_type,
                    name=e.error_regex,
                )
            )
    return tuple(samples)


@functools.cache
def module_samples(api: str) -> tuple[Sample, ...]:
    """Every ModuleInfo input of ``nn.<api>`` for every dtype torch tests."""
    info = _moduleinfo(api)
    samples: list[Sample] = []
    for dtype in module_dtypes(api):
        with _seeded(f"nn.{api}:{dtype}"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            drawn = info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True, training=True)
        for i, m in enumerate(drawn):
            ctor = (tuple(m.constructor_input.args), dict(m.constructor_input.kwargs))
            fwd = m.forward_input
            samples.append(
                Sample(api, f"nn.{api}", dtype, i, tuple(fwd.args), dict(fwd.kwargs), ctor=ctor, name=m.desc or "")
            )
    return tuple(samples)


@functools.cache
def module_error_samples(api: str) -> tuple[Sample, ...]:
    """The ModuleInfo error inputs of ``nn.<api>`` for every dtype torch tests."""
    info = _moduleinfo(api)
    if info.module_error_inputs_func is None:
        return ()
    samples: list[Sample] = []
    for dtype in module_dtypes(api):
        with _seeded(f"nn.{api}:{dtype}:errors"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            drawn = info.module_error_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True, training=True)
        for i, e in enumerate(drawn):
            m = e.module_error_input
            stage = "construction" if e.error_on.name == "CONSTRUCTION_ERROR" else "forward"
            samples.append(
                Sample(
                    api,
                    f"nn.{api}",
                    dtype,
                    i,
                    tuple(m.forward_input.args),
                    dict(m.forward_input.kwargs),
                    ctor=(tuple(m.constructor_input.args), dict(m.constructor_input.kwargs)),
                    error_on=stage,
                    declared_error=e.error_type,
                    name=e.error_regex,
                )
            )
    return tuple(samples)


def extra_samples() -> tuple[Sample, ...]:
    """Edge and error cases of issues 16 and 28 that torch's sample functions do not draw.

    Each case is only an input: the expected value, gradient or exception is
    whatever torch gives for it in the same test.
    """
    import torch

    g = torch.Generator().manual_seed(16)
    f32, f64 = torch.float32, torch.float64

    def randn(*shape: int, dtype: Any = f32, grad: bool = True) -> Any:
        return torch.randn(*shape, generator=g, dtype=f64).to(dtype).requires_grad_(grad)

    def rand(*shape: int, dtype: Any = f32, grad: bool = False) -> Any:
        return torch.rand(*shape, generator=g, dtype=f64).to(dtype).requires_grad_(grad)

    def labels(*values: int, dtype: Any = torch.long) -> Any:
        return torch.tensor(values, dtype=dtype)

    cases: list[Sample] = []

    def add(api: str, name: str, *args: Any, ctor: Any = None, dtype: Any = f32, **kwargs: Any) -> None:
        cases.append(Sample(api, "extra", dtype, len(cases), args, kwargs, ctor=ctor, name=name))

    ce, nll, bce, bcel, lce = (
        "cross_entropy",
        "nll_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "linear_cross_entropy",
    )
    # cross_entropy: targets, dtypes, ranges
    add(ce, "target_out_of_range", randn(3, 3), labels(0, 3, 1))
    add(ce, "target_minus_one", randn(3, 3), labels(0, -1, 1))
    add(ce, "target_int32", randn(3, 3), labels(0, 1, 2, dtype=torch.int32))
    add(ce, "target_uint8", randn(3, 3), labels(0, 1, 2, dtype=torch.uint8))
    add(ce, "prob_target_dtype_mismatch", randn(3, 3), rand(3, 3, dtype=f64))
    add(ce, "long_prob_target_shape", randn(2, 3), torch.zeros(2, 3, dtype=torch.long))
    add(ce, "label_smoothing_above_one", randn(3, 3), labels(0, 1, 2), label_smoothing=1.5)
    add(ce, "label_smoothing_negative", randn(3, 3), labels(0, 1, 2), label_smoothing=-0.1)
    add(ce, "weight_wrong_length", randn(3, 3), labels(0, 1, 2), weight=rand(2))
    add(ce, "weight_requires_grad", randn(3, 3), labels(0, 1, 2), weight=rand(3, grad=True))
    add(ce, "prob_target_ignore_index", randn(3, 3), rand(3, 3).softmax(1), ignore_index=1)
    add(ce, "prob_target_weight_smoothing", randn(3, 4), rand(3, 4, grad=True), weight=rand(4), label_smoothing=0.2)
    add(
        ce,
        "negative_weights_smoothing",
        randn(4, 3),
        labels(0, 1, 2, 1),
        weight=randn(3, grad=False),
        label_smoothing=0.3,
    )
    add(ce, "minus_inf_logit_target0", torch.tensor([[0.0, -torch.inf, 1.0]]), labels(0))
    add(ce, "minus_inf_logit_target1", torch.tensor([[0.0, -torch.inf, 1.0]]), labels(1))
    add(ce, "minus_inf_logit_smoothing", torch.tensor([[0.0, -torch.inf, 1.0]]), labels(0), label_smoothing=0.1)
    add(ce, "all_ignored_mean", randn(3, 3), labels(1, 1, 1), ignore_index=1)
    add(ce, "all_ignored_sum", randn(3, 3), labels(1, 1, 1), ignore_index=1, reduction="sum")
    add(ce, "empty_batch_mean", randn(0, 3), labels())
    add(ce, "batch_mismatch", randn(2, 3), labels(0, 1, 2))
    add(ce, "kdim_target_shape_mismatch", randn(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
    add(ce, "reduction_invalid", randn(3, 3), labels(0, 1, 2), reduction="average")
    add(ce, "size_average_false", randn(3, 3), labels(0, 1, 2), size_average=False)
    add(ce, "reduce_false", randn(3, 3), labels(0, 1, 2), reduce=False)
    add(ce, "size_average_false_reduce_true", randn(3, 3), labels(0, 1, 2), None, False, -100, True)
    add(ce, "positional_all", randn(4, 3), labels(0, 1, 2, 1), rand(3), None, 2, None, "sum", 0.25)
    add(ce, "no_batch", randn(5), torch.tensor(3), weight=rand(5), label_smoothing=0.1)
    add(
        ce,
        "kdim_everything",
        randn(2, 4, 3, 2),
        torch.randint(0, 4, (2, 3, 2), generator=g),
        weight=rand(4),
        ignore_index=2,
        label_smoothing=0.2,
    )
    add(ce, "integer_logits", torch.ones(2, 3, dtype=torch.long), labels(0, 1))
    add(
        ce,
        "bfloat16_large_logits",
        randn(8, 50, dtype=torch.bfloat16) * 30,
        torch.randint(0, 50, (8,), generator=g),
        dtype=torch.bfloat16,
    )
    add(
        ce,
        "float16_smoothing",
        randn(8, 50, dtype=torch.float16),
        torch.randint(0, 50, (8,), generator=g),
        label_smoothing=0.1,
        dtype=torch.float16,
    )
    # nll_loss
    add(nll, "target_out_of_range", randn(3, 3).log_softmax(1), labels(0, 3, 1))
    add(nll, "weight_wrong_length", randn(3, 3), labels(0, 1, 2), weight=rand(4))
    add(nll, "weight_dtype_mismatch", randn(3, 3), labels(0, 1, 2), weight=rand(3, dtype=f64))
    add(nll, "weight_requires_grad", randn(3, 3), labels(0, 1, 2), weight=rand(3, grad=True))
    add(nll, "not_log_probabilities", torch.tensor([[5.0, 1.0]], requires_grad=True), labels(0))
    add(nll, "all_ignored_mean", randn(3, 3), labels(1, 1, 1), ignore_index=1)
    add(nll, "empty_batch_mean", randn(0, 3), labels())
    add(nll, "input_3d_target_2d_mismatch", randn(2, 3, 4), torch.zeros(2, 5, dtype=torch.long))
    add(nll, "target_int32", randn(3, 3), labels(0, 1, 2, dtype=torch.int32))
    add(nll, "prob_target", randn(3, 3), rand(3, 3))
    add(nll, "size_average_false", randn(3, 3), labels(0, 1, 2), size_average=False)
    add(nll, "reduce_false", randn(3, 3), labels(0, 1, 2), reduce=False)
    add(nll, "reduction_invalid", randn(3, 3), labels(0, 1, 2), reduction="average")
    add(nll, "positional_all", randn(4, 3), labels(0, 1, 2, 1), randn(3, grad=False), None, 1, None, "sum")
    # binary_cross_entropy
    add(bce, "input_above_one", torch.tensor([0.5, 1.5], requires_grad=True), rand(2))
    add(bce, "input_negative", torch.tensor([0.5, -0.1], requires_grad=True), rand(2))
    add(bce, "input_nan", torch.tensor([0.5, torch.nan], requires_grad=True), rand(2))
    add(bce, "target_above_one", rand(2, grad=True), torch.tensor([0.5, 1.5]))
    add(bce, "shape_mismatch", rand(2, 3, grad=True), rand(3, 2))
    add(bce, "dtype_mismatch", rand(2, 3, grad=True), rand(2, 3, dtype=f64))
    add(
        bce, "clamp_at_zero", torch.tensor([0.0, 1.0, 0.0, 1.0], requires_grad=True), torch.tensor([1.0, 0.0, 0.0, 1.0])
    )
    add(bce, "weight_broadcast_rows", rand(4, 3, grad=True), rand(4, 3), weight=randn(3, grad=False))
    add(bce, "weight_requires_grad", rand(4, 3, grad=True), rand(4, 3), weight=rand(4, 3, grad=True))
    add(bce, "soft_target_grad", rand(4, 3, grad=True), rand(4, 3, grad=True), reduction="sum")
    add(bce, "size_average_false", rand(4, 3, grad=True), rand(4, 3), size_average=False)
    add(bce, "reduce_false", rand(4, 3, grad=True), rand(4, 3), reduce=False)
    add(bce, "reduction_invalid", rand(4, 3, grad=True), rand(4, 3), reduction="average")
    add(
        bce,
        "bfloat16_tiny",
        torch.tensor([1e-30, 0.5, 1.0], dtype=torch.bfloat16, requires_grad=True),
        torch.tensor([1.0, 0.5, 0.0], dtype=torch.bfloat16),
        dtype=torch.bfloat16,
    )
    add(
        bce,
        "float16_zero",
        torch.tensor([0.0, 0.25], dtype=torch.float16, requires_grad=True),
        torch.tensor([1.0, 0.0], dtype=torch.float16),
        dtype=torch.float16,
    )
    # binary_cross_entropy_with_logits
    add(bcel, "targets_outside_unit", randn(4, 3), randn(4, 3, grad=False) * 3)
    add(bcel, "very_negative_logit", torch.tensor([-200.0, 200.0], requires_grad=True), torch.tensor([1.0, 0.0]))
    add(bcel, "infinite_logits", torch.tensor([torch.inf, -torch.inf], requires_grad=True), torch.tensor([1.0, 0.0]))
    add(bcel, "pos_weight_broadcast", randn(2, 4, 3), rand(2, 4, 3), pos_weight=rand(3))
    add(bcel, "pos_weight_negative", randn(4, 3), rand(4, 3), pos_weight=randn(3, grad=False))
    add(bcel, "pos_weight_wrong_shape", randn(4, 3), rand(4, 3), pos_weight=rand(4))
    add(bcel, "pos_weight_requires_grad", randn(4, 3), rand(4, 3), pos_weight=rand(3, grad=True))
    add(bcel, "weight_requires_grad", randn(4, 3), rand(4, 3), weight=rand(4, 3, grad=True))
    add(bcel, "shape_mismatch", randn(2, 3), rand(3, 2))
    add(bcel, "dtype_mismatch", randn(2, 3), rand(2, 3, dtype=f64))
    add(bcel, "size_average_false", randn(4, 3), rand(4, 3), size_average=False)
    add(bcel, "reduce_false", randn(4, 3), rand(4, 3), reduce=False)
    add(bcel, "positional_all", randn(4, 3), rand(4, 3), rand(4, 3), None, None, "sum", rand(3))
    add(bcel, "reduction_invalid", randn(4, 3), rand(4, 3), reduction="average")
    # linear_cross_entropy
    add(lce, "dtype_mismatch", randn(4, 5), randn(3, 5, dtype=f64), labels(0, 1, 2, 1))
    add(lce, "reduction_invalid", randn(4, 5), randn(3, 5), labels(0, 1, 2, 1), reduction="average")
    add(lce, "label_smoothing_above_one", randn(4, 5), randn(3, 5), labels(0, 1, 2, 1), label_smoothing=1.5)
    add(lce, "target_out_of_range", randn(4, 5), randn(3, 5), labels(0, 1, 3, 1))
    add(
        lce,
        "smoothing_weight_bias",
        randn(6, 5),
        randn(7, 5),
        torch.randint(0, 7, (6,), generator=g),
        linear_bias=randn(7),
        weight=rand(7),
        label_smoothing=0.1,
        ignore_index=3,
    )
    add(lce, "all_ignored_sum", randn(4, 5), randn(3, 5), labels(2, 2, 2, 2), ignore_index=2, reduction="sum")
    add(lce, "ignore_index_positional", randn(4, 5), randn(3, 5), labels(0, 1, 2, 1), None)
    # modules: the deprecated flags and construction errors
    for api, fwd in (
        ("CrossEntropyLoss", (randn(4, 3), labels(0, 1, 2, 1))),
        ("NLLLoss", (randn(4, 3), labels(0, 1, 2, 1))),
        ("BCELoss", (rand(4, 3, grad=True), rand(4, 3))),
        ("BCEWithLogitsLoss", (randn(4, 3), rand(4, 3))),
    ):
        for flags in ({"size_average": False}, {"reduce": False}, {"size_average": True, "reduce": True}):
            name = "_".join(f"{k}_{str(v).lower()}" for k, v in flags.items())
            add(api, name, *fwd, ctor=((), flags))
        add(api, "reduction_invalid", *fwd, ctor=((), {"reduction": "average"}))
    add("BCEWithLogitsLoss", "pos_weight_broadcast", randn(2, 4, 3), rand(2, 4, 3), ctor=((), {"pos_weight": rand(3)}))
    add(
        "CrossEntropyLoss",
        "positional_ctor",
        randn(4, 3),
        labels(0, 1, 2, 1),
        ctor=((rand(3), None, 2, None, "sum", 0.1), {}),
    )
    add("NLLLoss", "positional_ctor", randn(4, 3), labels(0, 1, 2, 1), ctor=((rand(3), None, 2, None, "sum"), {}))
    add(
        "LinearCrossEntropyLoss",
        "weight_wrong_length",
        randn(4, 5),
        labels(0, 1, 2, 1),
        ctor=((5, 3), {"weight": rand(4)}),
    )
    add("LinearCrossEntropyLoss", "positional_ctor", randn(4, 5), labels(0, 1, 2, 1), ctor=((5, 3), {"bias": True}))
    _kl_div_samples(add, randn, rand)
    return tuple(cases)


def _kl_div_samples(add: Any, randn: Any, rand: Any) -> None:
    """Edge and error cases of ``kl_div`` and ``KLDivLoss`` (issue 28) that torch's sample functions do not draw."""
    import torch

    f64 = torch.float64
    kl = "kl_div"

    def log_q(*shape: int, dtype: Any = torch.float32) -> Any:
        return randn(*shape, dtype=f64, grad=False).log_softmax(-1).to(dtype).requires_grad_()

    def p(*shape: int, dtype: Any = torch.float32, grad: bool = False) -> Any:
        return rand(*shape, dtype=f64).softmax(-1).to(dtype).requires_grad_(grad)

    add(kl, "batchmean_3d", log_q(2, 3, 5), p(2, 3, 5), reduction="batchmean")
    add(kl, "batchmean_1d", log_q(5), p(5), reduction="batchmean")
    add(kl, "batchmean_0d", log_q(5)[0].detach().requires_grad_(), p(5)[0], reduction="batchmean")
    add(kl, "log_target", log_q(4, 5), p(4, 5).log(), reduction="sum", log_target=True)
    add(kl, "target_requires_grad", log_q(4, 5), p(4, 5, grad=True), reduction="batchmean")
    add(kl, "log_target_requires_grad", log_q(4, 5), p(4, 5).log().requires_grad_(), log_target=True)
    add(
        kl,
        "target_zero_input_minus_inf",
        torch.tensor([[0.0, -torch.inf]], requires_grad=True),
        torch.tensor([[1.0, 0.0]]),
    )
    add(
        kl,
        "log_target_minus_inf",
        log_q(2, 3),
        torch.tensor([[0.0, -torch.inf, -torch.inf], [-0.5, -1.0, -2.0]]),
        reduction="sum",
        log_target=True,
    )
    add(kl, "negative_target", log_q(2, 3), torch.tensor([[0.5, -0.1, 0.6], [0.2, 0.3, 0.5]]), reduction="sum")
    add(kl, "target_above_one", log_q(2, 3), torch.tensor([[1.5, 0.0, 0.0], [0.2, 0.3, 0.5]]), reduction="sum")
    add(kl, "nan_input", torch.tensor([[torch.nan, -1.0]], requires_grad=True), torch.tensor([[0.5, 0.5]]))
    add(kl, "broadcast_input", log_q(3), p(2, 3), reduction="sum")
    add(kl, "broadcast_target", log_q(2, 3), p(3), reduction="batchmean")
    add(kl, "shape_mismatch", log_q(2, 3), p(2, 4))
    add(kl, "dtype_mismatch", log_q(2, 3), p(2, 3, dtype=f64), reduction="sum")
    add(kl, "integer_input", torch.zeros(2, 3, dtype=torch.long), p(2, 3))
    add(kl, "empty_mean", log_q(0, 3), p(0, 3))
    add(kl, "empty_batchmean", log_q(0, 3), p(0, 3), reduction="batchmean")
    add(kl, "reduction_invalid", log_q(2, 3), p(2, 3), reduction="average")
    add(kl, "size_average_false", log_q(2, 3), p(2, 3), size_average=False)
    add(kl, "reduce_false", log_q(2, 3), p(2, 3), reduce=False)
    add(kl, "size_average_false_batchmean", log_q(4, 3), p(4, 3), size_average=False, reduction="batchmean")
    add(kl, "positional_all", log_q(4, 3), p(4, 3).log(), None, None, "batchmean", True)
    add(kl, "bfloat16", log_q(8, 50, dtype=torch.bfloat16), p(8, 50, dtype=torch.bfloat16), dtype=torch.bfloat16)
    add(
        kl,
        "float16_sum",
        log_q(8, 50, dtype=torch.float16),
        p(8, 50, dtype=torch.float16),
        reduction="sum",
        dtype=torch.float16,
    )
    fwd = (log_q(4, 3), p(4, 3))
    for flags in ({"size_average": False}, {"reduce": False}, {"size_average": True, "reduce": True}):
        name = "_".join(f"{k}_{str(v).lower()}" for k, v in flags.items())
        add("KLDivLoss", name, *fwd, ctor=((), flags))
    add("KLDivLoss", "reduction_invalid", *fwd, ctor=((), {"reduction": "average"}))
    add(
        "KLDivLoss",
        "batchmean_log_target",
        log_q(4, 3),
        p(4, 3).log(),
        ctor=((), {"reduction": "batchmean", "log_target": True}),
    )
    add("KLDivLoss", "positional_ctor", *fwd, ctor=((None, None, "sum", True), {}))
