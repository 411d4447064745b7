"""The CSV reader: blocks of whole lines, each row knowing its line; pyarrow and the line parser agree."""

from __future__ import annotations

import numpy as np
import pytest

import crossentropy.io.csv as csv_reader
from crossentropy.io import open_table
from crossentropy.io.csv import line_at

pytest.importorskip("pyarrow")

TEXT = (
    "label,p\r\n"  # CRLF
    "1,0.5\r\n"
    "\r\n"  # an empty line is no row
    "0,0.25\n"  # LF
    "1,0.75,extra\n"  # a row of the wrong width
    '0,"0.125"\r'  # CR, quoted
    "1,0.875\n"
)
ROWS = [(1, 0.5, 2), (0, 0.25, 4), (None, None, 5), (0, 0.125, 6), (1, 0.875, 7)]  # label, p, line


@pytest.fixture(params=["pyarrow", "lines"])
def parser(request, monkeypatch):
    if request.param == "lines":
        monkeypatch.setattr(csv_reader, "WIDE_COLUMNS", 0)  # every block through the line parser
    return request.param


@pytest.mark.parametrize("block", [1 << 22, 7, 16])
def test_rows_values_and_lines_whatever_the_blocks(tmp_path, monkeypatch, parser, block):
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", block)
    path = tmp_path / "mixed.csv"
    path.write_bytes(TEXT.encode())
    batches = list(open_table(str(path)).batches(["label", "p"]))
    labels = np.concatenate([b.numeric("label").values for b in batches])
    probs = np.concatenate([b.numeric("p").values for b in batches])
    broken = np.concatenate([b.broken if b.broken is not None else np.zeros(len(b), bool) for b in batches])
    lines = [line for b in batches for line, _ in b.locate(range(len(b)))]
    assert len(labels) == len(ROWS)
    for i, (label, p, line) in enumerate(ROWS):
        assert lines[i] == line
        if label is None:
            assert broken[i]
            assert np.isnan(labels[i])
            assert np.isnan(probs[i])
        else:
            assert (labels[i], probs[i]) == (label, p)
    detail = {b.start + r: d for b in batches for r, d in b.broken_detail.items()}
    assert detail == {2: "3 fields, expected 2"}


def test_batch_rows_cuts_a_block_into_batches_that_keep_their_lines(tmp_path, parser):
    path = tmp_path / "long.csv"
    text = "y,p\n" + "".join(f"{i % 2},{i / 1000}\n" for i in range(1000))
    path.write_text(text)
    batches = list(open_table(str(path)).batches(["p"], batch_rows=64))
    assert [len(b) for b in batches] == [64] * 15 + [40]
    assert [b.start for b in batches] == list(range(0, 1000, 64))
    offsets = [b.end_offset for b in batches]
    assert offsets == sorted(offsets)
    assert offsets[-1] == len(text)
    starts = np.cumsum([0] + [len(line) + 1 for line in text.split("\n")])  # byte offset of each line
    assert batches[3].locate([0, 63]) == [(194, starts[193]), (257, starts[256])]
    assert np.concatenate([b.numeric("p").values for b in batches]).tolist() == [i / 1000 for i in range(1000)]


def test_line_at_counts_every_kind_of_line_end(tmp_path):
    path = tmp_path / "ends.csv"
    data = TEXT.encode()
    path.write_bytes(data)
    for offset in range(len(data) + 1):
        expected = 1 + len(data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")) - 1
        assert line_at(str(path), offset) == expected, offset
