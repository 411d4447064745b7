"""Opening data sets: one switch over formats, pieces that carry their format, splits and batches of every format."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from crossentropy import InputError
from crossentropy.io import open_table
from crossentropy.io.csv import Csv
from crossentropy.io.npy import Npy, Npz
from crossentropy.io.parquet import Parquet

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

N = 1000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The same 1000 rows (label, p0, p1) in every format."""
    directory = tmp_path_factory.mktemp("formats")
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, N).round(6)
    frame = pd.DataFrame({"label": rng.integers(0, 2, N), "p0": 1 - p, "p1": p})
    frame.to_csv(directory / "a.csv", index=False)
    frame.to_csv(directory / "a.tsv", index=False, sep="\t")
    with gzip.open(directory / "a.csv.gz", "wt") as handle:
        frame.to_csv(handle, index=False)
    frame.to_parquet(directory / "a.parquet", row_group_size=128)
    np.save(directory / "a.npy", frame.to_numpy(dtype=float))
    np.savez(directory / "a.npz", label=frame["label"].to_numpy(), p=np.ascontiguousarray(frame[["p0", "p1"]]))
    return directory, frame


FORMATS = [
    ("a.csv", Csv, ["label", "p0", "p1"]),
    ("a.tsv", Csv, ["label", "p0", "p1"]),
    ("a.csv.gz", Csv, ["label", "p0", "p1"]),
    ("a.parquet", Parquet, ["label", "p0", "p1"]),
    ("a.npy", Npy, ["0", "1", "2"]),
    ("a.npz", Npz, ["label", "p_0", "p_1"]),
]


def _rows(batches, columns):
    return np.concatenate([np.column_stack([b.numeric(c).values for c in columns]) for b in batches])


@pytest.mark.parametrize(("name", "kind", "columns"), FORMATS, ids=[f[0] for f in FORMATS])
def test_each_format_opens_reads_and_splits_to_the_same_rows(files, name, kind, columns):
    directory, frame = files
    table = open_table(str(directory / name))
    assert table.column_names == columns
    assert table.format == kind.name
    assert all(isinstance(p.format, kind) and p.kind == kind.name for p in table.pieces)
    expected = frame.to_numpy(dtype=float)
    np.testing.assert_array_equal(_rows(table.batches(columns, batch_rows=97), columns), expected)
    assert max(len(b) for b in table.batches(columns, batch_rows=97)) <= 97  # every format, CSV too
    pieces = table.split(2000)
    if kind in (Npz,) or name.endswith(".gz"):
        assert pieces == table.pieces  # compressed: one piece
    else:
        assert len(pieces) > 3
    np.testing.assert_array_equal(_rows((b for p in pieces for b in p.batches(columns, 128)), columns), expected)
    assert pickle.loads(pickle.dumps(pieces)) == pieces  # a Dask worker reads its own piece


def test_the_format_comes_from_the_file_name(files, tmp_path):
    directory, _ = files
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InputError, match=r"x\.json: unknown file type; expected \.csv, \.tsv, \.parquet, \.npy"):
        open_table(str(tmp_path / "x.json"))
    for name in ("a.csv", "a.parquet"):
        (tmp_path / name).write_bytes((directory / name).read_bytes())
    with pytest.raises(InputError, match=r"the files mix formats \(csv, parquet\)"):
        open_table(str(tmp_path / "a.*"))
    for name in ("b.npy", "c.npy"):
        (tmp_path / name).write_bytes((directory / "a.npy").read_bytes())
    with pytest.raises(InputError, match="a data set of several files must be Parquet or CSV, not NPY"):
        open_table(str(tmp_path / "*.npy"))
    with pytest.raises(InputError, match="no such file"):
        open_table(str(tmp_path / "missing.csv"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        open_table(str(tmp_path / "empty.csv"))


def test_a_directory_of_csv_files_is_one_table_with_a_piece_per_file(files, tmp_path):
    _, frame = files
    for i, part in enumerate(np.array_split(np.arange(N), 3)):
        frame.iloc[part].to_csv(tmp_path / f"part-{i}.csv", index=False)
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "notes.md").write_text("not data")
    table = open_table(str(tmp_path))
    assert [p.file_index for p in table.pieces] == [0, 1, 2]
    assert table.size_bytes == sum((tmp_path / f"part-{i}.csv").stat().st_size for i in range(3))
    np.testing.assert_array_equal(_rows(table.batches(["label", "p1"]), ["label", "p1"]), frame[["label", "p1"]])


def test_csv_pieces_of_a_split_start_at_whole_lines(files):
    directory, frame = files
    table = open_table(str(directory / "a.csv"))
    for target in (7, 100, 4096):
        pieces = table.split(target)
        assert pieces[0].first_line == 2
        assert all(p.first_line is None for p in pieces[1:])
        got = _rows((b for p in pieces for b in p.batches(["label", "p1"])), ["label", "p1"])
        np.testing.assert_array_equal(got, frame[["label", "p1"]].to_numpy(dtype=float))
