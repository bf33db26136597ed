"""Synthetic DBN files for decode tests, written with databento_dbn (metadata) and NumPy (records)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, NamedTuple

import databento_dbn as dbn
import numpy as np
import pytest
import zstandard

RTYPES = {"trades": 0, "tbbo": 1, "mbp-1": 1, "ohlcv-1s": 32, "ohlcv-1m": 33, "ohlcv-1h": 34,
          "ohlcv-1d": 35, "statistics": 24, "definition": 19, "mbo": 160}


class Interval(NamedTuple):
    start_date: dt.date
    end_date: dt.date
    symbol: str


class Mapping(NamedTuple):
    raw_symbol: str
    intervals: list[Interval]


def ns(day: dt.date, seconds: float = 0) -> int:
    """Nanoseconds since the epoch of a UTC date plus an offset in seconds."""
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return int(midnight.timestamp()) * 10**9 + int(seconds * 10**9)


def records(cls: type, n: int, schema: str, **fields: Any) -> np.ndarray:
    """``n`` zeroed records of ``cls`` with header fields set; ``fields`` fill columns."""
    arr = np.zeros(n, dtype=cls._dtypes)
    arr["length"] = arr.dtype.itemsize // 4
    arr["rtype"] = RTYPES[schema]
    arr["publisher_id"] = 1
    for name, value in fields.items():
        arr[name] = value
    return arr


def write_file(
    path: Path, recs: np.ndarray | bytes, *, schema: str | None, mappings: dict[str, list[tuple]] | None = None,
    stype_in: str | None = "continuous", version: int = 3, compress: bool = True,
    start: int = 0, end: int | None = None, ts_out: bool = False,
) -> Path:
    """Write metadata + records; ``mappings`` is {requested symbol: [(start_date, end_date, id)]}."""
    mappings = mappings or {}
    meta = dbn.Metadata(
        dataset="GLBX.MDP3", start=start, end=end,
        stype_in=None if stype_in is None else dbn.SType(stype_in), stype_out=dbn.SType.INSTRUMENT_ID,
        schema=None if schema is None else dbn.Schema.from_str(schema), symbols=list(mappings),
        partial=[], not_found=[], ts_out=ts_out, version=version,
        mappings=[Mapping(s, [Interval(a, b, str(i)) for a, b, i in ivs]) for s, ivs in mappings.items()],
    )
    raw = meta.encode() + (recs if isinstance(recs, bytes) else recs.tobytes())
    path.write_bytes(zstandard.ZstdCompressor(level=1).compress(raw) if compress else raw)
    return path


def upgrade_to_v3(src: Path, dst: Path) -> Path:
    """Rewrite a v1/v2 file as v3 with DBN's own upgrade (databento_dbn, record by record)."""
    raw = zstandard.ZstdDecompressor().stream_reader(src.read_bytes()).read()
    decoder = dbn.DBNDecoder(upgrade_policy=dbn.VersionUpgradePolicy.UPGRADE_TO_V3)
    decoder.write(raw)
    meta, *recs = decoder.decode()
    assert meta.version == 3
    dst.write_bytes(zstandard.ZstdCompressor().compress(meta.encode() + b"".join(bytes(r) for r in recs)))
    return dst


class Kit:
    """What the decode tests need to build DBN files: dates to ns, records, writing, upgrading."""

    ns = staticmethod(ns)
    records = staticmethod(records)
    upgrade_to_v3 = staticmethod(upgrade_to_v3)

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, name: str, recs: np.ndarray | bytes, **kwargs: Any) -> Path:
        return write_file(self.folder / name, recs, **kwargs)


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)
