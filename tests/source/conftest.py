"""Fixtures: a fresh test gateway per test and a DatabentoSource using it through the environment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from hdi.source.databento import DatabentoSource, RetryPolicy
from hdi.testing.gateway import Gateway

NOW = datetime(2026, 1, 15, tzinfo=UTC)
KEY = "db-test-0123456789abcdefABCDEF"
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, jitter=0.0)


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    """The gateway, with the client environment (CA bundle, gateway URL, API key) set for the test."""
    with Gateway(now=NOW) as gw:
        for k, v in gw.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("DATABENTO_API_KEY", KEY)
        yield gw


@pytest.fixture
def source(gateway: Gateway) -> DatabentoSource:
    return DatabentoSource(retry=FAST)
