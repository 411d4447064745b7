"""A batch holds one storage model: every kind of column reads the same way, and a batch slices like its rows."""

from __future__ import annotations

import numpy as np
import pytest

from crossentropy import InputError
from crossentropy.io import Batch

pa = pytest.importorskip("pyarrow")

CELLS = {"a": ["0.5", " 1e-3 ", "", "abc", "inf"], "b": ["1", "2", "3", "4", "-0"]}


def _binary(cells):
    return pa.chunked_array([pa.array([c.encode() for c in cells[:2]]), pa.array([c.encode() for c in cells[2:]])])


def _kinds():
    """The same cells as each kind of column a reader hands out."""
    return {
        "text": {k: list(v) for k, v in CELLS.items()},
        "string": {k: pa.array(v, pa.string()) for k, v in CELLS.items()},
        "binary": {k: _binary(v) for k, v in CELLS.items()},
    }


@pytest.mark.parametrize("kind", ["text", "string", "binary"])
def test_every_kind_of_text_column_converts_the_same_way(kind):
    batch = Batch("f.csv", 0, _kinds()[kind], 5)
    a = batch.numeric("a")
    np.testing.assert_array_equal(a.values, [0.5, 1e-3, np.nan, np.nan, np.inf])
    assert a.missing.tolist() == [False, False, True, False, False]
    assert a.invalid.tolist() == [False, False, False, True, False]
    m = batch.matrix(["b", "a"])
    np.testing.assert_array_equal(m.values, np.column_stack([[1, 2, 3, 4, -0.0], a.values]))
    assert m.missing[:, 1].tolist() == a.missing.tolist()
    assert m.invalid[:, 0].tolist() == [False] * 5
    assert batch.text("a", 3) == "abc"
    assert m.dtype == np.float64


def test_numpy_columns_keep_their_stored_precision_and_refuse_text():
    batch = Batch(
        "f.npy", 0, {"x": np.array([0.25, 0.75], np.float32), "y": np.array([1, 0]), "s": np.array(["a", "b"])}, 2
    )
    assert batch.numeric("x").dtype == np.float32
    assert batch.matrix(["x", "y"]).dtype == np.float32
    assert batch.matrix(["y"]).values.tolist() == [[1.0], [0.0]]
    with pytest.raises(InputError, match=r"f\.npy: column 's' is not numeric"):
        batch.numeric("s")


def _with_broken_rows(kind):
    """Rows 1 and 3 of five did not parse (wrong number of fields): the columns hold rows 0, 2 and 4."""
    cells, vectors = ["0.1", "0.2", "x"], ["[1, 2]", "[3,4]", "[5]"]
    columns = {"p": cells, "v": vectors} if kind == "text" else {"p": pa.array(cells), "v": pa.array(vectors)}
    return Batch(
        "f.csv",
        10,
        columns,
        5,
        locate=lambda rows: [(100 + r, 1000 + r) for r in rows],
        placement=np.array([0, 2, 4]),
        broken_detail={1: "3 fields, expected 2", 3: "1 fields, expected 2"},
    )


@pytest.mark.parametrize("kind", ["text", "string"])
def test_rows_that_did_not_parse_are_spread_as_missing(kind):
    batch = _with_broken_rows(kind)
    assert batch.broken.tolist() == [False, True, False, True, False]
    p = batch.numeric("p")
    np.testing.assert_array_equal(p.values, [0.1, np.nan, 0.2, np.nan, np.nan])
    assert p.invalid.tolist() == [False, False, False, False, True]
    assert batch.text("p", 1) == ""
    assert batch.text("p", 4) == "x"
    vectors, wrong = batch.vectors("v", 2)
    np.testing.assert_array_equal(
        vectors.values, [[1, 2], [np.nan, np.nan], [3, 4], [np.nan, np.nan], [np.nan, np.nan]]
    )
    assert wrong.tolist() == [False, False, False, False, True]


@pytest.mark.parametrize("kind", ["text", "string"])
def test_a_slice_is_a_batch_of_those_rows(kind):
    batch = _with_broken_rows(kind)
    batch.end_offset = 5000
    whole = batch.numeric("p").values
    for begin, end in ((0, 5), (0, 2), (1, 4), (3, 5), (2, 3)):
        part = batch.slice(begin, end)
        assert len(part) == end - begin
        assert part.start == 10 + begin
        np.testing.assert_array_equal(part.numeric("p").values, whole[begin:end])
        expected_broken = batch.broken[begin:end]
        assert (
            part.broken if part.broken is not None else np.zeros(end - begin, bool)
        ).tolist() == expected_broken.tolist()
        assert part.broken_detail == {r - begin: d for r, d in batch.broken_detail.items() if begin <= r < end}
        assert part.locate([0]) == [(100 + begin, 1000 + begin)]
        assert part.end_offset == (5000 if end == 5 else None)
        assert [part.text("p", r) for r in range(end - begin)] == [batch.text("p", r) for r in range(begin, end)]


def test_slices_of_arrow_and_numpy_columns_share_the_memory():
    batch = Batch(
        "f.parquet", 0, {"a": pa.chunked_array([pa.array([1.0, 2.0]), pa.array([3.0])]), "b": np.arange(3.0)}, 3
    )
    part = batch.slice(1, 3)
    assert part.numeric("a").values.tolist() == [2.0, 3.0]
    assert np.shares_memory(part.columns["b"], batch.columns["b"])
