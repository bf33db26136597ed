"""Contract chains, roll schedules without look-ahead, and continuous series on read (issue 12), on both
stores, from the synthetic CL chain the local gateway serves (ingested once per backend)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import polars as pl
import pytest

from hdi.testing import contracts, market

ROOT = Path(__file__).resolve().parents[2]
RULES = ("calendar", "volume", "open_interest")


def _timescale_base() -> str:
    url = os.environ.get("HDI_TEST_TIMESCALE_URL")
    f = ROOT / ".timescaledb" / "url"
    url = url or (f.read_text().strip() if f.is_file() else None)
    if not url:
        if os.environ.get("HDI_REQUIRE_TIMESCALE") == "1":
            pytest.fail("HDI_REQUIRE_TIMESCALE=1 but no TimescaleDB URL")
        pytest.skip("no local TimescaleDB")
    return url


@pytest.fixture(scope="module", params=["duckdb", pytest.param("timescale", marks=pytest.mark.timescale)])
def cl(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A store URL holding the CL chain for 2024-01-01..2024-04-16 (ingested once per backend)."""
    import adbc_driver_postgresql.dbapi as pg

    from hdi.store import close_all

    work = tmp_path_factory.mktemp(f"cl_{request.param}")
    if request.param == "duckdb":
        url = f"duckdb://{work / 'store.duckdb'}"
        contracts.load(url, work)
        yield url
        close_all()
        return
    base = _timescale_base()
    schema = f"hdi_t_{uuid.uuid4().hex[:12]}"
    with pg.connect(base, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema},public"
    try:
        contracts.load(url, work)
        yield url
    finally:
        close_all()
        with pg.connect(base, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")


def _contract(symbol: str) -> market.Contract:
    month = market.MONTH_CODES.index(symbol[2]) + 1
    return market.contract("CL", 2020 + int(symbol[3]), month)


def _sessions() -> pl.DataFrame:
    from hdi.research.calendars import calendar_for, schedule

    return schedule(calendar_for("GLBX.MDP3", "CL"), dt.date(2023, 12, 1), dt.date(2024, 6, 1))


# --------------------------------------------------------------------------- chains
def test_the_chain_lists_each_contract_with_its_expiration_tick_and_multiplier(cl: str) -> None:
    import hdi

    chain = hdi.contract_chain("CL", store=cl)
    names = chain.get_column("contract").to_list()
    assert names[:5] == ["CLG4", "CLH4", "CLJ4", "CLK4", "CLM4"]
    assert chain.get_column("expiration").is_sorted()
    first = chain.row(0, named=True)
    c = _contract("CLG4")
    assert first["instrument_id"] == c.instrument_id
    assert first["expiration"] == market.to_datetime(c.expiration_ns)
    assert first["last_trade_date"] == c.expiry == dt.date(2024, 1, 22)
    assert first["min_price_increment"] == 0.01
    assert first["contract_multiplier"] == 1000.0 and first["unit_of_measure"] == "BBL"
    assert first["known_since_ts"] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def test_a_root_without_definitions_is_one_line_naming_the_recipe(cl: str) -> None:
    import hdi
    from hdi.errors import QueryError

    with pytest.raises(QueryError, match=r"no NG futures definitions .* parent symbol NG.FUT"):
        hdi.contract_chain("NG", store=cl)


# --------------------------------------------------------------------------- roll tables
def _expected_dates(rule: str) -> list[dt.date]:
    """The synthetic market's roll dates: c.0 rolls 2 business days before expiry, when the next contract
    becomes the most traded; a session's volume and open interest are published the next business
    morning, so the figures rolling on session R decide the trading date after that publication."""
    rolls = [_contract(s).roll for s in ("CLG4", "CLH4", "CLJ4")]
    if rule == "calendar":
        return rolls
    return [market.add_business_days(r, 2) for r in rolls]


@pytest.mark.parametrize("rule", RULES)
def test_roll_table_per_rule_is_stored_and_read_back(cl: str, rule: str) -> None:
    import hdi
    from hdi.research.rolls import stored_rolls
    from hdi.store import open_store

    n = 2 if rule == "calendar" else 0
    got = hdi.rolls("CL", rule, days_before_expiry=n, store=cl)
    assert got.get_column("trading_date").to_list()[:3] == _expected_dates(rule)
    assert got.get_column("from_contract").to_list()[:3] == ["CLG4", "CLH4", "CLJ4"]
    assert got.get_column("to_contract").to_list()[:3] == ["CLH4", "CLJ4", "CLK4"]
    assert (got.get_column("to_contract").to_list()[:-1] == got.get_column("from_contract").to_list()[1:])
    st = open_store(cl)
    with st.session():
        back = stored_rolls(st, "CL", rule, n)
    assert back.drop("computed_at").equals(got)
    # computing it again replaces the stored schedule instead of adding to it
    hdi.rolls("CL", rule, days_before_expiry=n, store=cl)
    with st.session():
        again = stored_rolls(st, "CL", rule, n)
        assert st.query('SELECT COUNT(*) AS n FROM "rolls" WHERE "rule" = $1 AND "parameters" = $2',
                        [rule, back.get_column("parameters")[0]]).item() == got.height
    assert again.drop("computed_at").equals(got)


@pytest.mark.parametrize("rule", RULES)
def test_no_roll_is_decided_by_data_stamped_after_it_takes_effect(cl: str, rule: str) -> None:
    import hdi

    got = hdi.rolls("CL", rule, days_before_expiry=0, store=cl, save=False)
    assert got.height >= 3
    opens = _sessions().select("trading_date", pl.col("open").alias("session_open"))
    checked = got.join(opens, on="trading_date", how="left")
    assert checked.get_column("session_open").null_count() == 0
    assert (checked.get_column("effective_ts") == checked.get_column("session_open")).all()
    assert (checked.get_column("decided_by_ts") < checked.get_column("effective_ts")).all(), checked


@pytest.mark.parametrize("rule", RULES)
def test_a_schedule_computed_as_of_any_instant_agrees_with_the_full_one_up_to_that_instant(cl: str, rule: str) -> None:
    """Hiding everything received after T changes no roll that took effect before T: nothing later
    was used."""
    import hdi

    full = hdi.rolls("CL", rule, store=cl, save=False)
    for day in (dt.date(2024, 1, 19), dt.date(2024, 1, 22), dt.date(2024, 2, 16), dt.date(2024, 2, 20),
                dt.date(2024, 3, 19)):
        for hour in (0, 10, 23):
            t = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)
            seen = hdi.rolls("CL", rule, store=cl, save=False, as_of=t)
            before = full.filter(pl.col("effective_ts") <= t)
            assert seen.filter(pl.col("effective_ts") <= t).equals(before), (t, seen, before)


def test_the_volume_roll_cites_the_figures_that_decided_it(cl: str) -> None:
    import hdi

    got = hdi.rolls("CL", "volume", store=cl, save=False).row(0, named=True)
    assert got["decided_by"].startswith("cleared volume of session 2024-01-18: CLH4 ")
    stats = hdi.read_statistics(["CLG4", "CLH4"], "2024-01-19", "2024-01-20", store=cl)
    vol = stats.filter((pl.col("stat_type") == 6) & (pl.col("effective_date_utc") == dt.date(2024, 1, 18)))
    assert vol.height == 2
    assert got["decided_by_ts"] == vol.get_column("received_timestamp_utc").max()


def test_bad_rule_and_days_are_one_line_errors(cl: str) -> None:
    import hdi
    from hdi.errors import QueryError

    with pytest.raises(QueryError, match=r"roll rule 'volumes' is not allowed \(did you mean 'volume'\?\); allowed: calendar, volume, open_interest"):
        hdi.rolls("CL", "volumes", store=cl)
    with pytest.raises(QueryError, match=r"days_before_expiry -1 is not allowed"):
        hdi.read_continuous("CL", "2024-01-01", "2024-02-01", days_before_expiry=-1, store=cl)
    with pytest.raises(QueryError, match=r"adjust 'diff' is not allowed"):
        hdi.read_continuous("CL", "2024-01-01", "2024-02-01", adjust="diff", store=cl)


# --------------------------------------------------------------------------- continuous series
def test_the_c0_equivalent_rule_takes_the_same_contract_as_databentos_cl_c0_every_day(cl: str) -> None:
    import hdi

    ours = hdi.read_continuous("CL", "2024-01-02", "2024-04-16", roll="calendar", days_before_expiry=2, store=cl)
    theirs = hdi.read_bars("CL.c.0", "2024-01-02", "2024-04-16", store=cl)
    both = ours.select("bar_timestamp_utc", "instrument_id", "contract").join(
        theirs.select("bar_timestamp_utc", pl.col("instrument_id").alias("c0_id"), pl.col("raw_symbol").alias("c0")),
        on="bar_timestamp_utc", how="full", coalesce=True)
    assert both.height == theirs.height == ours.height > 80
    assert both.filter(pl.col("instrument_id") != pl.col("c0_id")).height == 0
    assert both.get_column("contract").to_list() == both.get_column("c0").to_list()
    assert both.get_column("contract").unique(maintain_order=True).to_list() == ["CLG4", "CLH4", "CLJ4", "CLK4"]


def _roll_rows(df: pl.DataFrame) -> list[int]:
    return [i for i, r in enumerate(df.get_column("roll").to_list()) if r]


@pytest.mark.parametrize("rule", RULES)
def test_difference_adjustment_leaves_no_jump_at_a_roll_beyond_the_new_contracts_own_move(cl: str, rule: str) -> None:
    import hdi

    df = hdi.read_continuous("CL", "2024-01-02", "2024-04-16", roll=rule, adjust="difference", store=cl)
    raw = hdi.read_bars("CL.FUT", "2023-12-15", "2024-04-16", store=cl)
    rolls = _roll_rows(df)
    assert len(rolls) >= 3
    close = df.get_column("close_price").to_list()
    for i in rolls:
        cur, prev = df.row(i, named=True), df.row(i - 1, named=True)
        own = raw.filter((pl.col("instrument_id") == cur["instrument_id"])
                         & (pl.col("bar_timestamp_utc") == prev["bar_timestamp_utc"]))
        assert own.height == 1
        own_move = cur["close_price_unadjusted"] - own.get_column("close_price")[0]
        assert close[i] - close[i - 1] == pytest.approx(own_move, abs=1e-9)
        unadjusted_jump = cur["close_price_unadjusted"] - prev["close_price_unadjusted"]
        assert unadjusted_jump != pytest.approx(own_move, abs=1e-6)  # the roll gap was real and is gone
    # inside a contract every move is the contract's own; the latest contract is as traded
    last = df.filter(pl.col("contract") == df.get_column("contract")[-1])
    assert (last.get_column("close_price") == last.get_column("close_price_unadjusted")).all()
    d_adj, d_raw = df.get_column("close_price").diff(), df.get_column("close_price_unadjusted").diff()
    same = [k for k in range(1, df.height) if k not in rolls]
    assert all(abs(d_adj[k] - d_raw[k]) < 1e-9 for k in same)


@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_ratio_adjusted_returns_equal_the_contracts_own_returns(cl: str, direction: str) -> None:
    import hdi

    df = hdi.read_continuous("CL", "2024-01-02", "2024-04-16", roll="volume", adjust="ratio", store=cl,
                             direction=direction)
    raw = hdi.read_bars("CL.FUT", "2023-12-15", "2024-04-16", store=cl)
    rolls = set(_roll_rows(df))
    assert len(rolls) >= 3
    adj = df.get_column("close_price").to_list()
    for i in range(1, df.height):
        cur, prev = df.row(i, named=True), df.row(i - 1, named=True)
        if i in rolls:
            base = raw.filter((pl.col("instrument_id") == cur["instrument_id"])
                              & (pl.col("bar_timestamp_utc") == prev["bar_timestamp_utc"])).get_column("close_price")[0]
        else:
            base = prev["close_price_unadjusted"]
        assert adj[i] / adj[i - 1] == pytest.approx(cur["close_price_unadjusted"] / base, rel=1e-12)
    anchor = df.filter(pl.col("contract") == df.get_column("contract")[0 if direction == "forward" else -1])
    assert (anchor.get_column("adjustment") == 1.0).all()
    assert (anchor.get_column("close_price") == anchor.get_column("close_price_unadjusted")).all()


def test_unadjusted_series_is_the_contracts_bars_as_stored(cl: str) -> None:
    import hdi

    df = hdi.read_continuous("CL", "2024-02-01", "2024-03-01", store=cl)
    raw = hdi.read_bars("CL.FUT", "2024-02-01", "2024-03-01", store=cl)
    joined = df.join(raw, on=["instrument_id", "bar_timestamp_utc"], suffix="_raw")
    assert joined.height == df.height > 15
    for p in ("open_price", "high_price", "low_price", "close_price"):
        assert (joined.get_column(p) == joined.get_column(f"{p}_raw")).all()
        assert (joined.get_column(p) == joined.get_column(f"{p}_unadjusted")).all()
    assert (joined.get_column("volume") == joined.get_column("volume_raw")).all()
    assert (joined.get_column("contract") == joined.get_column("raw_symbol")).all()
    assert df.get_column("bar_timestamp_utc").is_sorted() and df.get_column("bar_timestamp_utc").n_unique() == df.height


# --------------------------------------------------------------------------- CLI and picture
def _cli(*args: str):
    from typer.testing import CliRunner

    from hdi.cli.app import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_hdi_rolls_prints_the_stored_schedule(cl: str) -> None:
    import io

    r = _cli("rolls", "CL", "--rule", "volume", "--format", "csv", "--store", cl)
    assert r.exit_code == 0, r.output
    printed = pl.read_csv(io.StringIO(r.stdout), try_parse_dates=True)
    assert printed.get_column("to_contract").to_list()[:3] == ["CLH4", "CLJ4", "CLK4"]
    assert printed.get_column("trading_date").to_list()[:3] == _expected_dates("volume")
    from hdi.research.rolls import stored_rolls
    from hdi.store import open_store

    st = open_store(cl)
    with st.session():
        assert stored_rolls(st, "CL", "volume").height == printed.height
    bad = _cli("rolls", "CL", "--rule", "oi", "--store", cl)
    assert bad.exit_code != 0 and "roll rule 'oi' is not allowed" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_hdi_query_continuous_writes_the_series_and_a_picture(cl: str, tmp_path: Path) -> None:
    import hdi

    out, png = tmp_path / "cl.parquet", tmp_path / "cl.png"
    args = ["query", "--continuous", "CL", "--roll", "open_interest", "--adjust", "ratio", "--start", "2024-01-02",
            "--end", "2024-04-16", "--format", "parquet", "--output", out, "--plot", png, "--store", cl]
    r = _cli(*args)
    assert r.exit_code == 0, r.output
    got = pl.read_parquet(out)
    want = hdi.read_continuous("CL", "2024-01-02", "2024-04-16", roll="open_interest", adjust="ratio", store=cl)
    assert got.equals(want)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    again = _cli(*args[:-6], "--plot", png, "--store", cl)  # the picture exists: refused before reading
    assert again.exit_code != 0 and "already exists; pass --force" in again.output
    assert _cli(*args, "--force").exit_code == 0
    missing = _cli("query", "--start", "2024-01-02", "--end", "2024-02-01", "--store", cl)
    assert missing.exit_code != 0 and "--schema is required (or --continuous ROOT" in missing.output


def test_trading_day_bars_join_along_the_same_rolls(cl: str, tmp_path: Path) -> None:
    """session="exchange": each contract's trading-day bars (built from its 1m bars), labelled by session
    open; the roll (CLH4 -> CLJ4 on trading date 2024-02-16) takes effect at that session's open."""
    import hdi

    contracts.minute_bars(cl, tmp_path, ["CLH4", "CLJ4"], "2024-02-11", "2024-02-22")
    df = hdi.read_continuous("CL", "2024-02-12", "2024-02-22", roll="calendar", days_before_expiry=2,
                             adjust="difference", session="exchange", store=cl)
    sessions = _sessions().filter(pl.col("trading_date").is_between(dt.date(2024, 2, 12), dt.date(2024, 2, 21)))
    assert df.get_column("trading_date").to_list() == sessions.get_column("trading_date").to_list()
    assert df.get_column("bar_timestamp_utc").to_list() == sessions.get_column("open").to_list()
    assert df.filter(pl.col("roll")).get_column("trading_date").to_list() == [dt.date(2024, 2, 16)]
    assert set(df.filter(pl.col("trading_date") < dt.date(2024, 2, 16)).get_column("contract")) == {"CLH4"}
    assert set(df.filter(pl.col("trading_date") >= dt.date(2024, 2, 16)).get_column("contract")) == {"CLJ4"}
    td = hdi.read_bars(["CLH4", "CLJ4"], "2024-02-12", "2024-02-22", session="exchange", store=cl)
    both = df.join(td, on=["instrument_id", "trading_date"], suffix="_td")
    assert both.height == df.height
    assert (both.get_column("close_price_unadjusted") == both.get_column("close_price_td")).all()
    i = df.get_column("roll").arg_max()
    own = td.filter((pl.col("raw_symbol") == "CLJ4") & (pl.col("trading_date") == df.get_column("trading_date")[i - 1]))
    assert df.get_column("close_price")[i] - df.get_column("close_price")[i - 1] == pytest.approx(
        df.get_column("close_price_unadjusted")[i] - own.get_column("close_price")[0], abs=1e-9)
