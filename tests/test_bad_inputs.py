"""Every bad input is one clear line on stderr, exit code != 0, no traceback, and nothing written.

Each case runs the real ``hdi`` command (in-process through the ``cli`` fixture, and a few as a real
process) and checks: the exit code, the exact one-line message (or a tight pattern where a value
such as a request id varies), that no traceback was printed, and that nothing was written (no
store file or tables, no ledger rows, no quarantine or raw-cache files, no download, no output file).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import zstandard

NOW = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)  # the gateway's "today": datasets end here
KEY = "db-test-0123456789abcdefABCDEF"
ROOT = Path(__file__).resolve().parents[1]

# A copy of recipes/ohlcv_1d.yaml (kept here so that line numbers in messages stay fixed).
RECIPE = """\
name: bad_inputs
description: Daily bars for tests of bad inputs
source:
  vendor: databento
  schema: ohlcv-1d
  start: 2024-01-01
  end: 2024-03-01                     # exclusive
  chunk: {period: month, max_symbols: 10}
  requests:
    - {dataset: GLBX.MDP3, stype_in: continuous, symbols: [CL.c.0, NG.c.0]}
    - {dataset: EQUS.MINI, stype_in: raw_symbol, symbols: [SPY]}
transform:
  - rename: {ts_event: bar_timestamp_utc, open: open_price, high: high_price, low: low_price, close: close_price}
  - fixed_to_decimal: [open_price, high_price, low_price, close_price]
  - constant: {granularity: 1d, data_source: databento, trade_count: null, vwap: null}
validate:
  max_failure_rate: 0.01
target:
  table: ohlcv
  on_conflict: ignore
"""
ONE_REQUEST = RECIPE.replace("    - {dataset: EQUS.MINI, stype_in: raw_symbol, symbols: [SPY]}\n", "")
RECIPE_1M = RECIPE.replace("schema: ohlcv-1d", "schema: ohlcv-1m").replace("granularity: 1d", "granularity: 1m")


# --------------------------------------------------------------------------------------- helpers
def data_dir() -> Path:
    return Path(os.environ["HDI_DATA_DIR"])


def failed_with(result, expected: str | re.Pattern[str], *, code: int = 1) -> None:
    """Exit code ``code``, stdout empty, and stderr exactly one line: ``expected`` (text or pattern)."""
    out = result.stdout + result.stderr
    assert result.exit_code == code, out
    assert "Traceback" not in out and 'File "' not in out, out
    assert result.stdout == "", result.stdout
    lines = result.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1, result.stderr
    if isinstance(expected, str):
        assert lines[0] == expected
    else:
        assert expected.fullmatch(lines[0]), lines[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def nothing_written(gateway=None) -> None:
    """No store file, no quarantine or raw-cache file, no download (log files may exist, and the
    exchange-calendar cache: the test gateway's synthetic market builds calendar years when it is
    first imported, which is inside this test when it runs alone)."""
    d = data_dir()
    assert not (d / "hdi.duckdb").exists()
    assert files_under(d / "quarantine") == []
    assert files_under(d / "raw") == []
    assert [p for p in files_under(d) if p.parent.name not in ("logs", "calendars")] == []
    if gateway is not None:
        assert gateway.calls("timeseries.get_range") == []
        assert gateway.calls("metadata.get_cost") == []


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def variant(tmp_path: Path, old: str, new: str, base: str = RECIPE) -> tuple[Path, int]:
    """The recipe with one exact replacement, and the line it is on."""
    assert base.count(old) == 1, old
    return write(tmp_path, base.replace(old, new)), base[:base.index(old)].count("\n") + 1


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def admin(url: str, *sql: str) -> list:
    import adbc_driver_postgresql.dbapi as pg

    rows: list = []
    with pg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        for s in sql:
            cur.execute(s)
            rows = cur.fetchall() if cur.description else []
    return rows


# --------------------------------------------------------------------------------------- DBN files
@pytest.fixture(scope="module")
def dbn(tmp_path_factory) -> dict[str, Path]:
    """Real DBN files from the local gateway (real client), and damaged copies of them."""
    from hdi.source.chunks import Request
    from hdi.source.databento import DatabentoSource
    from hdi.testing.gateway import Gateway

    out = tmp_path_factory.mktemp("dbn")
    files: dict[str, Path] = {}
    with Gateway(now=NOW) as gw, pytest.MonkeyPatch.context() as mp:
        for k, v in gw.env().items():
            mp.setenv(k, v)
        mp.setenv("DATABENTO_API_KEY", KEY)
        src = DatabentoSource(cache_dir=out / "cache")
        futures = ("CL.c.0", "NG.c.0", "HO.c.0", "RB.c.0", "ES.c.0")
        wanted = {
            "jan.dbn.zst": ("ohlcv-1d", ("CL.c.0",), "2024-01-01", "2024-02-01"),
            "feb.dbn.zst": ("ohlcv-1d", ("CL.c.0",), "2024-02-01", "2024-03-01"),
            "trades.dbn.zst": ("trades", ("CL.c.0",), "2024-03-04T14:00:00", "2024-03-04T14:10:00"),
            "m1_a.dbn.zst": ("ohlcv-1m", futures, "2024-03-04", "2024-03-06"),
            "m1_b.dbn.zst": ("ohlcv-1m", futures, "2024-03-06", "2024-03-08"),
            "m1_c.dbn.zst": ("ohlcv-1m", futures, "2024-03-11", "2024-03-13"),
        }
        for name, (schema, syms, a, b) in wanted.items():
            req = Request("GLBX.MDP3", schema, "continuous", syms, dt.datetime.fromisoformat(a),
                          dt.datetime.fromisoformat(b))
            files[name] = Path(shutil.copy(src.fetch(req), out / name))
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(files["jan.dbn.zst"].read_bytes())
    body = files["m1_b.dbn.zst"].read_bytes()
    assert len(body) > 100_000  # several zstd blocks: damage in the middle passes the header checks
    mid = len(body) // 2
    damaged = {
        "empty.dbn": b"",
        "v9.dbn": raw[:3] + bytes([9]) + raw[4:],
        "bad_metadata.dbn": raw[:20] + b"\xee" * 40 + raw[60:],
        "prices.csv.dbn": b"ts_event,open,high,low,close\n1,2,3,4,5\n",
        "m1_corrupt.dbn.zst": body[:mid] + bytes(range(256)) * 2 + body[mid + 512:],
        "m1_truncated.dbn.zst": body[: len(body) * 2 // 3],
        "jan_cut_record.dbn": raw[:-10],
    }
    for name, data in damaged.items():
        files[name] = out / name
        files[name].write_bytes(data)
    return files


# --------------------------------------------------------------------------------------- recipes
RECIPE_CASES = [
    # id, old text, new text, expected message after "<file>:<line>: "
    ("unknown_top_key", "description: Daily bars for tests of bad inputs", "colour: blue",
     "unknown key 'colour'; allowed: name, description, source, transform, validate, target"),
    ("misspelt_top_key", "description:", "descripton:",
     "unknown key 'descripton' (did you mean 'description'?); allowed: name, description, source, transform, "
     "validate, target"),
    ("misspelt_nested_key", "max_failure_rate: 0.01", "max_failure_rat: 0.01",
     "validate: unknown key 'max_failure_rat' (did you mean 'max_failure_rate'?); allowed: max_failure_rate, "
     "allow_non_positive_prices, on_budget_exceeded"),
    ("wrong_type_rate", "max_failure_rate: 0.01", "max_failure_rate: lots",
     "validate.max_failure_rate: expected a number from 0 to 1, got a string 'lots'; allowed: a fraction from 0 "
     "to 1, e.g. 0.01"),
    ("wrong_type_max_symbols", "max_symbols: 10}", "max_symbols: ten}",
     "source.chunk.max_symbols: expected an integer from 1 to 2000, got a string 'ten'; allowed: 1..2000"),
    ("unknown_op", "  - fixed_to_decimal:", "  - fixed_to_decimel:",
     "transform[1]: unknown op 'fixed_to_decimel' (did you mean 'fixed_to_decimal'?); allowed: rename, select, "
     "drop, cast, constant, derive, filter, map_values, epoch_ns, utc_date, fixed_to_decimal, ordinal, resample, "
     "stat_name, stat_value"),
    ("unknown_schema", "schema: ohlcv-1d", "schema: ohlcv-1w",
     "source.schema: unknown schema 'ohlcv-1w' (did you mean 'ohlcv-1s'?); allowed: ohlcv-1s, ohlcv-1m, "
     "ohlcv-1h, ohlcv-1d, trades, tbbo, mbp-1, statistics, definition, mbo, mbp-10, bbo-1s, bbo-1m, cbbo-1s, "
     "cbbo-1m, status, imbalance, ohlcv-eod"),
    ("unknown_stype_in", "stype_in: raw_symbol", "stype_in: raw_symbols",
     "source.requests[1].stype_in: unknown stype_in 'raw_symbols' (did you mean 'raw_symbol'?); allowed: "
     "raw_symbol, continuous, parent, instrument_id"),
    ("malformed_dataset", "dataset: EQUS.MINI", "dataset: equs.mini",
     "source.requests[1].dataset: bad dataset 'equs.mini' (did you mean 'EQUS.MINI'?); allowed: a Databento "
     "dataset code VENUE.FEED in capitals, e.g. GLBX.MDP3, EQUS.MINI"),
    ("empty_symbol_list", "symbols: [SPY]", "symbols: []",
     "source.requests[1].symbols: the list is empty; allowed: a list of symbols, e.g. [CL.c.0, NG.c.0]"),
    ("symbol_with_quote", "symbols: [SPY]", "symbols: [\"SPY'\"]",
     "source.requests[1].symbols[0]: symbol \"SPY'\" has a character not allowed (\"'\"); allowed: A-Z a-z 0-9 "
     ". _ - / ! : and inner spaces, 1-70 characters, no leading or trailing space"),
    ("symbol_with_semicolon", "symbols: [SPY]", "symbols: [\"SPY;DROP TABLE ohlcv\"]",
     "source.requests[1].symbols[0]: symbol 'SPY;DROP TABLE ohlcv' has a character not allowed (';'); allowed: "
     "A-Z a-z 0-9 . _ - / ! : and inner spaces, 1-70 characters, no leading or trailing space"),
    ("symbol_with_unicode", "symbols: [SPY]", "symbols: [SPŸ]",
     "source.requests[1].symbols[0]: symbol 'SPŸ' has a character not allowed ('Ÿ'); allowed: A-Z a-z 0-9 . _ "
     "- / ! : and inner spaces, 1-70 characters, no leading or trailing space"),
    ("unparsable_date", "start: 2024-01-01", "start: 2024-02-30",
     "source.start: start '2024-02-30' is not a date or timestamp; allowed: a date (2024-01-01) or an ISO-8601 "
     "timestamp (2024-01-01T14:30:00Z), UTC"),
    ("start_not_before_end", "end: 2024-03-01 ", "end: 2023-03-01 ",
     "source.start: start 2024-01-01 is not before end 2023-03-01 (end is exclusive); allowed: start < end"),
    ("unknown_table", "table: ohlcv", "table: bars",
     "target.table: unknown table 'bars'; allowed: ohlcv, trades, tbbo, mbp1, statistics, instruments, mbo, "
     "mbp10, bbo, cbbo, status, imbalance"),
]


@pytest.mark.parametrize("old,new,expected", [c[1:] for c in RECIPE_CASES], ids=[c[0] for c in RECIPE_CASES])
def test_bad_recipe_is_one_line_with_file_and_line(cli, gateway, tmp_path, old, new, expected):
    path, line = variant(tmp_path, old, new)
    if old.startswith("end:") or old == "start: 2024-01-01":  # the date checks report the start key's line
        line = RECIPE[:RECIPE.index("start: 2024-01-01")].count("\n") + 1
    failed_with(cli("ingest", "--recipe", path), f"error: {path}:{line}: {expected}")
    nothing_written(gateway)


def test_malformed_yaml(cli, gateway, tmp_path):
    path = write(tmp_path, "name: x\nsource: [a\n")
    failed_with(cli("ingest", "--recipe", path),
                f"error: {path}:3: malformed YAML: while parsing a flow sequence expected ',' or ']', but got "
                "'<stream end>'; allowed: a mapping with keys name, description, source, transform, validate, "
                "target (see docs/recipes.md)")
    nothing_written(gateway)


def test_empty_recipe_file(cli, tmp_path):
    path = write(tmp_path, "# nothing\n")
    failed_with(cli("ingest", "--recipe", path),
                f"error: {path}:1: the recipe is empty; allowed: a mapping with keys name, description, source, "
                "transform, validate, target (see docs/recipes.md)")
    nothing_written()


def test_recipe_path_is_a_directory(cli, tmp_path):
    failed_with(cli("ingest", "--recipe", tmp_path),
                f"error: {tmp_path}: is a directory, not a recipe file; allowed: a path to a .yaml recipe file")
    nothing_written()


def test_missing_recipe_file_lists_the_neighbours(cli, tmp_path):
    write(tmp_path, RECIPE, "ohlcv_1d.yaml")
    missing = tmp_path / "ohlcv_1b.yaml"
    failed_with(cli("ingest", "--recipe", missing),
                f"error: {missing}: recipe file not found (did you mean '{tmp_path / 'ohlcv_1d.yaml'}'?); "
                f"allowed: {tmp_path / 'ohlcv_1d.yaml'}")
    nothing_written()


def test_unknown_dataset_is_refused_before_anything_is_written(cli, gateway, tmp_path):
    path, _ = variant(tmp_path, "dataset: EQUS.MINI", "dataset: XXXX.NOPE")
    failed_with(cli("ingest", "--recipe", path), re.compile(
        r"error: get_dataset_range XXXX\.NOPE failed after 1 attempt: HTTP 422: dataset_not_found: The dataset "
        r"'XXXX\.NOPE' does not exist or is not available\. Available datasets: EQUS\.MINI, GLBX\.MDP3, XNAS\.ITCH\. "
        r"\(request id hdi-gw-\d+\)"))
    nothing_written(gateway)


# --------------------------------------------------------------------------------------- CLI overrides
def test_start_not_before_end_on_the_command_line(cli, gateway, tmp_path):
    path = write(tmp_path, RECIPE)
    failed_with(cli("ingest", "--recipe", path, "--start", "2024-01-05", "--end", "2024-01-01"),
                f"error: {path}: start 2024-01-05 is not before end 2024-01-01 (end is exclusive); allowed: start < end")
    nothing_written(gateway)


def test_unparsable_start_on_the_command_line(cli, gateway, tmp_path):
    path = write(tmp_path, RECIPE)
    failed_with(cli("ingest", "--recipe", path, "--start", "2024-13-05"),
                f"error: {path}: --start '2024-13-05' is not a date or timestamp; allowed: a date (2024-01-01) or an "
                "ISO-8601 timestamp (2024-01-01T14:30:00Z), UTC")
    nothing_written(gateway)


def test_start_after_the_available_end_says_databento_would_answer_422(cli, gateway, tmp_path):
    path = write(tmp_path, RECIPE)
    failed_with(cli("ingest", "--recipe", path, "--start", "2027-01-01", "--end", "2027-02-01"),
                f"error: {path}: --start 2027-01-01 is after the available end of GLBX.MDP3 (GLBX.MDP3 has data from "
                "2010-06-06 to 2026-01-15, end exclusive); Databento answers 422 data_start_after_available_end; "
                "allowed: a start before 2026-01-15 (or --update to fetch up to the available end)")
    nothing_written(gateway)


def test_end_after_the_available_end_in_the_recipe(cli, gateway, tmp_path):
    path, _ = variant(tmp_path, "end: 2024-03-01 ", "end: 2026-02-01 ")
    failed_with(cli("ingest", "--recipe", path, "--symbols", "SPY"),
                f"error: {path}: source.end 2026-02-01 is after the available end of EQUS.MINI (EQUS.MINI has data "
                "from 2023-03-28 to 2026-01-15, end exclusive); Databento answers 422 data_end_after_available_end; "
                "allowed: an end at or before 2026-01-15 (or --update to fetch up to the available end)")
    nothing_written(gateway)


@pytest.mark.parametrize("symbol,bad", [("CL.c.0'", "\"'\""), ("CL.c.0;DROP", "';'"), ("CL.c.0é", "'é'")],
                         ids=["quote", "semicolon", "unicode"])
def test_bad_characters_in_symbols_on_the_command_line(cli, gateway, tmp_path, symbol, bad):
    path = write(tmp_path, ONE_REQUEST)
    failed_with(cli("ingest", "--recipe", path, "--symbols", f"NG.c.0,{symbol}"),
                f"error: {path}: symbol {symbol!r} has a character not allowed ({bad[1:-1]!r}); allowed: A-Z a-z 0-9 "
                ". _ - / ! : and inner spaces, 1-70 characters, no leading or trailing space")
    nothing_written(gateway)


def test_symbols_not_in_a_multi_request_recipe(cli, gateway, tmp_path):
    path = write(tmp_path, RECIPE)
    failed_with(cli("ingest", "--recipe", path, "--symbols", "CL.c.0,SPX"),
                f"error: {path}: --symbols 'SPX' is in none of the recipe's requests (GLBX.MDP3/continuous "
                "[CL.c.0, NG.c.0]; EQUS.MINI/raw_symbol [SPY]) (did you mean 'SPY'?); allowed: CL.c.0, NG.c.0, SPY")
    nothing_written(gateway)


def test_empty_symbols_on_the_command_line(cli, gateway, tmp_path):
    path = write(tmp_path, RECIPE)
    failed_with(cli("ingest", "--recipe", path, "--symbols", " , "),
                f"error: {path}: --symbols is empty; allowed: symbols of the recipe's requests")
    nothing_written(gateway)


def test_resume_of_an_unknown_run(cli, gateway):
    failed_with(cli("ingest", "--resume", "20240101T000000Z-abcdef"),
                f"error: --resume 20240101T000000Z-abcdef: no such run in duckdb://{data_dir().absolute()}/hdi.duckdb "
                "(see `hdi status` for recent runs)")
    nothing_written(gateway)


def test_misspelt_option_is_a_usage_error(cli, tmp_path):
    result = cli("ingest", "--recipee", write(tmp_path, RECIPE))
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("Error")] == [
        "Error: No such option: --recipee (Possible options: --recipe)"]
    nothing_written()


# --------------------------------------------------------------------------------------- environment and API key
def test_retry_attempts_not_a_number(cli, gateway, tmp_path, monkeypatch):
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "abc")
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE)),
                "error: HDI_RETRY_ATTEMPTS='abc' is not allowed; allowed: a number from 1 to 10")
    nothing_written(gateway)


def test_missing_api_key_says_how_to_set_it(cli, tmp_path):
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE)),
                "error: DATABENTO_API_KEY is not set: export DATABENTO_API_KEY=db-... with a key from "
                "https://databento.com/portal/keys (or ingest files on disk with --from-file)")
    nothing_written()


def test_rejected_api_key_is_databentos_401_before_anything_is_written(cli, gateway, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABENTO_API_KEY", "db-bad-0123456789abcdefABCDEF")
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--dry-run"),
                "error: get_dataset_range GLBX.MDP3: Databento rejected the API key (HTTP 401: "
                "auth_authentication_failed: Authentication failed.); export DATABENTO_API_KEY with a valid key "
                "from https://databento.com/portal/keys")
    nothing_written(gateway)
    assert len(gateway.calls("metadata.get_dataset_range")) == 1  # refused at once, not retried


# --------------------------------------------------------------------------------------- stores
def test_unknown_store_scheme(cli, tmp_path, dbn):
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", dbn["jan.dbn.zst"],
                    "--store", "mysql://u:pw@db.example/x"),
                "error: store URL 'mysql://u:***@db.example/x' has an unknown scheme 'mysql'; allowed: "
                "duckdb:///path/to/file.duckdb, postgresql://user:***@host:port/database, iceberg:///path/to/folder")
    nothing_written()


def test_bad_hdi_store_names_the_variable(cli, tmp_path, dbn, monkeypatch):
    monkeypatch.setenv("HDI_STORE", str(tmp_path / "x.duckdb"))
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", dbn["jan.dbn.zst"]),
                f"error: store URL '{tmp_path / 'x.duckdb'}' (from HDI_STORE) is not a URL (no scheme://) (did you "
                f"mean 'duckdb://{tmp_path / 'x.duckdb'}'?); allowed: duckdb:///path/to/file.duckdb, "
                "postgresql://user:***@host:port/database, iceberg:///path/to/folder")
    assert not (tmp_path / "x.duckdb").exists()
    nothing_written()


def test_duckdb_store_under_a_file(cli, tmp_path, dbn):
    blocker = write(tmp_path, "not a folder", "plain.txt")
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", dbn["jan.dbn.zst"],
                    "--store", f"duckdb://{blocker}/hdi.duckdb"),
                f"error: cannot create DuckDB store {blocker}/hdi.duckdb: {blocker} is a file, not a folder")
    nothing_written()


def test_unreachable_database(cli, tmp_path, dbn):
    port = closed_port()
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", dbn["jan.dbn.zst"],
                    "--store", f"postgresql://hdi:Pw-unreachable-42@127.0.0.1:{port}/hdi"), re.compile(
        rf"error: TimescaleDB at postgresql://hdi:\*\*\*@127\.0\.0\.1:{port}/hdi: cannot connect: \[libpq\] Failed "
        rf"to connect: connection to server at \"127\.0\.0\.1\", port {port} failed: Connection refused .*"
        r"\(is the server running\? `make db-up` starts the local one\)"))
    nothing_written()


def test_wrong_database_password(cli, tmp_path, dbn, timescale_url):
    parts = urlsplit(timescale_url)
    url = urlunsplit(parts._replace(netloc=f"{parts.username}:Wrong-pw-42@{parts.hostname}:{parts.port}"))
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", dbn["jan.dbn.zst"], "--store", url),
                f"error: TimescaleDB at postgresql://{parts.username}:***@{parts.hostname}:{parts.port}{parts.path}: "
                f"cannot connect: [libpq] Failed to connect: connection to server at \"{parts.hostname}\", port "
                f"{parts.port} failed: FATAL: password authentication failed for user \"{parts.username}\" (check the "
                "user and password in the store URL)")
    nothing_written()


@pytest.fixture
def plain_database(timescale_url):
    """A database without the timescaledb extension (created by the hdi role, which has CREATEDB)."""
    name = f"hdi_plain_{uuid.uuid4().hex[:10]}"
    admin(timescale_url, f"CREATE DATABASE {name} TEMPLATE template0")
    yield name, with_database(timescale_url, name)
    from hdi.store import close_all

    close_all()
    admin(timescale_url, f"DROP DATABASE {name} WITH (FORCE)")


def test_database_without_timescaledb_that_the_user_may_not_extend(cli, tmp_path, dbn, timescale_url, plain_database):
    name, url = plain_database
    user = urlsplit(timescale_url).username
    admin(timescale_url, f"REVOKE ALL ON DATABASE {name} FROM PUBLIC", f"REVOKE CREATE ON DATABASE {name} FROM {user}",
          f"GRANT CONNECT, TEMPORARY ON DATABASE {name} TO {user}")
    parts = urlsplit(url)
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", dbn["jan.dbn.zst"], "--store", url),
                f"error: TimescaleDB at postgresql://{user}:***@{parts.hostname}:{parts.port}/{name}: the database has "
                "no timescaledb extension and this user cannot create it (permission denied to create extension "
                "\"timescaledb\"); fix: run 'CREATE EXTENSION timescaledb;' in that database as its owner or a "
                "superuser (the server must have TimescaleDB installed), or point --store at a TimescaleDB database")
    nothing_written()
    assert admin(url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]


def test_database_without_timescaledb_gets_it_when_the_user_may_create_it(cli, tmp_path, dbn, plain_database):
    _, url = plain_database
    result = cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", dbn["jan.dbn.zst"], "--store", url)
    assert result.exit_code == 0, result.stderr
    assert admin(url, "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'") == [(1,)]
    assert admin(url, "SELECT count(*) FROM ohlcv")[0][0] == admin(url, "SELECT sum(rows_fetched)::int8 FROM ingest_chunks")[0][0] > 0


# --------------------------------------------------------------------------------------- DBN files
FILE_CASES = [
    ("empty", "empty.dbn", "{p}: file is empty (0 bytes); expected DBN data (.dbn or .dbn.zst)"),
    ("unsupported_version", "v9.dbn", "{p}: DBN version 9 is not supported; supported versions: 1, 2, 3"),
    ("corrupt_metadata", "bad_metadata.dbn", "{p}: corrupt DBN metadata: UTF-8 error: Utf8Error {{ valid_up_to: 12, "
     "error_len: Some(1) }} while reading dataset from metadata"),
    ("not_dbn", "prices.csv.dbn", "{p}: not a DBN file: it starts with b'ts_e' (text, e.g. CSV or JSON); a .dbn file "
     "starts with b'DBN' and a .dbn.zst file with the zstd magic 28 b5 2f fd"),
    ("other_schema", "trades.dbn.zst", "{p}: the file holds schema 'trades' but recipe {r} reads 'ohlcv-1d'; use a "
     "recipe for trades"),
    ("last_record_cut", "jan_cut_record.dbn", "{p}: file is truncated: its last ohlcv-1d record is incomplete (46 of "
     "56 bytes, after 26 whole records); download the file again"),
]


@pytest.mark.parametrize("name,expected", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_dbn_file(cli, tmp_path, dbn, name, expected):
    recipe = write(tmp_path, RECIPE)
    failed_with(cli("ingest", "--recipe", recipe, "--from-file", dbn[name]),
                "error: " + expected.format(p=dbn[name], r=recipe))
    nothing_written()


def test_missing_dbn_file(cli, tmp_path):
    missing = tmp_path / "nope.dbn.zst"
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", missing),
                f"error: {missing}: no such file (expected a .dbn or .dbn.zst file)")
    nothing_written()


@pytest.mark.parametrize("bad,expected", [
    ("m1_corrupt.dbn.zst", "{p}: corrupt zstd data (zstd decompressor error: Data corruption detected); download the "
     "file again"),
    ("m1_truncated.dbn.zst", re.compile(r"{p}: file is truncated: the zstd stream ends inside a frame after \d+ bytes "
                                        r"of DBN; download the file again")),
], ids=["corrupt_body", "truncated"])
def test_one_bad_file_among_good_ones_loads_nothing(cli, tmp_path, dbn, bad, expected):
    """Every file is checked before anything loads: the bad one is named, the good ones are not half-loaded."""
    files = [dbn["m1_a.dbn.zst"], dbn[bad], dbn["m1_c.dbn.zst"]]
    args = [a for f in files for a in ("--from-file", f)]
    result = cli("ingest", "--recipe", write(tmp_path, RECIPE_1M), *args)
    if isinstance(expected, str):
        failed_with(result, "error: " + expected.format(p=dbn[bad]))
    else:
        failed_with(result, re.compile("error: " + expected.pattern.format(p=re.escape(str(dbn[bad])))))
    nothing_written()
    # the same files without the bad one load, so the refusal was about that file only
    good = cli("ingest", "--recipe", write(tmp_path, RECIPE_1M), *args[:2], *args[4:])
    assert good.exit_code == 0, good.stderr


# --------------------------------------------------------------------------------------- hdi query / status
QUERY = ("query", "--schema", "ohlcv-1d", "--symbols", "CL.c.0", "--start", "2024-01-01", "--end", "2024-02-01")


@pytest.fixture
def loaded(cli, tmp_path, dbn) -> str:
    store = f"duckdb://{tmp_path / 'q.duckdb'}"
    assert cli("ingest", "--recipe", write(tmp_path, RECIPE, "q.yaml"), "--from-file", dbn["jan.dbn.zst"],
               "--store", store).exit_code == 0
    return store


def test_query_parquet_without_output(cli, loaded):
    failed_with(cli(*QUERY, "--store", loaded, "--format", "parquet"),
                "error: --format parquet needs --output PATH (Parquet is binary; it is not written to stdout)")


@pytest.mark.parametrize("schema,hint", [("ohlcv-1w", " (did you mean 'ohlcv-1s'?)"), ("ohlcv-2m", " (did you mean "
                                         "'ohlcv-5m'?)"), ("quotes", "")], ids=["schema", "granularity", "no_hint"])
def test_query_unknown_schema_or_granularity(cli, loaded, schema, hint):
    args = list(QUERY)
    args[2] = schema
    failed_with(cli(*args, "--store", loaded),
                f"error: --schema '{schema}' is not allowed{hint}; allowed: ohlcv-1s, ohlcv-1m, ohlcv-5m, ohlcv-15m, "
                "ohlcv-1h, ohlcv-1d, ohlcv-eod, trades, tbbo, mbp-1, statistics, definition, mbo, mbp-10, bbo-1s, "
                "bbo-1m, cbbo-1s, cbbo-1m, status, imbalance")


def test_query_unknown_format(cli, loaded):
    failed_with(cli(*QUERY, "--store", loaded, "--format", "xls"),
                "error: --format 'xls' is not allowed; allowed: parquet, csv, table")


def test_query_unparsable_date(cli, loaded):
    args = list(QUERY)
    args[6] = "yesterday"
    failed_with(cli(*args, "--store", loaded),
                "error: start 'yesterday' is not a date or ISO-8601 timestamp (e.g. 2024-01-31 or 2024-01-31T14:30:00Z)")


def test_query_output_under_a_file(cli, loaded, tmp_path):
    blocker = write(tmp_path, "x", "plain.txt")
    failed_with(cli(*QUERY, "--store", loaded, "--format", "csv", "--output", blocker / "out.csv"),
                f"error: output {blocker}/out.csv: folder {blocker} is a file, not a folder")


def _unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        return folder
    folder = Path("/sys")  # root writes anywhere but on read-only file systems; sysfs is one
    try:
        (folder / "hdi-probe").write_bytes(b"")
    except OSError:
        return folder
    pytest.skip("no read-only folder available to root here")


def test_query_output_not_writable(cli, loaded, tmp_path):
    folder = _unwritable_folder(tmp_path)
    out = folder / "out.parquet"
    result = cli(*QUERY, "--store", loaded, "--format", "parquet", "--output", out)
    failed_with(result, re.compile(rf"error: output {re.escape(str(out))}(: folder {re.escape(str(folder))} is not "
                                   rf"writable| cannot be written: (Permission denied|Read-only file system).*)"))
    assert not out.exists() and not (folder / ".out.parquet.tmp").exists()


def test_status_unknown_format(cli):
    failed_with(cli("status", "--format", "xml"), "error: --format 'xml' is not allowed; allowed: table, json")
    nothing_written()


# --------------------------------------------------------------------------------------- as a real process
@pytest.mark.slow
def test_errors_from_a_real_process_are_one_line_without_traceback(tmp_path, dbn):
    """The console script (not just the typer app) prints one line and exits 1, for errors from each stage."""
    hdi = [str(ROOT / ".venv" / "bin" / "hdi")] if (ROOT / ".venv" / "bin" / "hdi").exists() else \
        [sys.executable, "-m", "hdi.cli.app"]
    recipe = write(tmp_path, RECIPE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HDI_", "DATABENTO_"))}
    env["HDI_DATA_DIR"] = str(tmp_path / "data")
    cases = [
        ({}, ["ingest", "--recipe", recipe], "error: DATABENTO_API_KEY is not set: export DATABENTO_API_KEY=db-... "
         "with a key from https://databento.com/portal/keys (or ingest files on disk with --from-file)"),
        ({"HDI_STORE": "sqlite:///x.db"}, ["ingest", "--recipe", recipe, "--from-file", dbn["jan.dbn.zst"]],
         "error: store URL 'sqlite:///x.db' (from HDI_STORE) has an unknown scheme 'sqlite'; allowed: "
         "duckdb:///path/to/file.duckdb, postgresql://user:***@host:port/database, iceberg:///path/to/folder"),
        ({}, ["ingest", "--recipe", recipe, "--from-file", dbn["m1_truncated.dbn.zst"]],
         f"error: {dbn['m1_truncated.dbn.zst']}: the file holds schema 'ohlcv-1m' but recipe {recipe} reads "
         "'ohlcv-1d'; use a recipe for ohlcv-1m"),
        ({}, ["ingest", "--recipe", recipe, "--from-file", dbn["v9.dbn"]],
         f"error: {dbn['v9.dbn']}: DBN version 9 is not supported; supported versions: 1, 2, 3"),
    ]
    for extra, args, expected in cases:
        done = subprocess.run([*hdi, *map(str, args)], env={**env, **extra}, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", expected + "\n")
    assert not (tmp_path / "data" / "hdi.duckdb").exists()
    assert [p for p in files_under(tmp_path / "data") if p.parent.name != "logs"] == []


# --------------------------------------------------------------------------------------- input bounds (exit 2)
LIMITS = "an expression of at most 2000 characters, 500 tokens and 16 levels of nested parentheses"
RANGE = "a time from 1970-01-01 to 2262-01-01 (UTC)"


def with_derive(tmp_path: Path, expression: str) -> tuple[Path, int]:
    """RECIPE with a derive step before the constant step, and that step's line."""
    return variant(tmp_path, "  - constant:", f"  - derive: {{x: '{expression}'}}\n  - constant:")


@pytest.mark.parametrize("terms", [5_000, 20_000])
def test_huge_expression_is_refused_before_polars_parses_it(cli, gateway, tmp_path, terms):
    """20,000 '+' terms crashed the process (segfault in Polars' recursive SQL parser); 5,000 ran > 60 s."""
    expression = " + ".join(["open_price"] * terms)
    path, line = with_derive(tmp_path, expression)
    expected = (f"error: {path}:{line}: transform[2] derive.x: expression 'open_price + open_price + open_price + "
                f"o...' is {len(expression):,} characters long; allowed: {LIMITS}")
    failed_with(cli("recipes", "validate", path), expected, code=2)
    failed_with(cli("ingest", "--recipe", path, "--dry-run"), "error: " + expected.removeprefix("error: "), code=2)
    nothing_written(gateway)


def test_huge_expression_in_a_real_process_does_not_crash(tmp_path):
    path, line = with_derive(tmp_path, " + ".join(["open_price"] * 20_000))
    hdi = [str(ROOT / ".venv" / "bin" / "hdi")] if (ROOT / ".venv" / "bin" / "hdi").exists() else \
        [sys.executable, "-m", "hdi.cli.app"]
    done = subprocess.run([*hdi, "recipes", "validate", str(path)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 2, done  # was -11 (SIGSEGV)
    assert done.stderr.startswith(f"error: {path}:{line}: ") and done.stderr.count("\n") == 1


@pytest.mark.parametrize("expression,what", [
    (" + ".join(["1"] * 251), "'1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + ...' has 501 tokens"),
    ("(" * 17 + "open_price" + ")" * 17, "'(((((((((((((((((open_price)))))))))))))...' nests parentheses 17 deep"),
], ids=["tokens", "depth"])
def test_expression_over_token_or_depth_limit(cli, tmp_path, expression, what):
    path, line = with_derive(tmp_path, expression)
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: transform[2] derive.x: expression {what}; allowed: {LIMITS}", code=2)


def test_expression_at_the_limits_is_fine(cli, tmp_path):
    path, _ = with_derive(tmp_path, "(" * 16 + " + ".join(["open_price"] * 100) + ")" * 16)
    result = cli("recipes", "validate", path)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_recipe_that_is_not_a_regular_file(cli, tmp_path, target):
    """``--recipe /dev/zero`` read until MemoryError; a FIFO blocked forever."""
    path = Path(target)
    if target == "fifo":
        path = tmp_path / "recipe.yaml"
        os.mkfifo(path)
    expected = f"error: {path}: is not a regular file; allowed: a path to a .yaml recipe file (a regular file)"
    failed_with(cli("ingest", "--recipe", path), expected, code=2)
    failed_with(cli("recipes", "validate", path), expected, code=2)
    nothing_written()


def test_recipe_file_over_one_mebibyte(cli, tmp_path):
    path = write(tmp_path, RECIPE + "#" * (1024 * 1024))
    size = path.stat().st_size
    failed_with(cli("ingest", "--recipe", path),
                f"error: {path}: the file is {size:,} bytes; allowed: a recipe file of at most 1,048,576 bytes", code=2)
    nothing_written()


def test_yaml_nested_too_deep(cli, tmp_path):
    path, line = variant(tmp_path, "description: Daily bars for tests of bad inputs",
                         "description: " + "[" * 5000 + "]" * 5000)
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: lists and mappings are nested more than 32 deep; allowed: at most 32 levels "
                "of nested lists and mappings", code=2)


@pytest.mark.parametrize("tagged,shown", [("!!int abc", "!!int does not fit the value 'abc'"),
                                          ("!!bool maybe", "!!bool does not fit the value 'maybe'"),
                                          ("!!seq x", "!!seq does not fit the value 'x'")])
def test_yaml_tag_that_does_not_fit_its_value(cli, tmp_path, tagged, shown):
    """PyYAML raised a bare ValueError/KeyError/AttributeError (a traceback) for these."""
    path, line = variant(tmp_path, "max_failure_rate: 0.01", f"max_failure_rate: {tagged}")
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: the tag {shown}; allowed: plain YAML values (a tag such as !!int must fit "
                "its value)")


def test_timestamp_tag_on_a_non_date(cli, tmp_path):
    """``!!timestamp x`` raised AttributeError inside PyYAML; now it is the string it says."""
    path, line = variant(tmp_path, "start: 2024-01-01", "start: !!timestamp x")
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: source.start: start 'x' is not a date or timestamp; allowed: a date "
                "(2024-01-01) or an ISO-8601 timestamp (2024-01-01T14:30:00Z), UTC")


def test_line_break_in_a_value_stays_on_one_line(cli, tmp_path):
    path, line = variant(tmp_path, "name: bad_inputs", 'name: "bad\\ninputs\\u2028\\x1b[31m"')
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: name: bad recipe name 'bad\\ninputs\\u2028\\x1b[31m'; allowed: lower-case "
                "letters, digits and _ ([a-z0-9_]+)")


@pytest.mark.parametrize("option,value", [("--start", "1677-09-21"), ("--start", "0001-01-01"),
                                          ("--end", "2262-04-12"), ("--start", "1969-12-31T23:59:59Z"),
                                          ("--start", "0001-01-01T00:00:00+05:00")])
def test_date_outside_what_hdi_can_store(cli, gateway, tmp_path, option, value):
    """``hdi query --start 1677-09-21`` or ``0001-01-01`` printed a Polars conversion traceback."""
    name = option.removeprefix("--")
    args = {"--start": "2024-01-01", "--end": "2024-02-01", option: value}
    failed_with(cli("query", "--schema", "ohlcv-1d", "--symbols", "CL.c.0", *[x for kv in args.items() for x in kv]),
                f"error: {name} '{value}' is outside the times hdi can store; allowed: {RANGE}", code=2)
    path = write(tmp_path, RECIPE)
    failed_with(cli("ingest", "--recipe", path, option, value),
                f"error: {path}: --{name} '{value}' is outside the times hdi can store; allowed: {RANGE}", code=2)
    nothing_written(gateway)


def test_date_outside_the_range_in_a_recipe(cli, tmp_path):
    path, line = variant(tmp_path, "start: 2024-01-01", "start: 0001-01-01T00:00:00+05:00")
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: source.start: start '0001-01-01T00:00:00+05:00' is outside the times hdi can "
                f"store; allowed: {RANGE}", code=2)


def test_read_bars_with_dates_or_ids_outside_the_limits(tmp_path):
    import hdi

    store = f"duckdb://{tmp_path / 'x.duckdb'}"
    cases = [(("CL.c.0", "1677-09-21", "2024-01-01"), f"start '1677-09-21' is outside the times hdi can store; "
              f"allowed: {RANGE}"),
             (("CL.c.0", dt.datetime(1, 1, 1), "2024-01-01"), f"start '0001-01-01 00:00:00' is outside the times hdi "
              f"can store; allowed: {RANGE}"),
             (("9" * 30, "2024-01-01", "2024-02-01"), f"instrument id {'9' * 30} is above 4294967295; allowed: an "
              "instrument id from 0 to 4294967295, or a symbol")]
    for args, expected in cases:
        with pytest.raises(hdi.HdiError) as info:
            hdi.read_bars(*args, store=store)
        assert (info.value.message, info.value.exit_code) == (expected, 2)


def test_huge_symbols_argument_is_refused_at_once(cli, gateway, tmp_path):
    """A 100,000-character --symbols took over 60 s (10,000 characters: 1.2 s)."""
    import time

    path = write(tmp_path, RECIPE)
    many = ",".join(f"S{i}" for i in range(20_000))
    t0 = time.perf_counter()
    failed_with(cli("ingest", "--recipe", path, "--symbols", many),
                f"error: {path}: 20,000 symbols for 2 requests; allowed: at most 2000 symbols per request", code=2)
    failed_with(cli("query", "--schema", "ohlcv-1d", "--symbols", many, "--start", "2024-01-01", "--end", "2024-02-01"),
                "error: 20,000 symbols in one query; allowed: at most 2000 symbols", code=2)
    long = "A" * 100_000
    failed_with(cli("ingest", "--recipe", path, "--symbols", long),
                f"error: {path}: symbol '{'A' * 40}...' is 100,000 characters long; allowed: 1-70 characters (A-Z a-z "
                "0-9 . _ - / ! : and inner spaces)", code=2)
    failed_with(cli("query", "--schema", "ohlcv-1d", "--symbols", long, "--start", "2024-01-01", "--end", "2024-02-01"),
                f"error: symbol '{'A' * 40}...' is 100,000 characters long; allowed: 1-70 characters, or an "
                "instrument id", code=2)
    assert time.perf_counter() - t0 < 10
    nothing_written(gateway)


def test_too_many_or_too_long_symbols_in_a_recipe(cli, tmp_path):
    many = ", ".join(f"S{i}" for i in range(2001))
    path, line = variant(tmp_path, "symbols: [SPY]", f"symbols: [{many}]")
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: source.requests[1].symbols: 2,001 symbols in one request; allowed: at most "
                "2000 symbols per request", code=2)
    path, line = variant(tmp_path, "symbols: [SPY]", f"symbols: [{'X' * 71}]")
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: source.requests[1].symbols[0]: symbol '{'X' * 40}...' is 71 characters long; "
                "allowed: 1-70 characters (A-Z a-z 0-9 . _ - / ! : and inner spaces)", code=2)


def test_instrument_id_above_uint32_in_a_recipe(cli, tmp_path):
    path, line = variant(tmp_path, "stype_in: raw_symbol, symbols: [SPY]", "stype_in: instrument_id, symbols: ['4294967296']")
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: source.requests[1].symbols[0]: instrument id 4294967296 is above 4294967295; "
                "allowed: a numeric instrument id from 0 to 4294967295 (DBN's uint32)", code=2)


def test_damaged_dataset_code_in_dbn_metadata_is_refused(cli, tmp_path, dbn):
    """A flipped bit in the metadata's dataset ('GLBX.MDP3' -> 'gLBX.MDP3') loaded every row under that name."""
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(dbn["jan.dbn.zst"].read_bytes())
    assert raw[8:17] == b"GLBX.MDP3"
    f = tmp_path / "flipped.dbn"
    f.write_bytes(raw[:8] + b"g" + raw[9:])
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", f),
                f"error: {f}: corrupt DBN metadata: dataset 'gLBX.MDP3' is not a Databento dataset code; allowed: "
                "VENUE.FEED in capitals, e.g. GLBX.MDP3")
    nothing_written()


def test_timestamp_constant_outside_the_range(cli, tmp_path):
    """make fuzz found it: an OverflowError traceback from Polars for a constant in year 1 with an offset."""
    path, line = variant(tmp_path, "trade_count: null, vwap: null}", "trade_count: null, vwap: null, "
                         "t: 0001-01-01T00:00:00+05:00}")
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: transform[2] constant.t: timestamp constant 0001-01-01T00:00:00+05:00 is outside "
                f"the times hdi can store; allowed: {RANGE}", code=2)


@pytest.mark.parametrize("end_ns,shown", [(2**64 - 2, "2554-07-21T23:34:33.709551+00:00"),
                                          (1_600_000_000 * 10**9, None)], ids=["after_2262", "before_start"])
def test_dbn_metadata_end_outside_the_range_or_before_start(cli, tmp_path, dbn, end_ns, shown):
    """make fuzz found it: a flipped bit in the metadata's end crashed the chunk in Polars (a multi-line
    error, and the failure could not be recorded)."""
    import struct

    raw = zstandard.ZstdDecompressor().decompressobj().decompress(dbn["jan.dbn.zst"].read_bytes())
    start_ns = struct.unpack_from("<Q", raw, 26)[0]
    f = tmp_path / "flipped.dbn"
    f.write_bytes(raw[:34] + struct.pack("<Q", end_ns) + raw[42:])
    what = (f"end {shown} is outside the times hdi can store; allowed: {RANGE}" if shown else
            "end 2020-09-13T12:26:40+00:00 is before start "
            f"{dt.datetime.fromtimestamp(start_ns / 1e9, dt.UTC).isoformat()}; allowed: start <= end")
    failed_with(cli("ingest", "--recipe", write(tmp_path, RECIPE), "--from-file", f),
                f"error: {f}: corrupt DBN metadata: {what}")
    nothing_written()


def test_yaml_alias_bomb_is_refused_at_once(cli, tmp_path):
    """A "billion laughs" document (aliases of aliases): 'cast: {open_price: <bomb>}' ran for minutes."""
    import time

    parts, prev = ["&a [x, x, x, x, x, x, x, x, x, x]"], "a"
    for name in "bcdefghi":
        parts.append(f"&{name} [{', '.join(['*' + prev] * 10)}]")
        prev = name
    path, line = variant(tmp_path, "  - constant:", f"  - cast: {{open_price: [{', '.join(parts)}]}}\n  - constant:")
    t0 = time.perf_counter()
    failed_with(cli("recipes", "validate", path),
                f"error: {path}:{line}: with its aliases expanded, the document holds more than 100,000 values; "
                "allowed: at most 100,000 values (aliases counted as copies)", code=2)
    assert time.perf_counter() - t0 < 10
