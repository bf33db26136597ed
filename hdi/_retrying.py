"""The one retry policy type: how many attempts, and how long to wait between them.

Every retry loop of hdi takes its attempts and waits from a :class:`RetryPolicy`: Databento calls
(:func:`hdi.source.retry.call_with_retry`), a chunk's load after a transient store error
(:mod:`hdi.pipeline.loader`), a store write after a concurrent writer, a TimescaleDB read after a
lost connection, and waiting for another process's DuckDB lock. The loops stay where they are
(each knows what is worth another try); the policy is only numbers.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` is the total number of calls (1 = no retry); delays are in seconds.

    The default, 5 calls waiting about 1, 2, 4 and 8 s between them, rides out a ~15 s outage
    (PRD NFR2 asks for 3-5 retries with exponential backoff); a 429's Retry-After is waited as given.
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.25

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The default policy, adjusted by ``HDI_RETRY_ATTEMPTS`` (total calls, 1-10),
        ``HDI_RETRY_BASE_DELAY`` and ``HDI_RETRY_MAX_DELAY`` (seconds)."""
        d = cls()
        return cls(attempts=int(_read("HDI_RETRY_ATTEMPTS", int, 1, 10, d.attempts)),
                   base_delay=_read("HDI_RETRY_BASE_DELAY", float, 0, 60, d.base_delay),
                   max_delay=_read("HDI_RETRY_MAX_DELAY", float, 0, 600, d.max_delay), jitter=d.jitter)

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Wait after failed attempt number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped,
        times a random factor in ``[1 - jitter, 1 + jitter]``."""
        delay = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return max(0.0, delay * (1.0 + self.jitter * (2.0 * rand() - 1.0)))


def _read(name: str, cast: Callable[[str], float], lo: float, hi: float, default: float) -> float:
    from hdi.errors import ConfigError

    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value: float | None = cast(raw)
    except ValueError:
        value = None
    if value is None or not lo <= value <= hi:
        raise ConfigError(f"{name}='{raw}' is not allowed; allowed: a number from {lo:g} to {hi:g}")
    return value
