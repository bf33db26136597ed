"""Error answers of the test gateway, as the official client raises them."""

from __future__ import annotations

import pytest
import requests
from databento.common.error import BentoClientError

KW = {"dataset": "GLBX.MDP3", "schema": "trades", "symbols": ["CL.c.0"], "stype_in": "continuous",
      "start": "2025-03-04T14:00", "end": "2025-03-04T14:01"}


def raises(fn, **kw) -> BentoClientError:
    with pytest.raises(BentoClientError) as info:
        fn(**{**KW, **kw})
    return info.value


def test_rejected_key_is_401_with_databentos_message(gateway, client):
    import databento

    bad = databento.Historical("db-bad-0123456789", gateway=gateway.url)
    err = raises(bad.timeseries.get_range)
    assert err.http_status == 401
    assert err.message.splitlines()[:2] == ["auth_authentication_failed", "Authentication failed."]
    assert err.request_id == gateway.requests[-1].request_id


def test_missing_key_is_401(gateway, client):
    resp = requests.get(f"{gateway.url}/v0/metadata.list_datasets", verify=str(gateway.ca_path), timeout=10)
    assert resp.status_code == 401
    detail = resp.json()["detail"]
    assert detail["case"] == "auth_authentication_failed" and "no API key" in detail["message"]
    assert set(detail) >= {"case", "message", "docs"}


@pytest.mark.parametrize(("kw", "status", "case", "text"), [
    ({"dataset": "GLBX.MDP"}, 422, "dataset_not_found", "Did you mean 'GLBX.MDP3'?"),
    ({"schema": "imbalance"}, 422, "dataset_schema_not_supported",
     "Schema `imbalance` is not supported on dataset `GLBX.MDP3`."),
    ({"dataset": "EQUS.MINI", "schema": "statistics", "symbols": ["SPY"], "stype_in": "raw_symbol"}, 422,
     "dataset_schema_not_supported", "Schema `statistics` is not supported on dataset `EQUS.MINI`."),
    ({"symbols": ["CL.FUT"], "stype_in": "raw_symbol"}, 422, "symbology_invalid_request",
     "The symbol 'CL.FUT' is a parent symbol but `stype_in` is 'raw_symbol'; request it with stype_in='parent'."),
    ({"symbols": ["ZN.c.0"]}, 422, "symbology_invalid_request", "Could not resolve smart symbols: ZN.c.0"),
    ({"symbols": ["ZZZ9"], "stype_in": "raw_symbol"}, 422, "symbology_invalid_request",
     "None of the symbols could be resolved: ZZZ9"),
    ({"start": "2025-03-04T14:01", "end": "2025-03-04T14:01"}, 422, "data_time_range_start_on_or_after_end",
     "Invalid time range query, `start` 2025-03-04 14:01:00+00:00 cannot be on or after `end` "
     "2025-03-04 14:01:00+00:00."),
    ({"end": "2026-02-01"}, 422, "data_end_after_available_end",
     "The dataset GLBX.MDP3 has data available up to '2026-01-15 00:00:00+00:00'. The `end` in the query "
     "('2026-02-01 00:00:00+00:00') is after the available range. Try requesting with an earlier `end`."),
    ({"start": "2026-01-20", "end": "2026-02-01"}, 422, "data_start_after_available_end", "was after the available end"),
    ({"start": "2009-01-02", "end": "2009-01-03"}, 422, "data_start_before_available_start",
     "was before the available start of dataset GLBX.MDP3 ('2010-06-06 00:00:00+00:00')"),
    ({"dataset": "EQUS.MINI", "symbols": ["SPY.c.0"]}, 422, "symbology_invalid_request",
     "`stype_in` 'continuous' is not supported for dataset EQUS.MINI"),
])
def test_bad_requests_are_422_with_the_case_and_a_useful_message(client, kw, status, case, text):
    err = raises(client.timeseries.get_range, **kw)
    assert err.http_status == status
    first, second = err.message.splitlines()[:2]
    assert first == case
    assert text in second


def test_metadata_endpoints_validate_like_get_range(client):
    for fn in (client.metadata.get_record_count, client.metadata.get_cost, client.metadata.get_billable_size):
        err = raises(fn, schema="imbalance")
        assert err.http_status == 422 and err.message.startswith("dataset_schema_not_supported")


def test_some_symbols_missing_returns_the_rest_and_lists_them(client):
    store = client.timeseries.get_range(**{**KW, "symbols": ["CLK5", "ZZZ9", "QQQ"], "stype_in": "raw_symbol"})
    assert store.metadata.not_found == ["ZZZ9", "QQQ"]
    assert list(store.mappings) == ["CLK5"]
    assert len(store.to_ndarray()) > 0


def test_unknown_stype_and_unparsable_time_are_422(gateway, client):
    url = f"{gateway.url}/v0/timeseries.get_range"
    form = {"dataset": "GLBX.MDP3", "schema": "trades", "symbols": "CL.c.0", "start": "2025-03-04", "end": "2025-03-05",
            "stype_in": "smart", "encoding": "dbn", "compression": "zstd"}
    resp = requests.post(url, data=form, auth=("db-test-key", ""), verify=str(gateway.ca_path), timeout=10)
    assert resp.status_code == 422 and resp.json()["detail"]["case"] == "symbology_invalid_stype"
    resp = requests.post(url, data={**form, "stype_in": "continuous", "start": "yesterday"}, auth=("db-test-key", ""),
                         verify=str(gateway.ca_path), timeout=10)
    assert resp.status_code == 422 and "Could not parse `start` value 'yesterday'" in resp.json()["detail"]["message"]


def test_symbology_resolve_errors_and_partial(client):
    out = client.symbology.resolve("GLBX.MDP3", ["CLZ4", "NOPE1"], "raw_symbol", "instrument_id", "2024-11-15",
                                   "2024-11-30")
    assert out["partial"] == ["CLZ4"] and out["not_found"] == ["NOPE1"]
    assert [iv["d1"] for iv in out["result"]["CLZ4"]][-1] == "2024-11-21"
    with pytest.raises(BentoClientError) as info:
        client.symbology.resolve("GLBX.MDP3", ["NOPE1"], "raw_symbol", "instrument_id", "2024-11-15", "2024-11-30")
    assert info.value.http_status == 422
    with pytest.raises(BentoClientError) as info:  # a Saturday: no session, nothing resolves
        client.symbology.resolve("GLBX.MDP3", ["CL.c.0"], "continuous", "instrument_id", "2024-11-16", "2024-11-17")
    assert info.value.message.startswith("symbology_invalid_request")


def test_a_configured_rejected_key_is_401(monkeypatch):
    import databento

    from hdi.testing.gateway import Gateway

    with Gateway(rejected_keys=frozenset({"db-revoked-1"})) as gw:
        for k, v in gw.env().items():
            monkeypatch.setenv(k, v)
        with pytest.raises(BentoClientError) as info:
            databento.Historical("db-revoked-1", gateway=gw.url).metadata.list_datasets()
        assert info.value.http_status == 401
        assert databento.Historical("db-fine-1", gateway=gw.url).metadata.list_datasets()
