"""``crossentropy tutorial`` as a lesson: each subject, its explanation, its numbers with their units, and beside
each number, second, the check against the teaching text; the verdict last, in English or in Korean.

A module of its own because it is presentation: :mod:`._tutorial` holds the
content and computes the numbers, this module decides how a reader sees them
(a terminal table that fits 80 columns, JSON, CSV rows).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._tutorial import UNITS, Check, Section

__all__ = ["payload", "print_lesson", "tables", "value_text", "verdict"]

WORDS: dict[str, dict[str, str]] = {
    "heading": {"en": "The worked examples of the five teaching texts, recomputed by crossentropy",
                "ko": "다섯 교재의 계산 예제를 crossentropy로 다시 계산하기"},
    "how": {
        "en": "Value: what the library computes, with its unit. In the text: the number the text reports, "
        "✓ where the two agree to every digit the text gives.",
        "ko": "값: 라이브러리가 계산한 값과 단위. 원문: 교재가 보고한 수치이며, 교재가 적은 자릿수까지 "
        "두 값이 같으면 ✓.",
    },
    "from": {"en": "Source:", "ko": "출처:"},
    "quantity": {"en": "Quantity", "ko": "항목"},
    "value": {"en": "Value", "ko": "값"},
    "text": {"en": "In the text", "ko": "원문"},
}  # fmt: skip
SINGULAR = {"bits": "bit", "nats": "nat", "epochs": "epoch"}


def _number(value: float, precision: int) -> str:
    """``value`` to ``precision`` significant digits, without an exponent; a rounding residue below 5e-13 is 0."""
    if abs(value) < 5e-13:
        return "0"
    return str(np.format_float_positional(value, precision=precision, unique=False, fractional=False, trim="-"))


def value_text(check: Check, lang: str, precision: int) -> str:
    """The computed value as the lesson shows it: rounded, with its unit (``3.288 bits``, ``95.19 %``, ``∞ nats``)."""
    v, unit = check.computed, UNITS[check.unit][lang]
    if math.isinf(v):
        return check.infinite[lang] if check.infinite else f"{'-' if v < 0 else ''}∞ {unit}"
    if check.unit == "share":
        return f"{_number(100 * v, precision)} %"
    number = _number(v, precision)
    if lang == "en" and number == "1":
        unit = SINGULAR.get(unit, unit)
    return f"{number} {unit}"


def _reported(check: Check) -> str:
    if check.reported is None:
        return ""
    shown = "∞" if check.reported == "inf" else check.reported
    return f"{shown} {'✓' if check.ok else '✗'}"


def verdict(sections: list[Section], lang: str) -> tuple[bool, str]:
    """Whether every number the texts report is reproduced, and the sentence that says so."""
    reported = [c for s in sections for c in s.checks if c.ok is not None]
    failed = [c for c in reported if not c.ok]
    if not failed:
        if lang == "ko":
            return True, f"교재가 보고한 수치 {len(reported)}개가 모두 재현되었습니다."
        return True, f"All {len(reported)} numbers the texts report are reproduced."
    listed = "; ".join(c.label[lang] for c in failed[:3]) + ("; ..." if len(failed) > 3 else "")
    if lang == "ko":
        return False, f"교재가 보고한 수치 {len(reported)}개 중 {len(failed)}개가 재현되지 않았습니다: {listed}"
    return False, f"{len(failed)} of the {len(reported)} numbers the texts report are NOT reproduced: {listed}"


def print_lesson(sections: list[Section], lang: str, precision: int, file: Any = None) -> None:
    """Print the lesson with rich, to the terminal's width (80 columns when not a terminal); the verdict last."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=file, highlight=False)
    console.print(Text(WORDS["heading"][lang], style="bold"))
    console.print(Text(WORDS["how"][lang], style="dim"))
    for section in sections:
        console.print()
        console.print(Text(section.title[lang], style="bold underline"))
        console.print(Text(f"{WORDS['from'][lang]} {section.source[lang]}", style="dim italic"))
        console.print(Text(section.text[lang]))
        if not section.checks:
            continue
        console.print()
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        table.add_column(WORDS["quantity"][lang], ratio=1, overflow="fold")
        table.add_column(WORDS["value"][lang], justify="right")
        table.add_column(WORDS["text"][lang], justify="right", style="dim")
        for check in section.checks:
            table.add_row(check.label[lang], value_text(check, lang, precision), _reported(check))
        console.print(table)
    ok, sentence = verdict(sections, lang)
    console.print()
    console.print(Text(sentence, style="bold green" if ok else "bold red"))


def payload(sections: list[Section], lang: str) -> dict[str, Any]:
    """Everything, for ``--format json``: every digit of each computed value, its unit, the text's figure."""
    ok, sentence = verdict(sections, lang)
    return {
        "sections": [
            {
                "key": s.key,
                "title": s.title[lang],
                "source": s.source[lang],
                "text": s.text[lang],
                "checks": [
                    {
                        "quantity": c.label[lang],
                        "computed": c.computed,
                        "unit": UNITS[c.unit][lang],
                        "reported": c.reported,
                        "ok": c.ok,
                    }
                    for c in s.checks
                ],
            }
            for s in sections
        ],
        "all_reproduced": ok,
        "verdict": sentence,
    }


def tables(sections: list[Section], lang: str) -> list[tuple[str, list[str], list[list[Any]]]]:
    """One table per subject, for ``--format csv``: quantity, value, unit, the text's figure, reproduced."""
    answer = {True: "yes", False: "NO", None: ""}
    return [
        (
            s.title[lang],
            ["quantity", "value", "unit", "text", "reproduced"],
            [[c.label[lang], c.computed, UNITS[c.unit][lang], c.reported or "", answer[c.ok]] for c in s.checks],
        )
        for s in sections
    ]
