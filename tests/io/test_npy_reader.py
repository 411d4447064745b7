"""NPY and NPZ: headers read before any data, whole arrays read within a bound, Fortran order and members."""

from __future__ import annotations

import io

import numpy as np
import pytest

from crossentropy import InputError
from crossentropy.io import open_table, read_npy, read_npy_header


def test_read_npy_reads_a_whole_array_in_either_order(tmp_path):
    values = np.arange(6.0).reshape(2, 3)
    np.save(tmp_path / "c.npy", values)
    np.save(tmp_path / "f.npy", np.asfortranarray(values))
    np.save(tmp_path / "i.npy", np.array([1, 2, 3], dtype=np.int16))
    assert read_npy(str(tmp_path / "c.npy"), name="P", max_values=6).tolist() == values.reshape(-1).tolist()
    assert read_npy(str(tmp_path / "f.npy"), name="P", max_values=6).tolist() == values.reshape(-1).tolist()
    assert read_npy(str(tmp_path / "i.npy"), name="Q", max_values=3).dtype == np.float64


def test_read_npy_refuses_before_reading(tmp_path):
    np.save(tmp_path / "big.npy", np.zeros(10))
    with pytest.raises(InputError, match=r"P: .*big\.npy declares shape \(10,\) \(10 values\); at most 9 are read"):
        read_npy(str(tmp_path / "big.npy"), name="P", max_values=9)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "big.npy").read_bytes()[:-8])
    with pytest.raises(InputError, match=r"Q: .*cut\.npy is truncated: shape \(10,\) needs 80 bytes of data"):
        read_npy(str(tmp_path / "cut.npy"), name="Q", max_values=100)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="holds Python objects"):
        read_npy(str(tmp_path / "obj.npy"), name="P", max_values=100)


def test_the_header_says_where_the_data_start():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 3), dtype=np.float32))
    buffer.seek(0)
    header = read_npy_header(buffer, "buffer")
    assert (header.shape, header.dtype, header.fortran, header.nbytes) == ((4, 3), np.dtype(np.float32), False, 48)
    assert header.offset == buffer.tell() == len(buffer.getvalue()) - 48
    with pytest.raises(InputError, match="buffer: cannot read as NPY"):
        read_npy_header(io.BytesIO(b"not an array"), "buffer")


def test_npy_columns_of_a_structured_array_and_npz_members(tmp_path):
    rows = np.array([(1, 0.25), (0, 0.5)], dtype=[("label", "i8"), ("p", "f4")])
    np.save(tmp_path / "s.npy", rows)
    table = open_table(str(tmp_path / "s.npy"))
    assert table.column_names == ["label", "p"]
    (batch,) = table.batches()
    assert batch.numeric("p").dtype == np.float32
    np.savez(tmp_path / "m.npz", y=np.array([0, 1]), p=np.array([[0.5, 0.5], [0.1, 0.9]]))
    assert open_table(str(tmp_path / "m.npz")).column_names == ["y", "p_0", "p_1"]
    np.savez(tmp_path / "bad.npz", y=np.array([0, 1]), p=np.array([0.5]))
    with pytest.raises(InputError, match="the arrays must share their first dimension"):
        open_table(str(tmp_path / "bad.npz"))
