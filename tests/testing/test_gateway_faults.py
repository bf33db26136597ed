"""Injected faults, as the official client sees them; the gateway as a separate process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import requests
from databento.common.error import BentoClientError, BentoError, BentoServerError, BentoWarning

from hdi.testing.gateway import Gateway

KW = {"dataset": "GLBX.MDP3", "schema": "trades", "symbols": ["CL.c.0"], "stype_in": "continuous",
      "start": "2025-03-04T14:00", "end": "2025-03-04T15:00"}
KEY = "db-test-0123456789abcdefABCDEF"


def test_gateway_starts_fast_and_never_logs_the_key(client, gateway):
    t0 = time.perf_counter()
    with Gateway() as other:
        started = time.perf_counter() - t0
        assert other.url.startswith("https://127.0.0.1:") and other.ca_path.is_file()
    assert started < 1.0
    client.metadata.list_datasets()
    client.timeseries.get_range(**KW)
    assert [(m, p) for m, p, _ in gateway.requests] == [("GET", "/v0/metadata.list_datasets"),
                                                         ("POST", "/v0/timeseries.get_range")]
    assert KEY not in repr(gateway.requests)
    log = requests.get(f"{gateway.url}/_hdi/requests", verify=str(gateway.ca_path), timeout=10).text
    assert KEY not in log and "timeseries.get_range" in log


def test_status_fault_k_times_then_success(client, gateway):
    gateway.faults.status("timeseries.get_range", 503, times=2)
    for _ in range(2):
        with pytest.raises(BentoServerError) as info:
            client.timeseries.get_range(**KW)
        assert info.value.http_status == 503
        assert info.value.message.startswith("service_unavailable\nThe service is temporarily unavailable.")
    assert len(client.timeseries.get_range(**KW).to_ndarray()) > 0
    assert [(r.fault, r.status) for r in gateway.calls("timeseries.get_range")] == [
        ("status 503", 503), ("status 503", 503), (None, 200)]
    assert gateway.faults.pending() == []


def test_429_carries_retry_after(client, gateway):
    gateway.faults.status("metadata.get_record_count", 429, retry_after=3)
    with pytest.raises(BentoClientError) as info:
        client.metadata.get_record_count(**KW)
    assert info.value.http_status == 429 and info.value.headers["Retry-After"] == "3"
    assert client.metadata.get_record_count(**KW) > 0


def test_504_and_html_5xx(client, gateway):
    gateway.faults.status("timeseries.get_range", 504)
    gateway.faults.status("timeseries.get_range", 502, body="html")
    with pytest.raises(BentoServerError) as info:
        client.timeseries.get_range(**KW)
    assert info.value.http_status == 504
    assert info.value.message == "gateway_timeout\nThe remote gateway timed out."
    with pytest.raises(BentoServerError) as info:
        client.timeseries.get_range(**KW)
    assert info.value.http_status == 502 and info.value.message is None


def test_faults_match_parameters(client, gateway):
    gateway.faults.status("timeseries.get_range", 500, match={"schema": "ohlcv-1m"})
    assert len(client.timeseries.get_range(**KW).to_ndarray()) > 0  # trades: untouched
    with pytest.raises(BentoServerError):
        client.timeseries.get_range(**{**KW, "schema": "ohlcv-1m"})


def test_dropped_stream_is_an_incomplete_read_and_leaves_a_partial_file(client, gateway, tmp_path):
    gateway.faults.drop("timeseries.get_range", after_bytes=5000)
    with pytest.raises(BentoError) as info:
        client.timeseries.get_range(**KW, path=tmp_path / "x.dbn.zst")
    assert str(info.value).startswith("Error streaming response: ")
    assert "IncompleteRead(5000 bytes read" in str(info.value)
    assert (tmp_path / "x.dbn.zst").exists()  # the client leaves its partial file behind
    assert gateway.requests[-1].fault == "drop after 5000 bytes"


def test_dropped_json_body(client, gateway):
    gateway.faults.drop("metadata.get_cost")
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        client.metadata.get_cost(**KW)


def test_truncated_dbn_only_warns_when_read(client, gateway, tmp_path):
    full = client.timeseries.get_range(**KW).to_ndarray()
    gateway.faults.truncate()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = client.timeseries.get_range(**KW, path=tmp_path / "t.dbn.zst")
        assert not [w for w in caught if issubclass(w.category, BentoWarning)]
        arr = store.to_ndarray()
    assert [str(w.message) for w in caught if issubclass(w.category, BentoWarning)] == [
        "DBN file is truncated or contains an incomplete record"]
    assert arr.tobytes() == full[:-1].tobytes()


def test_slow_fault_delays_the_first_byte(client, gateway):
    gateway.faults.slow("metadata.list_schemas", 0.4)
    t0 = time.perf_counter()
    assert "trades" in client.metadata.list_schemas("GLBX.MDP3")
    assert time.perf_counter() - t0 >= 0.4
    assert gateway.requests[-1].fault == "slow 0.4s"


def test_faults_over_the_control_endpoint(client, gateway):
    url, ca = f"{gateway.url}/_hdi/faults", str(gateway.ca_path)
    resp = requests.post(url, json=[{"endpoint": "metadata.list_datasets", "status": 500, "times": 2}], verify=ca,
                         timeout=10)
    assert resp.json() == {"armed": [1]}
    assert requests.get(url, verify=ca, timeout=10).json()[0]["times"] == 2
    with pytest.raises(BentoServerError):
        client.metadata.list_datasets()
    assert requests.delete(url, verify=ca, timeout=10).json() == {"cleared": True}
    assert client.metadata.list_datasets() == ["EQUS.MINI", "GLBX.MDP3", "XNAS.ITCH"]
    bad = requests.post(url, json={"endpoint": "x", "kind": "explode"}, verify=ca, timeout=10)
    assert bad.status_code == 400 and "unknown fault kind 'explode'" in bad.json()["detail"]["message"]


@pytest.mark.slow
def test_gateway_runs_as_a_process(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "hdi.testing.gateway", "--state-dir", str(tmp_path), "--now", "2026-01-15T00:00:00Z"],
        stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert json.loads((tmp_path / "gateway.json").read_text()) == info
        env = {**os.environ, "REQUESTS_CA_BUNDLE": info["ca_path"]}
        code = ("import databento as db, sys; c = db.Historical('db-test-key', gateway=sys.argv[1]); "
                "print(c.metadata.get_dataset_range('GLBX.MDP3')['end'])")
        out = subprocess.run([sys.executable, "-c", code, info["url"]], env=env, capture_output=True, text=True,
                             timeout=60, check=True)
        assert out.stdout.strip() == "2026-01-15T00:00:00.000000000Z"
        ca = info["ca_path"]
        requests.post(f"{info['url']}/_hdi/faults", json={"endpoint": "*", "status": 503}, verify=ca, timeout=10)
        failed = subprocess.run([sys.executable, "-c", code, info["url"]], env=env, capture_output=True, text=True,
                                timeout=60)
        assert failed.returncode == 1 and "BentoServerError" in failed.stderr
        log = requests.get(f"{info['url']}/_hdi/requests", verify=ca, timeout=10).json()
        assert [(r["path"], r["status"], r["fault"]) for r in log] == [
            ("/v0/metadata.get_dataset_range", 200, None), ("/v0/metadata.get_dataset_range", 503, "status 503")]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
