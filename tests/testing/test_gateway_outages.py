"""Outages by time: every call of the chosen endpoints fails for a while, as the official client sees it."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time

import pytest
import requests
from databento.common.error import BentoServerError

KW = {"dataset": "GLBX.MDP3", "schema": "trades", "symbols": ["CL.c.0"], "stype_in": "continuous",
      "start": "2025-03-04T14:00", "end": "2025-03-04T15:00"}


def test_an_outage_fails_every_call_until_it_ends_however_many_come(client, gateway):
    gateway.faults.outage(["timeseries.get_range", "metadata.get_cost"], seconds=0.8)
    t0 = time.monotonic()
    for _ in range(6):  # as many calls as come, not a count
        with pytest.raises(BentoServerError) as info:
            client.timeseries.get_range(**KW)
        assert info.value.http_status == 503
    assert client.metadata.list_datasets()  # another endpoint is up
    with pytest.raises(BentoServerError):
        client.metadata.get_cost(**KW)
    time.sleep(max(0.0, 0.85 - (time.monotonic() - t0)))
    assert len(client.timeseries.get_range(**KW).to_ndarray()) > 0  # over: served again
    assert [r.status for r in gateway.calls("timeseries.get_range")] == [503] * 6 + [200]
    assert gateway.faults.outages() == []  # an outage that is over is gone


def test_an_outage_between_two_instants_of_the_gateway_clock(client, gateway):
    now = dt.datetime.now(dt.UTC)
    later = gateway.faults.outage("*", start=(now + dt.timedelta(seconds=30)).isoformat(),
                                  end=(now + dt.timedelta(seconds=60)).isoformat(), status=502)
    assert client.metadata.list_datasets()  # not yet
    [pending] = gateway.faults.outages()
    assert pending["id"] == later.id and pending["active"] is False and pending["endpoints"] == ["*"]
    gateway.faults.outage("*", start=now - dt.timedelta(seconds=5), end=now + dt.timedelta(seconds=30), status=502)
    with pytest.raises(BentoServerError) as info:
        client.metadata.list_datasets()
    assert info.value.http_status == 502 and gateway.requests[-1].fault == "status 502"


def test_a_reset_outage_resets_the_connection(client, gateway):
    gateway.faults.outage("timeseries.get_range", seconds=30, kind="reset", match={"schema": "trades"})
    with pytest.raises((requests.exceptions.ConnectionError, ConnectionError)):
        client.timeseries.get_range(**KW)
    assert gateway.requests[-1].fault == "connection reset"
    assert len(client.timeseries.get_range(**{**KW, "schema": "ohlcv-1m"}).to_ndarray()) > 0  # no match: served
    gateway.faults.clear()  # faults and outages
    assert gateway.faults.outages() == [] and len(client.timeseries.get_range(**KW).to_ndarray()) > 0


def test_outages_over_the_control_endpoint(client, gateway):
    url, ca = f"{gateway.url}/_hdi/outages", str(gateway.ca_path)
    resp = requests.post(url, json={"endpoints": "metadata.list_datasets", "seconds": 30}, verify=ca, timeout=10)
    assert resp.status_code == 200 and len(resp.json()["armed"]) == 1
    [o] = requests.get(url, verify=ca, timeout=10).json()
    assert o["active"] is True and o["kind"] == "status" and o["status"] == 503 and 25 < o["seconds_left"] <= 30
    with pytest.raises(BentoServerError):
        client.metadata.list_datasets()
    clock = requests.get(f"{gateway.url}/_hdi/health", verify=ca, timeout=10).json()["clock"]
    assert abs(dt.datetime.fromisoformat(clock).timestamp() - time.time()) < 5
    assert requests.delete(url, verify=ca, timeout=10).json() == {"cleared": True}
    assert client.metadata.list_datasets() == ["EQUS.MINI", "GLBX.MDP3", "XNAS.ITCH"]
    for spec, message in [({"endpoints": "*"}, "needs 'seconds'"),
                          ({"endpoints": "*", "seconds": -1}, "outage seconds -1 is not allowed"),
                          ({"endpoints": "*", "seconds": 5, "kind": "explode"}, "unknown outage kind 'explode'"),
                          ({"endpoints": "*", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
                           "must end after it starts"),
                          ({"endpoints": "*", "start": "soon", "seconds": 5}, "outage start 'soon' is not an instant"),
                          ({"endpoint": "*", "seconds": 5}, "unknown outage field(s) ['endpoint']")]:
        bad = requests.post(url, json=spec, verify=ca, timeout=10)
        assert bad.status_code == 400 and message in bad.json()["detail"]["message"], (spec, bad.text)


@pytest.mark.slow
def test_outage_from_the_gateway_command_line(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "hdi.testing.gateway", "--state-dir", str(tmp_path),
                             "--outage", "metadata.list_datasets,metadata.list_schemas=600", "--outage-kind", "504"],
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        ca = info["ca_path"]
        [o] = requests.get(f"{info['url']}/_hdi/outages", verify=ca, timeout=10).json()
        assert o["endpoints"] == ["metadata.list_datasets", "metadata.list_schemas"] and o["status"] == 504
        auth = ("db-test-key", "")
        assert requests.get(f"{info['url']}/v0/metadata.list_datasets", auth=auth, verify=ca, timeout=10).status_code == 504
        assert requests.get(f"{info['url']}/v0/metadata.list_publishers", auth=auth, verify=ca,
                            timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    bad = subprocess.run([sys.executable, "-m", "hdi.testing.gateway", "--outage", "timeseries.get_range"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.startswith("error: --outage 'timeseries.get_range' is not allowed")
    assert len(bad.stderr.strip().splitlines()) == 1
