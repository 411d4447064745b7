"""The tutorial's seven figures, in English or in Korean (``crossentropy tutorial --plots DIR [--lang ko]``).

A module of its own because it is content: what each figure says, in each
language, and the one thing Korean needs that English does not, a font with
Hangul. :mod:`crossentropy.plot` draws; this module picks the data, then writes
every title, axis label and legend entry in the reader's language.

The Hangul font is looked for, in order, in the ``koreanize-matplotlib``
package (its NanumGothic; the ``cli`` extra installs it; found on disk, never
imported, since importing it changes matplotlib's global settings), then
among the fonts matplotlib knows (NanumGothic, Noto Sans CJK KR, Malgun
Gothic, Apple SD Gothic Neo, ... or any other font with Hangul). It is used
only inside the Korean figures, with DejaVu Sans after it for the glyphs it
lacks (the minus sign, ``∞``), so matplotlib never reports a missing glyph.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._tutorial import COLOURS, RANDOM_EPOCHS, SATURATED_EPOCHS, P, Q, training_runs
from ._validation import InputError

__all__ = ["FIGURES", "hangul_font", "write_plots"]

LANGUAGES = ("en", "ko")
KOREAN_FAMILIES = (
    "NanumGothic",
    "NanumBarunGothic",
    "Noto Sans CJK KR",
    "Noto Sans KR",
    "Source Han Sans KR",
    "Malgun Gothic",
    "Apple SD Gothic Neo",
    "AppleGothic",
    "UnDotum",
    "Baekmuk Gulim",
)
"""Fonts with Hangul that matplotlib may find on a system, tried before any other font."""


@dataclass(frozen=True)
class Text:
    """What one figure says: title, axis labels and the legend's entries in the order they are drawn."""

    title: str
    xlabel: str
    ylabel: str
    legend: Sequence[str]


def _curve(log: str, unit: dict[str, str]) -> dict[str, Text]:
    marks = "q = 0.1, 0.2, …, 1"
    return {
        "en": Text(
            rf"The loss of one prediction: ${log}\,q$",
            "$q$, the probability the model gives to the true class",
            f"cross-entropy ({unit['en']})",
            [rf"${log}\,q$", f"predictions {marks}"],
        ),
        "ko": Text(
            rf"예측 하나의 손실: ${log}\,q$",
            "$q$, 모델이 정답 클래스에 준 확률",
            f"교차 엔트로피 ({unit['ko']})",
            [rf"${log}\,q$", f"예측 {marks}"],
        ),
    }


def _training(start: dict[str, str], epochs: int) -> dict[str, Text]:
    return {
        "en": Text(
            f"Digits, {start['en']} start, {epochs} epochs: test accuracy",
            "epoch (0 = before training)",
            "share of test digits recognised",
            ["trained with cross-entropy", "trained with squared error"],
        ),
        "ko": Text(
            f"손글씨 숫자, {start['ko']} 시작, {epochs} 에포크: 테스트 정확도",
            "에포크 (0 = 학습 전)",
            "맞게 알아본 테스트 숫자의 비율",
            ["교차 엔트로피로 학습", "제곱 오차로 학습"],
        ),
    }


FIGURES: dict[str, dict[str, Text]] = {
    "three_colours_p_and_q.png": {
        "en": Text(
            "Three colours: P (the truth) and Q (the model)", "event", "probability", ["P (the truth)", "Q (the model)"]
        ),
        "ko": Text("세 가지 색: P (정답)와 Q (모델)", "사건", "확률", ["P (정답)", "Q (모델)"]),
    },
    "loss_of_one_prediction.png": _curve(r"-\ln", {"en": "nats", "ko": "내트"}),
    "loss_of_one_prediction_bits.png": _curve(r"-\log_2", {"en": "bits", "ko": "비트"}),
    "largest_entropy_of_k_classes.png": {
        "en": Text(
            r"The largest entropy of $K$ classes is $\log_2 K$",
            "number of classes $K$",
            "largest entropy (bits)",
            ["uniform over $K$ classes", "$K = 2^k$ classes: $k$ bits"],
        ),
        "ko": Text(
            r"클래스 $K$개의 최대 엔트로피는 $\log_2 K$",
            "클래스 수 $K$",
            "최대 엔트로피 (비트)",
            ["클래스 $K$개의 균등 분포", "클래스 $K = 2^k$개: $k$ 비트"],
        ),
    },
    "gradient_cross_entropy_vs_squared_error.png": {
        "en": Text(
            "The gradient of each loss, for one sigmoid output",
            "$p$, the probability the model gives to the true class",
            r"$|\partial L / \partial z|$, per unit of the logit $z$",
            ["cross-entropy: $1 - p$", "squared error: $2p(1 - p)^2$"],
        ),
        "ko": Text(
            "시그모이드 출력 하나에서 각 손실의 기울기",
            "$p$, 모델이 정답 클래스에 준 확률",
            r"$|\partial L / \partial z|$, 로짓 $z$ 1당",
            ["교차 엔트로피: $1 - p$", "제곱 오차: $2p(1 - p)^2$"],
        ),
    },
    "training_digits_random_start.png": _training({"en": "random", "ko": "무작위"}, RANDOM_EPOCHS),
    "training_digits_saturated_start.png": _training({"en": "saturated", "ko": "포화된"}, SATURATED_EPOCHS),
}
"""Every figure's file name and what it says in each language."""

COLOUR_NAMES = {"en": COLOURS, "ko": ["빨강", "초록", "파랑"]}


def _has_hangul(path: Path) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        return bool(FT2Font(str(path)).get_char_index(ord("가")))
    except (OSError, RuntimeError, ValueError):
        return False


def _candidates() -> list[Path]:
    from matplotlib import font_manager

    found: list[Path] = []
    spec = importlib.util.find_spec("koreanize_matplotlib")  # located, not imported
    if spec is not None and spec.submodule_search_locations:
        found += [Path(location) / "fonts" / "NanumGothic.ttf" for location in spec.submodule_search_locations]
    fonts = font_manager.fontManager.ttflist
    found += [Path(f.fname) for name in KOREAN_FAMILIES for f in fonts if f.name == name]
    found += [Path(f.fname) for f in fonts if f.name not in KOREAN_FAMILIES]
    return found


@functools.cache
def hangul_font() -> str:
    """The family name of a font with Hangul, registered with matplotlib; :class:`InputError` if there is none."""
    from matplotlib import font_manager

    for path in _candidates():
        if path.is_file() and _has_hangul(path):
            font_manager.fontManager.addfont(str(path))
            return str(font_manager.FontProperties(fname=str(path)).get_name())
    raise InputError(
        "the Korean figures need a font with Hangul and none was found: pip install 'crossentropy[cli]' "
        "(it brings koreanize-matplotlib's NanumGothic), or install a Korean font such as NanumGothic"
    )


def _say(ax: Any, text: Text) -> None:
    """Write ``text`` on an Axes drawn by :mod:`crossentropy.plot`, keeping its legend's handles."""
    ax.set_title(text.title)
    ax.set_xlabel(text.xlabel)
    ax.set_ylabel(text.ylabel)
    handles, _ = ax.get_legend_handles_labels()
    if len(handles) != len(text.legend):
        raise AssertionError(f"the figure draws {len(handles)} legend entries; its text has {len(text.legend)}")
    ax.legend(handles, list(text.legend))


def _drawings(lang: str) -> dict[str, Callable[..., Any]]:
    from . import plot

    drawings: dict[str, Callable[..., Any]] = {
        "three_colours_p_and_q.png": lambda ax: plot.distributions(P, Q, names=COLOUR_NAMES[lang], ax=ax),
        "loss_of_one_prediction.png": lambda ax: plot.cross_entropy_curve(ax=ax),
        "loss_of_one_prediction_bits.png": lambda ax: plot.cross_entropy_curve(
            base=2, include_certain_miss=False, ax=ax
        ),
        "largest_entropy_of_k_classes.png": lambda ax: plot.entropy_vs_classes(ax=ax),
        "gradient_cross_entropy_vs_squared_error.png": lambda ax: plot.gradient_magnitude(ax=ax),
    }
    runs = training_runs()
    if runs is not None:
        for init in ("random", "saturated"):
            named = {"cross-entropy": runs[init]["ce"].as_dict(), "squared error": runs[init]["mse"].as_dict()}
            drawings[f"training_digits_{init}_start.png"] = functools.partial(plot.learning_curves, named)
    return drawings


def write_plots(directory: str | Path, *, lang: str = "en") -> list[Path]:
    """Write the figures the texts describe as PNG files named after what they show; return their paths.

    With ``lang="ko"`` every title, axis label and legend entry is Korean,
    drawn with :func:`hangul_font`. The two training figures need
    scikit-learn's digits and are left out without it.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from .io import save_figure

    if lang not in LANGUAGES:
        raise InputError(f"lang must be one of {', '.join(LANGUAGES)}; got {lang!r}")
    rc: Any = {"font.family": [hangul_font(), "DejaVu Sans"]} if lang == "ko" else {}
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(rc):
        for name, draw in _drawings(lang).items():
            fig = Figure(figsize=(6.4, 4.0), layout="constrained")
            ax = fig.add_subplot()
            draw(ax=ax)
            _say(ax, FIGURES[name][lang])
            path = out / name
            save_figure(fig, path, dpi=100)
            written.append(path)
    return written
