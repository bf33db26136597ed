"""The one retry policy type: how many attempts, and how long to wait between them.

Every retry loop of hdi takes its attempts and waits from a :class:`RetryPolicy`: Databento calls
(:func:`hdi.source.retry.call_with_retry`), a chunk's load after a transient store error
(:mod:`hdi.pipeline.loader`), a store write after a concurrent writer, a TimescaleDB read after a
lost connection, and waiting for another process's DuckDB lock. The loops stay where they are
(each knows what is worth another try); the policy is only numbers.

:class:`RetryPasses` is the run-level policy above them: after a run's chunk pass, the chunks that
failed with a transient error (every per-call retry spent: an outage longer than the backoff) are
tried again after a pause, for a bounded number of passes (:mod:`hdi.pipeline.retry_pass`).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["PASSES_ENV", "PASS_WAIT_ENV", "RetryPasses", "RetryPolicy"]

PASSES_ENV = "HDI_RETRY_PASSES"
PASS_WAIT_ENV = "HDI_RETRY_PASS_WAIT"


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


@dataclass(frozen=True)
class RetryPasses:
    """The run-level retry pass: up to ``passes`` more tries of the chunks that failed transiently,
    each after a pause of ``wait`` seconds (cut short by SIGINT/SIGTERM).

    The default, 2 passes after 60 s each, rides out an outage of about two minutes on top of the
    per-call retries (~15 s); a terminal failure (a 4xx, a bad file, a rejected key) is never retried.
    """

    passes: int = 2
    wait: float = 60.0

    MAX_PASSES = 10
    MAX_WAIT = 3600.0

    @classmethod
    def from_env(cls, *, passes: int | None = None, wait: float | None = None) -> RetryPasses:
        """``passes`` and ``wait`` as given (``--retry-passes``, ``--retry-pass-wait``), else
        ``HDI_RETRY_PASSES`` (0-10; 0 = no retry pass) and ``HDI_RETRY_PASS_WAIT`` (seconds, 0-3600),
        else the defaults. A value out of range is a :class:`~hdi.errors.ConfigError` naming it."""
        d = cls()
        if passes is not None:
            _check("--retry-passes", passes, 0, cls.MAX_PASSES, integer=True)
        if wait is not None:
            _check("--retry-pass-wait", wait, 0, cls.MAX_WAIT)
        return cls(
            passes=passes if passes is not None else int(_read(PASSES_ENV, int, 0, cls.MAX_PASSES, d.passes)),
            wait=float(wait) if wait is not None else _read(PASS_WAIT_ENV, float, 0, cls.MAX_WAIT, d.wait))


def _check(name: str, value: float, lo: float, hi: float, *, integer: bool = False) -> None:
    from hdi.errors import ConfigError

    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value != value or not lo <= value <= hi:  # noqa: PLR0124 - NaN
        what = "a whole number" if integer else "a number of seconds"
        shown = f"{value:g}" if ok and not isinstance(value, bool) else repr(value)
        raise ConfigError(f"{name} {shown} is not allowed; allowed: {what} from {lo:g} to {hi:g}")


def _read(name: str, cast: Callable[[str], float], lo: float, hi: float, default: float) -> float:
    from hdi.errors import ConfigError

    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value: float | None = cast(raw)
    except ValueError:
        value = None
    if value is None or value != value or not lo <= value <= hi:  # noqa: PLR0124 - NaN
        raise ConfigError(f"{name}='{raw}' is not allowed; allowed: a number from {lo:g} to {hi:g}")
    return value
