"""What a terminal of 80 columns shows for ``compare``, ``train`` and ``score``: units, aligned numbers, the
reason behind an infinite result, and the temperature that would fix a miscalibrated model."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

import crossentropy as ce

pytest.importorskip("pyarrow")
sp = pytest.importorskip("scipy.special")


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def _fits(text: str) -> None:
    assert max(len(line) for line in text.splitlines()) <= 80


def _prose(text: str) -> str:
    """The text with the terminal's line breaks undone."""
    return " ".join(text.split())


def _table(out: str, title: str) -> tuple[list[str], list[list[str]]]:
    """The header lines and the body cells (padding kept) of the rich table under ``title``."""
    lines = out[out.index(title) :].splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    rule = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    cells = [line.split("│")[1:-1] for line in lines[rule + 1 : end]]
    return lines[top + 1 : rule], cells


# --- compare (item 9) ---------------------------------------------------------------------------------------


def test_compare_says_which_event_makes_a_result_infinite(cli):
    code, out, _ = cli("compare", "0.1,0.4,0.5", "0.8,0.2,0", "--names", "red,green,blue", "--base", "2")
    assert code == 0
    _fits(out)
    assert "H(P,Q) and KL(P||Q) are infinite: Q(blue) = 0 but P(blue) = 0.5: the model rules out an event that " \
        "happens." in _prose(out)  # fmt: skip
    assert "H(Q,P)" not in _prose(out).split("JS(P,Q)")[1]  # the reverse is finite: no note for it
    data = json.loads(cli("compare", "0.1,0.4,0.5", "0.8,0.2,0", "--format", "json")[1])
    assert data["H(P,Q)"] == "inf"
    assert data["infinite_because"]["KL(P||Q)"].startswith("Q(event 3) = 0 but P(event 3) = 0.5")
    assert "H(Q,P)" not in data["infinite_because"]
    both = _prose(cli("compare", "0,0.5,0.5", "1,0,0")[1])
    assert "H(P,Q) and KL(P||Q) are infinite: Q(event 2) = 0 but P(event 2) = 0.5 (and 1 more: event 3)" in both
    assert "H(Q,P) and KL(Q||P) are infinite: P(event 1) = 0 but Q(event 1) = 1" in both
    assert "infinite" not in cli("compare", "0.1,0.4,0.5", "0.8,0.15,0.05")[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["0.1,0.4,0.6", "0.8,0.15,0.05"], "P (the truth) adds up to 1.1, not 1: lower its values by 0.1 in total"),
        (
            ["0.1,0.4,0.5", "0.8,0.15,0.0499999"],
            "Q (the model) adds up to 0.9999999, not 1: raise its values by "
            "1e-07 in total (a sum may be off by 1.5e-08)",
        ),
        (["0.1,0.4,0.5", "0.8,0.2"], "P lists 3 numbers and Q lists 2: give one number per event in each"),
        (["0.1,1.4,0.5", "0.8,0.15,0.05", "--names", "red,green,blue"], "P(green) is 1.4, but a probability lies"),
        (["0.1,x,0.5", "0.8,0.15,0.05", "--names", "red,green,blue"], "P(green): 'x' is not a number; type a"),
    ],
)
def test_compare_errors_in_the_explorers_words(cli, argv, message):
    failed = cli("compare", *argv)
    assert failed.code == 2
    assert failed.error_line == f"crossentropy: error: {message}" or message in failed.error_line


def test_compare_plot_draws_the_identity_bars_in_the_explorers_colours(cli, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_hex

    from crossentropy.cli import compare

    drawn = []
    monkeypatch.setattr(compare, "write_figure", lambda fig, path: drawn.append((fig, path)))
    argv = ["compare", "0.1,0.4,0.5", "0.8,0.2,0", "--names", "red,green,blue", "--base", "2", "--plot", "x.svg"]
    assert cli(*argv).code == 0
    (fig, path), = drawn  # fmt: skip
    assert path == "x.svg"
    distributions, bars = fig.axes[:2]
    assert {to_hex(p.get_facecolor()) for p in distributions.patches} == {"#1d4ed8", "#b45309"}
    assert {to_hex(p.get_facecolor()) for p in bars.patches} == {"#475569", "#be123c"}
    assert bars.get_title() == "Cross-entropy = entropy + KL divergence"
    texts = [t.get_text() for t in bars.texts]
    assert "H(P) 1.361 bits + KL(P ‖ Q) ∞ bits = H(P, Q) ∞ bits" in texts
    assert "H(Q) 0.722 bits + KL(Q ‖ P) 2.200 bits = H(Q, P) 2.922 bits" in texts
    assert "∞" in texts  # the mark at the end of the infinite bar
    legend = [t.get_text() for t in bars.get_legend().get_texts()]
    assert legend[0].startswith("entropy of the distribution taken as the truth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Glyph ... missing" for ‖ or ∞
        fig.savefig(tmp_path / "x.svg")


# --- train (item 10) ----------------------------------------------------------------------------------------


def test_train_explains_ce_and_mse_first_and_every_loss_column_has_its_unit(cli):
    pytest.importorskip("sklearn")
    code, out, _ = cli("train", "--epochs", "6")
    assert code == 0
    _fits(out)
    table = out.index("┏")
    assert out.index("CE: the model trained with cross-entropy") < table
    assert "MSE: the same model trained with squared error" in _prose(out[:table])
    header, cells = _table(out, "softmax on digits")
    assert len(header) <= 2  # not three stacked lines
    columns = [" ".join(parts).split() for parts in zip(*(line.split("┃")[1:-1] for line in header), strict=True)]
    names = [" ".join(c) for c in columns]
    assert names == ["epoch", "CE train (nats)", "CE test (nats)", "CE acc.", "MSE train (sq. err.)",
                     "MSE test (nats)", "MSE acc."]  # fmt: skip
    assert len(cells) == 7  # epochs 0..6
    assert "final test cross-entropy (nats)" in out


# --- score (item 11) ----------------------------------------------------------------------------------------


def _write(path, labels, probs):
    rows = ["label," + ",".join(f"p_{j}" for j in range(probs.shape[1]))]
    rows += [",".join([str(y), *map(repr, row)]) for y, row in zip(labels.tolist(), probs.tolist(), strict=True)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def _overconfident(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    truth = sp.softmax(rng.normal(size=(n, 3)) * 1.5, axis=1)
    labels = (truth.cumsum(axis=1) > rng.uniform(size=(n, 1))).argmax(axis=1)
    model = truth**3
    return labels, model / model.sum(axis=1, keepdims=True)


def _aligned(cells: list[list[str]], column: int, decimals: int = 4) -> None:
    """Every cell of ``column`` has ``decimals`` decimals and its decimal point where the others have it."""
    column_cells = [row[column] for row in cells]
    assert all(re.fullmatch(rf" *\d+\.\d{{{decimals}}} ", c) for c in column_cells), column_cells
    assert len({c.index(".") for c in column_cells}) == 1


def test_score_tables_have_units_and_aligned_fixed_decimals(cli, tmp_path):
    labels, probs = _overconfident()
    code, out, _ = cli("score", _write(tmp_path / "p.csv", labels, probs), "--per-class", "--calibration")
    assert code == 0
    _fits(out)
    header, cells = _table(out, "per class")
    assert "mean loss (nats)" in " ".join(header)
    for column in (2, 3, 4):  # mean loss, precision, recall: 0.6970 next to 1.0000, never 0.69697 next to 1
        _aligned(cells, column)
    _, summary = _table(out, "score")
    values = {name.strip(): value for name, value in summary}
    assert re.fullmatch(r" *\d\.\d{4} ", values["mean loss (nats)"])
    assert values["calibration"].strip() == "overconfident"
    header, bins = _table(out, "calibration (top label)")
    populated = [row for row in bins if row[1].strip() != "0"]
    _aligned(populated, 2)
    _aligned(populated, 3)
    assert {row[4].strip() for row in populated} <= {"within", "overconfident", "underconfident"}
    assert "Calibration: overconfident: observed frequency below confidence in" in _prose(out)


def test_an_infinite_mean_loss_counts_its_rows_and_points_to_conventions(cli, tmp_path):
    labels, probs = _overconfident(n=200)
    for i in (4, 9):
        probs[i] = 0.0
        probs[i, (labels[i] + 1) % 3] = 1.0
    path = _write(tmp_path / "p.csv", labels, probs)
    code, out, _ = cli("score", path)
    assert code == 0
    _fits(out)
    assert "The mean loss is infinite: 2 rows give their label probability 0 (a loss of -log 0 = inf) out of 200 " \
        "scored." in _prose(out)  # fmt: skip
    assert "see --convention (keras, tf-keras2, sklearn)" in _prose(out)
    assert json.loads(cli("score", path, "--format", "json")[1])["rows_infinite_loss"] == 2
    assert "The mean loss is infinite" not in cli("score", path, "--convention", "sklearn")[1]


@pytest.mark.parametrize("kind", ["multiclass", "binary"])
def test_score_calibrate_reports_the_temperature_before_and_after(cli, tmp_path, kind):
    labels, probs = _overconfident()
    if kind == "binary":
        labels, probs = (labels == 0).astype(int), probs[:, :1]
    path = _write(tmp_path / "p.csv", labels, probs)
    code, out, _ = cli("score", path, "--calibrate", "temperature")
    assert code == 0
    _fits(out)
    data = json.loads(cli("score", path, "--calibrate", "temperature", "--format", "json")[1])["calibration"]
    for key in ("temperature", "mean_loss_before", "mean_loss_after", "ece_before", "ece_after"):
        assert isinstance(data[key], float), key
    assert data["temperature"] > 1
    assert data["mean_loss_after"] < data["mean_loss_before"]
    _, rows = _table(out, "temperature scaling")
    assert f"T = {data['temperature']:.4g} (5-fold cross-fitting on the scored rows)" in _prose(out)
    assert rows[0][0].strip() == "mean loss (nats)"
    _aligned(rows[:2], 1)
    _aligned(rows[:2], 2)
    assert (
        f"A temperature of {data['temperature']:.4g} would lower the loss from {data['mean_loss_before']:.4f} to "
        f"{data['mean_loss_after']:.4f} nats (measured by 5-fold cross-fitting on the scored rows)."
    ) in _prose(out)


def test_score_calibrate_on_a_held_out_file(cli, tmp_path):
    labels, probs = _overconfident(n=2000, seed=3)
    held = _write(tmp_path / "validation.csv", labels[:800], probs[:800])
    scored = _write(tmp_path / "test.csv", labels[800:], probs[800:])
    code, out, _ = cli("score", scored, "--calibrate-on", held, "--format", "json")
    assert code == 0
    data = json.loads(out)["calibration"]
    t = ce.calibration.fit_temperature(labels[:800], logits=np.log(probs[:800]))
    assert data["temperature"] == pytest.approx(t, rel=1e-12)
    assert data["fitted_on"] == held
    after = ce.calibration.apply_temperature(probs[800:], t)
    assert data["mean_loss_after"] == pytest.approx(float(ce.sparse_categorical_cross_entropy(labels[800:], after)))
    failed = cli("score", scored, "--calibrate", "temperature", "--folds", "1")
    assert failed.code == 2
    assert "folds must be in [2, 100]" in failed.error_line


def test_score_worst_rows_table(cli, tmp_path):
    labels, probs = _overconfident(n=300)
    code, out, _ = cli("score", _write(tmp_path / "p.csv", labels, probs), "--worst-rows", "4")
    assert code == 0
    _fits(out)
    header, rows = _table(out, "the 4 rows with the largest loss")
    assert "loss (nats)" in " ".join(header)
    loss = -np.log(probs[np.arange(300), labels])
    assert [int(r[0]) for r in rows] == (np.argsort(-loss)[:4] + 1).tolist()
