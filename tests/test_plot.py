"""Plot functions draw on the Agg backend and return their Axes."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

import crossentropy as ce  # noqa: E402
from crossentropy import plot  # noqa: E402
from crossentropy._scoring import ScoreOptions, Scorer  # noqa: E402


def _render(draw) -> int:
    fig = Figure()
    ax = fig.add_subplot()
    assert draw(ax) is ax
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return len(buffer.getvalue())


def _score():
    import numpy as np

    scorer = Scorer(ScoreOptions(num_classes=3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    scorer.update(rng.integers(0, 3, 100).astype(float), p, None, start=0)
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
