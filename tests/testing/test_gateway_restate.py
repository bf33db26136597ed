"""The gateway's ``metadata.get_dataset_condition`` and restated days, through the official client."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.request
from datetime import date

import databento as db

DAY = date(2026, 1, 7)


def _trades(client, day: date = DAY):
    store = client.timeseries.get_range(dataset="GLBX.MDP3", schema="trades", symbols=["ESH6"],
                                        stype_in="raw_symbol", start=day.isoformat(), end=date(2026, 1, 8).isoformat())
    return store.to_df(price_type="fixed", pretty_ts=False, map_symbols=False).reset_index()


def test_conditions_default_to_available_modified_the_next_day(client):
    got = client.metadata.get_dataset_condition("GLBX.MDP3", start_date="2026-01-05", end_date="2026-01-07")
    assert got == [{"date": f"2026-01-0{d}", "condition": "available", "last_modified_date": f"2026-01-0{d + 1}"}
                   for d in (5, 6, 7)]
    # without an end: up to the dataset's available end (the gateway's clock, 2026-01-15 00:00)
    assert client.metadata.get_dataset_condition("GLBX.MDP3", start_date="2026-01-10")[-1]["date"] == "2026-01-14"


def test_a_restated_day_serves_new_data_and_a_later_last_modified_date(client, gateway):
    before = _trades(client)
    count_before = client.metadata.get_record_count(dataset="GLBX.MDP3", schema="trades", symbols=["ESH6"],
                                                    start="2026-01-07", end="2026-01-08")
    gateway.restate("GLBX.MDP3", DAY, remove=[0], reprice=[(5, 2)])
    after = _trades(client)
    assert len(after) == len(before) - 1 == count_before - 1
    assert client.metadata.get_record_count(dataset="GLBX.MDP3", schema="trades", symbols=["ESH6"],
                                            start="2026-01-07", end="2026-01-08") == count_before - 1
    assert after.iloc[0]["ts_recv"] == before.iloc[1]["ts_recv"]  # the first record is gone
    assert after.iloc[4]["price"] == before.iloc[5]["price"] + 20_000_000  # +0.02, fixed point
    cond = client.metadata.get_dataset_condition("GLBX.MDP3", start_date="2026-01-07", end_date="2026-01-07")
    assert cond == [{"date": "2026-01-07", "condition": "available", "last_modified_date": "2026-01-09"}]
    assert len(_trades(client, date(2026, 1, 6))) > 0  # other days unchanged
    assert gateway.calls("metadata.get_dataset_condition")[-1].params["start_date"] == "2026-01-07"


def test_days_marked_degraded_or_pending(client, gateway):
    gateway.set_condition("GLBX.MDP3", date(2026, 1, 6), "degraded")
    gateway.set_condition("GLBX.MDP3", date(2026, 1, 7), "pending")
    got = client.metadata.get_dataset_condition("GLBX.MDP3", start_date="2026-01-05", end_date="2026-01-07")
    assert [g["condition"] for g in got] == ["available", "degraded", "pending"]


def test_a_bad_dataset_is_databentos_422(client):
    try:
        client.metadata.get_dataset_condition("NOPE.X", start_date="2026-01-05")
    except db.BentoClientError as e:
        assert e.http_status == 422 and "dataset_not_found" in str(e.message)
    else:
        raise AssertionError("no error")


def test_control_endpoints_and_command_line(gateway, tmp_path):
    req = urllib.request.Request(f"{gateway.url}/_hdi/restate", method="POST", data=json.dumps(
        {"dataset": "GLBX.MDP3", "date": "2026-01-07", "last_modified_date": "2026-01-12"}).encode())
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=str(gateway.ca_path))) as r:
        assert json.loads(r.read()) == {"last_modified_date": "2026-01-12"}
    assert gateway.api.conditions.answer("GLBX.MDP3", DAY, DAY)[0]["last_modified_date"] == "2026-01-12"
    bad = subprocess.run([sys.executable, "-m", "hdi.testing.gateway", "--condition", "GLBX.MDP3:2026-01-07:odd"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "condition 'odd' is not one of available, degraded, pending, missing" in bad.stderr
