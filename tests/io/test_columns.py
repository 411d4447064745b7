"""Choosing columns: glob patterns in the order given, and messages that list what the file has."""

from __future__ import annotations

import pytest

from crossentropy import InputError
from crossentropy.io import describe_columns, select_columns

NAMES = ["label", "p_2", "p_0", "p_1", "w"]


def test_patterns_in_their_order_then_the_files():
    assert select_columns(NAMES, ["p_*"], "probability", "f.csv") == ["p_2", "p_0", "p_1"]
    assert select_columns(NAMES, ["p_1", "p_*"], "probability", "f.csv") == ["p_1", "p_2", "p_0"]
    assert select_columns(["a[1]", "a1"], ["a[1]"], "logit", "f.csv") == ["a1"]  # '[1]' is a glob class
    assert select_columns(["a[1]"], ["a[[]1]"], "logit", "f.csv") == ["a[1]"]


def test_a_pattern_that_matches_nothing_names_the_file_and_the_columns():
    with pytest.raises(InputError, match=r"f\.csv: no logit column matches 'q_\*'; columns are 'label', 'p_2'"):
        select_columns(NAMES, ["q_*"], "logit", "f.csv")


def test_the_column_list_is_cut_and_hints_at_the_delimiter():
    many = [f"c{i}" for i in range(25)]
    assert describe_columns(many).endswith("'c19', ... (25 in all)")
    assert "is the delimiter right?" in describe_columns(["a;b;c"])
    assert "delimiter" not in describe_columns(["a", "b"])
