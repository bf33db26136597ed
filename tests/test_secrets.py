"""Secrets never leak, SQL is never built from values, and the compose file keeps the database private.

The leak tests run real ingests that fail in every way a secret could slip out (a 5xx beyond the
retry budget, rows failing validation into quarantine, a rejected API key, a database refusing a
write, a wrong or malformed database password), then look for the secrets in everything written:
every file under the data dir (log files, quarantine Parquet, raw cache, the DuckDB file) as bytes
and as decoded values, every row of every table of the store (the ledger included), and everything
printed on stdout and stderr.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "db-test-LeakCanary7f3e9a2b41c8"  # the gateway accepts any key but db-bad-*
REJECTED_KEY = "db-bad-LeakCanary0d9c5e7a11f2"
WRONG_PASSWORD = "Wr0ng-LeakCanary-55e1"
MALFORMED_PASSWORD = "bad%ZZLeakCanary9a"  # an invalid %-escape: libpq quotes it in its error

# Daily bars where a third of the rows fail validation (low above high) and go to quarantine.
RECIPE = """\
name: leak_check
source:
  vendor: databento
  schema: ohlcv-1d
  start: 2024-03-01
  end: 2024-04-01
  chunk: {period: month, max_symbols: 10}
  requests:
    - {dataset: GLBX.MDP3, stype_in: continuous, symbols: [CL.c.0, NG.c.0]}
    - {dataset: EQUS.MINI, stype_in: raw_symbol, symbols: [SPY]}
transform:
  - rename: {ts_event: bar_timestamp_utc, open: open_price, high: high_price, low: low_price, close: close_price}
  - fixed_to_decimal: [open_price, high_price, low_price, close_price]
  - constant: {granularity: 1d, data_source: databento, trade_count: null, vwap: null}
  - derive: {low_price: "CASE WHEN volume % 3 = 0 THEN high_price + 1 ELSE low_price END"}
validate:
  max_failure_rate: 1.0
target:
  table: ohlcv
"""


# --------------------------------------------------------------------------------------- helpers
class Finder:
    """Collects every text hdi produced and reports where any secret occurs."""

    def __init__(self, *secrets: str) -> None:
        assert all(len(s) >= 8 for s in secrets)
        self.secrets = secrets
        self.seen: dict[str, int] = {}
        self.leaks: list[str] = []

    def text(self, where: str, text: str | bytes) -> None:
        data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
        kind = where.split(":", 1)[0]
        self.seen[kind] = self.seen.get(kind, 0) + 1
        for s in self.secrets:
            for form in {s, s.replace("%", "%25")}:
                if form.encode() in data:
                    self.leaks.append(f"{where}: {s}")

    def frame(self, where: str, df: pl.DataFrame) -> None:
        self.text(where, "\n".join("\t".join(map(str, row)) for row in df.iter_rows()))

    def files(self, root: Path) -> None:
        """Every file's bytes; Parquet decoded too (its strings may be compressed)."""
        for p in sorted(root.rglob("*")):
            if not p.is_file():
                continue
            kind = {".parquet": "parquet", ".log": "log", ".duckdb": "duckdb"}.get(p.suffix, "file")
            self.text(f"{kind}:{p}", p.read_bytes())
            if p.suffix == ".parquet":
                self.frame(f"parquet-values:{p}", pl.read_parquet(p))

    def duckdb(self, path: Path) -> None:
        """Every row of every table (DuckDB compresses strings, so the bytes alone prove nothing)."""
        import duckdb

        from hdi.store import close_all

        close_all()
        con = duckdb.connect(str(path), read_only=True)
        try:
            for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
                self.frame(f"duckdb-rows:{table}", con.sql(f'SELECT * FROM "{table}"').pl())
        finally:
            con.close()

    def postgres(self, url: str) -> None:
        """Every row of every table of the store's schema, each row as PostgreSQL's text form."""
        import adbc_driver_postgresql.dbapi as pg

        with pg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
            for (table,) in cur.fetchall():
                cur.execute(f'SELECT t::text FROM "{table}" t')
                self.text(f"pg-rows:{table}", "\n".join(r[0] for r in cur.fetchall()))

    def output(self, where: str, stdout: str, stderr: str) -> None:
        self.text(f"stdout:{where}", stdout)
        self.text(f"stderr:{where}", stderr)


def hdi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console script, so that the ledger records a real command line."""
    return subprocess.run([str(ROOT / ".venv" / "bin" / "hdi"), *map(str, args)], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=300)


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}:{parts.port}"))


def test_the_finder_finds_a_planted_secret(tmp_path):
    """The checks below can fail: a secret planted in a file, a Parquet value or an output is found."""
    finder = Finder(API_KEY)
    (tmp_path / "a.log").write_text(f"x {API_KEY} y")
    pl.DataFrame({"_source": [f"k={API_KEY}"]}).write_parquet(tmp_path / "q.parquet", compression="zstd")
    finder.files(tmp_path)
    finder.output("cli", "", f"error: {API_KEY}")
    assert {leak.split(":", 1)[0] for leak in finder.leaks} == {"log", "parquet-values", "stderr"} | (
        {"parquet"} & {leak.split(":", 1)[0] for leak in finder.leaks})  # raw Parquet bytes may be compressed


# --------------------------------------------------------------------------------------- leaks
def test_api_key_never_leaks_from_a_failing_ingest(cli, gateway, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABENTO_API_KEY", API_KEY)
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "2")
    recipe = tmp_path / "leak.yaml"
    recipe.write_text(RECIPE)
    store = f"duckdb://{tmp_path / 'data' / 'hdi.duckdb'}"
    finder = Finder(API_KEY, REJECTED_KEY)
    # 5xx beyond the retry budget for the SPY chunk; the futures chunk loads with rows in quarantine
    gateway.faults.status("timeseries.get_range", 503, times=2, match={"dataset": "EQUS.MINI"})
    first = cli("ingest", "--recipe", recipe, "--store", store, "-v", "--no-progress")
    assert first.exit_code == 1
    assert "HTTP 503" in first.stderr and "quarantined" in first.stderr
    finder.output("run 1", first.stdout, first.stderr)
    from hdi.store import close_all, open_store

    close_all()  # DuckDB allows one writing process per file
    # a real process: its own log file and the ledger's command line
    second = hdi("ingest", "--recipe", recipe, "--store", store, "-v", "--no-progress")
    assert second.returncode == 0, second.stderr
    finder.output("run 2", second.stdout, second.stderr)
    monkeypatch.setenv("DATABENTO_API_KEY", REJECTED_KEY)
    third = cli("ingest", "--recipe", recipe, "--store", store, "--start", "2024-05-01", "--end", "2024-06-01")
    assert third.exit_code == 1 and "Databento rejected the API key (HTTP 401" in third.stderr
    finder.output("run 3", third.stdout, third.stderr)

    finder.files(tmp_path / "data")
    finder.duckdb(tmp_path / "data" / "hdi.duckdb")
    assert finder.leaks == []
    # the places a leak could hide were really there and scanned
    assert finder.seen["log"] >= 2 and finder.seen["parquet-values"] >= 1 and finder.seen["duckdb"] == 1
    st = open_store(store)
    assert st.runs()["error"].str.contains("HTTP 503").any()  # the failed chunk's error reached the ledger
    assert st.chunks()["rows_quarantined"].sum() > 0
    close_all()


@pytest.mark.timescale
def test_database_password_and_api_key_never_leak(gateway, tmp_path, monkeypatch, timescale_url,
                                                  timescale_schema_url):
    password = urlsplit(timescale_url).password
    assert password and len(password) >= 8
    monkeypatch.setenv("DATABENTO_API_KEY", API_KEY)
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "2")
    recipe = tmp_path / "leak.yaml"
    recipe.write_text(RECIPE)
    url = timescale_schema_url
    finder = Finder(password, API_KEY, WRONG_PASSWORD, MALFORMED_PASSWORD)

    # 1. 5xx beyond the retry budget for one chunk, rows to quarantine for the other
    gateway.faults.status("timeseries.get_range", 503, times=2, match={"dataset": "EQUS.MINI"})
    run = hdi("ingest", "--recipe", recipe, "--store", url, "-v", "--no-progress")
    assert run.returncode == 1 and "HTTP 503" in run.stderr
    finder.output("5xx", run.stdout, run.stderr)

    # 2. the database refuses the write: the chunk fails with the server's error in the ledger
    schema = re.search(r"search_path%3D(\w+)", url)[1]
    user = urlsplit(timescale_url).username
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(timescale_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"REVOKE INSERT ON {schema}.ohlcv FROM {user}")
    run = hdi("ingest", "--recipe", recipe, "--store", url, "--start", "2024-05-01", "--end", "2024-06-01")
    assert run.returncode == 1 and "permission denied" in run.stderr
    finder.output("db error", run.stdout, run.stderr)

    # 3. a wrong and a malformed password: connection errors quote the URL and what libpq disliked
    for bad in (WRONG_PASSWORD, MALFORMED_PASSWORD):
        run = hdi("ingest", "--recipe", recipe, "--store", with_password(url, bad), "--start", "2024-05-01",
                  "--end", "2024-06-01", "-v")
        assert run.returncode == 1 and "cannot connect" in run.stderr and "Traceback" not in run.stderr
        finder.output(f"password {bad}", run.stdout, run.stderr)
    # 4. the password in HDI_STORE rather than on the command line
    run = hdi("status", env={"HDI_STORE": url})
    assert run.returncode == 0, run.stderr
    finder.output("status", run.stdout, run.stderr)

    finder.files(tmp_path / "data")
    finder.postgres(url)
    assert finder.leaks == []
    assert finder.seen["log"] >= 4 and finder.seen["parquet-values"] >= 1 and finder.seen["pg-rows"] >= 5
    from hdi.store import open_store

    st = open_store(url)
    errors = st.chunks().filter(pl.col("status") == "failed")["error"].to_list()
    assert any("HTTP 503" in e for e in errors) and any("permission denied" in e for e in errors)
    commands = st.runs()["command"].to_list()
    assert len(commands) == 2 and all("--store 'postgresql://" in c and ":***@" in c for c in commands)


def test_password_given_as_a_url_parameter_is_redacted(cli, tmp_path):
    url = f"postgresql://127.0.0.1:1/hdi?user=hdi&password={WRONG_PASSWORD}"
    from hdi._config import redact
    from hdi.store import open_store

    assert WRONG_PASSWORD not in open_store(url).display_url
    assert WRONG_PASSWORD not in redact(f"hdi ingest --store {url}")
    result = cli("status", "--store", url)
    assert result.exit_code == 1 and WRONG_PASSWORD not in result.stderr


# A password typed with a space, @, : and a stray % (issue 8): it connects, and it never shows.
ODD_PASSWORD = "pa ss@w:rd%Z-LeakCanary3c"
ODD_WRONG = "wr ong@pa:ss%Q-LeakCanary4d"


def _admin_url(base: str) -> str | None:
    """A superuser URL for creating a login role: HDI_TEST_TIMESCALE_ADMIN_URL, else the native
    cluster's Unix socket (``make db-up`` without Docker: trust for local connections)."""
    from urllib.parse import quote

    if os.environ.get("HDI_TEST_TIMESCALE_ADMIN_URL"):
        return os.environ["HDI_TEST_TIMESCALE_ADMIN_URL"]
    sock = ROOT / ".timescaledb" / "data"
    if not (sock / f".s.PGSQL.{urlsplit(base).port}").exists():
        return None
    return f"postgresql://postgres@/{urlsplit(base).path.lstrip('/')}?host={quote(str(sock), safe='')}&port={urlsplit(base).port}"


@pytest.mark.timescale
def test_a_password_with_spaces_and_at_signs_never_leaks_and_is_reported_as_wrong(timescale_schema_url):
    """Typed as is, a wrong password with a space, an @ and a : reaches the server whole (it answers
    "password authentication failed", not "could not translate host name"), and never shows."""
    finder = Finder(ODD_WRONG, ODD_WRONG.split("@")[1], ODD_WRONG.split(" ")[1])
    for form in (ODD_WRONG, quote_all(ODD_WRONG)):
        url = with_password(timescale_schema_url, form)
        run = hdi("status", "--store", url)
        assert run.returncode == 1 and "password authentication failed" in run.stderr, run.stderr
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
        finder.output(f"status {form}", run.stdout, run.stderr)
    assert finder.leaks == []


def quote_all(password: str) -> str:
    from urllib.parse import quote

    return quote(password, safe="")


@pytest.mark.timescale
def test_a_password_with_spaces_and_at_signs_connects(timescale_url, tmp_path):
    """A real login role whose password has a space, @, : and %: hdi connects with it typed as is
    and percent-encoded, creates its tables, and prints no part of it."""
    import uuid

    import adbc_driver_postgresql.dbapi as pg

    admin = _admin_url(timescale_url)
    if admin is None:
        pytest.skip("no superuser connection to create a login role (set HDI_TEST_TIMESCALE_ADMIN_URL)")
    role = f"hdi_pw_{uuid.uuid4().hex[:10]}"
    db = urlsplit(timescale_url).path.lstrip("/")
    with pg.connect(admin, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{ODD_PASSWORD}'")
        cur.execute(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
        cur.execute(f"GRANT CONNECT ON DATABASE {db} TO {role}")
    try:
        finder = Finder(ODD_PASSWORD, ODD_PASSWORD.split("@")[1], ODD_PASSWORD.split(" ")[1])
        host = f"{urlsplit(timescale_url).hostname}:{urlsplit(timescale_url).port}"
        for form in (ODD_PASSWORD, quote_all(ODD_PASSWORD)):
            url = f"postgresql://{role}:{form}@{host}/{db}?options=-csearch_path%3D{role},public"
            from hdi.store import close_all, open_store

            st = open_store(url)
            st.migrate()
            assert st.has_table("ohlcv") and "***" in st.display_url
            close_all()
            run = hdi("status", "--store", url)
            assert run.returncode == 0, run.stderr
            finder.output(f"status {form}", run.stdout, run.stderr)
        assert finder.leaks == []
    finally:
        from hdi.store import close_all

        close_all()
        with pg.connect(admin, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {role} CASCADE")
            cur.execute(f"REVOKE CONNECT ON DATABASE {db} FROM {role}")
            cur.execute(f"DROP ROLE {role}")


# --------------------------------------------------------------------------------------- SQL
@pytest.mark.parametrize("name", ["ohlcv;", 'ohlcv"; DROP TABLE ohlcv; --', "hdi_x\"; DROP TABLE ohlcv; --",
                                  "pg_catalog.pg_class", "Ohlcv", "ohlcv ", "hdi_", "", "price OR 1=1"])
def test_ident_refuses_anything_outside_the_whitelist(name):
    from hdi.errors import StoreError
    from hdi.store.schema import ident

    with pytest.raises(StoreError) as info:
        ident(name)
    assert info.value.message == f"refusing SQL identifier '{name}': not a known table or column"


def test_ident_quotes_known_tables_and_columns():
    from hdi.store.schema import ident

    assert [ident(n) for n in ("ohlcv", "close_price", "ingest_chunks", "hdi_schema_migrations")] == [
        '"ohlcv"', '"close_price"', '"ingest_chunks"', '"hdi_schema_migrations"']


SQL_MODULES = (sorted((ROOT / "hdi" / "store").glob("*.py")) + sorted((ROOT / "hdi" / "research").glob("*.py"))
               + [ROOT / "hdi" / n for n in ("_status_report.py", "_statusfeed.py", "_query.py", "_symbols.py", "_rawsym.py")])
_SQL = re.compile(r"\b(SELECT|INSERT|DELETE|UPDATE|CREATE|DROP|WHERE|FROM|ORDER BY|AND|VALUES|CONFLICT|SET|USING|"
                  r"EXCLUDED)\b|\$|[<>=]")
# Locals that hold SQL built only from ident(), $n placeholders and constant SQL (each checked by reading
# the code; a new one must be reviewed the same way before it is added here).
_SQL_LOCALS = {"MIGRATIONS_TABLE", "tc", "key", "cols", "sets", "action", "match", "placeholders", "stage", "where",
               "exprs", "gran", "edge",
               # reviewed: iceberg's ledger table name constant and its _sql_ident column list (col_sql); the
               # store's price-column SQL of the fixed PRICES (continuous.px); "(...)" groups of ident/p() terms
               # (ors: sessions._where, store.sql); rolls' $n list (ph); sessions' time bucket of tc and p()
               "COMMITS_TABLE", "px", "ors", "ph", "col_sql", "bucket",
               # reviewed (issue 15): row_counts' table name (ident/_sql_ident), its "?" marks (lake ledger), an
               # "AND instrument_id IN ($n, ...)" of placeholders (only), stats_select's table-name SQL
               # ("CAST($1 AS VARCHAR)", or fill_sql's literal of a checked data table name), the TimescaleDB
               # merge's INSERT of ident/cols/key/action (insert), delete_days_sql's statement (delete_sql: sql.py,
               # scanned itself)
               "counts_table", "marks", "only", "name_sql", "insert", "delete_sql"}
# p() appends a bound parameter and returns "$n"; reviewed: iceberg's _sql_ident refuses any name outside its
# ledger tables and columns (as ident() does); ledger's _quoted quotes a fixed Table definition's name (it cannot
# use ident: schema imports ledger); sessions._where joins ident columns and p() placeholders only
_SQL_CALLS = {"ident", "key_index_name", "p", "_sql_ident", "_quoted", "_where",
              # reviewed (issue 15): counts' ident list of its fixed COLUMNS, its per-key stats SELECT (ident,
              # constants, name_sql and a where of ident and placeholders), TimescaleDB's ns conversion of an
              # identifier (_epoch_ns, called with the constant 'edge')
              "_cols", "stats_select", "_epoch_ns",
              # reviewed (issue 17): the lean tables' exact UTC date of an int8 ns identifier (timescale_lean._utc_day:
              # the identifier and integer constants); timescale_lean.stats_select is the lean form of counts'
              # (ident, constants, p() and a relation name: the constant CTE name or ident(lay.physical) + ' t')
              "_utc_day"}
# reviewed: wrap a constant SQL expression (sessions._fx: fixed-point price); safe only with constant/safe arguments
_SQL_WRAPPERS = {"_fx"}


def _safe(node: ast.expr) -> bool:
    """Whether an expression interpolated into SQL text can only be an identifier, SQL text built from
    identifiers, or a placeholder number."""
    if isinstance(node, ast.Name):
        return node.id in _SQL_LOCALS
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in _SQL_CALLS:
            return True
        if node.func.id in _SQL_WRAPPERS:
            return all(isinstance(a, ast.Constant) and isinstance(a.value, str) or _safe(a) for a in node.args)
        return node.func.id == "len" and ast.unparse(node) in ("len(params)", "len(self.values)")  # a placeholder number
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join":
        arg = node.args[0]
        return _safe(arg.elt) if isinstance(arg, ast.GeneratorExp) else _safe(arg)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.left, ast.Constant) \
            and isinstance(node.left.value, str) and _safe(node.right):  # "t." + ident(c)
        return True
    if isinstance(node, ast.BinOp):  # "$" + (i + 1)
        return all(isinstance(n, ast.Constant) and isinstance(n.value, int) or isinstance(n, ast.Name) and n.id in
                   ("i", "start") for n in (node.left, node.right)) or _safe(node.left) and isinstance(
                       node.right, ast.Constant)
    if isinstance(node, ast.Attribute):  # names and intervals from the fixed table definitions
        return ast.unparse(node) in ("table.name", "table.time_column", "table.chunk_interval")
    if isinstance(node, ast.Subscript):
        return ast.unparse(node) == "types[c.type]"  # SQL type names from a fixed map
    if isinstance(node, ast.IfExp):
        return all(isinstance(n, ast.Constant) for n in (node.body, node.orelse))
    return False


def _messages(tree: ast.AST) -> set[int]:
    """ids of f-strings that are messages (exceptions, log lines), not SQL."""
    out: set[int] = set()
    for node in ast.walk(tree):
        is_msg = isinstance(node, ast.Raise) or isinstance(node, ast.Call) and (
            isinstance(node.func, ast.Attribute) and node.func.attr in ("warning", "info", "error", "debug")
            or isinstance(node.func, ast.Name) and node.func.id.endswith("Error")) \
            or isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["why"]  # a decision text
        if is_msg:
            out |= {id(n) for n in ast.walk(node) if isinstance(n, ast.JoinedStr)}
    return out


def test_sql_text_interpolates_only_identifiers_and_placeholders():
    """Every f-string that builds SQL in the store and read modules interpolates only whitelisted
    identifiers (through ident()), SQL built from them, or $n placeholder numbers: values never."""
    bad, checked = [], 0
    for path in SQL_MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        messages = _messages(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr) and id(node) not in messages:
                literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                if not _SQL.search(literal):
                    continue
                checked += 1
                bad += [f"{path.name}:{node.lineno}: {{{ast.unparse(v.value)}}}" for v in node.values
                        if isinstance(v, ast.FormattedValue) and not _safe(v.value)]
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
                    and isinstance(node.func.value, ast.Constant) and _SQL.search(str(node.func.value.value)):
                bad.append(f"{path.name}:{node.lineno}: str.format on SQL")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
                    and isinstance(node.left.value, str) and _SQL.search(node.left.value):
                bad.append(f"{path.name}:{node.lineno}: %-formatting on SQL")
    assert checked >= 40  # the scan really saw the SQL of the stores
    assert bad == [], "\n".join(bad)


def test_the_sql_scan_flags_an_interpolated_value():
    tree = ast.parse('sql = f"SELECT * FROM {ident(t)} WHERE symbol = \'{symbol}\'"')
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.JoinedStr))
    assert [_safe(v.value) for v in node.values if isinstance(v, ast.FormattedValue)] == [True, False]


def test_hostile_values_are_bound_parameters(store, make_bars, make_symbology):
    """Quotes and statements in values select nothing and change nothing, on both stores."""
    bars = make_bars([{"instrument_id": 1, "bar_timestamp_utc": f"2024-01-0{d}"} for d in (2, 3, 4)])
    store.write("ohlcv", bars, symbology=make_symbology([("CL.c.0", 1, "2024-01-01", "2024-02-01")]))
    hostile = ["1d' OR '1'='1", "1d'; DROP TABLE ohlcv; --", 'x" OR "a"="a', "1d\\' OR 1=1 --"]
    for value in hostile:
        assert store.select("ohlcv", equals={"granularity": value}).height == 0
        assert store.symbology([value, "CL.c.0"])["symbol"].to_list() == ["CL.c.0"]
        assert store.chunks(status=value, chunk_ids=[value]).height == 0
    assert store.select("ohlcv", equals={"granularity": "1d"}).height == 3
    assert store.has_table("ohlcv") and store.symbology()["symbol"].to_list() == ["CL.c.0"]


# --------------------------------------------------------------------------------------- docker-compose
def test_compose_binds_timescaledb_to_localhost_with_the_password_from_the_environment():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    db = compose["services"]["timescaledb"]
    ports = db["ports"]
    assert ports and all(str(p).startswith("127.0.0.1:") for p in ports)
    env = db["environment"]
    assert re.fullmatch(r"\$\{HDI_PG_PASSWORD:\?[^}]*\}", env["POSTGRES_PASSWORD"])
    # no other service publishes the database, and the app's store URL takes the same variable
    for name, service in compose["services"].items():
        if name != "timescaledb":
            assert all(not str(p).endswith(":5432") for p in service.get("ports", []))
    app_store = compose["services"]["hdi"]["environment"]["HDI_STORE"]
    assert re.fullmatch(r"postgresql://hdi:\$\{HDI_PG_PASSWORD:\?[^}]*\}@timescaledb:5432/hdi", app_store)
