"""``crossentropy tutorial``: a lesson at 80 columns in English and Korean, every number with its unit and checked
against the teaching texts, and its seven figures, in Korean too, with a font that has Hangul."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import warnings

import pytest

from crossentropy import _lesson, _tutorial
from crossentropy._tutorial import UNITS, Check, Section, sections

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def lessons():
    """The tutorial's sections, computed once for the module (the training runs take a few seconds)."""
    return sections()


def _cells(line: str) -> int:
    from rich.cells import cell_len

    return cell_len(line)


def test_every_number_the_texts_report_is_reproduced(cli):
    pytest.importorskip("scipy")  # the continuous distributions
    pytest.importorskip("sklearn")  # the training runs
    code, out, err = cli("tutorial", "--format", "json")
    assert code == 0
    assert err == ""
    data = json.loads(out)
    assert data["all_reproduced"] is True
    assert data["verdict"] == "All 62 numbers the texts report are reproduced."
    assert [s["key"] for s in data["sections"]] == ["000", "001", "001-train", "002", "003", "004", "continuous"]
    first = {c["quantity"]: c for c in data["sections"][0]["checks"]}
    assert first["cross-entropy H(P, Q)"] == {
        "quantity": "cross-entropy H(P, Q)",
        "computed": pytest.approx(3.2879430946, abs=1e-10),
        "unit": "bits",
        "reported": "3.2879430946",
        "ok": True,
    }
    assert first["their mean: the binary cross-entropy"]["reported"] == "0.2469198908"
    assert first["their mean: the binary cross-entropy"]["unit"] == "nats"
    checks = [c for s in data["sections"] for c in s["checks"]]
    assert all(c["unit"] for c in checks)
    reported = [c for c in checks if c["reported"] is not None]
    assert len(reported) == 62
    assert all(c["ok"] for c in reported)
    # the saturated start shows the point: cross-entropy recovers, squared error never does
    training = {c["quantity"]: c for c in data["sections"][2]["checks"]}
    assert training["saturated start: epochs to 90 % test accuracy, cross-entropy"]["computed"] < 100
    assert training["saturated start: epochs to 90 % test accuracy, squared error"]["computed"] == "inf"
    assert training["saturated start: test accuracy after 100 epochs, cross-entropy"]["computed"] > 0.9
    assert training["saturated start: test accuracy after 100 epochs, squared error"]["computed"] < 0.1


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_lesson_reads_as_a_lesson_at_80_columns(cli, monkeypatch, lessons, lang):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(_tutorial, "sections", lambda: lessons)
    code, out, err = cli("tutorial", "--lang", lang)
    assert code == 0
    assert err == ""  # the verdict is on stdout, last
    lines = out.splitlines()
    assert max(_cells(line) for line in lines) <= 80
    words = _lesson.WORDS
    assert [line for line in lines if line.strip()][-1] == _lesson.verdict(lessons, lang)[1]
    # sections named by their subject, then where they come from; no section IDs, no test-log columns
    flat = " ".join(out.split())
    for section in lessons:
        assert section.title[lang] in out
        assert f"{words['from'][lang]} {section.source[lang]}" in flat
    assert not re.search(r"\[(000|001|001-train|002|003|004|continuous)\]", out)
    assert not re.search(r"\b(ok|computed)\b", out)
    headers = [line for line in lines if line.startswith(words["quantity"][lang])]
    assert len(headers) == sum(1 for s in lessons if s.checks)
    assert headers[0].index(words["value"][lang]) < headers[0].index(words["text"][lang])  # the check is second
    # every number with its unit, rounded for reading: no float residue such as 1.38778e-17
    assert not re.search(r"\d[eE][-+]?\d", out.replace("1e-7", "").replace("2e-7", ""))
    for check in (c for s in lessons for c in s.checks):
        shown = _lesson.value_text(check, lang, 4)
        assert shown in out.replace("\n", " ") or _folded(shown, out), shown
        units = (UNITS[check.unit][lang], _lesson.SINGULAR.get(UNITS[check.unit][lang], "-"))
        assert check.infinite or shown.endswith(units), shown
    if lang == "ko":
        assert HANGUL.search(headers[0])
        assert "비트" in out
        assert "내트" in out
        assert "3.288 비트" in out


def _folded(shown: str, out: str) -> bool:
    """A value that rich folded over two lines of its column."""
    flat = re.sub(r"\s+", " ", out)
    return all(part in flat for part in shown.split())


def test_values_keep_their_units_and_the_texts_digits_come_second(lessons):
    pytest.importorskip("scipy")
    pytest.importorskip("sklearn")
    checks = {c.label["en"]: c for s in lessons for c in s.checks}
    assert _lesson.value_text(checks["cross-entropy H(P, Q)"], "en", 4) == "3.288 bits"
    assert _lesson.value_text(checks["cross-entropy H(P, Q)"], "ko", 4) == "3.288 비트"
    assert _lesson.value_text(checks["largest entropy of 2 classes (uniform)"], "en", 4) == "1 bit"
    assert _lesson.value_text(checks["true class given probability 0.0"], "en", 4) == "∞ nats"
    gap = checks["largest gap between dCE/dz and softmax - one-hot"]
    assert 0 < gap.computed < 1e-15  # a rounding residue, shown as the 0 it is
    assert _lesson.value_text(gap, "en", 4) == "0 nats per logit"
    saturated = checks["saturated start: epochs to 90 % test accuracy, squared error"]
    assert _lesson.value_text(saturated, "en", 4) == "not within 100 epochs"
    assert _lesson.value_text(saturated, "ko", 4) == "100 에포크 안에 못 함"
    accuracy = checks["saturated start: test accuracy after 100 epochs, cross-entropy"]
    assert re.fullmatch(r"9\d\.\d\d %", _lesson.value_text(accuracy, "en", 4))
    assert _lesson._reported(checks["cross-entropy H(P, Q)"]) == "3.2879430946 ✓"
    assert _lesson._reported(checks["differential entropy of N(0, 1)"]) == ""


def test_a_number_that_does_not_reproduce_is_named_in_the_verdict(cli, monkeypatch, lessons):
    wrong = Section(
        "x",
        {"en": "A wrong number", "ko": "틀린 수치"},
        {"en": "a test", "ko": "시험"},
        {"en": "", "ko": ""},
        [Check({"en": "one third", "ko": "삼분의 일"}, 1 / 3, "0.334", "bits")],
    )
    monkeypatch.setattr(_tutorial, "sections", lambda: [*lessons, wrong])
    total = 1 + sum(1 for s in lessons for c in s.checks if c.reported is not None)
    code, out, _ = cli("tutorial")
    assert code == 1
    assert f"1 of the {total} numbers the texts report are NOT reproduced: one third" in out
    assert "0.334 ✗" in out
    code, out, _ = cli("tutorial", "--lang", "ko")
    assert code == 1
    assert f"교재가 보고한 수치 {total}개 중 1개가 재현되지 않았습니다: 삼분의 일" in out


def test_csv_keeps_stdout_for_the_rows(cli, monkeypatch, lessons):
    monkeypatch.setattr(_tutorial, "sections", lambda: lessons)
    code, out, err = cli("tutorial", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["section", "quantity", "value", "unit", "text", "reproduced"]
    first = next(r for r in rows if r[1] == "cross-entropy H(P, Q)")
    assert first[2:] == ["3.288", "bits", "3.2879430946", "yes"]
    assert err.strip() == _lesson.verdict(lessons, "en")[1]


# --- the figures ----------------------------------------------------------------------------------------------


def test_every_figure_speaks_korean(lessons):
    from crossentropy._tutorial_figures import FIGURES

    assert len(FIGURES) == 7
    for name, texts in FIGURES.items():
        english, korean = texts["en"], texts["ko"]
        for part in ("title", "xlabel", "ylabel"):
            assert HANGUL.search(getattr(korean, part)), (name, part)
            assert not HANGUL.search(getattr(english, part)), (name, part)
        assert len(korean.legend) == len(english.legend)
        for entry in korean.legend:
            assert HANGUL.search(entry) or entry.startswith("$"), (name, entry)
        for entry in english.legend:  # plain words: no "seed text", no "computed at 599 points"
            assert "seed" not in entry
            assert "computed at" not in entry


def test_korean_figures_differ_from_english_and_need_no_missing_glyph(tmp_path, lessons):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    from crossentropy._tutorial_figures import FIGURES, hangul_font, write_plots

    try:
        hangul_font()
    except Exception as exc:  # no font with Hangul here: say so, do not pass
        pytest.skip(f"no font with Hangul: {exc}")
    import matplotlib

    family = list(matplotlib.rcParams["font.family"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph ... missing from font(s)" warning fails the test
        english = write_plots(tmp_path / "en")
        korean = write_plots(tmp_path / "ko", lang="ko")
    assert [p.name for p in english] == [p.name for p in korean] == list(FIGURES)
    for en, ko in zip(english, korean, strict=True):
        assert en.read_bytes() != ko.read_bytes(), en.name
        assert ko.stat().st_size > 5000
    assert list(matplotlib.rcParams["font.family"]) == family  # the Korean font was used inside the figures only
    assert "koreanize_matplotlib" not in sys.modules  # its font file is used; the package, which changes rcParams,
    # is never imported


def test_the_font_found_has_every_hangul_letter_the_figures_use():
    pytest.importorskip("matplotlib")
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    from crossentropy._tutorial_figures import COLOUR_NAMES, FIGURES, hangul_font

    try:
        family = hangul_font()
    except Exception as exc:
        pytest.skip(f"no font with Hangul: {exc}")
    font = FT2Font(findfont(FontProperties(family=family), fallback_to_default=False))
    texts = [t for f in FIGURES.values() for t in (f["ko"].title, f["ko"].xlabel, f["ko"].ylabel, *f["ko"].legend)]
    letters = set(HANGUL.findall("".join(texts + COLOUR_NAMES["ko"])))
    assert len(letters) > 40
    assert [ch for ch in sorted(letters) if not font.get_char_index(ord(ch))] == []


def test_without_a_hangul_font_the_korean_figures_are_refused_in_one_line(cli, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from crossentropy import _tutorial_figures

    _tutorial_figures.hangul_font.cache_clear()
    monkeypatch.setattr(_tutorial_figures, "_candidates", list)
    try:
        code, _, err = cli("tutorial", "--plots", str(tmp_path), "--lang", "ko", "--format", "json")
    finally:
        _tutorial_figures.hangul_font.cache_clear()
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "font with Hangul" in lines[0]
    assert "koreanize-matplotlib" in lines[0]


def test_the_command_writes_the_seven_figures_in_the_language_asked(cli, monkeypatch, lessons, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    from crossentropy._tutorial_figures import FIGURES, hangul_font

    try:
        hangul_font()
    except Exception as exc:
        pytest.skip(f"no font with Hangul: {exc}")
    monkeypatch.setattr(_tutorial, "sections", lambda: lessons)
    code, out, err = cli("tutorial", "--plots", str(tmp_path), "--lang", "ko", "--format", "json")
    assert code == 0
    assert json.loads(out)["verdict"] == _lesson.verdict(lessons, "ko")[1]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(FIGURES)
    assert err.splitlines() == [f"wrote {tmp_path / name}" for name in FIGURES]
