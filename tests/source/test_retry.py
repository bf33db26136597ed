"""The retry policy, driven by real client calls against the test gateway's injected faults."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests

from hdi.errors import SourceError
from hdi.source.chunks import Request
from hdi.source.databento import DatabentoSource
from hdi.source.retry import RetryPolicy, call_with_retry, classify
from hdi.testing.gateway import Gateway

KEY = "db-test-0123456789abcdefABCDEF"
KW = {"dataset": "GLBX.MDP3", "schema": "trades", "symbols": ["CL.c.0"], "stype_in": "continuous",
      "start": "2025-03-04T14:00", "end": "2025-03-04T15:00"}
REQ = Request("GLBX.MDP3", "trades", "continuous", ("CL.c.0",), datetime(2025, 3, 4, 14, tzinfo=UTC),
              datetime(2025, 3, 4, 15, tzinfo=UTC))
DESC = "GLBX.MDP3 trades CL.c.0 [2025-03-04T14:00:00Z, 2025-03-04T15:00:00Z)"
NOJITTER = RetryPolicy(attempts=4, base_delay=0.5, max_delay=30.0, jitter=0.0)


class Waits(list):
    """An injected ``sleep`` that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize("k", [1, 3])
def test_5xx_k_times_then_success_makes_k_plus_1_calls(source, gateway, k):
    gateway.faults.status("metadata.get_record_count", 500 if k == 1 else 502, times=k)
    waits = Waits()
    count = call_with_retry(lambda: source.client.metadata.get_record_count(**KW), policy=NOJITTER,
                            what="get_record_count", sleep=waits)
    assert count > 0
    assert len(gateway.calls("metadata.get_record_count")) == k + 1
    assert waits == [0.5, 1.0, 2.0][:k]


def test_429_waits_retry_after_instead_of_backoff(source, gateway):
    gateway.faults.status("metadata.get_record_count", 429, retry_after=7, times=2)
    waits = Waits()
    call_with_retry(lambda: source.client.metadata.get_record_count(**KW), policy=NOJITTER, what="count",
                    sleep=waits)
    assert waits == [7.0, 7.0]
    assert [r.status for r in gateway.calls("metadata.get_record_count")] == [429, 429, 200]


def test_429_retry_after_is_really_waited(source, gateway):
    gateway.faults.status("metadata.get_record_count", 429, retry_after=0.3)
    t0 = time.perf_counter()
    call_with_retry(lambda: source.client.metadata.get_record_count(**KW), policy=NOJITTER, what="count")
    assert 0.3 <= time.perf_counter() - t0 < 5.0
    assert len(gateway.calls("metadata.get_record_count")) == 2


def test_beyond_the_budget_raises_one_line_with_attempts_status_and_databento_message(gateway):
    gateway.faults.status("metadata.get_record_count", 503, times=10)
    src = DatabentoSource(retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))
    with pytest.raises(SourceError) as info:
        src.estimate(REQ)
    calls = gateway.calls("metadata.get_record_count")
    assert len(calls) == 3
    assert str(info.value) == (
        f"get_record_count {DESC} failed after 3 attempts: HTTP 503: service_unavailable: The service is "
        f"temporarily unavailable. Please try again later. (request id {calls[-1].request_id})")
    assert info.value.transient is True and info.value.http_status == 503
    assert "\n" not in str(info.value)


def test_client_errors_fail_at_once(source, gateway):
    gateway.faults.status("metadata.get_record_count", 400)
    with pytest.raises(SourceError) as info:
        call_with_retry(lambda: source.client.metadata.get_record_count(**KW), policy=NOJITTER, what="count",
                        sleep=Waits())
    assert info.value.http_status == 400 and info.value.transient is False
    assert len(gateway.calls("metadata.get_record_count")) == 1
    waits = Waits()
    with pytest.raises(SourceError) as info:
        call_with_retry(lambda: source.client.metadata.get_record_count(**{**KW, "symbols": ["ZZZ9"],
                                                                           "stype_in": "raw_symbol"}),
                        policy=NOJITTER, what="count ZZZ9", sleep=waits)
    assert str(info.value).startswith("count ZZZ9 failed after 1 attempt: HTTP 422: symbology_invalid_request: "
                                      "None of the symbols could be resolved: ZZZ9")
    assert waits == [] and len(gateway.calls("metadata.get_record_count")) == 2


def test_rejected_key_says_how_to_set_it(gateway, monkeypatch):
    monkeypatch.setenv("DATABENTO_API_KEY", "db-bad-a1b2c3d4e5f6")
    src = DatabentoSource()
    with pytest.raises(SourceError) as info:
        src.fetch(REQ)
    assert str(info.value) == (
        f"get_range {DESC}: Databento rejected the API key (HTTP 401: auth_authentication_failed: Authentication "
        "failed.); export DATABENTO_API_KEY with a valid key from https://databento.com/portal/keys")
    assert info.value.http_status == 401 and len(gateway.calls("timeseries.get_range")) == 1


def test_dropped_bodies_are_retried(source, gateway):
    gateway.faults.drop("metadata.get_record_count")
    waits = Waits()
    assert call_with_retry(lambda: source.client.metadata.get_record_count(**KW), policy=NOJITTER, what="count",
                           sleep=waits) > 0
    assert waits == [0.5] and [r.fault for r in gateway.calls("metadata.get_record_count")] == ["drop", None]


def test_connection_refused_is_retried_then_reported(gateway, tmp_path, monkeypatch):
    gone = Gateway(state_dir=tmp_path).start()
    env = gone.env()
    gone.stop()  # nothing listens on its port any more; its CA file stays in tmp_path
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    client = DatabentoSource().client
    waits = Waits()
    with pytest.raises(SourceError) as info:
        call_with_retry(lambda: client.metadata.list_datasets(), policy=RetryPolicy(attempts=2, base_delay=0.5, jitter=0),
                        what="list_datasets", sleep=waits)
    assert str(info.value).startswith("list_datasets failed after 2 attempts: connection error: ")
    assert info.value.transient is True and info.value.http_status is None and waits == [0.5]


def test_read_timeouts_are_transient(gateway):
    gateway.faults.slow("metadata.list_datasets", 1.0)
    with pytest.raises(requests.exceptions.ReadTimeout) as info:
        requests.get(f"{gateway.url}/v0/metadata.list_datasets", auth=(KEY, ""), timeout=(5, 0.2),
                     verify=str(gateway.ca_path))
    failure = classify(info.value)
    assert failure.transient and failure.detail.startswith("timed out: ")


def test_backoff_grows_exponentially_with_bounded_jitter():
    p = RetryPolicy(attempts=8, base_delay=0.5, max_delay=30.0, jitter=0.25)
    assert [p.backoff(i, rand=lambda: 0.5) for i in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert p.backoff(3, rand=lambda: 0.0) == 1.5 and p.backoff(3, rand=lambda: 1.0) == 2.5
    assert all(0.375 <= p.backoff(1) <= 0.625 for _ in range(200))


def test_a_truncation_warning_raised_as_an_error_is_retried(source, gateway):
    import warnings

    from databento.common.error import BentoWarning

    gateway.faults.truncate()

    def read() -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("error", BentoWarning)
            return len(source.client.timeseries.get_range(**KW).to_ndarray())

    waits = Waits()
    n = call_with_retry(read, policy=NOJITTER, what="get_range", sleep=waits)
    assert n > 0 and waits == [0.5]
    assert [r.fault for r in gateway.calls("timeseries.get_range")] == ["truncate", None]
