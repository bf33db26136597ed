"""Fixtures: a fresh test gateway per test, and the official client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from hdi.testing.gateway import Gateway

NOW = datetime(2026, 1, 15, tzinfo=UTC)
KEY = "db-test-0123456789abcdefABCDEF"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with Gateway(now=NOW) as gw:
        yield gw


@pytest.fixture
def client(gateway: Gateway, monkeypatch: pytest.MonkeyPatch):
    """``databento.Historical`` trusting the gateway's CA through the environment only."""
    import databento

    for k, v in gateway.env().items():
        monkeypatch.setenv(k, v)
    return databento.Historical(KEY, gateway=gateway.url)
