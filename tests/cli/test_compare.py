"""``crossentropy compare``: the seed example, files, formats and bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest


def test_compare_seed_example_in_bits(cli):
    code, out, _ = cli("compare", "0.1,0.4,0.5", "0.8,0.15,0.05", "--base", "2", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["unit"] == "bits"
    assert data["H(P,Q)"] == pytest.approx(3.2879430946, abs=1e-10)
    assert data["H(Q,P)"] == pytest.approx(2.9058316901, abs=1e-10)
    assert data["KL(P||Q)"] == pytest.approx(1.9269790472, abs=1e-10)
    assert data["JS(P,Q)"] == pytest.approx(0.4202005704, abs=1e-10)


def test_compare_table_csv_and_plot(cli, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "pq.png"
    code, out, _ = cli("compare", "0.1,0.4,0.5", "0.8,0.15,0.05", "--names", "red,green,blue", "--plot", str(plot))
    assert code == 0
    assert "H(P,Q)" in out
    assert "2.27903 " in out  # six significant digits by default
    assert plot.stat().st_size > 1000
    code, out, _ = cli("compare", "0.1,0.4,0.5", "0.8,0.15,0.05", "--format", "csv")
    assert out.splitlines()[0] == "section,quantity,nats"


def test_compare_reads_files(cli, tmp_path):
    np.save(tmp_path / "p.npy", np.array([0.1, 0.4, 0.5]))
    (tmp_path / "q.txt").write_text("0.8 0.15\n0.05\n")
    code, out, _ = cli("compare", str(tmp_path / "p.npy"), str(tmp_path / "q.txt"), "--format", "json")
    assert code == 0
    assert json.loads(out)["H(P,Q)"] == pytest.approx(2.2790284859, abs=1e-10)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "0.1,abc", "0.5,0.5"], "P(event 2): 'abc' is not a number; type a probability between 0 and 1"),
        (["compare", "0.5,0.5", "0.2,0.3,0.5"], "P lists 2 numbers and Q lists 3: give one number per event in each"),
        (["compare", "0.5,0.6", "0.5,0.5"], "P (the truth) adds up to 1.1, not 1: lower its values by 0.1 in total"),
        (["compare", "0.5,0.5", "0.7,0.2"], "Q (the model) adds up to 0.9, not 1: raise its values by 0.1 in total"),
        (
            ["compare", "0.5,-0.5,1", "0.5,0.5,0", "--names", "red,green,blue"],
            "P(green) is -0.5, but a probability lies between 0 and 1",
        ),
        (["compare", "0.5,0.5", "0.5,nan"], "Q(event 2) is nan, but a probability lies between 0 and 1"),
        (["compare", "0.5,0.5", "0.5,0.5", "--names", "a"], "--names has 1 names for 2 events"),
        (["compare", "0.5,0.5", "0.5,0.5", "--base", "1"], "invalid base"),
        (["compare", "0.5,0.5"], "the following arguments are required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_compare_bad_input_exits_2_with_one_line(cli, argv, message):
    failed = cli(*argv)
    assert failed.code == 2
    assert message.replace("\\", "") in failed.error_line or re.search(message, failed.err)
