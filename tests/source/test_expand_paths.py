"""expand_paths: what `--from-file` accepts (files, folders, globs) and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hdi.errors import SourceError
from hdi.source.files import expand_paths


def _touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"DBN")


def test_files_folders_and_globs_expand_in_order_each_file_once(tmp_path):
    a, b, c = tmp_path / "d" / "b.dbn", tmp_path / "d" / "sub" / "a.dbn.zst", tmp_path / "x.dbn"
    _touch(a, b, c, tmp_path / "d" / "readme.txt", tmp_path / "d" / ".hidden.dbn")
    assert expand_paths([c, tmp_path / "d"]) == [c, a, b]  # a folder: recursive, sorted, DBN files only
    assert expand_paths([str(tmp_path / "d" / "**" / "*.dbn*"), a]) == [a, b]  # a glob; a repeat is dropped
    missing = tmp_path / "missing.dbn"
    assert expand_paths([missing]) == [missing]  # open_dbn says what is wrong with it


def test_an_empty_folder_or_a_glob_matching_nothing_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"^.*empty: folder holds no \.dbn or \.dbn\.zst file \(searched recursively\)$"):
        expand_paths([tmp_path / "empty"])
    with pytest.raises(SourceError, match=r"^.*/\*\.dbn\.zst: no file matches this pattern"):
        expand_paths([str(tmp_path / "*.dbn.zst")])
