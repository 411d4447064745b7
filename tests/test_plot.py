"""Plot functions draw on the Agg backend and return their Axes."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

import crossentropy as ce  # noqa: E402
from crossentropy import plot  # noqa: E402
from crossentropy.scoring import Layout, Scorer  # noqa: E402


def _render(draw) -> int:
    fig = Figure()
    ax = fig.add_subplot()
    assert draw(ax) is ax
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return len(buffer.getvalue())


def _score():
    scorer = Scorer(Layout(num_classes=3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    scorer.update(rng.integers(0, 3, 100).astype(float), p)
    return scorer.result()


@pytest.mark.parametrize(
    "draw",
    [
        lambda ax: plot.distributions([0.1, 0.4, 0.5], [0.8, 0.15, 0.05], names=["r", "g", "b"], ax=ax),
        lambda ax: plot.distributions([0.5, 0.5], ax=ax),
        lambda ax: plot.cross_entropy_curve(ax=ax),
        lambda ax: plot.cross_entropy_curve(include_certain_miss=False, base=2, ax=ax),
        lambda ax: plot.entropy_vs_classes(16, ax=ax),
        lambda ax: plot.reliability_diagram(_score()["calibration"], ax=ax),
        lambda ax: plot.per_class_loss(_score()["per_class"], ax=ax),
        lambda ax: plot.loss_histogram(_score()["loss_histogram"], ax=ax),
        lambda ax: plot.gradient_magnitude(ax=ax),
        lambda ax: plot.learning_curves(
            {"ce": {"test_accuracy": [0.5, 0.8]}, "mse": {"test_accuracy": [0.4, 0.6]}}, ax=ax
        ),
    ],
)
def test_plots_render_non_empty_images(draw):
    assert _render(draw) > 5000


def test_plot_errors():
    with pytest.raises(ce.InputError, match="same number of events"):
        plot.distributions([0.5, 0.5], [1.0], ax=Figure().add_subplot())
    with pytest.raises(ce.InputError, match="names has 1 entries for 2 events"):
        plot.distributions([0.5, 0.5], names=["a"], ax=Figure().add_subplot())


def test_plot_without_ax_makes_a_figure():
    ax = plot.entropy_vs_classes(4)
    assert ax.figure is not None


def test_plot_module_imports_matplotlib_lazily():
    code = "import sys, crossentropy.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _ax():
    return Figure().add_subplot()


def test_every_figure_has_a_title_and_labelled_axes():
    drawings = [
        plot.distributions([0.1, 0.4, 0.5], [0.8, 0.15, 0.05], ax=_ax()),
        plot.cross_entropy_curve(ax=_ax()),
        plot.entropy_vs_classes(8, ax=_ax()),
        plot.reliability_diagram(_score()["calibration"], ax=_ax()),
        plot.per_class_loss(_score()["per_class"], unit="bits", ax=_ax()),
        plot.loss_histogram(_score()["loss_histogram"], ax=_ax()),
        plot.gradient_magnitude(ax=_ax()),
        plot.learning_curves({"ce": {"test_cross_entropy": [2.0, 1.0]}}, metric="test_cross_entropy", ax=_ax()),
    ]
    for ax in drawings:
        assert ax.get_title(), ax
        assert ax.get_xlabel(), ax
        assert ax.get_ylabel(), ax
    assert drawings[4].get_ylabel() == "mean loss (bits)"
    assert drawings[7].get_ylabel() == "test cross-entropy (nats)"


def test_the_cross_entropy_curve_is_dense_correct_and_reads_left_to_right():
    ax = plot.cross_entropy_curve(base=2, ax=_ax())
    left, right = ax.get_xlim()
    assert left == 0
    assert right == 1
    x, y = ax.lines[0].get_data()
    assert len(x) > 400
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(y, -np.log2(x), rtol=1e-12)
    assert ax.get_ylabel() == "cross-entropy (bits)"
    assert "$" in ax.get_title()  # mathtext
    marks_x, _ = ax.lines[1].get_data()
    np.testing.assert_allclose(sorted(marks_x), [0.1 * k for k in range(1, 11)])


def test_the_compare_bars_carry_their_values():
    ax = plot.distributions([0.1, 0.4, 0.5], [0.8, 0.15, 0.05], names=["red", "green", "blue"], ax=_ax())
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == sorted(["0.1", "0.4", "0.5", "0.8", "0.15", "0.05"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["P (the truth)", "Q (the model)"]


def test_the_reliability_diagram_shows_the_rows_of_each_bin():
    calibration = {
        "kind": "top label",
        "ece": 0.1,
        "bins": [
            {"lower": 0.0, "upper": 0.5, "count": 29, "confidence": 0.4, "observed": 0.3},
            {"lower": 0.5, "upper": 1.0, "count": 2280, "confidence": 0.8, "observed": 0.7},
        ],
    }
    ax = plot.reliability_diagram(calibration, ax=_ax())
    assert sorted(t.get_text() for t in ax.texts) == ["2,280", "29"]
    assert "ECE = 0.1000" in ax.get_title()


def test_the_curves_legend_is_plain_words():
    """No jargon: the curve is its formula, the marked points are the predictions they are."""
    ax = plot.cross_entropy_curve(ax=_ax())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [r"$-\ln\,q$", "predictions q = 0.1, 0.2, …, 1"]
    ax = plot.cross_entropy_curve([0.25, 0.5], base=2, ax=_ax())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [r"$-\log_2\,q$", "predictions q = 0.25, 0.5"]
    ax = plot.cross_entropy_curve(None, ax=_ax())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [r"$-\ln\,q$"]


def test_the_reliability_legend_sits_under_the_axes_and_covers_no_bar():
    calibration = _score()["calibration"]
    fig = Figure(figsize=(5.0, 4.2), layout="constrained")
    ax = plot.reliability_diagram(calibration, ax=fig.add_subplot())
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 < ax.get_window_extent().y0  # below the plotting area, where no bar is
    assert "rows per bin" in ax.get_legend().get_title().get_text()


def test_the_loss_histogram_on_a_log_scale_shows_a_bin_of_one_row():
    histogram = {"edges": [0.0, 1.0, 2.0, 3.0, 4.0], "counts": [5000, 40, 0, 1], "infinite": 0, "max_finite": 3.5}
    ax = plot.loss_histogram(histogram, log=True, ax=_ax())
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "rows (log scale)"
    assert ax.get_ylim()[0] < 1 < 5000 < ax.get_ylim()[1]
    ax.figure.canvas.draw()
    assert all("$" not in t.get_text() for t in ax.get_yticklabels())  # 1, 10, 100: no superscripts


def test_the_identity_bars_add_up_and_mark_an_infinite_divergence():
    from matplotlib.colors import to_hex

    from crossentropy._comparison import comparison

    values = comparison([0.1, 0.4, 0.5], [0.8, 0.15, 0.05], base=2)
    ax = plot.identity_bars(values, unit="bits", ax=_ax())
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([values["H(P)"], values["KL(P||Q)"], values["H(Q)"], values["KL(Q||P)"]])
    assert [to_hex(p.get_facecolor()) for p in ax.patches] == [plot.COLOURS["entropy"], plot.COLOURS["kl"]] * 2
    assert [t.get_text() for t in ax.texts] == [
        "H(P) 1.361 bits + KL(P ‖ Q) 1.927 bits = H(P, Q) 3.288 bits",
        "H(Q) 0.884 bits + KL(Q ‖ P) 2.022 bits = H(Q, P) 2.906 bits",
    ]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["H(P, Q)", "H(Q, P)"]
    infinite = plot.identity_bars(comparison([0.5, 0.5], [1.0, 0.0]), ax=_ax())
    assert "∞" in [t.get_text() for t in infinite.texts]
    assert infinite.patches[1].get_x() + infinite.patches[1].get_width() < infinite.get_xlim()[1]
