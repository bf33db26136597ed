"""The symbol names as Arrow string views, built by hand (hdi.decode.symbols.view_table): the same
bytes pyarrow builds, and a column of them reads back as the names (short, long, non-ASCII, null)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from hdi.decode.symbols import string_views, view_table

NAMES = [
    ["CL.c.0", "ESH5"],
    ["CL.c.0", "a_very_long_symbol_name_x", "", "twelve_bytes", "thirteen_byte", "é12345678901234"],
    [],
]


@pytest.mark.parametrize("names", NAMES, ids=["short", "short and long", "none"])
def test_view_table_is_the_layout_pyarrow_builds(names):
    views, data = view_table(names)
    ref = pa.array([*names, None], type=pa.string_view()).buffers()
    assert views.tobytes() == ref[1].to_pybytes()
    # the longer names' bytes (pyarrow adds an empty data buffer when every name is short)
    assert b"".join(b.to_pybytes() for b in data) == b"".join(b.to_pybytes() for b in ref[2:] if b is not None)
    assert len(data) == (1 if any(len(n.encode()) > 12 for n in names) else 0)


@pytest.mark.parametrize("names", NAMES[:2], ids=["short", "short and long"])
def test_string_views_read_back_as_the_names_with_nulls(names):
    views, data = view_table(names)
    null = len(names)
    index = np.array([null, *range(len(names)), *reversed(range(len(names))), null], dtype=np.int32)
    s = string_views(views, index, null, "symbol", data)
    assert s.name == "symbol" and s.len() == len(index)
    assert s.to_list() == [None, *names, *reversed(names), None]
