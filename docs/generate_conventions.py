"""Write docs/conventions.md: the same inputs through every named convention.

Run ``python docs/generate_conventions.py`` after changing a convention; a test
regenerates the page and fails when the committed copy differs, so the page
cannot drift from the code. Every number here comes from ``crossentropy``;
the parity tests (tests/test_losses_parity.py) prove each column equal to the
library it names.
"""

from __future__ import annotations

import inspect
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

import crossentropy as ce

F32 = np.float32
L = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.0, 1.0, 1.0]], F32)

CASES: list[tuple[str, Callable[[str], object]]] = [
    (
        "BCE, y = [1, 1, 1], p = [1, 1, 0] (float32)",
        lambda c: ce.binary_cross_entropy(np.ones(3, F32), np.array([1, 1, 0], F32), convention=c),
    ),
    (
        "BCE, y = [1, 0, 1], p = [0, 0, 1] (float64, the TensorFlow blog's NumPy example)",
        lambda c: ce.binary_cross_entropy([1.0, 0.0, 1.0], [0.0, 0.0, 1.0], convention=c),
    ),
    (
        "BCE, the original article's ten predictions (0.247 nats)",
        lambda c: ce.binary_cross_entropy(
            [1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3], convention=c
        ),
    ),
    (
        "BCE from logits, x = -200, y = 1",
        lambda c: ce.binary_cross_entropy(np.ones(1, F32), np.array([-200.0], F32), from_logits=True, convention=c),
    ),
    (
        "BCE, y = [[1], [0]], p = [[0.2], [0.7]], sample_weight = [2, 1]",
        lambda c: ce.binary_cross_entropy(
            [[1.0], [0.0]],
            np.array([[0.2], [0.7]], F32),
            sample_weight=np.array([2.0, 1.0], F32)[:, None] if c not in ("keras", "tf-keras2") else [2.0, 1.0],
            convention=c,
        ),
    ),
    (
        "BCE, y = 1, p = 0.9, label_smoothing = 0.2",
        lambda c: ce.binary_cross_entropy([1.0], np.array([0.9], F32), label_smoothing=0.2, convention=c),
    ),
    (
        "CCE, y = [1, 0], p = [0.4, 0.4] (row sums to 0.8)",
        lambda c: ce.categorical_cross_entropy([1.0, 0.0], np.array([0.4, 0.4], F32), convention=c),
    ),
    (
        "CCE from logits, y = [1, 0, 0], x = [0, -inf, 1] (masked class)",
        lambda c: ce.categorical_cross_entropy(
            [1.0, 0.0, 0.0], np.array([0.0, -np.inf, 1.0], F32), from_logits=True, convention=c
        ),
    ),
    (
        "sparse CE from logits L, labels [0, 1, 2]",
        lambda c: ce.sparse_categorical_cross_entropy([0, 1, 2], L, from_logits=True, convention=c),
    ),
    (
        "sparse CE, L, labels [0, 1, 2], class_weight = [1, 2, 3]",
        lambda c: ce.sparse_categorical_cross_entropy(
            [0, 1, 2], L, from_logits=True, class_weight=[1.0, 2.0, 3.0], convention=c
        ),
    ),
    (
        "sparse CE, L, labels [0, 1, 2], label_smoothing = 0.1",
        lambda c: ce.sparse_categorical_cross_entropy(
            [0, 1, 2], L, from_logits=True, label_smoothing=0.1, convention=c
        ),
    ),
    (
        "sparse CE, L, every label ignored (ignore_index = -1)",
        lambda c: ce.sparse_categorical_cross_entropy([-1, -1, -1], L, from_logits=True, ignore_index=-1, convention=c),
    ),
    (
        "log_loss([0, 1], [[0.5, 0.3], [0.2, 0.2]]) (rows not summing to 1)",
        lambda c: ce.log_loss([0, 1], [[0.5, 0.3], [0.2, 0.2]], convention=c),
    ),
    (
        "binary focal, y = [[0, 1], [0, 0]], p = [[0.6, 0.4], [0.4, 0.6]]",
        lambda c: ce.binary_focal_loss([[0.0, 1.0], [0.0, 0.0]], np.array([[0.6, 0.4], [0.4, 0.6]], F32), convention=c),
    ),
]


def _cell(compute: Callable[[str], object], convention: str) -> str:
    try:
        value = float(_cell_value(compute, convention))  # type: ignore[arg-type]
    except ce.InputError as exc:
        return "—" if " has no " in str(exc) else "error"
    return f"{value:.7g}"


WHY = [
    "**Epsilon and clipping.** The mathematics says a prediction of 0 for the true class costs infinitely "
    "much. Keras clips probabilities to `[1e-7, 1 - 1e-7]` (TensorFlow 2's Keras then adds `1e-7` again "
    "inside the log), scikit-learn clips at the machine epsilon of the dtype, and PyTorch's `BCELoss` "
    "clamps each log at -100: each turns the infinity into a different finite number.",
    "**Rows that do not add up to 1.** Keras divides each row by its sum, and PyTorch and optax take "
    "probabilities through a log-softmax, which does the same; scikit-learn uses the row as given (with a "
    "warning); the exact convention refuses it. Hence 0.693 in one column and 0.916 or an error in another.",
    "**What a mean divides by.** With sample or class weights, or ignored labels, some libraries divide "
    "the weighted sum by the number of rows and others by the total weight; over a batch with every label "
    "ignored the mean is NaN in PyTorch and 0 in Keras.",
    "**Options and their formulas.** Label smoothing, class weights and masked (`-inf`) logits are "
    "written differently or not at all: Keras's sparse loss has no smoothing, optax has no class weights, "
    "and `0 * -inf` is NaN in most libraries where the mathematics says 0.",
]

_ROLE = re.compile(r":(?:data|func|class|meth|attr|mod):`~?([^`]+)`")


def _plain(doc: str) -> str:
    """A docstring as Markdown: Sphinx roles become code, a convention object becomes its name."""

    def name(match: re.Match[str]) -> str:
        target = match.group(1).split(".")[-1]
        obj = getattr(ce.conventions, target, None)
        if isinstance(obj, ce.conventions.Convention):
            return f"the `{obj.name}` convention"
        return f"`{target}`"

    return _ROLE.sub(name, doc)


def _rows_not_summing_to_one(convention: str) -> str:
    """What a convention does with probabilities whose row sums to 0.8, read off its result."""
    try:
        value = float(
            _cell_value(lambda c: ce.categorical_cross_entropy([1.0, 0.0], [0.4, 0.4], convention=c), convention)
        )  # type: ignore[arg-type]
    except ce.InputError:
        return "refused (`InputError` naming the row)"
    if math.isclose(value, math.log(2), rel_tol=1e-9):
        return "divided by their sum first (renormalised: `[0.4, 0.4]` counts as `[0.5, 0.5]`, loss 0.693)"
    if math.isclose(value, -math.log(0.4), rel_tol=1e-9):
        warned = " with a warning" if ce.conventions.get(convention).sum_check == "warn" else ""
        return f"used as given{warned} (`[0.4, 0.4]` gives loss 0.916)"
    return f"loss {value:.4g} for `[0.4, 0.4]`"


def _cell_value(compute: Callable[[str], object], convention: str) -> object:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute(convention)


def render() -> str:
    names = ce.conventions.NAMES
    lines = [
        "# Conventions",
        "",
        "<!-- generated by docs/generate_conventions.py; do not edit by hand -->",
        "",
        "Every loss takes `convention=`. The default, `exact`, is the mathematics; the others reproduce",
        "a library's number for the same call.",
        "",
        "## Why the libraries disagree",
        "",
        *[f"- {line}" for line in WHY],
        "",
        "## The same inputs, every convention",
        "",
        "Each column below is computed by `crossentropy` and proven equal to the library it names by the",
        "parity tests (`tests/test_losses_parity.py`), which call the installed libraries. A dash means the",
        'library has no such option: `crossentropy` raises `InputError` rather than guess. "error" means',
        "the input is invalid under that convention (`InputError` naming the bad row). On a narrow screen,",
        "scroll the table sideways to see every column.",
        "",
        '`L = [[2, 1, 0.1], [0.5, 2.5, 0.3], [1, 1, 1]]` (float32 logits). Values are means (`reduction="mean"`).',
        "",
        "| input | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label, compute in CASES:
        lines.append(f"| {label} | " + " | ".join(_cell(compute, n) for n in names) + " |")
    lines += ["", "## What each convention computes", ""]
    for conv in ce.conventions.ALL:
        lines += [f"### `{conv.name}` — {conv.library}", ""]
        lines += [_plain(inspect.cleandoc(type(conv).__doc__ or "")), ""]
        facts = [
            f"clipping constant: {conv.epsilon if conv.epsilon is not None else 'none or dtype-dependent'}",
            f"probabilities whose row does not add up to 1: {_rows_not_summing_to_one(conv.name)}",
            f"default ignore_index: {conv.default_ignore_index}",
            f"options it lacks: {', '.join(sorted(conv.unsupported)) or 'none'}",
        ]
        lines += [f"- {fact}" for fact in facts] + [""]
    return "\n".join(lines)


def main() -> int:
    target = Path(__file__).with_name("conventions.md")
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
