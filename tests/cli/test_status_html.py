"""``hdi status --html FILE``: the coverage picture — every day's colour, the runs, a safe write, and
the page as a real headless Chromium renders it."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

import hdi
from hdi._status_html import COLOURS
from hdi.pipeline import ingest
from hdi.store import open_store
from hdi.testing.recipes import sometimes_bad_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "ohlcv_1d.yaml"

# NG.c.0 daily bars in March 2024 where every bar whose volume is a multiple of 3 fails validation.
QUARANTINING = sometimes_bad_recipe(symbols=["NG.c.0"])

_CELL = re.compile(r'<rect [^>]*class="([a-z-]+)"><title>(\d{4}-\d\d-\d\d) \w{3}: ([a-z ]+)</title></rect>')


def _cells(page: str, dataset: str, schema: str, symbol: str) -> dict[str, str]:
    """day -> kind, from the calendar of one (dataset, schema, symbol)."""
    head = f"<h3>{dataset} · {schema} · {symbol}</h3>"
    part = page.split(head, 1)[1].split("</svg>", 1)[0]
    cells = _CELL.findall(part)
    assert all(cls == kind.replace(" ", "-") for cls, _, kind in cells)  # the colour is the kind's
    return {day: kind for _, day, kind in cells}


@pytest.fixture
def picture_store(gateway, cli, any_store_url, monkeypatch, tmp_path):
    """CL.c.0 and SPY 2024-03-01..2024-03-11 (03-05 never fetched, 03-06 a no-trade day for CL.c.0),
    a failed SPY chunk 03-12..03-13, and NG.c.0 March 2024 with some bars quarantined."""
    gateway.add_no_trade_day("GLBX.MDP3", "CL.c.0", dt.date(2024, 3, 6))
    for start, end in (("2024-03-01", "2024-03-05"), ("2024-03-06", "2024-03-12")):
        r = cli("ingest", "--recipe", RECIPE, "--start", start, "--end", end, "--symbols", "CL.c.0,SPY",
                "--store", any_store_url)
        assert r.exit_code == 0, r.stderr
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(QUARANTINING)
    assert ingest(recipe, store=any_store_url).rows_quarantined > 0
    monkeypatch.setenv("HDI_RETRY_ATTEMPTS", "1")
    gateway.faults.status("timeseries.get_range", 502, match={"dataset": "EQUS.MINI"})
    r = cli("ingest", "--recipe", RECIPE, "--start", "2024-03-12", "--end", "2024-03-14", "--symbols", "SPY",
            "--store", any_store_url)
    assert r.exit_code == 1
    return any_store_url


def test_html_colours_every_day_data_flagged_closed_missing_quarantined(cli, picture_store, tmp_path):
    page_file = tmp_path / "coverage.html"
    r = cli("status", "--store", picture_store, "--html", page_file)
    assert r.exit_code == 0, r.stderr
    assert "Coverage  (MISSING" in r.stdout  # the text report still prints
    page = page_file.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert not re.search(r'(src|href)=|url\(|@import', page)  # self-contained: nothing fetched

    cl = _cells(page, "GLBX.MDP3", "ohlcv-1d", "CL.c.0")
    assert list(cl) == [f"2024-03-{d:02d}" for d in range(1, 12)]
    assert {d for d, k in cl.items() if k == "missing"} == {"2024-03-05"}
    assert {d for d, k in cl.items() if k == "flagged"} == {"2024-03-06"}  # a trading day without data
    assert {d for d, k in cl.items() if k == "closed"} == {"2024-03-02", "2024-03-09"}  # Saturdays
    assert sum(k == "data" for k in cl.values()) == 7
    spy = _cells(page, "EQUS.MINI", "ohlcv-1d", "SPY")
    assert {d for d, k in spy.items() if k == "missing"} == {"2024-03-05", "2024-03-12", "2024-03-13"}  # + failed

    # NG.c.0: a day whose bar was quarantined (fetched, not stored) is "quarantined", every other
    # fetched day with records "data"
    ng = _cells(page, "GLBX.MDP3", "ohlcv-1d", "NG.c.0")
    stored = {d.isoformat() for d in hdi.read_bars("NG.c.0", "2024-03-01", "2024-04-01", granularity="1d",
                                                   store=picture_store)["bar_timestamp_utc"].dt.date()}
    fetched = open_store(picture_store).query("SELECT * FROM ingest_days").filter(
        (pl.col("symbol") == "NG.c.0") & (pl.col("rows_fetched") > 0))
    with_records = {d.isoformat() for d in fetched["day"].cast(pl.Date)}
    quarantined = {d for d, k in ng.items() if k == "quarantined"}
    assert quarantined and quarantined == with_records - stored
    assert {d for d, k in ng.items() if k == "data"} == stored

    runs = open_store(picture_store).runs()
    assert all(run in page for run in runs["run_id"])  # the runs table
    assert "HTTP 502" in page  # the failed chunk's error


def test_html_never_replaces_a_file_without_force(cli, picture_store, tmp_path):
    page_file = tmp_path / "coverage.html"
    page_file.write_text("mine")
    r = cli("status", "--store", picture_store, "--html", page_file)
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.strip() == f"error: --html file {page_file} already exists; pass --force to replace it"
    assert page_file.read_text() == "mine"
    r = cli("status", "--store", picture_store, "--html", page_file, "--force")
    assert r.exit_code == 0, r.stderr
    assert page_file.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def _browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, png: Path, width: int = 1100, height: int = 1400) -> str:
    """Render ``page`` in headless Chromium to ``png``; returns Chromium's log (stderr)."""
    args = [_browser(), "--headless", "--hide-scrollbars", "--disable-gpu", f"--screenshot={png}",
            f"--window-size={width},{height}", "--enable-logging=stderr", "--v=0"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses root
    r = subprocess.run([*args, page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stderr


@pytest.mark.skipif(_browser() is None and os.geteuid() != 0,
                    reason="no Chromium, and not root to install it (scripts/chromium.sh; make test does)")
def test_the_page_renders_in_headless_chromium(cli, gateway, tmp_path):
    from PIL import Image

    assert _browser() is not None, "Chromium is missing: run scripts/chromium.sh (make test runs it)"
    store = f"duckdb://{tmp_path / 'hdi.duckdb'}"
    r = cli("ingest", "--recipe", RECIPE, "--start", "2024-01-01", "--end", "2024-04-01", "--store", store)
    assert r.exit_code == 0, r.stderr
    page, png = tmp_path / "coverage.html", tmp_path / "coverage.png"
    assert cli("status", "--store", store, "--html", page).exit_code == 0
    log = screenshot(page, png)
    assert "Uncaught" not in log and "CONSOLE" not in log, log[-2000:]
    with Image.open(png) as im:
        assert im.size == (1100, 1400)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) >= 8  # text, grid, legend: not a blank page
    counts = {f"#{r:02x}{g:02x}{b:02x}": n for n, (r, g, b) in colours}
    assert counts.get(COLOURS["data"], 0) > 11 * 11 * 100  # well over 100 days' squares drawn in the data colour
    assert counts.get(COLOURS["closed"], 0) > 11 * 11 * 10  # weekends and holidays: market closed


def test_html_of_an_empty_store_and_a_missing_folder(cli, any_store_url, tmp_path):
    page_file = tmp_path / "coverage.html"
    r = cli("status", "--store", any_store_url, "--html", page_file)
    assert r.exit_code == 0, r.stderr
    page = page_file.read_text()
    assert "no coverage recorded yet (nothing ingested)" in page and "<rect" not in page
    nowhere = tmp_path / "no-such-folder" / "coverage.html"
    r = cli("status", "--store", any_store_url, "--html", nowhere)
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.strip() == f"error: --html file {nowhere}: folder {nowhere.parent} does not exist"
    assert not nowhere.parent.exists()
